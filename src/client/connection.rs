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
//! The connection runs in the caller's task: [`Connection::next_event`] reads,
//! answers the QoS handshakes and keep-alive, flushes what is queued, and returns
//! what the program must see. It is cancel-safe, so a program can `select!` it with
//! its own input (rpub reading stdin). Outgoing QoS 1/2 messages are kept until
//! acknowledged; [`Connection::take_unacknowledged`] hands them to the next
//! connection after a reconnect, which sends them again with DUP set.

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::time::Instant;

use super::engine::{self, Handshake};
use super::trace::Trace;
use crate::protocol::{
    Ack, ConnAck, Connect, Disconnect, FrameStatus, Packet, PacketId, PacketType, Properties,
    ProtocolVersion, Publish, QoS, ReasonCode, SubAck, Subscribe, SubscriptionOptions, TopicFilter,
    UnsubAck, Unsubscribe, check_frame,
};

/// The largest packet MQTT can frame.
const MAX_PACKET: usize = 268_435_455;

/// A byte stream to a broker: TCP, TLS on TCP, or a unix socket.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// What ended or refused a connection.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The broker answered CONNECT with this code.
    #[error("connection refused: {}", .0.name())]
    Refused(ReasonCode),
    /// The broker sent DISCONNECT (MQTT 5).
    #[error("disconnected by the broker: {}", .0.name())]
    Disconnected(ReasonCode),
    /// The broker sent something the protocol does not allow.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// No PINGRESP within the keep-alive interval.
    #[error("the broker stopped answering (keep-alive)")]
    KeepAlive,
    #[error("the connection closed")]
    Closed,
}

/// What the program sees from a connection.
#[derive(Debug)]
pub enum Event {
    /// An application message, delivered once its QoS handshake allows.
    Message(Publish),
    SubAck(SubAck),
    UnsubAck(UnsubAck),
    /// An outgoing QoS 1/2 message finished (PUBACK, PUBCOMP, or a refusing PUBREC).
    Published {
        mid: u16,
        reason: ReasonCode,
    },
    /// A PINGRESP: everything the broker sent before it has been handled.
    Pong,
}

/// The acknowledgement an outgoing QoS 1/2 message waits for.
#[derive(Debug, Clone)]
enum Stage {
    Puback,
    Pubrec,
    Pubcomp,
}

/// An outgoing QoS 1/2 message kept until the broker has it.
#[derive(Debug, Clone)]
pub struct Unacknowledged {
    publish: Publish,
    stage: Stage,
}

/// One connection; see the module documentation.
pub struct Connection {
    reader: ReadHalf<Box<dyn Stream>>,
    writer: WriteHalf<Box<dyn Stream>>,
    version: ProtocolVersion,
    read_buf: BytesMut,
    write_buf: Vec<u8>,
    written: usize,
    /// libmosquitto's message ids: every PUBLISH gets one (QoS 0 too, for `-d`),
    /// and SUBSCRIBE/UNSUBSCRIBE share the sequence.
    last_mid: u16,
    outgoing: BTreeMap<u16, Unacknowledged>,
    /// Incoming QoS 2 messages held until PUBREL, delivered then (as libmosquitto).
    incoming_qos2: BTreeMap<u16, Publish>,
    events: VecDeque<Event>,
    keep_alive: Option<Duration>,
    last_sent: Instant,
    ping_outstanding: Option<Instant>,
    /// The broker's Receive Maximum (MQTT 5) or `-M`: QoS 1/2 messages in flight.
    send_window: usize,
    trace: Trace,
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
            version: connect.version,
            read_buf: BytesMut::with_capacity(4096),
            write_buf: Vec::with_capacity(4096),
            written: 0,
            last_mid: 0,
            outgoing: BTreeMap::new(),
            incoming_qos2: BTreeMap::new(),
            events: VecDeque::new(),
            keep_alive,
            last_sent: Instant::now(),
            ping_outstanding: None,
            send_window: usize::from(max_inflight.max(1)),
            trace,
        };
        connection.trace.sending_connect();
        connection.queue(&Packet::Connect(Box::new(connect.clone())))?;
        connection.flush_all().await?;
        let v5 = connection.version.is_v5();
        let connack = loop {
            match engine::handshake(connection.read_packet().await?) {
                Handshake::Accepted(connack) => {
                    if let Some(assigned) = connack.properties.assigned_client_identifier() {
                        connection.trace.set_client_id(assigned);
                    }
                    connection.trace.received_connack(connack.code, v5);
                    break connack;
                }
                Handshake::Refused(code) => {
                    connection.trace.received_connack(code, v5);
                    return Err(ClientError::Refused(code));
                }
                Handshake::KeepWaiting => connection.trace.received("AUTH"),
                Handshake::Unexpected(kind) => {
                    return Err(ClientError::Protocol(format!(
                        "expected CONNACK, got {kind:?}"
                    )));
                }
            }
        };
        if let Some(maximum) = connack.properties.receive_maximum() {
            connection.send_window = connection.send_window.min(usize::from(maximum));
        }
        if let Some(server_keep_alive) = connack.properties.server_keep_alive() {
            connection.keep_alive =
                (server_keep_alive > 0).then(|| Duration::from_secs(u64::from(server_keep_alive)));
        }
        Ok((connection, connack))
    }

    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// The id `-d` lines print, `(null)` while none is known.
    pub fn trace(&mut self) -> &mut Trace {
        &mut self.trace
    }

    /// The next message id, skipping 0 and ids still in use.
    fn next_mid(&mut self) -> u16 {
        loop {
            self.last_mid = self.last_mid.wrapping_add(1);
            if self.last_mid != 0 && !self.outgoing.contains_key(&self.last_mid) {
                return self.last_mid;
            }
        }
    }

    fn queue(&mut self, packet: &Packet) -> Result<(), ClientError> {
        packet
            .encode(self.version, &mut self.write_buf)
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Whether another QoS 1/2 message may be sent now.
    pub fn can_publish(&self) -> bool {
        self.outgoing.len() < self.send_window
    }

    /// Bytes queued and not yet written.
    pub fn unwritten(&self) -> usize {
        self.write_buf.len() - self.written
    }

    /// QoS 1/2 messages sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.outgoing.len()
    }

    /// Queues `publish` (its packet id is assigned here) and returns its message id.
    /// At QoS 1/2 the caller checks [`Connection::can_publish`] first.
    pub fn publish(&mut self, mut publish: Publish) -> Result<u16, ClientError> {
        let mid = self.next_mid();
        if publish.qos != QoS::AtMostOnce {
            publish.packet_id = PacketId::new(mid);
            let stage = if publish.qos == QoS::AtLeastOnce {
                Stage::Puback
            } else {
                Stage::Pubrec
            };
            self.outgoing.insert(
                mid,
                Unacknowledged {
                    publish: publish.clone(),
                    stage,
                },
            );
        } else {
            publish.packet_id = None;
        }
        self.trace.publish("sending", &publish, mid);
        self.queue(&Packet::Publish(publish))?;
        Ok(mid)
    }

    /// Queues a SUBSCRIBE; returns its message id.
    pub fn subscribe(
        &mut self,
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
        properties: Properties,
    ) -> Result<u16, ClientError> {
        let mid = self.next_mid();
        let packet_id = PacketId::new(mid).ok_or(ClientError::Closed)?;
        for (filter, options) in &filters {
            self.trace.sending_subscribe(mid, filter.as_str(), options);
        }
        self.queue(&Packet::Subscribe(Subscribe {
            packet_id,
            properties,
            filters,
            rejected: Vec::new(),
        }))?;
        Ok(mid)
    }

    /// Queues an UNSUBSCRIBE; returns its message id.
    pub fn unsubscribe(
        &mut self,
        filters: Vec<TopicFilter>,
        properties: Properties,
    ) -> Result<u16, ClientError> {
        let mid = self.next_mid();
        let packet_id = PacketId::new(mid).ok_or(ClientError::Closed)?;
        for filter in &filters {
            self.trace.sending_unsubscribe(mid, filter.as_str());
        }
        self.queue(&Packet::Unsubscribe(Unsubscribe {
            packet_id,
            properties,
            filters,
        }))?;
        Ok(mid)
    }

    /// Sends `PUBLISH` again (DUP set) or `PUBREL` for each message a previous
    /// connection left unacknowledged, in their original order.
    pub fn resume(&mut self, unacknowledged: Vec<Unacknowledged>) -> Result<(), ClientError> {
        for mut entry in unacknowledged {
            let mid = self.next_mid();
            entry.publish.packet_id = PacketId::new(mid);
            match entry.stage {
                Stage::Pubcomp => {
                    self.trace.sending_pubrel(mid);
                    let id = PacketId::new(mid).ok_or(ClientError::Closed)?;
                    self.queue(&Packet::PubRel(Ack::new(id)))?;
                }
                Stage::Puback | Stage::Pubrec => {
                    entry.publish.dup = true;
                    self.trace.publish("sending", &entry.publish, mid);
                    self.queue(&Packet::Publish(entry.publish.clone()))?;
                }
            }
            self.outgoing.insert(mid, entry);
        }
        Ok(())
    }

    /// The QoS 1/2 messages not yet acknowledged, for the next connection.
    pub fn take_unacknowledged(&mut self) -> Vec<Unacknowledged> {
        std::mem::take(&mut self.outgoing).into_values().collect()
    }

    /// Queues a PINGREQ; [`Event::Pong`] follows once the broker answers.
    pub fn ping(&mut self) -> Result<(), ClientError> {
        self.trace.sending("PINGREQ");
        self.queue(&Packet::PingReq)?;
        self.ping_outstanding.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// Sends DISCONNECT and everything queued before it, then closes. The reason
    /// is sent on MQTT 5 only.
    pub async fn disconnect(
        &mut self,
        reason: ReasonCode,
        properties: Properties,
    ) -> Result<(), ClientError> {
        self.trace.sending("DISCONNECT");
        self.queue(&Packet::Disconnect(Disconnect { reason, properties }))?;
        self.flush_all().await?;
        let _ = self.writer.shutdown().await;
        Ok(())
    }

    /// Writes everything queued.
    pub async fn flush_all(&mut self) -> Result<(), ClientError> {
        while self.written < self.write_buf.len() {
            let n = self.writer.write(&self.write_buf[self.written..]).await?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            self.written += n;
        }
        self.write_buf.clear();
        self.written = 0;
        self.last_sent = Instant::now();
        Ok(())
    }

    /// Decodes one whole packet from what has been read, if there is one.
    fn decode_buffered(&mut self) -> Result<Option<Packet>, ClientError> {
        match check_frame(&self.read_buf, MAX_PACKET) {
            Ok(FrameStatus::Complete(header)) => {
                let frame = self.read_buf.split_to(header.frame_len());
                Packet::decode(&frame, self.version)
                    .map(Some)
                    .map_err(|e| ClientError::Protocol(e.to_string()))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(ClientError::Protocol(e.to_string())),
        }
    }

    async fn read_packet(&mut self) -> Result<Packet, ClientError> {
        loop {
            if let Some(packet) = self.decode_buffered()? {
                return Ok(packet);
            }
            if self.reader.read_buf(&mut self.read_buf).await? == 0 {
                return Err(ClientError::Closed);
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
            if let Some(event) = self.events.pop_front() {
                return Ok(Some(event));
            }
            // One packet at a time: the program sees each event before the next
            // packet is handled (and traced), as libmosquitto's callbacks do.
            while let Some(packet) = self.decode_buffered()? {
                self.handle(packet)?;
                if !self.events.is_empty() {
                    break;
                }
            }
            if !self.events.is_empty() {
                continue;
            }
            let deadline = self.keep_alive_deadline();
            let unwritten = self.written < self.write_buf.len();
            let Connection {
                reader,
                writer,
                read_buf,
                write_buf,
                written,
                ..
            } = self;
            let outcome = tokio::select! {
                read = reader.read_buf(read_buf) => Io::Read(read?),
                wrote = writer.write(&write_buf[*written..]), if unwritten => Io::Wrote(wrote?),
                _ = sleep_until(deadline) => Io::KeepAliveDue,
            };
            match outcome {
                Io::Read(0) | Io::Wrote(0) => return Err(ClientError::Closed),
                Io::Read(_) => {}
                Io::Wrote(n) => {
                    self.written += n;
                    if self.written == self.write_buf.len() {
                        self.write_buf.clear();
                        self.written = 0;
                        self.last_sent = Instant::now();
                    }
                    if backlog.is_some_and(|limit| self.unwritten() < limit) {
                        return Ok(None);
                    }
                }
                Io::KeepAliveDue => self.keep_alive_due()?,
            }
        }
    }

    /// When keep-alive next needs attention: a PINGREQ due, or a PINGRESP overdue.
    fn keep_alive_deadline(&self) -> Option<Instant> {
        let interval = self.keep_alive?;
        Some(match self.ping_outstanding {
            Some(sent) => sent + interval,
            None => self.last_sent + interval,
        })
    }

    fn keep_alive_due(&mut self) -> Result<(), ClientError> {
        if self.ping_outstanding.is_some() {
            return Err(ClientError::KeepAlive);
        }
        self.trace.sending("PINGREQ");
        self.queue(&Packet::PingReq)?;
        self.ping_outstanding = Some(Instant::now());
        // Counts as sent now, so the deadline moves on even before the write.
        self.last_sent = Instant::now();
        Ok(())
    }

    fn handle(&mut self, packet: Packet) -> Result<(), ClientError> {
        match packet {
            Packet::Publish(publish) => self.incoming_publish(publish)?,
            Packet::PubAck(ack) => {
                let mid = ack.packet_id.get();
                self.trace.received_ack("PUBACK", mid, ack.reason);
                if self.outgoing.remove(&mid).is_some() {
                    self.events.push_back(Event::Published {
                        mid,
                        reason: ack.reason,
                    });
                }
            }
            Packet::PubRec(ack) => {
                let mid = ack.packet_id.get();
                self.trace.received_mid("PUBREC", mid);
                if ack.reason.is_error() {
                    if self.outgoing.remove(&mid).is_some() {
                        self.events.push_back(Event::Published {
                            mid,
                            reason: ack.reason,
                        });
                    }
                } else {
                    if let Some(entry) = self.outgoing.get_mut(&mid) {
                        entry.stage = Stage::Pubcomp;
                    }
                    self.answer(
                        PacketType::PubRec,
                        QoS::ExactlyOnce,
                        ack.reason,
                        ack.packet_id,
                    )?;
                }
            }
            Packet::PubComp(ack) => {
                let mid = ack.packet_id.get();
                self.trace.received_ack("PUBCOMP", mid, ack.reason);
                if self.outgoing.remove(&mid).is_some() {
                    self.events.push_back(Event::Published {
                        mid,
                        reason: ack.reason,
                    });
                }
            }
            Packet::PubRel(ack) => {
                let mid = ack.packet_id.get();
                self.trace.received_mid("PUBREL", mid);
                self.answer(
                    PacketType::PubRel,
                    QoS::ExactlyOnce,
                    ack.reason,
                    ack.packet_id,
                )?;
                if let Some(publish) = self.incoming_qos2.remove(&mid) {
                    self.events.push_back(Event::Message(publish));
                }
            }
            Packet::SubAck(suback) => {
                self.trace.received("SUBACK");
                self.events.push_back(Event::SubAck(suback));
            }
            Packet::UnsubAck(unsuback) => {
                self.trace.received("UNSUBACK");
                self.events.push_back(Event::UnsubAck(unsuback));
            }
            Packet::PingResp => {
                self.trace.received("PINGRESP");
                self.ping_outstanding = None;
                self.events.push_back(Event::Pong);
            }
            Packet::PingReq => {
                // Brokers do not ping clients, but answering costs nothing.
                self.queue(&Packet::PingResp)?;
            }
            Packet::Disconnect(disconnect) => {
                self.trace.received_disconnect(disconnect.reason);
                return Err(ClientError::Disconnected(disconnect.reason));
            }
            Packet::Auth(_) => self.trace.received("AUTH"),
            other => {
                return Err(ClientError::Protocol(format!(
                    "unexpected {:?} from the broker",
                    other.packet_type()
                )));
            }
        }
        Ok(())
    }

    /// Sends what the protocol requires in answer to a packet of `kind` from the
    /// broker ([`engine::reply`]), with its `-d` line.
    fn answer(
        &mut self,
        kind: PacketType,
        qos: QoS,
        reason: ReasonCode,
        id: PacketId,
    ) -> Result<(), ClientError> {
        let mid = id.get();
        let reply = match engine::reply(kind, qos, reason) {
            Some(PacketType::PubAck) => {
                self.trace.sending_ack("PUBACK", mid);
                Packet::PubAck(Ack::new(id))
            }
            Some(PacketType::PubRec) => {
                self.trace.sending_ack("PUBREC", mid);
                Packet::PubRec(Ack::new(id))
            }
            Some(PacketType::PubRel) => {
                self.trace.sending_pubrel(mid);
                Packet::PubRel(Ack::new(id))
            }
            Some(PacketType::PubComp) => {
                self.trace.sending_mid("PUBCOMP", mid);
                Packet::PubComp(Ack::new(id))
            }
            _ => return Ok(()),
        };
        self.queue(&reply)
    }

    fn incoming_publish(&mut self, publish: Publish) -> Result<(), ClientError> {
        let mid = publish.packet_id.map_or(0, PacketId::get);
        self.trace.publish("received", &publish, mid);
        match (publish.qos, publish.packet_id) {
            (QoS::AtMostOnce, _) => self.events.push_back(Event::Message(publish)),
            (QoS::AtLeastOnce, Some(id)) => {
                self.answer(PacketType::Publish, publish.qos, ReasonCode::Success, id)?;
                self.events.push_back(Event::Message(publish));
            }
            (QoS::ExactlyOnce, Some(id)) => {
                self.answer(PacketType::Publish, publish.qos, ReasonCode::Success, id)?;
                // A re-sent copy before PUBREL replaces the held one: delivered once.
                self.incoming_qos2.insert(mid, publish);
            }
            _ => return Err(ClientError::Protocol("PUBLISH without a packet id".into())),
        }
        Ok(())
    }
}

/// What one wait in [`Connection::next_event`] brought.
enum Io {
    Read(usize),
    Wrote(usize),
    KeepAliveDue,
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
