//! Which AWS account and region an object's calls run in: its namespace's
//! `aws.hawser.io/role-arn` (assumed with STS, session `hawser-<namespace>`)
//! and `aws.hawser.io/region`, which the object's own
//! `aws.hawser.io/region` overrides. One place, for every controller that
//! calls AWS for namespaced objects (VPC endpoints, stacks).

use std::collections::BTreeMap;

use crate::annotations::keys::{AWS_REGION, AWS_ROLE_ARN};
use crate::annotations::{effective_region, parse_region, parse_role_arn, AnnotationError};
use crate::aws::Scope;
use crate::namespaces::NamespaceCache;

/// STS limits session names to 64 characters.
const SESSION_NAME_MAX: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// The namespace's annotation does not parse; the webhook normally
    /// refuses it first. Terminal until the namespace changes.
    #[error("namespace {namespace:?}: {error}")]
    Invalid {
        namespace: String,
        error: AnnotationError,
    },
    /// The namespace is not in the cache (yet). Calls must not fall back
    /// to hawser's own account: that could create resources in the wrong
    /// one. Retried.
    #[error("namespace {0:?} is not in hawser's namespace cache yet; its AWS account and region are unknown")]
    UnknownNamespace(String),
}

impl ScopeError {
    pub fn category(&self) -> &'static str {
        match self {
            ScopeError::Invalid { .. } => "invalid_namespace_annotations",
            ScopeError::UnknownNamespace(_) => "namespace_unknown",
        }
    }

    pub fn is_terminal(&self) -> bool {
        matches!(self, ScopeError::Invalid { .. })
    }
}

/// `hawser-<namespace>`, cut to STS's 64 characters. Namespace names
/// (DNS labels) use only characters STS allows.
pub fn session_name(namespace: &str) -> String {
    let mut name = format!("hawser-{namespace}");
    name.truncate(SESSION_NAME_MAX);
    name
}

/// The scope for an object in `namespace` whose annotations (the
/// namespace's) are `namespace_annotations`. `object_region`: the
/// object's own, already validated `aws.hawser.io/region`.
pub fn scope_for(
    namespace: &str,
    namespace_annotations: &BTreeMap<String, String>,
    object_region: Option<&str>,
    default_region: &str,
) -> Result<Scope, ScopeError> {
    let invalid = |error| ScopeError::Invalid {
        namespace: namespace.to_owned(),
        error,
    };
    let role_arn = namespace_annotations
        .get(AWS_ROLE_ARN)
        .map(|v| parse_role_arn(AWS_ROLE_ARN, v).map(|arn| arn.to_string()))
        .transpose()
        .map_err(invalid)?;
    let namespace_region = namespace_annotations
        .get(AWS_REGION)
        .map(|v| parse_region(AWS_REGION, v))
        .transpose()
        .map_err(invalid)?;
    let region = effective_region(
        object_region,
        namespace_region.as_deref(),
        Some(default_region),
    )
    .unwrap_or(default_region)
    .to_owned();
    let session_name = role_arn.as_ref().map(|_| session_name(namespace));
    Ok(Scope {
        region,
        role_arn,
        session_name,
    })
}

/// [`scope_for`] with the namespace read from the cache.
pub fn resolve(
    cache: &NamespaceCache,
    namespace: &str,
    object_region: Option<&str>,
    default_region: &str,
) -> Result<Scope, ScopeError> {
    let info = cache
        .get(namespace)
        .ok_or_else(|| ScopeError::UnknownNamespace(namespace.to_owned()))?;
    scope_for(namespace, &info.annotations, object_region, default_region)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn own_identity_and_default_region_without_annotations() {
        let s = scope_for("team-a", &ann(&[]), None, "us-west-2").unwrap();
        assert_eq!(s, Scope::own("us-west-2"));
    }

    #[test]
    fn the_namespace_role_is_assumed_under_its_own_session() {
        let a = ann(&[
            (
                "aws.hawser.io/role-arn",
                "arn:aws:iam::111111111111:role/tenant",
            ),
            ("aws.hawser.io/region", "eu-west-1"),
        ]);
        let s = scope_for("team-a", &a, None, "us-west-2").unwrap();
        assert_eq!(
            s.role_arn.as_deref(),
            Some("arn:aws:iam::111111111111:role/tenant")
        );
        assert_eq!(s.session_name.as_deref(), Some("hawser-team-a"));
        assert_eq!(s.region, "eu-west-1");
        let overridden = scope_for("team-a", &a, Some("ap-south-1"), "us-west-2").unwrap();
        assert_eq!(
            overridden.region, "ap-south-1",
            "the object's own region wins"
        );
    }

    #[test]
    fn session_names_fit_sts() {
        let long = "n".repeat(63);
        let name = session_name(&long);
        assert_eq!(name.len(), 64);
        assert!(name.starts_with("hawser-nnn"));
    }

    #[test]
    fn a_bad_namespace_annotation_is_terminal_and_says_where() {
        let a = ann(&[("aws.hawser.io/role-arn", "arn:aws:iam::1:user/x")]);
        let err = scope_for("team-a", &a, None, "us-west-2").unwrap_err();
        assert!(err.is_terminal());
        let msg = err.to_string();
        assert!(
            msg.contains("team-a") && msg.contains("aws.hawser.io/role-arn"),
            "{msg}"
        );
    }

    #[test]
    fn an_unknown_namespace_is_not_guessed() {
        let cache = NamespaceCache::from_list(vec![]);
        let err = resolve(&cache, "new", None, "us-west-2").unwrap_err();
        assert_eq!(err, ScopeError::UnknownNamespace("new".into()));
        assert!(!err.is_terminal());
    }
}
