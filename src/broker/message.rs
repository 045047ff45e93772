//! [`Message`]: an application message as the broker holds it once accepted, shared by
//! every session it is queued for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::auth::Principal;
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
    /// When the broker accepted it: Message Expiry counts from here.
    pub received_at: Instant,
    /// Who published a retained message, so `check_retain_source` can ask whether
    /// they still may when it is delivered later; `None` for the broker's own.
    pub publisher: Option<Arc<Principal>>,
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
            received_at: Instant::now(),
            publisher: None,
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
            received_at: Instant::now(),
            publisher: None,
        }
    }

    /// Seconds of life left at `now` (rounded up), `None` for a message without a
    /// Message Expiry Interval, `Some(0)` once it has expired.
    pub fn remaining_life(&self, now: Instant) -> Option<u32> {
        let interval = Duration::from_secs(u64::from(self.properties.message_expiry_interval()?));
        let left = interval.saturating_sub(now.saturating_duration_since(self.received_at));
        Some(u32::try_from(left.as_secs() + u64::from(left.subsec_nanos() > 0)).unwrap_or(u32::MAX))
    }

    /// Whether the message expired before `now` [MQTT-3.3.2-5 5.0].
    pub fn is_expired(&self, now: Instant) -> bool {
        self.remaining_life(now) == Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Property;

    #[test]
    fn life_counts_down_from_receipt() {
        let mut message = Message::new(
            TopicName::new("t").expect("topic"),
            Bytes::new(),
            QoS::AtMostOnce,
            false,
        );
        assert_eq!(message.remaining_life(Instant::now()), None);
        message.properties.push(Property::MessageExpiryInterval(10));
        let start = message.received_at;
        assert_eq!(message.remaining_life(start), Some(10));
        assert_eq!(
            message.remaining_life(start + Duration::from_millis(2500)),
            Some(8)
        );
        assert!(!message.is_expired(start + Duration::from_millis(9999)));
        assert!(message.is_expired(start + Duration::from_secs(10)));
    }
}
