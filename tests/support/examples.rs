//! Example manifests applied into namespaces private to one test.

use std::{collections::BTreeMap, process::Command};

use super::{kubectl, kubectl_apply, unique, KubectlOutput, E2E_LABEL};

/// The example files that apply to a cluster, in an order that works
/// (a Namespace before what uses it).
pub const EXAMPLE_FILES: [&str; 9] = [
    "examples/hardening/00-namespace.yaml",
    "examples/hardening/privileged-deployment.yaml",
    "examples/hardening/restricted-deployment.yaml",
    "examples/hardening/privileged-namespace.yaml",
    "examples/environment/namespace.yaml",
    "examples/routing/deployment.yaml",
    "examples/stack/namespace-stack.yaml",
    "examples/stack/deployment-stack.yaml",
    "examples/vpce/annotations.yaml",
];

/// Applies files from `examples/` into namespaces private to one test: each
/// namespace an example names is renamed (`hawser-demo` → a unique name)
/// and labelled for the test's webhooks.
pub struct Examples {
    id: String,
    pub namespaces: BTreeMap<String, String>,
    /// Namespaces already applied; a file that only uses one must not
    /// re-apply it bare (kubectl would drop another file's annotations).
    applied: std::collections::BTreeSet<String>,
    /// Text replaced in every file before it is read (`substitute`).
    substitutions: Vec<(String, String)>,
}

impl Examples {
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            namespaces: BTreeMap::new(),
            applied: Default::default(),
            substitutions: Vec::new(),
        }
    }

    /// Replaces `from` with `to` in every file this applies: for values
    /// that must be unique in the cluster, such as a role only one
    /// namespace may map, when another test applies the same example.
    pub fn substitute(&mut self, from: &str, to: &str) {
        self.substitutions.push((from.to_string(), to.to_string()));
    }

    /// The test's name for the example namespace `original`.
    pub fn ns(&mut self, original: &str) -> String {
        let id = self.id.clone();
        self.namespaces
            .entry(original.to_string())
            .or_insert_with(|| {
                unique(&format!(
                    "{}-{}",
                    original.trim_start_matches("hawser-"),
                    id
                ))
            })
            .clone()
    }

    /// The example file's objects, rewritten for this test: namespaces
    /// first (including ones the file uses without declaring), then the rest.
    pub fn rewrite(&mut self, path: &str) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
        use serde::Deserialize;
        let mut text =
            std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        for (from, to) in &self.substitutions {
            text = text.replace(from, to);
        }
        let mut namespaces: Vec<serde_json::Value> = Vec::new();
        let mut others = Vec::new();
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let mut v = serde_json::Value::deserialize(doc).unwrap();
            if v.is_null() {
                continue;
            }
            if v["kind"] == "Namespace" {
                let name = self.ns(v["metadata"]["name"].as_str().unwrap());
                v["metadata"]["name"] = name.into();
                v["metadata"]["labels"][E2E_LABEL] = self.id.clone().into();
                namespaces.push(v);
            } else {
                let name = self.ns(v["metadata"]["namespace"].as_str().unwrap());
                v["metadata"]["namespace"] = name.into();
                others.push(v);
            }
        }
        for o in &others {
            let ns = o["metadata"]["namespace"].as_str().unwrap().to_string();
            if !self.applied.contains(&ns)
                && !namespaces
                    .iter()
                    .any(|n| n["metadata"]["name"] == ns.as_str())
            {
                namespaces.push(serde_json::json!({
                    "apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": ns, "labels": {E2E_LABEL: self.id}}
                }));
            }
        }
        (namespaces, others)
    }

    /// `kubectl apply` of the example file (path relative to the repo root).
    pub fn apply(&mut self, path: &str) -> KubectlOutput {
        let (namespaces, others) = self.rewrite(path);
        // Namespaces in their own apply, so the objects find them.
        if !namespaces.is_empty() {
            let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": namespaces});
            let out = kubectl_apply(&list.to_string());
            if out.success {
                for n in &namespaces {
                    self.applied
                        .insert(n["metadata"]["name"].as_str().unwrap().to_string());
                }
            }
            if !out.success || others.is_empty() {
                return out;
            }
        }
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": others});
        kubectl_apply(&list.to_string())
    }

    /// The stored state of the example's objects: metadata (less what the
    /// server bumps on every write), spec and data.
    pub fn stored(&mut self, path: &str) -> serde_json::Value {
        let (namespaces, others) = self.rewrite(path);
        let items: Vec<_> = namespaces.into_iter().chain(others).collect();
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
        let out = kubectl(&["get", "-f", "-", "-o", "json"], &list.to_string());
        assert!(out.success, "kubectl get: {}", out.stderr);
        let mut v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        for item in v["items"].as_array_mut().unwrap() {
            let obj = item.as_object_mut().unwrap();
            obj.remove("status");
            let meta = obj["metadata"].as_object_mut().unwrap();
            meta.remove("resourceVersion");
            meta.remove("managedFields");
            // Written by kube-controller-manager's Deployment controller at
            // its own pace, not by apply or by hawser: a read on either side
            // of that write must compare equal.
            if let Some(a) = meta.get_mut("annotations").and_then(|a| a.as_object_mut()) {
                a.remove("deployment.kubernetes.io/revision");
            }
        }
        v["items"].take()
    }
}

impl Drop for Examples {
    fn drop(&mut self) {
        for ns in self.namespaces.values() {
            // No controller may be running to release vpce finalizers. Delete
            // first: the webhook leaves objects being deleted alone, but would
            // put the finalizer back on a live annotated Service.
            let _ = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "kubectl -n {ns} delete svc --all --wait=false >/dev/null 2>&1; for s in $(kubectl -n {ns} get svc -o name 2>/dev/null); do kubectl -n {ns} patch $s --type=merge -p '{{\"metadata\":{{\"finalizers\":null}}}}' >/dev/null 2>&1; done; kubectl delete namespace {ns} --ignore-not-found --wait=false >/dev/null 2>&1"
                ))
                .status();
        }
    }
}
