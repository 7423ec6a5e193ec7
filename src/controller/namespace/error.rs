//! The Namespace controller's error, with a bounded `category()`.

use super::writer::WriteError;
use crate::controller::timeout::TimedOut;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The annotations do not parse or ask for what is not allowed (the
    /// webhook normally refuses them first). Reported; nothing changes.
    #[error("{0}")]
    InvalidAnnotations(String),
    #[error(transparent)]
    AwsAuth(#[from] WriteError),
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    TimedOut(#[from] TimedOut),
    #[error("the OS random source failed: {0}")]
    Random(String),
    /// Not a failure: something changed under the pass; look again soon.
    #[error("{0}")]
    Requeue(String),
    #[error("{0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
}

impl Error {
    /// A stable label for `hawser_reconcile_errors_total{category}`.
    pub fn category(&self) -> &'static str {
        match self {
            Error::InvalidAnnotations(_) => "invalid_annotations",
            Error::AwsAuth(e) => e.category(),
            Error::Kube(_) => "kube",
            Error::TimedOut(_) => "timeout",
            Error::Random(_) => "random",
            Error::Requeue(_) => "requeue",
            Error::Finalizer(f) => {
                crate::controller::pass::inner(f).map_or("finalizer", Error::category)
            }
        }
    }

    /// Whether retrying cannot help until someone changes something (the
    /// namespace's annotations, or aws-auth itself).
    pub fn is_terminal(&self) -> bool {
        match self {
            Error::InvalidAnnotations(_) => true,
            Error::AwsAuth(e) => matches!(e, WriteError::Unreadable(_) | WriteError::Refused(_)),
            Error::Finalizer(f) => {
                crate::controller::pass::inner(f).is_some_and(Error::is_terminal)
            }
            _ => false,
        }
    }

    /// The message for a Warning Event.
    pub fn user_message(&self) -> String {
        match self {
            Error::Finalizer(f) => {
                crate::controller::pass::inner(f).map_or_else(|| f.to_string(), Error::user_message)
            }
            other => other.to_string(),
        }
    }
}
