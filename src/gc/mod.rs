//! `hawser gc` (and `--gc-period` in the controller): finds the AWS
//! resources tagged `hawser.io/cluster=<cluster>` whose owner is gone, and
//! deletes them.
//!
//! 1. [`collect::read_cluster`]: the owners (Namespaces, Services,
//!    Deployments; metadata only) and the accounts and regions they reach.
//! 2. [`collect::read_scope`] in each: endpoints, groups and stacks with
//!    this cluster's tag.
//! 3. [`judge::judge`] (pure) each against its `hawser.io/owner` and
//!    `hawser.io/uid` tags. A resource called garbage is judged again
//!    against its owner looked up afresh (it may have been created after
//!    the list), and a stack's policy is read: a released one is kept.
//! 4. [`sweep::sweep`], unless `--dry-run`.
//!
//! Never touched: resources of another cluster (another tag), released
//! ones (`hawser.io/deletion-policy: retain`: untagged endpoints and
//! groups, marked stacks), stacks with a policy someone else set, and
//! anything younger than `--older-than`.

pub mod cli;
pub mod collect;
pub mod judge;
pub mod sweep;
#[cfg(test)]
mod tests;

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, SystemTime},
};

use kube::Client;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use self::collect::ScanError;
use self::judge::{describe_scope, judge, with_policy, Found, Owners, Resource, Verdict};
use self::sweep::Action;
use crate::aws::{CfnProvider, CloudFormationApi, Ec2Provider, Scope};
use crate::controller::stack::released;
use crate::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct Settings {
    pub cluster: String,
    pub default_region: String,
    /// Regions to look in beyond those the cluster names.
    pub extra_regions: Vec<String>,
    pub older_than: Duration,
    pub dry_run: bool,
    /// Look for VPC endpoints and their security groups.
    pub endpoints: bool,
    /// Look for stacks.
    pub stacks: bool,
    /// Judge only resources whose owner is in this namespace (and read
    /// only its Services and Deployments).
    pub namespace: Option<String>,
}

/// One resource tagged for the cluster, and what became of it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub resource: Resource,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `region`, or `region as role-arn`.
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip)]
    pub verdict: Verdict,
    /// Whether it is garbage (deleted, or to be).
    pub garbage: bool,
    /// Why, as a word: owner-gone, owner-replaced, no-longer-asked,
    /// moved; in-use, released, not-owned, policy-set-outside-hawser,
    /// too-young, scope-unknown.
    pub reason: &'static str,
    /// Why, as a sentence.
    pub detail: String,
    #[serde(flatten)]
    pub action: Action,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub cluster: String,
    pub dry_run: bool,
    /// Where gc looked.
    pub scopes: Vec<String>,
    pub resources: Vec<Entry>,
    /// Accounts or regions that could not be read.
    pub errors: Vec<ScanError>,
}

impl Report {
    pub fn garbage(&self) -> impl Iterator<Item = &Entry> {
        self.resources
            .iter()
            .filter(|e| matches!(e.verdict, Verdict::Orphan(_)))
    }

    /// A scope could not be read, or a deletion failed.
    pub fn failed(&self) -> bool {
        !self.errors.is_empty()
            || self
                .resources
                .iter()
                .any(|e| matches!(e.action, Action::Failed { .. }))
    }
}

/// One collection: read, judge, and (unless `dry_run`) delete.
pub async fn collect_garbage<P: Ec2Provider + CfnProvider>(
    client: &Client,
    aws: &P,
    settings: &Settings,
) -> Result<Report, kube::Error> {
    // The cluster first: an object created after this list is caught by
    // the fresh look-up of every owner below, before anything goes.
    let cluster = collect::read_cluster(client, settings).await?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for scope in &cluster.scopes {
        match collect::read_scope(aws, scope, settings).await {
            Ok(f) => found.extend(f),
            Err(e) => errors.push(ScanError {
                scope: describe_scope(scope),
                error: e.to_string(),
            }),
        }
    }
    decide(client, aws, settings, &cluster, found, errors).await
}

/// Judges what was found against `cluster` (listed before AWS was read),
/// each garbage verdict confirmed against its owner looked up afresh, and
/// (unless `dry_run`) deletes the garbage, looking each owner up once more
/// right before its scope's deletions.
pub async fn decide<P: Ec2Provider + CfnProvider>(
    client: &Client,
    aws: &P,
    settings: &Settings,
    cluster: &collect::Cluster,
    mut found: Vec<Found>,
    mut errors: Vec<ScanError>,
) -> Result<Report, kube::Error> {
    judge::date_groups(&mut found);
    let rules = judge::Rules {
        now: SystemTime::now(),
        older_than: settings.older_than,
        namespace: settings.namespace.as_deref(),
    };
    let mut verdicts = Vec::with_capacity(found.len());
    let mut fresh: BTreeMap<String, Owners> = BTreeMap::new();
    for f in &found {
        let mut verdict = judge(f, &cluster.owners, rules);
        if verdict.is_garbage() {
            let reference = f.owner().unwrap_or_default().to_owned();
            if !fresh.contains_key(&reference) {
                fresh.insert(
                    reference.clone(),
                    owner_now(client, &reference, settings).await?,
                );
            }
            verdict = judge(f, &fresh[&reference], rules);
        }
        if matches!(verdict, Verdict::Orphan(_)) && f.resource == judge::Resource::Stack {
            verdict = match aws.cfn(&f.scope).await.stack_policy(&f.id).await {
                Ok(policy) => with_policy(verdict, released::read(policy.as_deref())),
                Err(e) => {
                    errors.push(ScanError {
                        scope: describe_scope(&f.scope),
                        error: format!("reading the policy of stack {}: {e}", f.id),
                    });
                    Verdict::Keep(judge::Keep::ScopeUnknown)
                }
            };
        }
        verdicts.push(verdict);
    }
    judge::same_resource_once(&found, &mut verdicts);

    let mut actions = vec![Action::None; found.len()];
    let mut by_scope: BTreeMap<(String, Option<String>), (Scope, Vec<usize>)> = BTreeMap::new();
    for (i, (f, v)) in found.iter().zip(&verdicts).enumerate() {
        if matches!(v, Verdict::Orphan(_)) {
            if settings.dry_run {
                actions[i] = Action::WouldDelete;
            } else {
                by_scope
                    .entry((f.scope.region.clone(), f.scope.role_arn.clone()))
                    .or_insert_with(|| (f.scope.clone(), vec![]))
                    .1
                    .push(i);
            }
        }
    }
    for (scope, indices) in by_scope.values() {
        // An earlier scope's sweep may have taken minutes: each owner once
        // more, right before its resources go.
        let mut still = Vec::new();
        for &i in indices {
            let owners = owner_now(client, found[i].owner().unwrap_or_default(), settings).await?;
            match judge(&found[i], &owners, rules) {
                v if v.is_garbage() => still.push(i),
                v => verdicts[i] = v,
            }
        }
        let indices = &still;
        let garbage: Vec<&Found> = indices.iter().map(|&i| &found[i]).collect();
        let done = sweep::sweep(aws, scope, &settings.cluster, &garbage).await;
        for (&i, action) in indices.iter().zip(done) {
            actions[i] = action;
        }
    }

    let resources = found
        .into_iter()
        .zip(verdicts)
        .zip(actions)
        .map(|((f, verdict), action)| Entry {
            resource: f.resource,
            owner: f.owner().map(str::to_owned),
            scope: describe_scope(&f.scope),
            id: f.id,
            name: f.name,
            garbage: verdict.is_garbage(),
            reason: verdict.code(),
            detail: verdict.to_string(),
            verdict,
            action,
        })
        .collect();
    Ok(Report {
        cluster: settings.cluster.clone(),
        dry_run: settings.dry_run,
        scopes: cluster.scopes.iter().map(describe_scope).collect(),
        resources,
        errors,
    })
}

/// The owner `reference` names, looked up now, as an [`Owners`] of one
/// (or none).
async fn owner_now(
    client: &Client,
    reference: &str,
    settings: &Settings,
) -> Result<Owners, kube::Error> {
    let owner = collect::owner_now(client, reference, settings).await?;
    Ok(owner
        .map(|o| Owners::from([(reference.to_owned(), o)]))
        .unwrap_or_default())
}

/// The report as text: one line per garbage resource, then what was kept
/// by reason, then the scopes that could not be read.
pub fn render_text(report: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for e in report.garbage() {
        let what = match &e.action {
            Action::WouldDelete => "would delete".to_owned(),
            Action::Deleted => "deleted".to_owned(),
            Action::DeleteStarted => "deleting".to_owned(),
            Action::Failed { error } => format!("FAILED to delete ({error})"),
            Action::None => "left".to_owned(),
        };
        let name = e
            .name
            .as_deref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{what}: {} {}{name} in {}, owner {}: {}",
            e.resource.as_str(),
            e.id,
            e.scope,
            e.owner.as_deref().unwrap_or("-"),
            e.detail,
        );
    }
    let mut kept: BTreeMap<String, usize> = BTreeMap::new();
    for e in &report.resources {
        if let Verdict::Keep(k) = &e.verdict {
            let reason = match k {
                judge::Keep::TooYoung { .. } => "garbage, but younger than --older-than".to_owned(),
                other => other.to_string(),
            };
            *kept.entry(reason).or_default() += 1;
        }
    }
    let garbage = report.garbage().count();
    let _ =
        writeln!(
        out,
        "{} resources tagged hawser.io/cluster={} in {} account/region pairs; {garbage} garbage{}",
        report.resources.len(),
        report.cluster,
        report.scopes.len(),
        if report.dry_run { " (--dry-run: nothing deleted)" } else { "" },
    );
    for (reason, n) in kept {
        let _ = writeln!(out, "kept {n}: {reason}");
    }
    for e in &report.errors {
        let _ = writeln!(out, "ERROR reading {}: {}", e.scope, e.error);
    }
    out
}

/// `--gc-period`: a collection every `period` until `shutdown`, counted
/// in `hawser_gc_resources_total`.
pub async fn run_periodic<P: Ec2Provider + CfnProvider>(
    client: Client,
    aws: Arc<P>,
    settings: Settings,
    period: Duration,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let run = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = collect_garbage(&client, aws.as_ref(), &settings) => r,
        };
        match run {
            Ok(report) => {
                for e in &report.resources {
                    let result = match (&e.verdict, &e.action) {
                        (_, Action::Deleted | Action::DeleteStarted) => "deleted",
                        (_, Action::Failed { .. }) => "failed",
                        (Verdict::Keep(judge::Keep::TooYoung { .. }), _) => "young",
                        _ => continue,
                    };
                    metrics
                        .gc_resources
                        .with_label_values(&[e.resource.as_str(), result])
                        .inc();
                }
                for e in report.garbage() {
                    tracing::info!(
                        resource = e.resource.as_str(), id = %e.id, scope = %e.scope,
                        owner = e.owner.as_deref().unwrap_or("-"), action = ?e.action,
                        "garbage collection"
                    );
                }
                for e in &report.errors {
                    tracing::warn!(scope = %e.scope, error = %e.error, "garbage collection could not read");
                }
            }
            Err(e) => tracing::warn!(error = %e, "garbage collection could not read the cluster"),
        }
    }
}
