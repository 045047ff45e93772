//! What password checks cost the clients already connected: the delivered rate of a
//! running 1:1 QoS 1 flow while 1,000 clients log in with passwords, against the
//! same flow with no logins, on rbroker and mosquitto side by side in one run.
//!
//! Both brokers read one password file of `$7$` hashes at rbroker passwd's default
//! of 210,000 PBKDF2 iterations: the flow's own user and 50 device users. The 1,000
//! logins cycle through the device users (32 under way at once), so each device
//! user logs in 20 times: the first login of each costs a key derivation on both
//! brokers; later ones cost one on mosquitto and a cached HMAC on rbroker.
//! Each measurement lasts a fixed window; logins not finished by its end are
//! counted as not done. A third window measures the logins with no flow running.
//! Brokers are pinned to CPU 1 and the load generator to CPU 0 when the machine
//! allows; rounds alternate which broker goes first, and the median is shown.
//!
//! `cargo bench --bench auth_under_load`; `MQTTKIT_BENCH_ROUNDS` (default 3) and
//! `MQTTKIT_BENCH_SCALE` (default 1.0, scales the window) change the effort.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Broker, Kind, installed, load_runtime, median, rounds, scale};
use mqttkit::bench::client::{ConnectOptions, LoadClient};
use mqttkit::bench::load::{self, Plan, Progress, Until};
use mqttkit::bench::process;
use mqttkit::broker::auth::password::{DEFAULT_ITERATIONS, PasswordHash};
use mqttkit::protocol::QoS;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

const DEVICE_USERS: usize = 50;
const LOGINS: usize = 1000;
const CONCURRENT_LOGINS: usize = 32;

fn credentials(user: &str) -> ConnectOptions {
    ConnectOptions {
        username: Some(user.to_string()),
        password: Some(Bytes::from(format!("{user}-password"))),
        ..ConnectOptions::default()
    }
}

/// The password file both brokers read, readable by mosquitto's own user.
fn password_file() -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("password file");
    let users =
        std::iter::once("flow".to_string()).chain((0..DEVICE_USERS).map(|i| format!("device-{i}")));
    for user in users {
        let hash = PasswordHash::new(format!("{user}-password").as_bytes(), DEFAULT_ITERATIONS)
            .expect("random salt");
        writeln!(file, "{user}:{hash}").expect("write");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");
    }
    file
}

/// What logging in during the window achieved.
#[derive(Debug, Default)]
struct Logins {
    done: usize,
    refused: usize,
    elapsed: Duration,
}

/// Logs `LOGINS` clients in, `CONCURRENT_LOGINS` at a time, until done or `stop`.
async fn login_storm(addr: SocketAddr, stop: CancellationToken) -> Logins {
    let started = Instant::now();
    let mut attempts = JoinSet::new();
    let mut next = 0;
    let mut logins = Logins::default();
    let mut clients = Vec::with_capacity(LOGINS);
    loop {
        while next < LOGINS && attempts.len() < CONCURRENT_LOGINS && !stop.is_cancelled() {
            let options = credentials(&format!("device-{}", next % DEVICE_USERS));
            let id = format!("storm-{next}");
            attempts.spawn(async move { LoadClient::connect(addr, &id, &options).await });
            next += 1;
        }
        if attempts.is_empty() {
            break;
        }
        tokio::select! {
            joined = attempts.join_next() => match joined {
                Some(Ok(Ok(client))) => {
                    logins.done += 1;
                    clients.push(client);
                }
                Some(_) => logins.refused += 1,
                None => break,
            },
            () = stop.cancelled() => break,
        }
    }
    logins.elapsed = started.elapsed();
    logins
}

/// The flow's delivered rate over `window` (with or without the login storm), the
/// messages it lost, and what the logins achieved.
async fn measure(addr: SocketAddr, window: Duration, storm: bool) -> (f64, u64, Logins) {
    let mut plan = Plan::new(vec![addr], 1, 1, QoS::AtLeastOnce, Until::Duration(window));
    plan.options = credentials("flow");
    plan.warmup = Duration::from_millis(500);
    let stop = CancellationToken::new();
    let logins = async {
        if storm {
            // Starts with the measured part of the flow.
            tokio::time::sleep(plan.warmup).await;
            login_storm(addr, stop.clone()).await
        } else {
            Logins::default()
        }
    };
    let flow = async {
        let result = load::run(
            &plan,
            Arc::new(Progress::default()),
            CancellationToken::new(),
        )
        .await
        .expect("flow run");
        stop.cancel();
        result
    };
    let (result, logins) = tokio::join!(flow, logins);
    (result.deliveries_per_second(), result.lost(), logins)
}

/// One broker's figures in one round.
#[derive(Debug, Clone, Copy, Default)]
struct Round {
    flow_alone: f64,
    flow_with_logins: f64,
    lost: u64,
    logins_during_flow: usize,
    logins_per_second_during_flow: f64,
    /// Logins per second with no flow running (all `LOGINS`, or as many as fit).
    logins_per_second_alone: f64,
    /// Broker CPU per login with no flow running, ms.
    cpu_per_login_ms: f64,
}

fn round(
    runtime: &tokio::runtime::Runtime,
    kind: Kind,
    pinned: bool,
    conf: &str,
    window: Duration,
) -> Round {
    let (flow_alone, lost_alone, _) = {
        let broker = Broker::start(kind, pinned, conf);
        runtime.block_on(measure(broker.addr, window, false))
    };
    let (flow_with_logins, lost, logins) = {
        let broker = Broker::start(kind, pinned, conf);
        runtime.block_on(measure(broker.addr, window, true))
    };
    let (alone, cpu) = {
        let broker = Broker::start(kind, pinned, conf);
        let before = process::sample(broker.pid()).expect("broker /proc readable");
        let stop = CancellationToken::new();
        let deadline = stop.clone();
        let logins = runtime.block_on(async {
            tokio::join!(login_storm(broker.addr, stop), async move {
                tokio::time::sleep(window).await;
                deadline.cancel();
            })
            .0
        });
        let after = process::sample(broker.pid()).expect("broker /proc readable");
        (logins, after.cpu.saturating_sub(before.cpu))
    };
    let rate = |logins: &Logins| logins.done as f64 / logins.elapsed.as_secs_f64().max(1e-9);
    Round {
        flow_alone,
        flow_with_logins,
        lost: lost_alone + lost,
        logins_during_flow: logins.done,
        logins_per_second_during_flow: rate(&logins),
        logins_per_second_alone: rate(&alone),
        cpu_per_login_ms: cpu.as_secs_f64() * 1e3 / alone.done.max(1) as f64,
    }
}

fn main() {
    if !installed("mosquitto") {
        println!(
            "mosquitto is not installed (apt-get install mosquitto): nothing to compare against."
        );
        return;
    }
    let window = Duration::from_secs_f64(10.0 * scale());
    let rounds = rounds();
    let (pinned, runtime) = load_runtime();
    let passwords = password_file();
    println!(
        "1:1 QoS 1 flow while {LOGINS} clients log in ({DEVICE_USERS} users, $7$ at {DEFAULT_ITERATIONS} iterations, {CONCURRENT_LOGINS} at once);\n{:.0} s windows; {rounds} round(s), median shown; brokers {}\n",
        window.as_secs_f64(),
        if pinned {
            "pinned to CPU 1, load generator to CPU 0"
        } else {
            "not pinned"
        }
    );
    let conf = format!(
        "allow_anonymous false\npassword_file {}",
        passwords.path().display()
    );
    let mut runs: Vec<(Kind, Round)> = Vec::new();
    for index in 0..rounds {
        let order = if index % 2 == 0 {
            [Kind::Rbroker, Kind::Mosquitto]
        } else {
            [Kind::Mosquitto, Kind::Rbroker]
        };
        for kind in order {
            runs.push((kind, round(&runtime, kind, pinned, &conf, window)));
        }
    }
    println!(
        "{:<10} {:>16} {:>16} {:>8} {:>6} {:>19} {:>13} {:>14}",
        "broker",
        "flow alone",
        "flow + logins",
        "ratio",
        "lost",
        "logins during flow",
        "logins alone",
        "CPU per login"
    );
    for kind in [Kind::Rbroker, Kind::Mosquitto] {
        let pick = |field: fn(&Round) -> f64| {
            let mut values: Vec<f64> = runs
                .iter()
                .filter(|(k, _)| *k == kind)
                .map(|(_, r)| field(r))
                .collect();
            median(&mut values)
        };
        let (alone, loaded) = (pick(|r| r.flow_alone), pick(|r| r.flow_with_logins));
        println!(
            "{:<10} {:>10.0} msg/s {:>10.0} msg/s {:>7.2}x {:>6} {:>5}/{LOGINS} {:>6.1}/s {:>10.1}/s {:>11.2} ms",
            kind.name(),
            alone,
            loaded,
            loaded / alone.max(1.0),
            pick(|r| r.lost as f64),
            pick(|r| r.logins_during_flow as f64),
            pick(|r| r.logins_per_second_during_flow),
            pick(|r| r.logins_per_second_alone),
            pick(|r| r.cpu_per_login_ms),
        );
    }
    println!(
        "\nratio: the flow's rate during the logins over its rate alone (1.00x: untouched); lost: flow\nmessages not delivered by the end of a window; logins alone and CPU per login: with no flow running"
    );
}
