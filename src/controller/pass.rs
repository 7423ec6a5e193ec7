//! Pieces of a reconcile pass that every controller shares: Events, and
//! the finalizer's view of an object that is already gone.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::{
    controller::Action,
    events::{Event, EventType, Recorder},
    finalizer,
};

/// Publishes an Event about `reference`. A failure to record an Event is
/// logged, never a reason to fail the pass.
pub async fn publish(
    recorder: &Recorder,
    reference: &ObjectReference,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(super::bounded_note(note)),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, reference).await {
        tracing::warn!(error = %e, reason, "could not record an Event");
    }
}

/// A finalizer add or remove that found the object gone (404): a pass
/// queued before the finalizer was removed, with nothing left to do.
/// Every other error is handed back.
pub fn unless_gone<E: std::error::Error + 'static>(
    e: finalizer::Error<E>,
) -> Result<Action, finalizer::Error<E>> {
    match e {
        finalizer::Error::AddFinalizer(kube::Error::Api(ref s))
        | finalizer::Error::RemoveFinalizer(kube::Error::Api(ref s))
            if s.code == 404 =>
        {
            Ok(Action::await_change())
        }
        e => Err(e),
    }
}

/// Runs one pass inside `span` and records it: its duration, its result
/// label (`"error"` when it failed) and, for a failure, its category.
/// `pass` yields its outcome and the result label it chose.
pub async fn measured<E>(
    metrics: &crate::metrics::Metrics,
    controller: &'static str,
    span: tracing::Span,
    category: impl Fn(&E) -> &'static str,
    pass: impl std::future::Future<Output = (Result<Action, E>, &'static str)>,
) -> Result<Action, E> {
    use tracing::Instrument;
    let timer = metrics
        .reconcile_duration
        .with_label_values(&[controller])
        .start_timer();
    let (outcome, mut result) = pass.instrument(span.clone()).await;
    timer.observe_duration();
    if let Err(e) = &outcome {
        result = "error";
        metrics
            .reconcile_errors
            .with_label_values(&[controller, category(e)])
            .inc();
    }
    span.record("result", result);
    metrics
        .reconcile_total
        .with_label_values(&[controller, result])
        .inc();
    outcome
}

/// The controller's own error inside a finalizer error (from apply or
/// cleanup), so each controller's `category()`, `is_terminal()` and
/// `user_message()` look through the wrapper the same way.
pub fn inner<E: std::error::Error + 'static>(e: &finalizer::Error<E>) -> Option<&E> {
    match e {
        finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => Some(e),
        _ => None,
    }
}
