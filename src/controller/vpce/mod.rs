//! Service → interface VPC endpoint. What happens to an annotated Service:
//!
//! 1. [`finalizer()`] adds `vpce.hawser.io/cleanup` (if the webhook has
//!    not), then every pass is an Apply until the Service is deleted.
//! 2. Apply: annotations → [`desired::desired`] (pure) → [`apply::apply`]
//!    against EC2 (find by tags, adopt or create, modify in place) →
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
mod report;
pub mod status;
mod teardown;
#[cfg(test)]
mod tests;
pub mod tracker;

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use kube::{
    core::PartialObjectMeta,
    runtime::{
        controller::{Action, Config as ControllerConfig, Controller},
        events::{EventType, Recorder, Reporter},
        finalizer::{finalizer, Event as FinalizerEvent},
        watcher,
    },
    Api, Client, Resource, ResourceExt,
};
use tokio_util::sync::CancellationToken;

use self::{
    apply::Recorded,
    desired::{Defaults, Owner},
    effects::Effect,
    error::Error,
    report::{fail, fail_assume_role, publish, publish_effects},
    status::{Current, Outputs, State},
    teardown::{cleanup_service, release},
    tracker::{fingerprint, Tracker},
};
use crate::annotations::{
    keys::{VPCE_FINALIZER, VPCE_SERVICE_NAME},
    VpceSpec,
};
use crate::aws::{Ec2Provider, EndpointState, Scope};
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
}

pub struct Context<P> {
    pub client: Client,
    pub aws: P,
    pub settings: Settings,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub tracker: Tracker,
    /// Each namespace's `aws.hawser.io/role-arn` and region.
    pub namespaces: NamespaceCache,
}

impl<P: Ec2Provider> Context<P> {
    pub fn new(
        client: Client,
        aws: P,
        settings: Settings,
        metrics: Arc<Metrics>,
        namespaces: NamespaceCache,
    ) -> Self {
        let reporter = Reporter {
            controller: "hawser".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            tracker: Tracker::new(CONTROLLER, metrics.managed_objects.clone()),
            client,
            aws,
            settings,
            metrics,
            namespaces,
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
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let controller = Controller::new(api, watcher::Config::default())
        .with_config(ControllerConfig::default().concurrency(CONCURRENCY))
        .graceful_shutdown_on(async move { shutdown.cancelled().await });
    let store = controller.store();
    tokio::spawn(async move {
        // kube-runtime 5's store readiness wakes only the last task to
        // wait on it, and the controller itself waits too: poll instead.
        loop {
            let wait = tokio::time::timeout(Duration::from_millis(250), store.wait_until_ready());
            match wait.await {
                Ok(Ok(())) => {
                    tracing::info!(controller = CONTROLLER, "Service cache synced");
                    synced();
                    return;
                }
                Ok(Err(_)) => return,
                Err(_) => continue,
            }
        }
    });
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "vpce controller");
            }
        })
        .await;
}

fn error_policy<P: Ec2Provider>(
    obj: Arc<ServiceMeta>,
    err: &Error,
    ctx: Arc<Context<P>>,
) -> Action {
    let delay = ctx.tracker.failed(&obj.uid().unwrap_or_default());
    tracing::warn!(
        namespace = obj.namespace().unwrap_or_default(),
        name = obj.name_any(),
        category = err.category(),
        error = %err,
        retry_in = ?delay,
        "reconcile failed"
    );
    Action::requeue(delay)
}

async fn reconcile<P: Ec2Provider>(
    obj: Arc<ServiceMeta>,
    ctx: Arc<Context<P>>,
) -> Result<Action, Error> {
    let span = tracing::info_span!(
        "reconcile",
        controller = CONTROLLER,
        namespace = obj.namespace().unwrap_or_default(),
        name = obj.name_any(),
        uid = obj.uid().unwrap_or_default(),
        result = tracing::field::Empty,
    );
    let outcome =
        crate::controller::pass::measured(&ctx.metrics, CONTROLLER, span, Error::category, async {
            let mut result = "finalizer";
            let outcome = dispatch(&obj, &ctx, &mut result).await;
            (outcome, result)
        })
        .await;
    if let Err(e) = &outcome {
        publish(
            &ctx,
            &obj,
            EventType::Warning,
            "ReconcileError",
            e.user_message(),
        )
        .await;
    }
    outcome
}

/// Decides which path a Service takes; `finalizer()` is the top-level
/// action for every Service that asks for an endpoint or still carries
/// the finalizer while being deleted.
async fn dispatch<P: Ec2Provider>(
    obj: &Arc<ServiceMeta>,
    ctx: &Context<P>,
    result: &mut &'static str,
) -> Result<Action, Error> {
    let uid = obj.uid().unwrap_or_default();
    let has_trigger = obj.annotations().contains_key(VPCE_SERVICE_NAME);
    let has_finalizer = obj.finalizers().iter().any(|f| f == VPCE_FINALIZER);
    let deleting = obj.meta().deletion_timestamp.is_some();
    if !has_trigger && !has_finalizer {
        ctx.tracker.forget(&uid);
        *result = "skipped";
        return Ok(Action::await_change());
    }
    if !has_trigger && !deleting {
        return release(obj, ctx, result).await;
    }
    let api: Api<ServiceMeta> =
        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    finalizer(&api, VPCE_FINALIZER, obj.clone(), |event| async {
        match event {
            FinalizerEvent::Apply(o) => apply_service(&o, ctx, result).await,
            FinalizerEvent::Cleanup(o) => cleanup_service(&o, ctx, result).await,
        }
    })
    .await
    .or_else(|e| crate::controller::pass::unless_gone(e).map_err(|e| Error::Finalizer(Box::new(e))))
}

fn owner(obj: &ServiceMeta) -> Owner {
    Owner {
        namespace: obj.namespace().unwrap_or_default(),
        name: obj.name_any(),
        uid: obj.uid().unwrap_or_default(),
    }
}

fn services(ctx: &Context<impl Ec2Provider>, obj: &ServiceMeta) -> Api<Service> {
    Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default())
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

async fn apply_service<P: Ec2Provider>(
    obj: &ServiceMeta,
    ctx: &Context<P>,
    result: &mut &'static str,
) -> Result<Action, Error> {
    let uid = obj.uid().unwrap_or_default();
    let inputs = fingerprint(obj.annotations());
    if let Some(left) = ctx.tracker.settled_for(&uid, &inputs, ctx.settings.resync) {
        // Our own write echoing back, or a terminal failure whose inputs
        // have not changed: nothing to ask AWS until the resync.
        *result = "unchanged";
        return Ok(Action::requeue(left));
    }
    let spec = match VpceSpec::from_annotations(obj.annotations()) {
        Ok(Some(spec)) => spec,
        Ok(None) => return Ok(Action::await_change()),
        Err(errors) => {
            let msg = errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            return fail(obj, ctx, Error::InvalidAnnotations(msg), result).await;
        }
    };
    let owner = owner(obj);
    let desired =
        match desired::desired(&spec, &owner, &ctx.settings.cluster, &ctx.settings.defaults) {
            Ok(d) => d,
            Err(e) => return fail(obj, ctx, e.into(), result).await,
        };
    let current = Current::read(obj.annotations());
    let recorded = Recorded {
        endpoint_id: current.endpoint_id.clone(),
        group_id: current.group_id.clone(),
    };
    let scope = match scope(ctx, obj, spec.region.as_deref()) {
        Ok(s) => s,
        Err(e) if e.is_terminal() => return fail(obj, ctx, e.into(), result).await,
        Err(e) => return Err(e.into()),
    };
    let ec2 = ctx.aws.ec2(&scope).await;
    let applied = match apply::apply(&ec2, &desired, &uid, &recorded).await {
        Ok(applied) => applied,
        Err(e) if e.is_terminal() => return fail(obj, ctx, e, result).await,
        Err(Error::Aws(e)) if e.is_assume_role() => {
            return fail_assume_role(obj, ctx, Error::Aws(e), result).await
        }
        Err(e) => return Err(e),
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
    ctx.tracker.set_state(&uid, state);
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
                *result = "pending";
                return Ok(Action::requeue(ctx.tracker.poll(&uid)));
            }
            ctx.tracker.settle(&uid, inputs);
            *result = "applied";
            Ok(Action::requeue(ctx.settings.resync))
        }
        State::Failed => {
            let note = format!(
                "VPC endpoint {} is {:?}; change the Service's annotations to try again",
                endpoint.id, endpoint.state
            );
            publish(ctx, obj, EventType::Warning, "ProvisioningFailed", note).await;
            ctx.tracker.settle(&uid, inputs);
            *result = "failed";
            Ok(Action::requeue(ctx.settings.resync))
        }
        State::Pending | State::Deleting => {
            *result = "pending";
            Ok(Action::requeue(ctx.tracker.poll(&uid)))
        }
    }
}
