//! The interface VPC endpoint a Service asks for.

use std::collections::BTreeMap;

use super::aws_ids::{
    parse_region, parse_security_group_ids, parse_subnet_ids, parse_vpc_id, parse_vpce_service_name,
};
use super::collect::Annotations;
use super::error::AnnotationError;
use super::keys::{
    input_keys, ObjectKind, AWS_REGION, DELETION_POLICY, PLAN_ONLY, VPCE_ALLOWED_CIDRS,
    VPCE_PRIVATE_DNS, VPCE_SECURITY_GROUP_IDS, VPCE_SERVICE_NAME, VPCE_SUBNET_IDS, VPCE_VPC_ID,
};
use super::net::{parse_cidrs, DEFAULT_ALLOWED_CIDRS};
use super::values::{parse_bool, parse_deletion_policy, DeletionPolicy};

/// What the endpoint's security groups are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityGroups {
    /// No `vpce.hawser.io/security-group-ids`: hawser creates one group
    /// admitting all protocols from `allowed_cidrs` and deletes it with
    /// the endpoint.
    Generated { allowed_cidrs: Vec<String> },
    /// `vpce.hawser.io/security-group-ids`: attached, never deleted.
    Provided(Vec<String>),
}

/// An interface VPC endpoint for a Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpceSpec {
    pub service_name: String,
    /// `None`: the controller's `--default-vpc-id`.
    pub vpc_id: Option<String>,
    /// Empty when absent: the controller's default subnets.
    pub subnet_ids: Vec<String>,
    pub security_groups: SecurityGroups,
    pub private_dns: bool,
    /// The Service's own `aws.hawser.io/region`, overriding its
    /// namespace's.
    pub region: Option<String>,
    pub deletion_policy: DeletionPolicy,
    /// `hawser.io/plan-only`: plan, do not act.
    pub plan_only: bool,
}

impl VpceSpec {
    /// Reads a Service's annotations. `Ok(None)` when the Service does not
    /// ask for an endpoint (no `vpce.hawser.io/service-name`); any other
    /// hawser key on it is then an error, since it would do nothing.
    pub fn from_annotations(
        ann: &BTreeMap<String, String>,
    ) -> Result<Option<VpceSpec>, Vec<AnnotationError>> {
        let mut ann = Annotations::new(ann, ObjectKind::Service);
        if ann.get(VPCE_SERVICE_NAME).is_none() {
            let dependents: Vec<&str> = input_keys(ObjectKind::Service)
                .filter(|k| *k != VPCE_SERVICE_NAME)
                .collect();
            ann.require(&dependents, VPCE_SERVICE_NAME);
            return ann.finish(None);
        }
        let service_name = ann.parse(VPCE_SERVICE_NAME, parse_vpce_service_name);
        let vpc_id = ann.parse(VPCE_VPC_ID, parse_vpc_id);
        let subnet_ids = ann.parse(VPCE_SUBNET_IDS, parse_subnet_ids);
        let provided = ann.parse(VPCE_SECURITY_GROUP_IDS, parse_security_group_ids);
        let cidrs = ann.parse(VPCE_ALLOWED_CIDRS, parse_cidrs);
        let private_dns = ann.parse(VPCE_PRIVATE_DNS, parse_bool);
        let region = ann.parse(AWS_REGION, parse_region);
        let deletion_policy = ann.parse(DELETION_POLICY, parse_deletion_policy);
        let plan_only = ann.parse(PLAN_ONLY, parse_bool);

        let has_provided = ann.get(VPCE_SECURITY_GROUP_IDS).is_some();
        if let (true, Some(value)) = (has_provided, ann.get(VPCE_ALLOWED_CIDRS)) {
            ann.push(AnnotationError::new(
                VPCE_ALLOWED_CIDRS,
                value,
                format!(
                    "only used for a generated security group, and {VPCE_SECURITY_GROUP_IDS} \
                     provides the groups"
                ),
                format!(
                    "remove {VPCE_ALLOWED_CIDRS}, or remove {VPCE_SECURITY_GROUP_IDS} to let \
                     hawser generate the group"
                ),
            ));
        }
        let security_groups = match provided {
            Some(groups) => SecurityGroups::Provided(groups),
            None => SecurityGroups::Generated {
                allowed_cidrs: cidrs.unwrap_or_else(|| {
                    DEFAULT_ALLOWED_CIDRS
                        .iter()
                        .map(|c| c.to_string())
                        .collect()
                }),
            },
        };
        let spec = service_name.map(|service_name| VpceSpec {
            service_name,
            vpc_id,
            subnet_ids: subnet_ids.unwrap_or_default(),
            security_groups,
            private_dns: private_dns.unwrap_or(false),
            region,
            deletion_policy: deletion_policy.unwrap_or_default(),
            plan_only: plan_only.unwrap_or(false),
        });
        ann.finish(spec)
    }
}
