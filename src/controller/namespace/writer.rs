//! The one writer of `kube-system/aws-auth` in this process.
//!
//! Reconciles of many namespaces want to change the same ConfigMap at
//! once. Each hands its wish ([`Change`]) to this writer and waits for
//! the answer; the writer takes every wish queued at that moment and makes
//! them in a single read-modify-write. Fifty namespaces created together
//! cost a handful of writes instead of fifty, and conflicts are left to
//! writers outside hawser.
//!
//! Nothing here can wait for ever, which is what a stalled writer would
//! turn into: every API call has a deadline ([`timeout::api`]), conflicts
//! are retried with jittered backoff only until [`BATCH_DEADLINE`], the
//! writer holds no lock while it waits, and it depends on nothing the
//! reconciles do (it runs in its own task). A caller waits at most
//! [`REPLY_DEADLINE`] and gets an error, never silence, if the writer has
//! stopped (its channel closes, or its reply is dropped).

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    api::{Patch, PatchParams, PostParams},
    core::ObjectMeta,
    Api, Client,
};
use prometheus::IntCounterVec;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::aws_auth::{
    edit, Change, DocumentError, Effect, Ownership, Refusal, MAP_ROLES, OWNERSHIP_ANNOTATION,
};
use crate::controller::{backoff::Backoff, timeout, FIELD_MANAGER};

/// How long one batch may keep retrying conflicts.
pub const BATCH_DEADLINE: Duration = Duration::from_secs(45);
/// How long a reconcile waits for its answer: a batch's deadline plus its
/// last read and write.
pub const REPLY_DEADLINE: Duration = Duration::from_secs(75);
/// Conflict backoff: 50 ms doubling to 2 s, jittered.
const CONFLICT: Backoff = Backoff {
    base: Duration::from_millis(50),
    max: Duration::from_secs(2),
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error("kube-system/aws-auth: {0}; hawser leaves it as it is and reports it")]
    Unreadable(DocumentError),
    #[error(transparent)]
    Refused(Refusal),
    #[error("kube-system/aws-auth: still conflicting with other writers after {attempts} attempts; retrying later")]
    Conflicts { attempts: u32 },
    #[error("kube-system/aws-auth: {0}")]
    Kube(String),
    #[error(transparent)]
    TimedOut(#[from] timeout::TimedOut),
    #[error("kube-system/aws-auth: the writer gave no answer within {0:?} (its batch is still retrying conflicts or slow API calls); this change may still be written, and the next pass checks")]
    NoReply(Duration),
    #[error("the aws-auth writer has stopped (leadership lost or shutting down)")]
    Stopped,
}

impl WriteError {
    pub fn category(&self) -> &'static str {
        match self {
            WriteError::Unreadable(_) => "aws_auth_unreadable",
            WriteError::Refused(_) => "aws_auth_refused",
            WriteError::Conflicts { .. } => "aws_auth_conflict",
            WriteError::Kube(_) => "kube",
            WriteError::TimedOut(_) | WriteError::NoReply(_) => "timeout",
            WriteError::Stopped => "stopped",
        }
    }
}

struct Request {
    change: Change,
    reply: oneshot::Sender<Result<Effect, WriteError>>,
}

/// The handle reconciles use; cheap to clone.
#[derive(Clone)]
pub struct AwsAuthWriter {
    // Unbounded: a send must never wait. The queue cannot grow past one
    // wish per reconcile in flight, which the controller's concurrency caps.
    tx: mpsc::UnboundedSender<Request>,
}

/// Where the ConfigMap lives (the name is a flag, for tests).
#[derive(Debug, Clone)]
pub struct Target {
    pub namespace: String,
    pub name: String,
}

impl AwsAuthWriter {
    /// Spawns the writer; it stops when `shutdown` fires.
    pub fn start(
        client: Client,
        target: Target,
        writes: IntCounterVec,
        shutdown: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let api: Api<ConfigMap> = Api::namespaced(client, &target.namespace);
        tokio::spawn(run(api, target, rx, writes, shutdown));
        Self { tx }
    }

    /// A writer that takes wishes and never answers (the guard that keeps
    /// its queue open is returned beside it).
    #[cfg(test)]
    pub(super) fn unanswered() -> (Self, Box<dyn std::any::Any + Send>) {
        let (tx, rx) = mpsc::unbounded_channel::<Request>();
        (Self { tx }, Box::new(rx))
    }

    /// Asks for `change` and waits for it to be written (or refused).
    pub async fn submit(&self, change: Change) -> Result<Effect, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request { change, reply })
            .map_err(|_| WriteError::Stopped)?;
        match tokio::time::timeout(REPLY_DEADLINE, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(WriteError::Stopped),
            Err(_) => Err(WriteError::NoReply(REPLY_DEADLINE)),
        }
    }
}

async fn run(
    api: Api<ConfigMap>,
    target: Target,
    mut rx: mpsc::UnboundedReceiver<Request>,
    writes: IntCounterVec,
    shutdown: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            r = rx.recv() => r,
            _ = shutdown.cancelled() => None,
        };
        let Some(first) = first else {
            tracing::info!("aws-auth writer stopped");
            return;
        };
        let mut batch = vec![first];
        drain(&mut rx, &mut batch);
        let started = tokio::time::Instant::now();
        let mut attempt = 0u32;
        let outcome = loop {
            attempt += 1;
            let changes: Vec<Change> = batch.iter().map(|r| r.change.clone()).collect();
            match write_once(&api, &target, &changes).await {
                Err(Attempt::Conflict) if started.elapsed() < BATCH_DEADLINE => {
                    writes.with_label_values(&["conflict"]).inc();
                    let delay = CONFLICT.delay(attempt - 1);
                    tracing::debug!(attempt, ?delay, "aws-auth changed under us; re-reading");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.cancelled() => break Err(WriteError::Stopped),
                    }
                    // Wishes that arrived meanwhile ride along.
                    drain(&mut rx, &mut batch);
                }
                Err(Attempt::Conflict) => {
                    writes.with_label_values(&["conflict"]).inc();
                    break Err(WriteError::Conflicts { attempts: attempt });
                }
                Err(Attempt::Failed(e)) => break Err(e),
                Ok(results) => break Ok(results),
            }
        };
        let label = match &outcome {
            Ok((true, _)) => "written",
            Ok((false, _)) => "unchanged",
            Err(e) => e.category(),
        };
        writes.with_label_values(&[label]).inc();
        tracing::info!(
            wishes = batch.len(),
            attempts = attempt,
            result = label,
            took = ?started.elapsed(),
            "aws-auth batch"
        );
        for request in batch {
            let answer = match &outcome {
                Ok((_, results)) => match results.get(&request.change.namespace) {
                    Some(Ok(effect)) => Ok(effect.clone()),
                    Some(Err(refusal)) => Err(WriteError::Refused(refusal.clone())),
                    None => Err(WriteError::Stopped),
                },
                Err(e) => Err(e.clone()),
            };
            // The caller may have given up waiting; nothing to do then.
            let _ = request.reply.send(answer);
        }
    }
}

fn drain(rx: &mut mpsc::UnboundedReceiver<Request>, batch: &mut Vec<Request>) {
    while let Ok(r) = rx.try_recv() {
        batch.push(r);
    }
}

enum Attempt {
    Conflict,
    Failed(WriteError),
}

type Results = BTreeMap<String, Result<Effect, Refusal>>;

fn kube_error(e: kube::Error) -> Attempt {
    match &e {
        // 409: someone wrote in between (or created it first).
        kube::Error::Api(s) if s.code == 409 => Attempt::Conflict,
        _ => Attempt::Failed(WriteError::Kube(e.to_string())),
    }
}

/// One read-modify-write. `Ok((written, results))`.
async fn write_once(
    api: &Api<ConfigMap>,
    target: &Target,
    changes: &[Change],
) -> Result<(bool, Results), Attempt> {
    let current = timeout::api("get aws-auth", api.get_opt(&target.name))
        .await
        .map_err(|e| Attempt::Failed(e.into()))?
        .map_err(kube_error)?;
    let Some(cm) = current else {
        return create(api, target, changes).await;
    };
    let text = cm
        .data
        .as_ref()
        .and_then(|d| d.get(MAP_ROLES))
        .cloned()
        .unwrap_or_default();
    let record = cm
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(OWNERSHIP_ANNOTATION))
        .map(String::as_str);
    let unreadable = |e: DocumentError| Attempt::Failed(WriteError::Unreadable(e));
    let owned = Ownership::parse(record).map_err(|e| unreadable(e.into()))?;
    let edited = edit(&text, &owned, changes).map_err(unreadable)?;
    if !edited.changed(&text, &owned) {
        return Ok((false, edited.results));
    }
    // A merge patch of exactly mapRoles and the record, pinned to the
    // version read: every other key stays as the server has it, and a
    // write in between is a 409, not a lost update.
    let patch = serde_json::json!({
        "metadata": {
            "resourceVersion": cm.metadata.resource_version,
            "annotations": { OWNERSHIP_ANNOTATION: edited.ownership.to_annotation() },
        },
        "data": { MAP_ROLES: edited.map_roles },
    });
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    timeout::api(
        "patch aws-auth",
        api.patch(&target.name, &params, &Patch::Merge(&patch)),
    )
    .await
    .map_err(|e| Attempt::Failed(e.into()))?
    .map_err(kube_error)?;
    Ok((true, edited.results))
}

/// aws-auth is absent: create it with hawser's entries only. Losing the
/// race to another creator is a conflict like any other.
async fn create(
    api: &Api<ConfigMap>,
    target: &Target,
    changes: &[Change],
) -> Result<(bool, Results), Attempt> {
    let edited = edit("", &Ownership::default(), changes)
        .map_err(|e| Attempt::Failed(WriteError::Unreadable(e)))?;
    if edited.ownership.is_empty() {
        return Ok((false, edited.results));
    }
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(target.name.clone()),
            namespace: Some(target.namespace.clone()),
            annotations: Some(
                [(
                    OWNERSHIP_ANNOTATION.to_owned(),
                    edited.ownership.to_annotation(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        data: Some([(MAP_ROLES.to_owned(), edited.map_roles.clone())].into()),
        ..Default::default()
    };
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    timeout::api("create aws-auth", api.create(&params, &cm))
        .await
        .map_err(|e| Attempt::Failed(e.into()))?
        .map_err(kube_error)?;
    Ok((true, edited.results))
}
