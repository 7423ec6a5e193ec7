//! Service → interface VPC endpoint. What happens to an annotated Service:
//!
//! 1. [`finalizer()`] adds `vpce.hawser.io/cleanup` (if the webhook has
//!    not), then every pass is an Apply until the Service is deleted.
//! 2. Apply: annotations → [`desired::desired`] (pure) → [`apply::apply`]
//!    against EC2 (find by tags, then [`plan::plan`] (pure): adopt or
//!    create, modify in place; then execute) →
//!    outputs and `spec.externalName` by server-side apply, an Event per
//!    side effect.
//! 3. Cleanup (deletion, or the trigger annotation removed):
//!    [`cleanup::cleanup`] deletes the endpoint, waits until it is gone,
//!    deletes the generated group — or, with `retain`, untags them — and
//!    then the finalizer goes.
//!
//! The watch is metadata-only (see [`run`]); everything read is metadata,
//! everything written is a patch.

pub mod apply;
pub mod cleanup;
pub mod desired;
pub mod effects;
pub mod error;
pub mod plan;
mod report;
mod resync;
pub mod status;
mod teardown;
#[cfg(test)]
mod tests;
pub mod tracker;

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::core::v1::Service;
use kube::{
    core::PartialObjectMeta,
    runtime::{events::EventType, watcher},
    Api, Client, ResourceExt,
};
use tokio_util::sync::CancellationToken;

use self::{
    apply::Recorded,
    desired::{Defaults, Owner},
    effects::Effect,
    error::Error,
    report::{clear_plan, publish, publish_effects, report_plan},
    resync::Snapshots,
    status::{Current, Outputs, State},
    teardown::{cleanup_service, release},
    tracker::fingerprint,
};
use crate::annotations::{
    keys::{VPCE_FINALIZER, VPCE_SERVICE_NAME},
    VpceSpec,
};
use crate::aws::{Ec2Provider, EndpointState, Scope};
use crate::controller::planned;
use crate::controller::reconciler::{self, Base, Meta, Outcome, Pass, Reconciler, Source, Watch};
use crate::controller::scope::{self as aws_scope, ScopeError};
use crate::metrics::Metrics;
use crate::namespaces::NamespaceCache;

pub const CONTROLLER: &str = "vpce";
/// Services reconciled at once; bounds the burst of AWS calls at start-up.
const CONCURRENCY: u16 = 16;

type ServiceMeta = PartialObjectMeta<Service>;

/// Controller-wide settings, from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    pub cluster: String,
    pub defaults: Defaults,
    pub default_region: String,
    pub resync: Duration,
    pub namespace: Option<String>,
    /// Test hook (hidden flag): pause between creating an endpoint and
    /// recording it, to prove a crash there adopts instead of duplicating.
    pub pause_after_create: Option<Duration>,
    /// `--plan-only`: every Service only plans.
    pub plan_only: bool,
}

pub struct Context<P> {
    pub base: Base<State>,
    pub aws: P,
    pub settings: Settings,
    /// Each namespace's `aws.hawser.io/role-arn` and region.
    pub namespaces: NamespaceCache,
    /// What resync passes share: one look per scope.
    snapshots: Snapshots,
}

impl<P: Ec2Provider> Context<P> {
    pub fn new(
        client: Client,
        aws: P,
        settings: Settings,
        metrics: Arc<Metrics>,
        namespaces: NamespaceCache,
    ) -> Self {
        let base = Base::new(
            CONTROLLER,
            client,
            metrics,
            VPCE_FINALIZER.to_owned(),
            settings.resync,
        );
        let snapshots = Snapshots::new(&settings.cluster, settings.resync);
        Self {
            base,
            aws,
            settings,
            namespaces,
            snapshots,
        }
    }
}

/// Runs the controller until `shutdown`; calls `synced` once the first
/// list of Services is in.
///
/// Watch scope: a metadata-only watch (`PartialObjectMetadata`) of every
/// Service (or those in `--watch-namespace`). Annotations cannot be
/// selected server-side, and a label stamped by the webhook would miss
/// Services created before hawser or while the webhook was down. Metadata
/// is all a pass reads: the annotations, the finalizer, the uid and the
/// deletion timestamp; the spec is written by patch, never read. So a
/// Service that lost its trigger but kept the finalizer is still seen and
/// cleaned up, and the cache holds a fraction of each object.
pub async fn run<P: Ec2Provider>(
    ctx: Arc<Context<P>>,
    synced: impl FnOnce() + Send + 'static,
    shutdown: CancellationToken,
) {
    let api: Api<ServiceMeta> = match &ctx.settings.namespace {
        Some(ns) => Api::namespaced(ctx.base.client.clone(), ns),
        None => Api::all(ctx.base.client.clone()),
    };
    let watch = Watch {
        source: Source::Watch {
            api,
            config: watcher::Config::default(),
        },
        concurrency: CONCURRENCY,
    };
    reconciler::run(ctx, watch, |c| c, synced, shutdown).await;
}

/// `vpce.hawser.io/service-name` asks for an endpoint;
/// `vpce.hawser.io/cleanup` guards it.
impl<P: Ec2Provider> Reconciler for Context<P> {
    type Kind = Service;
    type Error = Error;
    type State = State;
    const CONTROLLER: &'static str = CONTROLLER;

    fn base(&self) -> &Base<State> {
        &self.base
    }

    fn api(&self, obj: &ServiceMeta) -> Api<ServiceMeta> {
        Api::namespaced(
            self.base.client.clone(),
            &obj.namespace().unwrap_or_default(),
        )
    }

    fn triggered(&self, obj: &ServiceMeta) -> bool {
        obj.annotations().contains_key(VPCE_SERVICE_NAME)
    }

    async fn apply(&self, obj: &ServiceMeta) -> Result<Pass, Error> {
        // Before any side effect (the webhook normally added it already).
        self.base.add_finalizer(&self.api(obj), obj).await?;
        apply_service(obj, self).await
    }

    async fn cleanup(&self, obj: &ServiceMeta) -> Result<Option<Pass>, Error> {
        cleanup_service(obj, self).await
    }

    async fn release(&self, obj: &ServiceMeta) -> Result<Pass, Error> {
        release(obj, self).await
    }

    async fn mark_failed(&self, obj: &Meta<Service>, error: &Error) -> Result<bool, Error> {
        report::mark_failed(obj, self, error).await?;
        Ok(true)
    }
}

fn owner(obj: &ServiceMeta) -> Owner {
    Owner {
        namespace: obj.namespace().unwrap_or_default(),
        name: obj.name_any(),
        uid: obj.uid().unwrap_or_default(),
    }
}

fn services(ctx: &Context<impl Ec2Provider>, obj: &ServiceMeta) -> Api<Service> {
    Api::namespaced(
        ctx.base.client.clone(),
        &obj.namespace().unwrap_or_default(),
    )
}

/// The credentials and region for a Service's AWS calls: its namespace's
/// role and region, its own region first.
fn scope(
    ctx: &Context<impl Ec2Provider>,
    obj: &ServiceMeta,
    region: Option<&str>,
) -> Result<Scope, ScopeError> {
    aws_scope::resolve(
        &ctx.namespaces,
        &obj.namespace().unwrap_or_default(),
        region,
        &ctx.settings.default_region,
    )
}

async fn apply_service<P: Ec2Provider>(obj: &ServiceMeta, ctx: &Context<P>) -> Result<Pass, Error> {
    let uid = obj.uid().unwrap_or_default();
    let inputs = fingerprint(obj.annotations());
    if let Some(left) = ctx
        .base
        .tracker
        .settled_for(&uid, &inputs, ctx.settings.resync)
    {
        // Our own write echoing back, or a terminal failure whose inputs
        // have not changed: nothing to ask AWS until the resync.
        return Ok(Pass::requeue(Outcome::Unchanged, left));
    }
    let spec = match VpceSpec::from_annotations(obj.annotations()) {
        Ok(Some(spec)) => spec,
        Ok(None) => return Ok(Pass::await_change(Outcome::Skipped)),
        Err(errors) => {
            let msg = errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            return Err(Error::InvalidAnnotations(msg));
        }
    };
    let owner = owner(obj);
    let desired = desired::desired(&spec, &owner, &ctx.settings.cluster, &ctx.settings.defaults)?;
    let current = Current::read(obj.annotations());
    let recorded = Recorded {
        endpoint_id: current.endpoint_id.clone(),
        group_id: current.group_id.clone(),
    };
    // A resync of inputs that settled: nothing was asked of AWS since.
    let settled = ctx.base.tracker.settled_at(&uid, &inputs);
    let scope = scope(ctx, obj, spec.region.as_deref())?;
    let ec2 = ctx.aws.ec2(&scope).await;
    if planned::plan_only(obj.annotations(), ctx.settings.plan_only) {
        // Reads only; the plan is what apply would carry out.
        let observed = apply::observe(&ec2, &desired, &recorded).await?;
        let plan = plan::plan(&desired, &observed, &recorded, &uid);
        report_plan(ctx, obj, &plan::actions(&desired, &plan)).await?;
        ctx.base.tracker.settle(&uid, inputs);
        return Ok(Pass::requeue(Outcome::Planned, ctx.settings.resync));
    }
    clear_plan(ctx, obj).await?;
    let confirmed = match settled {
        Some(settled) => {
            ctx.snapshots
                .confirm(&ec2, &scope, settled, &desired, &recorded, &uid)
                .await?
        }
        None => None,
    };
    let applied = match confirmed {
        Some(applied) => applied,
        None => apply::apply(&ec2, &desired, &uid, &recorded).await?,
    };
    if let Some(pause) = ctx.settings.pause_after_create {
        if applied
            .effects
            .iter()
            .any(|e| matches!(e, Effect::EndpointCreated { .. }))
        {
            tracing::warn!(
                ?pause,
                "test hook: pausing before recording the new endpoint"
            );
            tokio::time::sleep(pause).await;
        }
    }
    publish_effects(ctx, obj, &applied.effects).await;

    let endpoint = &applied.endpoint;
    let state = match &endpoint.state {
        EndpointState::Available => State::Available,
        EndpointState::Rejected | EndpointState::Failed | EndpointState::Expired => State::Failed,
        _ => State::Pending,
    };
    let outputs = Outputs {
        state,
        endpoint_id: Some(endpoint.id.clone()),
        dns_name: endpoint.dns_names.first().cloned(),
        group_id: applied.group_id.clone(),
    };
    status::write(&services(ctx, obj), &owner.namespace, &owner.name, &outputs).await?;
    ctx.base.tracker.set_state(&uid, state);
    match state {
        State::Available => {
            if current.state.as_deref() != Some(State::Available.as_str()) {
                let note = format!(
                    "VPC endpoint {} is available; the Service now resolves to {}",
                    endpoint.id,
                    outputs.dns_name.as_deref().unwrap_or("(no DNS name)")
                );
                publish(ctx, obj, EventType::Normal, "EndpointAvailable", note).await;
            }
            if applied.unfinished {
                return Ok(Pass::requeue(Outcome::Pending, ctx.base.tracker.poll(&uid)));
            }
            ctx.base.tracker.settle(&uid, inputs);
            Ok(Pass::requeue(Outcome::Applied, ctx.settings.resync))
        }
        State::Failed => {
            let note = format!(
                "VPC endpoint {} is {:?}; change the Service's annotations to try again",
                endpoint.id, endpoint.state
            );
            publish(ctx, obj, EventType::Warning, "ProvisioningFailed", note).await;
            ctx.base.tracker.settle(&uid, inputs);
            Ok(Pass::requeue(Outcome::Failed, ctx.settings.resync))
        }
        State::Pending | State::Deleting => {
            Ok(Pass::requeue(Outcome::Pending, ctx.base.tracker.poll(&uid)))
        }
    }
}
