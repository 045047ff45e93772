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
//! Acknowledgements for a batch are written after the store commits
//! ([`Store::commit`](super::store::Store::commit)), and every packet this task
//! writes goes through one buffer, so a read of N packets costs one write.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use tokio::time::{Instant, Sleep};

use super::message::Message;
use super::router::Router;
use super::session::{ConnectionLink, ConnectionSignal, Outgoing, Session, Signalled};
use super::stats::ConnectionCounts;
use super::transport::Transport;
use crate::protocol::{
    Ack, ConnAck, Connect, DecodeError, FrameStatus, Packet, PacketId, Properties, Property,
    ProtocolVersion, Publish, PublishHeader, QoS, ReasonCode, SubAck, Subscribe, UnsubAck,
    Unsubscribe, Will, check_frame, encode_publish,
};

/// Bytes read per system call.
const READ_CHUNK: usize = 64 * 1024;
/// Stop moving deliveries into the write buffer beyond this many unwritten bytes;
/// the rest waits in the session queue, where `max_queued_messages` bounds it.
const WRITE_HIGH_WATER: usize = 64 * 1024;
/// Buffers larger than this are released once empty, so idle connections stay small.
const KEEP_CAPACITY: usize = 16 * 1024;

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
fn count(update: impl FnOnce(&mut ConnectionCounts)) {
    COUNTS.with(|counts| update(&mut counts.borrow_mut()));
}

/// Why a connection ended: decides the log line and whether the will is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// DISCONNECT received; `with_will` for MQTT 5 reason 0x04.
    Disconnect {
        with_will: bool,
    },
    /// The peer closed the socket without DISCONNECT.
    Closed,
    KeepAliveExpired,
    ProtocolError {
        malformed: bool,
    },
    /// A packet above the size limit was announced.
    OversizePacket,
    SocketError,
    TakenOver,
    Shutdown,
    /// No CONNECT within the connect timeout.
    ConnectTimeout,
    /// CONNECT answered with a refusal.
    Refused,
}

impl End {
    /// [MQTT-3.1.2-8]: the will is published when the connection ends for any reason
    /// but a normal DISCONNECT [MQTT-3.1.2-10]; a broker shutdown does not send it.
    fn sends_will(self) -> bool {
        match self {
            End::Disconnect { with_will } => with_will,
            End::Closed
            | End::KeepAliveExpired
            | End::ProtocolError { .. }
            | End::OversizePacket
            | End::SocketError
            | End::TakenOver => true,
            End::Shutdown | End::ConnectTimeout | End::Refused => false,
        }
    }
}

/// A reset or broken connection is the peer going away (mosquitto's CONN_LOST); other
/// errors are socket errors.
fn lost(error: &io::Error) -> End {
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
    Readable(io::Result<()>),
    Writable(io::Result<()>),
    Timer,
}

/// Waits for the next thing to do: a signal from another task, bytes to read, room
/// to write (when `writing`), or the timer (when `timed`).
///
/// One `poll_fn` instead of a `select!` over futures: the wakers live in the socket's
/// registration and in the shared [`ConnectionSignal`], so the connection task carries
/// no per-source future state. An idle connection costs a few hundred bytes less.
fn wait<'a, T: Transport>(
    signal: &'a ConnectionSignal,
    transport: &'a T,
    mut timer: Pin<&'a mut Sleep>,
    writing: bool,
    timed: bool,
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
        if timed && timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Event::Timer);
        }
        Poll::Pending
    })
}

/// A client whose CONNECT was accepted.
struct Client {
    session: Arc<Session>,
    /// Boxed: most clients have none, and every idle connection carries this field.
    will: Option<Box<Will>>,
    keep_alive: u16,
}

/// Serves one accepted socket until it closes or the broker shuts down.
pub(crate) async fn serve<T: Transport>(
    router: Arc<Router>,
    transport: T,
    peer: SocketAddr,
    local_port: u16,
) {
    let mut connection = Connection::new(router, peer);
    connection.router.log.new_connection(peer, local_port);
    connection
        .router
        .register_connection(connection.id, Arc::clone(&connection.signal));
    let end = connection.run(&transport).await;
    connection.finish(&transport, end);
    connection.router.unregister_connection(connection.id);
}

struct Connection {
    router: Arc<Router>,
    peer: SocketAddr,
    id: u64,
    signal: Arc<ConnectionSignal>,
    /// The protocol of the CONNECT; decides how every later packet is read.
    version: ProtocolVersion,
    client: Option<Client>,
    /// Bytes of a packet not yet complete.
    partial: Vec<u8>,
    /// Bytes to write, from `written` on.
    out: Vec<u8>,
    written: usize,
    last_packet: Instant,
}

impl Connection {
    fn new(router: Arc<Router>, peer: SocketAddr) -> Self {
        let id = router.next_connection_id();
        Connection {
            router,
            peer,
            id,
            signal: Arc::new(ConnectionSignal::default()),
            version: ProtocolVersion::V3_1_1,
            client: None,
            partial: Vec::new(),
            out: Vec::new(),
            written: 0,
            last_packet: Instant::now(),
        }
    }

    fn client_id(&self) -> &str {
        self.client
            .as_ref()
            .map_or("<unknown>", |c| &c.session.client_id)
    }

    async fn run<T: Transport>(&mut self, transport: &T) -> End {
        // [MQTT-3.1.0-1]: the first packet must be CONNECT, within the connect timeout
        // measured from accept; partial bytes do not extend it. One timer serves first
        // that deadline, then keep-alive.
        let timer = tokio::time::sleep(self.router.config.connect_timeout);
        tokio::pin!(timer);
        let signal = Arc::clone(&self.signal);
        while self.client.is_none() {
            match wait(&signal, transport, timer.as_mut(), false, true).await {
                Event::Signal(_) => return End::Shutdown,
                Event::Timer => return End::ConnectTimeout,
                Event::Readable(Err(_)) | Event::Writable(Err(_)) => return End::SocketError,
                Event::Readable(Ok(())) | Event::Writable(Ok(())) => {
                    if let Err(end) = self.read_and_handle(transport) {
                        return end;
                    }
                }
            }
        }
        self.last_packet = Instant::now();
        let keep_alive = self.keep_alive_limit();
        if let Some(limit) = keep_alive {
            timer.as_mut().reset(self.last_packet + limit);
        }
        loop {
            if let Err(end) = self.pump(transport) {
                return end;
            }
            self.flush_counts();
            let writing = self.written < self.out.len();
            match wait(
                &signal,
                transport,
                timer.as_mut(),
                writing,
                keep_alive.is_some(),
            )
            .await
            {
                Event::Signal(Signalled::Shutdown) => return End::Shutdown,
                Event::Signal(Signalled::TakenOver) => return End::TakenOver,
                // `pump` moves the new deliveries into the write buffer.
                Event::Signal(Signalled::Deliveries) => {}
                Event::Readable(Err(_)) | Event::Writable(Err(_)) => return End::SocketError,
                Event::Readable(Ok(())) => match self.read_and_handle(transport) {
                    Ok(true) => self.last_packet = Instant::now(),
                    Ok(false) => {}
                    Err(end) => return end,
                },
                Event::Writable(Ok(())) => {}
                Event::Timer => {
                    let Some(limit) = keep_alive else { continue };
                    let deadline = self.last_packet + limit;
                    if Instant::now() >= deadline {
                        return End::KeepAliveExpired;
                    }
                    timer.as_mut().reset(deadline);
                }
            }
            // Acknowledgements written while handling the batch go out only once the
            // store has taken what the batch changed.
            if !self.router.store.commits_immediately() && self.router.store.commit().await.is_err()
            {
                return End::SocketError;
            }
        }
    }

    /// Moves this thread's pending counts into the broker's counters.
    fn flush_counts(&self) {
        COUNTS.with(|counts| self.router.stats.add(&mut counts.borrow_mut()));
    }

    /// [MQTT-3.1.2-24]: close when no packet arrives within 1.5 times the keep-alive.
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
                // [MQTT-3.1.0-1]: the first byte already tells whether this is a
                // CONNECT; anything else is refused before its body arrives.
                if data.get(consumed).is_some_and(|first| first >> 4 != 1) {
                    return Err(End::ProtocolError { malformed: false });
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
                }
                Ok(FrameStatus::Incomplete { .. }) => return Ok((consumed, packets)),
                Err(DecodeError::PacketTooLarge { size, max }) => {
                    tracing::debug!(
                        client = self.client_id(),
                        size,
                        max,
                        "refusing an oversize packet"
                    );
                    return Err(End::OversizePacket);
                }
                Err(error) => {
                    tracing::debug!(client = self.client_id(), %error, "refusing packet");
                    return Err(End::ProtocolError { malformed: true });
                }
            }
        }
    }

    fn handle_frame(&mut self, frame: &[u8]) -> Result<(), End> {
        if self.client.is_none() {
            return match Packet::decode(frame, ProtocolVersion::V3_1_1) {
                Ok(Packet::Connect(connect)) => self.on_connect(*connect),
                Ok(_) => Err(End::ProtocolError { malformed: false }),
                Err(DecodeError::UnsupportedProtocolVersion(_)) => {
                    // [MQTT-3.1.2-2]: CONNACK 0x01, then close.
                    self.version = ProtocolVersion::V3_1_1;
                    self.refuse("<unknown>", ReasonCode::UnsupportedProtocolVersion)
                }
                Err(error) => {
                    tracing::debug!(peer = %self.peer, %error, "refusing CONNECT");
                    Err(End::ProtocolError {
                        malformed: matches!(error, DecodeError::Malformed(_)),
                    })
                }
            };
        }
        match Packet::decode(frame, self.version) {
            Ok(packet) => self.handle(packet),
            Err(error) => {
                tracing::debug!(client = self.client_id(), %error, "refusing packet");
                Err(End::ProtocolError {
                    malformed: matches!(error, DecodeError::Malformed(_)),
                })
            }
        }
    }

    fn send(&mut self, packet: &Packet) {
        match packet.encode(self.version, &mut self.out) {
            Ok(()) => count(|c| c.packets_sent += 1),
            Err(error) => tracing::error!(%error, "could not encode a packet the broker built"),
        }
    }

    fn refuse(&mut self, client_id: &str, code: ReasonCode) -> Result<(), End> {
        self.send(&Packet::ConnAck(ConnAck::new(code, false)));
        let wire_code = if self.version.is_v5() {
            code as u8
        } else {
            code.to_v3_connack()
        };
        self.router.log.debug(format_args!(
            "Sending CONNACK to {client_id} (0, {wire_code})"
        ));
        Err(End::Refused)
    }

    fn on_connect(&mut self, connect: Connect) -> Result<(), End> {
        let router = Arc::clone(&self.router);
        let config = &router.config;
        let log = &router.log;
        self.version = connect.version;
        let v5 = connect.version.is_v5();

        let assigned = connect.client_id.is_empty();
        let client_id = if assigned {
            // [MQTT-3.1.3-8]: an empty id needs a clean session in 3.1.1; 3.1 needs an id.
            if connect.version == ProtocolVersion::V3_1 || (!v5 && !connect.clean_start) {
                return self.refuse("<unknown>", ReasonCode::ClientIdentifierNotValid);
            }
            // [MQTT-3.1.3-6]: a unique id, in mosquitto's form.
            format!(
                "auto-{}",
                uuid::Uuid::new_v4().hyphenated().to_string().to_uppercase()
            )
        } else {
            connect.client_id.clone()
        };
        if connect.username.is_none() && !config.anonymous_allowed() {
            log.not_authorised(&client_id);
            return self.refuse(&client_id, ReasonCode::NotAuthorized);
        }
        let mut keep_alive = connect.keep_alive;
        let mut server_keep_alive = None;
        if config.max_keepalive < u16::MAX && (keep_alive == 0 || keep_alive > config.max_keepalive)
        {
            if !v5 {
                // mosquitto 2.0.12+: 3.x clients cannot be told a keep-alive, so they are refused.
                return self.refuse(&client_id, ReasonCode::ClientIdentifierNotValid);
            }
            keep_alive = config.max_keepalive;
            server_keep_alive = Some(keep_alive);
        }
        let persistent = if v5 {
            connect.properties.session_expiry_interval().unwrap_or(0) > 0
        } else {
            !connect.clean_start
        };
        let link = ConnectionLink {
            id: self.id,
            signal: Arc::clone(&self.signal),
        };
        let opened = router.open_session(&client_id, connect.clean_start, persistent, link);
        if let Some(previous) = &opened.previous {
            log.taken_over(&client_id);
            previous.take_over();
        }
        router.stats.client_connected();
        log.client_connected(
            self.peer,
            &client_id,
            connect.version,
            connect.clean_start,
            connect.keep_alive,
            connect.username.as_deref(),
        );
        log.will(
            connect
                .will
                .as_ref()
                .map(|w| (w.payload.len(), w.retain, w.qos, w.topic.as_str())),
        );

        let mut connack = ConnAck::new(ReasonCode::Success, opened.present);
        if v5 {
            let props = &mut connack.properties;
            if assigned {
                props.push(Property::AssignedClientIdentifier(client_id.clone()));
            }
            if config.max_inflight_messages > 0 {
                props.push(Property::ReceiveMaximum(config.max_inflight_messages));
            }
            if let Some(size) = config.max_packet_size {
                props.push(Property::MaximumPacketSize(
                    u32::try_from(size).unwrap_or(u32::MAX),
                ));
            }
            if !config.retain_available {
                props.push(Property::RetainAvailable(0));
            }
            if let Some(seconds) = server_keep_alive {
                props.push(Property::ServerKeepAlive(seconds));
            }
        }
        self.send(&Packet::ConnAck(connack));
        log.debug(format_args!(
            "Sending CONNACK to {client_id} ({}, 0)",
            u8::from(opened.present)
        ));
        let replay = opened.session.lock().replay();
        self.client = Some(Client {
            session: opened.session,
            will: connect.will.map(Box::new),
            keep_alive,
        });
        // [MQTT-4.4.0-1]: unacknowledged messages are re-sent, in order, with DUP.
        for outgoing in replay {
            self.write_outgoing(outgoing);
        }
        Ok(())
    }

    fn session(&self) -> Result<Arc<Session>, End> {
        self.client
            .as_ref()
            .map(|c| Arc::clone(&c.session))
            .ok_or(End::ProtocolError { malformed: false })
    }

    fn handle(&mut self, packet: Packet) -> Result<(), End> {
        let log = Arc::clone(&self.router);
        let log = &log.log;
        match packet {
            // [MQTT-3.1.0-2]: a second CONNECT is a protocol violation.
            Packet::Connect(_) => Err(End::ProtocolError { malformed: false }),
            Packet::Publish(publish) => self.on_publish(publish),
            Packet::PubAck(ack) => {
                log.debug(format_args!(
                    "Received PUBACK from {} (Mid: {}, RC:{})",
                    self.client_id(),
                    ack.packet_id,
                    ack.reason as u8
                ));
                self.session()?.lock().puback(ack.packet_id);
                Ok(())
            }
            Packet::PubRec(ack) => {
                log.debug(format_args!(
                    "Received PUBREC from {} (Mid: {})",
                    self.client_id(),
                    ack.packet_id
                ));
                let known = self.session()?.lock().pubrec(ack.packet_id);
                self.send_release(ack.packet_id, known);
                Ok(())
            }
            Packet::PubRel(ack) => {
                log.debug(format_args!(
                    "Received PUBREL from {} (Mid: {})",
                    self.client_id(),
                    ack.packet_id
                ));
                let known = self.session()?.lock().release_qos2(ack.packet_id);
                // [MQTT-4.3.3-11] (5.0): PUBCOMP even for an unknown id, with 0x92.
                let reason = if known || !self.version.is_v5() {
                    ReasonCode::Success
                } else {
                    ReasonCode::PacketIdentifierNotFound
                };
                self.send(&Packet::PubComp(Ack::with_reason(ack.packet_id, reason)));
                log.debug(format_args!(
                    "Sending PUBCOMP to {} (m{})",
                    self.client_id(),
                    ack.packet_id
                ));
                Ok(())
            }
            Packet::PubComp(ack) => {
                log.debug(format_args!(
                    "Received PUBCOMP from {} (Mid: {}, RC:{})",
                    self.client_id(),
                    ack.packet_id,
                    ack.reason as u8
                ));
                self.session()?.lock().pubcomp(ack.packet_id);
                Ok(())
            }
            Packet::Subscribe(subscribe) => self.on_subscribe(subscribe),
            Packet::Unsubscribe(unsubscribe) => self.on_unsubscribe(unsubscribe),
            Packet::PingReq => {
                log.debug(format_args!("Received PINGREQ from {}", self.client_id()));
                self.send(&Packet::PingResp);
                log.debug(format_args!("Sending PINGRESP to {}", self.client_id()));
                Ok(())
            }
            Packet::Disconnect(disconnect) => {
                log.debug(format_args!(
                    "Received DISCONNECT from {}",
                    self.client_id()
                ));
                Err(End::Disconnect {
                    with_will: disconnect.reason == ReasonCode::DisconnectWithWillMessage,
                })
            }
            // AUTH without an authentication method in CONNECT is a protocol error;
            // the others are packets only a server sends.
            Packet::Auth(_)
            | Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp => Err(End::ProtocolError { malformed: false }),
        }
    }

    fn send_release(&mut self, packet_id: PacketId, known: bool) {
        let reason = if known || !self.version.is_v5() {
            ReasonCode::Success
        } else {
            ReasonCode::PacketIdentifierNotFound
        };
        self.send(&Packet::PubRel(Ack::with_reason(packet_id, reason)));
        self.router.log.debug(format_args!(
            "Sending PUBREL to {} (m{packet_id})",
            self.client_id()
        ));
    }

    fn on_publish(&mut self, publish: Publish) -> Result<(), End> {
        let router = Arc::clone(&self.router);
        let session = self.session()?;
        router.log.received_publish(&session.client_id, &publish);
        let size = publish.payload.len() as u64;
        count(|c| {
            c.publish_received += 1;
            c.publish_bytes_received += size;
        });
        // No Topic Alias Maximum is advertised, so a client may not use aliases (§3.3.2.3.4).
        if publish.topic.is_empty() {
            return Err(End::ProtocolError { malformed: false });
        }
        if publish.retain && !router.config.retain_available {
            return Err(End::ProtocolError { malformed: false });
        }
        // Oversized payloads are acknowledged and dropped, as mosquitto does; clients
        // may not write into `$SYS` (acknowledged and dropped, as mosquitto does).
        let accepted = router
            .config
            .message_size_limit
            .is_none_or(|limit| publish.payload.len() <= limit)
            && !publish.topic.as_str().starts_with("$SYS");
        let packet_id = publish.packet_id;
        let qos = publish.qos;
        let route = |publish: Publish| {
            if accepted {
                router.publish(Arc::new(Message::from_publish(publish, session.id)));
            }
        };
        match (qos, packet_id) {
            (QoS::AtMostOnce, _) => route(publish),
            (QoS::AtLeastOnce, Some(id)) => {
                route(publish);
                self.send(&Packet::PubAck(Ack::new(id)));
                router.log.debug(format_args!(
                    "Sending PUBACK to {} (m{id}, rc0)",
                    session.client_id
                ));
            }
            (QoS::ExactlyOnce, Some(id)) => {
                // Routed on first receipt (the spec's "Method B"); a copy re-sent before
                // PUBREL is acknowledged but not delivered again [MQTT-4.3.3-10].
                if session.lock().receive_qos2(id) {
                    route(publish);
                }
                self.send(&Packet::PubRec(Ack::new(id)));
                router.log.debug(format_args!(
                    "Sending PUBREC to {} (m{id}, rc0)",
                    session.client_id
                ));
            }
            // The decoder guarantees a packet id for QoS 1 and 2.
            _ => return Err(End::ProtocolError { malformed: true }),
        }
        Ok(())
    }

    fn on_subscribe(&mut self, subscribe: Subscribe) -> Result<(), End> {
        let router = Arc::clone(&self.router);
        let session = self.session()?;
        router.log.debug(format_args!(
            "Received SUBSCRIBE from {}",
            session.client_id
        ));
        let subscription_id = subscribe.properties.subscription_identifiers().next();
        let mut codes = Vec::with_capacity(subscribe.filters.len());
        for (filter, options) in &subscribe.filters {
            router.subscribe(&session, filter, *options, subscription_id);
            router
                .log
                .subscribed(&session.client_id, filter.as_str(), options.qos);
            codes.push(match options.qos {
                QoS::AtMostOnce => ReasonCode::Success,
                QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
                QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
            });
        }
        // SUBACK is written now; the retained messages queued above follow it.
        self.send(&Packet::SubAck(SubAck {
            packet_id: subscribe.packet_id,
            properties: Properties::new(),
            codes,
        }));
        router
            .log
            .debug(format_args!("Sending SUBACK to {}", session.client_id));
        Ok(())
    }

    fn on_unsubscribe(&mut self, unsubscribe: Unsubscribe) -> Result<(), End> {
        let router = Arc::clone(&self.router);
        let session = self.session()?;
        router.log.debug(format_args!(
            "Received UNSUBSCRIBE from {}",
            session.client_id
        ));
        let mut codes = Vec::with_capacity(unsubscribe.filters.len());
        for filter in &unsubscribe.filters {
            let existed = router.unsubscribe(&session, filter);
            router.log.unsubscribed(&session.client_id, filter.as_str());
            codes.push(if existed {
                ReasonCode::Success
            } else {
                ReasonCode::NoSubscriptionExisted
            });
        }
        // [MQTT-3.10.4-4] [MQTT-3.10.4-5]: UNSUBACK even when nothing was subscribed.
        self.send(&Packet::UnsubAck(UnsubAck {
            packet_id: unsubscribe.packet_id,
            properties: Properties::new(),
            codes: if self.version.is_v5() {
                codes
            } else {
                Vec::new()
            },
        }));
        router
            .log
            .debug(format_args!("Sending UNSUBACK to {}", session.client_id));
        Ok(())
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
        while self.out.len() - self.written < WRITE_HIGH_WATER {
            match state.next_publish() {
                Some(outgoing) => self.write_outgoing(outgoing),
                None => break,
            }
        }
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
        let with_ids;
        let properties = if self.version.is_v5() && !delivery.subscription_ids.is_empty() {
            let mut props = message.properties.clone();
            for id in &delivery.subscription_ids {
                props.push(Property::SubscriptionIdentifier(*id));
            }
            with_ids = props;
            &with_ids
        } else {
            &message.properties
        };
        let topic = message.topic.as_str();
        if let Err(error) = encode_publish(
            &mut self.out,
            self.version,
            header,
            topic,
            properties,
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
        loop {
            self.drain_session();
            if self.written == self.out.len() {
                return Ok(());
            }
            self.flush(transport)?;
            if self.written < self.out.len() {
                return Ok(());
            }
        }
    }

    fn flush<T: Transport>(&mut self, transport: &T) -> Result<(), End> {
        while self.written < self.out.len() {
            match transport.try_write(&self.out[self.written..]) {
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
        self.out.clear();
        self.written = 0;
        if self.out.capacity() > KEEP_CAPACITY {
            self.out = Vec::new();
        }
        Ok(())
    }

    /// Logs the end, publishes the will when due, and releases the session.
    fn finish<T: Transport>(&mut self, transport: &T, end: End) {
        // Best effort: a refusal CONNACK or the last acknowledgements.
        let _ = self.flush(transport);
        self.flush_counts();
        let log = &self.router.log;
        let Some(client) = self.client.take() else {
            match end {
                End::ProtocolError { malformed } => log.protocol_error("<unknown>", malformed),
                End::OversizePacket => log.oversize_packet("<unknown>"),
                End::ConnectTimeout => log.keep_alive_expired("<unknown>"),
                _ => {}
            }
            return;
        };
        let client_id = &client.session.client_id;
        match end {
            End::Disconnect { .. } => log.disconnected(client_id),
            End::Closed => log.closed_connection(client_id),
            End::KeepAliveExpired => log.keep_alive_expired(client_id),
            End::ProtocolError { malformed } => log.protocol_error(client_id, malformed),
            End::OversizePacket => log.oversize_packet(client_id),
            End::SocketError => log.socket_error(client_id),
            End::TakenOver | End::Shutdown | End::ConnectTimeout | End::Refused => {}
        }
        if end.sends_will()
            && let Some(will) = client.will
        {
            let will = *will;
            let mut properties = will.properties;
            // Will Delay belongs to the CONNECT, not to the PUBLISH.
            properties.remove(0x18);
            let message = Message {
                properties,
                origin: client.session.id,
                ..Message::new(will.topic, will.payload, will.qos, will.retain)
            };
            self.router.publish(Arc::new(message));
        }
        self.router.close_session(&client.session, self.id);
        self.router.stats.client_disconnected();
    }
}
