//! CONNECT (with its Will) and CONNACK (§3.1, §3.2).

use bytes::{BufMut, Bytes};

use crate::protocol::error::{DecodeError, EncodeError};
use crate::protocol::property::{Properties, PropertyContext};
use crate::protocol::reason::{ReasonCode, ReasonContext};
use crate::protocol::topic::TopicName;
use crate::protocol::wire::{self, Reader};
use crate::protocol::{ProtocolVersion, QoS};

/// A client's request to open a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// Read from the protocol name and level; decides how every later packet is read.
    pub version: ProtocolVersion,
    /// Clean Session (3.x) or Clean Start (5.0).
    pub clean_start: bool,
    /// Seconds; 0 turns keep-alive off.
    pub keep_alive: u16,
    pub properties: Properties,
    /// May be empty; the broker decides whether to assign one [MQTT-3.1.3-6 3.1.1/5.0].
    pub client_id: String,
    pub will: Option<Will>,
    pub username: Option<String>,
    pub password: Option<Bytes>,
    /// mosquitto's `try_private`: the protocol level carries 0x80, saying the
    /// client is a bridge, so the receiving broker does not send a bridge's own
    /// messages back to it.
    pub bridge: bool,
}

/// The bit a bridge sets in the protocol level (mosquitto's `try_private`).
const LEVEL_BRIDGE: u8 = 0x80;

/// The message a broker publishes when a connection ends without DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    pub topic: TopicName,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    pub properties: Properties,
}

const FLAG_RESERVED: u8 = 0x01;
const FLAG_CLEAN: u8 = 0x02;
const FLAG_WILL: u8 = 0x04;
const FLAG_WILL_RETAIN: u8 = 0x20;
const FLAG_PASSWORD: u8 = 0x40;
const FLAG_USERNAME: u8 = 0x80;

impl Connect {
    /// A 3.1.1 CONNECT with a clean session and no will or credentials.
    pub fn new(client_id: impl Into<String>, keep_alive: u16) -> Self {
        Connect {
            version: ProtocolVersion::V3_1_1,
            clean_start: true,
            keep_alive,
            properties: Properties::new(),
            client_id: client_id.into(),
            will: None,
            username: None,
            password: None,
            bridge: false,
        }
    }

    pub(super) fn decode(reader: &mut Reader<'_>) -> Result<Connect, DecodeError> {
        let name = reader.binary()?;
        let level = reader.u8()?;
        let bridge = level & LEVEL_BRIDGE != 0;
        let version = match (name, level & !LEVEL_BRIDGE) {
            (b"MQTT", 4) => ProtocolVersion::V3_1_1,
            (b"MQTT", 5) => ProtocolVersion::V5,
            (b"MQIsdp", 3) => ProtocolVersion::V3_1,
            // [MQTT-3.1.2-2 3.1.1]: a known protocol at an unknown level gets CONNACK 0x01.
            (b"MQTT" | b"MQIsdp", _) => {
                return Err(DecodeError::UnsupportedProtocolVersion(level));
            }
            // [MQTT-3.1.2-1 3.1.1/5.0]
            _ => return Err(DecodeError::InvalidProtocolName),
        };
        let flags = reader.u8()?;
        if flags & FLAG_RESERVED != 0 {
            return Err(DecodeError::Malformed(
                "[MQTT-3.1.2-3 3.1.1/5.0] reserved connect flag is set",
            ));
        }
        let will_flag = flags & FLAG_WILL != 0;
        let will_qos = QoS::from_u8((flags >> 3) & 0x03).ok_or(DecodeError::Malformed(
            "[MQTT-3.1.2-14 3.1.1, MQTT-3.1.2-12 5.0] will QoS of 3",
        ))?;
        let will_retain = flags & FLAG_WILL_RETAIN != 0;
        if !will_flag && (will_qos != QoS::AtMostOnce || will_retain) {
            return Err(DecodeError::Malformed(
                "[MQTT-3.1.2-13 3.1.1, MQTT-3.1.2-11 5.0] [MQTT-3.1.2-15 3.1.1, MQTT-3.1.2-13 5.0] will QoS or retain set without a will",
            ));
        }
        let has_username = flags & FLAG_USERNAME != 0;
        let has_password = flags & FLAG_PASSWORD != 0;
        if has_password && !has_username && !version.is_v5() {
            return Err(DecodeError::Protocol(
                "[MQTT-3.1.2-22 3.1.1] password given without a user name",
            ));
        }
        let keep_alive = reader.u16()?;
        let properties = Properties::decode_for(reader, version, PropertyContext::Connect)?;
        let client_id = reader.owned_string()?;
        let will = if will_flag {
            let properties = Properties::decode_for(reader, version, PropertyContext::Will)?;
            let topic = TopicName::new(reader.string()?).map_err(|_| {
                DecodeError::Protocol(
                    "[MQTT-3.3.2-2 3.1.1/5.0] will topic is not a valid topic name",
                )
            })?;
            let payload = reader.owned_binary()?;
            Some(Will {
                topic,
                payload,
                qos: will_qos,
                retain: will_retain,
                properties,
            })
        } else {
            None
        };
        let username = if has_username {
            Some(reader.owned_string()?)
        } else {
            None
        };
        let password = if has_password {
            Some(reader.owned_binary()?)
        } else {
            None
        };
        Ok(Connect {
            version,
            clean_start: flags & FLAG_CLEAN != 0,
            keep_alive,
            properties,
            client_id,
            will,
            username,
            password,
            bridge,
        })
    }

    fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.clean_start {
            flags |= FLAG_CLEAN;
        }
        if let Some(will) = &self.will {
            flags |= FLAG_WILL | ((will.qos as u8) << 3);
            if will.retain {
                flags |= FLAG_WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= FLAG_USERNAME;
        }
        if self.password.is_some() {
            flags |= FLAG_PASSWORD;
        }
        flags
    }

    pub(super) fn body_len(&self) -> usize {
        let v5 = self.version.is_v5();
        let mut len = wire::binary_len(self.version.protocol_name().as_bytes()) + 1 + 1 + 2;
        if v5 {
            len += self.properties.encoded_len();
        }
        len += wire::binary_len(self.client_id.as_bytes());
        if let Some(will) = &self.will {
            if v5 {
                len += will.properties.encoded_len();
            }
            len +=
                wire::binary_len(will.topic.as_str().as_bytes()) + wire::binary_len(&will.payload);
        }
        if let Some(username) = &self.username {
            len += wire::binary_len(username.as_bytes());
        }
        if let Some(password) = &self.password {
            len += wire::binary_len(password);
        }
        len
    }

    pub(super) fn encode_body(&self, buf: &mut impl BufMut) -> Result<(), EncodeError> {
        let v5 = self.version.is_v5();
        wire::put_string(buf, self.version.protocol_name())?;
        let bridge = if self.bridge { LEVEL_BRIDGE } else { 0 };
        buf.put_u8(self.version.level() | bridge);
        buf.put_u8(self.flags());
        buf.put_u16(self.keep_alive);
        if v5 {
            self.properties.encode(buf)?;
        }
        wire::put_string(buf, &self.client_id)?;
        if let Some(will) = &self.will {
            if v5 {
                will.properties.encode(buf)?;
            }
            wire::put_string(buf, will.topic.as_str())?;
            wire::put_binary(buf, &will.payload)?;
        }
        if let Some(username) = &self.username {
            wire::put_string(buf, username)?;
        }
        if let Some(password) = &self.password {
            wire::put_binary(buf, password)?;
        }
        Ok(())
    }
}

/// The broker's answer to CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    pub session_present: bool,
    /// The outcome; encoded as a 3.x return code on 3.x connections.
    pub code: ReasonCode,
    pub properties: Properties,
}

impl ConnAck {
    pub fn new(code: ReasonCode, session_present: bool) -> Self {
        ConnAck {
            session_present,
            code,
            properties: Properties::new(),
        }
    }

    pub(super) fn decode(
        reader: &mut Reader<'_>,
        version: ProtocolVersion,
    ) -> Result<ConnAck, DecodeError> {
        let flags = reader.u8()?;
        if flags & 0xfe != 0 {
            return Err(DecodeError::Malformed(
                "[MQTT-3.2.2-1 5.0] reserved CONNACK flags are set",
            ));
        }
        let raw_code = reader.u8()?;
        let (code, properties) = if version.is_v5() {
            let code = ReasonCode::from_u8(raw_code)
                .filter(|c| ReasonContext::ConnAck.allows(*c))
                .ok_or(DecodeError::Malformed("invalid CONNACK reason code"))?;
            (code, Properties::decode(reader, PropertyContext::ConnAck)?)
        } else {
            let code = ReasonCode::from_v3_connack(raw_code)
                .ok_or(DecodeError::Malformed("invalid CONNACK return code"))?;
            (code, Properties::new())
        };
        Ok(ConnAck {
            session_present: flags & 0x01 != 0,
            code,
            properties,
        })
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> usize {
        if version.is_v5() {
            2 + self.properties.encoded_len()
        } else {
            2
        }
    }

    pub(super) fn encode_body(
        &self,
        version: ProtocolVersion,
        buf: &mut impl BufMut,
    ) -> Result<(), EncodeError> {
        buf.put_u8(u8::from(self.session_present));
        if version.is_v5() {
            buf.put_u8(self.code as u8);
            self.properties.encode(buf)
        } else {
            buf.put_u8(self.code.to_v3_connack());
            Ok(())
        }
    }
}
