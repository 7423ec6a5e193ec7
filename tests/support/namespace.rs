//! The namespace controller's test world: a hawser running
//! `--controllers namespace` for the namespaces labelled with one test's
//! id, editing that test's own aws-auth ConfigMap in kube-system (so
//! tests sharing the apiserver never share aws-auth), and ways to read
//! back what happened.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::api::{
    core::v1::{ConfigMap, Namespace, Secret},
    events::v1::Event,
};
use kube::{
    api::{DeleteParams, Patch, PatchParams, PostParams},
    core::ObjectMeta,
    Api, Client, ResourceExt,
};

use super::*;

pub const WAIT: Duration = Duration::from_secs(60);
pub const OWNERSHIP: &str = "iam.hawser.io/mapped-roles";

/// What eksctl writes for a node group, as a human left it.
pub const NODE_ROLES: &str = "\
# node group ng-1
- groups:
  - system:bootstrappers
  - system:nodes
  rolearn: arn:aws:iam::111122223333:role/eksctl-e2e-nodegroup-ng-1-NodeInstanceRole
  username: system:node:{{EC2PrivateDNSName}}
";
pub const MAP_USERS: &str = "\
- userarn: arn:aws:iam::111122223333:user/alice   # the on-call
  username: alice
  groups: [system:masters]
";
pub const MAP_ACCOUNTS: &str = "- \"111122223333\"\n";

pub struct Bed {
    pub client: Client,
    pub id: String,
    pub aws_auth: String,
    pub cluster: String,
    hawser: Option<Hawser>,
    namespaces: Vec<TestNamespace>,
}

impl Bed {
    pub async fn start(prefix: &str, extra: &[&str]) -> Self {
        let client = client().await;
        let id = unique(prefix);
        let aws_auth = format!("aws-auth-{id}");
        let cluster = unique("cluster");
        let hawser = start_hawser(&id, &aws_auth, &cluster, extra).await;
        Self {
            client,
            id,
            aws_auth,
            cluster,
            hawser: Some(hawser),
            namespaces: Vec::new(),
        }
    }

    pub fn hawser(&self) -> &Hawser {
        self.hawser.as_ref().expect("hawser is running")
    }

    /// SIGKILLs hawser and starts a new one with the same settings.
    pub async fn restart(&mut self, extra: &[&str]) {
        drop(self.hawser.take());
        self.hawser = Some(start_hawser(&self.id, &self.aws_auth, &self.cluster, extra).await);
    }

    /// A namespace this test's hawser handles; deleted when the bed drops.
    pub async fn namespace(&mut self, annotations: &[(&str, &str)]) -> String {
        let ns = TestNamespace::create(&self.client, &self.id, annotations).await;
        let name = ns.name.clone();
        self.namespaces.push(ns);
        name
    }

    /// Takes over a namespace created elsewhere (e.g. concurrently).
    pub fn adopt(&mut self, ns: TestNamespace) {
        self.namespaces.push(ns);
    }

    pub fn namespaces_api(&self) -> Api<Namespace> {
        Api::all(self.client.clone())
    }

    pub async fn annotate(&self, ns: &str, key: &str, value: Option<&str>) {
        let patch = serde_json::json!({"metadata": {"annotations": {key: value}}});
        self.namespaces_api()
            .patch(ns, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("annotate Namespace");
    }

    pub async fn delete_namespace(&self, ns: &str) {
        self.namespaces_api()
            .delete(ns, &DeleteParams::default())
            .await
            .expect("delete Namespace");
    }

    pub async fn gone(&self, ns: &str) {
        let api = self.namespaces_api();
        eventually(&format!("namespace {ns} gone"), WAIT, || {
            let api = api.clone();
            async move { api.get_opt(ns).await.ok()?.is_none().then_some(()) }
        })
        .await;
    }

    pub fn configmaps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), "kube-system")
    }

    /// Creates this test's aws-auth with the given data.
    pub async fn seed_aws_auth(&self, data: &[(&str, &str)]) {
        let cm = ConfigMap {
            metadata: ObjectMeta {
                name: Some(self.aws_auth.clone()),
                ..Default::default()
            },
            data: Some(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        };
        self.configmaps()
            .create(&PostParams::default(), &cm)
            .await
            .expect("create aws-auth");
    }

    pub async fn aws_auth(&self) -> Option<ConfigMap> {
        self.configmaps().get_opt(&self.aws_auth).await.unwrap()
    }

    pub async fn data(&self, key: &str) -> Option<String> {
        self.aws_auth().await?.data?.get(key).cloned()
    }

    /// The mapRoles entries, parsed.
    pub async fn map_roles(&self) -> Vec<serde_json::Value> {
        let text = self.data("mapRoles").await.unwrap_or_default();
        serde_yaml_ng::from_str::<Option<Vec<serde_json::Value>>>(&text)
            .expect("mapRoles parses")
            .unwrap_or_default()
    }

    /// Waits until `check` holds for the parsed mapRoles.
    pub async fn wait_map_roles(
        &self,
        what: &str,
        check: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        eventually(what, WAIT, || async {
            let roles = self.map_roles().await;
            check(&roles).then_some(roles)
        })
        .await
    }

    pub fn secrets(&self, ns: &str) -> Api<Secret> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// (public, private) key of Secret `routing` in `ns`, once it exists.
    pub async fn keys(&self, ns: &str) -> (String, String) {
        let api = self.secrets(ns);
        eventually(&format!("Secret routing in {ns}"), WAIT, || {
            let api = api.clone();
            async move {
                let s = api.get_opt("routing").await.ok()??;
                let data = s.data?;
                let get = |k: &str| String::from_utf8(data.get(k)?.0.clone()).ok();
                Some((get("public-api-key")?, get("private-api-key")?))
            }
        })
        .await
    }

    /// (type, reason, note) of the Events about Namespace `ns`.
    pub async fn events(&self, ns: &str) -> Vec<(String, String, String)> {
        // hawser records Events about Namespaces in kube-system (1.20 takes
        // them nowhere else).
        let api: Api<Event> = Api::namespaced(self.client.clone(), "kube-system");
        let list = api.list(&Default::default()).await.expect("list Events");
        list.items
            .into_iter()
            .filter(|e| {
                let r = e.regarding.as_ref();
                r.and_then(|r| r.kind.as_deref()) == Some("Namespace")
                    && r.and_then(|r| r.name.as_deref()) == Some(ns)
            })
            .map(|e| {
                (
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                )
            })
            .collect()
    }

    pub async fn wait_event(&self, ns: &str, reason: &str) -> String {
        eventually(&format!("Event {reason} on {ns}"), WAIT, || async {
            self.events(ns)
                .await
                .into_iter()
                .find(|(_, r, _)| r == reason)
                .map(|(_, _, n)| n)
        })
        .await
    }

    pub async fn annotation(&self, ns: &str, key: &str) -> Option<String> {
        let n = self.namespaces_api().get(ns).await.unwrap();
        n.annotations().get(key).cloned()
    }

    pub async fn finalizers(&self, ns: &str) -> Vec<String> {
        self.namespaces_api()
            .get(ns)
            .await
            .unwrap()
            .finalizers()
            .to_vec()
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        // Namespaces go first (TestNamespace's drop), while hawser still
        // runs to release their finalizers; then the ConfigMap.
        self.namespaces.clear();
        let _ = std::process::Command::new("kubectl")
            .args([
                "-n",
                "kube-system",
                "delete",
                "configmap",
                &self.aws_auth,
                "--ignore-not-found",
                "--wait=false",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// The namespace controller's finalizer in the test with this id: each
/// test's hawser has its own, as each has its own aws-auth, so none takes
/// another test's namespaces (outside its selector) for its own.
pub fn finalizer(id: &str) -> String {
    format!("iam.hawser.io/cleanup-{id}")
}

pub async fn start_hawser(id: &str, aws_auth: &str, cluster: &str, extra: &[&str]) -> Hawser {
    let selector = format!("{E2E_LABEL}={id}");
    let finalizer = finalizer(id);
    let mut args = vec![
        "--controllers",
        "namespace",
        "--cluster-name",
        cluster,
        "--region",
        super::moto::REGION,
        "--namespace-selector",
        &selector,
        "--aws-auth-configmap",
        aws_auth,
        "--iam-finalizer",
        &finalizer,
        "--resync-period",
        "1h",
    ];
    args.extend_from_slice(extra);
    Hawser::start(&args).await
}

/// The role ARN a test namespace maps (one account, a name per test).
pub fn role_arn(name: &str) -> String {
    format!("arn:aws:iam::111122223333:role/{name}")
}

pub fn entry_for<'a>(roles: &'a [serde_json::Value], arn: &str) -> Option<&'a serde_json::Value> {
    roles.iter().find(|r| r["rolearn"] == arn)
}

pub fn ownership(cm: &ConfigMap) -> BTreeMap<String, String> {
    cm.annotations()
        .get(OWNERSHIP)
        .map(|v| serde_json::from_str(v).unwrap())
        .unwrap_or_default()
}
