//! Whole passes through the reconcile skeleton, against the API stand-in
//! ([`crate::testing::ApiServer`]) with a real aws-auth writer: create,
//! update, drift, delete, terminal error, release.

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::controller::Action;
use prometheus::{IntCounterVec, Opts};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::{
    writer::{AwsAuthWriter, Target},
    Context, Error, Settings,
};
use crate::annotations::keys::{ENV_ROUTING_SECRET, IAM_FINALIZER, IAM_GROUPS, IAM_ROLE_ARN};
use crate::aws_auth::Protection;
use crate::controller::reconciler::{reconcile, Meta};
use crate::metrics::Metrics;
use crate::testing::ApiServer;

const NS: &str = "/api/v1/namespaces/team-a";
const AWS_AUTH: &str = "/api/v1/namespaces/kube-system/configmaps/aws-auth";
const BINDING: &str =
    "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/rolebindings/hawser-iam";
const ROLE: &str = "arn:aws:iam::111122223333:role/team-a";
const NODES: &str = "arn:aws:iam::111122223333:role/nodes";
const LONG: Duration = Duration::from_secs(3600);

struct Scenario {
    api: ApiServer,
    ctx: Arc<Context>,
    stop: CancellationToken,
}

impl Drop for Scenario {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Scenario {
    /// Namespace team-a with `annotations`, beside an aws-auth that maps
    /// the nodes' role.
    fn new(resync: Duration, annotations: Value) -> Self {
        let api = ApiServer::default();
        api.put(
            AWS_AUTH,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "aws-auth", "namespace": "kube-system"},
                "data": {"mapRoles": format!(
                    "- rolearn: {NODES}\n  username: system:node:{{{{EC2PrivateDNSName}}}}\n  groups:\n  - system:bootstrappers\n  - system:nodes\n"
                )}}),
        );
        api.put(
            NS,
            json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "team-a", "uid": "uid-team-a", "annotations": annotations}}),
        );
        let stop = CancellationToken::new();
        let writes = IntCounterVec::new(Opts::new("w", "w"), &["result"]).unwrap();
        let target = Target {
            namespace: "kube-system".into(),
            name: "aws-auth".into(),
        };
        let writer = AwsAuthWriter::start(api.client(), target, writes, stop.clone());
        let settings = Settings {
            iam_cluster_role: "hawser-tenant".into(),
            allow_system_groups: false,
            protection: Protection::from_pattern(None).unwrap(),
            selector: None,
            finalizer: IAM_FINALIZER.into(),
            resync,
        };
        let metrics = Arc::new(Metrics::new().unwrap());
        let ctx = Context::new(api.client(), settings, writer, metrics);
        Self {
            api,
            ctx: Arc::new(ctx),
            stop,
        }
    }

    fn mapped(&self) -> String {
        let cm = self.api.get(AWS_AUTH).expect("aws-auth");
        cm["data"]["mapRoles"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn finalized(&self) -> bool {
        self.api.finalized(NS, IAM_FINALIZER)
    }

    fn bound_groups(&self) -> Vec<String> {
        let Some(binding) = self.api.get(BINDING) else {
            return vec![];
        };
        binding["subjects"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["name"].as_str().map(str::to_owned))
            .collect()
    }

    fn reasons(&self) -> Vec<String> {
        self.api.reasons("kube-system", "team-a")
    }

    async fn pass(&self) -> Result<Action, Error> {
        let obj: Meta<Namespace> = self.api.meta(NS);
        reconcile(Arc::new(obj), self.ctx.clone()).await
    }

    fn annotate(&self, key: &str, value: Option<&str>) {
        self.api.edit(NS, |ns| {
            let ann = ns["metadata"]["annotations"].as_object_mut().unwrap();
            match value {
                Some(v) => ann.insert(key.into(), json!(v)),
                None => ann.remove(key),
            };
        });
    }
}

fn mapping(groups: &str) -> Value {
    json!({IAM_ROLE_ARN: ROLE, IAM_GROUPS: groups})
}

#[tokio::test]
async fn create_maps_the_role_binds_its_groups_and_guards_both() {
    let s = Scenario::new(LONG, mapping("team-a-devs"));
    assert_eq!(s.pass().await.unwrap(), Action::requeue(LONG));
    assert!(s.finalized());
    let mapped = s.mapped();
    assert!(mapped.contains(ROLE) && mapped.contains(NODES), "{mapped}");
    assert_eq!(s.bound_groups(), ["team-a-devs"]);
    let binding = s.api.get(BINDING).unwrap();
    assert_eq!(binding["roleRef"]["name"], "hawser-tenant");
    let reasons = s.reasons();
    for reason in ["AwsAuthMapped", "RoleBindingApplied"] {
        assert!(reasons.iter().any(|r| r == reason), "{reason}: {reasons:?}");
    }
}

#[tokio::test]
async fn a_group_change_updates_the_entry_and_the_binding() {
    let s = Scenario::new(LONG, mapping("team-a-devs"));
    s.pass().await.unwrap();
    s.annotate(IAM_GROUPS, Some("team-a-devs,team-a-ops"));
    s.pass().await.unwrap();
    assert!(s.mapped().contains("team-a-ops"), "{}", s.mapped());
    assert_eq!(s.bound_groups(), ["team-a-devs", "team-a-ops"]);
    assert!(s.reasons().iter().any(|r| r == "AwsAuthUpdated"));
}

#[tokio::test]
async fn drift_is_repaired_at_the_resync() {
    let s = Scenario::new(Duration::ZERO, mapping("team-a-devs"));
    s.pass().await.unwrap();
    // Someone deletes the RoleBinding and edits the entry away.
    s.api.lock().objects.remove(BINDING);
    s.api.edit(AWS_AUTH, |cm| {
        cm["data"]["mapRoles"] = json!(format!(
            "- rolearn: {NODES}\n  username: system:node:{{{{EC2PrivateDNSName}}}}\n  groups:\n  - system:nodes\n"
        ));
    });
    s.pass().await.unwrap();
    assert_eq!(s.bound_groups(), ["team-a-devs"]);
    assert!(s.mapped().contains(ROLE), "{}", s.mapped());
}

#[tokio::test]
async fn delete_unmaps_unbinds_then_lets_the_namespace_go() {
    let s = Scenario::new(LONG, mapping("team-a-devs"));
    s.pass().await.unwrap();
    s.api.delete(NS);
    assert!(s.api.get(NS).is_some(), "held by the finalizer");
    assert_eq!(s.pass().await.unwrap(), Action::await_change());
    let mapped = s.mapped();
    assert!(!mapped.contains(ROLE) && mapped.contains(NODES), "{mapped}");
    assert!(s.api.get(BINDING).is_none());
    assert!(
        s.api.get(NS).is_none(),
        "the finalizer went, and the Namespace"
    );
    assert!(s.reasons().iter().any(|r| r == "AwsAuthUnmapped"));
}

#[tokio::test]
async fn a_refused_mapping_writes_nothing_and_is_not_retried() {
    let s = Scenario::new(LONG, mapping("system:masters"));
    assert_eq!(s.pass().await.unwrap(), Action::requeue(LONG), "settled");
    assert!(!s.finalized(), "no finalizer for a mapping never made");
    assert!(!s.mapped().contains(ROLE));
    let events = s.api.events("kube-system", "team-a");
    let warning = events
        .iter()
        .find(|(_, reason, _)| reason == "ReconcileError")
        .unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(warning.0, "Warning");
    assert!(
        warning.2.contains("iam.hawser.io/groups") && warning.2.contains("system:"),
        "{warning:?}"
    );

    // The same inputs again: no write, no second Warning.
    let before = s.api.requests("").len();
    s.pass().await.unwrap();
    let after = s.api.requests("");
    assert_eq!(after.len(), before, "{:?}", &after[before..]);
}

#[tokio::test]
async fn removing_the_role_releases_it_and_keeps_the_rest() {
    let mut ann = mapping("team-a-devs");
    ann[ENV_ROUTING_SECRET] = json!("true");
    let s = Scenario::new(LONG, ann);
    s.pass().await.unwrap();
    assert!(s
        .api
        .get("/api/v1/namespaces/team-a/secrets/routing")
        .is_some());
    s.annotate(IAM_ROLE_ARN, None);
    s.annotate(IAM_GROUPS, None);
    assert_eq!(s.pass().await.unwrap(), Action::await_change());
    assert!(!s.mapped().contains(ROLE));
    assert!(s.api.get(BINDING).is_none() && !s.finalized());
    // The routing Secret is the next pass's, and stays.
    s.pass().await.unwrap();
    assert!(s
        .api
        .get("/api/v1/namespaces/team-a/secrets/routing")
        .is_some());
}
