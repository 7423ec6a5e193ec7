//! The one Event sink of every controller.
//!
//! - **Namespaced objects** (Services, Deployments): the Event goes into
//!   the object's namespace through kube-runtime's `Recorder`, which
//!   folds a repeated Event into a series instead of a new object.
//! - **Namespaces**, whichever controller reports (the namespace
//!   controller, or the stack controller for a Namespace's stack): the
//!   Event goes into `kube-system`. A Namespace is cluster-scoped, and
//!   Kubernetes 1.20 takes an `events.k8s.io/v1` Event about a
//!   cluster-scoped object only there; and a namespace being deleted
//!   refuses new objects, the Events of its own cleanup included.
//!   `kubectl describe namespace <name>` finds them in `kube-system`.
//!
//! Every Event is recorded within [`timeout::EVENT`]; a lost Event is
//! logged, never a reason to fail or stall a pass.

use k8s_openapi::{
    api::{core::v1::ObjectReference, events::v1::Event as NamespaceEvent},
    apimachinery::pkg::apis::meta::v1::MicroTime,
};
use kube::{
    api::PostParams,
    core::ObjectMeta,
    runtime::events::{Event, EventType, Recorder, Reporter},
    Api, Client,
};

use crate::controller::{timeout, FIELD_MANAGER};

/// Where Events about Namespaces are recorded.
pub const NAMESPACE_EVENTS: &str = "kube-system";
/// The `reportingController` of every Event.
const REPORTER: &str = "hawser";

pub struct EventSink {
    recorder: Recorder,
    namespace_events: Api<NamespaceEvent>,
    instance: String,
}

impl EventSink {
    pub fn new(client: Client) -> Self {
        let instance = std::env::var("POD_NAME").ok();
        let reporter = Reporter {
            controller: REPORTER.into(),
            instance: instance.clone(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            namespace_events: Api::namespaced(client, NAMESPACE_EVENTS),
            instance: instance.unwrap_or_else(|| REPORTER.into()),
        }
    }

    /// Records an Event about `reference` (see the module's doc for
    /// where it goes).
    pub async fn publish(
        &self,
        reference: &ObjectReference,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        tracing::info!(reason, %note, "event");
        let note = bounded_note(note);
        let recorded = if reference.kind.as_deref() == Some("Namespace") {
            let event = self.namespace_event(reference, type_, reason, note);
            let params = PostParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            };
            let create = self.namespace_events.create(&params, &event);
            timeout::within("record an Event", timeout::EVENT, create)
                .await
                .map(|r| r.map(drop))
        } else {
            let event = Event {
                type_,
                reason: reason.into(),
                note: Some(note),
                action: "Reconcile".into(),
                secondary: None,
            };
            let publish = self.recorder.publish(&event, reference);
            timeout::within("record an Event", timeout::EVENT, publish).await
        };
        match recorded {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, reason, "could not record an Event"),
            Err(e) => tracing::warn!(error = %e, reason, "could not record an Event"),
        }
    }

    fn namespace_event(
        &self,
        reference: &ObjectReference,
        type_: EventType,
        reason: &str,
        note: String,
    ) -> NamespaceEvent {
        let name = reference.name.clone().unwrap_or_default();
        NamespaceEvent {
            metadata: ObjectMeta {
                // generateName must itself be a valid name, so no "x." prefix.
                name: Some(format!("{name}.{:016x}", fastrand::u64(..))),
                ..Default::default()
            },
            event_time: Some(MicroTime(jiff::Timestamp::now())),
            action: Some("Reconcile".into()),
            reason: Some(reason.into()),
            note: Some(note),
            type_: Some(match type_ {
                EventType::Normal => "Normal".into(),
                EventType::Warning => "Warning".into(),
            }),
            reporting_controller: Some(REPORTER.into()),
            reporting_instance: Some(self.instance.clone()),
            regarding: Some(ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Namespace".into()),
                name: Some(name),
                uid: reference.uid.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// An Event note within the API's limit (1 kB, else the Event is
/// refused), cut at a character boundary. AWS's messages can be long.
pub fn bounded_note(note: String) -> String {
    const MAX: usize = 1000;
    if note.len() <= MAX {
        return note;
    }
    let mut end = MAX - 3;
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &note[..end])
}

#[cfg(test)]
mod tests {
    #[test]
    fn notes_stay_within_the_event_limit() {
        let note = super::bounded_note("é".repeat(800));
        assert!(
            note.len() <= 1000 && note.ends_with("..."),
            "{}",
            note.len()
        );
        assert_eq!(super::bounded_note("short".into()), "short");
    }
}
