//! cleanup() against the in-memory CloudFormation.

use super::*;
use crate::annotations::DeletionPolicy;
use crate::aws::fake_cfn::{failed_event, FakeCfn};
use crate::controller::stack::cleanup::{cleanup, Cleanup};
use crate::controller::stack::effects::Effect;

async fn run(cfn: &FakeCfn, w: &Desired, policy: DeletionPolicy) -> Cleanup {
    cleanup(cfn, &w.request.stack_name, &w.ownership, policy)
        .await
        .unwrap()
}

#[tokio::test]
async fn delete_waits_for_the_stack_to_be_gone() {
    let cfn = FakeCfn::default();
    let w = want("{}");
    cfn.insert(stack_for(&w, StackStatus::CreateComplete));
    // The fake deletes asynchronously: DELETE_IN_PROGRESS, then gone.
    cfn.lock().next_delete = Some((StackStatus::DeleteInProgress, vec![]));
    let first = run(&cfn, &w, DeletionPolicy::Delete).await;
    let Cleanup::Waiting { stack, effects } = first else {
        panic!("{first:?}")
    };
    assert_eq!(stack.status, StackStatus::DeleteInProgress);
    assert!(matches!(&effects[..], [Effect::StackDeleting { .. }]));
    cfn.set_status(&w.request.stack_name, StackStatus::DeleteInProgress);
    assert!(matches!(
        run(&cfn, &w, DeletionPolicy::Delete).await,
        Cleanup::Waiting { .. }
    ));
    cfn.set_status(&w.request.stack_name, StackStatus::DeleteComplete);
    assert_eq!(
        run(&cfn, &w, DeletionPolicy::Delete).await,
        Cleanup::Done(vec![])
    );
    assert_eq!(
        cfn.mutating_calls(),
        ["DeleteStack"],
        "deletion asked once, then waited on"
    );
}

#[tokio::test]
async fn delete_failed_is_reported_with_the_reason_and_asked_again() {
    let cfn = FakeCfn::default();
    let w = want("{}");
    cfn.insert(stack_for(&w, StackStatus::CreateComplete));
    cfn.lock().next_delete = Some((
        StackStatus::DeleteFailed,
        vec![failed_event(
            "Bucket",
            "AWS::S3::Bucket",
            "DELETE_FAILED",
            "The bucket you tried to delete is not empty",
        )],
    ));
    // DELETE_IN_PROGRESS shown once, then DELETE_FAILED.
    assert!(matches!(
        run(&cfn, &w, DeletionPolicy::Delete).await,
        Cleanup::Waiting { .. }
    ));
    let failed = run(&cfn, &w, DeletionPolicy::Delete).await;
    let Cleanup::DeleteFailed { why, .. } = failed else {
        panic!("{failed:?}")
    };
    assert!(
        why.contains("DELETE_FAILED") && why.contains("not empty"),
        "{why}"
    );
    assert_eq!(
        cfn.mutating_calls(),
        ["DeleteStack", "DeleteStack"],
        "retried"
    );
    cfn.set_status(&w.request.stack_name, StackStatus::DeleteComplete);
    assert_eq!(
        run(&cfn, &w, DeletionPolicy::Delete).await,
        Cleanup::Done(vec![])
    );
}

#[tokio::test]
async fn retain_only_marks_the_stack_released_and_foreign_and_absent_change_nothing() {
    use crate::controller::stack::released::{read, PolicyMark};
    let cfn = FakeCfn::default();
    let w = want("{}");
    cfn.insert(stack_for(&w, StackStatus::CreateComplete));
    let kept = run(&cfn, &w, DeletionPolicy::Retain).await;
    assert!(matches!(&kept, Cleanup::Done(e) if matches!(&e[..], [Effect::StackRetained { .. }])));
    assert_eq!(
        cfn.calls(),
        ["DescribeStacks", "GetStackPolicy", "SetStackPolicy"],
        "retain marks the stack's policy, and changes nothing else"
    );
    let policy = cfn.lock().stacks[&w.request.stack_name].policy.clone();
    assert_eq!(read(policy.as_deref()), PolicyMark::Released);
    cfn.clear_calls();
    run(&cfn, &w, DeletionPolicy::Retain).await;
    assert!(cfn.mutating_calls().is_empty(), "marked once");
    cfn.clear_calls();

    let mut foreign = stack_for(&w, StackStatus::CreateComplete);
    foreign
        .tags
        .insert(keys::TAG_CLUSTER.into(), "other".into());
    cfn.insert(foreign);
    let left = run(&cfn, &w, DeletionPolicy::Delete).await;
    assert!(
        matches!(&left, Cleanup::Done(e) if matches!(&e[..], [Effect::ForeignStackLeft { .. }]))
    );
    run(&cfn, &w, DeletionPolicy::Retain).await;

    let empty = FakeCfn::default();
    assert_eq!(
        run(&empty, &w, DeletionPolicy::Delete).await,
        Cleanup::Done(vec![])
    );
    assert!(cfn.mutating_calls().is_empty() && empty.mutating_calls().is_empty());
}

#[tokio::test]
async fn every_stable_status_is_deleted_and_every_transition_waited_on() {
    use crate::controller::stack::machine::{phase, Phase};
    let w = want("{}");
    for status in StackStatus::ALL {
        let cfn = FakeCfn::default();
        cfn.insert(stack_for(&w, status.clone()));
        let out = run(&cfn, &w, DeletionPolicy::Delete).await;
        match phase(&status) {
            Phase::InProgress => {
                assert!(
                    matches!(out, Cleanup::Waiting { .. }),
                    "{}",
                    status.as_str()
                );
                assert!(cfn.mutating_calls().is_empty(), "{}", status.as_str());
            }
            Phase::Deleted => assert_eq!(out, Cleanup::Done(vec![])),
            _ => assert_eq!(cfn.mutating_calls(), ["DeleteStack"], "{}", status.as_str()),
        }
    }
}

#[tokio::test]
async fn a_stack_that_keeps_failing_to_delete_is_asked_again_ever_more_slowly() {
    use crate::controller::backoff::Backoff;
    use crate::controller::stack::status::State;
    use crate::controller::stack::teardown::cleanup_delay;
    use crate::controller::tracker::Tracker;

    let gauge =
        prometheus::IntGaugeVec::new(prometheus::Opts::new("g", "g"), &["controller", "state"])
            .unwrap();
    let tracker = Tracker::<State>::new("stack", gauge);
    let cfn = FakeCfn::default();
    let w = want("{}");
    cfn.insert(stack_for(&w, StackStatus::CreateComplete));
    let mut retries = Vec::new();
    for _ in 0..6 {
        // Until DELETE_FAILED: the passes that wait on DELETE_IN_PROGRESS.
        loop {
            // Every deletion asked fails.
            cfn.lock().next_delete = Some((
                StackStatus::DeleteFailed,
                vec![failed_event(
                    "Bucket",
                    "AWS::S3::Bucket",
                    "DELETE_FAILED",
                    "not empty",
                )],
            ));
            let outcome = run(&cfn, &w, DeletionPolicy::Delete).await;
            let delay = cleanup_delay(&tracker, "uid", &outcome).expect("not done");
            if matches!(outcome, Cleanup::DeleteFailed { .. }) {
                retries.push(delay);
                // The deletion asked again runs a while before it fails.
                let mut state = cfn.lock();
                let fs = state.stacks.get_mut(&w.request.stack_name).unwrap();
                fs.script = [
                    StackStatus::DeleteInProgress,
                    StackStatus::DeleteInProgress,
                    StackStatus::DeleteFailed,
                ]
                .into();
                break;
            }
        }
    }
    for (attempt, delay) in retries.iter().enumerate() {
        let ceiling = Backoff::FAILURE.ceiling(attempt as u32);
        assert!(
            *delay >= ceiling / 2 && *delay <= ceiling,
            "retry {attempt} after {delay:?}: the waits in between reset the backoff ({retries:?})"
        );
    }
}
