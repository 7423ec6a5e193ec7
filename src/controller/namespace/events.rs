//! Events about Namespaces. A Namespace is cluster-scoped, and Kubernetes
//! 1.20 accepts an `events.k8s.io/v1` Event about a cluster-scoped object
//! only in `kube-system` (later versions also take `default`, where
//! kube-runtime's `Recorder` puts them, so on 1.20 every one of them was
//! refused). They are written to kube-system here; `kubectl describe
//! namespace <name>` finds them there.

use k8s_openapi::{
    api::{core::v1::ObjectReference, events::v1::Event},
    apimachinery::pkg::apis::meta::v1::MicroTime,
};
use kube::{api::PostParams, core::ObjectMeta, Api, Client, Resource, ResourceExt};

use super::NamespaceMeta;
use crate::controller::{timeout, FIELD_MANAGER};

/// Where Events about Namespaces are recorded.
pub const EVENTS_NAMESPACE: &str = "kube-system";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Normal,
    Warning,
}

pub struct Publisher {
    api: Api<Event>,
    instance: String,
}

impl Publisher {
    pub fn new(client: Client) -> Self {
        Self {
            api: Api::namespaced(client, EVENTS_NAMESPACE),
            instance: std::env::var("POD_NAME").unwrap_or_else(|_| "hawser".into()),
        }
    }

    /// Records an Event within [`timeout::EVENT`]. A lost Event is logged,
    /// never a reason to fail or stall the pass.
    pub async fn publish(&self, obj: &NamespaceMeta, type_: Type, reason: &str, note: String) {
        tracing::info!(reason, %note, "namespace event");
        let name = obj.name_any();
        let event = Event {
            metadata: ObjectMeta {
                // generateName must itself be a valid name, so no "x." prefix.
                name: Some(format!("{name}.{:016x}", fastrand::u64(..))),
                ..Default::default()
            },
            event_time: Some(MicroTime(jiff::Timestamp::now())),
            action: Some("Reconcile".into()),
            reason: Some(reason.into()),
            note: Some(crate::controller::bounded_note(note)),
            type_: Some(match type_ {
                Type::Normal => "Normal".into(),
                Type::Warning => "Warning".into(),
            }),
            reporting_controller: Some("hawser".into()),
            reporting_instance: Some(self.instance.clone()),
            regarding: Some(ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Namespace".into()),
                name: Some(name),
                uid: obj.meta().uid.clone(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        match timeout::within(
            "record an Event",
            timeout::EVENT,
            self.api.create(&params, &event),
        )
        .await
        {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, reason, "could not record an Event"),
            Err(e) => tracing::warn!(error = %e, reason, "could not record an Event"),
        }
    }
}
