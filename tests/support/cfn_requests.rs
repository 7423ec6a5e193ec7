//! The cfn-requests controller's test world: an SQS queue in moto of the
//! test's own, a local HTTP server standing in for CloudFormation's
//! pre-signed ResponseURL (it can be switched "down": 503 to every PUT),
//! and a hawser running `--controllers cfn-requests` on that queue.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use aws_sdk_sqs::types::QueueAttributeName;
use axum::{body::Bytes, extract::State, http::StatusCode, http::Uri, Router};
use serde_json::{json, Value};

use super::moto::REGION;
use super::*;

pub const WAIT: Duration = Duration::from_secs(60);
pub const ID_LABEL: &str = "custom-resource.hawser.io/id";
pub const REQUEST_ID: &str = "custom-resource.hawser.io/request-id";

pub fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&super::moto::config())
}

#[derive(Default)]
struct Received {
    up: AtomicBool,
    /// (path, body) of every PUT answered 200.
    puts: Mutex<Vec<(String, Value)>>,
    refused: Mutex<u32>,
}

/// A stand-in for S3's pre-signed URLs.
pub struct ResponseServer {
    pub base: String,
    received: Arc<Received>,
    _task: tokio::task::JoinHandle<()>,
}

impl ResponseServer {
    pub async fn start() -> Self {
        let received = Arc::new(Received::default());
        received.up.store(true, Ordering::SeqCst);
        let app = Router::new()
            .fallback(
                |State(r): State<Arc<Received>>, uri: Uri, body: Bytes| async move {
                    if !r.up.load(Ordering::SeqCst) {
                        *r.refused.lock().unwrap() += 1;
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    r.puts.lock().unwrap().push((uri.path().to_owned(), body));
                    StatusCode::OK
                },
            )
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            base,
            received,
            _task: task,
        }
    }

    pub fn set_up(&self, up: bool) {
        self.received.up.store(up, Ordering::SeqCst);
    }

    pub fn refused(&self) -> u32 {
        *self.received.refused.lock().unwrap()
    }

    /// The answers PUT to `/<key>`.
    pub fn answers(&self, key: &str) -> Vec<Value> {
        let path = format!("/{key}");
        self.received
            .puts
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| *p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// Waits for the first answer to `/<key>`.
    pub async fn answer(&self, key: &str) -> Value {
        eventually(&format!("an answer PUT to /{key}"), WAIT, || async {
            self.answers(key).into_iter().next()
        })
        .await
    }
}

/// One test's world.
pub struct Bed {
    pub client: kube::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub responses: ResponseServer,
    pub stack_id: String,
    pub hawser: Hawser,
}

impl Bed {
    /// hawser on a new queue, allowed `resources` in `namespaces`.
    pub async fn start(resources: &str, namespaces: &str) -> Self {
        let sqs = sqs();
        let queue = unique("cfn-requests");
        let queue_url = sqs
            .create_queue()
            .queue_name(&queue)
            .send()
            .await
            .expect("CreateQueue")
            .queue_url()
            .expect("a queue URL")
            .to_owned();
        let cluster = unique("cluster");
        let hawser = Hawser::start(&[
            "--controllers",
            "cfn-requests",
            "--cluster-name",
            &cluster,
            "--region",
            REGION,
            "--cfn-requests-queue-url",
            &queue_url,
            "--cfn-allowed-resources",
            resources,
            "--cfn-allowed-namespaces",
            namespaces,
        ])
        .await;
        Self {
            client: client().await,
            sqs,
            queue_url,
            responses: ResponseServer::start().await,
            stack_id: format!(
                "arn:aws:cloudformation:{REGION}:123456789012:stack/{}/guid-1",
                unique("Stack")
            ),
            hawser,
        }
    }

    /// A request as CloudFormation sends it, answered to `/<key>`.
    pub fn request(
        &self,
        type_: &str,
        key: &str,
        physical_id: Option<&str>,
        properties: Value,
    ) -> Value {
        let mut r = json!({
            "RequestType": type_,
            "ResponseURL": format!("{}/{key}?X-Amz-Signature=secret", self.responses.base),
            "StackId": self.stack_id,
            "RequestId": key,
            "ResourceType": "Custom::Manifest",
            "LogicalResourceId": "MyTestResource",
            "ResourceProperties": properties,
        });
        if let Some(id) = physical_id {
            r["PhysicalResourceId"] = id.into();
        }
        r
    }

    pub async fn send(&self, body: &str) {
        self.sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .expect("SendMessage");
    }

    /// Sends `request` wrapped as SNS delivers it to a subscribed queue.
    pub async fn send_through_sns(&self, request: &Value) {
        let envelope = json!({
            "Type": "Notification",
            "MessageId": unique("sns"),
            "TopicArn": format!("arn:aws:sns:{REGION}:123456789012:hawser-requests"),
            "Message": request.to_string(),
            "Timestamp": "2026-12-04T00:00:00.000Z",
        });
        self.send(&envelope.to_string()).await;
    }

    /// Messages in the queue, visible or not.
    pub async fn queued(&self) -> u32 {
        let out = self
            .sqs
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .expect("GetQueueAttributes");
        out.attributes()
            .into_iter()
            .flat_map(|a| a.values())
            .map(|v| v.parse::<u32>().expect("a count"))
            .sum()
    }

    pub async fn requests(&self, type_: &str, result: &str) -> f64 {
        self.hawser
            .metric(&format!(
                r#"hawser_cfn_requests_total{{result="{result}",type="{type_}"}}"#
            ))
            .await
    }

    /// Waits until `hawser_cfn_requests_total{type,result}` is at least `n`.
    pub async fn wait_requests(&self, type_: &str, result: &str, n: f64) {
        eventually(
            &format!("{n} {type_} requests with result {result}"),
            WAIT,
            || async { (self.requests(type_, result).await >= n).then_some(()) },
        )
        .await
    }
}

/// `hawser.io`-style manifest of one Namespace and one StatefulSet in it,
/// in JSON flow style as the issue's event has it.
pub fn namespace_and_statefulset(ns: &str) -> String {
    format!(
        "---\n{{apiVersion: v1,kind: Namespace, metadata: {{ annotations: {{}}, labels: {{}}, name: {ns}}}}}\n---\n{{apiVersion: apps/v1, kind: StatefulSet, metadata: {{name: mysqldb, labels: {{app: mysqldb}}}}, spec: {{replicas: 1, selector: {{matchLabels: {{app: mysqldb}}}}, template: {{metadata: {{labels: {{app: mysqldb}}}}, spec: {{containers: [{{name: mysqldb, image: 'mysql:latest', ports: [{{containerPort: 3306, name: mysql}}]}}]}}}}}}}}"
    )
}
