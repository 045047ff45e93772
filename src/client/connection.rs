//! [`Connection`]: one MQTT client connection for rsub and rpub, on the project's
//! codec, in every protocol version.
//!
//! Why not rumqttc here: mosquitto's clients speak MQTT 3.1 (`-V 31`, protocol
//! name `MQIsdp`), which rumqttc cannot; `-D disconnect ...` needs a DISCONNECT with
//! properties, which rumqttc's v5 client cannot send; and `-d` must print every
//! packet as mosquitto does, while rumqttc reports outgoing packets by packet id
//! only (QoS 0 PUBLISHes have none) and in two unrelated type families for 3.1.1
//! and 5.0. One small engine on the codec the broker already uses does all of it.
//!
//! The protocol state machine is [`ClientState`] (`engine.rs`, no I/O); this
//! drives it over a stream. The connection runs in the caller's task:
//! [`Connection::next_event`] reads, lets the state machine answer the QoS
//! handshakes and keep-alive, flushes what it queued, and returns what the program
//! must see. It is cancel-safe, so a program can `select!` it with
//! its own input (rpub reading stdin). Outgoing QoS 1/2 messages are kept until
//! acknowledged; [`Connection::take_unacknowledged`] hands them to the next
//! connection after a reconnect, which sends them again with DUP set.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::time::Instant;

use super::engine::{self, ClientState, Handshake};
pub use super::engine::{ClientError, Event, Unacknowledged};
use super::trace::Trace;
use crate::protocol::{
    ConnAck, Connect, Disconnect, FrameStatus, Packet, PacketId, Properties, ProtocolVersion,
    Publish, QoS, ReasonCode, SubscriptionOptions, TopicFilter, check_frame,
};

/// How long [`Connection::disconnect`] waits for the broker to close its side.
const DISCONNECT_WAIT: Duration = Duration::from_millis(500);

/// The largest packet MQTT can frame.
const MAX_PACKET: usize = 268_435_455;

/// A byte stream to a broker: TCP, TLS on TCP, or a unix socket.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One connection; see the module documentation. The protocol state lives in
/// [`ClientState`] (sans-I/O); this adds the stream and the buffers.
pub struct Connection {
    reader: ReadHalf<Box<dyn Stream>>,
    writer: WriteHalf<Box<dyn Stream>>,
    read_buf: BytesMut,
    /// Bytes of `state.out` already written.
    written: usize,
    /// Whether a layer (TLS, WebSocket frames) may still hold bytes written to it;
    /// cleared once flushed.
    unflushed: bool,
    state: ClientState,
}

impl Connection {
    /// Sends `connect` over `stream` and waits for the CONNACK. The client id
    /// the broker assigns (MQTT 5) replaces an empty one in `trace`.
    pub async fn handshake(
        stream: Box<dyn Stream>,
        connect: &Connect,
        max_inflight: u16,
        mut trace: Trace,
    ) -> Result<(Connection, ConnAck), ClientError> {
        let (reader, writer) = tokio::io::split(stream);
        trace.set_client_id(&connect.client_id);
        let keep_alive =
            (connect.keep_alive > 0).then(|| Duration::from_secs(u64::from(connect.keep_alive)));
        let mut connection = Connection {
            reader,
            writer,
            read_buf: BytesMut::with_capacity(4096),
            written: 0,
            unflushed: false,
            state: ClientState::new(connect.version, keep_alive, max_inflight, trace),
        };
        connection.state.trace.sending_connect();
        connection
            .state
            .queue(&Packet::Connect(Box::new(connect.clone())))?;
        connection.flush_all().await?;
        let v5 = connection.state.version.is_v5();
        let connack = loop {
            match engine::handshake(connection.read_answer_to_connect().await?) {
                Handshake::Accepted(connack) => {
                    if let Some(assigned) = connack.properties.assigned_client_identifier() {
                        connection.state.trace.set_client_id(assigned);
                    }
                    connection.state.trace.received_connack(connack.code, v5);
                    break connack;
                }
                Handshake::Refused(code) => {
                    connection.state.trace.received_connack(code, v5);
                    return Err(ClientError::Refused(code));
                }
                Handshake::KeepWaiting => connection.state.trace.received("AUTH"),
                Handshake::Unexpected(kind) => {
                    return Err(ClientError::Protocol(format!(
                        "expected CONNACK, got {kind:?}"
                    )));
                }
            }
        };
        if let Some(maximum) = connack.properties.receive_maximum() {
            connection.state.send_window = connection.state.send_window.min(usize::from(maximum));
        }
        if let Some(server_keep_alive) = connack.properties.server_keep_alive() {
            connection.state.keep_alive =
                (server_keep_alive > 0).then(|| Duration::from_secs(u64::from(server_keep_alive)));
        }
        Ok((connection, connack))
    }

    /// Whether another QoS 1/2 message may be sent now.
    pub fn can_publish(&self) -> bool {
        self.state.can_publish()
    }

    /// QoS 1/2 messages sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.state.in_flight()
    }

    /// Queues `publish` ([`ClientState::publish`]); returns its message id.
    pub fn publish(&mut self, publish: Publish) -> Result<u16, ClientError> {
        self.state.publish(publish)
    }

    /// The program sends every acknowledgement itself
    /// ([`ClientState::set_manual_acks`]).
    pub fn set_manual_acks(&mut self) {
        self.state.set_manual_acks();
    }

    /// Queues `publish` under the packet id it carries
    /// ([`ClientState::publish_with_id`]).
    pub fn publish_with_id(&mut self, publish: Publish) -> Result<(), ClientError> {
        self.state.publish_with_id(publish)
    }

    /// PUBACK or PUBREC for an incoming message (manual acknowledgements).
    pub fn acknowledge(
        &mut self,
        id: PacketId,
        qos: QoS,
        reason: ReasonCode,
    ) -> Result<(), ClientError> {
        self.state.acknowledge(id, qos, reason)
    }

    /// PUBREL for an outgoing QoS 2 message (manual acknowledgements).
    pub fn release(&mut self, id: PacketId) -> Result<(), ClientError> {
        self.state.release(id)
    }

    /// PUBCOMP for an incoming QoS 2 message (manual acknowledgements).
    pub fn complete(&mut self, id: PacketId) -> Result<(), ClientError> {
        self.state.complete(id)
    }

    /// Queues a SUBSCRIBE; returns its message id.
    pub fn subscribe(
        &mut self,
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
        properties: Properties,
    ) -> Result<u16, ClientError> {
        self.state.subscribe(filters, properties)
    }

    /// Queues an UNSUBSCRIBE; returns its message id.
    pub fn unsubscribe(
        &mut self,
        filters: Vec<TopicFilter>,
        properties: Properties,
    ) -> Result<u16, ClientError> {
        self.state.unsubscribe(filters, properties)
    }

    /// Sends again what a previous connection left unacknowledged.
    pub fn resume(&mut self, unacknowledged: Vec<Unacknowledged>) -> Result<(), ClientError> {
        self.state.resume(unacknowledged)
    }

    /// The QoS 1/2 messages not yet acknowledged, for the next connection.
    pub fn take_unacknowledged(&mut self) -> Vec<Unacknowledged> {
        self.state.take_unacknowledged()
    }

    /// Queues a PINGREQ; [`Event::Pong`] follows once the broker answers.
    pub fn ping(&mut self) -> Result<(), ClientError> {
        self.state.ping()
    }

    pub fn version(&self) -> ProtocolVersion {
        self.state.version
    }

    /// The id `-d` lines print, `(null)` while none is known.
    pub fn trace(&mut self) -> &mut Trace {
        &mut self.state.trace
    }

    /// Bytes queued and not yet written.
    pub fn unwritten(&self) -> usize {
        self.state.out.len() - self.written
    }

    /// Sends DISCONNECT and everything queued before it, then closes. The reason
    /// is sent on MQTT 5 only.
    pub async fn disconnect(
        &mut self,
        reason: ReasonCode,
        properties: Properties,
    ) -> Result<(), ClientError> {
        self.state.trace.sending("DISCONNECT");
        self.state
            .queue(&Packet::Disconnect(Disconnect { reason, properties }))?;
        self.flush_all().await?;
        let _ = self.writer.shutdown().await;
        // The broker closes its side once it has handled the DISCONNECT (and so
        // everything before it): waiting for that, briefly, means a command run
        // next (a script's next line) finds the broker's state as this one left
        // it, e.g. the session detached or the retained message stored.
        let drained = async {
            let mut sink = [0u8; 1024];
            while matches!(self.reader.read(&mut sink).await, Ok(n) if n > 0) {}
        };
        let _ = tokio::time::timeout(DISCONNECT_WAIT, drained).await;
        Ok(())
    }

    /// Writes everything queued.
    pub async fn flush_all(&mut self) -> Result<(), ClientError> {
        while self.written < self.state.out.len() {
            let n = self.writer.write(&self.state.out[self.written..]).await?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            self.written += n;
        }
        // Layers with their own buffers (TLS, WebSocket frames) send them now.
        self.writer.flush().await?;
        self.state.out.clear();
        self.written = 0;
        self.state.last_sent = Instant::now();
        Ok(())
    }

    /// Decodes one whole packet from what has been read, if there is one.
    fn decode_buffered(&mut self) -> Result<Option<Packet>, ClientError> {
        match check_frame(&self.read_buf, MAX_PACKET) {
            Ok(FrameStatus::Complete(header)) => {
                let frame = self.read_buf.split_to(header.frame_len());
                Packet::decode(&frame, self.state.version)
                    .map(Some)
                    .map_err(|e| ClientError::Protocol(e.to_string()))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(ClientError::Protocol(e.to_string())),
        }
    }

    /// The broker's first packet. Only CONNACK (or AUTH) may come; anything else
    /// is refused from its first byte, so a peer that is not an MQTT broker (an
    /// HTTP server, garbage) fails the handshake at once instead of leaving it
    /// waiting for a length its bytes only seem to give.
    async fn read_answer_to_connect(&mut self) -> Result<Packet, ClientError> {
        loop {
            if let Some(&first) = self.read_buf.first()
                && first != 0x20
                && first != 0xF0
            {
                return Err(ClientError::Protocol(format!(
                    "expected CONNACK, got a first byte of 0x{first:02x}"
                )));
            }
            if let Some(packet) = self.decode_buffered()? {
                return Ok(packet);
            }
            if self.reader.read_buf(&mut self.read_buf).await? == 0 {
                return Err(ClientError::Closed);
            }
        }
    }

    /// The next event among what has been read already, without reading more:
    /// a program that answers in batches takes every event one read brought.
    pub fn buffered_event(&mut self) -> Result<Option<Event>, ClientError> {
        loop {
            if let Some(event) = self.state.events.pop_front() {
                return Ok(Some(event));
            }
            match self.decode_buffered()? {
                Some(packet) => self.state.handle(packet)?,
                None => return Ok(None),
            }
        }
    }

    /// The next event. Cancel-safe: a packet is handled completely between awaits.
    pub async fn next_event(&mut self) -> Result<Event, ClientError> {
        loop {
            if let Some(event) = self.next_event_or_written(None).await? {
                return Ok(event);
            }
        }
    }

    /// [`Connection::next_event`], or `None` as soon as a write leaves fewer than
    /// `backlog` bytes unwritten: a producer that stopped queueing at a backlog
    /// learns it can go on even when no packet arrives (QoS 0 has no acks).
    pub async fn next_event_or_written(
        &mut self,
        backlog: Option<usize>,
    ) -> Result<Option<Event>, ClientError> {
        loop {
            if let Some(event) = self.state.events.pop_front() {
                return Ok(Some(event));
            }
            // One packet at a time: the program sees each event before the next
            // packet is handled (and traced), as libmosquitto's callbacks do.
            while let Some(packet) = self.decode_buffered()? {
                self.state.handle(packet)?;
                if !self.state.events.is_empty() {
                    break;
                }
            }
            if !self.state.events.is_empty() {
                continue;
            }
            let deadline = self.state.keep_alive_deadline();
            let unwritten = self.written < self.state.out.len();
            let Connection {
                reader,
                writer,
                read_buf,
                written,
                unflushed,
                state,
            } = self;
            let flushing = *unflushed && !unwritten;
            // Write what is queued; once all is written, flush what a layer (TLS
            // records, WebSocket frames) took but has not sent yet.
            let write_or_flush = async {
                if unwritten {
                    writer.write(&state.out[*written..]).await.map(Io::Wrote)
                } else {
                    writer.flush().await.map(|()| Io::Flushed)
                }
            };
            let outcome = tokio::select! {
                read = reader.read_buf(read_buf) => Io::Read(read?),
                io = write_or_flush, if unwritten || flushing => io?,
                _ = sleep_until(deadline) => Io::KeepAliveDue,
            };
            match outcome {
                Io::Read(0) | Io::Wrote(0) => return Err(ClientError::Closed),
                Io::Read(_) => {}
                Io::Flushed => self.unflushed = false,
                Io::Wrote(n) => {
                    self.unflushed = true;
                    self.written += n;
                    if self.written == self.state.out.len() {
                        self.state.out.clear();
                        self.written = 0;
                        self.state.last_sent = Instant::now();
                    }
                    if backlog.is_some_and(|limit| self.unwritten() < limit) {
                        return Ok(None);
                    }
                }
                Io::KeepAliveDue => self.state.keep_alive_due()?,
            }
        }
    }
}

/// What one wait in [`Connection::next_event`] brought.
enum Io {
    Read(usize),
    Wrote(usize),
    Flushed,
    KeepAliveDue,
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
