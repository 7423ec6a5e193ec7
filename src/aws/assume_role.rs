//! AssumeRole as hawser uses it: every credential fetch counted in
//! `hawser_aws_api_calls_total{service="sts",operation="AssumeRole"}`, and
//! a failure marked so that the call it broke reports "could not assume
//! role X" rather than a transport error.

use std::sync::Arc;

use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::provider::{error::CredentialsError, future, ProvideCredentials};

use super::{ops::sts::ASSUME_ROLE, CallCounter};

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

/// STS's own code and message when it answered (e.g. `AccessDenied: User
/// ... is not authorized to perform: sts:AssumeRole`), else the error's
/// chain, briefly.
fn sts_reason(e: &CredentialsError) -> String {
    use aws_sdk_sts::error::{ProvideErrorMetadata, SdkError};
    use aws_sdk_sts::operation::assume_role::AssumeRoleError;
    type StsError = SdkError<AssumeRoleError, aws_sdk_sts::config::http::HttpResponse>;
    let mut current: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(err) = current {
        if let Some(sdk) = err.downcast_ref::<StsError>() {
            if let Some(code) = sdk.code() {
                return format!("{code}: {}", sdk.message().unwrap_or_default());
            }
        }
        current = err.source();
    }
    aws_sdk_ec2::error::DisplayErrorContext(e).to_string()
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
                    self.calls.record_outcome(ASSUME_ROLE, "success");
                    Ok(creds)
                }
                Err(e) => {
                    self.calls.record_outcome(ASSUME_ROLE, "error");
                    let reason = sts_reason(&e);
                    Err(CredentialsError::provider_error(AssumeRoleFailed {
                        role: self.role.clone(),
                        reason,
                    }))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::AwsError;
    use aws_sdk_ec2::config::{BehaviorVersion, Region};

    #[derive(Debug)]
    struct Refused;

    impl ProvideCredentials for Refused {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            future::ProvideCredentials::ready(Err(CredentialsError::provider_error(
                AssumeRoleFailed {
                    role: "arn:aws:iam::111111111111:role/tenant".into(),
                    reason: "AccessDenied: not authorized to perform sts:AssumeRole".into(),
                },
            )))
        }
    }

    /// The real SDK, its credentials refused: the EC2 call's error names
    /// the role and AWS's reason, and reads as an AssumeRole failure.
    #[tokio::test]
    async fn a_refused_assume_role_is_recognised_in_the_failed_call() {
        let conf = aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-west-2"))
            .credentials_provider(Refused)
            // Never reached: signing fails first.
            .endpoint_url("http://127.0.0.1:9")
            .build();
        let err = aws_sdk_ec2::Client::from_conf(conf)
            .describe_vpcs()
            .send()
            .await
            .unwrap_err();
        let e = AwsError::from_sdk("DescribeVpcs", err);
        assert!(e.is_assume_role(), "{e:?}");
        assert!(
            e.message.contains("tenant") && e.message.contains("not authorized"),
            "{e}"
        );
    }
}
