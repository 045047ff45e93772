//! Through a bridge: a publisher on broker A, its subscriber on broker B, and A
//! bridging `bench/#` out to B. Paths: rbroker → rbroker, rbroker → mosquitto and
//! mosquitto → mosquitto, with one broker alone (publisher and subscriber on it)
//! beside them, rbroker and mosquitto.
//!
//! Both brokers of a path run pinned to CPU 1 (so a bridged path has the one core
//! a direct path has), the load generator on CPU 0. Figures: delivered messages
//! per second from 1 publisher to 1 subscriber at QoS 0 and QoS 1 (500 messages
//! outstanding; the bridge line is QoS 1), with what was lost, and 1:1 latency
//! with one message in flight (p50, p99) at QoS 1. Both A brokers have
//! `max_queued_messages 0`, so a burst is queued rather than dropped. Rounds
//! alternate the order of the paths; the median is shown.
//!
//! `cargo bench --bench bridge_vs_mosquitto`; `MQTTKIT_BENCH_ROUNDS` (default 3)
//! and `MQTTKIT_BENCH_SCALE` (default 1.0) change the effort.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Broker, Kind, installed, load_runtime, median, rounds, scale};

use mqttkit::bench::client::{ConnectOptions, LoadClient};
use mqttkit::bench::load::{self, Plan, Progress, Until};
use mqttkit::bench::scenario::run_latency_across;
use mqttkit::protocol::QoS;
use tokio_util::sync::CancellationToken;

/// Where the messages go: one broker, or A bridged to B.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Path {
    Direct(Kind),
    Bridged(Kind, Kind),
}

impl Path {
    fn label(self) -> String {
        match self {
            Path::Direct(kind) => format!("{} alone", kind.name()),
            Path::Bridged(a, b) => format!("{} → {}", a.name(), b.name()),
        }
    }
}

/// The brokers of a path, running; the publisher's and the subscriber's address.
struct Running {
    _brokers: Vec<Broker>,
    publisher: SocketAddr,
    subscriber: SocketAddr,
}

/// A and B for `path`, once a message published on A reaches B.
async fn start(path: Path, pinned: bool) -> Running {
    let queue = "max_queued_messages 0\n";
    match path {
        Path::Direct(kind) => {
            let broker = Broker::start(kind, pinned, queue);
            let addr = broker.addr;
            Running {
                _brokers: vec![broker],
                publisher: addr,
                subscriber: addr,
            }
        }
        Path::Bridged(a, b) => {
            let far = Broker::start(b, pinned, "");
            let bridge = format!(
                "{queue}connection bench\naddress {}\nremote_clientid bench-bridge\ncleansession true\nnotifications false\ntopic bench/# out 1\n",
                far.addr
            );
            let near = Broker::start(a, pinned, &bridge);
            let (publisher, subscriber) = (near.addr, far.addr);
            bridged(publisher, subscriber).await;
            Running {
                _brokers: vec![far, near],
                publisher,
                subscriber,
            }
        }
    }
}

/// Waits until a probe published on `a` arrives on `b` (the bridge is up and
/// subscribed), publishing one every 50 ms for at most 10 s.
async fn bridged(a: SocketAddr, b: SocketAddr) {
    let options = ConnectOptions::default();
    let mut subscriber = LoadClient::connect(b, "bench-probe-sub", &options)
        .await
        .expect("connect to B");
    subscriber
        .subscribe("bench/probe", QoS::AtMostOnce)
        .await
        .expect("subscribe on B");
    let mut publisher = LoadClient::connect(a, "bench-probe-pub", &options)
        .await
        .expect("connect to A");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "the bridge did not come up");
        publisher.queue_publish("bench/probe", QoS::AtMostOnce, None, b"probe");
        publisher.flush().await.expect("publish on A");
        let arrived = tokio::time::timeout(Duration::from_millis(50), async {
            loop {
                subscriber.read_some().await?;
                if subscriber.next_incoming()?.is_some() {
                    return Ok::<_, std::io::Error>(());
                }
            }
        })
        .await;
        if matches!(arrived, Ok(Ok(()))) {
            return;
        }
    }
}

/// Delivered messages per second and messages lost, 1 → 1 at `qos`.
async fn throughput(running: &Running, qos: QoS, messages: u64) -> (f64, u64) {
    let mut plan = Plan::new(vec![running.publisher], 1, 1, qos, Until::Count(messages));
    plan.subscriber_hosts = vec![running.subscriber];
    plan.topic = "bench/load".into();
    plan.filter = "bench/load".into();
    // A bridge queues what it has not forwarded yet: give the tail time to
    // arrive before it counts as lost.
    plan.stall = Duration::from_secs(2);
    let result = load::run(
        &plan,
        Arc::new(Progress::default()),
        CancellationToken::new(),
    )
    .await
    .expect("load run");
    (result.deliveries_per_second(), result.lost())
}

/// 1:1 latency at QoS 1, one message in flight: (p50, p99) in µs.
async fn latency(running: &Running, messages: u64) -> (f64, f64) {
    let result = run_latency_across(
        (running.publisher, running.subscriber),
        &ConnectOptions::default(),
        QoS::AtLeastOnce,
        messages,
        64,
        &CancellationToken::new(),
    )
    .await
    .expect("latency run");
    (
        result.end_to_end.value_at_quantile(0.5) as f64,
        result.end_to_end.value_at_quantile(0.99) as f64,
    )
}

#[derive(Default)]
struct Figures {
    qos0: Vec<f64>,
    qos1: Vec<f64>,
    lost: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
}

fn main() {
    let mut paths = vec![
        Path::Direct(Kind::Rbroker),
        Path::Bridged(Kind::Rbroker, Kind::Rbroker),
    ];
    if installed("mosquitto") {
        paths.extend([
            Path::Bridged(Kind::Rbroker, Kind::Mosquitto),
            Path::Bridged(Kind::Mosquitto, Kind::Mosquitto),
            Path::Direct(Kind::Mosquitto),
        ]);
    } else {
        println!("mosquitto is not installed: rbroker's paths only");
    }
    let (pinned, runtime) = load_runtime();
    let scale = scale();
    let (qos0_messages, qos1_messages) = ((100_000.0 * scale) as u64, (40_000.0 * scale) as u64);
    let latency_messages = (2_000.0 * scale) as u64;
    let mut figures: Vec<Figures> = paths.iter().map(|_| Figures::default()).collect();
    for round in 0..rounds() {
        let mut order: Vec<usize> = (0..paths.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for index in order {
            let path = paths[index];
            runtime.block_on(async {
                let running = start(path, pinned).await;
                let (qos0, lost0) = throughput(&running, QoS::AtMostOnce, qos0_messages).await;
                let (qos1, lost1) = throughput(&running, QoS::AtLeastOnce, qos1_messages).await;
                let (p50, p99) = latency(&running, latency_messages).await;
                let entry = &mut figures[index];
                entry.qos0.push(qos0);
                entry.qos1.push(qos1);
                entry.lost.push((lost0 + lost1) as f64);
                entry.p50.push(p50);
                entry.p99.push(p99);
            });
        }
    }
    println!(
        "\nPublisher on A, subscriber on B, A bridging bench/# to B (QoS 1 line); brokers on CPU {}, {} rounds, medians",
        if pinned { "1" } else { "any" },
        rounds()
    );
    println!(
        "{:<24} {:>14} {:>14} {:>10} {:>12} {:>12}",
        "path", "QoS 0 msg/s", "QoS 1 msg/s", "lost", "QoS 1 p50", "QoS 1 p99"
    );
    let medians: Vec<[f64; 5]> = figures
        .iter_mut()
        .map(|f| {
            [
                median(&mut f.qos0),
                median(&mut f.qos1),
                median(&mut f.lost),
                median(&mut f.p50),
                median(&mut f.p99),
            ]
        })
        .collect();
    for (path, [qos0, qos1, lost, p50, p99]) in paths.iter().zip(&medians) {
        println!(
            "{:<24} {:>14.0} {:>14.0} {:>10.0} {:>9.0} µs {:>9.0} µs",
            path.label(),
            qos0,
            qos1,
            lost,
            p50,
            p99
        );
    }
    let find = |path: Path| paths.iter().position(|p| *p == path).map(|i| medians[i]);
    let rr = find(Path::Bridged(Kind::Rbroker, Kind::Rbroker));
    let mm = find(Path::Bridged(Kind::Mosquitto, Kind::Mosquitto));
    let rm = find(Path::Bridged(Kind::Rbroker, Kind::Mosquitto));
    if let (Some(rr), Some(mm)) = (rr, mm) {
        println!(
            "rbroker → rbroker against mosquitto → mosquitto: QoS 0 {:.1}×, QoS 1 {:.1}×, p50 {:.2}×",
            rr[0] / mm[0].max(1.0),
            rr[1] / mm[1].max(1.0),
            rr[3] / mm[3].max(1.0)
        );
    }
    if let (Some(rm), Some(mm)) = (rm, mm) {
        println!(
            "rbroker → mosquitto against mosquitto → mosquitto: QoS 0 {:.1}×, QoS 1 {:.1}×",
            rm[0] / mm[0].max(1.0),
            rm[1] / mm[1].max(1.0)
        );
    }
    if let (Some(rr), Some(direct)) = (rr, find(Path::Direct(Kind::Rbroker))) {
        println!(
            "rbroker → rbroker against rbroker alone: QoS 0 {:.2}×, QoS 1 {:.2}×",
            rr[0] / direct[0].max(1.0),
            rr[1] / direct[1].max(1.0)
        );
    }
}
