//! plan() alone: what one apply will do for what EC2 shows.

use super::*;
use crate::controller::vpce::plan::{needs_groups, plan, EndpointStep, GroupStep, Observed};

const S3: &str = "com.amazonaws.us-west-2.s3";

fn endpoint(id: &str, service: &str, vpc: &str) -> Endpoint {
    Endpoint {
        id: id.into(),
        vpc_id: vpc.into(),
        service_name: service.into(),
        state: EndpointState::Available,
        subnet_ids: vec![SUBNET_B.into()],
        security_group_ids: vec![],
        private_dns: false,
        dns_names: vec![],
        tags: Tags::new(),
        created: None,
    }
}

fn group(id: &str, vpc: &str) -> SecurityGroup {
    SecurityGroup {
        id: id.into(),
        name: "g".into(),
        vpc_id: vpc.into(),
        ingress: vec![],
        egress: vec![],
        tags: Tags::new(),
    }
}

fn recorded(endpoint: Option<&str>, group: Option<&str>) -> Recorded {
    Recorded {
        endpoint_id: endpoint.map(str::to_owned),
        group_id: group.map(str::to_owned),
    }
}

#[test]
fn nothing_there_creates_the_group_and_the_endpoint() {
    let p = plan(
        &want(&spec()),
        &Observed::default(),
        &Recorded::default(),
        UID,
    );
    assert!(
        matches!(&p.group, GroupStep::Create { vanished: None, .. }),
        "{p:?}"
    );
    assert_eq!(
        p.endpoint,
        EndpointStep::Create {
            client_token: UID.into(),
            drift_from: None
        }
    );
    assert!(p.replace.is_empty() && p.stale_groups.is_empty());
}

#[test]
fn what_was_recorded_and_is_gone_is_drift() {
    let r = recorded(Some("vpce-old"), Some("sg-old"));
    let p = plan(&want(&spec()), &Observed::default(), &r, UID);
    assert!(
        matches!(&p.group, GroupStep::Create { vanished: Some(g), .. } if g == "sg-old"),
        "{p:?}"
    );
    assert_eq!(
        p.endpoint,
        EndpointStep::Create {
            client_token: format!("{UID}-vpce-old"),
            drift_from: Some("vpce-old".into())
        }
    );
}

#[test]
fn the_recorded_endpoint_is_kept_and_its_duplicates_go() {
    let observed = Observed {
        endpoints: vec![endpoint("vpce-b", S3, VPC), endpoint("vpce-a", S3, VPC)],
        groups: vec![group("sg-1", VPC)],
    };
    let p = plan(
        &want(&spec()),
        &observed,
        &recorded(Some("vpce-b"), Some("sg-1")),
        UID,
    );
    match &p.endpoint {
        EndpointStep::Keep {
            endpoint,
            duplicates,
            adopted,
        } => {
            assert_eq!(endpoint.id, "vpce-b");
            assert_eq!(duplicates, &["vpce-a"]);
            assert!(!adopted);
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&p.group, GroupStep::Keep { id, .. } if id == "sg-1"),
        "{p:?}"
    );

    // Unrecorded (a restart lost the write): adopted, the lowest id kept.
    let p = plan(&want(&spec()), &observed, &Recorded::default(), UID);
    assert!(
        matches!(&p.endpoint, EndpointStep::Keep { endpoint, adopted: true, .. } if endpoint.id == "vpce-a"),
        "{p:?}"
    );
}

#[test]
fn another_service_or_vpc_is_replaced_not_drift() {
    let observed = Observed {
        endpoints: vec![endpoint("vpce-old", "com.amazonaws.us-west-2.sqs", VPC)],
        groups: vec![group("sg-old", "vpc-other"), group("sg-1", VPC)],
    };
    let r = recorded(Some("vpce-old"), Some("sg-old"));
    let p = plan(&want(&spec()), &observed, &r, UID);
    assert_eq!(p.replace, ["vpce-old"]);
    assert!(
        matches!(
            &p.endpoint,
            EndpointStep::Create {
                drift_from: None,
                ..
            }
        ),
        "{p:?}"
    );
    assert_eq!(p.stale_groups, ["sg-old"], "the group in the old VPC goes");
    assert!(matches!(&p.group, GroupStep::Keep { id, .. } if id == "sg-1"));
}

#[test]
fn provided_groups_leave_the_old_generated_one_to_delete() {
    let mut s = spec();
    s.security_groups = SecurityGroups::Provided(vec!["sg-p".into()]);
    let d = want(&s);
    assert!(!needs_groups(&d, &Recorded::default()));
    let r = recorded(None, Some("sg-gen"));
    assert!(needs_groups(&d, &r));
    let observed = Observed {
        endpoints: vec![],
        groups: vec![group("sg-gen", VPC)],
    };
    let p = plan(&d, &observed, &r, UID);
    assert_eq!(p.group, GroupStep::Provided(vec!["sg-p".into()]));
    assert_eq!(p.stale_groups, ["sg-gen"]);
}
