//! The deployable artefacts in `manifests/`, read as JSON values.

use serde_json::Value;

pub const MANIFESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/manifests/hawser.yaml");
pub const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/hawser");
pub const MONITORING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/manifests/monitoring.yaml");

/// Every document of a YAML stream.
pub fn load(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// The first document of `kind`.
pub fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in the manifests"))
}
