//! Leader election against the real apiserver: two electors share one
//! Lease; never both lead; a stopped leader releases the lease and the
//! other takes over at its next look; a leader whose apiserver answers
//! slowly keeps leading, and one cut off from it stops before its term
//! ends. (A crash, where nothing is released, needs a killed process: see
//! the process-level tests.)

use crate::support;

use std::{
    pin::Pin,
    sync::{
        atomic::{AtomicI32, AtomicU64, AtomicU8, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use hawser::{
    leader::{self, LeaderConfig},
    metrics::Metrics,
};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{client::Body, Api};
use support::*;
use tokio_util::sync::CancellationToken;

struct Elector {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    metrics: Arc<Metrics>,
}

/// What the electors' controllers did, shared by all electors of a test.
#[derive(Clone, Default)]
struct Probe {
    /// The id of the elector whose controllers started last.
    leading: Arc<AtomicU8>,
    /// How many electors' controllers run now.
    active: Arc<AtomicI32>,
    /// How often controllers started while another's ran.
    overlap: Arc<AtomicI32>,
    /// How often controllers started.
    starts: Arc<AtomicI32>,
    /// When controllers last stopped (wall clock, to compare with the
    /// Lease's renewTime).
    stopped_at: Arc<Mutex<Option<jiff::Timestamp>>>,
}

/// A 6 s term: grace 2 s, so the holder renews every 0.5 s and stops
/// when no renewal succeeded for 4 s.
const TERM: Duration = Duration::from_secs(6);

fn start(client: &kube::Client, lease: &str, id: u8, probe: &Probe) -> Elector {
    let shutdown = CancellationToken::new();
    let metrics = Arc::new(Metrics::new().unwrap());
    let cfg = LeaderConfig {
        namespace: "default".into(),
        lease_name: lease.into(),
        identity: format!("elector-{id}"),
        duration: TERM,
        grace: TERM / 3,
    };
    let task = {
        let (client, shutdown, metrics, probe) = (
            client.clone(),
            shutdown.clone(),
            metrics.clone(),
            probe.clone(),
        );
        tokio::spawn(async move {
            leader::run(
                client,
                cfg,
                metrics,
                shutdown,
                move |token: CancellationToken| {
                    let probe = probe.clone();
                    async move {
                        if probe.active.fetch_add(1, Ordering::SeqCst) > 0 {
                            probe.overlap.fetch_add(1, Ordering::SeqCst);
                        }
                        probe.starts.fetch_add(1, Ordering::SeqCst);
                        probe.leading.store(id, Ordering::SeqCst);
                        token.cancelled().await;
                        probe.active.fetch_sub(1, Ordering::SeqCst);
                        *probe.stopped_at.lock().unwrap() = Some(jiff::Timestamp::now());
                    }
                },
            )
            .await;
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

/// A kube client whose every request waits `delay_ms` before it is sent:
/// an apiserver that answers slowly, or (with a long delay) not at all.
#[derive(Clone)]
struct Slow {
    inner: kube::Client,
    delay_ms: Arc<AtomicU64>,
}

impl tower::Service<http::Request<Body>> for Slow {
    type Response = http::Response<Body>;
    type Error = kube::Error;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let (inner, delay) = (
            self.inner.clone(),
            Duration::from_millis(self.delay_ms.load(Ordering::SeqCst)),
        );
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            inner.send(request).await
        })
    }
}

fn slow_client(client: &kube::Client, delay_ms: &Arc<AtomicU64>) -> kube::Client {
    kube::Client::new(
        Slow {
            inner: client.clone(),
            delay_ms: delay_ms.clone(),
        },
        "default",
    )
}

#[tokio::test]
async fn one_leader_at_a_time_and_handover_on_release() {
    let client = client().await;
    let lease = unique("hawser-e2e-lease");
    let probe = Probe::default();
    let a = start(&client, &lease, 1, &probe);
    leader_is(&probe.leading, 1, Duration::from_secs(20)).await;
    assert_eq!(a.metrics.leader.get(), 1);
    let b = start(&client, &lease, 2, &probe);
    // b stays a follower while a renews.
    tokio::time::sleep(Duration::from_secs(1)).await; // not a wait-for-condition: an observation window
    assert_eq!(probe.leading.load(Ordering::SeqCst), 1);
    assert_eq!(b.metrics.leader.get(), 0);

    // a stops and releases the lease; b takes it at its next look, well
    // within the term.
    a.shutdown.cancel();
    a.task.await.unwrap();
    assert_eq!(a.metrics.leader.get(), 0);
    let took = leader_is(&probe.leading, 2, Duration::from_secs(20)).await;
    eprintln!("handover took {took:?}");
    assert!(
        took < TERM / 2,
        "handover took {took:?}: as long as an unreleased Lease's expiry, not one look"
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
        probe.overlap.load(Ordering::SeqCst),
        0,
        "two electors led at once"
    );
    b.shutdown.cancel();
    b.task.await.unwrap();
}

/// Three electors started at once on a free Lease: exactly one leads. All
/// three read it free and patch it; each patch is conditional on the
/// version read, so the losers get 409 and follow.
#[tokio::test]
async fn three_electors_started_together_elect_exactly_one() {
    let client = client().await;
    let lease = unique("hawser-e2e-race-lease");
    let free = Lease {
        metadata: kube::api::ObjectMeta {
            name: Some(lease.clone()),
            ..Default::default()
        },
        spec: Some(Default::default()),
    };
    Api::<Lease>::namespaced(client.clone(), "default")
        .create(&Default::default(), &free)
        .await
        .unwrap();
    let probe = Probe::default();
    let electors: Vec<Elector> = (1..=3)
        .map(|id| start(&client, &lease, id, &probe))
        .collect();
    let leader = eventually("one elector to lead", Duration::from_secs(20), || {
        let id = probe.leading.load(Ordering::SeqCst);
        async move { (id != 0).then_some(id) }
    })
    .await;
    tokio::time::sleep(TERM / 2).await; // not a wait-for-condition: a window for a second leader to appear
    assert_eq!(probe.overlap.load(Ordering::SeqCst), 0, "two led at once");
    assert_eq!(
        probe.starts.load(Ordering::SeqCst),
        1,
        "more than one start"
    );
    assert_eq!(
        support::lease::holder(&client, &lease).await,
        Some(format!("elector-{leader}"))
    );
    let leading: Vec<i64> = electors.iter().map(|e| e.metrics.leader.get()).collect();
    assert_eq!(leading.iter().sum::<i64>(), 1, "hawser_leader: {leading:?}");
    for e in electors {
        e.shutdown.cancel();
        e.task.await.unwrap();
    }
}

/// Every request to the apiserver takes 1.2 s: each renewal arrives 1.2 s
/// after the holder wrote its renewTime, and a follower's read 1.2 s late.
/// The leader keeps leading for three terms: it retries instead of betting
/// the Lease on one renewal landing in time. (The crate hawser used before
/// renewed once per term and stopped the controllers when a renewal came
/// a second late, which is how a healthy leader flapped under load.)
#[tokio::test]
async fn a_leader_whose_apiserver_answers_slowly_keeps_leading() {
    let client = client().await;
    let lease = unique("hawser-e2e-slow-lease");
    let delay_ms = Arc::new(AtomicU64::new(1200));
    let probe = Probe::default();
    let a = start(&slow_client(&client, &delay_ms), &lease, 1, &probe);
    leader_is(&probe.leading, 1, Duration::from_secs(20)).await;
    let watch = TERM * 3;
    let since = Instant::now();
    while since.elapsed() < watch {
        assert_eq!(
            probe.active.load(Ordering::SeqCst),
            1,
            "the slow leader stopped its controllers {:?} into the watch",
            since.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        probe.starts.load(Ordering::SeqCst),
        1,
        "controllers restarted"
    );
    assert_eq!(a.metrics.leader.get(), 1);
    // It did renew meanwhile: the Lease's renewTime is recent.
    let renewed = support::lease::renewed(&client, &lease).await;
    let age = jiff::Timestamp::now().duration_since(renewed);
    assert!(
        age < jiff::SignedDuration::from_secs(4),
        "last renewal {age:?} ago"
    );
    delay_ms.store(0, Ordering::SeqCst);
    a.shutdown.cancel();
    a.task.await.unwrap();
}

/// Once the leader's requests stop being answered, it stops its
/// controllers before its term ends, so a follower taking over at the end
/// of the term never overlaps with it; a follower that hears nothing new
/// then takes over.
#[tokio::test]
async fn a_leader_cut_off_from_the_apiserver_stops_before_its_term_ends() {
    let client = client().await;
    let lease = unique("hawser-e2e-cutoff-lease");
    let delay_ms = Arc::new(AtomicU64::new(0));
    let probe = Probe::default();
    let a = start(&slow_client(&client, &delay_ms), &lease, 1, &probe);
    leader_is(&probe.leading, 1, Duration::from_secs(20)).await;
    let b = start(&client, &lease, 2, &probe);
    // From now on a's requests hang; those already sent complete.
    delay_ms.store(600_000, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await; // not a wait-for-condition: lets a request in flight land
    let last = support::lease::get(&client, &lease).await.unwrap();
    let term_ends = support::lease::expiry(&last);
    leader_is(&probe.leading, 2, Duration::from_secs(20)).await;
    let stopped = probe.stopped_at.lock().unwrap().expect("a stopped");
    eprintln!(
        "a stopped {:?} before its term ended",
        term_ends.duration_since(stopped)
    );
    assert!(
        stopped < term_ends,
        "a stopped at {stopped}, after its term ended at {term_ends}"
    );
    assert_eq!(a.metrics.leader.get(), 0);
    assert_eq!(probe.overlap.load(Ordering::SeqCst), 0, "two led at once");
    let taken = support::lease::get(&client, &lease).await.unwrap();
    support::lease::assert_takeover_after_expiry(&last, &taken, TERM.as_secs() as i64);
    a.shutdown.cancel();
    b.shutdown.cancel();
    a.task.await.unwrap();
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
/// started once and never stopped over several lease terms, in a real
/// process. (Under the crate hawser used before, a renewal that came a
/// second late stopped them; CI once caught that under load.)
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
