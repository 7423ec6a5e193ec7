//! AWS identifiers: VPC, subnet and security group ids, endpoint service
//! names, regions and IAM role ARNs.

use std::fmt;

use super::error::{quoted, AnnotationError};
use super::values::ListRule;

/// Whether `value` is `prefix` followed by 8 or 17 lower-case hex digits,
/// the two lengths EC2 has issued.
fn is_ec2_id(value: &str, prefix: &str) -> bool {
    value.strip_prefix(prefix).is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17)
            && hex
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    })
}

/// Reason an EC2 id is refused; upper-case gets its own hint because
/// EC2 ids are always lower-case.
fn ec2_id_reason(value: &str, prefix: &str) -> String {
    if is_ec2_id(&value.to_ascii_lowercase(), prefix) {
        return format!(
            "{} has upper-case letters; AWS ids are lower-case",
            quoted(value)
        );
    }
    format!(
        "{} is not {prefix:?} followed by 8 or 17 hexadecimal digits",
        quoted(value)
    )
}

/// Parses `vpce.hawser.io/vpc-id`: `vpc-` + 8 or 17 lower-case hex digits.
pub fn parse_vpc_id(key: &str, value: &str) -> Result<String, AnnotationError> {
    if is_ec2_id(value, "vpc-") {
        return Ok(value.to_owned());
    }
    let reason = if is_ec2_id(&value.to_ascii_lowercase(), "vpc-") {
        ec2_id_reason(value, "vpc-")
    } else {
        "not \"vpc-\" followed by 8 or 17 hexadecimal digits".to_owned()
    };
    Err(AnnotationError::new(
        key,
        value,
        reason,
        "a VPC id such as vpc-0a1b2c3d or vpc-0a1b2c3d4e5f67890",
    ))
}

/// Parses `vpce.hawser.io/subnet-ids`: 1..=16 distinct subnet ids,
/// comma-separated, blanks around items ignored.
pub fn parse_subnet_ids(key: &str, value: &str) -> Result<Vec<String>, AnnotationError> {
    ListRule {
        key,
        nouns: "subnet ids",
        max: 16,
        max_why: "",
        allowed: "1 to 16 distinct subnet ids, comma-separated, each \"subnet-\" followed by 8 or \
                  17 hexadecimal digits, e.g. subnet-0a1b2c3d,subnet-0a1b2c3d4e5f67890",
    }
    .parse(value, |item| {
        if is_ec2_id(item, "subnet-") {
            Ok(item.to_owned())
        } else {
            Err(ec2_id_reason(item, "subnet-"))
        }
    })
}

/// Parses `vpce.hawser.io/security-group-ids`: 1..=5 distinct security
/// group ids. Five is AWS's default limit of security groups per network
/// interface, which is what an interface endpoint is.
pub fn parse_security_group_ids(key: &str, value: &str) -> Result<Vec<String>, AnnotationError> {
    ListRule {
        key,
        nouns: "security group ids",
        max: 5,
        max_why: "AWS attaches at most 5 security groups to an endpoint",
        allowed: "1 to 5 distinct security group ids, comma-separated, each \"sg-\" followed by 8 \
                  or 17 hexadecimal digits, e.g. sg-0a1b2c3d,sg-0a1b2c3d4e5f67890",
    }
    .parse(value, |item| {
        if is_ec2_id(item, "sg-") {
            Ok(item.to_owned())
        } else {
            Err(ec2_id_reason(item, "sg-"))
        }
    })
}

/// Whether `s` looks like an AWS region name:
/// `^(eusc-)?[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d+$`.
///
/// Pattern-based so that new regions work without a release. The `eusc-`
/// prefix is the European Sovereign Cloud (`eusc-de-east-1`, partition
/// `aws-eusc`).
pub fn is_region(s: &str) -> bool {
    let s = s.strip_prefix("eusc-").unwrap_or(s);
    let parts: Vec<&str> = s.split('-').collect();
    let lower = |p: &str| !p.is_empty() && p.bytes().all(|c| c.is_ascii_lowercase());
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit());
    let area = |p: &str| p.len() == 2 && lower(p);
    let qualifier = |p: &str| {
        p == "gov"
            || p.strip_prefix("iso")
                .is_some_and(|rest| rest.is_empty() || (rest.len() == 1 && lower(rest)))
    };
    match parts.as_slice() {
        [a, dir, n] => area(a) && lower(dir) && digits(n),
        [a, q, dir, n] => area(a) && qualifier(q) && lower(dir) && digits(n),
        _ => false,
    }
}

const REGION_ALLOWED: &str =
    "an AWS region name such as us-east-1, eu-central-2, us-gov-west-1 or cn-north-1";

/// Parses `aws.hawser.io/region`.
pub fn parse_region(key: &str, value: &str) -> Result<String, AnnotationError> {
    if is_region(value) {
        Ok(value.to_owned())
    } else {
        Err(AnnotationError::new(
            key,
            value,
            "not an AWS region name",
            REGION_ALLOWED,
        ))
    }
}

const SERVICE_NAME_ALLOWED: &str = "com.amazonaws.<region>.<service> (e.g. \
     com.amazonaws.us-west-2.s3), com.amazonaws.vpce.<region>.vpce-svc-<8 or 17 hex digits> (e.g. \
     com.amazonaws.vpce.us-west-2.vpce-svc-0abc437c186123456), cn.com.amazonaws.<region>.<service> \
     in the China regions, or aws.sagemaker.<region>.notebook or .studio";

/// Parses `vpce.hawser.io/service-name`, the name of the endpoint service
/// an interface endpoint connects to. Accepted forms:
///
/// - `com.amazonaws.<region>.<service>` for AWS services, where the
///   service may itself have dots (`ecr.api`, `s3-global.accesspoint`);
/// - `com.amazonaws.vpce.<region>.vpce-svc-<8|17 hex>` for endpoint
///   services (PrivateLink, partners, Marketplace);
/// - `cn.com.amazonaws.<cn-region>.<service>`, the form some services use
///   in the China regions;
/// - `aws.sagemaker.<region>.notebook` and `.studio`: SageMaker notebook
///   and Studio interface endpoints are created by the same
///   CreateVpcEndpoint call, so refusing them would only push people
///   back to the console.
pub fn parse_vpce_service_name(key: &str, value: &str) -> Result<String, AnnotationError> {
    service_name_problem(value)
        .map(|reason| {
            Err(AnnotationError::new(
                key,
                value,
                reason,
                SERVICE_NAME_ALLOWED,
            ))
        })
        .unwrap_or_else(|| Ok(value.to_owned()))
}

fn service_name_problem(value: &str) -> Option<String> {
    let region_problem = |region: &str| {
        (!is_region(region)).then(|| format!("{} is not an AWS region name", quoted(region)))
    };
    if let Some(rest) = value.strip_prefix("com.amazonaws.vpce.") {
        let Some((region, svc)) = rest.split_once('.') else {
            return Some("missing \".vpce-svc-…\" after the region".to_owned());
        };
        return region_problem(region)
            .or_else(|| (!is_ec2_id(svc, "vpce-svc-")).then(|| ec2_id_reason(svc, "vpce-svc-")));
    }
    if let Some(rest) = value.strip_prefix("aws.sagemaker.") {
        let Some((region, svc)) = rest.split_once('.') else {
            return Some("missing \".notebook\" or \".studio\" after the region".to_owned());
        };
        return region_problem(region).or_else(|| {
            (svc != "notebook" && svc != "studio")
                .then(|| format!("{} is neither \"notebook\" nor \"studio\"", quoted(svc)))
        });
    }
    let (rest, china) = match value.strip_prefix("cn.com.amazonaws.") {
        Some(rest) => (rest, true),
        None => match value.strip_prefix("com.amazonaws.") {
            Some(rest) => (rest, false),
            None => return Some("not a VPC endpoint service name".to_owned()),
        },
    };
    let Some((region, svc)) = rest.split_once('.') else {
        return Some("missing the service after the region".to_owned());
    };
    if let Some(problem) = region_problem(region) {
        return Some(problem);
    }
    if china && !region.starts_with("cn-") {
        return Some(format!(
            "\"cn.com.amazonaws.\" names a China region, not {}",
            quoted(region)
        ));
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    };
    (!svc.split('.').all(label_ok)).then(|| format!("{} is not a service name", quoted(svc)))
}

/// AWS partitions an IAM role ARN may name.
pub const PARTITIONS: &[&str] = &[
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
    "aws-eusc",
];

/// An IAM role ARN, `arn:<partition>:iam::<account>:role<path><name>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleArn {
    pub partition: String,
    /// 12 digits.
    pub account_id: String,
    /// `/` or `/a/b/`; always starts and ends with `/`.
    pub path: String,
    pub name: String,
}

impl RoleArn {
    /// The ARN without its path. `aws-auth` matches the role ARN that
    /// STS reports, which has no path, so a mapping must use this form.
    pub fn arn_without_path(&self) -> String {
        format!(
            "arn:{}:iam::{}:role/{}",
            self.partition, self.account_id, self.name
        )
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:iam::{}:role{}{}",
            self.partition, self.account_id, self.path, self.name
        )
    }
}

const ROLE_ARN_ALLOWED: &str = "an IAM role ARN such as arn:aws:iam::123456789012:role/my-role \
     or arn:aws:iam::123456789012:role/team/my-role, in partition aws, aws-cn, aws-us-gov, \
     aws-iso, aws-iso-b, aws-iso-e, aws-iso-f or aws-eusc";

/// Parses `iam.hawser.io/role-arn` and `aws.hawser.io/role-arn`.
/// The role name is 1..=64 of `[A-Za-z0-9_+=,.@-]`; path segments use the
/// same characters and the path is at most 512 characters.
pub fn parse_role_arn(key: &str, value: &str) -> Result<RoleArn, AnnotationError> {
    role_arn(value).map_err(|reason| AnnotationError::new(key, value, reason, ROLE_ARN_ALLOWED))
}

fn role_arn(value: &str) -> Result<RoleArn, String> {
    let parts: Vec<&str> = value.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts.as_slice() else {
        return Err("not an ARN (arn:<partition>:iam::<account>:role/<name>)".to_owned());
    };
    if *arn != "arn" {
        return Err("does not start with \"arn:\"".to_owned());
    }
    if !PARTITIONS.contains(partition) {
        return Err(format!("{} is not an AWS partition", quoted(partition)));
    }
    if *service != "iam" {
        return Err(format!("service is {}, not \"iam\"", quoted(service)));
    }
    if !region.is_empty() {
        return Err(format!("IAM ARNs have no region, found {}", quoted(region)));
    }
    if account.len() != 12 || !account.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("account id {} is not 12 digits", quoted(account)));
    }
    let Some(rest) = resource.strip_prefix("role/") else {
        return Err(format!("{} is not a role (role/<name>)", quoted(resource)));
    };
    let iam_chars = |s: &str| {
        s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"_+=,.@-".contains(&c))
    };
    let (segments, name) = rest.rsplit_once('/').unwrap_or(("", rest));
    if name.is_empty() || name.len() > 64 || !iam_chars(name) {
        return Err(format!(
            "role name {} is not 1 to 64 of letters, digits and _+=,.@-",
            quoted(name)
        ));
    }
    let path = if segments.is_empty() {
        "/".to_owned()
    } else {
        format!("/{segments}/")
    };
    let segments_ok =
        segments.is_empty() || segments.split('/').all(|s| !s.is_empty() && iam_chars(s));
    if path.len() > 512 || !segments_ok {
        return Err(format!(
            "role path {} is not /-separated names of letters, digits and _+=,.@-, at \
             most 512 characters",
            quoted(&path)
        ));
    }
    Ok(RoleArn {
        partition: (*partition).to_owned(),
        account_id: (*account).to_owned(),
        path,
        name: name.to_owned(),
    })
}
