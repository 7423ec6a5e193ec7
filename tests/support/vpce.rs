//! The VPC endpoint controller's test world: a VPC in moto, a namespace,
//! a hawser running `--controllers vpce` for that namespace only, and
//! ways to read back what happened (Service, Events, moto, metrics).

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::api::{core::v1::Service, events::v1::Event};
use kube::{
    api::{Patch, PatchParams, PostParams},
    Api, Client, ResourceExt,
};

use super::moto::{self, Network};
use super::*;

pub const SERVICE_NAME: &str = "com.amazonaws.us-west-2.s3";
pub const STATE: &str = "vpce.hawser.io/state";
pub const ENDPOINT_ID: &str = "vpce.hawser.io/endpoint-id";
pub const DNS_NAME: &str = "vpce.hawser.io/dns-name";
pub const GROUP_ID: &str = "vpce.hawser.io/security-group-id";
pub const WAIT: Duration = Duration::from_secs(60);

/// One test's world: a VPC in moto, a namespace, and a hawser running the
/// vpce controller for that namespace only.
pub struct Bed {
    pub client: Client,
    pub ec2: aws_sdk_ec2::Client,
    pub net: Network,
    pub ns: TestNamespace,
    pub cluster: String,
    hawser: Option<Hawser>,
}

impl Bed {
    pub async fn start(resync: &str) -> Self {
        Self::start_with(resync, &[]).await
    }

    /// Like [`start`](Self::start), with extra hawser flags.
    pub async fn start_with(resync: &str, extra: &[&str]) -> Self {
        let client = client().await;
        let ns = TestNamespace::create(&client, "vpce", &[]).await;
        Self::start_in(client, ns, resync, extra).await
    }

    /// Like [`start`](Self::start), with hawser's RBAC (the chart's)
    /// changed by `edit` before it is applied.
    pub async fn start_with_rbac(
        resync: &str,
        edit: impl FnOnce(&mut Vec<serde_json::Value>),
    ) -> Self {
        let client = client().await;
        let ns = TestNamespace::create(&client, "vpce", &[]).await;
        Self::start_in_as(client, ns, resync, &[], Some(edit)).await
    }

    /// Like [`start`](Self::start), in the VPC `net` instead of a new one.
    pub async fn start_in_network(resync: &str, net: Network) -> Self {
        let client = client().await;
        let ns = TestNamespace::create(&client, "vpce", &[]).await;
        let cluster = unique("cluster");
        let hawser = start_hawser(&ns.name, &cluster, &net, resync, &[]).await;
        Self {
            client,
            ec2: moto::ec2(),
            net,
            ns,
            cluster,
            hawser: Some(hawser),
        }
    }

    async fn start_in(client: Client, ns: TestNamespace, resync: &str, extra: &[&str]) -> Self {
        Self::start_in_as(
            client,
            ns,
            resync,
            extra,
            None::<fn(&mut Vec<serde_json::Value>)>,
        )
        .await
    }

    async fn start_in_as(
        client: Client,
        ns: TestNamespace,
        resync: &str,
        extra: &[&str],
        edit: Option<impl FnOnce(&mut Vec<serde_json::Value>)>,
    ) -> Self {
        let ec2 = moto::ec2();
        let net = Network::create(&ec2).await;
        let cluster = unique("cluster");
        let args = hawser_args(&ns.name, &cluster, &net, resync, extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let hawser = match edit {
            None => Hawser::start(&args).await,
            Some(edit) => Hawser::start_with_rbac(&args, edit).await,
        };
        Self {
            client,
            ec2,
            net,
            ns,
            cluster,
            hawser: Some(hawser),
        }
    }

    /// With hawser's webhooks too, scoped to a namespace of this test's
    /// own (the others share one label). The webhook admits output writes
    /// only from the controller's user: hawser's ServiceAccount, as the
    /// chart configures it.
    pub async fn start_with_hooks(resync: &str) -> (Self, Registration) {
        let client = client().await;
        let id = unique("vpcehooks");
        let ns = TestNamespace::create(&client, &id, &[]).await;
        let bed = Self::start_in(client.clone(), ns, resync, &[]).await;
        let hooks = Registration::create(&client, bed.hawser(), &id, Hooks::Both).await;
        wait_for_hooks(&client, &bed.ns.name, Hooks::Both).await;
        (bed, hooks)
    }

    pub fn hawser(&self) -> &Hawser {
        self.hawser.as_ref().expect("hawser is running")
    }

    /// Kills hawser: nothing cleans up after the objects from now on (a
    /// crash, or an uninstall, before a force-deletion).
    pub fn stop(&mut self) {
        drop(self.hawser.take());
    }

    /// Kills hawser (SIGKILL, no chance to finish anything) and starts a
    /// new one for the same namespace, cluster and VPC.
    pub async fn restart(&mut self, resync: &str, extra: &[&str]) {
        drop(self.hawser.take());
        let hawser = start_hawser(&self.ns.name, &self.cluster, &self.net, resync, extra).await;
        self.hawser = Some(hawser);
    }

    pub fn services(&self) -> Api<Service> {
        Api::namespaced(self.client.clone(), &self.ns.name)
    }

    pub async fn create(&self, name: &str, annotations: &[(&str, &str)]) {
        let mut ann: BTreeMap<String, String> =
            BTreeMap::from([("vpce.hawser.io/service-name".into(), SERVICE_NAME.into())]);
        ann.extend(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "annotations": ann},
            "spec": {"ports": [{"port": 443}]},
        }))
        .unwrap();
        self.services()
            .create(&PostParams::default(), &svc)
            .await
            .expect("create Service");
    }

    /// A Service asking for an endpoint in the first subnet, once it is
    /// Available.
    pub async fn available_endpoint(&self, name: &str) -> Service {
        self.create(name, &[("vpce.hawser.io/subnet-ids", &self.net.subnets[0])])
            .await;
        self.available(name).await
    }

    pub async fn annotate(&self, name: &str, key: &str, value: &str) {
        let patch = serde_json::json!({"metadata": {"annotations": {key: value}}});
        self.services()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("annotate Service");
    }

    /// Waits for `state: Available` and returns the Service.
    pub async fn available(&self, name: &str) -> Service {
        let api = self.services();
        eventually(&format!("Service {name} Available"), WAIT, || {
            let api = api.clone();
            async move {
                let svc = api.get(name).await.ok()?;
                (ann(&svc, STATE) == Some("Available")).then_some(svc)
            }
        })
        .await
    }

    /// Waits until every Service in `names` is Available, and checks that
    /// each names an endpoint of its own; returns the endpoint ids.
    pub async fn one_endpoint_each(&self, names: &[String], round: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for name in names {
            let svc = self.available(name).await;
            ids.push(ann(&svc, ENDPOINT_ID).unwrap().to_owned());
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), names.len(), "round {round}: one endpoint each");
        ids
    }

    pub async fn gone(&self, name: &str) {
        let api = self.services();
        eventually(&format!("Service {name} gone"), WAIT, || {
            let api = api.clone();
            async move { api.get_opt(name).await.ok()?.is_none().then_some(()) }
        })
        .await;
    }

    /// (type, reason, note) of the Events about Service `name`.
    pub async fn events(&self, name: &str) -> Vec<(String, String, String)> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.ns.name);
        let list = api.list(&Default::default()).await.expect("list Events");
        list.items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .map(|e| {
                (
                    e.type_.unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default(),
                )
            })
            .collect()
    }

    pub async fn wait_event(&self, name: &str, reason: &str) -> String {
        eventually(&format!("Event {reason} on {name}"), WAIT, || async {
            let events = self.events(name).await;
            events
                .into_iter()
                .find(|(_, r, _)| r == reason)
                .map(|(_, _, n)| n)
        })
        .await
    }

    pub fn group_name(&self, service: &str) -> String {
        format!("hawser-{}-{service}", self.ns.name)
    }

    pub async fn group_id(&self, service: &str) -> Option<String> {
        let name = self.group_name(service);
        let groups = self.net.groups(&self.ec2).await;
        groups
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, id)| id)
    }

    pub async fn aws_calls(&self, operation: &str, outcome: &str) -> f64 {
        self.hawser()
            .metric(&format!(
                r#"hawser_aws_api_calls_total{{operation="{operation}",outcome="{outcome}",service="ec2"}}"#
            ))
            .await
    }
}

pub async fn start_hawser(
    ns: &str,
    cluster: &str,
    net: &Network,
    resync: &str,
    extra: &[&str],
) -> Hawser {
    let args = hawser_args(ns, cluster, net, resync, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Hawser::start(&args).await
}

fn hawser_args(
    ns: &str,
    cluster: &str,
    net: &Network,
    resync: &str,
    extra: &[&str],
) -> Vec<String> {
    let mut args: Vec<String> = [
        "--controllers",
        "vpce",
        "--cluster-name",
        cluster,
        "--region",
        moto::REGION,
        "--default-vpc-id",
        &net.vpc_id,
        "--resync-period",
        resync,
        "--watch-namespace",
        ns,
    ]
    .map(String::from)
    .into();
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

pub fn ann<'a>(svc: &'a Service, key: &str) -> Option<&'a str> {
    svc.annotations().get(key).map(String::as_str)
}

pub fn external_name(svc: &Service) -> (Option<&str>, Option<&str>) {
    let spec = svc.spec.as_ref();
    (
        spec.and_then(|s| s.type_.as_deref()),
        spec.and_then(|s| s.external_name.as_deref()),
    )
}
