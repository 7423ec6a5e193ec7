//! The IAM mapping of a namespace: its `mapRoles` entry (through the
//! [`super::writer`]) and RoleBinding `hawser-iam`, which binds the
//! mapped groups to `--iam-cluster-role` in the namespace.

use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use kube::{
    api::{DeleteParams, Patch, PatchParams},
    core::ObjectMeta,
    Api,
};

use super::{error::Error, MANAGED_BY, MANAGED_BY_VALUE};
use crate::annotations::{
    default_iam_username, is_system_group, is_system_username, IamMappingSpec,
};
use crate::aws_auth::MapRole;
use crate::aws_auth::Protection;
use crate::controller::{timeout, FIELD_MANAGER};

pub const ROLE_BINDING: &str = "hawser-iam";
const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// The `mapRoles` entry a namespace asks for. `system:` groups are
/// refused here too, in case the webhook was bypassed or down.
pub fn desired_entry(
    namespace: &str,
    spec: &IamMappingSpec,
    allow_system_groups: bool,
    protection: &Protection,
) -> Result<MapRole, Error> {
    let system: Vec<&str> = spec
        .groups
        .iter()
        .map(String::as_str)
        .filter(|g| is_system_group(g))
        .collect();
    if !system.is_empty() && !allow_system_groups {
        return Err(Error::InvalidAnnotations(format!(
            "annotation iam.hawser.io/groups: groups starting with \"system:\" ({}) are not mapped unless hawser runs with --allow-system-groups",
            system.join(", ")
        )));
    }
    if let Some(user) = spec.username.as_deref().filter(|u| is_system_username(u)) {
        if !allow_system_groups {
            return Err(Error::InvalidAnnotations(format!(
                "annotation iam.hawser.io/username: {user:?} starts with \"system:\", a Kubernetes built-in identity; it is not mapped unless hawser runs with --allow-system-groups"
            )));
        }
    }
    let entry = MapRole {
        rolearn: spec.role_arn.arn_without_path(),
        username: spec
            .username
            .clone()
            .unwrap_or_else(|| default_iam_username(namespace)),
        groups: spec.groups.clone(),
    };
    // An entry the lockout guard protects could never be changed or
    // removed by hawser again, and a refused write fails every namespace
    // batched with it.
    let as_value = serde_yaml_ng::to_value(&entry).unwrap_or_default();
    if protection.is_protected(&as_value) {
        return Err(Error::InvalidAnnotations(format!(
            "annotation iam.hawser.io/role-arn: {:?} is protected by the aws-auth lockout guard (group system:nodes or --protected-role-arn-pattern); hawser does not map protected roles, because it could never change or remove the entry again; allowed: a role without group system:nodes that does not match --protected-role-arn-pattern",
            entry.rolearn
        )));
    }
    Ok(entry)
}

/// The RoleBinding for `groups`, or `None` when there is nothing to bind.
pub fn desired_binding(
    namespace: &str,
    groups: &[String],
    cluster_role: &str,
) -> Option<RoleBinding> {
    if groups.is_empty() {
        return None;
    }
    Some(RoleBinding {
        metadata: ObjectMeta {
            name: Some(ROLE_BINDING.into()),
            namespace: Some(namespace.into()),
            labels: Some([(MANAGED_BY.into(), MANAGED_BY_VALUE.into())].into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: RBAC_GROUP.into(),
            kind: "ClusterRole".into(),
            name: cluster_role.into(),
        },
        subjects: Some(
            groups
                .iter()
                .map(|g| Subject {
                    api_group: Some(RBAC_GROUP.into()),
                    kind: "Group".into(),
                    name: g.clone(),
                    namespace: None,
                })
                .collect(),
        ),
    })
}

/// Whether the RoleBinding is labelled as hawser's.
pub(super) fn is_ours(rb: &RoleBinding) -> bool {
    rb.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY))
        .map(String::as_str)
        == Some(MANAGED_BY_VALUE)
}

/// What happened to the RoleBinding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Binding {
    Unchanged,
    Applied,
    Deleted,
    Foreign,
}

/// Makes RoleBinding `hawser-iam` match `desired` (deleting ours when
/// there is nothing to bind). A RoleBinding of that name that hawser did
/// not create is never touched.
pub async fn ensure_binding(
    api: &Api<RoleBinding>,
    desired: Option<RoleBinding>,
) -> Result<Binding, Error> {
    let current = timeout::api("get RoleBinding hawser-iam", api.get_opt(ROLE_BINDING)).await??;
    match (current, desired) {
        (Some(cur), _) if !is_ours(&cur) => Ok(Binding::Foreign),
        (None, None) => Ok(Binding::Unchanged),
        (Some(_), None) => delete_binding(api).await,
        (Some(cur), Some(want))
            if cur.role_ref == want.role_ref && cur.subjects == want.subjects =>
        {
            Ok(Binding::Unchanged)
        }
        (cur, Some(want)) => {
            // roleRef is immutable: a changed --iam-cluster-role means a
            // new RoleBinding.
            if cur.is_some_and(|c| c.role_ref != want.role_ref) {
                delete_binding(api).await?;
            }
            let params = PatchParams::apply(FIELD_MANAGER).force();
            timeout::api(
                "apply RoleBinding hawser-iam",
                api.patch(ROLE_BINDING, &params, &Patch::Apply(&want)),
            )
            .await??;
            Ok(Binding::Applied)
        }
    }
}

/// Deletes hawser's RoleBinding if it is there and hawser's.
pub async fn remove_binding(api: &Api<RoleBinding>) -> Result<Binding, Error> {
    let current = timeout::api("get RoleBinding hawser-iam", api.get_opt(ROLE_BINDING)).await??;
    match current {
        None => Ok(Binding::Unchanged),
        Some(cur) if !is_ours(&cur) => Ok(Binding::Foreign),
        Some(_) => delete_binding(api).await,
    }
}

async fn delete_binding(api: &Api<RoleBinding>) -> Result<Binding, Error> {
    match timeout::api(
        "delete RoleBinding hawser-iam",
        api.delete(ROLE_BINDING, &DeleteParams::default()),
    )
    .await?
    {
        Ok(_) => Ok(Binding::Deleted),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Binding::Unchanged),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::annotations::parse_role_arn;

    fn spec(groups: &[&str], username: Option<&str>) -> IamMappingSpec {
        IamMappingSpec {
            role_arn: parse_role_arn("k", "arn:aws:iam::111122223333:role/teams/dev").unwrap(),
            username: username.map(str::to_owned),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn the_entry_drops_the_path_and_defaults_the_username() {
        let e = desired_entry("team-a", &spec(&["devs"], None), false, &none()).unwrap();
        assert_eq!(
            e,
            MapRole {
                rolearn: "arn:aws:iam::111122223333:role/dev".into(),
                username: "hawser:team-a:{{SessionName}}".into(),
                groups: vec!["devs".into()],
            }
        );
        let named = desired_entry(
            "team-a",
            &spec(&[], Some("ci:{{SessionName}}")),
            false,
            &none(),
        )
        .unwrap();
        assert_eq!(named.username, "ci:{{SessionName}}");
    }

    #[test]
    fn system_groups_need_the_flag() {
        let s = spec(&["devs", "system:masters"], None);
        let err = desired_entry("a", &s, false, &none()).unwrap_err();
        assert!(err.to_string().contains("system:masters"), "{err}");
        assert!(desired_entry("a", &s, true, &none()).is_ok());
    }

    fn none() -> Protection {
        Protection::default()
    }

    #[test]
    fn protected_roles_are_never_mapped() {
        let admin = Protection::from_pattern(Some("arn:aws:iam::\\d+:role/dev")).unwrap();
        let err = desired_entry("a", &spec(&["devs"], None), false, &admin).unwrap_err();
        assert!(err.to_string().contains("lockout guard"), "{err}");
        let nodes = spec(&["system:nodes"], None);
        assert!(desired_entry("a", &nodes, true, &none()).is_err());
    }

    #[test]
    fn system_usernames_need_the_flag() {
        let s = spec(&["devs"], Some("system:kube-controller-manager"));
        let err = desired_entry("a", &s, false, &none()).unwrap_err();
        assert!(err.to_string().contains("iam.hawser.io/username"), "{err}");
        assert!(desired_entry("a", &s, true, &none()).is_ok());
    }

    #[test]
    fn the_binding_binds_each_group_to_the_cluster_role() {
        assert!(desired_binding("a", &[], "edit").is_none());
        let rb = desired_binding("a", &["devs".into(), "ops".into()], "edit").unwrap();
        assert_eq!(rb.role_ref.name, "edit");
        let subjects = rb.subjects.unwrap();
        assert_eq!(subjects.len(), 2);
        assert_eq!(
            (subjects[1].kind.as_str(), subjects[1].name.as_str()),
            ("Group", "ops")
        );
        assert!(is_ours(
            &desired_binding("a", &["x".into()], "edit").unwrap()
        ));
    }
}
