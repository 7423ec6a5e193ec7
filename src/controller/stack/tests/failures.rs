//! apply() on stacks that fail: a create that rolls back (reported, made
//! again on a new spec or at the next look), an update that rolls back
//! (reported, not retried).

use super::apply::{ready, settle, stack_failure};
use super::*;
use crate::aws::fake_cfn::{failed_event, FakeCfn};
use crate::controller::stack::apply::{apply, Verdict};
use crate::controller::stack::effects::Effect;
use crate::controller::stack::machine::Memo;

/// The next create ends ROLLBACK_COMPLETE, the queue failing for `reason`.
pub(super) fn next_create_rolls_back(cfn: &FakeCfn, reason: &str) {
    cfn.lock().next_create = Some((
        StackStatus::RollbackComplete,
        vec![failed_event(
            "Queue",
            "AWS::SQS::Queue",
            "CREATE_FAILED",
            reason,
        )],
    ));
}

/// Passes until settled: the dead stack is deleted and made again
/// (`StackRecreating`), and holds.
async fn recreated(cfn: &FakeCfn, spec: &Desired, memo: &mut Memo) {
    cfn.clear_calls();
    let (a, effects) = settle(cfn, spec, memo).await;
    assert_eq!(a.verdict, Verdict::Ready);
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::StackRecreating { .. })),
        "{effects:?}"
    );
    assert_eq!(cfn.mutating_calls(), ["DeleteStack", "CreateStack"]);
}

#[tokio::test]
async fn a_failed_create_is_reported_with_the_resources_reason_then_recreated_on_a_new_spec() {
    let cfn = FakeCfn::default();
    cfn.lock().next_create = Some((
        StackStatus::RollbackComplete,
        vec![
            failed_event(
                "Queue",
                "AWS::SQS::Queue",
                "CREATE_FAILED",
                "Queue name must end in .fifo",
            ),
            failed_event(
                "Bucket",
                "AWS::S3::Bucket",
                "CREATE_FAILED",
                "Resource creation cancelled",
            ),
        ],
    ));
    let bad = want(r#"{"QueueName":"a"}"#);
    let mut memo = Memo::default();
    let (a, _) = settle(&cfn, &bad, &mut memo).await;
    let (why, keep) = stack_failure(&a);
    assert!(!keep, "a failed create serves nothing");
    assert!(
        why.contains("ROLLBACK_COMPLETE")
            && why.contains("Queue (AWS::SQS::Queue) CREATE_FAILED: Queue name must end in .fifo"),
        "{why}"
    );

    recreated(&cfn, &want(r#"{"QueueName":"b"}"#), &mut memo).await;
}

/// The pass after a reported failed create (at the resync: the failure
/// settles the object until then) deletes the dead stack and creates it
/// again with the same spec, so a passing cause heals by itself.
#[tokio::test]
async fn a_failed_create_is_made_again_with_the_same_spec_at_the_next_look() {
    let cfn = FakeCfn::default();
    next_create_rolls_back(&cfn, "Rate exceeded");
    let spec = want(r#"{"QueueName":"a"}"#);
    let mut memo = Memo::default();
    let (a, _) = settle(&cfn, &spec, &mut memo).await;
    assert!(stack_failure(&a).0.contains("Rate exceeded"));

    // The cause has passed (the fake's next create succeeds).
    recreated(&cfn, &spec, &mut memo).await;

    // After a restart (no memo, the spec hash read back from the object),
    // the first look reports and the next one makes it again.
    let cfn = FakeCfn::default();
    next_create_rolls_back(&cfn, "Rate exceeded");
    let other = want(r#"{"QueueName":"c"}"#);
    let mut memo = Memo::default();
    settle(&cfn, &other, &mut memo).await;
    let mut restarted = Memo {
        applied: memo.applied.clone(),
        ..Memo::default()
    };
    let first = apply(&cfn, &other, &mut restarted).await.unwrap();
    assert!(matches!(first.verdict, Verdict::Failed { .. }), "{first:?}");
    cfn.clear_calls();
    let (a, _) = settle(&cfn, &other, &mut restarted).await;
    assert_eq!(a.verdict, Verdict::Ready);
    assert_eq!(cfn.mutating_calls(), ["DeleteStack", "CreateStack"]);
}

#[tokio::test]
async fn a_rolled_back_update_keeps_the_previous_stack_and_is_not_retried() {
    let cfn = FakeCfn::default();
    let mut memo = Memo::default();
    ready(&cfn, &want(r#"{"QueueName":"a"}"#), &mut memo).await;
    cfn.lock().next_update = Some((
        StackStatus::UpdateRollbackComplete,
        vec![failed_event(
            "Queue",
            "AWS::SQS::Queue",
            "UPDATE_FAILED",
            "Access denied",
        )],
    ));
    let edited = want(r#"{"QueueName":"b"}"#);
    let (a, _) = settle(&cfn, &edited, &mut memo).await;
    let (why, keep) = stack_failure(&a);
    assert!(keep, "the stack still serves the previous outputs");
    assert!(
        why.contains("UPDATE_ROLLBACK_COMPLETE") && why.contains("Access denied"),
        "{why}"
    );
    assert_eq!(
        cfn.peek(&edited.request.stack_name).unwrap().parameters["QueueName"],
        "a"
    );

    cfn.clear_calls();
    for _ in 0..3 {
        let a = apply(&cfn, &edited, &mut memo).await.unwrap();
        assert!(matches!(a.verdict, Verdict::Failed { .. }));
    }
    assert!(cfn.mutating_calls().is_empty(), "{:?}", cfn.calls());

    let again = want(r#"{"QueueName":"c"}"#);
    ready(&cfn, &again, &mut memo).await;
    assert_eq!(
        cfn.mutating_calls(),
        ["CreateChangeSet", "ExecuteChangeSet"]
    );
}
