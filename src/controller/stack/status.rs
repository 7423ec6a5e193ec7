//! What hawser writes for a stack: the output annotations on the object
//! and the outputs ConfigMap, both by server-side apply with field manager
//! `hawser`; and, when the template annotation is removed, the patch that
//! lets go of the object.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::kind::StackObject;
use crate::annotations::keys::{
    self, CFN_LAST_ERROR, CFN_SPEC_HASH, CFN_STACK_ID, CFN_STACK_STATUS,
};
use crate::controller::{
    timeout::{self, ApiError},
    tracker::GaugeState,
    FIELD_MANAGER,
};

/// Label on every outputs ConfigMap hawser writes.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "hawser");
/// `stack-status` when there is no stack of ours to report on (bad
/// annotations, missing template, a foreign stack, a refused create).
pub const STATUS_FAILED: &str = "Failed";
pub const OUTPUT_KEYS: [&str; 4] = [
    CFN_STACK_ID,
    CFN_STACK_STATUS,
    CFN_LAST_ERROR,
    CFN_SPEC_HASH,
];

/// States of `hawser_managed_objects{controller="stack"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Pending,
    Ready,
    Failed,
    Deleting,
}

impl GaugeState for State {
    const ALL: &'static [State] = &[State::Pending, State::Ready, State::Failed, State::Deleting];
    fn as_str(self) -> &'static str {
        match self {
            State::Pending => "Pending",
            State::Ready => "Ready",
            State::Failed => "Failed",
            State::Deleting => "Deleting",
        }
    }
}

/// The output annotations; `None` leaves a key out (and so removes it,
/// hawser being its only writer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outputs {
    pub stack_id: Option<String>,
    pub stack_status: Option<String>,
    pub last_error: Option<String>,
    /// [`Memo::applied`](super::machine::Memo::applied), kept across
    /// restarts and leader changes.
    pub spec_hash: Option<String>,
}

impl Outputs {
    pub fn read(ann: &BTreeMap<String, String>) -> Self {
        let [stack_id, stack_status, last_error, spec_hash] = keys::outputs(ann, OUTPUT_KEYS);
        Self {
            stack_id,
            stack_status,
            last_error,
            spec_hash,
        }
    }
}

/// The server-side apply body for the object's annotations.
pub fn apply_body<K: StackObject>(
    name: &str,
    namespace: Option<&str>,
    out: &Outputs,
) -> serde_json::Value {
    let mut annotations = serde_json::Map::new();
    for (key, value) in [
        (CFN_STACK_ID, &out.stack_id),
        (CFN_STACK_STATUS, &out.stack_status),
        (CFN_LAST_ERROR, &out.last_error),
        (CFN_SPEC_HASH, &out.spec_hash),
    ] {
        if let Some(v) = value {
            annotations.insert(key.into(), v.clone().into());
        }
    }
    let mut metadata = json!({ "name": name, "annotations": annotations });
    if let Some(ns) = namespace {
        metadata["namespace"] = ns.into();
    }
    json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": metadata,
    })
}

/// Writes the output annotations unless they already say `out`.
pub async fn write<K: StackObject>(
    client: &Client,
    obj: &PartialObjectMeta<K>,
    out: &Outputs,
) -> Result<(), ApiError> {
    if &Outputs::read(obj.annotations()) == out {
        return Ok(());
    }
    let home = K::home(obj);
    let api = K::typed_api(client.clone(), &home);
    let body = apply_body::<K>(&obj.name_any(), obj.namespace().as_deref(), out);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let (name, patch) = (obj.name_any(), Patch::Apply(&body));
    match timeout::call(
        "write output annotations",
        api.patch_metadata(&name, &params, &patch),
    )
    .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// The owner reference that lets the garbage collector remove the
/// outputs ConfigMap with its object. A namespaced ConfigMap may name a
/// cluster-scoped owner (a Namespace).
pub fn owner_reference<K: StackObject>(
    obj: &PartialObjectMeta<K>,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: obj.name_any(),
        uid: obj.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    }
}

fn owned_by(cm: &ConfigMap, uid: &str) -> bool {
    cm.owner_references().iter().any(|o| o.uid == uid)
}

/// The outcome of writing the outputs ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputsWrite {
    Written,
    /// A ConfigMap of that name exists and is not this object's.
    Conflict(String),
}

/// Writes the stack outputs to ConfigMap `name` in `namespace`, owned by
/// the object. A ConfigMap of that name that the object does not own is
/// never overwritten.
pub async fn write_outputs<K: StackObject>(
    client: &Client,
    obj: &PartialObjectMeta<K>,
    namespace: &str,
    name: &str,
    outputs: &BTreeMap<String, String>,
) -> Result<OutputsWrite, ApiError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let uid = obj.uid().unwrap_or_default();
    if let Some(existing) = timeout::call("get outputs ConfigMap", api.get_opt(name)).await? {
        if !owned_by(&existing, &uid) {
            return Ok(OutputsWrite::Conflict(format!(
                "ConfigMap {namespace}/{name} exists and is not owned by this {}; hawser does not \
                 overwrite it: name another in cfn.hawser.io/outputs-configmap, or delete it",
                K::KIND.as_str()
            )));
        }
    }
    let body = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": { MANAGED_BY.0: MANAGED_BY.1 },
            "ownerReferences": [owner_reference(obj)],
        },
        "data": outputs,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let apply = Patch::Apply(&body);
    timeout::call("write outputs ConfigMap", api.patch(name, &params, &apply)).await?;
    Ok(OutputsWrite::Written)
}

/// Deletes the outputs ConfigMaps this object owns (on release; a
/// deleted object's are removed by the garbage collector).
pub async fn delete_outputs(client: &Client, namespace: &str, uid: &str) -> Result<(), ApiError> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    let list = ListParams::default().labels(&selector);
    let list = timeout::call("list outputs ConfigMaps", api.list(&list)).await?;
    for cm in list.items.iter().filter(|cm| owned_by(cm, uid)) {
        let (name, params) = (cm.name_any(), DeleteParams::default());
        match timeout::call("delete outputs ConfigMap", api.delete(&name, &params)).await {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Lets go of an object whose template annotation was removed: drops the
/// output annotations and the finalizer.
pub async fn release<K: StackObject>(
    client: &Client,
    obj: &PartialObjectMeta<K>,
    finalizer: &str,
) -> Result<(), ApiError> {
    let api = K::meta_api(client.clone(), &K::home(obj));
    let patch = crate::controller::release::release_patch(
        obj.annotations(),
        &OUTPUT_KEYS,
        obj.finalizers(),
        finalizer,
    );
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let (name, patch) = (obj.name_any(), Patch::<()>::Json(patch));
    timeout::call("release the object", api.patch(&name, &params, &patch))
        .await
        .map(drop)
}
