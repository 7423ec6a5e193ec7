//! Deployment mutations besides hardening: routing hosts copied onto the
//! pod template, the routing keys and the stack outputs injected into the
//! containers. Each is undone when its annotation is taken away.

use std::collections::BTreeMap;

use k8s_openapi::api::{apps::v1::Deployment, core::v1::Container};
use serde_json::json;

use super::{
    contract::Decision,
    patch::{self, AnnotationEdits},
};
use crate::annotations::{keys, normalize_host_names, DeploymentSpec};

/// The Secret the namespace controller keeps the routing keys in.
pub const ROUTING_SECRET: &str = "routing";
pub const PUBLIC_KEY_ENV: (&str, &str) = ("ROUTING_PUBLIC_API_KEY", "public-api-key");
pub const PRIVATE_KEY_ENV: (&str, &str) = ("ROUTING_PRIVATE_API_KEY", "private-api-key");

fn annotations(d: &Deployment) -> Option<&BTreeMap<String, String>> {
    d.metadata.annotations.as_ref()
}

fn spec_of(d: &Deployment) -> Option<DeploymentSpec> {
    DeploymentSpec::from_annotations(annotations(d)?).ok()
}

/// `new` as admitted, `old` on UPDATE. Malformed annotations produce no
/// patch here; the validating webhook refuses them.
pub fn mutate(new: &Deployment, old: Option<&Deployment>) -> Decision {
    let mut d = Decision::default();
    let Some(spec) = spec_of(new) else { return d };
    let old_spec = old.and_then(spec_of).unwrap_or_default();
    let name = new.metadata.name.clone().unwrap_or_default();
    let Some(template) = new.spec.as_ref().map(|s| &s.template) else {
        return d;
    };

    // Routing hosts: normalised on the Deployment, copied to the template.
    let mut own = AnnotationEdits::new(patch::pointer(["metadata"]), annotations(new));
    let mut tpl = AnnotationEdits::new(
        patch::pointer(["spec", "template", "metadata"]),
        template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.as_ref()),
    );
    for key in [keys::ROUTING_PUBLIC_HOSTS, keys::ROUTING_PRIVATE_HOSTS] {
        match annotations(new).and_then(|a| a.get(key)) {
            Some(value) => {
                if let Ok(normalized) = normalize_host_names(key, value) {
                    own.set(key, &normalized);
                    tpl.set(key, &normalized);
                }
            }
            None if old
                .and_then(annotations)
                .is_some_and(|a| a.contains_key(key)) =>
            {
                tpl.unset(key)
            }
            None => {}
        }
    }
    d.patch.extend(own.into_ops());
    // The template's metadata may be absent altogether.
    if template.metadata.is_none() {
        let ops = tpl.into_ops();
        if !ops.is_empty() {
            d.patch.push(patch::add(
                patch::pointer(["spec", "template", "metadata"]),
                json!({}),
            ));
            d.patch.extend(ops);
        }
    } else {
        d.patch.extend(tpl.into_ops());
    }

    let outputs = spec.stack.as_ref().map(|s| s.outputs_configmap_name(&name));
    let old_outputs = old_spec
        .stack
        .as_ref()
        .map(|s| s.outputs_configmap_name(&name));
    let containers = template
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();
    for (i, c) in containers.iter().enumerate() {
        let base = patch::pointer(["spec", "template", "spec", "containers", &i.to_string()]);
        if spec.inject_keys {
            d.patch.extend(inject_keys(c, &base));
        } else if old_spec.inject_keys {
            d.patch.extend(remove_keys(c, &base));
        }
        match (spec.inject_outputs, &outputs) {
            (true, Some(cm)) => d.patch.extend(inject_env_from(c, &base, cm)),
            _ if old_spec.inject_outputs => {
                if let Some(cm) = &old_outputs {
                    d.patch.extend(remove_env_from(c, &base, cm));
                }
            }
            _ => {}
        }
    }
    d
}

fn inject_keys(
    c: &Container,
    base: &json_patch::jsonptr::PointerBuf,
) -> Vec<json_patch::PatchOperation> {
    let existing: Vec<&str> = c.env.iter().flatten().map(|e| e.name.as_str()).collect();
    let wanted: Vec<_> = [PUBLIC_KEY_ENV, PRIVATE_KEY_ENV]
        .into_iter()
        .filter(|(name, _)| !existing.contains(name))
        .map(|(name, key)| json!({"name": name, "valueFrom": {"secretKeyRef": {"name": ROUTING_SECRET, "key": key}}}))
        .collect();
    append(c.env.is_some(), base, "env", wanted)
}

fn remove_keys(
    c: &Container,
    base: &json_patch::jsonptr::PointerBuf,
) -> Vec<json_patch::PatchOperation> {
    let ours = |e: &k8s_openapi::api::core::v1::EnvVar| {
        [PUBLIC_KEY_ENV.0, PRIVATE_KEY_ENV.0].contains(&e.name.as_str())
            && e.value_from
                .as_ref()
                .and_then(|v| v.secret_key_ref.as_ref())
                .is_some_and(|s| s.name == ROUTING_SECRET)
    };
    remove_where(c.env.iter().flatten().map(ours), base, "env")
}

fn inject_env_from(
    c: &Container,
    base: &json_patch::jsonptr::PointerBuf,
    cm: &str,
) -> Vec<json_patch::PatchOperation> {
    let present = c
        .env_from
        .iter()
        .flatten()
        .any(|e| e.config_map_ref.as_ref().is_some_and(|r| r.name == cm));
    if present {
        return Vec::new();
    }
    append(
        c.env_from.is_some(),
        base,
        "envFrom",
        vec![json!({"configMapRef": {"name": cm}})],
    )
}

fn remove_env_from(
    c: &Container,
    base: &json_patch::jsonptr::PointerBuf,
    cm: &str,
) -> Vec<json_patch::PatchOperation> {
    let ours = |e: &k8s_openapi::api::core::v1::EnvFromSource| {
        e.config_map_ref.as_ref().is_some_and(|r| r.name == cm)
    };
    remove_where(c.env_from.iter().flatten().map(ours), base, "envFrom")
}

/// Appends `items` to the list `field` of the container at `base`.
fn append(
    exists: bool,
    base: &json_patch::jsonptr::PointerBuf,
    field: &str,
    items: Vec<serde_json::Value>,
) -> Vec<json_patch::PatchOperation> {
    if items.is_empty() {
        Vec::new()
    } else if exists {
        items
            .into_iter()
            .map(|v| patch::add(patch::child(base, &[field, "-"]), v))
            .collect()
    } else {
        vec![patch::add(
            patch::child(base, &[field]),
            serde_json::Value::Array(items),
        )]
    }
}

/// Removes the entries of list `field` for which `matches` is true, from
/// the last to the first so earlier indices stay valid.
fn remove_where(
    matches: impl Iterator<Item = bool>,
    base: &json_patch::jsonptr::PointerBuf,
    field: &str,
) -> Vec<json_patch::PatchOperation> {
    let idx: Vec<usize> = matches
        .enumerate()
        .filter(|(_, m)| *m)
        .map(|(i, _)| i)
        .collect();
    idx.into_iter()
        .rev()
        .map(|i| patch::remove(patch::child(base, &[field, &i.to_string()])))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn deployment(annotations: Value, containers: Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "annotations": annotations},
            "spec": {"selector": {}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}}}
        }))
        .unwrap()
    }

    fn apply(d: &Deployment, dec: &Decision) -> Deployment {
        let mut v = serde_json::to_value(d).unwrap();
        json_patch::patch(&mut v, &dec.patch).unwrap();
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn hosts_keys_and_outputs_are_injected_once_and_removed_when_turned_off() {
        let on = deployment(
            json!({
                "routing.hawser.io/public-hosts": "WWW.example.com www.example.com",
                "routing.hawser.io/inject-keys": "true",
                "cfn.hawser.io/template": "{\"Resources\": {\"Q\": {\"Type\": \"AWS::SQS::Queue\"}}}",
                "cfn.hawser.io/inject-outputs": "true"
            }),
            json!([
                {"name": "app", "image": "x", "env": [{"name": "ROUTING_PUBLIC_API_KEY", "value": "mine"}]},
                {"name": "sidecar", "image": "y"}
            ]),
        );
        let d = mutate(&on, None);
        assert_eq!(
            serde_json::to_value(&d.patch).unwrap(),
            json!([
                {"op": "add", "path": "/metadata/annotations/routing.hawser.io~1public-hosts", "value": "www.example.com"},
                {"op": "add", "path": "/spec/template/metadata/annotations", "value": {"routing.hawser.io/public-hosts": "www.example.com"}},
                {"op": "add", "path": "/spec/template/spec/containers/0/env/-", "value":
                    {"name": "ROUTING_PRIVATE_API_KEY", "valueFrom": {"secretKeyRef": {"name": "routing", "key": "private-api-key"}}}},
                {"op": "add", "path": "/spec/template/spec/containers/0/envFrom", "value": [{"configMapRef": {"name": "web-stack-outputs"}}]},
                {"op": "add", "path": "/spec/template/spec/containers/1/env", "value": [
                    {"name": "ROUTING_PUBLIC_API_KEY", "valueFrom": {"secretKeyRef": {"name": "routing", "key": "public-api-key"}}},
                    {"name": "ROUTING_PRIVATE_API_KEY", "valueFrom": {"secretKeyRef": {"name": "routing", "key": "private-api-key"}}}]},
                {"op": "add", "path": "/spec/template/spec/containers/1/envFrom", "value": [{"configMapRef": {"name": "web-stack-outputs"}}]},
            ])
        );
        let injected = apply(&on, &d);
        assert_eq!(
            mutate(&injected, Some(&injected)),
            Decision::default(),
            "idempotent"
        );

        // Turned off: hawser's additions go, the user's own env var stays.
        let mut off = injected.clone();
        off.metadata.annotations = Some(BTreeMap::new());
        let removed = apply(&off, &mutate(&off, Some(&injected)));
        let tpl = removed.spec.unwrap().template;
        assert!(tpl.metadata.unwrap().annotations.unwrap().is_empty());
        let c = tpl.spec.unwrap().containers;
        assert_eq!(
            c[0].env
                .as_ref()
                .unwrap()
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>(),
            vec!["ROUTING_PUBLIC_API_KEY"]
        );
        assert!(c[0].env_from.as_ref().unwrap().is_empty());
        assert!(c[1].env.as_ref().unwrap().is_empty());
    }

    #[test]
    fn malformed_annotations_produce_no_patch() {
        let d = deployment(
            json!({"routing.hawser.io/inject-keys": "yes"}),
            json!([{"name": "a", "image": "x"}]),
        );
        assert_eq!(mutate(&d, None), Decision::default());
    }
}
