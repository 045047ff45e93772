//! How rsub prints a message: the payload alone, `-v` (`topic payload`), a `-F`
//! format string with mosquitto_sub's specifiers, widths and escapes, `%j`/`%J`
//! JSON (compact or `--pretty`, cJSON's layout), or rsub's own `--json` lines.
//!
//! Where mosquitto 2.0.11 has a known bug this does the right thing instead:
//! `%j` keeps payloads with NUL bytes (escaped) and writes a payload that is not
//! UTF-8 as an array of byte values (as later mosquitto does), `tst` is RFC 3339
//! (`...22.777540+00:00`, not `...22.777540Z+0000`), `%J` keeps numbers as
//! written (`27.0` stays `27.0`), and `%A` in `%j` reads the topic alias.
//!
//! This module holds the `-F` format strings and the printer; `cjson.rs` the `%j`/
//! `%J` JSON object, `json_lines.rs` the `--json` lines and reading them back.

use std::time::SystemTime;

use chrono::{DateTime, Local};
use colored::Colorize;

use crate::protocol::Publish;

mod cjson;
mod json_lines;

use cjson::mosquitto_json;
use json_lines::json_line;
pub use json_lines::{JsonMessage, parse_json_line};

/// A message as it is printed.
pub struct Received<'a> {
    pub publish: &'a Publish,
    /// The packet id it arrived with (0 at QoS 0), mosquitto's `mid`.
    pub mid: u16,
    pub at: SystemTime,
}

/// The widest `-F` field rsub pads to.
const MAX_FIELD_WIDTH: usize = 65_535;

/// One piece of a `-F` format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(Vec<u8>),
    Field {
        spec: u8,
        left: bool,
        zero: bool,
        width: usize,
        precision: Option<usize>,
    },
    /// `@X`: strftime `%X` of the local time; `@N` nanoseconds.
    Time(u8),
}

/// A checked `-F` format string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatString(Vec<Token>);

const SPECIFIERS: &[u8] = b"%ACDEFIlmPpqRSrtjJUxX";

impl FormatString {
    /// Parses `-F`'s argument; errors are mosquitto's messages.
    pub fn parse(text: &str) -> Result<FormatString, String> {
        const INCOMPLETE: &str = "Error: Incomplete format specifier.";
        let bytes = text.as_bytes();
        let mut tokens = Vec::new();
        let mut literal = Vec::new();
        let mut i = 0;
        let flush = |literal: &mut Vec<u8>, tokens: &mut Vec<Token>| {
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(literal)));
            }
        };
        while i < bytes.len() {
            match bytes[i] {
                b'%' => {
                    let mut j = i + 1;
                    let mut left = false;
                    let mut zero = false;
                    if bytes.get(j) == Some(&b'-') {
                        left = true;
                        j += 1;
                    }
                    if bytes.get(j) == Some(&b'0') {
                        zero = true;
                        j += 1;
                    }
                    let mut width = 0usize;
                    while let Some(digit) = bytes.get(j).filter(|b| b.is_ascii_digit()) {
                        width = width
                            .saturating_mul(10)
                            .saturating_add(usize::from(digit - b'0'));
                        j += 1;
                    }
                    let mut precision = None;
                    if bytes.get(j) == Some(&b'.') {
                        j += 1;
                        let mut value = 0usize;
                        while let Some(digit) = bytes.get(j).filter(|b| b.is_ascii_digit()) {
                            value = value
                                .saturating_mul(10)
                                .saturating_add(usize::from(digit - b'0'));
                            j += 1;
                        }
                        precision = Some(value);
                    }
                    // A width is padding rsub writes out: one beyond any terminal
                    // line would only exhaust memory (mosquitto's int overflows).
                    if width > MAX_FIELD_WIDTH {
                        return Err(format!(
                            "Error: Field width {width} is too large (at most {MAX_FIELD_WIDTH})."
                        ));
                    }
                    let Some(&spec) = bytes.get(j) else {
                        return Err(INCOMPLETE.into());
                    };
                    if !SPECIFIERS.contains(&spec) {
                        let shown = text[j..].chars().next().unwrap_or('?');
                        return Err(format!("Error: Invalid format specifier '{shown}'."));
                    }
                    flush(&mut literal, &mut tokens);
                    if spec == b'%' {
                        literal.push(b'%');
                    } else {
                        tokens.push(Token::Field {
                            spec,
                            left,
                            zero,
                            width,
                            precision,
                        });
                    }
                    i = j + 1;
                }
                b'@' => {
                    let Some(&code) = bytes.get(i + 1) else {
                        return Err(INCOMPLETE.into());
                    };
                    if code == b'@' {
                        literal.push(b'@');
                    } else {
                        flush(&mut literal, &mut tokens);
                        tokens.push(Token::Time(code));
                    }
                    i += 2;
                }
                b'\\' => {
                    let Some(&code) = bytes.get(i + 1) else {
                        return Err("Error: Incomplete escape specifier.".into());
                    };
                    literal.push(match code {
                        b'\\' => b'\\',
                        b'0' => 0,
                        b'a' => 0x07,
                        b'e' => 0x1b,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'v' => 0x0b,
                        _ => {
                            let shown = text[i + 1..].chars().next().unwrap_or('?');
                            return Err(format!("Error: Invalid escape specifier '{shown}'."));
                        }
                    });
                    i += 2;
                }
                other => {
                    literal.push(other);
                    i += 1;
                }
            }
        }
        flush(&mut literal, &mut tokens);
        Ok(FormatString(tokens))
    }
}

/// What to print for each message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Style {
    /// The payload alone (nothing at all for an empty one).
    Payload,
    /// `-v`: `topic payload`, `topic (null)` when empty.
    Verbose,
    /// `-F`.
    Format(FormatString),
    /// `--json`: one compact JSON object a line, binary-safe.
    JsonLines,
}

/// Prints messages in one [`Style`].
#[derive(Debug, Clone)]
pub struct Printer {
    pub style: Style,
    /// End each message with a newline (`-N` turns it off).
    pub eol: bool,
    /// `--pretty` for `%j`/`%J`.
    pub pretty: bool,
    /// Colour the topic of `-v` lines.
    pub color: bool,
}

impl Printer {
    /// Appends the message to `out`; returns the error lines mosquitto would print
    /// on stderr (`%J` with a payload that is not JSON).
    pub fn render(&self, message: &Received<'_>, out: &mut Vec<u8>) -> Vec<String> {
        let publish = message.publish;
        let mut errors = Vec::new();
        match &self.style {
            Style::Payload => {
                if !publish.payload.is_empty() {
                    out.extend_from_slice(&publish.payload);
                    if self.eol {
                        out.push(b'\n');
                    }
                }
            }
            Style::Verbose => {
                let topic = publish.topic.as_str();
                let topic = if self.color {
                    topic.cyan().to_string()
                } else {
                    topic.to_string()
                };
                if !publish.payload.is_empty() {
                    out.extend_from_slice(topic.as_bytes());
                    out.push(b' ');
                    out.extend_from_slice(&publish.payload);
                    if self.eol {
                        out.push(b'\n');
                    }
                } else if self.eol {
                    out.extend_from_slice(topic.as_bytes());
                    out.extend_from_slice(b" (null)\n");
                }
            }
            Style::Format(format) => {
                for token in &format.0 {
                    self.render_token(token, message, out, &mut errors);
                }
                if self.eol {
                    out.push(b'\n');
                }
            }
            Style::JsonLines => {
                json_line(message, out);
                out.push(b'\n');
            }
        }
        errors
    }

    fn render_token(
        &self,
        token: &Token,
        message: &Received<'_>,
        out: &mut Vec<u8>,
        errors: &mut Vec<String>,
    ) {
        let publish = message.publish;
        let properties = &publish.properties;
        match *token {
            Token::Literal(ref bytes) => out.extend_from_slice(bytes),
            Token::Time(code) => {
                let local: DateTime<Local> = message.at.into();
                if code == b'N' {
                    out.extend_from_slice(
                        format!("{:09}", local.timestamp_subsec_nanos()).as_bytes(),
                    );
                } else {
                    out.extend_from_slice(strftime(&local, code).as_bytes());
                }
            }
            Token::Field {
                spec,
                left,
                zero,
                width,
                precision,
            } => {
                let int = |out: &mut Vec<u8>, value: Option<u64>| match value {
                    Some(value) => {
                        out.extend_from_slice(pad_int(value, left, zero, width).as_bytes())
                    }
                    None => out.extend(std::iter::repeat_n(if zero { b'0' } else { b' ' }, width)),
                };
                let text = |out: &mut Vec<u8>, value: Option<&str>, blank: bool| match value {
                    Some(value) => {
                        out.extend_from_slice(&pad_str(value.as_bytes(), left, width, precision))
                    }
                    None if blank => out.extend(std::iter::repeat_n(b' ', width)),
                    None => {}
                };
                match spec {
                    b'A' => int(out, properties.topic_alias().map(u64::from)),
                    b'C' => text(out, properties.content_type(), true),
                    b'D' => {
                        if let Some(data) = properties.correlation_data() {
                            out.extend_from_slice(data);
                        }
                    }
                    b'E' => int(out, properties.message_expiry_interval().map(u64::from)),
                    b'F' => int(out, properties.payload_format_indicator().map(u64::from)),
                    b'I' => {
                        let local: DateTime<Local> = message.at.into();
                        let stamp = local.format("%FT%T%z").to_string();
                        text(out, Some(&stamp), true);
                    }
                    b'j' | b'J' => {
                        if let Err(error) = mosquitto_json(message, spec == b'j', self.pretty, out)
                        {
                            errors.push(error);
                        }
                    }
                    b'l' => int(out, Some(publish.payload.len() as u64)),
                    b'm' => int(out, Some(u64::from(message.mid))),
                    b'P' => {
                        let pairs: Vec<String> = properties
                            .user_properties()
                            .map(|(k, v)| format!("{k}:{v}"))
                            .collect();
                        out.extend_from_slice(pairs.join(" ").as_bytes());
                    }
                    b'p' => write_payload(&publish.payload, Hex::No, left, zero, width, out),
                    b'q' => out.push(b'0' + publish.qos as u8),
                    b'R' => text(out, properties.response_topic(), false),
                    b'r' => out.push(if publish.retain { b'1' } else { b'0' }),
                    b'S' => int(
                        out,
                        properties.subscription_identifiers().next().map(u64::from),
                    ),
                    b't' => text(out, Some(publish.topic.as_str()), true),
                    b'U' => {
                        let since = message
                            .at
                            .duration_since(SystemTime::UNIX_EPOCH)
                            .unwrap_or_default();
                        out.extend_from_slice(
                            format!("{}.{:09}", since.as_secs(), since.subsec_nanos()).as_bytes(),
                        );
                    }
                    b'x' => write_payload(&publish.payload, Hex::Lower, left, zero, width, out),
                    b'X' => write_payload(&publish.payload, Hex::Upper, left, zero, width, out),
                    _ => {}
                }
            }
        }
    }
}

/// strftime `%X` for one character X; unknown codes print nothing, as strftime.
fn strftime(time: &DateTime<Local>, code: u8) -> String {
    let spec = format!("%{}", code as char);
    let mut rendered = String::new();
    if std::fmt::Write::write_fmt(&mut rendered, format_args!("{}", time.format(&spec))).is_err() {
        return String::new();
    }
    rendered
}

/// printf `%d` with `-`, `0` and a width.
fn pad_int(value: u64, left: bool, zero: bool, width: usize) -> String {
    if left {
        format!("{value:<width$}")
    } else if zero {
        format!("{value:0>width$}")
    } else {
        format!("{value:>width$}")
    }
}

/// printf `%s` on bytes: precision cuts, width pads with spaces.
fn pad_str(value: &[u8], left: bool, width: usize, precision: Option<usize>) -> Vec<u8> {
    let cut = &value[..precision.map_or(value.len(), |p| p.min(value.len()))];
    let padding = width.saturating_sub(cut.len());
    let mut out = Vec::with_capacity(cut.len() + padding);
    if !left {
        out.extend(std::iter::repeat_n(b' ', padding));
    }
    out.extend_from_slice(cut);
    if left {
        out.extend(std::iter::repeat_n(b' ', padding));
    }
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Hex {
    No,
    Lower,
    Upper,
}

/// mosquitto_sub's `write_payload`: a width is also a maximum (for hex, half of
/// it in bytes), padding with the pad character.
fn write_payload(
    payload: &[u8],
    hex: Hex,
    left: bool,
    zero: bool,
    width: usize,
    out: &mut Vec<u8>,
) {
    let pad = if zero { b'0' } else { b' ' };
    let mut length = payload.len();
    let padding;
    if width > 0 {
        length = length.min(width);
        if hex == Hex::No {
            padding = width - length;
        } else {
            length /= 2;
            padding = width - length * 2;
        }
    } else {
        padding = 0;
    }
    if !left {
        out.extend(std::iter::repeat_n(pad, padding));
    }
    let shown = &payload[..length];
    match hex {
        Hex::No => out.extend_from_slice(shown),
        Hex::Lower => {
            for byte in shown {
                out.extend_from_slice(format!("{byte:02x}").as_bytes());
            }
        }
        Hex::Upper => {
            for byte in shown {
                out.extend_from_slice(format!("{byte:02X}").as_bytes());
            }
        }
    }
    if left {
        out.extend(std::iter::repeat_n(b' ', padding));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Property, QoS, TopicName};
    use std::time::Duration;

    fn message(topic: &str, payload: &[u8], properties: Vec<Property>) -> Publish {
        Publish {
            qos: QoS::AtLeastOnce,
            retain: true,
            properties: properties.into_iter().collect(),
            ..Publish::new(TopicName::new(topic).expect("topic"), payload.to_vec())
        }
    }

    fn render(style: Style, eol: bool, publish: &Publish) -> (String, Vec<String>) {
        let printer = Printer {
            style,
            eol,
            pretty: false,
            color: false,
        };
        let received = Received {
            publish,
            mid: 7,
            at: SystemTime::UNIX_EPOCH + Duration::new(1_795_322_422, 997_536_103),
        };
        let mut out = Vec::new();
        let errors = printer.render(&received, &mut out);
        (String::from_utf8_lossy(&out).into_owned(), errors)
    }

    fn format(text: &str, publish: &Publish) -> String {
        render(
            Style::Format(FormatString::parse(text).expect("valid")),
            false,
            publish,
        )
        .0
    }

    #[test]
    fn default_and_verbose_follow_mosquitto_sub() {
        let full = message("e/1", b"first", vec![]);
        let empty = message("e/2", b"", vec![]);
        assert_eq!(render(Style::Payload, true, &full).0, "first\n");
        assert_eq!(render(Style::Payload, true, &empty).0, "");
        assert_eq!(render(Style::Verbose, true, &full).0, "e/1 first\n");
        assert_eq!(render(Style::Verbose, true, &empty).0, "e/2 (null)\n");
        assert_eq!(render(Style::Verbose, false, &full).0, "e/1 first");
        assert_eq!(render(Style::Verbose, false, &empty).0, "");
    }

    #[test]
    fn format_specifiers_widths_and_escapes() {
        let json = message("demo/json", br#"{"temperature":27.0}"#, vec![]);
        assert_eq!(
            format("%t|%r|%q|%m|%l|%x", &json),
            format!(
                "demo/json|1|1|7|20|{}",
                "7b2274656d7065726174757265223a32372e307d"
            )
        );
        assert_eq!(
            format("[%-12t] [%10.4p] [%08l]", &json),
            "[demo/json   ] [{\"temperat] [00000020]"
        );
        assert_eq!(format("%%\\t%U", &json), "%\t1795322422.997536103");
        assert_eq!(
            format("%5.2t|%-5q|%3X", &message("abc", b"\x01\xff", vec![])),
            "   ab|1| 01"
        );
        assert_eq!(format("@@%t\\0", &json), "@demo/json\0");
    }

    /// Found by the `format_string` fuzz target: `%111111111111111111E` asked for
    /// an allocation of that many padding bytes and aborted rsub.
    #[test]
    fn fuzz_regression_a_huge_field_width_is_refused() {
        let error = FormatString::parse("%111111111111111111Ebbb").expect_err("too wide");
        assert!(error.contains("too large"), "{error}");
        assert!(FormatString::parse("%65535p").is_ok());
        assert!(FormatString::parse("%65536p").is_err());
    }

    #[test]
    fn bad_formats_are_refused_with_mosquittos_words() {
        assert_eq!(
            FormatString::parse("%e"),
            Err("Error: Invalid format specifier 'e'.".into())
        );
        assert_eq!(
            FormatString::parse("abc%"),
            Err("Error: Incomplete format specifier.".into())
        );
        assert_eq!(
            FormatString::parse("abc%-0"),
            Err("Error: Incomplete format specifier.".into())
        );
        assert_eq!(
            FormatString::parse("\\q"),
            Err("Error: Invalid escape specifier 'q'.".into())
        );
        assert_eq!(
            FormatString::parse("x\\"),
            Err("Error: Incomplete escape specifier.".into())
        );
        assert_eq!(
            FormatString::parse("@"),
            Err("Error: Incomplete format specifier.".into())
        );
    }

    #[test]
    fn v5_properties() {
        let publish = message(
            "demo/json",
            b"{}",
            vec![
                Property::ContentType("application/json".into()),
                Property::UserProperty("unit".into(), "celsius".into()),
                Property::UserProperty("site".into(), "lab1".into()),
                Property::ResponseTopic("demo/reply".into()),
                Property::CorrelationData(bytes::Bytes::from_static(b"req-42")),
                Property::PayloadFormatIndicator(1),
                Property::MessageExpiryInterval(3599),
            ],
        );
        assert_eq!(
            format("%C|%E|%F|%P|%R|%D|%A|%S", &publish),
            "application/json|3599|1|unit:celsius site:lab1|demo/reply|req-42||"
        );
        assert_eq!(
            format("%C|%E|%F|%P|%R|%D|%A|%S", &message("t", b"", vec![])),
            "|||||||"
        );
    }

    #[test]
    fn json_keeps_mosquittos_field_order_and_binary_payloads() {
        let publish = message(
            "j/a",
            b"q1 \"msg\"\n\0",
            vec![Property::UserProperty("unit".into(), "celsius".into())],
        );
        let line = format("%j", &publish);
        let tail = line.split_once("\",\"topic\"").expect("tst first").1;
        assert_eq!(
            tail,
            r#":"j/a","qos":1,"retain":1,"payloadlen":10,"mid":7,"properties":{"user-properties":{"unit":"celsius"}},"payload":"q1 \"msg\"\n\u0000"}"#
        );
        let binary = format("%j", &message("b", b"\x00\x01\xfeA", vec![]));
        assert!(binary.ends_with(r#""payload":[0,1,254,65]}"#), "{binary}");
        let empty = format("%j", &message("e", b"", vec![]));
        assert!(
            empty.ends_with(r#""payloadlen":0,"mid":7,"payload":null}"#),
            "{empty}"
        );
    }

    #[test]
    fn json_payloads_keep_their_numbers_and_bad_ones_are_reported() {
        let good = format("%J", &message("d", br#"{"t": 27.0, "h": [1, 2]}"#, vec![]));
        assert!(
            good.ends_with(r#""payload":{"t":27.0,"h":[1,2]}}"#),
            "{good}"
        );
        let (out, errors) = render(
            Style::Format(FormatString::parse("%J").expect("valid")),
            true,
            &message("demo/text", b"hello", vec![]),
        );
        assert_eq!(out, "\n");
        assert_eq!(
            errors,
            ["Error: Message payload is not valid JSON on topic demo/text."]
        );
    }

    #[test]
    fn pretty_json_uses_cjson_layout() {
        let printer = Printer {
            style: Style::Format(FormatString::parse("%J").expect("valid")),
            eol: false,
            pretty: true,
            color: false,
        };
        let publish = message("p", br#"{"a":[1,2],"b":{"c":null}}"#, vec![]);
        let mut out = Vec::new();
        printer.render(
            &Received {
                publish: &publish,
                mid: 1,
                at: SystemTime::now(),
            },
            &mut out,
        );
        let text = String::from_utf8(out).expect("utf-8");
        let body = text.split_once("\"topic\"").expect("topic").1;
        assert_eq!(
            body,
            ":\t\"p\",\n\t\"qos\":\t1,\n\t\"retain\":\t1,\n\t\"payloadlen\":\t26,\n\t\"mid\":\t1,\n\t\"payload\":\t{\n\t\t\"a\":\t[1, 2],\n\t\t\"b\":\t{\n\t\t\t\"c\":\tnull\n\t\t}\n\t}\n}"
        );
    }

    #[test]
    fn json_lines_read_back_what_rsub_writes() {
        let publish = message(
            "round/trip",
            b"\xff\x00bin",
            vec![
                Property::ContentType("application/octet-stream".into()),
                Property::UserProperty("k".into(), "v".into()),
            ],
        );
        let (line, _) = render(Style::JsonLines, false, &publish);
        let parsed = parse_json_line(line.as_bytes()).expect("valid line");
        assert_eq!(parsed.topic, "round/trip");
        assert_eq!(parsed.payload, b"\xff\x00bin");
        assert_eq!((parsed.qos, parsed.retain), (Some(1), Some(true)));
        assert_eq!(
            parsed.properties.content_type(),
            Some("application/octet-stream")
        );
        assert_eq!(
            parsed.properties.user_properties().collect::<Vec<_>>(),
            [("k", "v")]
        );
        assert!(parse_json_line(b"{\"payload\":\"x\"}").is_err());
        assert!(parse_json_line(b"not json").is_err());
    }

    #[test]
    fn json_lines_are_binary_safe() {
        let (text, _) = render(Style::JsonLines, true, &message("bin", b"\xff\x00", vec![]));
        assert!(
            text.ends_with("\"qos\":1,\"retain\":true,\"payload_base64\":\"/wA=\"}\n"),
            "{text}"
        );
        let (text, _) = render(Style::JsonLines, true, &message("txt", b"hi", vec![]));
        assert!(text.starts_with("{\"time\":\"2026-11-22T"), "{text}");
        assert!(text.ends_with("\"payload\":\"hi\"}\n"), "{text}");
    }
}
