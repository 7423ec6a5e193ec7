//! Makes AWS match [`Desired`]: find by tags, adopt or create, modify in
//! place, replace what cannot be modified. Idempotent; an unchanged
//! Service costs two Describe calls (one with provided groups) and no
//! mutating call.

use super::desired::{
    choose_endpoint, client_token, describe_changes, endpoint_changes, is_same_endpoint,
    rule_changes, Desired, DesiredGroups,
};
use super::effects::Effect;
use super::error::Error;
use crate::aws::{
    AwsErrorKind, CidrRule, CreateEndpoint, CreateSecurityGroup, Ec2Api, Endpoint, SecurityGroup,
};

/// What the Service's output annotations last recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    pub endpoint_id: Option<String>,
    pub group_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The endpoint as it now is (state as last described or created).
    pub endpoint: Endpoint,
    /// The generated group; `None` with provided groups, unless an old
    /// generated group could not be deleted yet (still in use).
    pub group_id: Option<String>,
    pub effects: Vec<Effect>,
    /// An old group could not be deleted yet; look again soon.
    pub unfinished: bool,
}

pub async fn apply<E: Ec2Api>(
    ec2: &E,
    d: &Desired,
    uid: &str,
    recorded: &Recorded,
) -> Result<Applied, Error> {
    let mut effects = Vec::new();
    let found = ec2.find_endpoints(&d.ownership).await?;
    let live: Vec<&Endpoint> = found.iter().filter(|e| !e.state.is_gone()).collect();
    let (matching, stale): (Vec<&Endpoint>, Vec<&Endpoint>) =
        live.iter().partition(|e| is_same_endpoint(d, e));

    let (group_ids, mut group_id, stale_groups) = match &d.groups {
        DesiredGroups::Generated {
            name,
            description,
            ingress,
        } => {
            let groups = ec2.find_security_groups(&d.ownership).await?;
            let (id, stale) = ensure_group(
                ec2,
                d,
                name,
                description,
                ingress,
                groups,
                recorded,
                &mut effects,
            )
            .await?;
            (vec![id.clone()], Some(id), stale)
        }
        DesiredGroups::Provided(ids) => {
            // A group generated before the switch to provided groups is
            // looked for only while the Service still records it.
            let stale = match recorded.group_id {
                Some(_) => ec2.find_security_groups(&d.ownership).await?,
                None => vec![],
            };
            (ids.clone(), None, stale)
        }
    };

    for old in &stale {
        ec2.delete_endpoint(&old.id).await?;
        effects.push(Effect::EndpointReplaced {
            old: old.id.clone(),
        });
    }

    let recorded_endpoint = recorded.endpoint_id.as_deref();
    let endpoint = match choose_endpoint(&matching, recorded_endpoint) {
        Some(keep) => {
            for dup in matching.iter().filter(|e| e.id != keep.id) {
                ec2.delete_endpoint(&dup.id).await?;
                effects.push(Effect::DuplicateEndpointDeleted { id: dup.id.clone() });
            }
            if recorded_endpoint != Some(keep.id.as_str()) {
                effects.push(Effect::EndpointAdopted {
                    id: keep.id.clone(),
                });
            }
            let change = endpoint_changes(d, keep, &group_ids);
            let mut endpoint = keep.clone();
            if !change.is_empty() {
                ec2.modify_endpoint(&change)
                    .await
                    .map_err(Error::from_write)?;
                effects.push(Effect::EndpointModified {
                    id: keep.id.clone(),
                    detail: describe_changes(&change),
                });
                endpoint.subnet_ids = d.subnet_ids.clone();
                endpoint.security_group_ids = group_ids.clone();
                endpoint.private_dns = d.private_dns;
            }
            endpoint
        }
        None => {
            let created = ec2
                .create_endpoint(&CreateEndpoint {
                    vpc_id: d.vpc_id.clone(),
                    service_name: d.service_name.clone(),
                    subnet_ids: d.subnet_ids.clone(),
                    security_group_ids: group_ids.clone(),
                    private_dns: d.private_dns,
                    client_token: client_token(uid, recorded_endpoint),
                    tags: d.tags.clone(),
                })
                .await
                .map_err(Error::from_write)?;
            let replaced = stale
                .iter()
                .any(|e| Some(e.id.as_str()) == recorded_endpoint);
            effects.push(match recorded_endpoint {
                Some(old) if !replaced && old != created.id => Effect::DriftRepaired {
                    what: "VPC endpoint",
                    old: old.to_owned(),
                    new: created.id.clone(),
                },
                _ => Effect::EndpointCreated {
                    id: created.id.clone(),
                },
            });
            created
        }
    };

    // Old generated groups go once nothing uses them; AWS answers
    // DependencyViolation until the old endpoint's interfaces are gone,
    // and the next pass tries again.
    let mut unfinished = false;
    for g in stale_groups {
        match ec2.delete_security_group(&g.id).await {
            Ok(()) => effects.push(Effect::SecurityGroupDeleted { id: g.id }),
            Err(e) if e.kind == AwsErrorKind::DependencyViolation => {
                unfinished = true;
                group_id.get_or_insert(g.id);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Applied {
        endpoint,
        group_id,
        effects,
        unfinished,
    })
}

/// Makes sure the generated group exists in the desired VPC with exactly
/// the desired ingress; returns its id and the groups to delete (ours, but
/// in another VPC).
#[allow(clippy::too_many_arguments)]
async fn ensure_group<E: Ec2Api>(
    ec2: &E,
    d: &Desired,
    name: &str,
    description: &str,
    ingress: &[CidrRule],
    groups: Vec<SecurityGroup>,
    recorded: &Recorded,
    effects: &mut Vec<Effect>,
) -> Result<(String, Vec<SecurityGroup>), Error> {
    let (mine, stale): (Vec<SecurityGroup>, Vec<SecurityGroup>) =
        groups.into_iter().partition(|g| g.vpc_id == d.vpc_id);
    if let Some(group) = mine.first() {
        let change = rule_changes(ingress, group);
        if !change.revoke_ingress.is_empty() {
            ec2.revoke_ingress(&group.id, &change.revoke_ingress)
                .await?;
        }
        if !change.authorize_ingress.is_empty() {
            ec2.authorize_ingress(&group.id, &change.authorize_ingress)
                .await?;
        }
        if !change.authorize_egress.is_empty() {
            ec2.authorize_egress(&group.id, &change.authorize_egress)
                .await?;
        }
        if !change.is_empty() {
            effects.push(Effect::SecurityGroupRulesChanged {
                id: group.id.clone(),
                detail: describe_rules(&change),
            });
        }
        return Ok((group.id.clone(), stale));
    }
    let id = ec2
        .create_security_group(&CreateSecurityGroup {
            vpc_id: d.vpc_id.clone(),
            name: name.to_owned(),
            description: description.to_owned(),
            tags: d.tags.clone(),
        })
        .await
        .map_err(Error::from_write)?;
    // AWS gives a new group the all-traffic egress rule; ingress is ours.
    ec2.authorize_ingress(&id, ingress).await?;
    let vanished = recorded
        .group_id
        .as_ref()
        .filter(|old| stale.iter().all(|g| &&g.id != old));
    effects.push(match vanished {
        Some(old) => Effect::DriftRepaired {
            what: "security group",
            old: old.clone(),
            new: id.clone(),
        },
        None => Effect::SecurityGroupCreated { id: id.clone() },
    });
    Ok((id, stale))
}

fn describe_rules(change: &super::desired::RuleChanges) -> String {
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
