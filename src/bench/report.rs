//! rbench's reports: a table for a person (coloured when allowed), JSON and CSV for
//! scripts, and a few sentences that read the numbers for a student.

use std::fmt::Write as _;

use colored::Colorize;
use serde_json::{Value, json};

use super::qos::{Percentiles, QosResult};

/// What was measured against what, for report headers.
#[derive(Debug, Clone)]
pub struct Context {
    /// `embedded` or the address measured.
    pub broker: String,
    pub address: String,
    pub payload: usize,
}

/// `12345.6` as `12,346`.
pub fn thousands(value: f64) -> String {
    let rounded = value.round().max(0.0) as u64;
    let digits = rounded.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn cpu(value: Option<f64>) -> String {
    value.map_or("-".to_string(), |v| format!("{v:.2}"))
}

/// The QoS comparison as a table.
pub fn qos_table(results: &[QosResult], context: &Context) -> String {
    let mut out = String::new();
    let target = if context.broker == "embedded" {
        format!("the embedded broker ({})", context.address)
    } else {
        context.address.clone()
    };
    let _ = writeln!(
        out,
        "{} QoS comparison against {target}, {}-byte payloads, 1 publisher → 1 subscriber",
        "rbench:".bold(),
        context.payload
    );
    let _ = writeln!(out);
    let header = format!(
        "{:<6} {:>12}  {:>26}  {:>11} {:>9}  {:>5} {:>4} {:>5}",
        "",
        "msgs/s",
        "latency µs p50/p90/p99/max",
        "packets/msg",
        "bytes/msg",
        "lost",
        "dup",
        "order"
    );
    let _ = writeln!(out, "{}", header.bold());
    for result in results {
        let Percentiles { p50, p90, p99, max } = result.latency;
        let latency = format!("{p50}/{p90}/{p99}/{max}");
        let lost = format!("{:>5}", result.lost);
        let lost = if result.lost > 0 {
            lost.red().to_string()
        } else {
            lost
        };
        let _ = writeln!(
            out,
            "{:<6} {:>12}  {:>26}  {:>11.1} {:>9.0}  {} {:>4} {:>5}{}",
            format!("QoS {}", result.qos as u8).cyan(),
            thousands(result.msgs_per_sec),
            latency,
            result.packets_per_msg(),
            result.bytes_per_msg(),
            lost,
            result.duplicated,
            result.out_of_order,
            if result.stopped_early {
                "  (stopped early)"
            } else {
                ""
            }
        );
    }
    let _ = writeln!(out);
    for result in results {
        let _ = writeln!(
            out,
            "QoS {}: publisher leg {:.1} packets / {:.0} bytes, subscriber leg {:.1} / {:.0} per message; CPU per message: rbench {} µs, broker {} µs",
            result.qos as u8,
            result.publisher.packets_per_msg,
            result.publisher.bytes_per_msg,
            result.subscriber.packets_per_msg,
            result.subscriber.bytes_per_msg,
            cpu(result.rbench_cpu_us_per_msg),
            cpu(result.broker_cpu_us_per_msg)
        );
    }
    if let Some(reading) = qos_reading(results) {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", wrap(&reading, 90));
    }
    out
}

/// Breaks `text` into lines of at most `width` characters, at spaces.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line_len = 0;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if line_len > 0 && line_len + 1 + len > width {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += len;
    }
    out
}

/// Two or three sentences reading the numbers, when all three levels were measured.
pub fn qos_reading(results: &[QosResult]) -> Option<String> {
    let level = |q: u8| results.iter().find(|r| r.qos as u8 == q && r.delivered > 0);
    let (q0, q1, q2) = (level(0)?, level(1)?, level(2)?);
    let mut text = format!(
        "QoS 1 sent {:.0} packets per message where QoS 0 sent {:.0}: the PUBACKs tell the publisher the broker has the message and the broker that the subscriber has it, so it arrives at least once (perhaps twice after a reconnect). \
QoS 2 sent {:.0}: PUBREC, PUBREL and PUBCOMP on each leg make delivery exactly once, and here it delivered {} msg/s against {} at QoS 0, with a median latency of {} µs against {} µs. \
Use QoS 0 for frequent readings where the next one replaces a lost one, QoS 1 when every message must arrive and a duplicate is harmless, and QoS 2 only when a duplicate would do harm.",
        q1.packets_per_msg(),
        q0.packets_per_msg(),
        q2.packets_per_msg(),
        thousands(q2.msgs_per_sec),
        thousands(q0.msgs_per_sec),
        q2.latency.p50,
        q0.latency.p50,
    );
    if q0.lost > 0 {
        let _ = write!(
            text,
            " QoS 0 lost {} messages here: nothing retries them.",
            q0.lost
        );
    }
    Some(text)
}

fn percentiles(p: Percentiles) -> Value {
    json!({ "p50": p.p50, "p90": p.p90, "p99": p.p99, "max": p.max })
}

/// The QoS comparison as one JSON document.
pub fn qos_json(results: &[QosResult], context: &Context) -> Value {
    let results: Vec<Value> = results
        .iter()
        .map(|r| {
            json!({
                "qos": r.qos as u8,
                "messages": r.messages,
                "delivered": r.delivered,
                "msgs_per_sec": r.msgs_per_sec,
                "latency_us": percentiles(r.latency),
                "ack_latency_us": percentiles(r.ack_latency),
                "packets_per_msg": r.packets_per_msg(),
                "bytes_per_msg": r.bytes_per_msg(),
                "publisher_leg": { "packets_per_msg": r.publisher.packets_per_msg, "bytes_per_msg": r.publisher.bytes_per_msg },
                "subscriber_leg": { "packets_per_msg": r.subscriber.packets_per_msg, "bytes_per_msg": r.subscriber.bytes_per_msg },
                "lost": r.lost,
                "duplicated": r.duplicated,
                "out_of_order": r.out_of_order,
                "rbench_cpu_us_per_msg": r.rbench_cpu_us_per_msg,
                "broker_cpu_us_per_msg": r.broker_cpu_us_per_msg,
                "stopped_early": r.stopped_early,
            })
        })
        .collect();
    json!({
        "mode": "qos",
        "broker": context.broker,
        "address": context.address,
        "payload_bytes": context.payload,
        "results": results,
    })
}

/// The QoS comparison as CSV, one row per level.
pub fn qos_csv(results: &[QosResult]) -> String {
    let mut out = String::from(
        "qos,messages,delivered,msgs_per_sec,latency_p50_us,latency_p90_us,latency_p99_us,latency_max_us,packets_per_msg,bytes_per_msg,publisher_packets_per_msg,publisher_bytes_per_msg,subscriber_packets_per_msg,subscriber_bytes_per_msg,lost,duplicated,out_of_order,rbench_cpu_us_per_msg,broker_cpu_us_per_msg\n",
    );
    for r in results {
        let optional = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.3}"));
        let _ = writeln!(
            out,
            "{},{},{},{:.1},{},{},{},{},{:.3},{:.1},{:.3},{:.1},{:.3},{:.1},{},{},{},{},{}",
            r.qos as u8,
            r.messages,
            r.delivered,
            r.msgs_per_sec,
            r.latency.p50,
            r.latency.p90,
            r.latency.p99,
            r.latency.max,
            r.packets_per_msg(),
            r.bytes_per_msg(),
            r.publisher.packets_per_msg,
            r.publisher.bytes_per_msg,
            r.subscriber.packets_per_msg,
            r.subscriber.bytes_per_msg,
            r.lost,
            r.duplicated,
            r.out_of_order,
            optional(r.rbench_cpu_us_per_msg),
            optional(r.broker_cpu_us_per_msg)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::qos::Leg;
    use crate::protocol::QoS;

    fn result(qos: QoS, packets: f64, rate: f64) -> QosResult {
        QosResult {
            qos,
            messages: 10,
            delivered: 10,
            msgs_per_sec: rate,
            latency: Percentiles {
                p50: 50,
                p90: 60,
                p99: 70,
                max: 80,
            },
            ack_latency: Percentiles::default(),
            publisher: Leg {
                packets_per_msg: packets / 2.0,
                bytes_per_msg: 84.0,
            },
            subscriber: Leg {
                packets_per_msg: packets / 2.0,
                bytes_per_msg: 84.0,
            },
            lost: 0,
            duplicated: 0,
            out_of_order: 0,
            rbench_cpu_us_per_msg: Some(0.5),
            broker_cpu_us_per_msg: None,
            stopped_early: false,
        }
    }

    #[test]
    fn wrapping_keeps_words_whole() {
        assert_eq!(wrap("aa bb cc dd", 5), "aa bb\ncc dd");
        assert!(
            wrap(&"word ".repeat(100), 90)
                .lines()
                .all(|l| l.len() <= 90)
        );
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(0.2), "0");
    }

    #[test]
    fn the_reading_quotes_the_measured_numbers() {
        let results = [
            result(QoS::AtMostOnce, 2.0, 100_000.0),
            result(QoS::AtLeastOnce, 4.0, 50_000.0),
            result(QoS::ExactlyOnce, 8.0, 25_000.0),
        ];
        let reading = qos_reading(&results).expect("three levels");
        assert!(
            reading.contains("QoS 1 sent 4 packets per message where QoS 0 sent 2"),
            "{reading}"
        );
        assert!(reading.contains("QoS 2 sent 8"));
        assert!(reading.contains("25,000 msg/s against 100,000"));
        assert!(qos_reading(&results[..2]).is_none());
    }

    #[test]
    fn json_has_the_documented_fields() {
        let context = Context {
            broker: "embedded".into(),
            address: "127.0.0.1:1".into(),
            payload: 64,
        };
        let doc = qos_json(&[result(QoS::AtLeastOnce, 4.0, 1.0)], &context);
        let first = &doc["results"][0];
        for field in [
            "qos",
            "messages",
            "msgs_per_sec",
            "packets_per_msg",
            "bytes_per_msg",
            "lost",
            "duplicated",
        ] {
            assert!(!first[field].is_null(), "{field}");
        }
        assert_eq!(first["latency_us"]["p99"], 70);
        assert_eq!(doc["broker"], "embedded");
        assert_eq!(
            qos_csv(&[result(QoS::AtMostOnce, 2.0, 1.0)])
                .lines()
                .count(),
            2
        );
    }
}
