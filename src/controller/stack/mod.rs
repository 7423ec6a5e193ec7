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
pub mod plan;
pub mod released;
mod report;
mod resync;
pub mod status;
mod teardown;
#[cfg(test)]
mod tests;

use std::{
    collections::BTreeMap, collections::HashMap, marker::PhantomData, sync::Arc, sync::Mutex,
    time::Duration,
};

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Namespace},
};
use kube::{
    core::PartialObjectMeta,
    runtime::{
        events::EventType,
        reflector::{ObjectRef, Store},
        watcher,
    },
    Api, Client, ResourceExt,
};
use tokio_util::sync::CancellationToken;

use self::{
    apply::Verdict,
    desired::Owner,
    error::{Error, Failure},
    inputs::{scope_of, template},
    kind::StackObject,
    machine::Memo,
    report::{clear_plan, publish, publish_effects, report_plan},
    resync::Snapshots,
    status::{Outputs, OutputsWrite, State},
    teardown::{cleanup_object, release},
};
use crate::annotations::{
    keys::{CFN_TEMPLATE, CFN_TEMPLATE_CONFIGMAP},
    parse_template_configmap,
};
use crate::aws::{CfnProvider, CloudFormationApi};
use crate::controller::planned;
use crate::controller::reconciler::{self, Base, Meta, Outcome, Pass, Reconciler, Watch};
use crate::controller::tracker::{fingerprint, Fingerprint};
use crate::metrics::Metrics;
use crate::namespaces::NamespaceCache;

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
    /// `--plan-only`: every object only plans.
    pub plan_only: bool,
}

pub struct Context<P> {
    pub base: Base<State>,
    pub aws: P,
    pub settings: Settings,
    /// The process's one Namespace watch, which feeds the Namespace kind.
    pub namespaces: NamespaceCache,
    memos: Mutex<HashMap<String, Memo>>,
    /// What resync passes share: one look per scope.
    snapshots: Snapshots,
}

impl<P: CfnProvider> Context<P> {
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
            FINALIZER.to_owned(),
            settings.resync,
        );
        Self {
            base,
            aws,
            snapshots: Snapshots::new(&settings.cluster, settings.resync),
            settings,
            namespaces,
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
        self.base.tracker.forget(uid);
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
    let source = K::source(
        ctx.base.client.clone(),
        ctx.settings.namespace.as_deref(),
        &ctx.namespaces,
    );
    let configmaps: Api<PartialObjectMeta<ConfigMap>> = match &ctx.settings.namespace {
        Some(ns) => Api::namespaced(ctx.base.client.clone(), ns),
        None => Api::all(ctx.base.client.clone()),
    };
    tracing::info!(controller = CONTROLLER, kind = K::KIND.as_str(), "starting");
    let watch = Watch {
        source,
        concurrency: CONCURRENCY,
    };
    let extend = move |controller: kube::runtime::Controller<Meta<K>>| {
        let store = controller.store();
        controller.watches(configmaps, watcher::Config::default(), move |cm| {
            users_of(&store, &cm)
        })
    };
    let stacks = Arc::new(Stacks::<K, P>::new(ctx));
    reconciler::run(stacks, watch, extend, || {}, shutdown).await;
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

/// The stack controller for objects of kind `K`; both kinds share one
/// [`Context`] (one tracker, one set of memos).
pub struct Stacks<K, P> {
    pub ctx: Arc<Context<P>>,
    kind: PhantomData<fn() -> K>,
}

impl<K: StackObject, P: CfnProvider> Stacks<K, P> {
    pub fn new(ctx: Arc<Context<P>>) -> Self {
        Self {
            ctx,
            kind: PhantomData,
        }
    }
}

/// `cfn.hawser.io/template` or `template-configmap` asks for a stack;
/// `cfn.hawser.io/cleanup` guards it.
impl<K: StackObject, P: CfnProvider> Reconciler for Stacks<K, P> {
    type Kind = K;
    type Error = Error;
    type State = State;
    const CONTROLLER: &'static str = CONTROLLER;

    fn base(&self) -> &Base<State> {
        &self.ctx.base
    }

    fn api(&self, obj: &Meta<K>) -> Api<Meta<K>> {
        K::meta_api(self.ctx.base.client.clone(), &K::home(obj))
    }

    fn triggered(&self, obj: &Meta<K>) -> bool {
        has_trigger(obj.annotations())
    }

    fn span(&self, obj: &Meta<K>) -> tracing::Span {
        tracing::info_span!(
            "reconcile",
            controller = CONTROLLER,
            kind = K::KIND.as_str(),
            namespace = obj.namespace().unwrap_or_default(),
            name = obj.name_any(),
            uid = obj.uid().unwrap_or_default(),
            result = tracing::field::Empty,
        )
    }

    fn inputs(&self, obj: &Meta<K>, error: &Error) -> Fingerprint {
        match error {
            Error::Failed(failed) => failed.inputs.clone(),
            _ => fingerprint(obj.annotations()),
        }
    }

    fn forget(&self, uid: &str) {
        self.ctx.forget(uid);
    }

    async fn apply(&self, obj: &Meta<K>) -> Result<Pass, Error> {
        self.ctx.base.add_finalizer(&self.api(obj), obj).await?;
        apply_object(obj, &self.ctx).await
    }

    async fn cleanup(&self, obj: &Meta<K>) -> Result<Option<Pass>, Error> {
        cleanup_object(obj, &self.ctx).await
    }

    async fn release(&self, obj: &Meta<K>) -> Result<Pass, Error> {
        release(obj, &self.ctx).await
    }

    async fn mark_failed(&self, obj: &Meta<K>, error: &Error) -> Result<bool, Error> {
        match error {
            Error::Failed(failed) => report::mark_failed(obj, &self.ctx, failed).await,
            _ => Ok(true),
        }
    }
}

fn has_trigger(ann: &BTreeMap<String, String>) -> bool {
    ann.contains_key(CFN_TEMPLATE) || ann.contains_key(CFN_TEMPLATE_CONFIGMAP)
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
) -> Result<Pass, Error> {
    let uid = obj.uid().unwrap_or_default();
    let owner = owner(obj);
    let spec = match K::stack_spec(obj.annotations()) {
        Ok(Some(spec)) => spec,
        Ok(None) => return Ok(Pass::await_change(Outcome::Skipped)),
        Err(msg) => {
            let inputs = fingerprint(obj.annotations());
            return Err(Error::failed(
                Failure::InvalidAnnotations(msg),
                None,
                inputs,
            ));
        }
    };
    let body = template(ctx, &owner.namespace, &spec.template).await?;
    let mut inputs = fingerprint(obj.annotations());
    let body_hash = match &body {
        Ok(text) => desired::spec_hash(text, &BTreeMap::new(), &[]),
        Err(_) => "(none)".to_owned(),
    };
    inputs.insert(TEMPLATE_INPUT.to_owned(), body_hash);
    if let Some(left) = ctx
        .base
        .tracker
        .settled_for(&uid, &inputs, ctx.settings.resync)
    {
        // Our own write echoing back, or a failure whose inputs have not
        // changed: nothing to ask AWS until the resync.
        return Ok(Pass::requeue(Outcome::Unchanged, left));
    }
    let body = match body {
        Ok(body) => body,
        Err(failure) => return Err(Error::failed(failure, None, inputs)),
    };
    let want = desired::desired(
        &spec,
        &body,
        &owner,
        &ctx.settings.cluster,
        &ctx.settings.default_tags,
    );
    // A resync of inputs that settled: nothing was asked of AWS since.
    let settled = ctx.base.tracker.settled_at(&uid, &inputs);
    let scope = scope_of(obj, ctx).await?;
    let cfn = ctx.aws.cfn(&scope).await;
    let mut memo = ctx.memo(&uid);
    if memo.applied.is_none() {
        // After a restart or a change of leader. (Within one process the
        // memo is newer: the cached object may not show our last write.)
        memo.applied = Outputs::read(obj.annotations()).spec_hash;
    }
    if planned::plan_only(obj.annotations(), ctx.settings.plan_only) {
        // One DescribeStacks; the plan is the step apply would take.
        let stack = cfn.describe_stack(&want.request.stack_name).await?;
        report_plan(ctx, obj, &plan::apply(stack.as_ref(), &want, &memo)).await?;
        ctx.base.tracker.settle(&uid, inputs);
        return Ok(Pass::requeue(Outcome::Planned, ctx.settings.resync));
    }
    clear_plan(ctx, obj).await?;
    let confirmed = match settled {
        Some(settled) => {
            ctx.snapshots
                .confirm(&cfn, &scope, settled, &want, &mut memo)
                .await
        }
        None => Ok(None),
    };
    let applied = match confirmed {
        Ok(Some(applied)) => Ok(applied),
        Ok(None) => apply::apply(&cfn, &want, &mut memo).await,
        Err(e) => Err(e),
    };
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
            status::write(&ctx.base.client, obj, &out).await?;
            ctx.base.tracker.set_state(&uid, State::Pending);
            Ok(Pass::requeue(Outcome::Pending, ctx.base.tracker.poll(&uid)))
        }
        Verdict::Ready => {
            let stack = stack.expect("Ready has a stack");
            let cm_name = spec.outputs_configmap_name(&owner.name);
            let written = status::write_outputs(
                &ctx.base.client,
                obj,
                &owner.namespace,
                &cm_name,
                &stack.outputs,
            )
            .await?;
            if let OutputsWrite::Conflict(msg) = written {
                let failure = Failure::OutputsConflict(msg);
                return Err(Error::failed(failure, Some(out), inputs));
            }
            let before = Outputs::read(obj.annotations());
            status::write(&ctx.base.client, obj, &out).await?;
            // Announced once per arrival: from a pass that waited (the
            // status may already read COMPLETE: moto creates at once), or
            // when the annotations did not say so yet.
            let arrived = ctx.base.tracker.state(&uid) == Some(State::Pending)
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
            ctx.base.tracker.set_state(&uid, State::Ready);
            ctx.base.tracker.settle(&uid, inputs);
            Ok(Pass::requeue(Outcome::Applied, ctx.settings.resync))
        }
        // The outputs ConfigMap is left as it is: after a failed update
        // (`keep_outputs`) the stack still serves the previous outputs;
        // after a failed create there are none.
        Verdict::Failed { failure, .. } => {
            if stack.is_none() {
                out = Outputs::default();
            }
            Err(Error::failed(failure, Some(out), inputs))
        }
    }
}
