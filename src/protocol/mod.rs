//! The MQTT packet model: one type family for MQTT 3.1, 3.1.1 and 5.0, a strict
//! decoder, an encoder, and validated topic names and filters.
//!
//! Pure: no I/O, no clocks, no tokio. The broker, the clients and the benchmark
//! load generator all speak through this module.
//!
//! * [`frame`]: is a whole packet buffered? (no allocation; size limit from the header)
//! * [`packet`]: [`Packet`] and one struct per packet, `decode`/`encode`
//! * [`property`]: typed MQTT 5 properties
//! * [`reason`]: reason codes and 3.x return codes
//! * [`topic`]: [`TopicName`], [`TopicFilter`], matching
//! * [`wire`]: integers, Variable Byte Integers, strings

mod error;
pub mod frame;
pub mod packet;
pub mod property;
pub mod reason;
pub mod topic;
pub mod wire;

pub use error::{DecodeError, EncodeError};
pub use frame::{FrameHeader, FrameStatus, check_frame};
pub use packet::{
    Ack, Auth, ConnAck, Connect, Disconnect, Packet, PacketType, Publish, PublishHeader,
    PublishView, RejectedFilter, RetainHandling, SubAck, Subscribe, SubscriptionOptions, UnsubAck,
    Unsubscribe, Will, encode_publish, encode_short_ack, publish_len,
};
pub use property::{Properties, Property, PropertyContext};
pub use reason::{ReasonCode, ReasonContext};
pub use topic::{TopicError, TopicFilter, TopicName};

use std::fmt;
use std::num::NonZeroU16;

/// A packet identifier; never zero [MQTT-2.3.1-1 3.1.1].
pub type PacketId = NonZeroU16;

/// The protocol a connection speaks, fixed by its CONNECT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    /// MQTT 3.1: protocol name `MQIsdp`, level 3.
    V3_1,
    /// MQTT 3.1.1: protocol name `MQTT`, level 4.
    V3_1_1,
    /// MQTT 5.0: protocol name `MQTT`, level 5.
    V5,
}

impl ProtocolVersion {
    /// The protocol level byte of CONNECT.
    pub fn level(self) -> u8 {
        match self {
            ProtocolVersion::V3_1 => 3,
            ProtocolVersion::V3_1_1 => 4,
            ProtocolVersion::V5 => 5,
        }
    }

    /// The protocol name of CONNECT.
    pub fn protocol_name(self) -> &'static str {
        match self {
            ProtocolVersion::V3_1 => "MQIsdp",
            _ => "MQTT",
        }
    }

    pub fn is_v5(self) -> bool {
        self == ProtocolVersion::V5
    }
}

/// Quality of service of a message or subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum QoS {
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl QoS {
    pub fn from_u8(value: u8) -> Option<QoS> {
        match value {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

impl fmt::Display for QoS {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", *self as u8)
    }
}
