//! Per-object exponential backoff with jitter. kube-runtime requeues
//! whatever the error policy returns; it keeps no count of its own.

use std::time::Duration;

/// Delays grow `base`, `2 × base`, `4 × base` … up to `max`; each is then
/// jittered into its upper half, so objects that failed together (an AWS
/// outage) do not retry together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// Reconcile failures: 1 s up to 5 min.
    pub const FAILURE: Backoff = Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(300),
    };
    /// Polling for something AWS is doing (an endpoint pending or
    /// deleting): 1 s up to 1 min.
    pub const POLL: Backoff = Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(60),
    };

    /// The ceiling for the `attempt`-th retry (0-based), before jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.min(20);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The delay before the `attempt`-th retry: uniform in
    /// `[ceiling / 2, ceiling]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_up_to_the_cap_with_jitter_in_the_upper_half() {
        let b = Backoff::FAILURE;
        assert_eq!(b.ceiling(0), Duration::from_secs(1));
        assert_eq!(b.ceiling(3), Duration::from_secs(8));
        assert_eq!(b.ceiling(9), Duration::from_secs(300));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(300));
        for attempt in 0..12 {
            let d = b.delay(attempt);
            assert!(
                d >= b.ceiling(attempt) / 2 && d <= b.ceiling(attempt),
                "{d:?}"
            );
        }
        let spread: std::collections::BTreeSet<Duration> = (0..20).map(|_| b.delay(6)).collect();
        assert!(spread.len() > 1, "jitter spreads retries");
    }
}
