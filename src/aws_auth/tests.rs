use super::guard::{check_delete, check_update, Protection};
use super::items::{MapRolesText, SplitError};
use super::*;

/// What eksctl writes for a node group, with a comment a human added.
const NODES: &str = "\
# node group ng-1, do not touch
- groups:
  - system:bootstrappers
  - system:nodes
  rolearn: arn:aws:iam::111122223333:role/eksctl-prod-nodegroup-ng-1-NodeInstanceRole
  username: system:node:{{EC2PrivateDNSName}}
- rolearn: \"arn:aws:iam::111122223333:role/Admin\"   # break-glass
  username: admin
  groups: [system:masters]
";

/// Terraform's yamlencode: quoted keys, different key order.
const TERRAFORM: &str = "\
- \"groups\":
  - \"system:bootstrappers\"
  - \"system:nodes\"
  \"rolearn\": \"arn:aws:iam::111122223333:role/tf-nodes\"
  \"username\": \"system:node:{{EC2PrivateDNSName}}\"
";

fn role(ns: &str, name: &str) -> MapRole {
    MapRole {
        rolearn: format!("arn:aws:iam::111122223333:role/{name}"),
        username: format!("hawser:{ns}:{{{{SessionName}}}}"),
        groups: vec![format!("{ns}-devs")],
    }
}

fn change(ns: &str, desired: Option<MapRole>) -> Change {
    Change {
        namespace: ns.into(),
        desired,
    }
}

fn apply(text: &str, owned: &Ownership, changes: &[Change]) -> Edited {
    edit(text, owned, changes).expect("edit")
}

#[test]
fn splits_block_lists_into_items_that_own_their_comments() {
    let doc = MapRolesText::split(NODES).unwrap();
    assert_eq!(doc.preamble, "");
    assert_eq!(doc.items.len(), 2);
    assert!(doc.items[0].text.starts_with("# node group"));
    assert!(doc.items[1].text.contains("break-glass"));
    assert_eq!(doc.render(), NODES);

    let indented =
        "---\n  - rolearn: a\n    username: x\n\n  # next\n  - rolearn: b\n    username: y";
    let doc = MapRolesText::split(indented).unwrap();
    assert_eq!((doc.preamble.as_str(), doc.indent), ("---\n", 2));
    assert_eq!(
        doc.items[1].text,
        "\n  # next\n  - rolearn: b\n    username: y"
    );
    assert_eq!(doc.render(), indented);
    assert_eq!(MapRolesText::split(TERRAFORM).unwrap().render(), TERRAFORM);
}

#[test]
fn empty_spellings_are_empty_lists() {
    for text in ["", "\n", "# nothing yet\n", "[]", "[]\n"] {
        let doc = MapRolesText::split(text).unwrap();
        assert!(doc.items.is_empty(), "{text:?}");
    }
    assert_eq!(
        MapRolesText::split("# keep me\n").unwrap().preamble,
        "# keep me\n"
    );
}

#[test]
fn what_cannot_be_split_safely_is_refused() {
    assert_eq!(
        MapRolesText::split(r#"[{"rolearn": "a", "username": "b"}]"#),
        Err(SplitError::FlowStyle)
    );
    assert_eq!(
        MapRolesText::split("rolearn: a\n"),
        Err(SplitError::NotAList("a mapping"))
    );
    assert!(matches!(
        MapRolesText::split("- rolearn: a\n  groups: [unclosed\n"),
        Err(SplitError::Yaml(_))
    ));
    assert!(matches!(
        MapRolesText::split("- rolearn: a\n\t- b"),
        Err(SplitError::Yaml(_) | SplitError::Unsplittable(_))
    ));
}

#[test]
fn adding_appends_a_block_and_keeps_every_foreign_byte() {
    let e = apply(
        NODES,
        &Ownership::default(),
        &[change("team-a", Some(role("team-a", "dev")))],
    );
    assert!(e.map_roles.starts_with(NODES), "{}", e.map_roles);
    assert_eq!(
        &e.map_roles[NODES.len()..],
        "- rolearn: arn:aws:iam::111122223333:role/dev\n  username: hawser:team-a:{{SessionName}}\n  groups:\n  - team-a-devs\n"
    );
    assert_eq!(e.results["team-a"], Ok(Effect::Added));
    assert_eq!(
        e.ownership.to_annotation(),
        r#"{"arn:aws:iam::111122223333:role/dev":"team-a"}"#
    );
    // What aws-auth reads back is the entry hawser meant.
    let parsed: Vec<MapRole> = serde_yaml_ng::from_str(&e.map_roles).unwrap();
    assert_eq!(parsed[2], role("team-a", "dev"));

    // ... and removing it gives back the original text, byte for byte.
    let r = apply(&e.map_roles, &e.ownership, &[change("team-a", None)]);
    assert_eq!(r.map_roles, NODES);
    assert!(r.ownership.is_empty());
    assert_eq!(r.results["team-a"], Ok(Effect::Removed));
}

#[test]
fn new_items_follow_the_lists_indentation_and_a_missing_final_newline() {
    let text = "  - rolearn: arn:aws:iam::1:role/x\n    username: x";
    let e = apply(
        text,
        &Ownership::default(),
        &[change("a", Some(role("a", "dev")))],
    );
    assert!(
        e.map_roles.starts_with(&format!("{text}\n  - rolearn:")),
        "{}",
        e.map_roles
    );
    let r = apply(&e.map_roles, &e.ownership, &[change("a", None)]);
    assert_eq!(
        r.map_roles,
        format!("{text}\n"),
        "only the final newline stays"
    );
    let t = apply(
        TERRAFORM,
        &Ownership::default(),
        &[change("a", Some(role("a", "dev")))],
    );
    assert!(t.map_roles.starts_with(TERRAFORM));
}

#[test]
fn updating_replaces_only_the_own_block() {
    let added = apply(
        NODES,
        &Ownership::default(),
        &[change("a", Some(role("a", "dev")))],
    );
    let mut wider = role("a", "dev");
    wider.groups.push("a-viewers".into());
    let e = apply(
        &added.map_roles,
        &added.ownership,
        &[change("a", Some(wider.clone()))],
    );
    assert_eq!(e.results["a"], Ok(Effect::Updated));
    assert!(e.map_roles.starts_with(NODES));
    assert!(e.map_roles.ends_with("  - a-devs\n  - a-viewers\n"));

    // The same wish again is no change at all.
    let same = apply(&e.map_roles, &e.ownership, &[change("a", Some(wider))]);
    assert_eq!(same.results["a"], Ok(Effect::Unchanged));
    assert!(!same.changed(&e.map_roles, &e.ownership));

    // Another role for the namespace: the old entry goes, the new one comes.
    let moved = apply(
        &e.map_roles,
        &e.ownership,
        &[change("a", Some(role("a", "ops")))],
    );
    assert_eq!(moved.results["a"], Ok(Effect::Updated));
    let parsed: Vec<MapRole> = serde_yaml_ng::from_str(&moved.map_roles).unwrap();
    assert_eq!(parsed.len(), 3);
    assert_eq!(parsed[2].rolearn, "arn:aws:iam::111122223333:role/ops");
    assert_eq!(moved.ownership.roles_of("a").count(), 1);
}

#[test]
fn foreign_entries_are_never_taken_over_or_removed() {
    // The namespace asks for the admin role, which a human mapped.
    let admin = MapRole {
        rolearn: "arn:aws:iam::111122223333:role/ops/ADMIN".into(),
        ..role("a", "x")
    };
    let e = apply(NODES, &Ownership::default(), &[change("a", Some(admin))]);
    assert_eq!(
        e.results["a"],
        Err(Refusal::Foreign {
            arn: "arn:aws:iam::111122223333:role/ops/ADMIN".into()
        })
    );
    assert_eq!(e.map_roles, NODES);
    assert!(e.ownership.is_empty());

    // Removing a namespace that owns nothing removes nothing.
    let r = apply(NODES, &Ownership::default(), &[change("a", None)]);
    assert_eq!(
        (r.map_roles.as_str(), &r.results["a"]),
        (NODES, &Ok(Effect::Unchanged))
    );
}

#[test]
fn one_role_one_namespace_and_no_guessing_between_duplicates() {
    let a = apply(
        "",
        &Ownership::default(),
        &[change("a", Some(role("a", "dev")))],
    );
    let b = apply(
        &a.map_roles,
        &a.ownership,
        &[change("b", Some(role("b", "dev")))],
    );
    assert_eq!(
        b.results["b"],
        Err(Refusal::ClaimedBy {
            arn: "arn:aws:iam::111122223333:role/dev".into(),
            owner: "a".into()
        })
    );
    assert_eq!(b.map_roles, a.map_roles);

    // Someone copied hawser's entry by hand: two items for one role.
    let doubled = format!("{0}{0}", a.map_roles);
    for wish in [None, Some(role("a", "dev"))] {
        let d = apply(&doubled, &a.ownership, &[change("a", wish)]);
        assert!(matches!(
            d.results["a"],
            Err(Refusal::Ambiguous { count: 2, .. })
        ));
        assert_eq!(d.map_roles, doubled);
    }
}

#[test]
fn a_batch_applies_each_namespaces_latest_wish() {
    let changes: Vec<Change> = (0..50)
        .map(|i| {
            change(
                &format!("ns-{i}"),
                Some(role(&format!("ns-{i}"), &format!("r{i}"))),
            )
        })
        .chain([change("ns-7", None)])
        .collect();
    let e = apply(NODES, &Ownership::default(), &changes);
    let parsed: Vec<MapRole> = serde_yaml_ng::from_str(&e.map_roles).unwrap();
    assert_eq!(parsed.len(), 2 + 49);
    assert_eq!(e.results["ns-7"], Ok(Effect::Unchanged));
    assert_eq!(e.ownership.iter().count(), 49);
    assert!(e.map_roles.starts_with(NODES));
}

#[test]
fn arns_match_as_aws_auth_matches_them() {
    assert_eq!(
        role_key("arn:aws:iam::1:role/Team/Sub/Dev"),
        "arn:aws:iam::1:role/dev"
    );
    let mut owned = Ownership::default();
    owned.insert("arn:aws:iam::1:role/dev", "a");
    owned.insert("arn:aws:iam::1:role/DEV", "a");
    assert_eq!(owned.iter().count(), 1, "one record per role");
    assert_eq!(owned.owner_of("arn:aws:iam::1:role/dev"), Some("a"));
}

#[test]
fn unreadable_documents_are_refused_whole() {
    let bad = edit("- rolearn: [", &Ownership::default(), &[change("a", None)]);
    assert!(matches!(
        bad,
        Err(DocumentError::MapRoles(SplitError::Yaml(_)))
    ));
    let err = Ownership::parse(Some("not json")).unwrap_err();
    assert!(err.to_string().contains(OWNERSHIP_ANNOTATION), "{err}");
    assert_eq!(Ownership::parse(None).unwrap(), Ownership::default());
    assert_eq!(Ownership::parse(Some(" ")).unwrap(), Ownership::default());
}

// ---- the lockout guard ----

fn without_nodes() -> String {
    NODES
        .split("- rolearn: \"arn:aws:iam::111122223333:role/Admin\"")
        .nth(1)
        .map(|rest| format!("- rolearn: \"arn:aws:iam::111122223333:role/Admin\"{rest}"))
        .unwrap()
}

#[test]
fn the_guard_refuses_to_drop_or_weaken_a_node_role() {
    let p = Protection::default();
    let err = check_update(&p, Some(NODES), Some(&without_nodes()), false).unwrap_err();
    assert!(
        err.contains("eksctl-prod-nodegroup-ng-1-NodeInstanceRole"),
        "{err}"
    );
    assert!(err.contains(guard::BYPASS_ANNOTATION), "{err}");

    let weakened = NODES.replace("  - system:nodes\n", "");
    assert!(check_update(&p, Some(NODES), Some(&weakened), false).is_err());
    let renamed = NODES.replace("system:node:{{EC2PrivateDNSName}}", "someone");
    assert!(check_update(&p, Some(NODES), Some(&renamed), false).is_err());
    assert!(check_update(&p, Some(NODES), Some("- rolearn: ["), false).is_err());
    assert!(check_update(&p, Some(NODES), None, false).is_err());

    // Re-formatting, moving, adding a group: the node keeps its mapping.
    assert!(
        check_update(&p, Some(NODES), Some(TERRAFORM), false).is_err(),
        "another role"
    );
    let more = NODES.replace("  - system:nodes\n", "  - system:nodes\n  - extra\n");
    assert!(check_update(&p, Some(NODES), Some(&more), false).is_ok());
    let reordered = format!(
        "{}{}",
        without_nodes(),
        NODES.split("- rolearn: \"arn").next().unwrap()
    );
    assert!(check_update(&p, Some(NODES), Some(&reordered), false).is_ok());
    // The bypass, read from the old object by the caller.
    assert!(check_update(&p, Some(NODES), Some(&without_nodes()), true).is_ok());
}

#[test]
fn the_guard_lets_everything_else_through() {
    let p = Protection::default();
    // The admin entry is not a node: removing it is allowed by default...
    let nodes_only = NODES.split("- rolearn: \"arn").next().unwrap();
    assert!(check_update(&p, Some(NODES), Some(nodes_only), false).is_ok());
    // ... and protected with a pattern.
    let admins = Protection::from_pattern(Some("arn:aws:iam::\\d+:role/Admin")).unwrap();
    assert!(check_update(&admins, Some(NODES), Some(nodes_only), false).is_err());
    // The pattern is anchored: a prefix does not match.
    let prefix = Protection::from_pattern(Some("arn:aws:iam::\\d+:role/Adm")).unwrap();
    assert!(check_update(&prefix, Some(NODES), Some(nodes_only), false).is_ok());
    // Nothing protected before, nothing to protect.
    assert!(check_update(&p, Some("- rolearn: a\n  username: b\n"), Some(""), false).is_ok());
    assert!(check_update(&p, Some("- rolearn: ["), Some(""), false).is_ok());
    assert!(check_update(&p, None, Some(NODES), false).is_ok());
}

#[test]
fn the_guard_refuses_to_delete_an_aws_auth_with_nodes() {
    let p = Protection::default();
    let err = check_delete(&p, Some(NODES), false).unwrap_err();
    assert!(err.contains("deleting aws-auth"), "{err}");
    assert!(check_delete(&p, Some(&without_nodes()), false).is_ok());
    assert!(check_delete(&p, Some(NODES), true).is_ok());
    assert!(check_delete(&p, None, false).is_ok());
}

/// Found in review: the authenticator keys roles by the whole lower-cased
/// ARN (path included) and lets a later entry win, so moving the node role
/// under a path, or appending a weaker entry for it, locks nodes out.
#[test]
fn the_guard_sees_a_changed_path_or_a_later_weaker_entry_as_a_removal() {
    let p = Protection::default();
    let moved = NODES.replace(
        "role/eksctl-prod-nodegroup-ng-1-NodeInstanceRole",
        "role/eks/eksctl-prod-nodegroup-ng-1-NodeInstanceRole",
    );
    assert!(check_update(&p, Some(NODES), Some(&moved), false).is_err());
    let shadowed = format!(
        "{NODES}- rolearn: arn:aws:iam::111122223333:role/eksctl-prod-nodegroup-ng-1-NodeInstanceRole\n  username: nobody\n  groups: []\n"
    );
    assert!(check_update(&p, Some(NODES), Some(&shadowed), false).is_err());
    // A case change keeps the authenticator's key: allowed.
    let recased = NODES.replace("NodeInstanceRole", "nodeinstancerole");
    assert!(check_update(&p, Some(NODES), Some(&recased), false).is_ok());
}

/// Found in review: a node entry that inherits system:nodes through a YAML
/// merge key is protected too.
#[test]
fn the_guard_resolves_merge_keys() {
    let p = Protection::default();
    let merged = "\
- &node
  groups: [system:bootstrappers, system:nodes]
  rolearn: arn:aws:iam::111122223333:role/ng-a
  username: system:node:{{EC2PrivateDNSName}}
- <<: *node
  rolearn: arn:aws:iam::111122223333:role/ng-b
";
    let without_b = "\
- groups: [system:bootstrappers, system:nodes]
  rolearn: arn:aws:iam::111122223333:role/ng-a
  username: system:node:{{EC2PrivateDNSName}}
";
    let err = check_update(&p, Some(merged), Some(without_b), false).unwrap_err();
    assert!(err.contains("role/ng-b"), "{err}");
}

/// Found in review: comment lines above hawser's entry (a commented-out
/// role someone parked there, a note) belonged to that entry and went
/// with it. They are someone else's and stay, on removal and on update.
#[test]
fn comments_above_hawsers_entry_stay_when_it_goes_or_changes() {
    let added = apply(
        NODES,
        &Ownership::default(),
        &[change("team-a", Some(role("team-a", "dev")))],
    );
    let parked = "# - rolearn: arn:aws:iam::111122223333:role/BreakGlass (disabled)\n";
    let with_comment = format!("{NODES}{parked}{}", &added.map_roles[NODES.len()..]);

    let mut renamed = role("team-a", "dev");
    renamed.username = "ci:{{SessionName}}".into();
    let updated = apply(
        &with_comment,
        &added.ownership,
        &[change("team-a", Some(renamed))],
    );
    assert!(
        updated
            .map_roles
            .starts_with(&format!("{NODES}{parked}- rolearn:")),
        "{}",
        updated.map_roles
    );

    let removed = apply(&with_comment, &added.ownership, &[change("team-a", None)]);
    assert_eq!(removed.map_roles, format!("{NODES}{parked}"));
}
