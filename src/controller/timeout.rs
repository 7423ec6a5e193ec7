//! An explicit deadline on every Kubernetes API call a reconcile makes.
//!
//! kube's client only has transport timeouts (minutes, sized for
//! watches); a request the apiserver accepts but never answers would hold
//! a reconcile slot for that long, and a pass stuck on one holds back
//! every pass queued behind it. Every call in a pass is wrapped here.

use std::{future::Future, time::Duration};

/// Deadline for one API call (get, create, patch, delete).
pub const API_CALL: Duration = Duration::from_secs(10);
/// Deadline for recording one Event; an Event is never worth a stall.
pub const EVENT: Duration = Duration::from_secs(5);

/// A call that did not answer in time: which one, and how long it had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: no answer from the Kubernetes API within {limit:?}")]
pub struct TimedOut {
    pub what: &'static str,
    pub limit: Duration,
}

/// Runs `call` with the [`API_CALL`] deadline.
pub async fn api<T>(what: &'static str, call: impl Future<Output = T>) -> Result<T, TimedOut> {
    within(what, API_CALL, call).await
}

pub async fn within<T>(
    what: &'static str,
    limit: Duration,
    call: impl Future<Output = T>,
) -> Result<T, TimedOut> {
    tokio::time::timeout(limit, call)
        .await
        .map_err(|_| TimedOut { what, limit })
}

/// A Kubernetes API call that failed or did not answer in time.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    TimedOut(#[from] TimedOut),
}

impl ApiError {
    /// A stable label for `hawser_reconcile_errors_total{category}`.
    pub fn category(&self) -> &'static str {
        match self {
            ApiError::Kube(_) => "kube",
            ApiError::TimedOut(_) => "timeout",
        }
    }

    /// The apiserver answered 404: the object is gone.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::Kube(kube::Error::Api(s)) if s.code == 404)
    }
}

/// Runs a Kubernetes API call `call` with the [`API_CALL`] deadline; its
/// failure and its silence are one error.
pub async fn call<T>(
    what: &'static str,
    call: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, ApiError> {
    Ok(api(what, call).await??)
}
