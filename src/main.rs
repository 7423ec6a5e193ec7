#![forbid(unsafe_code)]

use clap::Parser;
use hawser::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Both ring (ours) and possibly other providers are linked; pick one
    // explicitly so rustls never has to guess.
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("a rustls crypto provider was already installed"))?;

    let cli = Cli::parse();
    if let Command::Lint(args) = &cli.command {
        // No log: the report is the output, and its exit status the verdict.
        std::process::exit(hawser::lint::run(args).await);
    }
    if let Command::Plan(args) = &cli.command {
        std::process::exit(hawser::plan::run(args).await);
    }
    if let Command::Gc(args) = &cli.command {
        // No log either: the report is the output.
        std::process::exit(hawser::gc::cli::run(args).await);
    }
    hawser::app::init_tracing(cli.log_format);
    match cli.command {
        Command::Run(args) => hawser::app::run(*args).await,
        Command::Certs(args) => hawser::certs::write_to_dir(&args),
        Command::Manifests(args) => hawser::manifests::print(&args),
        Command::Lint(_) | Command::Gc(_) | Command::Plan(_) => unreachable!("handled above"),
    }
}
