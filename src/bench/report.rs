//! rbench's reports for every mode (the QoS comparison, `conn`, and the `pub`,
//! `sub` and `pubsub` loads): a table for a person (coloured when allowed), JSON
//! and CSV for scripts, and a few sentences that read the numbers for a student.

use std::fmt::Write as _;

use colored::Colorize;
use serde_json::{Value, json};

use super::conn::ConnResult;
use super::load::{LoadResult, Plan};
use super::qos::QosResult;
use super::stats::Percentiles;
use crate::protocol::QoS;

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
    text.push_str(
        " Each level's packets, one message at a time, are in docs/learn-mqtt.md, section 5 (QoS 0, 1 and 2), of the mqttkit sources.",
    );
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

/// What `rbench conn` measured, for its report.
#[derive(Clone, Copy)]
pub struct ConnReport<'a> {
    pub result: &'a ConnResult,
    /// Embedded broker heap per connection.
    pub heap_per_connection: Option<f64>,
    /// Broker RSS per connection (`--broker-pid`).
    pub rss_per_connection: Option<f64>,
}

/// The table of `rbench conn`.
pub fn conn_table(report: &ConnReport<'_>, context: &Context) -> String {
    let ConnReport {
        result,
        heap_per_connection,
        rss_per_connection,
    } = *report;
    let latency = Percentiles::of(&result.latency);
    let mut text = format!(
        "rbench: {} connections to {}: {} connected in {:.2} s ({} per second){}\n",
        thousands(result.attempted as f64),
        context.address,
        thousands(result.connected as f64),
        result.elapsed.as_secs_f64(),
        thousands(result.connects_per_second()),
        if result.stopped_early {
            " (stopped early)"
        } else {
            ""
        }
    );
    text += &format!(
        "connect latency µs p50/p90/p99/max: {}/{}/{}/{}\n",
        latency.p50, latency.p90, latency.p99, latency.max
    );
    if result.failures.is_empty() {
        text += "failures: none\n";
    } else {
        for (reason, count) in &result.failures {
            text += &format!("failures: {count} {reason}\n");
        }
    }
    if let Some(bytes) = heap_per_connection {
        text += &format!(
            "embedded broker heap per connection: {} bytes\n",
            thousands(bytes)
        );
    }
    if let Some(bytes) = rss_per_connection {
        text += &format!("broker RSS per connection: {} bytes\n", thousands(bytes));
    }
    text
}

/// The JSON of `rbench conn`.
pub fn conn_json(report: &ConnReport<'_>, context: &Context) -> Value {
    let ConnReport {
        result,
        heap_per_connection,
        rss_per_connection,
    } = *report;
    let latency = Percentiles::of(&result.latency);
    json!({
        "mode": "conn",
        "broker": context.broker,
        "address": context.address,
        "attempted": result.attempted,
        "connected": result.connected,
        "failures": result.failures,
        "elapsed_s": result.elapsed.as_secs_f64(),
        "connects_per_sec": result.connects_per_second(),
        "connect_latency_us": { "p50": latency.p50, "p90": latency.p90, "p99": latency.p99, "max": latency.max },
        "broker_heap_per_connection_bytes": heap_per_connection,
        "broker_rss_per_connection_bytes": rss_per_connection,
        "stopped_early": result.stopped_early,
    })
}

/// The CSV (header and one row) of `rbench conn`.
pub fn conn_csv(report: &ConnReport<'_>) -> String {
    let ConnReport {
        result,
        heap_per_connection,
        rss_per_connection,
    } = *report;
    let latency = Percentiles::of(&result.latency);
    let failed: u64 = result.failures.values().sum();
    format!(
        "attempted,connected,failed,connects_per_sec,latency_p50_us,latency_p90_us,latency_p99_us,latency_max_us,broker_heap_per_connection_bytes,broker_rss_per_connection_bytes\n{},{},{},{:.1},{},{},{},{},{},{}\n",
        result.attempted,
        result.connected,
        failed,
        result.connects_per_second(),
        latency.p50,
        latency.p90,
        latency.p99,
        latency.max,
        heap_per_connection.map_or(String::new(), |b| format!("{b:.0}")),
        rss_per_connection.map_or(String::new(), |b| format!("{b:.0}")),
    )
}

/// What a `pub`, `sub` or `pubsub` run measured, for its report.
#[derive(Clone, Copy)]
pub struct LoadReport<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub plan: &'a Plan,
    pub result: &'a LoadResult,
    /// rbench's own CPU time per message, µs.
    pub rbench_cpu: f64,
    /// The broker's CPU time per message, µs, when it can be measured.
    pub broker_cpu: Option<f64>,
}

/// Packets and bytes on both legs per delivered message.
fn wire(result: &LoadResult) -> (f64, f64) {
    let delivered = result.delivered.max(1) as f64;
    (
        (result.publisher_packets + result.subscriber_packets) as f64 / delivered,
        (result.publisher_bytes + result.subscriber_bytes) as f64 / delivered,
    )
}

/// The table of a `pub`, `sub` or `pubsub` run.
pub fn load_table(report: &LoadReport<'_>, context: &Context) -> String {
    let LoadReport {
        name,
        description,
        plan,
        result,
        rbench_cpu,
        broker_cpu,
    } = *report;
    let mut text = format!(
        "rbench {name}: {description} against {}, QoS {}, {}-byte payloads{}\n",
        context.address,
        plan.qos as u8,
        plan.payload,
        if result.stopped_early {
            " (stopped early)"
        } else {
            ""
        }
    );
    if plan.publishers > 0 {
        text += &format!(
            "published   {} ({} msg/s)\n",
            thousands(result.published as f64),
            thousands(result.publishes_per_second())
        );
    }
    if plan.subscribers > 0 {
        text += &format!(
            "delivered   {} ({} msg/s); lost {}, duplicated {}, out of order {}{}\n",
            thousands(result.delivered as f64),
            thousands(result.deliveries_per_second()),
            result.lost(),
            result.duplicates,
            result.out_of_order,
            if result.foreign > 0 {
                format!(", {} without rbench stamp", result.foreign)
            } else {
                String::new()
            }
        );
        let l = Percentiles::of(&result.latency);
        text += &format!(
            "latency µs  p50 {} p90 {} p99 {} max {}\n",
            l.p50, l.p90, l.p99, l.max
        );
        if plan.publishers > 0 {
            let (packets, bytes) = wire(result);
            text += &format!(
                "wire        {packets:.1} packets, {bytes:.0} bytes per delivered message\n"
            );
        }
    }
    if plan.publishers > 0 && plan.qos != QoS::AtMostOnce {
        let a = Percentiles::of(&result.ack_latency);
        text += &format!(
            "ack µs      p50 {} p90 {} p99 {} max {}\n",
            a.p50, a.p90, a.p99, a.max
        );
    }
    if result.disconnects > 0 {
        text += &format!(
            "subscribers disconnected by the broker: {}\n",
            result.disconnects
        );
    }
    text += &format!(
        "CPU         rbench {rbench_cpu:.2} µs, broker {} µs per message\n",
        broker_cpu.map_or("-".to_string(), |c| format!("{c:.2}"))
    );
    text
}

/// The JSON of a `pub`, `sub` or `pubsub` run.
pub fn load_json(report: &LoadReport<'_>, context: &Context) -> Value {
    let LoadReport {
        name,
        description,
        plan,
        result,
        rbench_cpu,
        broker_cpu,
    } = *report;
    let l = Percentiles::of(&result.latency);
    let a = Percentiles::of(&result.ack_latency);
    let (packets, bytes) = wire(result);
    json!({
        "mode": name,
        "description": description,
        "broker": context.broker,
        "address": context.address,
        "publishers": plan.publishers,
        "subscribers": plan.subscribers,
        "qos": plan.qos as u8,
        "payload_bytes": plan.payload,
        "published": result.published,
        "expected": result.expected,
        "delivered": result.delivered,
        "lost": result.lost(),
        "duplicated": result.duplicates,
        "out_of_order": result.out_of_order,
        "foreign": result.foreign,
        "publish_msgs_per_sec": result.publishes_per_second(),
        "msgs_per_sec": result.deliveries_per_second(),
        "latency_us": { "p50": l.p50, "p90": l.p90, "p99": l.p99, "max": l.max },
        "ack_latency_us": { "p50": a.p50, "p90": a.p90, "p99": a.p99, "max": a.max },
        "packets_per_msg": packets,
        "bytes_per_msg": bytes,
        "disconnects": result.disconnects,
        "rbench_cpu_us_per_msg": rbench_cpu,
        "broker_cpu_us_per_msg": broker_cpu,
        "stopped_early": result.stopped_early,
    })
}

/// The CSV (header and one row) of a `pub`, `sub` or `pubsub` run.
pub fn load_csv(report: &LoadReport<'_>) -> String {
    let LoadReport {
        name,
        plan,
        result,
        rbench_cpu,
        broker_cpu,
        ..
    } = *report;
    let l = Percentiles::of(&result.latency);
    let (packets, bytes) = wire(result);
    format!(
        "mode,publishers,subscribers,qos,payload_bytes,published,delivered,lost,duplicated,out_of_order,publish_msgs_per_sec,msgs_per_sec,latency_p50_us,latency_p90_us,latency_p99_us,latency_max_us,packets_per_msg,bytes_per_msg,rbench_cpu_us_per_msg,broker_cpu_us_per_msg\n\
         {name},{},{},{},{},{},{},{},{},{},{:.1},{:.1},{},{},{},{},{packets:.3},{bytes:.1},{rbench_cpu:.3},{}\n",
        plan.publishers,
        plan.subscribers,
        plan.qos as u8,
        plan.payload,
        result.published,
        result.delivered,
        result.lost(),
        result.duplicates,
        result.out_of_order,
        result.publishes_per_second(),
        result.deliveries_per_second(),
        l.p50,
        l.p90,
        l.p99,
        l.max,
        broker_cpu.map_or(String::new(), |c| format!("{c:.3}")),
    )
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
