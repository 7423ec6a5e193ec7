//! One error type for every AWS call, classified once so the controllers
//! decide on a kind (retry, give up, treat as done) rather than on codes.

use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};

/// What an AWS failure means to a controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AwsErrorKind {
    /// Rate limited; the SDK's adaptive retry already backed off.
    Throttled,
    /// The resource (or one the request names) does not exist.
    NotFound,
    /// Still in use by something else, e.g. a security group by an
    /// endpoint's network interfaces; retry later.
    DependencyViolation,
    /// A resource with that name exists already.
    Duplicate,
    /// The request itself is wrong: a bad parameter, a quota, a mismatch.
    /// Retrying the same request cannot succeed.
    Invalid,
    /// Credentials or IAM permissions; fixable outside hawser, so retried.
    AccessDenied,
    /// 5xx, timeouts and transport failures.
    Unavailable,
    /// Anything else; retried.
    Other,
}

impl AwsErrorKind {
    /// A stable label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            AwsErrorKind::Throttled => "throttled",
            AwsErrorKind::NotFound => "not_found",
            AwsErrorKind::DependencyViolation => "dependency_violation",
            AwsErrorKind::Duplicate => "duplicate",
            AwsErrorKind::Invalid => "invalid",
            AwsErrorKind::AccessDenied => "access_denied",
            AwsErrorKind::Unavailable => "unavailable",
            AwsErrorKind::Other => "other",
        }
    }

    /// The `category` label of `hawser_reconcile_errors_total` for a
    /// failed AWS call.
    pub fn category(self) -> &'static str {
        match self {
            AwsErrorKind::Throttled => "aws_throttled",
            AwsErrorKind::NotFound => "aws_not_found",
            AwsErrorKind::DependencyViolation => "aws_dependency_violation",
            AwsErrorKind::Duplicate => "aws_duplicate",
            AwsErrorKind::Invalid => "aws_invalid",
            AwsErrorKind::AccessDenied => "aws_access_denied",
            AwsErrorKind::Unavailable => "aws_unavailable",
            AwsErrorKind::Other => "aws_other",
        }
    }
}

/// A failed AWS call: which operation, what kind of failure, and AWS's
/// own code and message (shown to users in Events as they are).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation}: {}{message}", code.as_ref().map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct AwsError {
    pub operation: &'static str,
    pub kind: AwsErrorKind,
    pub code: Option<String>,
    pub message: String,
}

impl AwsError {
    pub fn new(operation: &'static str, code: &str, message: impl Into<String>) -> Self {
        Self {
            operation,
            kind: classify(code, None),
            code: Some(code.to_owned()),
            message: message.into(),
        }
    }

    /// Converts an SDK error, reading AWS's error code and HTTP status.
    pub fn from_sdk<E>(operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        if let Some(failed) = super::assume_role::find(&err) {
            return Self {
                operation,
                kind: AwsErrorKind::AccessDenied,
                code: Some(ASSUME_ROLE_FAILED.to_owned()),
                message: failed.to_string(),
            };
        }
        let code = err.code().map(str::to_owned);
        let message = err
            .message()
            .map(str::to_owned)
            .unwrap_or_else(|| aws_sdk_ec2::error::DisplayErrorContext(&err).to_string());
        let kind = match &err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => AwsErrorKind::Unavailable,
            SdkError::ResponseError(r) => classify("", Some(r.raw().status().as_u16())),
            SdkError::ServiceError(s) => classify(
                code.as_deref().unwrap_or(""),
                Some(s.raw().status().as_u16()),
            ),
            _ => AwsErrorKind::Other,
        };
        Self {
            operation,
            kind,
            code,
            message,
        }
    }

    /// Whether the call failed because hawser could not assume the
    /// namespace's role (`aws.hawser.io/role-arn`).
    pub fn is_assume_role(&self) -> bool {
        self.code.as_deref() == Some(ASSUME_ROLE_FAILED)
    }

    /// Whether a write that names user input (CreateVpcEndpoint,
    /// ModifyVpcEndpoint) failed for good: a bad parameter, or a subnet,
    /// VPC or security group that does not exist. A missing endpoint is
    /// not terminal: it was deleted under us, and the next pass re-creates it.
    pub fn is_terminal_for_write(&self) -> bool {
        match self.kind {
            AwsErrorKind::Invalid | AwsErrorKind::Duplicate => true,
            AwsErrorKind::NotFound => !self
                .code
                .as_deref()
                .is_some_and(|c| c.starts_with("InvalidVpcEndpointId")),
            _ => false,
        }
    }
}

/// The code hawser gives a call that failed for want of assumed-role
/// credentials (AWS itself answered the AssumeRole, not this call).
pub const ASSUME_ROLE_FAILED: &str = "AssumeRoleFailed";

/// What an AWS call gives: its answer, or why there is none.
pub type AwsResult<T> = Result<T, AwsError>;

pub type HttpResponse = aws_sdk_ec2::config::http::HttpResponse;

/// Maps AWS's error code (and the HTTP status, when there is no code) to
/// a kind. EC2 codes are dotted (`InvalidSubnetID.NotFound`); the query
/// protocol services use `Throttling`, `ValidationError` and friends.
pub fn classify(code: &str, status: Option<u16>) -> AwsErrorKind {
    match code {
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException"
        | "RequestThrottled"
        | "RequestThrottledException"
        | "SlowDown" => return AwsErrorKind::Throttled,
        "DependencyViolation" | "InvalidGroup.InUse" => return AwsErrorKind::DependencyViolation,
        "UnauthorizedOperation"
        | "AccessDenied"
        | "AccessDeniedException"
        | "AuthFailure"
        | "InvalidClientTokenId"
        | "ExpiredToken"
        | "SignatureDoesNotMatch" => return AwsErrorKind::AccessDenied,
        "InternalError" | "InternalFailure" | "ServiceUnavailable" | "Unavailable" => {
            return AwsErrorKind::Unavailable
        }
        _ => {}
    }
    // CloudFormation spells these as `…NotFound` (the wire code) or
    // `…NotFoundException`, and `AlreadyExistsException`.
    if code.ends_with("NotFound") || code.ends_with("NotFoundException") {
        return AwsErrorKind::NotFound;
    }
    if code.ends_with(".Duplicate") || code.ends_with("AlreadyExistsException") {
        return AwsErrorKind::Duplicate;
    }
    if code.starts_with("Invalid")
        || code.starts_with("Missing")
        || code.starts_with("Unknown")
        || code.ends_with("LimitExceeded")
        || code.ends_with("LimitExceededException")
        || matches!(
            code,
            "ValidationError"
                | "IdempotentParameterMismatch"
                | "OperationNotPermitted"
                | "InsufficientCapabilitiesException"
        )
    {
        return AwsErrorKind::Invalid;
    }
    match status {
        Some(429) => AwsErrorKind::Throttled,
        Some(403) => AwsErrorKind::AccessDenied,
        Some(s) if s >= 500 => AwsErrorKind::Unavailable,
        _ => AwsErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        use AwsErrorKind::*;
        for (code, kind) in [
            ("RequestLimitExceeded", Throttled),
            ("Throttling", Throttled),
            ("DependencyViolation", DependencyViolation),
            ("InvalidVpcEndpointId.NotFound", NotFound),
            ("InvalidSubnetID.NotFound", NotFound),
            ("InvalidGroup.NotFound", NotFound),
            ("InvalidGroup.Duplicate", Duplicate),
            ("InvalidParameterValue", Invalid),
            ("InvalidServiceName", Invalid),
            ("MissingParameter", Invalid),
            ("VpcEndpointLimitExceeded", Invalid),
            ("IdempotentParameterMismatch", Invalid),
            ("UnauthorizedOperation", AccessDenied),
            ("InternalError", Unavailable),
            ("ChangeSetNotFound", NotFound),
            ("StackNotFoundException", NotFound),
            ("AlreadyExistsException", Duplicate),
            ("TokenAlreadyExistsException", Duplicate),
            ("InsufficientCapabilitiesException", Invalid),
            ("LimitExceededException", Invalid),
            ("SomethingNew", Other),
        ] {
            assert_eq!(classify(code, Some(400)), kind, "{code}");
        }
        assert_eq!(classify("", Some(503)), Unavailable);
        assert_eq!(classify("", Some(429)), Throttled);
        assert_eq!(classify("", None), Other);
    }

    #[test]
    fn a_missing_endpoint_is_not_terminal_but_a_missing_subnet_is() {
        let gone = AwsError::new("ModifyVpcEndpoint", "InvalidVpcEndpointId.NotFound", "gone");
        assert!(!gone.is_terminal_for_write());
        let subnet = AwsError::new("CreateVpcEndpoint", "InvalidSubnetID.NotFound", "no subnet");
        assert!(subnet.is_terminal_for_write());
        let throttled = AwsError::new("CreateVpcEndpoint", "RequestLimitExceeded", "slow down");
        assert!(!throttled.is_terminal_for_write());
    }

    #[test]
    fn display_carries_code_and_message() {
        let e = AwsError::new("CreateVpcEndpoint", "InvalidParameter", "bad");
        assert_eq!(e.to_string(), "CreateVpcEndpoint: InvalidParameter: bad");
    }
}
