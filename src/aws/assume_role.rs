//! AssumeRole as hawser uses it: every credential fetch counted in
//! `hawser_aws_api_calls_total{service="sts",operation="AssumeRole"}`, and
//! a failure marked so that the call it broke reports "could not assume
//! role X" rather than a transport error.

use std::sync::Arc;

use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::provider::{error::CredentialsError, future, ProvideCredentials};

use super::CallCounter;

/// The credentials for a role could not be had. Found in the source chain
/// of the SDK error of the call that needed them.
#[derive(Debug, thiserror::Error)]
#[error("could not assume role {role}: {reason}")]
pub struct AssumeRoleFailed {
    pub role: String,
    pub reason: String,
}

/// Finds an [`AssumeRoleFailed`] among `err` and its sources.
pub fn find<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a AssumeRoleFailed> {
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<AssumeRoleFailed>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

pub struct Counted {
    inner: AssumeRoleProvider,
    role: String,
    calls: Arc<CallCounter>,
}

impl std::fmt::Debug for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counted").field("role", &self.role).finish()
    }
}

impl Counted {
    pub fn new(inner: AssumeRoleProvider, role: &str, calls: Arc<CallCounter>) -> Self {
        Self {
            inner,
            role: role.to_owned(),
            calls,
        }
    }
}

impl ProvideCredentials for Counted {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            match self.inner.provide_credentials().await {
                Ok(creds) => {
                    self.calls.record_outcome("sts", "AssumeRole", "success");
                    Ok(creds)
                }
                Err(e) => {
                    self.calls.record_outcome("sts", "AssumeRole", "error");
                    let reason = aws_sdk_ec2::error::DisplayErrorContext(&e).to_string();
                    Err(CredentialsError::provider_error(AssumeRoleFailed {
                        role: self.role.clone(),
                        reason,
                    }))
                }
            }
        })
    }
}
