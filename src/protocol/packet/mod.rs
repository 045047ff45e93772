//! [`Packet`]: the fifteen MQTT control packets, decoded from one complete frame and
//! encoded into a buffer, for any [`ProtocolVersion`].
//!
//! Decoding checks structure and every rule the specs make about a packet in
//! isolation: fixed-header flags [MQTT-2.2.2-1 3.1.1], lengths, UTF-8, packet identifiers,
//! wildcards, properties. Rules that need connection state (a second CONNECT, topic
//! alias ranges, receive maximum) belong to the broker.

mod ack;
mod connect;
mod control;
mod publish;
mod subscribe;

pub use ack::{Ack, encode_short_ack};
pub use connect::{ConnAck, Connect, Will};
pub use control::{Auth, Disconnect};
pub use publish::{Publish, PublishHeader, PublishView, encode_publish, publish_len};
pub use subscribe::{
    RejectedFilter, RetainHandling, SubAck, Subscribe, SubscriptionOptions, UnsubAck, Unsubscribe,
};

use bytes::BufMut;

use super::error::{DecodeError, EncodeError};
use super::wire::{self, Reader};
use super::{PacketId, ProtocolVersion};

/// The packet type, the high nibble of the first byte (§2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    Auth = 15,
}

impl PacketType {
    pub fn from_u8(value: u8) -> Option<PacketType> {
        use PacketType::*;
        Some(match value {
            1 => Connect,
            2 => ConnAck,
            3 => Publish,
            4 => PubAck,
            5 => PubRec,
            6 => PubRel,
            7 => PubComp,
            8 => Subscribe,
            9 => SubAck,
            10 => Unsubscribe,
            11 => UnsubAck,
            12 => PingReq,
            13 => PingResp,
            14 => Disconnect,
            15 => Auth,
            _ => return None,
        })
    }

    /// The name mosquitto's logs use.
    pub fn name(self) -> &'static str {
        use PacketType::*;
        match self {
            Connect => "CONNECT",
            ConnAck => "CONNACK",
            Publish => "PUBLISH",
            PubAck => "PUBACK",
            PubRec => "PUBREC",
            PubRel => "PUBREL",
            PubComp => "PUBCOMP",
            Subscribe => "SUBSCRIBE",
            SubAck => "SUBACK",
            Unsubscribe => "UNSUBSCRIBE",
            UnsubAck => "UNSUBACK",
            PingReq => "PINGREQ",
            PingResp => "PINGRESP",
            Disconnect => "DISCONNECT",
            Auth => "AUTH",
        }
    }

    /// The fixed-header flags every packet but PUBLISH must carry [MQTT-2.2.2-1 3.1.1].
    fn required_flags(self) -> u8 {
        match self {
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => 0b0010,
            _ => 0,
        }
    }
}

/// One MQTT control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Connect(Box<Connect>),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(Ack),
    PubRec(Ack),
    PubRel(Ack),
    PubComp(Ack),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
    Auth(Auth),
}

impl Packet {
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }

    /// Decodes one complete frame (fixed header included), as found by
    /// [`check_frame`](crate::protocol::check_frame).
    ///
    /// `version` is the connection's protocol; a CONNECT ignores it and reads its own.
    pub fn decode(frame: &[u8], version: ProtocolVersion) -> Result<Packet, DecodeError> {
        let first_byte = *frame.first().ok_or(DecodeError::Malformed("empty frame"))?;
        let (remaining, varint_len) = wire::decode_varint(&frame[1..])?
            .ok_or(DecodeError::Malformed("fixed header is truncated"))?;
        let body = &frame[1 + varint_len..];
        if body.len() != remaining as usize {
            return Err(DecodeError::Malformed(
                "remaining length does not match the packet size",
            ));
        }
        let packet_type = PacketType::from_u8(first_byte >> 4)
            // Reserved, so a rule broken rather than bad grammar: 0x82, as mosquitto.
            .ok_or(DecodeError::Protocol("packet type 0 is reserved"))?;
        let flags = first_byte & 0x0f;
        if packet_type != PacketType::Publish {
            check_flags(packet_type, flags)?;
        }
        // A CONNECT's minimality is checked once its own version is known.
        if packet_type != PacketType::Connect && version.is_v5() {
            check_minimal(remaining, varint_len)?;
        }
        let mut reader = Reader::new(body);
        let packet = match packet_type {
            PacketType::Connect => {
                let connect = Connect::decode(&mut reader)?;
                if connect.version.is_v5() {
                    check_minimal(remaining, varint_len)?;
                }
                Packet::Connect(Box::new(connect))
            }
            PacketType::ConnAck => Packet::ConnAck(ConnAck::decode(&mut reader, version)?),
            PacketType::Publish => Packet::Publish(Publish::decode(flags, &mut reader, version)?),
            PacketType::PubAck => Packet::PubAck(Ack::decode(&mut reader, version, false)?),
            PacketType::PubRec => Packet::PubRec(Ack::decode(&mut reader, version, false)?),
            PacketType::PubRel => Packet::PubRel(Ack::decode(&mut reader, version, true)?),
            PacketType::PubComp => Packet::PubComp(Ack::decode(&mut reader, version, true)?),
            PacketType::Subscribe => Packet::Subscribe(Subscribe::decode(&mut reader, version)?),
            PacketType::SubAck => Packet::SubAck(SubAck::decode(&mut reader, version)?),
            PacketType::Unsubscribe => {
                Packet::Unsubscribe(Unsubscribe::decode(&mut reader, version)?)
            }
            PacketType::UnsubAck => Packet::UnsubAck(UnsubAck::decode(&mut reader, version)?),
            PacketType::PingReq => Packet::PingReq,
            PacketType::PingResp => Packet::PingResp,
            PacketType::Disconnect => Packet::Disconnect(Disconnect::decode(&mut reader, version)?),
            PacketType::Auth => {
                if !version.is_v5() {
                    return Err(DecodeError::Malformed(
                        "packet type 15 is reserved before MQTT 5",
                    ));
                }
                Packet::Auth(Auth::decode(&mut reader)?)
            }
        };
        if !reader.is_empty() {
            // [MQTT-4.8.0-1 3.1.1, MQTT-4.13.1-1 5.0]: bytes beyond what the packet defines.
            return Err(DecodeError::Malformed(
                "unexpected bytes at the end of the packet",
            ));
        }
        Ok(packet)
    }

    /// Appends the packet's bytes to `buf`.
    pub fn encode(
        &self,
        version: ProtocolVersion,
        buf: &mut impl BufMut,
    ) -> Result<(), EncodeError> {
        match self {
            Packet::Connect(connect) => {
                put_header(buf, PacketType::Connect, 0, connect.body_len())?;
                connect.encode_body(buf)
            }
            Packet::ConnAck(connack) => {
                put_header(buf, PacketType::ConnAck, 0, connack.body_len(version))?;
                connack.encode_body(version, buf)
            }
            Packet::Publish(publish) => publish.encode(version, buf),
            Packet::PubAck(ack) => ack.encode(PacketType::PubAck, version, buf),
            Packet::PubRec(ack) => ack.encode(PacketType::PubRec, version, buf),
            Packet::PubRel(ack) => ack.encode(PacketType::PubRel, version, buf),
            Packet::PubComp(ack) => ack.encode(PacketType::PubComp, version, buf),
            Packet::Subscribe(subscribe) => {
                put_header(
                    buf,
                    PacketType::Subscribe,
                    0b0010,
                    subscribe.body_len(version),
                )?;
                subscribe.encode_body(version, buf)
            }
            Packet::SubAck(suback) => {
                put_header(buf, PacketType::SubAck, 0, suback.body_len(version))?;
                suback.encode_body(version, buf)
            }
            Packet::Unsubscribe(unsubscribe) => {
                put_header(
                    buf,
                    PacketType::Unsubscribe,
                    0b0010,
                    unsubscribe.body_len(version),
                )?;
                unsubscribe.encode_body(version, buf)
            }
            Packet::UnsubAck(unsuback) => {
                put_header(buf, PacketType::UnsubAck, 0, unsuback.body_len(version))?;
                unsuback.encode_body(version, buf)
            }
            Packet::PingReq => put_header(buf, PacketType::PingReq, 0, 0),
            Packet::PingResp => put_header(buf, PacketType::PingResp, 0, 0),
            Packet::Disconnect(disconnect) => {
                put_header(buf, PacketType::Disconnect, 0, disconnect.body_len(version))?;
                disconnect.encode_body(version, buf)
            }
            Packet::Auth(auth) => {
                if !version.is_v5() {
                    return Err(EncodeError::NotInVersion("AUTH"));
                }
                put_header(buf, PacketType::Auth, 0, auth.body_len())?;
                auth.encode_body(buf)
            }
        }
    }

    /// Encodes into a new vector; convenient outside hot paths.
    pub fn to_bytes(&self, version: ProtocolVersion) -> Result<Vec<u8>, EncodeError> {
        let mut buf = Vec::new();
        self.encode(version, &mut buf)?;
        Ok(buf)
    }
}

fn check_flags(packet_type: PacketType, flags: u8) -> Result<(), DecodeError> {
    if flags != packet_type.required_flags() {
        // [MQTT-2.2.2-1 3.1.1] [MQTT-2.2.2-2 3.1.1]; 5.0: [MQTT-2.1.3-1 5.0]
        return Err(DecodeError::Malformed(
            "[MQTT-2.2.2-2 3.1.1] reserved fixed-header flags are wrong",
        ));
    }
    Ok(())
}

fn check_minimal(remaining: u32, varint_len: usize) -> Result<(), DecodeError> {
    if wire::varint_len(remaining) != varint_len {
        return Err(DecodeError::Malformed(
            "[MQTT-1.5.5-1 5.0] remaining length is not minimally encoded",
        ));
    }
    Ok(())
}

/// Writes a fixed header for a body of `body_len` bytes.
pub(crate) fn put_header(
    buf: &mut impl BufMut,
    packet_type: PacketType,
    flags: u8,
    body_len: usize,
) -> Result<(), EncodeError> {
    if body_len > wire::MAX_VARINT as usize {
        return Err(EncodeError::PacketTooLarge(body_len));
    }
    buf.put_u8(((packet_type as u8) << 4) | flags);
    wire::put_varint(buf, body_len as u32);
    Ok(())
}

/// Reads a packet identifier that must not be zero [MQTT-2.3.1-1 3.1.1].
pub(crate) fn read_packet_id(reader: &mut Reader<'_>) -> Result<PacketId, DecodeError> {
    PacketId::new(reader.u16()?).ok_or(DecodeError::Protocol(
        "[MQTT-2.3.1-1 3.1.1] packet identifier of 0",
    ))
}
