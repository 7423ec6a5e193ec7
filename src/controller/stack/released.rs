//! How a stack hawser let go of (`hawser.io/deletion-policy: retain`) is
//! told apart from one whose owner vanished, so that `hawser gc` never
//! deletes it: a statement in the stack's policy. A stack's tags can only
//! change through a stack update, which would touch every resource; its
//! policy is metadata, set with one SetStackPolicy call.
//!
//! The statement denies `Update:Delete` of a logical id no template uses,
//! so it changes nothing about what updates may do. A stack without a
//! policy allows every update; the marked policy allows them all
//! explicitly, as a policy with statements must. Pure.

use serde_json::{json, Value};

/// The statement's resource: the mark.
pub const MARK: &str = "LogicalResourceId/HawserReleasedStackMarker";

/// What a stack's policy says about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyMark {
    /// No policy: nobody has set one.
    None,
    /// hawser's release mark.
    Released,
    /// A policy someone else set (or one that is not JSON).
    Other,
}

pub fn read(policy: Option<&str>) -> PolicyMark {
    let Some(body) = policy else {
        return PolicyMark::None;
    };
    match serde_json::from_str::<Value>(body) {
        Ok(doc) if statements(&doc).into_iter().any(is_mark) => PolicyMark::Released,
        _ => PolicyMark::Other,
    }
}

/// `existing` (or the allow-everything policy a stack without one
/// implies) with the mark added; `None` when `existing` is not a JSON
/// policy hawser can extend (it is kept as it is).
pub fn with_mark(existing: Option<&str>) -> Option<String> {
    let mut doc = match existing {
        None => json!({"Statement": [{
            "Effect": "Allow", "Action": "Update:*", "Principal": "*", "Resource": "*"
        }]}),
        Some(body) => serde_json::from_str::<Value>(body).ok()?,
    };
    let list = match doc.get_mut("Statement")? {
        Value::Array(list) => list,
        one @ Value::Object(_) => {
            *one = Value::Array(vec![one.take()]);
            one.as_array_mut()?
        }
        _ => return None,
    };
    if !list.iter().any(is_mark) {
        list.push(json!({
            "Effect": "Deny", "Action": "Update:Delete", "Principal": "*", "Resource": MARK
        }));
    }
    Some(doc.to_string())
}

fn statements(doc: &Value) -> Vec<&Value> {
    match doc.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => vec![],
    }
}

fn is_mark(statement: &Value) -> bool {
    statement.get("Effect") == Some(&json!("Deny"))
        && statement.get("Resource") == Some(&json!(MARK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_without_a_policy_gets_allow_everything_plus_the_mark() {
        let body = with_mark(None).unwrap();
        let doc: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["Statement"][0]["Effect"], "Allow");
        assert_eq!(doc["Statement"][0]["Action"], "Update:*");
        assert_eq!(doc["Statement"][0]["Resource"], "*");
        assert_eq!(doc["Statement"][1]["Resource"], MARK);
        assert_eq!(read(Some(&body)), PolicyMark::Released);
    }

    #[test]
    fn an_existing_policy_keeps_its_statements_and_is_marked_once() {
        let theirs = r#"{"Statement":{"Effect":"Deny","Action":"Update:Replace","Principal":"*","Resource":"LogicalResourceId/Db"}}"#;
        assert_eq!(read(Some(theirs)), PolicyMark::Other);
        let marked = with_mark(Some(theirs)).unwrap();
        let doc: Value = serde_json::from_str(&marked).unwrap();
        assert_eq!(doc["Statement"][0]["Resource"], "LogicalResourceId/Db");
        assert_eq!(doc["Statement"].as_array().unwrap().len(), 2);
        assert_eq!(read(Some(&marked)), PolicyMark::Released);
        let again = with_mark(Some(&marked)).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&again).unwrap(), doc);
    }

    #[test]
    fn no_policy_and_unreadable_policies_are_told_apart() {
        assert_eq!(read(None), PolicyMark::None);
        assert_eq!(read(Some("not json")), PolicyMark::Other);
        assert_eq!(with_mark(Some("not json")), None);
        assert_eq!(with_mark(Some(r#"{"Statement":"x"}"#)), None);
    }
}
