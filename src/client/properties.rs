//! `-D <command> <property> <value>`: MQTT 5 properties given on the command line,
//! checked as mosquitto's clients check them and with their error messages.

use bytes::Bytes;

use crate::protocol::{Properties, Property, PropertyContext};

/// The packets `-D` can put properties on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyCommand {
    Connect,
    Publish,
    Subscribe,
    Unsubscribe,
    Disconnect,
    Will,
}

impl PropertyCommand {
    fn context(self) -> PropertyContext {
        match self {
            PropertyCommand::Connect => PropertyContext::Connect,
            PropertyCommand::Publish => PropertyContext::Publish,
            PropertyCommand::Subscribe => PropertyContext::Subscribe,
            PropertyCommand::Unsubscribe => PropertyContext::Unsubscribe,
            PropertyCommand::Disconnect => PropertyContext::Disconnect,
            PropertyCommand::Will => PropertyContext::Will,
        }
    }
}

/// Every command name libmosquitto knows; the ones `-D` cannot use are refused by
/// the property check, as there.
const COMMANDS: &[&str] = &[
    "connect",
    "connack",
    "publish",
    "puback",
    "pubrec",
    "pubrel",
    "pubcomp",
    "subscribe",
    "suback",
    "unsubscribe",
    "unsuback",
    "disconnect",
    "auth",
    "will",
];

/// The kinds of value a property takes.
#[derive(Clone, Copy)]
enum Kind {
    Byte,
    U16,
    U32,
    VarInt,
    Text,
    Binary,
    Pair,
}

/// Property names (mosquitto's spelling), their kind, and a constructor.
const NAMES: &[(&str, Kind)] = &[
    ("payload-format-indicator", Kind::Byte),
    ("message-expiry-interval", Kind::U32),
    ("content-type", Kind::Text),
    ("response-topic", Kind::Text),
    ("correlation-data", Kind::Binary),
    ("subscription-identifier", Kind::VarInt),
    ("session-expiry-interval", Kind::U32),
    ("assigned-client-identifier", Kind::Text),
    ("server-keep-alive", Kind::U16),
    ("authentication-method", Kind::Text),
    ("authentication-data", Kind::Binary),
    ("request-problem-information", Kind::Byte),
    ("will-delay-interval", Kind::U32),
    ("request-response-information", Kind::Byte),
    ("response-information", Kind::Text),
    ("server-reference", Kind::Text),
    ("reason-string", Kind::Text),
    ("receive-maximum", Kind::U16),
    ("topic-alias-maximum", Kind::U16),
    ("topic-alias", Kind::U16),
    ("maximum-qos", Kind::Byte),
    ("retain-available", Kind::Byte),
    ("user-property", Kind::Pair),
    ("maximum-packet-size", Kind::U32),
    ("wildcard-subscription-available", Kind::Byte),
    ("subscription-identifier-available", Kind::Byte),
    ("shared-subscription-available", Kind::Byte),
];

/// A property with a placeholder value, to ask where it may go.
fn sample(name: &str) -> Option<Property> {
    let number = |text: &str| -> Property {
        match text {
            "payload-format-indicator" => Property::PayloadFormatIndicator(0),
            "message-expiry-interval" => Property::MessageExpiryInterval(0),
            "subscription-identifier" => Property::SubscriptionIdentifier(1),
            "session-expiry-interval" => Property::SessionExpiryInterval(0),
            "server-keep-alive" => Property::ServerKeepAlive(0),
            "request-problem-information" => Property::RequestProblemInformation(0),
            "will-delay-interval" => Property::WillDelayInterval(0),
            "request-response-information" => Property::RequestResponseInformation(0),
            "receive-maximum" => Property::ReceiveMaximum(1),
            "topic-alias-maximum" => Property::TopicAliasMaximum(0),
            "topic-alias" => Property::TopicAlias(1),
            "maximum-qos" => Property::MaximumQos(0),
            "retain-available" => Property::RetainAvailable(0),
            "maximum-packet-size" => Property::MaximumPacketSize(1),
            "wildcard-subscription-available" => Property::WildcardSubscriptionAvailable(0),
            "subscription-identifier-available" => Property::SubscriptionIdentifierAvailable(0),
            _ => Property::SharedSubscriptionAvailable(0),
        }
    };
    Some(match name {
        "content-type" => Property::ContentType(String::new()),
        "response-topic" => Property::ResponseTopic(String::new()),
        "correlation-data" => Property::CorrelationData(Bytes::new()),
        "assigned-client-identifier" => Property::AssignedClientIdentifier(String::new()),
        "authentication-method" => Property::AuthenticationMethod(String::new()),
        "authentication-data" => Property::AuthenticationData(Bytes::new()),
        "response-information" => Property::ResponseInformation(String::new()),
        "server-reference" => Property::ServerReference(String::new()),
        "reason-string" => Property::ReasonString(String::new()),
        "user-property" => Property::UserProperty(String::new(), String::new()),
        other if NAMES.iter().any(|(n, _)| *n == other) => number(other),
        _ => return None,
    })
}

/// The properties given with `-D`, by packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandProperties {
    pub connect: Properties,
    pub publish: Properties,
    pub subscribe: Properties,
    pub unsubscribe: Properties,
    pub disconnect: Properties,
    pub will: Properties,
}

impl CommandProperties {
    fn list(&mut self, command: PropertyCommand) -> &mut Properties {
        match command {
            PropertyCommand::Connect => &mut self.connect,
            PropertyCommand::Publish => &mut self.publish,
            PropertyCommand::Subscribe => &mut self.subscribe,
            PropertyCommand::Unsubscribe => &mut self.unsubscribe,
            PropertyCommand::Disconnect => &mut self.disconnect,
            PropertyCommand::Will => &mut self.will,
        }
    }

    /// Adds one `-D` occurrence: `values` are what followed `-D` (command,
    /// property, value, and a second value for user-property). Errors are
    /// mosquitto's messages.
    pub fn add(&mut self, values: &[String]) -> Result<(), String> {
        const NOT_ENOUGH: &str =
            "Error: --property argument given but not enough arguments specified.";
        let [command, name, rest @ ..] = values else {
            return Err(NOT_ENOUGH.into());
        };
        if rest.is_empty() {
            return Err(NOT_ENOUGH.into());
        }
        if !COMMANDS.contains(&command.as_str()) {
            return Err("Error: Invalid command given in --property argument.".into());
        }
        let Some(&(name, kind)) = NAMES.iter().find(|(n, _)| n == name) else {
            return Err("Error: Invalid property name given in --property argument.".into());
        };
        let not_allowed =
            || format!("Error: {name} property not allowed for {command} in --property argument.");
        let command = match command.as_str() {
            "connect" => PropertyCommand::Connect,
            "publish" => PropertyCommand::Publish,
            "subscribe" => PropertyCommand::Subscribe,
            "unsubscribe" => PropertyCommand::Unsubscribe,
            "disconnect" => PropertyCommand::Disconnect,
            "will" => PropertyCommand::Will,
            _ => return Err(not_allowed()),
        };
        let allowed = sample(name).is_some_and(|p| p.is_allowed_in(command.context()))
            // Only brokers put subscription identifiers on PUBLISH.
            && !(command == PropertyCommand::Publish && name == "subscription-identifier");
        if !allowed {
            return Err(not_allowed());
        }
        let out_of_range = |value: &str| {
            format!("Error: Property value ({value}) out of range for property {name}.")
        };
        let number = |value: &str, max: u64| -> Result<u64, String> {
            let parsed = atol(value);
            if parsed < 0 || parsed as u64 > max {
                return Err(out_of_range(value));
            }
            Ok(parsed as u64)
        };
        let value = &rest[0];
        let property = match kind {
            Kind::Byte => byte_property(name, number(value, 255)? as u8),
            Kind::U16 => u16_property(name, number(value, 65_535)? as u16),
            Kind::U32 => u32_property(name, number(value, u64::from(u32::MAX))? as u32),
            Kind::VarInt => {
                let id = number(value, 268_435_455)? as u32;
                if id == 0 {
                    return Err(out_of_range(value));
                }
                Property::SubscriptionIdentifier(id)
            }
            Kind::Text => text_property(name, value.clone()),
            Kind::Binary => binary_property(name, Bytes::copy_from_slice(value.as_bytes())),
            Kind::Pair => {
                let Some(second) = rest.get(1) else {
                    return Err(NOT_ENOUGH.into());
                };
                Property::UserProperty(value.clone(), second.clone())
            }
        };
        let list = self.list(command);
        if !matches!(property, Property::UserProperty(..))
            && list.iter().any(|p| p.id() == property.id())
        {
            let packet = match command {
                PropertyCommand::Connect => "CONNECT",
                PropertyCommand::Publish => "PUBLISH",
                PropertyCommand::Subscribe => "SUBSCRIBE",
                PropertyCommand::Unsubscribe => "UNSUBSCRIBE",
                PropertyCommand::Disconnect => "DISCONNECT",
                PropertyCommand::Will => "Will",
            };
            return Err(format!(
                "Error in {packet} properties: Duplicate property in property list."
            ));
        }
        list.push(property);
        Ok(())
    }

    /// Whether any property was given (which makes the client use MQTT 5).
    pub fn is_empty(&self) -> bool {
        self.connect.is_empty()
            && self.publish.is_empty()
            && self.subscribe.is_empty()
            && self.unsubscribe.is_empty()
            && self.disconnect.is_empty()
            && self.will.is_empty()
    }
}

/// C's `atol`: leading blanks, an optional sign, digits up to the first other
/// character; 0 when there are none. mosquitto reads `-D` numbers this way.
fn atol(text: &str) -> i64 {
    let trimmed = text.trim_start();
    let (sign, digits) = match trimmed.as_bytes().first() {
        Some(b'-') => (-1, &trimmed[1..]),
        Some(b'+') => (1, &trimmed[1..]),
        _ => (1, trimmed),
    };
    let mut value: i64 = 0;
    for byte in digits.bytes().take_while(u8::is_ascii_digit) {
        value = value
            .saturating_mul(10)
            .saturating_add(i64::from(byte - b'0'));
    }
    sign * value
}

fn byte_property(name: &str, value: u8) -> Property {
    match name {
        "payload-format-indicator" => Property::PayloadFormatIndicator(value),
        "request-problem-information" => Property::RequestProblemInformation(value),
        "request-response-information" => Property::RequestResponseInformation(value),
        "maximum-qos" => Property::MaximumQos(value),
        "retain-available" => Property::RetainAvailable(value),
        "wildcard-subscription-available" => Property::WildcardSubscriptionAvailable(value),
        "subscription-identifier-available" => Property::SubscriptionIdentifierAvailable(value),
        _ => Property::SharedSubscriptionAvailable(value),
    }
}

fn u16_property(name: &str, value: u16) -> Property {
    match name {
        "server-keep-alive" => Property::ServerKeepAlive(value),
        "receive-maximum" => Property::ReceiveMaximum(value),
        "topic-alias-maximum" => Property::TopicAliasMaximum(value),
        _ => Property::TopicAlias(value),
    }
}

fn u32_property(name: &str, value: u32) -> Property {
    match name {
        "message-expiry-interval" => Property::MessageExpiryInterval(value),
        "session-expiry-interval" => Property::SessionExpiryInterval(value),
        "will-delay-interval" => Property::WillDelayInterval(value),
        _ => Property::MaximumPacketSize(value),
    }
}

fn text_property(name: &str, value: String) -> Property {
    match name {
        "content-type" => Property::ContentType(value),
        "response-topic" => Property::ResponseTopic(value),
        "assigned-client-identifier" => Property::AssignedClientIdentifier(value),
        "authentication-method" => Property::AuthenticationMethod(value),
        "response-information" => Property::ResponseInformation(value),
        "server-reference" => Property::ServerReference(value),
        _ => Property::ReasonString(value),
    }
}

fn binary_property(name: &str, value: Bytes) -> Property {
    match name {
        "correlation-data" => Property::CorrelationData(value),
        _ => Property::AuthenticationData(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(args: &[&str]) -> Result<CommandProperties, String> {
        let mut properties = CommandProperties::default();
        properties.add(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())?;
        Ok(properties)
    }

    #[test]
    fn values_land_on_their_packet() {
        let properties = add(&["publish", "content-type", "text/plain"]).expect("valid");
        assert_eq!(properties.publish.content_type(), Some("text/plain"));
        let properties = add(&["connect", "user-property", "k", "v"]).expect("valid");
        assert_eq!(
            properties.connect.user_properties().collect::<Vec<_>>(),
            [("k", "v")]
        );
        let properties = add(&["will", "will-delay-interval", "30"]).expect("valid");
        assert_eq!(properties.will.will_delay_interval(), Some(30));
    }

    #[test]
    fn errors_use_mosquittos_words() {
        let cases: &[(&[&str], &str)] = &[
            (
                &["publish", "content-type"],
                "Error: --property argument given but not enough arguments specified.",
            ),
            (
                &["bogus", "content-type", "x"],
                "Error: Invalid command given in --property argument.",
            ),
            (
                &["publish", "bogus", "x"],
                "Error: Invalid property name given in --property argument.",
            ),
            (
                &["publish", "session-expiry-interval", "3"],
                "Error: session-expiry-interval property not allowed for publish in --property argument.",
            ),
            (
                &["connect", "receive-maximum", "70000"],
                "Error: Property value (70000) out of range for property receive-maximum.",
            ),
            (
                &["connect", "request-problem-information", "-1"],
                "Error: Property value (-1) out of range for property request-problem-information.",
            ),
            (
                &["connect", "user-property", "k"],
                "Error: --property argument given but not enough arguments specified.",
            ),
            (
                &["puback", "reason-string", "x"],
                "Error: reason-string property not allowed for puback in --property argument.",
            ),
        ];
        for (args, message) in cases {
            assert_eq!(
                add(args).as_ref().err().map(String::as_str),
                Some(*message),
                "{args:?}"
            );
        }
    }

    #[test]
    fn numbers_are_read_like_atol() {
        assert_eq!(atol("42"), 42);
        assert_eq!(atol("  -7x"), -7);
        assert_eq!(atol("abc"), 0);
        let properties =
            add(&["publish", "message-expiry-interval", "abc"]).expect("0, as mosquitto");
        assert_eq!(properties.publish.message_expiry_interval(), Some(0));
    }
}
