//! The stack controller's error, with a bounded `category()` for metrics.
//! Terminal problems (bad annotations, a missing template, a stack that is
//! not ours, CloudFormation refusing the template) are not errors here:
//! they are reported on the object as `Failed` and settle until the inputs
//! change. What remains is retried with backoff.

use crate::aws::AwsError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("AWS call failed: {0}")]
    Aws(#[from] AwsError),
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
    /// The namespace's `aws.hawser.io/*` annotations are unusable.
    #[error("{0}")]
    Scope(#[from] crate::controller::scope::ScopeError),
    #[error("{0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    /// A stable label for `hawser_reconcile_errors_total{category}`.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Aws(e) if e.is_assume_role() => "aws_assume_role",
            Error::Aws(e) => e.kind.category(),
            Error::Kube(_) => "kube",
            Error::Scope(e) => e.category(),
            Error::Finalizer(f) => {
                crate::controller::pass::inner(f).map_or("finalizer", Error::category)
            }
        }
    }

    /// The message for a Warning Event: AWS's own words where AWS failed.
    pub fn user_message(&self) -> String {
        match self {
            Error::Finalizer(f) => {
                crate::controller::pass::inner(f).map_or_else(|| f.to_string(), Error::user_message)
            }
            other => other.to_string(),
        }
    }
}

/// Why a stack is reported `Failed`; also the `category` label of
/// `hawser_reconcile_errors_total` for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The annotations do not parse.
    InvalidAnnotations(String),
    /// The template ConfigMap or key is missing, or its content is not a
    /// template.
    Template(String),
    /// A stack with hawser's name carries another owner's tags.
    Foreign(String),
    /// CloudFormation refused a request (CreateStack, CreateChangeSet).
    Rejected(AwsError),
    /// The stack itself failed (rollback, failed change set, stuck), with
    /// the failing resource's reason.
    Stack(String),
    /// The outputs ConfigMap's name is taken by a ConfigMap hawser does
    /// not own.
    OutputsConflict(String),
}

impl Failure {
    pub fn category(&self) -> &'static str {
        match self {
            Failure::InvalidAnnotations(_) => "invalid_annotations",
            Failure::Template(_) => "template",
            Failure::Foreign(_) => "foreign_stack",
            Failure::Rejected(_) => "aws_rejected",
            Failure::Stack(_) => "stack_failed",
            Failure::OutputsConflict(_) => "outputs_conflict",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Failure::InvalidAnnotations(m)
            | Failure::Template(m)
            | Failure::Foreign(m)
            | Failure::Stack(m)
            | Failure::OutputsConflict(m) => m.clone(),
            Failure::Rejected(e) => format!("CloudFormation refused the request: {e}"),
        }
    }
}
