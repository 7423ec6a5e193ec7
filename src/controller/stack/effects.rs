//! Side effects in CloudFormation, as apply and cleanup report them, and
//! the Kubernetes Event each becomes. The reasons are listed in docs/stacks.md.

use kube::runtime::events::EventType;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    StackCreated {
        name: String,
        id: String,
    },
    /// A change set was executed.
    StackUpdating {
        name: String,
        change_set: String,
    },
    /// The spec's change set had no changes; it was deleted.
    StackUnchanged {
        name: String,
    },
    /// A dead stack (failed create, failed delete, never executed) was
    /// deleted so that the new spec can create it again.
    StackRecreating {
        name: String,
        status: String,
    },
    StackDeleting {
        name: String,
    },
    StackDeleted {
        name: String,
    },
    /// `hawser.io/deletion-policy: retain`.
    StackRetained {
        name: String,
    },
    /// Cleanup found a stack with hawser's name and someone else's tags.
    ForeignStackLeft {
        name: String,
    },
}

impl Effect {
    /// (type, reason, note) of the Event this effect is reported with.
    pub fn event(&self) -> (EventType, &'static str, String) {
        use EventType::{Normal, Warning};
        match self {
            Effect::StackCreated { name, id } => (
                Normal,
                "StackCreated",
                format!("creating CloudFormation stack {name} ({id})"),
            ),
            Effect::StackUpdating { name, change_set } => (
                Normal,
                "StackUpdating",
                format!("executing change set {change_set} on stack {name}"),
            ),
            Effect::StackUnchanged { name } => (
                Normal,
                "StackUnchanged",
                format!("stack {name} already matches: its change set had no changes and was deleted"),
            ),
            Effect::StackRecreating { name, status } => (
                Normal,
                "StackRecreating",
                format!("deleting stack {name} ({status}) to create it again with the new spec"),
            ),
            Effect::StackDeleting { name } => (
                Normal,
                "StackDeleting",
                format!("deleting CloudFormation stack {name}"),
            ),
            Effect::StackDeleted { name } => (
                Normal,
                "StackDeleted",
                format!("deleted CloudFormation stack {name}"),
            ),
            Effect::StackRetained { name } => (
                Normal,
                "StackRetained",
                format!(
                    "hawser.io/deletion-policy is retain: kept CloudFormation stack {name}; it is no longer managed"
                ),
            ),
            Effect::ForeignStackLeft { name } => (
                Warning,
                "ForeignStackLeft",
                format!("stack {name} carries another owner's hawser.io tags; left untouched"),
            ),
        }
    }
}
