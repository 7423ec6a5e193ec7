//! The contract's one table: every key in [`keys`](super::keys) with its
//! role, the kinds of object it belongs on and its documentation. The
//! parsers and the webhook take the inputs, outputs and their kinds from
//! here, and a unit test renders `docs/annotations.md` from it (`hack/gen.sh`
//! regenerates the file; CI fails when it is stale). Meanings, defaults
//! and examples are Markdown, relative to `docs/`.

use super::keys::ObjectKind::{self, Deployment, Namespace, Service};
use super::keys::*;

/// What a key is to hawser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An annotation a user sets.
    Input,
    /// An annotation hawser writes; only hawser's identity may change it.
    Output,
    /// A finalizer hawser adds and removes.
    Finalizer,
    /// A tag hawser puts on the AWS resources it creates.
    Tag,
}

/// One key and what the reference says about it.
#[derive(Debug, Clone, Copy)]
pub struct KeyDoc {
    pub key: &'static str,
    pub role: Role,
    /// The kinds of object the key may be set on (for an input), or that
    /// carry it; empty for a tag.
    pub on: &'static [ObjectKind],
    /// What it means and which values are allowed.
    pub meaning: &'static str,
    /// The value when the key is absent; empty when there is none to tell.
    pub default: &'static str,
    /// Files under `examples/` that set it.
    pub examples: &'static [&'static str],
}

const fn input(
    key: &'static str,
    on: &'static [ObjectKind],
    meaning: &'static str,
    default: &'static str,
    examples: &'static [&'static str],
) -> KeyDoc {
    KeyDoc {
        key,
        role: Role::Input,
        on,
        meaning,
        default,
        examples,
    }
}

const fn other(
    key: &'static str,
    role: Role,
    on: &'static [ObjectKind],
    meaning: &'static str,
) -> KeyDoc {
    KeyDoc {
        key,
        role,
        on,
        meaning,
        default: "",
        examples: &[],
    }
}

const VPCE_EXAMPLE: &[&str] = &["vpce/annotations.yaml"];
const ENV_EXAMPLE: &[&str] = &["environment/namespace.yaml"];
const ROUTING_EXAMPLE: &[&str] = &["routing/deployment.yaml"];
const NS_STACK_EXAMPLE: &[&str] = &["stack/namespace-stack.yaml"];
const STACKS: &[ObjectKind] = &[Namespace, Deployment];

/// Every key, grouped by family in the order of [`FAMILIES`].
pub const ALL: &[KeyDoc] = &[
    input(
        VPCE_SERVICE_NAME,
        &[Service],
        "**trigger**: an interface VPC endpoint to `com.amazonaws.<region>.<service>`, \
         `com.amazonaws.vpce.<region>.vpce-svc-<id>`, `cn.com.amazonaws.<region>.<service>` or \
         `aws.sagemaker.<region>.notebook\\|studio`; every other hawser key on a Service needs it; \
         a new value replaces the endpoint",
        "—",
        &["vpce/annotations.yaml", "vpce/service.yaml"],
    ),
    input(
        VPCE_VPC_ID,
        &[Service],
        "VPC of the endpoint, `vpc-` + 8 or 17 hex digits; changing it re-creates the endpoint, \
         and the webhook refuses the change once `vpce.hawser.io/endpoint-id` is set",
        "`--default-vpc-id`",
        VPCE_EXAMPLE,
    ),
    input(
        VPCE_SUBNET_IDS,
        &[Service],
        "1–16 distinct `subnet-…` ids (changed in place)",
        "`--default-subnet-ids`",
        VPCE_EXAMPLE,
    ),
    input(
        VPCE_SECURITY_GROUP_IDS,
        &[Service],
        "provided mode: 1–5 distinct `sg-…` ids, attached as they are and never modified or \
         deleted",
        "absent: generated mode, one group deleted with the endpoint",
        VPCE_EXAMPLE,
    ),
    input(
        VPCE_ALLOWED_CIDRS,
        &[Service],
        "generated mode: 1–50 IPv4/IPv6 CIDRs the generated group admits (all protocols); not \
         with `security-group-ids`",
        "`10.0.0.0/8,172.16.0.0/12,192.168.0.0/16`",
        VPCE_EXAMPLE,
    ),
    input(
        VPCE_PRIVATE_DNS,
        &[Service],
        "enable the endpoint's private DNS (changed in place)",
        "`false`",
        VPCE_EXAMPLE,
    ),
    other(
        VPCE_STATE,
        Role::Output,
        &[Service],
        "`Pending` (set by the mutating webhook on a new Service), `Available`, `Failed` or \
         `Deleting`",
    ),
    other(VPCE_ENDPOINT_ID, Role::Output, &[Service], "the endpoint's id"),
    other(
        VPCE_DNS_NAME,
        Role::Output,
        &[Service],
        "the endpoint's first DNS name (also `spec.externalName`)",
    ),
    other(
        VPCE_SECURITY_GROUP_ID,
        Role::Output,
        &[Service],
        "the generated security group's id (generated mode)",
    ),
    other(
        VPCE_FINALIZER,
        Role::Finalizer,
        &[Service],
        "added by the webhook and the `vpce` controller to a Service with the trigger; removed \
         once its endpoint and generated group are cleaned up (deleted, or retained)",
    ),
    input(
        ENV_HOST_NAMES,
        &[Namespace],
        "space-delimited RFC 1123 host names or IPv4/IPv6 addresses; the webhook lower-cases and \
         de-duplicates them",
        "—",
        ENV_EXAMPLE,
    ),
    input(
        ENV_ROUTING_SECRET,
        &[Namespace],
        "keep a Secret `routing` with `public-api-key` and `private-api-key` (32 random bytes \
         each, base64), created once and never overwritten",
        "`false`",
        ENV_EXAMPLE,
    ),
    input(
        ENV_ROTATE_KEYS,
        &[Namespace],
        "any value (≤ 253 chars); each change rotates both keys once; needs \
         `routing-secret: \"true\"`",
        "—",
        ENV_EXAMPLE,
    ),
    other(
        ENV_ROTATED_KEYS,
        Role::Output,
        &[Namespace],
        "the `rotate-keys` value last acted on",
    ),
    input(
        IAM_ROLE_ARN,
        &[Namespace],
        "IAM role ARN (any partition) mapped in `kube-system/aws-auth` and bound in the namespace \
         (RoleBinding `hawser-iam`); one namespace per role",
        "—",
        ENV_EXAMPLE,
    ),
    input(
        IAM_USERNAME,
        &[Namespace],
        "Kubernetes username for the role (≤ 128, no blanks or commas; `{{SessionName}}`, \
         `{{SessionNameRaw}}`, `{{AccountID}}`; `system:` only with `--allow-system-groups`); \
         needs `iam.hawser.io/role-arn`",
        "`hawser:<namespace>:{{SessionName}}`",
        ENV_EXAMPLE,
    ),
    input(
        IAM_GROUPS,
        &[Namespace],
        "1–20 groups, each bound to the ClusterRole `--iam-cluster-role`; `system:` groups only \
         with `--allow-system-groups`; needs `iam.hawser.io/role-arn`",
        "none",
        ENV_EXAMPLE,
    ),
    other(
        IAM_FINALIZER,
        Role::Finalizer,
        &[Namespace],
        "added by the `namespace` controller to a namespace that maps a role, so its `aws-auth` \
         entry cannot outlive it",
    ),
    input(
        AWS_ROLE_ARN,
        &[Namespace],
        "IAM role assumed (STS AssumeRole) for every AWS call for the namespace's objects: its \
         Services' endpoints, its own stack and its Deployments' stacks",
        "hawser's own identity",
        ENV_EXAMPLE,
    ),
    input(
        AWS_REGION,
        &[Namespace, Service],
        "region for the namespace's AWS resources (endpoints and stacks); a Service's value \
         overrides its namespace's for its endpoint",
        "`--region`",
        &["environment/namespace.yaml", "vpce/annotations.yaml"],
    ),
    input(
        SECURITY_ALLOW_PRIVILEGED,
        &[Namespace],
        "containers may keep `privileged: true`",
        "`false`",
        &["hardening/privileged-namespace.yaml"],
    ),
    input(
        SECURITY_PROFILE,
        &[Namespace, Deployment],
        "`restricted` (no privilege escalation, drop ALL capabilities, RuntimeDefault seccomp, \
         non-root) or `baseline` (the privileged rule only); the stricter of namespace and \
         Deployment applies",
        "`baseline`",
        &["hardening/restricted-deployment.yaml", "environment/namespace.yaml"],
    ),
    input(
        ROUTING_PUBLIC_HOSTS,
        &[Deployment],
        "host list (space-delimited, like `env.hawser.io/host-names`), normalised and copied onto \
         the pod template's annotations",
        "—",
        ROUTING_EXAMPLE,
    ),
    input(
        ROUTING_PRIVATE_HOSTS,
        &[Deployment],
        "likewise",
        "—",
        ROUTING_EXAMPLE,
    ),
    input(
        ROUTING_INJECT_KEYS,
        &[Deployment],
        "every container gets `ROUTING_PUBLIC_API_KEY` and `ROUTING_PRIVATE_API_KEY` from Secret \
         `routing` (`secretKeyRef`); an env var of the same name is left alone",
        "`false`",
        ROUTING_EXAMPLE,
    ),
    input(
        CFN_TEMPLATE,
        STACKS,
        "**trigger**: inline JSON or YAML template (short-form tags such as `!Ref` allowed) with a \
         `Resources` mapping, at most 51,200 bytes (CloudFormation's TemplateBody limit)",
        "—",
        NS_STACK_EXAMPLE,
    ),
    input(
        CFN_TEMPLATE_CONFIGMAP,
        STACKS,
        "**trigger**, instead of `template`: `<configmap>[/<key>]` in the same namespace; an edit \
         of that ConfigMap updates the stack",
        "key `template`",
        &["stack/deployment-stack.yaml"],
    ),
    input(
        CFN_PARAMETERS,
        STACKS,
        "JSON object of parameter values: strings, numbers, booleans or arrays \
         (CommaDelimitedList); at most 200; needs a template",
        "none",
        NS_STACK_EXAMPLE,
    ),
    input(
        CFN_CAPABILITIES,
        STACKS,
        "`CAPABILITY_IAM`, `CAPABILITY_NAMED_IAM`, `CAPABILITY_AUTO_EXPAND`; needs a template",
        "none",
        NS_STACK_EXAMPLE,
    ),
    input(
        CFN_OUTPUTS_CONFIGMAP,
        STACKS,
        "ConfigMap that receives the stack outputs; needs a template",
        "`<object>-stack-outputs`",
        NS_STACK_EXAMPLE,
    ),
    input(
        CFN_INJECT_OUTPUTS,
        &[Deployment],
        "the webhook adds `envFrom` the outputs ConfigMap to every container; needs the \
         Deployment's own template",
        "`false`",
        &["stack/deployment-stack.yaml"],
    ),
    other(CFN_STACK_ID, Role::Output, STACKS, "the stack's id (its ARN)"),
    other(
        CFN_STACK_STATUS,
        Role::Output,
        STACKS,
        "CloudFormation's status as last seen, e.g. `CREATE_COMPLETE`, \
         `UPDATE_ROLLBACK_COMPLETE`, `DELETE_IN_PROGRESS`; `Failed` when hawser has no stack of \
         this object's to report on",
    ),
    other(
        CFN_LAST_ERROR,
        Role::Output,
        STACKS,
        "the last stack failure; present only while the last attempt failed",
    ),
    other(
        CFN_SPEC_HASH,
        Role::Output,
        STACKS,
        "SHA-256 of the template, parameters and capabilities the stack was last created with or \
         brought to",
    ),
    other(
        CFN_FINALIZER,
        Role::Finalizer,
        STACKS,
        "added by the `stack` controller to every object with a stack; removed once the stack is \
         deleted (or retained)",
    ),
    other(
        CR_STACK_ID,
        Role::Output,
        &[Service, Namespace, Deployment],
        "on every object a CloudFormation custom resource deployed (`cfn-requests` controller, \
         [cfn-requests.md](cfn-requests.md)), whatever its kind: the stack's id",
    ),
    other(
        CR_REQUEST_ID,
        Role::Output,
        &[Service, Namespace, Deployment],
        "on the same objects: the CloudFormation request that last applied it; a redelivered \
         request with this id is not applied again",
    ),
    input(
        DELETION_POLICY,
        &[Service, Namespace, Deployment],
        "`retain` keeps the AWS resources (an endpoint and its generated group, a stack) when the \
         object is deleted; `delete` removes what hawser created",
        "`delete`",
        &["vpce/annotations.yaml", "stack/deployment-stack.yaml"],
    ),
    input(
        PLAN_ONLY,
        &[Service, Namespace, Deployment],
        "`\"true\"`: the controllers work out what they would do in AWS and record it in \
         `hawser.io/plan` and a `Planned` Event, making no AWS call that changes anything (not \
         even on deletion, which waits); remove it, or `\"false\"`, to let them act",
        "`\"false\"`",
        &["vpce/plan-only.yaml"],
    ),
    other(
        PLAN,
        Role::Output,
        &[Service, Namespace, Deployment],
        "with `hawser.io/plan-only`: the AWS actions the controller would take, as a JSON list \
         of `{action, resource, id, detail}` (`[]`: none); removed once the object may act",
    ),
    other(
        TAG_CLUSTER,
        Role::Tag,
        &[],
        "`--cluster-name`; the IAM policy scopes most of hawser's writes by it ([iam.md](iam.md))",
    ),
    other(
        TAG_OWNER,
        Role::Tag,
        &[],
        "the object: `Service/<namespace>/<name>`, `Namespace//<name>` or \
         `Deployment/<namespace>/<name>`",
    ),
    other(TAG_UID, Role::Tag, &[], "the object's uid"),
];

/// The entry for `key`, if it is in the contract.
pub fn find(key: &str) -> Option<&'static KeyDoc> {
    ALL.iter().find(|d| d.key == key)
}

/// Every key of `role`, in contract order.
pub fn with_role(role: Role) -> impl Iterator<Item = &'static KeyDoc> {
    ALL.iter().filter(move |d| d.role == role)
}
