//! `$SYS/broker/...`: mosquitto's topic names, retained, refreshed every
//! `sys_interval` seconds.

use std::collections::HashMap;
use std::time::Instant;

use mqttkit::broker::Config;
use mqttkit::protocol::QoS;

use crate::support::{RawClient, TestBroker, WAIT};

fn sys_broker(extra: Config) -> TestBroker {
    TestBroker::with_config(Config {
        sys_interval: 1,
        ..extra
    })
}

/// Reads `$SYS` messages until `done` is satisfied by the latest value per topic.
fn watch_until(
    client: &mut RawClient,
    done: impl Fn(&HashMap<String, String>) -> bool,
) -> HashMap<String, String> {
    let mut values = HashMap::new();
    let deadline = Instant::now() + WAIT;
    while !done(&values) {
        assert!(
            Instant::now() < deadline,
            "$SYS never satisfied the check; saw {values:#?}"
        );
        let publish = client.recv_publish();
        values.insert(
            publish.topic.to_string(),
            String::from_utf8_lossy(&publish.payload).into_owned(),
        );
    }
    values
}

#[test]
fn sys_topics_use_mosquittos_names_and_are_retained() {
    let broker = sys_broker(Config::default());
    let mut client = RawClient::connect(broker.addr(), "sys");
    client.subscribe(1, &[("$SYS/#", QoS::AtMostOnce)]);
    let required = [
        "$SYS/broker/version",
        "$SYS/broker/uptime",
        "$SYS/broker/clients/connected",
        "$SYS/broker/clients/disconnected",
        "$SYS/broker/clients/total",
        "$SYS/broker/clients/maximum",
        "$SYS/broker/messages/received",
        "$SYS/broker/messages/sent",
        "$SYS/broker/bytes/received",
        "$SYS/broker/bytes/sent",
        "$SYS/broker/publish/messages/received",
        "$SYS/broker/publish/messages/sent",
        "$SYS/broker/publish/messages/dropped",
        "$SYS/broker/retained messages/count",
        "$SYS/broker/subscriptions/count",
        "$SYS/broker/load/messages/received/1min",
        "$SYS/broker/load/connections/15min",
    ];
    let values = watch_until(&mut client, |v| required.iter().all(|t| v.contains_key(*t)));
    assert_eq!(
        values["$SYS/broker/version"],
        format!("rbroker version {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(values["$SYS/broker/uptime"].ends_with(" seconds"));

    // A later subscriber gets them as retained messages.
    let mut late = RawClient::connect(broker.addr(), "late");
    late.subscribe(1, &[("$SYS/broker/version", QoS::AtMostOnce)]);
    assert!(late.recv_publish().retain);
}

#[test]
fn sys_counters_follow_the_traffic() {
    let broker = sys_broker(Config {
        max_inflight_messages: 1,
        max_queued_messages: 2,
        ..Config::default()
    });
    let mut stuck = RawClient::connect(broker.addr(), "stuck");
    stuck.subscribe(1, &[("load", QoS::AtLeastOnce)]);
    let mut publisher = RawClient::connect(broker.addr(), "p");
    for n in 1..=7u16 {
        publisher.publish("load", b"x", QoS::AtLeastOnce, false, n);
    }
    let mut watcher = RawClient::connect(broker.addr(), "watch");
    watcher.subscribe(1, &[("$SYS/broker/#", QoS::AtMostOnce)]);
    let values = watch_until(&mut watcher, |v| {
        // One in flight and two queued for "stuck": four of seven dropped.
        v.get("$SYS/broker/publish/messages/dropped")
            .is_some_and(|d| d == "4")
            && v.get("$SYS/broker/publish/messages/received")
                .is_some_and(|r| r == "7")
            && v.get("$SYS/broker/clients/connected")
                .is_some_and(|c| c == "3")
            && v.get("$SYS/broker/subscriptions/count")
                .is_some_and(|c| c == "2")
    });
    assert_eq!(values["$SYS/broker/clients/maximum"], "3");
}
