//! SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK (§3.8–§3.11).

use bytes::BufMut;

use super::read_packet_id;
use crate::protocol::error::{DecodeError, EncodeError};
use crate::protocol::property::{Properties, PropertyContext};
use crate::protocol::reason::{ReasonCode, ReasonContext};
use crate::protocol::topic::TopicFilter;
use crate::protocol::wire::{self, Reader};
use crate::protocol::{PacketId, ProtocolVersion, QoS};

/// When retained messages are sent for a new subscription (§3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetainHandling {
    /// Send retained messages at the time of the subscribe.
    SendAtSubscribe = 0,
    /// Send them only if the subscription did not exist before.
    SendIfNew = 1,
    /// Never send them.
    DoNotSend = 2,
}

/// The options byte of one SUBSCRIBE entry. On 3.x only `qos` exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionOptions {
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    pub fn new(qos: QoS) -> Self {
        SubscriptionOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        }
    }

    /// Reads an options byte as `version` defines it.
    pub fn decode(byte: u8, version: ProtocolVersion) -> Result<Self, DecodeError> {
        let qos_bits = byte & 0x03;
        if !version.is_v5() {
            if byte & 0xfc != 0 {
                return Err(DecodeError::Malformed(
                    "[MQTT-3-8.3-4 3.1.1] reserved subscription option bits are set",
                ));
            }
            let qos = QoS::from_u8(qos_bits).ok_or(DecodeError::Malformed(
                "[MQTT-3-8.3-4 3.1.1] subscription QoS of 3",
            ))?;
            return Ok(SubscriptionOptions::new(qos));
        }
        if byte & 0xc0 != 0 {
            return Err(DecodeError::Malformed(
                "[MQTT-3.8.3-5 5.0] reserved subscription option bits are set",
            ));
        }
        let qos = QoS::from_u8(qos_bits)
            .ok_or(DecodeError::Protocol("subscription QoS of 3 (§3.8.3.1)"))?;
        let retain_handling = match (byte >> 4) & 0x03 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return Err(DecodeError::Protocol("retain handling of 3 (§3.8.3.1)")),
        };
        Ok(SubscriptionOptions {
            qos,
            no_local: byte & 0x04 != 0,
            retain_as_published: byte & 0x08 != 0,
            retain_handling,
        })
    }

    /// The options byte as `version` writes it.
    pub fn to_byte(self, version: ProtocolVersion) -> u8 {
        let mut byte = self.qos as u8;
        if version.is_v5() {
            byte |= u8::from(self.no_local) << 2;
            byte |= u8::from(self.retain_as_published) << 3;
            byte |= (self.retain_handling as u8) << 4;
        }
        byte
    }
}

fn decode_filter(reader: &mut Reader<'_>) -> Result<TopicFilter, DecodeError> {
    TopicFilter::new(reader.string()?)
        .map_err(|_| DecodeError::Malformed("invalid topic filter (3.1.1/5.0 §4.7)"))
}

/// Reads the one-byte codes that fill the rest of a SUBACK or UNSUBACK: at least
/// one, each allowed by `allowed`.
fn read_codes(
    reader: &mut Reader<'_>,
    allowed: impl Fn(ReasonCode) -> bool,
    empty: &'static str,
    invalid: &'static str,
) -> Result<Vec<ReasonCode>, DecodeError> {
    if reader.is_empty() {
        return Err(DecodeError::Protocol(empty));
    }
    reader
        .rest()
        .iter()
        .map(|&byte| {
            ReasonCode::from_u8(byte)
                .filter(|code| allowed(*code))
                .ok_or(DecodeError::Malformed(invalid))
        })
        .collect()
}

/// A filter an MQTT 5 SUBSCRIBE named that is not a valid topic filter. MQTT 5 lets
/// the server answer it alone with SUBACK 0x8F (§3.9.3); 3.x refuses the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedFilter {
    /// Its place among all the filters of the packet.
    pub position: usize,
    pub filter: String,
    pub options: SubscriptionOptions,
}

/// A request to add subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub packet_id: PacketId,
    pub properties: Properties,
    /// The valid entries, in order [MQTT-3.9.3-1 3.1.1/5.0].
    pub filters: Vec<(TopicFilter, SubscriptionOptions)>,
    /// MQTT 5 entries whose filter is invalid, answered one by one in the SUBACK;
    /// encoded back in their places, so decode(encode(p)) == p.
    pub rejected: Vec<RejectedFilter>,
}

impl Subscribe {
    pub(super) fn decode(
        reader: &mut Reader<'_>,
        version: ProtocolVersion,
    ) -> Result<Subscribe, DecodeError> {
        let packet_id = read_packet_id(reader)?;
        let properties = Properties::decode_for(reader, version, PropertyContext::Subscribe)?;
        if reader.is_empty() {
            return Err(DecodeError::Protocol(
                "[MQTT-3.8.3-3 3.1.1, MQTT-3.8.3-2 5.0] SUBSCRIBE without a topic filter",
            ));
        }
        let mut filters = Vec::new();
        let mut rejected = Vec::new();
        while !reader.is_empty() {
            let position = filters.len() + rejected.len();
            let text = reader.string()?;
            let options = SubscriptionOptions::decode(reader.u8()?, version)?;
            let filter = match TopicFilter::new(text) {
                Ok(filter) => filter,
                Err(_) if version.is_v5() => {
                    rejected.push(RejectedFilter {
                        position,
                        filter: text.to_string(),
                        options,
                    });
                    continue;
                }
                Err(_) => {
                    return Err(DecodeError::Malformed(
                        "invalid topic filter (3.1.1/5.0 §4.7)",
                    ));
                }
            };
            if options.no_local && filter.share_group().is_some() {
                return Err(DecodeError::Protocol(
                    "[MQTT-3.8.3-4 5.0] No Local on a shared subscription",
                ));
            }
            filters.push((filter, options));
        }
        Ok(Subscribe {
            packet_id,
            properties,
            filters,
            rejected,
        })
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> usize {
        let mut len = 2;
        if version.is_v5() {
            len += self.properties.encoded_len();
        }
        len + self
            .entries()
            .map(|(filter, _)| wire::binary_len(filter.as_bytes()) + 1)
            .sum::<usize>()
    }

    /// Every entry in packet order: the valid filters with the rejected ones back
    /// in their places.
    fn entries(&self) -> impl Iterator<Item = (&str, SubscriptionOptions)> {
        let mut valid = self.filters.iter();
        let mut rejected = self.rejected.iter().peekable();
        let total = self.filters.len() + self.rejected.len();
        (0..total).filter_map(move |position| {
            if rejected.peek().is_some_and(|r| r.position == position) {
                rejected.next().map(|r| (r.filter.as_str(), r.options))
            } else {
                valid
                    .next()
                    .map(|(filter, options)| (filter.as_str(), *options))
            }
        })
    }

    pub(super) fn encode_body(
        &self,
        version: ProtocolVersion,
        buf: &mut impl BufMut,
    ) -> Result<(), EncodeError> {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.encode(buf)?;
        }
        for (filter, options) in self.entries() {
            wire::put_string(buf, filter)?;
            buf.put_u8(options.to_byte(version));
        }
        Ok(())
    }
}

/// The answer to SUBSCRIBE: one code per filter, in order [MQTT-3.9.3-1 3.1.1/5.0].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    pub packet_id: PacketId,
    pub properties: Properties,
    /// Granted QoS (`Success`, `GrantedQoS1`, `GrantedQoS2`) or a failure code; 3.x
    /// carries only those three and 0x80 [MQTT-3.9.3-2 3.1.1].
    pub codes: Vec<ReasonCode>,
}

impl SubAck {
    pub(super) fn decode(
        reader: &mut Reader<'_>,
        version: ProtocolVersion,
    ) -> Result<SubAck, DecodeError> {
        let packet_id = read_packet_id(reader)?;
        let properties = Properties::decode_for(reader, version, PropertyContext::SubAck)?;
        let codes = read_codes(
            reader,
            |code| {
                if version.is_v5() {
                    ReasonContext::SubAck.allows(code)
                } else {
                    matches!(code as u8, 0x00..=0x02 | 0x80)
                }
            },
            "SUBACK without return codes (§3.9.3)",
            "[MQTT-3.9.3-2 3.1.1/5.0] invalid SUBACK return code",
        )?;
        Ok(SubAck {
            packet_id,
            properties,
            codes,
        })
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> usize {
        let props = if version.is_v5() {
            self.properties.encoded_len()
        } else {
            0
        };
        2 + props + self.codes.len()
    }

    pub(super) fn encode_body(
        &self,
        version: ProtocolVersion,
        buf: &mut impl BufMut,
    ) -> Result<(), EncodeError> {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.encode(buf)?;
        }
        for code in &self.codes {
            // 3.x has one failure code [MQTT-3.9.3-2 3.1.1]; 5.0 says why.
            let byte = *code as u8;
            buf.put_u8(if version.is_v5() || byte < 0x80 {
                byte
            } else {
                0x80
            });
        }
        Ok(())
    }
}

/// A request to remove subscriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub packet_id: PacketId,
    pub properties: Properties,
    /// At least one filter [MQTT-3.10.3-2 3.1.1/5.0].
    pub filters: Vec<TopicFilter>,
}

impl Unsubscribe {
    pub(super) fn decode(
        reader: &mut Reader<'_>,
        version: ProtocolVersion,
    ) -> Result<Unsubscribe, DecodeError> {
        let packet_id = read_packet_id(reader)?;
        let properties = Properties::decode_for(reader, version, PropertyContext::Unsubscribe)?;
        if reader.is_empty() {
            return Err(DecodeError::Protocol(
                "[MQTT-3.10.3-2 3.1.1/5.0] UNSUBSCRIBE without a topic filter",
            ));
        }
        let mut filters = Vec::new();
        while !reader.is_empty() {
            filters.push(decode_filter(reader)?);
        }
        Ok(Unsubscribe {
            packet_id,
            properties,
            filters,
        })
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> usize {
        let props = if version.is_v5() {
            self.properties.encoded_len()
        } else {
            0
        };
        2 + props
            + self
                .filters
                .iter()
                .map(|filter| wire::binary_len(filter.as_str().as_bytes()))
                .sum::<usize>()
    }

    pub(super) fn encode_body(
        &self,
        version: ProtocolVersion,
        buf: &mut impl BufMut,
    ) -> Result<(), EncodeError> {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.encode(buf)?;
        }
        for filter in &self.filters {
            wire::put_string(buf, filter.as_str())?;
        }
        Ok(())
    }
}

/// The answer to UNSUBSCRIBE. 3.x carries only the packet identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    pub packet_id: PacketId,
    pub properties: Properties,
    /// One code per filter on MQTT 5; empty on 3.x.
    pub codes: Vec<ReasonCode>,
}

impl UnsubAck {
    pub(super) fn decode(
        reader: &mut Reader<'_>,
        version: ProtocolVersion,
    ) -> Result<UnsubAck, DecodeError> {
        let packet_id = read_packet_id(reader)?;
        if !version.is_v5() {
            return Ok(UnsubAck {
                packet_id,
                properties: Properties::new(),
                codes: Vec::new(),
            });
        }
        let properties = Properties::decode(reader, PropertyContext::UnsubAck)?;
        let codes = read_codes(
            reader,
            |code| ReasonContext::UnsubAck.allows(code),
            "UNSUBACK without reason codes (§3.11.3)",
            "invalid UNSUBACK reason code",
        )?;
        Ok(UnsubAck {
            packet_id,
            properties,
            codes,
        })
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> usize {
        if version.is_v5() {
            2 + self.properties.encoded_len() + self.codes.len()
        } else {
            2
        }
    }

    pub(super) fn encode_body(
        &self,
        version: ProtocolVersion,
        buf: &mut impl BufMut,
    ) -> Result<(), EncodeError> {
        buf.put_u16(self.packet_id.get());
        if version.is_v5() {
            self.properties.encode(buf)?;
            for code in &self.codes {
                buf.put_u8(*code as u8);
            }
        }
        Ok(())
    }
}
