//! One look at AWS per scope, shared by the resync passes of every object
//! in that scope, so that a resync with nothing changed costs a constant
//! number of reads per scope and resource kind (a scope: the account's
//! role, its session and the region), not one or two per object.
//!
//! A resync pass of an object whose inputs have not changed since it last
//! settled asks [`Inventory::get`] for the scope's snapshot: everything
//! hawser's cluster tag marks there, taken by every page of one describe
//! call. The first pass due takes it; the passes due within the next
//! quarter of the resync period reuse it, and so do the passes that were
//! waiting for it, whatever it took. A snapshot serves only objects that
//! settled before it was begun.
//!
//! A snapshot only ever confirms that nothing needs doing. When it shows
//! anything else for an object (a resource missing, changed, duplicated,
//! or not yet in a final state), that object's pass looks again by its
//! own tags or name and acts on that, as every other pass does. A stale
//! snapshot can delay a repair; it can never cause a create, a delete or
//! a modify. A change made just after a snapshot was taken may be
//! confirmed away by it and then wait for the object's next resync: drift
//! shows within 1¼ resync periods.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use tokio::time::Instant;

use crate::aws::{AwsError, Scope};

/// A snapshot is reused for this fraction of the resync period.
const REUSE_DIVISOR: u32 = 4;

/// One fetch: when it began and ended, and what it found (or why not).
struct Taken<T> {
    began: Instant,
    ended: Instant,
    result: Result<Arc<T>, AwsError>,
}

type Slot<T> = Arc<tokio::sync::Mutex<Option<Taken<T>>>>;

/// Snapshots of one resource kind, one per scope.
pub struct Inventory<T> {
    fresh_for: Duration,
    slots: std::sync::Mutex<HashMap<Scope, Slot<T>>>,
}

impl<T: Send + Sync> Inventory<T> {
    /// Snapshots reused for a quarter of `resync`.
    pub fn new(resync: Duration) -> Self {
        Self {
            fresh_for: resync / REUSE_DIVISOR,
            slots: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// How long a snapshot is reused.
    pub fn fresh_for(&self) -> Duration {
        self.fresh_for
    }

    /// The scope's slot; slots of other scopes whose last fetch has
    /// expired and that nobody is using are dropped on the way, so a
    /// namespace or role that is gone leaves nothing behind.
    fn slot(&self, scope: &Scope) -> Slot<T> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        // Clones are made only under this lock: a slot with one is in use.
        slots.retain(|key, slot| {
            key == scope
                || Arc::strong_count(slot) > 1
                || match slot.try_lock() {
                    Ok(taken) => taken
                        .as_ref()
                        .is_some_and(|t| t.ended.elapsed() < self.fresh_for),
                    Err(_) => true,
                }
        });
        slots.entry(scope.clone()).or_default().clone()
    }

    /// The scope's snapshot for an object that settled at `settled`: one
    /// begun after that and less than [`Self::fresh_for`] ago, or one that
    /// ended while this caller waited for it (its error too: each waiter
    /// then retries with its own backoff), or else a new one from `fetch`.
    pub async fn get<F, Fut>(
        &self,
        scope: &Scope,
        settled: Instant,
        fetch: F,
    ) -> Result<Arc<T>, AwsError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        let asked = Instant::now();
        let slot = self.slot(scope);
        let mut taken = slot.lock().await;
        if let Some(t) = taken.as_ref().filter(|t| t.began >= settled) {
            let fresh = t.result.is_ok() && t.began.elapsed() < self.fresh_for;
            if fresh || t.ended > asked {
                return t.result.clone();
            }
        }
        // Dropped first: a cancelled fetch leaves nothing stale behind.
        *taken = None;
        let began = Instant::now();
        let result = fetch().await.map(Arc::new);
        *taken = Some(Taken {
            began,
            ended: Instant::now(),
            result: result.clone(),
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::aws::AwsErrorKind;

    fn role(arn: &str) -> Scope {
        Scope {
            role_arn: Some(arn.to_owned()),
            ..Scope::own("eu-west-1")
        }
    }

    /// A snapshot for an object that settled at `settled`: the number of
    /// the fetch that took it.
    async fn count(inv: &Inventory<u32>, scope: &Scope, settled: Instant, n: &AtomicU32) -> u32 {
        *inv.get(scope, settled, || async {
            Ok(n.fetch_add(1, Ordering::SeqCst) + 1)
        })
        .await
        .unwrap()
    }

    fn throttled() -> AwsError {
        AwsError::new("DescribeVpcEndpoints", "RequestLimitExceeded", "slow down")
    }

    /// `asks` passes asking at once while one fetch takes `takes` and
    /// ends with `result`; what each got, and how many fetches ran.
    async fn at_once(
        asks: usize,
        takes: Duration,
        result: Result<u32, AwsError>,
    ) -> (Vec<Result<u32, AwsError>>, u32) {
        let inv = Arc::new(Inventory::new(Duration::from_secs(40)));
        let fetches = Arc::new(AtomicU32::new(0));
        let settled = Instant::now();
        let tasks: Vec<_> = (0..asks)
            .map(|_| {
                let (inv, fetches, result) = (inv.clone(), fetches.clone(), result.clone());
                tokio::spawn(async move {
                    inv.get(&Scope::own("eu-west-1"), settled, || async {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(takes).await;
                        result
                    })
                    .await
                    .map(|n| *n)
                })
            })
            .collect();
        let mut got = Vec::new();
        for task in tasks {
            got.push(task.await.unwrap());
        }
        (got, fetches.load(Ordering::SeqCst))
    }

    #[tokio::test(start_paused = true)]
    async fn a_snapshot_serves_every_pass_for_a_quarter_of_the_resync() {
        let inv = Inventory::new(Duration::from_secs(40));
        assert_eq!(inv.fresh_for(), Duration::from_secs(10));
        let fetches = AtomicU32::new(0);
        let own = Scope::own("eu-west-1");
        let settled = Instant::now();
        for _ in 0..50 {
            assert_eq!(count(&inv, &own, settled, &fetches).await, 1);
        }
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(count(&inv, &own, settled, &fetches).await, 1, "still fresh");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(count(&inv, &own, settled, &fetches).await, 2, "taken again");
    }

    #[tokio::test(start_paused = true)]
    async fn a_snapshot_begun_before_an_object_settled_is_not_its_answer() {
        let inv = Inventory::new(Duration::from_secs(40));
        let fetches = AtomicU32::new(0);
        let own = Scope::own("eu-west-1");
        let early = Instant::now();
        assert_eq!(count(&inv, &own, early, &fetches).await, 1);
        tokio::time::advance(Duration::from_secs(1)).await;
        let later = Instant::now();
        assert_eq!(count(&inv, &own, later, &fetches).await, 2);
        assert_eq!(count(&inv, &own, early, &fetches).await, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn each_role_session_and_region_has_its_own_snapshot() {
        let inv = Inventory::new(Duration::from_secs(40));
        let fetches = AtomicU32::new(0);
        let t = Instant::now();
        assert_eq!(count(&inv, &Scope::own("eu-west-1"), t, &fetches).await, 1);
        assert_eq!(count(&inv, &Scope::own("us-east-1"), t, &fetches).await, 2);
        assert_eq!(count(&inv, &role("arn:a"), t, &fetches).await, 3);
        assert_eq!(count(&inv, &role("arn:b"), t, &fetches).await, 4);
        assert_eq!(count(&inv, &role("arn:a"), t, &fetches).await, 3);
        // Another namespace's session of the same role: its calls show
        // under its own session name, so it looks for itself.
        let other_session = Scope {
            session_name: Some("hawser-other".to_owned()),
            ..role("arn:a")
        };
        assert_eq!(count(&inv, &other_session, t, &fetches).await, 5);
    }

    #[tokio::test(start_paused = true)]
    async fn the_slots_of_scopes_no_longer_asked_for_are_dropped() {
        let inv = Inventory::new(Duration::from_secs(40));
        let fetches = AtomicU32::new(0);
        let t = Instant::now();
        count(&inv, &role("arn:gone"), t, &fetches).await;
        count(&inv, &role("arn:kept"), t, &fetches).await;
        assert_eq!(inv.slots.lock().unwrap().len(), 2);
        tokio::time::advance(Duration::from_secs(10)).await;
        count(&inv, &role("arn:kept"), t, &fetches).await;
        let slots = inv.slots.lock().unwrap();
        assert_eq!(slots.keys().collect::<Vec<_>>(), [&role("arn:kept")]);
    }

    #[tokio::test(start_paused = true)]
    async fn passes_that_ask_during_a_fetch_share_it() {
        let (got, fetches) = at_once(10, Duration::from_secs(1), Ok(7)).await;
        assert_eq!(fetches, 1);
        assert!(got.iter().all(|r| r.as_ref().ok() == Some(&7)), "{got:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_fetch_slower_than_the_reuse_window_still_answers_its_waiters() {
        let (got, fetches) = at_once(10, Duration::from_secs(60), Ok(7)).await;
        assert_eq!(fetches, 1);
        assert!(got.iter().all(|r| r.as_ref().ok() == Some(&7)), "{got:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_fetch_is_its_waiters_error_and_is_not_kept() {
        let (got, fetches) = at_once(10, Duration::from_secs(1), Err(throttled())).await;
        assert_eq!(fetches, 1, "one failure, not one per waiter");
        assert!(
            got.iter()
                .all(|r| r.as_ref().is_err_and(|e| e.kind == AwsErrorKind::Throttled)),
            "{got:?}"
        );

        let inv = Inventory::new(Duration::from_secs(40));
        let own = Scope::own("eu-west-1");
        let t = Instant::now();
        let err = inv
            .get(&own, t, || async { Err(throttled()) })
            .await
            .expect_err("the fetch's error");
        assert_eq!(err.kind, AwsErrorKind::Throttled);
        let fetches = AtomicU32::new(0);
        assert_eq!(count(&inv, &own, t, &fetches).await, 1, "asked anew");
    }
}
