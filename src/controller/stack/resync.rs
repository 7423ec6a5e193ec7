//! A resync pass of an object whose inputs have not changed since it
//! settled: confirmed from the scope's shared snapshot of its stacks (see
//! [`crate::controller::inventory`]) instead of a DescribeStacks of its
//! own.

use std::{collections::HashMap, time::Duration};

use tokio::time::Instant;

use super::apply::{unchanged, Applied};
use super::desired::Desired;
use super::error::Error;
use super::machine::Memo;
use crate::annotations::keys::TAG_CLUSTER;
use crate::aws::{CloudFormationApi, Scope, Stack};
use crate::controller::inventory::Inventory;

/// The stacks hawser's cluster tag marks in one scope, by name; `None`
/// where IAM refuses a DescribeStacks without a name.
type ByName = Option<HashMap<String, Stack>>;

pub struct Snapshots {
    cluster: String,
    stacks: Inventory<ByName>,
}

impl Snapshots {
    pub fn new(cluster: &str, resync: Duration) -> Self {
        Self {
            cluster: cluster.to_owned(),
            stacks: Inventory::new(resync),
        }
    }

    /// `Some` when the snapshot (begun after the object `settled`) shows
    /// the stack holding the spec, as a pass that described it would find
    /// (`memo` brought up the same way); `None` when the pass must look
    /// for itself: the stack is not in the snapshot, is working, failed,
    /// or differs, or IAM grants DescribeStacks on hawser's stacks only
    /// (the snapshot needs it on `*`; the narrower grant costs one
    /// DescribeStacks per object).
    pub async fn confirm<C: CloudFormationApi>(
        &self,
        cfn: &C,
        scope: &Scope,
        settled: Instant,
        want: &Desired,
        memo: &mut Memo,
    ) -> Result<Option<Applied>, Error> {
        let stacks = self
            .stacks
            .get(scope, settled, || async {
                match cfn.describe_stacks_tagged(TAG_CLUSTER, &self.cluster).await {
                    Ok(ours) => Ok(Some(
                        ours.into_iter().map(|s| (s.name.clone(), s)).collect(),
                    )),
                    // IAM's refusal itself, not expired or bad credentials
                    // (also AccessDenied in kind), which the object's own
                    // look reports.
                    Err(e) if e.code.as_deref() == Some("AccessDenied") => {
                        tracing::warn!(
                            region = %scope.region,
                            role = scope.role_arn.as_deref().unwrap_or("(hawser's own)"),
                            error = %e,
                            "DescribeStacks without a stack name is refused: each stack's resync \
                             describes it by name (grant cloudformation:DescribeStacks on \"*\" \
                             for one look per account and region)"
                        );
                        Ok(None)
                    }
                    Err(e) => Err(e),
                }
            })
            .await?;
        Ok(stacks
            .as_ref()
            .as_ref()
            .and_then(|by_name| by_name.get(&want.request.stack_name))
            .and_then(|stack| unchanged(stack, want, memo)))
    }
}
