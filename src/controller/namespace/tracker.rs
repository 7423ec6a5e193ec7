//! What the namespace controller remembers per Namespace between passes:
//! the shared [`Tracker`](crate::controller::tracker::Tracker), with no
//! states to report ([`NoState`](crate::controller::tracker::NoState)), and inputs that include whether the namespace
//! carries hawser's finalizer.

use kube::ResourceExt;

use super::NamespaceMeta;
use crate::controller::tracker::{self, Fingerprint};

/// Not an annotation key (those cannot contain parentheses): marks the
/// finalizer's presence among the inputs.
const FINALIZER_INPUT: &str = "(finalizer)";

/// A Namespace's inputs: its annotations minus hawser's outputs, and
/// whether it carries the finalizer `finalizer`.
pub fn fingerprint(obj: &NamespaceMeta, finalizer: &str) -> Fingerprint {
    let mut inputs = tracker::fingerprint(obj.annotations());
    if obj.finalizers().iter().any(|f| f == finalizer) {
        inputs.insert(FINALIZER_INPUT.to_owned(), String::new());
    }
    inputs
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::annotations::keys::IAM_FINALIZER;
    use crate::controller::tracker::{NoState, Tracker};
    use crate::namespaces::namespace_meta;

    #[test]
    fn the_finalizer_is_an_input_and_outputs_are_not() {
        let gauge =
            prometheus::IntGaugeVec::new(prometheus::Opts::new("g", "g"), &["controller", "state"])
                .unwrap();
        let t = Tracker::<NoState>::new("namespace", gauge);
        let a = namespace_meta("a", &[("env.hawser.io/routing-secret", "true")]);
        let echo = namespace_meta(
            "a",
            &[
                ("env.hawser.io/routing-secret", "true"),
                ("env.hawser.io/rotated-keys", "1"),
            ],
        );
        let mut finalized = a.clone();
        finalized.metadata.finalizers = Some(vec![IAM_FINALIZER.to_owned()]);
        let resync = Duration::from_secs(60);
        t.settle("u", fingerprint(&a, IAM_FINALIZER));
        assert!(
            t.settled_for("u", &fingerprint(&echo, IAM_FINALIZER), resync)
                .is_some(),
            "outputs are not inputs"
        );
        assert!(
            t.settled_for("u", &fingerprint(&finalized, IAM_FINALIZER), resync)
                .is_none(),
            "the finalizer is"
        );
        t.failed("u");
        assert!(
            t.settled_for("u", &fingerprint(&a, IAM_FINALIZER), resync)
                .is_none(),
            "a failure unsettles"
        );
    }
}
