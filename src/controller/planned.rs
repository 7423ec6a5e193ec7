//! What a controller would do in AWS, as plain records: `hawser plan`
//! prints them, and a plan-only object (`hawser.io/plan-only: "true"`, or
//! `--plan-only`) gets them in its `hawser.io/plan` annotation and an
//! Event instead of the calls.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verb {
    Create,
    Modify,
    Delete,
    /// Untag and leave (`hawser.io/deletion-policy: retain`).
    Release,
}

/// One AWS change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    pub action: Verb,
    /// `vpc-endpoint`, `security-group`, `stack`.
    pub resource: String,
    /// The existing resource's id (none for a create).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<String>,
    /// What changes, in words: a create's settings, a modify's diff.
    pub detail: String,
}

impl Action {
    pub fn new(action: Verb, resource: &str, id: Option<&str>, detail: impl Into<String>) -> Self {
        Self {
            action,
            resource: resource.to_owned(),
            id: id.map(str::to_owned),
            detail: detail.into(),
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verb = match self.action {
            Verb::Create => "create",
            Verb::Modify => "modify",
            Verb::Delete => "delete",
            Verb::Release => "release",
        };
        write!(f, "{verb} {}", self.resource)?;
        if let Some(id) = &self.id {
            write!(f, " {id}")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// One line for an Event or a log: the actions, `; `-separated, or
/// "no change".
pub fn summary(actions: &[Action]) -> String {
    if actions.is_empty() {
        return "no change".to_owned();
    }
    actions
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The field manager of `hawser.io/plan`: its own, so that the outputs'
/// server-side apply and the plan's never drop each other's fields.
pub const PLAN_MANAGER: &str = "hawser-plan";

/// Whether the object only plans: `hawser.io/plan-only` set to anything
/// but `"false"` (the webhook admits `"true"` and `"false"`; a value that
/// got past it errs on the side of doing nothing), or `--plan-only` for
/// every object.
pub fn plan_only(annotations: &std::collections::BTreeMap<String, String>, flag: bool) -> bool {
    flag || annotations
        .get(crate::annotations::keys::PLAN_ONLY)
        .is_some_and(|v| v != "false")
}

/// `hawser.io/plan`'s value for `actions`: a JSON list.
pub fn annotation_value(actions: &[Action]) -> String {
    serde_json::to_string(actions).expect("actions serialize")
}

/// Writes `hawser.io/plan` (`Some`) on the object, or removes it (`None`),
/// by server-side apply as [`PLAN_MANAGER`].
pub async fn record<K>(
    api: &kube::Api<K>,
    name: &str,
    actions: Option<&[Action]>,
) -> Result<(), crate::controller::timeout::ApiError>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut annotations = serde_json::Map::new();
    if let Some(actions) = actions {
        annotations.insert(
            crate::annotations::keys::PLAN.into(),
            annotation_value(actions).into(),
        );
    }
    let body = serde_json::json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": {"name": name, "annotations": annotations},
    });
    let params = kube::api::PatchParams::apply(PLAN_MANAGER).force();
    let patch = kube::api::Patch::Apply(&body);
    match crate::controller::timeout::call("write the plan", api.patch(name, &params, &patch)).await
    {
        Ok(_) => Ok(()),
        // Deleted meanwhile: nothing left to write on.
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn plan_only_is_anything_but_false_and_the_flag_wins() {
        let ann = |v: &str| BTreeMap::from([("hawser.io/plan-only".to_owned(), v.to_owned())]);
        assert!(plan_only(&ann("true"), false));
        assert!(
            plan_only(&ann("yes please"), false),
            "an odd value does nothing rather than act"
        );
        assert!(!plan_only(&ann("false"), false));
        assert!(!plan_only(&BTreeMap::new(), false));
        assert!(plan_only(&BTreeMap::new(), true));
        assert!(plan_only(&ann("false"), true));
    }
}
