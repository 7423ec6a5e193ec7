//! The stack controller's test world: a namespace name of its own, a
//! cluster name of its own, a hawser running `--controllers stack` for
//! that namespace only, and ways to read back what happened (objects,
//! Events, metrics, and moto's CloudFormation through the real SDK).

use std::{collections::BTreeMap, process::Command, time::Duration};

use aws_sdk_cloudformation::types::Stack;
use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{ConfigMap, Namespace},
    events::v1::Event,
};
use kube::{
    api::{Patch, PatchParams, PostParams},
    Api, Client, ResourceExt,
};

use super::moto::REGION;
use super::*;

pub const STACK_ID: &str = "cfn.hawser.io/stack-id";
pub const STACK_STATUS: &str = "cfn.hawser.io/stack-status";
pub const SPEC_HASH: &str = "cfn.hawser.io/spec-hash";
pub const LAST_ERROR: &str = "cfn.hawser.io/last-error";
pub const FINALIZER: &str = "cfn.hawser.io/cleanup";
pub const WAIT: Duration = Duration::from_secs(60);

pub fn cfn() -> aws_sdk_cloudformation::Client {
    aws_sdk_cloudformation::Client::new(&super::moto::config())
}

/// A template whose SQS queue name comes from parameter `QueueName`.
pub const QUEUE_TEMPLATE: &str = "\
Parameters:
  QueueName: {Type: String}
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties: {QueueName: !Ref QueueName}
Outputs:
  QueueUrl: {Value: !Ref Queue}
";

/// One test's world. The namespace is not created by `start`: a test
/// makes it (annotated or not) or applies an example that does.
pub struct Bed {
    pub client: Client,
    pub cfn: aws_sdk_cloudformation::Client,
    pub ns: String,
    pub id: String,
    pub cluster: String,
    resync: String,
    extra: Vec<String>,
    hawser: Option<Hawser>,
    _hooks: Option<Registration>,
}

impl Bed {
    pub async fn start(resync: &str) -> Self {
        Self::start_with(resync, &[]).await
    }

    /// Like [`start`](Self::start), with extra hawser flags (kept for
    /// [`restart`](Self::restart)).
    pub async fn start_with(resync: &str, extra: &[&str]) -> Self {
        let client = client().await;
        let id = unique("stack");
        let cluster = unique("cluster");
        // The namespace exists before hawser starts: hawser's Role (the
        // chart's, for --watch-namespace) lives in it.
        let ns = TestNamespace::create(&client, &id, &[]).await;
        let name = ns.name.clone();
        // Dropping TestNamespace would delete it; the bed's Drop does.
        std::mem::forget(ns);
        let hawser = start_hawser(&name, &cluster, resync, extra).await;
        Self {
            client,
            cfn: cfn(),
            ns: name,
            id,
            cluster,
            resync: resync.to_owned(),
            extra: extra.iter().map(|a| a.to_string()).collect(),
            hawser: Some(hawser),
            _hooks: None,
        }
    }

    /// With the webhooks too (for the Deployment's `envFrom`), scoped to
    /// this bed's namespace, which is created first (labelled).
    pub async fn start_with_hooks(resync: &str) -> Self {
        let client = client().await;
        let id = unique("stackhooks");
        let cluster = unique("cluster");
        let ns = TestNamespace::create(&client, &id, &[]).await;
        let name = ns.name.clone();
        // Dropping TestNamespace would delete it; the bed's Drop does.
        std::mem::forget(ns);
        // The webhook denies writes of output annotations to anyone but
        // the controller's user: hawser's ServiceAccount (the harness sets
        // it, as the chart does).
        let hawser = start_hawser(&name, &cluster, resync, &[]).await;
        let hooks = Registration::create(&client, &hawser, &id, Hooks::Both).await;
        wait_for_hooks(&client, &name, Hooks::Both).await;
        Self {
            client,
            cfn: cfn(),
            ns: name,
            id,
            cluster,
            resync: resync.to_owned(),
            extra: Vec::new(),
            hawser: Some(hawser),
            _hooks: Some(hooks),
        }
    }

    pub fn hawser(&self) -> &Hawser {
        self.hawser.as_ref().expect("hawser is running")
    }

    /// Kills hawser: nothing cleans up after the objects from now on (a
    /// crash, or an uninstall, before a force-deletion).
    pub fn stop(&mut self) {
        drop(self.hawser.take());
    }

    /// Kills hawser and starts a new process with the same flags: nothing
    /// in memory survives, as after a crash or a change of leader.
    pub async fn restart(&mut self) {
        drop(self.hawser.take());
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        let hawser = start_hawser(&self.ns, &self.cluster, &self.resync, &extra).await;
        self.hawser = Some(hawser);
    }

    /// Gives the bed's namespace `annotations`, as a user's `kubectl
    /// annotate` would.
    pub async fn annotate_namespace(&self, annotations: &[(&str, &str)]) {
        let annotations: BTreeMap<&str, &str> = annotations.iter().copied().collect();
        let patch = serde_json::json!({"metadata": {"annotations": annotations}});
        Api::<Namespace>::all(self.client.clone())
            .patch(&self.ns, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("annotate the namespace");
    }

    pub async fn create_deployment(&self, name: &str, annotations: &[(&str, &str)]) {
        let ann: BTreeMap<&str, &str> = annotations.iter().copied().collect();
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "annotations": ann},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]}
                }
            }
        }))
        .unwrap();
        self.deployments()
            .create(&PostParams::default(), &d)
            .await
            .expect("create Deployment");
    }

    pub fn deployments(&self) -> Api<Deployment> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub fn namespaces(&self) -> Api<Namespace> {
        Api::all(self.client.clone())
    }

    pub fn configmaps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// The contract's stack name for the namespace or one of its
    /// Deployments (the test's names need no shortening or cleaning).
    pub fn stack_name(&self, deployment: Option<&str>) -> String {
        match deployment {
            Some(d) => format!("hawser-{}-{}-{d}", self.cluster, self.ns),
            None => format!("hawser-{}-{}", self.cluster, self.ns),
        }
    }

    /// The stack as moto describes it by name; None once deleted.
    pub async fn stack(&self, name: &str) -> Option<Stack> {
        match self.cfn.describe_stacks().stack_name(name).send().await {
            Ok(out) => out.stacks().first().cloned(),
            Err(e) => {
                let text = aws_sdk_cloudformation::error::DisplayErrorContext(&e).to_string();
                assert!(text.contains("does not exist"), "DescribeStacks: {text}");
                None
            }
        }
    }

    /// Waits until the object's annotations satisfy `check`.
    pub async fn namespace_where(
        &self,
        what: &str,
        check: impl Fn(&BTreeMap<String, String>) -> bool,
    ) -> Namespace {
        let api = self.namespaces();
        let name = self.ns.clone();
        eventually(what, WAIT, || {
            let (api, name) = (api.clone(), name.clone());
            let check = &check;
            async move {
                let ns = api.get(&name).await.ok()?;
                check(ns.annotations()).then_some(ns)
            }
        })
        .await
    }

    pub async fn deployment_where(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&BTreeMap<String, String>) -> bool,
    ) -> Deployment {
        let api = self.deployments();
        eventually(what, WAIT, || {
            let api = api.clone();
            let check = &check;
            async move {
                let d = api.get(name).await.ok()?;
                check(d.annotations()).then_some(d)
            }
        })
        .await
    }

    pub async fn namespace_gone(&self) {
        let api = self.namespaces();
        eventually("the namespace gone", WAIT, || {
            let api = api.clone();
            async move { api.get_opt(&self.ns).await.ok()?.is_none().then_some(()) }
        })
        .await;
    }

    pub async fn deployment_gone(&self, name: &str) {
        let api = self.deployments();
        eventually(&format!("Deployment {name} gone"), WAIT, || {
            let api = api.clone();
            async move { api.get_opt(name).await.ok()?.is_none().then_some(()) }
        })
        .await;
    }

    pub async fn configmap(&self, name: &str) -> ConfigMap {
        let api = self.configmaps();
        eventually(&format!("ConfigMap {name}"), WAIT, || {
            let api = api.clone();
            async move { api.get_opt(name).await.ok().flatten() }
        })
        .await
    }

    /// (type, reason, note) of the Events about object `name` of `kind`,
    /// in any namespace (a Namespace's Events are in `default`).
    pub async fn events(&self, kind: &str, name: &str) -> Vec<(String, String, String)> {
        let api: Api<Event> = Api::all(self.client.clone());
        let list = api.list(&Default::default()).await.expect("list Events");
        list.items
            .into_iter()
            .filter(|e| {
                e.regarding.as_ref().is_some_and(|r| {
                    r.name.as_deref() == Some(name) && r.kind.as_deref() == Some(kind)
                })
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

    pub async fn wait_event(&self, kind: &str, name: &str, reason: &str) -> String {
        eventually(
            &format!("Event {reason} on {kind} {name}"),
            WAIT,
            || async {
                self.events(kind, name)
                    .await
                    .into_iter()
                    .find(|(_, r, _)| r == reason)
                    .map(|(_, _, n)| n)
            },
        )
        .await
    }

    pub async fn aws_calls(&self, operation: &str, outcome: &str) -> f64 {
        self.hawser()
            .metric(&format!(
                r#"hawser_aws_api_calls_total{{operation="{operation}",outcome="{outcome}",service="cloudformation"}}"#
            ))
            .await
    }

    /// The CloudFormation calls that change something, as metric lines.
    pub async fn mutating_calls(&self) -> Vec<String> {
        self.hawser()
            .metrics()
            .await
            .lines()
            .filter(|l| l.starts_with("hawser_aws_api_calls_total{"))
            .filter(|l| l.contains(r#"service="cloudformation""#))
            .filter(|l| !l.contains(r#"operation="Describe"#))
            .map(str::to_owned)
            .collect()
    }

    pub async fn stack_metric(&self, result: &str) -> f64 {
        self.hawser()
            .metric(&format!(
                r#"hawser_reconcile_total{{controller="stack",result="{result}"}}"#
            ))
            .await
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        // hawser is gone: nothing will release cfn.hawser.io/cleanup.
        drop(self.hawser.take());
        let ns = &self.ns;
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "for d in $(kubectl -n {ns} get deploy -o name 2>/dev/null); do kubectl -n {ns} patch $d --type=merge -p '{{\"metadata\":{{\"finalizers\":null}}}}' >/dev/null 2>&1; done; \
                 kubectl patch namespace {ns} --type=merge -p '{{\"metadata\":{{\"finalizers\":null}}}}' >/dev/null 2>&1; \
                 kubectl delete namespace {ns} --ignore-not-found --wait=false >/dev/null 2>&1"
            ))
            .status();
    }
}

pub async fn start_hawser(ns: &str, cluster: &str, resync: &str, extra: &[&str]) -> Hawser {
    let mut args = vec![
        "--controllers",
        "stack",
        "--cluster-name",
        cluster,
        "--region",
        REGION,
        "--resync-period",
        resync,
        "--watch-namespace",
        ns,
    ];
    args.extend_from_slice(extra);
    Hawser::start(&args).await
}

pub fn ann<'a>(ann: &'a BTreeMap<String, String>, key: &str) -> Option<&'a str> {
    ann.get(key).map(String::as_str)
}

pub fn tag<'a>(stack: &'a Stack, key: &str) -> Option<&'a str> {
    stack
        .tags()
        .iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

pub fn parameter<'a>(stack: &'a Stack, key: &str) -> Option<&'a str> {
    stack
        .parameters()
        .iter()
        .find(|p| p.parameter_key() == Some(key))
        .and_then(|p| p.parameter_value())
}

pub fn status(stack: &Stack) -> &str {
    stack.stack_status().map(|s| s.as_str()).unwrap_or_default()
}
