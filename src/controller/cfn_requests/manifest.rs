//! A custom resource's `ResourceProperties`: the manifest it deploys and
//! the default namespace; and the policy of what a stack may deploy
//! (`--cfn-allowed-resources`, `--cfn-allowed-namespaces`). Pure.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::annotations::{is_dns1123_label, is_dns1123_subdomain};

/// The properties a custom resource may have (CloudFormation adds
/// `ServiceToken` itself).
pub const PROPERTIES: &[&str] = &["yaml", "namespace", "ServiceToken"];

/// One document of the manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// 1-based, as a user counts documents.
    pub index: usize,
    pub api_version: String,
    pub kind: String,
    pub name: String,
    /// `metadata.namespace`, if the document names one.
    pub namespace: Option<String>,
    pub object: Value,
}

impl Document {
    /// `(group, version)` of `apiVersion`; the core group is `""`.
    pub fn group_version(&self) -> (&str, &str) {
        self.api_version
            .split_once('/')
            .unwrap_or(("", &self.api_version))
    }

    pub fn describe(&self) -> String {
        format!("document {} ({} {})", self.index, self.kind, self.name)
    }
}

/// The manifest and default namespace of a custom resource.
#[derive(Debug, Clone, PartialEq)]
pub struct Properties {
    pub documents: Vec<Document>,
    pub namespace: Option<String>,
}

/// Reads `ResourceProperties`. Every problem found is reported, naming the
/// property, the value and what is allowed.
pub fn parse_properties(props: &serde_json::Map<String, Value>) -> Result<Properties, String> {
    let unknown: Vec<&str> = props
        .keys()
        .map(String::as_str)
        .filter(|k| !PROPERTIES.contains(k))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "unknown properties {}: a hawser custom resource takes yaml (the manifest) and \
             namespace (the default namespace)",
            unknown.join(", ")
        ));
    }
    let namespace = match props.get("namespace") {
        None => None,
        Some(Value::String(ns)) if is_dns1123_label(ns) => Some(ns.clone()),
        Some(other) => {
            return Err(format!(
                "property namespace is {other}: it must be a namespace name (1-63 lowercase \
                 letters, digits and '-', starting and ending with a letter or digit)"
            ))
        }
    };
    let yaml = match props.get("yaml") {
        Some(Value::String(text)) => text,
        Some(other) => {
            return Err(format!(
                "property yaml is {}: it must be a string holding a YAML or JSON manifest",
                type_name(other)
            ))
        }
        None => return Err("property yaml is missing: it holds the manifest to deploy".into()),
    };
    Ok(Properties {
        documents: parse_documents(yaml)?,
        namespace,
    })
}

/// Every non-empty document of a multi-document YAML (JSON flow style
/// included), each an object with `apiVersion`, `kind` and
/// `metadata.name`; no two naming the same object.
pub fn parse_documents(yaml: &str) -> Result<Vec<Document>, String> {
    let mut documents = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(yaml).enumerate() {
        let index = i + 1;
        let value: Value = serde::Deserialize::deserialize(doc)
            .map_err(|e| format!("property yaml, document {index}: not YAML: {e}"))?;
        if value.is_null() {
            continue;
        }
        let document = document(index, value)?;
        let key = (
            document.group_version().0.to_owned(),
            document.kind.clone(),
            document.namespace.clone(),
            document.name.clone(),
        );
        if !seen.insert(key) {
            return Err(format!(
                "property yaml, {}: the manifest has this object twice",
                document.describe()
            ));
        }
        documents.push(document);
    }
    if documents.is_empty() {
        return Err("property yaml holds no object: give at least one manifest document".into());
    }
    Ok(documents)
}

fn document(index: usize, object: Value) -> Result<Document, String> {
    let at = |what: String| format!("property yaml, document {index}: {what}");
    if !object.is_object() {
        return Err(at(format!(
            "is {}: each document must be one Kubernetes object",
            type_name(&object)
        )));
    }
    let text = |path: &[&str]| -> Option<String> {
        let mut v = &object;
        for key in path {
            v = v.get(key)?;
        }
        v.as_str().map(str::to_owned)
    };
    let api_version = text(&["apiVersion"]).ok_or_else(|| at("has no apiVersion".into()))?;
    let kind = text(&["kind"]).ok_or_else(|| at("has no kind".into()))?;
    if kind.ends_with("List") {
        return Err(at(format!(
            "is a {kind}: put each object in a document of its own"
        )));
    }
    let name = text(&["metadata", "name"]).ok_or_else(|| {
        at(format!(
            "{kind} has no metadata.name (generateName is not supported: the name is how \
             hawser finds the object again)"
        ))
    })?;
    let namespace = text(&["metadata", "namespace"]);
    Ok(Document {
        index,
        api_version,
        kind,
        name,
        namespace,
        object,
    })
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// What stacks may deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `resource` (core group) or `resource.group`, as `kubectl get` and
    /// RBAC name them: `configmaps`, `statefulsets.apps`.
    pub resources: BTreeSet<String>,
    /// Namespaces namespaced objects may be in, and Namespaces that may be
    /// created; `*` allows any.
    pub namespaces: BTreeSet<String>,
}

impl Policy {
    /// Parses one `--cfn-allowed-resources` entry.
    pub fn parse_resource(s: &str) -> Result<String, String> {
        let (resource, group) = s.split_once('.').unwrap_or((s, ""));
        let group_ok = group.is_empty() || is_dns1123_subdomain(group);
        if is_dns1123_label(resource) && group_ok {
            Ok(s.to_owned())
        } else {
            Err(format!(
                "{s:?} is not a resource: give the plural resource name and its API group, as \
                 kubectl and RBAC name it, e.g. configmaps, namespaces, statefulsets.apps"
            ))
        }
    }

    /// Parses one `--cfn-allowed-namespaces` entry.
    pub fn parse_namespace(s: &str) -> Result<String, String> {
        if s == "*" || is_dns1123_label(s) {
            Ok(s.to_owned())
        } else {
            Err(format!(
                "{s:?} is not a namespace name (1-63 lowercase letters, digits and '-') or *"
            ))
        }
    }

    /// `resource.group` as the flag names it.
    pub fn resource_name(plural: &str, group: &str) -> String {
        if group.is_empty() {
            plural.to_owned()
        } else {
            format!("{plural}.{group}")
        }
    }

    /// Whether a stack may deploy an object of resource `plural` in
    /// `group`, in `namespace` (`None`: cluster-scoped; a Namespace
    /// counts as being in itself). The refusal names the flag to change.
    pub fn check(
        &self,
        doc: &Document,
        plural: &str,
        group: &str,
        namespace: Option<&str>,
    ) -> Result<(), String> {
        let resource = Self::resource_name(plural, group);
        if !self.resources.contains(&resource) {
            return Err(format!(
                "property yaml, {}: {resource} is not in --cfn-allowed-resources ({}); nothing \
                 was applied",
                doc.describe(),
                list(&self.resources)
            ));
        }
        let namespace = match (namespace, resource.as_str()) {
            (Some(ns), _) => Some(ns),
            (None, "namespaces") => Some(doc.name.as_str()),
            (None, _) => None,
        };
        match namespace {
            Some(ns) if !self.namespaces.contains("*") && !self.namespaces.contains(ns) => {
                Err(format!(
                    "property yaml, {}: namespace {ns} is not in --cfn-allowed-namespaces ({}); \
                     nothing was applied",
                    doc.describe(),
                    list(&self.namespaces)
                ))
            }
            _ => Ok(()),
        }
    }
}

fn list(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "none".into()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_issues_manifest_reads_as_a_namespace_and_a_statefulset() {
        let yaml = "---\n{apiVersion: v1,kind: Namespace, metadata: { annotations: {}, labels: {}, name: nightly}}\n---\n{apiVersion: apps/v1, kind: StatefulSet, metadata: {name: mysqldb, labels: {app: mysqldb}}, spec: {replicas: 1, selector: {matchLabels: {app: mysqldb}}, template: {metadata: {labels: {app: mysqldb}}, spec: {containers: [{name: mysqldb, image: 'mysql:latest', ports: [{containerPort: 3306, name: mysql}]}]}}}}";
        let p = parse_properties(&props(serde_json::json!({
            "yaml": yaml, "namespace": "nightly", "ServiceToken": "arn:aws:sns:x"
        })))
        .unwrap();
        assert_eq!(p.namespace.as_deref(), Some("nightly"));
        let names: Vec<_> = p
            .documents
            .iter()
            .map(|d| (d.index, d.kind.as_str(), d.name.as_str(), d.group_version()))
            .collect();
        assert_eq!(
            names,
            [
                (1, "Namespace", "nightly", ("", "v1")),
                (2, "StatefulSet", "mysqldb", ("apps", "v1"))
            ]
        );
        assert_eq!(p.documents[1].object["spec"]["replicas"], 1);
    }

    #[test]
    fn bad_properties_are_refused_naming_the_property_and_what_is_allowed() {
        let cases = [
            (serde_json::json!({}), "property yaml is missing"),
            (serde_json::json!({"yaml": 3}), "property yaml is a number"),
            (
                serde_json::json!({"yaml": "a: [", "namespace": "x"}),
                "document 1: not YAML",
            ),
            (
                serde_json::json!({"yaml": "kind: ConfigMap\nmetadata: {name: a}"}),
                "document 1: has no apiVersion",
            ),
            (
                serde_json::json!({"yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: a-}"}),
                "ConfigMap has no metadata.name",
            ),
            (
                serde_json::json!({"yaml": "apiVersion: v1\nkind: List\nitems: []"}),
                "is a List",
            ),
            (
                serde_json::json!({"yaml": "- a\n- b"}),
                "document 1: is a list",
            ),
            (serde_json::json!({"yaml": "---\n---\n"}), "holds no object"),
            (
                serde_json::json!({"yaml": "{apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n---\n{apiVersion: v1, kind: ConfigMap, metadata: {name: a}}"}),
                "document 2 (ConfigMap a): the manifest has this object twice",
            ),
            (
                serde_json::json!({"yaml": "{}", "namespace": "Not_A_Name"}),
                "property namespace is \"Not_A_Name\"",
            ),
            (
                serde_json::json!({"yaml": "{}", "Replicas": 2}),
                "unknown properties Replicas",
            ),
        ];
        for (input, expected) in cases {
            let err = parse_properties(&props(input.clone())).unwrap_err();
            assert!(err.contains(expected), "{input}: {err}");
        }
    }

    fn policy(resources: &[&str], namespaces: &[&str]) -> Policy {
        Policy {
            resources: resources.iter().map(|s| s.to_string()).collect(),
            namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn doc(kind: &str, name: &str) -> Document {
        parse_documents(&format!(
            "{{apiVersion: v1, kind: {kind}, metadata: {{name: {name}}}}}"
        ))
        .unwrap()
        .remove(0)
    }

    #[test]
    fn the_policy_allows_only_the_named_resources_and_namespaces() {
        let p = policy(&["namespaces", "statefulsets.apps"], &["nightly"]);
        let ns = doc("Namespace", "nightly");
        assert_eq!(p.check(&ns, "namespaces", "", None), Ok(()));
        let other_ns = doc("Namespace", "prod");
        let err = p.check(&other_ns, "namespaces", "", None).unwrap_err();
        assert!(
            err.contains("namespace prod is not in --cfn-allowed-namespaces (nightly)"),
            "{err}"
        );
        let sts = doc("StatefulSet", "db");
        assert_eq!(
            p.check(&sts, "statefulsets", "apps", Some("nightly")),
            Ok(())
        );
        let cm = doc("ConfigMap", "c");
        let err = p.check(&cm, "configmaps", "", Some("nightly")).unwrap_err();
        assert!(
            err.contains(
                "document 1 (ConfigMap c): configmaps is not in --cfn-allowed-resources \
                 (namespaces, statefulsets.apps)"
            ),
            "{err}"
        );
        let any = policy(&["configmaps"], &["*"]);
        assert_eq!(any.check(&cm, "configmaps", "", Some("x")), Ok(()));
        let none = policy(&["configmaps"], &[]);
        let err = none.check(&cm, "configmaps", "", Some("x")).unwrap_err();
        assert!(err.contains("(none)"), "{err}");
    }

    #[test]
    fn the_examples_custom_resource_deploys_a_namespace_and_a_statefulset() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/cfn-requests/custom-resource.yaml"
        );
        let template: Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let resource = &template["Resources"]["Nightly"];
        assert_eq!(resource["Type"], "Custom::KubernetesManifest");
        let p = parse_properties(resource["Properties"].as_object().unwrap()).unwrap();
        let kinds: Vec<_> = p.documents.iter().map(|d| d.kind.as_str()).collect();
        assert_eq!(kinds, ["Namespace", "StatefulSet"]);
        assert_eq!(p.namespace.as_deref(), Some("nightly"));
        let allowed = policy(&["namespaces", "statefulsets.apps"], &["nightly"]);
        assert_eq!(
            allowed.check(&p.documents[0], "namespaces", "", None),
            Ok(())
        );
        assert_eq!(
            allowed.check(&p.documents[1], "statefulsets", "apps", Some("nightly")),
            Ok(())
        );
    }

    #[test]
    fn flag_entries_are_checked() {
        assert!(Policy::parse_resource("statefulsets.apps").is_ok());
        assert!(Policy::parse_resource("configmaps").is_ok());
        assert!(Policy::parse_resource("widgets.example.com").is_ok());
        let err = Policy::parse_resource("StatefulSet").unwrap_err();
        assert!(err.contains("statefulsets.apps"), "{err}");
        assert!(Policy::parse_resource("apps/statefulsets").is_err());
        assert!(Policy::parse_namespace("*").is_ok());
        assert!(Policy::parse_namespace("team-a").is_ok());
        assert!(Policy::parse_namespace("Team").is_err());
    }
}
