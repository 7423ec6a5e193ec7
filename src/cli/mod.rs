//! Command-line interface. Every flag can also be set with a `HAWSER_*`
//! environment variable, which is how the chart configures the binary.

mod run;

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use self::run::{
    AwsAuthArgs, CertSource, CertSourceArgs, ControllerArgs, ControllerKind, RunArgs,
};

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

// `run`'s flags are boxed: unboxed, that variant would be many times the
// size of the others (clippy's large_enum_variant).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the admission webhook (HTTPS) and the admin port (HTTP).
    Run(Box<RunArgs>),
    /// Write a CA and a webhook serving certificate (ECDSA P-256) to a directory.
    Certs(CertsArgs),
    /// Print deployable manifests to standard output.
    Manifests(ManifestsArgs),
    /// Run the webhook's mutation and validation on manifests, offline: what
    /// `kubectl apply` of each Deployment, Service and Namespace would meet.
    /// Exit status 0 when nothing is refused, 1 when something is, 2 when
    /// the input cannot be read
    Lint(LintArgs),
    /// Find the AWS resources tagged for this cluster whose owner is gone
    /// (deleted, re-created, no longer annotated, or moved to another
    /// account or region) and delete them. Exit status 0 when everything
    /// was read (and deleted), 1 when something could not be, 2 when the
    /// cluster or AWS cannot be reached at all
    Gc(GcArgs),
    /// Show the AWS changes applying manifests would make hawser's
    /// controllers do: endpoints and security groups created, modified or
    /// deleted, stacks created or updated (with a change set's resource
    /// changes). Reads AWS and, with --kubeconfig, the cluster; writes
    /// nothing but a stack's transient change set. Exit status 0, 1 when an
    /// object would be refused or could not be planned, 2 when the input
    /// cannot be read
    Plan(PlanArgs),
}

#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub input: ManifestArgs,

    /// The controllers' --cluster-name: it names stacks and tags resources.
    #[arg(long, env = "HAWSER_CLUSTER_NAME", value_parser = run::parse_cluster_name)]
    pub cluster_name: String,

    /// As `hawser run --region`.
    #[arg(long, env = "HAWSER_REGION")]
    pub region: Option<String>,

    /// As `hawser run --aws-endpoint-url`.
    #[arg(long, env = "HAWSER_AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,

    /// As `hawser run --default-vpc-id`.
    #[arg(long, env = "HAWSER_DEFAULT_VPC_ID")]
    pub default_vpc_id: Option<String>,

    /// As `hawser run --default-subnet-ids`.
    #[arg(long, env = "HAWSER_DEFAULT_SUBNET_IDS", value_delimiter = ',')]
    pub default_subnet_ids: Vec<String>,

    /// As `hawser run --default-tags`.
    #[arg(
        long,
        env = "HAWSER_DEFAULT_TAGS",
        value_name = "KEY=VALUE,...",
        value_parser = crate::aws::tags::parse_default_tags
    )]
    pub default_tags: Option<crate::aws::Tags>,

    /// Test hook, as `hawser run`'s: the aws-auth ConfigMap's name.
    #[arg(
        long,
        env = "HAWSER_AWS_AUTH_CONFIGMAP",
        default_value = "aws-auth",
        hide = true
    )]
    pub aws_auth_configmap: String,

    /// As `hawser run --iam-cluster-role`.
    #[arg(long, env = "HAWSER_IAM_CLUSTER_ROLE", default_value = "edit")]
    pub iam_cluster_role: String,

    /// As `hawser run --allow-system-groups`.
    #[arg(long, env = "HAWSER_ALLOW_SYSTEM_GROUPS")]
    pub allow_system_groups: bool,
}

#[derive(Debug, Clone, Args)]
pub struct GcArgs {
    /// The cluster's name, as the controllers' --cluster-name: only
    /// resources tagged hawser.io/cluster=<this> are looked at.
    #[arg(long, env = "HAWSER_CLUSTER_NAME", value_parser = run::parse_cluster_name)]
    pub cluster_name: String,

    /// Report what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Leave garbage younger than this (by its creation time; a security
    /// group, which has none, counts as old as its endpoint).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub older_than: Duration,

    /// Kinds of resource to look for, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "vpc-endpoints,stacks"
    )]
    pub resources: Vec<GcResources>,

    /// As `hawser run --region`: the region of objects that name none
    /// (default: AWS_REGION, then AWS_DEFAULT_REGION).
    #[arg(long, env = "HAWSER_REGION")]
    pub region: Option<String>,

    /// Judge only resources whose owner is in this namespace (a Namespace's
    /// stack: that Namespace); by default, every namespace's.
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,

    /// Also look in this region (repeatable), with hawser's own identity
    /// and every role a namespace names: for a region no object names any
    /// more.
    #[arg(long, value_name = "REGION")]
    pub scan_region: Vec<String>,

    /// As `hawser run --aws-endpoint-url`.
    #[arg(long, env = "HAWSER_AWS_ENDPOINT_URL")]
    pub aws_endpoint_url: Option<String>,

    /// Kubeconfig for reading the cluster (default: KUBECONFIG, then
    /// ~/.kube/config, then the in-cluster ServiceAccount). Only
    /// Namespaces, Services and Deployments are read, metadata only.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = LintOutput::Text)]
    pub output: LintOutput,
}

/// `hawser gc --resources`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GcResources {
    /// Interface VPC endpoints and their generated security groups.
    VpcEndpoints,
    /// CloudFormation stacks.
    Stacks,
}

/// The manifests `lint` and `plan` read, and the cluster they may read.
#[derive(Debug, Clone, Args)]
pub struct ManifestArgs {
    /// A manifest file, a directory (its .yaml, .yml and .json files,
    /// recursively), or - for standard input (repeatable). Multi-document
    /// YAML, JSON and Lists, as `helm template` or `kubectl get -o yaml`
    /// print them
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub files: Vec<PathBuf>,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = LintOutput::Text)]
    pub output: LintOutput,

    /// Namespace of the namespaced objects that name none (as kubectl's).
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,

    /// Read the cluster with this kubeconfig; nothing is written. lint
    /// reads the Namespaces (their annotations), for objects in namespaces
    /// the input does not hold; plan also reads the objects themselves
    /// (which exist, with which uid and recorded resources) and template
    /// ConfigMaps, and without it plans every object as new.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,

    /// As `hawser run --excluded-namespaces`: objects there are admitted
    /// untouched.
    #[arg(
        long,
        env = "HAWSER_EXCLUDED_NAMESPACES",
        value_delimiter = ',',
        default_value = "kube-system"
    )]
    pub excluded_namespaces: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct LintArgs {
    #[command(flatten)]
    pub input: ManifestArgs,

    /// Print the JSON patch the mutating webhook would apply to each object.
    #[arg(long)]
    pub show_mutations: bool,

    /// As `hawser run --allow-privileged-containers`.
    #[arg(long, env = "HAWSER_ALLOW_PRIVILEGED_CONTAINERS")]
    pub allow_privileged_containers: bool,

    /// As `hawser run --allow-system-groups`.
    #[arg(long, env = "HAWSER_ALLOW_SYSTEM_GROUPS")]
    pub allow_system_groups: bool,

    /// As `hawser run --region`: what an unset aws.hawser.io/region means
    /// (default: AWS_REGION, then AWS_DEFAULT_REGION).
    #[arg(long, env = "HAWSER_REGION")]
    pub region: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LintOutput {
    /// One line per object, its warnings and (with --show-mutations) its patch.
    Text,
    /// The whole report as one JSON document.
    Json,
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
    use crate::aws::{
        tags::{parse_default_tags, MAX_DEFAULT_TAGS},
        Tags,
    };
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
    fn a_lease_term_out_of_range_or_fractional_is_refused() {
        let run = |d: &str| {
            Cli::try_parse_from(["hawser", "run", "--lease-duration", d]).map_err(|e| e.to_string())
        };
        let err = run("2s").unwrap_err();
        assert!(
            err.contains("--lease-duration") && err.contains("\"2s\"") && err.contains("from 3s"),
            "{err}"
        );
        assert!(run("3s").is_ok());
        assert!(run("1h").is_ok());
        assert!(run("2h").unwrap_err().contains("to 1h"));
        assert!(run("4500ms").unwrap_err().contains("whole seconds"));
        assert!(run("soon").unwrap_err().contains("--lease-duration"));
    }

    #[test]
    fn an_attempt_timeout_out_of_range_is_refused() {
        let run = |d: &str| {
            Cli::try_parse_from(["hawser", "run", "--aws-attempt-timeout", d])
                .map_err(|e| e.to_string())
        };
        assert!(run("2s").is_ok());
        let err = run("500ms").unwrap_err();
        assert!(
            err.contains("--aws-attempt-timeout") && err.contains("from 1s to 10m"),
            "{err}"
        );
        assert!(run("1h").is_err());
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
