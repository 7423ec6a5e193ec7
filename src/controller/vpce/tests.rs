//! Desired state (pure) and apply/cleanup against the in-memory EC2.

use std::collections::BTreeMap;

use super::apply::{apply, Applied, Recorded};
use super::cleanup::{cleanup, Cleanup};
use super::desired::*;
use super::effects::Effect;
use super::error::Error;
use crate::annotations::{keys, DeletionPolicy, SecurityGroups, VpceSpec};
use crate::aws::fake::FakeEc2;
use crate::aws::{AwsErrorKind, CidrRule, Endpoint, EndpointState, SecurityGroup, Tags};

const VPC: &str = "vpc-0123456789abcdef0";
const SUBNET_A: &str = "subnet-0000000000000000a";
const SUBNET_B: &str = "subnet-0000000000000000b";
const UID: &str = "6f1c2a40-0000-4000-8000-000000000001";

fn spec() -> VpceSpec {
    let ann = BTreeMap::from([
        (
            keys::VPCE_SERVICE_NAME.to_owned(),
            "com.amazonaws.us-west-2.s3".to_owned(),
        ),
        (keys::VPCE_SUBNET_IDS.to_owned(), SUBNET_B.to_owned()),
    ]);
    VpceSpec::from_annotations(&ann).unwrap().unwrap()
}

fn owner() -> Owner {
    Owner {
        namespace: "team-a".into(),
        name: "db".into(),
        uid: UID.into(),
    }
}

fn defaults() -> Defaults {
    Defaults {
        vpc_id: Some(VPC.into()),
        subnet_ids: vec![SUBNET_A.into()],
    }
}

fn want(spec: &VpceSpec) -> Desired {
    desired(spec, &owner(), "prod", &defaults()).unwrap()
}

async fn apply_ok(ec2: &FakeEc2, d: &Desired, recorded: &Recorded) -> Applied {
    apply(ec2, d, UID, recorded).await.unwrap()
}

fn recorded(a: &Applied) -> Recorded {
    Recorded {
        endpoint_id: Some(a.endpoint.id.clone()),
        group_id: a.group_id.clone(),
    }
}

// ---- desired state ----------------------------------------------------

#[test]
fn desired_fills_defaults_and_generates_a_named_tagged_group() {
    let mut s = spec();
    s.subnet_ids = vec![];
    let d = want(&s);
    assert_eq!(d.vpc_id, VPC);
    assert_eq!(d.subnet_ids, vec![SUBNET_A.to_owned()]);
    assert_eq!(
        d.ownership,
        Tags::from([
            ("hawser.io/cluster".into(), "prod".into()),
            ("hawser.io/owner".into(), "Service/team-a/db".into()),
            ("hawser.io/uid".into(), UID.into()),
        ])
    );
    assert_eq!(
        d.tags.get("Name").map(String::as_str),
        Some("hawser-team-a-db")
    );
    let DesiredGroups::Generated { name, ingress, .. } = &d.groups else {
        panic!("generated")
    };
    assert_eq!(name, "hawser-team-a-db");
    let cidrs: Vec<&str> = ingress.iter().map(|r| r.cidr.as_str()).collect();
    assert_eq!(cidrs, ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]);
    assert!(ingress.iter().all(CidrRule::is_all_traffic));
}

#[test]
fn desired_prefers_the_services_own_values_sorted() {
    let mut s = spec();
    s.vpc_id = Some("vpc-0aaaaaaaaaaaaaaaa".into());
    s.subnet_ids = vec![SUBNET_B.into(), SUBNET_A.into()];
    s.security_groups = SecurityGroups::Provided(vec!["sg-2".into(), "sg-1".into()]);
    let d = want(&s);
    assert_eq!(d.vpc_id, "vpc-0aaaaaaaaaaaaaaaa");
    assert_eq!(d.subnet_ids, [SUBNET_A, SUBNET_B]);
    assert_eq!(
        d.groups,
        DesiredGroups::Provided(vec!["sg-1".into(), "sg-2".into()])
    );
}

#[test]
fn desired_without_vpc_or_subnets_says_what_to_set() {
    let mut s = spec();
    let none = Defaults::default();
    assert_eq!(desired(&s, &owner(), "c", &none), Err(DesiredError::NoVpc));
    s.vpc_id = Some(VPC.into());
    s.subnet_ids = vec![];
    let err = desired(&s, &owner(), "c", &none).unwrap_err();
    assert_eq!(err, DesiredError::NoSubnets);
    assert!(err.to_string().contains("vpce.hawser.io/subnet-ids"));
    assert!(err.to_string().contains("--default-subnet-ids"));
}

#[test]
fn client_token_is_stable_per_uid_and_changes_after_a_recorded_endpoint() {
    assert_eq!(client_token(UID, None), UID);
    let t = client_token(UID, Some("vpce-0123456789abcdef0"));
    assert_eq!(t, format!("{UID}-vpce-0123456789abcdef0"));
    assert!(t.len() <= 64);
}

#[test]
fn endpoint_changes_diff_subnets_groups_and_private_dns() {
    let d = want(&spec());
    let e = Endpoint {
        id: "vpce-1".into(),
        vpc_id: VPC.into(),
        service_name: d.service_name.clone(),
        state: EndpointState::Available,
        subnet_ids: vec![SUBNET_A.into()],
        security_group_ids: vec!["sg-old".into()],
        private_dns: true,
        dns_names: vec![],
        tags: Tags::new(),
    };
    let m = endpoint_changes(&d, &e, &["sg-new".into()]);
    assert_eq!(m.add_subnet_ids, [SUBNET_B]);
    assert_eq!(m.remove_subnet_ids, [SUBNET_A]);
    assert_eq!(m.add_security_group_ids, ["sg-new"]);
    assert_eq!(m.remove_security_group_ids, ["sg-old"]);
    assert_eq!(m.private_dns, Some(false));
    assert_eq!(
        describe_changes(&m),
        format!("added subnets {SUBNET_B}; removed subnets {SUBNET_A}; added security groups sg-new; removed security groups sg-old; private DNS off")
    );
    let same = Endpoint {
        subnet_ids: vec![SUBNET_B.into()],
        security_group_ids: vec!["sg-new".into()],
        private_dns: false,
        ..e
    };
    assert!(endpoint_changes(&d, &same, &["sg-new".into()]).is_empty());
}

#[test]
fn rule_changes_revoke_extras_and_restore_egress() {
    let g = SecurityGroup {
        id: "sg-1".into(),
        name: "n".into(),
        vpc_id: VPC.into(),
        ingress: vec![
            CidrRule::all_from("10.0.0.0/8"),
            CidrRule::all_from("0.0.0.0/0"),
        ],
        egress: vec![],
        tags: Tags::new(),
    };
    let want = [
        CidrRule::all_from("10.0.0.0/8"),
        CidrRule::all_from("192.168.0.0/16"),
    ];
    let c = rule_changes(&want, &g);
    assert_eq!(c.authorize_ingress, [CidrRule::all_from("192.168.0.0/16")]);
    assert_eq!(c.revoke_ingress, [CidrRule::all_from("0.0.0.0/0")]);
    assert_eq!(c.authorize_egress, [CidrRule::all_from("0.0.0.0/0")]);
}

#[test]
fn choose_endpoint_keeps_the_recorded_one_else_the_lowest_id() {
    let e = |id: &str| Endpoint {
        id: id.into(),
        vpc_id: VPC.into(),
        service_name: "s".into(),
        state: EndpointState::Available,
        subnet_ids: vec![],
        security_group_ids: vec![],
        private_dns: false,
        dns_names: vec![],
        tags: Tags::new(),
    };
    let (a, b) = (e("vpce-b"), e("vpce-a"));
    assert_eq!(choose_endpoint(&[&a, &b], None).unwrap().id, "vpce-a");
    assert_eq!(
        choose_endpoint(&[&a, &b], Some("vpce-b")).unwrap().id,
        "vpce-b"
    );
    assert!(choose_endpoint(&[], None).is_none());
}

// ---- apply against the fake ---------------------------------------------

#[tokio::test]
async fn first_apply_creates_a_tagged_group_and_endpoint_with_the_uid_token() {
    let ec2 = FakeEc2::default();
    let d = want(&spec());
    let a = apply_ok(&ec2, &d, &Recorded::default()).await;
    let group_id = a.group_id.clone().unwrap();
    assert_eq!(
        a.effects,
        [
            Effect::SecurityGroupCreated {
                id: group_id.clone()
            },
            Effect::EndpointCreated {
                id: a.endpoint.id.clone()
            },
        ]
    );
    assert_eq!(
        a.endpoint.security_group_ids,
        std::slice::from_ref(&group_id)
    );
    assert_eq!(a.endpoint.subnet_ids, [SUBNET_B]);
    assert_eq!(a.endpoint.tags, d.tags);
    let s = ec2.lock();
    assert_eq!(s.tokens.get(UID), Some(&a.endpoint.id), "ClientToken = uid");
    let g = &s.groups[&group_id];
    assert_eq!((g.name.as_str(), &g.tags), ("hawser-team-a-db", &d.tags));
    assert_eq!(g.ingress.len(), 3);
}

#[tokio::test]
async fn an_unchanged_service_costs_two_reads_and_no_write() {
    let ec2 = FakeEc2::default();
    let d = want(&spec());
    let first = apply_ok(&ec2, &d, &Recorded::default()).await;
    ec2.clear_calls();
    let again = apply_ok(&ec2, &d, &recorded(&first)).await;
    assert_eq!(
        ec2.calls(),
        ["DescribeVpcEndpoints", "DescribeSecurityGroups"]
    );
    assert!(again.effects.is_empty());
    assert_eq!(again.endpoint.id, first.endpoint.id);

    let mut provided = spec();
    provided.security_groups = SecurityGroups::Provided(vec!["sg-p".into()]);
    let ec2 = FakeEc2::default();
    let d = want(&provided);
    let first = apply_ok(&ec2, &d, &Recorded::default()).await;
    ec2.clear_calls();
    apply_ok(&ec2, &d, &recorded(&first)).await;
    assert_eq!(ec2.calls(), ["DescribeVpcEndpoints"], "provided: one read");
}

#[tokio::test]
async fn a_subnet_edit_modifies_the_same_endpoint() {
    let ec2 = FakeEc2::default();
    let first = apply_ok(&ec2, &want(&spec()), &Recorded::default()).await;
    let mut s = spec();
    s.subnet_ids = vec![SUBNET_A.into(), SUBNET_B.into()];
    s.private_dns = true;
    ec2.clear_calls();
    let a = apply_ok(&ec2, &want(&s), &recorded(&first)).await;
    assert_eq!(a.endpoint.id, first.endpoint.id);
    assert_eq!(ec2.mutating_calls(), ["ModifyVpcEndpoint"]);
    assert!(
        matches!(&a.effects[..], [Effect::EndpointModified { detail, .. }]
        if detail == &format!("added subnets {SUBNET_A}; private DNS on"))
    );
    assert_eq!(ec2.live_endpoints()[0].subnet_ids, [SUBNET_B, SUBNET_A]);
}

#[tokio::test]
async fn a_crash_before_the_annotations_adopts_instead_of_creating() {
    let ec2 = FakeEc2::default();
    let d = want(&spec());
    let first = apply_ok(&ec2, &d, &Recorded::default()).await;
    ec2.clear_calls();
    // Nothing recorded on the Service: the outputs were never written.
    let a = apply_ok(&ec2, &d, &Recorded::default()).await;
    assert_eq!(a.endpoint.id, first.endpoint.id);
    assert!(ec2.mutating_calls().is_empty());
    assert_eq!(
        a.effects,
        [Effect::EndpointAdopted {
            id: first.endpoint.id.clone()
        }]
    );
    assert_eq!(ec2.live_endpoints().len(), 1);
}

#[tokio::test]
async fn duplicates_are_deleted_keeping_the_recorded_endpoint() {
    let ec2 = FakeEc2::default();
    let d = want(&spec());
    let first = apply_ok(&ec2, &d, &Recorded::default()).await;
    // A second endpoint with the same tags (moto ignores ClientToken).
    let mut dup = first.endpoint.clone();
    dup.id = "vpce-00000000000000000".into();
    ec2.lock().endpoints.insert(dup.id.clone(), dup.clone());
    let a = apply_ok(&ec2, &d, &recorded(&first)).await;
    assert_eq!(a.endpoint.id, first.endpoint.id);
    assert_eq!(a.effects, [Effect::DuplicateEndpointDeleted { id: dup.id }]);
}

#[tokio::test]
async fn an_endpoint_deleted_out_of_band_is_recreated_with_a_new_token() {
    let ec2 = FakeEc2::default();
    let d = want(&spec());
    let first = apply_ok(&ec2, &d, &Recorded::default()).await;
    ec2.lock()
        .endpoints
        .get_mut(&first.endpoint.id)
        .unwrap()
        .state = EndpointState::Deleted;
    let a = apply_ok(&ec2, &d, &recorded(&first)).await;
    assert_ne!(
        a.endpoint.id, first.endpoint.id,
        "not the deleted one again"
    );
    assert_eq!(
        a.effects,
        [Effect::DriftRepaired {
            what: "VPC endpoint",
            old: first.endpoint.id.clone(),
            new: a.endpoint.id.clone(),
        }]
    );
}

#[tokio::test]
async fn a_group_deleted_or_edited_out_of_band_is_repaired() {
    let ec2 = FakeEc2::default();
    let d = want(&spec());
    let first = apply_ok(&ec2, &d, &Recorded::default()).await;
    let gid = first.group_id.clone().unwrap();
    {
        let mut s = ec2.lock();
        let g = s.groups.get_mut(&gid).unwrap();
        g.ingress.push(CidrRule::all_from("0.0.0.0/0"));
        g.egress.clear();
    }
    let a = apply_ok(&ec2, &d, &recorded(&first)).await;
    assert!(
        matches!(&a.effects[..], [Effect::SecurityGroupRulesChanged { detail, .. }]
        if detail == "revoked ingress from 0.0.0.0/0; restored egress to 0.0.0.0/0")
    );

    ec2.lock().groups.remove(&gid);
    let a = apply_ok(&ec2, &d, &recorded(&first)).await;
    let new = a.group_id.clone().unwrap();
    assert_ne!(new, gid);
    assert_eq!(
        a.effects[0],
        Effect::DriftRepaired {
            what: "security group",
            old: gid,
            new: new.clone()
        }
    );
    assert!(
        matches!(&a.effects[1], Effect::EndpointModified { .. }),
        "{:?}",
        a.effects
    );
    assert_eq!(ec2.live_endpoints()[0].security_group_ids, [new]);
}

#[tokio::test]
async fn a_new_service_name_replaces_the_endpoint() {
    let ec2 = FakeEc2::default();
    let first = apply_ok(&ec2, &want(&spec()), &Recorded::default()).await;
    let mut s = spec();
    s.service_name = "com.amazonaws.us-west-2.sqs".into();
    let a = apply_ok(&ec2, &want(&s), &recorded(&first)).await;
    assert_eq!(
        a.effects,
        [
            Effect::EndpointReplaced {
                old: first.endpoint.id.clone()
            },
            Effect::EndpointCreated {
                id: a.endpoint.id.clone()
            },
        ]
    );
    let live = ec2.live_endpoints();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].service_name, "com.amazonaws.us-west-2.sqs");
}

#[tokio::test]
async fn switching_to_provided_groups_detaches_then_deletes_the_generated_one() {
    let ec2 = FakeEc2::default();
    ec2.add_foreign_group("sg-p", VPC);
    let first = apply_ok(&ec2, &want(&spec()), &Recorded::default()).await;
    let generated = first.group_id.clone().unwrap();
    let mut s = spec();
    s.security_groups = SecurityGroups::Provided(vec!["sg-p".into()]);
    let a = apply_ok(&ec2, &want(&s), &recorded(&first)).await;
    assert_eq!(a.group_id, None);
    assert_eq!(a.endpoint.security_group_ids, ["sg-p"]);
    assert_eq!(
        a.effects.last(),
        Some(&Effect::SecurityGroupDeleted { id: generated })
    );
    let groups: Vec<String> = ec2.groups().into_iter().map(|g| g.id).collect();
    assert_eq!(groups, ["sg-p"], "the provided group is untouched");
}

#[tokio::test]
async fn a_pending_endpoint_is_reported_as_such() {
    let ec2 = FakeEc2::default();
    ec2.lock().create_state = Some(EndpointState::Pending);
    let a = apply_ok(&ec2, &want(&spec()), &Recorded::default()).await;
    assert_eq!(a.endpoint.state, EndpointState::Pending);
}

// ---- apply: every error path --------------------------------------------

async fn apply_err(ec2: &FakeEc2) -> Error {
    apply(ec2, &want(&spec()), UID, &Recorded::default())
        .await
        .unwrap_err()
}

#[tokio::test]
async fn aws_refusals_on_create_are_terminal_with_awss_message() {
    let ec2 = FakeEc2::default();
    ec2.lock().subnets = vec![SUBNET_A.into()];
    let e = apply_err(&ec2).await;
    assert!(e.is_terminal(), "{e}");
    assert_eq!(e.category(), "aws_rejected");
    assert!(e
        .user_message()
        .contains(&format!("The subnet ID '{SUBNET_B}' does not exist")));

    for (op, code) in [
        ("CreateVpcEndpoint", "InvalidParameterValue"),
        ("CreateVpcEndpoint", "VpcEndpointLimitExceeded"),
        ("CreateSecurityGroup", "InvalidGroup.Duplicate"),
        ("CreateSecurityGroup", "InvalidVpcID.NotFound"),
    ] {
        let ec2 = FakeEc2::default();
        ec2.fail_next(op, code, "no");
        let e = apply_err(&ec2).await;
        assert!(
            matches!(e, Error::Rejected(_)) && e.is_terminal(),
            "{op} {code}: {e:?}"
        );
    }
}

#[tokio::test]
async fn transient_failures_are_retried_not_terminal() {
    for (op, code) in [
        ("DescribeVpcEndpoints", "RequestLimitExceeded"),
        ("DescribeSecurityGroups", "InternalError"),
        ("CreateSecurityGroup", "RequestLimitExceeded"),
        ("AuthorizeSecurityGroupIngress", "Unavailable"),
        ("CreateVpcEndpoint", "RequestLimitExceeded"),
        ("CreateVpcEndpoint", "UnauthorizedOperation"),
    ] {
        let ec2 = FakeEc2::default();
        ec2.fail_next(op, code, "try later");
        let e = apply_err(&ec2).await;
        assert!(
            matches!(e, Error::Aws(_)) && !e.is_terminal(),
            "{op} {code}: {e:?}"
        );
        // The next pass converges, without a duplicate.
        let a = apply_ok(&ec2, &want(&spec()), &Recorded::default()).await;
        assert_eq!(ec2.live_endpoints().len(), 1, "{op}");
        assert_eq!(ec2.groups().len(), 1, "{op}");
        assert_eq!(
            ec2.lock().groups.values().next().unwrap().ingress.len(),
            3,
            "{op}: {a:?}"
        );
    }
}

#[tokio::test]
async fn failures_after_create_modify_and_delete_are_retryable() {
    let ec2 = FakeEc2::default();
    let d = want(&spec());
    let first = apply_ok(&ec2, &d, &Recorded::default()).await;
    let mut s = spec();
    s.private_dns = true;
    // The endpoint vanished between describe and modify.
    ec2.fail_next("ModifyVpcEndpoint", "InvalidVpcEndpointId.NotFound", "gone");
    let e = apply(&ec2, &want(&s), UID, &recorded(&first))
        .await
        .unwrap_err();
    assert!(!e.is_terminal(), "{e:?}");
    ec2.fail_next("ModifyVpcEndpoint", "InvalidParameterCombination", "no");
    let e = apply(&ec2, &want(&s), UID, &recorded(&first))
        .await
        .unwrap_err();
    assert!(e.is_terminal(), "a refused modify is terminal: {e:?}");
    ec2.fail_next(
        "RevokeSecurityGroupIngress",
        "InvalidGroup.NotFound",
        "gone",
    );
    ec2.lock()
        .groups
        .values_mut()
        .next()
        .unwrap()
        .ingress
        .push(CidrRule::all_from("1.2.3.4/32"));
    let e = apply(&ec2, &d, UID, &recorded(&first)).await.unwrap_err();
    assert!(
        matches!(&e, Error::Aws(a) if a.kind == AwsErrorKind::NotFound),
        "{e:?}"
    );
}

#[tokio::test]
async fn an_old_group_still_in_use_is_left_for_the_next_pass() {
    let ec2 = FakeEc2::default();
    let first = apply_ok(&ec2, &want(&spec()), &Recorded::default()).await;
    let old = first.group_id.clone().unwrap();
    let mut s = spec();
    s.security_groups = SecurityGroups::Provided(vec!["sg-p".into()]);
    ec2.fail_next("DeleteSecurityGroup", "DependencyViolation", "in use");
    let a = apply_ok(&ec2, &want(&s), &recorded(&first)).await;
    assert!(a.unfinished);
    assert_eq!(a.group_id.as_deref(), Some(old.as_str()), "still recorded");
    let again = apply_ok(&ec2, &want(&s), &recorded(&a)).await;
    assert!(!again.unfinished);
    assert_eq!(again.effects, [Effect::SecurityGroupDeleted { id: old }]);
}

// ---- cleanup -------------------------------------------------------------

#[tokio::test]
async fn cleanup_deletes_the_endpoint_waits_until_gone_then_the_group() {
    let ec2 = FakeEc2::default();
    let d = want(&spec());
    let a = apply_ok(&ec2, &d, &Recorded::default()).await;
    let gid = a.group_id.clone().unwrap();
    let first = cleanup(
        &ec2,
        &d.ownership,
        "Service/team-a/db",
        DeletionPolicy::Delete,
    )
    .await
    .unwrap();
    assert!(matches!(&first, Cleanup::Waiting { effects, why }
        if effects == &[Effect::EndpointDeleted { id: a.endpoint.id.clone() }] && why.contains(&a.endpoint.id)));
    assert_eq!(ec2.groups().len(), 1, "the group waits for the endpoint");
    let second = cleanup(
        &ec2,
        &d.ownership,
        "Service/team-a/db",
        DeletionPolicy::Delete,
    )
    .await
    .unwrap();
    assert_eq!(
        second,
        Cleanup::Done(vec![Effect::SecurityGroupDeleted { id: gid }])
    );
    assert!(ec2.groups().is_empty() && ec2.live_endpoints().is_empty());
    let third = cleanup(
        &ec2,
        &d.ownership,
        "Service/team-a/db",
        DeletionPolicy::Delete,
    )
    .await
    .unwrap();
    assert_eq!(third, Cleanup::Done(vec![]), "idempotent");
}

#[tokio::test]
async fn cleanup_never_touches_a_provided_group_and_works_without_apply() {
    let ec2 = FakeEc2::default();
    ec2.add_foreign_group("sg-p", VPC);
    let mut s = spec();
    s.security_groups = SecurityGroups::Provided(vec!["sg-p".into()]);
    let d = want(&s);
    let nothing = cleanup(&ec2, &d.ownership, "o", DeletionPolicy::Delete)
        .await
        .unwrap();
    assert_eq!(nothing, Cleanup::Done(vec![]), "apply never ran");
    apply_ok(&ec2, &d, &Recorded::default()).await;
    while let Cleanup::Waiting { .. } = cleanup(&ec2, &d.ownership, "o", DeletionPolicy::Delete)
        .await
        .unwrap()
    {}
    assert!(ec2.live_endpoints().is_empty());
    assert_eq!(ec2.groups().len(), 1);
    assert!(!ec2.calls().contains(&"DeleteSecurityGroup"));
}

#[tokio::test]
async fn cleanup_retries_a_group_in_use_and_surfaces_other_errors() {
    let ec2 = FakeEc2::default();
    let d = want(&spec());
    apply_ok(&ec2, &d, &Recorded::default()).await;
    ec2.fail_next("DeleteSecurityGroup", "DependencyViolation", "in use");
    cleanup(&ec2, &d.ownership, "o", DeletionPolicy::Delete)
        .await
        .unwrap();
    let waiting = cleanup(&ec2, &d.ownership, "o", DeletionPolicy::Delete)
        .await
        .unwrap();
    assert!(
        matches!(&waiting, Cleanup::Waiting { why, .. } if why.contains("still in use")),
        "{waiting:?}"
    );
    ec2.fail_next("DescribeVpcEndpoints", "RequestLimitExceeded", "slow");
    assert!(cleanup(&ec2, &d.ownership, "o", DeletionPolicy::Delete)
        .await
        .is_err());
    ec2.fail_next("DeleteSecurityGroup", "UnauthorizedOperation", "no");
    let e = cleanup(&ec2, &d.ownership, "o", DeletionPolicy::Delete)
        .await
        .unwrap_err();
    assert_eq!(e.category(), "aws_access_denied");
    assert!(matches!(
        cleanup(&ec2, &d.ownership, "o", DeletionPolicy::Delete)
            .await
            .unwrap(),
        Cleanup::Done(_)
    ));
    assert_eq!(ec2.groups().len(), 0);

    let ec2 = FakeEc2::default();
    apply_ok(&ec2, &d, &Recorded::default()).await;
    ec2.fail_next("DeleteVpcEndpoints", "InternalError", "boom");
    let e = cleanup(&ec2, &d.ownership, "o", DeletionPolicy::Delete)
        .await
        .unwrap_err();
    assert_eq!(e.category(), "aws_unavailable");
    assert_eq!(ec2.live_endpoints().len(), 1);
}

#[tokio::test]
async fn retain_untags_and_keeps_everything() {
    let ec2 = FakeEc2::default();
    let d = want(&spec());
    let a = apply_ok(&ec2, &d, &Recorded::default()).await;
    let out = cleanup(
        &ec2,
        &d.ownership,
        "Service/team-a/db",
        DeletionPolicy::Retain,
    )
    .await
    .unwrap();
    let gid = a.group_id.clone().unwrap();
    assert_eq!(
        out,
        Cleanup::Done(vec![Effect::ResourcesRetained {
            ids: vec![a.endpoint.id.clone(), gid.clone()]
        }])
    );
    assert!(!ec2.calls().contains(&"DeleteVpcEndpoints"));
    let e = &ec2.live_endpoints()[0];
    assert_eq!(
        e.tags.get(TAG_RELEASED_FROM).map(String::as_str),
        Some("Service/team-a/db")
    );
    assert!(!e.tags.contains_key(keys::TAG_OWNER) && !e.tags.contains_key(keys::TAG_UID));
    assert_eq!(
        e.tags.get(keys::TAG_CLUSTER).map(String::as_str),
        Some("prod")
    );
    assert!(ec2.lock().groups[&gid].tags.contains_key(TAG_RELEASED_FROM));
    // No longer found: a second pass has nothing to do.
    let again = cleanup(
        &ec2,
        &d.ownership,
        "Service/team-a/db",
        DeletionPolicy::Retain,
    )
    .await
    .unwrap();
    assert_eq!(
        again,
        Cleanup::Done(vec![Effect::ResourcesRetained { ids: vec![] }])
    );

    let ec2 = FakeEc2::default();
    apply_ok(&ec2, &d, &Recorded::default()).await;
    ec2.fail_next("CreateTags", "UnauthorizedOperation", "no");
    let e = cleanup(&ec2, &d.ownership, "o", DeletionPolicy::Retain)
        .await
        .unwrap_err();
    assert!(!e.is_terminal(), "{e:?}");
    assert!(
        ec2.live_endpoints()[0].tags.contains_key(keys::TAG_OWNER),
        "still owned"
    );
}
