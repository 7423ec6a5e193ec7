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
pub mod iam;
pub mod plan;
pub mod routing;
#[cfg(test)]
mod scenarios;
mod tracker;
pub mod writer;
#[cfg(test)]
mod writer_tests;

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use k8s_openapi::api::{core::v1::Namespace, rbac::v1::RoleBinding};
use kube::{
    api::{Patch, PatchParams},
    core::PartialObjectMeta,
    runtime::events::EventType,
    Api, Client, ResourceExt,
};
use tokio_util::sync::CancellationToken;

use self::{
    error::Error, iam::Binding, routing::Done, tracker::fingerprint, writer::AwsAuthWriter,
};
use crate::annotations::keys::{ENV_ROTATED_KEYS, IAM_ROLE_ARN};
use crate::annotations::NamespaceSpec;
use crate::aws_auth::{Change, Effect};
use crate::controller::{
    reconciler::{self, Base, Outcome, Pass, Reconciler, Source, Watch},
    timeout,
    tracker::{Fingerprint, NoState},
    FIELD_MANAGER,
};
use crate::metrics::Metrics;
use crate::namespaces::NamespaceCache;
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
    pub base: Base<NoState>,
    pub settings: Settings,
    pub writer: AwsAuthWriter,
}

impl Context {
    pub fn new(
        client: Client,
        settings: Settings,
        writer: AwsAuthWriter,
        metrics: Arc<Metrics>,
    ) -> Self {
        let base = Base::new(
            CONTROLLER,
            client,
            metrics,
            settings.finalizer.clone(),
            settings.resync,
        );
        Self {
            base,
            settings,
            writer,
        }
    }

    fn client(&self) -> Client {
        self.base.client.clone()
    }
}

/// Runs the controller until `shutdown`, fed by the process's one watch
/// of every Namespace, the webhook's cache. (Every Namespace, not only
/// those matching `--namespace-selector`: a namespace that leaves the
/// selector must still be let go when it is deleted, or hawser's
/// finalizer would hold it in Terminating.)
pub async fn run(ctx: Arc<Context>, namespaces: NamespaceCache, shutdown: CancellationToken) {
    let watch = Watch {
        source: Source::Shared {
            store: namespaces.store(),
            changes: namespaces.changes().boxed(),
            synced: namespaces.synced_signal(),
        },
        concurrency: CONCURRENCY,
    };
    reconciler::run(ctx, watch, |c| c, || {}, shutdown).await;
}

/// Every namespace in scope is looked at (its annotations are checked on
/// each pass, and most ask for nothing); the finalizer is added only for
/// a role mapping, after the mapping is found valid, and guards only it.
/// It is handled by the skeleton rather than by kube-runtime's
/// `finalizer()`, which would put it on every namespace.
impl Reconciler for Context {
    type Kind = Namespace;
    type Error = Error;
    type State = NoState;
    const CONTROLLER: &'static str = CONTROLLER;

    fn base(&self) -> &Base<NoState> {
        &self.base
    }

    fn api(&self, _obj: &NamespaceMeta) -> Api<NamespaceMeta> {
        Api::all(self.client())
    }

    fn triggered(&self, _obj: &NamespaceMeta) -> bool {
        true
    }

    fn holds(&self, obj: &NamespaceMeta) -> bool {
        obj.annotations().contains_key(IAM_ROLE_ARN)
    }

    fn in_scope(&self, obj: &NamespaceMeta) -> bool {
        self.settings
            .selector
            .as_ref()
            .is_none_or(|s| s.matches(obj.labels()))
    }

    fn span(&self, obj: &NamespaceMeta) -> tracing::Span {
        tracing::info_span!(
            "reconcile",
            controller = CONTROLLER,
            namespace = obj.name_any(),
            uid = obj.uid().unwrap_or_default(),
            result = tracing::field::Empty,
        )
    }

    fn inputs(&self, obj: &NamespaceMeta, _error: &Error) -> Fingerprint {
        fingerprint(obj, &self.settings.finalizer)
    }

    async fn apply(&self, obj: &NamespaceMeta) -> Result<Pass, Error> {
        let uid = obj.uid().unwrap_or_default();
        let inputs = fingerprint(obj, &self.settings.finalizer);
        let tracker = &self.base.tracker;
        if let Some(left) = tracker.settled_for(&uid, &inputs, self.settings.resync) {
            return Ok(Pass::requeue(Outcome::Unchanged, left));
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
            ensure_routing(obj, self, spec.rotate_keys.as_deref()).await?;
        }
        let outcome = match &spec.iam {
            Some(mapping) => {
                map(obj, self, mapping).await?;
                Outcome::Applied
            }
            None if spec.routing_secret => Outcome::Applied,
            None => Outcome::Skipped,
        };
        tracker.settle(&uid, inputs);
        Ok(Pass::requeue(outcome, self.settings.resync))
    }

    async fn cleanup(&self, obj: &NamespaceMeta) -> Result<Option<Pass>, Error> {
        unmap(obj, self).await?;
        Ok(None)
    }

    /// A namespace that dropped `iam.hawser.io/role-arn`, in
    /// `--namespace-selector` or not: its entry, RoleBinding and finalizer
    /// go. (A label edit alone takes nobody's access away.)
    async fn release(&self, obj: &NamespaceMeta) -> Result<Pass, Error> {
        unmap(obj, self).await?;
        self.base.remove_finalizer(&self.api(obj), obj).await?;
        self.forget(&obj.uid().unwrap_or_default());
        Ok(Pass::await_change(Outcome::Released))
    }
}

async fn ensure_routing(
    obj: &NamespaceMeta,
    ctx: &Context,
    rotate: Option<&str>,
) -> Result<(), Error> {
    let ns = obj.name_any();
    let secrets = Api::namespaced(ctx.client(), &ns);
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
        let api: Api<NamespaceMeta> = Api::all(ctx.client());
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
    ctx.base.add_finalizer(&ctx.api(obj), obj).await?;
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
    let bindings: Api<RoleBinding> = Api::namespaced(ctx.client(), &ns);
    let desired = iam::desired_binding(&ns, &entry.groups, &ctx.settings.iam_cluster_role);
    let binding = iam::ensure_binding(&bindings, desired).await?;
    publish_binding(ctx, obj, binding, &entry.groups).await;
    Ok(())
}

/// Removes hawser's entry and RoleBinding.
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
    let bindings: Api<RoleBinding> = Api::namespaced(ctx.client(), &ns);
    let binding = iam::remove_binding(&bindings).await?;
    publish_binding(ctx, obj, binding, &[]).await;
    Ok(())
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

async fn publish(ctx: &Context, obj: &NamespaceMeta, type_: EventType, reason: &str, note: String) {
    ctx.base.publish(obj, type_, reason, note).await;
}
