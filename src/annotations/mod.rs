//! Annotation keys → typed, validated specs. Pure: no I/O, no Kubernetes
//! types; the webhook and the controller both start here.
//!
//! Values are strings. A list is comma-separated (blanks around items
//! ignored) unless said otherwise; a boolean is exactly `"true"` or
//! `"false"`. Any key under `hawser.io/` or `*.hawser.io/` that is not
//! an input or an output is refused, as is a key set on the wrong kind of
//! object or without the key it depends on. Every refusal names the
//! annotation, the value, what is wrong and what is allowed
//! ([`AnnotationError`]).
//!
//! Every key, with the kinds of object it belongs on, its meaning, its
//! default and an example, is in [`catalog::ALL`], which
//! `docs/annotations.md` is generated from.

mod aws_ids;
pub mod catalog;
mod cfn;
mod collect;
mod deployment;
mod error;
mod iam;
pub mod keys;
mod namespace;
mod net;
mod region;
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
    parse_inline_template, parse_parameters, parse_template_configmap, template_resources,
    Capability, ConfigMapRef, TemplateSource, DEFAULT_TEMPLATE_KEY, MAX_PARAMETERS,
    PARAMETER_VALUE_MAX_BYTES, TEMPLATE_BODY_MAX_BYTES,
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
pub use region::{default_region, effective_region};
pub use stack::StackSpec;
pub use values::{
    cleanup_deletion_policy, is_dns1123_label, is_dns1123_subdomain, parse_bool,
    parse_deletion_policy, parse_rotate_keys, parse_security_profile, DeletionPolicy,
    SecurityProfile,
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
