//! Leader election on a `coordination.k8s.io/v1` Lease, with the
//! kube-lease-manager crate doing the acquiring and renewing.
//!
//! Only the holder runs the controllers; every replica serves the webhook.
//! The crate reports a change of holder, but if renewals start failing
//! (the API server unreachable) it keeps reporting "leader" past the
//! lease's expiry. So a watchdog here reads the Lease itself and stops the
//! controllers as soon as this replica can no longer show it holds an
//! unexpired lease: two replicas must never both act on AWS.

use std::{future::Future, time::Duration};

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use kube_lease_manager::LeaseManagerBuilder;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

#[derive(Debug, Clone)]
pub struct LeaderConfig {
    pub namespace: String,
    pub lease_name: String,
    /// Unique per replica: the pod name plus a random suffix.
    pub identity: String,
    pub duration: Duration,
    /// Renew this long before expiry; also the clock skew tolerated.
    pub grace: Duration,
}

/// Why this replica may or may not act, as seen on the Lease itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holding {
    Held,
    NotHeld,
}

/// How early, before the Lease expires by our clock, the watchdog stops
/// the controllers: half the renewal grace. The crate renews `grace`
/// before expiry, so a healthy renewal lands `grace / 2` before this point;
/// stopping at the renewal point itself made the leader drop and re-take
/// its controllers on every renewal whenever the watchdog looked first.
pub fn stop_margin(grace: Duration) -> Duration {
    grace / 2
}

/// Pure check of a Lease against our identity and clock: held until
/// `margin` before its expiry.
pub fn holding(lease: &Lease, identity: &str, now: jiff::Timestamp, margin: Duration) -> Holding {
    let Some(spec) = lease.spec.as_ref() else {
        return Holding::NotHeld;
    };
    if spec.holder_identity.as_deref() != Some(identity) {
        return Holding::NotHeld;
    }
    let (Some(renewed), Some(secs)) = (spec.renew_time.as_ref(), spec.lease_duration_seconds)
    else {
        return Holding::NotHeld;
    };
    // Stop `margin` before expiry by our clock, so a replica whose clock
    // runs a little slow still stops before another one may start.
    let margin = jiff::SignedDuration::from_secs(i64::from(secs))
        - jiff::SignedDuration::try_from(margin).unwrap_or_default();
    match renewed.0.checked_add(margin) {
        Ok(deadline) if now < deadline => Holding::Held,
        _ => Holding::NotHeld,
    }
}

/// Runs `lead(token)` whenever this replica holds the lease, and cancels
/// the token when it stops holding it or `shutdown` fires. On shutdown the
/// controllers are stopped first, then the lease is released so another
/// replica can take over at once.
pub async fn run<F, Fut>(
    client: Client,
    cfg: LeaderConfig,
    metrics: std::sync::Arc<Metrics>,
    shutdown: CancellationToken,
    mut lead: F,
) -> Result<(), kube_lease_manager::LeaseManagerError>
where
    F: FnMut(CancellationToken) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let manager = LeaseManagerBuilder::new(client.clone(), &cfg.lease_name)
        .with_namespace(&cfg.namespace)
        .with_identity(&cfg.identity)
        .with_duration(cfg.duration.as_secs().max(1))
        .with_grace(cfg.grace.as_secs().max(1))
        .with_field_manager("hawser")
        .build()
        .await?;
    let (mut elected, manager_task) = manager.watch().await;
    let leases: Api<Lease> = Api::namespaced(client, &cfg.namespace);
    let mut running: Option<(CancellationToken, JoinHandle<()>)> = None;
    let mut check = tokio::time::interval((cfg.grace / 2).max(Duration::from_millis(500)));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_confirmed = tokio::time::Instant::now();
    metrics.leader.set(0);

    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = elected.changed() => {
                if changed.is_err() {
                    tracing::error!("lease manager stopped; controllers stop too");
                    break;
                }
            }
            _ = check.tick() => {}
        }
        let crate_says = *elected.borrow_and_update();
        let lease_says = match leases.get_opt(&cfg.lease_name).await {
            Ok(Some(lease)) => {
                let h = holding(
                    &lease,
                    &cfg.identity,
                    jiff::Timestamp::now(),
                    stop_margin(cfg.grace),
                );
                if h == Holding::Held {
                    last_confirmed = tokio::time::Instant::now();
                }
                h
            }
            Ok(None) => Holding::NotHeld,
            // Cannot read the Lease: trust the last confirmation only while
            // it is fresher than the lease could be.
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the lease");
                if last_confirmed.elapsed() + cfg.grace < cfg.duration {
                    Holding::Held
                } else {
                    Holding::NotHeld
                }
            }
        };
        let should_run = crate_says && lease_says == Holding::Held;
        match (&running, should_run) {
            (None, true) => {
                tracing::info!(identity = %cfg.identity, lease = %cfg.lease_name, "acquired the lease; starting controllers");
                let token = shutdown.child_token();
                let handle = tokio::spawn(lead(token.clone()));
                running = Some((token, handle));
                metrics.leader.set(1);
            }
            (Some(_), false) => {
                tracing::warn!(identity = %cfg.identity, crate_says, ?lease_says, "no longer the lease holder; stopping controllers");
                stop(&mut running, cfg.grace).await;
                metrics.leader.set(0);
            }
            _ => {}
        }
    }
    stop(&mut running, cfg.grace).await;
    metrics.leader.set(0);
    // Closing the channel makes the manager release the lease and return.
    drop(elected);
    match manager_task.await {
        Ok(Ok(_)) => tracing::info!("lease released"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "releasing the lease failed; it expires on its own")
        }
        Err(e) => tracing::warn!(error = %e, "lease manager task failed"),
    }
    Ok(())
}

async fn stop(running: &mut Option<(CancellationToken, JoinHandle<()>)>, wait: Duration) {
    if let Some((token, handle)) = running.take() {
        token.cancel();
        if tokio::time::timeout(wait, handle).await.is_err() {
            tracing::warn!(?wait, "controllers did not stop in time; continuing");
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
    use k8s_openapi::{
        api::coordination::v1::LeaseSpec, apimachinery::pkg::apis::meta::v1::MicroTime,
    };

    fn lease(holder: &str, renewed: &str, secs: i32) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.into()),
                renew_time: Some(MicroTime(renewed.parse().unwrap())),
                lease_duration_seconds: Some(secs),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_watchdog_stops_after_the_renewal_point_not_at_it() {
        for secs in [6, 15, 60] {
            let duration = Duration::from_secs(secs);
            let grace = duration / 3;
            let renews_at = duration - grace;
            let stops_at = duration - stop_margin(grace);
            assert!(
                renews_at < stops_at && stops_at < duration,
                "{secs}s lease: renews at {renews_at:?}, stops at {stops_at:?}"
            );
        }
    }

    #[test]
    fn held_only_by_us_and_only_until_grace_before_expiry() {
        let grace = Duration::from_secs(5);
        let l = lease("me", "2026-01-01T00:00:00Z", 15);
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        assert_eq!(
            holding(&l, "me", at("2026-01-01T00:00:09Z"), grace),
            Holding::Held
        );
        assert_eq!(
            holding(&l, "me", at("2026-01-01T00:00:10Z"), grace),
            Holding::NotHeld
        );
        assert_eq!(
            holding(&l, "other", at("2026-01-01T00:00:01Z"), grace),
            Holding::NotHeld
        );
        assert_eq!(
            holding(&Lease::default(), "me", at("2026-01-01T00:00:01Z"), grace),
            Holding::NotHeld
        );
    }
}
