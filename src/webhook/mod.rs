//! The admission server: `/mutate` and `/validate`, AdmissionReview v1.
//!
//! Each handler decodes the review, looks up what it needs in the
//! in-memory caches (never the API server, never AWS), calls a pure
//! decision function and encodes the answer. Metrics and a span record
//! every request.

pub mod deployment;
pub mod hardening;

use std::{sync::Arc, time::Duration};

use axum::{
    body::Bytes,
    extract::{DefaultBodyLimit, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::post,
    Json, Router,
};
use kube::core::{
    admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation},
    DynamicObject,
};
use tracing::{field::Empty, Instrument};

use crate::{metrics::Metrics, namespaces::NamespaceCache};

/// AdmissionReviews carry the object twice on UPDATE; objects may be up
/// to 1.5 MiB each in etcd.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// What the webhook is configured with.
#[derive(Debug, Clone)]
pub struct Config {
    pub allow_privileged_containers: bool,
    pub excluded_namespaces: Vec<String>,
    pub namespace_wait: Duration,
}

pub struct Context {
    pub config: Config,
    pub namespaces: NamespaceCache,
    pub metrics: Arc<Metrics>,
}

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

pub fn router(ctx: Arc<Context>) -> Router {
    Router::new()
        .route("/mutate", post(mutate))
        .route("/validate", post(validate))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(ctx)
}

async fn mutate(State(ctx): State<Arc<Context>>, body: Bytes) -> Response {
    handle(ctx, Webhook::Mutate, body).await
}

async fn validate(State(ctx): State<Arc<Context>>, body: Bytes) -> Response {
    handle(ctx, Webhook::Validate, body).await
}

fn operation_label(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

async fn handle(ctx: Arc<Context>, webhook: Webhook, body: Bytes) -> Response {
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
    let response = review_request(&ctx, webhook, &req)
        .instrument(span.clone())
        .await;
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
    Json(response.into_review()).into_response()
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
    let namespace = req.namespace.as_deref().unwrap_or_default();
    if ctx
        .config
        .excluded_namespaces
        .iter()
        .any(|n| n == namespace)
    {
        return AdmissionResponse::from(req);
    }
    match (req.kind.group.as_str(), req.kind.kind.as_str()) {
        ("apps", "Deployment") => deployment::review(ctx, webhook, req).await,
        _ => AdmissionResponse::from(req),
    }
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
