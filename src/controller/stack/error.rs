//! The stack controller's error, with a bounded `category()` for metrics.
//! Terminal problems (bad annotations, a missing template, a stack that is
//! not ours, CloudFormation refusing the template, a stack that failed)
//! are [`Error::Failed`]: reported on the object (`last-error`) and
//! settled until the inputs change. What remains is retried with backoff.

use super::status::Outputs;
use crate::aws::AwsError;
use crate::controller::timeout::ApiError;
use crate::controller::tracker::Fingerprint;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reported on the object (`last-error`) and settled until the inputs
    /// change.
    #[error("{}", .0.failure.message())]
    Failed(Box<Failed>),
    #[error("AWS call failed: {0}")]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The namespace's `aws.hawser.io/*` annotations are unusable.
    #[error("{0}")]
    Scope(#[from] crate::controller::scope::ScopeError),
}

/// A failure to report: what failed, the outputs still true (`None`:
/// not looked at), and the inputs it is settled on.
#[derive(Debug)]
pub struct Failed {
    pub failure: Failure,
    pub out: Option<Outputs>,
    pub inputs: Fingerprint,
}

impl Error {
    pub fn failed(failure: Failure, out: Option<Outputs>, inputs: Fingerprint) -> Self {
        Error::Failed(Box::new(Failed {
            failure,
            out,
            inputs,
        }))
    }
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Error::Api(e.into())
    }
}

impl crate::controller::reconciler::Failure for Error {
    fn category(&self) -> &'static str {
        match self {
            Error::Failed(f) => f.failure.category(),
            Error::Aws(e) if e.is_assume_role() => "aws_assume_role",
            Error::Aws(e) => e.kind.category(),
            Error::Api(e) => e.category(),
            Error::Scope(e) => e.category(),
        }
    }

    fn is_terminal(&self) -> bool {
        matches!(self, Error::Failed(_))
    }

    fn reason(&self) -> &'static str {
        match self {
            Error::Failed(_) => "StackFailed",
            _ => "ReconcileError",
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
