//! rbroker and mosquitto side by side on loopback, in one run, with ratios.
//!
//! Each broker runs as its own process pinned to CPU 1 and the load generator to CPU 0,
//! so figures are per broker core (mosquitto is single-threaded; rbroker sizes its
//! runtime to the one CPU it is allowed). Every scenario starts a fresh broker with
//! default settings; rounds alternate which broker goes first; the median is shown.
//!
//! Scenarios: fan-in (4 publishers → 1 subscriber) and fan-out (1 → 8) delivered
//! messages per second at QoS 0/1/2, closed-loop with 500 messages outstanding;
//! 1:1 latency with one message in flight (p50, p99, max); broker CPU per delivered
//! message. Connections: connects per second, connect p99 and RSS per idle
//! connection for 5,000 and 15,000 clients, MQTT 3.1.1 and 5.0, clean and
//! persistent sessions (64 attempts under way at once), with the broker's CPU per
//! connect (the load generator, on its one CPU, limits the rate); RSS after each of 3
//! connect/disconnect cycles of 5,000 clients; and a reconnect storm: 10,000
//! persistent clients dropping and reconnecting over and over while a paced QoS 1
//! flow runs, with the flow's loss and latency. Payloads are 64 bytes.
//!
//! `cargo bench --bench broker_vs_mosquitto`; `MQTTKIT_BENCH_ROUNDS` (default 3) and
//! `MQTTKIT_BENCH_SCALE` (default 1.0) change the effort; `MQTTKIT_BENCH_ONLY=TEXT`
//! runs only the scenarios whose label contains TEXT (`connect`, `storm`, `cycles`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Broker, Kind, installed, load_runtime, median, rounds, scale};

use mqttkit::bench::client::ConnectOptions;
use mqttkit::bench::conn::{ConnPlan, open_connections};
use mqttkit::bench::load::{self, Pace, Plan, Progress, Until};
use mqttkit::bench::process::{self, ProcessSample};
use mqttkit::bench::scenario::run_latency;
use mqttkit::protocol::{ProtocolVersion, QoS};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy)]
enum Scenario {
    FanIn(QoS),
    FanOut(QoS),
    Latency(QoS),
    Connect {
        clients: usize,
        version: ProtocolVersion,
        persistent: bool,
    },
    /// 3 rounds of 5,000 connections opened and closed.
    Cycles,
    /// Persistent clients dropping and reconnecting during a QoS 1 flow.
    Storm,
}

impl Scenario {
    fn label(self) -> String {
        match self {
            Scenario::FanIn(qos) => format!("fan-in 4→1, QoS {qos}"),
            Scenario::FanOut(qos) => format!("fan-out 1→8, QoS {qos}"),
            Scenario::Latency(qos) => format!("latency 1:1, QoS {qos}"),
            Scenario::Connect {
                clients,
                version,
                persistent,
            } => format!(
                "connect {}k {} {}",
                clients / 1000,
                if version == ProtocolVersion::V5 {
                    "5.0"
                } else {
                    "3.1.1"
                },
                if persistent { "persistent" } else { "clean" }
            ),
            Scenario::Cycles => "3 connect/disconnect cycles of 5,000".to_string(),
            Scenario::Storm => "reconnect storm".to_string(),
        }
    }
}

/// One measurement of one scenario on one broker.
#[derive(Debug, Clone, Copy, Default)]
struct Measure {
    /// Deliveries per second (throughput, storm), p50 µs (latency), connects per
    /// second (connect), or RSS above baseline after cycle 1 (cycles).
    primary: f64,
    /// p99 µs (latency, storm), lost + duplicated messages (throughput), connect
    /// p99 µs (connect), or RSS above baseline after cycle 2 (cycles).
    secondary: f64,
    /// Max µs (latency, storm), RSS bytes per idle connection (connect), or RSS
    /// above baseline after cycle 3 (cycles).
    third: f64,
    /// Latency: messages slower than [`SPIKE_MICROS`]; storm: the flow's lost
    /// messages plus reconnects that found no session.
    fourth: f64,
    /// Storm: storms completed while the flow ran.
    storms: f64,
    /// Storm: ms from dropping all clients to all reconnected, on average.
    storm_millis: f64,
    /// Subscribers the broker disconnected during the run.
    disconnects: f64,
    /// Broker CPU µs per delivered message (per connection opened, in connect).
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
                ..Measure::default()
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
                third: result.end_to_end.max() as f64,
                fourth: slower_than(&result.end_to_end, SPIKE_MICROS) as f64,
                cpu_per_message: cpu_micros(before, after) / messages.max(1) as f64,
                ..Measure::default()
            }
        }
        Scenario::Connect {
            clients,
            version,
            persistent,
        } => {
            let options = connect_options(version, persistent);
            let opened = open(broker, "bench", clients, 64, options).await;
            let after = process::sample(broker.pid()).expect("broker /proc readable");
            let per_connection =
                after.rss_bytes.saturating_sub(before.rss_bytes) as f64 / clients as f64;
            Measure {
                primary: opened.0,
                secondary: opened.1,
                third: per_connection,
                cpu_per_message: cpu_micros(before, after) / clients as f64,
                ..Measure::default()
            }
        }
        Scenario::Cycles => {
            let baseline_fds = open_descriptors(broker.pid());
            let mut above = [0.0; 3];
            for (cycle, rss) in above.iter_mut().enumerate() {
                let options = connect_options(ProtocolVersion::V3_1_1, false);
                let clients = open_clients(broker, &format!("cycle{cycle}-"), 5000, options).await;
                drop(clients);
                wait_for_descriptors(broker.pid(), baseline_fds).await;
                *rss = settled_rss(broker.pid()).await as f64 - before.rss_bytes as f64;
            }
            Measure {
                primary: above[0],
                secondary: above[1],
                third: above[2],
                ..Measure::default()
            }
        }
        Scenario::Storm => storm(broker, scale).await,
    }
}

fn connect_options(version: ProtocolVersion, persistent: bool) -> ConnectOptions {
    ConnectOptions {
        version,
        keep_alive: 600,
        clean_start: !persistent,
        session_expiry: if persistent { 3600 } else { 0 },
        ..ConnectOptions::default()
    }
}

/// Opens `count` connections, `concurrency` attempts at a time; returns connects
/// per second and connect p99 µs.
async fn open(
    broker: &Broker,
    prefix: &str,
    count: usize,
    concurrency: usize,
    options: ConnectOptions,
) -> (f64, f64, Vec<mqttkit::bench::client::LoadClient>) {
    let plan = ConnPlan {
        hosts: vec![broker.addr],
        options,
        client_prefix: prefix.into(),
        count,
        rate: None,
        concurrency,
        timeout: Duration::from_secs(30),
    };
    let opened = open_connections(&plan, Arc::default(), CancellationToken::new()).await;
    assert_eq!(
        opened.connected, count as u64,
        "failures: {:?}",
        opened.failures
    );
    (
        opened.connects_per_second(),
        opened.latency.value_at_quantile(0.99) as f64,
        opened.clients,
    )
}

async fn open_clients(
    broker: &Broker,
    prefix: &str,
    count: usize,
    options: ConnectOptions,
) -> Vec<mqttkit::bench::client::LoadClient> {
    open(broker, prefix, count, 64, options).await.2
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

/// Waits until the broker has closed the connections it was serving: its open
/// descriptors are back to `baseline`.
async fn wait_for_descriptors(pid: u32, baseline: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while open_descriptors(pid) > baseline {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the broker still holds {} descriptors (baseline {baseline}) after 60 s",
            open_descriptors(pid)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The broker's RSS once it has stopped changing for a second (at most 10 s):
/// what it keeps after its housekeeping ran.
async fn settled_rss(pid: u32) -> u64 {
    let rss = || {
        process::sample(pid)
            .expect("broker /proc readable")
            .rss_bytes
    };
    let mut last = rss();
    let mut unchanged = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = rss();
        unchanged = if now == last { unchanged + 1 } else { 0 };
        last = now;
        if unchanged >= 10 {
            break;
        }
    }
    last
}

/// 10,000 persistent clients (each subscribed to its own topic) drop and
/// reconnect, all at once, again and again, while a QoS 1 flow of 2,000 msg/s runs
/// from one publisher to one subscriber. Reports the flow's rate, p99 and max
/// latency, its lost messages plus the reconnects that found no session, and
/// how many storms it went through.
async fn storm(broker: &Broker, scale: f64) -> Measure {
    let clients = 10_000;
    let options = connect_options(ProtocolVersion::V3_1_1, true);
    let mut storm_clients = open_clients(broker, "storm", clients, options.clone()).await;
    for (index, client) in storm_clients.iter_mut().enumerate() {
        client
            .subscribe(&format!("storm/{index}"), QoS::AtLeastOnce)
            .await
            .expect("storm subscription");
    }
    let rate = 2000.0;
    let messages = (6000.0 * scale.max(0.5)) as u64;
    let mut plan = Plan::new(
        vec![broker.addr],
        1,
        1,
        QoS::AtLeastOnce,
        Until::Count(messages),
    );
    plan.pace = Pace::Rate(rate);
    plan.client_prefix = "flow".into();
    plan.stall = Duration::from_secs(30);
    let flow_done = CancellationToken::new();
    // The flow runs on a thread of its own, so the storm's client work does not
    // delay it inside the load generator.
    let flow = {
        let done = flow_done.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("flow runtime");
            let result = runtime
                .block_on(load::run(
                    &plan,
                    Arc::new(Progress::default()),
                    CancellationToken::new(),
                ))
                .expect("storm flow");
            done.cancel();
            result
        })
    };
    let storms = async {
        let mut storms = 0u64;
        let mut sessions_lost = 0u64;
        let started = std::time::Instant::now();
        while !flow_done.is_cancelled() {
            drop(std::mem::take(&mut storm_clients));
            let (_, _, reconnected) =
                open(broker, "storm", clients, clients, options.clone()).await;
            sessions_lost += reconnected.iter().filter(|c| !c.session_present).count() as u64;
            storm_clients = reconnected;
            storms += 1;
        }
        (storms, sessions_lost, started.elapsed())
    };
    let (storms, sessions_lost, storming) = storms.await;
    let result = flow.join().expect("flow thread");
    Measure {
        primary: result.deliveries_per_second(),
        secondary: result.latency.value_at_quantile(0.99) as f64,
        third: result.latency.max() as f64,
        fourth: (result.lost() + sessions_lost) as f64,
        storms: storms as f64,
        storm_millis: storming.as_secs_f64() * 1000.0 / storms.max(1) as f64,
        ..Measure::default()
    }
}

/// A round trip slower than this counts as a spike.
const SPIKE_MICROS: u64 = 400;

/// How many recorded values exceed `micros`.
fn slower_than(histogram: &hdrhistogram::Histogram<u64>, micros: u64) -> u64 {
    histogram.len() - histogram.count_between(0, micros)
}

/// The 1:1 round trip with no broker: a blocking TCP echo server on CPU 1 and a
/// client on CPU 0 exchange 64 bytes `messages` times. Medians over `rounds` of
/// p50, p99, max µs and round trips slower than [`SPIKE_MICROS`]: the latency
/// floor and the spikes of the machine itself, against which a broker's are read.
fn echo_baseline(rounds: usize, pinned: bool, messages: usize) -> [f64; 4] {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("echo listener");
    let addr = listener.local_addr().expect("echo address");
    std::thread::spawn(move || {
        if pinned {
            let _ = process::pin_current_thread(1);
        }
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let _ = stream.set_nodelay(true);
            let mut buffer = [0u8; 64];
            while stream.read_exact(&mut buffer).is_ok() && stream.write_all(&buffer).is_ok() {}
        }
    });
    let mut figures: [Vec<f64>; 4] = Default::default();
    for _ in 0..rounds {
        let mut stream = std::net::TcpStream::connect(addr).expect("echo connect");
        stream.set_nodelay(true).expect("nodelay");
        let mut times: Vec<u64> = (0..messages.max(100))
            .map(|_| {
                let mut buffer = [7u8; 64];
                let start = std::time::Instant::now();
                stream.write_all(&buffer).expect("echo write");
                stream.read_exact(&mut buffer).expect("echo read");
                start.elapsed().as_micros() as u64
            })
            .collect();
        times.sort_unstable();
        let n = times.len();
        for (figure, value) in figures.iter_mut().zip([
            times[n / 2],
            times[n * 99 / 100],
            times[n - 1],
            times.iter().filter(|t| **t > SPIKE_MICROS).count() as u64,
        ]) {
            figure.push(value as f64);
        }
    }
    figures.map(|mut values| median(&mut values))
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
    ]
    .into_iter()
    .chain(
        [5000, 15000]
            .into_iter()
            .flat_map(|clients| {
                [ProtocolVersion::V3_1_1, ProtocolVersion::V5]
                    .into_iter()
                    .map(move |version| (clients, version))
            })
            .flat_map(|(clients, version)| {
                [false, true].map(|persistent| Scenario::Connect {
                    clients,
                    version,
                    persistent,
                })
            }),
    )
    .chain([Scenario::Cycles, Scenario::Storm]);
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
        // `MQTTKIT_BENCH_ONLY=connect` runs the scenarios whose label has that text.
        if std::env::var("MQTTKIT_BENCH_ONLY").is_ok_and(|only| !scenario.label().contains(&only)) {
            continue;
        }
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
        // A figure for each broker, and the ratio: mosquitto's over rbroker's
        // when `shorter_is_better`, rbroker's over mosquitto's otherwise.
        let row = |label: &str, unit: &str, field: fn(&Measure) -> f64, shorter_is_better| {
            let (ours, theirs) = (pick(Kind::Rbroker, field), pick(Kind::Mosquitto, field));
            let ratio = if shorter_is_better {
                theirs / ours.max(1e-9)
            } else {
                ours / theirs.max(1e-9)
            };
            println!(
                "{:<26} {:>22} {:>22} {:>7.2}x",
                label,
                format!("{ours:.0} {unit}"),
                format!("{theirs:.0} {unit}"),
                ratio
            );
        };
        // A count for each broker.
        let counts = |label: &str, field: fn(&Measure) -> f64| {
            println!(
                "{:<26} {:>22} {:>22}",
                label,
                pick(Kind::Rbroker, field),
                pick(Kind::Mosquitto, field)
            );
        };
        // A time in µs for each broker, and how many times shorter rbroker's is.
        let micros = |label: &str, ours: f64, theirs: f64| {
            println!(
                "{:<26} {:>19.0} µs {:>19.0} µs {:>7.2}x",
                label,
                ours,
                theirs,
                theirs / ours.max(1.0)
            );
        };
        match scenario {
            Scenario::FanIn(_) | Scenario::FanOut(_) => {
                println!(
                    "{:<26} {:>16.0} msg/s {:>16.0} msg/s {:>7.2}x",
                    scenario.label(),
                    ours,
                    theirs,
                    ours / theirs.max(1.0)
                );
                counts("  lost + duplicated", |m| m.secondary);
                if pick(Kind::Rbroker, |m| m.disconnects) + pick(Kind::Mosquitto, |m| m.disconnects)
                    > 0.0
                {
                    counts("  subscribers disconnected", |m| m.disconnects);
                }
                println!(
                    "{:<26} {:>17.2} µs/msg {:>15.2} µs/msg {:>7.2}x",
                    "  broker CPU per delivery",
                    cpu_ours,
                    cpu_theirs,
                    cpu_theirs / cpu_ours.max(1e-9)
                );
            }
            Scenario::Latency(qos) => {
                micros(&format!("{} p50", scenario.label()), ours, theirs);
                micros("  p99", ours2, theirs2);
                row("  max", "µs", |m| m.third, true);
                counts(&format!("  slower than {SPIKE_MICROS} µs"), |m| m.fourth);
                if qos == QoS::AtMostOnce {
                    let echo = echo_baseline(rounds, pinned, (3000.0 * scale) as usize);
                    println!(
                        "  the machine alone (a TCP echo of 64 bytes, same CPUs, same count): p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs, {} slower than {SPIKE_MICROS} µs",
                        echo[0], echo[1], echo[2], echo[3]
                    );
                }
            }
            Scenario::Connect { .. } => {
                println!(
                    "{:<26} {:>15.0} conn/s {:>15.0} conn/s {:>7.2}x",
                    scenario.label(),
                    ours,
                    theirs,
                    ours / theirs.max(1.0)
                );
                micros("  connect p99", ours2, theirs2);
                println!(
                    "{:<26} {:>16.1} µs/conn {:>14.1} µs/conn {:>7.2}x",
                    "  broker CPU per connect",
                    cpu_ours,
                    cpu_theirs,
                    cpu_theirs / cpu_ours.max(1e-9)
                );
                row("  RSS per idle connection", "B/conn", |m| m.third, false);
            }
            Scenario::Cycles => {
                println!(
                    "{}: RSS above the broker's baseline once all left",
                    scenario.label()
                );
                for (cycle, field) in [
                    (1, (|m: &Measure| m.primary) as fn(&Measure) -> f64),
                    (2, |m: &Measure| m.secondary),
                    (3, |m: &Measure| m.third),
                ] {
                    println!(
                        "{:<26} {:>19.0} KB {:>19.0} KB",
                        format!("  after cycle {cycle}"),
                        pick(Kind::Rbroker, field) / 1024.0,
                        pick(Kind::Mosquitto, field) / 1024.0,
                    );
                }
            }
            Scenario::Storm => {
                println!(
                    "reconnect storm: 10,000 persistent clients reconnecting at once, again and again, during a 2,000 msg/s QoS 1 flow"
                );
                counts("  storms during the flow", |m| m.storms);
                row("  one storm (all back)", "ms", |m| m.storm_millis, true);
                micros("  flow p99", ours2, theirs2);
                row("  flow max", "µs", |m| m.third, true);
                counts("  lost + sessions lost", |m| m.fourth);
            }
        }
    }
    println!(
        "\nratio: rbroker / mosquitto for msg/s, conn/s and B/conn; mosquitto / rbroker for times and CPU (above 1 means rbroker is better, except B/conn)"
    );
}
