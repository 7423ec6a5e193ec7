//! Every annotation key in the contract, inputs and outputs. Which kind of
//! object each belongs on, and what it means, is in [`catalog::ALL`].

use super::catalog::{self, Role};

/// The kinds of object hawser reads annotations from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    Service,
    Namespace,
    Deployment,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Service => "Service",
            ObjectKind::Namespace => "Namespace",
            ObjectKind::Deployment => "Deployment",
        }
    }
}

// Service -> interface VPC endpoint: inputs.
pub const VPCE_SERVICE_NAME: &str = "vpce.hawser.io/service-name";
pub const VPCE_VPC_ID: &str = "vpce.hawser.io/vpc-id";
pub const VPCE_SUBNET_IDS: &str = "vpce.hawser.io/subnet-ids";
pub const VPCE_SECURITY_GROUP_IDS: &str = "vpce.hawser.io/security-group-ids";
pub const VPCE_ALLOWED_CIDRS: &str = "vpce.hawser.io/allowed-cidrs";
pub const VPCE_PRIVATE_DNS: &str = "vpce.hawser.io/private-dns";
// Service -> interface VPC endpoint: outputs.
pub const VPCE_STATE: &str = "vpce.hawser.io/state";
pub const VPCE_ENDPOINT_ID: &str = "vpce.hawser.io/endpoint-id";
pub const VPCE_DNS_NAME: &str = "vpce.hawser.io/dns-name";
pub const VPCE_SECURITY_GROUP_ID: &str = "vpce.hawser.io/security-group-id";
/// Finalizer the webhook adds to a Service with a VPC endpoint.
pub const VPCE_FINALIZER: &str = "vpce.hawser.io/cleanup";

// Namespace -> environment.
pub const ENV_HOST_NAMES: &str = "env.hawser.io/host-names";
pub const ENV_ROUTING_SECRET: &str = "env.hawser.io/routing-secret";
pub const ENV_ROTATE_KEYS: &str = "env.hawser.io/rotate-keys";
/// Output: the `rotate-keys` value the controller last acted on.
pub const ENV_ROTATED_KEYS: &str = "env.hawser.io/rotated-keys";

// Namespace -> IAM role mapped in aws-auth.
pub const IAM_ROLE_ARN: &str = "iam.hawser.io/role-arn";
pub const IAM_USERNAME: &str = "iam.hawser.io/username";
pub const IAM_GROUPS: &str = "iam.hawser.io/groups";
/// Finalizer the controller adds to a Namespace whose role it maps, so
/// the `aws-auth` entry goes when the namespace does.
pub const IAM_FINALIZER: &str = "iam.hawser.io/cleanup";

// Namespace (and Service) -> AWS account and region.
pub const AWS_ROLE_ARN: &str = "aws.hawser.io/role-arn";
pub const AWS_REGION: &str = "aws.hawser.io/region";

// Namespace / Deployment -> hardening.
pub const SECURITY_ALLOW_PRIVILEGED: &str = "security.hawser.io/allow-privileged";
pub const SECURITY_PROFILE: &str = "security.hawser.io/profile";

// Deployment -> routing.
pub const ROUTING_PUBLIC_HOSTS: &str = "routing.hawser.io/public-hosts";
pub const ROUTING_PRIVATE_HOSTS: &str = "routing.hawser.io/private-hosts";
pub const ROUTING_INJECT_KEYS: &str = "routing.hawser.io/inject-keys";

// Namespace / Deployment -> CloudFormation stack: inputs.
pub const CFN_TEMPLATE: &str = "cfn.hawser.io/template";
pub const CFN_TEMPLATE_CONFIGMAP: &str = "cfn.hawser.io/template-configmap";
pub const CFN_PARAMETERS: &str = "cfn.hawser.io/parameters";
pub const CFN_CAPABILITIES: &str = "cfn.hawser.io/capabilities";
pub const CFN_OUTPUTS_CONFIGMAP: &str = "cfn.hawser.io/outputs-configmap";
pub const CFN_INJECT_OUTPUTS: &str = "cfn.hawser.io/inject-outputs";
// CloudFormation stack: outputs.
pub const CFN_STACK_ID: &str = "cfn.hawser.io/stack-id";
pub const CFN_STACK_STATUS: &str = "cfn.hawser.io/stack-status";
pub const CFN_LAST_ERROR: &str = "cfn.hawser.io/last-error";
pub const CFN_SPEC_HASH: &str = "cfn.hawser.io/spec-hash";
/// Finalizer the controller adds to every object with a stack.
pub const CFN_FINALIZER: &str = "cfn.hawser.io/cleanup";

/// Host-list keys, whose normalised value the webhook patches back.
pub const HOST_LIST_KEYS: &[&str] = &[ENV_HOST_NAMES, ROUTING_PUBLIC_HOSTS, ROUTING_PRIVATE_HOSTS];

// CloudFormation custom resources -> objects (`cfn-requests` controller).
// Labels on every object a custom resource deploys: the first is how
// hawser finds them; the others are there when the value fits a label.
pub const CR_ID: &str = "custom-resource.hawser.io/id";
pub const CR_LOGICAL_ID: &str = "custom-resource.hawser.io/logical-id";
pub const CR_STACK_NAME: &str = "custom-resource.hawser.io/stack-name";
// Output annotations on the same objects.
pub const CR_STACK_ID: &str = "custom-resource.hawser.io/stack-id";
pub const CR_REQUEST_ID: &str = "custom-resource.hawser.io/request-id";

// Shared.
pub const DELETION_POLICY: &str = "hawser.io/deletion-policy";
pub const PLAN_ONLY: &str = "hawser.io/plan-only";
// Output, with plan-only.
pub const PLAN: &str = "hawser.io/plan";

// Tag keys (on AWS resources, not annotations); listed here because they
// share the `hawser.io/` prefix and must not be confused with annotations.
pub const TAG_CLUSTER: &str = "hawser.io/cluster";
pub const TAG_OWNER: &str = "hawser.io/owner";
pub const TAG_UID: &str = "hawser.io/uid";

/// The key prefixes (the part before `/`) that hawser owns.
pub const FAMILIES: &[&str] = &[
    "vpce.hawser.io",
    "env.hawser.io",
    "iam.hawser.io",
    "aws.hawser.io",
    "security.hawser.io",
    "routing.hawser.io",
    "cfn.hawser.io",
    "custom-resource.hawser.io",
    "hawser.io",
];

/// Every input key, with the kinds of object it may be set on, in
/// contract order ([`catalog::ALL`], which documents each key).
pub fn inputs() -> impl Iterator<Item = (&'static str, &'static [ObjectKind])> {
    catalog::with_role(Role::Input).map(|d| (d.key, d.on))
}

/// Input keys that may be set on `kind`, in contract order.
pub fn input_keys(kind: ObjectKind) -> impl Iterator<Item = &'static str> {
    inputs()
        .filter(move |(_, kinds)| kinds.contains(&kind))
        .map(|(key, _)| key)
}

/// Keys hawser writes. A user's edit to one is reverted by the controller
/// and denied by the validating webhook; the spec parsers ignore them.
pub fn output_keys() -> impl Iterator<Item = &'static str> {
    catalog::with_role(Role::Output).map(|d| d.key)
}

/// Whether `key` is an output key (written by hawser, not by a user).
pub fn is_output(key: &str) -> bool {
    catalog::find(key).is_some_and(|d| d.role == Role::Output)
}

/// The value of output annotation `key` on an object, if set and not
/// empty (an empty value is a removed output).
pub fn output(ann: &std::collections::BTreeMap<String, String>, key: &str) -> Option<String> {
    ann.get(key).filter(|v| !v.is_empty()).cloned()
}

/// [`output`] of each of `keys`, in order.
pub fn outputs<const N: usize>(
    ann: &std::collections::BTreeMap<String, String>,
    keys: [&str; N],
) -> [Option<String>; N] {
    keys.map(|key| output(ann, key))
}

/// The family (prefix before `/`) of `key` when it is a hawser key:
/// `hawser.io` itself or any `*.hawser.io`. Other keys yield `None`.
pub fn hawser_family(key: &str) -> Option<&str> {
    let (prefix, _) = key.split_once('/')?;
    (prefix == "hawser.io" || prefix.ends_with(".hawser.io")).then_some(prefix)
}
