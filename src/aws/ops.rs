//! Every AWS operation hawser calls, in one list: the `service` and
//! `operation` labels of `hawser_aws_api_calls_total`, and the IAM actions
//! a call needs. Every call site names its entry here, so the metric's
//! labels cannot drift from the code.

/// One AWS API operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Op {
    /// The `service` label, also the IAM service prefix: `ec2`,
    /// `cloudformation` or `sts`.
    pub service: &'static str,
    /// The `operation` label: the API's own name, e.g. `CreateVpcEndpoint`.
    pub name: &'static str,
    /// Whether the call changes something in AWS.
    pub writes: bool,
    /// The IAM actions one call needs: the operation's own, then those
    /// AWS authorizes along with it (tagging on create; AWS's Service
    /// Authorization Reference lists them as dependent actions). Empty:
    /// no grant needed.
    pub iam_actions: &'static [&'static str],
}

impl Op {
    const fn read(service: &'static str, name: &'static str, iam: &'static [&'static str]) -> Op {
        Op {
            service,
            name,
            writes: false,
            iam_actions: iam,
        }
    }

    const fn write(service: &'static str, name: &'static str, iam: &'static [&'static str]) -> Op {
        Op {
            service,
            name,
            writes: true,
            iam_actions: iam,
        }
    }

    /// The entry named `name` (an `operation` label), if any.
    pub fn named(name: &str) -> Option<Op> {
        ALL.iter().copied().find(|op| op.name == name)
    }
}

/// The VPC endpoint controller's calls (`service="ec2"`).
pub mod ec2 {
    use super::Op;

    const EC2: &str = "ec2";

    pub const DESCRIBE_VPC_ENDPOINTS: Op =
        Op::read(EC2, "DescribeVpcEndpoints", &["ec2:DescribeVpcEndpoints"]);
    /// Tags go in the request's TagSpecifications, which EC2 authorizes
    /// as `ec2:CreateTags` with `ec2:CreateAction` set.
    pub const CREATE_VPC_ENDPOINT: Op = Op::write(
        EC2,
        "CreateVpcEndpoint",
        &["ec2:CreateVpcEndpoint", "ec2:CreateTags"],
    );
    pub const MODIFY_VPC_ENDPOINT: Op =
        Op::write(EC2, "ModifyVpcEndpoint", &["ec2:ModifyVpcEndpoint"]);
    pub const DELETE_VPC_ENDPOINTS: Op =
        Op::write(EC2, "DeleteVpcEndpoints", &["ec2:DeleteVpcEndpoints"]);
    pub const DESCRIBE_SECURITY_GROUPS: Op = Op::read(
        EC2,
        "DescribeSecurityGroups",
        &["ec2:DescribeSecurityGroups"],
    );
    /// Tagged on create, as [`CREATE_VPC_ENDPOINT`].
    pub const CREATE_SECURITY_GROUP: Op = Op::write(
        EC2,
        "CreateSecurityGroup",
        &["ec2:CreateSecurityGroup", "ec2:CreateTags"],
    );
    pub const AUTHORIZE_SECURITY_GROUP_INGRESS: Op = Op::write(
        EC2,
        "AuthorizeSecurityGroupIngress",
        &["ec2:AuthorizeSecurityGroupIngress"],
    );
    pub const REVOKE_SECURITY_GROUP_INGRESS: Op = Op::write(
        EC2,
        "RevokeSecurityGroupIngress",
        &["ec2:RevokeSecurityGroupIngress"],
    );
    pub const AUTHORIZE_SECURITY_GROUP_EGRESS: Op = Op::write(
        EC2,
        "AuthorizeSecurityGroupEgress",
        &["ec2:AuthorizeSecurityGroupEgress"],
    );
    pub const DELETE_SECURITY_GROUP: Op =
        Op::write(EC2, "DeleteSecurityGroup", &["ec2:DeleteSecurityGroup"]);
    /// Retagging what hawser lets go of (`hawser.io/deletion-policy: retain`).
    pub const CREATE_TAGS: Op = Op::write(EC2, "CreateTags", &["ec2:CreateTags"]);
    pub const DELETE_TAGS: Op = Op::write(EC2, "DeleteTags", &["ec2:DeleteTags"]);
}

/// The stack controller's calls (`service="cloudformation"`).
pub mod cfn {
    use super::Op;

    const CFN: &str = "cloudformation";

    pub const DESCRIBE_STACKS: Op =
        Op::read(CFN, "DescribeStacks", &["cloudformation:DescribeStacks"]);
    /// The request carries the stack's tags: `cloudformation:TagResource`.
    pub const CREATE_STACK: Op = Op::write(
        CFN,
        "CreateStack",
        &["cloudformation:CreateStack", "cloudformation:TagResource"],
    );
    /// An update's tags may add or drop some of the stack's.
    pub const CREATE_CHANGE_SET: Op = Op::write(
        CFN,
        "CreateChangeSet",
        &[
            "cloudformation:CreateChangeSet",
            "cloudformation:TagResource",
            "cloudformation:UntagResource",
        ],
    );
    pub const DESCRIBE_CHANGE_SET: Op = Op::read(
        CFN,
        "DescribeChangeSet",
        &["cloudformation:DescribeChangeSet"],
    );
    pub const EXECUTE_CHANGE_SET: Op = Op::write(
        CFN,
        "ExecuteChangeSet",
        &[
            "cloudformation:ExecuteChangeSet",
            "cloudformation:TagResource",
            "cloudformation:UntagResource",
        ],
    );
    pub const DELETE_CHANGE_SET: Op =
        Op::write(CFN, "DeleteChangeSet", &["cloudformation:DeleteChangeSet"]);
    pub const DELETE_STACK: Op = Op::write(CFN, "DeleteStack", &["cloudformation:DeleteStack"]);
    pub const DESCRIBE_STACK_EVENTS: Op = Op::read(
        CFN,
        "DescribeStackEvents",
        &["cloudformation:DescribeStackEvents"],
    );
}

/// Identity calls (`service="sts"`).
pub mod sts {
    use super::Op;

    const STS: &str = "sts";

    /// AWS answers GetCallerIdentity whatever the policies say: no grant.
    pub const GET_CALLER_IDENTITY: Op = Op::read(STS, "GetCallerIdentity", &[]);
    /// Credentials for a namespace's `aws.hawser.io/role-arn`; counted
    /// per fetch by the SDK's credentials provider.
    pub const ASSUME_ROLE: Op = Op::read(STS, "AssumeRole", &["sts:AssumeRole"]);
}

/// Every operation hawser calls.
pub const ALL: &[Op] = &[
    ec2::DESCRIBE_VPC_ENDPOINTS,
    ec2::CREATE_VPC_ENDPOINT,
    ec2::MODIFY_VPC_ENDPOINT,
    ec2::DELETE_VPC_ENDPOINTS,
    ec2::DESCRIBE_SECURITY_GROUPS,
    ec2::CREATE_SECURITY_GROUP,
    ec2::AUTHORIZE_SECURITY_GROUP_INGRESS,
    ec2::REVOKE_SECURITY_GROUP_INGRESS,
    ec2::AUTHORIZE_SECURITY_GROUP_EGRESS,
    ec2::DELETE_SECURITY_GROUP,
    ec2::CREATE_TAGS,
    ec2::DELETE_TAGS,
    cfn::DESCRIBE_STACKS,
    cfn::CREATE_STACK,
    cfn::CREATE_CHANGE_SET,
    cfn::DESCRIBE_CHANGE_SET,
    cfn::EXECUTE_CHANGE_SET,
    cfn::DELETE_CHANGE_SET,
    cfn::DELETE_STACK,
    cfn::DESCRIBE_STACK_EVENTS,
    sts::GET_CALLER_IDENTITY,
    sts::ASSUME_ROLE,
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_entry_is_listed_once_and_grants_its_own_action_first() {
        let names: BTreeSet<_> = ALL.iter().map(|op| (op.service, op.name)).collect();
        assert_eq!(names.len(), ALL.len(), "an operation is listed twice");
        for op in ALL {
            assert!(
                ["ec2", "cloudformation", "sts"].contains(&op.service),
                "{op:?}"
            );
            if let Some(own) = op.iam_actions.first() {
                assert_eq!(*own, format!("{}:{}", op.service, op.name), "{op:?}");
            }
            for action in op.iam_actions {
                assert!(
                    action.starts_with(&format!("{}:", op.service)) && !action.contains('*'),
                    "{op:?}: {action}"
                );
            }
        }
        assert_eq!(Op::named("CreateStack"), Some(cfn::CREATE_STACK));
        assert_eq!(
            Op::named("UpdateStack"),
            None,
            "hawser updates by change set"
        );
    }
}
