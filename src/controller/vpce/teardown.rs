//! The cleanup pass (the Service deleted) and the release pass (the
//! trigger annotation removed): [`cleanup::cleanup`] against EC2, then
//! the Service let go.

use kube::{
    api::{Patch, PatchParams},
    Api, ResourceExt,
};

use super::{
    cleanup::{self, Cleanup},
    error::Error,
    owner,
    report::{publish_effects, report_plan},
    scope, services,
    status::{self, Current, State},
    Context, ServiceMeta,
};
use crate::annotations::{cleanup_deletion_policy, keys::AWS_REGION, parse_region, DeletionPolicy};
use crate::aws::Ec2Provider;
use crate::controller::{
    planned,
    reconciler::{Outcome, Pass},
    timeout, FIELD_MANAGER,
};

/// Deletion policy and region for cleanup, read leniently: cleanup must
/// run even when the other annotations no longer parse. An unreadable
/// policy keeps the resources, the choice that cannot lose data.
fn cleanup_inputs(obj: &ServiceMeta) -> (DeletionPolicy, Option<String>) {
    let ann = obj.annotations();
    let policy = cleanup_deletion_policy(ann);
    let region = ann
        .get(AWS_REGION)
        .and_then(|v| parse_region(AWS_REGION, v).ok());
    (policy, region)
}

/// What a teardown pass did.
enum Step {
    Ran(Cleanup),
    /// Plan-only, and AWS still holds the Service's resources: the plan
    /// is recorded, nothing is deleted.
    Planned,
}

async fn run_cleanup<P: Ec2Provider>(obj: &ServiceMeta, ctx: &Context<P>) -> Result<Step, Error> {
    let owner = owner(obj);
    let (policy, region) = cleanup_inputs(obj);
    let ec2 = ctx.aws.ec2(&scope(ctx, obj, region.as_deref())?).await;
    let ownership = owner.ownership_tags(&ctx.settings.cluster);
    if planned::plan_only(obj.annotations(), ctx.settings.plan_only) {
        let actions = cleanup::planned(&ec2, &ownership, policy).await?;
        if actions.is_empty() {
            // Nothing to delete; never fall through to the cleanup, whose
            // own look could see what this one did not.
            return Ok(Step::Ran(Cleanup::Done(vec![])));
        }
        report_plan(ctx, obj, &actions).await?;
        return Ok(Step::Planned);
    }
    let outcome = cleanup::cleanup(&ec2, &ownership, &owner.reference(), policy).await?;
    let effects = match &outcome {
        Cleanup::Done(effects) | Cleanup::Waiting { effects, .. } => effects,
    };
    publish_effects(ctx, obj, effects).await;
    Ok(Step::Ran(outcome))
}

/// One cleanup step for a deleted Service: `None` once nothing of it is
/// left in AWS (the skeleton then removes the finalizer).
pub(super) async fn cleanup_service<P: Ec2Provider>(
    obj: &ServiceMeta,
    ctx: &Context<P>,
) -> Result<Option<Pass>, Error> {
    let uid = obj.uid().unwrap_or_default();
    let current = Current::read(obj.annotations());
    if current.state.as_deref() != Some(State::Deleting.as_str()) {
        let owner = owner(obj);
        let outputs = current.with_state(State::Deleting);
        status::write(&services(ctx, obj), &owner.namespace, &owner.name, &outputs).await?;
        ctx.base.tracker.set_state(&uid, State::Deleting);
    }
    match run_cleanup(obj, ctx).await? {
        Step::Planned => Ok(Some(Pass::requeue(Outcome::Planned, ctx.settings.resync))),
        Step::Ran(Cleanup::Done(_)) => Ok(None),
        Step::Ran(Cleanup::Waiting { why, .. }) => {
            tracing::info!(%why, "cleanup under way");
            ctx.base.tracker.succeeded(&uid);
            let poll = ctx.base.tracker.poll(&uid);
            Ok(Some(Pass::requeue(Outcome::Waiting, poll)))
        }
    }
}

/// The trigger annotation was removed from a Service that still carries
/// the finalizer: clean up as for a deletion, then drop the outputs and
/// the finalizer. The spec is left as it is; the Service is the user's
/// again.
pub(super) async fn release<P: Ec2Provider>(
    obj: &ServiceMeta,
    ctx: &Context<P>,
) -> Result<Pass, Error> {
    let uid = obj.uid().unwrap_or_default();
    match run_cleanup(obj, ctx).await? {
        Step::Planned => return Ok(Pass::requeue(Outcome::Planned, ctx.settings.resync)),
        Step::Ran(Cleanup::Waiting { why, .. }) => {
            tracing::info!(%why, "release under way");
            let poll = ctx.base.tracker.poll(&uid);
            return Ok(Pass::requeue(Outcome::Waiting, poll));
        }
        Step::Ran(Cleanup::Done(_)) => {}
    }
    let api: Api<ServiceMeta> = Api::namespaced(
        ctx.base.client.clone(),
        &obj.namespace().unwrap_or_default(),
    );
    let patch = status::release_patch(obj.annotations(), obj.finalizers());
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    timeout::call(
        "release the Service",
        api.patch(&obj.name_any(), &params, &Patch::<()>::Json(patch)),
    )
    .await?;
    ctx.base.tracker.forget(&uid);
    Ok(Pass::await_change(Outcome::Released))
}
