//! Admission of Namespaces: host names normalised on /mutate; syntax,
//! output protection, `system:` groups and role-ARN uniqueness on /validate.

use std::collections::BTreeMap;

use super::{
    contract::{self, Decision},
    patch::{self, AnnotationEdits},
    stranded::{ScopeChange, Stranded},
    Webhook,
};
use crate::annotations::{
    is_system_group, is_system_username, keys, normalize_host_names, parse_iam_groups,
    parse_role_arn, ObjectKind,
};

pub struct Input<'a> {
    pub name: &'a str,
    pub username: &'a str,
    pub dry_run: bool,
    pub new: Option<&'a BTreeMap<String, String>>,
    pub old: Option<&'a BTreeMap<String, String>>,
    pub controller_usernames: &'a [String],
    pub allow_system_groups: bool,
    /// On an update that changes the region or role: the objects in the
    /// namespace whose AWS resources it would leave behind
    /// ([`super::stranded`]), or why they could not be listed.
    pub stranded: Option<&'a Result<Stranded, String>>,
    /// `--region`: what an unset `aws.hawser.io/region` means.
    pub default_region: Option<&'a str>,
}

/// `(namespace name, annotations)` of every other namespace the cache knows.
pub type Others<'a> = &'a [(String, BTreeMap<String, String>)];

pub fn decide(webhook: Webhook, input: &Input<'_>, others: Others<'_>) -> Decision {
    match webhook {
        Webhook::Mutate => mutate(input),
        Webhook::Validate => validate(input, others),
    }
}

fn mutate(input: &Input<'_>) -> Decision {
    let mut d = Decision::default();
    let mut edits = AnnotationEdits::new(patch::pointer(["metadata"]), input.new);
    d.warnings.extend(contract::restore_outputs(
        input.old,
        input.new,
        input.username,
        input.controller_usernames,
        &mut edits,
    ));
    if let Some(value) = input.new.and_then(|a| a.get(keys::ENV_HOST_NAMES)) {
        // A malformed list is left for the validating webhook to refuse.
        if let Ok(normalized) = normalize_host_names(keys::ENV_HOST_NAMES, value) {
            edits.set(keys::ENV_HOST_NAMES, &normalized);
        }
    }
    d.patch.extend(edits.into_ops());
    d
}

fn validate(input: &Input<'_>, others: Others<'_>) -> Decision {
    let empty = BTreeMap::new();
    let ann = input.new.unwrap_or(&empty);
    let mut d = contract::annotation_syntax(ObjectKind::Namespace, ann, input.dry_run);
    d.merge(contract::protect_outputs(
        input.old,
        ann,
        input.username,
        input.controller_usernames,
    ));

    if !input.allow_system_groups {
        if let Some(Ok(groups)) = ann
            .get(keys::IAM_GROUPS)
            .map(|v| parse_iam_groups(keys::IAM_GROUPS, v))
        {
            let system: Vec<&str> = groups
                .iter()
                .map(String::as_str)
                .filter(|g| is_system_group(g))
                .collect();
            if !system.is_empty() {
                d.denials.push(format!(
                    "annotation {}: invalid value {:?}: groups starting with \"system:\" ({}) would grant Kubernetes' built-in identities; allowed: groups without the \"system:\" prefix, or run hawser with --allow-system-groups",
                    keys::IAM_GROUPS,
                    ann[keys::IAM_GROUPS],
                    system.join(", ")
                ));
            }
        }
    }

    if !input.allow_system_groups {
        if let Some(user) = ann
            .get(keys::IAM_USERNAME)
            .filter(|u| is_system_username(u))
        {
            d.denials.push(format!(
                "annotation {}: invalid value {user:?}: usernames starting with \"system:\" are Kubernetes' built-in identities (nodes, controllers, service accounts) and would grant their permissions; allowed: a username without the \"system:\" prefix, e.g. the default hawser:<namespace>:{{{{SessionName}}}}, or run hawser with --allow-system-groups",
                keys::IAM_USERNAME
            ));
        }
    }

    // Where the namespace's AWS calls go cannot change while something
    // made there exists: hawser would look for it, and make it again, in
    // the new place, and the old one would run on unseen. That is the
    // namespace's own stack, and the Services' endpoints and Deployments'
    // stacks (listed by the caller).
    let change = ScopeChange::between(input.old, input.new, input.default_region);
    let own_stack = input.old.and_then(|a| a.get(keys::CFN_STACK_ID));
    for (key, what, changed) in [
        (keys::AWS_REGION, "region", change.region),
        (keys::AWS_ROLE_ARN, "role", change.role),
    ] {
        if !changed {
            continue;
        }
        let shown = |v: Option<&String>| {
            v.map(|s| format!("{s:?}"))
                .unwrap_or_else(|| "unset (the controller's default)".into())
        };
        let (before, after) = (
            shown(input.old.and_then(|a| a.get(key))),
            shown(ann.get(key)),
        );
        if let Some(stack) = own_stack {
            d.denials.push(format!(
                "annotation {key}: invalid value {after}: the namespace's stack {stack} exists with {what} {before}, and would be left behind; allowed: the current value. To move it, remove the namespace's cfn.hawser.io/template (the stack is deleted), then change {key}"
            ));
        }
        match input.stranded {
            None => {}
            Some(Ok(stranded)) => {
                let objects = if key == keys::AWS_REGION {
                    &stranded.region
                } else {
                    &stranded.role
                };
                if objects.is_empty() {
                    continue;
                }
                const SHOWN: usize = 5;
                let mut list = objects[..objects.len().min(SHOWN)].join(", ");
                if objects.len() > SHOWN {
                    list.push_str(&format!(" and {} more", objects.len() - SHOWN));
                }
                d.denials.push(format!(
                    "annotation {key}: invalid value {after}: {} object(s) in this namespace hold AWS resources made with {what} {before}, which would be left behind, running unseen: {list}; allowed: the current value. To move them, first remove their hawser annotations or delete them (hawser deletes their resources), then change {key}",
                    objects.len(),
                ));
            }
            Some(Err(why)) => d.denials.push(format!(
                "annotation {key}: invalid value {after}: hawser could not check whether objects in this namespace hold AWS resources made with {what} {before} ({why}); allowed: the current value until the check succeeds, so retry"
            )),
        }
    }

    // One role, one namespace: aws-auth maps a role ARN to one identity.
    if let Some(Ok(arn)) = ann
        .get(keys::IAM_ROLE_ARN)
        .map(|v| parse_role_arn(keys::IAM_ROLE_ARN, v))
    {
        let mine = arn.arn_without_path();
        let claimed_by = others.iter().find(|(name, other)| {
            name != input.name
                && other
                    .get(keys::IAM_ROLE_ARN)
                    .and_then(|v| parse_role_arn(keys::IAM_ROLE_ARN, v).ok())
                    .is_some_and(|o| o.arn_without_path() == mine)
        });
        if let Some((other, _)) = claimed_by {
            d.denials.push(format!(
                "annotation {}: invalid value {:?}: role {mine} is already mapped by namespace {other:?}, and aws-auth maps a role to one identity; allowed: a role no other namespace maps (remove it from {other:?} first)",
                keys::IAM_ROLE_ARN,
                ann[keys::IAM_ROLE_ARN],
            ));
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn input<'a>(name: &'a str, new: &'a BTreeMap<String, String>) -> Input<'a> {
        Input {
            name,
            username: "alice",
            dry_run: false,
            new: Some(new),
            old: None,
            controller_usernames: &[],
            allow_system_groups: false,
            stranded: None,
            default_region: Some("us-west-2"),
        }
    }

    #[test]
    fn host_names_are_lower_cased_and_deduplicated_once() {
        let ann = map(&[(
            "env.hawser.io/host-names",
            "API.example.com  api.example.com 10.0.0.1",
        )]);
        let d = mutate(&input("a", &ann));
        assert_eq!(
            serde_json::to_value(&d.patch).unwrap(),
            serde_json::json!([{"op": "add", "path": "/metadata/annotations/env.hawser.io~1host-names", "value": "api.example.com 10.0.0.1"}])
        );
        let normalized = map(&[("env.hawser.io/host-names", "api.example.com 10.0.0.1")]);
        assert!(mutate(&input("a", &normalized)).patch.is_empty());
    }

    #[test]
    fn system_groups_are_refused_unless_allowed() {
        let ann = map(&[
            (
                "iam.hawser.io/role-arn",
                "arn:aws:iam::123456789012:role/dev",
            ),
            ("iam.hawser.io/groups", "devs,system:masters"),
        ]);
        assert_eq!(
            validate(&input("a", &ann), &[]).denials,
            vec![
                r#"annotation iam.hawser.io/groups: invalid value "devs,system:masters": groups starting with "system:" (system:masters) would grant Kubernetes' built-in identities; allowed: groups without the "system:" prefix, or run hawser with --allow-system-groups"#
            ]
        );
        let allowed = Input {
            allow_system_groups: true,
            ..input("a", &ann)
        };
        assert!(validate(&allowed, &[]).denials.is_empty());
    }

    #[test]
    fn system_usernames_are_refused_unless_allowed() {
        let ann = map(&[
            (
                "iam.hawser.io/role-arn",
                "arn:aws:iam::123456789012:role/dev",
            ),
            (
                "iam.hawser.io/username",
                "system:serviceaccount:kube-system:clusterrole-aggregation-controller",
            ),
        ]);
        let denials = validate(&input("a", &ann), &[]).denials;
        assert_eq!(denials.len(), 1, "{denials:?}");
        assert!(
            denials[0].starts_with(
                "annotation iam.hawser.io/username: invalid value \"system:serviceaccount:"
            ) && denials[0].contains("--allow-system-groups"),
            "{}",
            denials[0]
        );
        let allowed = Input {
            allow_system_groups: true,
            ..input("a", &ann)
        };
        assert!(validate(&allowed, &[]).denials.is_empty());
    }

    #[test]
    fn region_and_role_are_fixed_while_the_namespaces_stack_exists() {
        let before = map(&[
            (
                "cfn.hawser.io/stack-id",
                "arn:aws:cloudformation:eu-west-1:1:stack/s/x",
            ),
            ("aws.hawser.io/region", "eu-west-1"),
        ]);
        let moved = map(&[
            (
                "cfn.hawser.io/stack-id",
                "arn:aws:cloudformation:eu-west-1:1:stack/s/x",
            ),
            ("aws.hawser.io/region", "us-east-1"),
        ]);
        let changed = Input {
            old: Some(&before),
            ..input("a", &moved)
        };
        let denials = validate(&changed, &[]).denials;
        assert_eq!(denials.len(), 1, "{denials:?}");
        assert!(
            denials[0].starts_with(r#"annotation aws.hawser.io/region: invalid value "us-east-1""#),
            "{}",
            denials[0]
        );
        // Spelling out the default region moves nothing.
        let stack_only = map(&[(
            "cfn.hawser.io/stack-id",
            "arn:aws:cloudformation:us-west-2:1:stack/s/x",
        )]);
        let spelled = map(&[
            (
                "cfn.hawser.io/stack-id",
                "arn:aws:cloudformation:us-west-2:1:stack/s/x",
            ),
            ("aws.hawser.io/region", "us-west-2"),
        ]);
        let same_place = Input {
            old: Some(&stack_only),
            ..input("a", &spelled)
        };
        assert!(validate(&same_place, &[]).denials.is_empty());
        // Without a stack, both may change.
        let no_stack = map(&[("aws.hawser.io/region", "eu-west-1")]);
        let free = Input {
            old: Some(&no_stack),
            ..input("a", &moved)
        };
        assert!(validate(&free, &[])
            .denials
            .iter()
            .all(|d| !d.contains("aws.hawser.io/region")));
    }

    #[test]
    fn region_and_role_are_fixed_while_objects_in_the_namespace_hold_resources() {
        let before = map(&[("aws.hawser.io/region", "eu-west-1")]);
        let moved = map(&[
            ("aws.hawser.io/region", "us-east-1"),
            ("aws.hawser.io/role-arn", "arn:aws:iam::222222222222:role/t"),
        ]);
        let objects: Vec<String> = (1..=7)
            .map(|i| format!("Service/s{i} (endpoint vpce-{i})"))
            .collect();
        let holders: Result<Stranded, String> = Ok(Stranded {
            region: objects.clone(),
            role: objects,
        });
        let changed = Input {
            old: Some(&before),
            stranded: Some(&holders),
            ..input("a", &moved)
        };
        let denials = validate(&changed, &[]).denials;
        assert_eq!(denials.len(), 2, "one per changed key: {denials:?}");
        assert!(
            denials[0].starts_with(r#"annotation aws.hawser.io/region: invalid value "us-east-1": 7 object(s) in this namespace hold AWS resources made with region "eu-west-1""#)
                && denials[0].contains("Service/s5 (endpoint vpce-5) and 2 more;")
                && denials[0].contains("allowed: the current value"),
            "{}",
            denials[0]
        );
        assert!(
            denials[1].starts_with(r#"annotation aws.hawser.io/role-arn: invalid value "arn:aws:iam::222222222222:role/t": 7 object(s)"#)
                && denials[1].contains(r#"role unset (the controller's default)"#),
            "{}",
            denials[1]
        );

        let none: Result<Stranded, String> = Ok(Stranded::default());
        let free = Input {
            old: Some(&before),
            stranded: Some(&none),
            ..input("a", &moved)
        };
        assert!(validate(&free, &[]).denials.is_empty());

        let unknown: Result<Stranded, String> = Err("listing timed out".into());
        let unchecked = Input {
            old: Some(&before),
            stranded: Some(&unknown),
            ..input("a", &moved)
        };
        let denials = validate(&unchecked, &[]).denials;
        assert_eq!(denials.len(), 2, "{denials:?}");
        assert!(denials[0].contains("could not check") && denials[0].contains("listing timed out"));
    }

    #[test]
    fn a_role_claimed_by_another_namespace_is_refused_paths_ignored() {
        let ann = map(&[(
            "iam.hawser.io/role-arn",
            "arn:aws:iam::123456789012:role/team/dev",
        )]);
        let others = vec![
            ("a".to_string(), ann.clone()),
            (
                "b".to_string(),
                map(&[(
                    "iam.hawser.io/role-arn",
                    "arn:aws:iam::123456789012:role/dev",
                )]),
            ),
        ];
        assert_eq!(
            validate(&input("a", &ann), &others).denials,
            vec![
                r#"annotation iam.hawser.io/role-arn: invalid value "arn:aws:iam::123456789012:role/team/dev": role arn:aws:iam::123456789012:role/dev is already mapped by namespace "b", and aws-auth maps a role to one identity; allowed: a role no other namespace maps (remove it from "b" first)"#
            ]
        );
        assert!(
            validate(&input("a", &ann), &others[..1]).denials.is_empty(),
            "its own claim is no conflict"
        );
    }
}
