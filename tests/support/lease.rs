//! Reading a Lease the way a reviewer would: who holds it, and when the
//! previous holder's term ended compared with when the next one began.

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};

/// The holder of Lease `name` in `default`, if any.
pub async fn holder(client: &Client, name: &str) -> Option<String> {
    get(client, name)
        .await
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}

pub async fn get(client: &Client, name: &str) -> Option<Lease> {
    Api::<Lease>::namespaced(client.clone(), "default")
        .get_opt(name)
        .await
        .unwrap()
}

/// When the current term expires: the last renewal plus the duration.
pub fn expiry(lease: &Lease) -> jiff::Timestamp {
    let spec = lease.spec.as_ref().expect("lease spec");
    let renewed = spec.renew_time.as_ref().expect("renewTime").0;
    let secs = spec.lease_duration_seconds.expect("leaseDurationSeconds");
    renewed + jiff::SignedDuration::from_secs(secs.into())
}

/// When the current holder acquired the Lease.
pub fn acquired(lease: &Lease) -> jiff::Timestamp {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.acquire_time.as_ref())
        .expect("acquireTime")
        .0
}

/// Checks a takeover after the holder died without releasing: the new
/// holder acquired the Lease no earlier than the dead holder's term ended
/// (never two leaders), and no later than one more `duration` (prompt).
/// `before` is the Lease as the dead holder left it; `after` the new one's.
pub fn assert_takeover_after_expiry(before: &Lease, after: &Lease, duration_secs: i64) {
    let (expired, taken) = (expiry(before), acquired(after));
    let late = taken.duration_since(expired);
    eprintln!("takeover {late:?} after the dead holder's term ended");
    assert!(
        late >= jiff::SignedDuration::ZERO,
        "taken over {:?} BEFORE the previous term ended",
        -late
    );
    assert!(
        late <= jiff::SignedDuration::from_secs(duration_secs),
        "taken over {late:?} after the previous term ended; expected within {duration_secs}s"
    );
}

/// Waits until exactly one of two processes reports `hawser_leader 1`;
/// true if it is `a`.
pub async fn one_leads(a: &super::Hawser, b: &super::Hawser) -> bool {
    super::eventually(
        "exactly one leader",
        std::time::Duration::from_secs(30),
        || async {
            match (
                a.metric("hawser_leader").await,
                b.metric("hawser_leader").await,
            ) {
                (1.0, 0.0) => Some(true),
                (0.0, 1.0) => Some(false),
                _ => None,
            }
        },
    )
    .await
}

/// The Lease's renewTime.
pub async fn renewed(client: &Client, name: &str) -> jiff::Timestamp {
    let lease = get(client, name).await.expect("the lease exists");
    lease.spec.and_then(|s| s.renew_time).expect("renewTime").0
}
