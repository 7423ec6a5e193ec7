//! Reading an AdmissionReview in one pass, and writing the answer in one.
//!
//! kube-core's `AdmissionReview<DynamicObject>` decodes the review through
//! `#[serde(flatten)]`, which buffers the whole body before decoding it,
//! and keeps the object as a `serde_json::Value`; the typed Deployment or
//! Service the rules read was then made from that value by encoding and
//! decoding it again. Here the objects stay raw JSON, borrowed from the
//! body, until the request's kind says what to decode them into, so each is
//! decoded once, straight into its type.
//!
//! A body that is not JSON, lacks a field the review needs, or whose
//! object is not a Kubernetes object is not an AdmissionReview (400); an
//! object of the right shape that its kind's type cannot take is denied
//! with the reason. A Deployment is decoded only as far as the rules read
//! it ([`super::lean`]): a wrongly typed field they do not read is not
//! noticed here, and is left to the apiserver's validation.

use k8s_openapi::{api::authentication::v1::UserInfo, apimachinery::pkg::runtime::RawExtension};
use kube::core::{
    admission::{AdmissionRequest, AdmissionResponse, Operation},
    gvk::{GroupVersionKind, GroupVersionResource},
    DynamicObject, Resource, TypeMeta,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::value::RawValue;

/// The review as read from the wire: every field of the request but its
/// objects decoded.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Review<'a> {
    api_version: String,
    kind: String,
    #[serde(borrow, default)]
    request: Option<Request<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request<'a> {
    uid: String,
    kind: GroupVersionKind,
    resource: GroupVersionResource,
    #[serde(default)]
    sub_resource: Option<String>,
    #[serde(default)]
    request_kind: Option<GroupVersionKind>,
    #[serde(default)]
    request_resource: Option<GroupVersionResource>,
    #[serde(default)]
    request_sub_resource: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: Option<String>,
    operation: Operation,
    user_info: UserInfo,
    #[serde(borrow, default)]
    object: Option<&'a RawValue>,
    #[serde(borrow, default)]
    old_object: Option<&'a RawValue>,
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    options: Option<RawExtension>,
}

/// Why a review has no request to admit.
#[derive(Debug)]
pub enum DecodeError {
    /// Not an AdmissionReview at all: the body is answered 400.
    NotAReview(serde_json::Error),
    /// A review without a request.
    NoRequest,
}

/// A request with its objects decoded as `K`.
pub struct Decoded<K: Resource> {
    /// Without objects when `undecodable` is set.
    pub req: AdmissionRequest<K>,
    /// Why an object of the right shape could not be decoded as `K` (a
    /// version skew): the request is denied with this, unless it is one
    /// hawser lets through without looking (an excluded namespace, a
    /// DELETE).
    pub undecodable: Option<String>,
}

/// Reads the review, leaving its objects raw. Fails as kube-core's
/// `AdmissionReview` would on everything but the objects.
pub fn read(body: &[u8]) -> Result<Review<'_>, serde_json::Error> {
    serde_json::from_slice(body)
}

impl<'a> Review<'a> {
    /// The request's kind (`group`, `kind`), if there is a request.
    pub fn kind(&self) -> Option<(&str, &str)> {
        self.request
            .as_ref()
            .map(|r| (r.kind.group.as_str(), r.kind.kind.as_str()))
    }

    /// The request with its objects decoded as `K`, in one pass each.
    pub fn decode<K: Resource + DeserializeOwned>(self) -> Result<Decoded<K>, DecodeError> {
        self.decode_via::<K, K>()
    }

    /// The request with its objects decoded as `W`, a type that reads only
    /// some of `K`'s fields (e.g. [`super::lean::LeanDeployment`]), and
    /// made into `K`.
    pub fn decode_via<W, K>(self) -> Result<Decoded<K>, DecodeError>
    where
        W: DeserializeOwned,
        K: Resource + From<W>,
    {
        let r = self.request.ok_or(DecodeError::NoRequest)?;
        let kind = r.kind.kind.as_str();
        let read = |o: &RawValue| object::<W>(o, kind).map(K::from);
        let decoded = r
            .object
            .map(read)
            .transpose()
            .and_then(|new| Ok((new, r.old_object.map(read).transpose()?)));
        let (object, old_object, undecodable) = match decoded {
            Ok((new, old)) => (new, old, None),
            Err(Failure::NotAReview(e)) => return Err(DecodeError::NotAReview(e)),
            Err(Failure::Undecodable(why)) => (None, None, Some(why)),
        };
        let req = AdmissionRequest {
            types: TypeMeta {
                api_version: self.api_version,
                kind: self.kind,
            },
            object,
            old_object,
            uid: r.uid,
            kind: r.kind,
            resource: r.resource,
            sub_resource: r.sub_resource,
            request_kind: r.request_kind,
            request_resource: r.request_resource,
            request_sub_resource: r.request_sub_resource,
            name: r.name,
            namespace: r.namespace,
            operation: r.operation,
            user_info: r.user_info,
            dry_run: r.dry_run,
            options: r.options,
        };
        Ok(Decoded { req, undecodable })
    }
}

enum Failure {
    NotAReview(serde_json::Error),
    Undecodable(String),
}

/// Decodes one object. On failure, the object is tried as the
/// `DynamicObject` kube-core would have read: if even that fails, the body
/// was never an AdmissionReview; if not, the object is of a shape its
/// kind's type does not take (a version skew), and the reason is given.
fn object<K: DeserializeOwned>(raw: &RawValue, kind: &str) -> Result<K, Failure> {
    serde_json::from_str(raw.get()).map_err(|typed| {
        match serde_json::from_str::<DynamicObject>(raw.get()) {
            Err(e) => Failure::NotAReview(e),
            Ok(_) => Failure::Undecodable(format!("hawser could not decode the {kind}: {typed}")),
        }
    })
}

/// The answer, with `response.patch` as the API specifies it: a base64
/// string. (kube-core writes the bytes as a JSON array of numbers, which
/// the apiserver happens to accept, at about three times the size.)
pub fn answer(mut response: AdmissionResponse) -> Vec<u8> {
    use base64::Engine as _;
    let patch = response
        .patch
        .take()
        .map(|p| base64::engine::general_purpose::STANDARD.encode(p));
    let answer = Answer {
        api_version: &response.types.api_version,
        kind: &response.types.kind,
        response: Body {
            response: &response,
            patch,
        },
    };
    serde_json::to_vec(&answer).expect("an AdmissionReview always encodes")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Answer<'a> {
    api_version: &'a str,
    kind: &'a str,
    response: Body<'a>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(flatten)]
    response: &'a AdmissionResponse,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use serde_json::{json, Value};

    fn review(object: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "u-1",
                "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
                "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
                "name": "web",
                "namespace": "team-a",
                "operation": "CREATE",
                "userInfo": {"username": "alice"},
                "object": object,
                "oldObject": null,
                "dryRun": true,
            }
        }))
        .unwrap()
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "annotations": {"a": "b"}},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"spec": {"containers": [{"name": "app", "image": "nginx"}]}}
            }
        })
    }

    #[test]
    fn the_object_is_decoded_as_kube_core_and_a_second_decoding_would_have() {
        let body = review(deployment());
        let d = read(&body).unwrap().decode::<Deployment>().unwrap();
        assert!(d.undecodable.is_none());
        // What the handler did before: kube-core's review, then the
        // DynamicObject encoded and decoded again as a Deployment.
        let old: kube::core::admission::AdmissionReview<DynamicObject> =
            serde_json::from_slice(&body).unwrap();
        let old: AdmissionRequest<DynamicObject> = old.try_into().unwrap();
        let typed: Deployment =
            serde_json::from_value(serde_json::to_value(old.object.unwrap()).unwrap()).unwrap();
        assert_eq!(d.req.object, Some(typed));
        assert_eq!(d.req.old_object, None);
        assert_eq!(
            (d.req.uid.as_str(), d.req.name.as_str(), d.req.dry_run),
            ("u-1", "web", true)
        );
        assert_eq!(d.req.namespace.as_deref(), Some("team-a"));
        assert_eq!(d.req.operation, Operation::Create);
        assert_eq!(d.req.types.kind, "AdmissionReview");
        assert_eq!(d.req.user_info.username.as_deref(), Some("alice"));
    }

    #[test]
    fn what_is_not_a_kubernetes_object_is_not_a_review_and_a_wrong_shape_is_undecodable() {
        // Not an object at all: kube-core's review would not have decoded.
        let body = review(json!(5));
        assert!(matches!(
            read(&body).unwrap().decode::<Deployment>(),
            Err(DecodeError::NotAReview(_))
        ));
        // A Kubernetes object whose spec a Deployment cannot take.
        let mut bad = deployment();
        bad["spec"]["replicas"] = json!("three");
        let body = review(bad);
        let d = read(&body).unwrap().decode::<Deployment>().unwrap();
        let why = d.undecodable.expect("undecodable");
        assert!(
            why.starts_with(
                "hawser could not decode the Deployment: invalid type: string \"three\""
            ),
            "{why}"
        );
        assert!(d.req.object.is_none());
        // No request.
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#;
        assert!(matches!(
            read(body).unwrap().decode::<Deployment>(),
            Err(DecodeError::NoRequest)
        ));
        // Not JSON.
        assert!(read(b"{").is_err());
    }

    #[test]
    fn the_answer_carries_the_patch_as_base64_and_echoes_the_review_type() {
        use base64::Engine as _;
        let body = review(deployment());
        let d = read(&body).unwrap().decode::<Deployment>().unwrap();
        let patch = json_patch::Patch(vec![crate::webhook::patch::remove(
            crate::webhook::patch::pointer(["metadata", "annotations", "a"]),
        )]);
        let response = AdmissionResponse::from(&d.req).with_patch(patch).unwrap();
        let answer: Value = serde_json::from_slice(&answer(response)).unwrap();
        let encoded = base64::engine::general_purpose::STANDARD
            .encode(br#"[{"op":"remove","path":"/metadata/annotations/a"}]"#);
        assert_eq!(
            answer,
            json!({
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {
                    "uid": "u-1",
                    "allowed": true,
                    "status": {},
                    "patchType": "JSONPatch",
                    "patch": encoded,
                }
            })
        );
    }
}
