//! Leader election against the real apiserver: two electors share one
//! Lease; never both lead; a stopped leader releases the lease and the
//! other takes over within the lease duration. (A crash, where nothing is
//! released, needs a killed process: see the process-level tests.)

use crate::support;

use std::{
    sync::{
        atomic::{AtomicI32, AtomicU8, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use hawser::{
    leader::{self, LeaderConfig},
    metrics::Metrics,
};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use support::*;
use tokio_util::sync::CancellationToken;

struct Elector {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    metrics: Arc<Metrics>,
}

fn start(
    client: &kube::Client,
    lease: &str,
    id: u8,
    leading: Arc<AtomicU8>,
    active: Arc<AtomicI32>,
    overlap: Arc<AtomicI32>,
) -> Elector {
    let shutdown = CancellationToken::new();
    let metrics = Arc::new(Metrics::new().unwrap());
    let cfg = LeaderConfig {
        namespace: "default".into(),
        lease_name: lease.into(),
        identity: format!("elector-{id}"),
        duration: Duration::from_secs(6),
        grace: Duration::from_secs(2),
    };
    let task = {
        let (client, shutdown, metrics) = (client.clone(), shutdown.clone(), metrics.clone());
        tokio::spawn(async move {
            leader::run(
                client,
                cfg,
                metrics,
                shutdown,
                move |token: CancellationToken| {
                    let (leading, active, overlap) =
                        (leading.clone(), active.clone(), overlap.clone());
                    async move {
                        if active.fetch_add(1, Ordering::SeqCst) > 0 {
                            overlap.fetch_add(1, Ordering::SeqCst);
                        }
                        leading.store(id, Ordering::SeqCst);
                        token.cancelled().await;
                        active.fetch_sub(1, Ordering::SeqCst);
                    }
                },
            )
            .await
            .expect("leader election");
        })
    };
    Elector {
        shutdown,
        task,
        metrics,
    }
}

async fn leader_is(leading: &AtomicU8, id: u8, within: Duration) -> Duration {
    let started = Instant::now();
    eventually(&format!("elector-{id} to lead"), within, || {
        let now = leading.load(Ordering::SeqCst);
        async move { (now == id).then_some(()) }
    })
    .await;
    started.elapsed()
}

#[tokio::test]
async fn one_leader_at_a_time_and_handover_on_release() {
    let client = client().await;
    let lease = unique("hawser-e2e-lease");
    let (leading, active, overlap) = (
        Arc::new(AtomicU8::new(0)),
        Arc::new(AtomicI32::new(0)),
        Arc::new(AtomicI32::new(0)),
    );
    let a = start(
        &client,
        &lease,
        1,
        leading.clone(),
        active.clone(),
        overlap.clone(),
    );
    leader_is(&leading, 1, Duration::from_secs(20)).await;
    assert_eq!(a.metrics.leader.get(), 1);
    let b = start(
        &client,
        &lease,
        2,
        leading.clone(),
        active.clone(),
        overlap.clone(),
    );
    // b stays a follower while a renews.
    tokio::time::sleep(Duration::from_secs(1)).await; // not a wait-for-condition: an observation window
    assert_eq!(leading.load(Ordering::SeqCst), 1);
    assert_eq!(b.metrics.leader.get(), 0);

    // a stops and releases the lease; b takes over within the lease
    // duration (a follower looks again when the old term would have
    // expired, so this is not instantaneous).
    a.shutdown.cancel();
    a.task.await.unwrap();
    assert_eq!(a.metrics.leader.get(), 0);
    let took = leader_is(&leading, 2, Duration::from_secs(20)).await;
    eprintln!("handover took {took:?}");
    assert!(
        took <= Duration::from_secs(6 + 1),
        "handover took longer than the lease duration: {took:?}"
    );
    let holder = Api::<Lease>::namespaced(client.clone(), "default")
        .get(&lease)
        .await
        .unwrap();
    assert_eq!(
        holder.spec.unwrap().holder_identity.as_deref(),
        Some("elector-2")
    );
    assert_eq!(b.metrics.leader.get(), 1);

    assert_eq!(
        overlap.load(Ordering::SeqCst),
        0,
        "two electors led at once"
    );
    b.shutdown.cancel();
    b.task.await.unwrap();
}

/// Two real hawser processes with controllers on, one Lease: exactly one
/// leads; after SIGKILL of the leader (nothing released) the follower takes
/// over once the dead leader's term ends, and within one more lease
/// duration; the follower is ready (serves admission) throughout.
#[tokio::test]
async fn killing_the_leading_process_moves_leadership_within_the_lease_duration() {
    let client = client().await;
    let ns = TestNamespace::create(&client, &unique("lead"), &[]).await;
    let lease_name = unique("hawser-e2e-proc-lease");
    let args = [
        "--controllers=vpce".to_string(),
        "--cluster-name=leader-test".to_string(),
        format!("--watch-namespace={}", ns.name),
        format!("--lease-name={lease_name}"),
        "--lease-duration=6s".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (a, b) = tokio::join!(Hawser::start(&args), Hawser::start(&args));
    let gauge = "hawser_leader";
    let a_leads = lease::one_leads(&a, &b).await;
    let (leader, follower) = if a_leads { (a, b) } else { (b, a) };
    // The follower serves admission: it is ready although it runs no controller.
    let ready = reqwest::get(format!("{}/readyz", follower.admin))
        .await
        .unwrap();
    assert!(
        ready.status().is_success(),
        "{}",
        ready.text().await.unwrap()
    );

    let killed = Instant::now();
    drop(leader); // SIGKILL: the lease is not released
    let left = lease::get(&client, &lease_name).await.unwrap();
    eventually("the follower to take over", Duration::from_secs(30), || {
        let f = &follower;
        async move { (f.metric(gauge).await == 1.0).then_some(()) }
    })
    .await;
    eprintln!("leadership moved {:?} after SIGKILL", killed.elapsed());
    let taken = lease::get(&client, &lease_name).await.unwrap();
    assert_ne!(
        taken.spec.as_ref().unwrap().holder_identity,
        left.spec.as_ref().unwrap().holder_identity,
        "the Lease still names the killed process"
    );
    lease::assert_takeover_after_expiry(&left, &taken, 6);
}

/// A leader keeps leading while its renewals succeed: its controllers are
/// started once and never stopped over several lease terms. (The watchdog
/// once stopped them at the very moment the crate renewed, so the leader
/// dropped and re-took its controllers every few seconds.)
#[tokio::test]
async fn a_healthy_leader_does_not_flap_across_renewals() {
    let client = client().await;
    let ns = TestNamespace::create(&client, &unique("steady"), &[]).await;
    let args = [
        "--controllers=vpce".to_string(),
        "--cluster-name=leader-test".to_string(),
        format!("--watch-namespace={}", ns.name),
        format!("--lease-name={}", unique("hawser-e2e-steady-lease")),
        "--lease-duration=6s".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let hawser = Hawser::start(&args).await;
    eventually("hawser to lead", Duration::from_secs(30), || async {
        (hawser.metric("hawser_leader").await == 1.0).then_some(())
    })
    .await;
    // Four terms of 6 s: at least three renewals, each a chance to flap.
    let watch = Duration::from_secs(4 * 6);
    let start = Instant::now();
    while start.elapsed() < watch {
        let log = hawser.log();
        assert!(
            !log.contains("no longer the lease holder"),
            "the leader gave up its controllers while renewing:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let log = hawser.log();
    assert_eq!(
        log.matches("acquired the lease; starting controllers")
            .count(),
        1,
        "controllers started more than once:\n{log}"
    );
    assert_eq!(hawser.metric("hawser_leader").await, 1.0);
}
