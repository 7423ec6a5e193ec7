//! What one apply will do, decided from what EC2 showed at the start of
//! the pass (pure). [`super::apply`] observes, asks [`plan`], and executes
//! the plan in order: the group, the endpoints to replace, the endpoint,
//! then the groups left over.

use super::apply::Recorded;
use super::desired::{
    choose_endpoint, client_token, describe_changes, describe_rules, endpoint_changes,
    is_same_endpoint, rule_changes, Desired, DesiredGroups, RuleChanges,
};
use crate::aws::{CidrRule, Endpoint, SecurityGroup};
use crate::controller::planned::{Action, Verb};

/// What EC2 holds with the Service's ownership tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub endpoints: Vec<Endpoint>,
    /// Described only when [`needs_groups`] says so.
    pub groups: Vec<SecurityGroup>,
}

/// Whether the pass must describe the Service's groups: always for a
/// generated group; with provided groups only while the Service still
/// records a generated one (left from before the switch).
pub fn needs_groups(d: &Desired, recorded: &Recorded) -> bool {
    matches!(d.groups, DesiredGroups::Generated { .. }) || recorded.group_id.is_some()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupStep {
    /// The Service names its groups; hawser makes none.
    Provided(Vec<String>),
    /// The generated group exists in the right VPC; its rules are brought
    /// to the desired ones.
    Keep { id: String, rules: RuleChanges },
    /// No generated group in the VPC: create one with exactly `ingress`.
    /// `vanished`: the group the Service recorded, gone (drift).
    Create {
        name: String,
        description: String,
        ingress: Vec<CidrRule>,
        vanished: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointStep {
    /// An endpoint for the service in the VPC exists: keep it, delete its
    /// duplicates, and modify it to the desired subnets and groups.
    Keep {
        endpoint: Endpoint,
        duplicates: Vec<String>,
        /// Not the endpoint the Service recorded.
        adopted: bool,
    },
    /// None exists: create one. `drift_from`: the endpoint the Service
    /// recorded, gone without hawser replacing it.
    Create {
        client_token: String,
        drift_from: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub group: GroupStep,
    /// Endpoints for another service or VPC: deleted (replaced).
    pub replace: Vec<String>,
    pub endpoint: EndpointStep,
    /// Groups of the Service's that are no longer wanted (another VPC, or
    /// the switch to provided groups): deleted once nothing uses them.
    pub stale_groups: Vec<String>,
}

/// The plan for `d` given `observed` and what the Service `uid` recorded.
pub fn plan(d: &Desired, observed: &Observed, recorded: &Recorded, uid: &str) -> Plan {
    let live: Vec<&Endpoint> = observed
        .endpoints
        .iter()
        .filter(|e| !e.state.is_gone())
        .collect();
    let (matching, stale): (Vec<&Endpoint>, Vec<&Endpoint>) =
        live.iter().partition(|e| is_same_endpoint(d, e));

    let (group, stale_groups) = match &d.groups {
        DesiredGroups::Provided(ids) => (
            GroupStep::Provided(ids.clone()),
            observed.groups.iter().map(|g| g.id.clone()).collect(),
        ),
        DesiredGroups::Generated {
            name,
            description,
            ingress,
        } => {
            let (mine, other_vpc): (Vec<&SecurityGroup>, Vec<&SecurityGroup>) =
                observed.groups.iter().partition(|g| g.vpc_id == d.vpc_id);
            let step = match mine.first() {
                Some(g) => GroupStep::Keep {
                    id: g.id.clone(),
                    rules: rule_changes(ingress, g),
                },
                None => GroupStep::Create {
                    name: name.clone(),
                    description: description.clone(),
                    ingress: ingress.clone(),
                    vanished: recorded
                        .group_id
                        .clone()
                        .filter(|old| other_vpc.iter().all(|g| &g.id != old)),
                },
            };
            (step, other_vpc.iter().map(|g| g.id.clone()).collect())
        }
    };

    let recorded_endpoint = recorded.endpoint_id.as_deref();
    let endpoint = match choose_endpoint(&matching, recorded_endpoint) {
        Some(keep) => EndpointStep::Keep {
            endpoint: keep.clone(),
            duplicates: matching
                .iter()
                .filter(|e| e.id != keep.id)
                .map(|e| e.id.clone())
                .collect(),
            adopted: recorded_endpoint != Some(keep.id.as_str()),
        },
        None => {
            let replaced = stale
                .iter()
                .any(|e| Some(e.id.as_str()) == recorded_endpoint);
            EndpointStep::Create {
                client_token: client_token(uid, recorded_endpoint),
                drift_from: recorded_endpoint.filter(|_| !replaced).map(str::to_owned),
            }
        }
    };

    Plan {
        group,
        replace: stale.iter().map(|e| e.id.clone()).collect(),
        endpoint,
        stale_groups,
    }
}

/// What `plan` would change in EC2, in the order [`super::apply`] does it;
/// empty when the Service's resources already match.
pub fn actions(d: &Desired, plan: &Plan) -> Vec<Action> {
    const ENDPOINT: &str = "vpc-endpoint";
    const GROUP: &str = "security-group";
    let mut out = Vec::new();
    let new_group = "(the new group)".to_owned();
    let group_ids = match &plan.group {
        GroupStep::Provided(ids) => ids.clone(),
        GroupStep::Keep { id, rules } => {
            if !rules.is_empty() {
                out.push(Action::new(
                    Verb::Modify,
                    GROUP,
                    Some(id),
                    describe_rules(rules),
                ));
            }
            vec![id.clone()]
        }
        GroupStep::Create {
            name,
            ingress,
            vanished,
            ..
        } => {
            let cidrs: Vec<&str> = ingress.iter().map(|r| r.cidr.as_str()).collect();
            let mut detail = format!(
                "{name} in {}, all traffic from {}",
                d.vpc_id,
                cidrs.join(",")
            );
            if let Some(old) = vanished {
                detail.push_str(&format!(" (replacing {old}, deleted outside hawser)"));
            }
            out.push(Action::new(Verb::Create, GROUP, None, detail));
            vec![new_group.clone()]
        }
    };
    for id in &plan.replace {
        out.push(Action::new(
            Verb::Delete,
            ENDPOINT,
            Some(id),
            "for another service or VPC: replaced",
        ));
    }
    match &plan.endpoint {
        EndpointStep::Keep {
            endpoint,
            duplicates,
            ..
        } => {
            for id in duplicates {
                out.push(Action::new(Verb::Delete, ENDPOINT, Some(id), "a duplicate"));
            }
            let change = endpoint_changes(d, endpoint, &group_ids);
            if !change.is_empty() {
                out.push(Action::new(
                    Verb::Modify,
                    ENDPOINT,
                    Some(&endpoint.id),
                    describe_changes(&change),
                ));
            }
        }
        EndpointStep::Create { drift_from, .. } => {
            let mut detail = format!(
                "{} in {}, subnets {}, security groups {}, private DNS {}",
                d.service_name,
                d.vpc_id,
                d.subnet_ids.join(","),
                group_ids.join(","),
                if d.private_dns { "on" } else { "off" }
            );
            if let Some(old) = drift_from {
                detail.push_str(&format!(" (replacing {old}, deleted outside hawser)"));
            }
            out.push(Action::new(Verb::Create, ENDPOINT, None, detail));
        }
    }
    for id in &plan.stale_groups {
        out.push(Action::new(Verb::Delete, GROUP, Some(id), "no longer used"));
    }
    out
}
