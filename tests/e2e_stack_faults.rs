//! Stack failures moto cannot produce, made by the fault proxy in front of
//! it (`support::fault_proxy`): a create that rolls back, an update that
//! rolls back, and AWS answering 500. Each test has its own namespace,
//! cluster name, hawser and proxy.

use crate::support;

use support::fault_proxy::FaultProxy;
use support::stack::*;
use support::*;

const QUEUE: (&str, &str) = ("Queue", "AWS::SQS::Queue");

/// A stack whose create fails is reported with the failing resource's
/// reason; once the cause has passed, the resync deletes the dead stack
/// and creates it again with the same spec.
#[tokio::test]
async fn a_failed_create_is_reported_then_made_again_once_the_cause_has_passed() {
    let proxy = FaultProxy::start(&moto::endpoint_url()).await;
    let bed = Bed::start_with("3s", &["--aws-endpoint-url", &proxy.url]).await;
    let name = bed.stack_name(None);
    let reason = "Resource limit exceeded: the account holds 1000 queues";
    proxy.fail_stack_create(&name, QUEUE, reason);
    let queue = unique("q");
    let parameters = format!(r#"{{"QueueName":"{queue}"}}"#);
    bed.annotate_namespace(&[
        ("cfn.hawser.io/template", QUEUE_TEMPLATE),
        ("cfn.hawser.io/parameters", &parameters),
    ])
    .await;

    let failed = bed
        .namespace_where("last-error naming the queue's reason", |a| {
            ann(a, LAST_ERROR).is_some_and(|e| e.contains(reason))
        })
        .await;
    let annotations = kube::ResourceExt::annotations(&failed);
    assert_eq!(ann(annotations, STACK_STATUS), Some("ROLLBACK_COMPLETE"));
    let error = ann(annotations, LAST_ERROR).unwrap();
    assert!(
        error.contains("Queue (AWS::SQS::Queue) CREATE_FAILED"),
        "{error}"
    );
    let note = bed.wait_event("Namespace", &bed.ns, "StackFailed").await;
    assert!(note.contains(reason), "{note}");

    proxy.heal_stack(&name);
    bed.namespace_where("CREATE_COMPLETE with no last-error", |a| {
        ann(a, STACK_STATUS) == Some("CREATE_COMPLETE") && ann(a, LAST_ERROR).is_none()
    })
    .await;
    bed.wait_event("Namespace", &bed.ns, "StackRecreating")
        .await;
    assert!(proxy.seen("DeleteStack") >= 1, "the dead stack was deleted");
    let creates = proxy.requests("CreateStack");
    assert!(creates.len() >= 2, "made again: {}", creates.len());
    assert!(
        creates.iter().all(|c| c.values().any(|v| v == &queue)),
        "every create with the same spec"
    );
    let stack = bed.stack(&name).await.expect("the stack in moto");
    assert_eq!(status(&stack), "CREATE_COMPLETE");
    assert_eq!(parameter(&stack, "QueueName"), Some(queue.as_str()));
}

/// An update that rolls back is reported with the failing resource's
/// reason; the stack keeps serving its previous outputs, and the same
/// spec is not tried again.
#[tokio::test]
async fn an_update_rollback_is_reported_and_the_previous_outputs_stay() {
    let proxy = FaultProxy::start(&moto::endpoint_url()).await;
    let bed = Bed::start_with("10m", &["--aws-endpoint-url", &proxy.url]).await;
    let name = bed.stack_name(None);
    let first = unique("q");
    bed.annotate_namespace(&[
        ("cfn.hawser.io/template", QUEUE_TEMPLATE),
        (
            "cfn.hawser.io/parameters",
            &format!(r#"{{"QueueName":"{first}"}}"#),
        ),
        ("cfn.hawser.io/outputs-configmap", "queue"),
    ])
    .await;
    let url = |cm: &k8s_openapi::api::core::v1::ConfigMap| {
        cm.data.as_ref().and_then(|d| d.get("QueueUrl")).cloned()
    };
    let before = url(&bed.configmap("queue").await).expect("QueueUrl");
    assert!(before.contains(&first), "{before}");

    let reason = "Update of resource type AWS::SQS::Queue is not permitted: QueueName";
    proxy.fail_stack_update(&name, QUEUE, reason);
    let second = unique("q");
    bed.annotate_namespace(&[(
        "cfn.hawser.io/parameters",
        &format!(r#"{{"QueueName":"{second}"}}"#),
    )])
    .await;
    let failed = bed
        .namespace_where("UPDATE_ROLLBACK_COMPLETE with the reason", |a| {
            ann(a, STACK_STATUS) == Some("UPDATE_ROLLBACK_COMPLETE")
                && ann(a, LAST_ERROR).is_some_and(|e| e.contains(reason))
        })
        .await;
    let error = ann(kube::ResourceExt::annotations(&failed), LAST_ERROR).unwrap();
    assert!(
        error.contains("Queue (AWS::SQS::Queue) UPDATE_FAILED"),
        "{error}"
    );
    let note = bed.wait_event("Namespace", &bed.ns, "StackFailed").await;
    assert!(note.contains(reason), "{note}");
    assert_eq!(
        url(&bed.configmap("queue").await).as_deref(),
        Some(before.as_str()),
        "the previous outputs stay"
    );
    let executed = proxy.seen("ExecuteChangeSet");
    assert_eq!(executed, 1, "the update ran once");
}

/// AWS failing with 500 more times than one call's attempts: the SDK
/// retries, hawser backs off and tries again, and one stack is made.
#[tokio::test]
async fn aws_500s_are_retried_until_the_stack_is_made_once() {
    let proxy = FaultProxy::start(&moto::endpoint_url()).await;
    proxy.fail_500("CreateStack", 7);
    let bed = Bed::start_with(
        "10m",
        &[
            "--aws-endpoint-url",
            &proxy.url,
            "--aws-retry-mode=standard",
            "--aws-max-attempts=5",
        ],
    )
    .await;
    bed.annotate_namespace(&[
        ("cfn.hawser.io/template", QUEUE_TEMPLATE),
        (
            "cfn.hawser.io/parameters",
            &format!(r#"{{"QueueName":"{}"}}"#, unique("q")),
        ),
    ])
    .await;
    bed.namespace_where("CREATE_COMPLETE", |a| {
        ann(a, STACK_STATUS) == Some("CREATE_COMPLETE")
    })
    .await;
    assert_eq!(proxy.throttled("CreateStack"), 7, "every 500 was given");
    assert_eq!(proxy.seen("CreateStack"), 8, "then one create went through");
    let stack = bed.stack(&bed.stack_name(None)).await.expect("the stack");
    assert_eq!(status(&stack), "CREATE_COMPLETE");
    let series = r#"hawser_reconcile_errors_total{category="aws_unavailable",controller="stack"}"#;
    let errors = bed.hawser().metric(series).await;
    assert!(errors >= 1.0, "hawser's own retry was counted: {errors}");
}
