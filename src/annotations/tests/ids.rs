use super::super::*;
use super::refused;

const VPC: &str = "vpce.hawser.io/vpc-id";

#[test]
fn vpc_id_accepts_both_lengths() {
    assert_eq!(parse_vpc_id(VPC, "vpc-0a1b2c3d").unwrap(), "vpc-0a1b2c3d");
    assert_eq!(
        parse_vpc_id(VPC, "vpc-0a1b2c3d4e5f67890").unwrap(),
        "vpc-0a1b2c3d4e5f67890"
    );
}

#[test]
fn vpc_id_refusals() {
    assert_eq!(
        refused(parse_vpc_id(VPC, "vpc-12")),
        "annotation vpce.hawser.io/vpc-id: invalid value \"vpc-12\": not \"vpc-\" followed by 8 \
         or 17 hexadecimal digits; allowed: a VPC id such as vpc-0a1b2c3d or vpc-0a1b2c3d4e5f67890"
    );
    assert_eq!(
        refused(parse_vpc_id(VPC, "vpc-0A1B2C3D")),
        "annotation vpce.hawser.io/vpc-id: invalid value \"vpc-0A1B2C3D\": \"vpc-0A1B2C3D\" has \
         upper-case letters; AWS ids are lower-case; allowed: a VPC id such as vpc-0a1b2c3d or \
         vpc-0a1b2c3d4e5f67890"
    );
    for bad in [
        "",
        "vpc-0a1b2c3g",
        "subnet-0a1b2c3d",
        " vpc-0a1b2c3d",
        "vpc-0a1b2c3d4e5f6789",
    ] {
        assert!(parse_vpc_id(VPC, bad).is_err(), "{bad:?}");
    }
}

const SUBNETS: &str = "vpce.hawser.io/subnet-ids";
const SUBNETS_ALLOWED: &str = "allowed: 1 to 16 distinct subnet ids, comma-separated, each \
     \"subnet-\" followed by 8 or 17 hexadecimal digits, e.g. \
     subnet-0a1b2c3d,subnet-0a1b2c3d4e5f67890";

#[test]
fn subnet_ids_trim_and_keep_order() {
    assert_eq!(
        parse_subnet_ids(SUBNETS, " subnet-0a1b2c3d ,subnet-0a1b2c3d4e5f67890").unwrap(),
        ["subnet-0a1b2c3d", "subnet-0a1b2c3d4e5f67890"]
    );
    let sixteen: Vec<String> = (0..16).map(|i| format!("subnet-{i:08x}")).collect();
    assert_eq!(
        parse_subnet_ids(SUBNETS, &sixteen.join(",")).unwrap(),
        sixteen
    );
}

#[test]
fn subnet_id_refusals() {
    assert_eq!(
        refused(parse_subnet_ids(SUBNETS, "subnet-0a1b2c3d,subnet-12")),
        format!(
            "annotation vpce.hawser.io/subnet-ids: invalid value \"subnet-0a1b2c3d,subnet-12\": \
             \"subnet-12\" is not \"subnet-\" followed by 8 or 17 hexadecimal digits; \
             {SUBNETS_ALLOWED}"
        )
    );
    assert_eq!(
        refused(parse_subnet_ids(
            SUBNETS,
            "subnet-0a1b2c3d, subnet-0a1b2c3d"
        )),
        format!(
            "annotation vpce.hawser.io/subnet-ids: invalid value \"subnet-0a1b2c3d, \
             subnet-0a1b2c3d\": subnet-0a1b2c3d is listed twice; {SUBNETS_ALLOWED}"
        )
    );
    assert_eq!(
        refused(parse_subnet_ids(SUBNETS, "subnet-0a1b2c3d,")),
        format!(
            "annotation vpce.hawser.io/subnet-ids: invalid value \"subnet-0a1b2c3d,\": empty \
             item in the comma-separated list; {SUBNETS_ALLOWED}"
        )
    );
    assert_eq!(
        refused(parse_subnet_ids(SUBNETS, " ")),
        format!("annotation vpce.hawser.io/subnet-ids: invalid value \" \": empty list; {SUBNETS_ALLOWED}")
    );
    let seventeen: Vec<String> = (0..17).map(|i| format!("subnet-{i:08x}")).collect();
    let err = parse_subnet_ids(SUBNETS, &seventeen.join(",")).unwrap_err();
    assert_eq!(err.reason, "17 subnet ids; at most 16");
    // The echoed value is cut at 120 characters.
    assert_eq!(err.value.chars().count(), 121);
    assert!(err.value.ends_with('…'));
}

const SGS: &str = "vpce.hawser.io/security-group-ids";

#[test]
fn security_group_ids() {
    assert_eq!(
        parse_security_group_ids(SGS, "sg-0a1b2c3d,sg-0a1b2c3d4e5f67890").unwrap(),
        ["sg-0a1b2c3d", "sg-0a1b2c3d4e5f67890"]
    );
    let six: Vec<String> = (0..6).map(|i| format!("sg-{i:08x}")).collect();
    assert_eq!(
        refused(parse_security_group_ids(SGS, &six.join(","))),
        "annotation vpce.hawser.io/security-group-ids: invalid value \"sg-00000000,sg-00000001,\
         sg-00000002,sg-00000003,sg-00000004,sg-00000005\": 6 security group ids; at most 5 (AWS \
         attaches at most 5 security groups to an endpoint); allowed: 1 to 5 distinct security \
         group ids, comma-separated, each \"sg-\" followed by 8 or 17 hexadecimal digits, e.g. \
         sg-0a1b2c3d,sg-0a1b2c3d4e5f67890"
    );
    assert_eq!(
        parse_security_group_ids(SGS, "sg-0A1B2C3D")
            .unwrap_err()
            .reason,
        "\"sg-0A1B2C3D\" has upper-case letters; AWS ids are lower-case"
    );
}

const SVC: &str = "vpce.hawser.io/service-name";
const SVC_ALLOWED: &str = "allowed: com.amazonaws.<region>.<service> (e.g. \
     com.amazonaws.us-west-2.s3), com.amazonaws.vpce.<region>.vpce-svc-<8 or 17 hex digits> (e.g. \
     com.amazonaws.vpce.us-west-2.vpce-svc-0abc437c186123456), cn.com.amazonaws.<region>.<service> \
     in the China regions, or aws.sagemaker.<region>.notebook or .studio";

#[test]
fn service_names_accepted() {
    for ok in [
        "com.amazonaws.us-west-2.s3",
        "com.amazonaws.eu-central-1.ecr.api",
        "com.amazonaws.us-east-1.s3-global.accesspoint",
        "com.amazonaws.us-gov-west-1.execute-api",
        "com.amazonaws.vpce.us-west-2.vpce-svc-0abc437c186123456",
        "com.amazonaws.vpce.eu-west-1.vpce-svc-0abc437c",
        "cn.com.amazonaws.cn-north-1.ecr.dkr",
        "aws.sagemaker.us-east-1.notebook",
        "aws.sagemaker.ap-southeast-2.studio",
    ] {
        assert_eq!(parse_vpce_service_name(SVC, ok).unwrap(), ok);
    }
}

#[test]
fn service_names_refused() {
    let msg = |value: &str, reason: &str| {
        format!("annotation {SVC}: invalid value {value:?}: {reason}; {SVC_ALLOWED}")
    };
    let cases = [
        ("s3", "not a VPC endpoint service name"),
        (
            "com.amazonaws.vpce.us-west-2.vpce-svc-0abc",
            "\"vpce-svc-0abc\" is not \"vpce-svc-\" followed by 8 or 17 hexadecimal digits",
        ),
        (
            "com.amazonaws.us-west.s3",
            "\"us-west\" is not an AWS region name",
        ),
        (
            "com.amazonaws.us-west-2",
            "missing the service after the region",
        ),
        ("com.amazonaws.us-west-2.S3", "\"S3\" is not a service name"),
        (
            "com.amazonaws.us-west-2.s3.",
            "\"s3.\" is not a service name",
        ),
        (
            "cn.com.amazonaws.us-east-1.ecr.api",
            "\"cn.com.amazonaws.\" names a China region, not \"us-east-1\"",
        ),
        (
            "aws.sagemaker.us-east-1.training",
            "\"training\" is neither \"notebook\" nor \"studio\"",
        ),
    ];
    for (value, reason) in cases {
        assert_eq!(
            refused(parse_vpce_service_name(SVC, value)),
            msg(value, reason)
        );
    }
}

#[test]
fn regions() {
    for ok in [
        "us-east-1",
        "eu-central-2",
        "us-gov-west-1",
        "cn-north-1",
        "us-iso-east-1",
        "us-isob-east-1",
        "us-isof-south-1",
        "eu-isoe-west-1",
        "ap-southeast-7",
        "mx-central-1",
        "eusc-de-east-1",
    ] {
        assert_eq!(parse_region("aws.hawser.io/region", ok).unwrap(), ok);
    }
    for bad in [
        "us-east",
        "US-EAST-1",
        "use-east-1",
        "us-gov-west",
        "us-foo-west-1",
        "us-east-1a",
        "eusc-east-1",
    ] {
        assert!(!is_region(bad), "{bad}");
    }
    assert_eq!(
        refused(parse_region("aws.hawser.io/region", "us-east-1a")),
        "annotation aws.hawser.io/region: invalid value \"us-east-1a\": not an AWS region name; \
         allowed: an AWS region name such as us-east-1, eu-central-2, us-gov-west-1 or cn-north-1"
    );
}

const ROLE: &str = "iam.hawser.io/role-arn";
const ROLE_ALLOWED: &str = "allowed: an IAM role ARN such as \
     arn:aws:iam::123456789012:role/my-role or arn:aws:iam::123456789012:role/team/my-role, in \
     partition aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f or aws-eusc";

#[test]
fn role_arns_accepted() {
    let arn = parse_role_arn(ROLE, "arn:aws:iam::123456789012:role/my-role").unwrap();
    assert_eq!(arn.partition, "aws");
    assert_eq!(arn.account_id, "123456789012");
    assert_eq!(arn.path, "/");
    assert_eq!(arn.name, "my-role");
    assert_eq!(arn.to_string(), "arn:aws:iam::123456789012:role/my-role");

    let text = "arn:aws-us-gov:iam::123456789012:role/team/ci/Deploy_Role+=,.@-1";
    let arn = parse_role_arn(ROLE, text).unwrap();
    assert_eq!(arn.path, "/team/ci/");
    assert_eq!(arn.name, "Deploy_Role+=,.@-1");
    assert_eq!(arn.to_string(), text);
    assert_eq!(
        arn.arn_without_path(),
        "arn:aws-us-gov:iam::123456789012:role/Deploy_Role+=,.@-1"
    );
    for partition in PARTITIONS {
        let text = format!("arn:{partition}:iam::123456789012:role/r");
        assert!(parse_role_arn(ROLE, &text).is_ok(), "{text}");
    }
}

#[test]
fn role_arns_refused() {
    let long_name = "r".repeat(65);
    let cases = [
        (
            "my-role",
            "not an ARN (arn:<partition>:iam::<account>:role/<name>)".to_owned(),
        ),
        (
            "arn:aws:sts::123456789012:assumed-role/r/s",
            "service is \"sts\", not \"iam\"".to_owned(),
        ),
        (
            "arn:aws-foo:iam::123456789012:role/r",
            "\"aws-foo\" is not an AWS partition".to_owned(),
        ),
        (
            "arn:aws:iam::12345678901:role/r",
            "account id \"12345678901\" is not 12 digits".to_owned(),
        ),
        (
            "arn:aws:iam:us-east-1:123456789012:role/r",
            "IAM ARNs have no region, found \"us-east-1\"".to_owned(),
        ),
        (
            "arn:aws:iam::123456789012:user/r",
            "\"user/r\" is not a role (role/<name>)".to_owned(),
        ),
        (
            "arn:aws:iam::123456789012:role/",
            "role name \"\" is not 1 to 64 of letters, digits and _+=,.@-".to_owned(),
        ),
        (
            "arn:aws:iam::123456789012:role/a//b",
            "role path \"/a//\" is not /-separated names of letters, digits and _+=,.@-, at most \
             512 characters"
                .to_owned(),
        ),
    ];
    for (value, reason) in cases {
        assert_eq!(
            refused(parse_role_arn(ROLE, value)),
            format!("annotation {ROLE}: invalid value {value:?}: {reason}; {ROLE_ALLOWED}")
        );
    }
    let value = format!("arn:aws:iam::123456789012:role/{long_name}");
    assert!(parse_role_arn(ROLE, &value).is_err());
}
