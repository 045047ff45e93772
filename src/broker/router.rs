//! [`Router`]: the broker's shared state and the operations between sessions:
//! opening and closing sessions (with client-id takeover), routing a message to the
//! sessions whose subscriptions match, subscribing (with retained delivery) and
//! unsubscribing.
//!
//! State and locks, always taken in this order and never held across `.await`:
//! 1. `sessions`: client id → session (registry);
//! 2. `retained`: the retained store;
//! 3. `subscriptions`: the subscription index (read-locked while routing);
//! 4. a session's own state ([`Session::lock`]), innermost.
//!
//! Routing holds the retained lock (for retained messages) and the index read lock
//! only while collecting targets; it queues into each target session afterwards.
//! Subscribing holds the retained lock across inserting the subscription and queuing
//! retained messages, so a concurrent retained PUBLISH reaches the new subscriber
//! exactly once: either live or from the store.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use slab::Slab;

use super::auth::{Principal, Security};
use super::bridge::BridgeCounters;
use super::config::Config;
use super::connection::park::ParkingSlot;
use super::log::Logger;
use super::message::Message;
use super::retain::RetainedStore;
use super::session::{
    ConnectionLink, ConnectionSignal, Delivery, Enqueued, Session, SessionJournal, SessionState,
};
use super::stats::Stats;
use super::store::confirm::Confirmation;
use super::store::{Change, Store};
use super::topic_tree::SubscriptionTree;
use super::will::{SessionAfter, Timers};
use crate::protocol::{QoS, RetainHandling, SubscriptionOptions, TopicFilter};

/// One subscription as the index stores it.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub session: Arc<Session>,
    pub options: SubscriptionOptions,
    pub subscription_id: Option<u32>,
    /// The filter, for a shared subscription (`$share/...`).
    pub shared: Option<Arc<TopicFilter>>,
}

/// A session one message goes to, after merging overlapping subscriptions.
struct Target {
    session: Arc<Session>,
    qos: QoS,
    retain_as_published: bool,
    subscription_ids: Vec<u32>,
    shared: Option<Arc<TopicFilter>>,
}

/// What routing one message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routed {
    /// Sessions with a matching subscription.
    pub matched: usize,
    /// Sessions that took it (not dropped for a full queue).
    pub queued: usize,
}

/// Whether a subscriber's session has a connection and may read `topic`: shared
/// groups prefer such members, so the ACL of one member does not cost the group
/// the message.
fn available(security: &Security, topic: &str) -> impl Fn(&Subscriber) -> bool {
    move |subscriber| {
        let state = subscriber.session.lock();
        state.connection.is_some()
            && (!security.has_acl() || security.may_read(state.principal.as_deref(), topic))
    }
}

thread_local! {
    /// Reused by every publish on this thread, so routing allocates nothing per message.
    static TARGETS: RefCell<Vec<Target>> = const { RefCell::new(Vec::new()) };
}

/// Result of [`Router::open_session`].
pub struct OpenedSession {
    pub session: Arc<Session>,
    /// True when an existing persistent session was resumed.
    pub present: bool,
    /// The connection that held the client id before, now told to close.
    pub previous: Option<ConnectionLink>,
}

/// The broker's shared state; see the module documentation for its locks.
#[derive(Debug)]
pub struct Router {
    pub config: Config,
    pub log: Logger,
    pub stats: Stats,
    pub store: Store,
    /// Password and ACL files, replaced whole on reload.
    pub security: ArcSwap<Security>,
    sessions: Mutex<SessionRegistry>,
    retained: Mutex<RetainedStore>,
    subscriptions: RwLock<SubscriptionTree<Subscriber>>,
    next_session_id: AtomicU64,
    /// Tells registrations of one connection-table slot apart.
    next_connection_generation: std::sync::atomic::AtomicU32,
    /// The signal of every connection, so the keep-alive sweep and shutdown
    /// reach each one. A connection's id is its slot here with the slot's
    /// generation: 16 bytes a client, where a map from id to signal held 37
    /// at 15,000 clients.
    connections: Mutex<Slab<(u32, Arc<ConnectionSignal>)>>,
    /// The most connections registered at once since the keep-alive sweep last
    /// looked, so a burst between two sweeps is not missed.
    connection_peak: AtomicUsize,
    shutting_down: AtomicBool,
    /// Will-delay and session-expiry timers, stopped with the broker.
    pub timers: Timers,
    /// Each bridge's counters, by name, for `$SYS`.
    bridges: Mutex<Vec<(String, Arc<BridgeCounters>)>>,
    /// Where idle connections wait without a task, once the broker runs.
    pub parking: ParkingSlot,
}

/// Recovers a poisoned lock: a panic under it is a bug, but taking every other
/// connection down with it would be worse (DEVELOPERS.md: no panic takes the broker
/// down).
/// Sessions by client id. A set of sessions looked up by their own client id,
/// rather than a map from id to session: one pointer per entry instead of
/// three, which is a fifth of what an idle client costs in this table.
#[derive(Debug, Default)]
struct SessionRegistry(std::collections::HashSet<Registered>);

/// A session in the [`SessionRegistry`], hashed and compared by client id.
#[derive(Debug)]
struct Registered(Arc<Session>);

impl PartialEq for Registered {
    fn eq(&self, other: &Self) -> bool {
        self.0.client_id == other.0.client_id
    }
}

impl Eq for Registered {}

impl std::hash::Hash for Registered {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // As `str` hashes: lookups go by `&str`.
        (*self.0.client_id).hash(state);
    }
}

impl std::borrow::Borrow<str> for Registered {
    fn borrow(&self) -> &str {
        &self.0.client_id
    }
}

impl SessionRegistry {
    fn get(&self, client_id: &str) -> Option<&Arc<Session>> {
        self.0.get(client_id).map(|registered| &registered.0)
    }

    /// Registers `session` under its client id, replacing any other.
    fn insert(&mut self, session: Arc<Session>) {
        self.0.replace(Registered(session));
    }

    fn remove(&mut self, client_id: &str) {
        self.0.remove(client_id);
    }

    fn values(&self) -> impl Iterator<Item = &Arc<Session>> {
        self.0.iter().map(|registered| &registered.0)
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Router {
    pub fn new(config: Config, log: Logger, store: Store, security: Security) -> Self {
        Router {
            config,
            log,
            stats: Stats::default(),
            store,
            security: ArcSwap::from_pointee(security),
            sessions: Mutex::new(SessionRegistry::default()),
            retained: Mutex::new(RetainedStore::default()),
            subscriptions: RwLock::new(SubscriptionTree::default()),
            next_session_id: AtomicU64::new(1),
            next_connection_generation: std::sync::atomic::AtomicU32::new(1),
            connections: Mutex::new(Slab::new()),
            connection_peak: AtomicUsize::new(0),
            shutting_down: AtomicBool::new(false),
            timers: Timers::default(),
            bridges: Mutex::new(Vec::new()),
            parking: ParkingSlot::new(),
        }
    }

    /// Makes a bridge's counters part of `$SYS`.
    pub fn add_bridge_counters(&self, name: &str, counters: Arc<BridgeCounters>) {
        lock(&self.bridges).push((name.to_string(), counters));
    }

    /// Each bridge's name and counters.
    pub fn bridge_counters(&self) -> Vec<(String, Arc<BridgeCounters>)> {
        lock(&self.bridges).clone()
    }

    /// Makes a connection reachable by [`Router::shut_down_connections`] and
    /// returns its id, unique among the connections registered now and never
    /// 0. A connection that registers after shutdown began is told at once.
    pub fn register_connection(&self, signal: Arc<ConnectionSignal>) -> u64 {
        let generation = self
            .next_connection_generation
            .fetch_add(1, Ordering::Relaxed)
            .max(1);
        let mut connections = lock(&self.connections);
        let slot = connections.insert((generation, Arc::clone(&signal)));
        self.connection_peak
            .fetch_max(connections.len(), Ordering::Relaxed);
        drop(connections);
        if self.shutting_down.load(Ordering::Acquire) {
            signal.shut_down();
        }
        (u64::from(generation) << 32) | slot as u64
    }

    pub fn unregister_connection(&self, id: u64) {
        let (slot, generation) = ((id & 0xFFFF_FFFF) as usize, (id >> 32) as u32);
        let mut connections = lock(&self.connections);
        if connections
            .get(slot)
            .is_some_and(|(registered, _)| *registered == generation)
        {
            connections.remove(slot);
        }
    }

    /// Wakes the connections whose keep-alive or connect deadline is at or
    /// before `now` (see [`keepalive`](super::keepalive)); returns how many
    /// connections there are, and the most there were since the last call.
    pub fn expire_connections(&self, now: u64) -> (usize, usize) {
        let connections = lock(&self.connections);
        for (_, (_, signal)) in connections.iter() {
            signal.expire_if_due(now);
            signal.park_if_idle();
        }
        let count = connections.len();
        let peak = self.connection_peak.swap(count, Ordering::Relaxed);
        (count, peak.max(count))
    }

    /// Gives back the space of the connection and session maps when they hold
    /// far fewer entries than they have room for (hash maps never shrink on
    /// their own).
    pub fn shrink_maps(&self) {
        lock(&self.connections).shrink_to_fit();
        super::connection::park::shrink();
        let mut sessions = lock(&self.sessions);
        if sessions.0.capacity() > 64 && sessions.0.len() * 4 < sessions.0.capacity() {
            sessions.0.shrink_to_fit();
        }
    }

    /// Disconnects every connected client whose [`Principal`] `revoked` says may no
    /// longer be connected.
    pub fn revoke(&self, revoked: impl Fn(&Principal) -> bool) {
        let sessions = lock(&self.sessions);
        for session in sessions.values() {
            let state = session.lock();
            if let (Some(link), Some(principal)) = (&state.connection, &state.principal)
                && revoked(principal)
            {
                link.signal.revoke();
            }
        }
    }

    /// Tells every connection task to end, without publishing wills.
    pub fn shut_down_connections(&self) {
        self.shutting_down.store(true, Ordering::Release);
        for (_, (_, signal)) in lock(&self.connections).iter() {
            signal.shut_down();
        }
    }

    /// Attaches a connection to the session of `client_id`, resuming it when the
    /// client asked to and the old session was persistent and belongs to the same
    /// user, else starting afresh. A connection already holding the id is detached
    /// and returned, so the caller can tell it to close [MQTT-3.1.4-2 3.1.1, MQTT-3.1.4-3 5.0]; the registry
    /// lock makes this atomic, so of many simultaneous CONNECTs with one id exactly
    /// one ends up attached. `owner` (username, auth scope) becomes the session's
    /// [`Principal`] under the same lock, so no delivery is checked against the
    /// previous owner once the new connection holds the session.
    /// `expiry` is how long the session would be kept after disconnect (`None`:
    /// for ever), which the store keeps for a restart.
    pub fn open_session(
        &self,
        client_id: &str,
        clean_start: bool,
        persistent: bool,
        link: ConnectionLink,
        owner: (Option<String>, usize, bool),
        expiry: Option<Duration>,
    ) -> OpenedSession {
        let mut sessions = lock(&self.sessions);
        let mut previous = None;
        let (username, scope, certified) = owner;
        if let Some(existing) = sessions.get(client_id).cloned() {
            let mut state = existing.lock();
            previous = state.connection.take();
            // Another user's messages never pass to whoever reuses the client id.
            let same_owner = state.principal.as_deref().is_none_or(|p| {
                p.username.as_deref() == username.as_deref() && p.scope_index() == scope
            });
            if !clean_start && state.persistent && same_owner {
                state.connection = Some(link);
                state.persistent = persistent;
                state.epoch = state.epoch.wrapping_add(1);
                // A reconnect cancels a delayed will (v5 §3.1.3.2.2; see will.rs).
                if state.pending_will.take().is_some() {
                    state.note_will_cleared();
                }
                if let Some(journal) = &state.journal {
                    journal.record(|client_id| Change::SessionOpened {
                        client_id,
                        username: username.clone(),
                        scope,
                        fresh: false,
                        expiry,
                    });
                }
                state.principal = Some(Arc::new(Principal::new(
                    username,
                    Arc::clone(&existing.client_id),
                    scope,
                    certified,
                )));
                // The ACL may have changed while the client was away.
                let security = self.security.load();
                if security.has_acl() {
                    let principal = state.principal.clone();
                    state.retain_pending(|delivery| {
                        security.may_read(principal.as_deref(), delivery.message.topic.as_str())
                    });
                }
                drop(state);
                return OpenedSession {
                    session: existing,
                    present: true,
                    previous,
                };
            }
            drop(state);
            sessions.remove(client_id);
            self.discard(&existing);
        }
        let client_id: Arc<str> = Arc::from(client_id);
        let mut state = SessionState::new(self.config.queue_limits(), persistent);
        state.connection = Some(link);
        state.epoch = 1;
        state.queue_qos0 = self.config.queue_qos0_messages;
        state.principal = Some(Arc::new(Principal::new(
            username,
            Arc::clone(&client_id),
            scope,
            certified,
        )));
        if persistent && self.store.is_kept() {
            self.store.record(Change::SessionOpened {
                client_id: Arc::clone(&client_id),
                username: state
                    .principal
                    .as_ref()
                    .and_then(|p| p.username.as_deref().map(String::from)),
                scope,
                fresh: true,
                expiry,
            });
            state.journal = Some(Box::new(SessionJournal {
                store: self.store.clone(),
                client_id: Arc::clone(&client_id),
            }));
        }
        let id = self.next_session_id.fetch_add(1, Ordering::Relaxed);
        let session = Arc::new(Session::new(id, Arc::clone(&client_id), state));
        sessions.insert(Arc::clone(&session));
        OpenedSession {
            session,
            present: false,
            previous,
        }
    }

    /// Detaches connection `connection_id` from its session when its connection
    /// ends. A session that does not outlive the connection (not persistent, or an
    /// expiry of zero) ends now; a persistent one is kept for `expiry` (`None`: for
    /// ever) and then discarded. What it did decides the connection's will
    /// (`will::on_connection_end`).
    pub fn close_session(
        self: &Arc<Self>,
        session: &Arc<Session>,
        connection_id: u64,
        expiry: Option<Duration>,
    ) -> SessionAfter {
        let mut sessions = lock(&self.sessions);
        let mut state = session.lock();
        if !state.is_connected_to(connection_id) {
            // Taken over: resumed by the new connection, or ended by the takeover
            // (the old session was not persistent or the new connection started
            // clean).
            return SessionAfter::TakenOver {
                ended: state.removed,
            };
        }
        state.detach();
        if !state.persistent || expiry == Some(Duration::ZERO) {
            drop(state);
            if sessions
                .get(&session.client_id)
                .is_some_and(|registered| Arc::ptr_eq(registered, session))
            {
                sessions.remove(&session.client_id);
            }
            self.discard(session);
            return SessionAfter::Ended;
        }
        state.expiry = expiry;
        if let Some(journal) = &state.journal {
            journal.record(|client_id| Change::SessionDetached { client_id, expiry });
        }
        let epoch = state.epoch;
        drop(state);
        drop(sessions);
        if let Some(expiry) = expiry {
            let (router, session) = (Arc::clone(self), Arc::clone(session));
            self.timers
                .after(expiry, move || router.expire(&session, epoch));
        }
        SessionAfter::Kept { epoch, expiry }
    }

    /// Ends a persistent session whose expiry interval passed without a reconnect
    /// [MQTT-4.1.0-2 5.0]: its subscriptions and queued messages go, and a will still
    /// waiting for its delay is sent.
    /// Starts the expiry timer of a session read back from the store.
    pub fn expire_after(self: &Arc<Self>, session: &Arc<Session>, epoch: u32, after: Duration) {
        let (router, session) = (Arc::clone(self), Arc::clone(session));
        self.timers
            .after(after, move || router.expire(&session, epoch));
    }

    fn expire(&self, session: &Arc<Session>, epoch: u32) {
        let mut sessions = lock(&self.sessions);
        {
            let state = session.lock();
            if state.epoch != epoch || state.connection.is_some() || state.removed {
                return;
            }
        }
        if sessions
            .get(&session.client_id)
            .is_some_and(|registered| Arc::ptr_eq(registered, session))
        {
            sessions.remove(&session.client_id);
        }
        self.discard(session);
        self.stats.sessions_expired.fetch_add(1, Ordering::Relaxed);
    }

    /// Ends a session: removes its subscriptions, hands its unacknowledged shared
    /// messages to other members of their groups, and sends a will still waiting for
    /// its delay (the session ended first). Marks it removed so a subscribe racing
    /// with this undoes itself.
    fn discard(&self, session: &Arc<Session>) {
        let (filters, shared, will, journal) = {
            let mut state = session.lock();
            state.removed = true;
            // Nothing more of this session reaches the store.
            let journal = state.journal.take();
            let filters: Vec<TopicFilter> = state
                .subscriptions
                .drain()
                .map(|(filter, _)| filter)
                .collect();
            (
                filters,
                state.take_shared(),
                state.pending_will.take(),
                journal,
            )
        };
        if !filters.is_empty() {
            let mut index = self
                .subscriptions
                .write()
                .unwrap_or_else(|p| p.into_inner());
            for filter in &filters {
                index.remove(filter, session.id);
            }
        }
        for delivery in shared {
            self.hand_back(session.id, delivery);
        }
        if let Some(journal) = journal {
            journal.record(|client_id| Change::SessionRemoved { client_id });
        }
        // A will still waiting for its delay goes when the session ends.
        if let Some(will) = will {
            super::will::publish(self, will);
        }
    }

    /// Gives a shared-subscription message that session `leaving` did not
    /// acknowledge to another member of the same group, if there is one.
    fn hand_back(&self, leaving: u64, delivery: Delivery) {
        let Some(filter) = delivery.shared.clone() else {
            return;
        };
        let security = self.security.load();
        let topic = delivery.message.topic.as_str();
        let member = {
            let index = self.subscriptions.read().unwrap_or_else(|p| p.into_inner());
            index
                .shared_member(&filter, available(&security, topic), leaving)
                .map(|subscriber| (Arc::clone(&subscriber.session), subscriber.options.qos))
        };
        // With no member that may read it, the message stays undelivered.
        if security.has_acl()
            && let Some((session, _)) = &member
            && !security.may_read(session.lock().principal.as_deref(), topic)
        {
            return;
        }
        if let Some((session, granted)) = member {
            let delivery = Delivery {
                qos: self.outgoing_qos(granted, delivery.message.qos),
                // Its count stays with the member that left, never counted
                // off: the publisher's answer waits for the store.
                confirms: None,
                ..delivery
            };
            self.report(&session, session.deliver(delivery));
        }
    }

    /// The QoS a message goes out at: the lower of the subscription's and the
    /// message's, or the subscription's with `upgrade_outgoing_qos`.
    fn outgoing_qos(&self, granted: QoS, published: QoS) -> QoS {
        if self.config.upgrade_outgoing_qos {
            granted
        } else {
            granted.min(published)
        }
    }

    /// Routes a message to every matching subscription and, if it is retained,
    /// stores it.
    pub fn publish(&self, message: Arc<Message>) -> Routed {
        self.publish_counted(message, None)
    }

    /// [`publish`](Self::publish), with each QoS 1 delivery to a persistent
    /// session counted in `confirmation`, so the publisher's PUBACK may go once
    /// the subscribers acknowledge them (see `store/confirm.rs`).
    pub fn publish_counted(
        &self,
        message: Arc<Message>,
        confirmation: Option<&Arc<Confirmation>>,
    ) -> Routed {
        let mut targets = TARGETS.with(|cell| std::mem::take(&mut *cell.borrow_mut()));
        let security = self.security.load();
        {
            let retained = if message.retain && self.config.retain_available {
                let mut store = lock(&self.retained);
                store.set(&message);
                // $SYS topics are the broker's own and rebuilt after a restart;
                // mosquitto does not save them either.
                if self.store.is_kept() && !message.topic.as_str().starts_with('$') {
                    self.store.record(Change::Retained(Arc::clone(&message)));
                }
                Some(store)
            } else {
                None
            };
            let index = self.subscriptions.read().unwrap_or_else(|p| p.into_inner());
            let topic = message.topic.as_str();
            index.for_each_match(topic, available(&security, topic), |subscriber| {
                if subscriber.options.no_local && subscriber.session.id == message.origin {
                    return;
                }
                targets.push(Target {
                    session: Arc::clone(&subscriber.session),
                    qos: self.outgoing_qos(subscriber.options.qos, message.qos),
                    retain_as_published: subscriber.options.retain_as_published,
                    subscription_ids: subscriber.subscription_id.into_iter().collect(),
                    shared: subscriber.shared.clone(),
                });
            });
            drop(index);
            drop(retained);
        }
        merge_overlapping(&mut targets);
        let matched = targets.len();
        if security.has_acl() {
            // Every delivery is checked against the reader's ACL.
            let topic = message.topic.as_str();
            targets.retain(|target| {
                let principal = target.session.lock().principal.clone();
                security.may_read(principal.as_deref(), topic)
            });
        }
        // A reader the ACL turns away counts as served: the publisher did nothing
        // wrong, and mosquitto acknowledges with success too.
        let mut routed = Routed {
            matched,
            queued: matched - targets.len(),
        };
        for target in targets.drain(..) {
            let delivery = Delivery {
                message: Arc::clone(&message),
                qos: target.qos,
                retain: target.retain_as_published && message.retain,
                subscription_ids: target.subscription_ids,
                shared: target.shared,
                // Not the publisher's own session: its PUBLISH would be written
                // behind the PUBACK that waits for its acknowledgement.
                confirms: confirmation
                    .filter(|_| {
                        target.qos == QoS::AtLeastOnce && target.session.id != message.origin
                    })
                    .cloned(),
            };
            let outcome = target.session.deliver(delivery);
            routed.queued += usize::from(outcome != Enqueued::Dropped);
            self.report(&target.session, outcome);
        }
        TARGETS.with(|cell| *cell.borrow_mut() = targets);
        routed
    }

    fn report(&self, session: &Session, outcome: Enqueued) {
        if outcome == Enqueued::Dropped {
            self.stats.publish_dropped.fetch_add(1, Ordering::Relaxed);
            let first = {
                let mut state = session.lock();
                std::mem::replace(&mut state.dropping, true)
            };
            if !first {
                self.log.messages_dropped(&session.client_id);
            }
        }
    }

    /// Adds (or replaces) a subscription and queues the retained messages it should
    /// receive. Returns whether the subscription existed before.
    pub fn subscribe(
        &self,
        session: &Arc<Session>,
        filter: &TopicFilter,
        options: SubscriptionOptions,
        subscription_id: Option<u32>,
    ) -> bool {
        let mut retained = lock(&self.retained);
        let existed = {
            let mut index = self
                .subscriptions
                .write()
                .unwrap_or_else(|p| p.into_inner());
            let subscriber = Subscriber {
                session: Arc::clone(session),
                options,
                subscription_id,
                shared: filter.share_group().map(|_| Arc::new(filter.clone())),
            };
            index.insert(filter, session.id, subscriber).is_some()
        };
        let removed = {
            let mut state = session.lock();
            if !state.removed {
                state.subscriptions.insert(filter.clone(), options);
                if let Some(journal) = &state.journal {
                    journal.record(|client_id| Change::Subscribed {
                        client_id,
                        filter: filter.clone(),
                        options,
                        identifier: subscription_id,
                    });
                }
            }
            state.removed
        };
        if removed {
            let mut index = self
                .subscriptions
                .write()
                .unwrap_or_else(|p| p.into_inner());
            index.remove(filter, session.id);
            return existed;
        }
        // Retained messages go to new subscribers, never to shared subscriptions
        // [MQTT-3.8.4-3 3.1.1] (v5 §4.8.2: not sent for shared subscriptions).
        let send_retained = filter.share_group().is_none()
            && match options.retain_handling {
                RetainHandling::SendAtSubscribe => true,
                RetainHandling::SendIfNew => !existed,
                RetainHandling::DoNotSend => false,
            };
        if send_retained {
            let mut messages = Vec::new();
            retained.matches(filter.filter(), &mut messages);
            let security = self.security.load();
            if security.has_acl() {
                let principal = session.lock().principal.clone();
                let check_source = self.config.check_retain_source;
                messages.retain(|message| {
                    let topic = message.topic.as_str();
                    // CVE-2018-12546: a publisher whose write access was taken away
                    // since no longer speaks through its retained messages.
                    let source_may = !check_source
                        || message
                            .publisher
                            .as_deref()
                            .is_none_or(|publisher| security.may_write(publisher, topic));
                    source_may && security.may_read(principal.as_deref(), topic)
                });
            }
            let now = std::time::Instant::now();
            let (expired, messages): (Vec<_>, Vec<_>) =
                messages.into_iter().partition(|m| m.is_expired(now));
            for message in expired {
                // [MQTT-3.3.2-5 5.0]: an expired retained message is deleted, not sent.
                retained.remove(message.topic.as_str());
            }
            for message in messages {
                let delivery = Delivery {
                    qos: self.outgoing_qos(options.qos, message.qos),
                    message,
                    retain: true,
                    subscription_ids: subscription_id.into_iter().collect(),
                    shared: None,
                    confirms: None,
                };
                self.report(session, session.deliver(delivery));
            }
        }
        existed
    }

    /// Removes a subscription; returns whether it existed.
    pub fn unsubscribe(&self, session: &Arc<Session>, filter: &TopicFilter) -> bool {
        let existed = {
            let mut index = self
                .subscriptions
                .write()
                .unwrap_or_else(|p| p.into_inner());
            index.remove(filter, session.id).is_some()
        };
        let state = &mut *session.lock();
        if state.subscriptions.remove(filter).is_some()
            && let Some(journal) = &state.journal
        {
            journal.record(|client_id| Change::Unsubscribed {
                client_id,
                filter: filter.clone(),
            });
        }
        existed
    }

    /// A retained message read back from the store.
    pub fn restore_retained(&self, message: &Arc<Message>) {
        lock(&self.retained).set(message);
    }

    /// A persistent session read back from the store, offline, with its
    /// subscriptions; from now on it reports its changes to the store.
    pub fn restore_session(
        &self,
        client_id: &Arc<str>,
        mut state: SessionState,
        subscriptions: Vec<(TopicFilter, SubscriptionOptions, Option<u32>)>,
        owner: (Option<String>, usize),
    ) -> Arc<Session> {
        state.epoch = 1;
        let (username, scope) = owner;
        state.principal = Some(Arc::new(Principal::new(
            username,
            Arc::clone(client_id),
            scope,
            false,
        )));
        for (filter, options, _) in &subscriptions {
            state.subscriptions.insert(filter.clone(), *options);
        }
        state.journal = Some(Box::new(SessionJournal {
            store: self.store.clone(),
            client_id: Arc::clone(client_id),
        }));
        let id = self.next_session_id.fetch_add(1, Ordering::Relaxed);
        let session = Arc::new(Session::new(id, Arc::clone(client_id), state));
        {
            let mut index = self
                .subscriptions
                .write()
                .unwrap_or_else(|p| p.into_inner());
            for (filter, options, subscription_id) in subscriptions {
                let subscriber = Subscriber {
                    session: Arc::clone(&session),
                    options,
                    subscription_id,
                    shared: filter.share_group().map(|_| Arc::new(filter.clone())),
                };
                index.insert(&filter, id, subscriber);
            }
        }
        lock(&self.sessions).insert(Arc::clone(&session));
        session
    }

    /// Deletes retained messages whose Message Expiry Interval passed [MQTT-3.3.2-5 5.0].
    pub fn purge_expired_retained(&self) {
        lock(&self.retained).purge_expired(std::time::Instant::now());
    }

    /// Figures for `$SYS`.
    /// Every subscription as `(filter, client id, maximum QoS)`.
    pub fn subscription_list(&self) -> Vec<(String, Arc<str>, u8)> {
        let sessions: Vec<Arc<Session>> = lock(&self.sessions).values().cloned().collect();
        let mut list = Vec::new();
        for session in sessions {
            let state = session.lock();
            for (filter, options) in &state.subscriptions {
                list.push((
                    filter.as_str().to_string(),
                    Arc::clone(&session.client_id),
                    options.qos as u8,
                ));
            }
        }
        list
    }

    pub fn snapshot(&self) -> Snapshot {
        let (sessions, queued_messages) = {
            let sessions = lock(&self.sessions);
            let queued = sessions
                .values()
                .map(|s| {
                    let state = s.lock();
                    state.queued() + state.inflight()
                })
                .sum::<usize>();
            (sessions.len(), queued)
        };
        let (retained_count, retained_bytes) = {
            let retained = lock(&self.retained);
            let mut all = Vec::new();
            retained.all(&mut all);
            (
                retained.len(),
                all.iter().map(|m| m.payload.len()).sum::<usize>(),
            )
        };
        let subscriptions = self
            .subscriptions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len();
        Snapshot {
            sessions,
            queued_messages,
            retained_count,
            retained_bytes,
            subscriptions,
        }
    }
}

/// Figures read under the broker's locks for `$SYS`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    pub sessions: usize,
    pub queued_messages: usize,
    pub retained_count: usize,
    pub retained_bytes: usize,
    pub subscriptions: usize,
}

/// A client whose subscriptions overlap gets one copy, at the highest granted QoS,
/// carrying every matching subscription identifier (§3.3.4, [MQTT-3.3.4-2 5.0]).
fn merge_overlapping(targets: &mut Vec<Target>) {
    if targets.len() < 2 {
        return;
    }
    targets.sort_unstable_by_key(|t| t.session.id);
    targets.dedup_by(|later, kept| {
        if later.session.id != kept.session.id {
            return false;
        }
        kept.qos = kept.qos.max(later.qos);
        kept.retain_as_published |= later.retain_as_published;
        kept.subscription_ids.append(&mut later.subscription_ids);
        true
    });
}
