//! The writer against an in-process apiserver stand-in that can conflict
//! and hang: it batches, retries conflicts only for a bounded time, and
//! an API call that never answers ends in an error, never a stall. Time
//! is paused, so the deadlines pass instantly.

use std::{
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use prometheus::{IntCounterVec, Opts};
use tokio_util::sync::CancellationToken;

use super::writer::{AwsAuthWriter, Target, WriteError, BATCH_DEADLINE, REPLY_DEADLINE};
use crate::aws_auth::{Change, Effect, MapRole};

#[derive(Default)]
struct Server {
    map_roles: String,
    record: Option<String>,
    version: u64,
    /// PATCHes still to answer 409 (u32::MAX: always).
    conflicts: u32,
    hang: bool,
    patches: u32,
}

type Shared = Arc<Mutex<Server>>;

fn json(status: u16, body: serde_json::Value) -> http::Response<Full<Bytes>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn config_map(s: &Server) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "aws-auth", "namespace": "kube-system",
            "resourceVersion": s.version.to_string(),
            "annotations": s.record.as_ref().map(|r| serde_json::json!({"iam.hawser.io/mapped-roles": r}))},
        "data": {"mapRoles": s.map_roles},
    })
}

fn conflict() -> http::Response<Full<Bytes>> {
    json(
        409,
        serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "the object has been modified", "reason": "Conflict", "code": 409}),
    )
}

async fn serve(
    server: Shared,
    req: http::Request<kube::client::Body>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    if server.lock().unwrap().hang {
        futures::future::pending::<()>().await;
    }
    let method = req.method().clone();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let mut s = server.lock().unwrap();
    if method == http::Method::GET {
        return Ok(json(200, config_map(&s)));
    }
    s.patches += 1;
    if s.conflicts > 0 {
        s.conflicts = s
            .conflicts
            .saturating_sub(u32::from(s.conflicts != u32::MAX));
        return Ok(conflict());
    }
    let patch: serde_json::Value = serde_json::from_slice(&body).unwrap();
    if patch["metadata"]["resourceVersion"].as_str() != Some(s.version.to_string().as_str()) {
        return Ok(conflict());
    }
    s.map_roles = patch["data"]["mapRoles"].as_str().unwrap().to_owned();
    s.record = patch["metadata"]["annotations"]["iam.hawser.io/mapped-roles"]
        .as_str()
        .map(str::to_owned);
    s.version += 1;
    Ok(json(200, config_map(&s)))
}

fn writer(server: &Shared) -> AwsAuthWriter {
    let server = server.clone();
    let service = tower::service_fn(move |req| serve(server.clone(), req));
    let client = kube::Client::new(service, "default");
    let writes = IntCounterVec::new(Opts::new("w", "w"), &["result"]).unwrap();
    AwsAuthWriter::start(
        client,
        Target {
            namespace: "kube-system".into(),
            name: "aws-auth".into(),
        },
        writes,
        CancellationToken::new(),
    )
}

fn change(ns: &str) -> Change {
    Change {
        namespace: ns.into(),
        desired: Some(MapRole {
            rolearn: format!("arn:aws:iam::111122223333:role/{ns}"),
            username: ns.into(),
            groups: vec![],
        }),
    }
}

#[tokio::test(start_paused = true)]
async fn wishes_arriving_together_are_written_together() {
    let server = Shared::default();
    let w = writer(&server);
    let answers =
        futures::future::join_all((0..20).map(|i| w.submit(change(&format!("ns-{i}"))))).await;
    assert!(
        answers.iter().all(|a| a == &Ok(Effect::Added)),
        "{answers:?}"
    );
    let s = server.lock().unwrap();
    assert!(s.patches < 20, "{} writes for 20 wishes", s.patches);
    assert_eq!(s.map_roles.matches("- rolearn:").count(), 20);
}

#[tokio::test(start_paused = true)]
async fn conflicts_are_retried_then_given_up_on_within_the_deadline() {
    let server = Shared::default();
    server.lock().unwrap().conflicts = 3;
    let w = writer(&server);
    assert_eq!(w.submit(change("a")).await, Ok(Effect::Added));
    assert_eq!(server.lock().unwrap().patches, 4);

    server.lock().unwrap().conflicts = u32::MAX;
    let started = tokio::time::Instant::now();
    let answer = w.submit(change("b")).await;
    assert!(
        matches!(answer, Err(WriteError::Conflicts { .. })),
        "{answer:?}"
    );
    assert!(started.elapsed() <= BATCH_DEADLINE + Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn an_apiserver_that_never_answers_is_an_error_not_a_stall() {
    let server = Shared::default();
    server.lock().unwrap().hang = true;
    let w = writer(&server);
    let started = tokio::time::Instant::now();
    let answer = w.submit(change("a")).await;
    assert!(matches!(answer, Err(WriteError::TimedOut(_))), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(11));
    // The writer survives and serves the next wish once the API answers.
    server.lock().unwrap().hang = false;
    assert_eq!(w.submit(change("a")).await, Ok(Effect::Added));
}

#[tokio::test(start_paused = true)]
async fn a_writer_that_does_not_answer_in_time_is_reported_as_such() {
    let (w, _queue) = AwsAuthWriter::unanswered();
    let answer = w.submit(change("a")).await;
    assert_eq!(answer, Err(WriteError::NoReply(REPLY_DEADLINE)));
    let message = answer.unwrap_err().to_string();
    assert!(message.contains("may still be written"), "{message}");
}
