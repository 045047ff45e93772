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
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use super::config::Config;
use super::log::Logger;
use super::message::Message;
use super::retain::RetainedStore;
use super::session::{ConnectionLink, ConnectionSignal, Delivery, Enqueued, Session, SessionState};
use super::stats::Stats;
use super::store::{Store, StoreEvent};
use super::topic_tree::SubscriptionTree;
use crate::protocol::{QoS, RetainHandling, SubscriptionOptions, TopicFilter};

/// One subscription as the index stores it.
#[derive(Debug, Clone)]
pub struct Subscriber {
    pub session: Arc<Session>,
    pub options: SubscriptionOptions,
    pub subscription_id: Option<u32>,
}

/// A session one message goes to, after merging overlapping subscriptions.
struct Target {
    session: Arc<Session>,
    qos: QoS,
    retain_as_published: bool,
    subscription_ids: Vec<u32>,
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
    sessions: Mutex<HashMap<Arc<str>, Arc<Session>>>,
    retained: Mutex<RetainedStore>,
    subscriptions: RwLock<SubscriptionTree<Subscriber>>,
    next_session_id: AtomicU64,
    next_connection_id: AtomicU64,
    /// Open sockets, for `max_connections`.
    pub open_sockets: AtomicUsize,
    /// The signal of every connection task, so shutdown can reach each one.
    connections: Mutex<HashMap<u64, Arc<ConnectionSignal>>>,
    shutting_down: AtomicBool,
}

/// Recovers a poisoned lock: a panic under it is a bug, but taking every other
/// connection down with it would be worse (DEVELOPERS.md: no panic takes the broker
/// down).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Router {
    pub fn new(config: Config, log: Logger, store: Store) -> Self {
        Router {
            config,
            log,
            stats: Stats::default(),
            store,
            sessions: Mutex::new(HashMap::new()),
            retained: Mutex::new(RetainedStore::default()),
            subscriptions: RwLock::new(SubscriptionTree::default()),
            next_session_id: AtomicU64::new(1),
            next_connection_id: AtomicU64::new(1),
            open_sockets: AtomicUsize::new(0),
            connections: Mutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
        }
    }

    pub fn next_connection_id(&self) -> u64 {
        self.next_connection_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Makes a connection task reachable by [`Router::shut_down_connections`]. A task
    /// that registers after shutdown began is told at once.
    pub fn register_connection(&self, id: u64, signal: Arc<ConnectionSignal>) {
        lock(&self.connections).insert(id, Arc::clone(&signal));
        if self.shutting_down.load(Ordering::Acquire) {
            signal.shut_down();
        }
    }

    pub fn unregister_connection(&self, id: u64) {
        lock(&self.connections).remove(&id);
    }

    /// Tells every connection task to end, without publishing wills.
    pub fn shut_down_connections(&self) {
        self.shutting_down.store(true, Ordering::Release);
        for signal in lock(&self.connections).values() {
            signal.shut_down();
        }
    }

    /// Attaches a connection to the session of `client_id`, resuming it when the
    /// client asked to and the old session was persistent, else starting afresh.
    /// A connection already holding the id is detached and returned, so the caller
    /// can tell it to close [MQTT-3.1.4-2]; the registry lock makes this atomic, so
    /// of many simultaneous CONNECTs with one id exactly one ends up attached.
    pub fn open_session(
        &self,
        client_id: &str,
        clean_start: bool,
        persistent: bool,
        link: ConnectionLink,
    ) -> OpenedSession {
        let mut sessions = lock(&self.sessions);
        let mut previous = None;
        if let Some(existing) = sessions.get(client_id).cloned() {
            let mut state = existing.lock();
            previous = state.connection.take();
            if !clean_start && state.persistent {
                state.connection = Some(link);
                state.persistent = persistent;
                drop(state);
                self.store.record(StoreEvent::SessionOpened { client_id });
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
        let mut state = SessionState::new(
            self.config.max_inflight_messages,
            self.config.max_queued_messages,
            persistent,
        );
        state.connection = Some(link);
        let id = self.next_session_id.fetch_add(1, Ordering::Relaxed);
        let session = Arc::new(Session::new(id, Arc::clone(&client_id), state));
        sessions.insert(client_id, Arc::clone(&session));
        if persistent {
            self.store.record(StoreEvent::SessionOpened {
                client_id: &session.client_id,
            });
        }
        OpenedSession {
            session,
            present: false,
            previous,
        }
    }

    /// Detaches connection `connection_id` from its session; a session that does not
    /// outlive its connection is discarded. Does nothing if another connection has
    /// taken the session over meanwhile.
    pub fn close_session(&self, session: &Arc<Session>, connection_id: u64) {
        let mut sessions = lock(&self.sessions);
        let mut state = session.lock();
        if !state.is_connected_to(connection_id) {
            return;
        }
        state.detach();
        if state.persistent {
            return;
        }
        drop(state);
        if sessions
            .get(&session.client_id)
            .is_some_and(|registered| Arc::ptr_eq(registered, session))
        {
            sessions.remove(&session.client_id);
        }
        self.discard(session);
    }

    /// Removes a session's subscriptions; marks it removed so a subscribe racing
    /// with this undoes itself.
    fn discard(&self, session: &Arc<Session>) {
        let filters: Vec<TopicFilter> = {
            let mut state = session.lock();
            state.removed = true;
            state
                .subscriptions
                .drain()
                .map(|(filter, _)| filter)
                .collect()
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
        self.store.record(StoreEvent::SessionRemoved {
            client_id: &session.client_id,
        });
    }

    /// Routes a message to every matching subscription and, if it is retained,
    /// stores it. Returns the number of sessions it was queued for.
    pub fn publish(&self, message: Arc<Message>) -> usize {
        let mut targets = TARGETS.with(|cell| std::mem::take(&mut *cell.borrow_mut()));
        {
            let retained = if message.retain && self.config.retain_available {
                let mut store = lock(&self.retained);
                store.set(&message);
                self.store.record(StoreEvent::Retained(&message));
                Some(store)
            } else {
                None
            };
            let index = self.subscriptions.read().unwrap_or_else(|p| p.into_inner());
            index.for_each_match(message.topic.as_str(), |subscriber| {
                if subscriber.options.no_local && subscriber.session.id == message.origin {
                    return;
                }
                targets.push(Target {
                    session: Arc::clone(&subscriber.session),
                    qos: subscriber.options.qos.min(message.qos),
                    retain_as_published: subscriber.options.retain_as_published,
                    subscription_ids: subscriber.subscription_id.into_iter().collect(),
                });
            });
            drop(index);
            drop(retained);
        }
        merge_overlapping(&mut targets);
        let delivered = targets.len();
        for target in targets.drain(..) {
            let delivery = Delivery {
                message: Arc::clone(&message),
                qos: target.qos,
                retain: target.retain_as_published && message.retain,
                subscription_ids: target.subscription_ids,
            };
            self.report(
                &target.session,
                target.session.deliver(delivery, &self.store),
            );
        }
        TARGETS.with(|cell| *cell.borrow_mut() = targets);
        delivered
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
        let retained = lock(&self.retained);
        let existed = {
            let mut index = self
                .subscriptions
                .write()
                .unwrap_or_else(|p| p.into_inner());
            let subscriber = Subscriber {
                session: Arc::clone(session),
                options,
                subscription_id,
            };
            index.insert(filter, session.id, subscriber).is_some()
        };
        let removed = {
            let mut state = session.lock();
            if !state.removed {
                state.subscriptions.insert(filter.clone(), options);
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
        self.store.record(StoreEvent::Subscribed {
            client_id: &session.client_id,
            filter,
            options,
        });
        // Retained messages go to new subscribers, never to shared subscriptions
        // [MQTT-3.8.4-3] (v5 §4.8.2: not sent for shared subscriptions).
        let send_retained = filter.share_group().is_none()
            && match options.retain_handling {
                RetainHandling::SendAtSubscribe => true,
                RetainHandling::SendIfNew => !existed,
                RetainHandling::DoNotSend => false,
            };
        if send_retained {
            let mut messages = Vec::new();
            retained.matches(filter.filter(), &mut messages);
            for message in messages {
                let delivery = Delivery {
                    qos: options.qos.min(message.qos),
                    message,
                    retain: true,
                    subscription_ids: subscription_id.into_iter().collect(),
                };
                self.report(session, session.deliver(delivery, &self.store));
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
        session.lock().subscriptions.remove(filter);
        if existed {
            self.store.record(StoreEvent::Unsubscribed {
                client_id: &session.client_id,
                filter,
            });
        }
        existed
    }

    /// Figures for `$SYS`.
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
/// carrying every matching subscription identifier (§3.3.4, [MQTT-3.3.4-2]).
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
