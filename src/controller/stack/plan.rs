//! What a pass would do to the stack, as actions: for a plan-only object
//! ([`crate::controller::planned`]) and `hawser plan`. Pure.

use super::desired::{is_owned, Desired};
use super::machine::{self, ApplyStep, Memo};
use crate::annotations::{template_resources, DeletionPolicy};
use crate::aws::Stack;
use crate::controller::planned::{Action, Verb};

/// Creating the stack `want` describes: its name and the template's
/// resources.
pub fn create(want: &Desired) -> Action {
    let resources: Vec<String> = template_resources(&want.request.template_body)
        .into_iter()
        .map(|(id, kind)| format!("{id} ({kind})"))
        .collect();
    Action::new(
        Verb::Create,
        "stack",
        None,
        format!(
            "{}: add {}",
            want.request.stack_name,
            resources.join("; add ")
        ),
    )
}

/// The apply pass's next step as actions. An update is named, not
/// detailed: its resource changes need a change set, which is a write
/// (`hawser plan` makes one). Waiting, a reported failure and a foreign
/// stack make no AWS change.
pub fn apply(stack: Option<&Stack>, want: &Desired, memo: &Memo) -> Vec<Action> {
    match machine::next_apply(stack, want, memo) {
        ApplyStep::Create => vec![create(want)],
        ApplyStep::Update => {
            let stack = stack.expect("Update has a stack");
            vec![Action::new(
                Verb::Modify,
                "stack",
                Some(&stack.name),
                "update to the annotations' template, parameters and capabilities (`hawser plan` \
                 lists the resource changes)",
            )]
        }
        ApplyStep::DeleteToRecreate => {
            let stack = stack.expect("DeleteToRecreate has a stack");
            vec![
                Action::new(
                    Verb::Delete,
                    "stack",
                    Some(&stack.name),
                    format!("dead ({}), to be created anew", stack.status.as_str()),
                ),
                create(want),
            ]
        }
        ApplyStep::Wait | ApplyStep::Ready | ApplyStep::Failed { .. } | ApplyStep::Foreign => {
            vec![]
        }
    }
}

/// The cleanup pass as actions: the object's live stack deleted, or
/// released with `retain`.
pub fn cleanup(
    stack: Option<&Stack>,
    ownership: &crate::aws::Tags,
    policy: DeletionPolicy,
) -> Vec<Action> {
    match stack {
        Some(s)
            if is_owned(s, ownership) && machine::phase(&s.status) != machine::Phase::Deleted =>
        {
            let verb = match policy {
                DeletionPolicy::Retain => Verb::Release,
                DeletionPolicy::Delete => Verb::Delete,
            };
            vec![Action::new(
                verb,
                "stack",
                Some(&s.name),
                "the object is deleted or no longer asks for it",
            )]
        }
        _ => vec![],
    }
}
