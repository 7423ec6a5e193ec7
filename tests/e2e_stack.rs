//! CloudFormation stacks for annotated Namespaces and Deployments, against
//! the real apiserver and moto: one test per "Done when" item of issue 5,
//! plus a foreign stack and a missing template ConfigMap. Each test has its
//! own namespace, cluster name and hawser (`--watch-namespace`), so tests
//! run in parallel. moto cannot roll a stack back; those statuses are
//! proven by the unit tests over the in-memory CloudFormation.

use crate::support;

use std::time::Duration;

use kube::{
    api::{DeleteParams, Patch, PatchParams},
    ResourceExt,
};
use support::stack::*;
use support::*;

fn example(path: &str, bed: &Bed, queue: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .replace("hawser-demo-stack", &bed.ns)
        .replace("hawser-demo-orders", queue)
}

#[tokio::test]
async fn a_namespace_with_an_inline_template_gets_its_stack_and_outputs_configmap() {
    let bed = Bed::start("10m").await;
    let queue = unique("orders");
    let out = kubectl_apply(&example(
        "examples/stack/namespace-stack.yaml",
        &bed,
        &queue,
    ));
    assert!(out.success, "kubectl apply: {}", out.stderr);

    let ns = bed
        .namespace_where("stack-status CREATE_COMPLETE", |a| {
            ann(a, STACK_STATUS) == Some("CREATE_COMPLETE")
        })
        .await;
    let name = bed.stack_name(None);
    let stack = bed.stack(&name).await.expect("the stack in moto");
    assert_eq!(status(&stack), "CREATE_COMPLETE");
    assert_eq!(ann(ns.annotations(), STACK_ID), stack.stack_id());
    assert_eq!(ann(ns.annotations(), LAST_ERROR), None);
    assert!(ns.finalizers().iter().any(|f| f == FINALIZER));
    assert_eq!(tag(&stack, "hawser.io/cluster"), Some(bed.cluster.as_str()));
    let owner = format!("Namespace//{}", bed.ns);
    assert_eq!(tag(&stack, "hawser.io/owner"), Some(owner.as_str()));
    assert_eq!(tag(&stack, "hawser.io/uid"), ns.uid().as_deref());
    assert_eq!(parameter(&stack, "QueueName"), Some(queue.as_str()));

    // Both resources really exist in moto.
    let resources = bed
        .cfn
        .describe_stack_resources()
        .stack_name(&name)
        .send()
        .await
        .unwrap();
    let mut types: Vec<&str> = resources
        .stack_resources()
        .iter()
        .filter_map(|r| r.resource_type())
        .collect();
    types.sort();
    assert_eq!(types, ["AWS::S3::Bucket", "AWS::SQS::Queue"]);

    let cm = bed.configmap("shared-stack-outputs").await;
    let data = cm.data.clone().unwrap_or_default();
    assert!(data["QueueUrl"].ends_with(&format!("/{queue}")), "{data:?}");
    assert!(!data["BucketName"].is_empty(), "{data:?}");
    let owners = cm.owner_references();
    assert_eq!(owners.len(), 1);
    assert_eq!(
        (owners[0].kind.as_str(), Some(owners[0].uid.clone())),
        ("Namespace", ns.uid())
    );
    let note = bed.wait_event("Namespace", &bed.ns, "StackReady").await;
    assert!(note.contains("shared-stack-outputs"), "{note}");
    bed.wait_event("Namespace", &bed.ns, "StackCreated").await;

    // Deleting the namespace deletes the stack, then the namespace goes.
    bed.namespaces()
        .delete(&bed.ns, &DeleteParams::default())
        .await
        .unwrap();
    bed.namespace_gone().await;
    assert!(bed.stack(&name).await.is_none(), "stack deleted");
    assert_eq!(bed.aws_calls("DeleteStack", "success").await, 1.0);
}

#[tokio::test]
async fn a_deployment_with_a_configmap_template_gets_its_stack_and_env_from_its_outputs() {
    let bed = Bed::start_with_hooks("10m").await;
    let text = example("examples/stack/deployment-stack.yaml", &bed, "unused");
    let (template_cm, deployment) = text.split_once("\n---\n").unwrap();
    // The Deployment first: its template ConfigMap is missing.
    let out = kubectl_apply(deployment);
    assert!(out.success, "kubectl apply: {}", out.stderr);
    let d = bed
        .deployment_where("worker", "a missing template reported", |a| {
            ann(a, STACK_STATUS) == Some("Failed")
        })
        .await;
    let error = ann(d.annotations(), LAST_ERROR).unwrap();
    assert!(
        error.contains("worker-template") && error.contains("does not exist"),
        "{error}"
    );
    assert_eq!(bed.aws_calls("CreateStack", "success").await, 0.0);

    // The ConfigMap appearing reconciles its user.
    let out = kubectl_apply(template_cm);
    assert!(out.success, "kubectl apply: {}", out.stderr);
    let d = bed
        .deployment_where("worker", "stack-status CREATE_COMPLETE", |a| {
            ann(a, STACK_STATUS) == Some("CREATE_COMPLETE") && ann(a, LAST_ERROR).is_none()
        })
        .await;
    let name = bed.stack_name(Some("worker"));
    let stack = bed.stack(&name).await.expect("the Deployment's stack");
    let owner = format!("Deployment/{}/worker", bed.ns);
    assert_eq!(tag(&stack, "hawser.io/owner"), Some(owner.as_str()));
    let cm = bed.configmap("worker-stack-outputs").await;
    assert!(
        cm.data.as_ref().unwrap().contains_key("JobsQueueUrl"),
        "{cm:?}"
    );
    assert_eq!(cm.owner_references()[0].uid, d.uid().unwrap());
    // The webhook's envFrom names the ConfigMap the controller wrote.
    let containers = &d.spec.unwrap().template.spec.unwrap().containers;
    let from: Vec<_> = containers[0]
        .env_from
        .iter()
        .flatten()
        .filter_map(|e| e.config_map_ref.as_ref().map(|r| r.name.clone()))
        .collect();
    assert_eq!(from, [cm.name_any()]);

    // An edit of the template ConfigMap updates the stack.
    let edited = template_cm.replace(
        "JobsQueueUrl: {Value: !Ref Jobs}",
        "JobsQueueUrl: {Value: !Ref Jobs}\n      JobsQueueArn: {Value: !GetAtt Jobs.Arn}",
    );
    assert_ne!(edited, template_cm);
    let out = kubectl_apply(&edited);
    assert!(out.success, "kubectl apply: {}", out.stderr);
    // moto does not re-evaluate outputs on an update, so the proof is
    // the stack's status and the change set executed for it.
    bed.deployment_where("worker", "stack-status UPDATE_COMPLETE", |a| {
        ann(a, STACK_STATUS) == Some("UPDATE_COMPLETE")
    })
    .await;
    let body = bed
        .cfn
        .get_template()
        .stack_name(&name)
        .send()
        .await
        .unwrap();
    assert!(
        body.template_body()
            .unwrap_or_default()
            .contains("JobsQueueArn"),
        "the edited template is the stack's"
    );
    assert_eq!(bed.aws_calls("ExecuteChangeSet", "success").await, 1.0);

    // deletion-policy retain: the Deployment goes, the stack stays.
    bed.deployments()
        .delete("worker", &DeleteParams::default())
        .await
        .unwrap();
    bed.deployment_gone("worker").await;
    let note = bed
        .wait_event("Deployment", "worker", "StackRetained")
        .await;
    assert!(note.contains(&name), "{note}");
    let kept = bed.stack(&name).await.expect("retained");
    assert_eq!(status(&kept), "UPDATE_COMPLETE");
    assert_eq!(bed.aws_calls("DeleteStack", "success").await, 0.0);
}

async fn queue_namespace(bed: &Bed, queue: &str) {
    let params = format!(r#"{{"QueueName":"{queue}"}}"#);
    bed.annotate_namespace(&[
        ("cfn.hawser.io/template", QUEUE_TEMPLATE),
        ("cfn.hawser.io/parameters", &params),
    ])
    .await;
    bed.namespace_where("CREATE_COMPLETE", |a| {
        ann(a, STACK_STATUS) == Some("CREATE_COMPLETE")
    })
    .await;
}

/// A Deployment `name` whose stack holds one queue, once CREATE_COMPLETE.
async fn queue_deployment(bed: &Bed, name: &str) -> k8s_openapi::api::apps::v1::Deployment {
    let params = format!(r#"{{"QueueName":"{}"}}"#, unique("q"));
    bed.create_deployment(
        name,
        &[
            ("cfn.hawser.io/template", QUEUE_TEMPLATE),
            ("cfn.hawser.io/parameters", &params),
        ],
    )
    .await;
    bed.deployment_where(name, "CREATE_COMPLETE", |a| {
        ann(a, STACK_STATUS) == Some("CREATE_COMPLETE")
    })
    .await
}

/// Removes the Deployment's template and parameters: hawser deletes the
/// stack and lets go of the Deployment.
async fn remove_template(bed: &Bed, name: &str) {
    let patch = serde_json::json!({"metadata": {"annotations": {
        "cfn.hawser.io/template": null, "cfn.hawser.io/parameters": null}}});
    bed.deployments()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

async fn set_parameters(bed: &Bed, queue: &str) {
    let params = format!(r#"{{"QueueName":"{queue}"}}"#);
    let patch =
        serde_json::json!({"metadata": {"annotations": {"cfn.hawser.io/parameters": params}}});
    bed.namespaces()
        .patch(&bed.ns, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

#[tokio::test]
async fn editing_a_parameter_updates_the_stack_through_a_change_set() {
    let bed = Bed::start("10m").await;
    let (first, second) = (unique("q"), unique("q"));
    queue_namespace(&bed, &first).await;
    let name = bed.stack_name(None);
    let id = bed
        .stack(&name)
        .await
        .unwrap()
        .stack_id()
        .unwrap()
        .to_owned();

    set_parameters(&bed, &second).await;
    bed.namespace_where("UPDATE_COMPLETE", |a| {
        ann(a, STACK_STATUS) == Some("UPDATE_COMPLETE")
    })
    .await;
    let stack = bed.stack(&name).await.unwrap();
    assert_eq!(parameter(&stack, "QueueName"), Some(second.as_str()));
    assert_eq!(stack.stack_id(), Some(id.as_str()), "the same stack");
    // Through a change set: moto keeps executed ones, so ask it too.
    let sets = bed
        .cfn
        .list_change_sets()
        .stack_name(&name)
        .send()
        .await
        .unwrap();
    // moto lists every stack's change sets, whatever StackName says.
    let executed: Vec<_> = sets
        .summaries()
        .iter()
        .filter(|s| s.stack_name() == Some(name.as_str()))
        .filter(|s| s.execution_status().map(|e| e.as_str()) == Some("EXECUTE_COMPLETE"))
        .filter_map(|s| s.change_set_name())
        .collect();
    assert_eq!(executed.len(), 1, "{:?}", sets.summaries());
    assert!(executed[0].starts_with("hawser-"), "{executed:?}");
    assert_eq!(bed.aws_calls("CreateChangeSet", "success").await, 1.0);
    assert_eq!(bed.aws_calls("ExecuteChangeSet", "success").await, 1.0);
    assert_eq!(bed.aws_calls("CreateStack", "success").await, 1.0);
    assert!(
        !bed.hawser()
            .metrics()
            .await
            .contains(r#"operation="UpdateStack""#),
        "never UpdateStack"
    );
    bed.wait_event("Namespace", &bed.ns, "StackUpdating").await;
}

/// A parameter-only edit reaches the outputs ConfigMap: an Output computed
/// from the parameter says the new value once the update completes. (The
/// test bed patches moto, which otherwise kept the Outputs it had built on
/// the first read: see hack/testenv/install-moto.sh.)
#[tokio::test]
async fn a_parameter_only_edit_reaches_the_outputs_configmap() {
    const LABEL_TEMPLATE: &str = "\
Parameters:
  Label: {Type: String, Default: v1}
Resources:
  Queue: {Type: 'AWS::SQS::Queue'}
Outputs:
  Label: {Value: {Ref: Label}}
";
    let bed = Bed::start("10m").await;
    bed.annotate_namespace(&[
        ("cfn.hawser.io/template", LABEL_TEMPLATE),
        ("cfn.hawser.io/outputs-configmap", "labels"),
    ])
    .await;
    let label = |cm: &k8s_openapi::api::core::v1::ConfigMap| {
        cm.data.as_ref().and_then(|d| d.get("Label")).cloned()
    };
    let first = bed.configmap("labels").await;
    assert_eq!(label(&first).as_deref(), Some("v1"));

    bed.annotate_namespace(&[("cfn.hawser.io/parameters", r#"{"Label":"v2"}"#)])
        .await;
    let api = bed.configmaps();
    eventually("the outputs ConfigMap to say v2", WAIT, || {
        let api = api.clone();
        async move {
            let cm = api.get_opt("labels").await.ok()??;
            (label(&cm).as_deref() == Some("v2")).then_some(())
        }
    })
    .await;
    let stack = bed.stack(&bed.stack_name(None)).await.unwrap();
    assert_eq!(parameter(&stack, "Label"), Some("v2"));
    assert_eq!(
        stack.outputs()[0].output_value(),
        Some("v2"),
        "CloudFormation's own answer"
    );
}

#[tokio::test]
async fn reapplying_the_same_manifest_makes_no_mutating_aws_call() {
    let bed = Bed::start("2s").await;
    let queue = unique("q");
    let manifest = serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": bed.ns, "annotations": {
            "cfn.hawser.io/template": QUEUE_TEMPLATE,
            "cfn.hawser.io/parameters": format!(r#"{{"QueueName":"{queue}"}}"#),
        }},
    })
    .to_string();
    assert!(kubectl_apply(&manifest).success);
    bed.namespace_where("CREATE_COMPLETE", |a| {
        ann(a, STACK_STATUS) == Some("CREATE_COMPLETE")
    })
    .await;
    // An update first: the stack is then no longer as it was created.
    set_parameters(&bed, &unique("q")).await;
    bed.namespace_where("UPDATE_COMPLETE", |a| {
        ann(a, STACK_STATUS) == Some("UPDATE_COMPLETE")
    })
    .await;
    let settled = bed.stack_metric("applied").await;
    eventually("the update settled", WAIT, || async {
        (bed.stack_metric("applied").await > settled).then_some(())
    })
    .await;

    let before = bed.mutating_calls().await;
    let before_applied = bed.stack_metric("applied").await;
    let before_reads = bed.aws_calls("DescribeStacks", "success").await;
    let current = bed.namespaces().get(&bed.ns).await.unwrap();
    let params = current.annotations()["cfn.hawser.io/parameters"].clone();
    let same = serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": bed.ns, "annotations": {
            "cfn.hawser.io/template": QUEUE_TEMPLATE,
            "cfn.hawser.io/parameters": params,
        }},
    })
    .to_string();
    let out = kubectl_apply(&same);
    assert!(out.success, "{}", out.stderr);
    // Three applied passes: one may have been under way at the baseline.
    eventually("three resyncs", Duration::from_secs(30), || async {
        (bed.stack_metric("applied").await >= before_applied + 3.0).then_some(())
    })
    .await;
    assert_eq!(bed.mutating_calls().await, before, "no mutating call");
    let reads = bed.aws_calls("DescribeStacks", "success").await - before_reads;
    assert!(reads >= 2.0, "each resync reads the stack: {reads}");
}

/// Restarts hawser and waits for the new process to settle the stack: it
/// must find out from the object's `spec-hash` alone that nothing changed.
async fn restart_changes_nothing(bed: &mut Bed, status_now: &str) {
    bed.restart().await;
    eventually("the new process settles the stack", WAIT, || async {
        (bed.stack_metric("applied").await >= 1.0).then_some(())
    })
    .await;
    assert_eq!(
        bed.mutating_calls().await,
        Vec::<String>::new(),
        "a restart changes nothing"
    );
    let stack = bed.stack(&bed.stack_name(None)).await.unwrap();
    assert_eq!(status(&stack), status_now);
    assert!(
        tag(&stack, "hawser.io/spec-hash").is_none(),
        "no tag follows the spec"
    );
}

#[tokio::test]
async fn a_restarted_hawser_finds_its_stack_settled_and_changes_nothing() {
    let mut bed = Bed::start("10m").await;
    queue_namespace(&bed, &unique("q")).await;
    let created = bed
        .namespace_where("the spec hash recorded", |a| ann(a, SPEC_HASH).is_some())
        .await;
    let created = created.annotations()[SPEC_HASH].clone();
    restart_changes_nothing(&mut bed, "CREATE_COMPLETE").await;

    // And after an update. (moto keeps executed change sets, which would
    // also tell a forgetful hawser; real CloudFormation removes them.)
    set_parameters(&bed, &unique("q")).await;
    bed.namespace_where("the new spec hash recorded", |a| {
        ann(a, STACK_STATUS) == Some("UPDATE_COMPLETE")
            && ann(a, SPEC_HASH).is_some_and(|h| h != created)
    })
    .await;
    restart_changes_nothing(&mut bed, "UPDATE_COMPLETE").await;
}

#[tokio::test]
async fn a_template_that_fails_in_moto_surfaces_the_failure_on_the_object() {
    let bed = Bed::start("10m").await;
    // moto refuses a FIFO queue whose name lacks .fifo at CreateStack.
    let template = "Resources:\n  Q:\n    Type: AWS::SQS::Queue\n    Properties: {QueueName: plain, FifoQueue: true}\n";
    bed.annotate_namespace(&[("cfn.hawser.io/template", template)])
        .await;
    let ns = bed
        .namespace_where("stack-status Failed", |a| {
            ann(a, STACK_STATUS) == Some("Failed")
        })
        .await;
    let error = ann(ns.annotations(), LAST_ERROR).unwrap();
    assert!(error.contains("must end in .fifo"), "{error}");
    let note = bed.wait_event("Namespace", &bed.ns, "StackFailed").await;
    assert!(note.contains("must end in .fifo"), "{note}");
    // The echo of the Failed write comes back; the create is not retried.
    eventually("the echo of the Failed write", WAIT, || async {
        (bed.stack_metric("unchanged").await >= 1.0).then_some(())
    })
    .await;
    assert_eq!(bed.aws_calls("CreateStack", "invalid").await, 1.0);
    let failed = r#"hawser_reconcile_errors_total{category="aws_rejected",controller="stack"}"#;
    assert_eq!(bed.hawser().metric(failed).await, 1.0);
}

#[tokio::test]
async fn deleting_a_deployment_deletes_its_stack() {
    let bed = Bed::start("10m").await;
    bed.annotate_namespace(&[]).await;
    queue_deployment(&bed, "api").await;
    let name = bed.stack_name(Some("api"));
    assert!(bed.stack(&name).await.is_some());
    bed.deployments()
        .delete("api", &DeleteParams::default())
        .await
        .unwrap();
    bed.deployment_gone("api").await;
    assert!(bed.stack(&name).await.is_none(), "stack deleted");
    let reasons: Vec<String> = bed
        .events("Deployment", "api")
        .await
        .into_iter()
        .map(|e| e.1)
        .collect();
    assert!(reasons.contains(&"StackDeleted".into()), "{reasons:?}");
}

#[tokio::test]
async fn a_stack_with_hawsers_name_but_foreign_tags_is_never_touched() {
    let bed = Bed::start("10m").await;
    let name = bed.stack_name(None);
    bed.cfn
        .create_stack()
        .stack_name(&name)
        .template_body("Resources:\n  Q:\n    Type: AWS::SQS::Queue\n")
        .tags(
            aws_sdk_cloudformation::types::Tag::builder()
                .key("hawser.io/cluster")
                .value("someone-else")
                .build(),
        )
        .send()
        .await
        .unwrap();
    bed.annotate_namespace(&[("cfn.hawser.io/template", QUEUE_TEMPLATE)])
        .await;
    let ns = bed
        .namespace_where("stack-status Failed", |a| {
            ann(a, STACK_STATUS) == Some("Failed")
        })
        .await;
    let error = ann(ns.annotations(), LAST_ERROR).unwrap();
    assert!(error.contains("is not this object's"), "{error}");
    assert_eq!(ann(ns.annotations(), STACK_ID), None);
    bed.wait_event("Namespace", &bed.ns, "StackFailed").await;
    assert!(
        bed.mutating_calls().await.is_empty(),
        "nothing changed in AWS"
    );

    // Deleting the namespace leaves the foreign stack in place.
    bed.namespaces()
        .delete(&bed.ns, &DeleteParams::default())
        .await
        .unwrap();
    // (Its ForeignStackLeft Event cannot be recorded: a terminating
    // namespace takes no new Events.)
    bed.namespace_gone().await;
    let stack = bed.stack(&name).await.expect("still there");
    assert_eq!(tag(&stack, "hawser.io/cluster"), Some("someone-else"));
    assert!(bed.mutating_calls().await.is_empty());
}

#[tokio::test]
async fn removing_the_template_deletes_the_stack_and_lets_go_of_the_deployment() {
    let bed = Bed::start("10m").await;
    bed.annotate_namespace(&[]).await;
    queue_deployment(&bed, "api").await;
    bed.configmap("api-stack-outputs").await;
    remove_template(&bed, "api").await;
    let d = bed
        .deployment_where("api", "outputs and finalizer removed", |a| {
            ann(a, STACK_STATUS).is_none() && ann(a, STACK_ID).is_none()
        })
        .await;
    assert!(!d.finalizers().iter().any(|f| f == FINALIZER), "{d:?}");
    assert!(bed.stack(&bed.stack_name(Some("api"))).await.is_none());
    assert!(
        bed.configmaps()
            .get_opt("api-stack-outputs")
            .await
            .unwrap()
            .is_none(),
        "outputs ConfigMap deleted"
    );
}

#[tokio::test]
async fn the_namespace_region_cannot_change_under_a_deployments_stack() {
    let bed = Bed::start_with_hooks("10m").await;
    let d = queue_deployment(&bed, "api").await;
    let stack_id = ann(d.annotations(), STACK_ID).unwrap().to_owned();

    // The stack lives in hawser's default region: moving the namespace
    // would leave it behind, so the apiserver refuses, naming it.
    let region = "aws.hawser.io/region=eu-west-1";
    let out = kubectl(&["annotate", "namespace", &bed.ns, region], "");
    assert!(!out.success, "the region change was admitted");
    let expected = format!(
        "annotation aws.hawser.io/region: invalid value \"eu-west-1\": 1 object(s) in this namespace hold AWS resources made with region unset (the controller's default), which would be left behind, running unseen: Deployment/api (stack {stack_id})"
    );
    assert!(out.stderr.contains(&expected), "{}", out.stderr);
    let ns = bed.namespaces().get(&bed.ns).await.unwrap();
    assert_eq!(ann(ns.annotations(), "aws.hawser.io/region"), None);

    // Once the stack is gone (template removed), the namespace may move.
    remove_template(&bed, "api").await;
    bed.deployment_where("api", "stack released", |a| ann(a, STACK_ID).is_none())
        .await;
    let out = kubectl(&["annotate", "namespace", &bed.ns, region], "");
    assert!(out.success, "{}", out.stderr);
}

#[tokio::test]
async fn default_tags_are_on_the_stack_beside_hawsers_own() {
    let bed = Bed::start_with("10m", &["--default-tags", "team=platform,cost-center=42"]).await;
    queue_namespace(&bed, &unique("q")).await;
    let stack = bed.stack(&bed.stack_name(None)).await.unwrap();
    let uid = bed.namespaces().get(&bed.ns).await.unwrap().uid().unwrap();
    let owner = format!("Namespace//{}", bed.ns);
    for (key, value) in [
        ("team", "platform"),
        ("cost-center", "42"),
        ("hawser.io/cluster", bed.cluster.as_str()),
        ("hawser.io/owner", owner.as_str()),
        ("hawser.io/uid", uid.as_str()),
    ] {
        assert_eq!(tag(&stack, key), Some(value), "stack tag {key}");
    }
}
