//! Controllers: one module per capability. Each holds its desired state
//! (pure) and its apply/cleanup (effects against AWS and Kubernetes), and
//! runs on the one reconcile skeleton, [`reconciler`].
//!
//! Controllers run only when named in `--controllers`, and only on the
//! replica that holds the Lease (see [`crate::leader`]); every replica
//! serves the webhook.

pub mod backoff;
pub mod cfn_requests;
pub mod events;
pub mod inventory;
pub mod namespace;
pub mod planned;
pub mod reconciler;
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
use crate::aws::{AwsClients, AwsSettings, StsApi, Tags};
use crate::aws_auth::Protection;
use crate::leader::{self, LeaderConfig};
use crate::metrics::Metrics;
use crate::namespaces::NamespaceCache;
use crate::selector::LabelSelector;

/// The server-side-apply field manager of every controller write.
pub const FIELD_MANAGER: &str = "hawser";

/// A controller `--controllers` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControllerKind {
    /// Interface VPC endpoints for annotated Services.
    Vpce,
    /// Namespaces as environments: Secret routing, aws-auth mappings,
    /// RoleBindings.
    Namespace,
    /// CloudFormation stacks for annotated Namespaces and Deployments.
    Stack,
    /// CloudFormation custom resources that deploy into the cluster,
    /// taken from an SQS queue.
    CfnRequests,
}

/// The controllers' configuration. `crate::cli` builds it from the flags;
/// nothing here depends on how they are parsed.
#[derive(Debug, Clone)]
pub struct Config {
    pub controllers: Vec<ControllerKind>,
    pub cluster_name: Option<String>,
    /// The AWS clients; `region` is the one default region
    /// ([`crate::annotations::default_region`]), which the webhook uses too.
    pub aws: AwsSettings,
    pub lease_name: String,
    pub lease_duration: Duration,
    /// For Services without their own VPC or subnets.
    pub default_vpc_id: Option<String>,
    pub default_subnet_ids: Vec<String>,
    /// On every AWS resource beside hawser's own tags.
    pub default_tags: Tags,
    pub resync: Duration,
    pub watch_namespace: Option<String>,
    /// Test hook: a pause between creating an endpoint and recording it.
    pub pause_after_create: Option<Duration>,
    /// The `cfn-requests` controller's queue and policy; `None` without
    /// `--cfn-requests-queue-url`.
    pub cfn_requests: Option<cfn_requests::Settings>,
    /// `--gc-period`: garbage collection for the vpce and stack
    /// controllers' resources on the Lease holder; `None`: off.
    pub gc_period: Option<Duration>,
    /// `--plan-only`: the vpce and stack controllers only plan.
    pub plan_only: bool,
}

/// aws-auth and the namespace controller's mapping policy; the webhook's
/// lockout guard reads the same.
#[derive(Debug, Clone)]
pub struct AwsAuthConfig {
    /// The aws-auth ConfigMap's name in kube-system.
    pub configmap: String,
    /// The ClusterRole RoleBinding `hawser-iam` grants.
    pub iam_cluster_role: String,
    pub protection: Protection,
    /// The namespaces handled; `None`: all.
    pub namespace_selector: Option<LabelSelector>,
    pub iam_finalizer: String,
}

/// What the controllers share with the webhook: its namespace cache and
/// the settings both halves read.
#[derive(Clone)]
pub struct Shared {
    pub namespaces: NamespaceCache,
    pub aws_auth: AwsAuthConfig,
    pub allow_system_groups: bool,
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
    args: &Config,
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
    if args.controllers.contains(&ControllerKind::CfnRequests) && args.cfn_requests.is_none() {
        anyhow::bail!(
            "--cfn-requests-queue-url (HAWSER_CFN_REQUESTS_QUEUE_URL) is required with \
             --controllers cfn-requests: the SQS queue CloudFormation's requests arrive in"
        );
    }
    let settings = args.aws.clone();
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
                        .expect("AWS clients are loaded for vpce, stack and cfn-requests")
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
                                    tags: args.default_tags.clone(),
                                },
                                default_region: aws().default_region().to_owned(),
                                resync: args.resync,
                                namespace: args.watch_namespace.clone(),
                                pause_after_create: args.pause_after_create,
                                plan_only: args.plan_only,
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
                                    name: shared.aws_auth.configmap.clone(),
                                },
                                metrics.aws_auth_writes.clone(),
                                token.clone(),
                            );
                            let settings = namespace::Settings {
                                iam_cluster_role: shared.aws_auth.iam_cluster_role.clone(),
                                allow_system_groups: shared.allow_system_groups,
                                protection: shared.aws_auth.protection.clone(),
                                selector: shared.aws_auth.namespace_selector.clone(),
                                finalizer: shared.aws_auth.iam_finalizer.clone(),
                                resync: args.resync,
                            };
                            let ctx = Arc::new(namespace::Context::new(
                                client.clone(),
                                settings,
                                writer,
                                metrics.clone(),
                            ));
                            let namespaces = shared.namespaces.clone();
                            running.push(tokio::spawn(namespace::run(
                                ctx,
                                namespaces,
                                token.clone(),
                            )));
                        }
                        ControllerKind::Stack => {
                            let settings = stack::Settings {
                                cluster: cluster.clone(),
                                default_tags: args.default_tags.clone(),
                                default_region: aws().default_region().to_owned(),
                                resync: args.resync,
                                namespace: args.watch_namespace.clone(),
                                plan_only: args.plan_only,
                            };
                            let ctx = Arc::new(stack::Context::new(
                                client.clone(),
                                aws(),
                                settings,
                                metrics.clone(),
                                shared.namespaces.clone(),
                            ));
                            running.push(tokio::spawn(stack::run(ctx, token.clone())));
                        }
                        ControllerKind::CfnRequests => {
                            let settings = args
                                .cfn_requests
                                .clone()
                                .expect("checked before the controllers start");
                            let region = cfn_requests::queue_region(&settings.queue_url)
                                .unwrap_or(aws().default_region())
                                .to_owned();
                            let ctx = Arc::new(cfn_requests::Context::new(
                                client.clone(),
                                aws().sqs(&region),
                                settings,
                                metrics.clone(),
                            ));
                            running.push(tokio::spawn(cfn_requests::run(ctx, token.clone())));
                        }
                    }
                }
                let (endpoints, stacks) = (
                    args.controllers.contains(&ControllerKind::Vpce),
                    args.controllers.contains(&ControllerKind::Stack),
                );
                if let Some(period) = args.gc_period.filter(|_| endpoints || stacks) {
                    let settings = crate::gc::Settings {
                        cluster: cluster.clone(),
                        default_region: aws().default_region().to_owned(),
                        extra_regions: vec![],
                        older_than: period,
                        // --plan-only: nothing is done, gc included.
                        dry_run: args.plan_only,
                        endpoints,
                        stacks,
                        namespace: args.watch_namespace.clone(),
                    };
                    running.push(tokio::spawn(crate::gc::run_periodic(
                        client.clone(),
                        aws(),
                        settings,
                        period,
                        metrics.clone(),
                        token.clone(),
                    )));
                }
                for r in running {
                    let _ = r.await;
                }
            }
        };
        let shutdown_for_leader = shutdown.clone();
        leader::run(
            client_for_lease,
            leader,
            metrics_for_lease,
            shutdown_for_leader,
            lead,
        )
        .await;
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
