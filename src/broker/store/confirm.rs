//! Acknowledged on delivery or on disk, whichever comes first.
//!
//! A PUBACK tells a QoS 1 publisher that the broker now owns its message: it will
//! reach every subscriber, across a crash too. With `persistence`, the broker keeps
//! that promise by writing the message into each persistent subscriber's queue
//! (a [`Change::Queued`](super::Change::Queued)) before the PUBACK goes. But once
//! every one of those subscribers has acknowledged the message, the promise is
//! kept: nobody is owed it any more, whatever reaches the disk. So the PUBACK may go
//! then, without waiting for the sync. RabbitMQ confirms a persistent message the
//! same way: once it is written to disk, or once every queue's consumer has
//! acknowledged it.
//!
//! A [`Confirmation`] counts the deliveries of the QoS 1 messages one connection
//! published since its answers were last marked: each delivery queued at QoS 1
//! for a persistent session that is online and not the publisher's own counts
//! one ([`Confirmation::count`]), and the subscriber's PUBACK for it takes one
//! away ([`Confirmation::delivered`]), waking the publisher's connection when
//! none is left. Counts are only added while the publisher handles its packets,
//! so once a count is open it stays open. The publisher's answers then need only
//! what the stretch recorded besides (a retained message, say) to be durable,
//! and either no delivery left or the queueings durable ([`Confirmation::is_open`]).
//!
//! Only a subscriber's PUBACK takes a count away. A delivery dropped any other
//! way (expired, skipped, its session discarded, handed to another member of its
//! shared group, where it is not counted again) is never counted off, so its
//! publisher waits for the disk, as it would without this (asked within
//! `SOON_LINGER`). Deliveries to an offline session are not counted: nothing
//! could acknowledge them soon, so the publisher's answer asks the store at once.
//!
//! A crash after an early PUBACK leaves on disk either nothing of the message
//! (its queueing, sending and acknowledgement fell in one batch and were not
//! written: see `elide.rs`), or its queueing without the acknowledgement: then
//! the subscriber gets it again after the restart, which QoS 1 allows. QoS 2
//! messages never use this: their PUBREC promises the packet id too, which must
//! be durable.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use super::Store;
use crate::broker::session::ConnectionSignal;

/// The deliveries of one publisher's QoS 1 messages still owed to persistent
/// subscribers, and how far the store must get to make them durable instead.
#[derive(Debug)]
pub struct Confirmation {
    /// Counted deliveries whose PUBACK has not come.
    outstanding: AtomicUsize,
    /// The highest store sequence number of their queueing.
    queued_up_to: AtomicU64,
    /// The publisher's connection, woken when `outstanding` reaches 0. Weak: a
    /// counted delivery may wait in a queue long after its publisher left.
    publisher: Weak<ConnectionSignal>,
}

impl Confirmation {
    pub fn new(publisher: &Arc<ConnectionSignal>) -> Self {
        Confirmation {
            outstanding: AtomicUsize::new(0),
            queued_up_to: AtomicU64::new(0),
            publisher: Arc::downgrade(publisher),
        }
    }

    /// One more delivery, whose queueing the store recorded as `sequence`.
    pub fn count(&self, sequence: u64) {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        self.queued_up_to.fetch_max(sequence, Ordering::AcqRel);
    }

    /// A counted delivery was acknowledged by its subscriber.
    pub fn delivered(&self) {
        if self.outstanding.fetch_sub(1, Ordering::AcqRel) == 1
            && let Some(publisher) = self.publisher.upgrade()
        {
            publisher.deliveries_queued();
        }
    }

    /// The store sequence number that makes every counted delivery durable.
    pub fn queued_up_to(&self) -> u64 {
        self.queued_up_to.load(Ordering::Acquire)
    }

    /// Whether every counted delivery was acknowledged.
    pub fn all_delivered(&self) -> bool {
        self.outstanding.load(Ordering::Acquire) == 0
    }

    /// Whether the publisher may be answered as far as these deliveries go:
    /// each was acknowledged, or all are durable.
    pub fn is_open(&self, store: &Store) -> bool {
        self.all_delivered() || store.is_synced(self.queued_up_to())
    }

    /// What the store must reach for [`is_open`](Self::is_open) to hold without
    /// the subscribers; 0 once it holds anyway.
    pub fn needs(&self) -> u64 {
        if self.all_delivered() {
            0
        } else {
            self.queued_up_to()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::session::Signalled;
    use std::task::{Context, Waker};

    fn signalled(signal: &ConnectionSignal) -> Option<Signalled> {
        signal.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn opens_when_the_last_counted_delivery_is_acknowledged_and_wakes_the_publisher() {
        let signal = Arc::new(ConnectionSignal::default());
        let confirmation = Confirmation::new(&signal);
        let store = Store::Memory;
        assert!(confirmation.all_delivered(), "nothing counted yet");
        confirmation.count(7);
        confirmation.count(5);
        assert_eq!(confirmation.queued_up_to(), 7);
        assert_eq!(confirmation.needs(), 7);
        confirmation.delivered();
        assert!(!confirmation.all_delivered());
        assert_eq!(signalled(&signal), None, "one delivery still owed");
        confirmation.delivered();
        assert!(confirmation.all_delivered());
        assert!(confirmation.is_open(&store));
        assert_eq!(confirmation.needs(), 0);
        assert_eq!(signalled(&signal), Some(Signalled::Deliveries));
    }
}
