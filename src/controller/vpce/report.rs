//! How a pass reports: Events on the Service, and a failure's
//! `state: Failed`, Warning Event and error metric.

use kube::runtime::events::EventType;
use kube::ResourceExt;

use super::{
    effects::Effect,
    error::Error,
    owner, services,
    status::{self, Current, State},
    Context, ServiceMeta,
};
use crate::annotations::keys::PLAN;
use crate::aws::Ec2Provider;
use crate::controller::planned::{self, Action};
use crate::controller::reconciler::Failure;

/// Marks the Service `state: Failed`, keeping the outputs that are still
/// true, for a terminal failure (no retry until the inputs change or a
/// resync passes) and for a role that could not be assumed (retried with
/// backoff: the fix is made in IAM, not on the Service). The skeleton
/// then publishes the Warning Event ([`Error::reason`]).
pub(super) async fn mark_failed<P: Ec2Provider>(
    obj: &ServiceMeta,
    ctx: &Context<P>,
    error: &Error,
) -> Result<(), Error> {
    if !(error.is_terminal() || error.is_assume_role()) {
        return Ok(());
    }
    let owner = owner(obj);
    let outputs = Current::read(obj.annotations()).with_state(State::Failed);
    status::write(&services(ctx, obj), &owner.namespace, &owner.name, &outputs).await?;
    ctx.base
        .tracker
        .set_state(&obj.uid().unwrap_or_default(), State::Failed);
    Ok(())
}

pub(super) async fn publish_effects<P: Ec2Provider>(
    ctx: &Context<P>,
    obj: &ServiceMeta,
    effects: &[Effect],
) {
    for effect in effects {
        let (type_, reason, note) = effect.event();
        publish(ctx, obj, type_, reason, note).await;
    }
}

/// Publishes an Event on the Service. A failure to record an Event is
/// logged, never a reason to fail the pass.
pub(super) async fn publish<P: Ec2Provider>(
    ctx: &Context<P>,
    obj: &ServiceMeta,
    type_: EventType,
    reason: &str,
    note: String,
) {
    ctx.base.publish(obj, type_, reason, note).await;
}

/// Records a plan-only Service's plan: `hawser.io/plan`, and a `Planned`
/// Event whenever the plan differs from the one recorded.
pub(super) async fn report_plan<P: Ec2Provider>(
    ctx: &Context<P>,
    obj: &ServiceMeta,
    actions: &[Action],
) -> Result<(), Error> {
    let value = planned::annotation_value(actions);
    if obj.annotations().get(PLAN) == Some(&value) {
        return Ok(());
    }
    planned::record(&services(ctx, obj), &obj.name_any(), Some(actions)).await?;
    let note = format!("plan-only, nothing done: {}", planned::summary(actions));
    publish(ctx, obj, EventType::Normal, "Planned", note).await;
    Ok(())
}

/// Drops `hawser.io/plan` from a Service that may act again.
pub(super) async fn clear_plan<P: Ec2Provider>(
    ctx: &Context<P>,
    obj: &ServiceMeta,
) -> Result<(), Error> {
    if obj.annotations().contains_key(PLAN) {
        planned::record(&services(ctx, obj), &obj.name_any(), None).await?;
    }
    Ok(())
}
