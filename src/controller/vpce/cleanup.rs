//! Removes (or, with `retain`, lets go of) what hawser made for a Service.
//! Works from the ownership tags alone, so it needs neither a valid spec
//! nor a previous successful apply. Provided groups never carry hawser's
//! tags, so they are never touched.

use super::desired::TAG_RELEASED_FROM;
use super::effects::Effect;
use super::error::Error;
use crate::annotations::{keys, DeletionPolicy};
use crate::aws::{AwsErrorKind, Ec2Api, EndpointState, Tags};
use crate::controller::planned::{Action, Verb};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cleanup {
    /// Nothing of the Service's is left; the finalizer may go.
    Done(Vec<Effect>),
    /// Deletion is under way (an endpoint still deleting, a group still
    /// in use); call again later.
    Waiting { effects: Vec<Effect>, why: String },
}

/// What [`cleanup`] would do, with reads only: each live endpoint and
/// each group with the Service's tags deleted, or released with `retain`.
pub async fn planned<E: Ec2Api>(
    ec2: &E,
    ownership: &Tags,
    policy: DeletionPolicy,
) -> Result<Vec<Action>, Error> {
    let verb = match policy {
        DeletionPolicy::Retain => Verb::Release,
        DeletionPolicy::Delete => Verb::Delete,
    };
    let why = "the Service is deleted or no longer asks for it";
    let mut out = Vec::new();
    for e in ec2.find_endpoints(ownership).await? {
        if !e.state.is_gone() {
            out.push(Action::new(verb, "vpc-endpoint", Some(&e.id), why));
        }
    }
    for g in ec2.find_security_groups(ownership).await? {
        out.push(Action::new(verb, "security-group", Some(&g.id), why));
    }
    Ok(out)
}

pub async fn cleanup<E: Ec2Api>(
    ec2: &E,
    ownership: &Tags,
    owner_reference: &str,
    policy: DeletionPolicy,
) -> Result<Cleanup, Error> {
    let endpoints = ec2.find_endpoints(ownership).await?;
    let groups = ec2.find_security_groups(ownership).await?;
    let mut effects = Vec::new();

    if policy == DeletionPolicy::Retain {
        let ids: Vec<String> = endpoints
            .iter()
            .filter(|e| !e.state.is_gone())
            .map(|e| e.id.clone())
            .chain(groups.iter().map(|g| g.id.clone()))
            .collect();
        if !ids.is_empty() {
            // Add the release tag before removing ownership, so a resource
            // never carries neither.
            let released = Tags::from([(TAG_RELEASED_FROM.to_owned(), owner_reference.to_owned())]);
            ec2.retag(&ids, &released, &[keys::TAG_OWNER, keys::TAG_UID])
                .await?;
        }
        effects.push(Effect::ResourcesRetained { ids });
        return Ok(Cleanup::Done(effects));
    }

    let mut deleted_any = false;
    for e in endpoints.iter().filter(|e| !e.state.is_gone()) {
        ec2.delete_endpoint(&e.id).await?;
        effects.push(Effect::EndpointDeleted { id: e.id.clone() });
        deleted_any = true;
    }
    let still_there = if deleted_any || endpoints.iter().any(|e| e.state == EndpointState::Deleting)
    {
        // One more look: deletion is often immediate, and this saves a
        // requeue round trip.
        ec2.find_endpoints(ownership)
            .await?
            .into_iter()
            .filter(|e| e.state != EndpointState::Deleted)
            .map(|e| e.id)
            .collect()
    } else {
        vec![]
    };
    if !still_there.is_empty() {
        return Ok(Cleanup::Waiting {
            effects,
            why: format!("waiting for {} to be deleted", still_there.join(", ")),
        });
    }

    for g in &groups {
        match ec2.delete_security_group(&g.id).await {
            Ok(()) => effects.push(Effect::SecurityGroupDeleted { id: g.id.clone() }),
            Err(e) if e.kind == AwsErrorKind::DependencyViolation => {
                return Ok(Cleanup::Waiting {
                    effects,
                    why: format!("security group {} is still in use", g.id),
                });
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Cleanup::Done(effects))
}
