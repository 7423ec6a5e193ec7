//! Whole passes through the reconcile skeleton for a Namespace that owns a
//! stack, against the API stand-in ([`crate::testing::ApiServer`]) and the
//! CloudFormation fake: create, update, drift, delete, terminal error.

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::controller::Action;
use serde_json::{json, Value};

use super::*;
use crate::aws::fake_cfn::{failed_event, FakeCfn};
use crate::controller::planned::{Action as Planned, Verb};
use crate::controller::reconciler::{reconcile, Failure as _, Meta};
use crate::controller::stack::{error::Error, Context, Settings, Stacks};
use crate::metrics::Metrics;
use crate::testing::ApiServer;

const PATH: &str = "/api/v1/namespaces/team-a";
const OUTPUTS: &str = "/api/v1/namespaces/team-a/configmaps/team-a-stack-outputs";
const STACK: &str = "hawser-prod-team-a";
const LONG: Duration = Duration::from_secs(3600);

struct Scenario {
    api: ApiServer,
    cfn: FakeCfn,
    stacks: Arc<Stacks<Namespace, FakeCfn>>,
}

impl Scenario {
    /// Namespace team-a asking for a stack from an inline template.
    fn new(resync: Duration) -> Self {
        let (api, cfn) = (ApiServer::default(), FakeCfn::default());
        let settings = Settings {
            cluster: CLUSTER.into(),
            default_tags: Tags::new(),
            default_region: "us-west-2".into(),
            resync,
            namespace: None,
            plan_only: false,
        };
        let metrics = Arc::new(Metrics::new().unwrap());
        let namespaces = crate::namespaces::NamespaceCache::from_list(vec![]);
        let ctx = Context::new(api.client(), cfn.clone(), settings, metrics, namespaces);
        api.put(
            PATH,
            json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": "team-a", "uid": UID, "annotations": {
                    keys::CFN_TEMPLATE: TEMPLATE,
                    keys::CFN_PARAMETERS: r#"{"QueueName": "orders"}"#,
                }},
            }),
        );
        Self {
            api,
            cfn,
            stacks: Arc::new(Stacks::new(Arc::new(ctx))),
        }
    }

    fn annotation(&self, key: &str) -> Option<String> {
        self.api.annotation(PATH, key)
    }

    fn finalized(&self) -> bool {
        self.api.finalized(PATH, keys::CFN_FINALIZER)
    }

    /// Events about the Namespace: in kube-system, the one sink's place
    /// for them.
    fn reasons(&self) -> Vec<String> {
        self.api.reasons("kube-system", "team-a")
    }

    async fn pass(&self) -> Result<Action, Error> {
        self.pass_at(PATH).await
    }

    async fn pass_at(&self, path: &str) -> Result<Action, Error> {
        let obj: Meta<Namespace> = self.api.meta(path);
        reconcile(Arc::new(obj), self.stacks.clone()).await
    }

    /// Another Namespace asking for the same template; returns its path.
    fn another(&self, name: &str, uid: &str) -> String {
        let path = format!("/api/v1/namespaces/{name}");
        let mut ns = self.api.get(PATH).unwrap();
        ns["metadata"] = json!({"name": name, "uid": uid,
            "annotations": ns["metadata"]["annotations"].clone()});
        self.api.put(&path, ns);
        path
    }

    /// Passes until one settles (requeued after the resync), at most 5.
    async fn settle(&self) {
        for _ in 0..5 {
            if self.pass().await.unwrap() == Action::requeue(self.stacks.ctx.settings.resync) {
                return;
            }
        }
        panic!("no pass settled: {:?}", self.cfn.peek(STACK));
    }

    fn annotate(&self, key: &str, value: &str) {
        self.api.edit(PATH, |ns| {
            ns["metadata"]["annotations"][key] = json!(value);
        });
    }
}

#[tokio::test]
async fn create_waits_for_the_stack_then_writes_its_outputs() {
    let s = Scenario::new(LONG);
    let first = s.pass().await.unwrap();
    assert_ne!(first, Action::requeue(LONG), "polled while creating");
    assert!(s.finalized());
    assert_eq!(
        s.annotation(keys::CFN_STACK_STATUS).as_deref(),
        Some("CREATE_IN_PROGRESS")
    );
    assert_eq!(s.pass().await.unwrap(), Action::requeue(LONG));
    assert_eq!(
        s.annotation(keys::CFN_STACK_STATUS).as_deref(),
        Some("CREATE_COMPLETE")
    );
    let outputs = s.api.get(OUTPUTS).expect("the outputs ConfigMap");
    assert!(
        outputs["data"]["QueueUrl"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://sqs/")),
        "{outputs}"
    );
    let reasons = s.reasons();
    for reason in ["StackCreated", "StackReady"] {
        assert!(reasons.iter().any(|r| r == reason), "{reason}: {reasons:?}");
    }
    assert!(
        s.api.reasons("team-a", "team-a").is_empty(),
        "no Event about the Namespace lands in it"
    );
}

#[tokio::test]
async fn a_parameter_change_updates_the_stack_through_a_change_set() {
    let s = Scenario::new(LONG);
    s.settle().await;
    let id = s.cfn.peek(STACK).unwrap().id;
    s.annotate(keys::CFN_PARAMETERS, r#"{"QueueName": "invoices"}"#);
    s.cfn.clear_calls();
    s.settle().await;
    let calls = s.cfn.mutating_calls();
    assert!(
        calls.contains(&"CreateChangeSet") && calls.contains(&"ExecuteChangeSet"),
        "{calls:?}"
    );
    let stack = s.cfn.peek(STACK).unwrap();
    assert_eq!(stack.id, id, "updated, not replaced");
    assert_eq!(
        stack.parameters.get("QueueName").map(String::as_str),
        Some("invoices")
    );
}

#[tokio::test]
async fn drift_is_repaired_at_the_resync() {
    let s = Scenario::new(Duration::ZERO);
    s.settle().await;
    let gone = s.cfn.peek(STACK).unwrap().id;
    // Someone deletes the stack behind hawser's back.
    s.cfn.lock().stacks.clear();
    s.settle().await;
    let stack = s.cfn.peek(STACK).expect("made again");
    assert_ne!(stack.id, gone);
    assert_eq!(s.annotation(keys::CFN_STACK_ID), Some(stack.id));
}

#[tokio::test(start_paused = true)]
async fn resyncs_of_unchanged_stacks_share_one_look_per_scope() {
    let resync = Duration::from_secs(40);
    let s = Scenario::new(resync);
    let paths: Vec<String> = (1..=3)
        .map(|i| s.another(&format!("team-{i}"), &format!("uid-{i}")))
        .chain([PATH.to_owned()])
        .collect();
    for path in &paths {
        for _ in 0..5 {
            if s.pass_at(path).await.unwrap() == Action::requeue(resync) {
                break;
            }
        }
    }
    assert_eq!(s.cfn.lock().stacks.len(), 4);

    tokio::time::advance(resync).await;
    s.cfn.clear_calls();
    for path in &paths {
        assert_eq!(s.pass_at(path).await.unwrap(), Action::requeue(resync));
    }
    assert_eq!(
        s.cfn.calls(),
        ["DescribeStacks"],
        "one look for four stacks"
    );

    // A stack deleted behind hawser's back: the snapshot misses it, the
    // Namespace looks for itself and makes it again.
    s.cfn.lock().stacks.remove(STACK);
    tokio::time::advance(resync).await;
    s.cfn.clear_calls();
    for path in &paths {
        s.pass_at(path).await.unwrap();
    }
    let calls = s.cfn.calls();
    assert_eq!(
        calls.iter().filter(|c| **c == "DescribeStacks").count(),
        3,
        "the snapshot, team-a's own look, and its look after the create: {calls:?}"
    );
    assert_eq!(s.cfn.mutating_calls(), ["CreateStack"]);
}

#[tokio::test(start_paused = true)]
async fn without_describe_stacks_on_every_stack_each_resync_looks_by_name() {
    let resync = Duration::from_secs(40);
    let s = Scenario::new(resync);
    s.settle().await;
    tokio::time::advance(resync).await;
    s.cfn.fail_next(
        "DescribeStacks",
        "AccessDenied",
        "User: arn:aws:sts::123456789012:assumed-role/hawser is not authorized to perform: cloudformation:DescribeStacks",
    );
    s.cfn.clear_calls();
    assert_eq!(s.pass().await.unwrap(), Action::requeue(resync));
    assert_eq!(
        s.cfn.calls(),
        ["DescribeStacks", "DescribeStacks"],
        "the refused snapshot, then the stack by name"
    );
    assert!(s.cfn.mutating_calls().is_empty());
    assert_eq!(
        s.annotation(keys::CFN_STACK_STATUS).as_deref(),
        Some("CREATE_COMPLETE")
    );
}

#[tokio::test]
async fn delete_keeps_the_finalizer_until_the_stack_is_gone() {
    let s = Scenario::new(LONG);
    s.settle().await;
    s.api.delete(PATH);
    let first = s.pass().await.unwrap();
    assert_ne!(first, Action::await_change(), "polled");
    assert!(s.finalized(), "the finalizer waits for CloudFormation");
    assert_eq!(
        s.annotation(keys::CFN_STACK_STATUS).as_deref(),
        Some("DELETE_IN_PROGRESS")
    );
    assert_eq!(s.pass().await.unwrap(), Action::await_change());
    assert!(s.cfn.peek(STACK).is_none());
    assert!(
        s.api.get(PATH).is_none(),
        "the finalizer went, and the Namespace"
    );
    let reasons = s.reasons();
    assert!(
        reasons
            .iter()
            .any(|r| r == "StackDeleting" || r == "StackDeleted"),
        "{reasons:?}"
    );
}

#[tokio::test]
async fn a_stack_that_rolls_back_is_reported_once_then_made_again_at_the_resync() {
    let s = Scenario::new(LONG);
    s.cfn.lock().next_create = Some((
        StackStatus::RollbackComplete,
        vec![failed_event(
            "Queue",
            "AWS::SQS::Queue",
            "CREATE_FAILED",
            "Queue orders already exists",
        )],
    ));
    s.settle().await;
    let last_error = s.annotation(keys::CFN_LAST_ERROR).expect("last-error");
    assert!(
        last_error.contains("Queue orders already exists"),
        "{last_error}"
    );
    let failed = |s: &Scenario| s.reasons().iter().filter(|r| *r == "StackFailed").count();
    assert_eq!(failed(&s), 1);

    // The same inputs again: no CloudFormation call, no second Event.
    s.cfn.clear_calls();
    s.pass().await.unwrap();
    assert!(s.cfn.calls().is_empty(), "{:?}", s.cfn.calls());
    assert_eq!(failed(&s), 1);

    // The resync (the settled inputs forgotten): the dead stack is deleted
    // and made again with the same spec, and this time it holds.
    s.stacks.ctx.base.tracker.forget(UID);
    s.settle().await;
    assert!(s.reasons().iter().any(|r| r == "StackRecreating"));
    assert_eq!(
        s.annotation(keys::CFN_STACK_STATUS).as_deref(),
        Some("CREATE_COMPLETE")
    );
    assert_eq!(s.annotation(keys::CFN_LAST_ERROR), None);
}

#[tokio::test]
async fn a_missing_template_configmap_is_a_failure_named_on_the_object() {
    let s = Scenario::new(LONG);
    s.api.edit(PATH, |ns| {
        let ann = ns["metadata"]["annotations"].as_object_mut().unwrap();
        ann.remove(keys::CFN_TEMPLATE);
        ann.insert(keys::CFN_TEMPLATE_CONFIGMAP.into(), Value::from("queue"));
    });
    assert_eq!(s.pass().await.unwrap(), Action::requeue(LONG));
    let last_error = s.annotation(keys::CFN_LAST_ERROR).expect("last-error");
    assert!(
        last_error.contains("team-a/queue does not exist"),
        "{last_error}"
    );
    assert!(s.cfn.calls().is_empty(), "{:?}", s.cfn.calls());

    // Creating the ConfigMap is a new input: the stack follows.
    s.api.put(
        "/api/v1/namespaces/team-a/configmaps/queue",
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "queue", "namespace": "team-a"},
            "data": {"template": TEMPLATE}}),
    );
    s.settle().await;
    assert_eq!(s.annotation(keys::CFN_LAST_ERROR), None);
    assert!(s.cfn.peek(STACK).is_some());
}

#[tokio::test]
async fn an_unreachable_cloudformation_is_retried_with_backoff() {
    let s = Scenario::new(LONG);
    s.cfn
        .fail_next("DescribeStacks", "ServiceUnavailable", "try again later");
    let e = s.pass().await.unwrap_err();
    assert!(!e.is_terminal(), "{e}");
    assert!(s.reasons().iter().any(|r| r == "ReconcileError"));
    s.settle().await;
    assert!(s.cfn.peek(STACK).is_some());
}

fn recorded_plan(s: &Scenario) -> Vec<(Verb, String)> {
    let value = s.annotation(keys::PLAN).expect("hawser.io/plan");
    let actions: Vec<Planned> = serde_json::from_str(&value).unwrap();
    actions.into_iter().map(|a| (a.action, a.detail)).collect()
}

#[tokio::test]
async fn plan_only_names_the_create_then_the_update_and_writes_nothing() {
    let s = Scenario::new(Duration::ZERO);
    s.annotate(keys::PLAN_ONLY, "true");
    s.pass().await.unwrap();
    assert!(
        s.cfn.mutating_calls().is_empty(),
        "{:?}",
        s.cfn.mutating_calls()
    );
    assert_eq!(
        recorded_plan(&s),
        [(
            Verb::Create,
            format!("{STACK}: add Queue (AWS::SQS::Queue)")
        )]
    );
    assert!(
        s.reasons().iter().any(|r| r == "Planned"),
        "{:?}",
        s.reasons()
    );

    s.annotate(keys::PLAN_ONLY, "false");
    s.settle().await;
    assert_eq!(s.annotation(keys::PLAN), None);
    s.cfn.clear_calls();

    s.annotate(keys::PLAN_ONLY, "true");
    s.annotate(keys::CFN_PARAMETERS, r#"{"QueueName": "jobs"}"#);
    s.pass().await.unwrap();
    assert!(
        s.cfn.mutating_calls().is_empty(),
        "{:?}",
        s.cfn.mutating_calls()
    );
    let plan = recorded_plan(&s);
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].0, Verb::Modify);
}

#[tokio::test]
async fn a_plan_only_deletion_waits_until_the_annotation_goes() {
    let s = Scenario::new(Duration::ZERO);
    s.settle().await;
    s.annotate(keys::PLAN_ONLY, "true");
    s.api.delete(PATH);
    s.cfn.clear_calls();
    s.pass().await.unwrap();
    assert!(
        s.cfn.mutating_calls().is_empty(),
        "{:?}",
        s.cfn.mutating_calls()
    );
    assert!(s.finalized());
    assert_eq!(recorded_plan(&s)[0].0, Verb::Delete);

    s.annotate(keys::PLAN_ONLY, "false");
    s.pass().await.unwrap();
    assert!(s.cfn.mutating_calls().contains(&"DeleteStack"));
}
