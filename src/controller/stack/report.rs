//! How a pass reports: Events on the object, and a failure's
//! `last-error`, Warning Event and error metric.

use kube::{core::PartialObjectMeta, runtime::events::EventType, ResourceExt};

use super::{
    effects::Effect,
    error::Failed,
    kind::StackObject,
    status::{self, Outputs, State, STATUS_FAILED},
    Context,
};
use crate::aws::CfnProvider;

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
