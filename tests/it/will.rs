//! Last will: published on every abnormal end of a connection, never after a normal
//! DISCONNECT.

use bytes::Bytes;
use mqttkit::protocol::{Connect, Packet, Properties, QoS, TopicName, Will};

use crate::support::{RawClient, TestBroker};

fn with_will(client_id: &str, keep_alive: u16, retain: bool) -> Connect {
    Connect {
        will: Some(Will {
            topic: TopicName::new(format!("will/{client_id}")).expect("topic"),
            payload: Bytes::from_static(b"gone"),
            qos: QoS::AtLeastOnce,
            retain,
            properties: Properties::new(),
        }),
        ..Connect::new(client_id, keep_alive)
    }
}

fn watcher(broker: &TestBroker) -> RawClient {
    let mut watcher = RawClient::connect(broker.addr(), "watcher");
    watcher.subscribe(1, &[("will/#", QoS::AtLeastOnce)]);
    watcher
}

fn expect_will(watcher: &mut RawClient, client_id: &str) {
    let will = watcher.recv_publish();
    assert_eq!(will.topic.as_str(), format!("will/{client_id}"));
    assert_eq!(
        (&will.payload[..], will.qos),
        (&b"gone"[..], QoS::AtLeastOnce)
    );
    watcher.acknowledge(&will);
}

#[test]
fn the_will_is_published_when_the_socket_closes_without_disconnect() {
    let broker = TestBroker::start();
    let mut watcher = watcher(&broker);
    let client = RawClient::connect_with(broker.addr(), with_will("closer", 60, false));
    drop(client);
    expect_will(&mut watcher, "closer");
}

#[test]
fn no_will_after_a_normal_disconnect() {
    let broker = TestBroker::start();
    let mut watcher = watcher(&broker);
    RawClient::connect_with(broker.addr(), with_will("polite", 60, false)).disconnect();
    broker.wait_for_log("Client polite disconnected.");
    RawClient::connect(broker.addr(), "p").publish(
        "will/sentinel",
        b"next",
        QoS::AtLeastOnce,
        false,
        1,
    );
    let next = watcher.recv_publish();
    assert_eq!(
        next.topic.as_str(),
        "will/sentinel",
        "the will must not have been sent"
    );
}

#[test]
fn the_will_is_published_when_keep_alive_expires() {
    let broker = TestBroker::start();
    let mut watcher = watcher(&broker);
    let _silent = RawClient::connect_with(broker.addr(), with_will("silent", 1, false));
    expect_will(&mut watcher, "silent");
}

#[test]
fn the_will_is_published_after_a_protocol_violation() {
    let broker = TestBroker::start();
    let mut watcher = watcher(&broker);
    let mut client = RawClient::connect_with(broker.addr(), with_will("rude", 60, false));
    client.send_bytes(&[0x36, 3, 0, 1, b'x']); // PUBLISH with QoS 3
    client.expect_closed();
    expect_will(&mut watcher, "rude");
}

#[test]
fn the_will_is_published_when_the_session_is_taken_over() {
    let broker = TestBroker::start();
    let mut watcher = watcher(&broker);
    let mut old = RawClient::connect_with(broker.addr(), with_will("twin", 60, false));
    let _new = RawClient::connect(broker.addr(), "twin");
    old.expect_closed();
    expect_will(&mut watcher, "twin");
}

#[test]
fn a_retained_will_is_kept_for_later_subscribers() {
    let broker = TestBroker::start();
    let client = RawClient::connect_with(broker.addr(), with_will("kept", 60, true));
    drop(client);
    broker.wait_for_log("Client kept closed its connection.");
    let mut late = RawClient::connect(broker.addr(), "late");
    late.subscribe(1, &[("will/kept", QoS::AtLeastOnce)]);
    let will = late.recv_publish();
    assert!(will.retain && &will.payload[..] == b"gone");
}

#[test]
fn a_will_needs_no_subscriber_and_does_not_disturb_others() {
    let broker = TestBroker::start();
    let client = RawClient::connect_with(broker.addr(), with_will("alone", 60, false));
    drop(client);
    broker.wait_for_log("Client alone closed its connection.");
    let mut other = RawClient::connect(broker.addr(), "other");
    other.send(&Packet::PingReq);
    assert!(matches!(other.recv(), Packet::PingResp));
}

#[test]
fn no_will_is_published_when_the_broker_shuts_down() {
    let mut broker = TestBroker::start();
    let _client = RawClient::connect_with(broker.addr(), with_will("stays", 60, true));
    broker.wait_for_log("New client connected");
    broker.stop();
    // A retained will would have reached the retained store even with no subscriber.
    assert_eq!(broker.figures().retained_messages, 0);
    assert_eq!(
        broker.figures().clients_connected,
        0,
        "every connection was closed"
    );
}
