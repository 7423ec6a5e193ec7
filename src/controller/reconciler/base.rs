//! What every controller holds the same way, and hawser's finalizer on
//! an object: added and removed by guarded JSON patches, within the
//! per-call deadline.

use std::{fmt::Debug, sync::Arc, time::Duration};

use kube::{
    api::{Patch, PatchParams},
    runtime::events::EventType,
    Api, Client, Resource, ResourceExt,
};
use serde::de::DeserializeOwned;

use super::Meta;
use crate::controller::{
    events::EventSink,
    timeout::{self, ApiError},
    tracker::{GaugeState, Tracker},
    FIELD_MANAGER,
};
use crate::metrics::Metrics;

/// What every controller holds the same way.
pub struct Base<S: GaugeState> {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    pub events: EventSink,
    pub tracker: Tracker<S>,
    /// The finalizer that guards what this controller makes.
    pub finalizer: String,
    pub resync: Duration,
}

impl<S: GaugeState> Base<S> {
    pub fn new(
        controller: &'static str,
        client: Client,
        metrics: Arc<Metrics>,
        finalizer: String,
        resync: Duration,
    ) -> Self {
        Self {
            events: EventSink::new(client.clone()),
            tracker: Tracker::new(controller, metrics.managed_objects.clone()),
            client,
            metrics,
            finalizer,
            resync,
        }
    }

    /// Publishes an Event about `obj` (see [`EventSink`]).
    pub async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        obj: &Meta<K>,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        self.events
            .publish(&obj.object_ref(&()), type_, reason, note)
            .await;
    }

    /// Adds the finalizer unless `obj` carries it. The patch tests the
    /// list as read, so it fails rather than drop a finalizer another
    /// controller added meanwhile.
    pub async fn add_finalizer<K>(&self, api: &Api<Meta<K>>, obj: &Meta<K>) -> Result<(), ApiError>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    {
        let current = obj.finalizers();
        let fin = self.finalizer.as_str();
        if current.iter().any(|f| f == fin) {
            return Ok(());
        }
        let patch = if current.is_empty() {
            serde_json::json!([
                {"op": "test", "path": "/metadata/finalizers", "value": null},
                {"op": "add", "path": "/metadata/finalizers", "value": [fin]},
            ])
        } else {
            serde_json::json!([
                {"op": "test", "path": "/metadata/finalizers", "value": current},
                {"op": "add", "path": "/metadata/finalizers/-", "value": fin},
            ])
        };
        json_patch(api, obj, "add finalizer", patch).await
    }

    /// Removes the finalizer, if `obj` carries it; an object already gone
    /// is fine.
    pub async fn remove_finalizer<K>(
        &self,
        api: &Api<Meta<K>>,
        obj: &Meta<K>,
    ) -> Result<(), ApiError>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    {
        let fin = self.finalizer.as_str();
        let Some(i) = obj.finalizers().iter().position(|f| f == fin) else {
            return Ok(());
        };
        let path = format!("/metadata/finalizers/{i}");
        let patch = serde_json::json!([
            {"op": "test", "path": path, "value": fin},
            {"op": "remove", "path": path},
        ]);
        match json_patch(api, obj, "remove finalizer", patch).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }
}

async fn json_patch<K>(
    api: &Api<Meta<K>>,
    obj: &Meta<K>,
    what: &'static str,
    patch: serde_json::Value,
) -> Result<(), ApiError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let patch: json_patch::Patch = serde_json::from_value(patch).expect("a well-formed JSON patch");
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    timeout::call(
        what,
        api.patch(&obj.name_any(), &params, &Patch::<()>::Json(patch)),
    )
    .await
    .map(drop)
}
