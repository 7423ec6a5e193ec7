//! Namespace or Deployment → CloudFormation stack. What happens to an
//! object annotated `cfn.hawser.io/template` (or `template-configmap`):
//!
//! 1. [`finalizer()`] adds `cfn.hawser.io/cleanup`; every pass is then an
//!    Apply until the object is deleted.
//! 2. Apply: annotations (+ the template ConfigMap) → [`desired::desired`]
//!    (pure) → [`apply::apply`]: one DescribeStacks, then the one step
//!    [`machine::next_apply`] decides (create, wait, update through a
//!    change set, delete a dead stack to re-create it, report) → outputs
//!    ConfigMap and output annotations by server-side apply, an Event per
//!    side effect and per failure.
//! 3. Cleanup (deletion, or the template annotation removed):
//!    [`cleanup::cleanup`] deletes the stack and waits for it to be gone
//!    — or, with `retain`, leaves it — then the finalizer goes.
//!
//! Watches are metadata-only: Namespaces, Deployments, and ConfigMaps (an
//! edit of a template ConfigMap reconciles the objects naming it).

pub mod apply;
pub mod cleanup;
pub mod desired;
pub mod effects;
pub mod error;
pub mod inputs;
pub mod kind;
pub mod machine;
mod report;
pub mod status;
mod teardown;
#[cfg(test)]
mod tests;

use std::{collections::BTreeMap, collections::HashMap, sync::Arc, sync::Mutex, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Namespace},
};
use kube::{
    core::PartialObjectMeta,
    runtime::{
        controller::{Action, Config as ControllerConfig, Controller},
        events::{EventType, Recorder, Reporter},
        finalizer::{finalizer, Event as FinalizerEvent},
        reflector::{ObjectRef, Store},
        watcher,
    },
    Api, Client, Resource, ResourceExt,
};
use tokio_util::sync::CancellationToken;

use self::{
    apply::Verdict,
    desired::Owner,
    error::{Error, Failure},
    inputs::{scope_of, template},
    kind::StackObject,
    machine::Memo,
    report::{fail, publish, publish_effects},
    status::{Outputs, OutputsWrite, State},
    teardown::{cleanup_object, release},
};
use crate::annotations::{
    keys::{CFN_TEMPLATE, CFN_TEMPLATE_CONFIGMAP},
    parse_template_configmap,
};
use crate::aws::CfnProvider;
use crate::controller::tracker::{fingerprint, Tracker};
use crate::metrics::Metrics;

pub const CONTROLLER: &str = "stack";
/// Finalizer on every object with a stack.
pub const FINALIZER: &str = crate::annotations::keys::CFN_FINALIZER;
/// Objects reconciled at once, per kind.
const CONCURRENCY: u16 = 8;
/// Fingerprint entry standing for the template's text (a ConfigMap's
/// content is an input too).
const TEMPLATE_INPUT: &str = "(template sha-256)";

/// Controller-wide settings, from the command line.
#[derive(Debug, Clone)]
pub struct Settings {
    pub cluster: String,
    /// `--default-tags`, on every stack beside hawser's own.
    pub default_tags: crate::aws::Tags,
    pub default_region: String,
    pub resync: Duration,
    pub namespace: Option<String>,
}

pub struct Context<P> {
    pub client: Client,
    pub aws: P,
    pub settings: Settings,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    pub tracker: Tracker<State>,
    memos: Mutex<HashMap<String, Memo>>,
}

impl<P: CfnProvider> Context<P> {
    pub fn new(client: Client, aws: P, settings: Settings, metrics: Arc<Metrics>) -> Self {
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
            memos: Mutex::new(HashMap::new()),
        }
    }

    fn memo(&self, uid: &str) -> Memo {
        let memos = self.memos.lock().unwrap_or_else(|p| p.into_inner());
        memos.get(uid).cloned().unwrap_or_default()
    }

    fn set_memo(&self, uid: &str, memo: Memo) {
        let mut memos = self.memos.lock().unwrap_or_else(|p| p.into_inner());
        memos.insert(uid.to_owned(), memo);
    }

    fn forget(&self, uid: &str) {
        self.tracker.forget(uid);
        let mut memos = self.memos.lock().unwrap_or_else(|p| p.into_inner());
        memos.remove(uid);
    }
}

/// Runs the Namespace and the Deployment controllers until `shutdown`.
pub async fn run<P: CfnProvider>(ctx: Arc<Context<P>>, shutdown: CancellationToken) {
    tokio::join!(
        run_kind::<Namespace, P>(ctx.clone(), shutdown.clone()),
        run_kind::<Deployment, P>(ctx, shutdown),
    );
}

async fn run_kind<K: StackObject, P: CfnProvider>(
    ctx: Arc<Context<P>>,
    shutdown: CancellationToken,
) {
    let (api, config) = K::watch(ctx.client.clone(), ctx.settings.namespace.as_deref());
    let configmaps: Api<PartialObjectMeta<ConfigMap>> = match &ctx.settings.namespace {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let controller = Controller::new(api, config)
        .with_config(ControllerConfig::default().concurrency(CONCURRENCY))
        .graceful_shutdown_on(async move { shutdown.cancelled().await });
    let store = controller.store();
    tracing::info!(controller = CONTROLLER, kind = K::KIND.as_str(), "starting");
    controller
        .watches(configmaps, watcher::Config::default(), move |cm| {
            users_of(&store, &cm)
        })
        .run(reconcile::<K, P>, error_policy::<K, P>, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "stack controller");
            }
        })
        .await;
}

/// The objects whose template is ConfigMap `cm`: an edit of it
/// reconciles them.
fn users_of<K: StackObject>(
    store: &Store<PartialObjectMeta<K>>,
    cm: &PartialObjectMeta<ConfigMap>,
) -> Vec<ObjectRef<PartialObjectMeta<K>>> {
    let (namespace, name) = (cm.namespace().unwrap_or_default(), cm.name_any());
    store
        .state()
        .iter()
        .filter(|obj| K::home(obj) == namespace)
        .filter(|obj| {
            obj.annotations()
                .get(CFN_TEMPLATE_CONFIGMAP)
                .and_then(|v| parse_template_configmap(CFN_TEMPLATE_CONFIGMAP, v).ok())
                .is_some_and(|r| r.name == name)
        })
        .map(|obj| ObjectRef::from_obj(obj.as_ref()))
        .collect()
}

fn error_policy<K: StackObject, P: CfnProvider>(
    obj: Arc<PartialObjectMeta<K>>,
    err: &Error,
    ctx: Arc<Context<P>>,
) -> Action {
    let delay = ctx.tracker.failed(&obj.uid().unwrap_or_default());
    tracing::warn!(
        kind = K::KIND.as_str(),
        namespace = obj.namespace().unwrap_or_default(),
        name = obj.name_any(),
        category = err.category(),
        error = %err,
        retry_in = ?delay,
        "reconcile failed"
    );
    Action::requeue(delay)
}

async fn reconcile<K: StackObject, P: CfnProvider>(
    obj: Arc<PartialObjectMeta<K>>,
    ctx: Arc<Context<P>>,
) -> Result<Action, Error> {
    let span = tracing::info_span!(
        "reconcile",
        controller = CONTROLLER,
        kind = K::KIND.as_str(),
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
            &*obj,
            EventType::Warning,
            "ReconcileError",
            e.user_message(),
        )
        .await;
    }
    outcome
}

fn has_trigger(ann: &BTreeMap<String, String>) -> bool {
    ann.contains_key(CFN_TEMPLATE) || ann.contains_key(CFN_TEMPLATE_CONFIGMAP)
}

async fn dispatch<K: StackObject, P: CfnProvider>(
    obj: &Arc<PartialObjectMeta<K>>,
    ctx: &Context<P>,
    result: &mut &'static str,
) -> Result<Action, Error> {
    let uid = obj.uid().unwrap_or_default();
    let triggered = has_trigger(obj.annotations());
    let has_finalizer = obj.finalizers().iter().any(|f| f == FINALIZER);
    let deleting = obj.meta().deletion_timestamp.is_some();
    if !triggered && !has_finalizer {
        ctx.forget(&uid);
        *result = "skipped";
        return Ok(Action::await_change());
    }
    if !triggered && !deleting {
        return release(obj, ctx, result).await;
    }
    let api = K::meta_api(ctx.client.clone(), &K::home(obj));
    finalizer(&api, FINALIZER, obj.clone(), |event| async {
        match event {
            FinalizerEvent::Apply(o) => apply_object(&o, ctx, result).await,
            FinalizerEvent::Cleanup(o) => cleanup_object(&o, ctx, result).await,
        }
    })
    .await
    .or_else(|e| crate::controller::pass::unless_gone(e).map_err(|e| Error::Finalizer(Box::new(e))))
}

fn owner<K: StackObject>(obj: &PartialObjectMeta<K>) -> Owner {
    Owner {
        kind: K::KIND,
        namespace: K::home(obj),
        name: obj.name_any(),
        uid: obj.uid().unwrap_or_default(),
    }
}

async fn apply_object<K: StackObject, P: CfnProvider>(
    obj: &PartialObjectMeta<K>,
    ctx: &Context<P>,
    result: &mut &'static str,
) -> Result<Action, Error> {
    let uid = obj.uid().unwrap_or_default();
    let owner = owner(obj);
    let spec = match K::stack_spec(obj.annotations()) {
        Ok(Some(spec)) => spec,
        Ok(None) => return Ok(Action::await_change()),
        Err(msg) => {
            let inputs = fingerprint(obj.annotations());
            return fail(
                obj,
                ctx,
                inputs,
                None,
                Failure::InvalidAnnotations(msg),
                result,
            )
            .await;
        }
    };
    let body = template(ctx, &owner.namespace, &spec.template).await?;
    let mut inputs = fingerprint(obj.annotations());
    let body_hash = match &body {
        Ok(text) => desired::spec_hash(text, &BTreeMap::new(), &[]),
        Err(_) => "(none)".to_owned(),
    };
    inputs.insert(TEMPLATE_INPUT.to_owned(), body_hash);
    if let Some(left) = ctx.tracker.settled_for(&uid, &inputs, ctx.settings.resync) {
        // Our own write echoing back, or a failure whose inputs have not
        // changed: nothing to ask AWS until the resync.
        *result = "unchanged";
        return Ok(Action::requeue(left));
    }
    let body = match body {
        Ok(body) => body,
        Err(failure) => return fail(obj, ctx, inputs, None, failure, result).await,
    };
    let want = desired::desired(
        &spec,
        &body,
        &owner,
        &ctx.settings.cluster,
        &ctx.settings.default_tags,
    );
    let cfn = ctx.aws.cfn(&scope_of(obj, ctx).await?).await;
    let mut memo = ctx.memo(&uid);
    if memo.applied.is_none() {
        // After a restart or a change of leader. (Within one process the
        // memo is newer: the cached object may not show our last write.)
        memo.applied = Outputs::read(obj.annotations()).spec_hash;
    }
    let applied = apply::apply(&cfn, &want, &mut memo).await;
    let spec_hash = memo.applied.clone();
    ctx.set_memo(&uid, memo);
    let applied = applied?;
    publish_effects(ctx, obj, &applied.effects).await;
    let stack = applied.stack.as_ref();
    let mut out = Outputs {
        stack_id: stack.map(|s| s.id.clone()),
        stack_status: stack.map(|s| s.status.as_str().to_owned()),
        last_error: None,
        spec_hash: stack.and(spec_hash),
    };
    match applied.verdict {
        Verdict::Pending => {
            status::write(&ctx.client, obj, &out).await?;
            ctx.tracker.set_state(&uid, State::Pending);
            *result = "pending";
            Ok(Action::requeue(ctx.tracker.poll(&uid)))
        }
        Verdict::Ready => {
            let stack = stack.expect("Ready has a stack");
            let cm_name = spec.outputs_configmap_name(&owner.name);
            let written =
                status::write_outputs(&ctx.client, obj, &owner.namespace, &cm_name, &stack.outputs)
                    .await?;
            if let OutputsWrite::Conflict(msg) = written {
                let failure = Failure::OutputsConflict(msg);
                return fail(obj, ctx, inputs, Some(out), failure, result).await;
            }
            let before = Outputs::read(obj.annotations());
            status::write(&ctx.client, obj, &out).await?;
            // Announced once per arrival: from a pass that waited (the
            // status may already read COMPLETE: moto creates at once), or
            // when the annotations did not say so yet.
            let arrived = ctx.tracker.state(&uid) == Some(State::Pending)
                || before.stack_status != out.stack_status
                || before.last_error.is_some();
            if arrived {
                let note = format!(
                    "stack {} is {}; {} output(s) in ConfigMap {}/{cm_name}",
                    stack.name,
                    stack.status.as_str(),
                    stack.outputs.len(),
                    owner.namespace
                );
                publish(ctx, obj, EventType::Normal, "StackReady", note).await;
            }
            ctx.tracker.set_state(&uid, State::Ready);
            ctx.tracker.settle(&uid, inputs);
            *result = "applied";
            Ok(Action::requeue(ctx.settings.resync))
        }
        // The outputs ConfigMap is left as it is: after a failed update
        // (`keep_outputs`) the stack still serves the previous outputs;
        // after a failed create there are none.
        Verdict::Failed { failure, .. } => {
            if stack.is_none() {
                out = Outputs::default();
            }
            fail(obj, ctx, inputs, Some(out), failure, result).await
        }
    }
}
