//! Keep-alive and connect timeouts for every connection, checked by one task,
//! which also gives memory back after many connections left.
//!
//! A timer per connection would cost every idle connection a timer entry (112
//! bytes in its task, which tokio sizes in steps of 128). mosquitto checks its
//! clients' keep-alive in its main loop instead; rbroker does the same from one
//! task: each connection publishes its deadline in its
//! [`ConnectionSignal`](super::session::ConnectionSignal), and [`sweep`] wakes
//! the connections whose deadline has passed. The connection then checks its own
//! clock before it closes, so a packet that arrived meanwhile keeps it open.
//!
//! Deadlines are milliseconds on a broker-wide clock, so one `AtomicU64` holds
//! one; 0 means none.

use std::sync::Arc;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::memory::{ReturnPolicy, return_free_memory};
use super::router::Router;

/// How often the deadlines are checked: a connection closes at most this long
/// after its deadline.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(250);

/// The clock's zero: the first time any deadline was taken.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `at` on the deadline clock, rounded up, never 0 (which means no deadline).
pub fn millis(at: Instant) -> u64 {
    let since = at.saturating_duration_since(epoch());
    u64::try_from(since.as_micros().div_ceil(1000))
        .unwrap_or(u64::MAX)
        .max(1)
}

/// The instant `millis` stands for on the deadline clock (to the millisecond).
pub fn instant(millis: u64) -> Instant {
    epoch() + Duration::from_millis(millis)
}

/// Wakes every connection whose deadline has passed, every [`SWEEP_INTERVAL`],
/// until `stop`; after many connections left, gives their memory back
/// ([`ReturnPolicy`]).
pub async fn sweep(router: Arc<Router>, stop: CancellationToken) {
    let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut returning = ReturnPolicy::default();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let (connections, peak) = router.expire_connections(millis(Instant::now()));
        if returning.observe(peak, connections) {
            router.shrink_maps();
            return_free_memory();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_instant_is_a_later_deadline_and_none_is_zero() {
        let first = millis(Instant::now());
        assert!(first >= 1, "0 means no deadline");
        let now = Instant::now() + Duration::from_millis(10);
        let soon = millis(now);
        let later = millis(now + Duration::from_millis(1500));
        assert!(soon > first, "{first} then {soon}");
        assert!(
            (1499..=1501).contains(&(later - soon)),
            "{soon} then {later}"
        );
    }
}
