//! Small scalar values and the comma-separated list rule shared by the
//! list-valued annotations.

use super::error::AnnotationError;

/// Allowed text for every boolean annotation.
const BOOL_ALLOWED: &str =
    "\"true\" or \"false\", exactly, lower-case (quote it in YAML so it stays a string)";

/// Parses a boolean annotation: exactly `"true"` or `"false"`.
/// `True`, `yes`, `1` and friends are refused rather than guessed at.
pub fn parse_bool(key: &str, value: &str) -> Result<bool, AnnotationError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(AnnotationError::new(
            key,
            value,
            "not a boolean",
            BOOL_ALLOWED,
        )),
    }
}

/// What happens to AWS resources when the annotated object is deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum DeletionPolicy {
    /// Delete what hawser created (generated security groups, endpoints,
    /// stacks); provided security groups are never deleted.
    #[default]
    Delete,
    /// Keep the AWS resources; the finalizer still runs and tags record
    /// the release.
    Retain,
}

impl DeletionPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DeletionPolicy::Delete => "delete",
            DeletionPolicy::Retain => "retain",
        }
    }
}

/// Parses `hawser.io/deletion-policy`: `retain` or `delete`.
/// `hawser.io/deletion-policy` as a cleanup reads it: leniently, since
/// cleanup must run even when the other annotations no longer parse. An
/// unreadable policy keeps the resources, the choice that cannot lose
/// data.
pub fn cleanup_deletion_policy(ann: &std::collections::BTreeMap<String, String>) -> DeletionPolicy {
    match ann.get(super::keys::DELETION_POLICY) {
        None => DeletionPolicy::Delete,
        Some(v) => {
            parse_deletion_policy(super::keys::DELETION_POLICY, v).unwrap_or(DeletionPolicy::Retain)
        }
    }
}

pub fn parse_deletion_policy(key: &str, value: &str) -> Result<DeletionPolicy, AnnotationError> {
    match value {
        "delete" => Ok(DeletionPolicy::Delete),
        "retain" => Ok(DeletionPolicy::Retain),
        _ => Err(AnnotationError::new(
            key,
            value,
            "not a deletion policy",
            "\"retain\" (keep AWS resources when the object is deleted) or \"delete\" (the default)",
        )),
    }
}

/// Pod hardening profile from `security.hawser.io/profile`.
///
/// `Baseline` is accepted because it is the Pod Security Standards name
/// people reach for, and means "nothing beyond the privileged rule". The
/// variants are ordered by strictness so that the effective profile of a
/// Deployment is `max(namespace, deployment)`: a Deployment can tighten
/// its namespace's profile, never loosen it. `privileged` is refused:
/// privileged containers are allowed per namespace with
/// `security.hawser.io/allow-privileged`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SecurityProfile {
    Baseline,
    Restricted,
}

impl SecurityProfile {
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProfile::Baseline => "baseline",
            SecurityProfile::Restricted => "restricted",
        }
    }

    /// The profile that applies to a Deployment: the stricter of its own
    /// and its namespace's.
    pub fn effective(
        namespace: Option<SecurityProfile>,
        deployment: Option<SecurityProfile>,
    ) -> SecurityProfile {
        namespace
            .max(deployment)
            .unwrap_or(SecurityProfile::Baseline)
    }
}

/// Parses `security.hawser.io/profile`: `restricted` or `baseline`.
pub fn parse_security_profile(key: &str, value: &str) -> Result<SecurityProfile, AnnotationError> {
    match value {
        "restricted" => Ok(SecurityProfile::Restricted),
        "baseline" => Ok(SecurityProfile::Baseline),
        _ => Err(AnnotationError::new(
            key,
            value,
            "not a security profile",
            "\"restricted\" (drop all capabilities, no privilege escalation, RuntimeDefault seccomp, \
             run as non-root) or \"baseline\" (no privileged containers only); privileged containers \
             are allowed per namespace with security.hawser.io/allow-privileged: \"true\"",
        )),
    }
}

/// Parses `env.hawser.io/rotate-keys`: any non-empty string of at most 253
/// characters. Only a change of value matters.
pub fn parse_rotate_keys(key: &str, value: &str) -> Result<String, AnnotationError> {
    let allowed = "any non-empty string of at most 253 characters, e.g. a date such as \
                   2024-06-01; changing it rotates the routing keys once";
    if value.is_empty() {
        return Err(AnnotationError::new(key, value, "empty", allowed));
    }
    let chars = value.chars().count();
    if chars > 253 {
        return Err(AnnotationError::new(
            key,
            value,
            format!("{chars} characters long"),
            allowed,
        ));
    }
    Ok(value.to_owned())
}

/// Whether `s` is a DNS-1123 label (a Namespace or Service name):
/// 1..=63 of `[a-z0-9-]`, starting and ending alphanumeric.
pub fn is_dns1123_label(s: &str) -> bool {
    s.len() <= 63 && is_label_chars(s)
}

/// Whether `s` is a DNS-1123 subdomain (a ConfigMap or Deployment name),
/// as the Kubernetes API server checks it: at most 253 characters,
/// dot-separated DNS-1123 label syntax (the API server does not bound
/// each label to 63).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label_chars)
}

fn is_label_chars(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            alnum(first) && alnum(last) && b.iter().all(|c| alnum(c) || *c == b'-')
        }
        _ => false,
    }
}

/// Shape of one comma-separated list annotation.
pub(crate) struct ListRule<'a> {
    pub key: &'a str,
    /// Plural noun for the items, e.g. "subnet ids".
    pub nouns: &'a str,
    pub max: usize,
    /// Why `max`, appended to the count error (may be empty).
    pub max_why: &'a str,
    pub allowed: &'a str,
}

impl ListRule<'_> {
    pub fn error(&self, value: &str, reason: impl Into<String>) -> AnnotationError {
        AnnotationError::new(self.key, value, reason, self.allowed)
    }

    /// Splits `value` on commas, trims each item, checks it with `item`
    /// (which returns the normalised item or the reason it is refused),
    /// and enforces 1..=max distinct items, in the order given.
    pub fn parse(
        &self,
        value: &str,
        item: impl Fn(&str) -> Result<String, String>,
    ) -> Result<Vec<String>, AnnotationError> {
        if value.trim().is_empty() {
            return Err(self.error(value, "empty list"));
        }
        // Count first: the O(n^2) distinctness check below must only ever
        // see a short list, whatever size the annotation is.
        let items: Vec<&str> = value.split(',').map(str::trim).collect();
        if items.len() > self.max {
            let why = if self.max_why.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.max_why)
            };
            return Err(self.error(
                value,
                format!("{} {}; at most {}{why}", items.len(), self.nouns, self.max),
            ));
        }
        let mut out: Vec<String> = Vec::with_capacity(items.len());
        for raw in items {
            if raw.is_empty() {
                return Err(self.error(value, "empty item in the comma-separated list"));
            }
            let normalised = item(raw).map_err(|reason| self.error(value, reason))?;
            if out.contains(&normalised) {
                return Err(self.error(value, format!("{normalised} is listed twice")));
            }
            out.push(normalised);
        }
        Ok(out)
    }
}
