//! rbroker and mosquitto side by side on loopback, in one run, with ratios.
//!
//! Each broker runs as its own process pinned to CPU 1 and the load generator to CPU 0,
//! so figures are per broker core (mosquitto is single-threaded; rbroker sizes its
//! runtime to the one CPU it is allowed). Every scenario starts a fresh broker with
//! default settings; rounds alternate which broker goes first; the median is shown.
//!
//! Scenarios: fan-in (4 publishers → 1 subscriber) and fan-out (1 → 8) delivered
//! messages per second at QoS 0/1/2, closed-loop with 500 messages outstanding;
//! 1:1 latency with one message in flight; broker CPU per delivered message; RSS per
//! idle connection with 5,000 connections. Payloads are 64 bytes.
//!
//! `cargo bench --bench broker_vs_mosquitto`; `MQTTKIT_BENCH_ROUNDS` (default 3) and
//! `MQTTKIT_BENCH_SCALE` (default 1.0) change the effort.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Broker, Kind, installed, load_runtime, median, rounds, scale};

use mqttkit::bench::client::ConnectOptions;
use mqttkit::bench::conn::{ConnPlan, open_connections};
use mqttkit::bench::load::{self, Plan, Progress, Until};
use mqttkit::bench::process::{self, ProcessSample};
use mqttkit::bench::scenario::run_latency;
use mqttkit::protocol::QoS;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy)]
enum Scenario {
    FanIn(QoS),
    FanOut(QoS),
    Latency(QoS),
    Idle,
}

impl Scenario {
    fn label(self) -> String {
        match self {
            Scenario::FanIn(qos) => format!("fan-in 4→1, QoS {qos}"),
            Scenario::FanOut(qos) => format!("fan-out 1→8, QoS {qos}"),
            Scenario::Latency(qos) => format!("latency 1:1, QoS {qos}"),
            Scenario::Idle => "5,000 idle connections".to_string(),
        }
    }
}

/// One measurement of one scenario on one broker.
#[derive(Debug, Clone, Copy, Default)]
struct Measure {
    /// Deliveries per second (throughput) or p50 µs (latency) or bytes/conn (idle).
    primary: f64,
    /// p99 µs (latency), or lost + duplicated messages (throughput).
    secondary: f64,
    /// Subscribers the broker disconnected during the run.
    disconnects: f64,
    /// Broker CPU µs per delivered message.
    cpu_per_message: f64,
}

fn qos_scale(qos: QoS) -> f64 {
    match qos {
        QoS::AtMostOnce => 1.0,
        QoS::AtLeastOnce => 0.5,
        QoS::ExactlyOnce => 0.25,
    }
}

async fn measure(scenario: Scenario, broker: &Broker, scale: f64) -> Measure {
    let before = process::sample(broker.pid()).expect("broker /proc readable");
    match scenario {
        Scenario::FanIn(qos) | Scenario::FanOut(qos) => {
            let (publishers, subscribers, base) = match scenario {
                Scenario::FanIn(_) => (4, 1, 300_000.0),
                _ => (1, 8, 40_000.0),
            };
            let messages = (base * scale * qos_scale(qos)) as u64;
            let per_publisher = messages / publishers as u64;
            let plan = Plan::new(
                vec![broker.addr],
                publishers,
                subscribers,
                qos,
                Until::Count(per_publisher),
            );
            let result = load::run(
                &plan,
                Arc::new(Progress::default()),
                CancellationToken::new(),
            )
            .await
            .expect("load run");
            let after = process::sample(broker.pid()).expect("broker /proc readable");
            Measure {
                primary: result.deliveries_per_second(),
                secondary: (result.lost() + result.duplicates) as f64,
                disconnects: result.disconnects as f64,
                cpu_per_message: cpu_micros(before, after) / result.delivered.max(1) as f64,
            }
        }
        Scenario::Latency(qos) => {
            let messages = (3000.0 * scale) as u64;
            let result = run_latency(
                broker.addr,
                &ConnectOptions::default(),
                qos,
                messages,
                64,
                &CancellationToken::new(),
            )
            .await
            .expect("latency run");
            let after = process::sample(broker.pid()).expect("broker /proc readable");
            Measure {
                primary: result.end_to_end.value_at_quantile(0.5) as f64,
                secondary: result.end_to_end.value_at_quantile(0.99) as f64,
                cpu_per_message: cpu_micros(before, after) / messages.max(1) as f64,
                disconnects: 0.0,
            }
        }
        Scenario::Idle => {
            let count = 5000;
            let plan = ConnPlan {
                hosts: vec![broker.addr],
                options: ConnectOptions {
                    keep_alive: 600,
                    ..ConnectOptions::default()
                },
                client_prefix: "bench".into(),
                count,
                rate: None,
                concurrency: 64,
                timeout: Duration::from_secs(10),
            };
            let opened = open_connections(&plan, Arc::default(), CancellationToken::new()).await;
            assert_eq!(
                opened.connected, count as u64,
                "failures: {:?}",
                opened.failures
            );
            let clients = opened.clients;
            let after = process::sample(broker.pid()).expect("broker /proc readable");
            let per_connection =
                after.rss_bytes.saturating_sub(before.rss_bytes) as f64 / count as f64;
            drop(clients);
            Measure {
                primary: per_connection,
                secondary: after.rss_bytes as f64,
                cpu_per_message: 0.0,
                disconnects: 0.0,
            }
        }
    }
}

fn cpu_micros(before: ProcessSample, after: ProcessSample) -> f64 {
    after.cpu.saturating_sub(before.cpu).as_secs_f64() * 1e6
}

fn main() {
    if !installed("mosquitto") {
        println!(
            "mosquitto is not installed (apt-get install mosquitto): nothing to compare against."
        );
        return;
    }
    let rounds = rounds();
    let scale = scale();
    let (pinned, runtime) = load_runtime();
    let scenarios = [
        Scenario::FanIn(QoS::AtMostOnce),
        Scenario::FanIn(QoS::AtLeastOnce),
        Scenario::FanIn(QoS::ExactlyOnce),
        Scenario::FanOut(QoS::AtMostOnce),
        Scenario::FanOut(QoS::AtLeastOnce),
        Scenario::FanOut(QoS::ExactlyOnce),
        Scenario::Latency(QoS::AtMostOnce),
        Scenario::Latency(QoS::AtLeastOnce),
        Scenario::Latency(QoS::ExactlyOnce),
        Scenario::Idle,
    ];
    println!(
        "rbroker vs mosquitto on loopback; brokers {}; {rounds} round(s), median shown; 64-byte payloads\n",
        if pinned {
            "pinned to CPU 1, load generator to CPU 0"
        } else {
            "not pinned (fewer than 2 CPUs or no taskset)"
        }
    );
    println!(
        "{:<26} {:>22} {:>22} {:>8}",
        "scenario", "rbroker", "mosquitto", "ratio"
    );
    for scenario in scenarios {
        let mut runs: Vec<(Kind, Measure)> = Vec::new();
        for round in 0..rounds {
            let order = if round % 2 == 0 {
                [Kind::Rbroker, Kind::Mosquitto]
            } else {
                [Kind::Mosquitto, Kind::Rbroker]
            };
            for kind in order {
                let broker = Broker::start(kind, pinned, "");
                let result = runtime.block_on(measure(scenario, &broker, scale));
                runs.push((kind, result));
            }
        }
        let pick = |kind: Kind, field: fn(&Measure) -> f64| {
            let mut values: Vec<f64> = runs
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, m)| field(m))
                .collect();
            median(&mut values)
        };
        let (ours, theirs) = (
            pick(Kind::Rbroker, |m| m.primary),
            pick(Kind::Mosquitto, |m| m.primary),
        );
        let (ours2, theirs2) = (
            pick(Kind::Rbroker, |m| m.secondary),
            pick(Kind::Mosquitto, |m| m.secondary),
        );
        let (cpu_ours, cpu_theirs) = (
            pick(Kind::Rbroker, |m| m.cpu_per_message),
            pick(Kind::Mosquitto, |m| m.cpu_per_message),
        );
        match scenario {
            Scenario::FanIn(_) | Scenario::FanOut(_) => {
                println!(
                    "{:<26} {:>16.0} msg/s {:>16.0} msg/s {:>7.2}x",
                    scenario.label(),
                    ours,
                    theirs,
                    ours / theirs.max(1.0)
                );
                println!(
                    "{:<26} {:>22} {:>22}",
                    "  lost + duplicated", ours2, theirs2
                );
                let (dis_ours, dis_theirs) = (
                    pick(Kind::Rbroker, |m| m.disconnects),
                    pick(Kind::Mosquitto, |m| m.disconnects),
                );
                if dis_ours + dis_theirs > 0.0 {
                    println!(
                        "{:<26} {:>22} {:>22}",
                        "  subscribers disconnected", dis_ours, dis_theirs
                    );
                }
                println!(
                    "{:<26} {:>17.2} µs/msg {:>15.2} µs/msg {:>7.2}x",
                    "  broker CPU per delivery",
                    cpu_ours,
                    cpu_theirs,
                    cpu_theirs / cpu_ours.max(1e-9)
                );
            }
            Scenario::Latency(_) => {
                println!(
                    "{:<26} {:>19} µs {:>19} µs {:>7.2}x",
                    format!("{} p50", scenario.label()),
                    ours,
                    theirs,
                    theirs / ours.max(1.0)
                );
                println!(
                    "{:<26} {:>19} µs {:>19} µs {:>7.2}x",
                    "  p99",
                    ours2,
                    theirs2,
                    theirs2 / ours2.max(1.0)
                );
            }
            Scenario::Idle => {
                println!(
                    "{:<26} {:>14.0} B/conn {:>14.0} B/conn {:>7.2}x",
                    "RSS per idle connection",
                    ours,
                    theirs,
                    ours / theirs.max(1.0)
                );
            }
        }
    }
    println!(
        "\nratio: rbroker / mosquitto for msg/s and B/conn; mosquitto / rbroker for µs (above 1 means rbroker is better, except B/conn)"
    );
}
