//! What a Namespace asks for: environment, IAM mapping, account, stack,
//! hardening.

use std::collections::BTreeMap;

use super::aws_ids::{parse_region, parse_role_arn, RoleArn};
use super::collect::Annotations;
use super::error::AnnotationError;
use super::iam::{parse_iam_groups, parse_iam_username};
use super::keys::{
    ObjectKind, AWS_REGION, AWS_ROLE_ARN, DELETION_POLICY, ENV_HOST_NAMES, ENV_ROTATE_KEYS,
    ENV_ROUTING_SECRET, IAM_GROUPS, IAM_ROLE_ARN, IAM_USERNAME, PLAN_ONLY,
    SECURITY_ALLOW_PRIVILEGED, SECURITY_PROFILE,
};
use super::net::parse_host_names;
use super::stack::{read_stack, StackSpec};
use super::values::{
    parse_bool, parse_deletion_policy, parse_rotate_keys, parse_security_profile, DeletionPolicy,
    SecurityProfile,
};

/// An IAM role mapped to a Kubernetes identity in `aws-auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamMappingSpec {
    pub role_arn: RoleArn,
    /// `None`: [`super::iam::default_iam_username`] for the namespace.
    pub username: Option<String>,
    /// Empty when absent. `system:` groups are not refused here; that is
    /// the controller's `--allow-system-groups` policy.
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceSpec {
    /// Lower-cased, de-duplicated; `None` when absent.
    pub host_names: Option<Vec<String>>,
    pub routing_secret: bool,
    pub rotate_keys: Option<String>,
    pub iam: Option<IamMappingSpec>,
    /// Role assumed for every AWS call for this namespace's objects.
    pub aws_role_arn: Option<RoleArn>,
    pub region: Option<String>,
    pub stack: Option<StackSpec>,
    pub allow_privileged: bool,
    pub profile: Option<SecurityProfile>,
    pub deletion_policy: DeletionPolicy,
    /// `hawser.io/plan-only`: plan the stack, do not act.
    pub plan_only: bool,
}

impl NamespaceSpec {
    /// Reads a Namespace's annotations; every problem is reported.
    pub fn from_annotations(
        ann: &BTreeMap<String, String>,
    ) -> Result<NamespaceSpec, Vec<AnnotationError>> {
        let mut ann = Annotations::new(ann, ObjectKind::Namespace);
        let host_names = ann.parse(ENV_HOST_NAMES, parse_host_names);
        let routing_secret = ann.parse(ENV_ROUTING_SECRET, parse_bool);
        let rotate_keys = ann.parse(ENV_ROTATE_KEYS, parse_rotate_keys);
        if matches!(ann.get(ENV_ROUTING_SECRET), None | Some("false")) {
            ann.require(
                &[ENV_ROTATE_KEYS],
                &format!("{ENV_ROUTING_SECRET}: \"true\""),
            );
        }

        let role_arn = ann.parse(IAM_ROLE_ARN, parse_role_arn);
        let username = ann.parse(IAM_USERNAME, parse_iam_username);
        let groups = ann.parse(IAM_GROUPS, parse_iam_groups);
        if ann.get(IAM_ROLE_ARN).is_none() {
            ann.require(&[IAM_USERNAME, IAM_GROUPS], IAM_ROLE_ARN);
        }
        let iam = role_arn.map(|role_arn| IamMappingSpec {
            role_arn,
            username,
            groups: groups.unwrap_or_default(),
        });

        let spec = NamespaceSpec {
            host_names,
            routing_secret: routing_secret.unwrap_or(false),
            rotate_keys,
            iam,
            aws_role_arn: ann.parse(AWS_ROLE_ARN, parse_role_arn),
            region: ann.parse(AWS_REGION, parse_region),
            stack: read_stack(&mut ann),
            allow_privileged: ann
                .parse(SECURITY_ALLOW_PRIVILEGED, parse_bool)
                .unwrap_or(false),
            profile: ann.parse(SECURITY_PROFILE, parse_security_profile),
            deletion_policy: ann
                .parse(DELETION_POLICY, parse_deletion_policy)
                .unwrap_or_default(),
            plan_only: ann.parse(PLAN_ONLY, parse_bool).unwrap_or(false),
        };
        ann.finish(spec)
    }
}
