//! The MQTT 5 state of one connection: the client's limits, topic aliases in both
//! directions, the session expiry it asked for, and the properties of outgoing
//! PUBLISHes. Boxed inside the connection, so 3.x connections do not carry it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::broker::session::Delivery;
use crate::protocol::{Properties, Property, ReasonCode, TopicName};

/// Session Expiry Interval meaning "never" (§3.1.2.11.2).
const NEVER: u32 = u32::MAX;

pub(super) struct V5 {
    /// Session Expiry Interval in seconds, from CONNECT; DISCONNECT may change it.
    pub session_expiry: u32,
    /// The client's Maximum Packet Size: nothing larger is sent [MQTT-3.1.2-24 5.0].
    pub max_packet_size: Option<u32>,
    /// The client's Topic Alias Maximum: how many aliases the broker may assign.
    alias_maximum: u16,
    /// Made at the first alias: most clients never use one, and every idle
    /// MQTT 5 connection carries this state.
    aliases: Option<Box<Aliases>>,
    /// Request Problem Information: when false, no Reason String or User Property on
    /// packets other than PUBLISH, CONNACK and DISCONNECT [MQTT-3.1.2-29 5.0].
    pub problem_information: bool,
}

/// Topic aliases of one connection, both directions.
#[derive(Default)]
struct Aliases {
    outgoing: HashMap<String, u16>,
    incoming: HashMap<u16, TopicName>,
}

impl V5 {
    pub fn from_connect(properties: &Properties) -> Self {
        V5 {
            session_expiry: properties.session_expiry_interval().unwrap_or(0),
            max_packet_size: properties.maximum_packet_size(),
            alias_maximum: properties.topic_alias_maximum().unwrap_or(0),
            aliases: None,
            problem_information: properties.request_problem_information() != Some(0),
        }
    }

    /// How long the session outlives the connection; `None` is for ever.
    pub fn session_expiry(&self) -> Option<Duration> {
        (self.session_expiry != NEVER).then(|| Duration::from_secs(u64::from(self.session_expiry)))
    }

    /// Applies a DISCONNECT's Session Expiry Interval: it may not turn a session
    /// that ends with its connection into one that outlives it (§3.14.2.2.2).
    pub fn update_expiry(&mut self, requested: Option<u32>) -> Result<(), ReasonCode> {
        match requested {
            Some(value) if self.session_expiry == 0 && value != 0 => Err(ReasonCode::ProtocolError),
            Some(value) => {
                self.session_expiry = value;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// The topic an incoming PUBLISH is for: aliases from 1 to `maximum` set and use
    /// a mapping for this connection only [MQTT-3.3.2-7 5.0]; out of range is Topic Alias
    /// invalid [MQTT-3.3.2-9 5.0], an unknown alias a Protocol Error (§3.3.2.3.4).
    pub fn resolve_topic(
        &mut self,
        topic: TopicName,
        alias: Option<u16>,
        maximum: u16,
    ) -> Result<TopicName, ReasonCode> {
        let Some(alias) = alias else {
            return Ok(topic);
        };
        if alias == 0 || alias > maximum {
            return Err(ReasonCode::TopicAliasInvalid);
        }
        if topic.is_empty() {
            return self
                .aliases
                .as_ref()
                .and_then(|aliases| aliases.incoming.get(&alias))
                .cloned()
                .ok_or(ReasonCode::ProtocolError);
        }
        let aliases = self.aliases.get_or_insert_with(Box::default);
        aliases.incoming.insert(alias, topic.clone());
        Ok(topic)
    }

    /// For an outgoing message on `topic`: whether to send the topic name (false
    /// once the client knows an alias for it) and the alias to carry. New topics get
    /// aliases while the client's Topic Alias Maximum allows [MQTT-3.3.2-11 5.0].
    pub fn outgoing_alias(&mut self, topic: &str) -> (bool, Option<u16>) {
        if self.alias_maximum == 0 {
            return (true, None);
        }
        let outgoing = &mut self.aliases.get_or_insert_with(Box::default).outgoing;
        if let Some(alias) = outgoing.get(topic) {
            return (false, Some(*alias));
        }
        if outgoing.len() < usize::from(self.alias_maximum) {
            let alias = outgoing.len() as u16 + 1;
            outgoing.insert(topic.to_string(), alias);
            return (true, Some(alias));
        }
        (true, None)
    }

    /// The most bytes an alias can add to a PUBLISH of `topic` (its property).
    pub fn alias_overhead(&self) -> usize {
        if self.alias_maximum > 0 { 3 } else { 0 }
    }
}

/// The properties of a PUBLISH delivering `delivery`: the message's, in order, with
/// Message Expiry Interval set to the time left [MQTT-3.3.2-6 5.0], then the
/// subscription identifiers of this delivery and its topic alias.
pub(in crate::broker) fn outgoing_properties(
    delivery: &Delivery,
    now: Instant,
    alias: Option<u16>,
) -> Cow<'_, Properties> {
    let message = &delivery.message;
    let remaining = message.remaining_life(now);
    if remaining.is_none() && delivery.subscription_ids.is_empty() && alias.is_none() {
        return Cow::Borrowed(&message.properties);
    }
    let mut properties: Properties = message
        .properties
        .iter()
        .map(|property| match property {
            Property::MessageExpiryInterval(_) => {
                Property::MessageExpiryInterval(remaining.unwrap_or(0))
            }
            other => other.clone(),
        })
        .collect();
    for id in &delivery.subscription_ids {
        properties.push(Property::SubscriptionIdentifier(*id));
    }
    if let Some(alias) = alias {
        properties.push(Property::TopicAlias(alias));
    }
    Cow::Owned(properties)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v5(alias_maximum: u16) -> V5 {
        let properties: Properties = [Property::TopicAliasMaximum(alias_maximum)]
            .into_iter()
            .collect();
        V5::from_connect(&properties)
    }

    fn topic(text: &str) -> TopicName {
        TopicName::new(text).expect("topic")
    }

    #[test]
    fn incoming_aliases_follow_section_3_3_2_3_4() {
        let mut state = v5(0);
        assert_eq!(
            state.resolve_topic(topic("a/b"), Some(1), 10),
            Ok(topic("a/b"))
        );
        assert_eq!(
            state.resolve_topic(TopicName::alias_placeholder(), Some(1), 10),
            Ok(topic("a/b"))
        );
        assert_eq!(
            state.resolve_topic(TopicName::alias_placeholder(), Some(2), 10),
            Err(ReasonCode::ProtocolError)
        );
        assert_eq!(
            state.resolve_topic(topic("x"), Some(11), 10),
            Err(ReasonCode::TopicAliasInvalid)
        );
        assert_eq!(
            state.resolve_topic(topic("x"), Some(0), 10),
            Err(ReasonCode::TopicAliasInvalid)
        );
    }

    #[test]
    fn outgoing_aliases_stop_at_the_clients_maximum() {
        let mut state = v5(1);
        assert_eq!(state.outgoing_alias("a"), (true, Some(1)));
        assert_eq!(state.outgoing_alias("a"), (false, Some(1)));
        assert_eq!(state.outgoing_alias("b"), (true, None));
        assert_eq!(v5(0).outgoing_alias("a"), (true, None));
    }

    #[test]
    fn a_zero_expiry_cannot_be_raised_at_disconnect() {
        let mut state = v5(0);
        assert_eq!(state.update_expiry(Some(5)), Err(ReasonCode::ProtocolError));
        let mut state =
            V5::from_connect(&[Property::SessionExpiryInterval(60)].into_iter().collect());
        assert_eq!(state.update_expiry(Some(0)), Ok(()));
        assert_eq!(state.session_expiry(), Some(Duration::ZERO));
        assert_eq!(
            V5::from_connect(
                &[Property::SessionExpiryInterval(u32::MAX)]
                    .into_iter()
                    .collect()
            )
            .session_expiry(),
            None
        );
    }
}
