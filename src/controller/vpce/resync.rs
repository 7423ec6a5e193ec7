//! A resync pass of a Service whose annotations have not changed since it
//! settled: confirmed from the scope's shared snapshots (see
//! [`crate::controller::inventory`]) instead of two describes of its own.

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::time::Instant;

use super::apply::{unchanged, Applied, Recorded};
use super::desired::Desired;
use super::error::Error;
use super::plan::{needs_groups, Observed};
use crate::annotations::keys::{TAG_CLUSTER, TAG_UID};
use crate::aws::{carries, Ec2Api, Endpoint, Scope, SecurityGroup, Tags};
use crate::controller::inventory::Inventory;

/// What hawser's cluster tag marks in one scope, by the owner's uid tag.
type ByUid<T> = HashMap<String, Vec<T>>;

/// The scope-wide snapshots of endpoints and generated groups.
pub struct Snapshots {
    cluster: String,
    endpoints: Inventory<ByUid<Endpoint>>,
    groups: Inventory<ByUid<SecurityGroup>>,
}

impl Snapshots {
    pub fn new(cluster: &str, resync: Duration) -> Self {
        Self {
            cluster: cluster.to_owned(),
            endpoints: Inventory::new(resync),
            groups: Inventory::new(resync),
        }
    }

    /// `Some` when the snapshots (begun after the Service `settled`) show
    /// its endpoint available and nothing to change; `None` when the pass
    /// must look for itself. What they hold with `d`'s ownership tags is
    /// the answer [`super::apply::observe`] gets by describing them.
    pub async fn confirm<E: Ec2Api>(
        &self,
        ec2: &E,
        scope: &Scope,
        settled: Instant,
        d: &Desired,
        recorded: &Recorded,
        uid: &str,
    ) -> Result<Option<Applied>, Error> {
        let cluster = Tags::from([(TAG_CLUSTER.to_owned(), self.cluster.clone())]);
        let endpoints = self
            .endpoints
            .get(scope, settled, || async {
                Ok(by_uid(ec2.find_endpoints(&cluster).await?, |e| &e.tags))
            })
            .await?;
        let groups = match needs_groups(d, recorded) {
            true => {
                let groups = self
                    .groups
                    .get(scope, settled, || async {
                        Ok(by_uid(ec2.find_security_groups(&cluster).await?, |g| {
                            &g.tags
                        }))
                    })
                    .await?;
                owned(&groups, &d.ownership, |g| &g.tags)
            }
            false => vec![],
        };
        let observed = Observed {
            endpoints: owned(&endpoints, &d.ownership, |e| &e.tags),
            groups,
        };
        Ok(unchanged(d, &observed, recorded, uid))
    }
}

fn by_uid<T>(items: Vec<T>, tags: impl Fn(&T) -> &Tags) -> ByUid<T> {
    let mut out: ByUid<T> = HashMap::new();
    for item in items {
        if let Some(uid) = tags(&item).get(TAG_UID) {
            out.entry(uid.clone()).or_default().push(item);
        }
    }
    out
}

fn owned<T: Clone>(all: &Arc<ByUid<T>>, ownership: &Tags, tags: impl Fn(&T) -> &Tags) -> Vec<T> {
    let Some(candidates) = ownership.get(TAG_UID).and_then(|uid| all.get(uid)) else {
        return vec![];
    };
    candidates
        .iter()
        .filter(|item| carries(tags(item), ownership))
        .cloned()
        .collect()
}
