//! PUBACK, PUBREC, PUBREL and PUBCOMP (§3.4–§3.7): one shape, four packet types.

use bytes::BufMut;

use super::{PacketType, put_header, read_packet_id};
use crate::protocol::error::{DecodeError, EncodeError};
use crate::protocol::property::{Properties, PropertyContext};
use crate::protocol::reason::{ReasonCode, ReasonContext};
use crate::protocol::{PacketId, ProtocolVersion};

/// An acknowledgement in the QoS 1 and QoS 2 flows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub packet_id: PacketId,
    /// Always `Success` on 3.x connections, which carry no reason code.
    pub reason: ReasonCode,
    pub properties: Properties,
}

/// Writes the two-byte form of a PUBACK, PUBREC, PUBREL or PUBCOMP (packet id only,
/// success), valid in every version (§3.4.2.1), without building an [`Ack`]: the
/// load generator's hot path. Other packet types write nothing and return false.
pub fn encode_short_ack(
    buf: &mut impl BufMut,
    packet_type: PacketType,
    packet_id: PacketId,
) -> bool {
    // PUBREL's fixed header flags are 0b0010 [MQTT-3.6.1-1 3.1.1/5.0].
    let first_byte = match packet_type {
        PacketType::PubAck => 0x40,
        PacketType::PubRec => 0x50,
        PacketType::PubRel => 0x62,
        PacketType::PubComp => 0x70,
        _ => return false,
    };
    buf.put_slice(&[first_byte, 2]);
    buf.put_u16(packet_id.get());
    true
}

impl Ack {
    pub fn new(packet_id: PacketId) -> Self {
        Ack {
            packet_id,
            reason: ReasonCode::Success,
            properties: Properties::new(),
        }
    }

    pub fn with_reason(packet_id: PacketId, reason: ReasonCode) -> Self {
        Ack {
            packet_id,
            reason,
            properties: Properties::new(),
        }
    }

    /// `release` marks PUBREL/PUBCOMP, whose reason codes differ from PUBACK/PUBREC's.
    pub(super) fn decode(
        reader: &mut super::Reader<'_>,
        version: ProtocolVersion,
        release: bool,
    ) -> Result<Ack, DecodeError> {
        let packet_id = read_packet_id(reader)?;
        let mut ack = Ack::new(packet_id);
        // §3.4.2.1: the reason code and properties may be left out (remaining length 2).
        if version.is_v5() && !reader.is_empty() {
            let context = if release {
                ReasonContext::PubRel
            } else {
                ReasonContext::PubAck
            };
            ack.reason = ReasonCode::from_u8(reader.u8()?)
                .filter(|code| context.allows(*code))
                .ok_or(DecodeError::Malformed(
                    "invalid reason code in an acknowledgement",
                ))?;
            if !reader.is_empty() {
                ack.properties = Properties::decode(reader, PropertyContext::PubAck)?;
            }
        }
        Ok(ack)
    }

    fn body_len(&self, version: ProtocolVersion) -> usize {
        if !version.is_v5() || (self.reason == ReasonCode::Success && self.properties.is_empty()) {
            2
        } else if self.properties.is_empty() {
            3
        } else {
            3 + self.properties.encoded_len()
        }
    }

    pub(super) fn encode(
        &self,
        packet_type: PacketType,
        version: ProtocolVersion,
        buf: &mut impl BufMut,
    ) -> Result<(), EncodeError> {
        let flags = if packet_type == PacketType::PubRel {
            0b0010
        } else {
            0
        };
        let len = self.body_len(version);
        put_header(buf, packet_type, flags, len)?;
        buf.put_u16(self.packet_id.get());
        if len > 2 {
            buf.put_u8(self.reason as u8);
        }
        if len > 3 {
            self.properties.encode(buf)?;
        }
        Ok(())
    }
}
