//! The deployable artefacts against the real apiserver and promtool:
//! - manifests/hawser.yaml (charts/hawser rendered by hack/gen.sh) holds
//!   the same webhook configurations as `hawser manifests webhook`, once
//!   hawser has turned them on (self-managed mode renders them inert);
//! - every object in it passes a server-side dry run and a real apply;
//! - (a real install, and hawser run exactly as its Deployment says:
//!   tests/e2e_install.rs)
//! - Helm refuses values that the chart's schema does not allow, by name;
//!
//! promtool's checks of the monitoring artefacts: tests/e2e_monitoring.rs.

use crate::support;

use std::process::Command;

use hawser::manifests::{self, Endpoint, WebhookOptions};
use serde_json::{json, Value};
use support::artefacts::{find, load, CHART, MANIFESTS};
use support::*;

/// Variables the chart may set for flags `hawser run` does not have yet:
/// `--default-tags` (the chart's defaultTags) is being added to src/cli.rs.
const PENDING_ENV: &[&str] = &[];

/// The annotation holding the real selector of a self-managed install.
const SELECTOR_ANNOTATION: &str = "hawser.io/namespace-selector";

/// The namespaceSelector that matches no namespace, rendered on the
/// mutate and validate entries until hawser turns them on.
fn inert() -> Value {
    json!({"matchExpressions": [
        {"key": "hawser.io/inactive", "operator": "Exists"},
        {"key": "hawser.io/inactive", "operator": "DoesNotExist"},
    ]})
}

fn is_guard(hook: &Value) -> bool {
    hook["name"].as_str().unwrap().starts_with("aws-auth-guard")
}

/// A self-managed configuration as hawser turns it on: the annotation's
/// selector (compact JSON) in every entry but the aws-auth guard's, which
/// the chart renders live. Panics unless the chart rendered the others
/// inert.
fn activated(mut config: Value) -> Value {
    let kind = config["kind"].as_str().unwrap().to_string();
    let annotation = config["metadata"]["annotations"][SELECTOR_ANNOTATION]
        .as_str()
        .unwrap_or_else(|| panic!("{kind} lacks the annotation {SELECTOR_ANNOTATION}"))
        .to_string();
    assert!(
        !annotation.contains([' ', '\n']),
        "{kind}: not compact JSON: {annotation}"
    );
    let selector: Value = serde_json::from_str(&annotation).unwrap();
    for hook in config["webhooks"].as_array_mut().unwrap() {
        if is_guard(hook) {
            assert_ne!(
                hook["namespaceSelector"],
                inert(),
                "{kind}: the guard is live"
            );
            continue;
        }
        assert_eq!(
            hook["namespaceSelector"],
            inert(),
            "{kind} {}: not inert before hawser serves",
            hook["name"]
        );
        hook["namespaceSelector"] = selector.clone();
    }
    config
}

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

/// manifests/hawser.yaml (self-managed, the default) once hawser has
/// turned it on, and the chart in directory mode as rendered, are both
/// `hawser manifests webhook`.
#[test]
fn the_chart_renders_the_webhooks_of_hawser_manifests_webhook() {
    let self_managed = load(MANIFESTS);
    let directory = helm_template("hawser-system", &["--set", "certs.mode=directory"]);
    let opts = chart_options(false);
    let expected = [
        manifests::with_type_meta(&manifests::mutating(&opts)).unwrap(),
        manifests::with_type_meta(&manifests::validating(&opts)).unwrap(),
    ];
    for want in expected {
        let kind = want["kind"].as_str().unwrap();
        assert_eq!(
            comparable(activated(find(&self_managed, kind).clone())),
            comparable(want.clone()),
            "{kind} in manifests/hawser.yaml, turned on, differs from `hawser manifests webhook`: \
             change charts/hawser/templates/webhooks.yaml to match src/manifests.rs, \
             then run hack/gen.sh"
        );
        let got = find(&directory, kind).clone();
        assert!(got["metadata"]["annotations"][SELECTOR_ANNOTATION].is_null());
        assert_eq!(
            comparable(got),
            comparable(want.clone()),
            "{kind} of certs.mode=directory differs from `hawser manifests webhook`"
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
    assert_eq!(comparable(activated(got)), comparable(want));
}

/// Every HAWSER_* variable of the Deployment is a flag of `hawser run`
/// (docs/cli.md, which CI keeps in step with --help), or awaits one.
fn assert_known_variables(deploy: &Value) {
    let cli = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cli.md")).unwrap();
    let run_help = cli
        .split("## hawser run")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let c = &deploy["spec"]["template"]["spec"]["containers"][0];
    for e in c["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        if name.starts_with("HAWSER_") && !PENDING_ENV.contains(&name) {
            assert!(
                run_help.contains(&format!("[env: {name}=")),
                "the chart sets {name}, which `hawser run` does not read"
            );
        }
    }
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
    assert_eq!(pod["priorityClassName"], "system-cluster-critical");
    assert_known_variables(deploy);
    // Every variable the other values add, too.
    let every = helm_template(
        "hawser-system",
        &[
            "--set",
            "controllers={vpce,stack,namespace}",
            "--set",
            "clusterName=e2e",
            "--set",
            "defaultTags.team=platform",
            "--set",
            "certs.ipAddresses={10.0.0.5}",
            "--set",
            "aws.region=eu-west-1",
            "--set",
            "aws.endpointUrl=http://127.0.0.1:5000",
            "--set",
            "watchNamespace=team-a",
            "--set",
            "vpce.defaultVpcId=vpc-0a1b2c3d",
            "--set",
            "vpce.defaultSubnetIds={subnet-0a1b2c3d}",
            "--set",
            "namespaceController.selector=team=a",
            "--set",
            "namespaceController.protectedRoleArnPattern=admin",
            "--set",
            "webhook.allowPrivilegedContainers=true",
            "--set",
            "webhook.allowSystemGroups=true",
        ],
    );
    let deploy = find(&every, "Deployment");
    let env = &deploy["spec"]["template"]["spec"]["containers"][0]["env"];
    for name in [
        "HAWSER_DEFAULT_TAGS",
        "HAWSER_CERT_IPS",
        "HAWSER_LEASE_NAME",
    ] {
        assert!(
            env.as_array().unwrap().iter().any(|e| e["name"] == name),
            "{name} not rendered: {env}"
        );
    }
    assert_known_variables(deploy);
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

/// `helm template` of charts/hawser as release `hawser`.
fn helm_template(namespace: &str, args: &[&str]) -> Vec<Value> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    rbac::helm_template("hawser", namespace, &args)
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
    let variants: [&[&str]; 7] = [
        &["--set", "certs.mode=directory"],
        &[
            "--set",
            "webhook.url=https://10.0.0.5:8443",
            "--set",
            "certs.ipAddresses={10.0.0.5}",
            "--set",
            "namespaceController.awsAuthGuard=true",
            "--set",
            "webhook.failurePolicy=Ignore",
            "--set",
            "webhook.timeoutSeconds=30",
            "--set",
            "webhook.objectSelector.matchLabels.app=x",
            "--set",
            "webhook.namespaceSelector.matchExpressions[0].key=tier",
            "--set",
            "webhook.namespaceSelector.matchExpressions[0].operator=In",
            "--set",
            "webhook.namespaceSelector.matchExpressions[0].values={a,b}",
        ],
        &[
            "--set",
            "certs.mode=directory",
            "--set",
            "webhook.url=https://hawser.example.com/",
            "--set",
            "webhook.namespaceSelector.matchLabels.team=a",
        ],
        &[
            "--set",
            "hostNetwork=true",
            "--set",
            "replicaCount=1",
            "--set",
            "image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "--set",
            "extraVolumes[0].name=scratch",
            "--set",
            "extraVolumes[0].emptyDir.medium=Memory",
            "--set",
            "extraVolumeMounts[0].name=scratch",
            "--set",
            "extraVolumeMounts[0].mountPath=/scratch",
        ],
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
            "--set",
            "defaultTags.team=platform",
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
/// API version follows the server's; an upgrade without `certs.caBundle`
/// keeps the caBundle already there (as self-managed mode or
/// cert-manager's injector would have set it); the install registers the
/// self-managed webhooks inert, and an upgrade keeps a selector that
/// hawser has turned on (here by hand, on the mutating one only). The
/// webhooks are scoped to a label no other namespace has.
#[tokio::test]
async fn helm_upgrade_keeps_the_ca_bundle_in_the_cluster() {
    testenv_dir();
    let id = unique("helm");
    let ns = TestNamespace::create(&client().await, &id, &[]).await;
    let release = format!("{id}-hawser");
    let helm = |args: &[&str]| {
        let out = Command::new(rbac::helm())
            .args(args)
            .args([&release, CHART, "--namespace", &ns.name])
            .args([
                "--set",
                &format!("webhook.namespaceSelector.matchLabels.{E2E_LABEL}={id}-nobody"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let configs = || {
        [
            "mutatingwebhookconfiguration",
            "validatingwebhookconfiguration",
        ]
        .map(|kind| {
            let out = kubectl(&["get", kind, &release, "-o", "json"], "");
            serde_json::from_str::<Value>(&out.stdout).unwrap()
        })
    };
    let ca_bundles = || configs().map(|v| v["webhooks"][0]["clientConfig"]["caBundle"].clone());
    // The first entry's selector, and the one the annotation holds.
    let selectors = || {
        configs().map(|v| {
            let annotation = v["metadata"]["annotations"][SELECTOR_ANNOTATION].as_str();
            let real: Value = serde_json::from_str(annotation.unwrap()).unwrap();
            (v["webhooks"][0]["namespaceSelector"].clone(), real)
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
    let [(mutating, real), (validating, _)] = selectors();
    assert_eq!([&mutating, &validating], [&inert(), &inert()]);
    assert_eq!(
        real["matchLabels"],
        json!({E2E_LABEL: format!("{id}-nobody")})
    );
    // What hawser does once it serves, on the mutating configuration.
    let patch = json!([{"op": "replace", "path": "/webhooks/0/namespaceSelector", "value": real}]);
    let out = kubectl(
        &[
            "patch",
            "mutatingwebhookconfiguration",
            &release,
            "--type=json",
            "-p",
            &patch.to_string(),
        ],
        "",
    );
    assert!(out.success, "{}", out.stderr);
    helm(&["upgrade"]);
    assert_eq!(ca_bundles(), [json!("UEVN"), json!("UEVN")]);
    let [(mutating, _), (validating, _)] = selectors();
    assert_eq!(mutating, real, "the upgrade turned the webhook off again");
    assert_eq!(validating, inert());
    drop(uninstall);
}

/// `helm uninstall` on drop.
struct Uninstall(String, String);

impl Drop for Uninstall {
    fn drop(&mut self) {
        let _ = Command::new(rbac::helm())
            .args(["uninstall", &self.0, "--namespace", &self.1])
            .output();
    }
}

/// `helm install --dry-run` against the test bed refuses a value of the
/// wrong type and a key the chart does not know, naming the key (the
/// chart's values.schema.json); the same install without them passes, so
/// the refusals come from the values.
#[test]
fn helm_install_refuses_a_wrong_type_and_an_unknown_key_by_name() {
    testenv_dir();
    let release = unique("schema");
    let install = |args: &[&str]| {
        Command::new(rbac::helm())
            .args([
                "install",
                "--dry-run",
                &release,
                CHART,
                "--namespace",
                &release,
            ])
            .args(args)
            .output()
            .unwrap()
    };
    let cases: [(&[&str], &str); 4] = [
        (
            &["--set-string", "replicaCount=two"],
            "replicaCount: Invalid type. Expected: integer, given: string",
        ),
        (
            &["--set", "webhook.timeoutSeconds=abc"],
            "webhook.timeoutSeconds: Invalid type. Expected: integer, given: string",
        ),
        (
            &["--set", "replicas=3"],
            "Additional property replicas is not allowed",
        ),
        (
            &["--set", "leaderElection.enabled=false"],
            "leaderElection: Additional property enabled is not allowed",
        ),
    ];
    for (args, want) in cases {
        let out = install(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "helm install --dry-run {args:?} passed"
        );
        assert!(
            stderr.contains(want),
            "{args:?}: expected {want:?} in: {stderr}"
        );
    }
    let out = install(&[]);
    assert!(
        out.status.success(),
        "helm install --dry-run with the defaults: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
