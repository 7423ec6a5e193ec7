//! Admission of Deployments: hardening, routing and injection on /mutate;
//! syntax, output protection and the privileged guard on /validate.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;

use super::{
    contract::{self, Decision},
    hardening::{self, Policy},
    patch::{self, AnnotationEdits},
    workload, Webhook,
};
use crate::{annotations::ObjectKind, namespaces::NamespaceInfo};

pub struct Input<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
    pub username: &'a str,
    pub dry_run: bool,
    pub new: &'a Deployment,
    pub old: Option<&'a Deployment>,
    pub ns: Option<&'a NamespaceInfo>,
    pub allow_privileged_containers: bool,
    pub controller_usernames: &'a [String],
}

fn annotations(d: &Deployment) -> Option<&BTreeMap<String, String>> {
    d.metadata.annotations.as_ref()
}

pub fn decide(webhook: Webhook, input: &Input<'_>) -> Decision {
    let policy = Policy::resolve(
        input.allow_privileged_containers,
        input.ns.map(|n| &n.annotations),
        annotations(input.new),
    );
    let pod_spec = input
        .new
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref());
    match webhook {
        Webhook::Mutate => {
            let mut d = Decision::default();
            let mut edits =
                AnnotationEdits::new(patch::pointer(["metadata"]), annotations(input.new));
            d.warnings.extend(contract::restore_outputs(
                input.old.and_then(annotations),
                annotations(input.new),
                input.username,
                input.controller_usernames,
                &mut edits,
            ));
            d.patch.extend(edits.into_ops());
            if let Some(pod_spec) = pod_spec {
                let hardened = hardening::harden(
                    pod_spec,
                    &patch::pointer(["spec", "template", "spec"]),
                    policy,
                    input.namespace,
                );
                d.patch.extend(hardened.patch);
                d.warnings.extend(hardened.warnings);
            }
            d.merge(workload::mutate(input.new, input.old));
            d
        }
        Webhook::Validate => {
            let empty = BTreeMap::new();
            let ann = annotations(input.new).unwrap_or(&empty);
            let mut d = contract::annotation_syntax(ObjectKind::Deployment, ann, input.dry_run);
            d.merge(contract::protect_outputs(
                input.old.and_then(annotations),
                ann,
                input.username,
                input.controller_usernames,
            ));
            if let Some(pod_spec) = pod_spec {
                d.denials.extend(hardening::privileged_violations(
                    pod_spec,
                    policy,
                    "Deployment",
                    input.name,
                    input.namespace,
                ));
            }
            d
        }
    }
}
