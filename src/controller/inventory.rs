//! One look at AWS per scope, shared by the resync passes of every object
//! in that scope, so that a resync with nothing changed costs a constant
//! number of reads per (account, region, resource kind), not one or two
//! per object.
//!
//! A resync pass of an object whose inputs have not changed since it last
//! settled asks [`Inventory::get`] for the scope's snapshot: everything
//! hawser's cluster tag marks there, taken by every page of one describe
//! call. The first pass due takes it; the passes due within the next
//! quarter of the resync period reuse it. A snapshot is therefore always
//! taken after the object settled (the resync is four times longer), and
//! drift shows at most a quarter period late.
//!
//! A snapshot only ever confirms that nothing needs doing. When it shows
//! anything else for an object (a resource missing, changed, duplicated,
//! or not yet in a final state), that object's pass looks again by its
//! own tags or name and acts on that, as every other pass does. A stale
//! snapshot can delay a repair; it can never cause a create, a delete or
//! a modify.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use tokio::time::Instant;

use crate::aws::{AwsError, Scope};

/// A snapshot is reused for this fraction of the resync period.
const REUSE_DIVISOR: u32 = 4;

/// The key of one snapshot: the role (hence the account) and the region.
/// Namespaces that share a role share its snapshots; each object still
/// sees only what carries its own ownership tags.
type ScopeKey = (Option<String>, String);

struct Taken<T> {
    at: Instant,
    items: Arc<T>,
}

type Slot<T> = Arc<tokio::sync::Mutex<Option<Taken<T>>>>;

/// Snapshots of one resource kind, one per scope.
pub struct Inventory<T> {
    fresh_for: Duration,
    slots: std::sync::Mutex<HashMap<ScopeKey, Slot<T>>>,
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

    fn slot(&self, scope: &Scope) -> Slot<T> {
        let key = (scope.role_arn.clone(), scope.region.clone());
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(key).or_default().clone()
    }

    /// The scope's snapshot: the one taken less than [`Self::fresh_for`]
    /// ago, or a new one from `fetch`. Passes that ask while a fetch is
    /// under way wait for it and share its answer; a failed fetch is
    /// every waiter's error (each then retries with its own backoff), and
    /// the next caller fetches again.
    pub async fn get<F, Fut>(&self, scope: &Scope, fetch: F) -> Result<Arc<T>, AwsError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, AwsError>>,
    {
        let slot = self.slot(scope);
        let mut taken = slot.lock().await;
        if let Some(t) = taken.as_ref().filter(|t| t.at.elapsed() < self.fresh_for) {
            return Ok(t.items.clone());
        }
        // Dropped first: a failed fetch leaves nothing stale behind.
        *taken = None;
        let at = Instant::now();
        let items = Arc::new(fetch().await?);
        *taken = Some(Taken {
            at,
            items: items.clone(),
        });
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::aws::{AwsErrorKind, Scope};

    fn role(arn: &str) -> Scope {
        Scope {
            role_arn: Some(arn.to_owned()),
            ..Scope::own("eu-west-1")
        }
    }

    async fn count(inv: &Inventory<u32>, scope: &Scope, fetches: &AtomicU32) -> u32 {
        *inv.get(scope, || async {
            Ok(fetches.fetch_add(1, Ordering::SeqCst) + 1)
        })
        .await
        .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_snapshot_serves_every_pass_for_a_quarter_of_the_resync() {
        let inv = Inventory::new(Duration::from_secs(40));
        assert_eq!(inv.fresh_for(), Duration::from_secs(10));
        let fetches = AtomicU32::new(0);
        let own = Scope::own("eu-west-1");
        for _ in 0..50 {
            assert_eq!(count(&inv, &own, &fetches).await, 1);
        }
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(count(&inv, &own, &fetches).await, 1, "still fresh");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(count(&inv, &own, &fetches).await, 2, "taken again");
    }

    #[tokio::test(start_paused = true)]
    async fn each_account_and_region_has_its_own_snapshot() {
        let inv = Inventory::new(Duration::from_secs(40));
        let fetches = AtomicU32::new(0);
        assert_eq!(count(&inv, &Scope::own("eu-west-1"), &fetches).await, 1);
        assert_eq!(count(&inv, &Scope::own("us-east-1"), &fetches).await, 2);
        assert_eq!(count(&inv, &role("arn:a"), &fetches).await, 3);
        assert_eq!(count(&inv, &role("arn:b"), &fetches).await, 4);
        // Another namespace's session of the same role: the same account.
        let same_role = Scope {
            session_name: Some("hawser-other".to_owned()),
            ..role("arn:a")
        };
        assert_eq!(count(&inv, &same_role, &fetches).await, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn passes_that_ask_during_a_fetch_share_it() {
        let inv = Arc::new(Inventory::new(Duration::from_secs(40)));
        let fetches = Arc::new(AtomicU32::new(0));
        let asks: Vec<_> = (0..10)
            .map(|_| {
                let (inv, fetches) = (inv.clone(), fetches.clone());
                tokio::spawn(async move {
                    *inv.get(&Scope::own("eu-west-1"), || async {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        Ok(fetches.fetch_add(1, Ordering::SeqCst) + 1)
                    })
                    .await
                    .unwrap()
                })
            })
            .collect();
        for ask in asks {
            assert_eq!(ask.await.unwrap(), 1);
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_fetch_is_not_kept() {
        let inv = Inventory::new(Duration::from_secs(40));
        let fetches = AtomicU32::new(0);
        let own = Scope::own("eu-west-1");
        assert_eq!(count(&inv, &own, &fetches).await, 1);
        tokio::time::advance(Duration::from_secs(10)).await;
        let err = inv
            .get(&own, || async {
                Err(AwsError::new(
                    "DescribeVpcEndpoints",
                    "RequestLimitExceeded",
                    "slow down",
                ))
            })
            .await
            .expect_err("the fetch's error");
        assert_eq!(err.kind, AwsErrorKind::Throttled);
        assert_eq!(count(&inv, &own, &fetches).await, 2, "fetched again");
    }
}
