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
mod lean;
mod limits;
pub mod namespace;
pub mod patch;
mod review;
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
    Router,
};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Service};
use kube::core::{
    admission::{AdmissionRequest, AdmissionResponse, Operation},
    DynamicObject,
};
use tracing::{field::Empty, Instrument};

use crate::{metrics::Metrics, namespaces::NamespaceCache};

use limits::bounded_body;
pub use limits::{RequestDeadline, MAX_BODY, REQUEST_READ_TIMEOUT, TLS_HANDSHAKE_TIMEOUT};
use review::{DecodeError, Decoded};

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

/// The request, its objects decoded as the type its kind's rules read.
enum Request {
    Deployment(Box<Decoded<Deployment>>),
    Service(Box<Decoded<Service>>),
    /// Namespaces, the aws-auth ConfigMap and any other kind.
    Other(Box<Decoded<DynamicObject>>),
}

/// The fields every request has, whatever its object's type.
struct Head<'a> {
    uid: &'a str,
    kind: &'a str,
    /// The namespace whose policy applies: a Namespace is "in" itself.
    namespace: &'a str,
    name: &'a str,
    operation: &'a Operation,
    dry_run: bool,
}

impl<'a> Head<'a> {
    fn of<K: kube::Resource>(req: &'a AdmissionRequest<K>) -> Self {
        let namespace = match req.kind.kind.as_str() {
            "Namespace" => req.name.as_str(),
            _ => req.namespace.as_deref().unwrap_or_default(),
        };
        Head {
            uid: &req.uid,
            kind: &req.kind.kind,
            namespace,
            name: &req.name,
            operation: &req.operation,
            dry_run: req.dry_run,
        }
    }
}

impl Request {
    fn decode(path: Path, review: review::Review<'_>) -> Result<Self, DecodeError> {
        Ok(match (path, review.kind()) {
            (Path::Hook(_), Some(("apps", "Deployment"))) => {
                // Only the fields the rules read (see `lean`).
                Request::Deployment(Box::new(review.decode_via::<lean::LeanDeployment, _>()?))
            }
            (Path::Hook(_), Some(("", "Service"))) => Request::Service(Box::new(review.decode()?)),
            _ => Request::Other(Box::new(review.decode()?)),
        })
    }

    fn head(&self) -> Head<'_> {
        match self {
            Request::Deployment(d) => Head::of(&d.req),
            Request::Service(d) => Head::of(&d.req),
            Request::Other(d) => Head::of(&d.req),
        }
    }

    fn response(&self) -> AdmissionResponse {
        match self {
            Request::Deployment(d) => AdmissionResponse::from(&d.req),
            Request::Service(d) => AdmissionResponse::from(&d.req),
            Request::Other(d) => AdmissionResponse::from(&d.req),
        }
    }
}

/// A 200 with an AdmissionReview (`review::answer`).
fn answer(body: Vec<u8>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
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
    let answered = match admit(&ctx, webhook, &body).await {
        Ok(answered) => answered,
        Err(DecodeError::NotAReview(e)) => {
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
        Err(DecodeError::NoRequest) => {
            count("unknown", "unknown", "invalid");
            let invalid = AdmissionResponse::invalid("hawser: the AdmissionReview has no request");
            return answer(review::answer(invalid));
        }
    };
    count(answered.kind, answered.operation, answered.result);
    timer.observe_duration();
    answer(review::answer(answered.response))
}

/// One review answered, with its metric labels.
struct Answered {
    response: AdmissionResponse,
    kind: &'static str,
    operation: &'static str,
    result: &'static str,
}

/// Reads one review body and decides it: everything the server does for a
/// request but HTTP and metrics. `hawser lint` runs the same function.
async fn admit(ctx: &Context, webhook: Path, body: &[u8]) -> Result<Answered, DecodeError> {
    let request = review::read(body)
        .map_err(DecodeError::NotAReview)
        .and_then(|review| Request::decode(webhook, review))?;
    let head = request.head();
    // Debug level: at the default level the span costs nothing, and a
    // refusal's log line carries these fields itself.
    let span = tracing::debug_span!(
        "admission",
        webhook = webhook.as_str(),
        uid = head.uid,
        kind = head.kind,
        namespace = head.namespace,
        name = head.name,
        operation = operation_label(head.operation),
        dry_run = head.dry_run,
        allowed = Empty,
        patched = Empty,
    );
    let response = match (webhook, &request) {
        (Path::Hook(hook), _) => {
            review_request(ctx, hook, &request)
                .instrument(span.clone())
                .await
        }
        (Path::AwsAuthGuard, Request::Other(d)) => span.in_scope(|| match &d.undecodable {
            Some(why) => AdmissionResponse::from(&d.req).deny(why),
            None => aws_auth_guard::review(&ctx.config.aws_auth_guard, &d.req),
        }),
        // Request::decode reads every aws-auth review as Other.
        (Path::AwsAuthGuard, _) => request.response(),
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
            tracing::info!(
                webhook = webhook.as_str(),
                uid = head.uid,
                kind = head.kind,
                namespace = head.namespace,
                name = head.name,
                operation = operation_label(head.operation),
                dry_run = head.dry_run,
                result,
                message = %response.result.message,
                "refused"
            );
        }
    });
    Ok(Answered {
        kind: kind_label(head.kind),
        operation: operation_label(head.operation),
        result,
        response,
    })
}

/// What `webhook` answers to an AdmissionReview `body`, decided exactly as
/// the server decides it (for `hawser lint`). An error says why the body
/// is not a review.
pub async fn decide_review(
    ctx: &Context,
    webhook: Webhook,
    body: &[u8],
) -> Result<AdmissionResponse, String> {
    match admit(ctx, Path::Hook(webhook), body).await {
        Ok(answered) => Ok(answered.response),
        Err(DecodeError::NotAReview(e)) => Err(format!("not an AdmissionReview: {e}")),
        Err(DecodeError::NoRequest) => Err("the AdmissionReview has no request".into()),
    }
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

async fn review_request(ctx: &Context, webhook: Webhook, request: &Request) -> AdmissionResponse {
    let response = request.response();
    let head = request.head();
    let namespace = head.namespace;
    if ctx
        .config
        .excluded_namespaces
        .iter()
        .any(|n| n == namespace)
    {
        return response;
    }
    // Nothing is ever refused on DELETE; there is nothing to mutate either.
    if !matches!(head.operation, Operation::Create | Operation::Update) {
        return response;
    }
    let undecodable = match request {
        Request::Deployment(d) => &d.undecodable,
        Request::Service(d) => &d.undecodable,
        Request::Other(d) => &d.undecodable,
    };
    if let Some(why) = undecodable {
        return response.deny(why);
    }
    let decision = match request {
        Request::Deployment(d) => {
            let req = &d.req;
            let Some(new) = req.object.as_ref() else {
                return response;
            };
            let ns = ctx
                .namespaces
                .get_or_wait(namespace, ctx.config.namespace_wait)
                .await;
            if ns.is_none() {
                tracing::warn!(%namespace, "namespace not in the cache; applying the default policy");
            }
            let name = match req.name.as_str() {
                "" => new.metadata.name.as_deref().unwrap_or_default(),
                name => name,
            };
            deployment::decide(
                webhook,
                &deployment::Input {
                    namespace,
                    name,
                    username: req.user_info.username.as_deref().unwrap_or_default(),
                    dry_run: req.dry_run,
                    new,
                    old: req.old_object.as_ref(),
                    ns: ns.as_ref(),
                    allow_privileged_containers: ctx.config.allow_privileged_containers,
                    controller_usernames: &ctx.config.controller_usernames,
                },
            )
        }
        Request::Service(d) => {
            let req = &d.req;
            let Some(new) = req.object.as_ref() else {
                return response;
            };
            let old = req.old_object.as_ref();
            // Read only where the region guard can use it (an update of a
            // Service whose endpoint exists), not on every Service admission.
            let endpoint_exists = old.is_some_and(|o: &Service| {
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
                    new,
                    old,
                    controller_usernames: &ctx.config.controller_usernames,
                    inherited_region: inherited_region.as_deref(),
                },
            )
        }
        Request::Other(d) if d.req.kind.group.is_empty() && d.req.kind.kind == "Namespace" => {
            let Some(obj) = d.req.object.as_ref() else {
                return response;
            };
            namespace_decision(ctx, webhook, &d.req, obj).await
        }
        Request::Other(_) => return response,
    };
    into_response(response, decision)
}

async fn namespace_decision(
    ctx: &Context,
    webhook: Webhook,
    req: &AdmissionRequest<DynamicObject>,
    obj: &DynamicObject,
) -> contract::Decision {
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
    let change =
        stranded::ScopeChange::between(old_ann, obj.metadata.annotations.as_ref(), default_region);
    let stranded = match &ctx.client {
        Some(client)
            if webhook == Webhook::Validate
                && req.operation == Operation::Update
                && change.any()
                && ctx.config.managed.covers(&req.name) =>
        {
            let managed = &ctx.config.managed;
            Some(stranded::find(client, managed, &req.name, change, STRANDED_DEADLINE).await)
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
            old: old_ann,
            controller_usernames: &ctx.config.controller_usernames,
            allow_system_groups: ctx.config.allow_system_groups,
            stranded: stranded.as_ref(),
            default_region,
        },
        &others,
    )
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
