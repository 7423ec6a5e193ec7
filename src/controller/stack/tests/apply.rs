//! apply() against the in-memory CloudFormation: one step per pass, as
//! the controller drives it.

use super::*;
use crate::aws::fake_cfn::{failed_event, FakeCfn};
use crate::aws::AwsErrorKind;
use crate::controller::stack::apply::{apply, first_failure, Applied, Verdict};
use crate::controller::stack::effects::Effect;
use crate::controller::stack::error::Failure;
use crate::controller::stack::machine::Memo;

/// Passes until the verdict is not Pending (at most 10).
pub(super) async fn settle(cfn: &FakeCfn, w: &Desired, memo: &mut Memo) -> (Applied, Vec<Effect>) {
    let mut effects = Vec::new();
    for _ in 0..10 {
        let a = apply(cfn, w, memo).await.unwrap();
        effects.extend(a.effects.clone());
        if a.verdict != Verdict::Pending {
            return (a, effects);
        }
    }
    panic!("still pending after 10 passes");
}

pub(super) async fn ready(cfn: &FakeCfn, w: &Desired, memo: &mut Memo) -> Applied {
    let (a, _) = settle(cfn, w, memo).await;
    assert_eq!(a.verdict, Verdict::Ready, "{a:?}");
    a
}

pub(super) fn stack_failure(a: &Applied) -> (String, bool) {
    match &a.verdict {
        Verdict::Failed {
            failure: Failure::Stack(m),
            keep_outputs,
        } => (m.clone(), *keep_outputs),
        other => panic!("not a stack failure: {other:?}"),
    }
}

#[tokio::test]
async fn default_tags_go_into_the_create_and_each_update_under_hawsers_own() {
    let cfn = FakeCfn::default();
    let defaults = Tags::from([
        ("team".into(), "platform".into()),
        // Refused on the command line; hawser's own value wins anyway.
        (keys::TAG_UID.into(), "not-the-uid".into()),
    ]);
    let tagged = |params: &str| desired(&spec(params), TEMPLATE, &owner(), CLUSTER, &defaults);
    let w = tagged(r#"{"QueueName":"a"}"#);
    let mut expected = w.ownership.clone();
    expected.insert("team".into(), "platform".into());
    assert_eq!(w.request.tags, expected);
    let mut memo = Memo::default();
    ready(&cfn, &w, &mut memo).await;
    assert_eq!(cfn.peek(&w.request.stack_name).unwrap().tags, expected);

    let edited = tagged(r#"{"QueueName":"b"}"#);
    cfn.clear_calls();
    ready(&cfn, &edited, &mut memo).await;
    assert_eq!(
        cfn.mutating_calls(),
        ["CreateChangeSet", "ExecuteChangeSet"]
    );
    assert_eq!(cfn.peek(&w.request.stack_name).unwrap().tags, expected);
}

#[tokio::test]
async fn create_polls_until_complete_then_costs_one_describe_per_pass() {
    let cfn = FakeCfn::default();
    let w = want(r#"{"QueueName":"a"}"#);
    let mut memo = Memo::default();
    let first = apply(&cfn, &w, &mut memo).await.unwrap();
    assert_eq!(first.verdict, Verdict::Pending);
    assert!(matches!(&first.effects[..], [Effect::StackCreated { .. }]));
    assert_eq!(
        first.stack.as_ref().unwrap().status,
        StackStatus::CreateInProgress
    );
    let a = ready(&cfn, &w, &mut memo).await;
    assert_eq!(a.stack.as_ref().unwrap().outputs.len(), 1);
    let stack = cfn.peek(&w.request.stack_name).unwrap();
    assert_eq!(
        stack.tags, w.ownership,
        "the ownership tags, and nothing that changes with the spec"
    );
    assert_eq!(cfn.mutating_calls(), ["CreateStack"]);

    cfn.clear_calls();
    for _ in 0..3 {
        assert_eq!(
            apply(&cfn, &w, &mut memo).await.unwrap().verdict,
            Verdict::Ready
        );
    }
    assert_eq!(
        cfn.calls(),
        ["DescribeStacks"; 3],
        "steady state: one read per pass"
    );
}

#[tokio::test]
async fn a_parameter_edit_goes_through_a_change_set_and_then_settles() {
    let cfn = FakeCfn::default();
    let mut memo = Memo::default();
    ready(&cfn, &want(r#"{"QueueName":"a"}"#), &mut memo).await;
    cfn.clear_calls();

    let edited = want(r#"{"QueueName":"b"}"#);
    let (a, effects) = settle(&cfn, &edited, &mut memo).await;
    assert_eq!(a.verdict, Verdict::Ready);
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::StackUpdating { .. })),
        "{effects:?}"
    );
    assert_eq!(
        cfn.mutating_calls(),
        ["CreateChangeSet", "ExecuteChangeSet"],
        "no UpdateStack"
    );
    let stack = cfn.peek(&edited.request.stack_name).unwrap();
    assert_eq!(stack.parameters["QueueName"], "b");

    cfn.clear_calls();
    for _ in 0..3 {
        apply(&cfn, &edited, &mut memo).await.unwrap();
    }
    assert!(cfn.mutating_calls().is_empty(), "{:?}", cfn.calls());
}

#[tokio::test]
async fn an_empty_change_set_is_success_and_deleted_and_not_made_again() {
    let cfn = FakeCfn::default();
    let mut memo = Memo::default();
    ready(&cfn, &want("{}"), &mut memo).await;
    cfn.clear_calls();
    // A new spec hash (a capability) with the same template and parameters.
    let mut same = want("{}");
    same.spec_hash = "f".repeat(32);
    same.change_set_name = format!("hawser-{}", same.spec_hash);
    let a = apply(&cfn, &same, &mut memo).await.unwrap();
    assert_eq!(a.verdict, Verdict::Ready);
    assert!(matches!(&a.effects[..], [Effect::StackUnchanged { .. }]));
    assert_eq!(cfn.mutating_calls(), ["CreateChangeSet", "DeleteChangeSet"]);
    assert!(cfn.lock().change_sets.is_empty(), "deleted");
    cfn.clear_calls();
    apply(&cfn, &same, &mut memo).await.unwrap();
    assert!(cfn.mutating_calls().is_empty(), "{:?}", cfn.calls());
}

#[tokio::test]
async fn motos_no_updates_error_at_create_is_success_too() {
    let cfn = FakeCfn::default();
    let mut memo = Memo::default();
    ready(&cfn, &want("{}"), &mut memo).await;
    cfn.fail_next(
        "CreateChangeSet",
        "ValidationError",
        "No updates are to be performed.",
    );
    let mut same = want("{}");
    same.spec_hash = "e".repeat(32);
    cfn.clear_calls();
    let a = apply(&cfn, &same, &mut memo).await.unwrap();
    assert_eq!(a.verdict, Verdict::Ready);
    assert_eq!(
        cfn.mutating_calls(),
        ["CreateChangeSet"],
        "nothing to delete"
    );
}

#[tokio::test]
async fn in_progress_is_waited_on_with_reads_only() {
    let cfn = FakeCfn::default();
    let w = want("{}");
    for status in [
        StackStatus::CreateInProgress,
        StackStatus::UpdateRollbackInProgress,
        StackStatus::DeleteInProgress,
        StackStatus::ImportInProgress,
    ] {
        cfn.insert(stack_for(&w, status.clone()));
        cfn.clear_calls();
        let a = apply(&cfn, &w, &mut Memo::default()).await.unwrap();
        assert_eq!(a.verdict, Verdict::Pending, "{}", status.as_str());
        assert_eq!(cfn.calls(), ["DescribeStacks"], "{}", status.as_str());
    }
}

#[tokio::test]
async fn a_foreign_stack_is_reported_and_never_touched() {
    let cfn = FakeCfn::default();
    let w = want("{}");
    let mut s = stack_for(&w, StackStatus::CreateComplete);
    s.tags
        .insert(keys::TAG_OWNER.into(), "Namespace//other".into());
    cfn.insert(s);
    let a = apply(&cfn, &w, &mut Memo::default()).await.unwrap();
    let Verdict::Failed {
        failure: Failure::Foreign(msg),
        ..
    } = &a.verdict
    else {
        panic!("{a:?}")
    };
    assert!(
        msg.contains("Namespace//other") && msg.contains("Namespace//team-a"),
        "{msg}"
    );
    assert_eq!(a.stack, None, "not recorded as ours");
    assert!(cfn.mutating_calls().is_empty());
}

#[tokio::test]
async fn a_refused_create_or_change_set_fails_in_cloudformations_words() {
    let cfn = FakeCfn::default();
    cfn.fail_next(
        "CreateStack",
        "InsufficientCapabilitiesException",
        "Requires capabilities : [CAPABILITY_IAM]",
    );
    let w = want("{}");
    let mut memo = Memo::default();
    let a = apply(&cfn, &w, &mut memo).await.unwrap();
    let Verdict::Failed {
        failure: Failure::Rejected(e),
        ..
    } = &a.verdict
    else {
        panic!("{a:?}")
    };
    assert_eq!(e.kind, AwsErrorKind::Invalid);
    assert!(Failure::Rejected(e.clone())
        .message()
        .contains("CAPABILITY_IAM"));

    ready(&cfn, &w, &mut memo).await;
    cfn.fail_next(
        "CreateChangeSet",
        "ValidationError",
        "Template format error: bad",
    );
    cfn.clear_calls();
    let edited = want(r#"{"QueueName":"x"}"#);
    let a = apply(&cfn, &edited, &mut memo).await.unwrap();
    assert!(matches!(
        &a.verdict,
        Verdict::Failed {
            failure: Failure::Rejected(_),
            keep_outputs: true
        }
    ));
    apply(&cfn, &edited, &mut memo).await.unwrap();
    assert_eq!(cfn.mutating_calls(), ["CreateChangeSet"], "not retried");
}

#[tokio::test]
async fn a_failed_change_set_is_deleted_and_reported() {
    let cfn = FakeCfn::default();
    let mut memo = Memo::default();
    ready(&cfn, &want("{}"), &mut memo).await;
    let edited = want(r#"{"QueueName":"x"}"#);
    let failed = crate::aws::ChangeSet {
        id: "cs-1".into(),
        status: crate::aws::ChangeSetStatus::Failed,
        status_reason: Some("Parameter QueueName failed to satisfy constraint".into()),
        execution_status: Some("UNAVAILABLE".into()),
        changes: 0,
        resource_changes: vec![],
    };
    let key = (
        edited.request.stack_name.clone(),
        edited.change_set_name.clone(),
    );
    cfn.lock()
        .change_sets
        .insert(key, (failed, edited.request.clone()));
    cfn.clear_calls();
    let a = apply(&cfn, &edited, &mut memo).await.unwrap();
    let (why, keep) = stack_failure(&a);
    assert!(keep);
    assert!(why.contains("failed to satisfy constraint"), "{why}");
    assert_eq!(cfn.mutating_calls(), ["DeleteChangeSet"]);
    assert!(cfn.lock().change_sets.is_empty());
    cfn.clear_calls();
    apply(&cfn, &edited, &mut memo).await.unwrap();
    assert!(
        cfn.mutating_calls().is_empty(),
        "not retried until the spec changes"
    );
}

#[tokio::test]
async fn review_in_progress_holds_nothing_and_is_replaced() {
    let cfn = FakeCfn::default();
    let w = want("{}");
    cfn.insert(stack_for(&w, StackStatus::ReviewInProgress));
    let (a, effects) = settle(&cfn, &w, &mut Memo::default()).await;
    assert_eq!(a.verdict, Verdict::Ready);
    assert!(effects
        .iter()
        .any(|e| matches!(e, Effect::StackRecreating { .. })));
    assert_eq!(cfn.mutating_calls(), ["DeleteStack", "CreateStack"]);
}

#[test]
fn the_first_failure_of_the_latest_operation_is_the_reason() {
    use crate::aws::StackEvent;
    let ev = |id: &str, ty: &str, status: &str, reason: &str| StackEvent {
        logical_id: id.into(),
        resource_type: ty.into(),
        status: status.into(),
        reason: (!reason.is_empty()).then(|| reason.to_owned()),
    };
    let stack_type = "AWS::CloudFormation::Stack";
    // Newest first.
    let events = vec![
        ev("s", stack_type, "UPDATE_ROLLBACK_COMPLETE", ""),
        ev(
            "Topic",
            "AWS::SNS::Topic",
            "UPDATE_FAILED",
            "Resource update cancelled",
        ),
        ev("Queue", "AWS::SQS::Queue", "UPDATE_FAILED", "second"),
        ev("Bucket", "AWS::S3::Bucket", "UPDATE_FAILED", "first"),
        ev("s", stack_type, "UPDATE_IN_PROGRESS", "User Initiated"),
        ev(
            "Old",
            "AWS::SQS::Queue",
            "CREATE_FAILED",
            "an older operation",
        ),
        ev("s", stack_type, "CREATE_IN_PROGRESS", "User Initiated"),
    ];
    assert_eq!(
        first_failure(&events).as_deref(),
        Some("Bucket (AWS::S3::Bucket) UPDATE_FAILED: first")
    );
    assert_eq!(
        first_failure(&events[..1]),
        None,
        "moto: stack-level events only"
    );
}

#[tokio::test]
async fn the_recorded_spec_is_enough_after_a_restart() {
    // A new process (or leader) starts from the object's spec-hash
    // annotation alone: a matching stack costs no mutating call, and a
    // failed create is not created again for the same spec.
    let cfn = FakeCfn::default();
    let w = want(r#"{"QueueName":"a"}"#);
    let mut memo = Memo::default();
    ready(&cfn, &w, &mut memo).await;
    cfn.clear_calls();
    let mut restarted = Memo {
        applied: memo.applied.clone(),
        ..Memo::default()
    };
    assert_eq!(restarted.applied.as_deref(), Some(w.spec_hash.as_str()));
    let a = apply(&cfn, &w, &mut restarted).await.unwrap();
    assert_eq!(a.verdict, Verdict::Ready);
    assert!(cfn.mutating_calls().is_empty(), "{:?}", cfn.calls());

    let cfn = FakeCfn::default();
    super::failures::next_create_rolls_back(&cfn, "denied");
    let mut memo = Memo::default();
    let (a, _) = settle(&cfn, &w, &mut memo).await;
    assert!(matches!(a.verdict, Verdict::Failed { .. }), "{a:?}");
    cfn.clear_calls();
    let mut restarted = Memo {
        applied: memo.applied.clone(),
        ..Memo::default()
    };
    let a = apply(&cfn, &w, &mut restarted).await.unwrap();
    assert!(matches!(a.verdict, Verdict::Failed { .. }), "{a:?}");
    assert!(cfn.mutating_calls().is_empty(), "{:?}", cfn.calls());
}

#[tokio::test]
async fn a_template_reverted_while_its_update_runs_is_applied_again() {
    let cfn = FakeCfn::default();
    let params = r#"{"QueueName":"a"}"#;
    let old = want(params);
    let edited_text = TEMPLATE.replace("QueueUrl", "Url");
    let edited = desired(&spec(params), &edited_text, &owner(), CLUSTER, &Tags::new());
    let mut memo = Memo::default();
    ready(&cfn, &old, &mut memo).await;
    // Passes for the edit until its change set is executed.
    for _ in 0..5 {
        apply(&cfn, &edited, &mut memo).await.unwrap();
        if cfn.calls().contains(&"ExecuteChangeSet") {
            break;
        }
    }
    assert!(
        cfn.calls().contains(&"ExecuteChangeSet"),
        "{:?}",
        cfn.calls()
    );
    // Reverted while the update runs: the stack ends on the edit, which
    // is not what the object asks for any more.
    ready(&cfn, &old, &mut memo).await;
    let name = &old.request.stack_name;
    assert_eq!(
        cfn.lock().stacks[name].template,
        TEMPLATE,
        "reverted in AWS"
    );
    assert_eq!(memo.applied.as_deref(), Some(old.spec_hash.as_str()));
}

#[tokio::test]
async fn a_dead_stack_that_fails_to_delete_is_reported_not_deleted_on_every_poll() {
    let cfn = FakeCfn::default();
    let old = want(r#"{"QueueName":"a"}"#);
    let mut dead = stack_for(&old, StackStatus::RollbackComplete);
    dead.tags = old.ownership.clone();
    cfn.insert(dead);
    let mut memo = outdated();
    let fixed = want(r#"{"QueueName":"b"}"#);
    let fail_delete = || {
        cfn.lock().next_delete = Some((
            StackStatus::DeleteFailed,
            vec![failed_event(
                "Bucket",
                "AWS::S3::Bucket",
                "DELETE_FAILED",
                "not empty",
            )],
        ))
    };
    fail_delete();
    let first = apply(&cfn, &fixed, &mut memo).await.unwrap();
    assert_eq!(first.verdict, Verdict::Pending);
    assert!(matches!(
        &first.effects[..],
        [Effect::StackRecreating { .. }]
    ));
    // The next passes see DELETE_FAILED: reported with the resource's
    // reason; each asks for the deletion once more, and only the resync
    // (the controller settles on a failure) brings the next pass.
    let mut failures = 0;
    for _ in 0..4 {
        fail_delete();
        let a = apply(&cfn, &fixed, &mut memo).await.unwrap();
        if a.verdict == Verdict::Pending {
            continue;
        }
        let (why, keep) = stack_failure(&a);
        assert!(!keep);
        assert!(
            why.contains("DELETE_FAILED") && why.contains("not empty"),
            "{why}"
        );
        assert!(
            a.effects.is_empty(),
            "no StackRecreating again: {:?}",
            a.effects
        );
        failures += 1;
        break;
    }
    assert_eq!(failures, 1, "{:?}", cfn.calls());
    assert_eq!(cfn.mutating_calls(), ["DeleteStack", "DeleteStack"]);
    // Once it is gone, the stack is created for the fixed spec.
    cfn.set_status(&fixed.request.stack_name, StackStatus::DeleteComplete);
    ready(&cfn, &fixed, &mut memo).await;
}
