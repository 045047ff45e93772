//! Interop with the real thing: mosquitto_pub and mosquitto_sub drive rbroker, and
//! each scenario runs unchanged against a real mosquitto broker too, which shows the
//! expectation itself is right.
//!
//! Skipped with a printed reason when mosquitto is not installed; mandatory under
//! `.ci/run` (`MQTTKIT_REQUIRE_MOSQUITTO=1`).

use mqttkit::broker::Config;

use crate::support::TestBroker;
use crate::support::mosquitto::{Mosquitto, available, messages, publish, run, subscriber};

/// Runs `scenario` against rbroker and then against mosquitto.
fn against_both(test: &str, scenario: impl Fn(&str, &str)) {
    if !available(test) {
        return;
    }
    let rbroker = TestBroker::with_config(Config::default());
    scenario("rbroker", &rbroker.port().to_string());
    let mosquitto = Mosquitto::start("");
    scenario("mosquitto", &mosquitto.port.to_string());
}

#[test]
fn qos_0_1_2_round_trip_in_every_protocol_version() {
    against_both(
        "qos_0_1_2_round_trip_in_every_protocol_version",
        |broker, port| {
            for version in ["31", "311", "5"] {
                for qos in ["0", "1", "2"] {
                    let topic = format!("interop/v{version}/q{qos}");
                    let sub = subscriber(
                        port,
                        &["-V", version, "-q", qos, "-t", &topic, "-C", "1", "-v"],
                    );
                    publish(
                        port,
                        &["-V", version, "-q", qos, "-t", &topic, "-m", "hello"],
                    );
                    let (status, lines) = sub.finish();
                    assert!(status.success(), "{broker} v{version} q{qos}: {status}");
                    assert_eq!(
                        messages(&lines),
                        [format!("{topic} hello")],
                        "{broker} v{version} q{qos}"
                    );
                    let received = lines
                        .iter()
                        .find(|l| l.contains("received PUBLISH"))
                        .expect("debug line");
                    assert!(
                        received.contains(&format!("(d0, q{qos}, r0, m")),
                        "{broker}: {received}"
                    );
                    assert!(
                        received.ends_with(&format!("'{topic}', ... (5 bytes))")),
                        "{broker}: {received}"
                    );
                }
            }
        },
    );
}

#[test]
fn retained_messages_are_set_and_cleared() {
    against_both("retained_messages_are_set_and_cleared", |broker, port| {
        publish(
            port,
            &["-t", "interop/retained", "-m", "kept", "-r", "-q", "1"],
        );
        let (status, lines) = run(
            "mosquitto_sub",
            &["-p", port, "-t", "interop/retained", "-C", "1", "-v", "-d"],
        );
        assert!(status.success(), "{broker}");
        assert_eq!(messages(&lines), ["interop/retained kept"], "{broker}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("received PUBLISH (d0, q0, r1,")),
            "{broker}: {lines:?}"
        );
        publish(port, &["-t", "interop/retained", "-n", "-r"]);
        // Nothing retained any more: mosquitto_sub times out (-W 1, status 27).
        let (status, lines) = run(
            "mosquitto_sub",
            &["-p", port, "-t", "interop/retained", "-W", "1", "-v", "-d"],
        );
        assert_eq!(status.code(), Some(27), "{broker}");
        assert!(
            messages(&lines)
                .iter()
                .all(|l| l.is_empty() || *l == "Timed out"),
            "{broker}: {lines:?}"
        );
    });
}

#[test]
fn the_will_of_a_killed_client_is_published() {
    against_both(
        "the_will_of_a_killed_client_is_published",
        |broker, port| {
            let watcher = subscriber(port, &["-t", "interop/will/#", "-C", "1", "-v"]);
            let mut victim = subscriber(
                port,
                &[
                    "-t",
                    "interop/unused",
                    "-i",
                    "victim",
                    "--will-topic",
                    "interop/will/victim",
                    "--will-payload",
                    "gone",
                ],
            );
            victim.kill();
            let (status, lines) = watcher.finish();
            assert!(status.success(), "{broker}");
            assert_eq!(messages(&lines), ["interop/will/victim gone"], "{broker}");
        },
    );
}

#[test]
fn a_persistent_session_receives_what_was_sent_while_it_was_away() {
    against_both(
        "a_persistent_session_receives_what_was_sent_while_it_was_away",
        |broker, port| {
            let (status, _) = run(
                "mosquitto_sub",
                &[
                    "-p",
                    port,
                    "-c",
                    "-i",
                    "away",
                    "-q",
                    "1",
                    "-t",
                    "interop/offline",
                    "-E",
                ],
            );
            assert!(status.success(), "{broker}: subscribe and leave");
            publish(
                port,
                &["-q", "1", "-t", "interop/offline", "-m", "while-away"],
            );
            let (status, lines) = run(
                "mosquitto_sub",
                &[
                    "-p",
                    port,
                    "-c",
                    "-i",
                    "away",
                    "-q",
                    "1",
                    "-t",
                    "interop/offline",
                    "-C",
                    "1",
                    "-v",
                ],
            );
            assert!(status.success(), "{broker}");
            assert_eq!(messages(&lines), ["interop/offline while-away"], "{broker}");
        },
    );
}

#[test]
fn sys_topics_are_there_under_mosquittos_names() {
    against_both(
        "sys_topics_are_there_under_mosquittos_names",
        |broker, port| {
            let (status, lines) = run(
                "mosquitto_sub",
                &["-p", port, "-t", "$SYS/#", "-v", "-W", "2"],
            );
            assert_eq!(status.code(), Some(27), "{broker}");
            let topics: Vec<&str> = lines
                .iter()
                .filter_map(|l| l.split_once(' ').map(|(t, _)| t))
                .collect();
            for required in [
                "$SYS/broker/version",
                "$SYS/broker/uptime",
                "$SYS/broker/clients/connected",
                "$SYS/broker/clients/total",
                "$SYS/broker/messages/received",
                "$SYS/broker/bytes/sent",
                "$SYS/broker/retained",
                "$SYS/broker/subscriptions/count",
                "$SYS/broker/load/messages/received/1min",
                "$SYS/broker/publish/messages/dropped",
            ] {
                assert!(
                    topics.contains(&required),
                    "{broker}: no {required} in {topics:?}"
                );
            }
            let version = lines
                .iter()
                .find(|l| l.starts_with("$SYS/broker/version "))
                .expect("version");
            assert!(
                version.ends_with(" version 2.0.11") || version.contains("rbroker version"),
                "{broker}: {version}"
            );
        },
    );
}
