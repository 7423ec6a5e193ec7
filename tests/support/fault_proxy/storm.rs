//! The proxy's storm: faults at a rate, for a while, and how a storm
//! hangs up on or cuts off a client.

use std::time::Instant;

use axum::body::Bytes;

/// Faults at a rate, for a while: AWS on a bad day.
#[derive(Clone, Copy, Debug)]
pub struct Storm {
    /// Share of requests answered `RequestLimitExceeded` (503).
    pub throttle: f64,
    /// Share of requests passed to moto whose answer is then lost: the
    /// caller gets a 500 `InternalFailure` although moto acted, as when a
    /// connection drops after AWS did the work.
    pub lose_answer: f64,
    /// Share of requests passed to moto whose answer is cut off: the
    /// status, the headers and half the body arrive, then the connection
    /// drops mid-body (a truncated answer, as from a dropped connection).
    pub drop_connection: f64,
    /// Share of the rest passed to moto whose connection is then closed
    /// before any answer: not a byte of status or headers arrives.
    pub hang_up: f64,
    /// Added before each answer.
    pub latency: std::time::Duration,
    pub until: Instant,
}

/// The payload of the panic that hangs up on a client; the panic hook
/// installed by [`FaultProxy::start`] does not report it.
pub(super) const HANG_UP: &str = "fault proxy: hanging up before the answer (a storm fault)";

/// Keeps the default panic report for every panic but [`HANG_UP`].
pub(super) fn quiet_hang_ups() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&HANG_UP) {
                report(info);
            }
        }));
    });
}

/// What a storm did, by kind of fault.
#[derive(Debug, Clone, Copy)]
pub struct StormFaults {
    pub throttled: u32,
    /// Answered 500 after moto acted.
    pub lost: u32,
    /// Cut off mid-body after moto acted.
    pub cut_off: u32,
    /// Closed with no answer after moto acted.
    pub hung_up: u32,
}

/// A body that yields the first half of `body`, then fails: the server
/// closes the connection in the middle of a chunked answer.
pub(super) fn truncated(body: Bytes) -> axum::body::Body {
    let half = body.slice(..body.len() / 2);
    let cut = std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "fault proxy: connection dropped mid-answer",
    );
    axum::body::Body::from_stream(futures::stream::iter([Ok(half), Err(cut)]))
}
