//! plan() alone: what one apply will do for what EC2 shows.

use super::*;
use crate::controller::planned::{summary, Action, Verb};
use crate::controller::vpce::plan::{
    actions, needs_groups, plan, EndpointStep, GroupStep, Observed,
};

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

#[test]
fn actions_of_a_new_service_create_the_group_then_the_endpoint() {
    let d = want(&spec());
    let p = plan(&d, &Observed::default(), &Recorded::default(), UID);
    let name = owner().resource_name();
    assert_eq!(
        actions(&d, &p),
        [
            Action::new(
                Verb::Create,
                "security-group",
                None,
                format!("{name} in {VPC}, all traffic from 10.0.0.0/8,172.16.0.0/12,192.168.0.0/16")
            ),
            Action::new(
                Verb::Create,
                "vpc-endpoint",
                None,
                format!("{S3} in {VPC}, subnets {SUBNET_B}, security groups (the new group), private DNS off")
            ),
        ]
    );
}

#[test]
fn actions_of_a_matching_service_are_none_and_of_an_edit_the_field_diff() {
    let d = want(&spec());
    let mut e = endpoint("vpce-1", S3, VPC);
    e.security_group_ids = vec!["sg-1".into()];
    let mut g = group("sg-1", VPC);
    g.ingress = match &d.groups {
        DesiredGroups::Generated { ingress, .. } => ingress.clone(),
        other => panic!("{other:?}"),
    };
    g.egress = vec![CidrRule::all_from("0.0.0.0/0")];
    let observed = Observed {
        endpoints: vec![e.clone()],
        groups: vec![g.clone()],
    };
    let r = recorded(Some("vpce-1"), Some("sg-1"));
    assert_eq!(actions(&d, &plan(&d, &observed, &r, UID)), []);
    assert_eq!(summary(&[]), "no change");

    e.subnet_ids = vec![SUBNET_A.into()];
    g.ingress.push(CidrRule::all_from("0.0.0.0/0"));
    let observed = Observed {
        endpoints: vec![e, endpoint("vpce-2", S3, "vpc-other")],
        groups: vec![g],
    };
    let got = actions(&d, &plan(&d, &observed, &r, UID));
    assert_eq!(
        got,
        [
            Action::new(
                Verb::Modify,
                "security-group",
                Some("sg-1"),
                "revoked ingress from 0.0.0.0/0"
            ),
            Action::new(
                Verb::Delete,
                "vpc-endpoint",
                Some("vpce-2"),
                "for another service or VPC: replaced"
            ),
            Action::new(
                Verb::Modify,
                "vpc-endpoint",
                Some("vpce-1"),
                format!("added subnets {SUBNET_B}; removed subnets {SUBNET_A}")
            ),
        ]
    );
    assert_eq!(
        summary(&got[..1]),
        "modify security-group sg-1: revoked ingress from 0.0.0.0/0"
    );
}
