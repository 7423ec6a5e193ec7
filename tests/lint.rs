//! `hawser lint` against the webhook's HTTP router: every object of
//! `tests/fixtures/` (the CREATE reviews) and of `examples/` goes through
//! both, and lint must report what the webhook answers. The router is fed
//! reviews built here, shaped like the apiserver's, independently of
//! lint's own; the mutated object is what `/validate` sees, as in the
//! apiserver.

use std::{collections::BTreeMap, path::Path, sync::Arc};

use axum::{body::Body, http::Request, Router};
use base64::Engine as _;
use clap::Parser as _;
use hawser::{
    cli::{Cli, Command, LintArgs},
    lint::{self, input, Verdict},
    metrics::Metrics,
    namespaces::{namespace_meta, NamespaceCache},
    webhook::{self, Context},
};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

fn lint_args(namespace: &str) -> LintArgs {
    match Cli::try_parse_from(["hawser", "lint", "-f", "-", "-n", namespace])
        .unwrap()
        .command
    {
        Command::Lint(args) => args,
        _ => unreachable!(),
    }
}

fn router(namespaces: &BTreeMap<String, BTreeMap<String, String>>) -> Router {
    let metas = namespaces
        .iter()
        .map(|(name, ann)| {
            let pairs: Vec<(&str, &str)> =
                ann.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            namespace_meta(name, &pairs)
        })
        .collect();
    webhook::router(Arc::new(Context {
        config: lint::webhook_config(&lint_args("default")),
        namespaces: NamespaceCache::from_list(metas),
        metrics: Arc::new(Metrics::new().unwrap()),
        client: None,
    }))
}

async fn post(router: &Router, path: &str, review: &Value) -> Value {
    let response = router
        .clone()
        .oneshot(
            Request::post(path)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(review).unwrap()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice::<Value>(&bytes).unwrap()["response"].clone()
}

/// What the webhook did: the patch `/mutate` answered, and `/validate`'s
/// answer to the object with it applied.
async fn webhook_decision(router: &Router, review: &Value) -> (Option<Value>, bool, String) {
    let mutated = post(router, "/mutate", review).await;
    let mut object = review["request"]["object"].clone();
    let patch = mutated["patch"].as_str().map(|b64| {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
        json_patch::patch(&mut object, &patch).unwrap();
        serde_json::to_value(patch).unwrap()
    });
    let mut review = review.clone();
    review["request"]["object"] = object;
    let validated = post(router, "/validate", &review).await;
    let message = validated["status"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (patch, validated["allowed"] == true, message)
}

/// A CREATE review as the apiserver sends one.
fn apiserver_review(object: &Value, namespace: Option<&str>) -> Value {
    let (group, version) = match object["apiVersion"].as_str().unwrap().split_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (
            String::new(),
            object["apiVersion"].as_str().unwrap().to_owned(),
        ),
    };
    let kind = object["kind"].as_str().unwrap();
    let resource = format!("{}s", kind.to_lowercase());
    let mut object = object.clone();
    if let Some(ns) = namespace {
        object["metadata"]["namespace"] = json!(ns);
    }
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "5c1d2e3f-0000-4000-8000-00000000e001",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "name": object["metadata"]["name"],
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "someone@example.com", "groups": ["system:authenticated"]},
            "object": object,
            "dryRun": false
        }
    })
}

/// Compares lint's report on `objects` with the webhook's answers.
async fn compare(
    what: &str,
    objects: Vec<input::Object>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    default_namespace: &str,
) -> usize {
    let router = router(&namespaces);
    let cluster = namespaces.clone().into_iter().collect();
    let report = lint::lint(&lint_args(default_namespace), &objects, cluster)
        .await
        .unwrap();
    let mut compared = 0;
    for (o, f) in objects.iter().zip(&report.objects) {
        if f.verdict == Verdict::Skipped {
            continue;
        }
        let namespace = match o.kind() {
            "Namespace" => None,
            _ => Some(o.namespace().unwrap_or(default_namespace)),
        };
        let review = apiserver_review(&o.value, namespace);
        let (patch, allowed, message) = webhook_decision(&router, &review).await;
        let place = format!("{what}: {}", o.place());
        assert_eq!(f.patch, patch, "{place}: patch");
        assert_eq!(f.verdict == Verdict::Refused, !allowed, "{place}: verdict");
        if !allowed {
            assert_eq!(f.message.as_deref(), Some(message.as_str()), "{place}");
        }
        compared += 1;
    }
    compared
}

#[tokio::test]
async fn lint_reports_what_the_webhook_answers_to_every_create_fixture() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let namespaces: BTreeMap<String, BTreeMap<String, String>> = ["team-a", "kube-system"]
        .map(|n| (n.to_string(), BTreeMap::new()))
        .into();
    let mut compared = 0;
    for path in input::files(&[dir]).unwrap() {
        let review: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let request = &review["request"];
        let create = request["operation"] == "CREATE" && request["dryRun"] != true;
        if !create || !request["object"].is_object() {
            continue;
        }
        // Only the top-level fixtures: the hostile corpus is the property
        // tests' and the corpus test's.
        if path.parent().unwrap().ends_with("hostile") {
            continue;
        }
        let object = input::Object {
            file: path.display().to_string(),
            document: 1,
            item: None,
            value: request["object"].clone(),
        };
        let ns = request["namespace"].as_str().unwrap_or("default");
        compared += compare("fixture", vec![object], namespaces.clone(), ns).await;
    }
    // deployment-create-{privileged,restricted,kube-system}, service-create-vpce.
    assert_eq!(compared, 4);
}

#[tokio::test]
async fn lint_reports_what_the_webhook_answers_to_every_example() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut objects = Vec::new();
    for path in input::files(&[dir]).unwrap() {
        objects.extend(input::read(&path).unwrap());
    }
    // The examples' Namespaces, as lint reads them from its input.
    let namespaces = objects
        .iter()
        .filter(|o| o.kind() == "Namespace")
        .map(|o| {
            let ann: BTreeMap<String, String> =
                serde_json::from_value(o.value["metadata"]["annotations"].clone())
                    .unwrap_or_default();
            (o.name().to_owned(), ann)
        })
        .collect();
    let compared = compare("example", objects, namespaces, "default").await;
    assert!(compared >= 10, "only {compared} example objects compared");
}

/// `hawser lint --kubeconfig`: the binary, run as a user runs it, reads the
/// annotations of a Namespace that is only in the cluster (the test bed).
#[tokio::test]
async fn with_a_kubeconfig_the_clusters_namespaces_decide_and_nothing_is_written() {
    use crate::support::{client, hawser_bin, TestNamespace};
    let client = client().await;
    let ns = TestNamespace::create(
        &client,
        "lint",
        &[("security.hawser.io/allow-privileged", "true")],
    )
    .await;
    let manifest = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hardening/privileged-deployment.yaml"),
    )
    .unwrap()
    .replace("namespace: hawser-demo", &format!("namespace: {}", ns.name));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deployment.yaml");
    std::fs::write(&file, manifest).unwrap();
    let lint = |extra: &[&str]| {
        let out = std::process::Command::new(hawser_bin())
            .args(["lint", "-o", "json", "-f"])
            .arg(&file)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    // Without the cluster, the namespace is unknown: privileged is
    // neutralised, with a warning.
    let offline = lint(&[]);
    assert_eq!(offline["unknownNamespaces"], json!([ns.name]));
    assert_eq!(offline["objects"][0]["verdict"], "patched");
    assert!(offline["objects"][0]["warnings"][0]
        .as_str()
        .unwrap()
        .contains("privileged"));
    // With it, the namespace's allowance is read: no change, no warning.
    let kubeconfig = std::env::var("KUBECONFIG").expect("the test bed's KUBECONFIG");
    let online = lint(&["--kubeconfig", &kubeconfig]);
    assert_eq!(online["unknownNamespaces"], json!([]));
    assert_eq!(online["objects"][0]["verdict"], "allowed", "{online}");
    assert!(online["objects"][0].get("warnings").is_none(), "{online}");
    // Nothing was created.
    let deployments: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(client, &ns.name);
    assert!(deployments
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .is_empty());
}

/// Every value of `expected` is in `stored` at the same place (the
/// apiserver adds defaults, never drops what was sent); the places that
/// differ are returned.
fn missing(expected: &Value, stored: &Value, at: &str, out: &mut Vec<String>) {
    match (expected, stored) {
        (Value::Object(e), Value::Object(s)) => {
            for (k, v) in e {
                match s.get(k) {
                    Some(sv) => missing(v, sv, &format!("{at}/{k}"), out),
                    None => out.push(format!("{at}/{k}: {v} not stored")),
                }
            }
        }
        (Value::Array(e), Value::Array(s)) if e.len() == s.len() => {
            for (i, (v, sv)) in e.iter().zip(s).enumerate() {
                missing(v, sv, &format!("{at}/{i}"), out);
            }
        }
        _ if expected == stored => {}
        _ => out.push(format!("{at}: lint {expected}, stored {stored}")),
    }
}

/// The annotations in hawser's families, of the object and of a pod
/// template: what the webhook alone writes there.
fn hawser_annotations(object: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (at, meta) in [
        ("", &object["metadata"]),
        ("template ", &object["spec"]["template"]["metadata"]),
    ] {
        for (k, v) in meta["annotations"].as_object().into_iter().flatten() {
            if k.contains("hawser.io/") {
                out.push((format!("{at}{k}"), v.to_string()));
            }
        }
    }
    out.sort();
    out
}

/// `hawser lint` of the examples against what the real webhook, behind the
/// real apiserver, made of them: each object with lint's patch applied is
/// contained in the stored object, and the hawser annotations are the same.
#[tokio::test]
async fn lint_of_the_examples_agrees_with_what_the_real_webhook_stored() {
    use crate::support::{client, hawser_bin, hawser_with_hooks, unique, Examples, EXAMPLE_FILES};
    let client = client().await;
    let id = unique("lintex");
    let (_hawser, _probe, _hooks) = hawser_with_hooks(&client, &id, &[]).await;
    let mut ex = Examples::new(&id);
    // e2e_contract applies the same example: a role only one namespace may
    // map must differ between the two.
    ex.substitute(
        "role/shop-developers",
        &format!("role/shop-developers-{id}"),
    );
    let files = EXAMPLE_FILES;
    let mut compared = 0;
    for file in files {
        let out = ex.apply(file);
        assert!(out.success, "{file}: {}", out.stderr);
        let (namespaces, others) = ex.rewrite(file);
        let objects: Vec<Value> = namespaces.into_iter().chain(others).collect();
        // lint sees the file as the test applied it, with the Namespaces
        // applied so far (a file may use one another file declared).
        let mut input: Vec<Value> = objects.clone();
        for f in files.iter().take_while(|f| **f != file) {
            input.extend(ex.rewrite(f).0);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("input.json");
        let list = json!({"apiVersion": "v1", "kind": "List", "items": input});
        std::fs::write(&path, list.to_string()).unwrap();
        let run = std::process::Command::new(hawser_bin())
            .args(["lint", "-o", "json", "-f"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(run.status.code(), Some(0), "{file}: {run:?}");
        let report: Value = serde_json::from_slice(&run.stdout).unwrap();
        let stored = ex.stored(file);
        for (i, object) in objects.iter().enumerate() {
            let finding = &report["objects"][i];
            if finding["verdict"] == "skipped" {
                continue;
            }
            let mut expected = object.clone();
            if let Some(patch) = finding.get("patch") {
                let patch: json_patch::Patch = serde_json::from_value(patch.clone()).unwrap();
                json_patch::patch(&mut expected, &patch).unwrap();
            }
            let stored = &stored[i];
            let mut differ = Vec::new();
            missing(&expected, stored, "", &mut differ);
            let place = format!("{file}: {} {}", object["kind"], object["metadata"]["name"]);
            assert!(differ.is_empty(), "{place}: {differ:#?}");
            assert_eq!(
                hawser_annotations(&expected),
                hawser_annotations(stored),
                "{place}"
            );
            compared += 1;
        }
    }
    // Every Namespace, Deployment and Service of those files (the stack
    // template's ConfigMap is not admitted by hawser).
    assert_eq!(compared, 11);
}
