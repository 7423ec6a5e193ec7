//! The Namespace controller's error, with a bounded `category()`.

use super::writer::WriteError;
use crate::controller::reconciler::Failure;
use crate::controller::timeout::{ApiError, TimedOut};

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
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Kube(e) => Error::Kube(e),
            ApiError::TimedOut(e) => Error::TimedOut(e),
        }
    }
}

impl Failure for Error {
    fn category(&self) -> &'static str {
        match self {
            Error::InvalidAnnotations(_) => "invalid_annotations",
            Error::AwsAuth(e) => e.category(),
            Error::Kube(_) => "kube",
            Error::TimedOut(_) => "timeout",
            Error::Random(_) => "random",
            Error::Requeue(_) => "requeue",
        }
    }

    /// Retrying cannot help until someone changes something (the
    /// namespace's annotations, or aws-auth itself).
    fn is_terminal(&self) -> bool {
        match self {
            Error::InvalidAnnotations(_) => true,
            Error::AwsAuth(e) => matches!(e, WriteError::Unreadable(_) | WriteError::Refused(_)),
            _ => false,
        }
    }
}
