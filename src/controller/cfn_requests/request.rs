//! CloudFormation custom-resource requests as they arrive through SQS,
//! and the response hawser PUTs to their `ResponseURL`. Pure: no I/O.
//!
//! The request and response formats are CloudFormation's own
//! ("Custom resource request objects" and "response objects" in the
//! CloudFormation user guide).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// CloudFormation refuses a response body over 4,096 bytes.
pub const MAX_RESPONSE_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, strum::IntoStaticStr)]
pub enum RequestType {
    Create,
    Update,
    Delete,
}

/// A request with everything CloudFormation always sends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Request {
    pub request_type: RequestType,
    #[serde(rename = "ResponseURL")]
    pub response_url: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    /// Absent on Create; on Update and Delete, the id hawser answered with.
    #[serde(default)]
    pub physical_resource_id: Option<String>,
    #[serde(default)]
    pub resource_type: Option<String>,
    #[serde(default)]
    pub resource_properties: serde_json::Map<String, Value>,
}

/// What an SQS message body turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    Request(Box<Request>),
    /// Not a valid request, but it names where to answer: answered FAILED
    /// with `reason`, echoing whatever ids it has.
    Malformed {
        reason: String,
        response: Response,
        response_url: String,
    },
    /// Not a request, and no `ResponseURL` to answer to: dropped.
    Unanswerable {
        reason: String,
    },
}

/// Reads a message body: CloudFormation's request as JSON, either raw or
/// in the `Message` of an SNS notification (what an SNS topic subscribed
/// by the queue delivers without raw message delivery).
pub fn parse_message(body: &str) -> Message {
    let value: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => {
            return Message::Unanswerable {
                reason: format!("the message body is not JSON: {e}"),
            }
        }
    };
    let value = match sns_message(&value) {
        Some(Ok(inner)) => inner,
        Some(Err(reason)) => return Message::Unanswerable { reason },
        None => value,
    };
    let Some(response_url) = value.get("ResponseURL").and_then(Value::as_str) else {
        return Message::Unanswerable {
            reason:
                "the message has no ResponseURL: it is not a CloudFormation custom-resource request"
                    .into(),
        };
    };
    match serde_json::from_value::<Request>(value.clone()) {
        Ok(request) => Message::Request(Box::new(request)),
        Err(e) => {
            let field = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or_default();
            let reason = format!(
                "hawser could not read this custom-resource request: {e}; it needs RequestType \
                 (Create, Update or Delete), ResponseURL, StackId, RequestId and LogicalResourceId"
            );
            let physical = match field("PhysicalResourceId") {
                "" => "hawser-invalid-request".to_owned(),
                id => id.to_owned(),
            };
            Message::Malformed {
                response: Response::failed(
                    reason.clone(),
                    physical,
                    field("StackId"),
                    field("RequestId"),
                    field("LogicalResourceId"),
                ),
                reason,
                response_url: response_url.to_owned(),
            }
        }
    }
}

/// The request inside an SNS notification envelope, if `value` is one.
fn sns_message(value: &Value) -> Option<Result<Value, String>> {
    if value.get("Type").and_then(Value::as_str) != Some("Notification") {
        return None;
    }
    let Some(text) = value.get("Message").and_then(Value::as_str) else {
        return Some(Err("the SNS notification has no Message".into()));
    };
    Some(
        serde_json::from_str(text)
            .map_err(|e| format!("the SNS notification's Message is not JSON: {e}")),
    )
}

/// The physical id hawser gives a new custom resource: the same for the
/// same stack and logical id, so a retried Create finds its own objects.
/// It is also the value of the label that marks the objects.
pub fn physical_id(stack_id: &str, logical_id: &str) -> String {
    let digest = Sha256::digest(format!("{stack_id}\n{logical_id}").as_bytes());
    let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
    format!("hawser-cfn-{hex}")
}

/// Whether `id` is one [`physical_id`] could have made.
pub fn is_physical_id(id: &str) -> bool {
    id.strip_prefix("hawser-cfn-").is_some_and(|hex| {
        hex.len() == 20
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Success,
    Failed,
}

/// The body PUT to the `ResponseURL`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Response {
    pub status: Status,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    pub physical_resource_id: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    /// `Fn::GetAtt` attributes: the uid of each object, by
    /// `<Kind>/<name>` or `<Kind>/<namespace>/<name>`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub data: BTreeMap<String, String>,
}

impl Response {
    pub fn failed(
        reason: String,
        physical_resource_id: String,
        stack_id: &str,
        request_id: &str,
        logical_resource_id: &str,
    ) -> Self {
        Self {
            status: Status::Failed,
            reason,
            physical_resource_id,
            stack_id: stack_id.into(),
            request_id: request_id.into(),
            logical_resource_id: logical_resource_id.into(),
            data: BTreeMap::new(),
        }
    }

    /// An answer to `request` about physical id `physical`.
    pub fn to(request: &Request, physical: &str, status: Status, reason: String) -> Self {
        Self {
            reason,
            status,
            ..Self::failed(
                String::new(),
                physical.into(),
                &request.stack_id,
                &request.request_id,
                &request.logical_resource_id,
            )
        }
    }

    /// The JSON body, within CloudFormation's 4 KB: when the uids do not
    /// fit, `Data` is left out and the reason says so.
    pub fn body(&self) -> String {
        let full = serde_json::to_string(self).expect("a Response serializes");
        if full.len() <= MAX_RESPONSE_BYTES {
            return full;
        }
        let mut short = self.clone();
        short.reason = format!(
            "{}{}the uids of the {} objects were left out of Data: CloudFormation takes at most \
             4 KB of response",
            short.reason,
            if short.reason.is_empty() { "" } else { "; " },
            short.data.len()
        );
        short.data.clear();
        let text = serde_json::to_string(&short).expect("a Response serializes");
        if text.len() <= MAX_RESPONSE_BYTES {
            return text;
        }
        // Only an enormous reason gets here: cut it at a character boundary.
        let over = text.len() - MAX_RESPONSE_BYTES + 3;
        let mut end = short.reason.len().saturating_sub(over);
        while !short.reason.is_char_boundary(end) {
            end -= 1;
        }
        short.reason = format!("{}...", &short.reason[..end]);
        serde_json::to_string(&short).expect("a Response serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The event of issue 14, as CloudFormation sends it.
    pub const EXAMPLE: &str = r#"{"RequestType":"Create","ResponseURL":"https://pre-signed-s3-url-that-cloud-formation-generates","StackId":"arn:aws:cloudformation:eu-west-1:123456789012:stack/MyStack/guid","RequestId":"unique id for this create request","ResourceType":"Custom::TestResource","LogicalResourceId":"MyTestResource","ResourceProperties":{"yaml":"---\n{apiVersion: v1,kind: Namespace, metadata: { annotations: {}, labels: {}, name: nightly}}\n---\n{apiVersion: apps/v1, kind: StatefulSet, metadata: {name: mysqldb, labels: {app: mysqldb}}, spec: {replicas: 1, selector: {matchLabels: {app: mysqldb}}, template: {metadata: {labels: {app: mysqldb}}, spec: {containers: [{name: mysqldb, image: 'mysql:latest', ports: [{containerPort: 3306, name: mysql}]}]}}}}","namespace":"nightly"}}"#;

    #[test]
    fn the_example_event_is_the_issues() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/cfn-requests/create-event.json"
        );
        assert_eq!(std::fs::read_to_string(path).unwrap().trim(), EXAMPLE);
    }

    fn request(body: &str) -> Request {
        match parse_message(body) {
            Message::Request(r) => *r,
            other => panic!("not a request: {other:?}"),
        }
    }

    #[test]
    fn the_issues_event_is_read_raw_and_in_an_sns_envelope() {
        let raw = request(EXAMPLE);
        assert_eq!(raw.request_type, RequestType::Create);
        assert_eq!(raw.logical_resource_id, "MyTestResource");
        assert_eq!(raw.physical_resource_id, None);
        assert_eq!(raw.resource_properties["namespace"], "nightly");
        let envelope = serde_json::json!({
            "Type": "Notification",
            "MessageId": "m-1",
            "TopicArn": "arn:aws:sns:eu-west-1:123456789012:hawser",
            "Message": EXAMPLE,
        });
        assert_eq!(request(&envelope.to_string()), raw);
    }

    #[test]
    fn a_request_missing_a_field_is_answered_failed_when_it_can_be() {
        let body = r#"{"RequestType":"Upsert","ResponseURL":"http://x/y","StackId":"s","RequestId":"r","LogicalResourceId":"L"}"#;
        let Message::Malformed {
            response,
            response_url,
            reason,
        } = parse_message(body)
        else {
            panic!("not malformed")
        };
        assert_eq!(response_url, "http://x/y");
        assert_eq!(response.status, Status::Failed);
        assert!(reason.contains("Upsert"), "{reason}");
        assert!(reason.contains("Create, Update or Delete"), "{reason}");
        assert_eq!(
            (response.stack_id.as_str(), response.request_id.as_str()),
            ("s", "r")
        );
        assert_eq!(response.physical_resource_id, "hawser-invalid-request");
    }

    #[test]
    fn a_message_without_a_response_url_is_unanswerable() {
        for body in [
            "not json",
            r#"{"RequestType":"Create"}"#,
            r#"{"Type":"Notification","Message":"{oops"}"#,
        ] {
            assert!(
                matches!(parse_message(body), Message::Unanswerable { .. }),
                "{body}"
            );
        }
    }

    #[test]
    fn physical_ids_are_stable_per_stack_and_logical_id() {
        let a = physical_id("arn:stack/A/1", "Res");
        assert_eq!(a, physical_id("arn:stack/A/1", "Res"));
        assert_ne!(a, physical_id("arn:stack/A/1", "Other"));
        assert_ne!(a, physical_id("arn:stack/B/1", "Res"));
        assert!(is_physical_id(&a), "{a}");
        assert!(a.len() <= 63, "a label value");
        assert!(!is_physical_id("hawser-cfn-XYZ"));
        assert!(!is_physical_id("MyTestResource"));
    }

    #[test]
    fn the_response_is_cloudformations_and_stays_within_4_kb() {
        let req = request(EXAMPLE);
        let mut ok = Response::to(&req, "hawser-cfn-1", Status::Success, String::new());
        ok.data.insert("Namespace/nightly".into(), "uid-1".into());
        let body: Value = serde_json::from_str(&ok.body()).unwrap();
        assert_eq!(body["Status"], "SUCCESS");
        assert_eq!(body["PhysicalResourceId"], "hawser-cfn-1");
        assert_eq!(body["LogicalResourceId"], "MyTestResource");
        assert_eq!(body["Data"]["Namespace/nightly"], "uid-1");
        assert!(body.get("Reason").is_none());

        for i in 0..200 {
            ok.data
                .insert(format!("ConfigMap/ns/object-{i}"), "u".repeat(36));
        }
        let body = ok.body();
        assert!(body.len() <= MAX_RESPONSE_BYTES, "{}", body.len());
        let body: Value = serde_json::from_str(&body).unwrap();
        assert!(body.get("Data").is_none());
        assert!(body["Reason"].as_str().unwrap().contains("201 objects"));

        let long = Response::to(&req, "p", Status::Failed, "é".repeat(5000));
        assert!(long.body().len() <= MAX_RESPONSE_BYTES);
    }
}
