//! Least privilege in every end-to-end test: each hawser the tests start
//! runs as the chart's ServiceAccount, with the chart's RBAC, never with
//! the test bed's admin certificate (which stays for the tests' own setup
//! and checks).
//!
//! The RBAC objects come from `helm template` of `charts/hawser` with the
//! values a process's flags correspond to (controllers, watched namespace,
//! certificate mode, Lease). Three names are the process's own rather than
//! the chart's defaults, because parallel tests must not share them: the
//! aws-auth ConfigMap, the webhook configurations and the webhook Service.
//! For those, the chart's `resourceNames` are renamed to what the process
//! uses; verbs, resources and scopes stay exactly the chart's.
//!
//! Processes started with the same flags (replicas) share one identity, as
//! the chart's replicas share one ServiceAccount; it is deleted when the
//! last of them stops.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    sync::{Arc, Weak},
};

use k8s_openapi::api::{
    authentication::v1::{TokenRequest, TokenRequestSpec},
    authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
    core::v1::ServiceAccount,
};
use kube::{api::PostParams, Api};
use serde_json::Value;

use super::{artefacts::CHART, client, kubectl, testenv_dir, unique};

/// The kinds `helm template` renders that make up an identity.
const RBAC_KINDS: &[&str] = &[
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
];

/// Helm, from hack/install-helm.sh (cached in `HAWSER_CACHE`).
pub fn helm() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg(Path::new(root).join("hack/install-helm.sh"))
        .output()
        .expect("run hack/install-helm.sh");
    assert!(
        out.status.success(),
        "hack/install-helm.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `helm template <release> charts/hawser --namespace <namespace> <args>`,
/// one JSON value per document.
pub fn helm_template(release: &str, namespace: &str, args: &[String]) -> Vec<Value> {
    let out = Command::new(helm())
        .args(["template", release, CHART, "--namespace", namespace])
        .args(args)
        .output()
        .expect("run helm template");
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

/// The value of `--flag value` or `--flag=value` in `args`, the last one winning.
pub fn flag<'a>(args: &[&'a str], name: &str) -> Option<&'a str> {
    let long = format!("--{name}");
    let mut found = None;
    for (i, a) in args.iter().enumerate() {
        if *a == long {
            found = args.get(i + 1).copied();
        } else if let Some(v) = a.strip_prefix(&long).and_then(|r| r.strip_prefix('=')) {
            found = Some(v);
        }
    }
    found
}

/// What a `hawser run` with `args` needs from the chart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Needs {
    /// hawser's own namespace (`--namespace`): ServiceAccount, Lease, Secret.
    pub namespace: String,
    pub set: Vec<String>,
    /// resourceNames to rename: (chart's default, the process's).
    pub renames: Vec<(String, String)>,
}

impl Needs {
    /// `lease` is the Lease the process uses (`--lease-name` or the
    /// harness's unique one).
    pub fn of(args: &[&str], lease: &str) -> Self {
        let namespace = flag(args, "namespace").unwrap_or("default").to_string();
        let mut set = vec![format!("leaderElection.leaseName={lease}")];
        if let Some(c) = flag(args, "controllers") {
            set.push(format!("controllers={{{c}}}"));
            set.push("clusterName=e2e".into());
        }
        if let Some(url) = flag(args, "cfn-requests-queue-url") {
            set.push(format!("cfnRequests.queueUrl={url}"));
        }
        if let Some(resources) = flag(args, "cfn-allowed-resources") {
            set.push(format!("cfnRequests.allowedResources={{{resources}}}"));
        }
        if let Some(ns) = flag(args, "watch-namespace") {
            set.push(format!("watchNamespace={ns}"));
        }
        if flag(args, "certs") == Some("self-managed") {
            set.push("certs.mode=self-managed".into());
            let secret = flag(args, "certs-secret").unwrap_or("hawser-webhook-certs");
            set.push(format!("certs.secretName={secret}"));
        } else {
            set.push("certs.mode=directory".into());
        }
        if let Some(role) = flag(args, "iam-cluster-role") {
            set.push(format!("namespaceController.iamClusterRole={role}"));
        }
        // The chart's names are derived from the release; the process's
        // come from its flags (the binary's defaults otherwise).
        let renames = vec![
            (
                "aws-auth".to_string(),
                flag(args, "aws-auth-configmap")
                    .unwrap_or("aws-auth")
                    .to_string(),
            ),
            (
                "{fullname}".to_string(),
                flag(args, "webhook-config-name")
                    .unwrap_or("hawser")
                    .to_string(),
            ),
            (
                "{fullname}-webhook".to_string(),
                flag(args, "webhook-service")
                    .unwrap_or("hawser-webhook")
                    .to_string(),
            ),
        ];
        Self {
            namespace,
            set,
            renames,
        }
    }
}

/// A ServiceAccount with the chart's RBAC and a kubeconfig holding its
/// token; every object is deleted on drop.
pub struct Identity {
    pub name: String,
    pub namespace: String,
    /// `system:serviceaccount:<namespace>:<name>`.
    pub username: String,
    pub kubeconfig: PathBuf,
    manifest: PathBuf,
    _dir: tempfile::TempDir,
}

impl Identity {
    /// The identity for `needs`: a live one with the same needs, or a new one.
    pub async fn shared(needs: &Needs) -> Arc<Self> {
        static LIVE: std::sync::OnceLock<tokio::sync::Mutex<HashMap<Needs, Weak<Identity>>>> =
            std::sync::OnceLock::new();
        let mut live = LIVE.get_or_init(Default::default).lock().await;
        if let Some(id) = live.get(needs).and_then(Weak::upgrade) {
            return id;
        }
        let id = Arc::new(Self::create(needs, |_| {}).await);
        live.insert(needs.clone(), Arc::downgrade(&id));
        id
    }

    /// A new identity whose rendered RBAC `edit` may change first (to take
    /// a permission away, say).
    pub async fn create(needs: &Needs, edit: impl FnOnce(&mut Vec<Value>)) -> Self {
        testenv_dir();
        let name = unique("hawser-e2e-sa");
        let mut set = needs.set.clone();
        set.push(format!("fullnameOverride={name}"));
        let args: Vec<String> = set
            .iter()
            .flat_map(|s| ["--set".into(), s.clone()])
            .collect();
        let mut docs: Vec<Value> = helm_template(&name, &needs.namespace, &args)
            .into_iter()
            .filter(|d| RBAC_KINDS.contains(&d["kind"].as_str().unwrap_or_default()))
            .collect();
        for (chart, own) in &needs.renames {
            rename_resource(&mut docs, &chart.replace("{fullname}", &name), own);
        }
        edit(&mut docs);

        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("rbac.json");
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": docs});
        std::fs::write(&manifest, serde_json::to_vec(&list).unwrap()).unwrap();
        let out = kubectl(&["apply", "-f", manifest.to_str().unwrap()], "");
        assert!(out.success, "applying the chart's RBAC: {}", out.stderr);

        let username = format!("system:serviceaccount:{}:{name}", needs.namespace);
        wait_until_granted(&username, &docs).await;
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_of(&needs.namespace, &name).await).unwrap();
        Self {
            name,
            namespace: needs.namespace.clone(),
            username,
            kubeconfig,
            manifest,
            _dir: dir,
        }
    }
}

impl Drop for Identity {
    fn drop(&mut self) {
        let _ = Command::new("kubectl")
            .args(["delete", "--ignore-not-found", "--wait=false", "-f"])
            .arg(&self.manifest)
            .output();
    }
}

/// Renames `from` to `to` in every rule's resourceNames.
fn rename_resource(docs: &mut [Value], from: &str, to: &str) {
    for doc in docs.iter_mut() {
        for rule in doc["rules"].as_array_mut().into_iter().flatten() {
            for n in rule["resourceNames"].as_array_mut().into_iter().flatten() {
                if n == from {
                    *n = Value::String(to.to_string());
                }
            }
        }
    }
}

/// A kubeconfig for the test bed with a token of ServiceAccount
/// `namespace/name`: what a pod of it gets from its projected token.
pub async fn kubeconfig_of(namespace: &str, name: &str) -> String {
    kubeconfig_for(&token(namespace, name).await)
}

/// A bound token for the ServiceAccount (TokenRequest, as the kubelet
/// gets one for a pod), valid for two hours.
async fn token(namespace: &str, name: &str) -> String {
    let api: Api<ServiceAccount> = Api::namespaced(client().await, namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(7200),
            ..Default::default()
        },
        ..Default::default()
    };
    api.create_token_request(name, &PostParams::default(), &request)
        .await
        .expect("TokenRequest for the chart's ServiceAccount")
        .status
        .expect("a token")
        .token
}

fn kubeconfig_for(token: &str) -> String {
    let server = std::env::var("HAWSER_TESTENV_APISERVER").expect("HAWSER_TESTENV_APISERVER");
    let ca = testenv_dir().join("pki/ca.crt");
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "testenv", "cluster": {"server": server, "certificate-authority": ca}}],
        "users": [{"name": "hawser", "user": {"token": token}}],
        "contexts": [{"name": "hawser", "context": {"cluster": "testenv", "user": "hawser"}}],
        "current-context": "hawser",
    })
    .to_string()
}

/// RBAC takes effect when the apiserver's authorizer has seen the
/// objects; waits until the first rule of every bound role is granted.
async fn wait_until_granted(username: &str, docs: &[Value]) {
    let reviews: Api<SubjectAccessReview> = Api::all(client().await);
    let roles: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "Role" || d["kind"] == "ClusterRole")
        .collect();
    for role in roles {
        let Some(rule) = role["rules"].get(0) else {
            continue;
        };
        let first = |key: &str| rule[key][0].as_str().map(str::to_string);
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(username.to_string()),
                resource_attributes: Some(ResourceAttributes {
                    namespace: role["metadata"]["namespace"].as_str().map(str::to_string),
                    group: first("apiGroups"),
                    resource: first("resources"),
                    verb: first("verbs"),
                    name: first("resourceNames"),
                    ..Default::default()
                }),
                ..Default::default()
            },
            ..Default::default()
        };
        super::eventually(
            &format!("RBAC {} to take effect", role["metadata"]["name"]),
            std::time::Duration::from_secs(30),
            || {
                let (reviews, review) = (reviews.clone(), review.clone());
                async move {
                    let r = reviews.create(&PostParams::default(), &review).await.ok()?;
                    r.status.filter(|s| s.allowed).map(|_| ())
                }
            },
        )
        .await;
    }
}
