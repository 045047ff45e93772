//! Decode and encode errors of the packet codec, and the reason code each one maps to.
//!
//! Every error carries the normative statement it enforces in its message, so a log
//! line says which rule a peer broke. Ids are tagged with the specification they
//! come from, since 3.1.1 and 5.0 number differently (`[MQTT-3.1.2-24 5.0]` is
//! Maximum Packet Size; in 3.1.1 the same id is about keep-alive):
//! `[MQTT-x.y.z-n 3.1.1]`, `[MQTT-x.y.z-n 5.0]`, or `3.1.1/5.0` where both state the
//! same rule under one id.

use super::reason::ReasonCode;

/// Why bytes could not be turned into a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes do not follow the packet grammar (reason code 0x81).
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// The bytes parse but break a protocol rule (reason code 0x82).
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// The fixed header announces a packet above the accepted maximum (0x95).
    #[error("packet of {size} bytes exceeds the maximum packet size of {max} bytes")]
    PacketTooLarge { size: usize, max: usize },
    /// CONNECT names a protocol level this codec does not speak [MQTT-3.1.2-2 3.1.1/5.0].
    #[error("unsupported protocol version {0}")]
    UnsupportedProtocolVersion(u8),
    /// CONNECT names a protocol other than MQTT/MQIsdp [MQTT-3.1.2-1 3.1.1/5.0].
    #[error("invalid protocol name in CONNECT")]
    InvalidProtocolName,
}

impl DecodeError {
    /// The MQTT 5 reason code a server reports for this error.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            DecodeError::Malformed(_) => ReasonCode::MalformedPacket,
            DecodeError::Protocol(_) => ReasonCode::ProtocolError,
            DecodeError::PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            DecodeError::UnsupportedProtocolVersion(_) | DecodeError::InvalidProtocolName => {
                ReasonCode::UnsupportedProtocolVersion
            }
        }
    }
}

/// Why a packet could not be turned into bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A string or binary field is longer than its 16-bit length prefix allows.
    #[error("field of {0} bytes is longer than 65535 bytes")]
    FieldTooLong(usize),
    /// The packet is longer than a remaining length can express (268,435,455 bytes).
    #[error("packet body of {0} bytes exceeds the 268435455-byte limit")]
    PacketTooLarge(usize),
    /// The packet or one of its fields does not exist in the chosen protocol version.
    #[error("{0} cannot be sent with this protocol version")]
    NotInVersion(&'static str),
    /// The packet's fields contradict each other.
    #[error("inconsistent packet: {0}")]
    Inconsistent(&'static str),
}
