//! [`Message`]: an application message as the broker holds it once accepted, shared by
//! every session it is queued for.

use bytes::Bytes;

use crate::protocol::{Properties, Publish, QoS, TopicName};

/// A message the broker accepted, shared (`Arc<Message>`) by every delivery of it.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: TopicName,
    pub payload: Bytes,
    /// The QoS it was published with; each delivery uses at most this.
    pub qos: QoS,
    /// The retain flag it was published with.
    pub retain: bool,
    /// MQTT 5 properties forwarded to subscribers.
    pub properties: Properties,
    /// The session that published it (0 for the broker itself); used by No Local.
    pub origin: u64,
}

impl Message {
    pub fn new(topic: TopicName, payload: Bytes, qos: QoS, retain: bool) -> Self {
        Message {
            topic,
            payload,
            qos,
            retain,
            properties: Properties::new(),
            origin: 0,
        }
    }

    /// The message a client's PUBLISH carries; topic aliases must be resolved first.
    pub fn from_publish(publish: Publish, origin: u64) -> Self {
        let mut properties = publish.properties;
        // A Topic Alias belongs to one connection; it is never forwarded (§3.3.2.3.4).
        properties.remove(0x23);
        Message {
            topic: publish.topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties,
            origin,
        }
    }
}
