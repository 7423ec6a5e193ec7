//! Makes AWS match [`Desired`]: observe (find by tags), [`plan`] (pure:
//! adopt or create, modify in place, replace what cannot be modified),
//! execute. Idempotent; an unchanged Service costs two Describe calls (one
//! with provided groups) and no mutating call, and its resync shares them
//! with every Service in its scope ([`super::resync`]).

use super::desired::{describe_changes, describe_rules, endpoint_changes, Desired, RuleChanges};
use super::effects::Effect;
use super::error::Error;
use super::plan::{actions, needs_groups, plan, EndpointStep, GroupStep, Observed, Plan};
use crate::aws::{
    AwsErrorKind, CreateEndpoint, CreateSecurityGroup, Ec2Api, Endpoint, EndpointState,
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
    let observed = observe(ec2, d, recorded).await?;
    execute(ec2, d, plan(d, &observed, recorded, uid)).await
}

/// What EC2 holds with the Service's ownership tags: reads only.
pub async fn observe<E: Ec2Api>(
    ec2: &E,
    d: &Desired,
    recorded: &Recorded,
) -> Result<Observed, Error> {
    Ok(Observed {
        endpoints: ec2.find_endpoints(&d.ownership).await?,
        groups: match needs_groups(d, recorded) {
            true => ec2.find_security_groups(&d.ownership).await?,
            false => vec![],
        },
    })
}

/// `Some` when `observed` asks for nothing: the endpoint is available and
/// [`plan`] has no step to take. What a pass that described and found no
/// change would report (pure).
pub fn unchanged(
    d: &Desired,
    observed: &Observed,
    recorded: &Recorded,
    uid: &str,
) -> Option<Applied> {
    let plan = plan(d, observed, recorded, uid);
    if !actions(d, &plan).is_empty() {
        return None;
    }
    let EndpointStep::Keep {
        endpoint,
        adopted: false,
        ..
    } = plan.endpoint
    else {
        return None;
    };
    let group_id = match plan.group {
        GroupStep::Keep { id, .. } => Some(id),
        GroupStep::Provided(_) => None,
        GroupStep::Create { .. } => return None,
    };
    (endpoint.state == EndpointState::Available).then_some(Applied {
        endpoint,
        group_id,
        effects: vec![],
        unfinished: false,
    })
}

/// Carries out `plan` in order; the effects say what changed.
async fn execute<E: Ec2Api>(ec2: &E, d: &Desired, plan: Plan) -> Result<Applied, Error> {
    let mut effects = Vec::new();
    let (group_ids, mut group_id) = match plan.group {
        GroupStep::Provided(ids) => (ids, None),
        GroupStep::Keep { id, rules } => {
            change_rules(ec2, &id, &rules).await?;
            if !rules.is_empty() {
                effects.push(Effect::SecurityGroupRulesChanged {
                    id: id.clone(),
                    detail: describe_rules(&rules),
                });
            }
            (vec![id.clone()], Some(id))
        }
        GroupStep::Create {
            name,
            description,
            ingress,
            vanished,
        } => {
            let id = ec2
                .create_security_group(&CreateSecurityGroup {
                    vpc_id: d.vpc_id.clone(),
                    name,
                    description,
                    tags: d.tags.clone(),
                })
                .await
                .map_err(|e| match e.kind {
                    // The name is taken: by a create of ours whose answer
                    // was lost (the group carries our tags and the next
                    // pass adopts it), or by someone else's group (retried,
                    // with AWS's words in the Event). Not the user's input.
                    AwsErrorKind::Duplicate => Error::Aws(e),
                    _ => Error::from_write(e),
                })?;
            // AWS gives a new group the all-traffic egress rule; ingress
            // is ours.
            ec2.authorize_ingress(&id, &ingress).await?;
            effects.push(match vanished {
                Some(old) => Effect::DriftRepaired {
                    what: "security group",
                    old,
                    new: id.clone(),
                },
                None => Effect::SecurityGroupCreated { id: id.clone() },
            });
            (vec![id.clone()], Some(id))
        }
    };

    for old in plan.replace {
        ec2.delete_endpoint(&old).await?;
        effects.push(Effect::EndpointReplaced { old });
    }

    let endpoint = match plan.endpoint {
        EndpointStep::Keep {
            endpoint: mut keep,
            duplicates,
            adopted,
        } => {
            for id in duplicates {
                ec2.delete_endpoint(&id).await?;
                effects.push(Effect::DuplicateEndpointDeleted { id });
            }
            if adopted {
                effects.push(Effect::EndpointAdopted {
                    id: keep.id.clone(),
                });
            }
            let change = endpoint_changes(d, &keep, &group_ids);
            if !change.is_empty() {
                ec2.modify_endpoint(&change)
                    .await
                    .map_err(Error::from_write)?;
                effects.push(Effect::EndpointModified {
                    id: keep.id.clone(),
                    detail: describe_changes(&change),
                });
                keep.subnet_ids = d.subnet_ids.clone();
                keep.security_group_ids = group_ids.clone();
                keep.private_dns = d.private_dns;
            }
            keep
        }
        EndpointStep::Create {
            client_token,
            drift_from,
        } => {
            let created = ec2
                .create_endpoint(&CreateEndpoint {
                    vpc_id: d.vpc_id.clone(),
                    service_name: d.service_name.clone(),
                    subnet_ids: d.subnet_ids.clone(),
                    security_group_ids: group_ids.clone(),
                    private_dns: d.private_dns,
                    client_token,
                    tags: d.tags.clone(),
                })
                .await
                .map_err(Error::from_write)?;
            effects.push(match drift_from.filter(|old| old != &created.id) {
                Some(old) => Effect::DriftRepaired {
                    what: "VPC endpoint",
                    old,
                    new: created.id.clone(),
                },
                None => Effect::EndpointCreated {
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
    for id in plan.stale_groups {
        match ec2.delete_security_group(&id).await {
            Ok(()) => effects.push(Effect::SecurityGroupDeleted { id }),
            Err(e) if e.kind == AwsErrorKind::DependencyViolation => {
                unfinished = true;
                group_id.get_or_insert(id);
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

/// Brings the generated group's rules to the desired ones.
async fn change_rules<E: Ec2Api>(ec2: &E, id: &str, rules: &RuleChanges) -> Result<(), Error> {
    if !rules.revoke_ingress.is_empty() {
        ec2.revoke_ingress(id, &rules.revoke_ingress).await?;
    }
    if !rules.authorize_ingress.is_empty() {
        ec2.authorize_ingress(id, &rules.authorize_ingress).await?;
    }
    if !rules.authorize_egress.is_empty() {
        ec2.authorize_egress(id, &rules.authorize_egress).await?;
    }
    Ok(())
}
