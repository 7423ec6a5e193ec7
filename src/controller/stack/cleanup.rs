//! Deletes (or, with `retain`, lets go of) an object's stack. Works from
//! the stack name and ownership tags alone, so it needs neither a valid
//! spec nor a previous successful apply.

use super::apply::explain;
use super::effects::Effect;
use super::error::Error;
use super::machine::{self, CleanupStep};
use super::released::{self, PolicyMark};
use crate::annotations::DeletionPolicy;
use crate::aws::{CloudFormationApi, Stack, StackStatus, Tags};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleanup {
    /// Nothing of the object's is left (or it is retained, or not ours):
    /// the finalizer may go.
    Done(Vec<Effect>),
    /// Deletion is under way; look again after a poll backoff.
    Waiting { stack: Stack, effects: Vec<Effect> },
    /// DELETE_FAILED: deletion was asked again; look again after a
    /// failure backoff. `why` names the resource that would not go.
    DeleteFailed {
        stack: Stack,
        effects: Vec<Effect>,
        why: String,
    },
}

/// Adds the release mark to the stack's policy, unless it is there (or
/// the policy is not one hawser can extend: `hawser gc` leaves a stack
/// with a policy it did not write alone, too).
async fn mark_released<C: CloudFormationApi>(cfn: &C, stack: &Stack) -> Result<(), Error> {
    let policy = cfn.stack_policy(&stack.id).await?;
    if released::read(policy.as_deref()) == PolicyMark::Released {
        return Ok(());
    }
    if let Some(body) = released::with_mark(policy.as_deref()) {
        cfn.set_stack_policy(&stack.id, &body).await?;
    }
    Ok(())
}

pub async fn cleanup<C: CloudFormationApi>(
    cfn: &C,
    name: &str,
    ownership: &Tags,
    policy: DeletionPolicy,
) -> Result<Cleanup, Error> {
    if policy == DeletionPolicy::Retain {
        // The stack keeps its tags (changing them would be a stack update,
        // touching every resource) and, its owner's uid being gone, is
        // never adopted by a later object; its policy is marked so that
        // `hawser gc` leaves it too.
        let stack = cfn.describe_stack(name).await?;
        if machine::next_cleanup(stack.as_ref(), ownership) != CleanupStep::Foreign {
            if let Some(stack) =
                stack.filter(|s| machine::phase(&s.status) != machine::Phase::Deleted)
            {
                mark_released(cfn, &stack).await?;
            }
        }
        return Ok(Cleanup::Done(vec![Effect::StackRetained {
            name: name.to_owned(),
        }]));
    }
    let stack = cfn.describe_stack(name).await?;
    let mut effects = Vec::new();
    match machine::next_cleanup(stack.as_ref(), ownership) {
        CleanupStep::Done => Ok(Cleanup::Done(effects)),
        CleanupStep::Foreign => Ok(Cleanup::Done(vec![Effect::ForeignStackLeft {
            name: name.to_owned(),
        }])),
        CleanupStep::Wait => Ok(Cleanup::Waiting {
            stack: stack.expect("Wait has a stack"),
            effects,
        }),
        CleanupStep::Delete => {
            let stack = stack.expect("Delete has a stack");
            let why = if stack.status == StackStatus::DeleteFailed {
                Some(explain(cfn, &stack).await)
            } else {
                None
            };
            // By id: a stack deleted by name vanishes from DescribeStacks,
            // by id it shows DELETE_COMPLETE; either is fine below.
            cfn.delete_stack(&stack.id).await?;
            effects.push(Effect::StackDeleting {
                name: name.to_owned(),
            });
            // One more look: deletion is often quick (moto: immediate).
            match cfn.describe_stack(name).await? {
                None => {
                    effects.push(Effect::StackDeleted {
                        name: name.to_owned(),
                    });
                    Ok(Cleanup::Done(effects))
                }
                Some(now) if machine::phase(&now.status) == machine::Phase::Deleted => {
                    effects.push(Effect::StackDeleted {
                        name: name.to_owned(),
                    });
                    Ok(Cleanup::Done(effects))
                }
                Some(now) => match why {
                    Some(why) => Ok(Cleanup::DeleteFailed {
                        stack: now,
                        effects,
                        why,
                    }),
                    None => Ok(Cleanup::Waiting {
                        stack: now,
                        effects,
                    }),
                },
            }
        }
    }
}
