//! The VPC endpoint controller's [`Tracker`](crate::controller::tracker::Tracker):
//! per Service, with the four `vpce.hawser.io/state` values as gauge states.

pub use crate::controller::tracker::{fingerprint, Fingerprint, GaugeState};

use super::status::State;

pub type Tracker = crate::controller::tracker::Tracker<State>;

impl GaugeState for State {
    const ALL: &'static [State] = &State::ALL;
    fn as_str(self) -> &'static str {
        State::as_str(self)
    }
}
