//! Stack names, ownership tags and the spec hash.

use super::*;
use crate::controller::stack::desired::{is_owned, spec_hash, stack_name, MAX_STACK_NAME};

#[test]
fn names_are_hawser_cluster_namespace_and_deployment() {
    assert_eq!(stack_name("prod", "team-a", None), "hawser-prod-team-a");
    assert_eq!(
        stack_name("prod", "team-a", Some("web")),
        "hawser-prod-team-a-web"
    );
    assert_eq!(
        stack_name("eu_west", "team-a", Some("api.v2")),
        "hawser-eu-west-team-a-api-v2",
        "only letters, digits and '-'"
    );
}

#[test]
fn long_names_are_cut_to_128_with_a_hash_that_keeps_them_apart() {
    let long = "d".repeat(253);
    let a = stack_name("prod", "team-a", Some(&long));
    let b = stack_name("prod", "team-a", Some(&format!("{}e", &long[..252])));
    assert_eq!(a.len(), MAX_STACK_NAME);
    assert_eq!(b.len(), MAX_STACK_NAME);
    assert_ne!(a, b);
    assert!(a.starts_with("hawser-prod-team-a-ddd"));
    let exact = stack_name("p", "n", Some(&"x".repeat(128 - "hawser-p-n-".len())));
    assert_eq!(exact.len(), 128);
    assert!(exact.ends_with("xxxx"), "exactly 128: not cut");
    // A cut just after a separator does not leave "--".
    for n in 1..12 {
        let dep = format!("{}{}", "b".repeat(n), "-b".repeat(60));
        let dashy = stack_name("p", "team-a", Some(&dep));
        assert!(!dashy.contains("--"), "{dashy}");
        assert!(dashy.len() <= 128);
    }
    let dashy = stack_name("p", "team-a", Some(&"-b".repeat(70)[1..]));
    assert!(dashy.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
}

#[test]
fn owners_and_their_tags() {
    let ns = owner();
    assert_eq!(ns.reference(), "Namespace//team-a");
    let dep = Owner {
        kind: ObjectKind::Deployment,
        namespace: "team-a".into(),
        name: "web".into(),
        uid: UID.into(),
    };
    assert_eq!(dep.reference(), "Deployment/team-a/web");
    assert_eq!(dep.stack_name(CLUSTER), "hawser-prod-team-a-web");
    let tags = dep.ownership_tags(CLUSTER);
    assert_eq!(tags[keys::TAG_CLUSTER], "prod");
    assert_eq!(tags[keys::TAG_UID], UID);
}

#[test]
fn the_spec_hash_covers_template_parameters_and_capabilities() {
    let params = |v: &str| BTreeMap::from([("P".to_owned(), v.to_owned())]);
    let base = spec_hash("T", &params("a"), &[]);
    assert_eq!(base.len(), 32);
    assert_eq!(base, spec_hash("T", &params("a"), &[]));
    assert_ne!(base, spec_hash("T2", &params("a"), &[]));
    assert_ne!(base, spec_hash("T", &params("b"), &[]));
    assert_ne!(
        base,
        spec_hash("T", &params("a"), &["CAPABILITY_IAM".to_owned()])
    );
}

#[test]
fn desired_carries_the_request_tags_and_tokens() {
    let w = want(r#"{"QueueName":"a","Size":3}"#);
    assert_eq!(w.request.stack_name, "hawser-prod-team-a");
    assert_eq!(w.request.parameters["Size"], "3");
    assert_eq!(w.request.tags, w.ownership);
    assert!(w.change_set_name.len() <= 128);
    assert!(
        w.change_set_name.starts_with("hawser-")
            && w.change_set_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
    );
    let s = stack_for(&w, StackStatus::CreateComplete);
    assert!(is_owned(&s, &w.ownership));
}
