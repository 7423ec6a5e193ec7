//! What `hawser lint` reads: files, directories (their `.yaml`, `.yml`
//! and `.json` files, recursively, in name order) or standard input (`-`),
//! each a multi-document YAML or JSON stream, as `kubectl apply -f` and
//! `helm template` write them. A `List` (any kind ending in `List` with
//! `items`) stands for its items.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One object of the input, and where it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// The file as given, or `-` for standard input.
    pub file: String,
    /// 1-based document of the file.
    pub document: usize,
    /// 1-based item, when the document is a List.
    pub item: Option<usize>,
    pub value: Value,
}

impl Object {
    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }

    pub fn api_version(&self) -> &str {
        self.value["apiVersion"].as_str().unwrap_or_default()
    }

    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }

    /// The manifest's string annotations.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        self.value["metadata"]["annotations"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn namespace(&self) -> Option<&str> {
        self.value["metadata"]["namespace"].as_str()
    }

    /// `file: document N[, item M]`, how the report names where an object is.
    pub fn place(&self) -> String {
        match self.item {
            Some(item) => format!("{}: document {}, item {item}", self.file, self.document),
            None => format!("{}: document {}", self.file, self.document),
        }
    }
}

/// Input that cannot be read: `hawser lint` exits 2 with this.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(pub String);

/// The files `paths` names: a file as given, a directory's YAML and JSON
/// files below it in name order, `-` as itself.
pub fn files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Unreadable> {
    let mut out = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            out.push(path.clone());
        } else if path.is_dir() {
            walk(path, &mut out)?;
        } else if path.exists() {
            out.push(path.clone());
        } else {
            return Err(Unreadable(format!(
                "{}: no such file or directory",
                path.display()
            )));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Unreadable> {
    let read = |e: std::io::Error| Unreadable(format!("{}: {e}", dir.display()));
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(read)?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

/// Every object in `text`, read from `file`.
pub fn objects(file: &str, text: &str) -> Result<Vec<Object>, Unreadable> {
    let mut out = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let document = i + 1;
        let at = |what: String| Unreadable(format!("{file}: document {document}: {what}"));
        let value: Value = serde::Deserialize::deserialize(doc)
            .map_err(|e| at(format!("not YAML or JSON: {e}")))?;
        match value {
            Value::Null => continue,
            Value::Object(ref map) => {
                let list = map
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| k.ends_with("List"));
                match (list, map.get("items")) {
                    (true, Some(Value::Array(items))) => {
                        for (j, item) in items.iter().enumerate() {
                            if !item.is_object() {
                                return Err(at(format!(
                                    "item {} is not a Kubernetes object",
                                    j + 1
                                )));
                            }
                            out.push(Object {
                                file: file.to_owned(),
                                document,
                                item: Some(j + 1),
                                value: item.clone(),
                            });
                        }
                    }
                    _ => out.push(Object {
                        file: file.to_owned(),
                        document,
                        item: None,
                        value,
                    }),
                }
            }
            _ => {
                return Err(at(
                    "is not a Kubernetes object (a mapping with apiVersion and kind)".into(),
                ))
            }
        }
    }
    Ok(out)
}

/// Reads `path` (`-`: standard input) and its objects.
pub fn read(path: &Path) -> Result<Vec<Object>, Unreadable> {
    let (name, text) = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| Unreadable(format!("-: standard input: {e}")))?;
        ("-".to_owned(), text)
    } else {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| Unreadable(format!("{name}: {e}")))?;
        (name, text)
    };
    objects(&name, &text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_streams_json_and_lists_are_read_with_their_places() {
        let text = "\
apiVersion: v1
kind: Namespace
metadata: {name: team-a}
---
# a comment-only document is skipped
---
{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [
  {\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"a\"}},
  {\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"b\", \"namespace\": \"x\"}}]}
";
        let objects = objects("m.yaml", text).unwrap();
        let found: Vec<(String, &str, &str, Option<&str>)> = objects
            .iter()
            .map(|o| (o.place(), o.kind(), o.name(), o.namespace()))
            .collect();
        assert_eq!(
            found,
            vec![
                (
                    "m.yaml: document 1".to_string(),
                    "Namespace",
                    "team-a",
                    None
                ),
                (
                    "m.yaml: document 3, item 1".to_string(),
                    "Service",
                    "a",
                    None
                ),
                (
                    "m.yaml: document 3, item 2".to_string(),
                    "Service",
                    "b",
                    Some("x")
                ),
            ]
        );
        assert_eq!(objects[0].value["metadata"], json!({"name": "team-a"}));
    }

    #[test]
    fn what_is_not_an_object_or_not_yaml_is_unreadable_naming_file_and_document() {
        assert_eq!(
            objects("a.yaml", "kind: Service\n---\n- 1\n- 2\n").unwrap_err(),
            Unreadable(
                "a.yaml: document 2: is not a Kubernetes object (a mapping with apiVersion and kind)"
                    .into()
            )
        );
        let err = objects("b.yaml", "kind: [unclosed\n").unwrap_err();
        assert!(
            err.0.starts_with("b.yaml: document 1: not YAML or JSON: "),
            "{err}"
        );
        let err = objects("c.json", r#"{"kind": "List", "items": [3]}"#).unwrap_err();
        assert_eq!(
            err.0,
            "c.json: document 1: item 1 is not a Kubernetes object"
        );
    }

    #[test]
    fn directories_give_their_yaml_and_json_files_in_name_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        for f in ["b.yaml", "a.json", "sub/c.yml", "notes.txt"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let found: Vec<String> = files(&[dir.path().to_path_buf(), "-".into()])
            .unwrap()
            .iter()
            .map(|p| {
                p.strip_prefix(dir.path())
                    .unwrap_or(p)
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(found, vec!["a.json", "b.yaml", "sub/c.yml", "-"]);
        let missing = files(&[dir.path().join("nope.yaml")]).unwrap_err();
        assert!(
            missing.0.ends_with("nope.yaml: no such file or directory"),
            "{missing}"
        );
    }
}
