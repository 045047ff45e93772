//! Persistent sessions (clean session 0 / session expiry > 0): subscriptions and QoS
//! 1/2 messages kept while the client is offline, and the session-present flag.

use mqttkit::broker::Config;
use mqttkit::protocol::{Connect, Packet, QoS};

use crate::support::{RawClient, TestBroker};

fn persistent(client_id: &str) -> Connect {
    Connect {
        clean_start: false,
        ..Connect::new(client_id, 60)
    }
}

#[test]
fn an_offline_persistent_session_keeps_qos1_and_qos2_messages() {
    let broker = TestBroker::start();
    let (subscriber, connack) = RawClient::handshake(broker.addr(), persistent("away"));
    assert!(!connack.session_present, "a new session");
    let mut subscriber = subscriber;
    subscriber.subscribe(1, &[("inbox/#", QoS::ExactlyOnce)]);
    subscriber.disconnect();
    broker.wait_for_log("Client away disconnected.");

    let mut publisher = RawClient::connect(broker.addr(), "sender");
    publisher.publish("inbox/1", b"q1", QoS::AtLeastOnce, false, 1);
    publisher.publish("inbox/2", b"q0", QoS::AtMostOnce, false, 0);
    publisher.publish("inbox/3", b"q2", QoS::ExactlyOnce, false, 2);

    let (mut subscriber, connack) = RawClient::handshake(broker.addr(), persistent("away"));
    assert!(connack.session_present);
    let first = subscriber.recv_publish();
    assert_eq!(
        (&first.payload[..], first.qos),
        (&b"q1"[..], QoS::AtLeastOnce)
    );
    subscriber.acknowledge(&first);
    let second = subscriber.recv_publish();
    assert_eq!(
        (&second.payload[..], second.qos),
        (&b"q2"[..], QoS::ExactlyOnce)
    );
    subscriber.acknowledge(&second);
    subscriber.send(&Packet::PingReq);
    assert!(
        matches!(subscriber.recv(), Packet::PingResp),
        "QoS 0 is not queued for offline clients"
    );
    // The subscription itself survived too.
    publisher.publish("inbox/4", b"live", QoS::AtLeastOnce, false, 3);
    assert_eq!(&subscriber.recv_publish().payload[..], b"live");
}

#[test]
fn a_clean_session_discards_what_was_kept() {
    let broker = TestBroker::start();
    let mut subscriber = RawClient::connect_with(broker.addr(), persistent("fresh"));
    subscriber.subscribe(1, &[("t", QoS::AtLeastOnce)]);
    subscriber.disconnect();
    broker.wait_for_log("Client fresh disconnected.");
    let (mut clean, connack) = RawClient::handshake(broker.addr(), Connect::new("fresh", 60));
    assert!(!connack.session_present);
    RawClient::connect(broker.addr(), "p").publish("t", b"x", QoS::AtLeastOnce, false, 1);
    clean.send(&Packet::PingReq);
    assert!(
        matches!(clean.recv(), Packet::PingResp),
        "the old subscription is gone"
    );
    clean.disconnect();
    broker.wait_for_log("Client fresh disconnected.");
    let (_, connack) = RawClient::handshake(broker.addr(), persistent("fresh"));
    assert!(
        !connack.session_present,
        "a clean session ends with its connection"
    );
}

#[test]
fn the_offline_queue_is_bounded_by_max_queued_messages() {
    let broker = TestBroker::with_config(Config {
        max_queued_messages: 5,
        sys_interval: 0,
        ..Config::default()
    });
    let mut subscriber = RawClient::connect_with(broker.addr(), persistent("bounded"));
    subscriber.subscribe(1, &[("b", QoS::AtLeastOnce)]);
    subscriber.disconnect();
    broker.wait_for_log("Client bounded disconnected.");
    let mut publisher = RawClient::connect(broker.addr(), "p");
    for n in 1..=8u16 {
        publisher.publish("b", format!("{n}").as_bytes(), QoS::AtLeastOnce, false, n);
    }
    let mut subscriber = RawClient::connect_with(broker.addr(), persistent("bounded"));
    let mut received = Vec::new();
    for _ in 0..5 {
        let publish = subscriber.recv_publish();
        received.push(String::from_utf8_lossy(&publish.payload).into_owned());
        subscriber.acknowledge(&publish);
    }
    assert_eq!(received, ["1", "2", "3", "4", "5"]);
    subscriber.send(&Packet::PingReq);
    assert!(matches!(subscriber.recv(), Packet::PingResp));
}
