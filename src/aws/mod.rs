//! Thin clients over the AWS SDK: one trait per AWS surface ([`Ec2Api`],
//! [`CloudFormationApi`], [`StsApi`]), implemented over aws-sdk-* and, in
//! tests, in memory.
//!
//! Clients are built lazily, one set per [`Scope`] (region + assumed
//! role), and cached: each has its own adaptive retry budget, so one
//! throttled account or region does not slow the others down. Every call
//! is counted in `hawser_aws_api_calls_total{service,operation,outcome}`
//! under its entry in [`ops`], the one list of the operations hawser calls
//! (and of the IAM actions `docs/iam-policy.json` must grant).

mod assume_role;
mod cfn;
mod ec2;
mod error;
#[cfg(test)]
pub mod fake;
#[cfg(test)]
pub mod fake_cfn;
pub mod ops;
mod sdk_cfn;
mod sdk_ec2;
mod sts;
pub mod tags;

use std::{collections::HashMap, future::Future, sync::Arc};

use aws_config::{retry::RetryConfig, sts::AssumeRoleProvider, BehaviorVersion, Region};
use aws_sdk_ec2::config::retry::RetryPartition;
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use prometheus::IntCounterVec;
use tokio::sync::Mutex;

pub use assume_role::AssumeRoleFailed;
pub use cfn::{
    ChangeSet, ChangeSetStatus, CloudFormationApi, ResourceChange, Stack, StackEvent, StackRequest,
    StackStatus, StackSummary,
};
pub use ec2::{
    carries, with_default_tags, CidrRule, CreateEndpoint, CreateSecurityGroup, Ec2Api, Endpoint,
    EndpointState, ModifyEndpoint, SecurityGroup, Tags,
};
pub use error::{classify, AwsError, AwsErrorKind, AwsResult};
pub use ops::Op;
pub use sdk_cfn::SdkCfn;
pub use sdk_ec2::SdkEc2;
pub use sts::{CallerIdentity, SdkSts, StsApi};

use crate::metrics::Metrics;
use error::HttpResponse;

/// Session name hawser uses when it assumes a role for no namespace in
/// particular; shows in CloudTrail.
pub const SESSION_NAME: &str = "hawser";

/// Which credentials and region a call runs with. The role comes from a
/// namespace's `aws.hawser.io/role-arn`, the region from
/// `aws.hawser.io/region` (namespace or Service) or `--region`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub region: String,
    /// `None`: hawser's own identity.
    pub role_arn: Option<String>,
    /// The AssumeRole session name (`hawser-<namespace>`); `None`:
    /// [`SESSION_NAME`]. Part of the cache key, so each namespace's calls
    /// show in CloudTrail under its own session.
    pub session_name: Option<String>,
}

impl Scope {
    /// hawser's own identity in `region`.
    pub fn own(region: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            role_arn: None,
            session_name: None,
        }
    }

    /// Whose request budget this scope's calls spend: AWS throttles per
    /// account and region, so every client of one account (the role ARN's)
    /// and region shares one SDK retry partition, and so one client-side
    /// rate limiter and retry quota; another account's throttling never
    /// slows it. hawser's own identity is its own partition.
    pub fn retry_partition(&self, service: &str) -> String {
        let account = self
            .role_arn
            .as_deref()
            .and_then(|arn| arn.split(':').nth(4))
            .filter(|a| !a.is_empty())
            .unwrap_or("own");
        format!("hawser-{service}-{}-{account}", self.region)
    }
}

/// `--aws-retry-mode`: the SDK's retry strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum RetryMode {
    /// Backoff plus a client-side rate limiter that adapts to throttling.
    #[default]
    Adaptive,
    /// Exponential backoff with jitter.
    Standard,
}

/// How the AWS clients are configured; from the command line.
#[derive(Debug, Clone)]
pub struct AwsSettings {
    /// The default region (`--region`, `AWS_REGION`, `AWS_DEFAULT_REGION`:
    /// [`crate::annotations::default_region`]); without one, the SDK's
    /// chain (a profile, the instance metadata).
    pub region: Option<String>,
    /// `--aws-endpoint-url`; without it, the SDK's `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    pub retry_mode: RetryMode,
    /// Attempts per call, the first included.
    pub max_attempts: u32,
    /// The longest one attempt of an EC2, CloudFormation or STS call may
    /// wait for its answer before it is given up (and retried).
    pub attempt_timeout: std::time::Duration,
}

/// `--aws-attempt-timeout`'s default.
pub const DEFAULT_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Default for AwsSettings {
    fn default() -> Self {
        Self {
            region: None,
            endpoint_url: None,
            retry_mode: RetryMode::Adaptive,
            max_attempts: 5,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
        }
    }
}

/// Counts AWS calls by service, operation (both from an [`ops`] entry)
/// and outcome (`success` or an [`AwsErrorKind`] label); all bounded sets.
pub struct CallCounter {
    calls: IntCounterVec,
}

impl CallCounter {
    pub fn new(metrics: &Metrics) -> Self {
        Self {
            calls: metrics.aws_api_calls.clone(),
        }
    }

    pub fn record<T>(&self, op: Op, result: &Result<T, AwsError>) {
        let outcome = match result {
            Ok(_) => "success",
            Err(e) => e.kind.as_str(),
        };
        self.record_outcome(op, outcome);
    }

    pub fn record_outcome(&self, op: Op, outcome: &str) {
        self.calls
            .with_label_values(&[op.service, op.name, outcome])
            .inc();
    }

    /// Awaits one SDK call, converting its error and counting its outcome.
    pub async fn call<T, E>(
        &self,
        op: Op,
        request: impl Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    ) -> Result<T, AwsError>
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let result = request.await.map_err(|e| AwsError::from_sdk(op.name, e));
        self.record(op, &result);
        result
    }
}

/// Hands out the EC2 client for a scope. The controllers are generic over
/// it so their tests run against [`fake::FakeEc2`].
pub trait Ec2Provider: Send + Sync + 'static {
    type Ec2: Ec2Api + 'static;
    fn ec2(&self, scope: &Scope) -> impl Future<Output = Self::Ec2> + Send;
}

/// Hands out the CloudFormation client for a scope; the stack controller
/// is generic over it so its tests run against [`fake_cfn::FakeCfn`].
pub trait CfnProvider: Send + Sync + 'static {
    type Cfn: CloudFormationApi + 'static;
    fn cfn(&self, scope: &Scope) -> impl Future<Output = Self::Cfn> + Send;
}

#[derive(Clone)]
struct ScopedClients {
    ec2: SdkEc2,
    cfn: SdkCfn,
    sts: SdkSts,
}

/// The SDK clients, one set per [`Scope`], built on first use.
pub struct AwsClients {
    base: aws_config::SdkConfig,
    /// The scoped clients' timeouts (not SQS's: its long polls wait 20 s).
    timeouts: aws_config::timeout::TimeoutConfig,
    default_region: String,
    calls: Arc<CallCounter>,
    cache: Mutex<HashMap<Scope, ScopedClients>>,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "no AWS region: pass --region (HAWSER_REGION) or set AWS_REGION for the controllers to use"
)]
pub struct NoRegion;

impl AwsClients {
    /// Loads the SDK's shared configuration (credentials chain, endpoint
    /// and region from the environment), overridden by `settings`.
    pub async fn load(settings: &AwsSettings, metrics: &Metrics) -> Result<Self, NoRegion> {
        let retry = match settings.retry_mode {
            // The client slows itself down when throttled, on top of
            // retrying with exponential backoff; the limiter is shared by
            // every client of one account and region (Scope::retry_partition).
            RetryMode::Adaptive => RetryConfig::adaptive(),
            RetryMode::Standard => RetryConfig::standard(),
        };
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry.with_max_attempts(settings.max_attempts));
        if let Some(region) = &settings.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &settings.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let base = loader.load().await;
        let default_region = base.region().map(|r| r.to_string()).ok_or(NoRegion)?;
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            // The SDK's default for connecting; it has no default for an
            // answer, so a connection that is accepted and never answered
            // would hold the reconcile until the connection fails.
            .connect_timeout(std::time::Duration::from_millis(3100))
            .operation_attempt_timeout(settings.attempt_timeout)
            .build();
        Ok(Self {
            base,
            timeouts,
            default_region,
            calls: Arc::new(CallCounter::new(metrics)),
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn default_region(&self) -> &str {
        &self.default_region
    }

    /// hawser's own identity in the default region.
    pub fn default_scope(&self) -> Scope {
        Scope::own(self.default_region.clone())
    }

    pub fn endpoint_url(&self) -> Option<&str> {
        self.base.endpoint_url()
    }

    async fn scoped(&self, scope: &Scope) -> ScopedClients {
        let mut cache = self.cache.lock().await;
        if let Some(found) = cache.get(scope) {
            return found.clone();
        }
        let region = Region::new(scope.region.clone());
        let mut conf = self
            .base
            .to_builder()
            .region(region.clone())
            .timeout_config(self.timeouts.clone());
        if let Some(role) = &scope.role_arn {
            // Credentials are fetched on first use, not here, and cached by
            // the client's identity cache, which refreshes them before
            // they expire.
            let provider = AssumeRoleProvider::builder(role)
                .session_name(scope.session_name.as_deref().unwrap_or(SESSION_NAME))
                .region(region)
                .configure(&self.base)
                .build()
                .await;
            let counted = assume_role::Counted::new(provider, role, self.calls.clone());
            conf = conf
                .credentials_provider(aws_sdk_ec2::config::SharedCredentialsProvider::new(counted));
        }
        let conf = conf.build();
        // The SDK's default partition is per service and region, shared by
        // every account: one per account instead (see Scope::retry_partition).
        let ec2 = aws_sdk_ec2::config::Builder::from(&conf)
            .retry_partition(RetryPartition::new(scope.retry_partition("ec2")))
            .build();
        let cfn = aws_sdk_cloudformation::config::Builder::from(&conf)
            .retry_partition(RetryPartition::new(scope.retry_partition("cloudformation")))
            .build();
        let sts = aws_sdk_sts::config::Builder::from(&conf)
            .retry_partition(RetryPartition::new(scope.retry_partition("sts")))
            .build();
        let clients = ScopedClients {
            ec2: SdkEc2::new(aws_sdk_ec2::Client::from_conf(ec2), self.calls.clone()),
            cfn: SdkCfn::new(
                aws_sdk_cloudformation::Client::from_conf(cfn),
                self.calls.clone(),
            ),
            sts: SdkSts::new(aws_sdk_sts::Client::from_conf(sts), self.calls.clone()),
        };
        cache.insert(scope.clone(), clients.clone());
        clients
    }

    /// An SQS client in `region` with hawser's own identity, and the
    /// counter its calls are recorded in.
    pub fn sqs(&self, region: &str) -> (aws_sdk_sqs::Client, Arc<CallCounter>) {
        let scope = Scope::own(region);
        let conf = aws_sdk_sqs::config::Builder::from(&self.base)
            .region(Region::new(region.to_owned()))
            .retry_partition(RetryPartition::new(scope.retry_partition("sqs")))
            .build();
        (aws_sdk_sqs::Client::from_conf(conf), self.calls.clone())
    }

    pub async fn sts(&self, scope: &Scope) -> SdkSts {
        self.scoped(scope).await.sts
    }
}

impl Ec2Provider for AwsClients {
    type Ec2 = SdkEc2;
    async fn ec2(&self, scope: &Scope) -> SdkEc2 {
        self.scoped(scope).await.ec2
    }
}

impl<T: Ec2Provider> Ec2Provider for Arc<T> {
    type Ec2 = T::Ec2;
    fn ec2(&self, scope: &Scope) -> impl Future<Output = Self::Ec2> + Send {
        T::ec2(self, scope)
    }
}

impl CfnProvider for AwsClients {
    type Cfn = SdkCfn;
    async fn cfn(&self, scope: &Scope) -> SdkCfn {
        self.scoped(scope).await.cfn
    }
}

impl<T: CfnProvider> CfnProvider for Arc<T> {
    type Cfn = T::Cfn;
    fn cfn(&self, scope: &Scope) -> impl Future<Output = Self::Cfn> + Send {
        T::cfn(self, scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(region: &str, role: Option<&str>, session: &str) -> Scope {
        Scope {
            region: region.into(),
            role_arn: role.map(str::to_owned),
            session_name: Some(session.into()),
        }
    }

    #[tokio::test]
    async fn one_retry_partition_per_account_and_region() {
        let metrics = Metrics::new().unwrap();
        let settings = AwsSettings {
            region: Some("eu-west-1".into()),
            endpoint_url: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        };
        let clients = AwsClients::load(&settings, &metrics).await.unwrap();
        let a1 = scope(
            "eu-west-1",
            Some("arn:aws:iam::111122223333:role/a"),
            "hawser-x",
        );
        // Another role and session in the same account and region.
        let a2 = scope(
            "eu-west-1",
            Some("arn:aws:iam::111122223333:role/b"),
            "hawser-y",
        );
        let b = scope(
            "eu-west-1",
            Some("arn:aws:iam::444455556666:role/a"),
            "hawser-x",
        );
        let a_elsewhere = scope(
            "us-east-1",
            Some("arn:aws:iam::111122223333:role/a"),
            "hawser-x",
        );
        let own = Scope::own("eu-west-1");
        let mut partitions = Vec::new();
        for s in [&a1, &a2, &b, &a_elsewhere, &own] {
            partitions.push(clients.ec2(s).await.retry_partition().unwrap());
        }
        assert_eq!(partitions[0], "hawser-ec2-eu-west-1-111122223333");
        assert_eq!(
            partitions[0], partitions[1],
            "one account shares one limiter"
        );
        assert_ne!(partitions[0], partitions[2], "another account has its own");
        assert_ne!(partitions[0], partitions[3], "another region has its own");
        assert_eq!(partitions[4], "hawser-ec2-eu-west-1-own");
    }

    #[tokio::test]
    async fn every_scoped_client_gives_up_an_unanswered_attempt() {
        let metrics = Metrics::new().unwrap();
        let settings = AwsSettings {
            region: Some("eu-west-1".into()),
            endpoint_url: Some("http://127.0.0.1:9".into()),
            attempt_timeout: std::time::Duration::from_secs(7),
            ..Default::default()
        };
        let clients = AwsClients::load(&settings, &metrics).await.unwrap();
        let role = scope("us-east-1", Some("arn:aws:iam::111122223333:role/a"), "x");
        for s in [Scope::own("eu-west-1"), role] {
            assert_eq!(
                clients.ec2(&s).await.attempt_timeout(),
                Some(std::time::Duration::from_secs(7))
            );
        }
    }
}
