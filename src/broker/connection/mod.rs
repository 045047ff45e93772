//! The task serving one client connection: framing, the CONNECT handshake, every
//! packet after it, keep-alive, and writing what the session has queued.
//!
//! Flow of a PUBLISH from this socket to subscribers: bytes are read (many packets
//! per read, into a per-thread buffer) → [`check_frame`] finds whole packets →
//! [`Packet::decode`] → `on_publish` → [`Router::publish`] queues a
//! [`Delivery`](super::session::Delivery) in each matching session and wakes the
//! connections serving them → each of those tasks, in `pump`, moves deliveries from
//! its session into its write buffer (within the in-flight window) and writes the
//! whole buffer at once.
//!
//! Every packet this task writes goes through one buffer, so a read of N packets
//! costs one write. With `persistence` on, nothing in that buffer is written
//! before the changes recorded while filling it are durable
//! ([`Store::synced`](super::store::Store::synced)): a PUBACK, a SUBACK, the
//! CONNACK of a persistent session, a QoS 2 PUBLISH with its packet id. A QoS 1
//! PUBACK may go sooner, once the online subscribers the message was queued for
//! acknowledged it (`store/confirm.rs`).

use std::cell::RefCell;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use std::future::Future;
use std::task::Poll;

use tokio::time::Instant;

mod handle;
pub(super) mod park;
pub(super) mod v5;

use super::auth::Principal;
use super::log::PeerAddress;
use super::router::Router;
use super::session::{ConnectionSignal, Delivery, Outgoing, Session, Signalled};
use super::stats::ConnectionCounts;
use super::store::confirm::Confirmation;
use super::transport::Transport;
use super::transport::tls::CertificateIdentity;
use super::will::{self, LeftWill};
use crate::protocol::{
    DecodeError, Disconnect, FrameStatus, Packet, ProtocolVersion, PublishHeader, ReasonCode, Will,
    check_frame, encode_publish, publish_len,
};
use v5::V5;

/// Bytes read per system call.
const READ_CHUNK: usize = 64 * 1024;
/// Stop moving deliveries into the write buffer beyond this many unwritten bytes;
/// the rest waits in the session queue, where `max_queued_messages` bounds it.
const WRITE_HIGH_WATER: usize = 64 * 1024;
/// Buffers larger than this are released once empty, so idle connections stay small.
const KEEP_CAPACITY: usize = 16 * 1024;
/// Bytes of answers waiting for the store beyond which a connection stops
/// reading until the store catches up.
const HOLD_LIMIT: usize = 64 * 1024;

thread_local! {
    /// One read buffer per worker thread instead of one per connection: a connection
    /// only keeps the bytes of an unfinished packet, so idle ones cost no buffer.
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
    /// Traffic counted since the last flush into the broker's counters. Per thread
    /// rather than per connection: counts only accumulate between an event and the
    /// flush that ends its handling, never across an `.await`.
    static COUNTS: RefCell<ConnectionCounts> = RefCell::new(ConnectionCounts::default());
}

/// Adds to this thread's pending traffic counts.
pub(super) fn count(update: impl FnOnce(&mut ConnectionCounts)) {
    COUNTS.with(|counts| update(&mut counts.borrow_mut()));
}

/// Why a connection ended: decides the log line, whether the will is published, and
/// the reason code an MQTT 5 DISCONNECT reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// DISCONNECT received; `with_will` for MQTT 5 reason 0x04.
    Disconnect {
        with_will: bool,
    },
    /// The peer closed the socket without DISCONNECT.
    Closed,
    KeepAliveExpired,
    /// A rule broken: Malformed Packet (0x81), Protocol Error (0x82), or one of MQTT
    /// 5's specific reasons (0x93, 0x94, 0x95, 0x9A, ...).
    Violation(ReasonCode),
    SocketError,
    TakenOver,
    /// A reload removed the client's user, changed its password, or stopped
    /// anonymous access; mosquitto disconnects such clients too.
    Revoked,
    Shutdown,
    /// No CONNECT within the connect timeout.
    ConnectTimeout,
    /// CONNECT answered with a refusal.
    Refused,
}

impl End {
    /// [MQTT-3.1.2-8 3.1.1/5.0]: the will is published when the connection ends for any reason
    /// but a normal DISCONNECT [MQTT-3.1.2-10 3.1.1/5.0]; a broker shutdown does not send it.
    fn sends_will(self) -> bool {
        match self {
            End::Disconnect { with_will } => with_will,
            End::Closed
            | End::KeepAliveExpired
            | End::Violation(_)
            | End::SocketError
            | End::TakenOver
            | End::Revoked => true,
            End::Shutdown | End::ConnectTimeout | End::Refused => false,
        }
    }

    /// The reason an MQTT 5 DISCONNECT from the broker reports (§3.14.2.1).
    fn disconnect_reason(self) -> Option<ReasonCode> {
        match self {
            End::Violation(reason) => Some(reason),
            End::KeepAliveExpired => Some(ReasonCode::KeepAliveTimeout),
            End::TakenOver => Some(ReasonCode::SessionTakenOver),
            End::Revoked => Some(ReasonCode::NotAuthorized),
            End::Shutdown => Some(ReasonCode::ServerShuttingDown),
            _ => None,
        }
    }
}

/// A reset or broken connection is the peer going away (mosquitto's CONN_LOST); other
/// errors are socket errors.
pub(super) fn lost(error: &io::Error) -> End {
    match error.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionAborted => End::Closed,
        _ => End::SocketError,
    }
}

/// What woke the connection loop.
enum Event {
    Signal(Signalled),
    /// The store made more of the answers durable.
    Stored,
    Readable(io::Result<()>),
    Writable(io::Result<()>),
}

/// Waits for the next thing to do: a signal from another task (the keep-alive
/// sweep's included), bytes to read, or room to write (when `writing`).
///
/// One `poll_fn` instead of a `select!` over futures: the wakers live in the socket's
/// registration and in the shared [`ConnectionSignal`], so the connection task carries
/// no per-source future state. An idle connection costs a few hundred bytes less.
fn wait<'a, T: Transport>(
    signal: &'a ConnectionSignal,
    transport: &'a T,
    writing: bool,
) -> impl Future<Output = Event> + 'a {
    std::future::poll_fn(move |cx| {
        if let Some(signalled) = signal.poll(cx) {
            return Poll::Ready(Event::Signal(signalled));
        }
        if let Poll::Ready(ready) = transport.poll_read_ready(cx) {
            return Poll::Ready(Event::Readable(ready));
        }
        if writing && let Poll::Ready(ready) = transport.poll_write_ready(cx) {
            return Poll::Ready(Event::Writable(ready));
        }
        Poll::Pending
    })
}

/// A client whose CONNECT was accepted.
struct Client {
    session: Arc<Session>,
    /// Who the client is, for the ACL; the session holds the same for deliveries.
    principal: Arc<Principal>,
    /// Boxed: most clients have none, and every idle connection carries this field.
    will: Option<Box<Will>>,
    keep_alive: u16,
    /// The client is a bridge that said so in its protocol level (`try_private`).
    bridge: bool,
    /// MQTT 5 state; `None` on 3.x connections.
    v5: Option<Box<V5>>,
}

/// Counts a listener's open connections: decremented when the connection
/// ends, however it ends, parked or not.
pub(crate) struct OpenSocket(Arc<AtomicUsize>);

impl OpenSocket {
    /// Counts one more connection on `open`; returns the guard and the count.
    pub(crate) fn count(open: &Arc<AtomicUsize>) -> (OpenSocket, usize) {
        let now = open.fetch_add(1, Ordering::Relaxed) + 1;
        (OpenSocket(Arc::clone(open)), now)
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves one accepted socket (after its TLS or WebSocket handshake) until it
/// closes, parks or the broker shuts down. `identity` is the client
/// certificate's subject, on a TLS listener that asked for one. CONNECT must
/// come by `connect_deadline` (by default `connect_timeout` from now).
///
/// `held` is dropped when the connection ends (its listener's count of open
/// sockets).
///
/// Not an `async fn`: an async fn's arguments stay in its future for its whole
/// life. The returned future holds only the connection (boxed, so a parked
/// connection moves out without a copy of its task), its transport and `held`.
pub(crate) fn serve<T: Transport>(
    router: Arc<Router>,
    transport: T,
    peer: PeerAddress,
    identity: Option<CertificateIdentity>,
    listener: Option<usize>,
    connect_deadline: Option<Instant>,
    held: Option<OpenSocket>,
) -> impl Future<Output = ()> {
    // Each listener holds a socket: there are never 2^32 of them.
    let listener = listener.map(|index| u32::try_from(index).unwrap_or(u32::MAX));
    let signal = Arc::new(ConnectionSignal::default());
    let id = router.register_connection(Arc::clone(&signal));
    let mut connection = Box::new(Connection::with(router, peer, listener, id, signal));
    connection.identity = identity.map(Box::new);
    if let Some(deadline) = connect_deadline {
        connection.last_packet = deadline - connection.router.config.connect_timeout;
    }
    async move {
        let end = match connection.connect(&transport).await {
            Ok(()) => connection.connected(&transport, ParkWhen::Idle).await,
            Err(end) => Some(end),
        };
        end_or_park(connection, transport, held, end).await;
    }
}

/// Serves a connection woken from its park (`park.rs`); `eager`: it parks
/// again at its first idle moment once it handled what woke it.
async fn resume(
    mut connection: Box<Connection>,
    transport: tokio::net::TcpStream,
    held: Option<OpenSocket>,
    eager: bool,
) {
    let parks = if eager {
        ParkWhen::AfterWake
    } else {
        ParkWhen::Swept
    };
    let end = connection.connected(&transport, parks).await;
    end_or_park(connection, transport, held, end).await;
}

/// Ends the connection for `end`, or parks it (`None`).
async fn end_or_park<T: Transport>(
    mut connection: Box<Connection>,
    transport: T,
    held: Option<OpenSocket>,
    end: Option<End>,
) {
    let end = match end {
        Some(end) => end,
        None => match transport.into_parked() {
            Ok(socket) => return park::park(connection, socket, held),
            // Only a socket tokio no longer knew could fail to come out.
            Err(_) => return park::end_now(connection, held),
        },
    };
    // Boxed, as every wait but the idle one: a future is as large as its
    // largest await, and the task of every idle connection carries it.
    Box::pin(connection.finish(&transport, end)).await;
    connection.router.unregister_connection(connection.id);
    drop(held);
}

/// When a connected client parks (`park.rs`), besides when the keep-alive
/// sweep finds it idle a whole sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParkWhen {
    /// At its first moment with nothing to do.
    Idle,
    /// At its first moment with nothing to do after the event that woke it.
    AfterWake,
    /// Only when the sweep asks.
    Swept,
}

/// Packet types only a server sends: CONNACK, SUBACK, UNSUBACK, PINGRESP.
const SERVER_ONLY: [u8; 4] = [2, 9, 11, 13];

struct Connection {
    router: Arc<Router>,
    peer: PeerAddress,
    /// The client certificate's subject, until CONNECT is handled.
    identity: Option<Box<CertificateIdentity>>,
    /// The configured listener the client came in on, which picks its auth rules
    /// ([`Connection::listener`]; 32 bits, as every idle connection carries it).
    listener: Option<u32>,
    id: u64,
    signal: Arc<ConnectionSignal>,
    /// The protocol of the CONNECT; decides how every later packet is read.
    version: ProtocolVersion,
    client: Option<Client>,
    /// A CONNECT waiting for its password check; packets after it wait in `partial`.
    pending: Option<Box<handle::PendingLogin>>,
    /// Bytes of a packet not yet complete.
    partial: Vec<u8>,
    /// Bytes to write, from `written` on.
    out: Vec<u8>,
    written: usize,
    last_packet: Instant,
    /// The highest store sequence number recorded while filling `out`; `out` is
    /// written once the store says it is durable.
    unsynced: u64,
    /// An earlier point of the same rule: `out[..mark_end]` needs only
    /// `sync_mark`. So while one group of answers waits for the store, the
    /// connection goes on reading and handling, and the answers it adds (which
    /// need a later number) do not hold back the earlier ones.
    sync_mark: u64,
    mark_end: usize,
    /// The QoS 1 messages published here whose PUBACKs may go once their
    /// persistent subscribers acknowledge them, before the store syncs.
    confirming: Option<Box<Confirming>>,
}

/// A connection's counts of deliveries owed for the QoS 1 messages it published
/// (`store/confirm.rs`): `marked` for the answers in `out[..mark_end]`, `current`
/// for those after. Boxed in the connection, which most of the time has none.
#[derive(Default)]
struct Confirming {
    marked: Option<Arc<Confirmation>>,
    current: Option<Arc<Confirmation>>,
}

impl Connection {
    fn with(
        router: Arc<Router>,
        peer: PeerAddress,
        listener: Option<u32>,
        id: u64,
        signal: Arc<ConnectionSignal>,
    ) -> Self {
        Connection {
            router,
            peer,
            identity: None,
            listener,
            id,
            signal,
            version: ProtocolVersion::V3_1_1,
            client: None,
            pending: None,
            partial: Vec::new(),
            out: Vec::new(),
            written: 0,
            last_packet: Instant::now(),
            unsynced: 0,
            sync_mark: 0,
            mark_end: 0,
            confirming: None,
        }
    }

    /// The configured listener the client came in on, which picks its auth rules.
    fn listener(&self) -> Option<usize> {
        self.listener.map(|index| index as usize)
    }

    /// The settings of the listener the client came in on.
    fn settings(&self) -> crate::broker::config::ListenerSettings {
        self.router.config.listener_settings(self.listener())
    }

    fn client_id(&self) -> &str {
        self.client
            .as_ref()
            .map_or("<unknown>", |c| &c.session.client_id)
    }

    /// Serves the connection until its CONNECT was accepted (`Ok`) or it ended.
    async fn connect<T: Transport>(&mut self, transport: &T) -> Result<(), End> {
        // [MQTT-3.1.0-1 3.1.1/5.0]: the first packet must be CONNECT, within the connect timeout
        // measured from accept; partial bytes do not extend it. One deadline, checked
        // by the keep-alive sweep, serves first that timeout, then keep-alive.
        // From accept: `last_packet` starts then (or when the handshakes began).
        let signal = Arc::clone(&self.signal);
        signal.set_deadline(Some(self.connect_deadline()));
        while self.client.is_none() {
            let writing = transport.wants_write();
            match wait(&signal, transport, writing).await {
                Event::Signal(Signalled::Expired) => {
                    if Instant::now() >= self.connect_deadline() {
                        return Err(End::ConnectTimeout);
                    }
                }
                // Only a connected client is asked to park.
                Event::Signal(Signalled::Park) => {}
                Event::Signal(_) => return Err(End::Shutdown),
                // Only the store wait after login gives this.
                Event::Stored => {}
                Event::Readable(Err(_)) | Event::Writable(Err(_)) => {
                    return Err(End::SocketError);
                }
                Event::Writable(Ok(())) => {
                    if let Err(error) = transport.flush_buffered() {
                        return Err(lost(&error));
                    }
                }
                Event::Readable(Ok(())) => {
                    self.begin_stretch();
                    self.read_and_handle(transport)?;
                    self.note_recorded();
                }
            }
            // A check finished after a reload is run again: wait for that one too.
            while let Some(pending) = self.pending.take() {
                Box::pin(self.await_login(*pending, &signal)).await?;
                self.note_recorded();
            }
        }
        transport.set_frame_limit(self.router.config.websocket_frame_limit());
        self.last_packet = Instant::now();
        // Not kept in a local: what lives across an await sizes every idle task.
        signal.set_deadline(
            self.keep_alive_limit()
                .map(|limit| self.last_packet + limit),
        );
        Ok(())
    }

    /// Serves a connected client until the connection ends (`Some`) or parks
    /// (`None`; `park.rs`) as `parks` says.
    async fn connected<T: Transport>(&mut self, transport: &T, mut parks: ParkWhen) -> Option<End> {
        let signal = Arc::clone(&self.signal);
        let parking = transport.parkable()
            && self
                .router
                .parking
                .get()
                .is_some_and(|parking| parking.is_open());
        signal.set_parkable(parking);
        loop {
            if let Err(end) = self.pump(transport) {
                return Some(end);
            }
            self.flush_counts();
            let held = !self.all_open();
            if held && self.out.len() - self.written > HOLD_LIMIT {
                // Enough answers wait for the store: stop reading until they go.
                if let Err(end) = Box::pin(self.await_store(&signal)).await {
                    return Some(end);
                }
                // `pump` writes what waited for the store.
                continue;
            }
            let writing = self.writable_end() > self.written || transport.wants_write();
            let waiting = wait(&signal, transport, writing);
            let event = if held {
                // Reading goes on while the store catches up.
                // A subscriber's PUBACK that opens a gate wakes the signal.
                // What this task recorded itself was wanted by `note_recorded`;
                // its deliveries' queueing can wait a little for their PUBACKs.
                let store = &self.router.store;
                let next = self.store_needs(self.marked_open());
                store.want_soon(next);
                tokio::select! {
                    biased;
                    synced = Box::pin(store.durable(next)) => match synced {
                        Ok(()) => Event::Stored,
                        Err(_) => return Some(End::SocketError),
                    },
                    event = waiting => event,
                }
            } else if parks == ParkWhen::Idle && parking && self.may_park(transport) {
                // Whatever is ready now is handled first; parked on the first
                // wait that would block.
                let mut waiting = std::pin::pin!(waiting);
                let now = std::future::poll_fn(|cx| Poll::Ready(waiting.as_mut().poll(cx)));
                match now.await {
                    Poll::Ready(event) => event,
                    Poll::Pending => return None,
                }
            } else {
                waiting.await
            };
            signal.mark_active();
            if parks == ParkWhen::AfterWake {
                // What woke it is this event: a socket back in tokio's reactor
                // reports its readiness only after a turn of it.
                parks = ParkWhen::Idle;
            }
            // What other tasks on this thread recorded is theirs to wait for.
            self.begin_stretch();
            match event {
                // `pump` writes what the store made durable.
                Event::Stored => {}
                Event::Signal(Signalled::Shutdown) => return Some(End::Shutdown),
                Event::Signal(Signalled::TakenOver) => return Some(End::TakenOver),
                Event::Signal(Signalled::Revoked) => return Some(End::Revoked),
                Event::Signal(Signalled::Park) => {
                    if self.may_park(transport) {
                        return None;
                    }
                    // Asked again after the next idle sweep.
                    signal.set_parkable(true);
                }
                // `pump` moves the new deliveries into the write buffer.
                Event::Signal(Signalled::Deliveries) => {}
                Event::Signal(Signalled::Expired) => {
                    // The sweep looked before a packet that arrived since, perhaps.
                    if self
                        .keep_alive_limit()
                        .is_some_and(|limit| Instant::now() >= self.last_packet + limit)
                    {
                        return Some(End::KeepAliveExpired);
                    }
                }
                Event::Readable(Err(_)) | Event::Writable(Err(_)) => {
                    return Some(End::SocketError);
                }
                Event::Readable(Ok(())) => match self.read_and_handle(transport) {
                    Ok(true) => {
                        self.last_packet = Instant::now();
                        if let Some(limit) = self.keep_alive_limit() {
                            signal.set_deadline(Some(self.last_packet + limit));
                        }
                    }
                    Ok(false) => {}
                    Err(end) => return Some(end),
                },
                Event::Writable(Ok(())) => {}
            }
            self.note_recorded();
        }
    }

    /// Whether the connection may park now: a connected client on a socket
    /// that can park, with nothing half read, nothing to write and nothing
    /// waiting for the store or a password check.
    fn may_park<T: Transport>(&self, transport: &T) -> bool {
        self.client.is_some()
            && self.pending.is_none()
            && self.partial.is_empty()
            && self.out.is_empty()
            && self.confirming.is_none()
            && self.all_open()
            && !transport.wants_write()
            && transport.parkable()
            && self
                .router
                .parking
                .get()
                .is_some_and(|parking| parking.is_open())
    }

    /// Starts a synchronous stretch of handling: forgets what other tasks on this
    /// thread recorded, and, when the answers so far wait for the store and no
    /// earlier point is pending, marks them as needing only what was recorded so
    /// far.
    fn begin_stretch(&mut self) {
        super::store::take_recorded_here();
        // Only once the bytes of the earlier mark are written: moving it on
        // would hold them back until the later number is durable.
        let grew = self.unsynced > self.sync_mark
            || self
                .confirming
                .as_ref()
                .is_some_and(|c| c.current.is_some());
        if grew && self.written >= self.mark_end && self.marked_open() {
            self.sync_mark = self.unsynced;
            self.mark_end = self.out.len();
            if let Some(confirming) = &mut self.confirming {
                confirming.marked = confirming.current.take();
            }
        }
    }

    /// Where the bytes the store allows to be written end.
    fn writable_end(&self) -> usize {
        if self.all_open() {
            self.out.len()
        } else if self.marked_open() {
            self.mark_end.max(self.written)
        } else {
            self.written
        }
    }

    /// Whether `out[..mark_end]` may be written: what it needs is durable, and
    /// its QoS 1 deliveries were acknowledged or are durable.
    fn marked_open(&self) -> bool {
        let store = &self.router.store;
        store.is_synced(self.sync_mark)
            && self
                .confirming
                .as_ref()
                .and_then(|c| c.marked.as_ref())
                .is_none_or(|marked| marked.is_open(store))
    }

    /// Whether all of `out` may be written.
    fn all_open(&self) -> bool {
        let store = &self.router.store;
        store.is_synced(self.unsynced)
            && self.confirming.as_ref().is_none_or(|c| {
                [&c.marked, &c.current]
                    .into_iter()
                    .flatten()
                    .all(|confirmation| confirmation.is_open(store))
            })
    }

    /// The store sequence number that opens `out[..mark_end]` (or all of `out`)
    /// without help from the subscribers.
    fn store_needs(&self, all: bool) -> u64 {
        let (needed, confirmations) = match &self.confirming {
            None => return if all { self.unsynced } else { self.sync_mark },
            Some(c) if all => (self.unsynced, [c.marked.as_ref(), c.current.as_ref()]),
            Some(c) => (self.sync_mark, [c.marked.as_ref(), None]),
        };
        confirmations
            .into_iter()
            .flatten()
            .map(|confirmation| confirmation.needs())
            .fold(needed, u64::max)
    }

    /// The count for the QoS 1 messages this stretch publishes: their PUBACKs go
    /// once their persistent subscribers acknowledge them, or once the store
    /// syncs their queueing.
    fn confirmation(&mut self) -> Arc<Confirmation> {
        let signal = &self.signal;
        let confirming = self.confirming.get_or_insert_with(Box::default);
        Arc::clone(
            confirming
                .current
                .get_or_insert_with(|| Arc::new(Confirmation::new(signal))),
        )
    }

    /// Notes what this task recorded in the store since the last call (no
    /// `.await` may separate the recording from this).
    fn note_recorded(&mut self) {
        let recorded = super::store::take_recorded_here();
        if recorded > self.unsynced {
            self.unsynced = recorded;
            // The stretch is over: its answers wait for this, so the writer may
            // take the batch now.
            self.router.store.want(recorded);
        }
    }

    /// Waits until the store has made what this task recorded durable; a
    /// shutdown, revocation or takeover (a store that cannot write may keep it
    /// waiting), or a store that stopped, ends the connection instead.
    async fn await_store(&mut self, signal: &ConnectionSignal) -> Result<(), End> {
        let ending = std::future::poll_fn(|cx| match signal.poll_ending(cx) {
            Some(signalled) => Poll::Ready(signalled),
            None => Poll::Pending,
        });
        tokio::select! {
            synced = self.router.store.synced(self.store_needs(true)) => {
                synced.map_err(|_| End::SocketError)
            }
            signalled = ending => Err(match signalled {
                Signalled::Revoked => End::Revoked,
                Signalled::TakenOver => End::TakenOver,
                _ => End::Shutdown,
            }),
        }
    }

    /// Waits for a CONNECT's password check, answers the CONNECT, then handles the
    /// packets that arrived behind it. The wait is bounded by the connect timeout,
    /// counted afresh: the client did its part, and the wait is the broker's.
    async fn await_login(
        &mut self,
        mut pending: handle::PendingLogin,
        signal: &ConnectionSignal,
    ) -> Result<(), End> {
        let shutdown = std::future::poll_fn(|cx| match signal.poll(cx) {
            Some(_) => Poll::Ready(()),
            None => Poll::Pending,
        });
        // Bounded, so a backed-up verifier cannot hold connections (and their
        // CONNECTs) for ever; giving up drops the receiver, and the verifier skips
        // the check.
        let limit = self.router.config.connect_timeout;
        let accepted = tokio::select! {
            verdict = &mut pending.verdict => Some(verdict.unwrap_or(false)),
            () = tokio::time::sleep(limit) => None,
            () = shutdown => return Err(End::Shutdown),
        };
        // What other tasks on this thread recorded is theirs to wait for.
        self.begin_stretch();
        self.finish_login(pending, accepted)?;
        // Packets that came behind the CONNECT, once it is answered.
        if self.client.is_some() && !self.partial.is_empty() {
            let data = std::mem::take(&mut self.partial);
            let (consumed, _) = self.handle_frames(&data)?;
            self.partial = data[consumed..].to_vec();
        }
        Ok(())
    }

    /// Moves this thread's pending counts into the broker's counters.
    fn flush_counts(&self) {
        COUNTS.with(|counts| self.router.stats.add(&mut counts.borrow_mut()));
    }

    /// When CONNECT must have come by: `connect_timeout` after `last_packet`,
    /// which is set at accept (or when the handshakes began).
    fn connect_deadline(&self) -> Instant {
        self.last_packet + self.router.config.connect_timeout
    }

    /// [MQTT-3.1.2-24 3.1.1]: close when no packet arrives within 1.5 times the keep-alive.
    fn keep_alive_limit(&self) -> Option<Duration> {
        let seconds = self.client.as_ref().map_or(0, |c| c.keep_alive);
        (seconds > 0).then(|| Duration::from_millis(u64::from(seconds) * 1500))
    }

    /// Reads what the socket has and handles every whole packet in it. `Ok(true)` if
    /// at least one packet was handled.
    fn read_and_handle<T: Transport>(&mut self, transport: &T) -> Result<bool, End> {
        READ_BUFFER.with(|cell| {
            let mut buffer = cell.borrow_mut();
            let read = match transport.try_read(&mut buffer) {
                Ok(0) => return Err(End::Closed),
                Ok(read) => read,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    return Ok(false);
                }
                Err(e) => return Err(lost(&e)),
            };
            count(|c| c.bytes_received += read as u64);
            if self.partial.is_empty() {
                let (consumed, packets) = self.handle_frames(&buffer[..read])?;
                self.partial.extend_from_slice(&buffer[consumed..read]);
                Ok(packets > 0)
            } else {
                let mut data = std::mem::take(&mut self.partial);
                data.extend_from_slice(&buffer[..read]);
                let (consumed, packets) = self.handle_frames(&data)?;
                data.drain(..consumed);
                if data.is_empty() && data.capacity() > KEEP_CAPACITY {
                    data = Vec::new();
                }
                self.partial = data;
                Ok(packets > 0)
            }
        })
    }

    /// Handles the whole packets at the front of `data`; returns the bytes consumed
    /// and the packets handled.
    fn handle_frames(&mut self, data: &[u8]) -> Result<(usize, usize), End> {
        let mut consumed = 0;
        let mut packets = 0;
        loop {
            let limit = if self.client.is_some() {
                self.router.config.packet_limit()
            } else {
                // [MQTT-3.1.0-1 3.1.1/5.0]: the first byte already tells whether this is a
                // CONNECT; anything else is refused before its body arrives.
                if data.get(consumed).is_some_and(|first| first >> 4 != 1) {
                    return Err(End::Violation(ReasonCode::ProtocolError));
                }
                self.router.config.connect_packet_limit()
            };
            match check_frame(&data[consumed..], limit) {
                Ok(FrameStatus::Complete(header)) => {
                    let frame = &data[consumed..consumed + header.frame_len()];
                    consumed += header.frame_len();
                    packets += 1;
                    count(|c| c.packets_received += 1);
                    self.handle_frame(frame)?;
                    if self.pending.is_some() {
                        // Nothing after CONNECT is handled before its answer.
                        return Ok((consumed, packets));
                    }
                }
                // memory_limit: a packet whose remaining bytes would take the heap
                // past it is refused before they arrive, as mosquitto's allocation
                // of the whole packet fails.
                Ok(FrameStatus::Incomplete { needed })
                    if crate::broker::memory::would_exceed(
                        self.router.config.memory_limit,
                        needed,
                    ) =>
                {
                    return Err(End::Violation(ReasonCode::QuotaExceeded));
                }
                Ok(FrameStatus::Incomplete { .. }) => return Ok((consumed, packets)),
                Err(DecodeError::PacketTooLarge { size, max }) => {
                    tracing::debug!(
                        client = self.client_id(),
                        size,
                        max,
                        "refusing an oversize packet"
                    );
                    return Err(End::Violation(ReasonCode::PacketTooLarge));
                }
                Err(error) => {
                    tracing::debug!(client = self.client_id(), %error, "refusing packet");
                    return Err(End::Violation(ReasonCode::MalformedPacket));
                }
            }
        }
    }

    fn handle_frame(&mut self, frame: &[u8]) -> Result<(), End> {
        if self.client.is_none() {
            return match Packet::decode(frame, ProtocolVersion::V3_1_1) {
                Ok(Packet::Connect(connect)) => self.on_connect(*connect),
                Ok(_) => Err(End::Violation(ReasonCode::ProtocolError)),
                Err(DecodeError::UnsupportedProtocolVersion(_)) => {
                    // [MQTT-3.1.2-2 3.1.1]: CONNACK 0x01, then close.
                    self.version = ProtocolVersion::V3_1_1;
                    self.refuse("<unknown>", ReasonCode::UnsupportedProtocolVersion)
                }
                Err(error) if connect_level(frame) == Some(5) => {
                    // MQTT 5 lets a bad CONNECT be answered with its reason (§4.13.1).
                    tracing::debug!(peer = %self.peer, %error, "refusing CONNECT");
                    self.version = ProtocolVersion::V5;
                    self.refuse("<unknown>", error.reason_code())
                }
                Err(error) => {
                    tracing::debug!(peer = %self.peer, %error, "refusing CONNECT");
                    Err(End::Violation(error.reason_code()))
                }
            };
        }
        // Packets only a server sends are a protocol error from a client whatever
        // they hold, so they are refused on their type, before any field is read.
        if frame
            .first()
            .is_some_and(|byte| SERVER_ONLY.contains(&(byte >> 4)))
        {
            return Err(End::Violation(ReasonCode::ProtocolError));
        }
        match Packet::decode(frame, self.version) {
            Ok(packet) => self.handle(packet),
            Err(error) => {
                tracing::debug!(client = self.client_id(), %error, "refusing packet");
                Err(End::Violation(error.reason_code()))
            }
        }
    }

    fn send(&mut self, packet: &Packet) {
        match packet.encode(self.version, &mut self.out) {
            Ok(()) => count(|c| c.packets_sent += 1),
            Err(error) => tracing::error!(%error, "could not encode a packet the broker built"),
        }
    }

    /// Moves deliveries from the session into the write buffer, up to the high-water
    /// mark and within the in-flight window.
    fn drain_session(&mut self) {
        let Some(client) = &self.client else { return };
        let session = Arc::clone(&client.session);
        let mut state = session.lock();
        // After a takeover the new connection owns the queue.
        if !state.is_connected_to(self.id) {
            return;
        }
        let now = std::time::Instant::now();
        while self.out.len() - self.written < WRITE_HIGH_WATER {
            let fits = |delivery: &Delivery| self.fits(delivery, now);
            match state.next_publish(now, fits) {
                Some(outgoing) => self.write_outgoing(outgoing),
                None => break,
            }
        }
    }

    /// A topic as this client sees it: without its listener's mount point.
    fn unmounted<'t>(&self, topic: &'t str) -> &'t str {
        match self.router.config.listener_mount_point(self.listener()) {
            Some(mount) => unmount(mount, topic),
            None => topic,
        }
    }

    /// Whether a delivery fits the client's Maximum Packet Size [MQTT-3.1.2-24 5.0]
    /// (counting the largest topic alias property it could carry).
    fn fits(&self, delivery: &Delivery, now: std::time::Instant) -> bool {
        let Some(v5) = self.client.as_ref().and_then(|c| c.v5.as_deref()) else {
            return true;
        };
        let Some(limit) = v5.max_packet_size else {
            return true;
        };
        let properties = v5::outgoing_properties(delivery, now, None);
        let size = publish_len(
            self.version,
            delivery.qos,
            self.unmounted(delivery.message.topic.as_str()),
            &properties,
            delivery.message.payload.len(),
        ) + v5.alias_overhead();
        size <= limit as usize
    }

    fn write_outgoing(&mut self, outgoing: Outgoing) {
        let (delivery, packet_id, dup) = match outgoing {
            Outgoing::PubRel(packet_id) => {
                self.send_release(packet_id, true);
                return;
            }
            Outgoing::Publish {
                delivery,
                packet_id,
                dup,
            } => (delivery, packet_id, dup),
        };
        let message = &delivery.message;
        let header = PublishHeader {
            dup,
            qos: delivery.qos,
            retain: delivery.retain,
            packet_id,
        };
        // No router clone per delivery: the topic borrows the message, not self.
        let topic = self.unmounted(message.topic.as_str());
        let (send_topic, alias) = match self.client.as_mut().and_then(|c| c.v5.as_deref_mut()) {
            Some(v5) => v5.outgoing_alias(topic),
            None => (true, None),
        };
        let properties = v5::outgoing_properties(&delivery, std::time::Instant::now(), alias);
        let wire_topic = if send_topic { topic } else { "" };
        if let Err(error) = encode_publish(
            &mut self.out,
            self.version,
            header,
            wire_topic,
            &properties,
            &message.payload,
        ) {
            tracing::error!(%error, "could not encode a PUBLISH");
            return;
        }
        let size = message.payload.len() as u64;
        count(|c| {
            c.packets_sent += 1;
            c.publish_sent += 1;
            c.publish_bytes_sent += size;
        });
        let log = &self.router.log;
        if log.is_debug() {
            log.sending_publish(self.client_id(), header, topic, message.payload.len());
        }
    }

    /// Writes what can be written now, refilling from the session as the buffer
    /// empties. Returns when everything is written or the socket is full.
    fn pump<T: Transport>(&mut self, transport: &T) -> Result<(), End> {
        // A layer's own bytes (TLS records, WebSocket frames) go out first.
        if transport.wants_write() {
            transport.flush_buffered().map_err(|e| lost(&e))?;
        }
        loop {
            self.begin_stretch();
            self.drain_session();
            self.note_recorded();
            let end = self.writable_end();
            if self.written == end {
                return Ok(());
            }
            self.flush(transport)?;
            // Bytes left: the socket is full, or they wait for the store.
            if !self.out.is_empty() {
                return Ok(());
            }
        }
    }

    /// Writes what the store allows of `out`.
    fn flush<T: Transport>(&mut self, transport: &T) -> Result<(), End> {
        let end = self.writable_end();
        while self.written < end {
            match transport.try_write(&self.out[self.written..end]) {
                Ok(0) => return Err(End::SocketError),
                Ok(n) => {
                    self.written += n;
                    count(|c| c.bytes_sent += n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(lost(&e)),
            }
        }
        if self.written < self.out.len() {
            // The rest waits for the store: keep it at the front.
            self.out.drain(..self.written);
            self.mark_end = self.mark_end.saturating_sub(self.written);
            self.written = 0;
            return Ok(());
        }
        self.out.clear();
        self.written = 0;
        self.mark_end = 0;
        // Every answer they held went: the counts are not needed any more.
        self.confirming = None;
        if self.out.capacity() > KEEP_CAPACITY {
            self.out = Vec::new();
        }
        Ok(())
    }

    /// Ends the connection: tells an MQTT 5 client why (DISCONNECT with a reason
    /// code, then a half-close so it can read it rather than a reset), releases the
    /// session, then lingers so the last packet is read before the socket closes.
    async fn finish<T: Transport>(&mut self, transport: &T, end: End) {
        // [MQTT-3.14.0-1 5.0]: no DISCONNECT before a CONNACK.
        if self.version.is_v5()
            && self.client.is_some()
            && let Some(reason) = end.disconnect_reason()
        {
            self.send(&Packet::Disconnect(Disconnect::new(reason)));
        }
        // What the store has not made durable is never sent: the client sends
        // it again.
        self.note_recorded();
        if !self.all_open() {
            let synced = self.router.store.synced(self.store_needs(true));
            if !matches!(tokio::time::timeout(LINGER, synced).await, Ok(Ok(()))) {
                // Only what the store made durable goes.
                let end = self.writable_end();
                self.out.truncate(end);
                self.mark_end = self.mark_end.min(end);
            }
        }
        let last_words = self.written < self.out.len() || transport.wants_write();
        self.flush_for(transport, LINGER).await;
        let lingers = last_words || matches!(end, End::Refused);
        // TLS and WebSocket peers are told of the close inside the stream.
        if lingers || transport.closes_in_band() {
            let _ = transport.shutdown_write();
        }
        self.release(end);
        if lingers {
            linger(transport).await;
        }
    }

    /// Logs the end, publishes the will when due and releases the session.
    fn release(&mut self, end: End) {
        self.flush_counts();
        let log = &self.router.log;
        let Some(client) = self.client.take() else {
            match end {
                End::Violation(ReasonCode::PacketTooLarge) => log.oversize_packet("<unknown>"),
                End::Violation(ReasonCode::QuotaExceeded) => log.out_of_memory("<unknown>"),
                End::Violation(reason) => {
                    log.protocol_error("<unknown>", reason == ReasonCode::MalformedPacket)
                }
                End::ConnectTimeout => log.keep_alive_expired("<unknown>"),
                _ => {}
            }
            return;
        };
        let client_id = &client.session.client_id;
        match end {
            End::Disconnect { .. } | End::Revoked => log.disconnected(client_id),
            End::Closed => log.closed_connection(client_id),
            End::KeepAliveExpired => log.keep_alive_expired(client_id),
            End::Violation(ReasonCode::PacketTooLarge) => log.oversize_packet(client_id),
            End::Violation(ReasonCode::QuotaExceeded) => log.out_of_memory(client_id),
            End::Violation(reason) => {
                log.protocol_error(client_id, reason == ReasonCode::MalformedPacket)
            }
            End::SocketError => log.socket_error(client_id),
            End::TakenOver | End::Shutdown | End::ConnectTimeout | End::Refused => {}
        }
        let will = client
            .will
            .filter(|_| end.sends_will())
            .map(|will| LeftWill::new(*will, client.session.id, client.principal));
        // A session that would be kept for ever is kept for persistent_client_expiration.
        let expiry = client
            .v5
            .as_ref()
            .and_then(|v5| v5.session_expiry())
            .or(self.router.config.persistent_client_expiration);
        let after = self.router.close_session(&client.session, self.id, expiry);
        if let Some(will) = will {
            will::on_connection_end(
                &self.router,
                &client.session,
                will,
                after,
                end == End::TakenOver,
            );
        }
        self.router.stats.client_disconnected();
    }

    /// Writes what is buffered, waiting up to `limit` for the socket to take it.
    async fn flush_for<T: Transport>(&mut self, transport: &T, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.written < self.out.len() || transport.wants_write() {
            if self.flush(transport).is_err() || transport.flush_buffered().is_err() {
                return;
            }
            if self.written == self.out.len() && !transport.wants_write() {
                return;
            }
            let writable = std::future::poll_fn(|cx| transport.poll_write_ready(cx));
            if tokio::time::timeout_at(deadline, writable).await.is_err() {
                return;
            }
        }
    }
}

/// `mount_point` taken off a delivered topic (mosquitto 2.0.12 and later); a
/// topic without it (none can reach a mounted client's filters) stays whole.
fn unmount<'t>(mount: &str, topic: &'t str) -> &'t str {
    topic
        .strip_prefix(mount)
        .filter(|rest| !rest.is_empty())
        .unwrap_or(topic)
}

/// How long a connection lingers after its last packet for the peer to read it.
const LINGER: Duration = Duration::from_secs(1);

/// After a half-close, reads (and discards) what the peer still sends,
/// until it closes or `LINGER` passes: closing with unread data would reset the
/// connection and could destroy the last packet before the peer reads it.
async fn linger<T: Transport>(transport: &T) {
    let deadline = Instant::now() + LINGER;
    // On the heap, and only while lingering: an array here would be part of every
    // connection task's future, 4 KiB more per idle connection.
    let mut scratch = vec![0u8; 4096];
    let mut budget: usize = 64 * 1024;
    while budget > 0 {
        let readable = std::future::poll_fn(|cx| transport.poll_read_ready(cx));
        match tokio::time::timeout_at(deadline, readable).await {
            Ok(Ok(())) => match transport.try_read(&mut scratch) {
                Ok(0) => return,
                Ok(read) => budget = budget.saturating_sub(read),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            },
            _ => return,
        }
    }
}

/// The protocol level of a CONNECT frame, read without decoding it.
fn connect_level(frame: &[u8]) -> Option<u8> {
    let (_, varint_len) = crate::protocol::wire::decode_varint(frame.get(1..)?).ok()??;
    let body = frame.get(1 + varint_len..)?;
    let name_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    body.get(2 + name_len).copied()
}
