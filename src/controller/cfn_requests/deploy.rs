//! The Kubernetes side of a custom resource: resolve each document
//! through discovery, check the policy, then server-side apply (field
//! manager `hawser-cfn`), prune what an Update dropped, or delete.
//!
//! Every object a custom resource deploys carries the label
//! `custom-resource.hawser.io/id=<physical id>`; that label, not memory, is
//! how hawser finds them again. An object of that name that exists without
//! the label is someone else's: hawser refuses to take it over, so a
//! Delete can never remove what the stack did not create.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    api::{
        ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PropagationPolicy,
    },
    discovery::{Discovery, Scope},
    runtime::events::EventType,
    Api, Client, ResourceExt,
};
use serde_json::{json, Value};

use super::manifest::{Document, Policy, Properties};
use crate::annotations::keys::{CR_ID, CR_LOGICAL_ID, CR_REQUEST_ID, CR_STACK_ID, CR_STACK_NAME};
use crate::controller::{events::EventSink, timeout};

/// The server-side-apply field manager of everything deployed for a stack.
pub const FIELD_MANAGER: &str = "hawser-cfn";

/// Who asked: the labels and annotations put on every object.
#[derive(Debug, Clone)]
pub struct Owner<'a> {
    pub physical_id: &'a str,
    pub stack_id: &'a str,
    pub logical_id: &'a str,
    pub request_id: &'a str,
}

/// A document resolved against the cluster.
struct Target {
    doc: Document,
    resource: ApiResource,
    namespace: Option<String>,
}

impl Target {
    fn api(&self, client: &Client) -> Api<DynamicObject> {
        match &self.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &self.resource),
            None => Api::all_with(client.clone(), &self.resource),
        }
    }

    fn data_key(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/{ns}/{}", self.doc.kind, self.doc.name),
            None => format!("{}/{}", self.doc.kind, self.doc.name),
        }
    }
}

/// Why a request could not be carried out: refused (the request is at
/// fault; answered FAILED at once) or the cluster failed (answered FAILED
/// too: CloudFormation has no "try again", and rolls back).
pub type Refusal = String;

/// The uids of what the custom resource now has, for the response's Data.
pub type Uids = BTreeMap<String, String>;

/// The discovered resources of the groups `groups`, by (group, version, kind).
async fn discover(
    client: &Client,
    groups: &BTreeSet<String>,
) -> Result<Vec<(ApiResource, bool)>, Refusal> {
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    let discovery = Discovery::new(client.clone()).filter(&groups);
    let discovery = timeout::api("discover API resources", discovery.run())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("Kubernetes API discovery failed: {e}"))?;
    let mut found = Vec::new();
    for group in discovery.groups() {
        for version in group.versions() {
            for (resource, caps) in group.versioned_resources(version) {
                found.push((resource, caps.scope == Scope::Namespaced));
            }
        }
    }
    Ok(found)
}

/// The API groups of the allowed resources.
fn allowed_groups(policy: &Policy) -> BTreeSet<String> {
    policy
        .resources
        .iter()
        .map(|r| r.split_once('.').map_or("", |(_, g)| g).to_owned())
        .collect()
}

/// The allowed resources among `served`, at their preferred versions.
fn allowed(served: &[(ApiResource, bool)], policy: &Policy) -> Vec<(ApiResource, bool)> {
    let mut seen = BTreeSet::new();
    served
        .iter()
        .filter(|(r, _)| {
            policy
                .resources
                .contains(&Policy::resource_name(&r.plural, &r.group))
        })
        // Discovery lists the preferred version first.
        .filter(|(r, _)| seen.insert((r.group.clone(), r.plural.clone())))
        .cloned()
        .collect()
}

/// Resolves and checks every document; nothing is applied unless all pass.
fn resolve(
    served: &[(ApiResource, bool)],
    policy: &Policy,
    props: &Properties,
) -> Result<Vec<Target>, Refusal> {
    let mut targets = Vec::new();
    for doc in &props.documents {
        let (group, version) = doc.group_version();
        let Some((resource, namespaced)) = served
            .iter()
            .find(|(r, _)| r.group == group && r.version == version && r.kind == doc.kind)
        else {
            return Err(format!(
                "property yaml, {}: this cluster serves no kind {} in {}",
                doc.describe(),
                doc.kind,
                doc.api_version
            ));
        };
        let namespace = match (namespaced, &doc.namespace, &props.namespace) {
            (false, _, _) => None,
            (true, Some(ns), _) | (true, None, Some(ns)) => Some(ns.clone()),
            (true, None, None) => {
                return Err(format!(
                    "property yaml, {}: a {} is namespaced, and neither its metadata.namespace \
                     nor the property namespace names one",
                    doc.describe(),
                    doc.kind
                ))
            }
        };
        policy.check(doc, &resource.plural, group, namespace.as_deref())?;
        targets.push(Target {
            doc: doc.clone(),
            resource: resource.clone(),
            namespace,
        });
    }
    // Namespaces (and other cluster-scoped objects) before what goes in them.
    targets.sort_by_key(|t| t.namespace.is_some());
    Ok(targets)
}

/// A label value from `s`, if `s` is one (63 characters of `[A-Za-z0-9._-]`,
/// alphanumeric at both ends).
fn label_value(s: &str) -> Option<&str> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric());
    ok.then_some(s)
}

/// The stack's name from its id (`arn:...:stack/<name>/<guid>`).
fn stack_name(stack_id: &str) -> Option<&str> {
    stack_id.split('/').nth(1)
}

/// The document as applied: its own fields plus the owner's marks.
fn desired(target: &Target, owner: &Owner<'_>) -> Value {
    let mut object = target.doc.object.clone();
    let metadata = object
        .as_object_mut()
        .expect("documents are objects")
        .entry("metadata")
        .or_insert_with(|| json!({}));
    if let Some(ns) = &target.namespace {
        metadata["namespace"] = ns.as_str().into();
    } else if let Some(m) = metadata.as_object_mut() {
        m.remove("namespace");
    }
    let mut labels = json!({ CR_ID: owner.physical_id });
    if let Some(v) = label_value(owner.logical_id) {
        labels[CR_LOGICAL_ID] = v.into();
    }
    if let Some(v) = stack_name(owner.stack_id).and_then(label_value) {
        labels[CR_STACK_NAME] = v.into();
    }
    merge(metadata, "labels", labels);
    merge(
        metadata,
        "annotations",
        json!({ CR_STACK_ID: owner.stack_id, CR_REQUEST_ID: owner.request_id }),
    );
    object
}

fn merge(metadata: &mut Value, field: &str, add: Value) {
    let slot = &mut metadata[field];
    if !slot.is_object() {
        *slot = json!({});
    }
    for (k, v) in add.as_object().expect("an object").clone() {
        slot[k] = v;
    }
}

/// Create or Update: applies every document (unless each object already
/// carries this request's id: a redelivered message), then deletes the
/// objects of this custom resource the manifest no longer has.
pub async fn apply(
    client: &Client,
    events: &EventSink,
    policy: &Policy,
    props: &Properties,
    owner: &Owner<'_>,
) -> Result<Uids, Refusal> {
    // One discovery for the documents' groups and the allowed ones.
    let mut groups = allowed_groups(policy);
    groups.extend(
        props
            .documents
            .iter()
            .map(|d| d.group_version().0.to_owned()),
    );
    let served = discover(client, &groups).await?;
    let targets = resolve(&served, policy, props)?;
    let mut existing = Vec::new();
    for t in &targets {
        let found = timeout::call("read an object", t.api(client).get_opt(&t.doc.name))
            .await
            .map_err(|e| e.to_string())?;
        if let Some(obj) = &found {
            if obj.labels().get(CR_ID).map(String::as_str) != Some(owner.physical_id) {
                return Err(format!(
                    "property yaml, {}: it already exists and was not created by this custom \
                     resource (label {CR_ID} is {}); hawser does not take over objects, so \
                     nothing was applied",
                    t.doc.describe(),
                    obj.labels()
                        .get(CR_ID)
                        .map_or("absent".to_owned(), |v| format!("{v:?}"))
                ));
            }
        }
        existing.push(found);
    }
    let done = existing.iter().all(|o| {
        o.as_ref()
            .and_then(|o| o.annotations().get(CR_REQUEST_ID))
            .is_some_and(|r| r == owner.request_id)
    });
    let mut uids = Uids::new();
    for (t, before) in targets.iter().zip(&existing) {
        let obj = match (done, before) {
            (true, Some(obj)) => obj.clone(),
            _ => {
                let params = PatchParams::apply(FIELD_MANAGER).force();
                let (api, body) = (t.api(client), Patch::Apply(desired(t, owner)));
                let patch = api.patch(&t.doc.name, &params, &body);
                timeout::call("apply an object", patch)
                    .await
                    .map_err(|e| format!("applying {}: {e}", t.doc.describe()))?
            }
        };
        if before.is_none() {
            let note = format!(
                "created by CloudFormation stack {} (resource {})",
                owner.stack_id, owner.logical_id
            );
            events
                .publish(
                    &reference(&t.resource, &obj),
                    EventType::Normal,
                    "CreatedByStack",
                    note,
                )
                .await;
        }
        uids.insert(t.data_key(), obj.uid().unwrap_or_default());
    }
    let keep: BTreeSet<(String, String, Option<String>, String)> = targets
        .iter()
        .map(|t| {
            (
                t.resource.group.clone(),
                t.resource.kind.clone(),
                t.namespace.clone(),
                t.doc.name.clone(),
            )
        })
        .collect();
    remove(
        client,
        &allowed(&served, policy),
        owner.physical_id,
        |r, obj| {
            !keep.contains(&(
                r.group.clone(),
                r.kind.clone(),
                obj.namespace(),
                obj.name_any(),
            ))
        },
    )
    .await?;
    Ok(uids)
}

/// Delete: removes every object of the custom resource.
pub async fn delete(client: &Client, policy: &Policy, physical_id: &str) -> Result<(), Refusal> {
    let served = discover(client, &allowed_groups(policy)).await?;
    remove(client, &allowed(&served, policy), physical_id, |_, _| true).await
}

/// Deletes the objects labelled with `physical_id` that `doomed` picks,
/// namespaced ones before cluster-scoped ones (a Namespace last).
async fn remove(
    client: &Client,
    resources: &[(ApiResource, bool)],
    physical_id: &str,
    doomed: impl Fn(&ApiResource, &DynamicObject) -> bool,
) -> Result<(), Refusal> {
    let mut resources = resources.to_vec();
    resources.sort_by_key(|(_, namespaced)| !namespaced);
    let selector = ListParams::default().labels(&format!("{CR_ID}={physical_id}"));
    for (resource, _) in resources {
        let all: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
        let list = timeout::call("list deployed objects", all.list(&selector))
            .await
            .map_err(|e| format!("listing {}: {e}", resource.plural))?;
        for obj in list.items.iter().filter(|o| doomed(&resource, o)) {
            let api: Api<DynamicObject> = match obj.namespace() {
                Some(ns) => Api::namespaced_with(client.clone(), &ns, &resource),
                None => Api::all_with(client.clone(), &resource),
            };
            let params = DeleteParams {
                propagation_policy: Some(PropagationPolicy::Background),
                ..Default::default()
            };
            match timeout::call("delete an object", api.delete(&obj.name_any(), &params)).await {
                Ok(_) => {
                    tracing::info!(kind = %resource.kind, name = %obj.name_any(), namespace = ?obj.namespace(), "deleted")
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    return Err(format!(
                        "deleting {} {}: {e}",
                        resource.kind,
                        obj.name_any()
                    ))
                }
            }
        }
    }
    Ok(())
}

fn reference(resource: &ApiResource, obj: &DynamicObject) -> ObjectReference {
    ObjectReference {
        api_version: Some(resource.api_version.clone()),
        kind: Some(resource.kind.clone()),
        name: Some(obj.name_any()),
        namespace: obj.namespace(),
        uid: obj.uid(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_carry_what_fits_and_annotations_the_rest() {
        assert_eq!(label_value("MyTestResource"), Some("MyTestResource"));
        assert_eq!(label_value(&"a".repeat(64)), None);
        assert_eq!(label_value("-x"), None);
        assert_eq!(
            stack_name("arn:aws:cloudformation:eu-west-1:123456789012:stack/MyStack/guid"),
            Some("MyStack")
        );
        let doc = super::super::manifest::parse_documents(
            "{apiVersion: v1, kind: ConfigMap, metadata: {name: c, namespace: other, labels: {app: x}}}",
        )
        .unwrap()
        .remove(0);
        let target = Target {
            doc,
            resource: ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
            namespace: Some("nightly".into()),
        };
        let owner = Owner {
            physical_id: "hawser-cfn-0123",
            stack_id: "arn:aws:cloudformation:eu-west-1:1:stack/MyStack/guid",
            logical_id: "Res",
            request_id: "req-1",
        };
        let body = desired(&target, &owner);
        let meta = &body["metadata"];
        assert_eq!(meta["namespace"], "nightly");
        assert_eq!(meta["labels"]["app"], "x");
        assert_eq!(meta["labels"][CR_ID], "hawser-cfn-0123");
        assert_eq!(meta["labels"][CR_LOGICAL_ID], "Res");
        assert_eq!(meta["labels"][CR_STACK_NAME], "MyStack");
        assert_eq!(meta["annotations"][CR_STACK_ID], owner.stack_id);
        assert_eq!(meta["annotations"][CR_REQUEST_ID], "req-1");
        assert_eq!(target.data_key(), "ConfigMap/nightly/c");
    }
}
