//! The state machine over every CloudFormation stack status.

use super::*;
use crate::aws::{ChangeSet, ChangeSetStatus};
use crate::controller::stack::machine::*;

/// Every status with its phase: the table the rest is derived from.
fn phases() -> Vec<(StackStatus, Phase)> {
    use Phase::*;
    use StackStatus as S;
    vec![
        (S::CreateInProgress, InProgress),
        (S::CreateFailed, CreateFailed),
        (S::CreateComplete, Ready),
        (S::RollbackInProgress, InProgress),
        (S::RollbackFailed, CreateFailed),
        (S::RollbackComplete, CreateFailed),
        (S::DeleteInProgress, InProgress),
        (S::DeleteFailed, DeleteFailed),
        (S::DeleteComplete, Deleted),
        (S::UpdateInProgress, InProgress),
        (S::UpdateCompleteCleanupInProgress, InProgress),
        (S::UpdateComplete, Ready),
        (S::UpdateFailed, UpdateFailed),
        (S::UpdateRollbackInProgress, InProgress),
        (S::UpdateRollbackFailed, Stuck),
        (S::UpdateRollbackCompleteCleanupInProgress, InProgress),
        (S::UpdateRollbackComplete, UpdateFailed),
        (S::ReviewInProgress, Review),
        (S::ImportInProgress, InProgress),
        (S::ImportComplete, Ready),
        (S::ImportRollbackInProgress, InProgress),
        (S::ImportRollbackFailed, Stuck),
        (S::ImportRollbackComplete, UpdateFailed),
    ]
}

#[test]
fn every_status_has_its_phase_and_in_progress_ones_end_so() {
    let table = phases();
    assert_eq!(
        table.len(),
        StackStatus::ALL.len(),
        "the table covers every status"
    );
    for (status, expected) in &table {
        assert_eq!(phase(status), *expected, "{}", status.as_str());
        assert_eq!(
            *expected == Phase::InProgress,
            status.as_str().ends_with("_IN_PROGRESS") && *status != StackStatus::ReviewInProgress,
            "{}",
            status.as_str()
        );
    }
    assert_eq!(
        phase(&StackStatus::Other("NEW_THING_IN_PROGRESS".into())),
        Phase::InProgress,
        "an unknown status is waited on, never acted on"
    );
}

/// The step for a stack of ours in `status`, with the spec unchanged or
/// changed, and with no memo or one that says this spec failed before.
fn step(status: &StackStatus, changed: bool, failed_before: bool) -> ApplyStep {
    let w = want(r#"{"QueueName":"a"}"#);
    let s = stack_for(&w, status.clone());
    let memo = Memo {
        failed_hash: failed_before.then(|| w.spec_hash.clone()),
        ..if changed { outdated() } else { holding(&w) }
    };
    next_apply(Some(&s), &w, &memo)
}

#[test]
fn apply_decides_for_every_status_changed_or_not() {
    use ApplyStep::*;
    for (status, ph) in phases() {
        let name = status.as_str().to_owned();
        let (unchanged, changed, changed_failed) = match ph {
            Phase::InProgress => (Wait, Wait, Wait),
            Phase::Review => (DeleteToRecreate, DeleteToRecreate, DeleteToRecreate),
            Phase::Ready => (Ready, Update, Failed { keep_outputs: true }),
            Phase::UpdateFailed => (Ready, Update, Failed { keep_outputs: true }),
            Phase::CreateFailed | Phase::DeleteFailed => (
                Failed {
                    keep_outputs: false,
                },
                DeleteToRecreate,
                DeleteToRecreate,
            ),
            Phase::Stuck => (
                Failed { keep_outputs: true },
                Failed { keep_outputs: true },
                Failed { keep_outputs: true },
            ),
            Phase::Deleted => (Create, Create, Create),
        };
        assert_eq!(step(&status, false, false), unchanged, "{name} unchanged");
        assert_eq!(step(&status, true, false), changed, "{name} changed");
        assert_eq!(
            step(&status, true, true),
            changed_failed,
            "{name} changed, failed before"
        );
    }
}

#[test]
fn no_stack_is_created_and_a_foreign_one_is_never_touched_in_any_status() {
    let w = want("{}");
    assert_eq!(next_apply(None, &w, &Memo::default()), ApplyStep::Create);
    assert_eq!(next_cleanup(None, &w.ownership), CleanupStep::Done);
    for status in StackStatus::ALL {
        let mut s = stack_for(&w, status.clone());
        s.tags.insert(keys::TAG_UID.into(), "someone-else".into());
        let (apply, cleanup) = if status == StackStatus::DeleteComplete {
            (ApplyStep::Create, CleanupStep::Done)
        } else {
            (ApplyStep::Foreign, CleanupStep::Foreign)
        };
        assert_eq!(
            next_apply(Some(&s), &w, &Memo::default()),
            apply,
            "{}",
            status.as_str()
        );
        assert_eq!(
            next_cleanup(Some(&s), &w.ownership),
            cleanup,
            "{}",
            status.as_str()
        );
        s.tags.clear();
        assert_eq!(
            next_apply(Some(&s), &w, &Memo::default()),
            apply,
            "untagged {}",
            status.as_str()
        );
    }
}

#[test]
fn cleanup_decides_for_every_status() {
    let w = want("{}");
    for (status, ph) in phases() {
        let expected = match ph {
            Phase::InProgress => CleanupStep::Wait,
            Phase::Deleted => CleanupStep::Done,
            Phase::Review
            | Phase::Ready
            | Phase::UpdateFailed
            | Phase::CreateFailed
            | Phase::DeleteFailed
            | Phase::Stuck => CleanupStep::Delete,
        };
        let s = stack_for(&w, status.clone());
        assert_eq!(
            next_cleanup(Some(&s), &w.ownership),
            expected,
            "{}",
            status.as_str()
        );
    }
}

#[test]
fn an_executed_change_set_decides_by_the_stacks_outcome() {
    let w = want(r#"{"QueueName":"b"}"#);
    let memo = Memo {
        executed: Some(w.spec_hash.clone()),
        ..outdated()
    };
    let done = stack_for(&w, StackStatus::UpdateComplete);
    assert_eq!(next_apply(Some(&done), &w, &memo), ApplyStep::Ready);
    let rolled_back = stack_for(&w, StackStatus::UpdateRollbackComplete);
    assert_eq!(
        next_apply(Some(&rolled_back), &w, &memo),
        ApplyStep::Failed { keep_outputs: true }
    );
}

#[test]
fn a_stack_whose_applied_spec_is_unknown_is_updated_through_a_change_set() {
    // E.g. adopted after the spec-hash annotation was lost: the change set
    // tells whether anything differs.
    let w = want(r#"{"QueueName":"a"}"#);
    let s = stack_for(&w, StackStatus::CreateComplete);
    assert_eq!(
        next_apply(Some(&s), &w, &Memo::default()),
        ApplyStep::Update
    );
    assert_eq!(next_apply(Some(&s), &w, &holding(&w)), ApplyStep::Ready);
}

#[test]
fn no_tag_changes_with_the_spec() {
    // Stack tags propagate to every resource; a tag that followed the spec
    // would re-tag (and for some types replace) resources on every edit.
    let (a, b) = (want(r#"{"QueueName":"a"}"#), want(r#"{"QueueName":"b"}"#));
    assert_ne!(a.spec_hash, b.spec_hash);
    assert_eq!(a.request.tags, b.request.tags);
    assert_eq!(a.request.tags, a.ownership);
}

#[test]
fn a_parameter_changed_outside_hawser_is_drift_but_a_no_echo_one_is_not() {
    let w = want(r#"{"QueueName":"a"}"#);
    let mut s = stack_for(&w, StackStatus::CreateComplete);
    s.parameters.insert("QueueName".into(), "edited".into());
    assert_eq!(next_apply(Some(&s), &w, &holding(&w)), ApplyStep::Update);
    s.parameters.insert("QueueName".into(), "****".into());
    assert_eq!(next_apply(Some(&s), &w, &holding(&w)), ApplyStep::Ready);
}

fn cs(
    status: ChangeSetStatus,
    execution: Option<&str>,
    reason: Option<&str>,
    changes: usize,
) -> ChangeSet {
    ChangeSet {
        id: "cs".into(),
        status,
        status_reason: reason.map(str::to_owned),
        execution_status: execution.map(str::to_owned),
        changes,
        resource_changes: vec![],
    }
}

#[test]
fn change_set_steps() {
    use ChangeSetStatus as C;
    use ChangeSetStep::*;
    let no_changes = "The submitted information didn't contain changes. Submit different information to create a change set.";
    for (set, expected) in [
        (None, Create),
        (Some(cs(C::CreatePending, None, None, 0)), Wait),
        (
            Some(cs(C::CreateInProgress, Some("UNAVAILABLE"), None, 0)),
            Wait,
        ),
        (
            Some(cs(C::CreateComplete, Some("AVAILABLE"), None, 2)),
            Execute,
        ),
        (
            Some(cs(C::CreateComplete, Some("AVAILABLE"), None, 0)),
            Execute,
        ),
        (
            Some(cs(C::CreateComplete, Some("EXECUTE_IN_PROGRESS"), None, 2)),
            Executing,
        ),
        (
            Some(cs(C::CreateComplete, Some("EXECUTE_COMPLETE"), None, 2)),
            Executing,
        ),
        (
            Some(cs(
                C::CreateComplete,
                Some("EXECUTE_FAILED"),
                Some("boom"),
                2,
            )),
            Failed("boom".into()),
        ),
        (
            Some(cs(C::CreateComplete, Some("OBSOLETE"), None, 2)),
            Replace,
        ),
        (
            Some(cs(C::Failed, Some("UNAVAILABLE"), Some(no_changes), 0)),
            NoChanges,
        ),
        (
            Some(cs(
                C::Failed,
                Some("UNAVAILABLE"),
                Some("Template error: bad"),
                0,
            )),
            Failed("Template error: bad".into()),
        ),
        (Some(cs(C::DeletePending, None, None, 0)), Wait),
        (Some(cs(C::DeleteInProgress, None, None, 0)), Wait),
        (Some(cs(C::DeleteComplete, None, None, 0)), Create),
        (Some(cs(C::DeleteFailed, None, None, 0)), Create),
        (Some(cs(C::Other("NEW".into()), None, None, 0)), Wait),
    ] {
        assert_eq!(next_change_set(set.as_ref()), expected, "{set:?}");
    }
    assert!(
        is_no_changes("No updates are to be performed."),
        "moto's words"
    );
}
