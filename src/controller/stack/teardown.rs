//! The cleanup pass (the object deleted) and the release pass (the
//! template annotation removed): [`cleanup::cleanup`] against
//! CloudFormation, the stack's progress on the object, then the object
//! let go.

use std::time::Duration;

use kube::{core::PartialObjectMeta, runtime::events::EventType, ResourceExt};

use super::{
    cleanup::{self, Cleanup},
    error::Error,
    inputs::scope_of,
    kind::StackObject,
    owner, plan,
    report::{publish, publish_effects, report_plan},
    status::{self, Outputs, State},
    Context, CONTROLLER, FINALIZER,
};
use crate::annotations::cleanup_deletion_policy;
use crate::aws::{CfnProvider, CloudFormationApi};
use crate::controller::planned;
use crate::controller::reconciler::{Outcome, Pass};
use crate::controller::tracker::Tracker;

async fn run_cleanup<K: StackObject, P: CfnProvider>(
    obj: &PartialObjectMeta<K>,
    ctx: &Context<P>,
) -> Result<Cleanup, Error> {
    let owner = owner(obj);
    let cfn = ctx.aws.cfn(&scope_of(obj, ctx).await?).await;
    let outcome = cleanup::cleanup(
        &cfn,
        &owner.stack_name(&ctx.settings.cluster),
        &owner.ownership_tags(&ctx.settings.cluster),
        cleanup_deletion_policy(obj.annotations()),
    )
    .await?;
    let effects = match &outcome {
        Cleanup::Done(e) | Cleanup::Waiting { effects: e, .. } => e,
        Cleanup::DeleteFailed { effects: e, .. } => e,
    };
    publish_effects(ctx, obj, effects).await;
    Ok(outcome)
}

/// Plan-only: the stack the cleanup would delete (or release), recorded
/// instead; `true` when there was one (the finalizer stays).
async fn planned_cleanup<K: StackObject, P: CfnProvider>(
    obj: &PartialObjectMeta<K>,
    ctx: &Context<P>,
) -> Result<bool, Error> {
    let owner = owner(obj);
    let cfn = ctx.aws.cfn(&scope_of(obj, ctx).await?).await;
    let stack = cfn
        .describe_stack(&owner.stack_name(&ctx.settings.cluster))
        .await?;
    let actions = plan::cleanup(
        stack.as_ref(),
        &owner.ownership_tags(&ctx.settings.cluster),
        cleanup_deletion_policy(obj.annotations()),
    );
    if actions.is_empty() {
        return Ok(false);
    }
    report_plan(ctx, obj, &actions).await?;
    Ok(true)
}

/// One cleanup step; `Some(pass)` while there is more to wait for.
pub(super) async fn cleanup_object<K: StackObject, P: CfnProvider>(
    obj: &PartialObjectMeta<K>,
    ctx: &Context<P>,
) -> Result<Option<Pass>, Error> {
    if planned::plan_only(obj.annotations(), ctx.settings.plan_only) {
        // Nothing to delete: done, without the cleanup's own look (which
        // could see what this one did not, and act).
        return Ok(planned_cleanup(obj, ctx)
            .await?
            .then(|| Pass::requeue(Outcome::Planned, ctx.settings.resync)));
    }
    let uid = obj.uid().unwrap_or_default();
    ctx.base.tracker.set_state(&uid, State::Deleting);
    let outcome = run_cleanup(obj, ctx).await?;
    let delay = cleanup_delay(&ctx.base.tracker, &uid, &outcome);
    match outcome {
        Cleanup::Done(effects) => {
            let announced = !effects.is_empty();
            if !announced && Outputs::read(obj.annotations()).stack_id.is_some() {
                let note = format!(
                    "deleted CloudFormation stack {}",
                    owner(obj).stack_name(&ctx.settings.cluster)
                );
                publish(ctx, obj, EventType::Normal, "StackDeleted", note).await;
            }
            Ok(None)
        }
        Cleanup::Waiting { stack, .. } => {
            let out = Outputs {
                stack_id: Some(stack.id.clone()),
                stack_status: Some(stack.status.as_str().to_owned()),
                last_error: None,
                spec_hash: None,
            };
            status::write(&ctx.base.client, obj, &out).await?;
            Ok(delay.map(|d| Pass::requeue(Outcome::Waiting, d)))
        }
        Cleanup::DeleteFailed { stack, why, .. } => {
            let out = Outputs {
                stack_id: Some(stack.id.clone()),
                stack_status: Some(stack.status.as_str().to_owned()),
                last_error: Some(why.clone()),
                spec_hash: None,
            };
            status::write(&ctx.base.client, obj, &out).await?;
            publish(ctx, obj, EventType::Warning, "StackDeleteFailed", why).await;
            ctx.base
                .metrics
                .reconcile_errors
                .with_label_values(&[CONTROLLER, "stack_delete_failed"])
                .inc();
            Ok(delay.map(|d| Pass::requeue(Outcome::DeleteFailed, d)))
        }
    }
}

/// When to look again after a cleanup pass that is not done: the poll
/// backoff while CloudFormation deletes, the failure backoff after
/// DELETE_FAILED (deletion already asked again). The polls in between do
/// not reset the failure count, so a stack that keeps failing to delete is
/// asked again ever more slowly (1 s doubling to 5 min), not after every
/// attempt.
pub(super) fn cleanup_delay(
    tracker: &Tracker<State>,
    uid: &str,
    outcome: &Cleanup,
) -> Option<Duration> {
    match outcome {
        Cleanup::Done(_) => None,
        Cleanup::Waiting { .. } => Some(tracker.poll(uid)),
        Cleanup::DeleteFailed { .. } => Some(tracker.failed(uid)),
    }
}

/// The template annotation was removed from an object that still carries
/// the finalizer: clean up as for a deletion, delete the outputs
/// ConfigMap, then drop the output annotations and the finalizer.
pub(super) async fn release<K: StackObject, P: CfnProvider>(
    obj: &PartialObjectMeta<K>,
    ctx: &Context<P>,
) -> Result<Pass, Error> {
    if let Some(waiting) = cleanup_object(obj, ctx).await? {
        return Ok(waiting);
    }
    let uid = obj.uid().unwrap_or_default();
    status::delete_outputs(&ctx.base.client, &K::home(obj), &uid).await?;
    status::release(&ctx.base.client, obj, FINALIZER).await?;
    ctx.forget(&uid);
    Ok(Pass::await_change(Outcome::Released))
}
