//! Leader election on a `coordination.k8s.io/v1` Lease, done the way
//! client-go's `leaderelection` does it, so that only one replica runs the
//! controllers and two replicas never both act on AWS.
//!
//! Every `retry_period` each replica reads the Lease:
//! - the holder writes a new `renewTime`;
//! - a follower takes the Lease when it is free (released), or when its
//!   record has not changed for a whole term by the follower's own
//!   monotonic clock (the holder died). Wall clocks, and so clock skew
//!   between nodes, never decide anything.
//!
//! Every write carries the `resourceVersion` that was read, so of two
//! replicas racing for a free or expired Lease exactly one wins; the other
//! gets 409 Conflict and stays a follower.
//!
//! The holder stops its controllers once no renewal has succeeded for
//! `renew_deadline` (the term minus the grace), timed from the *start* of
//! the last successful renewal. A follower can take over no earlier than a
//! whole term after it saw that renewal, so the old holder has stopped by
//! then. A renewal that fails or hangs is retried every `retry_period`
//! until the deadline, so one slow apiserver answer no longer costs the
//! Lease.

use std::{future::Future, sync::Arc, time::Duration};

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
};
use kube::{
    api::{Patch, PatchParams, PostParams},
    Api, Client,
};
use tokio::{task::JoinHandle, time::Instant};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct LeaderConfig {
    pub namespace: String,
    pub lease_name: String,
    /// Unique per replica: the pod name plus a random suffix.
    pub identity: String,
    /// The term: how long a holder may go without renewing before another
    /// replica takes over.
    pub duration: Duration,
    /// How long before the term ends the holder stops its controllers when
    /// it could not renew; also the time they get to stop.
    pub grace: Duration,
}

impl LeaderConfig {
    /// How often the holder renews and a follower looks: a quarter of the
    /// grace, between 200 ms and 2 s (client-go: 2 s for a 15 s term), so
    /// the holder tries several times before its deadline.
    pub fn retry_period(&self) -> Duration {
        (self.grace / 4).clamp(Duration::from_millis(200), Duration::from_secs(2))
    }

    /// The holder stops its controllers once no renewal has succeeded for
    /// this long: the term minus the grace.
    pub fn renew_deadline(&self) -> Duration {
        self.duration.saturating_sub(self.grace)
    }
}

/// What a replica does with the Lease it just read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Ours: write a new renewTime.
    Renew,
    /// Free, or its holder's term ran out unrenewed: take it.
    Acquire,
    /// Another replica holds it and its term is running.
    Follow,
}

/// Pure decision on a Lease's spec. `unchanged_for` is how long, by this
/// replica's monotonic clock, the Lease's record has been the same.
pub fn step(spec: &LeaseSpec, identity: &str, unchanged_for: Duration, term: Duration) -> Step {
    match spec.holder_identity.as_deref() {
        None | Some("") => Step::Acquire,
        Some(holder) if holder == identity => Step::Renew,
        Some(_) => {
            let term = spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .filter(|s| *s > 0)
                .map_or(term, Duration::from_secs);
            if unchanged_for >= term {
                Step::Acquire
            } else {
                Step::Follow
            }
        }
    }
}

/// One replica's view of the Lease between attempts.
struct Elector {
    api: Api<Lease>,
    cfg: LeaderConfig,
    /// The Lease's resourceVersion as last read, and when this replica
    /// first saw it.
    observed: Option<(String, Instant)>,
    /// When the last successful write of ours started.
    renewed: Option<Instant>,
}

/// What one attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// We hold the Lease: just acquired or renewed.
    Holding,
    /// Another replica holds it, or won the race for it.
    Following,
}

impl Elector {
    fn new(client: Client, cfg: LeaderConfig) -> Self {
        Self {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            observed: None,
            renewed: None,
        }
    }

    /// Renews, acquires or follows the Lease.
    async fn attempt(&mut self) -> Result<Found, kube::Error> {
        // Holding it: renew against the version we last wrote, one request.
        // Only a conflict (someone else wrote the Lease) needs a fresh read.
        if let (Some(_), Some((version, _))) = (self.renewed, self.observed.clone()) {
            if let Some(found) = self.write(&version, Step::Renew, 0).await? {
                return Ok(found);
            }
        }
        let Some(lease) = self.api.get_opt(&self.cfg.lease_name).await? else {
            return self.create().await;
        };
        let version = lease.metadata.resource_version.clone().unwrap_or_default();
        let seen_at = match &self.observed {
            Some((v, at)) if *v == version => *at,
            _ => Instant::now(),
        };
        self.observed = Some((version.clone(), seen_at));
        let spec = lease.spec.unwrap_or_default();
        match step(
            &spec,
            &self.cfg.identity,
            seen_at.elapsed(),
            self.cfg.duration,
        ) {
            Step::Follow => Ok(Found::Following),
            step => {
                let transitions = spec.lease_transitions.unwrap_or(0);
                let found = self.write(&version, step, transitions).await?;
                Ok(found.unwrap_or(Found::Following))
            }
        }
    }

    /// Writes us as the holder, on condition that the Lease is still at
    /// `version`: `None` on 409 Conflict (someone wrote it since). A Lease
    /// deleted meanwhile is lost: another replica may be creating it now.
    async fn write(
        &mut self,
        version: &str,
        step: Step,
        transitions: i32,
    ) -> Result<Option<Found>, kube::Error> {
        // Others see this write only once it is made, so the term it buys
        // starts no earlier than now.
        let started = Instant::now();
        let now = MicroTime(jiff::Timestamp::now());
        let mut patch = serde_json::json!({
            "metadata": { "resourceVersion": version },
            "spec": {
                "holderIdentity": self.cfg.identity,
                "renewTime": now,
                "leaseDurationSeconds": self.term_secs(),
            },
        });
        if step == Step::Acquire {
            patch["spec"]["acquireTime"] = serde_json::json!(now);
            patch["spec"]["leaseTransitions"] = serde_json::json!(transitions.saturating_add(1));
        }
        match self
            .api
            .patch(
                &self.cfg.lease_name,
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await
        {
            Ok(written) => Ok(Some(self.wrote(&written, started))),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(None),
            Err(kube::Error::Api(e)) if e.code == 404 => {
                self.renewed = None;
                Ok(Some(Found::Following))
            }
            Err(e) => Err(e),
        }
    }

    /// Creates the absent Lease with us as its holder.
    async fn create(&mut self) -> Result<Found, kube::Error> {
        let started = Instant::now();
        let now = MicroTime(jiff::Timestamp::now());
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.cfg.lease_name.clone()),
                namespace: Some(self.cfg.namespace.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.cfg.identity.clone()),
                lease_duration_seconds: Some(self.term_secs()),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(written) => Ok(self.wrote(&written, started)),
            // Another replica created it first.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(Found::Following),
            Err(e) => Err(e),
        }
    }

    fn wrote(&mut self, written: &Lease, started: Instant) -> Found {
        self.renewed = Some(started);
        let version = written
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default();
        self.observed = Some((version, Instant::now()));
        Found::Holding
    }

    /// Clears the holder, so a follower takes over at its next look
    /// instead of a whole term later. Only while the Lease is still ours.
    async fn release(&mut self) -> Result<bool, kube::Error> {
        let Some(lease) = self.api.get_opt(&self.cfg.lease_name).await? else {
            return Ok(false);
        };
        let ours = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref())
            == Some(self.cfg.identity.as_str());
        if !ours {
            return Ok(false);
        }
        let patch = serde_json::json!({
            "metadata": { "resourceVersion": lease.metadata.resource_version },
            "spec": {
                "holderIdentity": null,
                "acquireTime": null,
                "renewTime": null,
                "leaseDurationSeconds": null,
            },
        });
        self.api
            .patch(
                &self.cfg.lease_name,
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await?;
        Ok(true)
    }

    fn term_secs(&self) -> i32 {
        i32::try_from(self.cfg.duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// Until when the controllers may run: the renew deadline after the
    /// start of our last successful write.
    fn deadline(&self) -> Option<Instant> {
        self.renewed.map(|r| r + self.cfg.renew_deadline())
    }
}

/// Runs `lead(token)` whenever this replica holds the Lease, and cancels
/// the token when it stops holding it or `shutdown` fires. On shutdown the
/// controllers are stopped first, then the Lease is released so another
/// replica takes over at once.
pub async fn run<F, Fut>(
    client: Client,
    cfg: LeaderConfig,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    mut lead: F,
) where
    F: FnMut(CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut elector = Elector::new(client, cfg.clone());
    let mut running: Option<(CancellationToken, JoinHandle<()>)> = None;
    let mut tick = tokio::time::interval(cfg.retry_period());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failures = 0u32;
    metrics.leader.set(0);

    loop {
        let deadline = running.as_ref().and(elector.deadline());
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
            _ = sleep_until(deadline) => {}
        }
        // The holder's attempt (one request) gets half the renew deadline,
        // so a hung renewal is given up and tried again before the holder
        // must stop, and never runs past that deadline. A follower's (a
        // read, then a write) gets the whole renew deadline.
        let limit = match deadline {
            Some(d) => d.min(Instant::now() + cfg.renew_deadline() / 2),
            None => Instant::now() + cfg.renew_deadline(),
        };
        let found = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            found = tokio::time::timeout_at(limit, elector.attempt()) => found,
        };
        // Held only while the deadline is ahead: an answer that arrives
        // after it (this process was paused, say) starts nothing.
        let in_time = |elector: &Elector| elector.deadline().is_some_and(|d| Instant::now() < d);
        let holding = match found {
            Ok(Ok(found)) => {
                if failures > 0 {
                    tracing::info!(failures, "the lease is readable again");
                }
                failures = 0;
                found == Found::Holding && in_time(&elector)
            }
            Ok(Err(e)) => {
                failures += 1;
                report_failure(failures, running.is_some(), &e.to_string());
                // Keep leading until the deadline, retrying meanwhile.
                in_time(&elector)
            }
            Err(_) => {
                failures += 1;
                report_failure(failures, running.is_some(), "no answer in time");
                in_time(&elector)
            }
        };
        if !holding {
            elector.renewed = None;
        }
        match (&running, holding) {
            (None, true) => {
                tracing::info!(identity = %cfg.identity, lease = %cfg.lease_name, "acquired the lease; starting controllers");
                let token = shutdown.child_token();
                let handle = tokio::spawn(lead(token.clone()));
                running = Some((token, handle));
                metrics.leader.set(1);
            }
            (Some(_), false) => {
                tracing::warn!(
                    identity = %cfg.identity,
                    lease = %cfg.lease_name,
                    renew_deadline = ?cfg.renew_deadline(),
                    "no longer the lease holder (another replica holds it, or no renewal succeeded within the renew deadline); stopping controllers"
                );
                stop(&mut running, cfg.grace / 2).await;
                metrics.leader.set(0);
            }
            _ => {}
        }
    }
    stop(&mut running, cfg.grace).await;
    metrics.leader.set(0);
    match tokio::time::timeout(cfg.grace, elector.release()).await {
        Ok(Ok(true)) => tracing::info!(lease = %cfg.lease_name, "lease released"),
        Ok(Ok(false)) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "releasing the lease failed; it expires on its own")
        }
        Err(_) => tracing::warn!("releasing the lease took too long; it expires on its own"),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Logs a failed look at the Lease: every one while leading (each brings
/// the deadline closer), otherwise the first and then every tenth.
fn report_failure(failures: u32, leading: bool, error: &str) {
    if leading || failures == 1 || failures.is_multiple_of(10) {
        tracing::warn!(failures, leading, error, "cannot read or renew the lease");
    }
}

/// Cancels the controllers and waits `wait` for them to finish; then
/// aborts them, and returns only once they are gone, so a process never
/// runs two sets, nor releases the Lease while one still runs.
async fn stop(running: &mut Option<(CancellationToken, JoinHandle<()>)>, wait: Duration) {
    if let Some((token, mut handle)) = running.take() {
        token.cancel();
        if tokio::time::timeout(wait, &mut handle).await.is_err() {
            tracing::warn!(?wait, "controllers did not stop in time; aborting them");
            handle.abort();
            let _ = handle.await;
        }
    }
}

/// `<pod name or host name>-<8 random hex>`: unique even when two
/// processes share a host, as in the tests.
pub fn default_identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "hawser".into());
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).unwrap_or_default();
    format!(
        "{host}-{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, secs: Option<i32>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(Into::into),
            lease_duration_seconds: secs,
            ..Default::default()
        }
    }

    const TERM: Duration = Duration::from_secs(15);

    #[test]
    fn a_free_lease_is_taken_at_once() {
        for s in [spec(None, None), spec(Some(""), Some(15))] {
            assert_eq!(step(&s, "me", Duration::ZERO, TERM), Step::Acquire);
        }
    }

    #[test]
    fn our_own_lease_is_renewed() {
        let s = spec(Some("me"), Some(15));
        assert_eq!(step(&s, "me", Duration::ZERO, TERM), Step::Renew);
        assert_eq!(step(&s, "me", TERM * 10, TERM), Step::Renew);
    }

    #[test]
    fn anothers_lease_is_taken_only_after_a_whole_unchanged_term() {
        let s = spec(Some("other"), Some(6));
        let t = |secs: f64| step(&s, "me", Duration::from_secs_f64(secs), TERM);
        assert_eq!(t(0.0), Step::Follow);
        assert_eq!(t(5.9), Step::Follow);
        assert_eq!(t(6.0), Step::Acquire);
        // The holder's term, not ours, decides; ours when it names none.
        let s = spec(Some("other"), None);
        assert_eq!(step(&s, "me", Duration::from_secs(14), TERM), Step::Follow);
        assert_eq!(step(&s, "me", TERM, TERM), Step::Acquire);
        let s = spec(Some("other"), Some(0));
        assert_eq!(step(&s, "me", Duration::from_secs(14), TERM), Step::Follow);
    }

    #[test]
    fn the_holder_stops_before_a_follower_may_take_over_and_retries_first() {
        for secs in [3, 6, 15, 60] {
            let duration = Duration::from_secs(secs);
            let cfg = LeaderConfig {
                namespace: "ns".into(),
                lease_name: "l".into(),
                identity: "me".into(),
                duration,
                grace: (duration / 3).max(Duration::from_secs(1)),
            };
            let (retry, deadline) = (cfg.retry_period(), cfg.renew_deadline());
            // Stopping takes at most grace / 2, and ends before the term.
            assert!(deadline + cfg.grace / 2 < duration, "{secs}s");
            // At least two tries at renewing before giving up.
            assert!(retry * 2 < deadline, "{secs}s: retry {retry:?}");
        }
    }
}
