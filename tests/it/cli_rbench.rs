//! The `rbench` binary: the QoS comparison against its embedded broker and against a
//! real mosquitto, every output format, the load modes, usage errors and Ctrl-C.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::support::mosquitto::{Mosquitto, available};
use crate::support::{TestBroker, WAIT};

fn rbench(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_rbench"))
        .args(args)
        .arg("--quiet")
        .output()
        .expect("run rbench");
    assert!(
        output.status.success() || args.contains(&"--expect-failure"),
        "rbench {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let output = rbench(&all);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// The QoS comparison's promises, whatever the broker.
fn check_comparison(report: &Value, messages: u64) {
    let results = report["results"].as_array().expect("results");
    assert_eq!(results.len(), 3);
    for (level, result) in results.iter().enumerate() {
        assert_eq!(result["qos"], level as u64);
        assert_eq!(result["messages"], messages);
        assert_eq!(result["delivered"], messages, "QoS {level}");
        assert_eq!(result["lost"], 0, "QoS {level}");
        assert_eq!(result["duplicated"], 0, "QoS {level}");
        assert!(result["msgs_per_sec"].as_f64().expect("rate") > 0.0);
        let latency = &result["latency_us"];
        assert!(latency["p50"].as_u64().expect("p50") > 0);
        assert!(latency["p50"].as_u64() <= latency["p90"].as_u64());
        assert!(latency["p99"].as_u64() <= latency["max"].as_u64());
        // Counted on the wire: PUBLISH; + PUBACK; + PUBREC, PUBREL, PUBCOMP, per leg.
        let packets = [2.0, 4.0, 8.0][level];
        assert_eq!(
            result["packets_per_msg"].as_f64(),
            Some(packets),
            "QoS {level}"
        );
        assert_eq!(
            result["publisher_leg"]["packets_per_msg"].as_f64(),
            Some(packets / 2.0)
        );
        assert!(result["bytes_per_msg"].as_f64().expect("bytes") > 2.0 * 64.0);
    }
}

#[test]
fn the_qos_comparison_runs_against_the_embedded_broker() {
    let report = json(&["-n", "400"]);
    assert_eq!(report["broker"], "embedded");
    assert_eq!(report["mode"], "qos");
    check_comparison(&report, 400);
    // The embedded broker's CPU time is measured apart from rbench's.
    for result in report["results"].as_array().expect("results") {
        assert!(result["broker_cpu_us_per_msg"].as_f64().is_some());
        assert!(result["rbench_cpu_us_per_msg"].as_f64().is_some());
    }
}

#[test]
fn the_qos_comparison_measures_mosquitto_too() {
    if !available("the_qos_comparison_measures_mosquitto_too") {
        return;
    }
    let mosquitto = Mosquitto::start("");
    let port = mosquitto.port.to_string();
    let report = json(&["-h", "127.0.0.1", "-p", &port, "-n", "400"]);
    assert_eq!(report["broker"], format!("127.0.0.1:{port}"));
    check_comparison(&report, 400);
}

#[test]
fn the_table_reads_the_numbers_and_is_plain_when_piped() {
    let output = rbench(&["-n", "200"]);
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    assert!(
        text.starts_with("rbench: QoS comparison against the embedded broker (127.0.0.1:"),
        "{text}"
    );
    for label in ["QoS 0", "QoS 1", "QoS 2", "msgs/s", "packets/msg"] {
        assert!(text.contains(label), "{label}");
    }
    assert!(
        text.contains("QoS 1 sent 4 packets per message where QoS 0 sent 2"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "no colour when stdout is a pipe");
    let coloured = rbench(&["-n", "100", "--color", "always"]);
    assert!(String::from_utf8_lossy(&coloured.stdout).contains('\u{1b}'));
}

#[test]
fn csv_has_one_header_and_a_row_per_level() {
    let output = rbench(&["-n", "100", "--csv"]);
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let columns = lines[0].split(',').count();
    assert!(lines[0].starts_with("qos,messages,delivered,msgs_per_sec,"));
    assert!(lines.iter().all(|l| l.split(',').count() == columns));
}

#[test]
fn conn_mode_reports_rate_latency_and_heap_per_connection() {
    let report = json(&["conn", "-c", "300"]);
    assert_eq!(report["connected"], 300);
    assert_eq!(report["failures"], serde_json::json!({}));
    assert!(report["connects_per_sec"].as_f64().expect("rate") > 0.0);
    let heap = report["broker_heap_per_connection_bytes"]
        .as_f64()
        .expect("embedded broker heap");
    assert!(
        heap > 100.0 && heap < 16_384.0,
        "{heap} bytes per connection"
    );
}

#[test]
fn conn_mode_counts_refusals_by_reason() {
    let broker = TestBroker::with_config(mqttkit::broker::Config {
        max_keepalive: 30,
        sys_interval: 0,
        ..Default::default()
    });
    let port = broker.port().to_string();
    // A 60 s keep-alive is above max_keepalive: every 3.1.1 client is refused.
    let report = json(&[
        "conn",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-c",
        "20",
        "-k",
        "60",
    ]);
    assert_eq!(report["connected"], 0);
    assert_eq!(report["failures"]["Client Identifier not valid"], 20);
}

#[test]
fn pubsub_shapes_deliver_everything_to_rbroker_and_to_mosquitto() {
    let broker = TestBroker::start();
    let mut targets = vec![("rbroker".to_string(), broker.port().to_string())];
    let mosquitto = available("pubsub_shapes").then(|| Mosquitto::start(""));
    if let Some(m) = &mosquitto {
        targets.push(("mosquitto".to_string(), m.port.to_string()));
    }
    for (name, port) in &targets {
        // QoS 1: 2 packets per published message on the publisher's side, 2 per
        // delivery on the subscribers'; fan-out spreads the first over 3 deliveries.
        for (shape, delivered, packets) in [
            ("pairs", 300, 4.0),
            ("fan-in", 300, 4.0),
            ("fan-out", 300, (200.0 + 600.0) / 300.0),
        ] {
            let report = json(&[
                "pubsub",
                "-h",
                "127.0.0.1",
                "-p",
                port,
                "--shape",
                shape,
                "-c",
                "3",
                "-q",
                "1",
                "-n",
                "100",
            ]);
            assert_eq!(report["delivered"], delivered, "{name} {shape}");
            assert_eq!(report["lost"], 0, "{name} {shape}");
            assert_eq!(
                report["packets_per_msg"].as_f64(),
                Some(packets),
                "{name} {shape}"
            );
        }
    }
}

#[test]
fn a_subscriber_run_measures_messages_from_another_rbench() {
    let broker = TestBroker::start();
    let port = broker.port().to_string();
    let subscriber = Command::new(env!("CARGO_BIN_EXE_rbench"))
        .args([
            "sub",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-t",
            "cross/#",
            "-q",
            "1",
            "-n",
            "200",
            "--json",
            "--quiet",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start rbench sub");
    broker.wait_for_log("rbench-sub-0 1 cross/#");
    let publisher = rbench(&[
        "pub",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "-t",
        "cross/%i",
        "-q",
        "1",
        "-n",
        "200",
    ]);
    assert!(String::from_utf8_lossy(&publisher.stdout).contains("published   200"));
    let output = subscriber
        .wait_with_output()
        .expect("sub ends after 200 messages");
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["delivered"], 200);
    assert_eq!(report["lost"], 0);
    assert!(
        report["latency_us"]["p50"]
            .as_u64()
            .expect("latency from the stamps")
            > 0
    );
}

#[test]
fn usage_errors_exit_2() {
    let output = Command::new(env!("CARGO_BIN_EXE_rbench"))
        .args(["pub", "-q", "3"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid QoS 3"));
    let unreachable = Command::new(env!("CARGO_BIN_EXE_rbench"))
        .args(["-h", "127.0.0.1", "-p", "1", "-n", "10", "--quiet"])
        .output()
        .expect("run");
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unreachable.stderr).starts_with("rbench: "));
}

#[test]
fn ctrl_c_stops_and_reports_what_was_measured() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rbench"))
        .args(["-n", "100000000", "--interval", "100ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rbench");
    let stderr = child.stderr.take().expect("piped");
    let mut lines = BufReader::new(stderr).lines();
    // Progress lines show the QoS 0 throughput phase is under way.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let line = lines.next().expect("progress line").expect("readable");
        if line.contains("QoS 0") && line.contains("delivered") && !line.contains("delivered 0 ") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no progress line");
    }
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let output = child.wait_with_output().expect("rbench ends");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("QoS 0") && text.contains("(stopped early)"),
        "{text}"
    );
    assert!(
        !text.contains("QoS 1 "),
        "later levels were not started: {text}"
    );
}

#[test]
fn tls_to_a_mosquitto_tls_listener() {
    if !available("tls_to_a_mosquitto_tls_listener") {
        return;
    }
    let certs = crate::support::certs::Certs::generate();
    let mosquitto = Mosquitto::start(&certs.mosquitto_listener_config());
    let port = mosquitto.port.to_string();
    let ca = certs.ca.display().to_string();
    let report = json(&[
        "pubsub",
        "-h",
        "localhost",
        "-p",
        &port,
        "--cafile",
        &ca,
        "-q",
        "1",
        "-n",
        "100",
    ]);
    assert_eq!(report["delivered"], 100);
    // The certificate names localhost, not 127.0.0.1: refused, unless --insecure.
    let refused = Command::new(env!("CARGO_BIN_EXE_rbench"))
        .args([
            "pubsub",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "--cafile",
            &ca,
            "-n",
            "10",
            "--quiet",
        ])
        .output()
        .expect("run");
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("certificate"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let insecure = json(&[
        "pubsub",
        "-h",
        "127.0.0.1",
        "-p",
        &port,
        "--cafile",
        &ca,
        "--insecure",
        "-n",
        "100",
    ]);
    assert_eq!(insecure["delivered"], 100);
}

#[test]
fn several_hosts_take_clients_in_turn() {
    let first = TestBroker::start();
    let second = TestBroker::start();
    let (a, b) = (
        format!("127.0.0.1:{}", first.port()),
        format!("127.0.0.1:{}", second.port()),
    );
    // Pair i connects both its clients to host i mod 2.
    let report = json(&[
        "pubsub", "--shape", "pairs", "-c", "2", "-h", &a, "-h", &b, "-n", "50",
    ]);
    assert_eq!(report["delivered"], 100);
    first.wait_for_log("as rbench-pub-0 ");
    second.wait_for_log("as rbench-pub-1 ");
    assert!(
        !first
            .log_lines()
            .iter()
            .any(|l| l.contains("as rbench-pub-1 "))
    );
}

#[test]
fn conn_mode_progress_counts_connections() {
    // 400 connections at 1,000 a second: progress lines every 100 ms meanwhile.
    let output = Command::new(env!("CARGO_BIN_EXE_rbench"))
        .args(["conn", "-c", "400", "--rate", "1000", "--interval", "100ms"])
        .output()
        .expect("run rbench");
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let progress: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("rbench: connect "))
        .collect();
    assert!(!progress.is_empty(), "{stderr}");
    for line in progress {
        assert!(
            line.contains(" connected ") && line.contains(" of 400 ("),
            "{line}"
        );
        assert!(
            line.ends_with(" conn/s)") && !line.contains("published"),
            "{line}"
        );
    }
}

#[test]
fn only_a_closed_pipe_is_a_quiet_end_for_the_report() {
    let rbench = env!("CARGO_BIN_EXE_rbench");
    // The report written into a pipe whose reader has already gone: status 0.
    let closed = Command::new("bash")
        .args([
            "-c",
            &format!("{rbench} -n 200 --quiet | true; echo ${{PIPESTATUS[0]}}"),
        ])
        .output()
        .expect("run");
    assert_eq!(String::from_utf8_lossy(&closed.stdout).trim(), "0");
    if !std::path::Path::new("/dev/full").exists() {
        eprintln!("skipped the /dev/full half: no /dev/full");
        return;
    }
    let full = Command::new("bash")
        .args(["-c", &format!("{rbench} -n 200 --quiet > /dev/full")])
        .output()
        .expect("run");
    assert_eq!(full.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&full.stderr)
            .contains("rbench: cannot write to standard output: No space left on device"),
        "{}",
        String::from_utf8_lossy(&full.stderr)
    );
}

#[test]
fn a_publisher_whose_qos2_messages_are_refused_still_finishes() {
    // A topic deeper than max_topic_levels is refused on MQTT 5 with PUBREC 0x83,
    // which ends each QoS 2 flow there.
    let broker = TestBroker::with_config(mqttkit::broker::Config {
        max_topic_levels: 1,
        sys_interval: 0,
        ..Default::default()
    });
    let port = broker.port().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rbench"))
        .args([
            "pub",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-V",
            "mqttv5",
            "-q",
            "2",
            "-t",
            "deep/topic",
            "-n",
            "200",
            "--inflight",
            "5",
            "--json",
            "--quiet",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start rbench");
    let deadline = std::time::Instant::now() + WAIT * 2;
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("rbench pub did not finish: refused messages held its window");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("output");
    assert!(output.status.success());
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(report["published"], 200, "{report}");
}
