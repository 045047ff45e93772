//! PUBLISH (§3.3): decode, encode, and the header overrides a broker applies when it
//! forwards one message to many subscribers.

use bytes::{BufMut, Bytes};

use super::{PacketType, put_header, read_packet_id};
use crate::protocol::error::{DecodeError, EncodeError};
use crate::protocol::property::{Properties, PropertyContext};
use crate::protocol::topic::{TopicError, TopicName};
use crate::protocol::wire::{self, Reader};
use crate::protocol::{PacketId, ProtocolVersion, QoS};

/// An application message on its way between client and broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// Empty only for an MQTT 5 PUBLISH whose Topic Alias stands in for the name.
    pub topic: TopicName,
    /// Present exactly when `qos` is 1 or 2.
    pub packet_id: Option<PacketId>,
    pub properties: Properties,
    pub payload: Bytes,
}

impl Publish {
    /// A QoS 0 message without properties.
    pub fn new(topic: TopicName, payload: impl Into<Bytes>) -> Self {
        Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic,
            packet_id: None,
            properties: Properties::new(),
            payload: payload.into(),
        }
    }

    pub(super) fn decode(
        flags: u8,
        reader: &mut Reader<'_>,
        version: ProtocolVersion,
    ) -> Result<Publish, DecodeError> {
        let qos = QoS::from_u8((flags >> 1) & 0x03).ok_or(DecodeError::Malformed(
            "[MQTT-3.3.1-4 3.1.1/5.0] PUBLISH with QoS 3",
        ))?;
        let dup = flags & 0x08 != 0;
        if dup && qos == QoS::AtMostOnce {
            return Err(DecodeError::Malformed(
                "[MQTT-3.3.1-2 3.1.1/5.0] DUP set on a QoS 0 PUBLISH",
            ));
        }
        let topic = reader.string()?;
        let packet_id = if qos == QoS::AtMostOnce {
            None
        } else {
            Some(read_packet_id(reader)?)
        };
        let properties = Properties::decode_for(reader, version, PropertyContext::Publish)?;
        let topic = match TopicName::new(topic) {
            Ok(topic) => topic,
            // §3.3.2.3.4: a zero-length name is how a Topic Alias is used.
            Err(TopicError::Empty) if properties.topic_alias().is_some() => {
                TopicName::alias_placeholder()
            }
            Err(TopicError::Empty) => {
                return Err(DecodeError::Protocol(
                    "[MQTT-4.7.3-1 3.1.1/5.0] zero-length topic name without a topic alias",
                ));
            }
            Err(TopicError::WildcardInName) => {
                return Err(DecodeError::Protocol(
                    "[MQTT-3.3.2-2 3.1.1/5.0] wildcard in a topic name",
                ));
            }
            Err(_) => {
                return Err(DecodeError::Protocol(
                    "[MQTT-4.7.3-2 3.1.1/5.0] invalid topic name",
                ));
            }
        };
        let payload = Bytes::copy_from_slice(reader.rest());
        Ok(Publish {
            dup,
            qos,
            retain: flags & 0x01 != 0,
            topic,
            packet_id,
            properties,
            payload,
        })
    }

    pub(super) fn encode(
        &self,
        version: ProtocolVersion,
        buf: &mut impl BufMut,
    ) -> Result<(), EncodeError> {
        let header = PublishHeader {
            dup: self.dup,
            qos: self.qos,
            retain: self.retain,
            packet_id: self.packet_id,
        };
        encode_publish(
            buf,
            version,
            header,
            self.topic.as_str(),
            &self.properties,
            &self.payload,
        )
    }
}

/// A PUBLISH read in place: its fields borrow the frame, nothing is copied or
/// checked beyond what locating them needs. For the load generator's hot path,
/// where the full decoder's checks (UTF-8 topic, properties) are not wanted;
/// `None` from [`PublishView::parse`] sends the frame to [`Packet::decode`], which
/// reports what is wrong.
///
/// [`Packet::decode`]: super::Packet::decode
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishView<'a> {
    pub header: PublishHeader,
    pub topic: &'a [u8],
    /// The encoded MQTT 5 properties (empty on 3.x).
    pub properties: &'a [u8],
    pub payload: &'a [u8],
}

impl<'a> PublishView<'a> {
    /// Locates the fields of a PUBLISH from its first byte and its body (the bytes
    /// after the fixed header).
    pub fn parse(first_byte: u8, body: &'a [u8], version: ProtocolVersion) -> Option<Self> {
        if first_byte >> 4 != PacketType::Publish as u8 {
            return None;
        }
        let qos = QoS::from_u8((first_byte >> 1) & 0x03)?;
        let topic_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
        let topic = body.get(2..2 + topic_len)?;
        let mut at = 2 + topic_len;
        let packet_id = if qos == QoS::AtMostOnce {
            None
        } else {
            let id = PacketId::new(u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]))?;
            at += 2;
            Some(id)
        };
        let properties = if version.is_v5() {
            let (length, used) = wire::decode_varint(body.get(at..)?).ok()??;
            let start = at + used;
            at = start + length as usize;
            body.get(start..at)?
        } else {
            &[]
        };
        Some(PublishView {
            header: PublishHeader {
                dup: first_byte & 0x08 != 0,
                qos,
                retain: first_byte & 0x01 != 0,
                packet_id,
            },
            topic,
            properties,
            payload: body.get(at..)?,
        })
    }
}

/// The per-delivery fields of a PUBLISH: what changes when one stored message goes
/// to several subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishHeader {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    pub packet_id: Option<PacketId>,
}

/// Writes a PUBLISH from its parts, so a broker can forward a shared message without
/// building a new [`Publish`] per subscriber.
pub fn encode_publish(
    buf: &mut impl BufMut,
    version: ProtocolVersion,
    header: PublishHeader,
    topic: &str,
    properties: &Properties,
    payload: &[u8],
) -> Result<(), EncodeError> {
    if (header.qos == QoS::AtMostOnce) != header.packet_id.is_none() {
        return Err(EncodeError::Inconsistent(
            "a PUBLISH has a packet identifier exactly when its QoS is 1 or 2",
        ));
    }
    let mut body_len = wire::binary_len(topic.as_bytes()) + payload.len();
    if header.packet_id.is_some() {
        body_len += 2;
    }
    if version.is_v5() {
        body_len += properties.encoded_len();
    }
    let flags = (u8::from(header.dup) << 3) | ((header.qos as u8) << 1) | u8::from(header.retain);
    put_header(buf, PacketType::Publish, flags, body_len)?;
    wire::put_string(buf, topic)?;
    if let Some(id) = header.packet_id {
        buf.put_u16(id.get());
    }
    if version.is_v5() {
        properties.encode(buf)?;
    }
    buf.put_slice(payload);
    Ok(())
}

/// Bytes a PUBLISH of these parts takes on the wire.
pub fn publish_len(
    version: ProtocolVersion,
    qos: QoS,
    topic: &str,
    properties: &Properties,
    payload_len: usize,
) -> usize {
    let mut body = wire::binary_len(topic.as_bytes()) + payload_len;
    if qos != QoS::AtMostOnce {
        body += 2;
    }
    if version.is_v5() {
        body += properties.encoded_len();
    }
    1 + wire::varint_len(body as u32) + body
}
