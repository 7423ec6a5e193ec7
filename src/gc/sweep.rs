//! Deletes what [`super::judge`] called garbage, per account and region:
//! endpoints first, then (once those are gone) their groups, then stacks.

use std::time::Duration;

use serde::Serialize;

use super::judge::{Found, Resource};
use crate::annotations::keys::TAG_CLUSTER;
use crate::aws::{AwsErrorKind, CfnProvider, CloudFormationApi, Ec2Api, Ec2Provider, Scope, Tags};

/// What gc did with one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Kept, or not garbage.
    None,
    /// `--dry-run`: garbage, left.
    WouldDelete,
    Deleted,
    /// A stack: DeleteStack was accepted; CloudFormation deletes its
    /// resources in the background.
    DeleteStarted,
    Failed {
        error: String,
    },
}

/// How long the endpoints deleted in one scope may take to go before
/// their groups are tried anyway (a group still in use is left for a
/// later run).
const ENDPOINTS_GONE_WAIT: Duration = Duration::from_secs(180);
const ENDPOINTS_GONE_POLL: Duration = Duration::from_secs(2);

/// Deletes `garbage` (all in `scope`), returning each one's action in
/// the same order.
pub async fn sweep<P: Ec2Provider + CfnProvider>(
    aws: &P,
    scope: &Scope,
    cluster: &str,
    garbage: &[&Found],
) -> Vec<Action> {
    let mut actions = vec![Action::None; garbage.len()];
    let of = |r: Resource| {
        garbage
            .iter()
            .enumerate()
            .filter(move |(_, f)| f.resource == r)
            .map(|(i, f)| (i, *f))
    };
    if garbage.iter().any(|f| f.resource != Resource::Stack) {
        let ec2 = aws.ec2(scope).await;
        let mut deleted = Vec::new();
        for (i, f) in of(Resource::VpcEndpoint) {
            actions[i] = match ec2.delete_endpoint(&f.id).await {
                Ok(()) => {
                    deleted.push(f.id.clone());
                    Action::Deleted
                }
                Err(e) => Action::Failed {
                    error: e.to_string(),
                },
            };
        }
        if !deleted.is_empty() {
            wait_until_gone(&ec2, cluster, &deleted).await;
        }
        for (i, f) in of(Resource::SecurityGroup) {
            actions[i] = match ec2.delete_security_group(&f.id).await {
                Ok(()) => Action::Deleted,
                Err(e) if e.kind == AwsErrorKind::DependencyViolation => Action::Failed {
                    error: format!(
                        "still in use (an endpoint's network interfaces are still being removed); a later run deletes it: {e}"
                    ),
                },
                Err(e) => Action::Failed {
                    error: e.to_string(),
                },
            };
        }
    }
    if garbage.iter().any(|f| f.resource == Resource::Stack) {
        let cfn = aws.cfn(scope).await;
        for (i, f) in of(Resource::Stack) {
            actions[i] = match cfn.delete_stack(&f.id).await {
                Ok(()) => Action::DeleteStarted,
                Err(e) => Action::Failed {
                    error: e.to_string(),
                },
            };
        }
    }
    actions
}

/// Polls until none of `ids` is listed as live, or the wait runs out.
async fn wait_until_gone<E: Ec2Api>(ec2: &E, cluster: &str, ids: &[String]) {
    let tags = Tags::from([(TAG_CLUSTER.to_owned(), cluster.to_owned())]);
    let deadline = tokio::time::Instant::now() + ENDPOINTS_GONE_WAIT;
    while tokio::time::Instant::now() < deadline {
        match ec2.find_endpoints(&tags).await {
            Ok(live)
                if live
                    .iter()
                    .all(|e| e.state.is_gone() || !ids.contains(&e.id)) =>
            {
                return
            }
            Ok(_) => {}
            // The group deletes below say what is wrong, if anything is.
            Err(_) => return,
        }
        tokio::time::sleep(ENDPOINTS_GONE_POLL).await;
    }
}
