//! Rules every kind shares: input annotations must parse, and output
//! annotations belong to hawser. Pure functions of the request's pieces.

use std::collections::BTreeMap;

use crate::annotations::{check_annotations, keys, ObjectKind};

/// What one webhook decided about one object.
#[derive(Debug, Default, PartialEq)]
pub struct Decision {
    pub patch: Vec<json_patch::PatchOperation>,
    pub warnings: Vec<String>,
    pub denials: Vec<String>,
}

impl Decision {
    pub fn merge(&mut self, other: Decision) {
        self.patch.extend(other.patch);
        self.warnings.extend(other.warnings);
        self.denials.extend(other.denials);
    }
}

/// Annotation syntax. A dry run is never refused for syntax (its caller
/// may be `kubectl diff` on a manifest being fixed); it gets the same
/// messages as warnings instead.
pub fn annotation_syntax(
    kind: ObjectKind,
    annotations: &BTreeMap<String, String>,
    dry_run: bool,
) -> Decision {
    let messages: Vec<String> = check_annotations(kind, annotations)
        .into_iter()
        .map(|e| e.to_string())
        .collect();
    if dry_run {
        Decision {
            warnings: messages,
            ..Default::default()
        }
    } else {
        Decision {
            denials: messages,
            ..Default::default()
        }
    }
}

/// The value the mutating webhook itself gives an output on CREATE; the
/// only output a non-hawser identity may carry into a new object.
fn set_by_mutation(key: &str, value: &str) -> bool {
    key == keys::VPCE_STATE && value == "Pending"
}

/// Output annotations may be changed only by hawser's own identity.
pub fn protect_outputs(
    old: Option<&BTreeMap<String, String>>,
    new: &BTreeMap<String, String>,
    username: &str,
    controller_usernames: &[String],
) -> Decision {
    let mut d = Decision::default();
    if controller_usernames.iter().any(|u| u == username) {
        return d;
    }
    for key in keys::output_keys() {
        let before = old.and_then(|o| o.get(key));
        let after = new.get(key);
        if before == after {
            continue;
        }
        if old.is_none() && after.is_some_and(|v| set_by_mutation(key, v)) {
            continue;
        }
        let change = match (before, after) {
            (None, Some(a)) => format!("set to {a:?}"),
            (Some(b), Some(a)) => format!("changed from {b:?} to {a:?}"),
            (Some(b), None) => format!("removed (was {b:?})"),
            (None, None) => unreachable!("equal values were skipped"),
        };
        d.denials.push(format!(
            "annotation {key} is an output written by hawser and cannot be {change} by {username:?}; remove it from your manifest and leave hawser's value in place"
        ));
    }
    d
}

/// On UPDATE by someone other than hawser, puts back outputs the new
/// object dropped (a `kubectl replace` or `edit` of a manifest without
/// them), so they are neither lost nor refused.
pub fn restore_outputs(
    old: Option<&BTreeMap<String, String>>,
    new: Option<&BTreeMap<String, String>>,
    username: &str,
    controller_usernames: &[String],
    edits: &mut crate::webhook::patch::AnnotationEdits<'_>,
) -> Vec<String> {
    let Some(old) = old else { return Vec::new() };
    if controller_usernames.iter().any(|u| u == username) {
        return Vec::new();
    }
    let mut warnings = Vec::new();
    for key in keys::output_keys() {
        if let (Some(value), None) = (old.get(key), new.and_then(|n| n.get(key))) {
            edits.set(key, value);
            warnings.push(format!(
                "hawser kept its output annotation {key}={value:?}, which the update dropped"
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const HAWSER: &str = "system:serviceaccount:hawser-system:hawser";

    #[test]
    fn outputs_are_hawsers_alone() {
        let ctl = vec![HAWSER.to_string()];
        let old = map(&[("vpce.hawser.io/state", "Available")]);
        let new = map(&[("vpce.hawser.io/state", "Failed")]);
        assert_eq!(
            protect_outputs(Some(&old), &new, "alice", &ctl).denials,
            vec![
                r#"annotation vpce.hawser.io/state is an output written by hawser and cannot be changed from "Available" to "Failed" by "alice"; remove it from your manifest and leave hawser's value in place"#
            ]
        );
        assert!(protect_outputs(Some(&old), &new, HAWSER, &ctl)
            .denials
            .is_empty());
        // The mutating webhook's own Pending on CREATE is fine; anything else is not.
        assert!(protect_outputs(
            None,
            &map(&[("vpce.hawser.io/state", "Pending")]),
            "alice",
            &ctl
        )
        .denials
        .is_empty());
        assert_eq!(
            protect_outputs(
                None,
                &map(&[("cfn.hawser.io/stack-id", "x")]),
                "alice",
                &ctl
            )
            .denials,
            vec![
                r#"annotation cfn.hawser.io/stack-id is an output written by hawser and cannot be set to "x" by "alice"; remove it from your manifest and leave hawser's value in place"#
            ]
        );
        assert_eq!(
            protect_outputs(Some(&old), &map(&[]), "alice", &ctl).denials,
            vec![
                r#"annotation vpce.hawser.io/state is an output written by hawser and cannot be removed (was "Available") by "alice"; remove it from your manifest and leave hawser's value in place"#
            ]
        );
    }

    #[test]
    fn dry_runs_get_syntax_errors_as_warnings() {
        let bad = map(&[("vpce.hawser.io/service-name", "nope")]);
        let real = annotation_syntax(ObjectKind::Service, &bad, false);
        assert_eq!(real.denials.len(), 1);
        assert!(
            real.denials[0]
                .starts_with("annotation vpce.hawser.io/service-name: invalid value \"nope\""),
            "{:?}",
            real.denials
        );
        let dry = annotation_syntax(ObjectKind::Service, &bad, true);
        assert!(dry.denials.is_empty());
        assert_eq!(dry.warnings, real.denials);
    }

    #[test]
    fn dropped_outputs_are_restored_for_users_only() {
        let ctl = vec![HAWSER.to_string()];
        let old = map(&[("vpce.hawser.io/endpoint-id", "vpce-1"), ("other", "x")]);
        let new = map(&[("other", "x")]);
        let mut edits = crate::webhook::patch::AnnotationEdits::new(
            crate::webhook::patch::pointer(["metadata"]),
            Some(&new),
        );
        let w = restore_outputs(Some(&old), Some(&new), "alice", &ctl, &mut edits);
        assert_eq!(w.len(), 1);
        assert_eq!(
            serde_json::to_value(edits.into_ops()).unwrap(),
            serde_json::json!([{"op": "add", "path": "/metadata/annotations/vpce.hawser.io~1endpoint-id", "value": "vpce-1"}])
        );
        let mut edits = crate::webhook::patch::AnnotationEdits::new(
            crate::webhook::patch::pointer(["metadata"]),
            Some(&new),
        );
        assert!(restore_outputs(Some(&old), Some(&new), HAWSER, &ctl, &mut edits).is_empty());
        assert!(edits.into_ops().is_empty());
    }
}
