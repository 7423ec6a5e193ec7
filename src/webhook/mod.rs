//! The admission server: `/mutate` and `/validate`, AdmissionReview v1.
//!
//! Each handler decodes the review, looks up what it needs in the
//! in-memory caches (never the API server, never AWS), calls a pure
//! decision function and encodes the answer. Metrics and a span record
//! every request.

pub mod aws_auth_guard;
pub mod contract;
pub mod deployment;
pub mod hardening;
mod limits;
pub mod namespace;
pub mod patch;
pub mod service;
pub mod stranded;
pub mod workload;

use std::{sync::Arc, time::Duration};

use axum::{
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Service};
use kube::core::{
    admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation},
    DynamicObject,
};
use tracing::{field::Empty, Instrument};

use crate::{metrics::Metrics, namespaces::NamespaceCache};

use limits::bounded_body;
pub use limits::{RequestDeadline, MAX_BODY, REQUEST_READ_TIMEOUT, TLS_HANDSHAKE_TIMEOUT};

/// What the webhook is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    pub allow_privileged_containers: bool,
    pub allow_system_groups: bool,
    pub controller_usernames: Vec<String>,
    pub excluded_namespaces: Vec<String>,
    pub namespace_wait: Duration,
    /// The aws-auth lockout guard (`/validate-aws-auth`).
    pub aws_auth_guard: aws_auth_guard::GuardConfig,
    /// What the controllers manage: where a Namespace's region or role
    /// change can strand resources.
    pub managed: stranded::Managed,
    /// `--region`: what an unset `aws.hawser.io/region` means.
    pub default_region: Option<String>,
}

pub struct Context {
    pub config: Config,
    pub namespaces: NamespaceCache,
    pub metrics: Arc<Metrics>,
    /// For the one check that reads beyond the caches: which objects a
    /// Namespace's region or role change would strand. `None` (admission
    /// fixtures only) skips it.
    pub client: Option<kube::Client>,
}

/// How long the stranded-resources check may list for: well inside the
/// webhook's 5 s timeout.
const STRANDED_DEADLINE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Webhook {
    Mutate,
    Validate,
}

impl Webhook {
    pub fn as_str(self) -> &'static str {
        match self {
            Webhook::Mutate => "mutate",
            Webhook::Validate => "validate",
        }
    }
}

/// The paths served, each with its metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Hook(Webhook),
    AwsAuthGuard,
}

impl Path {
    fn as_str(self) -> &'static str {
        match self {
            Path::Hook(w) => w.as_str(),
            Path::AwsAuthGuard => "validate-aws-auth",
        }
    }
}

pub fn router(ctx: Arc<Context>) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route("/validate", post(validate))
        .route("/validate-aws-auth", post(validate_aws_auth))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(bounded_body))
        .with_state(ctx)
}

async fn mutate(State(ctx): State<Arc<Context>>, body: Bytes) -> Response {
    handle(ctx, Path::Hook(Webhook::Mutate), body).await
}

async fn validate(State(ctx): State<Arc<Context>>, body: Bytes) -> Response {
    handle(ctx, Path::Hook(Webhook::Validate), body).await
}

async fn validate_aws_auth(State(ctx): State<Arc<Context>>, body: Bytes) -> Response {
    handle(ctx, Path::AwsAuthGuard, body).await
}

fn operation_label(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

async fn handle(ctx: Arc<Context>, webhook: Path, body: Bytes) -> Response {
    let timer = ctx
        .metrics
        .admission_duration
        .with_label_values(&[webhook.as_str()])
        .start_timer();
    let count = |kind: &str, op: &str, result: &str| {
        ctx.metrics
            .admission_requests
            .with_label_values(&[webhook.as_str(), kind, op, result])
            .inc();
    };

    let review: AdmissionReview<DynamicObject> = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            count("unknown", "unknown", "invalid");
            tracing::warn!(webhook = webhook.as_str(), error = %e, "request body is not an AdmissionReview");
            return (
                StatusCode::BAD_REQUEST,
                format!(
                    "hawser: the request body is not an admission.k8s.io/v1 AdmissionReview: {e}"
                ),
            )
                .into_response();
        }
    };
    let req: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(_) => {
            count("unknown", "unknown", "invalid");
            return Json(
                AdmissionResponse::invalid("hawser: the AdmissionReview has no request")
                    .into_review(),
            )
            .into_response();
        }
    };

    let span = tracing::info_span!(
        "admission",
        webhook = webhook.as_str(),
        uid = %req.uid,
        kind = %req.kind.kind,
        namespace = req.namespace.as_deref().unwrap_or(""),
        name = %req.name,
        operation = operation_label(&req.operation),
        dry_run = req.dry_run,
        allowed = Empty,
        patched = Empty,
    );
    let response = match webhook {
        Path::Hook(hook) => {
            review_request(&ctx, hook, &req)
                .instrument(span.clone())
                .await
        }
        Path::AwsAuthGuard => {
            span.in_scope(|| aws_auth_guard::review(&ctx.config.aws_auth_guard, &req))
        }
    };
    let patched = response.patch.is_some();
    span.record("allowed", response.allowed);
    span.record("patched", patched);
    let result = match (response.allowed, patched) {
        (false, _) => "denied",
        (true, true) => "patched",
        (true, false) => "allowed",
    };
    span.in_scope(|| {
        if response.allowed {
            tracing::debug!(result, "admitted");
        } else {
            tracing::info!(result, message = %response.result.message, "refused");
        }
    });
    count(
        kind_label(&req.kind.kind),
        operation_label(&req.operation),
        result,
    );
    timer.observe_duration();
    Json(review_json(response)).into_response()
}

/// The AdmissionReview answer, with `response.patch` as the API specifies
/// it: a base64 string. (kube-core serializes the bytes as a JSON array of
/// numbers, which the apiserver happens to accept, at about three times
/// the size.)
pub fn review_json(mut response: AdmissionResponse) -> serde_json::Value {
    use base64::Engine as _;
    let patch = response.patch.take();
    let mut review = serde_json::to_value(response.into_review()).unwrap_or_default();
    if let (Some(patch), Some(answer)) = (patch, review["response"].as_object_mut()) {
        answer.insert(
            "patch".into(),
            base64::engine::general_purpose::STANDARD
                .encode(patch)
                .into(),
        );
    }
    review
}

/// Kinds hawser registers for; anything else is reported as "other" so a
/// misconfigured rule cannot blow up label cardinality.
fn kind_label(kind: &str) -> &'static str {
    match kind {
        "Deployment" => "Deployment",
        "Service" => "Service",
        "Namespace" => "Namespace",
        "ConfigMap" => "ConfigMap",
        _ => "other",
    }
}

async fn review_request(
    ctx: &Context,
    webhook: Webhook,
    req: &AdmissionRequest<DynamicObject>,
) -> AdmissionResponse {
    let response = AdmissionResponse::from(req);
    // Namespace objects are cluster-scoped; they are "in" themselves.
    let namespace = match req.kind.kind.as_str() {
        "Namespace" => req.name.as_str(),
        _ => req.namespace.as_deref().unwrap_or_default(),
    };
    if ctx
        .config
        .excluded_namespaces
        .iter()
        .any(|n| n == namespace)
    {
        return response;
    }
    // Nothing is ever refused on DELETE; there is nothing to mutate either.
    if !matches!(req.operation, Operation::Create | Operation::Update) {
        return response;
    }
    let Some(obj) = req.object.as_ref() else {
        return response;
    };
    let decision = match (req.kind.group.as_str(), req.kind.kind.as_str()) {
        ("apps", "Deployment") => {
            let (new, old): (Deployment, _) = match typed_pair(obj, req.old_object.as_ref()) {
                Ok(pair) => pair,
                Err(msg) => return response.deny(msg),
            };
            let ns = ctx
                .namespaces
                .get_or_wait(namespace, ctx.config.namespace_wait)
                .await;
            if ns.is_none() {
                tracing::warn!(%namespace, "namespace not in the cache; applying the default policy");
            }
            let name = if req.name.is_empty() {
                new.metadata.name.clone().unwrap_or_default()
            } else {
                req.name.clone()
            };
            deployment::decide(
                webhook,
                &deployment::Input {
                    namespace,
                    name: &name,
                    username: req.user_info.username.as_deref().unwrap_or_default(),
                    dry_run: req.dry_run,
                    new: &new,
                    old: old.as_ref(),
                    ns: ns.as_ref(),
                    allow_privileged_containers: ctx.config.allow_privileged_containers,
                    controller_usernames: &ctx.config.controller_usernames,
                },
            )
        }
        ("", "Service") => {
            let (new, old): (Service, _) = match typed_pair(obj, req.old_object.as_ref()) {
                Ok(pair) => pair,
                Err(msg) => return response.deny(msg),
            };
            // Read only where the region guard can use it (an update of a
            // Service whose endpoint exists), not on every Service admission.
            let endpoint_exists = old.as_ref().is_some_and(|o: &Service| {
                o.metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(crate::annotations::keys::VPCE_ENDPOINT_ID))
            });
            let inherited_region = if webhook == Webhook::Validate && endpoint_exists {
                let info = ctx.namespaces.get(namespace);
                let namespace_region = info
                    .as_ref()
                    .and_then(|ns| ns.annotations.get(crate::annotations::keys::AWS_REGION));
                let default = ctx.config.default_region.as_deref();
                crate::annotations::effective_region(
                    None,
                    namespace_region.map(String::as_str),
                    default,
                )
                .map(str::to_owned)
            } else {
                None
            };
            service::decide(
                webhook,
                &service::Input {
                    operation: &req.operation,
                    username: req.user_info.username.as_deref().unwrap_or_default(),
                    dry_run: req.dry_run,
                    new: &new,
                    old: old.as_ref(),
                    controller_usernames: &ctx.config.controller_usernames,
                    inherited_region: inherited_region.as_deref(),
                },
            )
        }
        ("", "Namespace") => {
            // Only the role-ARN uniqueness check on /validate reads the other
            // namespaces; copying the cache on every request would make each
            // Namespace admission cost O(namespaces) for nothing.
            let claims_role = obj
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(crate::annotations::keys::IAM_ROLE_ARN));
            let others: Vec<_> = if webhook == Webhook::Validate && claims_role {
                ctx.namespaces.all()
            } else {
                Vec::new()
            }
            .iter()
            .map(|ns| {
                (
                    ns.metadata.name.clone().unwrap_or_default(),
                    ns.metadata.annotations.clone().unwrap_or_default(),
                )
            })
            .collect();
            let old_ann = req
                .old_object
                .as_ref()
                .and_then(|o| o.metadata.annotations.as_ref());
            let default_region = ctx.config.default_region.as_deref();
            let change = stranded::ScopeChange::between(
                old_ann,
                obj.metadata.annotations.as_ref(),
                default_region,
            );
            let stranded = match &ctx.client {
                Some(client)
                    if webhook == Webhook::Validate
                        && req.operation == Operation::Update
                        && change.any()
                        && ctx.config.managed.covers(&req.name) =>
                {
                    let managed = &ctx.config.managed;
                    Some(
                        stranded::find(client, managed, &req.name, change, STRANDED_DEADLINE).await,
                    )
                }
                _ => None,
            };
            namespace::decide(
                webhook,
                &namespace::Input {
                    name: &req.name,
                    username: req.user_info.username.as_deref().unwrap_or_default(),
                    dry_run: req.dry_run,
                    new: obj.metadata.annotations.as_ref(),
                    old: req
                        .old_object
                        .as_ref()
                        .and_then(|o| o.metadata.annotations.as_ref()),
                    controller_usernames: &ctx.config.controller_usernames,
                    allow_system_groups: ctx.config.allow_system_groups,
                    stranded: stranded.as_ref(),
                    default_region,
                },
                &others,
            )
        }
        _ => return response,
    };
    into_response(response, decision)
}

fn into_response(
    mut response: AdmissionResponse,
    decision: contract::Decision,
) -> AdmissionResponse {
    if !decision.warnings.is_empty() {
        response.warnings = Some(decision.warnings);
    }
    if !decision.denials.is_empty() {
        return response.deny(decision.denials.join("; "));
    }
    if decision.patch.is_empty() {
        return response;
    }
    match response
        .clone()
        .with_patch(json_patch::Patch(decision.patch))
    {
        Ok(r) => r,
        Err(e) => response.deny(format!("hawser could not encode its patch: {e}")),
    }
}

fn typed_pair<K: serde::de::DeserializeOwned>(
    new: &DynamicObject,
    old: Option<&DynamicObject>,
) -> Result<(K, Option<K>), String> {
    Ok((typed_object(new)?, old.map(typed_object).transpose()?))
}

/// Decodes the request's object into a typed resource. The apiserver has
/// validated it against the schema already, so failure means a version
/// skew we do not understand: refuse with the reason rather than guess.
pub(crate) fn typed_object<K: serde::de::DeserializeOwned>(
    obj: &DynamicObject,
) -> Result<K, String> {
    serde_json::to_value(obj)
        .and_then(serde_json::from_value)
        .map_err(|e| {
            format!(
                "hawser could not decode the {}: {e}",
                obj.types
                    .as_ref()
                    .map(|t| t.kind.as_str())
                    .unwrap_or("object")
            )
        })
}
