//! Side effects in CloudFormation, as apply and cleanup report them, and
//! the Kubernetes Event each becomes. The reasons are listed in docs/stacks.md.

use std::fmt;

use kube::runtime::events::EventType;

#[derive(Debug, Clone, PartialEq, Eq, strum::IntoStaticStr)]
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
    /// (type, reason, note) of the Event this effect is reported with;
    /// the reason is the variant's name.
    pub fn event(&self) -> (EventType, &'static str, String) {
        let type_ = match self {
            Effect::ForeignStackLeft { .. } => EventType::Warning,
            _ => EventType::Normal,
        };
        (type_, self.into(), self.to_string())
    }
}

/// The Event's note.
impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::StackCreated { name, id } => {
                write!(f, "creating CloudFormation stack {name} ({id})")
            }
            Effect::StackUpdating { name, change_set } => {
                write!(f, "executing change set {change_set} on stack {name}")
            }
            Effect::StackUnchanged { name } => write!(
                f,
                "stack {name} already matches: its change set had no changes and was deleted"
            ),
            Effect::StackRecreating { name, status } => write!(
                f,
                "deleting stack {name} ({status}) to create it again with the new spec"
            ),
            Effect::StackDeleting { name } => write!(f, "deleting CloudFormation stack {name}"),
            Effect::StackDeleted { name } => write!(f, "deleted CloudFormation stack {name}"),
            Effect::StackRetained { name } => write!(
                f,
                "hawser.io/deletion-policy is retain: kept CloudFormation stack {name}; it is no longer managed"
            ),
            Effect::ForeignStackLeft { name } => write!(
                f,
                "stack {name} carries another owner's hawser.io tags; left untouched"
            ),
        }
    }
}
