//! Whole passes through the reconcile skeleton, against the API stand-in
//! ([`crate::testing::ApiServer`]) and the EC2 fake: create, update,
//! drift, delete, terminal error.

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::core::v1::Service;
use kube::runtime::controller::Action;
use serde_json::{json, Value};

use super::*;
use crate::controller::planned::{Action as Planned, Verb};
use crate::controller::reconciler::{reconcile, Meta};
use crate::controller::vpce::{Context, Settings};
use crate::metrics::Metrics;
use crate::namespaces::{namespace_meta, NamespaceCache};
use crate::testing::ApiServer;

const PATH: &str = "/api/v1/namespaces/team-a/services/db";
const LONG: Duration = Duration::from_secs(3600);

struct Scenario {
    api: ApiServer,
    ec2: FakeEc2,
    ctx: Arc<Context<FakeEc2>>,
}

impl Scenario {
    /// A Service asking for an endpoint to S3; `resync` as
    /// `--resync-period` (zero: every pass looks at AWS).
    fn new(resync: Duration) -> Self {
        let (api, ec2) = (ApiServer::default(), FakeEc2::default());
        let settings = Settings {
            cluster: "prod".into(),
            defaults: defaults(),
            default_region: "us-west-2".into(),
            resync,
            namespace: None,
            pause_after_create: None,
            plan_only: false,
        };
        let namespaces = NamespaceCache::from_list(vec![namespace_meta("team-a", &[])]);
        let metrics = Arc::new(Metrics::new().unwrap());
        let ctx = Context::new(api.client(), ec2.clone(), settings, metrics, namespaces);
        api.put(
            PATH,
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "db", "namespace": "team-a", "uid": UID, "annotations": {
                    keys::VPCE_SERVICE_NAME: "com.amazonaws.us-west-2.s3",
                    keys::VPCE_SUBNET_IDS: SUBNET_B,
                }},
                "spec": {"type": "ClusterIP", "ports": [{"port": 443}]},
            }),
        );
        Self {
            api,
            ec2,
            ctx: Arc::new(ctx),
        }
    }

    fn service(&self) -> Option<Value> {
        self.api.get(PATH)
    }

    fn annotation(&self, key: &str) -> Option<String> {
        self.api.annotation(PATH, key)
    }

    fn finalized(&self) -> bool {
        self.api.finalized(PATH, keys::VPCE_FINALIZER)
    }

    fn reasons(&self) -> Vec<String> {
        self.api.reasons("team-a", "db")
    }

    /// One pass over the Service as the API holds it now.
    async fn pass(&self) -> Result<Action, Error> {
        self.pass_at(PATH).await
    }

    async fn pass_at(&self, path: &str) -> Result<Action, Error> {
        let obj: Meta<Service> = self.api.meta(path);
        reconcile(Arc::new(obj), self.ctx.clone()).await
    }

    /// Another Service in the same namespace, as `db` but named `name`;
    /// returns its path.
    fn another(&self, name: &str, uid: &str) -> String {
        let path = format!("/api/v1/namespaces/team-a/services/{name}");
        let mut svc = self.service().unwrap();
        svc["metadata"] = json!({"name": name, "namespace": "team-a", "uid": uid,
            "annotations": svc["metadata"]["annotations"].clone()});
        self.api.put(&path, svc);
        path
    }

    fn annotate(&self, key: &str, value: Option<&str>) {
        self.api.edit(PATH, |svc| {
            svc["metadata"]["annotations"][key] = value.map_or(Value::Null, |v| json!(v));
            if value.is_none() {
                svc["metadata"]["annotations"]
                    .as_object_mut()
                    .unwrap()
                    .remove(key);
            }
        });
    }
}

#[tokio::test]
async fn create_adds_the_finalizer_makes_the_endpoint_and_records_it() {
    let s = Scenario::new(LONG);
    assert_eq!(s.pass().await.unwrap(), Action::requeue(LONG));
    assert!(s.finalized(), "the finalizer comes with the first pass");
    let endpoints = s.ec2.live_endpoints();
    assert_eq!(endpoints.len(), 1);
    let id = &endpoints[0].id;
    assert_eq!(s.annotation(keys::VPCE_STATE).as_deref(), Some("Available"));
    assert_eq!(s.annotation(keys::VPCE_ENDPOINT_ID).as_ref(), Some(id));
    let svc = s.service().unwrap();
    assert_eq!(svc["spec"]["type"], "ExternalName", "{svc}");
    let reasons = s.reasons();
    for reason in [
        "SecurityGroupCreated",
        "EndpointCreated",
        "EndpointAvailable",
    ] {
        assert!(reasons.iter().any(|r| r == reason), "{reason}: {reasons:?}");
    }

    // Its own write echoing back asks nothing of EC2.
    s.ec2.clear_calls();
    assert!(matches!(s.pass().await.unwrap(), a if a != Action::await_change()));
    assert!(s.ec2.calls().is_empty(), "{:?}", s.ec2.calls());
}

#[tokio::test]
async fn an_annotation_change_modifies_the_endpoint_in_place() {
    let s = Scenario::new(LONG);
    s.pass().await.unwrap();
    let id = s.ec2.live_endpoints()[0].id.clone();
    s.annotate(keys::VPCE_PRIVATE_DNS, Some("true"));
    s.ec2.clear_calls();
    s.pass().await.unwrap();
    assert!(
        s.ec2.mutating_calls().contains(&"ModifyVpcEndpoint"),
        "{:?}",
        s.ec2.mutating_calls()
    );
    let endpoints = s.ec2.live_endpoints();
    assert_eq!(endpoints.len(), 1, "modified, not replaced");
    assert_eq!(endpoints[0].id, id);
    assert!(endpoints[0].private_dns);
}

#[tokio::test]
async fn drift_is_repaired_at_the_resync() {
    let s = Scenario::new(Duration::ZERO);
    s.pass().await.unwrap();
    let gone = s.ec2.live_endpoints()[0].id.clone();
    // Someone deletes the endpoint behind hawser's back.
    s.ec2.lock().endpoints.clear();
    s.pass().await.unwrap();
    let endpoints = s.ec2.live_endpoints();
    assert_eq!(endpoints.len(), 1, "made again");
    assert_ne!(endpoints[0].id, gone);
    assert_eq!(
        s.annotation(keys::VPCE_ENDPOINT_ID).as_ref(),
        Some(&endpoints[0].id)
    );
}

#[tokio::test(start_paused = true)]
async fn resyncs_of_unchanged_services_share_one_look_per_scope() {
    let resync = Duration::from_secs(40);
    let s = Scenario::new(resync);
    let paths: Vec<String> = (1..=3)
        .map(|i| s.another(&format!("svc-{i}"), &format!("uid-{i}")))
        .chain([PATH.to_owned()])
        .collect();
    for path in &paths {
        assert_eq!(s.pass_at(path).await.unwrap(), Action::requeue(resync));
    }
    assert_eq!(s.ec2.live_endpoints().len(), 4);

    tokio::time::advance(resync).await;
    s.ec2.clear_calls();
    for path in &paths {
        assert_eq!(s.pass_at(path).await.unwrap(), Action::requeue(resync));
    }
    assert_eq!(
        s.ec2.calls(),
        ["DescribeVpcEndpoints", "DescribeSecurityGroups"],
        "one look at each kind for four Services"
    );

    // Drift while a snapshot is still fresh: a Service due then is
    // confirmed by it, drift and all.
    let gone = s.ec2.live_endpoints()[0].clone();
    s.ec2.lock().endpoints.remove(&gone.id);
    s.ec2.clear_calls();
    let stale = s.another("svc-late", "uid-late");
    s.pass_at(&stale).await.unwrap();
    assert_eq!(
        s.ec2.mutating_calls(),
        [
            "CreateSecurityGroup",
            "AuthorizeSecurityGroupIngress",
            "CreateVpcEndpoint"
        ],
        "a new Service looks for itself"
    );
    // The drift shows at the next snapshot: the drifted Service's own
    // describes, then the repair.
    tokio::time::advance(resync).await;
    s.ec2.clear_calls();
    for path in &paths {
        s.pass_at(path).await.unwrap();
    }
    let calls = s.ec2.calls();
    assert_eq!(
        calls.iter().filter(|c| c.starts_with("Describe")).count(),
        2 + 2,
        "the snapshots, then the drifted Service's own look: {calls:?}"
    );
    assert_eq!(s.ec2.mutating_calls(), ["CreateVpcEndpoint"]);
    assert_eq!(s.ec2.live_endpoints().len(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_changed_service_looks_for_itself() {
    let resync = Duration::from_secs(40);
    let s = Scenario::new(resync);
    s.pass().await.unwrap();
    tokio::time::advance(resync).await;
    s.pass().await.unwrap(); // the snapshots taken
    s.annotate(keys::VPCE_PRIVATE_DNS, Some("true"));
    s.ec2.clear_calls();
    s.pass().await.unwrap();
    assert_eq!(
        s.ec2.calls(),
        [
            "DescribeVpcEndpoints",
            "DescribeSecurityGroups",
            "ModifyVpcEndpoint"
        ],
        "its own describes, not the snapshots"
    );
}

#[tokio::test]
async fn delete_keeps_the_finalizer_until_the_endpoint_and_group_are_gone() {
    let s = Scenario::new(LONG);
    s.pass().await.unwrap();
    s.api.delete(PATH);
    assert!(s.service().is_some(), "held by the finalizer");

    // EC2 shows the endpoint `deleting` first: the finalizer stays, and
    // the group, still in use, is not touched yet.
    let first = s.pass().await.unwrap();
    assert_ne!(first, Action::await_change(), "polled");
    assert!(s.finalized(), "the finalizer waits for AWS");
    assert_eq!(s.ec2.groups().len(), 1);
    assert_eq!(s.annotation(keys::VPCE_STATE).as_deref(), Some("Deleting"));

    assert_eq!(s.pass().await.unwrap(), Action::await_change());
    assert!(s.ec2.live_endpoints().is_empty() && s.ec2.groups().is_empty());
    assert!(s.service().is_none(), "the finalizer went, and the Service");
    let reasons = s.reasons();
    for reason in ["EndpointDeleted", "SecurityGroupDeleted"] {
        assert!(reasons.iter().any(|r| r == reason), "{reason}: {reasons:?}");
    }
}

#[tokio::test]
async fn removing_the_trigger_releases_the_service() {
    let s = Scenario::new(LONG);
    s.pass().await.unwrap();
    s.annotate(keys::VPCE_SERVICE_NAME, None);
    s.pass().await.unwrap(); // the endpoint deleting
    assert_eq!(s.pass().await.unwrap(), Action::await_change());
    assert!(s.ec2.live_endpoints().is_empty() && s.ec2.groups().is_empty());
    assert!(!s.finalized());
    assert_eq!(s.annotation(keys::VPCE_STATE), None, "outputs removed");
    assert!(s.service().is_some(), "the Service is the user's again");
}

#[tokio::test]
async fn a_terminal_refusal_is_marked_announced_and_not_retried() {
    let s = Scenario::new(LONG);
    s.ec2.fail_next(
        "CreateVpcEndpoint",
        "InvalidServiceName",
        "The Vpc Endpoint Service 'com.amazonaws.us-west-2.s3' does not exist",
    );
    assert_eq!(s.pass().await.unwrap(), Action::requeue(LONG), "settled");
    assert_eq!(s.annotation(keys::VPCE_STATE).as_deref(), Some("Failed"));
    let events = s.api.events("team-a", "db");
    let failed = events
        .iter()
        .find(|(_, reason, _)| reason == "ProvisioningFailed")
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(failed.0, "Warning");
    assert!(failed.2.contains("does not exist"), "{failed:?}");

    // The same inputs again: nothing is asked of EC2 until they change.
    s.ec2.clear_calls();
    s.pass().await.unwrap();
    assert!(s.ec2.calls().is_empty(), "{:?}", s.ec2.calls());
    s.annotate(keys::VPCE_PRIVATE_DNS, Some("false"));
    s.pass().await.unwrap();
    assert_eq!(s.annotation(keys::VPCE_STATE).as_deref(), Some("Available"));
}

#[tokio::test]
async fn a_passing_failure_is_retried_with_backoff() {
    let s = Scenario::new(LONG);
    s.ec2.fail_next(
        "CreateVpcEndpoint",
        "RequestLimitExceeded",
        "Request limit exceeded.",
    );
    let e = s.pass().await.unwrap_err();
    assert_eq!(e.category(), "aws_throttled");
    assert!(s.reasons().iter().any(|r| r == "ReconcileError"));
    assert_ne!(s.annotation(keys::VPCE_STATE).as_deref(), Some("Failed"));
    s.pass().await.unwrap();
    assert_eq!(s.ec2.live_endpoints().len(), 1);
}

fn recorded_plan(s: &Scenario) -> Vec<(Verb, String)> {
    let value = s.annotation(keys::PLAN).expect("hawser.io/plan");
    let actions: Vec<Planned> = serde_json::from_str(&value).unwrap();
    actions
        .into_iter()
        .map(|a| (a.action, a.resource))
        .collect()
}

#[tokio::test]
async fn plan_only_records_the_plan_writes_nothing_to_aws_and_acts_once_it_goes() {
    let s = Scenario::new(Duration::ZERO);
    s.annotate(keys::PLAN_ONLY, Some("true"));
    s.pass().await.unwrap();
    assert!(
        s.ec2.mutating_calls().is_empty(),
        "{:?}",
        s.ec2.mutating_calls()
    );
    assert_eq!(
        recorded_plan(&s),
        [
            (Verb::Create, "security-group".to_owned()),
            (Verb::Create, "vpc-endpoint".to_owned())
        ]
    );
    assert_eq!(s.reasons(), ["Planned"]);
    // The same plan again: no second Event, still no write.
    s.pass().await.unwrap();
    assert_eq!(s.reasons(), ["Planned"]);
    assert!(s.ec2.mutating_calls().is_empty());

    s.annotate(keys::PLAN_ONLY, None);
    s.pass().await.unwrap();
    assert_eq!(s.ec2.live_endpoints().len(), 1);
    assert_eq!(s.annotation(keys::PLAN), None, "the plan goes once it acts");
}

#[tokio::test]
async fn a_plan_only_deletion_waits_with_its_plan_until_the_annotation_goes() {
    let s = Scenario::new(Duration::ZERO);
    s.pass().await.unwrap();
    let id = s.ec2.live_endpoints()[0].id.clone();
    s.annotate(keys::PLAN_ONLY, Some("true"));
    s.api.delete(PATH);
    s.ec2.clear_calls();
    s.pass().await.unwrap();
    assert!(
        s.ec2.mutating_calls().is_empty(),
        "{:?}",
        s.ec2.mutating_calls()
    );
    assert!(s.finalized(), "the deletion waits");
    assert_eq!(
        recorded_plan(&s),
        [
            (Verb::Delete, "vpc-endpoint".to_owned()),
            (Verb::Delete, "security-group".to_owned())
        ]
    );
    assert_eq!(s.ec2.live_endpoints()[0].id, id);

    s.annotate(keys::PLAN_ONLY, None);
    s.pass().await.unwrap(); // the endpoint deleting
    assert_eq!(s.pass().await.unwrap(), Action::await_change());
    assert!(s.ec2.live_endpoints().is_empty() && s.ec2.groups().is_empty());
    assert!(
        s.service().is_none(),
        "the finalizer went and the Service with it"
    );
}
