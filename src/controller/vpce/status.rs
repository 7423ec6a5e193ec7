//! What hawser writes on the Service: the output annotations and
//! `spec.type: ExternalName` + `spec.externalName`, by server-side apply
//! with field manager `hawser`; and, when the trigger annotation is
//! removed, a JSON patch that drops the outputs and the finalizer.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use kube::api::{Patch, PatchParams};
use kube::Api;
use serde_json::json;

use crate::annotations::keys::{
    self, VPCE_DNS_NAME, VPCE_ENDPOINT_ID, VPCE_FINALIZER, VPCE_SECURITY_GROUP_ID, VPCE_STATE,
};
use crate::controller::{
    timeout::{self, ApiError},
    FIELD_MANAGER,
};

/// The four values of `vpce.hawser.io/state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Pending,
    Available,
    Failed,
    Deleting,
}

impl State {
    pub const ALL: [State; 4] = [
        State::Pending,
        State::Available,
        State::Failed,
        State::Deleting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "Pending",
            State::Available => "Available",
            State::Failed => "Failed",
            State::Deleting => "Deleting",
        }
    }
}

/// The outputs hawser owns on a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outputs {
    pub state: State,
    pub endpoint_id: Option<String>,
    pub dns_name: Option<String>,
    pub group_id: Option<String>,
}

/// The output annotations as they are on the Service now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    pub state: Option<String>,
    pub endpoint_id: Option<String>,
    pub dns_name: Option<String>,
    pub group_id: Option<String>,
}

impl Current {
    pub fn read(ann: &BTreeMap<String, String>) -> Self {
        let [state, endpoint_id, dns_name, group_id] = keys::outputs(
            ann,
            [
                VPCE_STATE,
                VPCE_ENDPOINT_ID,
                VPCE_DNS_NAME,
                VPCE_SECURITY_GROUP_ID,
            ],
        );
        Self {
            state,
            endpoint_id,
            dns_name,
            group_id,
        }
    }

    /// The same outputs with another state: used for `Failed` and
    /// `Deleting`, which must not drop what is still true (the Service
    /// keeps pointing at the endpoint).
    pub fn with_state(&self, state: State) -> Outputs {
        Outputs {
            state,
            endpoint_id: self.endpoint_id.clone(),
            dns_name: self.dns_name.clone(),
            group_id: self.group_id.clone(),
        }
    }
}

/// The server-side apply body. Only what hawser owns is in it; a field
/// it leaves out is a field it gives up. `spec` is only claimed once there
/// is a DNS name to point at, and from then on always.
pub fn apply_body(namespace: &str, name: &str, out: &Outputs) -> serde_json::Value {
    let mut annotations = serde_json::Map::new();
    annotations.insert(VPCE_STATE.into(), out.state.as_str().into());
    for (key, value) in [
        (VPCE_ENDPOINT_ID, &out.endpoint_id),
        (VPCE_DNS_NAME, &out.dns_name),
        (VPCE_SECURITY_GROUP_ID, &out.group_id),
    ] {
        if let Some(v) = value {
            annotations.insert(key.into(), v.clone().into());
        }
    }
    let mut body = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": { "name": name, "namespace": namespace, "annotations": annotations },
    });
    if let Some(dns) = &out.dns_name {
        body["spec"] = json!({ "type": "ExternalName", "externalName": dns });
    }
    body
}

pub async fn write(
    api: &Api<Service>,
    namespace: &str,
    name: &str,
    out: &Outputs,
) -> Result<(), ApiError> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let body = apply_body(namespace, name, out);
    match timeout::call(
        "write outputs",
        api.patch(name, &params, &Patch::Apply(&body)),
    )
    .await
    {
        Ok(_) => Ok(()),
        // Deleted meanwhile: nothing left to write on.
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// The JSON patch that lets go of a Service whose trigger annotation was
/// removed: its output annotations and hawser's finalizer.
pub fn release_patch(ann: &BTreeMap<String, String>, finalizers: &[String]) -> json_patch::Patch {
    crate::controller::release::release_patch(
        ann,
        &[
            VPCE_STATE,
            VPCE_ENDPOINT_ID,
            VPCE_DNS_NAME,
            VPCE_SECURITY_GROUP_ID,
        ],
        finalizers,
        VPCE_FINALIZER,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_body_claims_spec_only_with_a_dns_name() {
        let pending = Outputs {
            state: State::Pending,
            endpoint_id: Some("vpce-1".into()),
            dns_name: None,
            group_id: Some("sg-1".into()),
        };
        let body = apply_body("ns", "db", &pending);
        assert_eq!(
            body,
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "db", "namespace": "ns", "annotations": {
                    "vpce.hawser.io/state": "Pending",
                    "vpce.hawser.io/endpoint-id": "vpce-1",
                    "vpce.hawser.io/security-group-id": "sg-1",
                }},
            })
        );
        let available = Outputs {
            state: State::Available,
            dns_name: Some("vpce-1-abc.example".into()),
            group_id: None,
            ..pending
        };
        let body = apply_body("ns", "db", &available);
        assert_eq!(
            body["spec"],
            json!({"type": "ExternalName", "externalName": "vpce-1-abc.example"})
        );
        assert!(body["metadata"]["annotations"]
            .get("vpce.hawser.io/security-group-id")
            .is_none());
    }

    #[test]
    fn failed_keeps_what_is_still_true() {
        let ann = BTreeMap::from([
            (VPCE_STATE.to_owned(), "Available".to_owned()),
            (VPCE_ENDPOINT_ID.to_owned(), "vpce-1".to_owned()),
            (VPCE_DNS_NAME.to_owned(), "d.example".to_owned()),
        ]);
        let out = Current::read(&ann).with_state(State::Failed);
        assert_eq!(out.state, State::Failed);
        assert_eq!(out.dns_name.as_deref(), Some("d.example"));
        assert_eq!(out.endpoint_id.as_deref(), Some("vpce-1"));
    }

    #[test]
    fn release_patch_escapes_keys_and_tests_before_removing() {
        let ann = BTreeMap::from([
            (VPCE_STATE.to_owned(), "Available".to_owned()),
            ("other".to_owned(), "x".to_owned()),
        ]);
        let finalizers = vec!["a/b".to_owned(), VPCE_FINALIZER.to_owned()];
        let patch = serde_json::to_value(release_patch(&ann, &finalizers)).unwrap();
        assert_eq!(
            patch,
            json!([
                {"op": "test", "path": "/metadata/annotations/vpce.hawser.io~1state", "value": "Available"},
                {"op": "remove", "path": "/metadata/annotations/vpce.hawser.io~1state"},
                {"op": "test", "path": "/metadata/finalizers/1", "value": "vpce.hawser.io/cleanup"},
                {"op": "remove", "path": "/metadata/finalizers/1"},
            ])
        );
    }
}
