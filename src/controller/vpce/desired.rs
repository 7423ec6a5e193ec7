//! What AWS should hold for one Service, and how what it holds differs.
//! Pure: no I/O, so every decision is unit-tested without AWS.

use crate::annotations::{keys, SecurityGroups, VpceSpec};
use crate::aws::{with_default_tags, CidrRule, Endpoint, ModifyEndpoint, SecurityGroup, Tags};

/// Tag hawser adds to resources it lets go of (`hawser.io/deletion-policy:
/// retain`), replacing the owner and uid tags: `Service/<ns>/<name>`.
pub const TAG_RELEASED_FROM: &str = "hawser.io/released-from";
/// AWS's display name tag.
pub const TAG_NAME: &str = "Name";
/// Egress the generated group allows: everything, as AWS's default.
pub const EGRESS_ALL: &[&str] = &["0.0.0.0/0"];

/// The Service a set of AWS resources belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl Owner {
    /// `Service/<namespace>/<name>`, the `hawser.io/owner` tag value.
    pub fn reference(&self) -> String {
        format!("Service/{}/{}", self.namespace, self.name)
    }

    /// The tags that make a resource this Service's: every lookup filters
    /// on all three, so a Service re-created under the same name (new
    /// uid) never adopts its predecessor's resources.
    pub fn ownership_tags(&self, cluster: &str) -> Tags {
        Tags::from([
            (keys::TAG_CLUSTER.to_owned(), cluster.to_owned()),
            (keys::TAG_OWNER.to_owned(), self.reference()),
            (keys::TAG_UID.to_owned(), self.uid.clone()),
        ])
    }

    /// `hawser-<namespace>-<name>`: the generated group's name, also the
    /// `Name` tag of both resources.
    pub fn resource_name(&self) -> String {
        format!("hawser-{}-{}", self.namespace, self.name)
    }
}

/// Controller-wide defaults for what a Service may leave out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Defaults {
    pub vpc_id: Option<String>,
    pub subnet_ids: Vec<String>,
    /// `--default-tags`: written on the endpoint and the generated group
    /// at creation, under hawser's own.
    pub tags: Tags,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DesiredGroups {
    /// hawser's own group, admitting all traffic from these rules.
    Generated {
        name: String,
        description: String,
        ingress: Vec<CidrRule>,
    },
    /// The user's groups, sorted; attached, never modified or deleted.
    Provided(Vec<String>),
}

/// Everything hawser wants to exist in AWS for one Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub service_name: String,
    pub vpc_id: String,
    /// Sorted.
    pub subnet_ids: Vec<String>,
    pub groups: DesiredGroups,
    pub private_dns: bool,
    /// Find-by tags: cluster, owner, uid.
    pub ownership: Tags,
    /// Tags written at creation: ownership plus `Name`, over the
    /// `--default-tags`.
    pub tags: Tags,
}

/// A spec that cannot be turned into a request; the user must act.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DesiredError {
    #[error(
        "no VPC for the endpoint: set {} on the Service, or run hawser with --default-vpc-id",
        keys::VPCE_VPC_ID
    )]
    NoVpc,
    #[error(
        "no subnets for the endpoint: set {} on the Service, or run hawser with --default-subnet-ids",
        keys::VPCE_SUBNET_IDS
    )]
    NoSubnets,
}

pub fn desired(
    spec: &VpceSpec,
    owner: &Owner,
    cluster: &str,
    defaults: &Defaults,
) -> Result<Desired, DesiredError> {
    let vpc_id = spec
        .vpc_id
        .clone()
        .or_else(|| defaults.vpc_id.clone())
        .ok_or(DesiredError::NoVpc)?;
    let mut subnet_ids = if spec.subnet_ids.is_empty() {
        defaults.subnet_ids.clone()
    } else {
        spec.subnet_ids.clone()
    };
    if subnet_ids.is_empty() {
        return Err(DesiredError::NoSubnets);
    }
    subnet_ids.sort();
    subnet_ids.dedup();
    let groups = match &spec.security_groups {
        SecurityGroups::Generated { allowed_cidrs } => {
            let mut ingress: Vec<CidrRule> = allowed_cidrs
                .iter()
                .map(|c| CidrRule::all_from(c))
                .collect();
            ingress.sort();
            ingress.dedup();
            DesiredGroups::Generated {
                name: owner.resource_name(),
                description: format!(
                    "hawser: VPC endpoint of {} in cluster {cluster}",
                    owner.reference()
                ),
                ingress,
            }
        }
        SecurityGroups::Provided(ids) => {
            let mut ids = ids.clone();
            ids.sort();
            ids.dedup();
            DesiredGroups::Provided(ids)
        }
    };
    let ownership = owner.ownership_tags(cluster);
    let mut own = ownership.clone();
    own.insert(TAG_NAME.to_owned(), owner.resource_name());
    let tags = with_default_tags(&defaults.tags, &own);
    Ok(Desired {
        service_name: spec.service_name.clone(),
        vpc_id,
        subnet_ids,
        groups,
        private_dns: spec.private_dns,
        ownership,
        tags,
    })
}

/// The idempotency token for CreateVpcEndpoint: the Service's uid, plus
/// the endpoint it last recorded, if any. A retry after a crash repeats
/// the token (AWS returns the first endpoint); a deliberate re-create
/// (the old endpoint was deleted, or the service name changed) gets a new
/// one, since AWS would otherwise answer with the deleted endpoint.
/// At most 36 + 1 + 22 = 59 characters; AWS allows 64.
pub fn client_token(uid: &str, recorded_endpoint: Option<&str>) -> String {
    match recorded_endpoint {
        Some(id) => format!("{uid}-{id}"),
        None => uid.to_owned(),
    }
}

/// Whether `e` is the endpoint `d` asks for, or one to be replaced: the
/// service and the VPC cannot be changed in place.
pub fn is_same_endpoint(d: &Desired, e: &Endpoint) -> bool {
    e.service_name == d.service_name && e.vpc_id == d.vpc_id
}

/// Of several matching endpoints (a duplicate from a lost race, or moto
/// ignoring the ClientToken), the one to keep: the recorded one, else the
/// lowest id. The rest are deleted.
pub fn choose_endpoint<'a>(
    matching: &[&'a Endpoint],
    recorded: Option<&str>,
) -> Option<&'a Endpoint> {
    matching
        .iter()
        .find(|e| Some(e.id.as_str()) == recorded)
        .or_else(|| matching.iter().min_by(|a, b| a.id.cmp(&b.id)))
        .copied()
}

/// The ModifyVpcEndpoint that turns `e` into what `d` asks for, with
/// `group_ids` being the desired security groups.
pub fn endpoint_changes(d: &Desired, e: &Endpoint, group_ids: &[String]) -> ModifyEndpoint {
    let (add_subnet_ids, remove_subnet_ids) = set_diff(&d.subnet_ids, &e.subnet_ids);
    let (add_security_group_ids, remove_security_group_ids) =
        set_diff(group_ids, &e.security_group_ids);
    ModifyEndpoint {
        endpoint_id: e.id.clone(),
        add_subnet_ids,
        remove_subnet_ids,
        add_security_group_ids,
        remove_security_group_ids,
        private_dns: (e.private_dns != d.private_dns).then_some(d.private_dns),
    }
}

/// (in `want` but not `have`, in `have` but not `want`), each sorted.
fn set_diff(want: &[String], have: &[String]) -> (Vec<String>, Vec<String>) {
    let mut add: Vec<String> = want.iter().filter(|w| !have.contains(w)).cloned().collect();
    let mut remove: Vec<String> = have.iter().filter(|h| !want.contains(h)).cloned().collect();
    add.sort();
    remove.sort();
    (add, remove)
}

/// What to change in the generated group's rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleChanges {
    pub authorize_ingress: Vec<CidrRule>,
    pub revoke_ingress: Vec<CidrRule>,
    pub authorize_egress: Vec<CidrRule>,
}

impl RuleChanges {
    pub fn is_empty(&self) -> bool {
        self.authorize_ingress.is_empty()
            && self.revoke_ingress.is_empty()
            && self.authorize_egress.is_empty()
    }
}

/// Ingress exactly `ingress` (extra CIDR rules, e.g. added by hand, are
/// revoked); egress at least all traffic (extra egress rules are kept:
/// they cannot widen "everything").
pub fn rule_changes(ingress: &[CidrRule], group: &SecurityGroup) -> RuleChanges {
    let egress: Vec<CidrRule> = EGRESS_ALL.iter().map(|c| CidrRule::all_from(c)).collect();
    RuleChanges {
        authorize_ingress: missing(ingress, &group.ingress),
        revoke_ingress: missing(&group.ingress, ingress),
        authorize_egress: missing(&egress, &group.egress),
    }
}

fn missing(want: &[CidrRule], have: &[CidrRule]) -> Vec<CidrRule> {
    let mut out: Vec<CidrRule> = want.iter().filter(|w| !have.contains(w)).cloned().collect();
    out.sort();
    out.dedup();
    out
}

/// One line for an Event: what a modification changes.
pub fn describe_changes(m: &ModifyEndpoint) -> String {
    let mut parts = Vec::new();
    let list = |v: &[String]| v.join(",");
    if !m.add_subnet_ids.is_empty() {
        parts.push(format!("added subnets {}", list(&m.add_subnet_ids)));
    }
    if !m.remove_subnet_ids.is_empty() {
        parts.push(format!("removed subnets {}", list(&m.remove_subnet_ids)));
    }
    if !m.add_security_group_ids.is_empty() {
        parts.push(format!(
            "added security groups {}",
            list(&m.add_security_group_ids)
        ));
    }
    if !m.remove_security_group_ids.is_empty() {
        parts.push(format!(
            "removed security groups {}",
            list(&m.remove_security_group_ids)
        ));
    }
    if let Some(p) = m.private_dns {
        parts.push(format!("private DNS {}", if p { "on" } else { "off" }));
    }
    parts.join("; ")
}

/// One line: what a change of the generated group's rules does.
pub fn describe_rules(change: &RuleChanges) -> String {
    let cidrs = |rules: &[CidrRule]| {
        rules
            .iter()
            .map(|r| r.cidr.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    let mut parts = Vec::new();
    if !change.authorize_ingress.is_empty() {
        parts.push(format!(
            "allowed ingress from {}",
            cidrs(&change.authorize_ingress)
        ));
    }
    if !change.revoke_ingress.is_empty() {
        parts.push(format!(
            "revoked ingress from {}",
            cidrs(&change.revoke_ingress)
        ));
    }
    if !change.authorize_egress.is_empty() {
        parts.push(format!(
            "restored egress to {}",
            cidrs(&change.authorize_egress)
        ));
    }
    parts.join("; ")
}
