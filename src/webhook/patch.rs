//! Typed JSON patch building. Paths are JSON pointers built from tokens,
//! so annotation keys (which contain `/`) are escaped as `~1` for us.

use std::collections::BTreeMap;

use json_patch::{
    jsonptr::PointerBuf, AddOperation, PatchOperation, RemoveOperation, ReplaceOperation,
};
use serde_json::Value;

pub fn pointer<'a>(tokens: impl IntoIterator<Item = &'a str>) -> PointerBuf {
    PointerBuf::from_tokens(tokens)
}

pub fn child(base: &PointerBuf, tokens: &[&str]) -> PointerBuf {
    let mut p = base.clone();
    for t in tokens {
        p.push_back(*t);
    }
    p
}

pub fn add(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path, value })
}

pub fn replace(path: PointerBuf, value: Value) -> PatchOperation {
    PatchOperation::Replace(ReplaceOperation { path, value })
}

pub fn remove(path: PointerBuf) -> PatchOperation {
    PatchOperation::Remove(RemoveOperation { path })
}

/// Edits to one `annotations` map (of an object or a pod template), turned
/// into operations that work whether or not the map exists yet.
pub struct AnnotationEdits<'a> {
    /// Pointer to the metadata holding the map, e.g. `/metadata`.
    metadata: PointerBuf,
    existing: Option<&'a BTreeMap<String, String>>,
    set: BTreeMap<String, String>,
    unset: Vec<String>,
}

impl<'a> AnnotationEdits<'a> {
    pub fn new(metadata: PointerBuf, existing: Option<&'a BTreeMap<String, String>>) -> Self {
        Self {
            metadata,
            existing,
            set: BTreeMap::new(),
            unset: Vec::new(),
        }
    }

    /// Sets `key` to `value` unless it already has that value.
    pub fn set(&mut self, key: &str, value: &str) {
        if self.existing.and_then(|m| m.get(key)).map(String::as_str) != Some(value) {
            self.set.insert(key.to_owned(), value.to_owned());
        }
    }

    /// Removes `key` if present.
    pub fn unset(&mut self, key: &str) {
        if self.existing.is_some_and(|m| m.contains_key(key)) {
            self.unset.push(key.to_owned());
        }
    }

    pub fn into_ops(self) -> Vec<PatchOperation> {
        let mut ops = Vec::new();
        let annotations = child(&self.metadata, &["annotations"]);
        match self.existing {
            None if !self.set.is_empty() => {
                let map = self
                    .set
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect();
                ops.push(add(annotations.clone(), Value::Object(map)));
            }
            _ => {
                for (k, v) in self.set {
                    // `add` replaces an existing member of an object.
                    ops.push(add(child(&annotations, &[&k]), Value::String(v)));
                }
            }
        }
        for k in self.unset {
            ops.push(remove(child(&annotations, &[&k])));
        }
        ops
    }
}

/// Adds `finalizer` to `/metadata/finalizers` unless it is there already.
pub fn ensure_finalizer(existing: Option<&Vec<String>>, finalizer: &str) -> Option<PatchOperation> {
    match existing {
        Some(list) if list.iter().any(|f| f == finalizer) => None,
        Some(_) => Some(add(
            pointer(["metadata", "finalizers", "-"]),
            Value::String(finalizer.into()),
        )),
        None => Some(add(
            pointer(["metadata", "finalizers"]),
            serde_json::json!([finalizer]),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn annotation_keys_are_escaped_and_a_missing_map_is_created_whole() {
        let mut e = AnnotationEdits::new(pointer(["metadata"]), None);
        e.set("env.hawser.io/host-names", "a.example");
        e.set("x", "y");
        assert_eq!(
            serde_json::to_value(e.into_ops()).unwrap(),
            json!([{"op": "add", "path": "/metadata/annotations", "value": {"env.hawser.io/host-names": "a.example", "x": "y"}}])
        );
        let existing: BTreeMap<String, String> = [
            (
                "env.hawser.io/host-names".to_string(),
                "A.example".to_string(),
            ),
            ("gone".to_string(), "1".to_string()),
        ]
        .into();
        let mut e =
            AnnotationEdits::new(pointer(["spec", "template", "metadata"]), Some(&existing));
        e.set("env.hawser.io/host-names", "a.example");
        e.unset("gone");
        e.unset("never-there");
        assert_eq!(
            serde_json::to_value(e.into_ops()).unwrap(),
            json!([
                {"op": "add", "path": "/spec/template/metadata/annotations/env.hawser.io~1host-names", "value": "a.example"},
                {"op": "remove", "path": "/spec/template/metadata/annotations/gone"}
            ])
        );
    }

    #[test]
    fn finalizer_is_added_once() {
        assert!(ensure_finalizer(Some(&vec!["a/b".into()]), "a/b").is_none());
        assert_eq!(
            serde_json::to_value(ensure_finalizer(Some(&vec!["x".into()]), "a/b")).unwrap(),
            json!({"op": "add", "path": "/metadata/finalizers/-", "value": "a/b"})
        );
        assert_eq!(
            serde_json::to_value(ensure_finalizer(None, "a/b")).unwrap(),
            json!({"op": "add", "path": "/metadata/finalizers", "value": ["a/b"]})
        );
    }
}
