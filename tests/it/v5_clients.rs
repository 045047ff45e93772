//! MQTT 5 with real clients: `mosquitto_sub`/`mosquitto_pub -V 5 -D ...` and the
//! paho-mqtt Python client drive rbroker, and the same scenarios drive mosquitto.

use std::time::{Duration, Instant};

use crate::support::mosquitto::{messages, publish, run, subscriber};
use crate::support::paho;
use crate::support::target::{Target, with_mosquitto_tools};

/// The scenarios in `paho_v5.py`, each of which must report "ok".
const PAHO_SCENARIOS: [&str; 8] = [
    "properties_travel_with_the_message",
    "an_empty_client_id_is_assigned_one",
    "a_session_with_an_expiry_outlives_its_connection",
    "topic_aliases_from_the_client",
    "acknowledgements_say_when_nobody_subscribed",
    "the_broker_keeps_within_receive_maximum",
    "shared_subscriptions_take_turns",
    "no_local_and_retain_handling",
];

#[test]
fn paho_mqtt_v5_scenarios_pass() {
    let test = "paho_mqtt_v5_scenarios_pass";
    let Some(python) = paho::python(test) else {
        return;
    };
    let mut targets = vec![Target::rbroker("")];
    if crate::support::mosquitto::available(test) {
        targets.push(Target::Mosquitto(
            crate::support::mosquitto::Mosquitto::start(""),
        ));
    }
    for target in targets {
        let (status, out) = paho::run_script(
            &python,
            "tests/it/paho_v5.py",
            &[&target.port(), target.name()],
            Duration::from_secs(60),
        );
        assert!(status.success(), "{}: {status}\n{out}", target.name());
        let passed: Vec<&str> = out
            .lines()
            .filter_map(|line| line.strip_prefix("ok "))
            .filter_map(|rest| rest.split_whitespace().next())
            .collect();
        assert_eq!(passed, PAHO_SCENARIOS, "{}", target.name());
    }
}

#[test]
fn mosquitto_clients_carry_v5_properties_through() {
    with_mosquitto_tools(
        "mosquitto_clients_carry_v5_properties_through",
        "",
        |target| {
            let port = target.port();
            let sub = subscriber(
                &port,
                &[
                    "-V",
                    "5",
                    "-t",
                    "cli/props",
                    "-C",
                    "1",
                    "-F",
                    "%C|%E|%F|%P|%R|%D|%S",
                    "-D",
                    "subscribe",
                    "subscription-identifier",
                    "9",
                ],
            );
            publish(
                &port,
                &[
                    "-V",
                    "5",
                    "-t",
                    "cli/props",
                    "-m",
                    "hi",
                    "-q",
                    "1",
                    "-D",
                    "publish",
                    "content-type",
                    "text/plain",
                    "-D",
                    "publish",
                    "message-expiry-interval",
                    "60",
                    "-D",
                    "publish",
                    "payload-format-indicator",
                    "1",
                    "-D",
                    "publish",
                    "user-property",
                    "unit",
                    "celsius",
                    "-D",
                    "publish",
                    "response-topic",
                    "cli/replies",
                    "-D",
                    "publish",
                    "correlation-data",
                    "req-1",
                ],
            );
            let (status, lines) = sub.finish();
            assert!(status.success(), "{}", target.name());
            let line = messages(&lines).join("\n");
            // The expiry left may have ticked down by one second on the way.
            let expected = ["60", "59"]
                .map(|left| format!("text/plain|{left}|1|unit:celsius|cli/replies|req-1|9"));
            assert!(expected.contains(&line), "{}: {line:?}", target.name());
        },
    );
}

#[test]
fn mosquitto_sub_keeps_a_v5_session_for_its_expiry_interval() {
    with_mosquitto_tools(
        "mosquitto_sub_keeps_a_v5_session_for_its_expiry_interval",
        "",
        |target| {
            let port = target.port();
            let session = [
                "-V", "5", "-c", "-i", "cli-away", "-x", "60", "-q", "1", "-t", "cli/away",
            ];
            let mut args = vec!["-p", &port];
            args.extend(session);
            let (status, _) = run("mosquitto_sub", &[args.as_slice(), &["-E"]].concat());
            assert!(status.success(), "{}: subscribe and leave", target.name());
            publish(
                &port,
                &["-V", "5", "-q", "1", "-t", "cli/away", "-m", "kept"],
            );
            let (status, lines) = run(
                "mosquitto_sub",
                &[args.as_slice(), &["-C", "1", "-v"]].concat(),
            );
            assert!(status.success(), "{}", target.name());
            assert_eq!(messages(&lines), ["cli/away kept"], "{}", target.name());
        },
    );
}

#[test]
fn mosquitto_sub_will_waits_for_its_will_delay() {
    with_mosquitto_tools(
        "mosquitto_sub_will_waits_for_its_will_delay",
        "",
        |target| {
            let port = target.port();
            let watcher = subscriber(&port, &["-V", "5", "-t", "cli/will", "-C", "1", "-v"]);
            let mut victim = subscriber(
                &port,
                &[
                    "-V",
                    "5",
                    "-i",
                    "cli-victim",
                    "-x",
                    "30",
                    "-t",
                    "cli/unused",
                    "--will-topic",
                    "cli/will",
                    "--will-payload",
                    "gone",
                    "-D",
                    "will",
                    "will-delay-interval",
                    "1",
                ],
            );
            let killed = Instant::now();
            victim.kill();
            let (status, lines) = watcher.finish();
            let waited = killed.elapsed();
            assert!(status.success(), "{}", target.name());
            assert_eq!(messages(&lines), ["cli/will gone"], "{}", target.name());
            if !target.is_mosquitto() {
                assert!(waited >= Duration::from_secs(1), "sent after {waited:?}");
            }
        },
    );
}

#[test]
fn mosquitto_sub_shared_subscribers_take_turns() {
    with_mosquitto_tools(
        "mosquitto_sub_shared_subscribers_take_turns",
        "",
        |target| {
            let port = target.port();
            let members: Vec<_> = (0..2)
                .map(|_| {
                    subscriber(
                        &port,
                        &["-V", "5", "-q", "1", "-t", "$share/g/cli/jobs", "-C", "2"],
                    )
                })
                .collect();
            for job in 0..4 {
                publish(
                    &port,
                    &[
                        "-V",
                        "5",
                        "-q",
                        "1",
                        "-t",
                        "cli/jobs",
                        "-m",
                        &job.to_string(),
                    ],
                );
            }
            let mut shares: Vec<Vec<String>> = members
                .into_iter()
                .map(|member| {
                    let (status, lines) = member.finish();
                    assert!(status.success(), "{}", target.name());
                    messages(&lines).iter().map(|l| l.to_string()).collect()
                })
                .collect();
            shares.sort();
            assert_eq!(shares, [["0", "2"], ["1", "3"]], "{}", target.name());
        },
    );
}

#[test]
fn mosquitto_sub_retain_options_on_v5() {
    with_mosquitto_tools("mosquitto_sub_retain_options_on_v5", "", |target| {
        let port = target.port();
        let name = target.name();
        publish(&port, &["-V", "5", "-r", "-t", "cli/kept", "-m", "old"]);
        // -R on MQTT 5 is Retain Handling 2: nothing retained is sent; -W 1 times out.
        let (status, lines) = run(
            "mosquitto_sub",
            &["-p", &port, "-V", "5", "-R", "-t", "cli/kept", "-W", "1"],
        );
        assert_eq!(status.code(), Some(27), "{name}: {lines:?}");
        assert!(lines.is_empty(), "{name}: {lines:?}");
        // Retain As Published keeps the flag on a live retained message.
        for (topic, option, flag) in [
            ("cli/rap/kept", Some("--retain-as-published"), "1"),
            ("cli/rap/cleared", None, "0"),
        ] {
            let mut args = vec!["-V", "5", "-t", topic, "-C", "1", "-F", "%r %p"];
            args.extend(option);
            let sub = subscriber(&port, &args);
            publish(&port, &["-V", "5", "-r", "-t", topic, "-m", "live"]);
            let (status, lines) = sub.finish();
            assert!(status.success(), "{name}");
            assert_eq!(
                messages(&lines),
                [format!("{flag} live")],
                "{name} {option:?}"
            );
        }
    });
}
