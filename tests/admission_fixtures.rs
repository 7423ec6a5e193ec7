//! The admission router driven in-process with AdmissionReview v1
//! fixtures (tests/fixtures/), shaped like what kube-apiserver sends.

use std::sync::Arc;

use axum::{body::Body, http::Request, Router};
use base64::Engine as _;
use hawser::{
    metrics::Metrics,
    namespaces::{namespace_meta, NamespaceCache},
    webhook::{self, Config, Context},
};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

fn router(namespaces: NamespaceCache) -> (Router, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new().unwrap());
    let ctx = Arc::new(Context {
        config: Config {
            allow_privileged_containers: false,
            allow_system_groups: false,
            controller_usernames: vec!["system:serviceaccount:hawser-system:hawser".into()],
            excluded_namespaces: vec!["kube-system".into()],
            namespace_wait: std::time::Duration::from_millis(50),
            aws_auth_guard: Default::default(),
            managed: Default::default(),
            default_region: None,
        },
        namespaces,
        metrics: metrics.clone(),
        client: None,
    });
    (webhook::router(ctx), metrics)
}

fn default_namespaces() -> NamespaceCache {
    NamespaceCache::from_list(vec![
        namespace_meta("team-a", &[]),
        namespace_meta("kube-system", &[]),
    ])
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn post(router: &Router, path: &str, body: Vec<u8>) -> (u16, Value) {
    let resp = router
        .clone()
        .oneshot(
            Request::post(path)
                .header("content-type", "application/json")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}

/// The JSON patch of a response, decoded as the AdmissionReview API
/// specifies it: `patch` is a base64 string (not kube-core's array of
/// byte values).
fn patch_of(response: &Value) -> Value {
    assert_eq!(response["response"]["patchType"], "JSONPatch");
    let Value::String(b64) = &response["response"]["patch"] else {
        panic!(
            "response.patch is not a base64 string: {}",
            response["response"]["patch"]
        );
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("response.patch is base64");
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn mutate_create_privileged_patches_and_warns() {
    let (router, metrics) = router(default_namespaces());
    let (status, body) = post(
        &router,
        "/mutate",
        fixture("deployment-create-privileged.json"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(body["kind"], "AdmissionReview");
    assert_eq!(
        body["response"]["uid"],
        "7f0e2a8c-1c1b-4a44-9a35-2f0c1d1f0001"
    );
    assert_eq!(body["response"]["allowed"], true);
    assert_eq!(
        patch_of(&body),
        json!([{"op": "add", "path": "/spec/template/spec/containers/0/securityContext/privileged", "value": false}])
    );
    assert_eq!(
        body["response"]["warnings"],
        json!([
            r#"hawser set securityContext.privileged=false on container "app"; to allow it, annotate namespace "team-a" with security.hawser.io/allow-privileged=true"#
        ])
    );
    assert_eq!(
        metrics
            .admission_requests
            .with_label_values(&["mutate", "Deployment", "CREATE", "patched"])
            .get(),
        1
    );
}

#[tokio::test]
async fn mutate_restricted_profile() {
    let (router, _) = router(default_namespaces());
    let (_, body) = post(
        &router,
        "/mutate",
        fixture("deployment-create-restricted.json"),
    )
    .await;
    assert_eq!(
        patch_of(&body),
        json!([{"op": "add", "path": "/spec/template/spec/containers/0/securityContext", "value": {
            "allowPrivilegeEscalation": false,
            "capabilities": {"drop": ["ALL"]},
            "privileged": false,
            "runAsNonRoot": true,
            "seccompProfile": {"type": "RuntimeDefault"}
        }}])
    );
    assert!(body["response"].get("warnings").is_none());
}

#[tokio::test]
async fn validate_denies_privileged_on_create_update_and_dry_run() {
    let (router, metrics) = router(default_namespaces());
    for f in [
        "deployment-create-privileged.json",
        "deployment-update-privileged.json",
        "deployment-create-dry-run.json",
    ] {
        let (status, body) = post(&router, "/validate", fixture(f)).await;
        assert_eq!(status, 200, "{f}");
        assert_eq!(body["response"]["allowed"], false, "{f}");
        assert_eq!(
            body["response"]["status"]["message"],
            r#"container "app" of Deployment team-a/web sets securityContext.privileged=true, which namespace "team-a" does not allow; remove it, or annotate the namespace with security.hawser.io/allow-privileged="true" (or run hawser with --allow-privileged-containers)"#,
            "{f}"
        );
    }
    assert_eq!(
        metrics
            .admission_requests
            .with_label_values(&["validate", "Deployment", "UPDATE", "denied"])
            .get(),
        1
    );
}

#[tokio::test]
async fn validate_allows_privileged_in_an_allowed_namespace() {
    let namespaces = NamespaceCache::from_list(vec![namespace_meta(
        "team-a",
        &[("security.hawser.io/allow-privileged", "true")],
    )]);
    let (router, _) = router(namespaces);
    let (_, body) = post(
        &router,
        "/validate",
        fixture("deployment-create-privileged.json"),
    )
    .await;
    assert_eq!(body["response"]["allowed"], true);
    let (_, body) = post(
        &router,
        "/mutate",
        fixture("deployment-create-privileged.json"),
    )
    .await;
    assert_eq!(body["response"]["allowed"], true);
    assert!(body["response"].get("patch").is_none());
}

#[tokio::test]
async fn delete_and_excluded_namespaces_are_allowed_untouched() {
    let (router, _) = router(default_namespaces());
    for (path, f) in [
        ("/mutate", "deployment-delete.json"),
        ("/validate", "deployment-delete.json"),
        ("/mutate", "deployment-create-kube-system.json"),
        ("/validate", "deployment-create-kube-system.json"),
    ] {
        let (status, body) = post(&router, path, fixture(f)).await;
        assert_eq!(status, 200);
        assert_eq!(body["response"]["allowed"], true, "{path} {f}");
        assert!(body["response"].get("patch").is_none(), "{path} {f}");
    }
}

#[tokio::test]
async fn an_unknown_namespace_gets_the_default_policy_after_the_wait() {
    let (router, _) = router(NamespaceCache::from_list(vec![]));
    let (_, body) = post(
        &router,
        "/validate",
        fixture("deployment-create-privileged.json"),
    )
    .await;
    assert_eq!(body["response"]["allowed"], false);
}

#[tokio::test]
async fn undecodable_bodies_get_a_400_or_an_invalid_review_never_a_panic() {
    let (router, metrics) = router(default_namespaces());
    let (status, body) = post(&router, "/mutate", b"{not json".to_vec()).await;
    assert_eq!(status, 400);
    assert!(
        body.as_str()
            .unwrap()
            .starts_with("hawser: the request body is not an admission.k8s.io/v1 AdmissionReview"),
        "{body}"
    );
    let (status, body) = post(&router, "/validate", fixture("review-without-request.json")).await;
    assert_eq!(status, 200);
    assert_eq!(body["response"]["allowed"], false);
    assert_eq!(
        body["response"]["status"]["message"],
        "hawser: the AdmissionReview has no request"
    );
    assert_eq!(body["response"]["status"]["reason"], "InvalidRequest");
    assert_eq!(
        metrics
            .admission_requests
            .with_label_values(&["mutate", "unknown", "unknown", "invalid"])
            .get(),
        1
    );
}

#[tokio::test]
async fn service_create_with_the_trigger_is_converted() {
    let (router, _) = router(default_namespaces());
    let (_, body) = post(&router, "/mutate", fixture("service-create-vpce.json")).await;
    assert_eq!(body["response"]["allowed"], true);
    assert_eq!(
        patch_of(&body),
        json!([
            {"op": "add", "path": "/spec/type", "value": "ExternalName"},
            {"op": "add", "path": "/spec/externalName", "value": "pending.vpce.hawser.invalid"},
            {"op": "add", "path": "/metadata/finalizers", "value": ["vpce.hawser.io/cleanup"]},
            {"op": "add", "path": "/metadata/annotations/vpce.hawser.io~1state", "value": "Pending"},
        ])
    );
    let (_, body) = post(&router, "/validate", fixture("service-create-vpce.json")).await;
    assert_eq!(body["response"]["allowed"], true, "{body}");
}

#[tokio::test]
async fn namespace_update_normalises_hosts_and_refuses_an_output_edit() {
    let (router, metrics) = router(default_namespaces());
    let (_, body) = post(&router, "/mutate", fixture("namespace-update.json")).await;
    assert_eq!(
        patch_of(&body),
        json!([{"op": "add", "path": "/metadata/annotations/env.hawser.io~1host-names", "value": "shop.example.com api.example.com"}])
    );
    let (_, body) = post(&router, "/validate", fixture("namespace-update.json")).await;
    assert_eq!(body["response"]["allowed"], false);
    assert_eq!(
        body["response"]["status"]["message"],
        r#"annotation cfn.hawser.io/stack-id is an output written by hawser and cannot be changed from "arn:aws:cloudformation:us-west-2:123456789012:stack/hawser-c-team-a/1" to "arn:aws:cloudformation:us-west-2:123456789012:stack/other/2" by "alice@example.com"; remove it from your manifest and leave hawser's value in place"#
    );
    assert_eq!(
        metrics
            .admission_requests
            .with_label_values(&["validate", "Namespace", "UPDATE", "denied"])
            .get(),
        1
    );
}
