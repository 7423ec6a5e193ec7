//! The webhook configurations that self-managed mode keeps current: the
//! CA bundle of every entry and, for a configuration the chart rendered
//! inert, its activation.
//!
//! Activation. In self-managed mode the chart renders the mutate and
//! validate entries with a namespaceSelector that matches no namespace,
//! and puts the selector they should have in the configuration's
//! annotation [`NAMESPACE_SELECTOR_ANNOTATION`]. So an install whose pods
//! never serve (an image that cannot be pulled, a crash at start) blocks
//! no write in the cluster. hawser copies the annotation's selector into
//! every entry but the aws-auth guard's (failurePolicy Ignore, never
//! blocking) once it can answer: its serving certificate is loaded and in
//! the caBundle, `/readyz` passes, and, for entries that call a Service,
//! that Service has a ready endpoint. The caBundle and the selector go in
//! one patch, so the apiserver never calls a webhook it cannot trust. It
//! does so again whenever the annotation changes (`helm upgrade`). Once
//! active, a configuration stays active: taking the selector away when a
//! replica stops would open a gap on every rolling update.
//!
//! A configuration without the annotation (`hawser manifests webhook`, a
//! hand-made one) only gets its caBundle.

use std::{collections::BTreeSet, sync::Arc};

use base64::Engine as _;
use k8s_openapi::{api::core::v1::Endpoints, apimachinery::pkg::apis::meta::v1::LabelSelector};
use kube::{
    api::{Patch, PatchParams},
    Api, Client, Resource,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{
    admin::Readiness,
    webhook::patch::{add, pointer},
};

/// The selector the inert entries should have once hawser serves (JSON of
/// a LabelSelector), set by the chart on both configurations.
pub const NAMESPACE_SELECTOR_ANNOTATION: &str = "hawser.io/namespace-selector";

/// Entries whose names start with this keep the selector they were
/// rendered with (the aws-auth guard's: failurePolicy Ignore).
const GUARD_PREFIX: &str = "aws-auth-guard";

/// What one configuration needs.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub ops: Vec<json_patch::PatchOperation>,
    /// Entries whose selector differs from the annotation's, left alone
    /// because activation was not allowed (empty once active).
    pub inactive: Vec<String>,
    /// Services the inactive entries call, as (namespace, name).
    pub services: BTreeSet<(String, String)>,
}

/// The annotation's selector, or `None` without one.
pub fn wanted_selector(config: &Value) -> Result<Option<LabelSelector>, String> {
    let Some(raw) = config["metadata"]["annotations"][NAMESPACE_SELECTOR_ANNOTATION].as_str()
    else {
        return Ok(None);
    };
    serde_json::from_str::<LabelSelector>(raw)
        .map(|s| Some(normalize(s)))
        .map_err(|e| {
            format!(
                "annotation {NAMESPACE_SELECTOR_ANNOTATION}: {raw:?} is not a label selector ({e}); \
                 allowed: JSON like {{\"matchLabels\":{{\"team\":\"a\"}},\"matchExpressions\":[...]}}"
            )
        })
}

/// The apiserver drops empty lists and maps; so does this, so that a
/// selector read back compares equal to the one that was written.
fn normalize(mut s: LabelSelector) -> LabelSelector {
    s.match_labels = s.match_labels.filter(|m| !m.is_empty());
    s.match_expressions = s.match_expressions.filter(|e| !e.is_empty());
    s
}

/// The operations that make `config` trust `bundle_b64` and, when
/// `activate`, admit through the annotation's selector.
pub fn plan(config: &Value, bundle_b64: &str, activate: bool) -> Result<Plan, String> {
    let wanted = wanted_selector(config)?;
    let mut plan = Plan::default();
    let entries = config["webhooks"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for (i, entry) in entries.iter().enumerate() {
        let index = i.to_string();
        if entry["clientConfig"]["caBundle"].as_str() != Some(bundle_b64) {
            plan.ops.push(add(
                pointer(["webhooks", &index, "clientConfig", "caBundle"]),
                Value::String(bundle_b64.to_owned()),
            ));
        }
        let name = entry["name"].as_str().unwrap_or_default();
        let Some(wanted) = wanted.as_ref().filter(|_| !name.starts_with(GUARD_PREFIX)) else {
            continue;
        };
        let current = serde_json::from_value::<LabelSelector>(entry["namespaceSelector"].clone())
            .map(normalize)
            .ok();
        if current.as_ref() == Some(wanted) {
            continue;
        }
        if activate {
            plan.ops.push(add(
                pointer(["webhooks", &index, "namespaceSelector"]),
                serde_json::to_value(wanted).map_err(|e| e.to_string())?,
            ));
        } else {
            plan.inactive.push(name.to_owned());
            let service = &entry["clientConfig"]["service"];
            if let (Some(ns), Some(svc)) = (service["namespace"].as_str(), service["name"].as_str())
            {
                plan.services.insert((ns.to_owned(), svc.to_owned()));
            }
        }
    }
    Ok(plan)
}

/// Whether hawser may activate its webhooks now; `Err` says why not.
pub struct Gate {
    pub readiness: Arc<Readiness>,
    pub client: Client,
}

impl Gate {
    async fn check(&self, services: &BTreeSet<(String, String)>) -> Result<(), String> {
        if !self.readiness.is_ready() {
            return Err("hawser is not ready yet (see /readyz)".into());
        }
        for (ns, name) in services {
            let endpoints: Api<Endpoints> = Api::namespaced(self.client.clone(), ns);
            let ready = match endpoints.get_opt(name).await {
                Ok(e) => e
                    .and_then(|e| e.subsets)
                    .unwrap_or_default()
                    .iter()
                    .any(|s| s.addresses.as_ref().is_some_and(|a| !a.is_empty())),
                Err(e) => {
                    return Err(format!(
                        "cannot read the endpoints of Service {ns}/{name}: {e}"
                    ))
                }
            };
            if !ready {
                return Err(format!("Service {ns}/{name} has no ready endpoint yet"));
            }
        }
        Ok(())
    }
}

/// What a sync did to one configuration.
#[derive(Debug, PartialEq)]
pub enum Synced {
    /// Not there (not installed yet, or removed): nothing to do.
    Absent,
    /// Trusts the bundle; active, or has no annotation.
    Done,
    /// Trusts the bundle; these entries wait for activation.
    Waiting(String),
}

/// Brings the configuration `name` of kind `K` to trust `bundle` and,
/// when the gate allows, to admit through the annotation's selector.
pub async fn sync<K>(
    client: &Client,
    name: &str,
    bundle: &str,
    gate: &Gate,
) -> anyhow::Result<Synced>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::all(client.clone());
    let Some(obj) = api.get_opt(name).await? else {
        return Ok(Synced::Absent);
    };
    let value = serde_json::to_value(&obj)?;
    let want = base64::engine::general_purpose::STANDARD.encode(bundle);
    let mut plan = plan(&value, &want, false).map_err(anyhow::Error::msg)?;
    let mut result = Synced::Done;
    if !plan.inactive.is_empty() {
        match gate.check(&plan.services).await {
            Ok(()) => {
                let entries = plan.inactive.join(", ");
                plan = self::plan(&value, &want, true).map_err(anyhow::Error::msg)?;
                tracing::info!(config = %name, kind = K::kind(&()).as_ref(), %entries,
                    "activating the webhooks: namespaceSelector from {NAMESPACE_SELECTOR_ANNOTATION}");
            }
            Err(why) => result = Synced::Waiting(format!("{}: {why}", plan.inactive.join(", "))),
        }
    }
    if plan.ops.is_empty() {
        return Ok(result);
    }
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::<()>::Json(json_patch::Patch(plan.ops)),
    )
    .await?;
    tracing::info!(config = %name, kind = K::kind(&()).as_ref(), "webhook configuration updated");
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const INERT: &str = r#"{"matchExpressions":[{"key":"hawser.io/inactive","operator":"Exists"},{"key":"hawser.io/inactive","operator":"DoesNotExist"}]}"#;

    fn config(annotation: Option<&str>, selector: &str, bundle: &str) -> Value {
        let entry = |name: &str| {
            json!({
                "name": name,
                "clientConfig": {"caBundle": bundle, "service": {"namespace": "hawser-system", "name": "hawser-webhook"}},
                "namespaceSelector": serde_json::from_str::<Value>(selector).unwrap(),
            })
        };
        let mut annotations = serde_json::Map::new();
        if let Some(a) = annotation {
            annotations.insert(NAMESPACE_SELECTOR_ANNOTATION.into(), a.into());
        }
        json!({
            "metadata": {"name": "hawser", "annotations": annotations},
            "webhooks": [entry("mutate.hawser.io"), entry("aws-auth-guard.hawser.io")],
        })
    }

    fn paths(plan: &Plan) -> Vec<String> {
        plan.ops
            .iter()
            .map(|op| match op {
                json_patch::PatchOperation::Add(a) => a.path.to_string(),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    const REAL: &str = r#"{"matchExpressions":[{"key":"hawser.io/admission","operator":"NotIn","values":["disabled"]}],"matchLabels":{}}"#;

    #[test]
    fn an_inert_configuration_waits_then_gets_the_annotations_selector_with_its_bundle() {
        let c = config(Some(REAL), INERT, "");
        let waiting = plan(&c, "QkFORA==", false).unwrap();
        assert_eq!(
            paths(&waiting),
            [
                "/webhooks/0/clientConfig/caBundle",
                "/webhooks/1/clientConfig/caBundle"
            ],
            "the bundle goes in before activation"
        );
        assert_eq!(
            waiting.inactive,
            ["mutate.hawser.io"],
            "the guard is never touched"
        );
        assert_eq!(
            waiting.services.into_iter().collect::<Vec<_>>(),
            [("hawser-system".to_string(), "hawser-webhook".to_string())]
        );

        let active = plan(&c, "QkFORA==", true).unwrap();
        assert_eq!(
            paths(&active),
            [
                "/webhooks/0/clientConfig/caBundle",
                "/webhooks/0/namespaceSelector",
                "/webhooks/1/clientConfig/caBundle"
            ]
        );
        let json_patch::PatchOperation::Add(op) = &active.ops[1] else {
            unreachable!()
        };
        assert_eq!(
            op.value,
            json!({"matchExpressions":[{"key":"hawser.io/admission","operator":"NotIn","values":["disabled"]}]}),
            "empty matchLabels dropped, as the apiserver does"
        );
        assert!(active.inactive.is_empty());
    }

    #[test]
    fn an_active_configuration_needs_nothing_and_a_changed_annotation_is_applied() {
        let active = r#"{"matchExpressions":[{"key":"hawser.io/admission","operator":"NotIn","values":["disabled"]}]}"#;
        let c = config(Some(REAL), active, "QkFORA==");
        assert_eq!(plan(&c, "QkFORA==", false).unwrap(), Plan::default());

        let upgraded = config(Some(r#"{"matchLabels":{"team":"a"}}"#), active, "QkFORA==");
        assert_eq!(
            plan(&upgraded, "QkFORA==", true).unwrap().ops.len(),
            1,
            "the new selector"
        );
    }

    #[test]
    fn without_the_annotation_only_the_bundle_is_kept() {
        let c = config(None, INERT, "old");
        let p = plan(&c, "new", true).unwrap();
        assert_eq!(
            paths(&p),
            [
                "/webhooks/0/clientConfig/caBundle",
                "/webhooks/1/clientConfig/caBundle"
            ]
        );
        assert!(p.inactive.is_empty());
    }

    #[test]
    fn a_malformed_annotation_is_refused_by_name() {
        let c = config(Some("team=a"), INERT, "");
        let err = plan(&c, "x", true).unwrap_err();
        assert!(
            err.contains(NAMESPACE_SELECTOR_ANNOTATION) && err.contains("team=a"),
            "{err}"
        );
    }
}
