//! Annotation keys → typed, validated specs. Pure: no I/O, no Kubernetes
//! types; the webhook and the controller both start here.
//!
//! Values are strings. A list is comma-separated (blanks around items
//! ignored) unless said otherwise; a boolean is exactly `"true"` or
//! `"false"`. Any key under `hawser.io/` or `*.hawser.io/` that is not
//! below is refused, as is a key set on the wrong kind of object or
//! without the key it depends on. Every refusal names the annotation, the
//! value, what is wrong and what is allowed ([`AnnotationError`]).
//!
//! # Inputs
//!
//! | key | on | meaning | default |
//! |---|---|---|---|
//! | `vpce.hawser.io/service-name` | Service | **trigger**: create an interface VPC endpoint to this service: `com.amazonaws.<region>.<service>`, `com.amazonaws.vpce.<region>.vpce-svc-<id>`, `cn.com.amazonaws.<region>.<service>`, `aws.sagemaker.<region>.notebook\|studio` | — |
//! | `vpce.hawser.io/vpc-id` | Service | VPC of the endpoint, `vpc-` + 8 or 17 hex digits; immutable once the endpoint exists | controller's `--default-vpc-id` |
//! | `vpce.hawser.io/subnet-ids` | Service | 1–16 distinct subnet ids | controller's default subnets |
//! | `vpce.hawser.io/security-group-ids` | Service | 1–5 distinct security group ids, attached and never deleted | absent: one generated group, deleted with the endpoint |
//! | `vpce.hawser.io/allowed-cidrs` | Service | 1–50 IPv4/IPv6 CIDRs the generated group admits (all protocols); not with `security-group-ids` | `10.0.0.0/8,172.16.0.0/12,192.168.0.0/16` |
//! | `vpce.hawser.io/private-dns` | Service | enable the endpoint's private DNS | `false` |
//! | `aws.hawser.io/region` | Namespace, Service | region for the namespace's AWS calls; on a Service, overrides it for that endpoint | controller's region |
//! | `aws.hawser.io/role-arn` | Namespace | IAM role assumed for every AWS call for the namespace's objects | controller's own identity |
//! | `env.hawser.io/host-names` | Namespace | space-separated host names (RFC 1123) or IP addresses; lower-cased and de-duplicated by the webhook | — |
//! | `env.hawser.io/routing-secret` | Namespace | create Secret `routing` with `public-api-key` and `private-api-key` (32 random bytes, base64), once | `false` |
//! | `env.hawser.io/rotate-keys` | Namespace | any value (≤253 chars); each change rotates both keys once; needs `routing-secret: "true"` | — |
//! | `iam.hawser.io/role-arn` | Namespace | IAM role mapped in `kube-system/aws-auth` and bound in the namespace | — |
//! | `iam.hawser.io/username` | Namespace | Kubernetes username for that role (≤128, no blanks or commas; `{{SessionName}}`, `{{SessionNameRaw}}`, `{{AccountID}}`); needs `iam.hawser.io/role-arn` | `hawser:<namespace>:{{SessionName}}` |
//! | `iam.hawser.io/groups` | Namespace | 1–20 groups bound to `--iam-cluster-role`; `system:` groups only with `--allow-system-groups`; needs `iam.hawser.io/role-arn` | none |
//! | `security.hawser.io/allow-privileged` | Namespace | allow `privileged: true` containers | `false` |
//! | `security.hawser.io/profile` | Namespace, Deployment | `restricted` (no privilege escalation, drop ALL capabilities, RuntimeDefault seccomp, non-root) or `baseline` (privileged rule only); the stricter of namespace and Deployment applies | `baseline` |
//! | `routing.hawser.io/public-hosts` | Deployment | host list like `env.hawser.io/host-names`, copied onto the pod template | — |
//! | `routing.hawser.io/private-hosts` | Deployment | likewise | — |
//! | `routing.hawser.io/inject-keys` | Deployment | env `ROUTING_PUBLIC_API_KEY`/`ROUTING_PRIVATE_API_KEY` from Secret `routing` | `false` |
//! | `cfn.hawser.io/template` | Namespace, Deployment | **trigger**: inline JSON or YAML template with a `Resources` section, ≤51,200 bytes | — |
//! | `cfn.hawser.io/template-configmap` | Namespace, Deployment | **trigger**, instead of `template`: `<configmap>[/<key>]` in the same namespace | key `template` |
//! | `cfn.hawser.io/parameters` | Namespace, Deployment | JSON object of parameter values (strings, numbers, booleans, arrays for CommaDelimitedList); needs a template | none |
//! | `cfn.hawser.io/capabilities` | Namespace, Deployment | `CAPABILITY_IAM`, `CAPABILITY_NAMED_IAM`, `CAPABILITY_AUTO_EXPAND`; needs a template | none |
//! | `cfn.hawser.io/outputs-configmap` | Namespace, Deployment | ConfigMap receiving the stack outputs; needs a template | `<object>-stack-outputs` |
//! | `cfn.hawser.io/inject-outputs` | Deployment | `envFrom` the Deployment's outputs ConfigMap; needs a template on the Deployment | `false` |
//! | `hawser.io/deletion-policy` | all | `retain` keeps AWS resources when the object is deleted; `delete` removes what hawser created | `delete` |
//!
//! On a Service, every hawser key other than `vpce.hawser.io/service-name`
//! needs that trigger.
//!
//! # Outputs (written by hawser; ignored by these parsers)
//!
//! | key | on | meaning |
//! |---|---|---|
//! | `vpce.hawser.io/state` | Service | `Pending`, `Available`, `Failed` or `Deleting` |
//! | `vpce.hawser.io/endpoint-id` | Service | the endpoint's id |
//! | `vpce.hawser.io/dns-name` | Service | the endpoint's first DNS entry (also `spec.externalName`) |
//! | `vpce.hawser.io/security-group-id` | Service | the generated security group's id |
//! | `env.hawser.io/rotated-keys` | Namespace | the `rotate-keys` value last acted on |
//! | `cfn.hawser.io/stack-id` | Namespace, Deployment | the stack's id |
//! | `cfn.hawser.io/stack-status` | Namespace, Deployment | the stack's status |
//! | `cfn.hawser.io/last-error` | Namespace, Deployment | the last stack failure |
//! | `cfn.hawser.io/spec-hash` | Namespace, Deployment | hash of the spec the stack holds |
//!
//! Finalizer: `vpce.hawser.io/cleanup` on Services with an endpoint.

mod aws_ids;
mod cfn;
mod collect;
mod deployment;
mod error;
mod iam;
pub mod keys;
mod namespace;
mod net;
mod stack;
mod values;
mod vpce;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

pub use aws_ids::{
    is_region, parse_region, parse_role_arn, parse_security_group_ids, parse_subnet_ids,
    parse_vpc_id, parse_vpce_service_name, RoleArn, PARTITIONS,
};
pub use cfn::{
    default_outputs_configmap, is_configmap_key, parse_capabilities, parse_configmap_name,
    parse_inline_template, parse_parameters, parse_template_configmap, Capability, ConfigMapRef,
    TemplateSource, DEFAULT_TEMPLATE_KEY, MAX_PARAMETERS, PARAMETER_VALUE_MAX_BYTES,
    TEMPLATE_BODY_MAX_BYTES,
};
pub use deployment::DeploymentSpec;
pub use error::AnnotationError;
pub use iam::{
    default_iam_username, is_system_group, is_system_username, parse_iam_groups,
    parse_iam_username, USERNAME_TEMPLATES,
};
pub use keys::ObjectKind;
pub use namespace::{IamMappingSpec, NamespaceSpec};
pub use net::{normalize_host_names, parse_cidrs, parse_host_names, DEFAULT_ALLOWED_CIDRS};
pub use stack::StackSpec;
pub use values::{
    is_dns1123_label, is_dns1123_subdomain, parse_bool, parse_deletion_policy, parse_rotate_keys,
    parse_security_profile, DeletionPolicy, SecurityProfile,
};
pub use vpce::{SecurityGroups, VpceSpec};

/// Every problem with the hawser annotations of an object of `kind`, for
/// the validating webhook; empty when they are all acceptable.
pub fn check_annotations(kind: ObjectKind, ann: &BTreeMap<String, String>) -> Vec<AnnotationError> {
    let result = match kind {
        ObjectKind::Service => VpceSpec::from_annotations(ann).map(drop),
        ObjectKind::Namespace => NamespaceSpec::from_annotations(ann).map(drop),
        ObjectKind::Deployment => DeploymentSpec::from_annotations(ann).map(drop),
    };
    result.err().unwrap_or_default()
}
