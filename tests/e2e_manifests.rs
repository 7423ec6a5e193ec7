//! The deployable artefacts against the real apiserver and promtool:
//! - manifests/hawser.yaml (charts/hawser rendered by hack/gen.sh) holds
//!   the same webhook configurations as `hawser manifests webhook`;
//! - every object in it passes a server-side dry run and a real apply;
//! - the Deployment's configuration starts a hawser that gets ready;
//!
//! promtool's checks of the monitoring artefacts: tests/e2e_monitoring.rs.

mod support;

use std::{
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use hawser::manifests::{self, Endpoint, WebhookOptions};
use serde_json::{json, Value};
use support::artefacts::{find, load, CHART, MANIFESTS};
use support::*;

/// Variables the chart may set for flags `hawser run` does not have: none.
const PENDING_ENV: &[&str] = &[];

/// The comparable part of a webhook configuration: no labels, annotations
/// or caBundle (filled at install time).
fn comparable(mut config: Value) -> Value {
    config["metadata"] = json!({"name": config["metadata"]["name"]});
    for hook in config["webhooks"].as_array_mut().unwrap() {
        hook["clientConfig"]
            .as_object_mut()
            .unwrap()
            .remove("caBundle");
    }
    config
}

/// What the chart's release `hawser` in hawser-system corresponds to.
fn chart_options(aws_auth_guard: bool) -> WebhookOptions {
    WebhookOptions {
        name: "hawser".into(),
        endpoint: Endpoint::Service {
            name: "hawser-webhook".into(),
            namespace: "hawser-system".into(),
        },
        ca_bundle: Vec::new(),
        own_namespace: "hawser-system".into(),
        match_namespace_labels: Default::default(),
        aws_auth_guard,
    }
}

#[test]
fn the_chart_renders_the_webhooks_of_hawser_manifests_webhook() {
    let docs = load(MANIFESTS);
    let opts = chart_options(false);
    let expected = [
        manifests::with_type_meta(&manifests::mutating(&opts)).unwrap(),
        manifests::with_type_meta(&manifests::validating(&opts)).unwrap(),
    ];
    for want in expected {
        let kind = want["kind"].as_str().unwrap();
        assert_eq!(
            comparable(find(&docs, kind).clone()),
            comparable(want.clone()),
            "{kind} in manifests/hawser.yaml differs from `hawser manifests webhook`: \
             change charts/hawser/templates/webhooks.yaml to match src/manifests.rs, \
             then run hack/gen.sh"
        );
    }
}

#[test]
fn the_charts_aws_auth_guard_is_the_one_of_hawser_manifests_webhook() {
    let docs = helm_template(
        "hawser-system",
        &["--set", "namespaceController.awsAuthGuard=true"],
    );
    let opts = chart_options(true);
    let want = manifests::with_type_meta(&manifests::validating(&opts)).unwrap();
    let got = find(&docs, "ValidatingWebhookConfiguration").clone();
    assert_eq!(comparable(got), comparable(want));
}

#[test]
fn the_deployment_is_hardened_and_configured_only_through_known_variables() {
    let docs = load(MANIFESTS);
    let deploy = find(&docs, "Deployment");
    let pod = &deploy["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/livez");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(c["resources"]["requests"].is_object());
    assert!(pod["topologySpreadConstraints"].as_array().unwrap().len() >= 2);
    // Every HAWSER_* variable is a flag of `hawser run` (docs/cli.md, which
    // CI keeps in step with --help), or awaits one.
    let cli = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cli.md")).unwrap();
    let run_help = cli
        .split("## hawser run")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for e in c["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        if name.starts_with("HAWSER_") && !PENDING_ENV.contains(&name) {
            assert!(
                run_help.contains(&format!("[env: {name}=")),
                "the chart sets {name}, which `hawser run` does not read"
            );
        }
    }
    // The grafana dashboard is valid JSON.
    let dashboard = &find(&docs, "ConfigMap")["data"]["hawser.json"];
    serde_json::from_str::<Value>(dashboard.as_str().unwrap()).expect("dashboard JSON");
}

/// The objects of manifests/hawser.yaml moved into namespace `ns`, with
/// cluster-scoped names suffixed and the webhooks scoped to a label no
/// namespace has, so applying them touches nothing else in the test bed.
fn relocated(ns: &str, pdb_version: &str) -> Vec<Value> {
    let mut docs = load(MANIFESTS);
    for d in &mut docs {
        let kind = d["kind"].as_str().unwrap().to_string();
        match kind.as_str() {
            "Namespace" => d["metadata"]["name"] = json!(ns),
            "ClusterRole"
            | "ClusterRoleBinding"
            | "MutatingWebhookConfiguration"
            | "ValidatingWebhookConfiguration" => {
                let name = format!("{}-{ns}", d["metadata"]["name"].as_str().unwrap());
                d["metadata"]["name"] = json!(name);
            }
            _ => d["metadata"]["namespace"] = json!(ns),
        }
        if kind == "ClusterRoleBinding" {
            let role = format!("{}-{ns}", d["roleRef"]["name"].as_str().unwrap());
            d["roleRef"]["name"] = json!(role);
        }
        if let Some(subjects) = d.get_mut("subjects").and_then(Value::as_array_mut) {
            for s in subjects {
                s["namespace"] = json!(ns);
            }
        }
        if let Some(hooks) = d.get_mut("webhooks").and_then(Value::as_array_mut) {
            for h in hooks {
                h["clientConfig"]["service"]["namespace"] = json!(ns);
                h["namespaceSelector"]["matchLabels"] = json!({E2E_LABEL: ns});
            }
        }
        if kind == "PodDisruptionBudget" {
            d["apiVersion"] = json!(pdb_version);
        }
    }
    docs
}

fn yaml_stream(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| format!("---\n{}", serde_yaml_ng::to_string(d).unwrap()))
        .collect()
}

/// Deletes what `relocated` created.
struct Cleanup(Vec<Value>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for d in self.0.iter().rev() {
            if d["metadata"]["namespace"].is_null() {
                let kind = d["kind"].as_str().unwrap();
                let name = d["metadata"]["name"].as_str().unwrap();
                kubectl(
                    &["delete", kind, name, "--ignore-not-found", "--wait=false"],
                    "",
                );
            }
        }
    }
}

#[tokio::test]
async fn every_object_in_manifests_is_accepted_by_the_apiserver() {
    testenv_dir();
    let ns = unique("manifests");
    // policy/v1 PodDisruptionBudget exists from 1.21; the chart renders
    // policy/v1beta1 for older clusters (pdb.yaml), with the same spec.
    let versions = kubectl(&["api-versions"], "").stdout;
    let pdb_version = if versions.lines().any(|l| l == "policy/v1") {
        "policy/v1"
    } else {
        "policy/v1beta1"
    };
    let docs = relocated(&ns, pdb_version);
    let _cleanup = Cleanup(docs.clone());
    let (namespace, rest): (Vec<_>, Vec<_>) =
        docs.iter().cloned().partition(|d| d["kind"] == "Namespace");
    assert_eq!(namespace.len(), 1);
    assert!(rest.len() >= 11, "{} objects", rest.len());

    let run = |args: &[&str], docs: &[Value]| {
        let out = kubectl(args, &yaml_stream(docs));
        assert!(
            out.success,
            "kubectl {}: {}\n{}",
            args.join(" "),
            out.stderr,
            out.stdout
        );
        out.stdout
    };
    // Dry runs need the namespace of the namespaced objects to exist.
    run(&["apply", "--dry-run=server", "-f", "-"], &namespace);
    run(&["apply", "-f", "-"], &namespace);
    let dry = run(&["apply", "--dry-run=server", "-f", "-"], &rest);
    assert_eq!(
        dry.lines()
            .filter(|l| l.contains("(server dry run)"))
            .count(),
        rest.len(),
        "{dry}"
    );
    run(&["apply", "-f", "-"], &rest);

    // Stored as rendered: every object exists, and the webhooks kept their
    // settings (the apiserver defaults nothing we care about away).
    for d in &docs {
        let kind = d["kind"].as_str().unwrap();
        let name = d["metadata"]["name"].as_str().unwrap();
        let mut args = vec!["get", kind, name, "-o", "json"];
        if !d["metadata"]["namespace"].is_null() {
            args.extend(["-n", &ns]);
        }
        let out = kubectl(&args, "");
        assert!(out.success, "{kind} {name} not stored: {}", out.stderr);
        let stored: Value = serde_json::from_str(&out.stdout).unwrap();
        if kind.ends_with("WebhookConfiguration") {
            for (want, got) in d["webhooks"]
                .as_array()
                .unwrap()
                .iter()
                .zip(stored["webhooks"].as_array().unwrap())
            {
                for field in [
                    "failurePolicy",
                    "rules",
                    "namespaceSelector",
                    "timeoutSeconds",
                    "sideEffects",
                    "matchPolicy",
                ] {
                    assert_eq!(want[field], got[field], "{kind} {field}");
                }
            }
        }
    }
    // Cleanup (the namespace, then cluster-scoped objects) runs on drop.
    kubectl(&["delete", "namespace", &ns, "--wait=false"], "");
}

/// The Deployment's environment, as the kubelet would give it (field
/// references resolved), with addresses and the certificate directory
/// moved to this machine.
fn deployment_env(cert_dir: &Path, webhook: u16, admin: u16) -> Vec<(String, String)> {
    let docs = load(MANIFESTS);
    let c = &find(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let name = e["name"].as_str().unwrap().to_string();
            let value = match name.as_str() {
                "POD_NAME" => "hawser-0".to_string(),
                "POD_NAMESPACE" => "hawser-system".to_string(),
                "HAWSER_WEBHOOK_ADDR" => format!("127.0.0.1:{webhook}"),
                "HAWSER_ADMIN_ADDR" => format!("127.0.0.1:{admin}"),
                "HAWSER_TLS_CERT_DIR" => cert_dir.display().to_string(),
                _ => e["value"].as_str().unwrap().to_string(),
            };
            (name, value)
        })
        .collect()
}

#[tokio::test]
async fn the_deployments_configuration_starts_a_ready_hawser() {
    testenv_dir();
    let dir = tempfile::tempdir().unwrap();
    write_certs(dir.path());
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (webhook, admin) = (port(), port());
    let docs = load(MANIFESTS);
    let args: Vec<String> = find(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]
        ["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let log = dir.path().join("hawser.log");
    let mut child = Command::new(hawser_bin())
        .args(&args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("KUBECONFIG", std::env::var("KUBECONFIG").unwrap())
        .envs(deployment_env(dir.path(), webhook, admin))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{admin}/readyz")).await {
                if r.status().is_success() {
                    return;
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("hawser exited with {status}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        ready.is_ok(),
        "hawser did not get ready with the Deployment's env:\n{text}"
    );
    // HAWSER_LOG_FORMAT=json from the chart took effect.
    let first = text.lines().next().unwrap_or_default();
    assert!(
        serde_json::from_str::<Value>(first).is_ok(),
        "not a JSON log line: {first}"
    );
}

/// Helm, from hack/install-helm.sh (cached).
fn helm() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg(Path::new(root).join("hack/install-helm.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hack/install-helm.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `helm template` of charts/hawser.
fn helm_template(namespace: &str, args: &[&str]) -> Vec<Value> {
    let out = Command::new(helm())
        .args(["template", "hawser", CHART, "--namespace", namespace])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm template {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_yaml_ng::Deserializer::from_str(&String::from_utf8(out.stdout).unwrap())
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// The RBAC and settings of the non-default modes (every controller, the
/// aws-auth guard, a watched namespace, self-managed certificates) are
/// valid objects too: a server-side dry run of each, rendered for the test
/// bed's Kubernetes version. Not applied: cluster-scoped objects would
/// reach beyond this test.
#[tokio::test]
async fn chart_variants_pass_a_server_dry_run() {
    testenv_dir();
    let ns = TestNamespace::create(&client().await, &unique("variants"), &[]).await;
    let version: Value =
        serde_json::from_str(&kubectl(&["version", "-o", "json"], "").stdout).unwrap();
    let kube_version = version["serverVersion"]["gitVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let variants: [&[&str]; 4] = [
        &["--set", "certs.mode=self-managed"],
        &[
            "--set",
            "controllers={vpce,namespace,stack}",
            "--set",
            "clusterName=e2e",
            "--set",
            "namespaceController.awsAuthGuard=true",
            "--set",
            "namespaceController.selector=team=a",
            "--set",
            "namespaceController.protectedRoleArnPattern=arn:aws:iam::\\d+:role/Admin",
        ],
        &[
            "--set",
            "controllers={vpce,stack}",
            "--set",
            "clusterName=e2e",
            "--set",
            "serviceAccount.roleArn=arn:aws:iam::111122223333:role/hawser",
            "--set",
            "vpce.defaultSubnetIds={subnet-0a1b2c3d,subnet-0e1f2a3b}",
        ],
        &[
            "--set",
            "controllers={vpce,stack}",
            "--set",
            "clusterName=e2e",
            "--set",
            &format!("watchNamespace={}", ns.name),
        ],
    ];
    for variant in variants {
        let mut args = vec!["--kube-version", kube_version.as_str()];
        args.extend_from_slice(variant);
        let docs = helm_template(&ns.name, &args);
        let out = kubectl(
            &["apply", "--dry-run=server", "-f", "-"],
            &yaml_stream(&docs),
        );
        assert!(out.success, "{variant:?}: {}\n{}", out.stderr, out.stdout);
        assert_eq!(
            out.stdout
                .lines()
                .filter(|l| l.contains("(server dry run)"))
                .count(),
            docs.len(),
            "{variant:?}: {}",
            out.stdout
        );
    }
}

/// A real `helm install` and `upgrade` against the apiserver: the PDB's
/// API version follows the server's, and an upgrade without
/// `certs.caBundle` keeps the caBundle already there (as self-managed
/// mode or cert-manager's injector would have set it). The webhooks are
/// scoped to a label no other namespace has.
#[tokio::test]
async fn helm_upgrade_keeps_the_ca_bundle_in_the_cluster() {
    testenv_dir();
    let id = unique("helm");
    let ns = TestNamespace::create(&client().await, &id, &[]).await;
    let release = format!("{id}-hawser");
    let helm = |args: &[&str]| {
        let out = Command::new(helm())
            .args(args)
            .args([&release, CHART, "--namespace", &ns.name])
            .args([
                "--set",
                &format!("webhook.matchNamespaceLabels.{E2E_LABEL}={id}-nobody"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ca_bundles = || {
        [
            "mutatingwebhookconfiguration",
            "validatingwebhookconfiguration",
        ]
        .map(|kind| {
            let out = kubectl(&["get", kind, &release, "-o", "json"], "");
            let v: Value = serde_json::from_str(&out.stdout).unwrap();
            v["webhooks"][0]["clientConfig"]["caBundle"].clone()
        })
    };
    helm(&["install", "--set", "certs.caBundle=UEVN"]);
    let uninstall = Uninstall(release.clone(), ns.name.clone());
    assert_eq!(ca_bundles(), [json!("UEVN"), json!("UEVN")]);
    let versions = kubectl(&["api-versions"], "").stdout;
    let pdb = kubectl(&["get", "pdb", &release, "-n", &ns.name, "-o", "json"], "");
    let pdb: Value = serde_json::from_str(&pdb.stdout).unwrap();
    if !versions.lines().any(|l| l == "policy/v1") {
        assert_eq!(pdb["apiVersion"], "policy/v1beta1");
    }
    helm(&["upgrade"]);
    assert_eq!(ca_bundles(), [json!("UEVN"), json!("UEVN")]);
    drop(uninstall);
}

/// `helm uninstall` on drop.
struct Uninstall(String, String);

impl Drop for Uninstall {
    fn drop(&mut self) {
        let _ = Command::new(helm())
            .args(["uninstall", &self.0, "--namespace", &self.1])
            .output();
    }
}
