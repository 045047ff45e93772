//! Idle connections held without a task.
//!
//! A connection with nothing to do (nothing to write, nothing half read,
//! nothing waiting for the store) hands its socket and its state to the
//! broker's [`Parking`], and its task ends. The socket goes into one epoll
//! instance watched by one task; the connection's
//! [`ConnectionSignal`](crate::broker::session::ConnectionSignal) gets a waker
//! that points at its slot here. When the socket becomes readable (a packet,
//! or the peer closing) or another task signals the connection (a delivery, a
//! takeover, the keep-alive sweep, shutdown), a task is spawned again and the
//! connection goes on where it stopped.
//!
//! Why: held by a task, an idle connection costs tokio's task cell (512 bytes
//! with the connection's future) and its registration with tokio's reactor (256
//! bytes), more than mosquitto's whole cost per client. Parked, it costs one
//! [`Slot`] in [`PARKED`] and an entry in the kernel's epoll set.
//!
//! When a connection parks (`Connection::connected` in `mod.rs`): at its first
//! idle moment after CONNECT, or after being woken from a park of at least
//! [`EAGER_AFTER_MS`] (a client that pings once a minute parks again right after
//! its PINGRESP); otherwise once the keep-alive sweep saw it idle for a whole
//! sweep interval. A busy connection therefore keeps its task. Only plain TCP
//! sockets park: TLS and WebSocket layers keep state in user space.
//!
//! Hand-written over mio rather than with a crate: no crate parks tokio tasks;
//! mio (tokio's own epoll layer) does the polling.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{RawWaker, RawWakerVTable, Waker};
use std::time::Duration;

use atomic_waker::AtomicWaker;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token};
use slab::Slab;
use tokio::io::unix::AsyncFd;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;

use super::v5::V5;
use super::{Client, Connection, End, OpenSocket};
use crate::broker::auth::Principal;
use crate::broker::keepalive;
use crate::broker::log::PeerAddress;
use crate::broker::router::Router;
use crate::broker::session::{ConnectionSignal, Session};
use crate::protocol::{ProtocolVersion, Will};

/// A connection woken after a park at least this long (milliseconds) parks
/// again at its first idle moment, not after a sweep: it is mostly idle.
pub(super) const EAGER_AFTER_MS: u64 = 1_000;

/// Every parked connection of the process, by slot. One table for all brokers
/// in the process, so a waker needs only the slot's number and generation.
static PARKED: Mutex<Slab<Slot>> = Mutex::new(Slab::new());

/// Hands out slot generations, so a stale waker or epoll event for a slot
/// reused since is recognised and ignored.
static GENERATION: AtomicU32 = AtomicU32::new(0);

fn parked() -> MutexGuard<'static, Slab<Slot>> {
    PARKED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A parked connection: what `Connection` holds once its buffers are empty,
/// without what only matters before CONNECT or while answers wait, in as few
/// bytes as it takes (`Client`'s fields flattened, times in milliseconds).
struct Slot {
    router: Arc<Router>,
    session: Arc<Session>,
    principal: Arc<Principal>,
    will: Option<Box<Will>>,
    v5: Option<Box<V5>>,
    signal: Arc<ConnectionSignal>,
    id: u64,
    /// `Connection::last_packet` on the keep-alive clock.
    last_packet: u64,
    held: Option<OpenSocket>,
    socket: std::net::TcpStream,
    /// The listener's index, `u32::MAX` for none.
    listener: u32,
    /// When it parked, on the keep-alive clock (wrapping).
    parked_at: u32,
    generation: u32,
    keep_alive: u16,
    bridge: bool,
    version: ProtocolVersion,
    state: SlotState,
}

/// Where a slot is in its park.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    /// Its waker and epoll entry are being set up; a wake now is kept for
    /// when they are ([`park`] then hands the slot over itself).
    Arming,
    /// Arming, and a signal came meanwhile.
    WokenWhileArming,
    Parked,
    /// Already handed to its broker's parking task.
    Woken,
}

/// A slot's number and generation in one word: a waker's data and an epoll
/// event's token. Words of 64 bits only: [`Parking::new`] parks nothing on
/// other targets.
fn ticket(key: usize, generation: u32) -> usize {
    ((u64::from(generation) << 32) | (key as u64 & 0xFFFF_FFFF)) as usize
}

fn split(ticket: usize) -> (usize, u32) {
    let ticket = ticket as u64;
    ((ticket & 0xFFFF_FFFF) as usize, (ticket >> 32) as u32)
}

/// One broker's parking: its epoll set, the slots woken by signals, and the
/// tracker its woken connections' tasks join.
pub struct Parking {
    registry: Registry,
    /// The epoll instance, in tokio's reactor, until [`run`] takes it.
    epoll: Mutex<Option<AsyncFd<Poll>>>,
    /// Set when the parking task ended: nothing parks any more.
    closed: AtomicBool,
    /// Parks since the broker started.
    parks: AtomicU64,
    woken: Mutex<Vec<usize>>,
    notify: AtomicWaker,
    /// Connections parked now, and while there are any, a token that keeps the
    /// broker's shutdown waiting until they were woken and ended.
    parked: Mutex<(usize, Option<TaskTrackerToken>)>,
    tasks: TaskTracker,
}

impl std::fmt::Debug for Parking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parking")
            .field("count", &self.count())
            .finish_non_exhaustive()
    }
}

impl Parking {
    /// A parking whose woken connections join `tasks`, made in a tokio
    /// runtime; `None` if the system would not give an epoll instance or the
    /// target's words are not 64 bits (connections then keep their tasks).
    pub fn new(tasks: TaskTracker) -> Option<Arc<Parking>> {
        if usize::BITS < 64 {
            return None;
        }
        let poll = Poll::new().ok()?;
        let registry = poll.registry().try_clone().ok()?;
        // SAFETY: the epoll descriptor belongs to `poll`, which the `AsyncFd`
        // owns and never replaces.
        let epoll =
            unsafe { AsyncFd::register_with_interest(poll, tokio::io::Interest::READABLE) }.ok()?;
        Some(Arc::new(Parking {
            registry,
            epoll: Mutex::new(Some(epoll)),
            closed: AtomicBool::new(false),
            parks: AtomicU64::new(0),
            woken: Mutex::new(Vec::new()),
            notify: AtomicWaker::new(),
            parked: Mutex::new((0, None)),
            tasks,
        }))
    }

    /// Connections parked now.
    pub fn count(&self) -> usize {
        self.parked().0
    }

    /// Parks since the broker started.
    pub fn parks(&self) -> u64 {
        self.parks.load(Ordering::Relaxed)
    }

    /// Whether connections may park: the parking task runs.
    pub fn is_open(&self) -> bool {
        !self.closed.load(Ordering::Acquire)
    }

    fn parked(&self) -> MutexGuard<'_, (usize, Option<TaskTrackerToken>)> {
        self.parked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// One more connection parked.
    fn add(&self) {
        let mut parked = self.parked();
        parked.0 += 1;
        if parked.1.is_none() {
            parked.1 = Some(self.tasks.token());
        }
    }

    /// One connection less parked (its task already spawned, or it ended).
    fn remove(&self) {
        let mut parked = self.parked();
        parked.0 = parked.0.saturating_sub(1);
        if parked.0 == 0 {
            parked.1 = None;
        }
    }

    /// Queues a woken slot for the parking task.
    fn hand_over(&self, ticket: usize) {
        self.woken().push(ticket);
        self.notify.wake();
    }

    fn woken(&self) -> MutexGuard<'_, Vec<usize>> {
        self.woken
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Parks `connection` with its socket; what cannot be parked is ended as a
/// socket error.
pub(super) fn park(
    mut connection: Box<Connection>,
    socket: std::net::TcpStream,
    held: Option<OpenSocket>,
) {
    // `may_park` saw both; whether the parking is still open is checked below,
    // under the table's lock.
    let Some(parking) = connection.router.parking.get().cloned() else {
        return end_now(connection, held);
    };
    let Some(client) = connection.client.take() else {
        return end_now(connection, held);
    };
    let fd = socket.as_raw_fd();
    let Connection {
        router,
        listener,
        version,
        id,
        signal,
        last_packet,
        ..
    } = *connection;
    let Client {
        session,
        principal,
        will,
        keep_alive,
        bridge,
        v5,
    } = client;
    parking.parks.fetch_add(1, Ordering::Relaxed);
    parking.add();
    let generation = GENERATION.fetch_add(1, Ordering::Relaxed);
    let slot = Slot {
        router,
        session,
        principal,
        will,
        v5,
        signal: Arc::clone(&signal),
        id,
        last_packet: keepalive::millis(last_packet),
        held,
        socket,
        listener: listener.unwrap_or(u32::MAX),
        parked_at: keepalive::millis(Instant::now()) as u32,
        generation,
        keep_alive,
        bridge,
        version,
        state: SlotState::Arming,
    };
    let key = {
        let mut slots = parked();
        // Checked under the lock that closing takes: no slot goes in after
        // the parking closed and collected its own.
        if !parking.is_open() {
            drop(slots);
            parking.remove();
            let (connection, _socket, held, _) = awaken(slot);
            return end_now(connection, held);
        }
        slots.insert(slot)
    };
    let ticket = ticket(key, generation);
    // SAFETY: the vtable's functions only read the data word as a number.
    let waker = unsafe { Waker::from_raw(RawWaker::new(ticket as *const (), &WAKER_VTABLE)) };
    // A wake from here on is kept until the epoll entry exists: handed over
    // before, the slot could be woken and its socket given back to tokio while
    // this registers it with the parking's epoll set.
    let raised = signal.register_parked(&waker);
    let registered =
        parking
            .registry
            .register(&mut SourceFd(&fd), Token(ticket), Interest::READABLE);
    let hand_over = {
        let mut slots = parked();
        match slots
            .get_mut(key)
            .filter(|slot| slot.generation == generation)
        {
            // An epoll event took it already.
            None => false,
            Some(slot) => {
                let woken = slot.state == SlotState::WokenWhileArming;
                if woken || raised || registered.is_err() || !parking.is_open() {
                    slot.state = SlotState::Woken;
                    true
                } else {
                    slot.state = SlotState::Parked;
                    false
                }
            }
        }
    };
    if hand_over {
        parking.hand_over(ticket);
    }
}

/// Ends a connection that could not park, as a lost socket.
pub(super) fn end_now(mut connection: Box<Connection>, held: Option<OpenSocket>) {
    connection.release(End::SocketError);
    connection.router.unregister_connection(connection.id);
    drop(held);
}

static WAKER_VTABLE: RawWakerVTable = RawWakerVTable::new(
    |data| RawWaker::new(data, &WAKER_VTABLE),
    |data| wake(data as usize),
    |data| wake(data as usize),
    |_| {},
);

/// A signal woke a parked connection: hands its slot to its broker's parking
/// task, once.
fn wake(ticket: usize) {
    let (key, generation) = split(ticket);
    let parking = {
        let mut slots = parked();
        match slots.get_mut(key) {
            Some(slot) if slot.generation == generation => match slot.state {
                SlotState::Parked => {
                    slot.state = SlotState::Woken;
                    slot.router.parking.get().cloned()
                }
                SlotState::Arming => {
                    slot.state = SlotState::WokenWhileArming;
                    None
                }
                SlotState::WokenWhileArming | SlotState::Woken => None,
            },
            _ => None,
        }
    };
    if let Some(parking) = parking {
        parking.hand_over(ticket);
    }
}

/// The connection a slot holds, with its socket, its listener's count and
/// when it parked.
fn awaken(
    slot: Slot,
) -> (
    Box<Connection>,
    std::net::TcpStream,
    Option<OpenSocket>,
    u32,
) {
    // The peer's address only names a client before its CONNECT: not kept,
    // and not asked of the kernel again.
    let peer = PeerAddress::Ip(([0, 0, 0, 0], 0).into());
    let listener = (slot.listener != u32::MAX).then_some(slot.listener);
    let mut connection = Box::new(Connection::with(
        slot.router,
        peer,
        listener,
        slot.id,
        slot.signal,
    ));
    connection.version = slot.version;
    connection.last_packet = keepalive::instant(slot.last_packet);
    connection.client = Some(Client {
        session: slot.session,
        principal: slot.principal,
        will: slot.will,
        keep_alive: slot.keep_alive,
        bridge: slot.bridge,
        v5: slot.v5,
    });
    (connection, slot.socket, slot.held, slot.parked_at)
}

/// Takes a parked connection out of its slot and gives it a task again.
fn unpark(parking: &Parking, ticket: usize) {
    let (key, generation) = split(ticket);
    let slot = {
        let mut slots = parked();
        match slots.get(key) {
            Some(slot) if slot.generation == generation => slots.remove(key),
            _ => return,
        }
    };
    let _ = parking
        .registry
        .deregister(&mut SourceFd(&slot.socket.as_raw_fd()));
    let (connection, socket, held, parked_at) = awaken(slot);
    let now = keepalive::millis(Instant::now()) as u32;
    let eager = u64::from(now.wrapping_sub(parked_at)) >= EAGER_AFTER_MS;
    match tokio::net::TcpStream::from_std(socket) {
        Ok(stream) => {
            parking
                .tasks
                .spawn(super::resume(connection, stream, held, eager));
        }
        Err(_) => end_now(connection, held),
    }
    parking.remove();
}

/// Gives back the room of slots no longer used, as far as the slots still
/// parked allow (the table never moves a parked connection: its waker and
/// epoll entry name its slot).
pub fn shrink() {
    parked().shrink_to_fit();
}

/// Runs when the parking task is dropped with its runtime, without a graceful
/// stop: nothing parks any more, and the connections left are dropped as their
/// tasks are, sockets closed.
struct Unparked(Arc<Parking>);

impl Drop for Unparked {
    fn drop(&mut self) {
        let mut left = Vec::new();
        {
            let mut slots = parked();
            self.0.closed.store(true, Ordering::Release);
            for ticket in tickets_of_locked(&slots, &self.0) {
                left.push(slots.remove(split(ticket).0));
            }
        }
        *self.0.parked() = (0, None);
        // Dropped outside the lock: a router may go with them.
        drop(left);
    }
}

/// The tickets of the connections `parking` holds, in `slots` (locked).
fn tickets_of_locked(slots: &Slab<Slot>, parking: &Arc<Parking>) -> Vec<usize> {
    slots
        .iter()
        .filter(|(_, slot)| {
            slot.router
                .parking
                .get()
                .is_some_and(|theirs| Arc::ptr_eq(theirs, parking))
        })
        .map(|(key, slot)| ticket(key, slot.generation))
        .collect()
}

/// Connections unparked before the parking task lets others run.
const UNPARK_BATCH: usize = 1024;

/// Watches the parked sockets and the woken slots of one broker until `stop`
/// (after the broker's connections all ended). Should it end before, with the
/// runtime's reactor, nothing parks any more and every parked connection gets
/// its task back.
pub async fn run(parking: Arc<Parking>, stop: CancellationToken) {
    let _unparked = Unparked(Arc::clone(&parking));
    let taken = parking
        .epoll
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take();
    let Some(mut epoll) = taken else { return };
    let mut events = Events::with_capacity(UNPARK_BATCH);
    loop {
        let woken = std::future::poll_fn(|cx| {
            parking.notify.register(cx.waker());
            let taken = std::mem::take(&mut *parking.woken());
            if taken.is_empty() {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(taken)
            }
        });
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            taken = woken => {
                for batch in taken.chunks(UNPARK_BATCH) {
                    for &ticket in batch {
                        unpark(&parking, ticket);
                    }
                    tokio::task::yield_now().await;
                }
            }
            ready = epoll.readable_mut() => {
                let Ok(mut guard) = ready else { break };
                let polled = guard.get_inner_mut().poll(&mut events, Some(Duration::ZERO));
                let full = events.iter().count() == events.capacity();
                if polled.is_ok() && !full {
                    guard.clear_ready();
                }
                drop(guard);
                for event in &events {
                    unpark(&parking, event.token().0);
                }
                tokio::task::yield_now().await;
            }
        }
    }
    let left = {
        let slots = parked();
        parking.closed.store(true, Ordering::Release);
        tickets_of_locked(&slots, &parking)
    };
    for ticket in left {
        unpark(&parking, ticket);
    }
}

/// The parking of the broker `router` belongs to, if it runs one.
pub type ParkingSlot = OnceLock<Arc<Parking>>;
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parked_connection_fits_in_96_bytes() {
        // What every idle client costs here (ARCHITECTURE.md); a field added to
        // `Slot` must be paid for elsewhere.
        assert!(
            std::mem::size_of::<Slot>() <= 96,
            "{}",
            std::mem::size_of::<Slot>()
        );
    }

    #[test]
    fn a_ticket_gives_back_its_slot_and_generation() {
        for (key, generation) in [(0, 0), (1, 7), (0xFFFF_FFFF, u32::MAX), (12_345, 1 << 31)] {
            assert_eq!(split(ticket(key, generation)), (key, generation));
        }
    }

    #[test]
    fn a_stale_ticket_wakes_nothing() {
        // No slot holds generation 0 at key 1 << 30: the wake is ignored, not a panic.
        wake(ticket(1 << 30, 0));
        assert!(parked().get(1 << 30).is_none());
    }
}
