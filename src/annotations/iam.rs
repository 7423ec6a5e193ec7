//! The Kubernetes identity an IAM role is mapped to in `aws-auth`.

use super::error::{quoted, AnnotationError};
use super::values::ListRule;

/// Templates `aws-auth` expands in a username that hawser lets a
/// namespace use. `{{EC2PrivateDNSName}}` and friends are node identities
/// and stay out of reach.
pub const USERNAME_TEMPLATES: &[&str] = &["{{SessionName}}", "{{AccountID}}", "{{SessionNameRaw}}"];

/// The username used when `iam.hawser.io/username` is absent.
pub fn default_iam_username(namespace: &str) -> String {
    format!("hawser:{namespace}:{{{{SessionName}}}}")
}

const USERNAME_ALLOWED: &str = "1 to 128 characters without whitespace or commas, optionally \
     using {{SessionName}}, {{SessionNameRaw}} or {{AccountID}}, e.g. ci:{{SessionName}}";

/// Parses `iam.hawser.io/username`.
pub fn parse_iam_username(key: &str, value: &str) -> Result<String, AnnotationError> {
    let err = |reason: String| AnnotationError::new(key, value, reason, USERNAME_ALLOWED);
    if value.is_empty() {
        return Err(err("empty".to_owned()));
    }
    let chars = value.chars().count();
    if chars > 128 {
        return Err(err(format!("{chars} characters long")));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(err("contains whitespace".to_owned()));
    }
    if value.contains(',') {
        return Err(err("contains a comma".to_owned()));
    }
    let mut rest = value;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            return Err(err("\"{{\" without a closing \"}}\"".to_owned()));
        };
        let template = &rest[start..start + len + 2];
        if !USERNAME_TEMPLATES.contains(&template) {
            return Err(err(format!("unknown template {template}")));
        }
        rest = &rest[start + len + 2..];
    }
    if rest.contains("}}") {
        return Err(err("\"}}\" without an opening \"{{\"".to_owned()));
    }
    Ok(value.to_owned())
}

/// Parses `iam.hawser.io/groups`: 1..=20 distinct Kubernetes group names,
/// comma-separated, each 1..=128 characters without whitespace. Whether
/// `system:` groups are allowed is the controller's policy; see
/// [`is_system_group`].
pub fn parse_iam_groups(key: &str, value: &str) -> Result<Vec<String>, AnnotationError> {
    ListRule {
        key,
        nouns: "groups",
        max: 20,
        max_why: "",
        allowed: "1 to 20 distinct group names, comma-separated, each 1 to 128 characters \
                  without whitespace, e.g. team-a-developers,team-a-viewers",
    }
    .parse(value, |item| {
        let chars = item.chars().count();
        if chars > 128 {
            Err(format!("group {} is {chars} characters long", quoted(item)))
        } else if item.chars().any(char::is_whitespace) {
            Err(format!("group {} contains whitespace", quoted(item)))
        } else {
            Ok(item.to_owned())
        }
    })
}

/// Whether `group` is one of Kubernetes' reserved `system:` groups
/// (`system:masters` grants cluster-admin).
pub fn is_system_group(group: &str) -> bool {
    group.starts_with("system:")
}

/// Whether `username` is one of Kubernetes' reserved `system:` identities
/// (`system:kube-controller-manager`, `system:serviceaccount:…`, nodes):
/// mapping a role to one grants what that identity may do.
pub fn is_system_username(username: &str) -> bool {
    username.starts_with("system:")
}
