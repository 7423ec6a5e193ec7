//! hawser's admission benchmark (BENCHMARKS.md, "Admission against the
//! bound"). `hack/bench-webhook.sh` builds it and runs `run`, which starts
//! each server pinned to one CPU and drives it open-loop from another.
//!
//! - `bound`: the lower bound, rustls + hyper answering every request with
//!   one constant AdmissionReview, on the same certificate and TLS
//!   defaults as hawser.
//! - `run`: the bound, then hawser's `/mutate` and `/validate` with each
//!   body, at a fixed rate and in a rate sweep; prints the tables.
//! - `ec2-rates`: a proxy in front of moto that throttles EC2 as AWS
//!   does (`hack/bench-controllers.sh` with `BENCH_EC2_RATES=1`).

mod bound;
mod count;
mod decode;
mod ec2_rates;
mod load;
mod procfs;
mod rate_proxy;
mod run;

use std::{net::SocketAddr, path::PathBuf};

use clap::Parser;

#[derive(Parser)]
#[command(name = "hawser-bench", about = "hawser's admission benchmark")]
enum Cmd {
    /// Serve the bound: read each request whole, answer one constant
    /// AdmissionReview
    Bound {
        #[arg(long)]
        listen: SocketAddr,
        /// Directory holding tls.crt and tls.key (`hawser certs --out`)
        #[arg(long)]
        cert_dir: PathBuf,
    },
    /// Measure the bound and hawser one after the other
    Run(run::Args),
    /// Proxy plain-HTTP AWS requests to moto, refusing EC2's with
    /// RequestLimitExceeded beyond AWS's documented token buckets; GET
    /// /_stats says what passed, what was refused and the bucket-limited
    /// minimum time
    Ec2Rates {
        #[arg(long)]
        listen: SocketAddr,
        /// moto's address, e.g. 127.0.0.1:5000
        #[arg(long)]
        upstream: SocketAddr,
        /// Refuse nothing: only count, and note each Service's first request
        #[arg(long)]
        unlimited: bool,
    },
    /// Time the steps of decoding one AdmissionReview body in this process
    /// (release build): what the webhook cannot do in less
    Decode {
        /// An AdmissionReview of a Deployment, e.g. bench/bodies/deployment.json
        body: PathBuf,
        #[arg(long, default_value_t = 20_000)]
        iterations: u32,
    },
}

fn main() -> anyhow::Result<()> {
    match Cmd::parse() {
        Cmd::Bound { listen, cert_dir } => bound::serve(listen, &cert_dir),
        Cmd::Run(args) => run::run(args),
        Cmd::Decode { body, iterations } => decode::run(&body, iterations),
        Cmd::Ec2Rates {
            listen,
            upstream,
            unlimited,
        } => rate_proxy::serve(listen, upstream, unlimited),
    }
}
