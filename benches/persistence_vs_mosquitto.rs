//! What durability costs: rbroker with `persistence true` (every acknowledgement
//! after fsync, or for QoS 1 once the subscribers acknowledged) against rbroker
//! in memory and mosquitto with and without
//! `persistence true` (a snapshot every `autosave_interval`), side by side in one
//! run, on the same disk.
//!
//! Every client keeps a persistent session (Clean Session 0), so every QoS 1/2
//! message is something the store must keep. Scenarios: fan-in 4 → 1 at QoS 1 and
//! QoS 2 (delivered messages per second), the same at QoS 1 with the subscriber
//! away (acknowledged messages per second: every one waits for the disk), and
//! 1:1 QoS 1 latency (p50, p99). A
//! durable broker acknowledges after fsync, so a publisher's rate is at most its
//! window of unacknowledged messages per fsync and round trip: fan-in runs with
//! 20 in flight per publisher (mosquitto's and paho's default) and with 100. For
//! durable rbroker it also prints fsyncs per second, messages per fsync and bytes
//! written per message, from the line rbroker logs when it stops. Each broker runs
//! pinned to CPU 1 (its store thread with it), the load generator on CPU 0; rounds
//! alternate the order and the median is shown.
//!
//! Then the store itself, in process: its append-only log against redb (an
//! established embedded store) on the same workload, and compaction and restart
//! with 1 million retained messages and with 10,000 sessions.
//!
//! `cargo bench --bench persistence_vs_mosquitto`; `MQTTKIT_BENCH_ROUNDS` (default
//! 3) and `MQTTKIT_BENCH_SCALE` (default 1.0) change the effort.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Broker, Kind, installed, load_runtime, median, rounds, scale};
use mqttkit::bench::client::{ConnectOptions, LoadClient};
use mqttkit::bench::load::{self, Plan, Progress, Until};
use mqttkit::bench::scenario::run_latency;
use mqttkit::broker::message::Message;
use mqttkit::broker::session::Delivery;
use mqttkit::broker::store::journal::{FRAME_CAP, JournalSettings, write_image};
use mqttkit::broker::store::{Change, Journal, PersistenceMode, Store, recover};
use mqttkit::broker::{LogTypes, Logger};
use mqttkit::protocol::{Disconnect, Packet, QoS, ReasonCode, TopicFilter, TopicName};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Setup {
    Durable,
    Memory,
    MosquittoPersistent,
    MosquittoMemory,
}

impl Setup {
    fn label(self) -> &'static str {
        match self {
            Setup::Durable => "rbroker durable",
            Setup::Memory => "rbroker memory",
            Setup::MosquittoPersistent => "mosquitto persist",
            Setup::MosquittoMemory => "mosquitto memory",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Setup::Durable | Setup::Memory => Kind::Rbroker,
            _ => Kind::Mosquitto,
        }
    }

    fn lines(self, dir: &Path) -> String {
        // The same queue limits for every broker: no message is dropped for
        // being queued, so each broker is measured on all of them.
        let common = "max_queued_messages 0\nmax_inflight_messages 100\n";
        match self {
            Setup::Durable | Setup::MosquittoPersistent => format!(
                "{common}persistence true\npersistence_location {}/\n",
                dir.display()
            ),
            Setup::Memory | Setup::MosquittoMemory => common.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Scenario {
    /// QoS, and how many messages each publisher keeps unacknowledged.
    FanIn(QoS, usize),
    /// QoS 1 fan-in with the subscriber away: every message is queued for a
    /// session nobody can acknowledge it on, so every PUBACK waits for the disk.
    /// Measured in acknowledged messages per second.
    FanInAway(usize),
    Latency,
}

/// One measurement: (msg/s or p50 µs, lost+dup or p99 µs), and for durable
/// rbroker (syncs, bytes appended, delivered messages).
type Measured = ((f64, f64), Option<(f64, f64, f64, f64)>);

async fn measure(scenario: Scenario, broker: &Broker, scale: f64) -> ((f64, f64), f64) {
    let options = ConnectOptions {
        clean_start: false,
        ..ConnectOptions::default()
    };
    match scenario {
        Scenario::FanIn(qos, window) => {
            let messages = (40_000.0 * scale) as u64;
            let mut plan = Plan::new(vec![broker.addr], 4, 1, qos, Until::Count(messages / 4));
            plan.options = options;
            plan.publisher_inflight = window;
            let result = run_plan(&plan).await;
            (
                (
                    result.deliveries_per_second(),
                    (result.lost() + result.duplicates) as f64,
                ),
                result.delivered as f64,
            )
        }
        Scenario::FanInAway(window) => {
            let messages = (40_000.0 * scale) as u64;
            let mut plan = Plan::new(
                vec![broker.addr],
                4,
                0,
                QoS::AtLeastOnce,
                Until::Count(messages / 4),
            );
            plan.options = options;
            plan.publisher_inflight = window;
            let mut away = LoadClient::connect(broker.addr, "rbench-away", &plan.options)
                .await
                .expect("connect");
            away.subscribe(&plan.filter, QoS::AtLeastOnce)
                .await
                .expect("subscribe");
            // Gone once the broker has closed the socket, so no message finds it.
            away.queue(&Packet::Disconnect(Disconnect::new(ReasonCode::Success)));
            away.flush().await.expect("disconnect");
            while away.recv().await.is_ok() {}
            // Until the last PUBACK (with the publishers' connects, a little
            // less than the rate itself).
            let started = Instant::now();
            let result = run_plan(&plan).await;
            let acknowledged = result.published as f64;
            (
                (acknowledged / started.elapsed().as_secs_f64(), f64::NAN),
                acknowledged,
            )
        }
        Scenario::Latency => {
            let messages = (2000.0 * scale) as u64;
            let result = run_latency(
                broker.addr,
                &options,
                QoS::AtLeastOnce,
                messages,
                64,
                &CancellationToken::new(),
            )
            .await
            .expect("latency run");
            (
                (
                    result.end_to_end.value_at_quantile(0.5) as f64,
                    result.end_to_end.value_at_quantile(0.99) as f64,
                ),
                messages as f64,
            )
        }
    }
}

async fn run_plan(plan: &Plan) -> load::LoadResult {
    load::run(
        plan,
        Arc::new(Progress::default()),
        CancellationToken::new(),
    )
    .await
    .expect("load run")
}

/// (syncs, bytes appended) from the line rbroker logs as its store stops.
fn store_figures(log: &Path) -> Option<(f64, f64)> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().rev().find(|l| l.contains(" syncs, "))?;
    let number = |before: &str| -> Option<f64> {
        let head = line.split(before).next()?;
        head.rsplit(' ').next()?.parse().ok()
    };
    Some((number(" syncs")?, number(" bytes appended")?))
}

fn run_brokers(rounds: usize, scale: f64) {
    let (pinned, runtime) = load_runtime();
    let setups = [
        Setup::Durable,
        Setup::Memory,
        Setup::MosquittoPersistent,
        Setup::MosquittoMemory,
    ];
    println!(
        "Persistent sessions, 64-byte payloads; brokers {}; {rounds} round(s), median shown\n",
        if pinned {
            "pinned to CPU 1, load generator to CPU 0"
        } else {
            "not pinned"
        }
    );
    print!("{:<30}", "scenario");
    for setup in setups {
        print!(" {:>18}", setup.label());
    }
    println!();
    let only_window: Option<usize> = std::env::var("MQTTKIT_BENCH_WINDOW")
        .ok()
        .and_then(|w| w.parse().ok());
    for scenario in [
        Scenario::FanIn(QoS::AtLeastOnce, 20),
        Scenario::FanIn(QoS::AtLeastOnce, 100),
        Scenario::FanInAway(100),
        Scenario::FanIn(QoS::ExactlyOnce, 100),
        Scenario::Latency,
    ] {
        if let (Some(only), Scenario::FanIn(_, window) | Scenario::FanInAway(window)) =
            (only_window, scenario)
            && only != window
        {
            continue;
        }
        let mut runs: Vec<(Setup, Measured)> = Vec::new();
        for round in 0..rounds {
            let mut order = setups.to_vec();
            if round % 2 == 1 {
                order.reverse();
            }
            for setup in order {
                if std::env::var("MQTTKIT_BENCH_ONLY")
                    .is_ok_and(|only| !setup.label().contains(&only))
                {
                    continue;
                }
                let dir = tempfile::tempdir().expect("store directory");
                open_to_all(dir.path());
                let log = dir.path().join("broker.log");
                let mut broker = Broker::try_start_logging(
                    setup.kind(),
                    pinned,
                    &setup.lines(dir.path()),
                    Some(&log),
                )
                .unwrap_or_else(|| panic!("{} did not start", setup.label()));
                let started = Instant::now();
                let (figures, messages) = runtime.block_on(measure(scenario, &broker, scale));
                let elapsed = started.elapsed().as_secs_f64();
                broker.terminate();
                let store = (setup == Setup::Durable)
                    .then(|| store_figures(&log))
                    .flatten()
                    .map(|(syncs, bytes)| (syncs, bytes, messages, elapsed));
                runs.push((setup, (figures, store)));
            }
        }
        let pick = |setup: Setup, field: &dyn Fn(&Measured) -> Option<f64>| {
            let mut values: Vec<f64> = runs
                .iter()
                .filter(|(s, _)| *s == setup)
                .filter_map(|(_, m)| field(m))
                .collect();
            if values.is_empty() {
                f64::NAN
            } else {
                median(&mut values)
            }
        };
        let row = |label: &str, field: &dyn Fn(&Measured) -> Option<f64>, unit: &str| {
            print!("{label:<30}");
            for setup in setups {
                let value = pick(setup, field);
                if value.is_nan() {
                    print!(" {:>18}", "-");
                } else {
                    print!(" {:>18}", format!("{value:.0} {unit}"));
                }
            }
            println!();
        };
        match scenario {
            Scenario::FanIn(qos, window) => {
                row(
                    &format!("fan-in 4→1 QoS {}, window {window}", qos as u8),
                    &|m: &Measured| Some(m.0.0),
                    "msg/s",
                );
                row("  lost + duplicated", &|m: &Measured| Some(m.0.1), "");
            }
            Scenario::FanInAway(window) => {
                row(
                    &format!("4 publishers, subscriber away, QoS 1, window {window}"),
                    &|m: &Measured| Some(m.0.0),
                    "acks/s",
                );
            }
            Scenario::Latency => {
                row("1:1 QoS 1 latency p50", &|m: &Measured| Some(m.0.0), "µs");
                row("  p99", &|m: &Measured| Some(m.0.1), "µs");
            }
        }
        let durable = |field: fn(&(f64, f64, f64, f64)) -> f64| {
            pick(Setup::Durable, &move |m: &Measured| m.1.as_ref().map(field))
        };
        println!(
            "  durable store: {:.0} fsyncs/s, {:.1} messages per fsync, {:.0} bytes written per message",
            durable(|s| s.0 / s.3),
            durable(|s| s.2 / s.0.max(1.0)),
            durable(|s| s.1 / s.2.max(1.0)),
        );
        if let Scenario::FanIn(QoS::AtLeastOnce, _) | Scenario::FanInAway(_) = scenario {
            let (durable, memory, mosquitto) = (
                pick(Setup::Durable, &|m: &Measured| Some(m.0.0)),
                pick(Setup::Memory, &|m: &Measured| Some(m.0.0)),
                pick(Setup::MosquittoMemory, &|m: &Measured| Some(m.0.0)),
            );
            println!(
                "  durable / in-memory rbroker: {:.2} (goal ≥ 0.5); durable rbroker / in-memory mosquitto: {:.2} (goal > 1)",
                durable / memory,
                durable / mosquitto
            );
        }
    }
}

/// Lets mosquitto, which drops to its own user, write the store there.
fn open_to_all(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777));
}

fn message(topic: String, payload: &[u8], qos: QoS, retain: bool) -> Arc<Message> {
    Arc::new(Message::new(
        TopicName::new(topic).expect("topic"),
        Bytes::copy_from_slice(payload),
        qos,
        retain,
    ))
}

fn delivery(message: &Arc<Message>) -> Delivery {
    Delivery {
        message: Arc::clone(message),
        qos: QoS::AtLeastOnce,
        retain: false,
        subscription_ids: Vec::new(),
        shared: None,
        confirms: None,
    }
}

fn journal(dir: &Path, compact_at: u64) -> (Arc<Journal>, Store) {
    let path = dir.join("store.db");
    let (image, file, len, _) =
        recover::open(&path, &Logger::in_memory(LogTypes::ALL)).expect("open store");
    let journal = Journal::new(PersistenceMode::Durable);
    journal
        .start(
            JournalSettings {
                path,
                mode: PersistenceMode::Durable,
                autosave_interval: 0,
                autosave_on_changes: false,
                compact_at,
                frame_cap: FRAME_CAP,
            },
            image,
            file,
            len,
            Logger::in_memory(LogTypes::ALL),
        )
        .expect("start journal");
    (Arc::clone(&journal), Store::Kept(journal))
}

/// Opens a persistent session in `store`; its client id.
fn open_session(store: &Store, client_id: &str) -> Arc<str> {
    let client: Arc<str> = Arc::from(client_id);
    store.record(Change::SessionOpened {
        client_id: Arc::clone(&client),
        username: None,
        scope: 0,
        fresh: true,
        expiry: None,
    });
    client
}

/// The QoS 1 life of `count` messages to one persistent session, `batch` at a
/// time, each batch waited for as a connection waits: queued, sent, acknowledged.
/// Returns messages per second.
fn log_workload(dir: &Path, count: usize, batch: usize) -> f64 {
    let (journal, store) = journal(dir, u64::MAX);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = open_session(&store, "session");
    let payload = [7u8; 64];
    let started = Instant::now();
    let mut sent = 0usize;
    while sent < count {
        let mut last = 0;
        for i in 0..batch {
            let m = message(
                format!("bench/{}", (sent + i) % 100),
                &payload,
                QoS::AtLeastOnce,
                false,
            );
            store.record(Change::Queued {
                client_id: Arc::clone(&client),
                delivery: delivery(&m),
            });
            last = journal.figures().changes;
        }
        runtime.block_on(store.synced(last)).expect("synced");
        // Sent and acknowledged after the queueing is durable, so that they go
        // with the next batch and the log writes every step, as redb does: the
        // broker may send sooner, and a delivery completed within one batch is
        // then not written at all (store::elide), which is no engine's merit.
        for i in 0..batch {
            let packet_id = ((sent + i) % 65535 + 1) as u16;
            store.record_unwaited(Change::Sent {
                client_id: Arc::clone(&client),
                packet_id,
            });
            store.record_unwaited(Change::Acked {
                client_id: Arc::clone(&client),
                packet_id,
            });
        }
        sent += batch;
    }
    let rate = count as f64 / started.elapsed().as_secs_f64();
    journal.stop();
    rate
}

/// The same operations on redb: one write transaction per batch, committed
/// durably; the message, its queue entry and its in-flight entry as rows.
fn redb_workload(dir: &Path, count: usize, batch: usize) -> f64 {
    use redb::{Database, TableDefinition};
    const MESSAGES: TableDefinition<u64, &[u8]> = TableDefinition::new("messages");
    const QUEUE: TableDefinition<(u32, u64), u64> = TableDefinition::new("queue");
    const INFLIGHT: TableDefinition<(u32, u16), u64> = TableDefinition::new("inflight");
    let db = Database::create(dir.join("redb.db")).expect("redb");
    let payload = [7u8; 64];
    let started = Instant::now();
    let mut sent = 0usize;
    while sent < count {
        let txn = db.begin_write().expect("txn");
        {
            let mut messages = txn.open_table(MESSAGES).expect("table");
            let mut queue = txn.open_table(QUEUE).expect("table");
            let mut inflight = txn.open_table(INFLIGHT).expect("table");
            for i in 0..batch {
                let n = (sent + i) as u64;
                let mut record = format!("bench/{}", n % 100).into_bytes();
                record.extend_from_slice(&payload);
                messages.insert(n, record.as_slice()).expect("insert");
                queue.insert((1, n), n).expect("insert");
                let id = ((sent + i) % 65535 + 1) as u16;
                queue.remove((1, n)).expect("remove");
                inflight.insert((1, id), n).expect("insert");
                inflight.remove((1, id)).expect("remove");
                messages.remove(n).expect("remove");
            }
        }
        txn.commit().expect("commit");
        sent += batch;
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// `clients` threads, each committing one QoS 1 message life at a time and
/// waiting for it, as connections do: the log's group commit lets one fsync
/// serve all who wait. Returns messages per second.
fn log_concurrent(dir: &Path, per_client: usize, clients: usize) -> f64 {
    let (journal, store) = journal(dir, u64::MAX);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for c in 0..clients {
            let (journal, store) = (Arc::clone(&journal), store.clone());
            scope.spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .expect("runtime");
                let client = open_session(&store, &format!("session-{c}"));
                let payload = [7u8; 64];
                for i in 0..per_client {
                    let m = message(format!("bench/{c}"), &payload, QoS::AtLeastOnce, false);
                    store.record(Change::Queued {
                        client_id: Arc::clone(&client),
                        delivery: delivery(&m),
                    });
                    let last = journal.figures().changes;
                    runtime.block_on(store.synced(last)).expect("synced");
                    // After the queueing is durable: written with a later batch,
                    // never dropped as completed within one (see log_workload).
                    let id = (i % 65535 + 1) as u16;
                    store.record_unwaited(Change::Sent {
                        client_id: Arc::clone(&client),
                        packet_id: id,
                    });
                    store.record_unwaited(Change::Acked {
                        client_id: Arc::clone(&client),
                        packet_id: id,
                    });
                }
            });
        }
    });
    let rate = (per_client * clients) as f64 / started.elapsed().as_secs_f64();
    journal.stop();
    rate
}

/// The same with redb: each thread commits its own write transaction (redb
/// serialises writers; each commit is durable on its own).
fn redb_concurrent(dir: &Path, per_client: usize, clients: usize) -> f64 {
    use redb::{Database, TableDefinition};
    const MESSAGES: TableDefinition<u64, &[u8]> = TableDefinition::new("messages");
    const QUEUE: TableDefinition<(u32, u64), u64> = TableDefinition::new("queue");
    let db = Database::create(dir.join("redb.db")).expect("redb");
    let started = Instant::now();
    std::thread::scope(|scope| {
        for c in 0..clients {
            let db = &db;
            scope.spawn(move || {
                let payload = [7u8; 64];
                for i in 0..per_client {
                    let n = (c * per_client + i) as u64;
                    let txn = db.begin_write().expect("txn");
                    {
                        let mut messages = txn.open_table(MESSAGES).expect("table");
                        let mut queue = txn.open_table(QUEUE).expect("table");
                        let mut record = format!("bench/{c}").into_bytes();
                        record.extend_from_slice(&payload);
                        messages.insert(n, record.as_slice()).expect("insert");
                        queue.insert((c as u32, n), n).expect("insert");
                        queue.remove((c as u32, n)).expect("remove");
                        messages.remove(n).expect("remove");
                    }
                    txn.commit().expect("commit");
                }
            });
        }
    });
    (per_client * clients) as f64 / started.elapsed().as_secs_f64()
}

fn engines(scale: f64) {
    println!("\nThe store on this disk: QoS 1 message lives (queued, sent, acknowledged)");
    println!(
        "{:<26} {:>22} {:>22} {:>8}",
        "committers, each waiting", "append-only log", "redb 2", "ratio"
    );
    for clients in [1usize, 16, 64] {
        let per_client = ((2_000.0 * scale) as usize / clients).max(10);
        let ours = log_concurrent(
            tempfile::tempdir().expect("dir").path(),
            per_client,
            clients,
        );
        let theirs = redb_concurrent(
            tempfile::tempdir().expect("dir").path(),
            per_client,
            clients,
        );
        println!(
            "{:<26} {:>22} {:>22} {:>7.2}x",
            clients,
            format!("{ours:.0} msg/s"),
            format!("{theirs:.0} msg/s"),
            ours / theirs
        );
    }
    println!("One committer, batches of messages per durable commit:");
    println!(
        "{:<26} {:>22} {:>22} {:>8}",
        "batch (messages/commit)", "", "", ""
    );
    for batch in [1usize, 16, 256] {
        let count = ((if batch == 1 { 2_000.0 } else { 40_000.0 }) * scale) as usize;
        let count = count.max(batch);
        let ours = log_workload(tempfile::tempdir().expect("dir").path(), count, batch);
        let theirs = redb_workload(tempfile::tempdir().expect("dir").path(), count, batch);
        println!(
            "{:<26} {:>22} {:>22} {:>7.2}x",
            batch,
            format!("{ours:.0} msg/s"),
            format!("{theirs:.0} msg/s"),
            ours / theirs
        );
    }
}

/// Compaction and restart with `fill` recorded into a fresh store.
fn restart(label: &str, fill: impl Fn(&Store), appended_twice: bool) {
    let dir = tempfile::tempdir().expect("dir");
    let (journal, store) = journal(dir.path(), u64::MAX);
    let started = Instant::now();
    fill(&store);
    if appended_twice {
        fill(&store);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(store.synced(journal.figures().changes))
        .expect("synced");
    let recorded = started.elapsed();
    let log_bytes = journal.figures().file_bytes;
    journal.stop();
    let path = dir.path().join("store.db");
    let log = Logger::in_memory(LogTypes::ALL);
    let started = Instant::now();
    let (image, _) = recover::read(&path, &log).expect("read");
    let replay = started.elapsed();
    let started = Instant::now();
    let mut image = image;
    let (_, compacted) = write_image(&path, &mut image).expect("compact");
    let compaction = started.elapsed();
    let started = Instant::now();
    let (image, _) = recover::read(&path, &log).expect("read");
    let reread = started.elapsed();
    let (messages, retained, sessions) = image.counts();
    println!(
        "{label:<40} log {:>7.1} MB (recorded in {:.1} s) → compacted {:>7.1} MB in {:>6.0} ms; restart reads the log in {:>6.0} ms, the compacted file in {:>6.0} ms ({messages} messages, {retained} retained, {sessions} sessions)",
        log_bytes as f64 / 1e6,
        recorded.as_secs_f64(),
        compacted as f64 / 1e6,
        compaction.as_secs_f64() * 1e3,
        replay.as_secs_f64() * 1e3,
        reread.as_secs_f64() * 1e3,
    );
}

fn compaction(scale: f64) {
    println!(
        "\nCompaction and restart (the broker compacts when the log passes twice its last compacted size)"
    );
    let retained = (1_000_000.0 * scale) as usize;
    restart(
        &format!("{retained} retained messages, each set twice"),
        |store| {
            for i in 0..retained {
                store.record(Change::Retained(message(
                    format!("sensors/{}/{}", i / 1000, i % 1000),
                    b"21.5 C, 40 % RH",
                    QoS::AtLeastOnce,
                    true,
                )));
            }
        },
        true,
    );
    let sessions = (10_000.0 * scale) as usize;
    restart(
        &format!("{sessions} sessions, 2 filters, 10 queued each"),
        |store| {
            for i in 0..sessions {
                let client: Arc<str> = Arc::from(format!("device-{i}"));
                store.record(Change::SessionOpened {
                    client_id: Arc::clone(&client),
                    username: None,
                    scope: 0,
                    fresh: true,
                    expiry: Some(Duration::from_secs(86_400)),
                });
                for filter in ["cmd/all", "cmd/device"] {
                    store.record(Change::Subscribed {
                        client_id: Arc::clone(&client),
                        filter: TopicFilter::new(filter).expect("filter"),
                        options: mqttkit::protocol::SubscriptionOptions::new(QoS::AtLeastOnce),
                        identifier: None,
                    });
                }
                for n in 0..10 {
                    let m = message(format!("cmd/{n}"), b"reboot", QoS::AtLeastOnce, false);
                    store.record(Change::Queued {
                        client_id: Arc::clone(&client),
                        delivery: delivery(&m),
                    });
                }
            }
        },
        false,
    );
}

fn main() {
    let rounds = rounds();
    let scale = scale();
    if installed("mosquitto") {
        run_brokers(rounds, scale);
    } else {
        println!(
            "mosquitto is not installed (apt-get install mosquitto): the broker comparison is skipped."
        );
    }
    engines(scale);
    compaction(scale);
}
