//! Command-line interface. Every flag can also be set with a `HAWSER_*`
//! environment variable, which is how the chart configures the binary.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::aws::{tags::parse_default_tags, Tags};

#[derive(Debug, Parser)]
#[command(
    name = "hawser",
    version,
    about = "Admission webhook and controller that attach AWS side effects to annotated Kubernetes objects"
)]
pub struct Cli {
    /// Log line format.
    #[arg(long, env = "HAWSER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

// Parsed once at start-up; boxing the large variant would buy nothing.

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the admission webhook (HTTPS) and the admin port (HTTP).
    Run(Box<RunArgs>),
    /// Write a CA and a webhook serving certificate (ECDSA P-256) to a directory.
    Certs(CertsArgs),
    /// Print deployable manifests to standard output.
    Manifests(ManifestsArgs),
}

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
    /// replica takes over; it renews a third of this before expiry.
    #[arg(long, env = "HAWSER_LEASE_DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub lease_duration: Duration,

    /// AWS region for objects that do not name one (aws.hawser.io/region).
    /// Default: the SDK's (AWS_REGION, then the profile).
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

    /// How often every managed object is compared with AWS and drift repaired.
    #[arg(long, env = "HAWSER_RESYNC_PERIOD", default_value = "10m", value_parser = humantime::parse_duration)]
    pub resync_period: Duration,

    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "HAWSER_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,

    /// Test hook: wait this long after creating a VPC endpoint before
    /// recording it on the Service, so a test can kill hawser in between.
    #[arg(long, env = "HAWSER_TEST_PAUSE_AFTER_CREATE", hide = true, value_parser = humantime::parse_duration)]
    pub test_pause_after_create: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ControllerKind {
    // Interface VPC endpoints for Services annotated vpce.hawser.io/service-name.
    Vpce,
    // Namespaces as environments: Secret routing, aws-auth mappings, RoleBindings.
    Namespace,
    // CloudFormation stacks for Namespaces and Deployments annotated
    // cfn.hawser.io/template or cfn.hawser.io/template-configmap.
    Stack,
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

fn parse_cluster_name(s: &str) -> Result<String, String> {
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

#[derive(Debug, Clone, Args)]
pub struct CertsArgs {
    /// Name of the Service in front of the webhook; used for the DNS names.
    #[arg(long, env = "HAWSER_CERTS_SERVICE", default_value = "hawser-webhook")]
    pub service: String,

    /// Namespace of that Service.
    #[arg(long, env = "HAWSER_CERTS_NAMESPACE", default_value = "hawser-system")]
    pub namespace: String,

    /// IP address to add as a subject alternative name (repeatable), for a
    /// webhook registered by URL such as https://127.0.0.1:8443.
    #[arg(long = "ip", env = "HAWSER_CERTS_IPS", value_delimiter = ',')]
    pub ips: Vec<std::net::IpAddr>,

    /// Extra DNS name to add as a subject alternative name (repeatable).
    #[arg(
        long = "dns-name",
        env = "HAWSER_CERTS_DNS_NAMES",
        value_delimiter = ','
    )]
    pub dns_names: Vec<String>,

    /// Validity of the serving certificate; the CA lives ten times as long.
    #[arg(long, env = "HAWSER_CERTS_VALIDITY", default_value = "365d", value_parser = humantime::parse_duration)]
    pub validity: Duration,

    /// Output directory; ca.crt, tls.crt and tls.key are written there.
    #[arg(long, env = "HAWSER_CERTS_OUT", default_value = "webhook-certs")]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct ManifestsArgs {
    #[command(subcommand)]
    pub what: ManifestKind,
}

#[derive(Debug, Clone, Subcommand)]
pub enum ManifestKind {
    /// The MutatingWebhookConfiguration and ValidatingWebhookConfiguration.
    Webhook(WebhookManifestArgs),
}

#[derive(Debug, Clone, Args)]
pub struct WebhookManifestArgs {
    /// PEM file whose contents become the caBundle (usually ca.crt).
    #[arg(long, env = "HAWSER_CA_BUNDLE_FILE")]
    pub ca_bundle_file: PathBuf,

    /// Reach the webhook by URL, e.g. https://127.0.0.1:8443 (paths are appended).
    #[arg(
        long,
        env = "HAWSER_WEBHOOK_URL",
        conflicts_with = "service",
        required_unless_present = "service"
    )]
    pub url: Option<String>,

    /// Reach the webhook through this Service (in --namespace, port 443).
    #[arg(long, env = "HAWSER_WEBHOOK_SERVICE")]
    pub service: Option<String>,

    /// hawser's own namespace: the Service's namespace, and excluded from admission.
    #[arg(long, env = "HAWSER_NAMESPACE", default_value = "hawser-system")]
    pub namespace: String,

    /// Name of both webhook configurations.
    #[arg(long, env = "HAWSER_WEBHOOK_CONFIG_NAME", default_value = "hawser")]
    pub name: String,

    /// Only admit objects in namespaces carrying this label (KEY=VALUE,
    /// repeatable): an opt-in mode for a gradual roll-out.
    #[arg(long = "match-namespace-label", env = "HAWSER_MATCH_NAMESPACE_LABELS", value_delimiter = ',', value_parser = parse_label)]
    pub match_namespace_labels: Vec<(String, String)>,

    /// Add the aws-auth lockout guard: validating entries (failurePolicy
    /// Ignore) for UPDATE and DELETE of ConfigMaps in kube-system, served
    /// on /validate-aws-auth.
    #[arg(long, env = "HAWSER_AWS_AUTH_GUARD")]
    pub aws_auth_guard: bool,
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::tags::MAX_DEFAULT_TAGS;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_run_flag_has_an_env_var() {
        let cmd = Cli::command();
        let run = cmd.find_subcommand("run").expect("run subcommand");
        for arg in run.get_arguments() {
            if arg.get_id() == "help" || arg.get_id() == "log_format" {
                continue;
            }
            let env = arg
                .get_env()
                .unwrap_or_else(|| panic!("--{} has no env var", arg.get_id()));
            assert!(env.to_string_lossy().starts_with("HAWSER_"), "{env:?}");
        }
    }

    #[test]
    fn controllers_need_a_cluster_name() {
        let base = ["hawser", "run", "--controllers", "vpce"];
        let err = Cli::try_parse_from(base).unwrap_err();
        assert!(err.to_string().contains("--cluster-name"), "{err}");
        let ok = Cli::try_parse_from([&base[..], &["--cluster-name", "prod-1"]].concat()).unwrap();
        let Command::Run(run) = ok.command else {
            panic!("not run")
        };
        assert_eq!(run.controllers.controllers, vec![ControllerKind::Vpce]);
        assert_eq!(run.controllers.resync_period, Duration::from_secs(600));
        assert!(
            Cli::try_parse_from(["hawser", "run"]).is_ok(),
            "webhook only"
        );
    }

    #[test]
    fn a_malformed_namespace_selector_stops_hawser_with_the_reason() {
        let run = |sel: &str| {
            Cli::try_parse_from(["hawser", "run", "--namespace-selector", sel])
                .map_err(|e| e.to_string())
        };
        assert!(run("team in (a,b),!legacy").is_ok());
        let err = run("team=a,").unwrap_err();
        assert!(
            err.contains("--namespace-selector") && err.contains("team=a,"),
            "{err}"
        );
    }

    #[test]
    fn aws_id_flags_are_validated_like_the_annotations() {
        let run = |args: &[&str]| Cli::try_parse_from([&["hawser", "run"][..], args].concat());
        assert!(run(&["--default-vpc-id", "vpc-0123456789abcdef0"]).is_ok());
        let err = run(&["--default-vpc-id", "vpc-nope"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--default-vpc-id"), "{err}");
        assert!(run(&["--default-subnet-ids", "subnet-12345678,subnet-87654321"]).is_ok());
        assert!(run(&["--default-subnet-ids", "sub-1"]).is_err());
        assert!(run(&["--cluster-name", "-bad"]).is_err());
        assert!(run(&["--cluster-name", "prod_eu-1"]).is_ok());
    }

    #[test]
    fn default_tags_are_parsed_into_a_map() {
        let run = |args: &[&str]| Cli::try_parse_from([&["hawser", "run"][..], args].concat());
        let Command::Run(none) = run(&[]).unwrap().command else {
            panic!("not run")
        };
        assert_eq!(none.controllers.default_tags, None);
        let parsed = run(&["--default-tags", "team=platform,cost-center=42"]).unwrap();
        let Command::Run(args) = parsed.command else {
            panic!("not run")
        };
        assert_eq!(
            args.controllers.default_tags,
            Some(Tags::from([
                ("cost-center".into(), "42".into()),
                ("team".into(), "platform".into()),
            ]))
        );
        for (given, key, value) in [
            ("empty=", "empty", ""),
            ("a=b=c", "a", "b=c"),
            (
                "Ünïcode Key=v_1.2:3/4+5-6@7",
                "Ünïcode Key",
                "v_1.2:3/4+5-6@7",
            ),
            (" team=a , ", "team", "a"),
        ] {
            assert_eq!(
                parse_default_tags(given),
                Ok(Tags::from([(key.into(), value.into())])),
                "{given}"
            );
        }
        assert_eq!(parse_default_tags(""), Ok(Tags::new()));
        let k128 = format!("{}=v", "k".repeat(128));
        let v256 = format!("k={}", "v".repeat(256));
        assert!(parse_default_tags(&k128).is_ok() && parse_default_tags(&v256).is_ok());
    }

    #[test]
    fn bad_default_tags_stop_hawser_naming_the_entry_and_the_rule() {
        let k129 = format!("{}=v", "k".repeat(129));
        let v257 = format!("k={}", "v".repeat(257));
        let many: Vec<String> = (0..=MAX_DEFAULT_TAGS).map(|i| format!("k{i}=v")).collect();
        let many = many.join(",");
        for (given, message) in [
            ("team", r#""team": not KEY=VALUE"#),
            ("=x", r#""=x": the key is 0 characters; 1-128 are allowed"#),
            (
                k129.as_str(),
                "the key is 129 characters; 1-128 are allowed",
            ),
            (
                v257.as_str(),
                "the value is 257 characters; at most 256 are allowed",
            ),
            (
                "team=a!",
                r#""team=a!": '!' is not allowed; tags allow letters, digits, spaces and _ . : / = + - @"#,
            ),
            (
                "owner=a,cost#center=1",
                r#""cost#center=1": '#' is not allowed"#,
            ),
            (
                "aws:createdBy=me",
                r#""aws:createdBy=me": keys starting with aws: are reserved for AWS"#,
            ),
            (
                "AWS:x=1",
                "keys starting with aws: are reserved for AWS",
            ),
            (
                "hawser.io/cluster=other",
                r#""hawser.io/cluster=other": keys starting with hawser.io/ are hawser's own"#,
            ),
            ("team=a,team=b", r#""team=b": the key "team" is given twice"#),
            (
                many.as_str(),
                "46 tags; at most 45 are allowed (AWS allows 50 per resource, and hawser writes up to 5 of its own)",
            ),
        ] {
            let err = Cli::try_parse_from(["hawser", "run", "--default-tags", given])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("--default-tags") && err.contains(message),
                "{given}: {err}"
            );
        }
    }

    #[test]
    fn label_parser_rejects_missing_equals() {
        assert_eq!(parse_label("a=b"), Ok(("a".into(), "b".into())));
        assert_eq!(
            parse_label("ab"),
            Err("expected KEY=VALUE, got \"ab\"".into())
        );
    }
}
