//! How a pass reports: Events on the object, and a failure's
//! `last-error`, Warning Event and error metric.

use kube::{
    core::PartialObjectMeta,
    runtime::{controller::Action, events::EventType},
    Resource, ResourceExt,
};

use super::{
    effects::Effect,
    error::{Error, Failure},
    kind::StackObject,
    status::{self, Outputs, State, STATUS_FAILED},
    Context, CONTROLLER,
};
use crate::aws::CfnProvider;

/// A failure to report: `last-error` and a Warning Event (once per
/// distinct message), `stack-status` the stack's status or `Failed`, and
/// no retry until the inputs change or a resync passes.
pub(super) async fn fail<K: StackObject, P: CfnProvider>(
    obj: &PartialObjectMeta<K>,
    ctx: &Context<P>,
    inputs: crate::controller::tracker::Fingerprint,
    out: Option<Outputs>,
    failure: Failure,
    result: &mut &'static str,
) -> Result<Action, Error> {
    let uid = obj.uid().unwrap_or_default();
    let message = failure.message();
    tracing::warn!(category = failure.category(), error = %message, "stack failed; waiting for the inputs to change");
    let before = Outputs::read(obj.annotations());
    let mut out = out.unwrap_or_else(|| Outputs {
        // Not looked at (bad annotations, no template): the stack, if
        // any, still holds what it held. The memo first: the cached
        // object may not show hawser's latest write yet.
        spec_hash: ctx.memo(&uid).applied.or(before.spec_hash.clone()),
        ..Outputs::default()
    });
    if out.stack_status.is_none() {
        out.stack_status = Some(STATUS_FAILED.to_owned());
    }
    out.last_error = Some(message.clone());
    status::write(&ctx.client, obj, &out).await?;
    if before.last_error.as_deref() != Some(message.as_str()) {
        publish(ctx, obj, EventType::Warning, "StackFailed", message).await;
    }
    ctx.metrics
        .reconcile_errors
        .with_label_values(&[CONTROLLER, failure.category()])
        .inc();
    ctx.tracker.set_state(&uid, State::Failed);
    ctx.tracker.settle(&uid, inputs);
    *result = "failed";
    Ok(Action::requeue(ctx.settings.resync))
}

pub(super) async fn publish_effects<K: StackObject, P: CfnProvider>(
    ctx: &Context<P>,
    obj: &PartialObjectMeta<K>,
    effects: &[Effect],
) {
    for effect in effects {
        let (type_, reason, note) = effect.event();
        tracing::info!(reason, %note, "side effect");
        publish(ctx, obj, type_, reason, note).await;
    }
}

/// Publishes an Event on the object. A failure to record an Event is
/// logged, never a reason to fail the pass.
pub(super) async fn publish<K: StackObject, P: CfnProvider>(
    ctx: &Context<P>,
    obj: &PartialObjectMeta<K>,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let mut reference = obj.object_ref(&());
    if K::KIND == crate::annotations::ObjectKind::Namespace {
        // A Namespace's Events go into the namespace itself: the apiserver
        // (1.20's events.k8s.io/v1) wants the Event's namespace to match
        // `regarding`'s, which a cluster-scoped object cannot give.
        reference.namespace = Some(obj.name_any());
    }
    crate::controller::pass::publish(&ctx.recorder, &reference, type_, reason, note).await;
}
