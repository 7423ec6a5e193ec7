//! How a pass reports: Events on the Service, and a failure's
//! `state: Failed`, Warning Event and error metric.

use kube::runtime::{controller::Action, events::EventType};
use kube::{Resource, ResourceExt};

use super::{
    effects::Effect,
    error::Error,
    owner, services,
    status::{self, Current, State},
    tracker::fingerprint,
    Context, ServiceMeta, CONTROLLER,
};
use crate::aws::Ec2Provider;

/// A terminal failure: `state: Failed` (keeping the outputs that are still
/// true), a Warning Event with the reason in AWS's or the parser's words,
/// and no retry until the inputs change or a resync passes.
pub(super) async fn fail<P: Ec2Provider>(
    obj: &ServiceMeta,
    ctx: &Context<P>,
    error: Error,
    result: &mut &'static str,
) -> Result<Action, Error> {
    mark_failed(obj, ctx, &error, "ProvisioningFailed", result).await?;
    ctx.tracker.settle(
        &obj.uid().unwrap_or_default(),
        fingerprint(obj.annotations()),
    );
    Ok(Action::requeue(ctx.settings.resync))
}

/// The namespace's role could not be assumed: marked as a terminal
/// failure is, but retried with backoff, since the fix (a trust policy, a
/// permission) is made in IAM, not on the Service.
pub(super) async fn fail_assume_role<P: Ec2Provider>(
    obj: &ServiceMeta,
    ctx: &Context<P>,
    error: Error,
    result: &mut &'static str,
) -> Result<Action, Error> {
    mark_failed(obj, ctx, &error, "AssumeRoleFailed", result).await?;
    Ok(Action::requeue(
        ctx.tracker.failed(&obj.uid().unwrap_or_default()),
    ))
}

/// `state: Failed`, a Warning Event `reason`, the error metric.
async fn mark_failed<P: Ec2Provider>(
    obj: &ServiceMeta,
    ctx: &Context<P>,
    error: &Error,
    reason: &str,
    result: &mut &'static str,
) -> Result<(), Error> {
    let owner = owner(obj);
    tracing::warn!(category = error.category(), error = %error, reason, "marking the Service Failed");
    let outputs = Current::read(obj.annotations()).with_state(State::Failed);
    status::write(&services(ctx, obj), &owner.namespace, &owner.name, &outputs).await?;
    publish(ctx, obj, EventType::Warning, reason, error.user_message()).await;
    ctx.metrics
        .reconcile_errors
        .with_label_values(&[CONTROLLER, error.category()])
        .inc();
    ctx.tracker
        .set_state(&obj.uid().unwrap_or_default(), State::Failed);
    *result = "failed";
    Ok(())
}

pub(super) async fn publish_effects<P: Ec2Provider>(
    ctx: &Context<P>,
    obj: &ServiceMeta,
    effects: &[Effect],
) {
    for effect in effects {
        let (type_, reason, note) = effect.event();
        tracing::info!(reason, %note, "side effect");
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
    crate::controller::pass::publish(&ctx.recorder, &obj.object_ref(&()), type_, reason, note)
        .await;
}
