//! `%j` and `%J`: mosquitto_sub's JSON object for a message, in cJSON's field order
//! and layout (compact or `--pretty`), with the fixes listed in the parent module.

use chrono::{DateTime, Local};

use super::Received;
use crate::protocol::{Property, Publish};

/// A JSON value built in mosquitto's field order; numbers are kept as text.
pub(super) enum Json {
    Null,
    Number(String),
    Text(Vec<u8>),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn from_value(value: serde_json::Value) -> Json {
        match value {
            serde_json::Value::Null => Json::Null,
            serde_json::Value::Bool(b) => Json::Number(b.to_string()),
            serde_json::Value::Number(n) => Json::Number(n.to_string()),
            serde_json::Value::String(s) => Json::Text(s.into_bytes()),
            serde_json::Value::Array(items) => {
                Json::Array(items.into_iter().map(Json::from_value).collect())
            }
            serde_json::Value::Object(map) => Json::Object(
                map.into_iter()
                    .map(|(k, v)| (k, Json::from_value(v)))
                    .collect(),
            ),
        }
    }

    /// cJSON's output: compact, or `cJSON_Print`'s tab-indented layout.
    pub(super) fn write(&self, pretty: bool, depth: usize, out: &mut Vec<u8>) {
        match self {
            Json::Null => out.extend_from_slice(b"null"),
            Json::Number(text) => out.extend_from_slice(text.as_bytes()),
            Json::Text(bytes) => json_string(bytes, out),
            Json::Array(items) => {
                out.push(b'[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.extend_from_slice(if pretty { b", " } else { b"," });
                    }
                    item.write(pretty, depth, out);
                }
                out.push(b']');
            }
            Json::Object(fields) => {
                out.push(b'{');
                if pretty {
                    out.push(b'\n');
                }
                for (index, (key, value)) in fields.iter().enumerate() {
                    if pretty {
                        out.extend(std::iter::repeat_n(b'\t', depth + 1));
                    }
                    json_string(key.as_bytes(), out);
                    out.push(b':');
                    if pretty {
                        out.push(b'\t');
                    }
                    value.write(pretty, depth + 1, out);
                    if index + 1 < fields.len() {
                        out.push(b',');
                    }
                    if pretty {
                        out.push(b'\n');
                    }
                }
                if pretty {
                    out.extend(std::iter::repeat_n(b'\t', depth));
                }
                out.push(b'}');
            }
        }
    }
}

/// A JSON string with cJSON's escapes; other bytes are written as they are.
fn json_string(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &byte in bytes {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => out.extend_from_slice(format!("\\u{byte:04x}").as_bytes()),
            _ => out.push(byte),
        }
    }
    out.push(b'"');
}

/// A payload as a JSON value: a string when it is UTF-8, else its byte values.
pub(super) fn payload_json(payload: &[u8]) -> Json {
    if payload.is_empty() {
        Json::Null
    } else if std::str::from_utf8(payload).is_ok() {
        Json::Text(payload.to_vec())
    } else {
        Json::Array(
            payload
                .iter()
                .map(|b| Json::Number(b.to_string()))
                .collect(),
        )
    }
}

/// The `properties` object of `%j`, in the order received; user properties are
/// gathered into one `user-properties` object where the first one stood.
pub(super) fn properties_json(publish: &Publish) -> Option<Json> {
    let mut fields: Vec<(String, Json)> = Vec::new();
    let mut user: Option<usize> = None;
    for property in &publish.properties {
        let value = match property {
            Property::PayloadFormatIndicator(v) => Json::Number(v.to_string()),
            Property::MessageExpiryInterval(v) => Json::Number(v.to_string()),
            Property::ContentType(s) | Property::ResponseTopic(s) => {
                Json::Text(s.clone().into_bytes())
            }
            Property::CorrelationData(b) => Json::Text(b.to_vec()),
            Property::SubscriptionIdentifier(v) => Json::Number(v.to_string()),
            Property::TopicAlias(v) => Json::Number(v.to_string()),
            Property::UserProperty(k, v) => {
                let slot = *user.get_or_insert_with(|| {
                    fields.push(("user-properties".into(), Json::Object(Vec::new())));
                    fields.len() - 1
                });
                if let Json::Object(pairs) = &mut fields[slot].1 {
                    pairs.push((k.clone(), Json::Text(v.clone().into_bytes())));
                }
                continue;
            }
            _ => continue,
        };
        fields.push((property.name().to_string(), value));
    }
    (!publish.properties.is_empty()).then_some(Json::Object(fields))
}

/// `%j` (`escaped`) or `%J`: mosquitto_sub's JSON object for a message.
pub(super) fn mosquitto_json(
    message: &Received<'_>,
    escaped: bool,
    pretty: bool,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let publish = message.publish;
    let local: DateTime<Local> = message.at.into();
    let mut fields: Vec<(String, Json)> = vec![
        (
            "tst".into(),
            Json::Text(
                local
                    .format("%Y-%m-%dT%H:%M:%S%.6f%:z")
                    .to_string()
                    .into_bytes(),
            ),
        ),
        (
            "topic".into(),
            Json::Text(publish.topic.as_str().as_bytes().to_vec()),
        ),
        ("qos".into(), Json::Number((publish.qos as u8).to_string())),
        (
            "retain".into(),
            Json::Number(u8::from(publish.retain).to_string()),
        ),
        (
            "payloadlen".into(),
            Json::Number(publish.payload.len().to_string()),
        ),
    ];
    if publish.qos as u8 > 0 {
        fields.push(("mid".into(), Json::Number(message.mid.to_string())));
    }
    if let Some(properties) = properties_json(publish) {
        fields.push(("properties".into(), properties));
    }
    let payload = if escaped {
        payload_json(&publish.payload)
    } else if publish.payload.is_empty() {
        Json::Null
    } else {
        match serde_json::from_slice::<serde_json::Value>(&publish.payload) {
            Ok(value) => Json::from_value(value),
            Err(_) => {
                return Err(format!(
                    "Error: Message payload is not valid JSON on topic {}.",
                    publish.topic.as_str()
                ));
            }
        }
    };
    fields.push(("payload".into(), payload));
    Json::Object(fields).write(pretty, 0, out);
    Ok(())
}
