//! [`LoadClient`]: a lean MQTT client for load generation, written on the project's
//! codec rather than a general client library so that the load generator costs less
//! per message than the broker it measures: packets are queued into one buffer and
//! written together, and one read decodes every packet it brought.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::connection::Stream;
use crate::client::endpoint::{DialError, Dialer};
use crate::client::engine::{self, Handshake};
use crate::protocol::{
    Connect, FrameStatus, Packet, PacketId, PacketType, Properties, Property, ProtocolVersion,
    PublishHeader, PublishView, QoS, ReasonCode, Subscribe, SubscriptionOptions, TopicFilter,
    check_frame, encode_publish, encode_short_ack,
};

/// Bytes reserved for each read.
const READ_CHUNK: usize = 64 * 1024;

/// A packet as the load generator needs it: the common ones read in place without
/// allocating, anything else decoded in full. `T` is what the caller read from a
/// PUBLISH's payload (the wire client does not know the benchmark's format).
#[derive(Debug)]
pub enum Incoming<T = ()> {
    Publish {
        qos: QoS,
        packet_id: Option<PacketId>,
        /// What the caller's reader made of the payload.
        data: T,
    },
    PubAck(PacketId),
    PubRec(PacketId),
    PubRel(PacketId),
    PubComp(PacketId),
    Other(Packet),
}

/// TLS for load clients: the configuration and the name to verify for each address.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub config: Arc<rustls::ClientConfig>,
    /// The host name each broker address was given as.
    pub names: Arc<HashMap<SocketAddr, String>>,
}

/// How a load client connects.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub version: ProtocolVersion,
    pub keep_alive: u16,
    pub username: Option<String>,
    pub password: Option<Bytes>,
    pub clean_start: bool,
    /// MQTT 5 Session Expiry Interval, seconds; 0 sends none (the session ends
    /// with the connection).
    pub session_expiry: u32,
    pub tls: Option<TlsSettings>,
    /// MQTT over WebSockets, upgrading this path.
    pub websocket: Option<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            version: ProtocolVersion::V3_1_1,
            keep_alive: 60,
            username: None,
            password: None,
            clean_start: true,
            session_expiry: 0,
            tls: None,
            websocket: None,
        }
    }
}

/// Why a connection could not be made; `reason` groups failures in reports.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("connection refused: {}", .0.name())]
    Refused(ReasonCode),
    #[error("the broker answered CONNECT with {0}")]
    Protocol(String),
}

impl ConnectError {
    /// A short label for counting failures by kind.
    pub fn reason(&self) -> String {
        match self {
            ConnectError::Io(error) => format!("{:?}", error.kind()),
            ConnectError::Refused(code) => code.name().to_string(),
            ConnectError::Protocol(_) => "protocol error".to_string(),
        }
    }
}

/// One connection of the load generator.
pub struct LoadClient {
    stream: Box<dyn Stream>,
    version: ProtocolVersion,
    read_buf: BytesMut,
    write_buf: Vec<u8>,
    /// The CONNACK's session-present flag.
    pub session_present: bool,
    /// Packets and bytes on the wire, both directions, since the last reset.
    pub packets_sent: u64,
    pub packets_received: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

fn protocol_error(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

impl LoadClient {
    /// Connects and waits for a successful CONNACK.
    pub async fn connect(
        addr: SocketAddr,
        client_id: &str,
        options: &ConnectOptions,
    ) -> Result<Self, ConnectError> {
        let name = options.tls.as_ref().map(|tls| {
            tls.names
                .get(&addr)
                .cloned()
                .unwrap_or_else(|| addr.ip().to_string())
        });
        let tls = options
            .tls
            .as_ref()
            .zip(name.as_deref())
            .map(|(tls, name)| (&tls.config, name));
        let stream = Dialer::dial_address(addr, tls, options.websocket.as_deref())
            .await
            .map_err(|error| match error {
                DialError::Io(error) | DialError::Tls(error) => ConnectError::Io(error),
                DialError::Lookup => ConnectError::Io(io::Error::other("lookup error")),
            })?;
        let mut client = LoadClient {
            stream,
            version: options.version,
            read_buf: BytesMut::with_capacity(1024),
            write_buf: Vec::with_capacity(1024),
            session_present: false,
            packets_sent: 0,
            packets_received: 0,
            bytes_sent: 0,
            bytes_received: 0,
        };
        let mut connect = Connect {
            version: options.version,
            clean_start: options.clean_start,
            username: options.username.clone(),
            password: options.password.clone(),
            ..Connect::new(client_id, options.keep_alive)
        };
        if options.version == ProtocolVersion::V5 && options.session_expiry > 0 {
            connect
                .properties
                .push(Property::SessionExpiryInterval(options.session_expiry));
        }
        client.queue(&Packet::Connect(Box::new(connect)));
        client.flush().await?;
        loop {
            return match engine::handshake(client.recv().await?) {
                Handshake::Accepted(connack) => {
                    client.session_present = connack.session_present;
                    Ok(client)
                }
                Handshake::Refused(code) => Err(ConnectError::Refused(code)),
                Handshake::KeepWaiting => continue,
                Handshake::Unexpected(kind) => Err(ConnectError::Protocol(format!("{kind:?}"))),
            };
        }
    }

    /// Zeroes the packet and byte counters, e.g. once setup is over.
    pub fn reset_counters(&mut self) {
        self.packets_sent = 0;
        self.packets_received = 0;
        self.bytes_sent = 0;
        self.bytes_received = 0;
    }

    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// Adds a packet to the write buffer.
    pub fn queue(&mut self, packet: &Packet) {
        if packet.encode(self.version, &mut self.write_buf).is_ok() {
            self.packets_sent += 1;
        }
    }

    /// Adds a PUBLISH to the write buffer without building a [`Packet`].
    pub fn queue_publish(
        &mut self,
        topic: &str,
        qos: QoS,
        packet_id: Option<PacketId>,
        payload: &[u8],
    ) {
        let header = PublishHeader {
            dup: false,
            qos,
            retain: false,
            packet_id,
        };
        let empty = Properties::new();
        if encode_publish(
            &mut self.write_buf,
            self.version,
            header,
            topic,
            &empty,
            payload,
        )
        .is_ok()
        {
            self.packets_sent += 1;
        }
    }

    /// Queues what the protocol requires in answer to a received packet: PUBACK or
    /// PUBREC for a QoS 1 or 2 PUBLISH, PUBREL for PUBREC, PUBCOMP for PUBREL.
    pub fn answer(&mut self, packet: &Packet) {
        let (qos, reason, id) = match packet {
            Packet::Publish(publish) => match publish.packet_id {
                Some(id) => (publish.qos, ReasonCode::Success, id),
                None => return,
            },
            Packet::PubRec(ack) | Packet::PubRel(ack) => {
                (QoS::ExactlyOnce, ack.reason, ack.packet_id)
            }
            _ => return,
        };
        if let Some(kind) = engine::reply(packet.packet_type(), qos, reason)
            && encode_short_ack(&mut self.write_buf, kind, id)
        {
            self.packets_sent += 1;
        }
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.write_buf.is_empty() {
            self.stream.write_all(&self.write_buf).await?;
            self.stream.flush().await?;
            self.bytes_sent += self.write_buf.len() as u64;
            self.write_buf.clear();
        }
        Ok(())
    }

    /// Waits for bytes and reads what is there; an error at end of stream.
    pub async fn read_some(&mut self) -> io::Result<()> {
        self.read_buf.reserve(READ_CHUNK);
        let read = self.stream.read_buf(&mut self.read_buf).await?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the broker closed the connection",
            ));
        }
        self.bytes_received += read as u64;
        Ok(())
    }

    /// The next whole packet already read, if any.
    pub fn next_packet(&mut self) -> io::Result<Option<Packet>> {
        match check_frame(&self.read_buf, usize::MAX).map_err(|e| protocol_error(e.to_string()))? {
            FrameStatus::Incomplete { .. } => Ok(None),
            FrameStatus::Complete(header) => {
                let len = header.frame_len();
                let packet = Packet::decode(&self.read_buf[..len], self.version)
                    .map_err(|e| protocol_error(e.to_string()))?;
                self.read_buf.advance(len);
                self.packets_received += 1;
                Ok(Some(packet))
            }
        }
    }

    /// The next whole packet already read, PUBLISH and acknowledgements read in place.
    pub fn next_incoming(&mut self) -> io::Result<Option<Incoming>> {
        self.next_incoming_with(|_| ())
    }

    /// [`LoadClient::next_incoming`], with `read` applied to a PUBLISH's payload
    /// where it lies in the read buffer.
    pub fn next_incoming_with<T>(
        &mut self,
        read: impl FnOnce(&[u8]) -> T,
    ) -> io::Result<Option<Incoming<T>>> {
        let header = match check_frame(&self.read_buf, usize::MAX)
            .map_err(|e| protocol_error(e.to_string()))?
        {
            FrameStatus::Incomplete { .. } => return Ok(None),
            FrameStatus::Complete(header) => header,
        };
        let frame = &self.read_buf[..header.frame_len()];
        let body = &frame[header.header_len..];
        let acknowledged = || {
            // A refusing PUBREC (5.0) ends its flow: decoded in full, answered by
            // nothing.
            if header.packet_type() == 5 && body.get(2).is_some_and(|reason| *reason >= 0x80) {
                return None;
            }
            let id = PacketId::new(u16::from_be_bytes([*body.first()?, *body.get(1)?]))?;
            Some(match header.packet_type() {
                4 => Incoming::PubAck(id),
                5 => Incoming::PubRec(id),
                6 => Incoming::PubRel(id),
                _ => Incoming::PubComp(id),
            })
        };
        let quick = match header.packet_type() {
            3 => PublishView::parse(header.first_byte, body, self.version).map(|view| {
                Incoming::Publish {
                    qos: view.header.qos,
                    packet_id: view.header.packet_id,
                    data: read(view.payload),
                }
            }),
            4..=7 => acknowledged(),
            _ => None,
        };
        let incoming = match quick {
            Some(incoming) => incoming,
            None => Incoming::Other(
                Packet::decode(frame, self.version).map_err(|e| protocol_error(e.to_string()))?,
            ),
        };
        self.read_buf.advance(header.frame_len());
        self.packets_received += 1;
        Ok(Some(incoming))
    }

    /// Queues what the protocol requires in answer to an [`Incoming`] packet.
    pub fn answer_incoming<T>(&mut self, incoming: &Incoming<T>) {
        let (received, qos, id) = match incoming {
            Incoming::Publish {
                qos,
                packet_id: Some(id),
                ..
            } => (PacketType::Publish, *qos, *id),
            // Read in place without their reason code: a PUBREC with an error
            // comes through `Other`.
            Incoming::PubRec(id) => (PacketType::PubRec, QoS::ExactlyOnce, *id),
            Incoming::PubRel(id) => (PacketType::PubRel, QoS::ExactlyOnce, *id),
            Incoming::Other(packet) => return self.answer(packet),
            _ => return,
        };
        if let Some(kind) = engine::reply(received, qos, ReasonCode::Success)
            && encode_short_ack(&mut self.write_buf, kind, id)
        {
            self.packets_sent += 1;
        }
    }

    /// Reads until a whole packet arrives.
    pub async fn recv(&mut self) -> io::Result<Packet> {
        loop {
            if let Some(packet) = self.next_packet()? {
                return Ok(packet);
            }
            self.read_some().await?;
        }
    }

    /// Subscribes to one filter and waits for the SUBACK.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> io::Result<()> {
        let filter = TopicFilter::new(filter).map_err(|e| protocol_error(e.to_string()))?;
        self.queue(&Packet::Subscribe(Subscribe {
            packet_id: PacketId::MIN,
            properties: Properties::new(),
            filters: vec![(filter, SubscriptionOptions::new(qos))],
            rejected: Vec::new(),
        }));
        self.flush().await?;
        match self.recv().await? {
            Packet::SubAck(suback) if suback.codes.iter().all(|c| !c.is_error()) => Ok(()),
            Packet::SubAck(_) => Err(protocol_error("subscription refused")),
            other => Err(protocol_error(format!(
                "expected SUBACK, got {:?}",
                other.packet_type()
            ))),
        }
    }
}
