//! The `cfn-requests` controller: hawser as the provider of CloudFormation
//! custom resources. CloudFormation sends each request to an SNS topic
//! (the custom resource's `ServiceToken`), the topic to an SQS queue, and
//! this controller takes it from the queue, deploys the manifest in the
//! request into the cluster ([`deploy`]) and PUTs the answer to the
//! request's pre-signed `ResponseURL`. docs/cfn-requests.md is the guide.
//!
//! A message is deleted only once its answer was delivered; until then it
//! comes back (after a backoff set through its visibility). A request
//! answered before is not carried out again: the objects carry the id of
//! the request that last applied them, and this process remembers the
//! request ids it answered for an hour.
//!
//! Unlike the other controllers this one watches no Kubernetes kind: its
//! input is a queue, so it shares the skeleton's parts (Lease, per-call
//! API deadlines, the Event sink, the metrics registry, backoff) but not
//! its watch-driven runner.

pub mod deploy;
pub mod manifest;
pub mod request;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use aws_sdk_sqs::types::{Message as SqsMessage, MessageSystemAttributeName};
use tokio_util::sync::CancellationToken;

use self::manifest::Policy;
use self::request::{Message, Request, RequestType, Response, Status};
use super::{backoff::Backoff, events::EventSink};
use crate::aws::{ops::sqs as op, AwsError, CallCounter};
use crate::metrics::Metrics;

/// How long a received message stays hidden while hawser works on it.
const VISIBILITY: Duration = Duration::from_secs(300);
/// How long a request id is remembered as answered.
const REMEMBER: Duration = Duration::from_secs(3600);
/// Deadline of one PUT to a ResponseURL.
const PUT_TIMEOUT: Duration = Duration::from_secs(30);

/// The controller's configuration (`--cfn-requests-*`, `--cfn-allowed-*`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub queue_url: String,
    pub policy: Policy,
    /// The long poll of one ReceiveMessage (SQS allows 0 to 20 s).
    pub wait: Duration,
    /// The first delay before a message whose answer could not be
    /// delivered comes back; doubled per receipt, at most 5 minutes.
    pub retry_delay: Duration,
}

pub struct Context {
    client: kube::Client,
    sqs: aws_sdk_sqs::Client,
    calls: Arc<CallCounter>,
    http: reqwest::Client,
    events: EventSink,
    settings: Settings,
    metrics: Arc<Metrics>,
    answered: Mutex<HashMap<String, Instant>>,
}

/// The region of a queue URL (`https://sqs.<region>.amazonaws.com/...`),
/// if it names one.
pub fn queue_region(url: &str) -> Option<&str> {
    let host = url.split("://").nth(1)?.split('/').next()?;
    host.strip_prefix("sqs.")?
        .split('.')
        .next()
        .filter(|r| !r.is_empty())
}

impl Context {
    pub fn new(
        client: kube::Client,
        sqs: (aws_sdk_sqs::Client, Arc<CallCounter>),
        settings: Settings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(PUT_TIMEOUT)
            .build()
            .expect("an HTTP client with default TLS settings");
        Self {
            events: EventSink::new(client.clone()),
            client,
            sqs: sqs.0,
            calls: sqs.1,
            http,
            settings,
            metrics,
            answered: Mutex::new(HashMap::new()),
        }
    }

    fn count(&self, type_: &str, result: &str) {
        self.metrics
            .cfn_requests
            .with_label_values(&[type_, result])
            .inc();
    }

    async fn receive(&self) -> Result<Vec<SqsMessage>, AwsError> {
        let wait = self.settings.wait.as_secs().min(20) as i32;
        let request = self
            .sqs
            .receive_message()
            .queue_url(&self.settings.queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait)
            .visibility_timeout(VISIBILITY.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send();
        let out = self.calls.call(op::RECEIVE_MESSAGE, request).await?;
        Ok(out.messages.unwrap_or_default())
    }

    /// Takes one message: answers it if it can, then deletes it; or leaves
    /// it to come back when the answer could not be delivered.
    async fn handle(&self, message: &SqsMessage) {
        let body = message.body().unwrap_or_default();
        let receipt = message.receipt_handle().unwrap_or_default();
        let receives: u32 = message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let (type_, url, response) = match request::parse_message(body) {
            Message::Unanswerable { reason } => {
                tracing::warn!(message_id = ?message.message_id(), %reason, "dropped a queue message that cannot be answered");
                self.count("unknown", "dropped");
                self.delete(receipt).await;
                return;
            }
            Message::Malformed {
                reason,
                response,
                response_url,
            } => {
                tracing::warn!(message_id = ?message.message_id(), %reason, "answering a malformed custom-resource request FAILED");
                ("unknown", response_url, response)
            }
            Message::Request(req) => {
                let type_: &'static str = req.request_type.into();
                if self.was_answered(&req.request_id) {
                    tracing::info!(request_id = %req.request_id, "request already answered; message deleted");
                    self.count(type_, "duplicate");
                    self.delete(receipt).await;
                    return;
                }
                let span = tracing::info_span!(
                    "cfn_request",
                    r#type = type_,
                    stack = %req.stack_id,
                    logical_id = %req.logical_resource_id,
                    request_id = %req.request_id
                );
                let response = tracing::Instrument::instrument(self.carry_out(&req), span).await;
                (type_, req.response_url.clone(), response)
            }
        };
        match self.respond(&url, &response).await {
            Ok(()) => {
                let result = match response.status {
                    Status::Success => "success",
                    Status::Failed => "failed",
                };
                tracing::info!(request_id = %response.request_id, result, reason = %response.reason, "answered");
                self.count(type_, result);
                self.remember(&response.request_id);
                self.delete(receipt).await;
            }
            Err(e) => {
                let delay = (self.settings.retry_delay * 2u32.saturating_pow(receives - 1))
                    .min(Duration::from_secs(300));
                tracing::warn!(request_id = %response.request_id, error = %e, retry_in = ?delay, "could not deliver the answer; the message comes back");
                self.count(type_, "retry");
                let request = self
                    .sqs
                    .change_message_visibility()
                    .queue_url(&self.settings.queue_url)
                    .receipt_handle(receipt)
                    .visibility_timeout(delay.as_secs().max(1) as i32)
                    .send();
                if let Err(e) = self
                    .calls
                    .call(op::CHANGE_MESSAGE_VISIBILITY, request)
                    .await
                {
                    tracing::warn!(error = %e, "could not shorten the message's visibility; it comes back after {VISIBILITY:?}");
                }
            }
        }
    }

    /// Carries out a request; every failure becomes a FAILED answer whose
    /// reason says what to change.
    async fn carry_out(&self, req: &Request) -> Response {
        let physical = match (req.request_type, &req.physical_resource_id) {
            (RequestType::Create, _) => {
                request::physical_id(&req.stack_id, &req.logical_resource_id)
            }
            (_, Some(id)) => id.clone(),
            (_, None) => {
                let id = request::physical_id(&req.stack_id, &req.logical_resource_id);
                let reason = "an Update or Delete request without PhysicalResourceId".into();
                return Response::to(req, &id, Status::Failed, reason);
            }
        };
        if !request::is_physical_id(&physical) {
            // Not an id hawser answered with: nothing of ours to touch.
            return match req.request_type {
                RequestType::Delete => Response::to(
                    req,
                    &physical,
                    Status::Success,
                    format!("nothing to delete: {physical} is not an id hawser issued"),
                ),
                _ => Response::to(
                    req,
                    &physical,
                    Status::Failed,
                    format!(
                        "PhysicalResourceId {physical} is not an id hawser issued (hawser-cfn-<20 \
                         hex digits>); was this resource created by another provider?"
                    ),
                ),
            };
        }
        let result = match req.request_type {
            RequestType::Delete => deploy::delete(&self.client, &self.settings.policy, &physical)
                .await
                .map(|()| Default::default()),
            RequestType::Create | RequestType::Update => {
                match manifest::parse_properties(&req.resource_properties) {
                    Err(reason) => Err(reason),
                    Ok(props) => {
                        let owner = deploy::Owner {
                            physical_id: &physical,
                            stack_id: &req.stack_id,
                            logical_id: &req.logical_resource_id,
                            request_id: &req.request_id,
                        };
                        deploy::apply(
                            &self.client,
                            &self.events,
                            &self.settings.policy,
                            &props,
                            &owner,
                        )
                        .await
                    }
                }
            }
        };
        match result {
            Ok(uids) => Response {
                data: uids,
                ..Response::to(req, &physical, Status::Success, String::new())
            },
            Err(reason) => Response::to(req, &physical, Status::Failed, reason),
        }
    }

    /// PUTs the answer to the pre-signed URL. S3 signs the URL without a
    /// content type, so none is sent.
    async fn respond(&self, url: &str, response: &Response) -> Result<(), String> {
        let put = self
            .http
            .put(url)
            .header(reqwest::header::CONTENT_TYPE, "")
            .body(response.body())
            .send()
            .await
            .map_err(|e| format!("PUT {}: {e}", redact(url)))?;
        if put.status().is_success() {
            Ok(())
        } else {
            Err(format!("PUT {}: HTTP {}", redact(url), put.status()))
        }
    }

    async fn delete(&self, receipt: &str) {
        let request = self
            .sqs
            .delete_message()
            .queue_url(&self.settings.queue_url)
            .receipt_handle(receipt)
            .send();
        if let Err(e) = self.calls.call(op::DELETE_MESSAGE, request).await {
            // It comes back; the request id (or the objects' annotation)
            // keeps it from being carried out twice.
            tracing::warn!(error = %e, "could not delete a queue message");
        }
    }

    fn was_answered(&self, request_id: &str) -> bool {
        let answered = self.answered.lock().expect("not poisoned");
        answered
            .get(request_id)
            .is_some_and(|at| at.elapsed() < REMEMBER)
    }

    fn remember(&self, request_id: &str) {
        let mut answered = self.answered.lock().expect("not poisoned");
        answered.retain(|_, at| at.elapsed() < REMEMBER);
        answered.insert(request_id.to_owned(), Instant::now());
    }
}

/// A pre-signed URL without its query (the signature) for logs and errors.
fn redact(url: &str) -> &str {
    url.split('?').next().unwrap_or(url)
}

/// Takes requests from the queue until `token` is cancelled.
pub async fn run(ctx: Arc<Context>, token: CancellationToken) {
    tracing::info!(queue = %ctx.settings.queue_url, "cfn-requests controller polling its queue");
    let mut failures = 0;
    while !token.is_cancelled() {
        let received = tokio::select! {
            _ = token.cancelled() => return,
            r = ctx.receive() => r,
        };
        match received {
            Ok(messages) => {
                failures = 0;
                for message in &messages {
                    ctx.handle(message).await;
                }
            }
            Err(e) => {
                let delay = Backoff::FAILURE.delay(failures);
                failures += 1;
                tracing::warn!(error = %e, retry_in = ?delay, "could not receive from the queue");
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls_name_their_region_and_logs_drop_signatures() {
        assert_eq!(
            queue_region("https://sqs.eu-west-1.amazonaws.com/123456789012/requests"),
            Some("eu-west-1")
        );
        assert_eq!(queue_region("http://127.0.0.1:5000/123456789012/q"), None);
        assert_eq!(
            redact("https://bucket.s3.amazonaws.com/key?X-Amz-Signature=abc"),
            "https://bucket.s3.amazonaws.com/key"
        );
    }
}
