//! The reconcile skeleton the controllers share.
//!
//! A controller implements [`Reconciler`]: its trigger, and its three
//! paths (apply, cleanup, release) as decisions and AWS calls. [`run`]
//! owns the rest, the same way for every controller:
//!
//! - the metadata-only watch, its concurrency and graceful shutdown;
//! - **triage** ([`triage`], pure): which path a pass takes, from the
//!   object's deletion timestamp, hawser's finalizer, the trigger and the
//!   controller's scope;
//! - the **finalizer**: added by [`Base::add_finalizer`] (a controller
//!   calls it where it commits to a side effect), removed here once
//!   cleanup reports nothing left, each write guarded by a JSON-patch
//!   `test` so a concurrent change fails instead of being overwritten;
//! - the **error policy**: one scheme ([`Failure`]) of categories,
//!   terminal verdicts and Event reasons. A terminal failure on the
//!   apply path is marked on the object ([`Reconciler::mark_failed`]),
//!   announced by a Warning Event and settled until the inputs change or
//!   a resync passes; every other failure is announced and retried with
//!   per-object exponential backoff. Cleanup and release are always
//!   retried: hawser's finalizer holds the object until what it made is
//!   gone;
//! - **tracking** ([`Tracker`]), **metrics** (`hawser_reconcile_total`,
//!   `_errors_total`, `_duration_seconds`) and the **span** of a pass;
//! - the **Event sink** ([`EventSink`]) and the per-call **API deadline**
//!   ([`timeout`]) of every Kubernetes call the skeleton makes.
//!
//! A pass ends in a typed [`Pass`]: its [`Outcome`] (the `result` label)
//! and when to look again.

mod base;
mod outcome;

pub use self::base::Base;
pub use self::outcome::{triage, Facts, Failure, Meta, Outcome, Pass, Path};

use std::{fmt::Debug, future::Future, sync::Arc};

use futures::{stream::BoxStream, StreamExt};
use kube::{
    runtime::{
        controller::{Action, Config as ControllerConfig, Controller},
        events::EventType,
        reflector::{self, Store},
        watcher, WatchStreamExt,
    },
    Api, Resource, ResourceExt,
};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::controller::{
    timeout::ApiError,
    tracker::{fingerprint, Fingerprint, GaugeState},
};

/// A controller: its decisions and its AWS calls. See the module's doc
/// for what the skeleton does around them.
pub trait Reconciler: Send + Sync + Sized + 'static {
    type Kind: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static;
    type Error: Failure + From<ApiError>;
    type State: GaugeState;
    /// The `controller` label of its metrics and spans.
    const CONTROLLER: &'static str;

    fn base(&self) -> &Base<Self::State>;

    /// The API through which `obj`'s finalizer is written.
    fn api(&self, obj: &Meta<Self::Kind>) -> Api<Meta<Self::Kind>>;

    /// Whether `obj` asks for this controller's side effects.
    fn triggered(&self, obj: &Meta<Self::Kind>) -> bool;

    /// Whether `obj` still asks for what the finalizer guards (if not,
    /// and it carries the finalizer, it is released).
    fn holds(&self, obj: &Meta<Self::Kind>) -> bool {
        self.triggered(obj)
    }

    /// Whether `obj` is within the controller's scope.
    fn in_scope(&self, _obj: &Meta<Self::Kind>) -> bool {
        true
    }

    /// The span of a pass over `obj`; it must have a `result` field.
    fn span(&self, obj: &Meta<Self::Kind>) -> tracing::Span {
        tracing::info_span!(
            "reconcile",
            controller = Self::CONTROLLER,
            namespace = obj.namespace().unwrap_or_default(),
            name = obj.name_any(),
            uid = obj.uid().unwrap_or_default(),
            result = tracing::field::Empty,
        )
    }

    /// The inputs a terminal `error` on `obj` is settled on.
    fn inputs(&self, obj: &Meta<Self::Kind>, _error: &Self::Error) -> Fingerprint {
        fingerprint(obj.annotations())
    }

    /// Forgets what was remembered about the object `uid`.
    fn forget(&self, uid: &str) {
        self.base().tracker.forget(uid);
    }

    /// Brings AWS and the object's outputs in line with its inputs.
    fn apply(
        &self,
        obj: &Meta<Self::Kind>,
    ) -> impl Future<Output = Result<Pass, Self::Error>> + Send;

    /// One step of cleaning up after a deleted object: `Some(pass)`
    /// while there is more to wait for, `None` once nothing is left (the
    /// skeleton then removes the finalizer).
    fn cleanup(
        &self,
        obj: &Meta<Self::Kind>,
    ) -> impl Future<Output = Result<Option<Pass>, Self::Error>> + Send;

    /// Lets go of an object that no longer asks for what it has: clean
    /// up, then remove the outputs and the finalizer.
    fn release(
        &self,
        obj: &Meta<Self::Kind>,
    ) -> impl Future<Output = Result<Pass, Self::Error>> + Send;

    /// Records a failure of the apply path on the object (a state, a last
    /// error), before the Warning Event. `false`: the object already says
    /// so, and no Event is published.
    fn mark_failed(
        &self,
        _obj: &Meta<Self::Kind>,
        _error: &Self::Error,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send {
        async { Ok(true) }
    }
}

/// Where a controller's objects come from. (Built once per controller:
/// the size of the variants does not matter.)
#[allow(clippy::large_enum_variant)]
pub enum Source<
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
> {
    /// A metadata-only watch of its own.
    Watch {
        api: Api<Meta<K>>,
        config: watcher::Config,
    },
    /// Objects a watch of the process already holds (the Namespace cache,
    /// [`crate::namespaces::NamespaceCache::changes`]): its store, a
    /// stream of every object to look at, and whether the store holds the
    /// first full list yet.
    Shared {
        store: Store<Meta<K>>,
        changes: BoxStream<'static, Result<Meta<K>, watcher::Error>>,
        synced: tokio::sync::watch::Receiver<bool>,
    },
}

/// How a controller is watched.
pub struct Watch<
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
> {
    pub source: Source<K>,
    /// Objects reconciled at once.
    pub concurrency: u16,
}

/// Runs `reconciler` until `shutdown`. `extend` adds watches of related
/// objects; `synced` is called once the first list is in.
pub async fn run<R: Reconciler>(
    reconciler: Arc<R>,
    watch: Watch<R::Kind>,
    extend: impl FnOnce(Controller<Meta<R::Kind>>) -> Controller<Meta<R::Kind>>,
    synced: impl FnOnce() + Send + 'static,
    shutdown: CancellationToken,
) {
    // kube-runtime 5's store readiness is a oneshot that wakes only the
    // last task to wait on it, and the controller's runner waits on it. So
    // nothing else here waits on a store: whether the first list is in
    // comes from the watch's own InitDone.
    let (controller, mut ready) = match watch.source {
        Source::Watch { api, config } => {
            // What Controller::new does, with every object slimmed first.
            let (reader, writer) = reflector::store();
            let (ready_tx, ready) = tokio::sync::watch::channel(false);
            let stream = watcher(api, config)
                .default_backoff()
                .modify(crate::cache::slim)
                .reflect(writer)
                .inspect(move |event| {
                    if let Ok(watcher::Event::InitDone) = event {
                        ready_tx.send_replace(true);
                    }
                })
                .applied_objects();
            (Controller::for_stream(stream, reader), ready)
        }
        Source::Shared {
            store,
            changes,
            synced: mut ready,
        } => {
            // The store is shared with other controllers, whose runners
            // wait on it too: start only once it is ready, so no runner
            // ever waits on it (and not at all once shut down meanwhile).
            tokio::select! {
                r = ready.wait_for(|r| *r) => if r.is_err() { return },
                _ = shutdown.cancelled() => return,
            }
            (Controller::for_stream(changes, store), ready)
        }
    };
    let controller = controller
        .with_config(ControllerConfig::default().concurrency(watch.concurrency))
        .graceful_shutdown_on(async move { shutdown.cancelled().await });
    tokio::spawn(async move {
        if ready.wait_for(|r| *r).await.is_ok() {
            tracing::info!(controller = R::CONTROLLER, "cache synced");
            synced();
        }
    });
    extend(controller)
        .run(reconcile::<R>, error_policy::<R>, reconciler)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, controller = R::CONTROLLER, "controller");
            }
        })
        .await;
}

fn error_policy<R: Reconciler>(obj: Arc<Meta<R::Kind>>, err: &R::Error, r: Arc<R>) -> Action {
    let delay = r.base().tracker.failed(&obj.uid().unwrap_or_default());
    tracing::warn!(
        controller = R::CONTROLLER,
        namespace = obj.namespace().unwrap_or_default(),
        name = obj.name_any(),
        category = err.category(),
        error = %err,
        retry_in = ?delay,
        "reconcile failed"
    );
    Action::requeue(delay)
}

/// One pass over `obj`: triage, the path, and its bookkeeping.
pub async fn reconcile<R: Reconciler>(
    obj: Arc<Meta<R::Kind>>,
    r: Arc<R>,
) -> Result<Action, R::Error> {
    let base = r.base();
    let span = r.span(&obj);
    let timer = base
        .metrics
        .reconcile_duration
        .with_label_values(&[R::CONTROLLER])
        .start_timer();
    let (outcome, result) = pass(&obj, &*r).instrument(span.clone()).await;
    timer.observe_duration();
    span.record("result", outcome.as_str());
    base.metrics
        .reconcile_total
        .with_label_values(&[R::CONTROLLER, outcome.as_str()])
        .inc();
    result
}

async fn pass<R: Reconciler>(obj: &Meta<R::Kind>, r: &R) -> (Outcome, Result<Action, R::Error>) {
    let base = r.base();
    let uid = obj.uid().unwrap_or_default();
    let path = triage(Facts {
        deleting: obj.meta().deletion_timestamp.is_some(),
        finalized: obj.finalizers().contains(&base.finalizer),
        triggered: r.triggered(obj),
        holds: r.holds(obj),
        in_scope: r.in_scope(obj),
    });
    let done = match path {
        Path::Ignore(outcome) => {
            r.forget(&uid);
            return (outcome, Ok(Action::await_change()));
        }
        Path::Apply => r.apply(obj).await,
        Path::Release => r.release(obj).await,
        Path::Cleanup => match r.cleanup(obj).await {
            Ok(Some(waiting)) => Ok(waiting),
            Ok(None) => match base.remove_finalizer(&r.api(obj), obj).await {
                Ok(()) => {
                    r.forget(&uid);
                    Ok(Pass::await_change(Outcome::CleanedUp))
                }
                Err(e) => Err(e.into()),
            },
            Err(e) => Err(e),
        },
    };
    let error = match done {
        Ok(pass) => return (pass.outcome, Ok(pass.action)),
        Err(e) => e,
    };
    base.metrics
        .reconcile_errors
        .with_label_values(&[R::CONTROLLER, error.category()])
        .inc();
    if path != Path::Apply {
        // Cleanup and release are retried until they succeed.
        base.publish(
            obj,
            EventType::Warning,
            "ReconcileError",
            error.user_message(),
        )
        .await;
        return (Outcome::Error, Err(error));
    }
    match r.mark_failed(obj, &error).await {
        Ok(true) => {
            let (reason, note) = (error.reason(), error.user_message());
            base.publish(obj, EventType::Warning, reason, note).await;
        }
        Ok(false) => {}
        Err(e) => {
            tracing::warn!(error = %e, "could not mark the failure on the object");
            base.publish(
                obj,
                EventType::Warning,
                error.reason(),
                error.user_message(),
            )
            .await;
            return (Outcome::Error, Err(e));
        }
    }
    if error.is_terminal() {
        tracing::warn!(category = error.category(), error = %error, "failed; waiting for the inputs to change");
        base.tracker.settle(&uid, r.inputs(obj, &error));
        return (Outcome::Failed, Ok(Action::requeue(base.resync)));
    }
    (Outcome::Error, Err(error))
}
