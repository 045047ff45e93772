//! rsub and rpub in the scenarios course material and scripts use them for,
//! against rbroker and against a real mosquitto: QoS on every protocol version,
//! wills, persistent sessions, `--retained-only`, reconnecting, `-l` across a
//! lost broker and past a broker that fell behind, `--json` mirroring, closed pipes, colour and passwords.

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use mqttkit::protocol::{Packet, Property, Publish, QoS, TopicName};

use crate::support::mosquitto::available;
use crate::support::outage::{BrokerProcess, Program, Relay};
use crate::support::raw::{RawClient, pid};
use crate::support::target::{Target, on_both};
use crate::support::tools::{ours, run, start, start_with_env};
use crate::support::{TestBroker, WAIT};

const QUIET: Duration = Duration::from_millis(300);

fn with_port<'a>(port: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut full = vec!["-p", port];
    full.extend_from_slice(args);
    full
}

#[test]
fn messages_round_trip_at_every_qos_on_every_protocol_version() {
    on_both(
        "messages_round_trip_at_every_qos_on_every_protocol_version",
        "",
        |target| {
            let port = target.port();
            for version in ["31", "311", "5"] {
                for qos in ["0", "1", "2"] {
                    let topic = format!("rt/{version}/{qos}");
                    let payload = format!("v{version} q{qos}");
                    let subscriber = start(
                        ours("rsub"),
                        &with_port(
                            &port,
                            &[
                                "-V", version, "-q", qos, "-t", &topic, "-C", "1", "-v", "-d",
                            ],
                        ),
                        None,
                        None,
                    );
                    subscriber.wait_for_stdout("Subscribed (mid: 1)", 1);
                    let published = run(
                        ours("rpub"),
                        &with_port(
                            &port,
                            &["-V", version, "-q", qos, "-t", &topic, "-m", &payload],
                        ),
                        None,
                    );
                    assert_eq!(
                        published.status,
                        Some(0),
                        "{}: rpub {published:?}",
                        target.name()
                    );
                    let received = subscriber.finish();
                    let case = format!("{} -V {version} -q {qos}", target.name());
                    assert_eq!(received.status, Some(0), "{case}: {received:?}");
                    let stdout = received.stdout_text();
                    assert!(
                        stdout.contains(&format!("received PUBLISH (d0, q{qos}, r0, m")),
                        "{case}: {stdout}"
                    );
                    assert!(
                        stdout.contains(&format!("\n{topic} {payload}\n")),
                        "{case}: {stdout}"
                    );
                }
            }
        },
    );
}

#[test]
fn ctrl_c_ends_rsub_with_status_0_and_mqtt5_leaves_the_will() {
    on_both(
        "ctrl_c_ends_rsub_with_status_0_and_mqtt5_leaves_the_will",
        "",
        |target| {
            let port = target.port();
            let mut watcher = RawClient::connect(target.addr(), "will-watcher");
            watcher.subscribe(1, &[("wills/#", QoS::AtLeastOnce)]);
            for (version, will_expected) in [("311", false), ("5", true)] {
                let will_topic = format!("wills/{version}");
                let subscriber = start(
                    ours("rsub"),
                    &with_port(
                        &port,
                        &[
                            "-V",
                            version,
                            "-t",
                            "quiet",
                            "-d",
                            "--will-topic",
                            &will_topic,
                            "--will-payload",
                            "bye",
                        ],
                    ),
                    None,
                    None,
                );
                subscriber.wait_for_stdout("Subscribed (mid: 1)", 1);
                subscriber.interrupt();
                let ended = subscriber.finish();
                let case = format!("{} -V {version}", target.name());
                assert_eq!(ended.status, Some(0), "{case}: {ended:?}");
                assert!(
                    ended.stdout_text().ends_with("sending DISCONNECT\n"),
                    "{case}: {ended:?}"
                );
                let wills: Vec<String> = watcher
                    .drain_publishes(QUIET)
                    .iter()
                    .map(|p| {
                        format!(
                            "{} {}",
                            p.topic.as_str(),
                            String::from_utf8_lossy(&p.payload)
                        )
                    })
                    .collect();
                // mosquitto_sub sends DISCONNECT "with will message" (0x04) on
                // SIGINT under MQTT 5; a 3.1.1 DISCONNECT always discards the will.
                let expected: Vec<String> = if will_expected {
                    vec![format!("{will_topic} bye")]
                } else {
                    vec![]
                };
                assert_eq!(wills, expected, "{case}");
            }
        },
    );
}

#[test]
fn a_killed_rsub_leaves_its_retained_will() {
    on_both("a_killed_rsub_leaves_its_retained_will", "", |target| {
        let port = target.port();
        let subscriber = start(
            ours("rsub"),
            &with_port(
                &port,
                &[
                    "-t",
                    "quiet",
                    "-d",
                    "--will-topic",
                    "gone/rsub",
                    "--will-payload",
                    "lost",
                    "--will-qos",
                    "1",
                    "--will-retain",
                ],
            ),
            None,
            None,
        );
        subscriber.wait_for_stdout("Subscribed (mid: 1)", 1);
        drop(subscriber); // SIGKILL: no DISCONNECT
        // The will keeps its QoS 1 and retain flag; a QoS 0 subscription
        // receives it at QoS 0 with the retained flag set.
        let later = run(
            ours("rsub"),
            &with_port(&port, &["-t", "gone/#", "-C", "1", "-F", "%r %q %t %p"]),
            None,
        );
        assert_eq!(later.status, Some(0), "{}: {later:?}", target.name());
        assert_eq!(
            later.stdout_text(),
            "1 0 gone/rsub lost\n",
            "{}",
            target.name()
        );
    });
}

#[test]
fn a_persistent_session_keeps_messages_while_rsub_is_away() {
    on_both(
        "a_persistent_session_keeps_messages_while_rsub_is_away",
        "",
        |target| {
            let port = target.port();
            for version in ["311", "5"] {
                let id = format!("keeper-{version}");
                let topic = format!("away/{version}");
                let subscribe = ["-V", version, "-c", "-i", &id, "-q", "1", "-t", "away/#"];
                let first = run(
                    ours("rsub"),
                    &with_port(&port, &[&subscribe[..], &["-E"]].concat()),
                    None,
                );
                assert_eq!(first.status, Some(0), "{first:?}");
                for payload in ["one", "two"] {
                    let sent = run(
                        ours("rpub"),
                        &with_port(&port, &["-q", "1", "-t", &topic, "-m", payload]),
                        None,
                    );
                    assert_eq!(sent.status, Some(0), "{sent:?}");
                }
                let back = run(
                    ours("rsub"),
                    &with_port(&port, &[&subscribe[..], &["-C", "2", "-v"]].concat()),
                    None,
                );
                let case = format!("{} -V {version}", target.name());
                assert_eq!(back.status, Some(0), "{case}: {back:?}");
                assert_eq!(
                    back.stdout_text(),
                    format!("{topic} one\n{topic} two\n"),
                    "{case}"
                );
            }
        },
    );
}

#[test]
fn retained_only_prints_the_retained_messages_and_ends() {
    on_both(
        "retained_only_prints_the_retained_messages_and_ends",
        "",
        |target| {
            let port = target.port();
            let mut publisher = RawClient::connect(target.addr(), "retainer");
            for (n, topic) in ["kept/a", "kept/b", "kept/c/d"].iter().enumerate() {
                publisher.publish(
                    topic,
                    topic.as_bytes(),
                    QoS::AtLeastOnce,
                    true,
                    n as u16 + 1,
                );
            }
            let listed = run(
                ours("rsub"),
                &with_port(&port, &["--retained-only", "-t", "kept/#", "-v"]),
                None,
            );
            assert_eq!(listed.status, Some(0), "{}: {listed:?}", target.name());
            let lines: BTreeSet<String> =
                listed.stdout_text().lines().map(str::to_string).collect();
            let expected: BTreeSet<String> =
                ["kept/a kept/a", "kept/b kept/b", "kept/c/d kept/c/d"]
                    .map(String::from)
                    .into();
            assert_eq!(lines, expected, "{}", target.name());

            let removed = run(
                ours("rsub"),
                &with_port(
                    &port,
                    &["--remove-retained", "--retained-only", "-t", "kept/#"],
                ),
                None,
            );
            assert_eq!(removed.status, Some(0), "{}: {removed:?}", target.name());
            let mut checker = RawClient::connect(target.addr(), "checker");
            checker.subscribe(1, &[("kept/#", QoS::AtMostOnce)]);
            assert!(
                checker.is_open_and_quiet(QUIET),
                "{}: retained messages are left",
                target.name()
            );
        },
    );
}

/// rsub against a broker process that goes away and comes back on its port.
fn rsub_survives_a_restart(program: Program) {
    let mut broker = BrokerProcess::start(program);
    let port = broker.port.to_string();
    let subscriber = start(
        ours("rsub"),
        &with_port(&port, &["-t", "back/#", "-q", "1", "-v", "-d"]),
        None,
        None,
    );
    subscriber.wait_for_stdout("Subscribed (mid: 1)", 1);
    broker.stop();
    subscriber.wait_for_stderr("connection lost", 1);
    broker.resume();
    subscriber.wait_for_stdout("Subscribed (mid: ", 2);
    let sent = run(
        ours("rpub"),
        &with_port(&port, &["-q", "1", "-t", "back/again", "-m", "after"]),
        None,
    );
    assert_eq!(sent.status, Some(0), "{program:?}: {sent:?}");
    subscriber.wait_for_stdout("back/again after", 1);
    subscriber.interrupt();
    let ended = subscriber.finish();
    assert_eq!(ended.status, Some(0), "{program:?}: {ended:?}");
    assert!(
        ended.stderr.contains("reconnected"),
        "{program:?}: {}",
        ended.stderr
    );
    assert_eq!(
        ended.stdout_text().matches("sending SUBSCRIBE").count(),
        2,
        "{program:?}: subscribed again after reconnecting"
    );
}

#[test]
fn rsub_reconnects_and_subscribes_again_after_a_broker_restart() {
    rsub_survives_a_restart(Program::Rbroker);
    if available("rsub_reconnects_and_subscribes_again_after_a_broker_restart") {
        rsub_survives_a_restart(Program::Mosquitto);
    }
}

/// `rpub -l` through a relay: lines written while the broker is gone and
/// restarted are published once it is back. The relay keeps rpub away until the
/// watcher subscribed again, so every line has somewhere to go.
fn rpub_lines_survive_a_restart(program: Program, qos: &str) {
    let case = format!("{program:?} -q {qos}");
    let mut broker = BrokerProcess::start(program);
    let relay = Relay::to(broker.port);
    let watch = |broker: &BrokerProcess| {
        let mut watcher = RawClient::connect(broker.addr(), "line-watcher");
        watcher.subscribe(1, &[("lines/#", QoS::AtLeastOnce)]);
        watcher
    };
    let mut watcher = watch(&broker);
    let relay_port = relay.port.to_string();
    let mut publisher = start(
        ours("rpub"),
        &with_port(&relay_port, &["-l", "-q", qos, "-t", "lines/x"]),
        None,
        None,
    );
    let mut received: Vec<String> = Vec::new();
    let mut receive_until = |watcher: &mut RawClient, last: usize| {
        let deadline = std::time::Instant::now() + WAIT * 2;
        while received.last().map(String::as_str) != Some(last.to_string().as_str()) {
            assert!(
                std::time::Instant::now() < deadline,
                "{case}: got {received:?}"
            );
            if let Some(packet) = watcher.recv_within(QUIET) {
                let Packet::Publish(publish) = packet else {
                    panic!("{case}: expected PUBLISH, got {packet:?}")
                };
                watcher.acknowledge(&publish);
                received.push(String::from_utf8_lossy(&publish.payload).into_owned());
            }
        }
    };
    let lines = |range: std::ops::RangeInclusive<usize>| -> Vec<u8> {
        range
            .map(|n| format!("{n}\n"))
            .collect::<String>()
            .into_bytes()
    };
    publisher.write_stdin(&lines(1..=50));
    receive_until(&mut watcher, 50);

    relay.cut();
    broker.stop();
    publisher.write_stdin(&lines(51..=100));
    broker.resume();
    let mut watcher = watch(&broker);
    relay.restore();
    receive_until(&mut watcher, 100);
    publisher.close_stdin();
    let ended = publisher.finish();
    assert_eq!(ended.status, Some(0), "{case}: {ended:?}");

    // At QoS 1 a line the broker forwarded but whose PUBACK the cut lost is
    // sent again; apart from such resends the lines arrive in order.
    let mut first_seen = Vec::new();
    for line in &received {
        let n: usize = line.parse().expect("a number");
        if !first_seen.contains(&n) {
            first_seen.push(n);
        }
    }
    assert_eq!(
        first_seen,
        (1..=100).collect::<Vec<usize>>(),
        "{case}: in order: {received:?}"
    );
}

#[test]
fn rpub_lines_are_not_lost_when_the_broker_restarts() {
    for qos in ["1", "2"] {
        rpub_lines_survive_a_restart(Program::Rbroker, qos);
    }
    if available("rpub_lines_are_not_lost_when_the_broker_restarts") {
        for qos in ["1", "2"] {
            rpub_lines_survive_a_restart(Program::Mosquitto, qos);
        }
    }
}

#[test]
fn rsub_json_piped_into_rpub_json_mirrors_traffic_to_another_broker() {
    let source = TestBroker::start();
    let destination =
        if available("rsub_json_piped_into_rpub_json_mirrors_traffic_to_another_broker") {
            Target::Mosquitto(crate::support::mosquitto::Mosquitto::start(""))
        } else {
            Target::rbroker("")
        };
    let mut watcher = RawClient::connect_v5(destination.addr(), "mirror-watcher", []);
    watcher.subscribe(1, &[("m/#", QoS::ExactlyOnce)]);
    let pipeline = format!(
        "{} -V 5 -p {} -q 2 -t 'm/#' --json -C 3 | {} -V 5 -p {} --json",
        ours("rsub"),
        source.port(),
        ours("rpub"),
        destination.port()
    );
    let mirror = start("sh", &["-c", &pipeline], None, None);
    source.wait_for_log("Sending SUBACK");

    let mut publisher = RawClient::connect_v5(source.addr(), "source-publisher", []);
    let messages = [
        Publish {
            qos: QoS::AtLeastOnce,
            packet_id: Some(pid(1)),
            properties: [
                Property::ContentType("application/json".into()),
                Property::UserProperty("site".into(), "lab".into()),
                Property::CorrelationData(Bytes::from_static(b"\x00\x01")),
            ]
            .into_iter()
            .collect(),
            ..Publish::new(
                TopicName::new("m/json").expect("topic"),
                Bytes::from_static(br#"{"t":21.5}"#),
            )
        },
        Publish::new(TopicName::new("m/empty").expect("topic"), Bytes::new()),
        Publish {
            qos: QoS::ExactlyOnce,
            packet_id: Some(pid(2)),
            ..Publish::new(
                TopicName::new("m/binary").expect("topic"),
                Bytes::from_static(b"\x00\xff\xfe bin"),
            )
        },
    ];
    // QoS 2 last: rsub prints it on PUBREL, so a later message could overtake it.
    for message in &messages {
        publisher.publish_packet(message.clone());
    }
    let ended = mirror.finish();
    assert_eq!(ended.status, Some(0), "{ended:?}");
    let mirrored = watcher.drain_publishes(QUIET);
    let describe = |p: &Publish| {
        (
            p.topic.as_str().to_string(),
            p.payload.clone(),
            p.qos,
            p.properties.clone(),
        )
    };
    assert_eq!(
        mirrored.iter().map(describe).collect::<Vec<_>>(),
        messages.iter().map(describe).collect::<Vec<_>>(),
        "mirrored to {}",
        destination.name()
    );
}

#[test]
fn a_closed_pipe_ends_rsub_quietly_with_status_0() {
    on_both(
        "a_closed_pipe_ends_rsub_quietly_with_status_0",
        "",
        |target| {
            let script = format!(
                "{} -p {} -t 'pipe/#' -v | head -n 1; echo \"status ${{PIPESTATUS[0]}}\"",
                ours("rsub"),
                target.port()
            );
            let pipeline = start("bash", &["-c", &script], None, None);
            let mut publisher = RawClient::connect(target.addr(), "pipe-feeder");
            // rsub may subscribe after the first messages; head exits after the
            // first line it sees, and rsub notices on a later write.
            for n in 0..200u16 {
                publisher.publish(
                    "pipe/n",
                    n.to_string().as_bytes(),
                    QoS::AtLeastOnce,
                    false,
                    n + 1,
                );
                std::thread::sleep(Duration::from_millis(10));
                if pipeline.stdout_so_far().contains("status") {
                    break;
                }
            }
            let ended = pipeline.finish();
            let stdout = ended.stdout_text();
            let lines: Vec<&str> = stdout.lines().collect();
            assert_eq!(lines.len(), 2, "{}: {stdout:?}", target.name());
            assert!(
                lines[0].starts_with("pipe/n "),
                "{}: {stdout:?}",
                target.name()
            );
            assert_eq!(lines[1], "status 0", "{}", target.name());
            assert_eq!(ended.stderr, "", "{}", target.name());
        },
    );
}

#[test]
fn colour_is_used_only_where_asked_and_never_in_payloads() {
    let broker = TestBroker::start();
    let port = broker.port().to_string();
    let payload = "plain \u{1b}[0m payload";
    for (colour, env, coloured) in [
        ("always", vec![], true),
        ("auto", vec![], false),
        ("never", vec![], false),
        ("always", vec![("NO_COLOR", "1")], true),
    ] {
        let subscribed = broker
            .log_lines()
            .iter()
            .filter(|l| l.contains("Sending SUBACK"))
            .count();
        let subscriber = start_with_env(
            ours("rsub"),
            &with_port(&port, &["-t", "c/#", "-C", "1", "-v", "--color", colour]),
            None,
            None,
            &env,
        );
        broker.wait_for_log_count("Sending SUBACK", subscribed + 1);
        let mut publisher = RawClient::connect(broker.addr(), "colour-feeder");
        publisher.publish("c/t", payload.as_bytes(), QoS::AtLeastOnce, false, 1);
        let ended = subscriber.finish();
        let stdout = ended.stdout_text();
        let case = format!("--color {colour} {env:?}");
        assert_eq!(ended.status, Some(0), "{case}: {ended:?}");
        assert!(
            stdout.ends_with(&format!(" {payload}\n")),
            "{case}: payload bytes unchanged: {stdout:?}"
        );
        let topic_part = &stdout[..stdout.len() - payload.len() - 2];
        assert_eq!(
            topic_part.contains('\u{1b}'),
            coloured,
            "{case}: {stdout:?}"
        );
        assert!(topic_part.contains("c/t"), "{case}: {stdout:?}");
    }
}

#[test]
fn passwords_come_from_a_file_or_the_environment() {
    if !available("passwords_come_from_a_file_or_the_environment") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let passwords = dir.path().join("passwd");
    let created = std::process::Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&passwords)
        .args(["student", "s3cret"])
        .status()
        .expect("mosquitto_passwd");
    assert!(created.success());
    let broker = crate::support::mosquitto::Mosquitto::start(&format!(
        "allow_anonymous false\npassword_file {}",
        passwords.display()
    ));
    let port = broker.port.to_string();
    let good_file = dir.path().join("good");
    std::fs::write(&good_file, "s3cret\n").expect("write");
    let bad_file = dir.path().join("bad");
    std::fs::write(&bad_file, "wrong").expect("write");
    let good = good_file.to_string_lossy().into_owned();
    let bad = bad_file.to_string_lossy().into_owned();
    // (extra arguments, environment, exit status)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, Option<i32>);
    let cases: [Case; 5] = [
        (vec!["--pw-file", &good], vec![], Some(0)),
        (vec![], vec![("MQTT_PASSWORD", "s3cret")], Some(0)),
        (
            vec!["-P", "s3cret"],
            vec![("MQTT_PASSWORD", "wrong")],
            Some(0),
        ),
        (vec!["--pw-file", &bad], vec![], Some(5)),
        (vec![], vec![], Some(5)),
    ];
    for (extra, env, status) in cases {
        let args = [
            &["-p", port.as_str(), "-u", "student", "-t", "a", "-E"][..],
            &extra,
        ]
        .concat();
        let ended = start_with_env(ours("rsub"), &args, None, None, &env).finish();
        assert_eq!(ended.status, status, "{extra:?} {env:?}: {ended:?}");
        if status == Some(5) {
            assert_eq!(
                ended.first_error_line(),
                "Connection error: Connection Refused: not authorised."
            );
        }
    }
}

#[test]
fn rpub_lines_go_on_after_the_broker_falls_behind_at_qos_0() {
    on_both(
        "rpub_lines_go_on_after_the_broker_falls_behind_at_qos_0",
        "",
        |target| {
            const LINES: usize = 8192;
            let relay = Relay::to(target.addr().port());
            let mut watcher = RawClient::connect(target.addr(), "backlog-watcher");
            watcher.subscribe(1, &[("backlog/#", QoS::AtMostOnce)]);
            let relay_port = relay.port.to_string();
            let mut publisher = start(
                ours("rpub"),
                &with_port(&relay_port, &["-l", "-t", "backlog/x", "-d"]),
                None,
                None,
            );
            publisher.wait_for_stdout("received CONNACK", 1);
            relay.pause();
            // 8 MiB of 1 KiB lines: more than the socket buffers and rpub's own
            // write backlog hold, so rpub has to stop reading stdin for a while.
            let mut stdin = publisher.take_stdin();
            let written = Arc::new(AtomicUsize::new(0));
            let progress = Arc::clone(&written);
            let writer = std::thread::spawn(move || {
                let line = format!("{}\n", "y".repeat(1023));
                for _ in 0..LINES {
                    if stdin.write_all(line.as_bytes()).is_err() {
                        break;
                    }
                    progress.fetch_add(1, Ordering::SeqCst);
                }
            });
            // Wait until rpub stopped taking input: no progress for 300 ms.
            let deadline = std::time::Instant::now() + WAIT;
            let mut last = (written.load(Ordering::SeqCst), std::time::Instant::now());
            while last.1.elapsed() < QUIET {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{}: rpub never stopped reading",
                    target.name()
                );
                std::thread::sleep(Duration::from_millis(10));
                let now = written.load(Ordering::SeqCst);
                if now != last.0 {
                    last = (now, std::time::Instant::now());
                }
            }
            assert!(
                last.0 < LINES,
                "{}: all input was taken while paused",
                target.name()
            );
            relay.resume();
            let deadline = std::time::Instant::now() + WAIT;
            while written.load(Ordering::SeqCst) < LINES {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{}: rpub stopped reading stdin for good at line {}",
                    target.name(),
                    written.load(Ordering::SeqCst)
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            writer.join().expect("stdin writer");
            let ended = publisher.finish();
            assert_eq!(ended.status, Some(0), "{}: {}", target.name(), ended.stderr);
            let sent = ended.stdout_text().matches("sending PUBLISH").count();
            assert_eq!(sent, LINES, "{}: PUBLISHes rpub sent", target.name());
            let received = watcher.drain_publishes(QUIET);
            if target.is_mosquitto() {
                // mosquitto drops QoS 0 messages beyond max_queued_messages
                // (1000) for a subscriber that is not reading, as this one is not.
                assert!(received.len() >= 1000, "mosquitto: {}", received.len());
            } else {
                assert_eq!(received.len(), LINES, "rbroker");
            }
        },
    );
}

#[test]
fn a_failed_write_to_stdout_other_than_a_closed_pipe_is_an_error() {
    if !std::path::Path::new("/dev/full").exists() {
        eprintln!("skipped a_failed_write_to_stdout: no /dev/full");
        return;
    }
    let broker = TestBroker::start();
    RawClient::connect(broker.addr(), "full-feeder").publish(
        "full/x",
        b"a retained message",
        QoS::AtLeastOnce,
        true,
        1,
    );
    // /dev/full refuses every write (ENOSPC): not a closed pipe, so not quiet.
    let script = format!(
        "{} -p {} -t full/x -C 1 > /dev/full",
        ours("rsub"),
        broker.port()
    );
    let ended = run("bash", &["-c", &script], None);
    assert_eq!(ended.status, Some(1), "{}", ended.stderr);
    assert!(
        ended
            .stderr
            .contains("rsub: cannot write to standard output: No space left on device"),
        "{}",
        ended.stderr
    );
}
