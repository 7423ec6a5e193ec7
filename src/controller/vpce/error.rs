//! The VPC endpoint controller's error, with a bounded `category()` for
//! metrics and a verdict: retry with backoff, or stop and tell the user.

use crate::aws::AwsError;
use crate::controller::reconciler::Failure;
use crate::controller::timeout::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The annotations do not parse (the validating webhook normally
    /// refuses them first). Terminal until they change.
    #[error("{0}")]
    InvalidAnnotations(String),
    /// The spec cannot become a request (no VPC, no subnets). Terminal.
    #[error(transparent)]
    Desired(#[from] super::desired::DesiredError),
    /// AWS refused a request for good (bad parameter, missing subnet,
    /// quota). Terminal: retrying the same request cannot succeed.
    #[error("AWS refused the request: {0}")]
    Rejected(AwsError),
    /// Any other AWS failure; retried with backoff.
    #[error("AWS call failed: {0}")]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Api(#[from] ApiError),
    /// The namespace's account or region cannot be determined.
    #[error(transparent)]
    Scope(#[from] crate::controller::scope::ScopeError),
}

impl From<kube::Error> for Error {
    fn from(e: kube::Error) -> Self {
        Error::Api(e.into())
    }
}

impl Error {
    /// For a call that names user input (create, modify): a terminal AWS
    /// refusal becomes [`Error::Rejected`].
    pub fn from_write(e: AwsError) -> Self {
        if e.is_terminal_for_write() {
            Error::Rejected(e)
        } else {
            Error::Aws(e)
        }
    }

    /// The namespace's role could not be assumed.
    pub fn is_assume_role(&self) -> bool {
        matches!(self, Error::Aws(e) if e.is_assume_role())
    }
}

impl Failure for Error {
    fn is_terminal(&self) -> bool {
        match self {
            Error::InvalidAnnotations(_) | Error::Desired(_) | Error::Rejected(_) => true,
            Error::Scope(e) => e.is_terminal(),
            _ => false,
        }
    }

    fn category(&self) -> &'static str {
        match self {
            Error::InvalidAnnotations(_) => "invalid_annotations",
            Error::Desired(_) => "incomplete_spec",
            Error::Rejected(_) => "aws_rejected",
            Error::Scope(e) => e.category(),
            Error::Aws(e) if e.is_assume_role() => "aws_assume_role",
            Error::Aws(e) => e.kind.category(),
            Error::Api(e) => e.category(),
        }
    }

    fn reason(&self) -> &'static str {
        if self.is_terminal() {
            "ProvisioningFailed"
        } else if self.is_assume_role() {
            "AssumeRoleFailed"
        } else {
            "ReconcileError"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_errors_and_their_categories() {
        let rejected = Error::from_write(AwsError::new(
            "CreateVpcEndpoint",
            "InvalidSubnetID.NotFound",
            "The subnet ID 'subnet-12345678' does not exist",
        ));
        assert!(rejected.is_terminal());
        assert_eq!(rejected.category(), "aws_rejected");
        assert!(rejected.user_message().contains("subnet-12345678"));

        let throttled = Error::from_write(AwsError::new(
            "CreateVpcEndpoint",
            "RequestLimitExceeded",
            "slow down",
        ));
        assert!(!throttled.is_terminal());
        assert_eq!(throttled.category(), "aws_throttled");
        assert_eq!(throttled.reason(), "ReconcileError");
        assert_eq!(rejected.reason(), "ProvisioningFailed");
        assert!(rejected
            .user_message()
            .starts_with("AWS refused the request"));
    }
}
