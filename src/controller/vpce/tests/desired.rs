//! The pure desired-state functions.

use super::*;

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
        created: None,
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
        created: None,
    };
    let (a, b) = (e("vpce-b"), e("vpce-a"));
    assert_eq!(choose_endpoint(&[&a, &b], None).unwrap().id, "vpce-a");
    assert_eq!(
        choose_endpoint(&[&a, &b], Some("vpce-b")).unwrap().id,
        "vpce-b"
    );
    assert!(choose_endpoint(&[], None).is_none());
}
