//! DISCONNECT and AUTH (§3.14, §3.15): a reason code and properties, both optional
//! on the wire. PINGREQ and PINGRESP carry nothing and live in [`super::Packet`].

use bytes::BufMut;

use crate::protocol::ProtocolVersion;
use crate::protocol::error::{DecodeError, EncodeError};
use crate::protocol::property::{Properties, PropertyContext};
use crate::protocol::reason::{ReasonCode, ReasonContext};
use crate::protocol::wire::Reader;

/// The last packet of a connection, from either side (server side: MQTT 5 only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    /// `Success` is "Normal disconnection"; 3.x always sends that.
    pub reason: ReasonCode,
    pub properties: Properties,
}

impl Disconnect {
    pub fn new(reason: ReasonCode) -> Self {
        Disconnect {
            reason,
            properties: Properties::new(),
        }
    }

    pub(super) fn decode(
        reader: &mut Reader<'_>,
        version: ProtocolVersion,
    ) -> Result<Disconnect, DecodeError> {
        let (reason, properties) = decode_reason_and_properties(
            reader,
            version,
            ReasonContext::Disconnect,
            PropertyContext::Disconnect,
        )?;
        Ok(Disconnect { reason, properties })
    }

    pub(super) fn body_len(&self, version: ProtocolVersion) -> usize {
        reason_and_properties_len(version, self.reason, &self.properties)
    }

    pub(super) fn encode_body(
        &self,
        version: ProtocolVersion,
        buf: &mut impl BufMut,
    ) -> Result<(), EncodeError> {
        encode_reason_and_properties(buf, version, self.reason, &self.properties)
    }
}

/// Enhanced authentication exchange (MQTT 5 only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub reason: ReasonCode,
    pub properties: Properties,
}

impl Auth {
    pub(super) fn decode(reader: &mut Reader<'_>) -> Result<Auth, DecodeError> {
        let (reason, properties) = decode_reason_and_properties(
            reader,
            ProtocolVersion::V5,
            ReasonContext::Auth,
            PropertyContext::Auth,
        )?;
        Ok(Auth { reason, properties })
    }

    pub(super) fn body_len(&self) -> usize {
        reason_and_properties_len(ProtocolVersion::V5, self.reason, &self.properties)
    }

    pub(super) fn encode_body(&self, buf: &mut impl BufMut) -> Result<(), EncodeError> {
        encode_reason_and_properties(buf, ProtocolVersion::V5, self.reason, &self.properties)
    }
}

/// §3.14.2.1 / §3.15.2.1: an empty body means Success without properties; a body of
/// one byte is a reason code without properties.
fn decode_reason_and_properties(
    reader: &mut Reader<'_>,
    version: ProtocolVersion,
    reasons: ReasonContext,
    properties: PropertyContext,
) -> Result<(ReasonCode, Properties), DecodeError> {
    if !version.is_v5() || reader.is_empty() {
        // 3.x DISCONNECT has no body; anything left is reported by the caller.
        return Ok((ReasonCode::Success, Properties::new()));
    }
    let reason = ReasonCode::from_u8(reader.u8()?)
        .filter(|code| reasons.allows(*code))
        .ok_or(DecodeError::Malformed("invalid reason code"))?;
    let properties = if reader.is_empty() {
        Properties::new()
    } else {
        Properties::decode(reader, properties)?
    };
    Ok((reason, properties))
}

fn reason_and_properties_len(
    version: ProtocolVersion,
    reason: ReasonCode,
    properties: &Properties,
) -> usize {
    if !version.is_v5() || (reason == ReasonCode::Success && properties.is_empty()) {
        0
    } else if properties.is_empty() {
        1
    } else {
        1 + properties.encoded_len()
    }
}

fn encode_reason_and_properties(
    buf: &mut impl BufMut,
    version: ProtocolVersion,
    reason: ReasonCode,
    properties: &Properties,
) -> Result<(), EncodeError> {
    let len = reason_and_properties_len(version, reason, properties);
    if len > 0 {
        buf.put_u8(reason as u8);
    }
    if len > 1 {
        properties.encode(buf)?;
    }
    Ok(())
}
