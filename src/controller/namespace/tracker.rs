//! What the controller remembers per Namespace between passes: the inputs
//! it last settled (so the echo of its own write, and a terminal failure
//! whose inputs have not changed, cost no API call until the resync) and
//! the failure count for backoff.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
    time::{Duration, Instant},
};

use kube::ResourceExt;

use super::NamespaceMeta;
use crate::annotations::keys;
use crate::controller::backoff::Backoff;

/// A Namespace's inputs: its annotations minus hawser's outputs, and
/// whether it carries the finalizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    annotations: BTreeMap<String, String>,
    finalizer: bool,
}

pub fn fingerprint(obj: &NamespaceMeta, finalizer: &str) -> Fingerprint {
    Fingerprint {
        annotations: obj
            .annotations()
            .iter()
            .filter(|(k, _)| !keys::is_output(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        finalizer: obj.finalizers().iter().any(|f| f == finalizer),
    }
}

#[derive(Default)]
struct Entry {
    failures: u32,
    settled: Option<(Fingerprint, Instant)>,
}

#[derive(Default)]
pub struct Tracker {
    // Held only for map lookups, never across an await.
    entries: Mutex<HashMap<String, Entry>>,
}

impl Tracker {
    fn with<T>(&self, uid: &str, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        f(entries.entry(uid.to_owned()).or_default())
    }

    pub fn failed(&self, uid: &str) -> Duration {
        self.with(uid, |e| {
            e.failures = e.failures.saturating_add(1);
            e.settled = None;
            Backoff::FAILURE.delay(e.failures - 1)
        })
    }

    pub fn settle(&self, uid: &str, inputs: Fingerprint) {
        self.with(uid, |e| {
            e.failures = 0;
            e.settled = Some((inputs, Instant::now()));
        })
    }

    /// Time left until the resync when `inputs` are what was settled.
    pub fn settled_for(
        &self,
        uid: &str,
        inputs: &Fingerprint,
        resync: Duration,
    ) -> Option<Duration> {
        self.with(uid, |e| {
            let (settled, at) = e.settled.as_ref()?;
            let left = resync.checked_sub(at.elapsed())?;
            (settled == inputs && !left.is_zero()).then_some(left)
        })
    }

    pub fn forget(&self, uid: &str) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespaces::namespace_meta;

    #[test]
    fn settled_inputs_skip_until_they_change_or_the_resync_is_due() {
        let t = Tracker::default();
        let a = namespace_meta("a", &[("env.hawser.io/routing-secret", "true")]);
        let echo = namespace_meta(
            "a",
            &[
                ("env.hawser.io/routing-secret", "true"),
                ("env.hawser.io/rotated-keys", "1"),
            ],
        );
        let changed = namespace_meta("a", &[("env.hawser.io/routing-secret", "false")]);
        let resync = Duration::from_secs(60);
        assert!(t
            .settled_for("u", &fingerprint(&a, keys::IAM_FINALIZER), resync)
            .is_none());
        t.settle("u", fingerprint(&a, keys::IAM_FINALIZER));
        assert!(
            t.settled_for("u", &fingerprint(&echo, keys::IAM_FINALIZER), resync)
                .is_some(),
            "outputs are not inputs"
        );
        assert!(t
            .settled_for("u", &fingerprint(&changed, keys::IAM_FINALIZER), resync)
            .is_none());
        assert!(t
            .settled_for("u", &fingerprint(&a, keys::IAM_FINALIZER), Duration::ZERO)
            .is_none());
        t.failed("u");
        assert!(
            t.settled_for("u", &fingerprint(&a, keys::IAM_FINALIZER), resync)
                .is_none(),
            "a failure unsettles"
        );
    }
}
