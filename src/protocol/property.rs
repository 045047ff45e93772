//! MQTT 5 properties (§2.2.2): one typed variant per property, kept in wire order,
//! with the table of which packet may carry which property.
//!
//! A 3.x packet has an empty [`Properties`]; an empty list costs no allocation, so
//! the one packet model serves every version.

use bytes::{BufMut, Bytes};

use super::error::{DecodeError, EncodeError};
use super::wire::{self, Reader};

/// Where a property list appears; each property is allowed in some of these (§2.2.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyContext {
    Connect,
    ConnAck,
    Publish,
    Will,
    /// PUBACK, PUBREC, PUBREL and PUBCOMP.
    PubAck,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

impl PropertyContext {
    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// One MQTT 5 property with its typed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Property {
    PayloadFormatIndicator(u8),
    MessageExpiryInterval(u32),
    ContentType(String),
    ResponseTopic(String),
    CorrelationData(Bytes),
    SubscriptionIdentifier(u32),
    SessionExpiryInterval(u32),
    AssignedClientIdentifier(String),
    ServerKeepAlive(u16),
    AuthenticationMethod(String),
    AuthenticationData(Bytes),
    RequestProblemInformation(u8),
    WillDelayInterval(u32),
    RequestResponseInformation(u8),
    ResponseInformation(String),
    ServerReference(String),
    ReasonString(String),
    ReceiveMaximum(u16),
    TopicAliasMaximum(u16),
    TopicAlias(u16),
    MaximumQos(u8),
    RetainAvailable(u8),
    UserProperty(String, String),
    MaximumPacketSize(u32),
    WildcardSubscriptionAvailable(u8),
    SubscriptionIdentifierAvailable(u8),
    SharedSubscriptionAvailable(u8),
}

use PropertyContext as C;

const CONNECT: u16 = C::Connect.bit();
const CONNACK: u16 = C::ConnAck.bit();
const PUBLISH: u16 = C::Publish.bit();
const WILL: u16 = C::Will.bit();
const PUBACK: u16 = C::PubAck.bit();
const SUBSCRIBE: u16 = C::Subscribe.bit();
const SUBACK: u16 = C::SubAck.bit();
const UNSUBACK: u16 = C::UnsubAck.bit();
const DISCONNECT: u16 = C::Disconnect.bit();
const AUTH: u16 = C::Auth.bit();
const EVERY_PACKET: u16 = u16::MAX;

impl Property {
    /// The property identifier byte.
    pub fn id(&self) -> u8 {
        match self {
            Property::PayloadFormatIndicator(_) => 0x01,
            Property::MessageExpiryInterval(_) => 0x02,
            Property::ContentType(_) => 0x03,
            Property::ResponseTopic(_) => 0x08,
            Property::CorrelationData(_) => 0x09,
            Property::SubscriptionIdentifier(_) => 0x0b,
            Property::SessionExpiryInterval(_) => 0x11,
            Property::AssignedClientIdentifier(_) => 0x12,
            Property::ServerKeepAlive(_) => 0x13,
            Property::AuthenticationMethod(_) => 0x15,
            Property::AuthenticationData(_) => 0x16,
            Property::RequestProblemInformation(_) => 0x17,
            Property::WillDelayInterval(_) => 0x18,
            Property::RequestResponseInformation(_) => 0x19,
            Property::ResponseInformation(_) => 0x1a,
            Property::ServerReference(_) => 0x1c,
            Property::ReasonString(_) => 0x1f,
            Property::ReceiveMaximum(_) => 0x21,
            Property::TopicAliasMaximum(_) => 0x22,
            Property::TopicAlias(_) => 0x23,
            Property::MaximumQos(_) => 0x24,
            Property::RetainAvailable(_) => 0x25,
            Property::UserProperty(..) => 0x26,
            Property::MaximumPacketSize(_) => 0x27,
            Property::WildcardSubscriptionAvailable(_) => 0x28,
            Property::SubscriptionIdentifierAvailable(_) => 0x29,
            Property::SharedSubscriptionAvailable(_) => 0x2a,
        }
    }

    /// The name mosquitto's tools use for the property (`-D` and `%j` output).
    pub fn name(&self) -> &'static str {
        match self {
            Property::PayloadFormatIndicator(_) => "payload-format-indicator",
            Property::MessageExpiryInterval(_) => "message-expiry-interval",
            Property::ContentType(_) => "content-type",
            Property::ResponseTopic(_) => "response-topic",
            Property::CorrelationData(_) => "correlation-data",
            Property::SubscriptionIdentifier(_) => "subscription-identifier",
            Property::SessionExpiryInterval(_) => "session-expiry-interval",
            Property::AssignedClientIdentifier(_) => "assigned-client-identifier",
            Property::ServerKeepAlive(_) => "server-keep-alive",
            Property::AuthenticationMethod(_) => "authentication-method",
            Property::AuthenticationData(_) => "authentication-data",
            Property::RequestProblemInformation(_) => "request-problem-information",
            Property::WillDelayInterval(_) => "will-delay-interval",
            Property::RequestResponseInformation(_) => "request-response-information",
            Property::ResponseInformation(_) => "response-information",
            Property::ServerReference(_) => "server-reference",
            Property::ReasonString(_) => "reason-string",
            Property::ReceiveMaximum(_) => "receive-maximum",
            Property::TopicAliasMaximum(_) => "topic-alias-maximum",
            Property::TopicAlias(_) => "topic-alias",
            Property::MaximumQos(_) => "maximum-qos",
            Property::RetainAvailable(_) => "retain-available",
            Property::UserProperty(..) => "user-property",
            Property::MaximumPacketSize(_) => "maximum-packet-size",
            Property::WildcardSubscriptionAvailable(_) => "wildcard-subscription-available",
            Property::SubscriptionIdentifierAvailable(_) => "subscription-identifier-available",
            Property::SharedSubscriptionAvailable(_) => "shared-subscription-available",
        }
    }

    /// Whether a packet of `context` may carry this property (§2.2.2.2).
    pub fn is_allowed_in(&self, context: PropertyContext) -> bool {
        self.allowed_in() & context.bit() != 0
    }

    /// The packets that may carry this property (§2.2.2.2, table 2-4).
    fn allowed_in(&self) -> u16 {
        match self {
            Property::PayloadFormatIndicator(_)
            | Property::MessageExpiryInterval(_)
            | Property::ContentType(_)
            | Property::ResponseTopic(_)
            | Property::CorrelationData(_) => PUBLISH | WILL,
            Property::SubscriptionIdentifier(_) => PUBLISH | SUBSCRIBE,
            Property::SessionExpiryInterval(_) => CONNECT | CONNACK | DISCONNECT,
            Property::AssignedClientIdentifier(_) | Property::ServerKeepAlive(_) => CONNACK,
            Property::AuthenticationMethod(_) | Property::AuthenticationData(_) => {
                CONNECT | CONNACK | AUTH
            }
            Property::RequestProblemInformation(_) | Property::RequestResponseInformation(_) => {
                CONNECT
            }
            Property::WillDelayInterval(_) => WILL,
            Property::ResponseInformation(_) => CONNACK,
            Property::ServerReference(_) => CONNACK | DISCONNECT,
            Property::ReasonString(_) => CONNACK | PUBACK | SUBACK | UNSUBACK | DISCONNECT | AUTH,
            Property::ReceiveMaximum(_)
            | Property::TopicAliasMaximum(_)
            | Property::MaximumPacketSize(_) => CONNECT | CONNACK,
            Property::TopicAlias(_) => PUBLISH,
            Property::MaximumQos(_)
            | Property::RetainAvailable(_)
            | Property::WildcardSubscriptionAvailable(_)
            | Property::SubscriptionIdentifierAvailable(_)
            | Property::SharedSubscriptionAvailable(_) => CONNACK,
            Property::UserProperty(..) => EVERY_PACKET,
        }
    }

    /// Properties that may legally appear more than once in one list.
    fn may_repeat(&self, context: PropertyContext) -> bool {
        match self {
            Property::UserProperty(..) => true,
            // A server-to-client PUBLISH carries one identifier per matching
            // subscription (§3.3.2.3.8); SUBSCRIBE carries at most one.
            Property::SubscriptionIdentifier(_) => context == PropertyContext::Publish,
            _ => false,
        }
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Property, DecodeError> {
        let id = reader.varint()?;
        let property = match id {
            0x01 => Property::PayloadFormatIndicator(flag(reader)?),
            0x02 => Property::MessageExpiryInterval(reader.u32()?),
            0x03 => Property::ContentType(reader.owned_string()?),
            0x08 => {
                let topic = reader.owned_string()?;
                if topic.is_empty() || topic.contains(['+', '#']) {
                    return Err(DecodeError::Protocol(
                        "[MQTT-3.3.2-14 5.0] Response Topic must be a topic name without wildcards",
                    ));
                }
                Property::ResponseTopic(topic)
            }
            0x09 => Property::CorrelationData(reader.owned_binary()?),
            0x0b => {
                let value = reader.varint()?;
                if value == 0 {
                    return Err(DecodeError::Protocol(
                        "subscription identifier of 0 (§3.8.2.1.2)",
                    ));
                }
                Property::SubscriptionIdentifier(value)
            }
            0x11 => Property::SessionExpiryInterval(reader.u32()?),
            0x12 => Property::AssignedClientIdentifier(reader.owned_string()?),
            0x13 => Property::ServerKeepAlive(reader.u16()?),
            0x15 => Property::AuthenticationMethod(reader.owned_string()?),
            0x16 => Property::AuthenticationData(reader.owned_binary()?),
            0x17 => Property::RequestProblemInformation(flag(reader)?),
            0x18 => Property::WillDelayInterval(reader.u32()?),
            0x19 => Property::RequestResponseInformation(flag(reader)?),
            0x1a => Property::ResponseInformation(reader.owned_string()?),
            0x1c => Property::ServerReference(reader.owned_string()?),
            0x1f => Property::ReasonString(reader.owned_string()?),
            0x21 => Property::ReceiveMaximum(non_zero_u16(
                reader,
                "receive maximum of 0 (§3.1.2.11.3)",
            )?),
            0x22 => Property::TopicAliasMaximum(reader.u16()?),
            0x23 => Property::TopicAlias(reader.u16()?),
            0x24 => Property::MaximumQos(flag(reader)?),
            0x25 => Property::RetainAvailable(flag(reader)?),
            0x26 => {
                let key = reader.owned_string()?;
                let value = reader.owned_string()?;
                Property::UserProperty(key, value)
            }
            0x27 => {
                let size = reader.u32()?;
                if size == 0 {
                    return Err(DecodeError::Protocol(
                        "maximum packet size of 0 (§3.1.2.11.4)",
                    ));
                }
                Property::MaximumPacketSize(size)
            }
            0x28 => Property::WildcardSubscriptionAvailable(flag(reader)?),
            0x29 => Property::SubscriptionIdentifierAvailable(flag(reader)?),
            0x2a => Property::SharedSubscriptionAvailable(flag(reader)?),
            _ => {
                return Err(DecodeError::Malformed(
                    "unknown property identifier (§2.2.2.2)",
                ));
            }
        };
        Ok(property)
    }

    fn encoded_len(&self) -> usize {
        1 + match self {
            Property::PayloadFormatIndicator(_)
            | Property::RequestProblemInformation(_)
            | Property::RequestResponseInformation(_)
            | Property::MaximumQos(_)
            | Property::RetainAvailable(_)
            | Property::WildcardSubscriptionAvailable(_)
            | Property::SubscriptionIdentifierAvailable(_)
            | Property::SharedSubscriptionAvailable(_) => 1,
            Property::ServerKeepAlive(_)
            | Property::ReceiveMaximum(_)
            | Property::TopicAliasMaximum(_)
            | Property::TopicAlias(_) => 2,
            Property::MessageExpiryInterval(_)
            | Property::SessionExpiryInterval(_)
            | Property::WillDelayInterval(_)
            | Property::MaximumPacketSize(_) => 4,
            Property::SubscriptionIdentifier(value) => wire::varint_len(*value),
            Property::ContentType(s)
            | Property::ResponseTopic(s)
            | Property::AssignedClientIdentifier(s)
            | Property::AuthenticationMethod(s)
            | Property::ResponseInformation(s)
            | Property::ServerReference(s)
            | Property::ReasonString(s) => wire::binary_len(s.as_bytes()),
            Property::CorrelationData(b) | Property::AuthenticationData(b) => wire::binary_len(b),
            Property::UserProperty(k, v) => {
                wire::binary_len(k.as_bytes()) + wire::binary_len(v.as_bytes())
            }
        }
    }

    fn encode(&self, buf: &mut impl BufMut) -> Result<(), EncodeError> {
        buf.put_u8(self.id());
        match self {
            Property::PayloadFormatIndicator(v)
            | Property::RequestProblemInformation(v)
            | Property::RequestResponseInformation(v)
            | Property::MaximumQos(v)
            | Property::RetainAvailable(v)
            | Property::WildcardSubscriptionAvailable(v)
            | Property::SubscriptionIdentifierAvailable(v)
            | Property::SharedSubscriptionAvailable(v) => buf.put_u8(*v),
            Property::ServerKeepAlive(v)
            | Property::ReceiveMaximum(v)
            | Property::TopicAliasMaximum(v)
            | Property::TopicAlias(v) => buf.put_u16(*v),
            Property::MessageExpiryInterval(v)
            | Property::SessionExpiryInterval(v)
            | Property::WillDelayInterval(v)
            | Property::MaximumPacketSize(v) => buf.put_u32(*v),
            Property::SubscriptionIdentifier(v) => wire::put_varint(buf, *v),
            Property::ContentType(s)
            | Property::ResponseTopic(s)
            | Property::AssignedClientIdentifier(s)
            | Property::AuthenticationMethod(s)
            | Property::ResponseInformation(s)
            | Property::ServerReference(s)
            | Property::ReasonString(s) => wire::put_string(buf, s)?,
            Property::CorrelationData(b) | Property::AuthenticationData(b) => {
                wire::put_binary(buf, b)?
            }
            Property::UserProperty(k, v) => {
                wire::put_string(buf, k)?;
                wire::put_string(buf, v)?;
            }
        }
        Ok(())
    }
}

/// A one-byte property whose only values are 0 and 1; others are a Protocol Error
/// (e.g. §3.1.2.11.7, §3.2.2.3.4, §3.2.2.3.5).
fn flag(reader: &mut Reader<'_>) -> Result<u8, DecodeError> {
    let value = reader.u8()?;
    if value > 1 {
        return Err(DecodeError::Protocol("property value must be 0 or 1"));
    }
    Ok(value)
}

fn non_zero_u16(reader: &mut Reader<'_>, rule: &'static str) -> Result<u16, DecodeError> {
    let value = reader.u16()?;
    if value == 0 {
        return Err(DecodeError::Protocol(rule));
    }
    Ok(value)
}

/// One getter per single-valued property: the value of its first occurrence.
macro_rules! getters {
    ($($kind:ident $name:ident: $variant:ident $(-> $ty:ty)?;)*) => {
        $(getters!(@one $kind $name $variant $($ty)?);)*
    };
    (@one copied $name:ident $variant:ident $ty:ty) => {
        pub fn $name(&self) -> Option<$ty> {
            self.find(|p| match p {
                Property::$variant(v) => Some(*v),
                _ => None,
            })
        }
    };
    (@one text $name:ident $variant:ident) => {
        pub fn $name(&self) -> Option<&str> {
            self.find(|p| match p {
                Property::$variant(v) => Some(v.as_str()),
                _ => None,
            })
        }
    };
    (@one bytes $name:ident $variant:ident) => {
        pub fn $name(&self) -> Option<&Bytes> {
            self.find(|p| match p {
                Property::$variant(v) => Some(v),
                _ => None,
            })
        }
    };
}

/// The property list of one packet, in wire order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Properties(Vec<Property>);

impl Properties {
    pub fn new() -> Self {
        Properties(Vec::new())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Property> {
        self.0.iter()
    }

    /// Appends a property; the caller keeps the list valid for its packet.
    pub fn push(&mut self, property: Property) {
        self.0.push(property);
    }

    /// Removes every property with this identifier.
    pub fn remove(&mut self, id: u8) {
        self.0.retain(|p| p.id() != id);
    }

    /// Reads a length-prefixed list and checks it against `context`: a property not
    /// allowed there is malformed (§2.2.2.2), a repeated one a protocol error.
    pub fn decode(reader: &mut Reader<'_>, context: PropertyContext) -> Result<Self, DecodeError> {
        let len = reader.varint()? as usize;
        let mut list = Reader::new(reader.take(len)?);
        let mut properties = Vec::new();
        let mut seen: u64 = 0;
        while !list.is_empty() {
            let property = Property::decode(&mut list)?;
            if property.allowed_in() & context.bit() == 0 {
                return Err(DecodeError::Malformed(
                    "property not allowed in this packet (§2.2.2.2)",
                ));
            }
            let bit = 1u64 << property.id();
            if seen & bit != 0 && !property.may_repeat(context) {
                return Err(DecodeError::Protocol("property included more than once"));
            }
            seen |= bit;
            properties.push(property);
        }
        Ok(Properties(properties))
    }

    /// Reads a list on MQTT 5; 3.x packets have none.
    pub fn decode_for(
        reader: &mut Reader<'_>,
        version: crate::protocol::ProtocolVersion,
        context: PropertyContext,
    ) -> Result<Self, DecodeError> {
        if version.is_v5() {
            Self::decode(reader, context)
        } else {
            Ok(Properties::new())
        }
    }

    /// Size of the list without its length prefix.
    pub fn body_len(&self) -> usize {
        self.0.iter().map(Property::encoded_len).sum()
    }

    /// Size of the list with its length prefix.
    pub fn encoded_len(&self) -> usize {
        let body = self.body_len();
        wire::varint_len(body as u32) + body
    }

    pub fn encode(&self, buf: &mut impl BufMut) -> Result<(), EncodeError> {
        let body = self.body_len();
        if body > wire::MAX_VARINT as usize {
            return Err(EncodeError::PacketTooLarge(body));
        }
        wire::put_varint(buf, body as u32);
        for property in &self.0 {
            property.encode(buf)?;
        }
        Ok(())
    }

    fn find<'a, T: 'a>(&'a self, pick: impl Fn(&'a Property) -> Option<T>) -> Option<T> {
        self.0.iter().find_map(pick)
    }

    /// Every identifier a server-to-client PUBLISH carries, in order.
    pub fn subscription_identifiers(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().filter_map(|p| match p {
            Property::SubscriptionIdentifier(v) => Some(*v),
            _ => None,
        })
    }

    getters! {
        copied payload_format_indicator: PayloadFormatIndicator -> u8;
        copied message_expiry_interval: MessageExpiryInterval -> u32;
        text content_type: ContentType;
        text response_topic: ResponseTopic;
        bytes correlation_data: CorrelationData;
        copied session_expiry_interval: SessionExpiryInterval -> u32;
        text assigned_client_identifier: AssignedClientIdentifier;
        copied server_keep_alive: ServerKeepAlive -> u16;
        text authentication_method: AuthenticationMethod;
        copied request_problem_information: RequestProblemInformation -> u8;
        copied request_response_information: RequestResponseInformation -> u8;
        copied will_delay_interval: WillDelayInterval -> u32;
        text reason_string: ReasonString;
        copied receive_maximum: ReceiveMaximum -> u16;
        copied topic_alias_maximum: TopicAliasMaximum -> u16;
        copied topic_alias: TopicAlias -> u16;
        copied maximum_qos: MaximumQos -> u8;
        copied maximum_packet_size: MaximumPacketSize -> u32;
        copied retain_available: RetainAvailable -> u8;
    }

    pub fn user_properties(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.0.iter().filter_map(|p| match p {
            Property::UserProperty(k, v) => Some((k.as_str(), v.as_str())),
            _ => None,
        })
    }
}

impl FromIterator<Property> for Properties {
    fn from_iter<I: IntoIterator<Item = Property>>(iter: I) -> Self {
        Properties(iter.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a Properties {
    type Item = &'a Property;
    type IntoIter = std::slice::Iter<'a, Property>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8], context: PropertyContext) -> Result<Properties, DecodeError> {
        Properties::decode(&mut Reader::new(bytes), context)
    }

    #[test]
    fn user_properties_keep_their_order_and_repeat() {
        let props = decode(
            &[
                14, 0x26, 0, 1, b'k', 0, 1, b'1', 0x26, 0, 1, b'k', 0, 1, b'2',
            ],
            PropertyContext::Publish,
        )
        .expect("valid list");
        let pairs: Vec<_> = props.user_properties().collect();
        assert_eq!(pairs, vec![("k", "1"), ("k", "2")]);
    }

    #[test]
    fn duplicate_property_is_a_protocol_error() {
        let bytes = [10, 0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2];
        assert!(matches!(
            decode(&bytes, PropertyContext::Publish),
            Err(DecodeError::Protocol(_))
        ));
    }

    #[test]
    fn property_in_the_wrong_packet_is_malformed() {
        // Session Expiry Interval in a PUBLISH.
        let bytes = [5, 0x11, 0, 0, 0, 1];
        assert!(matches!(
            decode(&bytes, PropertyContext::Publish),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn unknown_property_is_malformed() {
        assert!(matches!(
            decode(&[2, 0x7f, 0], PropertyContext::Connect),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn zero_values_that_the_spec_forbids() {
        assert!(decode(&[3, 0x21, 0, 0], PropertyContext::Connect).is_err());
        assert!(decode(&[5, 0x27, 0, 0, 0, 0], PropertyContext::Connect).is_err());
        assert!(decode(&[2, 0x0b, 0], PropertyContext::Subscribe).is_err());
        assert!(decode(&[2, 0x17, 2], PropertyContext::Connect).is_err());
    }

    #[test]
    fn subscription_identifier_repeats_only_in_publish() {
        let bytes = [4, 0x0b, 1, 0x0b, 2];
        let props = decode(&bytes, PropertyContext::Publish).expect("server PUBLISH");
        assert_eq!(
            props.subscription_identifiers().collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert!(decode(&bytes, PropertyContext::Subscribe).is_err());
    }

    #[test]
    fn encode_then_decode_gives_the_same_list() {
        let props: Properties = [
            Property::PayloadFormatIndicator(1),
            Property::MessageExpiryInterval(60),
            Property::ContentType("text/plain".into()),
            Property::ResponseTopic("reply/here".into()),
            Property::CorrelationData(Bytes::from_static(b"\x00\x01")),
            Property::UserProperty("a".into(), "b".into()),
            Property::SubscriptionIdentifier(268_435_455),
        ]
        .into_iter()
        .collect();
        let mut buf = Vec::new();
        props.encode(&mut buf).expect("encodable");
        assert_eq!(buf.len(), props.encoded_len());
        assert_eq!(decode(&buf, PropertyContext::Publish), Ok(props));
    }
}
