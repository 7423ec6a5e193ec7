//! What CloudFormation should hold for one Namespace or Deployment: the
//! stack's name, tags, template, parameters and capabilities, and the hash
//! that stands for all of them. Pure.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::annotations::{keys, ObjectKind, StackSpec};
use crate::aws::{with_default_tags, Stack, StackRequest, Tags};

/// CloudFormation's limit on a stack name.
pub const MAX_STACK_NAME: usize = 128;
/// Hex digits of the hash that ends a shortened stack name.
const NAME_HASH_LEN: usize = 10;

/// The object a stack belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub kind: ObjectKind,
    /// The namespace: a Namespace's own name, a Deployment's namespace.
    pub namespace: String,
    /// The object's name (for a Namespace, the same as `namespace`).
    pub name: String,
    pub uid: String,
}

impl Owner {
    /// The `hawser.io/owner` tag: `<kind>/<namespace>/<name>`; a Namespace
    /// is cluster-scoped, so its middle part is empty: `Namespace//team-a`.
    pub fn reference(&self) -> String {
        match self.kind {
            ObjectKind::Namespace => format!("Namespace//{}", self.name),
            kind => format!("{}/{}/{}", kind.as_str(), self.namespace, self.name),
        }
    }

    /// The tags that make a stack this object's. A stack with hawser's
    /// name but other values here is never touched.
    pub fn ownership_tags(&self, cluster: &str) -> Tags {
        Tags::from([
            (keys::TAG_CLUSTER.to_owned(), cluster.to_owned()),
            (keys::TAG_OWNER.to_owned(), self.reference()),
            (keys::TAG_UID.to_owned(), self.uid.clone()),
        ])
    }

    /// `hawser-<cluster>-<namespace>[-<deployment>]`, see [`stack_name`].
    pub fn stack_name(&self, cluster: &str) -> String {
        let deployment = (self.kind == ObjectKind::Deployment).then_some(self.name.as_str());
        stack_name(cluster, &self.namespace, deployment)
    }
}

/// `hawser-<cluster>-<namespace>[-<deployment>]` as a valid stack name:
/// characters other than letters, digits and `-` (a Deployment's `.`, a
/// cluster's `_`) become `-`; a name over 128 characters is cut and ends
/// in `-` + 10 hex digits of the SHA-256 of the full name, so two long
/// names that share a prefix still differ. Names can still collide
/// (`a-b` + `c` and `a` + `b-c`); the ownership tags catch that.
pub fn stack_name(cluster: &str, namespace: &str, deployment: Option<&str>) -> String {
    let full = match deployment {
        Some(d) => format!("hawser-{cluster}-{namespace}-{d}"),
        None => format!("hawser-{cluster}-{namespace}"),
    };
    let clean: String = full
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    if clean.len() <= MAX_STACK_NAME {
        return clean;
    }
    let hash = hex(&Sha256::digest(full.as_bytes()));
    let keep = MAX_STACK_NAME - NAME_HASH_LEN - 1;
    format!(
        "{}-{}",
        clean[..keep].trim_end_matches('-'),
        &hash[..NAME_HASH_LEN]
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash of everything an update would change: template text,
/// parameters and capabilities. 32 hex digits (128 bits).
pub fn spec_hash(
    template_body: &str,
    parameters: &BTreeMap<String, String>,
    capabilities: &[String],
) -> String {
    let canonical = serde_json::json!({
        "template": template_body,
        "parameters": parameters,
        "capabilities": capabilities,
    });
    hex(&Sha256::digest(canonical.to_string().as_bytes()))[..32].to_owned()
}

/// Everything hawser wants CloudFormation to hold for one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// Create and update request; its tags are the ownership tags over
    /// `--default-tags` (and nothing that changes with the spec: stack
    /// tags propagate to every resource, and a tag edit can replace some
    /// of them).
    pub request: StackRequest,
    pub spec_hash: String,
    /// Find-by tags: cluster, owner, uid.
    pub ownership: Tags,
    /// The change set an update goes through: named after the object and
    /// the spec, so a pass interrupted between create and execute finds it
    /// again.
    pub change_set_name: String,
}

pub fn desired(
    spec: &StackSpec,
    template_body: &str,
    owner: &Owner,
    cluster: &str,
    default_tags: &Tags,
) -> Desired {
    let mut capabilities: Vec<String> = spec
        .capabilities
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect();
    capabilities.sort();
    let hash = spec_hash(template_body, &spec.parameters, &capabilities);
    let ownership = owner.ownership_tags(cluster);
    let tags = with_default_tags(default_tags, &ownership);
    Desired {
        request: StackRequest {
            stack_name: owner.stack_name(cluster),
            template_body: template_body.to_owned(),
            parameters: spec.parameters.clone(),
            capabilities,
            tags,
        },
        // Per object as well as per spec: moto looks change sets up by
        // name across all stacks.
        change_set_name: format!(
            "hawser-{}",
            &hex(&Sha256::digest(format!("{}/{hash}", owner.uid).as_bytes()))[..32]
        ),
        spec_hash: hash,
        ownership,
    }
}

/// Whether `stack` carries exactly this object's ownership tags.
pub fn is_owned(stack: &Stack, ownership: &Tags) -> bool {
    crate::aws::carries(&stack.tags, ownership)
}

/// Parameters whose value in the stack differs from the desired one:
/// changed outside hawser. NoEcho values (`****`) cannot be compared and
/// are taken as equal; parameters only the template names (defaults) are
/// not hawser's to compare.
pub fn parameter_drift(stack: &Stack, want: &BTreeMap<String, String>) -> Vec<String> {
    want.iter()
        .filter(|(k, v)| {
            stack
                .parameters
                .get(*k)
                .is_some_and(|have| have != "****" && have != *v)
        })
        .map(|(k, _)| k.clone())
        .collect()
}
