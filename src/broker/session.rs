//! Sessions: what the broker remembers about a client between packets and, for
//! persistent sessions, between connections.
//!
//! [`SessionState`] is sans-I/O (rumqttc's `MqttState` idea): methods take events
//! (a delivery, an acknowledgement) and say what to send; the connection task does
//! the I/O. It owns:
//! * the outgoing queue (`pending`): QoS 1/2 messages bounded by
//!   `max_queued_messages` and `max_queued_bytes` (mosquitto's meanings), QoS 0
//!   messages by `max_queued_bytes` or else [`QOS0_QUEUE_BYTES`], since bursts (a
//!   retained backlog on subscribe, a `$SYS` update) arrive faster than one write and
//!   must not be lost to a count limit;
//! * the in-flight window of QoS 1/2 PUBLISHes awaiting PUBACK/PUBREC/PUBCOMP,
//!   bounded by `max_inflight_messages` and `max_inflight_bytes`, replayed with DUP
//!   after a reconnect;
//! * packet identifiers of incoming QoS 2 messages awaiting PUBREL, which is what
//!   makes delivery exactly-once on the receiving side;
//! * the client's subscriptions, so they can be removed with the session.
//!
//! [`Session`] wraps the state in a mutex shared by the connection task that serves
//! the client and every publisher that routes a message to it. The mutex is always
//! the innermost lock taken, and is never held across an `.await`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use atomic_waker::AtomicWaker;

use super::auth::Principal;
use super::message::Message;
use super::store::confirm::Confirmation;
use super::store::{Change, Store};
use crate::protocol::{PacketId, QoS, SubscriptionOptions, TopicFilter};

/// Payload and topic bytes of QoS 0 messages that may wait for one client before
/// new ones are dropped. mosquitto leaves this unbounded; a bound keeps a stalled
/// subscriber from growing the broker without limit.
pub const QOS0_QUEUE_BYTES: usize = 64 * 1024 * 1024;

/// Bytes a queued QoS 0 message counts against [`QOS0_QUEUE_BYTES`].
fn queued_size(delivery: &Delivery) -> usize {
    delivery.message.payload.len() + delivery.message.topic.as_str().len() + 64
}

/// Bytes a message counts against `max_queued_bytes` and `max_inflight_bytes`: its
/// payload, as mosquitto counts.
fn payload_size(delivery: &Delivery) -> usize {
    delivery.message.payload.len()
}

/// How much may wait for one client (mosquitto.conf's names; 0 is "no limit").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// `max_inflight_messages`: QoS 1/2 PUBLISHes awaiting acknowledgement.
    pub inflight_messages: u16,
    /// `max_inflight_bytes`: payload bytes of those; another goes out while the
    /// window holds fewer.
    pub inflight_bytes: usize,
    /// `max_queued_messages`: QoS 1/2 messages waiting beyond the window.
    pub queued_messages: usize,
    /// `max_queued_bytes`: payload bytes of those.
    pub queued_bytes: usize,
}

impl Default for QueueLimits {
    /// mosquitto's defaults.
    fn default() -> Self {
        QueueLimits {
            inflight_messages: 20,
            inflight_bytes: 0,
            queued_messages: 1000,
            queued_bytes: 0,
        }
    }
}

/// A limit where 0 means none.
fn limit(value: usize) -> usize {
    if value == 0 { usize::MAX } else { value }
}

/// One message on its way to one client.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message: Arc<Message>,
    /// min(message QoS, granted QoS).
    pub qos: QoS,
    /// The retain flag as sent: 1 for retained messages sent on subscribe.
    pub retain: bool,
    /// MQTT 5 identifiers of the matching subscriptions.
    pub subscription_ids: Vec<u32>,
    /// The shared subscription it was chosen through, if any: a member that leaves
    /// hands such messages back to its group.
    pub shared: Option<Arc<TopicFilter>>,
    /// The publisher's count of deliveries still owed, when this QoS 1 delivery
    /// to a persistent session is in it: its PUBACK counts it off (see
    /// `store/confirm.rs`).
    pub confirms: Option<Arc<Confirmation>>,
}

/// A QoS 1/2 PUBLISH the client has not finished acknowledging.
#[derive(Debug, Clone)]
pub enum InFlight {
    /// Sent; waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Published(Delivery),
    /// PUBREC received and PUBREL sent; waiting for PUBCOMP.
    Released,
}

/// What the connection should write next.
#[derive(Debug)]
pub enum Outgoing {
    Publish {
        delivery: Delivery,
        packet_id: Option<PacketId>,
        dup: bool,
    },
    PubRel(PacketId),
}

/// Result of offering a delivery to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Queued,
    /// The queue was full: the message is lost for this client and counted.
    Dropped,
    /// QoS 0 to an offline client: not kept, as mosquitto does by default.
    Skipped,
}

/// How other tasks wake the task serving a connection: flags, and the waker of that
/// task. Kept in the shared signal rather than as futures inside the connection task,
/// so an idle connection's task stays small.
#[derive(Debug, Default)]
pub struct ConnectionSignal {
    waker: AtomicWaker,
    /// Set when deliveries were queued since the task last looked.
    deliveries: AtomicBool,
    /// Set when another connection took the session over.
    taken_over: AtomicBool,
    /// Set when the broker shuts down.
    shutdown: AtomicBool,
    /// Set when a reload took the client's right to be connected away.
    revoked: AtomicBool,
    /// Set by the keep-alive sweep when `deadline` passed.
    expired: AtomicBool,
    /// Set by the connection at every event; cleared by the keep-alive sweep,
    /// which asks a connection that stayed idle a whole sweep to park.
    active: AtomicBool,
    /// The connection runs as a task and could be parked (`connection/park.rs`).
    parkable: AtomicBool,
    /// Set by the keep-alive sweep: park if there is nothing to do.
    park: AtomicBool,
    /// When the connection times out, on the [`keepalive`](super::keepalive)
    /// clock; 0 for never.
    deadline: AtomicU64,
}

/// What a [`ConnectionSignal`] reports, most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signalled {
    Shutdown,
    Revoked,
    TakenOver,
    /// The keep-alive (or connect) deadline passed when the sweep looked; the
    /// connection checks its own clock before it closes.
    Expired,
    Deliveries,
    /// The connection stayed idle a whole sweep: it parks if nothing waits.
    Park,
}

impl ConnectionSignal {
    pub fn deliveries_queued(&self) {
        self.deliveries.store(true, Ordering::Release);
        self.waker.wake();
    }

    pub fn take_over(&self) {
        self.taken_over.store(true, Ordering::Release);
        self.waker.wake();
    }

    pub fn shut_down(&self) {
        self.shutdown.store(true, Ordering::Release);
        self.waker.wake();
    }

    pub fn revoke(&self) {
        self.revoked.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Sets when the connection times out (`None`: never).
    pub fn set_deadline(&self, at: Option<tokio::time::Instant>) {
        let millis = at.map_or(0, super::keepalive::millis);
        self.deadline.store(millis, Ordering::Relaxed);
    }

    /// Wakes the connection if its deadline is at or before `now` (both on the
    /// keep-alive clock).
    pub fn expire_if_due(&self, now: u64) {
        let deadline = self.deadline.load(Ordering::Relaxed);
        if deadline != 0 && deadline <= now && !self.expired.load(Ordering::Relaxed) {
            self.expired.store(true, Ordering::Release);
            self.waker.wake();
        }
    }

    /// Notes an event: the connection is not idle.
    pub fn mark_active(&self) {
        if !self.active.load(Ordering::Relaxed) {
            self.active.store(true, Ordering::Relaxed);
        }
    }

    /// Says whether the keep-alive sweep may ask the connection to park.
    pub fn set_parkable(&self, parkable: bool) {
        self.parkable.store(parkable, Ordering::Relaxed);
    }

    /// Asks a parkable connection that had no event since the last call to
    /// park; asks once, until it says again that it is parkable.
    pub fn park_if_idle(&self) {
        if self.parkable.load(Ordering::Relaxed) && !self.active.swap(false, Ordering::Relaxed) {
            self.parkable.store(false, Ordering::Relaxed);
            self.park.store(true, Ordering::Release);
            self.waker.wake();
        }
    }

    /// Registers `waker`, the parked connection's, for wake-ups, and says
    /// whether a flag is already set, which must wake it at once. The park
    /// request is dropped: it was answered.
    pub fn register_parked(&self, waker: &std::task::Waker) -> bool {
        self.park.store(false, Ordering::Relaxed);
        self.parkable.store(false, Ordering::Relaxed);
        self.waker.register(waker);
        [
            &self.shutdown,
            &self.revoked,
            &self.taken_over,
            &self.expired,
            &self.deliveries,
        ]
        .iter()
        .any(|flag| flag.load(Ordering::Acquire))
    }

    /// Registers the current task for wake-ups and reports a signal that ends
    /// the connection (shutdown, revocation, takeover), leaving the deliveries
    /// flag for [`ConnectionSignal::poll`].
    pub fn poll_ending(&self, cx: &mut std::task::Context<'_>) -> Option<Signalled> {
        self.waker.register(cx.waker());
        if self.shutdown.load(Ordering::Acquire) {
            Some(Signalled::Shutdown)
        } else if self.revoked.load(Ordering::Acquire) {
            Some(Signalled::Revoked)
        } else if self.taken_over.load(Ordering::Acquire) {
            Some(Signalled::TakenOver)
        } else {
            None
        }
    }

    /// Registers the current task for wake-ups, then reports what is set. Registering
    /// first means a flag set after this call still wakes the task.
    pub fn poll(&self, cx: &mut std::task::Context<'_>) -> Option<Signalled> {
        self.poll_ending(cx)
            .or_else(|| {
                (self.expired.load(Ordering::Relaxed) && self.expired.swap(false, Ordering::AcqRel))
                    .then_some(Signalled::Expired)
            })
            .or_else(|| {
                self.deliveries
                    .swap(false, Ordering::AcqRel)
                    .then_some(Signalled::Deliveries)
            })
            .or_else(|| {
                (self.park.load(Ordering::Relaxed) && self.park.swap(false, Ordering::AcqRel))
                    .then_some(Signalled::Park)
            })
    }
}

/// What an acknowledgement from the client did to the in-flight window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acked {
    /// The step it acknowledges was done.
    Completed,
    /// No message with that id is in flight: ignored, as mosquitto does.
    Unknown,
    /// The id is in flight in another QoS flow or at another step (PUBREC for a
    /// QoS 1 message, PUBACK for a QoS 2 one, PUBCOMP before PUBREC): a protocol
    /// error, as mosquitto treats it.
    WrongFlow,
}

/// The connection a session is attached to.
#[derive(Debug, Clone)]
pub struct ConnectionLink {
    pub id: u64,
    pub signal: Arc<ConnectionSignal>,
}

impl ConnectionLink {
    pub fn take_over(&self) {
        self.signal.take_over();
    }
}

/// Hashes a session's subscription filters with the standard library's keyed
/// SipHash, under one random key for the whole process: as `RandomState` does,
/// but with no key in each map, 16 bytes less in every session.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionHasher;

impl std::hash::BuildHasher for SessionHasher {
    type Hasher = std::collections::hash_map::DefaultHasher;

    fn build_hasher(&self) -> Self::Hasher {
        static KEYS: std::sync::OnceLock<std::collections::hash_map::RandomState> =
            std::sync::OnceLock::new();
        KEYS.get_or_init(std::collections::hash_map::RandomState::new)
            .build_hasher()
    }
}

/// The sans-I/O state of one session.
#[derive(Debug)]
pub struct SessionState {
    /// The in-flight window (at most 65,535 by the protocol's packet ids).
    max_inflight: u16,
    /// `max_queued_messages`, `u32::MAX` for no limit (u32: every session
    /// carries it).
    max_queued: u32,
    /// `max_inflight_bytes`, or `usize::MAX`.
    max_inflight_bytes: usize,
    /// `max_queued_bytes`, or `usize::MAX`.
    max_queued_bytes: usize,
    pending: VecDeque<Delivery>,
    /// QoS 1/2 messages in `pending`.
    /// 32-bit, as the queue limit: every session carries it.
    pending_reliable: u32,
    /// [`payload_size`] of the QoS 1/2 messages in `pending`.
    pending_reliable_bytes: usize,
    /// [`queued_size`] of the QoS 0 messages in `pending`.
    pending_qos0_bytes: usize,
    /// [`payload_size`] of the QoS 0 messages in `pending`.
    pending_qos0_payload: usize,
    /// In send order; acknowledgements mostly arrive in that order too.
    inflight: VecDeque<(PacketId, InFlight)>,
    /// [`payload_size`] of the PUBLISHes in `inflight` still awaiting PUBACK/PUBREC.
    inflight_bytes: usize,
    last_packet_id: u16,
    /// Incoming QoS 2 packet ids between PUBREC and PUBREL.
    incoming_qos2: Vec<PacketId>,
    pub subscriptions: HashMap<TopicFilter, SubscriptionOptions, SessionHasher>,
    pub connection: Option<ConnectionLink>,
    /// Whether the session outlives its connection.
    pub persistent: bool,
    /// How long a persistent session is kept after its connection ends; `None` is
    /// for ever (3.x, or MQTT 5's 0xFFFFFFFF).
    pub expiry: Option<std::time::Duration>,
    /// Counts attachments, so a timer started for one absence can tell that the
    /// client came back meanwhile.
    pub epoch: u32,
    /// A will waiting for its Will Delay Interval; a reconnect cancels it, the end of
    /// the session sends it.
    pub pending_will: Option<Arc<Message>>,
    /// Set by the first drop and cleared once the queue accepts again, so the drop
    /// is logged once per episode, as mosquitto does.
    pub dropping: bool,
    /// Set when the session is discarded; a subscribe racing with that undoes itself.
    pub removed: bool,
    /// Who the session belongs to, for the ACL check at each delivery; set by the
    /// connection that attaches it.
    pub principal: Option<Arc<Principal>>,
    /// Whether QoS 0 messages wait for an offline persistent client too
    /// (`queue_qos0_messages`), within `max_queued_messages`.
    pub queue_qos0: bool,
    /// Where a persistent session reports its changes, with `persistence` on.
    pub journal: Option<Box<SessionJournal>>,
}

/// A persistent session's link to the store: each change to its queue, window
/// and ids is recorded under the session lock, so the store sees them in order.
#[derive(Debug)]
pub struct SessionJournal {
    pub store: Store,
    pub client_id: Arc<str>,
}

impl SessionJournal {
    pub fn record(&self, change: impl FnOnce(Arc<str>) -> Change) {
        self.store.record(change(Arc::clone(&self.client_id)));
    }
}

impl SessionState {
    /// Limits of 0 mean "no limit", as in mosquitto.conf.
    pub fn new(limits: QueueLimits, persistent: bool) -> Self {
        SessionState {
            max_inflight: if limits.inflight_messages == 0 {
                u16::MAX
            } else {
                limits.inflight_messages
            },
            max_queued: u32::try_from(limits.queued_messages)
                .ok()
                .filter(|&limit| limit != 0)
                .unwrap_or(u32::MAX),
            max_inflight_bytes: limit(limits.inflight_bytes),
            max_queued_bytes: limit(limits.queued_bytes),
            pending: VecDeque::new(),
            pending_reliable: 0,
            pending_reliable_bytes: 0,
            pending_qos0_bytes: 0,
            pending_qos0_payload: 0,
            inflight: VecDeque::new(),
            inflight_bytes: 0,
            last_packet_id: 0,
            incoming_qos2: Vec::new(),
            subscriptions: HashMap::default(),
            connection: None,
            persistent,
            expiry: None,
            epoch: 0,
            pending_will: None,
            dropping: false,
            removed: false,
            principal: None,
            queue_qos0: false,
            journal: None,
        }
    }

    /// Records a change if the session is kept by the store; what the connection
    /// sends next waits until it is durable.
    fn note(&self, change: impl FnOnce(Arc<str>) -> Change) {
        if let Some(journal) = &self.journal {
            journal.record(change);
        }
    }

    /// Records a change no packet the broker sends depends on
    /// ([`Store::record_unwaited`]).
    fn note_unwaited(&self, change: impl FnOnce(Arc<str>) -> Change) {
        if let Some(journal) = &self.journal {
            journal
                .store
                .record_unwaited(change(Arc::clone(&journal.client_id)));
        }
    }

    /// Records a QoS 1/2 delivery joining the queue. A QoS 1 one its publisher
    /// counts (`confirms`) is counted there if the session is kept and online,
    /// so the publisher's PUBACK may go once this subscriber acknowledges it;
    /// otherwise the count is dropped and the publisher's answer waits for the
    /// store, at once.
    fn note_queued(&self, delivery: &mut Delivery) {
        // Only an online subscriber can acknowledge it soon.
        let counted = delivery.qos == QoS::AtLeastOnce && self.connection.is_some();
        let confirmation = delivery.confirms.take().filter(|_| counted);
        let Some(journal) = &self.journal else {
            return;
        };
        let change = Change::Queued {
            client_id: Arc::clone(&journal.client_id),
            delivery: delivery.clone(),
        };
        match confirmation {
            Some(confirmation) => {
                journal.store.record_counted(change, &confirmation);
                delivery.confirms = Some(confirmation);
            }
            None => journal.store.record(change),
        }
    }

    /// Records that the pending will no longer waits.
    pub fn note_will_cleared(&self) {
        self.note(|client_id| Change::WillCleared { client_id });
    }

    /// Records the will now waiting for its delay, due at `due`.
    pub fn note_will_pending(&self, will: &Arc<Message>, due: std::time::SystemTime) {
        self.note(|client_id| Change::WillPending {
            client_id,
            will: Arc::clone(will),
            due,
        });
    }

    /// A QoS 1/2 message read back from the store, sent before the crash.
    pub fn restore_inflight(&mut self, packet_id: PacketId, delivery: Option<Delivery>) {
        self.last_packet_id = packet_id.get();
        match delivery {
            Some(delivery) => {
                self.inflight_bytes += payload_size(&delivery);
                self.inflight
                    .push_back((packet_id, InFlight::Published(delivery)));
            }
            None => self.inflight.push_back((packet_id, InFlight::Released)),
        }
    }

    /// A QoS 1/2 message read back from the store, not yet sent; queue limits do
    /// not apply to what was accepted before the restart.
    pub fn restore_queued(&mut self, delivery: Delivery) {
        self.pending_reliable += 1;
        self.pending_reliable_bytes += payload_size(&delivery);
        self.pending.push_back(delivery);
    }

    pub fn is_connected_to(&self, connection_id: u64) -> bool {
        self.connection
            .as_ref()
            .is_some_and(|link| link.id == connection_id)
    }

    /// Messages waiting to be sent.
    pub fn queued(&self) -> usize {
        self.pending.len()
    }

    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// Offers a delivery. QoS 0 is not kept for an offline client; beyond the
    /// queue bounds (see the module documentation) new messages are dropped.
    pub fn enqueue(&mut self, mut delivery: Delivery) -> Enqueued {
        let full = if delivery.qos == QoS::AtMostOnce {
            if self.connection.is_none() {
                if !self.queue_qos0 {
                    return Enqueued::Skipped;
                }
                // Offline, QoS 0 counts against the same queue as QoS 1/2.
                if self.pending.len() >= self.max_queued() {
                    return Enqueued::Dropped;
                }
            }
            // max_queued_bytes bounds QoS 0 payloads too, checked before adding as
            // mosquitto does (so one message always fits an empty queue); without
            // it, the broker's own bound applies.
            if self.max_queued_bytes == usize::MAX {
                self.pending_qos0_bytes + queued_size(&delivery) > QOS0_QUEUE_BYTES
            } else {
                self.pending_qos0_payload >= self.max_queued_bytes
            }
        } else if self.connection.is_some() {
            // As mosquitto decides at insert time, however far the connection has got
            // with moving messages into flight: a message that could go in flight is
            // taken; else the queue beyond the window must have room.
            let count = self.inflight.len() + self.pending_reliable as usize;
            let bytes = self.inflight_bytes + self.pending_reliable_bytes;
            let could_fly = count < self.max_inflight() && bytes < self.max_inflight_bytes;
            let window_count = if self.max_inflight == u16::MAX {
                0
            } else {
                self.max_inflight()
            };
            let queue_has_room = count.saturating_sub(window_count) < self.max_queued()
                && bytes.saturating_sub(self.max_inflight_bytes_or_zero()) < self.max_queued_bytes;
            !(could_fly || queue_has_room)
        } else if self.queue_qos0 {
            // Offline QoS 0 messages share the queue: count them too.
            self.pending.len() >= self.max_queued()
                || self.pending_reliable_bytes + self.pending_qos0_payload >= self.max_queued_bytes
        } else {
            // Nothing is in flight for an offline client (as mosquitto counts).
            self.pending_reliable as usize >= self.max_queued()
                || self.pending_reliable_bytes >= self.max_queued_bytes
        };
        if full {
            return Enqueued::Dropped;
        }
        if delivery.qos == QoS::AtMostOnce {
            self.pending_qos0_bytes += queued_size(&delivery);
            self.pending_qos0_payload += payload_size(&delivery);
        } else {
            self.pending_reliable += 1;
            self.pending_reliable_bytes += payload_size(&delivery);
            self.note_queued(&mut delivery);
        }
        self.pending.push_back(delivery);
        self.dropping = false;
        Enqueued::Queued
    }

    fn pop_pending(&mut self) -> Option<Delivery> {
        let delivery = self.pending.pop_front()?;
        if delivery.qos == QoS::AtMostOnce {
            self.pending_qos0_bytes -= queued_size(&delivery);
            self.pending_qos0_payload -= payload_size(&delivery);
        } else {
            self.pending_reliable -= 1;
            self.pending_reliable_bytes -= payload_size(&delivery);
        }
        Some(delivery)
    }

    /// `max_inflight_bytes`, with "no limit" as 0: what the window adds to the
    /// queue's byte bound.
    fn max_inflight_bytes_or_zero(&self) -> usize {
        if self.max_inflight_bytes == usize::MAX {
            0
        } else {
            self.max_inflight_bytes
        }
    }

    /// Recounts the queue's tallies after messages were removed from its middle.
    fn recount_pending(&mut self) {
        let (mut reliable, mut reliable_bytes, mut qos0_bytes, mut qos0_payload) = (0, 0, 0, 0);
        for delivery in &self.pending {
            if delivery.qos == QoS::AtMostOnce {
                qos0_bytes += queued_size(delivery);
                qos0_payload += payload_size(delivery);
            } else {
                reliable += 1;
                reliable_bytes += payload_size(delivery);
            }
        }
        self.pending_reliable = u32::try_from(reliable).unwrap_or(u32::MAX);
        self.pending_reliable_bytes = reliable_bytes;
        self.pending_qos0_bytes = qos0_bytes;
        self.pending_qos0_payload = qos0_payload;
    }

    /// Recounts the window's payload bytes after messages were removed from it.
    fn recount_inflight(&mut self) {
        self.inflight_bytes = self
            .inflight
            .iter()
            .map(|(_, state)| match state {
                InFlight::Published(delivery) => payload_size(delivery),
                InFlight::Released => 0,
            })
            .sum();
    }

    fn max_inflight(&self) -> usize {
        usize::from(self.max_inflight)
    }

    fn max_queued(&self) -> usize {
        if self.max_queued == u32::MAX {
            usize::MAX
        } else {
            self.max_queued as usize
        }
    }

    /// Sets the in-flight window: the broker's limit, lowered to what the client
    /// accepts (MQTT 5 Receive Maximum) [MQTT-3.3.4-9 5.0].
    pub fn set_receive_maximum(&mut self, broker: u16, client: u16) {
        let broker = if broker == 0 { u16::MAX } else { broker };
        self.max_inflight = broker.min(client.max(1));
    }

    /// The next PUBLISH to write, if the in-flight window allows one. QoS 1/2 messages
    /// enter the window here; messages behind a blocked one wait, keeping order.
    /// Messages that expired while queued [MQTT-3.3.2-5 5.0], or that `accept` refuses
    /// (too large for the client [MQTT-3.1.2-25 5.0]), are dropped as if delivered.
    pub fn next_publish(
        &mut self,
        now: std::time::Instant,
        accept: impl Fn(&Delivery) -> bool,
    ) -> Option<Outgoing> {
        loop {
            let front = self.pending.front()?;
            if front.message.is_expired(now) || !accept(front) {
                if self.pop_pending().is_some_and(|d| d.qos != QoS::AtMostOnce) {
                    self.note_unwaited(|client_id| Change::Skipped { client_id });
                }
                continue;
            }
            return self.next_acceptable();
        }
    }

    fn next_acceptable(&mut self) -> Option<Outgoing> {
        let front = self.pending.front()?;
        if front.qos == QoS::AtMostOnce {
            let delivery = self.pop_pending()?;
            return Some(Outgoing::Publish {
                delivery,
                packet_id: None,
                dup: false,
            });
        }
        // max_inflight_bytes, as mosquitto: another goes out while the window holds
        // fewer bytes, so one message larger than the limit still can.
        if self.inflight.len() >= self.max_inflight()
            || self.inflight_bytes >= self.max_inflight_bytes
        {
            return None;
        }
        let packet_id = self.allocate_packet_id()?;
        let delivery = self.pop_pending()?;
        // A QoS 2 PUBLISH goes out only once its packet id is durable: sent again
        // after a crash under another id, the client would take it as a new
        // message. A QoS 1 one may go at once; at worst it is sent twice.
        let sent = |client_id| Change::Sent {
            client_id,
            packet_id: packet_id.get(),
        };
        if delivery.qos == QoS::ExactlyOnce {
            self.note(sent);
        } else {
            self.note_unwaited(sent);
        }
        self.inflight_bytes += payload_size(&delivery);
        self.inflight
            .push_back((packet_id, InFlight::Published(delivery.clone())));
        Some(Outgoing::Publish {
            delivery,
            packet_id: Some(packet_id),
            dup: false,
        })
    }

    /// Everything in flight, to send again after a reconnect: PUBLISH with DUP set,
    /// or PUBREL for messages already received by the client [MQTT-4.4.0-1 3.1.1/5.0].
    pub fn replay(&self) -> Vec<Outgoing> {
        self.inflight
            .iter()
            .map(|(id, state)| match state {
                InFlight::Published(delivery) => Outgoing::Publish {
                    delivery: delivery.clone(),
                    packet_id: Some(*id),
                    dup: true,
                },
                InFlight::Released => Outgoing::PubRel(*id),
            })
            .collect()
    }

    fn position(&self, packet_id: PacketId) -> Option<usize> {
        self.inflight.iter().position(|(id, _)| *id == packet_id)
    }

    /// PUBACK: completes a QoS 1 delivery.
    pub fn puback(&mut self, packet_id: PacketId) -> Acked {
        let Some(at) = self.position(packet_id) else {
            return Acked::Unknown;
        };
        match &self.inflight[at].1 {
            InFlight::Published(delivery) if delivery.qos == QoS::AtLeastOnce => {
                if let Some((_, InFlight::Published(delivery))) = self.inflight.remove(at) {
                    self.inflight_bytes -= payload_size(&delivery);
                    if let Some(confirmation) = &delivery.confirms {
                        confirmation.delivered();
                    }
                }
                self.note_unwaited(|client_id| Change::Acked {
                    client_id,
                    packet_id: packet_id.get(),
                });
                Acked::Completed
            }
            // A QoS 2 message, awaiting PUBREC or PUBCOMP.
            _ => Acked::WrongFlow,
        }
    }

    /// PUBREC: the client has a QoS 2 message; the broker now sends PUBREL. A PUBREC
    /// repeated after the PUBREL counts as completed (the PUBREL is sent again).
    pub fn pubrec(&mut self, packet_id: PacketId) -> Acked {
        let Some(at) = self.position(packet_id) else {
            return Acked::Unknown;
        };
        match &self.inflight[at].1 {
            InFlight::Published(delivery) if delivery.qos == QoS::ExactlyOnce => {
                if let InFlight::Published(delivery) =
                    std::mem::replace(&mut self.inflight[at].1, InFlight::Released)
                {
                    self.inflight_bytes -= payload_size(&delivery);
                }
                self.note(|client_id| Change::Released {
                    client_id,
                    packet_id: packet_id.get(),
                });
                Acked::Completed
            }
            InFlight::Released => Acked::Completed,
            // A QoS 1 message.
            InFlight::Published(_) => Acked::WrongFlow,
        }
    }

    /// PUBCOMP: completes a QoS 2 delivery whose PUBREL was sent.
    pub fn pubcomp(&mut self, packet_id: PacketId) -> Acked {
        let Some(at) = self.position(packet_id) else {
            return Acked::Unknown;
        };
        match &self.inflight[at].1 {
            InFlight::Released => {
                self.inflight.remove(at);
                self.note_unwaited(|client_id| Change::Acked {
                    client_id,
                    packet_id: packet_id.get(),
                });
                Acked::Completed
            }
            // A QoS 1 message, or a QoS 2 one whose PUBREC has not come.
            InFlight::Published(_) => Acked::WrongFlow,
        }
    }

    fn allocate_packet_id(&mut self) -> Option<PacketId> {
        for _ in 0..u16::MAX {
            self.last_packet_id = self.last_packet_id.checked_add(1).unwrap_or(1);
            let candidate = PacketId::new(self.last_packet_id)?;
            if self.position(candidate).is_none() {
                return Some(candidate);
            }
        }
        None
    }

    /// Whether an incoming QoS 2 message with this id awaits PUBREL.
    pub fn awaiting_release(&self, packet_id: PacketId) -> bool {
        self.incoming_qos2.contains(&packet_id)
    }

    /// Incoming QoS 2 messages awaiting PUBREL: what counts against the broker's
    /// Receive Maximum.
    pub fn awaiting_release_count(&self) -> usize {
        self.incoming_qos2.len()
    }

    /// An incoming QoS 2 PUBLISH: true the first time its id is seen, false for a
    /// re-sent one before PUBREL, which must not be delivered again [MQTT-4.3.3-10 5.0].
    pub fn receive_qos2(&mut self, packet_id: PacketId) -> bool {
        if self.incoming_qos2.contains(&packet_id) {
            return false;
        }
        self.incoming_qos2.push(packet_id);
        self.note(|client_id| Change::Received {
            client_id,
            packet_id: packet_id.get(),
        });
        true
    }

    /// PUBREL for an incoming QoS 2 message; false if the id was unknown.
    pub fn release_qos2(&mut self, packet_id: PacketId) -> bool {
        match self.incoming_qos2.iter().position(|id| *id == packet_id) {
            Some(at) => {
                self.incoming_qos2.swap_remove(at);
                self.note(|client_id| Change::ReceiveDone {
                    client_id,
                    packet_id: packet_id.get(),
                });
                true
            }
            None => false,
        }
    }

    /// Forgets every incoming QoS 2 id awaiting PUBREL: the sender's session is
    /// gone (a bridge's remote broker answered Session Present 0), so a new
    /// message under one of those ids is new, not a copy.
    pub fn forget_incoming_qos2(&mut self) {
        for packet_id in std::mem::take(&mut self.incoming_qos2) {
            self.note(|client_id| Change::ReceiveDone {
                client_id,
                packet_id: packet_id.get(),
            });
        }
    }

    /// Takes the QoS 1/2 messages that reached this session through a shared
    /// subscription and were not acknowledged, so the group can deliver them to
    /// another member.
    pub fn take_shared(&mut self) -> Vec<Delivery> {
        let mut taken = Vec::new();
        self.pending.retain(|d| {
            let shared = d.shared.is_some() && d.qos != QoS::AtMostOnce;
            if shared {
                taken.push(d.clone());
            }
            !shared
        });
        self.recount_pending();
        self.inflight.retain(|(_, state)| match state {
            InFlight::Published(d) if d.shared.is_some() => {
                taken.push(d.clone());
                false
            }
            _ => true,
        });
        self.recount_inflight();
        taken
    }

    /// Drops queued messages (not yet sent) that `keep` refuses: on a resumed
    /// session, what the ACL in force no longer lets its owner read.
    pub fn retain_pending(&mut self, mut keep: impl FnMut(&Delivery) -> bool) {
        let before = self.pending.len();
        self.pending.retain(|delivery| keep(delivery));
        self.recount_pending();
        if self.pending.len() != before {
            let deliveries = self
                .pending
                .iter()
                .filter(|d| d.qos != QoS::AtMostOnce)
                .cloned()
                .collect();
            self.note(|client_id| Change::QueueReplaced {
                client_id,
                deliveries,
            });
        }
    }

    /// Forgets what only made sense for a connection that ended: QoS 0 messages still
    /// waiting are dropped, as mosquitto does.
    pub fn detach(&mut self) {
        self.connection = None;
        if !self.queue_qos0 {
            self.pending.retain(|d| d.qos != QoS::AtMostOnce);
            self.pending_qos0_bytes = 0;
            self.pending_qos0_payload = 0;
        }
    }
}

/// A session shared between its connection and the publishers that route to it.
#[derive(Debug)]
pub struct Session {
    /// Unique for the broker's lifetime; keys the subscription index.
    pub id: u64,
    pub client_id: Arc<str>,
    state: Mutex<SessionState>,
}

impl Session {
    pub fn new(id: u64, client_id: Arc<str>, state: SessionState) -> Self {
        Session {
            id,
            client_id,
            state: Mutex::new(state),
        }
    }

    /// Locks the state. A panic while the lock was held cannot leave the state
    /// half-updated in a way that matters more than losing the session would, so a
    /// poisoned lock is recovered rather than propagated to every publisher.
    pub fn lock(&self) -> MutexGuard<'_, SessionState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a delivery (which the session reports to the store, if it is kept
    /// there), and wakes the connection serving this session.
    pub fn deliver(&self, delivery: Delivery) -> Enqueued {
        let mut state = self.lock();
        let outcome = state.enqueue(delivery);
        if outcome != Enqueued::Queued {
            return outcome;
        }
        if let Some(link) = &state.connection {
            link.signal.deliveries_queued();
        }
        outcome
    }
}

#[cfg(test)]
impl Delivery {
    /// A delivery of a fresh one-byte message on topic `t` at `qos`, for tests.
    pub(crate) fn sample(qos: QoS) -> Delivery {
        Delivery {
            message: Arc::new(Message::new(
                crate::protocol::TopicName::new("t").expect("valid"),
                bytes::Bytes::from_static(b"x"),
                qos,
                false,
            )),
            qos,
            retain: false,
            subscription_ids: Vec::new(),
            shared: None,
            confirms: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::TopicName;
    use bytes::Bytes;

    fn delivery(qos: QoS) -> Delivery {
        Delivery::sample(qos)
    }

    fn online(max_inflight: u16, max_queued: usize) -> SessionState {
        online_with(QueueLimits {
            inflight_messages: max_inflight,
            queued_messages: max_queued,
            ..QueueLimits::default()
        })
    }

    fn online_with(limits: QueueLimits) -> SessionState {
        let mut state = SessionState::new(limits, false);
        state.connection = Some(ConnectionLink {
            id: 1,
            signal: Arc::default(),
        });
        state
    }

    fn publish_id(outgoing: Option<Outgoing>) -> Option<u16> {
        match outgoing {
            Some(Outgoing::Publish { packet_id, .. }) => packet_id.map(|id| id.get()),
            other => panic!("expected a PUBLISH, got {other:?}"),
        }
    }

    /// A session kept by a store whose writer never runs, so nothing becomes
    /// durable: what is counted shows in the confirmation alone.
    fn kept(online: bool) -> SessionState {
        let mut state = online_with(QueueLimits::default());
        if !online {
            state.connection = None;
        }
        state.persistent = true;
        let journal = crate::broker::store::Journal::new(Default::default());
        state.journal = Some(Box::new(SessionJournal {
            store: Store::Kept(journal),
            client_id: Arc::from("subscriber"),
        }));
        state
    }

    fn counted(qos: QoS, confirmation: &Arc<Confirmation>) -> Delivery {
        Delivery {
            confirms: Some(Arc::clone(confirmation)),
            ..delivery(qos)
        }
    }

    #[test]
    fn qos1_deliveries_to_an_online_kept_session_are_counted_until_their_puback() {
        let publisher = Arc::new(ConnectionSignal::default());
        let confirmation = Arc::new(Confirmation::new(&publisher));
        let mut state = kept(true);
        crate::broker::store::take_recorded_here();
        state.enqueue(counted(QoS::AtLeastOnce, &confirmation));
        state.enqueue(counted(QoS::AtLeastOnce, &confirmation));
        // The queueing is recorded, but the publisher's answer does not wait
        // for it the usual way.
        assert_eq!(crate::broker::store::take_recorded_here(), 0);
        assert!(!confirmation.all_delivered());
        assert_eq!(confirmation.needs(), 2, "the second change's number");
        let first = publish_id(state.next_publish(std::time::Instant::now(), |_| true));
        let second = publish_id(state.next_publish(std::time::Instant::now(), |_| true));
        assert_eq!(
            state.puback(PacketId::new(first.expect("id")).expect("id")),
            Acked::Completed
        );
        assert!(!confirmation.all_delivered(), "one PUBACK still to come");
        assert_eq!(
            state.puback(PacketId::new(second.expect("id")).expect("id")),
            Acked::Completed
        );
        assert!(confirmation.all_delivered());
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        assert_eq!(publisher.poll(&mut context), Some(Signalled::Deliveries));
    }

    #[test]
    fn deliveries_that_cannot_be_acknowledged_soon_are_not_counted() {
        let confirmation = Arc::new(Confirmation::new(&Arc::default()));
        // Offline: the publisher waits for the store, which is asked at once.
        let mut offline = kept(false);
        crate::broker::store::take_recorded_here();
        offline.enqueue(counted(QoS::AtLeastOnce, &confirmation));
        assert_eq!(crate::broker::store::take_recorded_here(), 1);
        // QoS 2 (an upgraded delivery): its PUBREC steps need the store.
        let mut online = kept(true);
        online.enqueue(counted(QoS::ExactlyOnce, &confirmation));
        assert_eq!(crate::broker::store::take_recorded_here(), 1);
        // Not kept: nothing to wait for, nothing counted.
        let mut clean = online_with(QueueLimits::default());
        clean.enqueue(counted(QoS::AtLeastOnce, &confirmation));
        assert!(clean.pending.iter().all(|d| d.confirms.is_none()));
        assert!(confirmation.all_delivered(), "none of them counted");
        assert_eq!(confirmation.needs(), 0);
    }

    #[test]
    fn a_counted_delivery_dropped_unacknowledged_keeps_its_publisher_waiting_for_the_store() {
        let confirmation = Arc::new(Confirmation::new(&Arc::default()));
        let mut state = kept(true);
        state.enqueue(counted(QoS::AtLeastOnce, &confirmation));
        // Dropped unsent (here: too large for the client), as an expired one is.
        assert!(
            state
                .next_publish(std::time::Instant::now(), |_| false)
                .is_none()
        );
        assert!(state.pending.is_empty());
        assert!(!confirmation.all_delivered());
        assert_eq!(confirmation.needs(), 1);
    }

    #[test]
    fn inflight_window_holds_back_the_queue_in_order() {
        let mut state = online(2, 10);
        for _ in 0..3 {
            state.enqueue(delivery(QoS::AtLeastOnce));
        }
        state.enqueue(delivery(QoS::AtMostOnce));
        assert_eq!(
            publish_id(state.next_publish(std::time::Instant::now(), |_| true)),
            Some(1)
        );
        assert_eq!(
            publish_id(state.next_publish(std::time::Instant::now(), |_| true)),
            Some(2)
        );
        assert!(
            state
                .next_publish(std::time::Instant::now(), |_| true)
                .is_none(),
            "window of 2 is full"
        );
        assert_eq!(
            state.puback(PacketId::new(1).expect("id")),
            Acked::Completed
        );
        assert_eq!(
            publish_id(state.next_publish(std::time::Instant::now(), |_| true)),
            Some(3)
        );
        assert_eq!(
            publish_id(state.next_publish(std::time::Instant::now(), |_| true)),
            None,
            "QoS 0 after the window opens"
        );
        assert_eq!(
            state.puback(PacketId::new(1).expect("id")),
            Acked::Unknown,
            "acknowledged twice"
        );
    }

    #[test]
    fn queue_limit_counts_the_window_whether_or_not_it_was_filled_yet() {
        let mut state = online(1, 2);
        for _ in 0..3 {
            assert_eq!(state.enqueue(delivery(QoS::AtLeastOnce)), Enqueued::Queued);
        }
        assert_eq!(state.enqueue(delivery(QoS::AtLeastOnce)), Enqueued::Dropped);
        state.next_publish(std::time::Instant::now(), |_| true);
        assert_eq!(
            state.enqueue(delivery(QoS::AtLeastOnce)),
            Enqueued::Dropped,
            "one in flight, two queued"
        );
        assert_eq!(
            state.puback(PacketId::new(1).expect("id")),
            Acked::Completed
        );
        assert_eq!(state.enqueue(delivery(QoS::AtLeastOnce)), Enqueued::Queued);
    }

    fn sized(qos: QoS, bytes: usize) -> Delivery {
        Delivery {
            message: Arc::new(Message::new(
                TopicName::new("t").expect("valid"),
                Bytes::from(vec![0; bytes]),
                qos,
                false,
            )),
            ..delivery(qos)
        }
    }

    #[test]
    fn byte_limits_bound_the_window_and_the_queue() {
        let mut state = online_with(QueueLimits {
            inflight_messages: 0,
            inflight_bytes: 250,
            queued_messages: 0,
            queued_bytes: 300,
        });
        // Accepted while window (250) plus queue (300) hold fewer bytes, as mosquitto
        // decides: six of 100 bytes, not a seventh.
        for _ in 0..6 {
            assert_eq!(
                state.enqueue(sized(QoS::AtLeastOnce, 100)),
                Enqueued::Queued
            );
        }
        assert_eq!(
            state.enqueue(sized(QoS::AtLeastOnce, 100)),
            Enqueued::Dropped
        );
        // Another goes out while the window holds fewer than 250 bytes: three.
        let now = std::time::Instant::now();
        for expected in 1..=3 {
            assert_eq!(
                publish_id(state.next_publish(now, |_| true)),
                Some(expected)
            );
        }
        assert!(
            state.next_publish(now, |_| true).is_none(),
            "300 bytes in flight"
        );
        assert_eq!(
            state.puback(PacketId::new(1).expect("id")),
            Acked::Completed
        );
        assert_eq!(publish_id(state.next_publish(now, |_| true)), Some(4));
        // QoS 0 payloads are bounded by max_queued_bytes too, checked before adding:
        // one larger than the limit fits an empty queue, then nothing more does.
        assert_eq!(state.enqueue(sized(QoS::AtMostOnce, 301)), Enqueued::Queued);
        assert_eq!(state.enqueue(sized(QoS::AtMostOnce, 1)), Enqueued::Dropped);
    }

    #[test]
    fn one_message_larger_than_the_window_still_goes_out() {
        let mut state = online_with(QueueLimits {
            inflight_bytes: 10,
            ..QueueLimits::default()
        });
        state.enqueue(sized(QoS::ExactlyOnce, 1000));
        state.enqueue(sized(QoS::ExactlyOnce, 1));
        let now = std::time::Instant::now();
        assert_eq!(publish_id(state.next_publish(now, |_| true)), Some(1));
        assert!(state.next_publish(now, |_| true).is_none());
        // PUBREC releases the payload's bytes; the PUBREL stage holds none.
        assert_eq!(
            state.pubrec(PacketId::new(1).expect("id")),
            Acked::Completed
        );
        assert_eq!(publish_id(state.next_publish(now, |_| true)), Some(2));
    }

    #[test]
    fn qos0_is_bounded_by_bytes_not_by_the_qos1_queue_limit() {
        let mut state = online(1, 2);
        for _ in 0..100 {
            assert_eq!(state.enqueue(delivery(QoS::AtMostOnce)), Enqueued::Queued);
        }
        let big = Delivery {
            message: Arc::new(Message::new(
                TopicName::new("t").expect("valid"),
                Bytes::from(vec![0; QOS0_QUEUE_BYTES]),
                QoS::AtMostOnce,
                false,
            )),
            ..delivery(QoS::AtMostOnce)
        };
        assert_eq!(state.enqueue(big), Enqueued::Dropped);
        for _ in 0..100 {
            assert!(
                state
                    .next_publish(std::time::Instant::now(), |_| true)
                    .is_some()
            );
        }
        assert_eq!(state.pending_qos0_bytes, 0);
    }

    #[test]
    fn offline_sessions_keep_qos1_and_skip_qos0() {
        let mut state = SessionState::new(
            QueueLimits {
                queued_messages: 100,
                ..QueueLimits::default()
            },
            true,
        );
        assert_eq!(state.enqueue(delivery(QoS::AtMostOnce)), Enqueued::Skipped);
        assert_eq!(state.enqueue(delivery(QoS::ExactlyOnce)), Enqueued::Queued);
        assert_eq!(state.queued(), 1);
    }

    #[test]
    fn qos2_flow_and_replay_after_reconnect() {
        let mut state = online(10, 10);
        state.enqueue(delivery(QoS::ExactlyOnce));
        state.enqueue(delivery(QoS::ExactlyOnce));
        publish_id(state.next_publish(std::time::Instant::now(), |_| true));
        publish_id(state.next_publish(std::time::Instant::now(), |_| true));
        assert_eq!(
            state.pubrec(PacketId::new(1).expect("id")),
            Acked::Completed
        );
        assert_eq!(
            state.pubcomp(PacketId::new(2).expect("id")),
            Acked::WrongFlow,
            "PUBCOMP before PUBREC"
        );
        assert_eq!(
            state.puback(PacketId::new(2).expect("id")),
            Acked::WrongFlow,
            "PUBACK for QoS 2"
        );
        state.detach();
        let replay = state.replay();
        assert!(matches!(replay[0], Outgoing::PubRel(id) if id.get() == 1));
        assert!(
            matches!(replay[1], Outgoing::Publish { dup: true, packet_id: Some(id), .. } if id.get() == 2)
        );
        assert_eq!(
            state.pubcomp(PacketId::new(1).expect("id")),
            Acked::Completed
        );
        assert_eq!(state.inflight(), 1);
    }

    #[test]
    fn packet_ids_skip_those_in_flight_and_wrap() {
        let mut state = online(0, 0);
        state.last_packet_id = u16::MAX - 1;
        state.enqueue(delivery(QoS::AtLeastOnce));
        state.enqueue(delivery(QoS::AtLeastOnce));
        state.enqueue(delivery(QoS::AtLeastOnce));
        assert_eq!(
            publish_id(state.next_publish(std::time::Instant::now(), |_| true)),
            Some(u16::MAX)
        );
        assert_eq!(
            publish_id(state.next_publish(std::time::Instant::now(), |_| true)),
            Some(1)
        );
        state.last_packet_id = u16::MAX - 1;
        assert_eq!(
            publish_id(state.next_publish(std::time::Instant::now(), |_| true)),
            Some(2),
            "65535 and 1 are in flight"
        );
    }

    #[test]
    fn incoming_qos2_is_delivered_once() {
        let mut state = online(10, 10);
        let id = PacketId::new(7).expect("id");
        assert!(state.receive_qos2(id));
        assert!(!state.receive_qos2(id), "re-sent before PUBREL");
        assert!(state.release_qos2(id));
        assert!(!state.release_qos2(id));
        assert!(state.receive_qos2(id), "the id may be reused after PUBREL");
    }
}
