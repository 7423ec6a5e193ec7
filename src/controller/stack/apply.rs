//! Makes CloudFormation match [`Desired`], one step per pass: describe,
//! decide ([`machine::next_apply`]), act, report. Idempotent; a stack
//! that matches its spec costs one DescribeStacks and no mutating call,
//! and its resync shares that with every stack in its scope
//! ([`super::resync`]).

use super::desired::Desired;
use super::effects::Effect;
use super::error::{Error, Failure};
use super::machine::{self, ApplyStep, ChangeSetStep, Memo};
use crate::aws::{AwsError, AwsErrorKind, CloudFormationApi, Stack, StackEvent};

/// What a pass found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The stack matches the spec: its outputs are current.
    Ready,
    /// CloudFormation is working: look again after a poll backoff.
    Pending,
    /// Reported on the object; no retry until the inputs change (or a
    /// resync). With `keep_outputs`, the previous outputs stay published.
    Failed {
        failure: Failure,
        keep_outputs: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The stack as last described (None: there is none yet).
    pub stack: Option<Stack>,
    pub verdict: Verdict,
    pub effects: Vec<Effect>,
}

/// `Some` when `stack` (from a shared snapshot) holds the spec: what a
/// pass that described it would report, `memo` brought up the same way.
pub fn unchanged(stack: &Stack, want: &Desired, memo: &mut Memo) -> Option<Applied> {
    (machine::next_apply(Some(stack), want, memo) == ApplyStep::Ready)
        .then(|| ready(stack.clone(), want, memo))
}

/// The stack holds the spec: its outputs are current.
fn ready(stack: Stack, want: &Desired, memo: &mut Memo) -> Applied {
    memo.executed = None;
    memo.applied = Some(want.spec_hash.clone());
    memo.failed_hash = None;
    Applied {
        stack: Some(stack),
        verdict: Verdict::Ready,
        effects: vec![],
    }
}

pub async fn apply<C: CloudFormationApi>(
    cfn: &C,
    want: &Desired,
    memo: &mut Memo,
) -> Result<Applied, Error> {
    let name = want.request.stack_name.clone();
    let stack = cfn.describe_stack(&name).await?;
    let mut effects = Vec::new();
    let step = machine::next_apply(stack.as_ref(), want, memo);
    tracing::debug!(stack = %name, status = stack.as_ref().map(|s| s.status.as_str()), ?step, "stack step");
    match step {
        ApplyStep::Create => {
            match cfn.create_stack(&want.request).await {
                Ok(id) => {
                    // The stack holds this spec from now on, whether the
                    // create succeeds or rolls back.
                    memo.applied = Some(want.spec_hash.clone());
                    memo.executed = Some(want.spec_hash.clone());
                    memo.recreating = None;
                    effects.push(Effect::StackCreated {
                        name: name.clone(),
                        id,
                    })
                }
                // Made meanwhile (a retried pass, another replica): the
                // next look adopts it, or finds it foreign.
                Err(e) if e.kind == AwsErrorKind::Duplicate => {}
                Err(e) if e.kind == AwsErrorKind::Invalid => {
                    memo.failed_hash = Some(want.spec_hash.clone());
                    return Ok(rejected(None, e, false));
                }
                Err(e) => return Err(e.into()),
            }
            look_again(cfn, &name, effects).await
        }
        ApplyStep::Wait => Ok(Applied {
            stack,
            verdict: Verdict::Pending,
            effects,
        }),
        ApplyStep::Ready => Ok(ready(stack.expect("Ready has a stack"), want, memo)),
        ApplyStep::Failed { keep_outputs } => {
            let stack = stack.expect("Failed has a stack");
            // Reported failed: an update is not tried again for this spec,
            // a dead stack is made again at the resync.
            if memo.executed.take().is_some() || !keep_outputs {
                memo.failed_hash = Some(want.spec_hash.clone());
            }
            let why = explain(cfn, &stack).await;
            Ok(Applied {
                stack: Some(stack),
                verdict: Verdict::Failed {
                    failure: Failure::Stack(why),
                    keep_outputs,
                },
                effects,
            })
        }
        ApplyStep::DeleteToRecreate => {
            let stack = stack.expect("DeleteToRecreate has a stack");
            let again = machine::phase(&stack.status) == machine::Phase::DeleteFailed
                && memo.recreating.as_deref() == Some(want.spec_hash.as_str());
            cfn.delete_stack(&stack.id).await?;
            memo.applied = None;
            memo.failed_hash = None;
            if again {
                // Our own deletion failed: say why, and let the resync
                // ask again rather than every poll.
                let why = explain(cfn, &stack).await;
                return Ok(Applied {
                    stack: Some(stack),
                    verdict: Verdict::Failed {
                        failure: Failure::Stack(format!(
                            "{why}; deletion asked again (at every resync), to create the stack anew once it is gone"
                        )),
                        keep_outputs: false,
                    },
                    effects,
                });
            }
            memo.recreating = Some(want.spec_hash.clone());
            effects.push(Effect::StackRecreating {
                name: name.clone(),
                status: stack.status.as_str().to_owned(),
            });
            look_again(cfn, &name, effects).await
        }
        ApplyStep::Foreign => {
            let stack = stack.expect("Foreign has a stack");
            let message = foreign_message(&stack, want);
            Ok(Applied {
                stack: None,
                verdict: Verdict::Failed {
                    failure: Failure::Foreign(message),
                    keep_outputs: true,
                },
                effects,
            })
        }
        ApplyStep::Update => {
            let stack = stack.expect("Update has a stack");
            update(cfn, want, memo, stack, effects).await
        }
    }
}

/// One step of an update through the change set named after the spec:
/// create it, then (next pass) describe and execute it.
async fn update<C: CloudFormationApi>(
    cfn: &C,
    want: &Desired,
    memo: &mut Memo,
    stack: Stack,
    mut effects: Vec<Effect>,
) -> Result<Applied, Error> {
    let name = want.request.stack_name.clone();
    let cs_name = want.change_set_name.as_str();
    let mut cs = cfn.describe_change_set(&name, cs_name).await?;
    if machine::next_change_set(cs.as_ref()) == ChangeSetStep::Create {
        match cfn.create_change_set(cs_name, &want.request).await {
            Ok(_) => {}
            // moto refuses an empty change set at create ("No updates are to be
            // performed.").
            Err(e) if machine::is_no_changes(&e.message) => {
                return Ok(no_changes(want, memo, stack, effects));
            }
            Err(e) if e.kind == AwsErrorKind::Duplicate => {}
            // Another actor is changing the stack: wait, as for any
            // *_IN_PROGRESS status, rather than fail the spec for good.
            Err(e) if machine::is_busy(&e.message) => {
                return Ok(Applied {
                    stack: Some(stack),
                    verdict: Verdict::Pending,
                    effects,
                });
            }
            Err(e) if e.kind == AwsErrorKind::Invalid => {
                memo.failed_hash = Some(want.spec_hash.clone());
                return Ok(rejected(Some(stack), e, true));
            }
            Err(e) => return Err(e.into()),
        }
        // Often computed at once; saves a poll round trip when it is.
        cs = cfn.describe_change_set(&name, cs_name).await?;
    }
    let pending = |stack, effects| {
        Ok(Applied {
            stack: Some(stack),
            verdict: Verdict::Pending,
            effects,
        })
    };
    match machine::next_change_set(cs.as_ref()) {
        ChangeSetStep::Create | ChangeSetStep::Wait => pending(stack, effects),
        ChangeSetStep::Execute => {
            cfn.execute_change_set(&name, cs_name).await?;
            // Until the update ends, the stack holds neither spec for
            // sure: a revert meanwhile must not look like a match.
            memo.applied = None;
            memo.executed = Some(want.spec_hash.clone());
            effects.push(Effect::StackUpdating {
                name: name.clone(),
                change_set: cs_name.to_owned(),
            });
            look_again(cfn, &name, effects).await
        }
        ChangeSetStep::NoChanges => {
            cfn.delete_change_set(&name, cs_name).await?;
            Ok(no_changes(want, memo, stack, effects))
        }
        ChangeSetStep::Failed(reason) => {
            cfn.delete_change_set(&name, cs_name).await?;
            memo.failed_hash = Some(want.spec_hash.clone());
            Ok(Applied {
                stack: Some(stack),
                verdict: Verdict::Failed {
                    failure: Failure::Stack(format!("change set {cs_name} failed: {reason}")),
                    keep_outputs: true,
                },
                effects,
            })
        }
        // The stack is stable (Update is only decided then), so an executed
        // change set has finished (moto keeps executed change sets): the
        // next pass reads its outcome from the stack's status.
        ChangeSetStep::Executing => {
            memo.applied = None;
            memo.executed = Some(want.spec_hash.clone());
            pending(stack, effects)
        }
        ChangeSetStep::Replace => {
            cfn.delete_change_set(&name, cs_name).await?;
            pending(stack, effects)
        }
    }
}

fn no_changes(want: &Desired, memo: &mut Memo, stack: Stack, mut effects: Vec<Effect>) -> Applied {
    memo.applied = Some(want.spec_hash.clone());
    memo.failed_hash = None;
    effects.push(Effect::StackUnchanged {
        name: want.request.stack_name.clone(),
    });
    Applied {
        stack: Some(stack),
        verdict: Verdict::Ready,
        effects,
    }
}

fn rejected(stack: Option<Stack>, e: AwsError, keep_outputs: bool) -> Applied {
    Applied {
        stack,
        verdict: Verdict::Failed {
            failure: Failure::Rejected(e),
            keep_outputs,
        },
        effects: vec![],
    }
}

/// After a mutating call: the stack as it now is, reported as pending;
/// the next pass (after a poll backoff) decides from there.
async fn look_again<C: CloudFormationApi>(
    cfn: &C,
    name: &str,
    effects: Vec<Effect>,
) -> Result<Applied, Error> {
    let stack = cfn.describe_stack(name).await?;
    Ok(Applied {
        stack,
        verdict: Verdict::Pending,
        effects,
    })
}

fn foreign_message(stack: &Stack, want: &Desired) -> String {
    let shown: Vec<String> = want
        .ownership
        .keys()
        .map(|k| format!("{k}={}", stack.tags.get(k).map_or("(none)", String::as_str)))
        .collect();
    let wanted: Vec<String> = want
        .ownership
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "CloudFormation stack {} exists but is not this object's: it is tagged {}, not {}; \
         hawser leaves it alone. Delete or rename that stack (or, if it was retained from an \
         earlier object of this name, delete it) and hawser will create its own",
        stack.name,
        shown.join(", "),
        wanted.join(", ")
    )
}

/// Why the stack is where it is, in CloudFormation's words: the first
/// resource that failed in the latest operation (DescribeStackEvents),
/// else the stack's status reason, else its status.
pub async fn explain<C: CloudFormationApi>(cfn: &C, stack: &Stack) -> String {
    let events = match cfn.stack_events(&stack.id).await {
        Ok(events) => events,
        Err(e) => {
            tracing::debug!(error = %e, "DescribeStackEvents failed; using the status reason");
            vec![]
        }
    };
    let base = format!("stack {} is {}", stack.name, stack.status.as_str());
    match first_failure(&events).or(stack.status_reason.clone()) {
        Some(why) => format!("{base}: {why}"),
        None => base,
    }
}

const STACK_TYPE: &str = "AWS::CloudFormation::Stack";

/// From events newest first: the oldest resource failure since the latest
/// operation on the stack began. "Resource creation cancelled" (a
/// consequence of another failure) is skipped.
pub fn first_failure(events: &[StackEvent]) -> Option<String> {
    let latest_start = events
        .iter()
        .position(|e| {
            e.resource_type == STACK_TYPE
                && e.status.ends_with("_IN_PROGRESS")
                && !e.status.contains("ROLLBACK")
                && !e.status.contains("CLEANUP")
        })
        .unwrap_or(events.len());
    events[..latest_start]
        .iter()
        .rev()
        .find(|e| {
            e.resource_type != STACK_TYPE
                && e.status.ends_with("_FAILED")
                && e.reason
                    .as_deref()
                    .is_some_and(|r| !r.is_empty() && !r.contains("cancelled"))
        })
        .map(|e| {
            format!(
                "{} ({}) {}: {}",
                e.logical_id,
                e.resource_type,
                e.status,
                e.reason.as_deref().unwrap_or_default()
            )
        })
}
