//! [`RawClient`]: a blocking MQTT client over `std::net::TcpStream` built on the
//! project's codec, for tests that need exact control of every byte.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mqttkit::protocol::{
    Ack, ConnAck, Connect, Disconnect, FrameStatus, Packet, PacketId, Properties, Property,
    ProtocolVersion, Publish, QoS, ReasonCode, SubAck, Subscribe, SubscriptionOptions, TopicFilter,
    TopicName, check_frame,
};

use super::WAIT;

pub fn pid(id: u16) -> PacketId {
    PacketId::new(id).expect("non-zero packet id")
}

/// A packet's bytes from its first byte and body; the remaining length is computed.
pub fn frame(first_byte: u8, body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![first_byte];
    mqttkit::protocol::wire::put_varint(&mut bytes, body.len() as u32);
    bytes.extend_from_slice(body);
    bytes
}

/// An MQTT 5 CONNECT with a clean start, keep-alive 60 and `properties`.
pub fn connect_v5(client_id: &str, properties: impl IntoIterator<Item = Property>) -> Connect {
    Connect {
        version: ProtocolVersion::V5,
        properties: properties.into_iter().collect(),
        ..Connect::new(client_id, 60)
    }
}

/// A PUBLISH of `payload` on `topic` with `properties`; QoS 1 and 2 use packet id 1.
pub fn publish_v5(
    topic: &str,
    payload: &[u8],
    qos: QoS,
    properties: impl IntoIterator<Item = Property>,
) -> Publish {
    Publish {
        qos,
        packet_id: (qos != QoS::AtMostOnce).then(|| pid(1)),
        properties: properties.into_iter().collect(),
        ..Publish::new(
            TopicName::new(topic).expect("valid topic"),
            Bytes::copy_from_slice(payload),
        )
    }
}

pub struct RawClient {
    stream: TcpStream,
    pub version: ProtocolVersion,
    buffer: Vec<u8>,
}

/// What a read found.
enum Read1 {
    Packet(Packet),
    Closed,
    /// The connection was reset: whatever the broker sent last may be lost.
    Reset,
    TimedOut,
}

impl RawClient {
    /// A TCP connection with nothing sent yet.
    pub fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).expect("connect to broker");
        stream.set_nodelay(true).expect("nodelay");
        RawClient {
            stream,
            version: ProtocolVersion::V3_1_1,
            buffer: Vec::new(),
        }
    }

    /// The server's side of an accepted connection, for a test playing a broker.
    pub fn accepted(stream: TcpStream) -> Self {
        stream.set_nodelay(true).expect("nodelay");
        RawClient {
            stream,
            version: ProtocolVersion::V3_1_1,
            buffer: Vec::new(),
        }
    }

    /// Sends `connect` and returns the CONNACK.
    pub fn handshake(addr: SocketAddr, connect: Connect) -> (Self, ConnAck) {
        let mut client = RawClient::open(addr);
        client.version = connect.version;
        client.send(&Packet::Connect(Box::new(connect)));
        match client.recv() {
            Packet::ConnAck(connack) => (client, connack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Sends `connect`; `None` if the broker closed the socket instead of answering.
    pub fn handshake_or_closed(
        addr: SocketAddr,
        connect: Connect,
    ) -> (Option<Self>, Option<ConnAck>) {
        let mut client = RawClient::open(addr);
        client.version = connect.version;
        client.send(&Packet::Connect(Box::new(connect)));
        match client.recv_or_closed() {
            Some(Packet::ConnAck(connack)) => (Some(client), Some(connack)),
            Some(other) => panic!("expected CONNACK, got {other:?}"),
            None => (None, None),
        }
    }

    /// A 3.1.1 client with a clean session, connected or the test fails.
    pub fn connect(addr: SocketAddr, client_id: &str) -> Self {
        Self::connect_with(addr, Connect::new(client_id, 60))
    }

    pub fn connect_with(addr: SocketAddr, connect: Connect) -> Self {
        let (client, connack) = Self::handshake(addr, connect);
        assert_eq!(connack.code, ReasonCode::Success, "CONNACK refused");
        client
    }

    pub fn send(&mut self, packet: &Packet) {
        let bytes = packet
            .to_bytes(self.version)
            .expect("encodable test packet");
        self.send_bytes(&bytes);
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write to broker");
    }

    fn read_packet(&mut self, timeout: Duration) -> Read1 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(FrameStatus::Complete(header)) = check_frame(&self.buffer, usize::MAX) {
                let frame: Vec<u8> = self.buffer.drain(..header.frame_len()).collect();
                let packet =
                    Packet::decode(&frame, self.version).expect("broker sent a valid packet");
                return Read1::Packet(packet);
            }
            let now = Instant::now();
            if now >= deadline {
                return Read1::TimedOut;
            }
            self.stream
                .set_read_timeout(Some(deadline - now))
                .expect("timeout");
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Read1::Closed,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Read1::TimedOut;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Read1::Reset,
            }
        }
    }

    /// The next packet; fails the test if none arrives in time.
    pub fn recv(&mut self) -> Packet {
        match self.read_packet(WAIT) {
            Read1::Packet(packet) => packet,
            Read1::Closed | Read1::Reset => {
                panic!("connection closed while waiting for a packet")
            }
            Read1::TimedOut => panic!("no packet within {WAIT:?}"),
        }
    }

    /// The next packet, or `None` if the broker closed the connection first.
    pub fn recv_or_closed(&mut self) -> Option<Packet> {
        match self.read_packet(WAIT) {
            Read1::Packet(packet) => Some(packet),
            Read1::Closed | Read1::Reset => None,
            Read1::TimedOut => panic!("neither a packet nor a close within {WAIT:?}"),
        }
    }

    /// The next PUBLISH; fails on anything else.
    pub fn recv_publish(&mut self) -> Publish {
        match self.recv() {
            Packet::Publish(publish) => publish,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// Waits for the broker to close the connection; fails if a packet arrives or
    /// the connection stays open.
    pub fn expect_closed(&mut self) {
        match self.read_packet(WAIT) {
            Read1::Closed | Read1::Reset => {}
            Read1::Packet(packet) => panic!("expected the connection to close, got {packet:?}"),
            Read1::TimedOut => panic!("connection still open after {WAIT:?}"),
        }
    }

    /// Waits for a close, allowing packets before it; returns them.
    pub fn packets_until_closed(&mut self) -> Vec<Packet> {
        self.packets_until_closed_within(WAIT)
    }

    /// [`RawClient::packets_until_closed`] with `wait` for each packet or the close.
    pub fn packets_until_closed_within(&mut self, wait: Duration) -> Vec<Packet> {
        let mut packets = Vec::new();
        loop {
            match self.read_packet(wait) {
                Read1::Closed | Read1::Reset => return packets,
                Read1::Packet(packet) => packets.push(packet),
                Read1::TimedOut => panic!("connection still open after {wait:?}; got {packets:?}"),
            }
        }
    }

    /// Expects an MQTT 5 DISCONNECT followed by an orderly close (FIN, not a
    /// reset, so the client could read it); returns the DISCONNECT.
    pub fn expect_disconnect(&mut self) -> Disconnect {
        let disconnect = match self.read_packet(WAIT) {
            Read1::Packet(Packet::Disconnect(disconnect)) => disconnect,
            Read1::Packet(other) => panic!("expected DISCONNECT, got {other:?}"),
            Read1::Closed | Read1::Reset => panic!("closed without a DISCONNECT"),
            Read1::TimedOut => panic!("no DISCONNECT within {WAIT:?}"),
        };
        match self.read_packet(WAIT) {
            Read1::Closed => disconnect,
            Read1::Reset => panic!("reset after {disconnect:?} instead of an orderly close"),
            Read1::Packet(other) => panic!("{other:?} after {disconnect:?}"),
            Read1::TimedOut => panic!("still open {WAIT:?} after {disconnect:?}"),
        }
    }

    /// The reason of the DISCONNECT the broker sends before closing, or `None` if
    /// it closed without one.
    pub fn disconnect_reason(&mut self) -> Option<ReasonCode> {
        match self.packets_until_closed().as_slice() {
            [] => None,
            [Packet::Disconnect(disconnect)] => Some(disconnect.reason),
            other => panic!("expected DISCONNECT then close, got {other:?}"),
        }
    }

    /// The next packet if one arrives within `wait`; fails if the connection closes.
    pub fn recv_within(&mut self, wait: Duration) -> Option<Packet> {
        match self.read_packet(wait) {
            Read1::Packet(packet) => Some(packet),
            Read1::TimedOut => None,
            Read1::Closed | Read1::Reset => panic!("connection closed while waiting for a packet"),
        }
    }

    /// Every PUBLISH that arrives until none has for `quiet`, each acknowledged as
    /// its QoS requires; fails on any other packet.
    pub fn drain_publishes(&mut self, quiet: Duration) -> Vec<Publish> {
        let mut received = Vec::new();
        while let Some(packet) = self.recv_within(quiet) {
            let Packet::Publish(publish) = packet else {
                panic!("expected PUBLISH, got {packet:?}")
            };
            self.acknowledge(&publish);
            received.push(publish);
        }
        received
    }

    /// True if the connection is still open after `wait` and nothing arrived.
    pub fn is_open_and_quiet(&mut self, wait: Duration) -> bool {
        matches!(self.read_packet(wait), Read1::TimedOut)
    }

    /// An MQTT 5 client with a clean start and `properties` on its CONNECT.
    pub fn handshake_v5(
        addr: SocketAddr,
        client_id: &str,
        properties: impl IntoIterator<Item = Property>,
    ) -> (Self, ConnAck) {
        Self::handshake(addr, connect_v5(client_id, properties))
    }

    /// An MQTT 5 client, connected or the test fails.
    pub fn connect_v5(
        addr: SocketAddr,
        client_id: &str,
        properties: impl IntoIterator<Item = Property>,
    ) -> Self {
        Self::connect_with(addr, connect_v5(client_id, properties))
    }

    /// Subscribes with full MQTT 5 options and SUBSCRIBE properties.
    pub fn subscribe_with(
        &mut self,
        packet_id: u16,
        properties: impl IntoIterator<Item = Property>,
        filters: &[(&str, SubscriptionOptions)],
    ) -> SubAck {
        self.send(&Packet::Subscribe(Subscribe {
            packet_id: pid(packet_id),
            properties: properties.into_iter().collect(),
            filters: filters
                .iter()
                .map(|(f, options)| (TopicFilter::new(*f).expect("valid filter"), *options))
                .collect(),
            rejected: Vec::new(),
        }));
        match self.recv() {
            Packet::SubAck(suback) => suback,
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Sends `publish` and returns its first acknowledgement (PUBACK or PUBREC),
    /// completing a QoS 2 flow the broker accepted. `None` at QoS 0.
    pub fn publish_packet(&mut self, publish: Publish) -> Option<Ack> {
        let qos = publish.qos;
        self.send(&Packet::Publish(publish));
        match qos {
            QoS::AtMostOnce => None,
            QoS::AtLeastOnce => match self.recv() {
                Packet::PubAck(ack) => Some(ack),
                other => panic!("expected PUBACK, got {other:?}"),
            },
            QoS::ExactlyOnce => {
                let ack = match self.recv() {
                    Packet::PubRec(ack) => ack,
                    other => panic!("expected PUBREC, got {other:?}"),
                };
                if !ack.reason.is_error() {
                    self.send(&Packet::PubRel(Ack::new(ack.packet_id)));
                    match self.recv() {
                        Packet::PubComp(done) => assert_eq!(done.packet_id, ack.packet_id),
                        other => panic!("expected PUBCOMP, got {other:?}"),
                    }
                }
                Some(ack)
            }
        }
    }

    pub fn subscribe(&mut self, packet_id: u16, filters: &[(&str, QoS)]) -> SubAck {
        self.send(&Packet::Subscribe(Subscribe {
            packet_id: pid(packet_id),
            properties: Properties::new(),
            filters: filters
                .iter()
                .map(|(f, qos)| {
                    (
                        TopicFilter::new(*f).expect("valid filter"),
                        SubscriptionOptions::new(*qos),
                    )
                })
                .collect(),
            rejected: Vec::new(),
        }));
        match self.recv() {
            Packet::SubAck(suback) => suback,
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Publishes and completes the QoS flow (PUBACK, or PUBREC/PUBREL/PUBCOMP).
    pub fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS, retain: bool, packet_id: u16) {
        let publish = Publish {
            qos,
            retain,
            packet_id: (qos != QoS::AtMostOnce).then(|| pid(packet_id)),
            ..Publish::new(
                TopicName::new(topic).expect("valid topic"),
                Bytes::copy_from_slice(payload),
            )
        };
        self.send(&Packet::Publish(publish));
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => match self.recv() {
                Packet::PubAck(ack) => assert_eq!(ack.packet_id, pid(packet_id)),
                other => panic!("expected PUBACK, got {other:?}"),
            },
            QoS::ExactlyOnce => {
                match self.recv() {
                    Packet::PubRec(ack) => assert_eq!(ack.packet_id, pid(packet_id)),
                    other => panic!("expected PUBREC, got {other:?}"),
                }
                self.send(&Packet::PubRel(Ack::new(pid(packet_id))));
                match self.recv() {
                    Packet::PubComp(ack) => assert_eq!(ack.packet_id, pid(packet_id)),
                    other => panic!("expected PUBCOMP, got {other:?}"),
                }
            }
        }
    }

    /// Acknowledges a received PUBLISH as its QoS requires (PUBREC then PUBREL→PUBCOMP).
    pub fn acknowledge(&mut self, publish: &Publish) {
        let Some(id) = publish.packet_id else { return };
        match publish.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(&Packet::PubAck(Ack::new(id))),
            QoS::ExactlyOnce => {
                self.send(&Packet::PubRec(Ack::new(id)));
                match self.recv() {
                    Packet::PubRel(ack) => assert_eq!(ack.packet_id, id),
                    other => panic!("expected PUBREL, got {other:?}"),
                }
                self.send(&Packet::PubComp(Ack::new(id)));
            }
        }
    }

    /// Sends PINGREQ and waits for PINGRESP: proves the connection (and broker) works.
    pub fn ping(&mut self) {
        self.send(&Packet::PingReq);
        match self.recv() {
            Packet::PingResp => {}
            other => panic!("expected PINGRESP, got {other:?}"),
        }
    }

    /// Sends `disconnect` and waits for the broker to close the connection, so
    /// the broker has finished with the session when this returns.
    pub fn disconnect_and_wait(mut self, disconnect: Disconnect) {
        self.send(&Packet::Disconnect(disconnect));
        self.expect_closed();
    }

    pub fn disconnect(mut self) {
        self.send(&Packet::Disconnect(mqttkit::protocol::Disconnect::new(
            ReasonCode::Success,
        )));
    }
}
