//! The STS surface: who hawser is. Checked at start-up (it gates
//! `/readyz`) and logged, so a wrong account shows before anything is made.

use std::{future::Future, sync::Arc};

use super::{ops::sts::GET_CALLER_IDENTITY, AwsError, CallCounter};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub account: String,
    pub arn: String,
}

pub trait StsApi: Send + Sync {
    fn caller_identity(&self) -> impl Future<Output = Result<CallerIdentity, AwsError>> + Send;
}

#[derive(Clone)]
pub struct SdkSts {
    client: aws_sdk_sts::Client,
    calls: Arc<CallCounter>,
}

impl SdkSts {
    pub fn new(client: aws_sdk_sts::Client, calls: Arc<CallCounter>) -> Self {
        Self { client, calls }
    }
}

impl StsApi for SdkSts {
    async fn caller_identity(&self) -> Result<CallerIdentity, AwsError> {
        let out = self
            .client
            .get_caller_identity()
            .send()
            .await
            .map(|out| CallerIdentity {
                account: out.account().unwrap_or_default().to_owned(),
                arn: out.arn().unwrap_or_default().to_owned(),
            })
            .map_err(|e| AwsError::from_sdk(GET_CALLER_IDENTITY.name, e));
        self.calls.record(GET_CALLER_IDENTITY, &out);
        out
    }
}
