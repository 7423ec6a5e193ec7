//! What a controller would do in AWS, as plain records: `hawser plan`
//! prints them, and a plan-only object (`hawser.io/plan-only: "true"`, or
//! `--plan-only`) gets them in its `hawser.io/plan` annotation and an
//! Event instead of the calls.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verb {
    Create,
    Modify,
    Delete,
    /// Untag and leave (`hawser.io/deletion-policy: retain`).
    Release,
}

/// One AWS change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub action: Verb,
    /// `vpc-endpoint`, `security-group`, `stack`.
    pub resource: String,
    /// The existing resource's id (none for a create).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<String>,
    /// What changes, in words: a create's settings, a modify's diff.
    pub detail: String,
}

impl Action {
    pub fn new(action: Verb, resource: &str, id: Option<&str>, detail: impl Into<String>) -> Self {
        Self {
            action,
            resource: resource.to_owned(),
            id: id.map(str::to_owned),
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = match self.action {
            Verb::Create => "create",
            Verb::Modify => "modify",
            Verb::Delete => "delete",
            Verb::Release => "release",
        };
        write!(f, "{verb} {}", self.resource)?;
        if let Some(id) = &self.id {
            write!(f, " {id}")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// One line for an Event or a log: the actions, `; `-separated, or
/// "no change".
pub fn summary(actions: &[Action]) -> String {
    if actions.is_empty() {
        return "no change".to_owned();
    }
    actions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
