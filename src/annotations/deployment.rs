//! What a Deployment asks for: routing hosts and keys, a stack, hardening.

use std::collections::BTreeMap;

use super::collect::Annotations;
use super::error::AnnotationError;
use super::keys::{
    ObjectKind, CFN_INJECT_OUTPUTS, CFN_TEMPLATE, CFN_TEMPLATE_CONFIGMAP, DELETION_POLICY,
    PLAN_ONLY, ROUTING_INJECT_KEYS, ROUTING_PRIVATE_HOSTS, ROUTING_PUBLIC_HOSTS, SECURITY_PROFILE,
};
use super::net::parse_host_names;
use super::stack::{read_stack, StackSpec};
use super::values::{
    parse_bool, parse_deletion_policy, parse_security_profile, DeletionPolicy, SecurityProfile,
};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeploymentSpec {
    /// Lower-cased, de-duplicated; `None` when absent.
    pub public_hosts: Option<Vec<String>>,
    pub private_hosts: Option<Vec<String>>,
    /// Inject the namespace's routing keys as environment variables.
    pub inject_keys: bool,
    /// Inject this Deployment's stack outputs (`envFrom` its outputs
    /// ConfigMap). Requires the Deployment's own stack.
    pub inject_outputs: bool,
    pub stack: Option<StackSpec>,
    /// The Deployment's own profile; see [`SecurityProfile::effective`].
    pub profile: Option<SecurityProfile>,
    pub deletion_policy: DeletionPolicy,
    /// `hawser.io/plan-only`: plan the stack, do not act.
    pub plan_only: bool,
}

impl DeploymentSpec {
    /// Reads a Deployment's annotations; every problem is reported.
    pub fn from_annotations(
        ann: &BTreeMap<String, String>,
    ) -> Result<DeploymentSpec, Vec<AnnotationError>> {
        let mut ann = Annotations::new(ann, ObjectKind::Deployment);
        let public_hosts = ann.parse(ROUTING_PUBLIC_HOSTS, parse_host_names);
        let private_hosts = ann.parse(ROUTING_PRIVATE_HOSTS, parse_host_names);
        let inject_keys = ann.parse(ROUTING_INJECT_KEYS, parse_bool);
        let inject_outputs = ann.parse(CFN_INJECT_OUTPUTS, parse_bool);
        let has_template =
            ann.get(CFN_TEMPLATE).is_some() || ann.get(CFN_TEMPLATE_CONFIGMAP).is_some();
        if inject_outputs == Some(true) && !has_template {
            ann.require(
                &[CFN_INJECT_OUTPUTS],
                &format!("{CFN_TEMPLATE} or {CFN_TEMPLATE_CONFIGMAP} on this Deployment"),
            );
        }
        let spec = DeploymentSpec {
            public_hosts,
            private_hosts,
            inject_keys: inject_keys.unwrap_or(false),
            inject_outputs: inject_outputs.unwrap_or(false),
            stack: read_stack(&mut ann),
            profile: ann.parse(SECURITY_PROFILE, parse_security_profile),
            deletion_policy: ann
                .parse(DELETION_POLICY, parse_deletion_policy)
                .unwrap_or_default(),
            plan_only: ann.parse(PLAN_ONLY, parse_bool).unwrap_or(false),
        };
        ann.finish(spec)
    }
}
