//! rsub's own `--json` lines, one compact object a message and binary-safe, and
//! reading them back for rpub `--json`.

use base64::Engine;
use chrono::{DateTime, Utc};

use super::Received;
use super::cjson::{Json, properties_json};
use crate::protocol::Property;

/// rsub `--json`: `{"time":...,"topic":...,"qos":1,"retain":false,"payload":...}`
/// with `payload_base64` instead of `payload` when it is not UTF-8, and
/// `properties` (mosquitto's names) when there are any.
pub(super) fn json_line(message: &Received<'_>, out: &mut Vec<u8>) {
    let publish = message.publish;
    let time: DateTime<Utc> = message.at.into();
    let mut fields: Vec<(String, Json)> = vec![
        (
            "time".into(),
            Json::Text(
                time.format("%Y-%m-%dT%H:%M:%S%.6fZ")
                    .to_string()
                    .into_bytes(),
            ),
        ),
        (
            "topic".into(),
            Json::Text(publish.topic.as_str().as_bytes().to_vec()),
        ),
        ("qos".into(), Json::Number((publish.qos as u8).to_string())),
        ("retain".into(), Json::Number(publish.retain.to_string())),
    ];
    if let Some(properties) = properties_json(publish) {
        fields.push(("properties".into(), properties));
    }
    match std::str::from_utf8(&publish.payload) {
        Ok(_) => fields.push(("payload".into(), Json::Text(publish.payload.to_vec()))),
        Err(_) => fields.push((
            "payload_base64".into(),
            Json::Text(
                base64::engine::general_purpose::STANDARD
                    .encode(&publish.payload)
                    .into_bytes(),
            ),
        )),
    }
    Json::Object(fields).write(false, 0, out);
}

/// A message read from an rsub `--json` line, for rpub `--json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonMessage {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: Option<u8>,
    pub retain: Option<bool>,
    /// The properties a client may publish with, from `properties`.
    pub properties: crate::protocol::Properties,
}

/// Reads one `--json` line (as rsub writes them); `time` and properties only a
/// broker may send are ignored.
pub fn parse_json_line(line: &[u8]) -> Result<JsonMessage, String> {
    use serde_json::Value;
    let value: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON: {e}"))?;
    let object = value.as_object().ok_or("not a JSON object")?;
    let topic = object
        .get("topic")
        .and_then(Value::as_str)
        .ok_or("no \"topic\" string")?
        .to_string();
    let payload = match (object.get("payload"), object.get("payload_base64")) {
        (Some(Value::String(text)), _) => text.as_bytes().to_vec(),
        (Some(Value::Null), _) | (None, None) => Vec::new(),
        (_, Some(Value::String(encoded))) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| format!("payload_base64: {e}"))?,
        _ => return Err("\"payload\" must be a string".into()),
    };
    let qos = match object.get("qos") {
        None => None,
        Some(value) => Some(
            value
                .as_u64()
                .filter(|q| *q <= 2)
                .ok_or("\"qos\" must be 0, 1 or 2")? as u8,
        ),
    };
    let retain = match object.get("retain") {
        None => None,
        Some(Value::Bool(flag)) => Some(*flag),
        Some(Value::Number(n)) => Some(n.as_u64() == Some(1)),
        Some(_) => return Err("\"retain\" must be true or false".into()),
    };
    let mut properties = crate::protocol::Properties::new();
    if let Some(Value::Object(map)) = object.get("properties") {
        for (name, value) in map {
            let text = || value.as_str().map(str::to_string);
            let number = || value.as_u64();
            let property = match name.as_str() {
                "content-type" => text().map(Property::ContentType),
                "response-topic" => text().map(Property::ResponseTopic),
                "correlation-data" => {
                    text().map(|t| Property::CorrelationData(bytes::Bytes::from(t)))
                }
                "payload-format-indicator" => number()
                    .and_then(|n| u8::try_from(n).ok())
                    .map(Property::PayloadFormatIndicator),
                "message-expiry-interval" => number()
                    .and_then(|n| u32::try_from(n).ok())
                    .map(Property::MessageExpiryInterval),
                "user-properties" => {
                    if let Value::Object(pairs) = value {
                        for (key, value) in pairs {
                            if let Some(value) = value.as_str() {
                                properties
                                    .push(Property::UserProperty(key.clone(), value.to_string()));
                            }
                        }
                    }
                    None
                }
                _ => None,
            };
            if let Some(property) = property {
                properties.push(property);
            }
        }
    }
    Ok(JsonMessage {
        topic,
        payload,
        qos,
        retain,
        properties,
    })
}
