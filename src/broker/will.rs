//! Wills, and the broker's timers: when a connection ends, whether its will is
//! published now, waits for its MQTT 5 Will Delay Interval, or is cancelled; and the
//! timers (will delay, session expiry) that run under the broker's task tracker and
//! stop at shutdown.
//!
//! The rules, in one place:
//! * a will goes when the connection ends for any reason but a normal DISCONNECT
//!   or a broker shutdown [MQTT-3.1.2-8 3.1.1/5.0] [MQTT-3.1.2-10 3.1.1/5.0];
//! * with a Will Delay Interval it waits for the earlier of that delay and the end
//!   of the session (v5 §3.1.3.2.2), and a reconnect within it cancels it
//!   [MQTT-3.1.3-9 5.0];
//! * after a takeover it goes only if the takeover ended the session (the old
//!   session was not persistent, or the new connection started clean), as mosquitto;
//! * when it is due, the ACL in force decides whether its client may still write its
//!   topic ([`publish`]).

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::auth::Principal;
use super::message::Message;
use super::router::Router;
use super::session::Session;
use crate::protocol::Will;

/// Timers that must not outlive the broker: each runs under its task tracker and
/// is dropped, without firing, when the broker shuts down.
#[derive(Debug, Default)]
pub struct Timers {
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

impl Timers {
    /// Runs `fire` after `delay`, unless the broker shuts down first.
    pub fn after(&self, delay: Duration, fire: impl FnOnce() + Send + 'static) {
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(delay) => fire(),
            }
        });
    }

    /// Cancels every timer and waits until none is running.
    pub async fn stop(&self) {
        self.shutdown.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// A will that its connection left behind, as the broker will publish it.
pub struct LeftWill {
    pub message: Arc<Message>,
    /// MQTT 5 Will Delay Interval; zero for 3.x.
    pub delay: Duration,
}

impl LeftWill {
    /// The message a CONNECT's will becomes: published by `principal`'s session
    /// `origin`, without the Will Delay Interval (a CONNECT property, not a PUBLISH
    /// one).
    pub fn new(will: Will, origin: u64, principal: Arc<Principal>) -> Self {
        let delay = will.properties.will_delay_interval().unwrap_or(0);
        let mut properties = will.properties;
        properties.remove(0x18);
        let message = Arc::new(Message {
            properties,
            origin,
            // The router asks whether they may, when the will is due.
            publisher: Some(principal),
            ..Message::new(will.topic, will.payload, will.qos, will.retain)
        });
        LeftWill {
            message,
            delay: Duration::from_secs(u64::from(delay)),
        }
    }
}

/// What ending a connection did to its session, which decides its will's fate.
pub enum SessionAfter {
    /// Another connection took it over; `ended` when that ended the session.
    TakenOver { ended: bool },
    /// The session ended with its connection.
    Ended,
    /// The session is kept (persistent) for `expiry` (`None`: for ever); `epoch`
    /// tells a timer whether the client came back meanwhile.
    Kept {
        epoch: u32,
        expiry: Option<Duration>,
    },
}

/// Decides what happens to `will` now that its connection ended and its session
/// went `after`: published now, armed for its delay, or cancelled.
pub fn on_connection_end(
    router: &Arc<Router>,
    session: &Arc<Session>,
    will: LeftWill,
    after: SessionAfter,
    taken_over: bool,
) {
    // A connection that ended on its own (not by a takeover) sends a will without
    // delay at once, even if a resuming connection raced in meanwhile.
    if will.delay.is_zero() && !taken_over {
        publish(router, will.message);
        return;
    }
    match after {
        SessionAfter::TakenOver { ended } => {
            // The session is over, so the will goes now, delay or not.
            if ended {
                publish(router, will.message);
            }
        }
        SessionAfter::Ended => publish(router, will.message),
        SessionAfter::Kept { .. } if will.delay.is_zero() => publish(router, will.message),
        SessionAfter::Kept { epoch, expiry } => {
            {
                let mut state = session.lock();
                // A reconnect already cancelled it.
                if state.epoch != epoch || state.connection.is_some() {
                    return;
                }
                // A clean-start takeover ended the session meanwhile: it is over, so
                // the will goes now (v5 §3.1.3.2.2).
                if state.removed {
                    drop(state);
                    publish(router, will.message);
                    return;
                }
                // Kept with the session: the session's end sends it, whichever
                // comes first.
                state.pending_will = Some(Arc::clone(&will.message));
                let delay = expiry.map_or(will.delay, |expiry| expiry.min(will.delay));
                state.note_will_pending(&will.message, std::time::SystemTime::now() + delay);
            }
            let delay = expiry.map_or(will.delay, |expiry| expiry.min(will.delay));
            let (router_for_timer, session) = (Arc::clone(router), Arc::clone(session));
            router.timers.after(delay, move || {
                send_delayed(&router_for_timer, &session, epoch);
            });
        }
    }
}

/// Publishes a will if its client may still write its topic: the ACL in force when
/// the will is due decides, as in mosquitto.
/// Starts the timer of a will read back from the store, waiting `delay` more.
pub fn resume_delayed(router: &Arc<Router>, session: &Arc<Session>, epoch: u32, delay: Duration) {
    let (router_for_timer, session) = (Arc::clone(router), Arc::clone(session));
    router.timers.after(delay, move || {
        send_delayed(&router_for_timer, &session, epoch);
    });
}

pub fn publish(router: &Router, will: Arc<Message>) {
    let security = router.security.load();
    let allowed = will
        .publisher
        .as_deref()
        .is_none_or(|publisher| security.may_write(publisher, will.topic.as_str()));
    if allowed {
        router.publish(will);
    }
}

/// Publishes a delayed will if the client has not come back since `epoch`.
fn send_delayed(router: &Router, session: &Session, epoch: u32) {
    let will = {
        let mut state = session.lock();
        if state.epoch != epoch || state.connection.is_some() {
            return;
        }
        state.pending_will.take()
    };
    if let Some(will) = will {
        publish(router, will);
        // Recorded after the will's deliveries: a crash in between sends it
        // again at the restart rather than never. Unless the client came back
        // (and perhaps left another will) meanwhile.
        let state = session.lock();
        if state.epoch == epoch && state.pending_will.is_none() {
            state.note_will_cleared();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[tokio::test]
    async fn timers_fire_after_their_delay_and_stop_with_the_broker() {
        let timers = Timers::default();
        let (early, late) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let fired = Arc::clone(&early);
        let (tx, rx) = tokio::sync::oneshot::channel();
        timers.after(Duration::from_millis(1), move || {
            fired.store(true, Ordering::SeqCst);
            let _ = tx.send(());
        });
        let never = Arc::clone(&late);
        timers.after(Duration::from_secs(3600), move || {
            never.store(true, Ordering::SeqCst)
        });
        tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .expect("fired in time")
            .expect("sent");
        // Stopping returns at once, although an hour-long timer was armed, and that
        // timer never fires (nor holds what it captured).
        tokio::time::timeout(Duration::from_secs(5), timers.stop())
            .await
            .expect("stopped in time");
        assert!(early.load(Ordering::SeqCst));
        assert!(!late.load(Ordering::SeqCst));
        assert_eq!(Arc::strong_count(&late), 1, "the closure was dropped");
    }
}
