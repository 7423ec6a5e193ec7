//! apply() against the fake: happy paths, drift, and every error path.

use super::*;

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
async fn default_tags_go_into_both_create_requests_under_hawsers_own() {
    let ec2 = FakeEc2::default();
    let mut with_tags = defaults();
    with_tags.tags = Tags::from([
        ("team".into(), "platform".into()),
        ("cost-center".into(), "42".into()),
        // Refused on the command line; hawser's own value wins anyway.
        (keys::TAG_CLUSTER.into(), "other".into()),
        ("Name".into(), "not-hawsers".into()),
    ]);
    let d = desired(&spec(), &owner(), "prod", &with_tags).unwrap();
    assert_eq!(
        d.ownership,
        want(&spec()).ownership,
        "found by hawser's tags alone"
    );
    let a = apply_ok(&ec2, &d, &Recorded::default()).await;
    assert_eq!(
        ec2.mutating_calls(),
        [
            "CreateSecurityGroup",
            "AuthorizeSecurityGroupIngress",
            "CreateVpcEndpoint"
        ],
        "tagged by the create requests, not by a CreateTags after them"
    );
    let expected = Tags::from([
        ("team".into(), "platform".into()),
        ("cost-center".into(), "42".into()),
        (keys::TAG_CLUSTER.into(), "prod".into()),
        (keys::TAG_OWNER.into(), "Service/team-a/db".into()),
        (keys::TAG_UID.into(), UID.into()),
        ("Name".into(), "hawser-team-a-db".into()),
    ]);
    assert_eq!(a.endpoint.tags, expected);
    assert_eq!(ec2.groups()[0].tags, expected);
    ec2.clear_calls();
    apply_ok(&ec2, &d, &recorded(&a)).await;
    assert!(ec2.mutating_calls().is_empty(), "{:?}", ec2.calls());
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

// Every error path.

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
        // The name taken, e.g. by our own create whose answer was lost.
        ("CreateSecurityGroup", "InvalidGroup.Duplicate"),
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
