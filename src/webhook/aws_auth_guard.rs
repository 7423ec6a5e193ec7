//! `/validate-aws-auth`: the lockout guard. Sees UPDATE and DELETE of
//! ConfigMaps in kube-system (see `src/manifests.rs` for how the webhook
//! entries select them on every Kubernetes version); everything but
//! `kube-system/aws-auth` is allowed at once, and that one is judged by
//! [`crate::aws_auth::guard`].

use kube::core::{
    admission::{AdmissionRequest, AdmissionResponse, Operation},
    DynamicObject,
};

use crate::aws_auth::{
    guard::{check_delete, check_update, BYPASS_ANNOTATION},
    Protection, MAP_ROLES, NAMESPACE,
};

/// The guard's settings.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    pub protection: Protection,
    /// The ConfigMap guarded (in kube-system); `aws-auth` but for tests.
    pub aws_auth_name: String,
}

impl Default for GuardConfig {
    fn default() -> Self {
        Self {
            protection: Protection::default(),
            aws_auth_name: crate::aws_auth::NAME.into(),
        }
    }
}

fn map_roles(obj: Option<&DynamicObject>) -> Option<String> {
    obj?.data
        .get("data")?
        .get(MAP_ROLES)?
        .as_str()
        .map(str::to_owned)
}

fn has_bypass(obj: Option<&DynamicObject>) -> bool {
    obj.and_then(|o| o.metadata.annotations.as_ref())
        .and_then(|a| a.get(BYPASS_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// The bypass is one-shot: it counts only when the ConfigMap already
/// carried it and this request takes it away (an update that removes it,
/// or the deletion). Left in place, it would leave every later edit
/// unguarded.
fn bypassed(old: Option<&DynamicObject>, new: Option<&DynamicObject>, op: &Operation) -> bool {
    has_bypass(old) && (matches!(op, Operation::Delete) || !has_bypass(new))
}

/// The answer for one request.
pub fn review(config: &GuardConfig, req: &AdmissionRequest<DynamicObject>) -> AdmissionResponse {
    let response = AdmissionResponse::from(req);
    let guarded = req.kind.group.is_empty()
        && req.kind.kind == "ConfigMap"
        && req.namespace.as_deref() == Some(NAMESPACE)
        && req.name == config.aws_auth_name;
    if !guarded {
        return response;
    }
    let old = req.old_object.as_ref();
    let bypass = bypassed(old, req.object.as_ref(), &req.operation);
    let old_roles = map_roles(old);
    let verdict = match req.operation {
        Operation::Update => check_update(
            &config.protection,
            old_roles.as_deref(),
            map_roles(req.object.as_ref()).as_deref(),
            bypass,
        ),
        Operation::Delete => check_delete(&config.protection, old_roles.as_deref(), bypass),
        _ => Ok(()),
    };
    match verdict {
        Ok(()) => {
            if bypass {
                tracing::warn!(
                    operation = ?req.operation,
                    user = req.user_info.username.as_deref().unwrap_or_default(),
                    "aws-auth changed with the lockout guard bypassed ({BYPASS_ANNOTATION})"
                );
            }
            response
        }
        Err(message) => response.deny(message),
    }
}
