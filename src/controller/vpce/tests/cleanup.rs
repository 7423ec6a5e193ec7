//! cleanup() against the fake: delete, wait, retain, errors.

use super::*;

async fn clean(
    ec2: &FakeEc2,
    d: &Desired,
    owner: &str,
    policy: DeletionPolicy,
) -> Result<Cleanup, Error> {
    cleanup(ec2, &d.ownership, owner, policy).await
}

#[tokio::test]
async fn cleanup_deletes_the_endpoint_waits_until_gone_then_the_group() {
    let ec2 = FakeEc2::default();
    let d = want(&spec());
    let a = apply_ok(&ec2, &d, &Recorded::default()).await;
    let gid = a.group_id.clone().unwrap();
    let first = clean(&ec2, &d, "Service/team-a/db", DeletionPolicy::Delete)
        .await
        .unwrap();
    assert!(matches!(&first, Cleanup::Waiting { effects, why }
        if effects == &[Effect::EndpointDeleted { id: a.endpoint.id.clone() }] && why.contains(&a.endpoint.id)));
    assert_eq!(ec2.groups().len(), 1, "the group waits for the endpoint");
    let second = clean(&ec2, &d, "Service/team-a/db", DeletionPolicy::Delete)
        .await
        .unwrap();
    assert_eq!(
        second,
        Cleanup::Done(vec![Effect::SecurityGroupDeleted { id: gid }])
    );
    assert!(ec2.groups().is_empty() && ec2.live_endpoints().is_empty());
    let third = clean(&ec2, &d, "Service/team-a/db", DeletionPolicy::Delete)
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
    let nothing = clean(&ec2, &d, "o", DeletionPolicy::Delete).await.unwrap();
    assert_eq!(nothing, Cleanup::Done(vec![]), "apply never ran");
    apply_ok(&ec2, &d, &Recorded::default()).await;
    while let Cleanup::Waiting { .. } = clean(&ec2, &d, "o", DeletionPolicy::Delete).await.unwrap()
    {
    }
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
    clean(&ec2, &d, "o", DeletionPolicy::Delete).await.unwrap();
    let waiting = clean(&ec2, &d, "o", DeletionPolicy::Delete).await.unwrap();
    assert!(
        matches!(&waiting, Cleanup::Waiting { why, .. } if why.contains("still in use")),
        "{waiting:?}"
    );
    ec2.fail_next("DescribeVpcEndpoints", "RequestLimitExceeded", "slow");
    assert!(clean(&ec2, &d, "o", DeletionPolicy::Delete).await.is_err());
    ec2.fail_next("DeleteSecurityGroup", "UnauthorizedOperation", "no");
    let e = clean(&ec2, &d, "o", DeletionPolicy::Delete)
        .await
        .unwrap_err();
    assert_eq!(e.category(), "aws_access_denied");
    assert!(matches!(
        clean(&ec2, &d, "o", DeletionPolicy::Delete).await.unwrap(),
        Cleanup::Done(_)
    ));
    assert_eq!(ec2.groups().len(), 0);

    let ec2 = FakeEc2::default();
    apply_ok(&ec2, &d, &Recorded::default()).await;
    ec2.fail_next("DeleteVpcEndpoints", "InternalError", "boom");
    let e = clean(&ec2, &d, "o", DeletionPolicy::Delete)
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
    let out = clean(&ec2, &d, "Service/team-a/db", DeletionPolicy::Retain)
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
    let again = clean(&ec2, &d, "Service/team-a/db", DeletionPolicy::Retain)
        .await
        .unwrap();
    assert_eq!(
        again,
        Cleanup::Done(vec![Effect::ResourcesRetained { ids: vec![] }])
    );

    let ec2 = FakeEc2::default();
    apply_ok(&ec2, &d, &Recorded::default()).await;
    ec2.fail_next("CreateTags", "UnauthorizedOperation", "no");
    let e = clean(&ec2, &d, "o", DeletionPolicy::Retain)
        .await
        .unwrap_err();
    assert!(!e.is_terminal(), "{e:?}");
    assert!(
        ec2.live_endpoints()[0].tags.contains_key(keys::TAG_OWNER),
        "still owned"
    );
}
