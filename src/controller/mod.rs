//! Controllers: one module per capability. Each holds its desired state
//! (pure) and its apply/cleanup (effects against AWS and Kubernetes).
//!
//! Controllers run only when named in `--controllers`. Until leader
//! election lands, run them on exactly one replica; every replica can
//! serve the webhook.

pub mod backoff;
pub mod pass;
pub mod release;
pub mod stack;
pub mod tracker;
pub mod vpce;

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::admin::Readiness;
use crate::aws::{AwsClients, AwsSettings, StsApi};
use crate::cli::{ControllerArgs, ControllerKind};
use crate::leader::{self, LeaderConfig};
use crate::metrics::Metrics;

/// Readiness check: STS GetCallerIdentity answered.
pub const CHECK_AWS_IDENTITY: &str = "aws-identity";

/// Starts the controllers named in `args`, if any. Each waits for the AWS
/// identity check to pass before it touches AWS; both gate `/readyz`.
pub async fn start(
    args: &ControllerArgs,
    client: kube::Client,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    shutdown: CancellationToken,
    namespace: &str,
) -> anyhow::Result<()> {
    let (client_for_lease, metrics_for_lease) = (client.clone(), metrics.clone());
    if args.controllers.is_empty() {
        return Ok(());
    }
    let cluster = args
        .cluster_name
        .clone()
        .context("--cluster-name is required with --controllers")?;
    let settings = AwsSettings {
        region: args.region.clone(),
        endpoint_url: args.aws_endpoint_url.clone(),
    };
    let aws = AwsClients::load(&settings, &metrics).await?;
    tracing::info!(
        region = aws.default_region(),
        endpoint = aws.endpoint_url().unwrap_or("(AWS)"),
        cluster = %cluster,
        controllers = ?args.controllers,
        "starting controllers"
    );
    readiness.require(CHECK_AWS_IDENTITY);
    let aws = Arc::new(aws);
    let args = args.clone();
    let leader = LeaderConfig {
        namespace: namespace.to_owned(),
        lease_name: args.lease_name.clone(),
        identity: leader::default_identity(),
        duration: args.lease_duration,
        grace: (args.lease_duration / 3).max(Duration::from_secs(1)),
    };
    tokio::spawn(async move {
        if !confirm_identity(&aws, &readiness, &shutdown).await {
            return;
        }
        // Every replica serves the webhook; only the Lease holder touches
        // AWS. Readiness does not wait for the controllers' caches, or a
        // follower would never be ready to serve admission.
        let lead = move |token: CancellationToken| {
            let (client, aws, metrics, args, cluster) = (
                client.clone(),
                aws.clone(),
                metrics.clone(),
                args.clone(),
                cluster.clone(),
            );
            async move {
                let mut running = Vec::new();
                for kind in args.controllers.iter().copied() {
                    match kind {
                        ControllerKind::Vpce => {
                            let settings = vpce::Settings {
                                cluster: cluster.clone(),
                                defaults: vpce::desired::Defaults {
                                    vpc_id: args.default_vpc_id.clone(),
                                    subnet_ids: args.default_subnet_ids.clone(),
                                },
                                default_region: aws.default_region().to_owned(),
                                resync: args.resync_period,
                                namespace: args.watch_namespace.clone(),
                                pause_after_create: args.test_pause_after_create,
                            };
                            let ctx = Arc::new(vpce::Context::new(
                                client.clone(),
                                aws.clone(),
                                settings,
                                metrics.clone(),
                            ));
                            let synced = || tracing::info!("vpce controller cache synced");
                            running.push(tokio::spawn(vpce::run(ctx, synced, token.clone())));
                        }
                        ControllerKind::Stack => {
                            let settings = stack::Settings {
                                cluster: cluster.clone(),
                                default_region: aws.default_region().to_owned(),
                                resync: args.resync_period,
                                namespace: args.watch_namespace.clone(),
                            };
                            let ctx = Arc::new(stack::Context::new(
                                client.clone(),
                                aws.clone(),
                                settings,
                                metrics.clone(),
                            ));
                            running.push(tokio::spawn(stack::run(ctx, token.clone())));
                        }
                    }
                }
                for r in running {
                    let _ = r.await;
                }
            }
        };
        let shutdown_for_leader = shutdown.clone();
        if let Err(e) = leader::run(
            client_for_lease,
            leader,
            metrics_for_lease,
            shutdown_for_leader,
            lead,
        )
        .await
        {
            tracing::error!(error = %e, "leader election failed; controllers are not running");
        }
    });
    Ok(())
}

/// Calls STS GetCallerIdentity until it answers (backing off), logs the
/// account, and marks the check ready. False if shut down first.
async fn confirm_identity(
    aws: &AwsClients,
    readiness: &Readiness,
    shutdown: &CancellationToken,
) -> bool {
    let sts = aws.sts(&aws.default_scope()).await;
    let mut attempt = 0;
    loop {
        match sts.caller_identity().await {
            Ok(id) => {
                tracing::info!(account = %id.account, arn = %id.arn, "AWS identity confirmed");
                readiness.set(CHECK_AWS_IDENTITY, true);
                return true;
            }
            Err(e) => {
                let delay = backoff::Backoff::POLL
                    .delay(attempt)
                    .max(Duration::from_millis(200));
                attempt += 1;
                tracing::warn!(error = %e, retry_in = ?delay, "AWS identity check failed");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.cancelled() => return false,
                }
            }
        }
    }
}
