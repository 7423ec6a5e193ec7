//! The CloudFormation surface hawser uses, as a trait over plain types:
//! the stack controller never sees SDK types, and its tests run against
//! [`super::fake_cfn::FakeCfn`].

use std::{collections::BTreeMap, future::Future, time::SystemTime};

use super::{AwsResult, Tags};

/// Every `StackStatus` CloudFormation documents, plus the ones it may add
/// later ([`StackStatus::Other`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StackStatus {
    CreateInProgress,
    CreateFailed,
    CreateComplete,
    RollbackInProgress,
    RollbackFailed,
    RollbackComplete,
    DeleteInProgress,
    DeleteFailed,
    DeleteComplete,
    UpdateInProgress,
    UpdateCompleteCleanupInProgress,
    UpdateComplete,
    UpdateFailed,
    UpdateRollbackInProgress,
    UpdateRollbackFailed,
    UpdateRollbackCompleteCleanupInProgress,
    UpdateRollbackComplete,
    ReviewInProgress,
    ImportInProgress,
    ImportComplete,
    ImportRollbackInProgress,
    ImportRollbackFailed,
    ImportRollbackComplete,
    Other(String),
}

impl StackStatus {
    /// Every documented status, for exhaustive tests.
    pub const ALL: [StackStatus; 23] = [
        StackStatus::CreateInProgress,
        StackStatus::CreateFailed,
        StackStatus::CreateComplete,
        StackStatus::RollbackInProgress,
        StackStatus::RollbackFailed,
        StackStatus::RollbackComplete,
        StackStatus::DeleteInProgress,
        StackStatus::DeleteFailed,
        StackStatus::DeleteComplete,
        StackStatus::UpdateInProgress,
        StackStatus::UpdateCompleteCleanupInProgress,
        StackStatus::UpdateComplete,
        StackStatus::UpdateFailed,
        StackStatus::UpdateRollbackInProgress,
        StackStatus::UpdateRollbackFailed,
        StackStatus::UpdateRollbackCompleteCleanupInProgress,
        StackStatus::UpdateRollbackComplete,
        StackStatus::ReviewInProgress,
        StackStatus::ImportInProgress,
        StackStatus::ImportComplete,
        StackStatus::ImportRollbackInProgress,
        StackStatus::ImportRollbackFailed,
        StackStatus::ImportRollbackComplete,
    ];

    pub fn parse(s: &str) -> Self {
        Self::ALL
            .iter()
            .find(|st| st.as_str() == s)
            .cloned()
            .unwrap_or_else(|| Self::Other(s.to_owned()))
    }

    /// CloudFormation's own spelling, e.g. `UPDATE_ROLLBACK_COMPLETE`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::CreateInProgress => "CREATE_IN_PROGRESS",
            Self::CreateFailed => "CREATE_FAILED",
            Self::CreateComplete => "CREATE_COMPLETE",
            Self::RollbackInProgress => "ROLLBACK_IN_PROGRESS",
            Self::RollbackFailed => "ROLLBACK_FAILED",
            Self::RollbackComplete => "ROLLBACK_COMPLETE",
            Self::DeleteInProgress => "DELETE_IN_PROGRESS",
            Self::DeleteFailed => "DELETE_FAILED",
            Self::DeleteComplete => "DELETE_COMPLETE",
            Self::UpdateInProgress => "UPDATE_IN_PROGRESS",
            Self::UpdateCompleteCleanupInProgress => "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
            Self::UpdateComplete => "UPDATE_COMPLETE",
            Self::UpdateFailed => "UPDATE_FAILED",
            Self::UpdateRollbackInProgress => "UPDATE_ROLLBACK_IN_PROGRESS",
            Self::UpdateRollbackFailed => "UPDATE_ROLLBACK_FAILED",
            Self::UpdateRollbackCompleteCleanupInProgress => {
                "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
            }
            Self::UpdateRollbackComplete => "UPDATE_ROLLBACK_COMPLETE",
            Self::ReviewInProgress => "REVIEW_IN_PROGRESS",
            Self::ImportInProgress => "IMPORT_IN_PROGRESS",
            Self::ImportComplete => "IMPORT_COMPLETE",
            Self::ImportRollbackInProgress => "IMPORT_ROLLBACK_IN_PROGRESS",
            Self::ImportRollbackFailed => "IMPORT_ROLLBACK_FAILED",
            Self::ImportRollbackComplete => "IMPORT_ROLLBACK_COMPLETE",
            Self::Other(s) => s,
        }
    }
}

/// A stack as DescribeStacks reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    /// The stack's ARN.
    pub id: String,
    pub name: String,
    pub status: StackStatus,
    pub status_reason: Option<String>,
    pub outputs: BTreeMap<String, String>,
    /// As CloudFormation reports them: `****` for NoEcho parameters.
    pub parameters: BTreeMap<String, String>,
    pub tags: Tags,
}

/// What CreateStack and CreateChangeSet both take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackRequest {
    pub stack_name: String,
    pub template_body: String,
    pub parameters: BTreeMap<String, String>,
    /// CloudFormation names, e.g. `CAPABILITY_IAM`.
    pub capabilities: Vec<String>,
    pub tags: Tags,
    // No ClientRequestToken: a stack name is unique in its account and
    // region, so a repeated CreateStack fails with AlreadyExists and the
    // next look adopts the stack by its tags. A token derived from the
    // object would be refused (TokenAlreadyExists) when the same spec has
    // to be created again after a deletion.
}

/// A change set's status, as DescribeChangeSet reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeSetStatus {
    CreatePending,
    CreateInProgress,
    CreateComplete,
    DeletePending,
    DeleteInProgress,
    DeleteComplete,
    DeleteFailed,
    Failed,
    Other(String),
}

impl ChangeSetStatus {
    pub fn parse(s: &str) -> Self {
        match s {
            "CREATE_PENDING" => Self::CreatePending,
            "CREATE_IN_PROGRESS" => Self::CreateInProgress,
            "CREATE_COMPLETE" => Self::CreateComplete,
            "DELETE_PENDING" => Self::DeletePending,
            "DELETE_IN_PROGRESS" => Self::DeleteInProgress,
            "DELETE_COMPLETE" => Self::DeleteComplete,
            "DELETE_FAILED" => Self::DeleteFailed,
            "FAILED" => Self::Failed,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// A change set as DescribeChangeSet reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSet {
    /// The change set's ARN.
    pub id: String,
    pub status: ChangeSetStatus,
    pub status_reason: Option<String>,
    /// `AVAILABLE` once it can be executed; `EXECUTE_IN_PROGRESS`,
    /// `EXECUTE_COMPLETE`, `EXECUTE_FAILED`, `UNAVAILABLE`, `OBSOLETE`.
    pub execution_status: Option<String>,
    pub changes: usize,
    /// The resources an execution would add, modify or remove.
    pub resource_changes: Vec<ResourceChange>,
}

/// One line of a change set's Changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceChange {
    /// `Add`, `Modify`, `Remove`, `Import`, `Dynamic`.
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    /// For a Modify: `True`, `False` or `Conditional`.
    pub replacement: Option<String>,
}

/// One line of DescribeStackEvents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackEvent {
    pub logical_id: String,
    pub resource_type: String,
    /// A ResourceStatus, e.g. `CREATE_FAILED`.
    pub status: String,
    pub reason: Option<String>,
}

/// The CloudFormation calls the stack controller makes.
pub trait CloudFormationApi: Send + Sync {
    /// DescribeStacks by name; `None` when no live stack has that name
    /// (CloudFormation answers ValidationError "does not exist").
    fn describe_stack(&self, name: &str) -> impl Future<Output = AwsResult<Option<Stack>>> + Send;

    /// DescribeStacks without a name, every page: the live stacks of the
    /// account and region that carry tag `key` = `value`, each as
    /// [`Self::describe_stack`] shows it (the others are dropped page by
    /// page).
    fn describe_stacks_tagged(
        &self,
        key: &str,
        value: &str,
    ) -> impl Future<Output = AwsResult<Vec<Stack>>> + Send;

    /// CreateStack; returns the new stack's id.
    fn create_stack(&self, req: &StackRequest) -> impl Future<Output = AwsResult<String>> + Send;

    /// CreateChangeSet of type UPDATE for the existing stack
    /// `req.stack_name`; returns the change set's id.
    fn create_change_set(
        &self,
        change_set_name: &str,
        req: &StackRequest,
    ) -> impl Future<Output = AwsResult<String>> + Send;

    /// DescribeChangeSet by stack and change set name; `None` when there
    /// is no such change set.
    fn describe_change_set(
        &self,
        stack_name: &str,
        change_set_name: &str,
    ) -> impl Future<Output = AwsResult<Option<ChangeSet>>> + Send;

    fn execute_change_set(
        &self,
        stack_name: &str,
        change_set_name: &str,
    ) -> impl Future<Output = AwsResult<()>> + Send;

    /// DeleteChangeSet; one that does not exist is success.
    fn delete_change_set(
        &self,
        stack_name: &str,
        change_set_name: &str,
    ) -> impl Future<Output = AwsResult<()>> + Send;

    /// DeleteStack by name or id; a stack that does not exist is success.
    fn delete_stack(&self, stack: &str) -> impl Future<Output = AwsResult<()>> + Send;

    /// The newest page of DescribeStackEvents, newest first.
    fn stack_events(&self, stack: &str) -> impl Future<Output = AwsResult<Vec<StackEvent>>> + Send;

    /// ListStacks, every page: the stacks not yet deleted, by name. Tags
    /// are not listed; [`Self::describe_stack`] shows them.
    fn list_stacks(&self) -> impl Future<Output = AwsResult<Vec<StackSummary>>> + Send;

    /// GetStackPolicy; `None` when the stack has no policy.
    fn stack_policy(&self, stack: &str) -> impl Future<Output = AwsResult<Option<String>>> + Send;

    /// SetStackPolicy with `body` (JSON).
    fn set_stack_policy(
        &self,
        stack: &str,
        body: &str,
    ) -> impl Future<Output = AwsResult<()>> + Send;
}

/// One line of ListStacks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackSummary {
    /// The stack's ARN.
    pub id: String,
    pub name: String,
    pub status: StackStatus,
    pub created: Option<SystemTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_and_unknown_ones_are_kept() {
        for s in StackStatus::ALL {
            assert_eq!(StackStatus::parse(s.as_str()), s);
        }
        let new = StackStatus::parse("SOMETHING_NEW_IN_PROGRESS");
        assert_eq!(new.as_str(), "SOMETHING_NEW_IN_PROGRESS");
        assert!(matches!(new, StackStatus::Other(_)));
    }
}
