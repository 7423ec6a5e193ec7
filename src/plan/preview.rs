//! A stack update previewed through a change set that is created,
//! described and deleted, never executed: the only writes `hawser plan`
//! makes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::aws::{ChangeSetStatus, CloudFormationApi, ResourceChange};
use crate::controller::stack::desired::Desired;
use crate::controller::stack::machine::is_no_changes;

/// How long CloudFormation may take to compute the change set.
const WAIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_secs(1);

/// A name no controller's change set has (those are `hawser-<hash>`),
/// unique per run: CloudFormation (and moto, across stacks) looks change
/// sets up by name.
fn change_set_name(stack: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let digest = Sha256::digest(format!("{stack}/{now}/{}", std::process::id()).as_bytes());
    let hex: String = digest[..10].iter().map(|b| format!("{b:02x}")).collect();
    format!("hawser-plan-{hex}")
}

/// What an update of the stack to `want` would change; empty when
/// nothing. The change set is deleted whatever happens.
pub async fn preview<C: CloudFormationApi>(
    cfn: &C,
    want: &Desired,
) -> Result<Vec<ResourceChange>, String> {
    let stack = want.request.stack_name.as_str();
    let name = change_set_name(stack);
    match cfn.create_change_set(&name, &want.request).await {
        Ok(_) => {}
        // moto refuses an empty change set at create.
        Err(e) if is_no_changes(&e.message) => return Ok(vec![]),
        Err(e) => return Err(format!("CreateChangeSet: {e}")),
    }
    let outcome = wait(cfn, stack, &name).await;
    let deleted = cfn.delete_change_set(stack, &name).await;
    let changes = outcome?;
    deleted.map_err(|e| format!("DeleteChangeSet {name} (delete it by hand): {e}"))?;
    Ok(changes)
}

async fn wait<C: CloudFormationApi>(
    cfn: &C,
    stack: &str,
    name: &str,
) -> Result<Vec<ResourceChange>, String> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let cs = cfn
            .describe_change_set(stack, name)
            .await
            .map_err(|e| format!("DescribeChangeSet: {e}"))?
            .ok_or_else(|| format!("change set {name} vanished"))?;
        match cs.status {
            ChangeSetStatus::CreateComplete => return Ok(cs.resource_changes),
            ChangeSetStatus::Failed => {
                let reason = cs.status_reason.unwrap_or_default();
                return match is_no_changes(&reason) {
                    true => Ok(vec![]),
                    false => Err(format!("CloudFormation refused the update: {reason}")),
                };
            }
            ChangeSetStatus::CreatePending | ChangeSetStatus::CreateInProgress => {}
            other => return Err(format!("change set {name} is {other:?}")),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "change set {name} not computed within {}s",
                WAIT.as_secs()
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// One line: the resources a change set adds, modifies and removes.
pub fn describe(changes: &[ResourceChange]) -> String {
    changes
        .iter()
        .map(|c| {
            let replacement = match c.replacement.as_deref() {
                Some("True") => ", replaced",
                Some("Conditional") => ", maybe replaced",
                _ => "",
            };
            format!(
                "{} {} ({}{replacement})",
                c.action, c.logical_id, c.resource_type
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
