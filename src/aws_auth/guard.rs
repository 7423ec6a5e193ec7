//! The lockout guard's decision: may this UPDATE or DELETE of `aws-auth`
//! go ahead? Pure; the webhook handler feeds it the old and new
//! `mapRoles`.
//!
//! An entry is *protected* when it maps a node: its `groups` include
//! `system:nodes` (what EKS, eksctl and managed node groups and Fargate
//! profiles write for node and pod-execution roles, whatever the role is
//! called), or its `rolearn` matches `--protected-role-arn-pattern` (a
//! regex over the whole ARN, e.g. for administrator roles). Removing a
//! protected entry, or changing its username or dropping one of its
//! groups, is refused for everyone, hawser included. So is deleting an
//! `aws-auth` that holds one, and an update whose `mapRoles` no longer
//! parses (the nodes would drop out just the same).
//!
//! Deliberate removal (a node group retired) takes two steps: annotate
//! the ConfigMap with [`BYPASS_ANNOTATION`]`: "true"`, then change it. The
//! annotation is read from the object as it was *before* the change, so
//! one careless edit cannot both disable the guard and remove a node.

use regex::Regex;
use serde_yaml_ng::Value;

/// Group that marks a node role's mapping.
pub const NODE_GROUP: &str = "system:nodes";
/// On the ConfigMap before a change: let that change remove protected entries.
pub const BYPASS_ANNOTATION: &str = "iam.hawser.io/allow-protected-removal";

/// What the guard protects besides node roles.
#[derive(Debug, Clone, Default)]
pub struct Protection {
    /// Whole-ARN regex (anchored by the caller's flag parser).
    pub pattern: Option<Regex>,
}

impl Protection {
    /// Builds the protection from `--protected-role-arn-pattern`, anchoring
    /// it so it must match the whole ARN.
    pub fn from_pattern(pattern: Option<&str>) -> Result<Self, regex::Error> {
        let pattern = pattern
            .filter(|p| !p.is_empty())
            .map(|p| Regex::new(&format!("^(?:{p})$")))
            .transpose()?;
        Ok(Self { pattern })
    }

    pub fn is_protected(&self, entry: &Value) -> bool {
        let is_node = groups(entry).iter().any(|g| g == NODE_GROUP);
        let matches = match (&self.pattern, entry.get("rolearn").and_then(Value::as_str)) {
            (Some(re), Some(arn)) => re.is_match(arn),
            _ => false,
        };
        is_node || matches
    }
}

fn groups(entry: &Value) -> Vec<String> {
    entry
        .get("groups")
        .and_then(Value::as_sequence)
        .map(|s| {
            s.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn username(entry: &Value) -> Option<&str> {
    entry.get("username").and_then(Value::as_str)
}

fn entries(map_roles: Option<&str>) -> Result<Vec<Value>, String> {
    let Some(text) = map_roles else {
        return Ok(Vec::new());
    };
    // The authenticator's YAML reader resolves `<<` merge keys: an entry
    // may inherit its groups (system:nodes) from an anchor.
    let parsed = serde_yaml_ng::from_str::<Value>(text).and_then(|mut v| {
        v.apply_merge()?;
        Ok(v)
    });
    match parsed {
        Ok(Value::Null) => Ok(Vec::new()),
        Ok(Value::Sequence(s)) => Ok(s),
        Ok(_) => Err("mapRoles is not a list".to_owned()),
        Err(e) => Err(format!("mapRoles does not parse: {e}")),
    }
}

/// How aws-iam-authenticator keys a role: the whole ARN, IAM path
/// included, lower-cased; a later entry for the same key replaces an
/// earlier one.
fn authenticator_key(entry: &Value) -> Option<String> {
    entry
        .get("rolearn")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase)
}

/// The protected entries of `old` that `new` no longer carries intact, by
/// ARN. Intact: the entry the authenticator will use for the same ARN
/// (the last one, path included) has the same username and every group.
/// Changing the ARN's path or adding a later, weaker entry for the same
/// role both count as dropping it.
fn dropped(protection: &Protection, old: &[Value], new: &[Value]) -> Vec<String> {
    old.iter()
        .filter(|e| protection.is_protected(e))
        .filter(|e| {
            let key = authenticator_key(e);
            let effective = new
                .iter()
                .rev()
                .find(|n| key.is_some() && authenticator_key(n) == key);
            let kept = effective.is_some_and(|n| {
                username(n) == username(e) && groups(e).iter().all(|g| groups(n).contains(g))
            });
            !kept
        })
        .map(|e| {
            e.get("rolearn")
                .and_then(Value::as_str)
                .unwrap_or("(no rolearn)")
                .to_owned()
        })
        .collect()
}

fn how_to() -> String {
    format!(
        "if this is deliberate, first annotate the ConfigMap {BYPASS_ANNOTATION}=\"true\" \
         (kubectl -n kube-system annotate configmap aws-auth {BYPASS_ANNOTATION}=true), \
         then make the change in an update that also removes that annotation (kubectl edit), \
         or delete the ConfigMap: the annotation allows one change"
    )
}

/// UPDATE: `Err(message)` when the change would drop a protected entry.
pub fn check_update(
    protection: &Protection,
    old: Option<&str>,
    new: Option<&str>,
    bypass: bool,
) -> Result<(), String> {
    if bypass {
        return Ok(());
    }
    // An old mapRoles that does not parse protects nothing we can name.
    let Ok(old) = entries(old) else {
        return Ok(());
    };
    if !old.iter().any(|e| protection.is_protected(e)) {
        return Ok(());
    }
    let new = match entries(new) {
        Ok(n) => n,
        Err(why) => {
            return Err(format!(
                "hawser lockout guard: {why}; aws-auth would no longer map the node roles it maps now, and nodes would lose access to the cluster; fix the YAML of mapRoles"
            ))
        }
    };
    let dropped = dropped(protection, &old, &new);
    if dropped.is_empty() {
        return Ok(());
    }
    Err(format!(
        "hawser lockout guard: this change removes or weakens the aws-auth mapRoles entries of protected roles ({}): node roles (group {NODE_GROUP}) and roles matching --protected-role-arn-pattern must keep their username and groups, or nodes and administrators lose access to the cluster; {}",
        dropped.join(", "),
        how_to()
    ))
}

/// DELETE: `Err(message)` when the ConfigMap holds a protected entry.
pub fn check_delete(
    protection: &Protection,
    old: Option<&str>,
    bypass: bool,
) -> Result<(), String> {
    check_update(protection, old, None, bypass).map_err(|_| {
        let arns: Vec<String> = entries(old)
            .unwrap_or_default()
            .iter()
            .filter(|e| protection.is_protected(e))
            .filter_map(|e| e.get("rolearn").and_then(Value::as_str).map(str::to_owned))
            .collect();
        format!(
            "hawser lockout guard: deleting aws-auth would remove the mappings of protected roles ({}), and nodes and administrators would lose access to the cluster; {}",
            arns.join(", "),
            how_to()
        )
    })
}
