//! `kube-system/aws-auth`: how hawser edits it, and how it guards it.
//!
//! # Ownership model
//!
//! EKS reads IAM-to-Kubernetes mappings from the `mapRoles`, `mapUsers`
//! and `mapAccounts` keys of the `aws-auth` ConfigMap. Other people and
//! tools write there too: eksctl and managed node groups add the node
//! roles, Terraform or a human add administrators. hawser therefore:
//!
//! - edits only `mapRoles`, and there only the list items it owns: a new
//!   entry is appended as a block of text, its own entry is replaced or
//!   removed as a block of text. Every other entry keeps its exact bytes
//!   (comments, quoting, order); `mapUsers`, `mapAccounts` and any other
//!   key are never rewritten ([`items`]).
//! - records what it owns in the ConfigMap's annotation
//!   [`OWNERSHIP_ANNOTATION`] (`iam.hawser.io/mapped-roles`): a JSON object
//!   from role ARN to the namespace that asked for it, e.g.
//!   `{"arn:aws:iam::111122223333:role/team-a":"team-a"}`. An entry is
//!   hawser's only if its `rolearn` is a key there; a role already mapped
//!   by an entry not in the record is never taken over ([`Refusal::Foreign`]).
//! - refuses to write at all when `mapRoles` or the record does not parse
//!   ([`DocumentError`]): it reports, and leaves the ConfigMap alone.
//! - compares role ARNs as aws-auth does: without the IAM path, case
//!   insensitively; it writes them without the path, which aws-auth requires.
//!
//! The lockout guard ([`guard`]) is the other half: a validating webhook
//! that refuses any change, by anyone, that would drop a node role.

pub mod edit;
pub mod guard;
pub mod items;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use edit::{edit, Change, DocumentError, Edited, Effect, Refusal};
pub use guard::Protection;

/// Where EKS reads the mappings.
pub const NAMESPACE: &str = "kube-system";
pub const NAME: &str = "aws-auth";
pub const MAP_ROLES: &str = "mapRoles";
/// The ConfigMap annotation recording hawser's entries (role ARN → namespace).
pub const OWNERSHIP_ANNOTATION: &str = "iam.hawser.io/mapped-roles";

/// One `mapRoles` entry as hawser writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapRole {
    pub rolearn: String,
    pub username: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// How aws-auth matches a role: the ARN without its IAM path, lower-cased.
pub fn role_key(arn: &str) -> String {
    let lower = arn.to_ascii_lowercase();
    match lower.split_once(":role/") {
        Some((head, path_and_name)) => {
            let name = path_and_name.rsplit('/').next().unwrap_or(path_and_name);
            format!("{head}:role/{name}")
        }
        None => lower,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {OWNERSHIP_ANNOTATION} on {NAMESPACE}/{NAME} is not a JSON object of role ARN to namespace ({0}); hawser will not guess which entries are its own (fix or remove the annotation)")]
pub struct OwnershipError(String);

/// hawser's record of its entries: role ARN (as written) → namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership(BTreeMap<String, String>);

impl Ownership {
    /// Reads the annotation's value; absent is empty.
    pub fn parse(value: Option<&str>) -> Result<Self, OwnershipError> {
        match value {
            None => Ok(Self::default()),
            Some(v) if v.trim().is_empty() => Ok(Self::default()),
            Some(v) => serde_json::from_str(v)
                .map(Self)
                .map_err(|e| OwnershipError(e.to_string())),
        }
    }

    /// The annotation's value (stable key order).
    pub fn to_annotation(&self) -> String {
        serde_json::to_string(&self.0).expect("a string map serialises")
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The namespace owning the role with this [`role_key`].
    pub fn owner_of(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(arn, _)| role_key(arn) == key)
            .map(|(_, ns)| ns.as_str())
    }

    /// The roles recorded for `namespace`.
    pub fn roles_of<'a>(&'a self, namespace: &'a str) -> impl Iterator<Item = String> + 'a {
        self.0
            .iter()
            .filter(move |(_, ns)| *ns == namespace)
            .map(|(arn, _)| arn.clone())
    }

    pub fn insert(&mut self, arn: &str, namespace: &str) {
        let key = role_key(arn);
        self.0.retain(|a, _| role_key(a) != key);
        self.0.insert(arn.to_owned(), namespace.to_owned());
    }

    pub fn remove(&mut self, arn: &str) {
        self.0.remove(arn);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(a, n)| (a.as_str(), n.as_str()))
    }
}
