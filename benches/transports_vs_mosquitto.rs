//! What TLS and WebSockets cost, rbroker and mosquitto side by side in one run.
//!
//! Each broker runs as its own process pinned to CPU 1 and the load generator to
//! CPU 0, with one listener of the transport measured. Scenarios: fan-in (4 → 1)
//! QoS 0 delivered messages per second and broker CPU per delivery, 1:1 QoS 0
//! latency (p50, p99), and TLS handshakes per second (2,000 connections, 64 at a
//! time, each a full handshake and CONNECT). Each is run over plain TCP, TLS,
//! WebSockets and WebSockets over TLS, so the cost of a layer shows against plain
//! TCP on the same broker. Rounds alternate which broker goes first; the median is
//! shown. mosquitto 2.0.11 as packaged by Debian cannot start a websockets listener
//! (its libwebsockets lacks what it needs); when it fails, the run says so and
//! rbroker's WebSocket figures stand against its own TCP ones.
//!
//! `cargo bench --bench transports_vs_mosquitto`; `MQTTKIT_BENCH_ROUNDS` (default
//! 3) and `MQTTKIT_BENCH_SCALE` (default 1.0) change the effort.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::{Broker, Kind, installed, load_runtime, median, rounds, scale};

use mqttkit::bench::client::{ConnectOptions, TlsSettings};
use mqttkit::bench::conn::{ConnPlan, open_connections};
use mqttkit::bench::load::{self, Plan, Progress, Until};
use mqttkit::bench::process::{self, ProcessSample};
use mqttkit::bench::scenario::run_latency;
use mqttkit::protocol::QoS;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Transport {
    Tcp,
    Tls,
    Ws,
    Wss,
}

impl Transport {
    fn label(self) -> &'static str {
        match self {
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
            Transport::Ws => "WebSocket",
            Transport::Wss => "WebSocket+TLS",
        }
    }

    fn tls(self) -> bool {
        matches!(self, Transport::Tls | Transport::Wss)
    }

    fn websocket(self) -> bool {
        matches!(self, Transport::Ws | Transport::Wss)
    }
}

#[derive(Debug, Clone, Copy)]
enum Scenario {
    FanIn,
    Latency,
    Handshakes,
}

/// A CA and a server certificate for `localhost`, as files mosquitto can read.
struct Certs {
    dir: tempfile::TempDir,
    ca_pem: String,
}

impl Certs {
    fn generate() -> Certs {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "mqttkit bench CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::from_params(&ca_params, &ca_key);
        let server_key = KeyPair::generate().expect("server key");
        let server = CertificateParams::new(vec!["localhost".to_string()])
            .expect("server params")
            .signed_by(&server_key, &issuer)
            .expect("server certificate");
        let write = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write PEM");
            set_mode(&path, 0o644);
        };
        write("server.pem", server.pem());
        write("server.key", server_key.serialize_pem());
        set_mode(dir.path(), 0o755);
        Certs {
            ca_pem: ca.pem(),
            dir,
        }
    }

    fn listener_lines(&self, transport: Transport) -> String {
        let mut lines = String::new();
        if transport.websocket() {
            lines.push_str("protocol websockets\n");
        }
        if transport.tls() {
            lines.push_str(&format!(
                "certfile {0}/server.pem\nkeyfile {0}/server.key\n",
                self.dir.path().display()
            ));
        }
        lines
    }

    fn client_options(&self, transport: Transport, broker: &Broker) -> ConnectOptions {
        let tls = transport.tls().then(|| {
            let mut roots = rustls::RootCertStore::empty();
            let certs = rustls::pki_types::CertificateDer::pem_slice_iter(self.ca_pem.as_bytes());
            for cert in certs {
                roots.add(cert.expect("CA PEM")).expect("CA");
            }
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            TlsSettings {
                config: Arc::new(config),
                names: Arc::new(HashMap::from([(broker.addr, "localhost".to_string())])),
            }
        });
        ConnectOptions {
            tls,
            websocket: transport.websocket().then(|| "/mqtt".to_string()),
            ..ConnectOptions::default()
        }
    }
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

/// (primary, secondary, broker CPU µs per message or per connection).
async fn measure(
    scenario: Scenario,
    broker: &Broker,
    options: ConnectOptions,
    scale: f64,
) -> (f64, f64, f64) {
    let before = process::sample(broker.pid()).expect("broker /proc readable");
    let cpu = |after: ProcessSample| after.cpu.saturating_sub(before.cpu).as_secs_f64() * 1e6;
    match scenario {
        Scenario::FanIn => {
            let messages = (200_000.0 * scale) as u64;
            let mut plan = Plan::new(
                vec![broker.addr],
                4,
                1,
                QoS::AtMostOnce,
                Until::Count(messages / 4),
            );
            plan.options = options;
            let result = load::run(
                &plan,
                Arc::new(Progress::default()),
                CancellationToken::new(),
            )
            .await
            .expect("load run");
            let after = process::sample(broker.pid()).expect("broker /proc readable");
            (
                result.deliveries_per_second(),
                (result.lost() + result.duplicates) as f64,
                cpu(after) / result.delivered.max(1) as f64,
            )
        }
        Scenario::Latency => {
            let messages = (3000.0 * scale) as u64;
            let result = run_latency(
                broker.addr,
                &options,
                QoS::AtMostOnce,
                messages,
                64,
                &CancellationToken::new(),
            )
            .await
            .expect("latency run");
            let after = process::sample(broker.pid()).expect("broker /proc readable");
            (
                result.end_to_end.value_at_quantile(0.5) as f64,
                result.end_to_end.value_at_quantile(0.99) as f64,
                cpu(after) / messages.max(1) as f64,
            )
        }
        Scenario::Handshakes => {
            let count = (2000.0 * scale) as usize;
            let plan = ConnPlan {
                hosts: vec![broker.addr],
                options,
                client_prefix: "handshake".into(),
                count,
                rate: None,
                concurrency: 64,
                timeout: Duration::from_secs(20),
            };
            let opened = open_connections(&plan, Arc::default(), CancellationToken::new()).await;
            let after = process::sample(broker.pid()).expect("broker /proc readable");
            drop(opened.clients);
            (
                opened.connected as f64 / opened.elapsed.as_secs_f64().max(1e-9),
                (count as u64 - opened.connected) as f64,
                cpu(after) / opened.connected.max(1) as f64,
            )
        }
    }
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
    let certs = Certs::generate();
    println!(
        "rbroker vs mosquitto per transport; brokers {}; {rounds} round(s), median shown; 64-byte payloads\n",
        if pinned {
            "pinned to CPU 1, load generator to CPU 0"
        } else {
            "not pinned"
        }
    );
    // Which transports mosquitto can serve here.
    let mut mosquitto_serves = HashMap::new();
    for transport in [
        Transport::Tcp,
        Transport::Tls,
        Transport::Ws,
        Transport::Wss,
    ] {
        // Started, and still running a moment later (a websockets listener that
        // fails can take the process down after the port opened).
        let serves = Broker::try_start(Kind::Mosquitto, pinned, &certs.listener_lines(transport))
            .is_some_and(|mut broker| {
                std::thread::sleep(Duration::from_millis(500));
                broker.running()
            });
        if !serves {
            println!(
                "mosquitto cannot start a {} listener on this machine: rbroker's figures stand alone.",
                transport.label()
            );
        }
        mosquitto_serves.insert(transport, serves);
    }
    println!(
        "\n{:<34} {:>20} {:>20} {:>8}",
        "scenario", "rbroker", "mosquitto", "ratio"
    );
    let mut tcp_figures: HashMap<&str, f64> = HashMap::new();
    for scenario in [Scenario::FanIn, Scenario::Latency, Scenario::Handshakes] {
        for transport in [
            Transport::Tcp,
            Transport::Tls,
            Transport::Ws,
            Transport::Wss,
        ] {
            let kinds: Vec<Kind> = if mosquitto_serves[&transport] {
                vec![Kind::Rbroker, Kind::Mosquitto]
            } else {
                vec![Kind::Rbroker]
            };
            let mut runs: Vec<(Kind, (f64, f64, f64))> = Vec::new();
            for round in 0..rounds {
                let mut order = kinds.clone();
                if round % 2 == 1 {
                    order.reverse();
                }
                for kind in order {
                    let lines = certs.listener_lines(transport);
                    let Some(broker) = Broker::try_start(kind, pinned, &lines) else {
                        assert_eq!(kind, Kind::Mosquitto, "rbroker did not start");
                        println!(
                            "mosquitto did not start a {} listener this round",
                            transport.label()
                        );
                        continue;
                    };
                    let options = certs.client_options(transport, &broker);
                    runs.push((
                        kind,
                        runtime.block_on(measure(scenario, &broker, options, scale)),
                    ));
                }
            }
            let pick = |kind: Kind, field: fn(&(f64, f64, f64)) -> f64| {
                let mut values: Vec<f64> = runs
                    .iter()
                    .filter(|(k, _)| *k == kind)
                    .map(|(_, m)| field(m))
                    .collect();
                if values.is_empty() {
                    f64::NAN
                } else {
                    median(&mut values)
                }
            };
            let ours = (
                pick(Kind::Rbroker, |m| m.0),
                pick(Kind::Rbroker, |m| m.1),
                pick(Kind::Rbroker, |m| m.2),
            );
            let theirs = (
                pick(Kind::Mosquitto, |m| m.0),
                pick(Kind::Mosquitto, |m| m.1),
                pick(Kind::Mosquitto, |m| m.2),
            );
            let show = |value: f64, unit: &str| {
                if value.is_nan() {
                    "-".to_string()
                } else {
                    format!("{value:.1} {unit}")
                }
            };
            let ratio = |ours: f64, theirs: f64| {
                if theirs.is_nan() || ours.is_nan() {
                    String::new()
                } else {
                    format!("{:.2}x", ours / theirs)
                }
            };
            let label = transport.label();
            match scenario {
                Scenario::FanIn => {
                    println!(
                        "{:<34} {:>20} {:>20} {:>8}",
                        format!("fan-in 4→1 QoS 0, {label}"),
                        show(ours.0, "msg/s"),
                        show(theirs.0, "msg/s"),
                        ratio(ours.0, theirs.0)
                    );
                    println!(
                        "{:<34} {:>20} {:>20} {:>8}",
                        "  broker CPU per delivery",
                        show(ours.2, "µs"),
                        show(theirs.2, "µs"),
                        ratio(theirs.2, ours.2)
                    );
                    println!(
                        "{:<34} {:>20} {:>20}",
                        "  lost + duplicated",
                        ours.1,
                        if theirs.1.is_nan() {
                            "-".into()
                        } else {
                            theirs.1.to_string()
                        }
                    );
                    if transport == Transport::Tcp {
                        tcp_figures.insert("fan-in cpu", ours.2);
                    } else if let Some(tcp) = tcp_figures.get("fan-in cpu") {
                        println!(
                            "{:<34} {:>20}",
                            "  rbroker CPU against its TCP",
                            format!("{:.2}x", ours.2 / tcp)
                        );
                    }
                }
                Scenario::Latency => {
                    println!(
                        "{:<34} {:>20} {:>20} {:>8}",
                        format!("latency 1:1 QoS 0, {label} p50"),
                        show(ours.0, "µs"),
                        show(theirs.0, "µs"),
                        ratio(theirs.0, ours.0)
                    );
                    println!(
                        "{:<34} {:>20} {:>20} {:>8}",
                        "  p99",
                        show(ours.1, "µs"),
                        show(theirs.1, "µs"),
                        ratio(theirs.1, ours.1)
                    );
                }
                Scenario::Handshakes => {
                    println!(
                        "{:<34} {:>20} {:>20} {:>8}",
                        format!("connections/s, {label}"),
                        show(ours.0, "/s"),
                        show(theirs.0, "/s"),
                        ratio(ours.0, theirs.0)
                    );
                    println!(
                        "{:<34} {:>20} {:>20} {:>8}",
                        "  broker CPU per connection",
                        show(ours.2, "µs"),
                        show(theirs.2, "µs"),
                        ratio(theirs.2, ours.2)
                    );
                }
            }
        }
    }
    println!(
        "\nratio: above 1 means rbroker is better (rates: rbroker / mosquitto; times and CPU: mosquitto / rbroker)"
    );
}
