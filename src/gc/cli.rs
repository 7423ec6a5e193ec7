//! `hawser gc` on the command line: settings from the flags, one
//! collection, the report on standard output.

use crate::aws::{AwsClients, AwsSettings};
use crate::cli::{GcArgs, GcResources, LintOutput};
use crate::metrics::Metrics;

/// Runs one collection; returns the exit status (see `hawser gc --help`).
pub async fn run(args: &GcArgs) -> i32 {
    match collect(args).await {
        Ok(report) => {
            match args.output {
                LintOutput::Text => print!("{}", super::render_text(&report)),
                LintOutput::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("a report serializes")
                ),
            }
            i32::from(report.failed())
        }
        Err(e) => {
            eprintln!("hawser gc: {e:#}");
            2
        }
    }
}

async fn collect(args: &GcArgs) -> anyhow::Result<super::Report> {
    let region =
        crate::annotations::default_region(args.region.as_deref(), |k| std::env::var(k).ok());
    let metrics = Metrics::new()?;
    let aws = AwsClients::load(
        &AwsSettings {
            region,
            endpoint_url: args.aws_endpoint_url.clone(),
            ..AwsSettings::default()
        },
        &metrics,
    )
    .await?;
    let client = crate::kubeconfig::client(args.kubeconfig.as_deref()).await?;
    let settings = super::Settings {
        cluster: args.cluster_name.clone(),
        default_region: aws.default_region().to_owned(),
        extra_regions: args.scan_region.clone(),
        older_than: args.older_than,
        dry_run: args.dry_run,
        endpoints: args.resources.contains(&GcResources::VpcEndpoints),
        stacks: args.resources.contains(&GcResources::Stacks),
        namespace: args.namespace.clone(),
    };
    Ok(super::collect_garbage(&client, &aws, &settings).await?)
}
