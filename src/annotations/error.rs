//! The one error every annotation parser returns.

/// Longest offending value echoed back, in characters; a template or a
/// parameter object can be kilobytes, and the message goes into an
/// admission response and an Event.
const MAX_VALUE_CHARS: usize = 120;

/// An annotation whose value hawser refuses, phrased so that the person
/// who wrote it can fix it: which annotation, what value, what is wrong
/// and what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {key}: invalid value {value:?}: {reason}; allowed: {allowed}")]
pub struct AnnotationError {
    /// The annotation key, e.g. `vpce.hawser.io/vpc-id`.
    pub key: String,
    /// The offending value, cut to 120 characters followed by `…`.
    pub value: String,
    /// What is wrong with it, short.
    pub reason: String,
    /// What is accepted, with an example.
    pub allowed: String,
}

impl AnnotationError {
    pub fn new(
        key: impl Into<String>,
        value: &str,
        reason: impl Into<String>,
        allowed: impl Into<String>,
    ) -> Self {
        Self {
            key: key.into(),
            value: truncate(value),
            reason: reason.into(),
            allowed: allowed.into(),
        }
    }

    /// A stable, bounded label for metrics.
    pub fn category(&self) -> &'static str {
        "invalid_annotation"
    }
}

/// Longest part of a value (a list item, an ARN segment, a name) quoted
/// in a reason, in characters: more than any part a rule accepts but a
/// host name (128 for a group, 64 for a role name). The whole value is
/// echoed separately, cut to [`MAX_VALUE_CHARS`]; a reason must not undo
/// that by quoting a 100 KB item in full.
const MAX_QUOTED_CHARS: usize = 130;

/// `part` quoted as `{:?}` does, cut to 130 characters followed by `…`:
/// for the parts of a value that a reason names.
pub(crate) fn quoted(part: &str) -> String {
    match part.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{:?}…", &part[..cut]),
        None => format!("{part:?}"),
    }
}

fn truncate(value: &str) -> String {
    match value.char_indices().nth(MAX_VALUE_CHARS) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_owned(),
    }
}
