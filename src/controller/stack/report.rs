//! How a pass reports: Events on the object, and a failure's
//! `last-error`, Warning Event and error metric.

use kube::{core::PartialObjectMeta, runtime::events::EventType, ResourceExt};

use super::{
    effects::Effect,
    error::{Error, Failed},
    kind::StackObject,
    status::{self, Outputs, State, STATUS_FAILED},
    Context,
};
use crate::annotations::keys::PLAN;
use crate::aws::CfnProvider;
use crate::controller::planned::{self, Action};

/// Records a failure on the object: `last-error`, and `stack-status` the
/// stack's status or `Failed`. True when the message is new, so the
/// skeleton's Warning Event is published once per distinct message.
pub(super) async fn mark_failed<K: StackObject, P: CfnProvider>(
    obj: &PartialObjectMeta<K>,
    ctx: &Context<P>,
    failed: &Failed,
) -> Result<bool, super::Error> {
    let uid = obj.uid().unwrap_or_default();
    let message = failed.failure.message();
    let before = Outputs::read(obj.annotations());
    let mut out = failed.out.clone().unwrap_or_else(|| Outputs {
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
    status::write(&ctx.base.client, obj, &out).await?;
    ctx.base.tracker.set_state(&uid, State::Failed);
    Ok(before.last_error.as_deref() != Some(message.as_str()))
}

pub(super) async fn publish_effects<K: StackObject, P: CfnProvider>(
    ctx: &Context<P>,
    obj: &PartialObjectMeta<K>,
    effects: &[Effect],
) {
    for effect in effects {
        let (type_, reason, note) = effect.event();
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
    ctx.base.publish(obj, type_, reason, note).await;
}

/// Records a plan-only object's plan: `hawser.io/plan`, and a `Planned`
/// Event whenever the plan differs from the one recorded.
pub(super) async fn report_plan<K: StackObject, P: CfnProvider>(
    ctx: &Context<P>,
    obj: &PartialObjectMeta<K>,
    actions: &[Action],
) -> Result<(), Error> {
    let value = planned::annotation_value(actions);
    if obj.annotations().get(PLAN) == Some(&value) {
        return Ok(());
    }
    let api = K::typed_api(ctx.base.client.clone(), &K::home(obj));
    planned::record(&api, &obj.name_any(), Some(actions)).await?;
    let note = format!("plan-only, nothing done: {}", planned::summary(actions));
    publish(ctx, obj, EventType::Normal, "Planned", note).await;
    Ok(())
}

/// Drops `hawser.io/plan` from an object that may act again.
pub(super) async fn clear_plan<K: StackObject, P: CfnProvider>(
    ctx: &Context<P>,
    obj: &PartialObjectMeta<K>,
) -> Result<(), Error> {
    if obj.annotations().contains_key(PLAN) {
        let api = K::typed_api(ctx.base.client.clone(), &K::home(obj));
        planned::record(&api, &obj.name_any(), None).await?;
    }
    Ok(())
}
