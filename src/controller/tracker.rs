//! What a controller remembers per object between passes: failure and
//! poll counts for backoff, the inputs it last settled (so the echo of its
//! own write costs no AWS call, and a terminal failure is not retried
//! until the inputs change or a resync passes), and the state it last
//! wrote, for `hawser_managed_objects`. Shared by the controllers, each
//! with its own set of states.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
    time::Duration,
};

use prometheus::IntGaugeVec;
// tokio's clock: std's outside tests, and paused time in them.
use tokio::time::Instant;

use crate::annotations::keys;
use crate::controller::backoff::Backoff;

/// The states a controller reports in `hawser_managed_objects{state}`.
pub trait GaugeState: Copy + PartialEq + Send + 'static {
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
}

/// For a controller that reports no states (the namespace controller):
/// the tracker then only keeps backoff and settled inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoState {}

impl GaugeState for NoState {
    const ALL: &'static [Self] = &[];
    fn as_str(self) -> &'static str {
        match self {}
    }
}

/// The inputs of one object: its annotations minus hawser's outputs.
pub type Fingerprint = BTreeMap<String, String>;

pub fn fingerprint(ann: &BTreeMap<String, String>) -> Fingerprint {
    ann.iter()
        .filter(|(k, _)| !keys::is_output(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

struct Entry<S> {
    failures: u32,
    polls: u32,
    settled: Option<(Fingerprint, Instant)>,
    state: Option<S>,
}

impl<S> Default for Entry<S> {
    fn default() -> Self {
        Self {
            failures: 0,
            polls: 0,
            settled: None,
            state: None,
        }
    }
}

pub struct Tracker<S> {
    controller: &'static str,
    gauge: IntGaugeVec,
    entries: Mutex<HashMap<String, Entry<S>>>,
}

impl<S: GaugeState> Tracker<S> {
    pub fn new(controller: &'static str, gauge: IntGaugeVec) -> Self {
        for s in S::ALL {
            gauge.with_label_values(&[controller, s.as_str()]).set(0);
        }
        Self {
            controller,
            gauge,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(&self, uid: &str, f: impl FnOnce(&mut Entry<S>) -> T) -> T {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        f(entries.entry(uid.to_owned()).or_default())
    }

    /// The next failure backoff for this object.
    pub fn failed(&self, uid: &str) -> Duration {
        self.with(uid, |e| {
            e.failures = e.failures.saturating_add(1);
            e.settled = None;
            Backoff::FAILURE.delay(e.failures - 1)
        })
    }

    /// The next poll delay while AWS is busy with this object.
    pub fn poll(&self, uid: &str) -> Duration {
        self.with(uid, |e| {
            e.polls = e.polls.saturating_add(1);
            e.settled = None;
            Backoff::POLL.delay(e.polls - 1)
        })
    }

    /// A pass finished with AWS matching the inputs (or failing for good
    /// on them): nothing to do for them until `resync`.
    pub fn settle(&self, uid: &str, inputs: Fingerprint) {
        self.with(uid, |e| {
            e.failures = 0;
            e.polls = 0;
            e.settled = Some((inputs, Instant::now()));
        });
    }

    /// A pass succeeded without settling (e.g. cleanup still waiting).
    pub fn succeeded(&self, uid: &str) {
        self.with(uid, |e| e.failures = 0);
    }

    /// `Some(time left)` when these inputs settled less than `resync`
    /// ago: the pass can skip AWS entirely.
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

    /// When this object last settled on these very inputs, if it did (its
    /// resync is due, or [`Self::settled_for`] would have skipped the
    /// pass): nothing was asked of AWS for them since, so a snapshot begun
    /// after that may confirm that nothing needs doing (see
    /// [`crate::controller::inventory`]).
    pub fn settled_at(&self, uid: &str, inputs: &Fingerprint) -> Option<Instant> {
        self.with(uid, |e| {
            e.settled
                .as_ref()
                .filter(|(settled, _)| settled == inputs)
                .map(|(_, at)| *at)
        })
    }

    /// The state last set for this object in this process.
    pub fn state(&self, uid: &str) -> Option<S> {
        self.with(uid, |e| e.state)
    }

    pub fn set_state(&self, uid: &str, state: S) {
        self.with(uid, |e| e.state = Some(state));
        self.refresh_gauge();
    }

    /// The object is no longer managed.
    pub fn forget(&self, uid: &str) {
        let removed = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(uid);
        if removed.is_some_and(|e| e.state.is_some()) {
            self.refresh_gauge();
        }
    }

    fn refresh_gauge(&self) {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        for &s in S::ALL {
            let n = entries.values().filter(|e| e.state == Some(s)).count();
            self.gauge
                .with_label_values(&[self.controller, s.as_str()])
                .set(n as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::vpce::status::State;

    fn tracker() -> Tracker<State> {
        let gauge =
            IntGaugeVec::new(prometheus::Opts::new("g", "g"), &["controller", "state"]).unwrap();
        Tracker::new("vpce", gauge)
    }

    #[test]
    fn settled_inputs_skip_until_they_change_or_resync_passes() {
        let t = tracker();
        let a = BTreeMap::from([("vpce.hawser.io/service-name".to_owned(), "x".to_owned())]);
        let mut with_output = a.clone();
        with_output.insert("vpce.hawser.io/state".into(), "Available".into());
        assert_eq!(fingerprint(&with_output), a, "outputs are not inputs");

        assert!(t.settled_for("u", &a, Duration::from_secs(60)).is_none());
        assert!(t.settled_at("u", &a).is_none());
        t.settle("u", a.clone());
        assert!(t.settled_for("u", &a, Duration::from_secs(60)).is_some());
        assert!(
            t.settled_for("u", &a, Duration::ZERO).is_none(),
            "resync passed"
        );
        assert!(
            t.settled_at("u", &a).is_some(),
            "a resync of the same inputs"
        );
        let mut b = a.clone();
        b.insert("vpce.hawser.io/private-dns".into(), "true".into());
        assert!(t.settled_for("u", &b, Duration::from_secs(60)).is_none());
        assert!(t.settled_at("u", &b).is_none(), "changed inputs");
        t.poll("u");
        assert!(
            t.settled_for("u", &a, Duration::from_secs(60)).is_none(),
            "polling unsettles"
        );
        assert!(t.settled_at("u", &a).is_none());
    }

    #[test]
    fn failures_back_off_and_reset() {
        let t = tracker();
        let first = t.failed("u");
        assert!(first <= Duration::from_secs(1));
        for _ in 0..5 {
            t.failed("u");
        }
        assert!(t.failed("u") >= Duration::from_secs(32));
        t.settle("u", Fingerprint::new());
        assert!(t.failed("u") <= Duration::from_secs(1));
    }

    #[test]
    fn the_gauge_counts_objects_by_state() {
        let t = tracker();
        t.set_state("a", State::Available);
        t.set_state("b", State::Available);
        t.set_state("c", State::Pending);
        let get = |s: State| t.gauge.with_label_values(&["vpce", s.as_str()]).get();
        assert_eq!((get(State::Available), get(State::Pending)), (2, 1));
        t.forget("a");
        t.set_state("c", State::Failed);
        assert_eq!(
            (
                get(State::Available),
                get(State::Pending),
                get(State::Failed)
            ),
            (1, 0, 1)
        );
    }
}
