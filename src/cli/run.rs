//! The `run` subcommand's flags: the webhook's, and those of the
//! controllers, aws-auth and the certificate source it flattens in.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, ValueEnum};

use crate::aws::{tags::parse_default_tags, Tags};

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Address of the HTTPS admission server (paths /mutate and /validate).
    #[arg(long, env = "HAWSER_WEBHOOK_ADDR", default_value = "0.0.0.0:8443")]
    pub webhook_addr: SocketAddr,

    /// Address of the plain-HTTP admin server (/metrics, /livez, /readyz).
    #[arg(long, env = "HAWSER_ADMIN_ADDR", default_value = "0.0.0.0:8080")]
    pub admin_addr: SocketAddr,

    /// Directory holding tls.crt and tls.key for the admission server.
    /// Re-read on every reload interval; a Secret volume's symlink swap is
    /// picked up, and a broken pair keeps the last good one in service.
    #[arg(long, env = "HAWSER_TLS_CERT_DIR", default_value = "webhook-certs")]
    pub tls_cert_dir: PathBuf,

    /// How often the certificate directory is checked for changes.
    #[arg(long, env = "HAWSER_TLS_RELOAD_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub tls_reload_interval: Duration,

    /// Let containers run with securityContext.privileged=true in every
    /// namespace. Without it, only namespaces annotated
    /// security.hawser.io/allow-privileged="true" may.
    #[arg(long, env = "HAWSER_ALLOW_PRIVILEGED_CONTAINERS")]
    pub allow_privileged_containers: bool,

    /// Let `iam.hawser.io/groups` and `iam.hawser.io/username` name
    /// groups and users starting with `system:` (e.g. system:masters).
    /// Without it they are refused.
    #[arg(long, env = "HAWSER_ALLOW_SYSTEM_GROUPS")]
    pub allow_system_groups: bool,

    /// Usernames allowed to write hawser's output annotations (state,
    /// endpoint-id, stack-id, ...): hawser's own identity. Everyone else's
    /// change to them is refused.
    #[arg(
        long = "controller-username",
        env = "HAWSER_CONTROLLER_USERNAMES",
        value_delimiter = ',',
        default_value = "system:serviceaccount:hawser-system:hawser"
    )]
    pub controller_usernames: Vec<String>,

    /// Namespaces whose objects the webhook always allows untouched, in
    /// addition to the webhook configurations' namespaceSelector.
    #[arg(
        long,
        env = "HAWSER_EXCLUDED_NAMESPACES",
        value_delimiter = ',',
        default_value = "kube-system"
    )]
    pub excluded_namespaces: Vec<String>,

    /// How long an admission request may wait for a namespace the cache
    /// has not seen yet (a Namespace created a moment before its first
    /// object): for the cache's first full list, or, after it, for one live
    /// look-up (at most 500 ms).
    #[arg(long, env = "HAWSER_NAMESPACE_WAIT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub namespace_wait: Duration,

    /// How long in-flight admission requests may take to finish on SIGTERM.
    #[arg(long, env = "HAWSER_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,

    #[command(flatten)]
    pub aws_auth: AwsAuthArgs,

    #[command(flatten)]
    pub certs: CertSourceArgs,

    #[command(flatten)]
    pub controllers: ControllerArgs,
}

/// The controllers and the AWS settings they use. None of these is needed
/// to run the webhook alone.
#[derive(Debug, Clone, Args)]
pub struct ControllerArgs {
    /// Controllers to run, comma-separated; only on the replica holding the
    /// Lease --lease-name. None by default (webhook only).
    #[arg(
        long,
        env = "HAWSER_CONTROLLERS",
        value_enum,
        value_delimiter = ',',
        requires = "cluster_name"
    )]
    pub controllers: Vec<ControllerKind>,

    /// Name of this cluster, written into the hawser.io/cluster tag of every
    /// AWS resource hawser creates; resources are found by it. Required
    /// with --controllers.
    #[arg(long, env = "HAWSER_CLUSTER_NAME", value_parser = parse_cluster_name)]
    pub cluster_name: Option<String>,

    /// Lease (in --namespace) whose holder runs the controllers; every
    /// replica serves the webhook.
    #[arg(long, env = "HAWSER_LEASE_NAME", default_value = "hawser")]
    pub lease_name: String,

    /// How long a Lease holder may go without renewing before another
    /// replica takes over (whole seconds, 3s to 1h). The holder renews every twelfth
    /// of it (at most 2s) and stops its controllers when no renewal has
    /// succeeded for two thirds of it.
    #[arg(long, env = "HAWSER_LEASE_DURATION", default_value = "15s", value_parser = parse_lease_duration)]
    pub lease_duration: Duration,

    /// AWS region for objects that do not name one (aws.hawser.io/region,
    /// the object's own before its namespace's). Default: AWS_REGION, then
    /// AWS_DEFAULT_REGION; the webhook compares regions with the same value.
    /// Without any, the controllers take the SDK's (a profile, the instance
    /// metadata).
    #[arg(long, env = "HAWSER_REGION")]
    pub region: Option<String>,

    /// Send every AWS call to this URL (moto, LocalStack). The SDK's own
    /// AWS_ENDPOINT_URL is honoured too.
    #[arg(long, env = "HAWSER_AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,

    /// How the AWS SDK retries. adaptive: exponential backoff plus a
    /// client-side rate limiter, one per account and region, that slows
    /// that account's calls down after throttling (a throttled retry waited
    /// 8 to 20 s in the e2e tests, where traffic is light). standard:
    /// exponential backoff with jitter only.
    #[arg(
        long,
        env = "HAWSER_AWS_RETRY_MODE",
        value_enum,
        default_value = "adaptive"
    )]
    pub aws_retry_mode: crate::aws::RetryMode,

    /// Attempts per AWS call, the first included, before hawser sees the
    /// error and backs off the object itself.
    #[arg(long, env = "HAWSER_AWS_MAX_ATTEMPTS", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=20))]
    pub aws_max_attempts: u32,

    /// The longest one attempt of an EC2, CloudFormation or STS call waits
    /// for its answer before it is given up and retried (within
    /// --aws-max-attempts): an endpoint that accepts the connection and
    /// never answers holds a reconcile no longer than this per attempt.
    /// SQS long polls are not limited by it.
    #[arg(long, env = "HAWSER_AWS_ATTEMPT_TIMEOUT", default_value = "30s",
          value_parser = parse_attempt_timeout)]
    pub aws_attempt_timeout: Duration,

    /// VPC for Services without vpce.hawser.io/vpc-id.
    #[arg(long, env = "HAWSER_DEFAULT_VPC_ID", value_parser = parse_vpc_id_flag)]
    pub default_vpc_id: Option<String>,

    /// Subnets for Services without vpce.hawser.io/subnet-ids, comma-separated.
    #[arg(
        long,
        env = "HAWSER_DEFAULT_SUBNET_IDS",
        value_delimiter = ',',
        value_parser = parse_subnet_id_flag
    )]
    pub default_subnet_ids: Vec<String>,

    /// Tags added to every AWS resource hawser creates (VPC endpoints,
    /// security groups, CloudFormation stacks) beside its own, as
    /// comma-separated KEY=VALUE, e.g. team=platform,cost-center=42. Keys
    /// 1-128 and values 0-256 characters of letters, digits, spaces and
    /// _ . : / = + - @; keys starting with aws: or hawser.io/ are refused,
    /// and hawser's own tags (hawser.io/*, Name on endpoints and groups)
    /// win. Written when a resource is created and, for a stack, with each
    /// update; a change of this flag does not retag existing resources.
    #[arg(
        long,
        env = "HAWSER_DEFAULT_TAGS",
        value_name = "KEY=VALUE,...",
        value_parser = parse_default_tags
    )]
    pub default_tags: Option<Tags>,

    /// How often every managed object is compared with AWS and drift repaired. Resync
    /// passes share one look per AWS scope (role session and region) and resource kind,
    /// taken at most once per quarter of this period.
    #[arg(long, env = "HAWSER_RESYNC_PERIOD", default_value = "10m", value_parser = humantime::parse_duration)]
    pub resync_period: Duration,

    /// Run garbage collection (as `hawser gc`, for the resources of the
    /// vpce and stack controllers that run, and with --watch-namespace
    /// only for that namespace's objects) this often on the Lease holder,
    /// leaving garbage younger than one period. Off by default.
    #[arg(long, env = "HAWSER_GC_PERIOD", value_parser = humantime::parse_duration)]
    pub gc_period: Option<Duration>,

    /// Every object only plans, as if annotated hawser.io/plan-only="true":
    /// the vpce and stack controllers record what they would do in AWS
    /// (annotation hawser.io/plan, a Planned Event) and make no AWS call
    /// that changes anything.
    #[arg(long, env = "HAWSER_PLAN_ONLY")]
    pub plan_only: bool,

    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "HAWSER_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,

    /// The SQS queue the cfn-requests controller takes CloudFormation
    /// custom-resource requests from (an SNS topic, the resources'
    /// ServiceToken, delivers to it). Required with --controllers
    /// cfn-requests.
    #[arg(long, env = "HAWSER_CFN_REQUESTS_QUEUE_URL", value_name = "URL")]
    pub cfn_requests_queue_url: Option<String>,

    /// What a custom resource may deploy, comma-separated, as kubectl and
    /// RBAC name resources: plural, then the API group unless it is the
    /// core one (configmaps, namespaces, statefulsets.apps). The chart
    /// grants exactly these. Anything else is answered FAILED and nothing
    /// of that request is applied.
    #[arg(
        long,
        env = "HAWSER_CFN_ALLOWED_RESOURCES",
        value_delimiter = ',',
        default_value = "configmaps,secrets",
        value_parser = crate::controller::cfn_requests::manifest::Policy::parse_resource
    )]
    pub cfn_allowed_resources: Vec<String>,

    /// Namespaces a custom resource may deploy into (and, with namespaces
    /// allowed, create), comma-separated; * allows any. None by default:
    /// every namespaced object is refused until this is set.
    #[arg(
        long,
        env = "HAWSER_CFN_ALLOWED_NAMESPACES",
        value_delimiter = ',',
        value_parser = crate::controller::cfn_requests::manifest::Policy::parse_namespace
    )]
    pub cfn_allowed_namespaces: Vec<String>,

    /// Test hook: wait this long after creating a VPC endpoint before
    /// recording it on the Service, so a test can kill hawser in between.
    #[arg(long, env = "HAWSER_TEST_PAUSE_AFTER_CREATE", hide = true, value_parser = humantime::parse_duration)]
    pub test_pause_after_create: Option<Duration>,
}

pub use crate::controller::ControllerKind;

/// The controller type names no parser; its flag values are defined here.
impl ValueEnum for ControllerKind {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            ControllerKind::Vpce,
            ControllerKind::Namespace,
            ControllerKind::Stack,
            ControllerKind::CfnRequests,
        ]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(match self {
            ControllerKind::Vpce => "vpce",
            ControllerKind::Namespace => "namespace",
            ControllerKind::Stack => "stack",
            ControllerKind::CfnRequests => "cfn-requests",
        }))
    }
}

impl ControllerArgs {
    /// The controllers' configuration. The default region is resolved
    /// here once ([`crate::annotations::default_region`]) for the
    /// controllers and the webhook alike.
    pub fn config(&self) -> crate::controller::Config {
        let region =
            crate::annotations::default_region(self.region.as_deref(), |k| std::env::var(k).ok());
        crate::controller::Config {
            controllers: self.controllers.clone(),
            cluster_name: self.cluster_name.clone(),
            aws: crate::aws::AwsSettings {
                region,
                endpoint_url: self.aws_endpoint_url.clone(),
                retry_mode: self.aws_retry_mode,
                max_attempts: self.aws_max_attempts,
                attempt_timeout: self.aws_attempt_timeout,
            },
            lease_name: self.lease_name.clone(),
            lease_duration: self.lease_duration,
            default_vpc_id: self.default_vpc_id.clone(),
            default_subnet_ids: self.default_subnet_ids.clone(),
            default_tags: self.default_tags.clone().unwrap_or_default(),
            resync: self.resync_period,
            watch_namespace: self.watch_namespace.clone(),
            pause_after_create: self.test_pause_after_create,
            gc_period: self.gc_period,
            plan_only: self.plan_only,
            cfn_requests: self.cfn_requests_queue_url.as_ref().map(|url| {
                crate::controller::cfn_requests::Settings {
                    queue_url: url.clone(),
                    policy: crate::controller::cfn_requests::manifest::Policy {
                        resources: self.cfn_allowed_resources.iter().cloned().collect(),
                        namespaces: self.cfn_allowed_namespaces.iter().cloned().collect(),
                    },
                    wait: Duration::from_secs(20),
                    retry_delay: Duration::from_secs(5),
                }
            }),
        }
    }
}

impl AwsAuthArgs {
    pub fn config(&self) -> crate::controller::AwsAuthConfig {
        crate::controller::AwsAuthConfig {
            configmap: self.aws_auth_configmap.clone(),
            iam_cluster_role: self.iam_cluster_role.clone(),
            // Validated when the flag was parsed (parse_pattern).
            protection: crate::aws_auth::Protection::from_pattern(
                self.protected_role_arn_pattern.as_deref(),
            )
            .unwrap_or_default(),
            namespace_selector: self.namespace_selector.clone(),
            iam_finalizer: self.iam_finalizer.clone(),
        }
    }
}

/// `kube-system/aws-auth`: the namespace controller edits it, the lockout
/// guard (`/validate-aws-auth`) protects it.
#[derive(Debug, Clone, Args)]
pub struct AwsAuthArgs {
    /// Regex (matched against the whole role ARN) of further aws-auth
    /// mapRoles entries the lockout guard protects, e.g. administrator
    /// roles. Node roles (entries with group system:nodes) are always
    /// protected.
    #[arg(long, env = "HAWSER_PROTECTED_ROLE_ARN_PATTERN", value_parser = parse_pattern)]
    pub protected_role_arn_pattern: Option<String>,

    /// ClusterRole bound to iam.hawser.io/groups by RoleBinding hawser-iam
    /// in each namespace that maps a role (namespace controller).
    #[arg(long, env = "HAWSER_IAM_CLUSTER_ROLE", default_value = "edit")]
    pub iam_cluster_role: String,

    /// Label selector of the Namespaces the namespace controller handles
    /// (e.g. team=a, or tier in (web,api)). Default: all. A namespace that
    /// stops matching keeps its mapping; it is removed when the namespace
    /// is deleted or loses iam.hawser.io/role-arn.
    #[arg(long, env = "HAWSER_NAMESPACE_SELECTOR", value_parser = crate::selector::LabelSelector::parse)]
    pub namespace_selector: Option<crate::selector::LabelSelector>,

    /// Test hook: the namespace controller's finalizer, so hawser
    /// processes of different tests sharing one apiserver never take each
    /// other's namespaces for their own.
    #[arg(
        long,
        env = "HAWSER_IAM_FINALIZER",
        default_value = crate::annotations::keys::IAM_FINALIZER,
        hide = true
    )]
    pub iam_finalizer: String,

    /// Test hook: the name of the aws-auth ConfigMap in kube-system, so
    /// tests sharing one apiserver do not share it.
    #[arg(
        long,
        env = "HAWSER_AWS_AUTH_CONFIGMAP",
        default_value = "aws-auth",
        hide = true
    )]
    pub aws_auth_configmap: String,
}

fn parse_pattern(s: &str) -> Result<String, String> {
    crate::aws_auth::Protection::from_pattern(Some(s))
        .map(|_| s.to_owned())
        .map_err(|e| format!("not a regular expression: {e}"))
}

pub(super) fn parse_cluster_name(s: &str) -> Result<String, String> {
    let ok = (1..=100).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not a cluster name: 1-100 letters, digits, '-' or '_', starting with a letter or digit"
        ))
    }
}

fn parse_lease_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))?;
    if d < Duration::from_secs(3) || d > Duration::from_secs(3600) {
        return Err(format!(
            "{s:?}: a lease term must be from 3s (so the holder can renew several times before \
             it must stop) to 1h"
        ));
    }
    if d.subsec_nanos() != 0 {
        return Err(format!(
            "{s:?}: a lease term must be whole seconds, as the Lease records it"
        ));
    }
    Ok(d)
}

fn parse_attempt_timeout(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}"))?;
    if d < Duration::from_secs(1) || d > Duration::from_secs(600) {
        return Err(format!("{s:?}: an attempt timeout must be from 1s to 10m"));
    }
    Ok(d)
}

fn parse_vpc_id_flag(s: &str) -> Result<String, String> {
    crate::annotations::parse_vpc_id("--default-vpc-id", s).map_err(|e| e.to_string())
}

fn parse_subnet_id_flag(s: &str) -> Result<String, String> {
    crate::annotations::parse_subnet_ids("--default-subnet-ids", s)
        .map(|mut ids| ids.remove(0))
        .map_err(|e| e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CertSource {
    /// tls.crt and tls.key from --tls-cert-dir (also how cert-manager's
    /// Secret is mounted).
    Directory,
    /// A CA and serving certificate kept by hawser in a Secret, patched
    /// into the webhook configurations and rotated before expiry.
    SelfManaged,
    /// cert-manager issues the certificate into a Secret mounted at
    /// --tls-cert-dir and injects the caBundle; hawser reads the directory
    /// exactly as in `directory` mode.
    CertManager,
}

#[derive(Debug, Clone, Args)]
pub struct CertSourceArgs {
    /// Where the serving certificate comes from.
    #[arg(long = "certs", env = "HAWSER_CERTS", value_enum, default_value_t = CertSource::Directory)]
    pub source: CertSource,

    /// hawser's own namespace: where the self-managed certificate Secret lives.
    #[arg(long, env = "HAWSER_NAMESPACE", default_value = "hawser-system")]
    pub namespace: String,

    /// Name of the self-managed certificate Secret.
    #[arg(
        long,
        env = "HAWSER_CERTS_SECRET",
        default_value = "hawser-webhook-certs"
    )]
    pub certs_secret: String,

    /// The webhook's Service; its DNS names go into the self-managed certificate.
    #[arg(long, env = "HAWSER_WEBHOOK_SERVICE", default_value = "hawser-webhook")]
    pub webhook_service: String,

    /// Mutating and ValidatingWebhookConfiguration whose caBundle hawser keeps
    /// current in self-managed mode.
    #[arg(long, env = "HAWSER_WEBHOOK_CONFIG_NAME", default_value = "hawser")]
    pub webhook_config_name: String,

    /// IP address for the self-managed certificate (repeatable), for a
    /// webhook registered by URL.
    #[arg(long = "cert-ip", env = "HAWSER_CERT_IPS", value_delimiter = ',')]
    pub cert_ips: Vec<std::net::IpAddr>,

    /// Validity of a self-managed serving certificate (its CA: ten times as long).
    #[arg(long, env = "HAWSER_CERT_VALIDITY", default_value = "365d", value_parser = humantime::parse_duration)]
    pub cert_validity: Duration,

    /// Start a rotation when the serving certificate expires within this.
    #[arg(long, env = "HAWSER_CERT_RENEW_BEFORE", default_value = "30d", value_parser = humantime::parse_duration)]
    pub cert_renew_before: Duration,

    /// Time between the rotation's steps (new CA trusted, new cert served,
    /// old CA dropped). Must exceed --tls-reload-interval plus the
    /// apiserver's pick-up of a changed caBundle.
    #[arg(long, env = "HAWSER_CA_ROTATION_GRACE", default_value = "2m", value_parser = humantime::parse_duration)]
    pub ca_rotation_grace: Duration,
}
