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
    router_waiting(namespaces, std::time::Duration::from_millis(50))
}

fn router_waiting(
    namespaces: NamespaceCache,
    namespace_wait: std::time::Duration,
) -> (Router, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new().unwrap());
    let ctx = Arc::new(Context {
        config: Config {
            allow_privileged_containers: false,
            allow_system_groups: false,
            controller_usernames: vec!["system:serviceaccount:hawser-system:hawser".into()],
            excluded_namespaces: vec!["kube-system".into()],
            namespace_wait,
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

async fn post_raw(router: &Router, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
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
    (
        status,
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
}

async fn post(router: &Router, path: &str, body: Vec<u8>) -> (u16, Value) {
    let (status, bytes) = post_raw(router, path, body).await;
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

// --- Hostile input (RELIABILITY.md): the corpus in tests/fixtures/hostile/,
// the body limits, and property tests of the router.

/// A corpus file with its generated parts expanded: `"$NEST(n)"` (with its
/// quotes) becomes n nested JSON arrays, `$REPEAT(n,unit)` inside a string
/// becomes `unit` n times. The files stay small; the 100 KB value, the
/// 2 MB template and the 10,000 levels are made here.
fn hostile(name: &str) -> Vec<u8> {
    let text = String::from_utf8(fixture(&format!("hostile/{name}"))).unwrap();
    let nest = regex::Regex::new(r#""\$NEST\((\d+)\)""#).unwrap();
    let text = nest.replace_all(&text, |c: &regex::Captures| {
        let n: usize = c[1].parse().unwrap();
        format!("{}{}", "[".repeat(n), "]".repeat(n))
    });
    let repeat = regex::Regex::new(r"\$REPEAT\((\d+),([^)]*)\)").unwrap();
    let text = repeat.replace_all(&text, |c: &regex::Captures| {
        c[2].repeat(c[1].parse().unwrap())
    });
    text.into_owned().into_bytes()
}

/// Longest refusal the webhook may send for one object: a few bounded
/// messages joined (each value cut to 120 characters, each quoted part to
/// 130).
const MAX_MESSAGE_BYTES: usize = 8 * 1024;

/// Checks what every answer must be, whatever was sent: never a 5xx; a 400
/// with hawser's message for a body that is not an AdmissionReview; else a
/// well-formed AdmissionReview answering the request's uid, with a patch
/// only when allowed, as base64 of a JSON array. Returns the review (200)
/// or `None` (400).
fn check_answer(sent: &[u8], status: u16, body: &[u8]) -> Result<Option<Value>, String> {
    let text = String::from_utf8_lossy(body);
    match status {
        400 if text.starts_with(
            "hawser: the request body is not an admission.k8s.io/v1 AdmissionReview: ",
        ) =>
        {
            return Ok(None)
        }
        200 => {}
        _ => return Err(format!("status {status}: {text}")),
    }
    let review: Value = serde_json::from_slice(body).map_err(|e| format!("{e}: {text}"))?;
    let fail = |what: &str| Err(format!("{what}: {review}"));
    // kube-core answers a request with its apiVersion and kind, whatever
    // they are (even ""); the apiserver only ever sends v1 to hawser, and
    // a v1 request must get a v1 answer. A review without a request gets
    // v1.
    let sent: Option<Value> = serde_json::from_slice(sent).ok();
    let sent_type = |field: &str| {
        sent.as_ref()
            .filter(|s| s["request"].is_object())
            .and_then(|s| s[field].as_str())
            .map(str::to_owned)
    };
    for (field, v1) in [
        ("apiVersion", "admission.k8s.io/v1"),
        ("kind", "AdmissionReview"),
    ] {
        let expected = match sent_type(field) {
            Some(sent) if sent != v1 => sent,
            _ => v1.to_owned(),
        };
        if review[field] != expected.as_str() {
            return fail(&format!("{field} is not {expected:?}"));
        }
    }
    let response = &review["response"];
    let Some(allowed) = response["allowed"].as_bool() else {
        return fail("response.allowed is not a boolean");
    };
    if let Some(uid) = sent.as_ref().and_then(|s| s["request"]["uid"].as_str()) {
        if response["uid"] != uid {
            return fail(&format!("response.uid does not echo {uid:?}"));
        }
    }
    if let Some(patch) = response.get("patch") {
        if !allowed {
            return fail("a denied answer carries a patch");
        }
        let Some(b64) = patch.as_str() else {
            return fail("response.patch is not a string");
        };
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b64) else {
            return fail("response.patch is not base64");
        };
        if !serde_json::from_slice::<Value>(&bytes).is_ok_and(|p| p.is_array()) {
            return fail("response.patch is not a JSON array");
        }
        if response["patchType"] != "JSONPatch" {
            return fail("a patch without patchType JSONPatch");
        }
    }
    if !allowed {
        let message = response["status"]["message"].as_str().unwrap_or_default();
        if message.is_empty() || message.len() > MAX_MESSAGE_BYTES {
            return fail(&format!("a refusal of {} bytes", message.len()));
        }
    }
    Ok(Some(review))
}

/// The refusal of a corpus file on /validate, after checking the answer
/// on every path: /mutate leaves a refused object to /validate (allowed,
/// no patch), /validate-aws-auth allows what is not aws-auth.
async fn refused(name: &str) -> String {
    let (router, _) = router(default_namespaces());
    let body = hostile(name);
    let mut message = None;
    for path in ["/mutate", "/validate", "/validate-aws-auth"] {
        let (status, answer) = post_raw(&router, path, body.clone()).await;
        let review = check_answer(&body, status, &answer)
            .unwrap_or_else(|e| panic!("{name} {path}: {e}"))
            .unwrap_or_else(|| panic!("{name} {path}: 400"));
        let response = &review["response"];
        match path {
            "/validate" => {
                assert_eq!(response["allowed"], false, "{name}: {review}");
                message = response["status"]["message"].as_str().map(str::to_owned);
            }
            _ => {
                assert_eq!(response["allowed"], true, "{name} {path}: {review}");
                assert!(response.get("patch").is_none(), "{name} {path}: {review}");
            }
        }
    }
    message.unwrap()
}

#[tokio::test]
async fn hostile_a_100_kb_annotation_is_refused_with_a_bounded_message() {
    let message = refused("namespace-host-names-100kb.json").await;
    let (a120, a130) = ("a".repeat(120), "a".repeat(130));
    assert_eq!(
        message,
        format!(
            "annotation env.hawser.io/host-names: invalid value \"{a120}…\": \"{a130}\"… is not \
             1 to 253 characters; allowed: host names (RFC 1123, e.g. api.example.com) or \
             IPv4/IPv6 addresses, separated by spaces, e.g. \"api.example.com 10.0.0.7 \
             2001:db8::1\""
        )
    );
}

#[tokio::test]
async fn hostile_deep_nesting_is_skipped_unread_or_a_clean_400_never_a_stack_overflow() {
    let (router, metrics) = router(default_namespaces());
    let body = hostile("deployment-nested-10000.json");
    assert!(body.len() > 20_000);
    // The nesting is in a field no rule reads. /mutate and /validate decode
    // the object straight into a Deployment, which skips unknown fields
    // without recursing (as the apiserver, which prunes them, would never
    // send them): the Deployment is admitted as any other, hardened on
    // /mutate.
    for (path, result) in [("/mutate", "patched"), ("/validate", "allowed")] {
        let (status, answer) = post_raw(&router, path, body.clone()).await;
        assert_eq!(status, 200, "{path}");
        let review = check_answer(&body, status, &answer)
            .unwrap()
            .expect("a review");
        assert_eq!(review["response"]["allowed"], true, "{path}");
        let webhook = path.trim_start_matches('/');
        let count = metrics
            .admission_requests
            .with_label_values(&[webhook, "Deployment", "CREATE", result])
            .get();
        assert_eq!(count, 1, "{path}");
    }
    // The aws-auth guard reads any object whole, as JSON values: there the
    // depth is refused by serde_json's recursion limit (128).
    let (status, answer) = post_raw(&router, "/validate-aws-auth", body.clone()).await;
    assert_eq!(status, 400);
    let text = String::from_utf8(answer).unwrap();
    assert!(text.contains("recursion limit exceeded"), "{text}");
    check_answer(&body, status, text.as_bytes()).unwrap();
    assert_eq!(
        metrics
            .admission_requests
            .with_label_values(&["validate-aws-auth", "unknown", "unknown", "invalid"])
            .get(),
        1
    );
}

#[tokio::test]
async fn hostile_invisible_and_rtl_characters_are_refused_and_shown_escaped() {
    let message = refused("namespace-unicode-refused.json").await;
    for expected in [
        r#"annotation aws.hawser.io/region: invalid value "us-east-1\u{202e}": not an AWS region name; allowed: an AWS region name such as"#,
        r#"annotation env.hawser.io/host-names: invalid value "api.exa\u{200b}mple.com": "api.exa\u{200b}mple.com" is neither an IP address nor a host name (label "exa\u{200b}mple" is not 1 to 63 letters, digits or inner hyphens); allowed: host names"#,
        r#"annotation iam.hawser.io/role-arn: invalid value "arn:aws:iam::123456789012:role/аdmin": role name "аdmin" is not 1 to 64 of letters, digits and _+=,.@-; allowed: an IAM role ARN such as"#,
        r#"annotation security.hawser.io/profile: invalid value "restricted\u{200d}": not a security profile; allowed: "restricted""#,
    ] {
        assert!(message.contains(expected), "{expected}\nnot in\n{message}");
    }
    assert!(
        !message.contains("rotate-keys"),
        "any rotate-keys value is accepted: {message}"
    );
    assert_eq!(message.matches("annotation ").count(), 4, "{message}");
}

/// Checks that a corpus file is admitted as written: allowed, no patch.
async fn admitted_untouched(name: &str) {
    let (router, _) = router(default_namespaces());
    let body = hostile(name);
    for path in ["/mutate", "/validate"] {
        let (status, answer) = post_raw(&router, path, body.clone()).await;
        let review = check_answer(&body, status, &answer).unwrap().unwrap();
        assert_eq!(
            review["response"]["allowed"], true,
            "{name} {path}: {review}"
        );
        assert!(review["response"].get("patch").is_none(), "{name} {path}");
    }
}

#[tokio::test]
async fn hostile_unicode_where_the_contract_takes_any_value_is_accepted() {
    // env.hawser.io/rotate-keys is "any value (≤253 chars)"; keys outside
    // hawser's families are never read.
    admitted_untouched("namespace-unicode-accepted.json").await;
}

#[tokio::test]
async fn hostile_role_arns_of_any_listed_partition_are_accepted() {
    // The contract lists eight partitions and checks no partition against
    // the region: an aws-cn role for the mapping and an aws-us-gov role
    // beside a us-east-1 region are both admitted as written.
    admitted_untouched("namespace-role-arn-other-partitions.json").await;
}

#[tokio::test]
async fn hostile_role_arns_of_an_unknown_partition_are_refused() {
    let message = refused("namespace-role-arn-unknown-partition.json").await;
    let allowed = "allowed: an IAM role ARN such as arn:aws:iam::123456789012:role/my-role or \
                   arn:aws:iam::123456789012:role/team/my-role, in partition aws, aws-cn, \
                   aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f or aws-eusc";
    assert_eq!(
        message,
        format!(
            "annotation aws.hawser.io/role-arn: invalid value \
             \"arn:aws-cn-north-1:iam::123456789012:role/deployer\": \"aws-cn-north-1\" is not an \
             AWS partition; {allowed}; annotation iam.hawser.io/role-arn: invalid value \
             \"arn:aws-gov:iam::123456789012:role/team-a\": \"aws-gov\" is not an AWS partition; \
             {allowed}"
        )
    );
}

const TEMPLATE_ALLOWED: &str = "allowed: a CloudFormation template in JSON or YAML";

#[tokio::test]
async fn hostile_a_kubernetes_manifest_is_not_a_template() {
    let message = refused("namespace-template-kubernetes-manifest.json").await;
    assert!(
        message.starts_with(
            "annotation cfn.hawser.io/template: invalid value \"apiVersion: apps/v1\\nkind: \
             Deployment\\nmetadata:\\n  name: web\\nspec:"
        ),
        "{message}"
    );
    assert!(
        message.contains(&format!(": no Resources section; {TEMPLATE_ALLOWED}")),
        "{message}"
    );
}

#[tokio::test]
async fn hostile_a_yaml_alias_bomb_is_refused_quickly() {
    let started = std::time::Instant::now();
    let message = refused("namespace-template-yaml-bomb.json").await;
    // 9^9 (387 million) "lol"s if expanded; the alias cap stops it early.
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(
        message.starts_with("annotation cfn.hawser.io/template: invalid value \"a: &a ["),
        "{message}"
    );
    assert!(message.contains(": not valid YAML: "), "{message}");
    assert!(message.contains(TEMPLATE_ALLOWED), "{message}");
}

#[tokio::test]
async fn hostile_a_2_mb_template_is_refused_by_size_without_echoing_it() {
    let message = refused("namespace-template-2mb.json").await;
    let size = "Resources: {Queue: {Type: AWS::SQS::Queue}}\n#\n".len() + 2 * 1024 * 1024;
    assert!(
        message.contains(&format!(
            ": {size} bytes; CloudFormation accepts at most 51,200 bytes in a template body; \
             {TEMPLATE_ALLOWED}"
        )),
        "{message}"
    );
    assert!(message.len() < 2_000, "{} bytes", message.len());
}

/// A body that never ends, counting the chunks read from it.
fn endless_body(
    chunk: usize,
    stall_after: Option<usize>,
    pulled: Arc<std::sync::atomic::AtomicUsize>,
) -> Body {
    let data = axum::body::Bytes::from(vec![b' '; chunk]);
    let stream = futures::stream::unfold(0usize, move |n| {
        let (data, pulled) = (data.clone(), pulled.clone());
        async move {
            if stall_after.is_some_and(|s| n >= s) {
                futures::future::pending::<()>().await;
            }
            pulled.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Some((Ok::<_, std::io::Error>(data), n + 1))
        }
    });
    Body::from_stream(stream)
}

#[tokio::test]
async fn an_oversized_declared_body_is_refused_before_a_byte_is_read() {
    let (router, _) = router(default_namespaces());
    let pulled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let req = Request::post("/validate")
        .header("content-length", (9 * 1024 * 1024).to_string())
        .body(endless_body(64 * 1024, None, pulled.clone()))
        .unwrap();
    let resp = tokio::time::timeout(std::time::Duration::from_secs(10), router.oneshot(req))
        .await
        .expect("no answer within 10 s")
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let text = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        text,
        "hawser: the request body is 9437184 bytes; at most 8388608 bytes are accepted"
    );
    assert_eq!(pulled.load(std::sync::atomic::Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_oversized_chunked_body_is_cut_at_the_limit() {
    let (router, _) = router(default_namespaces());
    let pulled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let req = Request::post("/mutate")
        .body(endless_body(64 * 1024, None, pulled.clone()))
        .unwrap();
    let resp = tokio::time::timeout(std::time::Duration::from_secs(30), router.oneshot(req))
        .await
        .expect("no answer within 30 s")
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    // 8 MiB is 128 chunks of 64 KiB: the 129th is the one refused.
    assert_eq!(pulled.load(std::sync::atomic::Ordering::SeqCst), 129);
}

#[tokio::test(start_paused = true)]
async fn a_stalled_body_gets_408_after_the_read_timeout() {
    let (router, _) = router(default_namespaces());
    let pulled = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let req = Request::post("/validate")
        .body(endless_body(10, Some(1), pulled))
        .unwrap();
    let started = tokio::time::Instant::now();
    // Paused time: the 10 s pass at once, as does this test's own bound.
    let resp = tokio::time::timeout(std::time::Duration::from_secs(60), router.oneshot(req))
        .await
        .expect("a stalled body held the request for 60 s")
        .unwrap();
    assert_eq!(resp.status().as_u16(), 408);
    assert_eq!(started.elapsed(), webhook::REQUEST_READ_TIMEOUT);
}

// Property tests through the real router. Case counts and timings are in
// RELIABILITY.md; the seed is fixed so CI runs the same cases (set
// PROPTEST_RNG_SEED to explore others).

use proptest::prelude::*;

const RAW_CASES: u32 = 2_000;
const JSON_CASES: u32 = 1_000;
const PATHS: [&str; 3] = ["/mutate", "/validate", "/validate-aws-auth"];

fn config(cases: u32) -> proptest::test_runner::Config {
    let mut config = proptest::test_runner::Config::with_cases(cases);
    config.failure_persistence = None;
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = proptest::test_runner::RngSeed::Fixed(0x6861_7773_6572);
    }
    config
}

/// Every AdmissionReview fixture, the small corpus files included.
fn seed_documents() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .chain(std::fs::read_dir(format!("{dir}/hostile")).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

/// A router with no wait for unknown namespaces (the wait is tested
/// above; here it would only slow every case), on a runtime of its own.
fn fuzz_target() -> (tokio::runtime::Runtime, Router) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (router, _) = router_waiting(default_namespaces(), std::time::Duration::ZERO);
    (rt, router)
}

fn post_everywhere(
    rt: &tokio::runtime::Runtime,
    router: &Router,
    body: &[u8],
) -> Result<(), TestCaseError> {
    for path in PATHS {
        let (status, answer) = rt.block_on(post_raw(router, path, body.to_vec()));
        check_answer(body, status, &answer)
            .map_err(|e| TestCaseError::fail(format!("{path}: {e}")))?;
    }
    Ok(())
}

fn hostile_text() -> impl Strategy<Value = String> {
    let nasty = proptest::sample::select(vec![
        '\0',
        '\n',
        '\u{200b}',
        '\u{202e}',
        '\u{feff}',
        '"',
        '\\',
        ',',
        ' ',
        '/',
        ':',
        '{',
        '[',
        '\u{430}',
        '\u{1f600}',
    ]);
    let c = prop_oneof![2 => any::<char>(), 2 => nasty, 3 => proptest::char::range('a', 'z')];
    prop_oneof![
        4 => proptest::collection::vec(c, 0..40).prop_map(|v| v.into_iter().collect::<String>()),
        1 => proptest::sample::select(vec![
            "true", "arn:aws-cn:iam::123456789012:role/x", "us-east-1", "vpc-0a1b2c3d",
            "Resources: {Q: {Type: AWS::SQS::Queue}}", "10.0.0.0/8", "kube-system", "aws-auth",
            "Deployment", "Service", "Namespace", "ConfigMap", "apps", "CREATE", "UPDATE",
        ])
        .prop_map(str::to_owned),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        hostile_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(hostile_text(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the node reached by the selectors, in the request's object
    /// (true) or anywhere in the review.
    Replace(bool, Vec<usize>, Value),
    /// Remove that node from its parent.
    Remove(bool, Vec<usize>),
    /// Set an annotation of the object (a hawser key, mostly).
    Annotate(String, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let path = proptest::collection::vec(any::<usize>(), 1..7);
    let key = prop_oneof![
        3 => proptest::sample::select(vec![
            "vpce.hawser.io/service-name", "vpce.hawser.io/subnet-ids", "aws.hawser.io/region",
            "aws.hawser.io/role-arn", "iam.hawser.io/role-arn", "iam.hawser.io/groups",
            "env.hawser.io/host-names", "env.hawser.io/routing-secret", "env.hawser.io/rotate-keys",
            "security.hawser.io/profile", "security.hawser.io/allow-privileged",
            "routing.hawser.io/public-hosts", "cfn.hawser.io/template", "cfn.hawser.io/parameters",
            "cfn.hawser.io/stack-id", "vpce.hawser.io/state", "hawser.io/deletion-policy",
            "hawser.io/unknown",
        ])
        .prop_map(str::to_owned),
        1 => hostile_text(),
    ];
    // Mostly inside the object: a broken review only ever gets the 400.
    let in_object = prop_oneof![4 => Just(true), 1 => Just(false)];
    prop_oneof![
        3 => (in_object.clone(), path.clone(), json_value())
            .prop_map(|(o, p, v)| Mutation::Replace(o, p, v)),
        1 => (in_object, path).prop_map(|(o, p)| Mutation::Remove(o, p)),
        5 => (key, hostile_text()).prop_map(|(k, v)| Mutation::Annotate(k, v)),
    ]
}

/// Follows `selectors` down `doc` (each picks a child modulo the count)
/// and applies `f` to the parent and the chosen key or index.
fn at_path(doc: &mut Value, selectors: &[usize], f: &mut dyn FnMut(&mut Value, &str, usize)) {
    let Some((first, rest)) = selectors.split_first() else {
        return;
    };
    let (key, index) = match doc {
        Value::Object(m) if !m.is_empty() => (m.keys().nth(first % m.len()).unwrap().clone(), 0),
        Value::Array(a) if !a.is_empty() => (String::new(), first % a.len()),
        _ => return,
    };
    let child = match doc {
        Value::Object(m) => m.get_mut(&key).unwrap(),
        Value::Array(a) => &mut a[index],
        _ => unreachable!(),
    };
    if rest.is_empty() || !(child.is_object() || child.is_array()) {
        f(doc, &key, index);
    } else {
        at_path(child, rest, f);
    }
}

/// The request's object when `in_object` and there is one, else `doc`.
fn scope(doc: &mut Value, in_object: bool) -> &mut Value {
    if in_object && doc.pointer("/request/object").is_some() {
        doc.pointer_mut("/request/object").unwrap()
    } else {
        doc
    }
}

fn apply(doc: &mut Value, m: &Mutation) {
    match m {
        Mutation::Replace(o, path, v) => {
            at_path(scope(doc, *o), path, &mut |parent, key, i| match parent {
                Value::Object(o) => {
                    o.insert(key.to_owned(), v.clone());
                }
                Value::Array(a) => a[i] = v.clone(),
                _ => {}
            })
        }
        Mutation::Remove(o, path) => {
            at_path(scope(doc, *o), path, &mut |parent, key, i| match parent {
                Value::Object(o) => {
                    o.remove(key);
                }
                Value::Array(a) => {
                    a.remove(i);
                }
                _ => {}
            })
        }
        Mutation::Annotate(k, v) => {
            if let Some(meta) = doc
                .pointer_mut("/request/object/metadata")
                .and_then(Value::as_object_mut)
            {
                let ann = meta.entry("annotations").or_insert_with(|| json!({}));
                if let Some(ann) = ann.as_object_mut() {
                    ann.insert(k.clone(), v.clone().into());
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(config(RAW_CASES))]

    #[test]
    fn arbitrary_bytes_never_panic_or_5xx(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..512),
            // A fixture with bytes flipped, inserted or cut: near-JSON.
            (any::<proptest::sample::Index>(),
             proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8))
                .prop_map(|(pick, edits)| {
                    let docs = seed_documents();
                    let mut doc = docs[pick.index(docs.len())].clone();
                    for (at, byte, op) in edits {
                        let at = at % (doc.len() + 1);
                        match op {
                            0 => doc.insert(at, byte),
                            1 if at < doc.len() => doc[at] = byte,
                            _ => doc.truncate(at),
                        }
                    }
                    doc
                }),
        ]
    ) {
        let (rt, router) = fuzz_target();
        post_everywhere(&rt, &router, &bytes)?;
    }
}

proptest! {
    #![proptest_config(config(JSON_CASES))]

    #[test]
    fn mutated_admission_reviews_get_well_formed_answers(
        pick in any::<proptest::sample::Index>(),
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let docs = seed_documents();
        let mut doc: Value = serde_json::from_slice(&docs[pick.index(docs.len())]).unwrap();
        for m in &mutations {
            apply(&mut doc, m);
        }
        let (rt, router) = fuzz_target();
        post_everywhere(&rt, &router, &serde_json::to_vec(&doc).unwrap())?;
    }
}

#[test]
fn not_an_admission_review_gets_400_with_a_message() {
    let (rt, router) = fuzz_target();
    for body in [&b""[..], b"null", b"[]", b"\"x\"", b"{\"request\": 5}"] {
        for path in PATHS {
            let (status, answer) = rt.block_on(post_raw(&router, path, body.to_vec()));
            assert_eq!(status, 400, "{path} {body:?}");
            assert!(check_answer(body, status, &answer).unwrap().is_none());
        }
    }
}
