//! Namespace → environment. What happens to an annotated Namespace:
//!
//! 1. `env.hawser.io/routing-secret: "true"`: Secret `routing` is created
//!    once and rotated once per `env.hawser.io/rotate-keys` value
//!    ([`routing`]).
//! 2. `iam.hawser.io/role-arn`: finalizer `iam.hawser.io/cleanup` first
//!    (only on namespaces that map a role), then the `mapRoles` entry in
//!    `kube-system/aws-auth` through the process's one [`writer`], then
//!    RoleBinding `hawser-iam` ([`iam`]).
//! 3. The annotation removed, or the namespace deleted: hawser's entry and
//!    RoleBinding go, then the finalizer.
//!
//! Every change is an Event on the Namespace; every API call has a
//! deadline ([`crate::controller::timeout`]). The finalizer is handled
//! here rather than by kube-runtime's `finalizer()`, which would put it on
//! every namespace, and most namespaces map no role.

pub mod error;
pub mod events;
pub mod iam;
pub mod routing;
mod tracker;
pub mod writer;
#[cfg(test)]
mod writer_tests;

use std::{sync::Arc, time::Duration};

use self::events::{Publisher, Type as EventType};
use futures::StreamExt;
use k8s_openapi::api::{core::v1::Namespace, rbac::v1::RoleBinding};
use kube::{
    api::{Patch, PatchParams},
    core::PartialObjectMeta,
    runtime::{
        controller::{Action, Config as ControllerConfig, Controller},
        watcher,
    },
    Api, Client, Resource, ResourceExt,
};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use self::{
    error::Error,
    iam::Binding,
    routing::Done,
    tracker::{fingerprint, Tracker},
    writer::AwsAuthWriter,
};
use crate::annotations::keys::{ENV_ROTATED_KEYS, IAM_ROLE_ARN};
use crate::annotations::NamespaceSpec;
use crate::aws_auth::{Change, Effect};
use crate::controller::{timeout, FIELD_MANAGER};
use crate::metrics::Metrics;
use crate::selector::LabelSelector;

pub const CONTROLLER: &str = "namespace";
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "hawser";
/// Namespaces reconciled at once. Their aws-auth wishes are batched by
/// the writer, so this bounds API load, not aws-auth writes.
const CONCURRENCY: u16 = 16;

type NamespaceMeta = PartialObjectMeta<Namespace>;

#[derive(Debug, Clone)]
pub struct Settings {
    pub iam_cluster_role: String,
    pub allow_system_groups: bool,
    /// What the lockout guard protects: hawser never maps such a role, or
    /// every later edit of its entry would be refused.
    pub protection: crate::aws_auth::Protection,
    /// Label selector of the namespaces handled; `None`: all.
    pub selector: Option<LabelSelector>,
    /// `iam.hawser.io/cleanup` (another name only in the test bed).
    pub finalizer: String,
    pub resync: Duration,
}

pub struct Context {
    pub client: Client,
    pub settings: Settings,
    pub writer: AwsAuthWriter,
    pub events: Publisher,
    pub metrics: Arc<Metrics>,
    tracker: Tracker,
}

impl Context {
    pub fn new(
        client: Client,
        settings: Settings,
        writer: AwsAuthWriter,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            events: Publisher::new(client.clone()),
            client,
            settings,
            writer,
            tracker: Tracker::new(CONTROLLER, metrics.managed_objects.clone()),
            metrics,
        }
    }
}

/// Runs the controller until `shutdown`; a metadata-only watch of every
/// Namespace. (Not only those matching `--namespace-selector`: a namespace
/// that leaves the selector must still be let go when it is deleted, or
/// hawser's finalizer would hold it in Terminating.)
pub async fn run(ctx: Arc<Context>, shutdown: CancellationToken) {
    let config = watcher::Config::default();
    let api: Api<NamespaceMeta> = Api::all(ctx.client.clone());
    Controller::new(api, config)
        .with_config(ControllerConfig::default().concurrency(CONCURRENCY))
        .graceful_shutdown_on(async move { shutdown.cancelled().await })
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "namespace controller");
            }
        })
        .await;
}

fn error_policy(obj: Arc<NamespaceMeta>, err: &Error, ctx: Arc<Context>) -> Action {
    let delay = ctx.tracker.failed(&obj.uid().unwrap_or_default());
    tracing::warn!(
        namespace = obj.name_any(),
        category = err.category(),
        error = %err,
        retry_in = ?delay,
        "reconcile failed"
    );
    Action::requeue(delay)
}

async fn reconcile(obj: Arc<NamespaceMeta>, ctx: Arc<Context>) -> Result<Action, Error> {
    let span = tracing::info_span!(
        "reconcile",
        controller = CONTROLLER,
        namespace = obj.name_any(),
        uid = obj.uid().unwrap_or_default(),
        result = tracing::field::Empty,
    );
    let timer = ctx
        .metrics
        .reconcile_duration
        .with_label_values(&[CONTROLLER])
        .start_timer();
    let mut result = "applied";
    let outcome = dispatch(&obj, &ctx, &mut result)
        .instrument(span.clone())
        .await;
    timer.observe_duration();
    let outcome = match outcome {
        Err(e) => {
            ctx.metrics
                .reconcile_errors
                .with_label_values(&[CONTROLLER, e.category()])
                .inc();
            publish(
                &ctx,
                &obj,
                EventType::Warning,
                "ReconcileError",
                e.user_message(),
            )
            .await;
            if e.is_terminal() {
                // Retrying cannot help until the annotations or aws-auth
                // change; the resync looks again.
                result = "failed";
                ctx.tracker.settle(
                    &obj.uid().unwrap_or_default(),
                    fingerprint(&obj, &ctx.settings.finalizer),
                );
                Ok(Action::requeue(ctx.settings.resync))
            } else {
                result = "error";
                Err(e)
            }
        }
        ok => ok,
    };
    span.record("result", result);
    ctx.metrics
        .reconcile_total
        .with_label_values(&[CONTROLLER, result])
        .inc();
    outcome
}

async fn dispatch(
    obj: &NamespaceMeta,
    ctx: &Context,
    result: &mut &'static str,
) -> Result<Action, Error> {
    let uid = obj.uid().unwrap_or_default();
    let has_finalizer = obj.finalizers().contains(&ctx.settings.finalizer);
    let in_scope = ctx
        .settings
        .selector
        .as_ref()
        .is_none_or(|s| s.matches(obj.labels()));
    // Whether or not it matches --namespace-selector (it may have left
    // it): hawser's finalizer must never hold a deletion up.
    if obj.meta().deletion_timestamp.is_some() {
        *result = match (has_finalizer, in_scope) {
            (true, _) => {
                unmap(obj, ctx).await?;
                "cleaned_up"
            }
            (false, true) => "skipped",
            (false, false) => "out_of_scope",
        };
        ctx.tracker.forget(&uid);
        return Ok(Action::await_change());
    }
    if !in_scope {
        ctx.tracker.forget(&uid);
        return outside_selector(obj, ctx, has_finalizer, result).await;
    }
    let inputs = fingerprint(obj, &ctx.settings.finalizer);
    if let Some(left) = ctx.tracker.settled_for(&uid, &inputs, ctx.settings.resync) {
        *result = "unchanged";
        return Ok(Action::requeue(left));
    }
    let spec = NamespaceSpec::from_annotations(obj.annotations()).map_err(|errors| {
        Error::InvalidAnnotations(
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    if spec.routing_secret {
        ensure_routing(obj, ctx, spec.rotate_keys.as_deref()).await?;
    }
    match &spec.iam {
        Some(mapping) => map(obj, ctx, mapping).await?,
        None if has_finalizer => {
            unmap(obj, ctx).await?;
            *result = "released";
        }
        None if !spec.routing_secret => *result = "skipped",
        None => {}
    }
    ctx.tracker.settle(&uid, inputs);
    Ok(Action::requeue(ctx.settings.resync))
}

async fn ensure_routing(
    obj: &NamespaceMeta,
    ctx: &Context,
    rotate: Option<&str>,
) -> Result<(), Error> {
    let ns = obj.name_any();
    let secrets = Api::namespaced(ctx.client.clone(), &ns);
    let done = routing::ensure(&secrets, &ns, rotate).await?;
    let rotated = match &done {
        Done::Created { rotated } => {
            let note = "created Secret routing with a new public-api-key and private-api-key";
            publish(
                ctx,
                obj,
                EventType::Normal,
                "RoutingSecretCreated",
                note.into(),
            )
            .await;
            rotated.clone()
        }
        Done::Rotated { to } => {
            let note = format!("rotated both keys in Secret routing for {ENV_ROTATED_KEYS}={to:?}");
            publish(ctx, obj, EventType::Normal, "RoutingKeysRotated", note).await;
            Some(to.clone())
        }
        Done::Kept { rotated } => rotated.clone(),
        Done::Foreign => {
            let note = format!(
                "Secret routing exists and is not labelled {MANAGED_BY}={MANAGED_BY_VALUE}; hawser leaves it alone (delete it to let hawser create the keys)"
            );
            publish(ctx, obj, EventType::Warning, "RoutingSecretNotOwned", note).await;
            None
        }
    };
    // Mirror what the Secret records onto the Namespace (an output).
    if let Some(value) = rotated.filter(|v| obj.annotations().get(ENV_ROTATED_KEYS) != Some(v)) {
        let patch = serde_json::json!({"metadata": {"annotations": {ENV_ROTATED_KEYS: value}}});
        let api: Api<NamespaceMeta> = Api::all(ctx.client.clone());
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        timeout::api(
            "record rotated-keys",
            api.patch(&ns, &params, &Patch::Merge(&patch)),
        )
        .await??;
    }
    Ok(())
}

async fn map(
    obj: &NamespaceMeta,
    ctx: &Context,
    mapping: &crate::annotations::IamMappingSpec,
) -> Result<(), Error> {
    let ns = obj.name_any();
    let entry = iam::desired_entry(
        &ns,
        mapping,
        ctx.settings.allow_system_groups,
        &ctx.settings.protection,
    )?;
    // The finalizer before the entry: a namespace deleted right after
    // must not leave its entry behind.
    add_finalizer(obj, ctx).await?;
    let effect = ctx
        .writer
        .submit(Change {
            namespace: ns.clone(),
            desired: Some(entry.clone()),
        })
        .await?;
    let what = format!(
        "role {} as user {:?} with groups [{}] in kube-system/aws-auth",
        entry.rolearn,
        entry.username,
        entry.groups.join(", ")
    );
    match effect {
        Effect::Added => {
            publish(
                ctx,
                obj,
                EventType::Normal,
                "AwsAuthMapped",
                format!("mapped {what}"),
            )
            .await
        }
        Effect::Updated => {
            publish(
                ctx,
                obj,
                EventType::Normal,
                "AwsAuthUpdated",
                format!("now mapping {what}"),
            )
            .await
        }
        Effect::Unchanged | Effect::Removed => {}
    }
    let bindings: Api<RoleBinding> = Api::namespaced(ctx.client.clone(), &ns);
    let desired = iam::desired_binding(&ns, &entry.groups, &ctx.settings.iam_cluster_role);
    let binding = iam::ensure_binding(&bindings, desired).await?;
    publish_binding(ctx, obj, binding, &entry.groups).await;
    Ok(())
}

/// A live namespace outside `--namespace-selector` (or one that has left
/// it): nothing new is made for it and what hawser made stays as it is (a
/// label edit takes nobody's access away), but once it drops
/// `iam.hawser.io/role-arn`, its entry, RoleBinding and finalizer go.
async fn outside_selector(
    obj: &NamespaceMeta,
    ctx: &Context,
    has_finalizer: bool,
    result: &mut &'static str,
) -> Result<Action, Error> {
    *result = "out_of_scope";
    if has_finalizer && !obj.annotations().contains_key(IAM_ROLE_ARN) {
        unmap(obj, ctx).await?;
        *result = "released";
    }
    Ok(Action::await_change())
}

/// Removes hawser's entry and RoleBinding, then the finalizer.
async fn unmap(obj: &NamespaceMeta, ctx: &Context) -> Result<(), Error> {
    let ns = obj.name_any();
    let effect = ctx
        .writer
        .submit(Change {
            namespace: ns.clone(),
            desired: None,
        })
        .await?;
    if effect == Effect::Removed {
        let note = "removed this namespace's role mapping from kube-system/aws-auth".to_owned();
        publish(ctx, obj, EventType::Normal, "AwsAuthUnmapped", note).await;
    }
    let bindings: Api<RoleBinding> = Api::namespaced(ctx.client.clone(), &ns);
    let binding = iam::remove_binding(&bindings).await?;
    publish_binding(ctx, obj, binding, &[]).await;
    remove_finalizer(obj, ctx).await
}

async fn publish_binding(ctx: &Context, obj: &NamespaceMeta, binding: Binding, groups: &[String]) {
    let role = &ctx.settings.iam_cluster_role;
    match binding {
        Binding::Applied => {
            let note = format!(
                "RoleBinding {} binds [{}] to ClusterRole {role}",
                iam::ROLE_BINDING,
                groups.join(", ")
            );
            publish(ctx, obj, EventType::Normal, "RoleBindingApplied", note).await;
        }
        Binding::Deleted => {
            let note = format!("deleted RoleBinding {}", iam::ROLE_BINDING);
            publish(ctx, obj, EventType::Normal, "RoleBindingDeleted", note).await;
        }
        Binding::Foreign => {
            let note = format!(
                "RoleBinding {} exists and is not labelled {MANAGED_BY}={MANAGED_BY_VALUE}; hawser leaves it alone",
                iam::ROLE_BINDING
            );
            publish(ctx, obj, EventType::Warning, "RoleBindingNotOwned", note).await;
        }
        Binding::Unchanged => {}
    }
}

fn namespaces(ctx: &Context) -> Api<NamespaceMeta> {
    Api::all(ctx.client.clone())
}

/// JSON patches guarded by a `test` of the list as read, so a concurrent
/// change to the finalizers fails the patch instead of being overwritten.
async fn add_finalizer(obj: &NamespaceMeta, ctx: &Context) -> Result<(), Error> {
    let current = obj.finalizers();
    let fin = ctx.settings.finalizer.as_str();
    if current.iter().any(|f| f == fin) {
        return Ok(());
    }
    let patch = if current.is_empty() {
        serde_json::json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [fin]},
        ])
    } else {
        serde_json::json!([
            {"op": "test", "path": "/metadata/finalizers", "value": current},
            {"op": "add", "path": "/metadata/finalizers/-", "value": fin},
        ])
    };
    patch_namespace(obj, ctx, "add finalizer", patch).await
}

async fn remove_finalizer(obj: &NamespaceMeta, ctx: &Context) -> Result<(), Error> {
    let fin = ctx.settings.finalizer.as_str();
    let Some(i) = obj.finalizers().iter().position(|f| f == fin) else {
        return Ok(());
    };
    let path = format!("/metadata/finalizers/{i}");
    let patch = serde_json::json!([
        {"op": "test", "path": path, "value": fin},
        {"op": "remove", "path": path},
    ]);
    match patch_namespace(obj, ctx, "remove finalizer", patch).await {
        // Already gone: the namespace finished deleting.
        Err(Error::Kube(kube::Error::Api(s))) if s.code == 404 => Ok(()),
        other => other,
    }
}

async fn patch_namespace(
    obj: &NamespaceMeta,
    ctx: &Context,
    what: &'static str,
    patch: serde_json::Value,
) -> Result<(), Error> {
    let patch: json_patch::Patch = serde_json::from_value(patch).expect("a well-formed JSON patch");
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    timeout::api(
        what,
        namespaces(ctx).patch(&obj.name_any(), &params, &Patch::<()>::Json(patch)),
    )
    .await??;
    Ok(())
}

async fn publish(ctx: &Context, obj: &NamespaceMeta, type_: EventType, reason: &str, note: String) {
    ctx.events.publish(obj, type_, reason, note).await;
}
