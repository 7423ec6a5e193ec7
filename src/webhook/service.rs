//! Admission of Services carrying `vpce.hawser.io/service-name`: the
//! conversion to ExternalName, the finalizer and `state: Pending` on
//! /mutate; syntax, output protection and VPC immutability on /validate.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use kube::core::admission::Operation;
use serde_json::Value;

use super::{
    contract::{self, Decision},
    patch::{self, AnnotationEdits},
    Webhook,
};
use crate::annotations::{keys, ObjectKind, VpceSpec};

/// `spec.externalName` until the controller writes the endpoint's DNS name.
/// `.invalid` is reserved (RFC 2606): it never resolves to anything.
pub const PLACEHOLDER_EXTERNAL_NAME: &str = "pending.vpce.hawser.invalid";

pub struct Input<'a> {
    pub operation: &'a Operation,
    pub username: &'a str,
    pub dry_run: bool,
    pub new: &'a Service,
    pub old: Option<&'a Service>,
    pub controller_usernames: &'a [String],
    /// What an unset `aws.hawser.io/region` on the Service means: its
    /// namespace's, else `--region` (when known).
    pub inherited_region: Option<&'a str>,
}

fn annotations(s: &Service) -> Option<&BTreeMap<String, String>> {
    s.metadata.annotations.as_ref()
}

pub fn decide(webhook: Webhook, input: &Input<'_>) -> Decision {
    match webhook {
        Webhook::Mutate => mutate(input),
        Webhook::Validate => validate(input),
    }
}

fn mutate(input: &Input<'_>) -> Decision {
    let mut d = Decision::default();
    let svc = input.new;
    // Nothing may be added to an object that is being deleted (the
    // apiserver refuses new finalizers then), and the controller's cleanup
    // must not be undone.
    if svc.metadata.deletion_timestamp.is_some() {
        return d;
    }
    let empty = BTreeMap::new();
    let ann = annotations(svc).unwrap_or(&empty);
    let mut edits = AnnotationEdits::new(patch::pointer(["metadata"]), annotations(svc));
    d.warnings.extend(contract::restore_outputs(
        input.old.and_then(annotations),
        annotations(svc),
        input.username,
        input.controller_usernames,
        &mut edits,
    ));

    // Malformed annotations are the validating webhook's to refuse.
    if let Ok(Some(_)) = VpceSpec::from_annotations(ann) {
        let spec = svc.spec.clone().unwrap_or_default();
        if spec.type_.as_deref() != Some("ExternalName") {
            d.patch.push(patch::add(
                patch::pointer(["spec", "type"]),
                "ExternalName".into(),
            ));
            if *input.operation == Operation::Create {
                // Nothing is allocated yet; clear what a manifest may have set
                // explicitly that ExternalName forbids. On UPDATE the
                // apiserver clears the allocated fields itself when the type
                // changes, and removing them here would make the patch fail.
                for field in [
                    "clusterIP",
                    "clusterIPs",
                    "ipFamilies",
                    "ipFamilyPolicy",
                    "externalTrafficPolicy",
                    "healthCheckNodePort",
                ] {
                    if spec_has(&spec, field) {
                        d.patch.push(patch::remove(patch::pointer(["spec", field])));
                    }
                }
                for (i, port) in spec.ports.iter().flatten().enumerate() {
                    if port.node_port.is_some() {
                        d.patch.push(patch::remove(patch::pointer([
                            "spec",
                            "ports",
                            &i.to_string(),
                            "nodePort",
                        ])));
                    }
                }
            }
        }
        if spec.external_name.is_none() {
            // After a conversion, the endpoint's DNS name if hawser already
            // knows it; otherwise a placeholder that resolves nowhere.
            let name = ann
                .get(keys::VPCE_DNS_NAME)
                .map(String::as_str)
                .unwrap_or(PLACEHOLDER_EXTERNAL_NAME);
            d.patch.push(patch::add(
                patch::pointer(["spec", "externalName"]),
                Value::String(name.into()),
            ));
        }
        if let Some(op) =
            patch::ensure_finalizer(svc.metadata.finalizers.as_ref(), keys::VPCE_FINALIZER)
        {
            d.patch.push(op);
        }
        if !ann.contains_key(keys::VPCE_STATE)
            && input
                .old
                .and_then(annotations)
                .and_then(|a| a.get(keys::VPCE_STATE))
                .is_none()
        {
            edits.set(keys::VPCE_STATE, "Pending");
        }
    }
    d.patch.extend(edits.into_ops());
    d
}

fn spec_has(spec: &k8s_openapi::api::core::v1::ServiceSpec, field: &str) -> bool {
    match field {
        "clusterIP" => spec.cluster_ip.is_some(),
        "clusterIPs" => spec.cluster_ips.is_some(),
        "ipFamilies" => spec.ip_families.is_some(),
        "ipFamilyPolicy" => spec.ip_family_policy.is_some(),
        "externalTrafficPolicy" => spec.external_traffic_policy.is_some(),
        "healthCheckNodePort" => spec.health_check_node_port.is_some(),
        _ => false,
    }
}

fn validate(input: &Input<'_>) -> Decision {
    let empty = BTreeMap::new();
    let ann = annotations(input.new).unwrap_or(&empty);
    let old_ann = input.old.and_then(annotations);
    let mut d = contract::annotation_syntax(ObjectKind::Service, ann, input.dry_run);
    d.merge(contract::protect_outputs(
        old_ann,
        ann,
        input.username,
        input.controller_usernames,
    ));

    // The VPC and the region of an existing endpoint cannot change: AWS
    // cannot move an endpoint, and re-creating it elsewhere would change its
    // id and DNS name under the Service's users (and a region change would
    // leave the old endpoint running, unseen, in the old region).
    if let Some(endpoint) = old_ann.and_then(|a| a.get(keys::VPCE_ENDPOINT_ID)) {
        for (key, what) in [(keys::VPCE_VPC_ID, "VPC"), (keys::AWS_REGION, "region")] {
            let before = old_ann.and_then(|a| a.get(key));
            let after = ann.get(key);
            // A region is compared where it sends calls: spelling out the
            // inherited one moves nothing.
            let effective = |v: Option<&String>| match (key == keys::AWS_REGION, v) {
                (true, None) => input.inherited_region.map(str::to_owned),
                (_, v) => v.cloned(),
            };
            if effective(before) != effective(after) {
                let shown = |v: Option<&String>| {
                    v.map(|s| format!("{s:?}"))
                        .unwrap_or_else(|| "unset (the namespace's or controller's default)".into())
                };
                d.denials.push(format!(
                    "annotation {key}: invalid value {}: endpoint {endpoint} already exists in {what} {}, and its {what} cannot change; allowed: the current value. To move the endpoint, delete the Service and create it again",
                    shown(after),
                    shown(before),
                ));
            }
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HAWSER: &str = "system:serviceaccount:hawser-system:hawser";

    fn svc(v: Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    fn input<'a>(
        op: &'a Operation,
        new: &'a Service,
        old: Option<&'a Service>,
        ctl: &'a [String],
    ) -> Input<'a> {
        Input {
            operation: op,
            username: "alice",
            dry_run: false,
            new,
            old,
            controller_usernames: ctl,
            inherited_region: Some("us-west-2"),
        }
    }

    fn apply(s: &Service, d: &Decision) -> Service {
        let mut v = serde_json::to_value(s).unwrap();
        json_patch::patch(&mut v, &d.patch).unwrap();
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn create_becomes_external_name_with_finalizer_and_pending_and_is_idempotent() {
        let ctl = vec![HAWSER.to_string()];
        let s = svc(json!({
            "metadata": {"name": "db", "namespace": "a", "annotations": {"vpce.hawser.io/service-name": "com.amazonaws.us-west-2.s3"}},
            "spec": {"ports": [{"port": 443, "nodePort": 30443}], "clusterIP": "None"}
        }));
        let d = mutate(&input(&Operation::Create, &s, None, &ctl));
        assert_eq!(
            serde_json::to_value(&d.patch).unwrap(),
            json!([
                {"op": "add", "path": "/spec/type", "value": "ExternalName"},
                {"op": "remove", "path": "/spec/clusterIP"},
                {"op": "remove", "path": "/spec/ports/0/nodePort"},
                {"op": "add", "path": "/spec/externalName", "value": "pending.vpce.hawser.invalid"},
                {"op": "add", "path": "/metadata/finalizers", "value": ["vpce.hawser.io/cleanup"]},
                {"op": "add", "path": "/metadata/annotations/vpce.hawser.io~1state", "value": "Pending"},
            ])
        );
        let after = apply(&s, &d);
        assert_eq!(
            mutate(&input(&Operation::Update, &after, Some(&after), &ctl)),
            Decision::default()
        );
    }

    #[test]
    fn update_of_a_cluster_ip_service_changes_only_the_type() {
        let ctl = vec![];
        let old = svc(
            json!({"metadata": {"name": "db"}, "spec": {"type": "ClusterIP", "clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"]}}),
        );
        let new = svc(json!({
            "metadata": {"name": "db", "annotations": {"vpce.hawser.io/service-name": "com.amazonaws.us-west-2.s3"}, "finalizers": ["other"]},
            "spec": {"type": "ClusterIP", "clusterIP": "10.0.0.1", "clusterIPs": ["10.0.0.1"]}
        }));
        let d = mutate(&input(&Operation::Update, &new, Some(&old), &ctl));
        assert_eq!(
            serde_json::to_value(&d.patch).unwrap(),
            json!([
                {"op": "add", "path": "/spec/type", "value": "ExternalName"},
                {"op": "add", "path": "/spec/externalName", "value": "pending.vpce.hawser.invalid"},
                {"op": "add", "path": "/metadata/finalizers/-", "value": "vpce.hawser.io/cleanup"},
                {"op": "add", "path": "/metadata/annotations/vpce.hawser.io~1state", "value": "Pending"},
            ])
        );
    }

    #[test]
    fn nothing_is_added_while_deleting_or_without_the_trigger() {
        let ctl = vec![];
        let deleting = svc(
            json!({"metadata": {"name": "db", "deletionTimestamp": "2026-01-01T00:00:00Z",
            "annotations": {"vpce.hawser.io/service-name": "com.amazonaws.us-west-2.s3"}}, "spec": {}}),
        );
        assert_eq!(
            mutate(&input(&Operation::Update, &deleting, Some(&deleting), &ctl)),
            Decision::default()
        );
        let plain = svc(json!({"metadata": {"name": "web"}, "spec": {}}));
        assert_eq!(
            mutate(&input(&Operation::Create, &plain, None, &ctl)),
            Decision::default()
        );
    }

    #[test]
    fn vpc_is_immutable_once_the_endpoint_exists() {
        let ctl = vec![];
        let old = svc(json!({"metadata": {"name": "db", "annotations": {
            "vpce.hawser.io/service-name": "com.amazonaws.us-west-2.s3", "vpce.hawser.io/vpc-id": "vpc-0a1b2c3d", "vpce.hawser.io/endpoint-id": "vpce-0123456789abcdef0"}}}));
        let mut new = old.clone();
        new.metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert("vpce.hawser.io/vpc-id".into(), "vpc-0a1b2c3e".into());
        let d = validate(&input(&Operation::Update, &new, Some(&old), &ctl));
        assert_eq!(
            d.denials,
            vec![
                r#"annotation vpce.hawser.io/vpc-id: invalid value "vpc-0a1b2c3e": endpoint vpce-0123456789abcdef0 already exists in VPC "vpc-0a1b2c3d", and its VPC cannot change; allowed: the current value. To move the endpoint, delete the Service and create it again"#
            ]
        );
        assert!(validate(&input(&Operation::Update, &old, Some(&old), &ctl))
            .denials
            .is_empty());
    }

    #[test]
    fn the_region_may_be_spelled_out_but_not_moved_once_the_endpoint_exists() {
        let ctl = vec![];
        let old = svc(json!({"metadata": {"name": "db", "annotations": {
            "vpce.hawser.io/service-name": "com.amazonaws.us-west-2.s3", "vpce.hawser.io/endpoint-id": "vpce-0123456789abcdef0"}}}));
        let with_region = |region: &str| {
            let mut new = old.clone();
            new.metadata
                .annotations
                .as_mut()
                .unwrap()
                .insert("aws.hawser.io/region".into(), region.into());
            new
        };
        let same = with_region("us-west-2");
        assert!(
            validate(&input(&Operation::Update, &same, Some(&old), &ctl))
                .denials
                .is_empty()
        );
        let moved = with_region("eu-west-1");
        let d = validate(&input(&Operation::Update, &moved, Some(&old), &ctl));
        assert_eq!(d.denials.len(), 1, "{:?}", d.denials);
        assert!(
            d.denials[0].starts_with(r#"annotation aws.hawser.io/region: invalid value "eu-west-1": endpoint vpce-0123456789abcdef0 already exists in region unset"#),
            "{}",
            d.denials[0]
        );
    }
}
