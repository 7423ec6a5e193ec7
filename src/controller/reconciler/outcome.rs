//! The typed pieces of a pass: its outcome, the error scheme, and triage
//! (pure).

use std::time::Duration;

use kube::{core::PartialObjectMeta, runtime::controller::Action};

/// What the controllers watch: the metadata of an object of kind `K`.
pub type Meta<K> = PartialObjectMeta<K>;

/// How a pass ended: the `result` label of `hawser_reconcile_total` and
/// of the pass's span.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Neither triggered nor carrying hawser's finalizer: not this
    /// controller's business.
    Skipped,
    /// Outside `--namespace-selector`.
    OutOfScope,
    /// The inputs are those already settled: nothing was asked of AWS.
    Unchanged,
    /// AWS matches the inputs.
    Applied,
    /// AWS is still working on it; looked at again after a poll backoff.
    Pending,
    /// Failed for good on these inputs; reported on the object and looked
    /// at again once they change or a resync passes.
    Failed,
    /// Cleanup under way; looked at again after a poll backoff.
    Waiting,
    /// AWS failed to delete; deletion was asked again, looked at after a
    /// failure backoff.
    DeleteFailed,
    /// Deleted: what hawser made is gone and so is its finalizer.
    CleanedUp,
    /// The trigger was removed: what hawser made is gone (or retained)
    /// and the object is the user's again.
    Released,
    /// Plan-only: the plan was recorded, AWS left as it is.
    Planned,
    /// The pass failed and is retried after a failure backoff.
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 12] = [
        Outcome::Skipped,
        Outcome::OutOfScope,
        Outcome::Unchanged,
        Outcome::Applied,
        Outcome::Pending,
        Outcome::Failed,
        Outcome::Waiting,
        Outcome::DeleteFailed,
        Outcome::CleanedUp,
        Outcome::Released,
        Outcome::Planned,
        Outcome::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Skipped => "skipped",
            Outcome::OutOfScope => "out_of_scope",
            Outcome::Unchanged => "unchanged",
            Outcome::Applied => "applied",
            Outcome::Pending => "pending",
            Outcome::Failed => "failed",
            Outcome::Waiting => "waiting",
            Outcome::DeleteFailed => "delete_failed",
            Outcome::CleanedUp => "cleaned_up",
            Outcome::Released => "released",
            Outcome::Planned => "planned",
            Outcome::Error => "error",
        }
    }
}

/// A finished pass: how it ended and when to look again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    pub outcome: Outcome,
    pub action: Action,
}

impl Pass {
    pub fn requeue(outcome: Outcome, after: Duration) -> Self {
        Self {
            outcome,
            action: Action::requeue(after),
        }
    }

    pub fn await_change(outcome: Outcome) -> Self {
        Self {
            outcome,
            action: Action::await_change(),
        }
    }
}

/// The one error scheme of every controller.
pub trait Failure: std::error::Error + Send + Sync + 'static {
    /// A stable label for `hawser_reconcile_errors_total{category}`.
    fn category(&self) -> &'static str;

    /// Whether retrying cannot help until someone changes the inputs.
    fn is_terminal(&self) -> bool {
        false
    }

    /// The reason of the Warning Event that announces it.
    fn reason(&self) -> &'static str {
        "ReconcileError"
    }

    /// The note of that Event: AWS's or the parser's own words.
    fn user_message(&self) -> String {
        self.to_string()
    }
}

/// Which path a pass takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Apply,
    /// Deleted while carrying hawser's finalizer.
    Cleanup,
    /// Carrying the finalizer, but no longer asking for what it guards.
    Release,
    /// Nothing to do: the outcome says why.
    Ignore(Outcome),
}

/// What triage looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    pub deleting: bool,
    /// Carries this controller's finalizer.
    pub finalized: bool,
    /// Asks for this controller's side effects.
    pub triggered: bool,
    /// Still asks for what the finalizer guards.
    pub holds: bool,
    /// Within the controller's scope (`--namespace-selector`).
    pub in_scope: bool,
}

/// The path of a pass. A deletion is cleaned up whatever the scope:
/// hawser's finalizer must never hold a deletion up. What hawser made
/// for an object is let go once the object stops asking for it, in scope
/// or not; nothing new is made outside the scope.
pub fn triage(f: Facts) -> Path {
    if f.deleting {
        return match (f.finalized, f.in_scope) {
            (true, _) => Path::Cleanup,
            (false, true) => Path::Ignore(Outcome::Skipped),
            (false, false) => Path::Ignore(Outcome::OutOfScope),
        };
    }
    if f.finalized && !f.holds {
        return Path::Release;
    }
    if !f.in_scope {
        return Path::Ignore(Outcome::OutOfScope);
    }
    if !f.triggered {
        return Path::Ignore(Outcome::Skipped);
    }
    Path::Apply
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            deleting: false,
            finalized: false,
            triggered: true,
            holds: true,
            in_scope: true,
        }
    }

    #[test]
    fn triage_takes_one_path_per_case() {
        let f = facts();
        assert_eq!(triage(f), Path::Apply);
        assert_eq!(
            triage(Facts {
                finalized: true,
                ..f
            }),
            Path::Apply
        );
        let untriggered = Facts {
            triggered: false,
            holds: false,
            ..f
        };
        assert_eq!(triage(untriggered), Path::Ignore(Outcome::Skipped));
        assert_eq!(
            triage(Facts {
                finalized: true,
                ..untriggered
            }),
            Path::Release
        );
        assert_eq!(
            triage(Facts {
                in_scope: false,
                ..f
            }),
            Path::Ignore(Outcome::OutOfScope),
            "nothing new is made outside the scope"
        );
        assert_eq!(
            triage(Facts {
                in_scope: false,
                finalized: true,
                ..untriggered
            }),
            Path::Release,
            "what was made is let go outside the scope too"
        );
        assert_eq!(
            triage(Facts {
                in_scope: false,
                finalized: true,
                ..f
            }),
            Path::Ignore(Outcome::OutOfScope),
            "and kept while still asked for"
        );
    }

    #[test]
    fn a_deletion_is_cleaned_up_whatever_the_scope_or_trigger() {
        for (triggered, in_scope) in [(true, true), (false, true), (true, false), (false, false)] {
            let f = Facts {
                deleting: true,
                finalized: true,
                triggered,
                holds: triggered,
                in_scope,
            };
            assert_eq!(triage(f), Path::Cleanup, "{f:?}");
            let unfinalized = Facts {
                finalized: false,
                ..f
            };
            let expected = if in_scope {
                Outcome::Skipped
            } else {
                Outcome::OutOfScope
            };
            assert_eq!(triage(unfinalized), Path::Ignore(expected), "{f:?}");
        }
    }

    #[test]
    fn outcome_labels_are_distinct() {
        let labels: std::collections::BTreeSet<_> =
            Outcome::ALL.iter().map(|o| o.as_str()).collect();
        assert_eq!(labels.len(), Outcome::ALL.len());
    }
}
