//! Controllers: one module per capability. Each holds its desired state
//! (pure) and its apply/cleanup (effects against AWS and Kubernetes).
//!
//! Controllers run only when named in `--controllers`, and only on the
//! replica that holds the Lease (see [`crate::leader`]); every replica
//! serves the webhook.

pub mod backoff;
pub mod namespace;
pub mod pass;
pub mod release;
pub mod scope;
pub mod stack;
pub mod timeout;
pub mod tracker;
pub mod vpce;

use std::{sync::Arc, time::Duration};

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use crate::admin::Readiness;
use crate::aws::{AwsClients, AwsSettings, StsApi};
use crate::cli::{AwsAuthArgs, ControllerArgs, ControllerKind};
use crate::leader::{self, LeaderConfig};
use crate::metrics::Metrics;
use crate::namespaces::NamespaceCache;

/// The server-side-apply field manager of every controller write.
pub const FIELD_MANAGER: &str = "hawser";

/// What the controllers share with the webhook: its namespace cache and
/// the settings both halves read.
#[derive(Clone)]
pub struct Shared {
    pub namespaces: NamespaceCache,
    pub aws_auth: AwsAuthArgs,
    pub allow_system_groups: bool,
}

/// An Event note within the API's limit (1 kB, else the Event is
/// refused), cut at a character boundary. AWS's messages can be long.
pub fn bounded_note(note: String) -> String {
    const MAX: usize = 1000;
    if note.len() <= MAX {
        return note;
    }
    let mut end = MAX - 3;
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &note[..end])
}

/// Readiness check: STS GetCallerIdentity answered.
pub const CHECK_AWS_IDENTITY: &str = "aws-identity";

/// Starts the controllers named in `args`, if any. Each waits for the AWS
/// identity check to pass before it touches AWS; both gate `/readyz`.
///
/// Returns the task that holds the Lease: it ends after `shutdown` fires,
/// once the controllers have stopped and the Lease is released.
#[allow(clippy::too_many_arguments)]
pub async fn start(
    args: &ControllerArgs,
    shared: Shared,
    client: kube::Client,
    metrics: Arc<Metrics>,
    readiness: Arc<Readiness>,
    shutdown: CancellationToken,
    namespace: &str,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let (client_for_lease, metrics_for_lease) = (client.clone(), metrics.clone());
    if args.controllers.is_empty() {
        return Ok(None);
    }
    let cluster = args
        .cluster_name
        .clone()
        .context("--cluster-name is required with --controllers")?;
    let settings = AwsSettings {
        region: args.region.clone(),
        endpoint_url: args.aws_endpoint_url.clone(),
        retry_mode: args.aws_retry_mode,
        max_attempts: args.aws_max_attempts,
    };
    // The namespace controller only talks to Kubernetes: alone, it needs
    // no AWS region, credentials or identity check.
    let needs_aws = args
        .controllers
        .iter()
        .any(|k| !matches!(k, ControllerKind::Namespace));
    let aws = if needs_aws {
        let aws = AwsClients::load(&settings, &metrics).await?;
        tracing::info!(
            region = aws.default_region(),
            endpoint = aws.endpoint_url().unwrap_or("(AWS)"),
            "AWS clients configured"
        );
        readiness.require(CHECK_AWS_IDENTITY);
        Some(Arc::new(aws))
    } else {
        None
    };
    tracing::info!(cluster = %cluster, controllers = ?args.controllers, "starting controllers");
    let args = args.clone();
    let leader = LeaderConfig {
        namespace: namespace.to_owned(),
        lease_name: args.lease_name.clone(),
        identity: leader::default_identity(),
        duration: args.lease_duration,
        grace: (args.lease_duration / 3).max(Duration::from_secs(1)),
    };
    let task = tokio::spawn(async move {
        if let Some(aws) = &aws {
            if !confirm_identity(aws, &readiness, &shutdown).await {
                return;
            }
        }
        // Every replica serves the webhook; only the Lease holder touches
        // AWS. Readiness does not wait for the controllers' caches, or a
        // follower would never be ready to serve admission.
        let lead = move |token: CancellationToken| {
            let (client, aws, metrics, args, cluster, shared) = (
                client.clone(),
                aws.clone(),
                metrics.clone(),
                args.clone(),
                cluster.clone(),
                shared.clone(),
            );
            async move {
                // Loaded whenever a controller that calls AWS is named.
                let aws = || {
                    aws.clone()
                        .expect("AWS clients are loaded for vpce and stack")
                };
                let mut running = Vec::new();
                for kind in args.controllers.iter().copied() {
                    match kind {
                        ControllerKind::Vpce => {
                            let settings = vpce::Settings {
                                cluster: cluster.clone(),
                                defaults: vpce::desired::Defaults {
                                    vpc_id: args.default_vpc_id.clone(),
                                    subnet_ids: args.default_subnet_ids.clone(),
                                    tags: args.default_tags.clone().unwrap_or_default(),
                                },
                                default_region: aws().default_region().to_owned(),
                                resync: args.resync_period,
                                namespace: args.watch_namespace.clone(),
                                pause_after_create: args.test_pause_after_create,
                            };
                            let ctx = Arc::new(vpce::Context::new(
                                client.clone(),
                                aws(),
                                settings,
                                metrics.clone(),
                                shared.namespaces.clone(),
                            ));
                            let synced = || tracing::info!("vpce controller cache synced");
                            // A Service's account and region come from its
                            // namespace: never guess them from an empty cache.
                            let (cache, token) = (shared.namespaces.clone(), token.clone());
                            running.push(tokio::spawn(async move {
                                tokio::select! {
                                    _ = cache.wait_synced() => vpce::run(ctx, synced, token).await,
                                    _ = token.cancelled() => {}
                                }
                            }));
                        }
                        ControllerKind::Namespace => {
                            // One aws-auth writer per leadership term; it
                            // stops with the term.
                            let writer = namespace::writer::AwsAuthWriter::start(
                                client.clone(),
                                namespace::writer::Target {
                                    namespace: crate::aws_auth::NAMESPACE.into(),
                                    name: shared.aws_auth.aws_auth_configmap.clone(),
                                },
                                metrics.aws_auth_writes.clone(),
                                token.clone(),
                            );
                            let settings = namespace::Settings {
                                iam_cluster_role: shared.aws_auth.iam_cluster_role.clone(),
                                allow_system_groups: shared.allow_system_groups,
                                // Validated when the flags were parsed.
                                protection: crate::aws_auth::Protection::from_pattern(
                                    shared.aws_auth.protected_role_arn_pattern.as_deref(),
                                )
                                .unwrap_or_default(),
                                selector: shared.aws_auth.namespace_selector.clone(),
                                finalizer: shared.aws_auth.iam_finalizer.clone(),
                                resync: args.resync_period,
                            };
                            let ctx = Arc::new(namespace::Context::new(
                                client.clone(),
                                settings,
                                writer,
                                metrics.clone(),
                            ));
                            running.push(tokio::spawn(namespace::run(ctx, token.clone())));
                        }
                        ControllerKind::Stack => {
                            let settings = stack::Settings {
                                cluster: cluster.clone(),
                                default_tags: args.default_tags.clone().unwrap_or_default(),
                                default_region: aws().default_region().to_owned(),
                                resync: args.resync_period,
                                namespace: args.watch_namespace.clone(),
                            };
                            let ctx = Arc::new(stack::Context::new(
                                client.clone(),
                                aws(),
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
    Ok(Some(task))
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

#[cfg(test)]
mod tests {
    #[test]
    fn notes_stay_within_the_event_limit() {
        let note = super::bounded_note("é".repeat(800));
        assert!(
            note.len() <= 1000 && note.ends_with("..."),
            "{}",
            note.len()
        );
        assert_eq!(super::bounded_note("short".into()), "short");
    }
}
