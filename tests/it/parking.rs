//! Idle connections parked without a task (`broker/connection/park.rs`): a
//! parked connection behaves as one with a task, for every way it can be woken:
//! a packet, a delivery, the keep-alive sweep, a takeover, the peer closing,
//! shutdown.

use bytes::Bytes;
use mqttkit::protocol::{Connect, Property, Publish, QoS, ReasonCode, TopicName, Will};

use crate::support::raw::publish_v5;
use crate::support::{RawClient, TestBroker};

fn with_will(client_id: &str, keep_alive: u16) -> Connect {
    Connect {
        will: Some(Will {
            topic: TopicName::new(format!("will/{client_id}")).expect("topic"),
            payload: Bytes::from_static(b"gone"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Default::default(),
        }),
        ..Connect::new(client_id, keep_alive)
    }
}

#[test]
fn a_client_parks_once_connected_and_answers_from_its_park() {
    let broker = TestBroker::start();
    let mut client = RawClient::connect(broker.addr(), "parks");
    broker.wait_for_parked(1);
    client.ping();
    // Woken by its PINGREQ and parked again: it was idle a whole sweep.
    broker.wait_for_parked(1);
    client.ping();
    client.disconnect();
    broker.wait_for_log("Client parks disconnected.");
    broker.wait_for_parked(0);
}

#[test]
fn a_client_woken_after_a_long_park_parks_again_once_answered() {
    let broker = TestBroker::start();
    let mut client = RawClient::connect(broker.addr(), "pinger");
    broker.wait_for_parked(1);
    let parks = broker.figures().parks;
    // A park of a second or more marks a mostly idle client (park.rs,
    // EAGER_AFTER_MS): time must pass for that, so this test waits for it.
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    client.ping();
    broker.wait_for_parked(1);
    // Parked once, right after its PINGRESP: not first without reading the
    // PINGREQ, then again when the sweep found it idle.
    assert_eq!(broker.figures().parks, parks + 1);
}

#[test]
fn a_parked_subscriber_gets_every_message_and_parks_again() {
    let broker = TestBroker::start();
    let mut subscriber = RawClient::connect(broker.addr(), "reader");
    subscriber.subscribe(1, &[("parked/#", QoS::AtLeastOnce)]);
    broker.wait_for_parked(1);
    let mut publisher = RawClient::connect(broker.addr(), "writer");
    broker.wait_for_parked(2);
    for round in 0..3u16 {
        publisher.publish("parked/a", b"zero", QoS::AtMostOnce, false, 0);
        publisher.publish("parked/b", b"one", QoS::AtLeastOnce, false, 10 + round);
        let first = subscriber.recv_publish();
        let second = subscriber.recv_publish();
        assert_eq!(
            [
                (first.topic.as_str(), &first.payload[..]),
                (second.topic.as_str(), &second.payload[..])
            ],
            [("parked/a", &b"zero"[..]), ("parked/b", &b"one"[..])],
            "round {round}"
        );
        subscriber.acknowledge(&second);
        // Both idle again: both park again, with nothing left in flight.
        broker.wait_for_parked(2);
        assert_eq!(broker.figures().queued_messages, 0, "round {round}");
    }
}

#[test]
fn a_parked_client_that_stops_pinging_is_closed_and_its_will_sent() {
    let broker = TestBroker::start();
    let mut watcher = RawClient::connect(broker.addr(), "watcher");
    watcher.subscribe(1, &[("will/#", QoS::AtLeastOnce)]);
    let mut silent = RawClient::connect_with(broker.addr(), with_will("silent", 1));
    broker.wait_for_parked(2);
    let will = watcher.recv_publish();
    assert_eq!(
        (will.topic.as_str(), &will.payload[..]),
        ("will/silent", &b"gone"[..])
    );
    broker.wait_for_log("Client silent has exceeded timeout, disconnecting.");
    silent.expect_closed();
}

#[test]
fn a_parked_client_that_closes_its_socket_sends_its_will() {
    let broker = TestBroker::start();
    let mut watcher = RawClient::connect(broker.addr(), "watcher");
    watcher.subscribe(1, &[("will/#", QoS::AtLeastOnce)]);
    let closer = RawClient::connect_with(broker.addr(), with_will("closer", 60));
    broker.wait_for_parked(2);
    drop(closer);
    let will = watcher.recv_publish();
    assert_eq!(will.topic.as_str(), "will/closer");
    broker.wait_for_log("Client closer closed its connection.");
    broker.wait_for_parked(1);
}

#[test]
fn a_parked_session_is_taken_over_and_keeps_its_messages() {
    let broker = TestBroker::start();
    let persistent = || Connect {
        clean_start: false,
        ..Connect::new("twice", 60)
    };
    let mut first = RawClient::connect_with(broker.addr(), persistent());
    first.subscribe(1, &[("kept/#", QoS::AtLeastOnce)]);
    broker.wait_for_parked(1);
    let (mut second, connack) = RawClient::handshake(broker.addr(), persistent());
    assert_eq!(
        (connack.code, connack.session_present),
        (ReasonCode::Success, true)
    );
    first.expect_closed();
    broker.wait_for_log("Client twice already connected, closing old connection.");
    broker.wait_for_parked(1);
    RawClient::connect(broker.addr(), "sender").publish(
        "kept/x",
        b"after",
        QoS::AtLeastOnce,
        false,
        1,
    );
    assert_eq!(&second.recv_publish().payload[..], b"after");
}

#[test]
fn shutdown_wakes_parked_clients_and_tells_mqtt5_ones_why() {
    let mut broker = TestBroker::start();
    let (mut v5, _) = RawClient::handshake_v5(broker.addr(), "five", []);
    let mut v3 = RawClient::connect(broker.addr(), "three");
    broker.wait_for_parked(2);
    broker.stop();
    assert_eq!(v5.disconnect_reason(), Some(ReasonCode::ServerShuttingDown));
    v3.expect_closed();
    assert_eq!(broker.figures().parked_connections, 0);
    assert_eq!(
        broker.figures().clients_connected,
        0,
        "every parked client was disconnected"
    );
}

#[test]
fn a_parked_mqtt5_client_keeps_its_topic_aliases() {
    let broker = TestBroker::start();
    let (mut client, connack) = RawClient::handshake_v5(broker.addr(), "aliaser", []);
    assert!(connack.properties.topic_alias_maximum().unwrap_or(0) >= 1);
    client.subscribe(1, &[("alias/#", QoS::AtMostOnce)]);
    client.publish_packet(publish_v5(
        "alias/one",
        b"named",
        QoS::AtLeastOnce,
        [Property::TopicAlias(1)],
    ));
    assert_eq!(&client.recv_publish().payload[..], b"named");
    broker.wait_for_parked(1);
    let by_alias = Publish {
        topic: TopicName::alias_placeholder(),
        ..publish_v5(
            "unused",
            b"aliased",
            QoS::AtLeastOnce,
            [Property::TopicAlias(1)],
        )
    };
    let ack = client.publish_packet(by_alias).expect("PUBACK");
    assert_eq!(ack.reason, ReasonCode::Success);
    let delivered = client.recv_publish();
    assert_eq!(
        (delivered.topic.as_str(), &delivered.payload[..]),
        ("alias/one", &b"aliased"[..])
    );
}
