//! What the namespace controller would change for a namespace's IAM
//! mapping, as actions (`hawser plan`): its `aws-auth` entry, edited by
//! the writer's own [`crate::aws_auth::edit`], and its RoleBinding
//! `hawser-iam`. Pure.

use k8s_openapi::api::rbac::v1::RoleBinding;

use super::iam::{is_ours, ROLE_BINDING};
use crate::aws_auth::{edit, Change, Effect, MapRole, Ownership};
use crate::controller::planned::{Action, Verb};

/// `mapRoles` and the ownership record as the cluster holds them.
pub struct AwsAuthNow<'a> {
    pub map_roles: &'a str,
    pub ownership: &'a Ownership,
}

fn entry_detail(e: &MapRole) -> String {
    format!("username {}, groups [{}]", e.username, e.groups.join(", "))
}

/// The `aws-auth` change for `namespace` wanting `desired`; `now: None`
/// when the ConfigMap could not be read (no cluster): a wanted entry is
/// then an addition. A refusal (a role someone else maps) is the error.
pub fn aws_auth(
    namespace: &str,
    desired: Option<&MapRole>,
    now: Option<AwsAuthNow<'_>>,
) -> Result<Vec<Action>, String> {
    const RESOURCE: &str = "aws-auth-entry";
    let Some(now) = now else {
        return Ok(desired
            .map(|d| {
                vec![Action::new(
                    Verb::Create,
                    RESOURCE,
                    Some(&d.rolearn),
                    entry_detail(d),
                )]
            })
            .unwrap_or_default());
    };
    let change = Change {
        namespace: namespace.to_owned(),
        desired: desired.cloned(),
    };
    let edited = edit(now.map_roles, now.ownership, &[change]).map_err(|e| e.to_string())?;
    let effect = edited
        .results
        .get(namespace)
        .cloned()
        .unwrap_or(Ok(Effect::Unchanged))
        .map_err(|e| e.to_string())?;
    let mapped: Vec<String> = now.ownership.roles_of(namespace).collect();
    Ok(match (effect, desired) {
        (Effect::Unchanged, _) => vec![],
        (Effect::Added, Some(d)) => {
            vec![Action::new(
                Verb::Create,
                RESOURCE,
                Some(&d.rolearn),
                entry_detail(d),
            )]
        }
        (Effect::Updated, Some(d)) => {
            vec![Action::new(
                Verb::Modify,
                RESOURCE,
                Some(&d.rolearn),
                entry_detail(d),
            )]
        }
        (Effect::Removed, _) | (_, None) => mapped
            .iter()
            .map(|arn| {
                Action::new(
                    Verb::Delete,
                    RESOURCE,
                    Some(arn),
                    "the namespace no longer maps it",
                )
            })
            .collect(),
    })
}

fn binding_detail(rb: &RoleBinding) -> String {
    let groups: Vec<&str> = rb
        .subjects
        .iter()
        .flatten()
        .map(|s| s.name.as_str())
        .collect();
    format!(
        "groups [{}] bound to ClusterRole {}",
        groups.join(", "),
        rb.role_ref.name
    )
}

/// The RoleBinding change: `wanted` (from
/// [`super::iam::desired_binding`]) against the one in the namespace. One
/// not labelled as hawser's is never touched.
pub fn binding(
    namespace: &str,
    wanted: Option<&RoleBinding>,
    now: Option<&RoleBinding>,
) -> Vec<Action> {
    const RESOURCE: &str = "role-binding";
    let id = format!("{namespace}/{ROLE_BINDING}");
    match (wanted, now) {
        (Some(w), None) => vec![Action::new(
            Verb::Create,
            RESOURCE,
            Some(&id),
            binding_detail(w),
        )],
        (Some(w), Some(n))
            if is_ours(n) && (n.subjects != w.subjects || n.role_ref != w.role_ref) =>
        {
            vec![Action::new(
                Verb::Modify,
                RESOURCE,
                Some(&id),
                binding_detail(w),
            )]
        }
        (None, Some(n)) if is_ours(n) => {
            vec![Action::new(
                Verb::Delete,
                RESOURCE,
                Some(&id),
                "the namespace maps no groups",
            )]
        }
        _ => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::super::iam::desired_binding;
    use super::*;

    fn entry(groups: &[&str]) -> MapRole {
        MapRole {
            rolearn: "arn:aws:iam::111122223333:role/team-a".into(),
            username: "team-a".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn an_entry_is_added_updated_kept_removed_or_refused_as_the_writer_would() {
        let none = Ownership::default();
        let empty = AwsAuthNow {
            map_roles: "",
            ownership: &none,
        };
        let added = aws_auth("team-a", Some(&entry(&["dev"])), Some(empty)).unwrap();
        assert_eq!(
            added,
            [Action::new(
                Verb::Create,
                "aws-auth-entry",
                Some("arn:aws:iam::111122223333:role/team-a"),
                "username team-a, groups [dev]"
            )]
        );
        let edited = edit(
            "",
            &none,
            &[Change {
                namespace: "team-a".into(),
                desired: Some(entry(&["dev"])),
            }],
        )
        .unwrap();
        let now = || AwsAuthNow {
            map_roles: &edited.map_roles,
            ownership: &edited.ownership,
        };
        assert_eq!(
            aws_auth("team-a", Some(&entry(&["dev"])), Some(now())).unwrap(),
            []
        );
        assert_eq!(
            aws_auth("team-a", Some(&entry(&["ops"])), Some(now())).unwrap()[0].action,
            Verb::Modify
        );
        let removed = aws_auth("team-a", None, Some(now())).unwrap();
        assert_eq!(removed[0].action, Verb::Delete);
        assert_eq!(
            removed[0].id.as_deref(),
            Some("arn:aws:iam::111122223333:role/team-a")
        );
        let refused = aws_auth("team-b", Some(&entry(&["dev"])), Some(now())).unwrap_err();
        assert!(refused.contains("team-a"), "{refused}");
        // Not read: a wanted entry is an addition.
        assert_eq!(
            aws_auth("team-a", Some(&entry(&[])), None).unwrap()[0].action,
            Verb::Create
        );
        assert_eq!(aws_auth("team-a", None, None).unwrap(), []);
    }

    #[test]
    fn the_binding_is_created_changed_or_deleted_and_a_foreign_one_left() {
        let want = desired_binding("team-a", &["dev".into()], "edit");
        let got = binding("team-a", want.as_ref(), None);
        assert_eq!(
            got,
            [Action::new(
                Verb::Create,
                "role-binding",
                Some("team-a/hawser-iam"),
                "groups [dev] bound to ClusterRole edit"
            )]
        );
        assert_eq!(binding("team-a", want.as_ref(), want.as_ref()), []);
        let other = desired_binding("team-a", &["ops".into()], "edit");
        assert_eq!(
            binding("team-a", want.as_ref(), other.as_ref())[0].action,
            Verb::Modify
        );
        assert_eq!(
            binding("team-a", None, want.as_ref())[0].action,
            Verb::Delete
        );
        let mut foreign = other.clone().unwrap();
        foreign.metadata.labels = None;
        assert_eq!(binding("team-a", want.as_ref(), Some(&foreign)), []);
        assert_eq!(binding("team-a", None, Some(&foreign)), []);
    }
}
