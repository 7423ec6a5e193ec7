//! The writer against the in-process apiserver stand-in
//! ([`crate::testing::ApiServer`]), which can conflict and hang: it
//! batches, retries conflicts only for a bounded time, and an API call
//! that never answers ends in an error, never a stall. Time is paused, so
//! the deadlines pass instantly.

use std::time::Duration;

use prometheus::{IntCounterVec, Opts};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::writer::{AwsAuthWriter, Target, WriteError, BATCH_DEADLINE, REPLY_DEADLINE};
use crate::aws_auth::{Change, Effect, MapRole};
use crate::testing::ApiServer;

const AWS_AUTH: &str = "/api/v1/namespaces/kube-system/configmaps/aws-auth";

/// The stand-in, holding an empty aws-auth.
fn server() -> ApiServer {
    let server = ApiServer::default();
    server.put(
        AWS_AUTH,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "aws-auth", "namespace": "kube-system"},
            "data": {"mapRoles": ""}}),
    );
    server
}

fn map_roles(server: &ApiServer) -> String {
    let cm = server.get(AWS_AUTH).expect("aws-auth");
    cm["data"]["mapRoles"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn patches(server: &ApiServer) -> usize {
    server.requests("PATCH").len()
}

fn writer(server: &ApiServer) -> AwsAuthWriter {
    let writes = IntCounterVec::new(Opts::new("w", "w"), &["result"]).unwrap();
    AwsAuthWriter::start(
        server.client(),
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
    let server = server();
    let w = writer(&server);
    let answers =
        futures::future::join_all((0..20).map(|i| w.submit(change(&format!("ns-{i}"))))).await;
    assert!(
        answers.iter().all(|a| a == &Ok(Effect::Added)),
        "{answers:?}"
    );
    let patches = patches(&server);
    assert!(patches < 20, "{patches} writes for 20 wishes");
    assert_eq!(map_roles(&server).matches("- rolearn:").count(), 20);
}

#[tokio::test(start_paused = true)]
async fn conflicts_are_retried_then_given_up_on_within_the_deadline() {
    let server = server();
    server.lock().conflicts = 3;
    let w = writer(&server);
    assert_eq!(w.submit(change("a")).await, Ok(Effect::Added));
    assert_eq!(patches(&server), 4);

    server.lock().conflicts = u32::MAX;
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
    let server = server();
    server.lock().hang = true;
    let w = writer(&server);
    let started = tokio::time::Instant::now();
    let answer = w.submit(change("a")).await;
    assert!(matches!(answer, Err(WriteError::TimedOut(_))), "{answer:?}");
    assert!(started.elapsed() < Duration::from_secs(11));
    // The writer survives and serves the next wish once the API answers.
    server.lock().hang = false;
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
