//! Every AWS operation hawser calls, in one list: the `service` and
//! `operation` labels of `hawser_aws_api_calls_total`, and the IAM actions
//! a call needs. Every call site names its entry here, so the metric's
//! labels and `docs/iam-policy.json` (checked against [`ALL`] by a unit
//! test) cannot drift from the code.

/// One AWS API operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Op {
    /// The `service` label, also the IAM service prefix: `ec2`,
    /// `cloudformation`, `sts` or `sqs`.
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
    /// `hawser gc`: the account's stack names, to find the cluster's.
    pub const LIST_STACKS: Op = Op::read(CFN, "ListStacks", &["cloudformation:ListStacks"]);
    /// `hawser gc`: whether a stack was released (`retain`).
    pub const GET_STACK_POLICY: Op =
        Op::read(CFN, "GetStackPolicy", &["cloudformation:GetStackPolicy"]);
    /// Marking a stack released (`hawser.io/deletion-policy: retain`).
    pub const SET_STACK_POLICY: Op =
        Op::write(CFN, "SetStackPolicy", &["cloudformation:SetStackPolicy"]);
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

/// The cfn-requests controller's queue (`service="sqs"`).
pub mod sqs {
    use super::Op;

    const SQS: &str = "sqs";

    /// A long poll; it hides the messages it returns for a while.
    pub const RECEIVE_MESSAGE: Op = Op::read(SQS, "ReceiveMessage", &["sqs:ReceiveMessage"]);
    /// Once the request was answered.
    pub const DELETE_MESSAGE: Op = Op::write(SQS, "DeleteMessage", &["sqs:DeleteMessage"]);
    /// When the answer could not be delivered: the message comes back
    /// after a backoff.
    pub const CHANGE_MESSAGE_VISIBILITY: Op = Op::write(
        SQS,
        "ChangeMessageVisibility",
        &["sqs:ChangeMessageVisibility"],
    );
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
    cfn::LIST_STACKS,
    cfn::GET_STACK_POLICY,
    cfn::SET_STACK_POLICY,
    sts::GET_CALLER_IDENTITY,
    sts::ASSUME_ROLE,
    sqs::RECEIVE_MESSAGE,
    sqs::DELETE_MESSAGE,
    sqs::CHANGE_MESSAGE_VISIBILITY,
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The policy docs/install.md tells users to install.
    const POLICY: &str = include_str!("../../docs/iam-policy.json");

    /// Every action a registry entry needs.
    fn needed() -> BTreeSet<&'static str> {
        ALL.iter()
            .flat_map(|op| op.iam_actions.iter().copied())
            .collect()
    }

    /// The actions `policy` allows, or what is wrong with its shape.
    fn allowed(policy: &serde_json::Value) -> Result<BTreeSet<String>, String> {
        let statements = match &policy["Statement"] {
            serde_json::Value::Array(list) => list.clone(),
            one @ serde_json::Value::Object(_) => vec![one.clone()],
            other => return Err(format!("Statement is not a list: {other}")),
        };
        let mut actions = BTreeSet::new();
        for st in &statements {
            let sid = st["Sid"].as_str().unwrap_or("(no Sid)");
            if st.get("NotAction").is_some() || st.get("NotResource").is_some() {
                return Err(format!(
                    "{sid}: NotAction/NotResource grant more than they name"
                ));
            }
            if st["Effect"] != "Allow" {
                continue;
            }
            let names = match &st["Action"] {
                serde_json::Value::String(a) => vec![a.clone()],
                serde_json::Value::Array(list) => list
                    .iter()
                    .map(|a| a.as_str().map(str::to_owned))
                    .collect::<Option<_>>()
                    .ok_or_else(|| format!("{sid}: an Action is not a string"))?,
                other => return Err(format!("{sid}: Action is {other}")),
            };
            actions.extend(names);
        }
        Ok(actions)
    }

    /// `Ok` when `policy` allows exactly the registry's actions, none by
    /// wildcard; else what is missing and what is extra.
    fn compare(policy: &serde_json::Value) -> Result<(), String> {
        let allowed = allowed(policy)?;
        let needed = needed();
        let missing: Vec<&str> = needed
            .iter()
            .copied()
            .filter(|a| !allowed.contains(*a))
            .collect();
        let extra: Vec<&str> = allowed
            .iter()
            .map(String::as_str)
            .filter(|a| a.contains('*') || !needed.contains(a))
            .collect();
        if missing.is_empty() && extra.is_empty() {
            return Ok(());
        }
        Err(format!(
            "docs/iam-policy.json is out of step with src/aws/ops.rs: \
             missing (a registry operation needs them) {missing:?}; \
             extra (no registry operation needs them, or a wildcard) {extra:?}"
        ))
    }

    #[test]
    fn the_iam_policy_allows_exactly_what_the_registry_needs() {
        let policy: serde_json::Value =
            serde_json::from_str(POLICY).expect("docs/iam-policy.json is JSON");
        if let Err(e) = compare(&policy) {
            panic!("{e}");
        }
        assert!(
            !POLICY.contains("GetCallerIdentity"),
            "sts:GetCallerIdentity needs no grant"
        );
    }

    #[test]
    fn a_policy_out_of_step_is_reported_with_the_actions() {
        let mut policy: serde_json::Value = serde_json::from_str(POLICY).unwrap();
        let statements = policy["Statement"].as_array_mut().unwrap();
        let assume = statements
            .iter()
            .position(|st| st["Action"] == "sts:AssumeRole")
            .expect("the AssumeRole statement");
        statements[assume]["Action"] = serde_json::json!(["ec2:*", "sts:GetCallerIdentity"]);
        let err = compare(&policy).unwrap_err();
        assert!(
            err.contains(r#"missing (a registry operation needs them) ["sts:AssumeRole"]"#),
            "{err}"
        );
        assert!(
            err.contains(r#"["ec2:*", "sts:GetCallerIdentity"]"#),
            "{err}"
        );
        policy["Statement"][0]["NotAction"] = serde_json::json!("ec2:DeleteVpc");
        assert!(compare(&policy).unwrap_err().contains("NotAction"));
    }

    #[test]
    fn every_entry_is_listed_once_and_grants_its_own_action_first() {
        let names: BTreeSet<_> = ALL.iter().map(|op| (op.service, op.name)).collect();
        assert_eq!(names.len(), ALL.len(), "an operation is listed twice");
        for op in ALL {
            assert!(
                ["ec2", "cloudformation", "sts", "sqs"].contains(&op.service),
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
