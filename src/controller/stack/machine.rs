//! The stack lifecycle as pure decisions: given what DescribeStacks (or
//! DescribeChangeSet) reports and what the object asks for, the one next
//! thing to do. Every CloudFormation status is classified here, and the
//! unit tests walk all of them.

use super::desired::{is_owned, parameter_drift, Desired};
use crate::aws::{ChangeSet, ChangeSetStatus, Stack, StackStatus, Tags};

/// What a status means for hawser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// CloudFormation is working on it (create, update, rollback, delete,
    /// import, cleanup): wait, with backoff, and never call anything that
    /// changes it.
    InProgress,
    /// REVIEW_IN_PROGRESS: made by a CREATE change set never executed; it
    /// holds no resources.
    Review,
    /// CREATE_COMPLETE, UPDATE_COMPLETE, IMPORT_COMPLETE.
    Ready,
    /// An update or import failed and the stack is back on its previous
    /// template (UPDATE_ROLLBACK_COMPLETE, IMPORT_ROLLBACK_COMPLETE), or
    /// stopped without rolling back (UPDATE_FAILED). Stable, in service,
    /// and can be updated again.
    UpdateFailed,
    /// The create failed (CREATE_FAILED, ROLLBACK_COMPLETE,
    /// ROLLBACK_FAILED): the stack cannot be updated, only deleted.
    CreateFailed,
    /// DELETE_FAILED: some resource could not be deleted.
    DeleteFailed,
    /// A rollback failed (UPDATE_ROLLBACK_FAILED, IMPORT_ROLLBACK_FAILED):
    /// CloudFormation needs a person to fix the resource and continue the
    /// rollback; it can still be deleted.
    Stuck,
    /// DELETE_COMPLETE: as good as absent.
    Deleted,
}

pub fn phase(status: &StackStatus) -> Phase {
    use StackStatus::*;
    match status {
        CreateInProgress
        | RollbackInProgress
        | DeleteInProgress
        | UpdateInProgress
        | UpdateCompleteCleanupInProgress
        | UpdateRollbackInProgress
        | UpdateRollbackCompleteCleanupInProgress
        | ImportInProgress
        | ImportRollbackInProgress => Phase::InProgress,
        ReviewInProgress => Phase::Review,
        CreateComplete | UpdateComplete | ImportComplete => Phase::Ready,
        UpdateRollbackComplete | ImportRollbackComplete | UpdateFailed => Phase::UpdateFailed,
        CreateFailed | RollbackComplete | RollbackFailed => Phase::CreateFailed,
        DeleteFailed => Phase::DeleteFailed,
        UpdateRollbackFailed | ImportRollbackFailed => Phase::Stuck,
        DeleteComplete => Phase::Deleted,
        // A status added after this was written: most are transitions
        // (`…_IN_PROGRESS`); anything else is safest left alone.
        Other(_) => Phase::InProgress,
    }
}

/// What the controller remembers about a stack between passes. Kept in
/// memory; `applied` is also recorded on the object (annotation
/// `cfn.hawser.io/spec-hash`), so a restart or a new leader does not
/// update a stack that already matches. After a restart at most one
/// failed update is retried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memo {
    /// The spec hash the stack was last created with or brought to (for
    /// a failed create: the spec that failed). `None`: not known, e.g. a
    /// stack adopted after its annotation was lost; an update then finds
    /// out with a change set.
    pub applied: Option<String>,
    /// A spec whose update failed (change set refused or rolled back):
    /// not tried again until the spec changes.
    pub failed_hash: Option<String>,
    /// The spec whose change set was executed last; the stack's next
    /// stable status is that update's outcome.
    pub executed: Option<String>,
    /// The spec a dead stack was deleted for, to be created anew: if that
    /// deletion fails, it is reported and asked again at the resync, not
    /// on every poll.
    pub recreating: Option<String>,
}

/// The next step while the object wants its stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyStep {
    Create,
    /// In progress: look again after a poll backoff.
    Wait,
    /// Update through a change set.
    Update,
    /// The stack matches the spec: publish outputs and settle.
    Ready,
    /// Report a failure and settle until the spec changes. With
    /// `keep_outputs` the stack still serves its previous outputs.
    Failed {
        keep_outputs: bool,
    },
    /// The stack is dead (failed create, failed delete, never-executed
    /// review) and the spec changed (or it holds nothing): delete it, then
    /// create it anew.
    DeleteToRecreate,
    /// A stack with hawser's name but someone else's tags: never touched.
    Foreign,
}

/// Whether the stack differs from what the object asks for: another spec
/// was applied, or a parameter was changed outside hawser.
pub fn spec_changed(stack: &Stack, want: &Desired, memo: &Memo) -> bool {
    let same_spec = memo.applied.as_deref() == Some(want.spec_hash.as_str());
    !same_spec || !parameter_drift(stack, &want.request.parameters).is_empty()
}

pub fn next_apply(stack: Option<&Stack>, want: &Desired, memo: &Memo) -> ApplyStep {
    let Some(stack) = stack else {
        return ApplyStep::Create;
    };
    if phase(&stack.status) == Phase::Deleted {
        return ApplyStep::Create;
    }
    if !is_owned(stack, &want.ownership) {
        return ApplyStep::Foreign;
    }
    let changed = spec_changed(stack, want, memo);
    let failed_before = memo.failed_hash.as_deref() == Some(want.spec_hash.as_str());
    let executed = memo.executed.as_deref() == Some(want.spec_hash.as_str());
    match phase(&stack.status) {
        Phase::InProgress => ApplyStep::Wait,
        Phase::Review => ApplyStep::DeleteToRecreate,
        // Executed and complete: the stack is the spec.
        Phase::Ready if !changed || executed => ApplyStep::Ready,
        Phase::Ready if failed_before => ApplyStep::Failed { keep_outputs: true },
        Phase::Ready => ApplyStep::Update,
        Phase::UpdateFailed if failed_before || executed => {
            ApplyStep::Failed { keep_outputs: true }
        }
        Phase::UpdateFailed if changed => ApplyStep::Update,
        // The spec is what the stack rolled back to, e.g. a bad edit was
        // reverted: the stack matches it again.
        Phase::UpdateFailed => ApplyStep::Ready,
        // A new spec, or the same one reported failed already: the pass
        // that sees it again comes at the resync (the failure settles the
        // object until then), and a create fails for passing reasons too
        // (a quota, a name still taken, a dependency not yet there).
        Phase::CreateFailed | Phase::DeleteFailed if changed || failed_before => {
            ApplyStep::DeleteToRecreate
        }
        Phase::CreateFailed | Phase::DeleteFailed => ApplyStep::Failed {
            keep_outputs: false,
        },
        Phase::Stuck => ApplyStep::Failed { keep_outputs: true },
        Phase::Deleted => ApplyStep::Create,
    }
}

/// The next step while the object is being deleted (or has dropped its
/// template) and its stack is to be deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CleanupStep {
    /// Nothing left: the finalizer may go.
    Done,
    /// Not ours: left alone, the finalizer may go.
    Foreign,
    Wait,
    /// DeleteStack (again, for DELETE_FAILED).
    Delete,
}

pub fn next_cleanup(stack: Option<&Stack>, ownership: &Tags) -> CleanupStep {
    let Some(stack) = stack else {
        return CleanupStep::Done;
    };
    if phase(&stack.status) == Phase::Deleted {
        return CleanupStep::Done;
    }
    if !is_owned(stack, ownership) {
        return CleanupStep::Foreign;
    }
    match phase(&stack.status) {
        Phase::InProgress => CleanupStep::Wait,
        Phase::Deleted => CleanupStep::Done,
        Phase::Review
        | Phase::Ready
        | Phase::UpdateFailed
        | Phase::CreateFailed
        | Phase::DeleteFailed
        | Phase::Stuck => CleanupStep::Delete,
    }
}

/// The next step of an update, from the change set named after the spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeSetStep {
    Create,
    /// Being computed, or being deleted: look again later.
    Wait,
    Execute,
    /// Computed, and empty: the stack already is what the spec asks for.
    NoChanges,
    /// CloudFormation refused the change set (bad template, parameter,
    /// capability), in its words.
    Failed(String),
    /// Executed or executing: the stack's status tells the rest.
    Executing,
    /// Left over and no longer executable (OBSOLETE, UNAVAILABLE): delete
    /// it; the next pass creates it again.
    Replace,
}

/// CloudFormation's words for an empty change set (a FAILED change set)
/// and moto's (CreateChangeSet fails with ValidationError).
/// CloudFormation's ValidationError for a stack someone else is changing
/// at the moment ("... is in UPDATE_IN_PROGRESS state and can not be
/// updated"): a wait, not a refusal of the spec.
pub fn is_busy(message: &str) -> bool {
    message.contains("_IN_PROGRESS state")
}

pub fn is_no_changes(message: &str) -> bool {
    message.contains("didn't contain changes") || message.contains("No updates are to be performed")
}

pub fn next_change_set(cs: Option<&ChangeSet>) -> ChangeSetStep {
    let Some(cs) = cs else {
        return ChangeSetStep::Create;
    };
    let reason = cs.status_reason.clone().unwrap_or_default();
    match &cs.status {
        ChangeSetStatus::CreatePending | ChangeSetStatus::CreateInProgress => ChangeSetStep::Wait,
        ChangeSetStatus::DeletePending | ChangeSetStatus::DeleteInProgress => ChangeSetStep::Wait,
        // Deleted (by us, after a no-op or a failure): make it again.
        ChangeSetStatus::DeleteComplete | ChangeSetStatus::DeleteFailed => ChangeSetStep::Create,
        ChangeSetStatus::Failed if is_no_changes(&reason) => ChangeSetStep::NoChanges,
        ChangeSetStatus::Failed => ChangeSetStep::Failed(if reason.is_empty() {
            "the change set failed without a reason".to_owned()
        } else {
            reason
        }),
        // CloudFormation FAILs an empty change set, so a complete one has
        // changes to execute; its Changes list is not consulted (moto
        // lists none for a parameter-only change).
        ChangeSetStatus::CreateComplete => match cs.execution_status.as_deref() {
            Some("AVAILABLE") | None => ChangeSetStep::Execute,
            Some("EXECUTE_IN_PROGRESS") | Some("EXECUTE_COMPLETE") => ChangeSetStep::Executing,
            Some("EXECUTE_FAILED") => ChangeSetStep::Failed(if reason.is_empty() {
                "the change set's execution failed".to_owned()
            } else {
                reason
            }),
            // UNAVAILABLE, OBSOLETE (the stack changed since): start over.
            Some(_) => ChangeSetStep::Replace,
        },
        ChangeSetStatus::Other(_) => ChangeSetStep::Wait,
    }
}

#[cfg(test)]
mod busy_tests {
    use super::*;

    #[test]
    fn a_stack_busy_elsewhere_is_a_wait_not_a_refusal() {
        assert!(is_busy(
            "Stack:arn:aws:cloudformation:us-west-2:1:stack/s/x is in UPDATE_IN_PROGRESS state and can not be updated."
        ));
        assert!(!is_busy(
            "Template format error: Unresolved resource dependencies [Q]"
        ));
        assert!(!is_no_changes(
            "Stack:x is in UPDATE_IN_PROGRESS state and can not be updated."
        ));
    }
}
