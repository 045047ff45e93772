//! Retained messages: stored, replaced, deleted by an empty payload, and delivered on
//! subscribe with the retain flag and QoS = min(message, subscription).

use mqttkit::broker::Config;
use mqttkit::protocol::{Packet, QoS};

use crate::support::{RawClient, TestBroker};

#[test]
fn retained_messages_are_stored_replaced_and_deleted() {
    let broker = TestBroker::start();
    let mut publisher = RawClient::connect(broker.addr(), "p");
    publisher.publish("r/a", b"first", QoS::AtLeastOnce, true, 1);
    publisher.publish("r/a", b"second", QoS::AtLeastOnce, true, 2);
    publisher.publish("r/b", b"other", QoS::AtLeastOnce, true, 3);

    let mut subscriber = RawClient::connect(broker.addr(), "s1");
    subscriber.subscribe(1, &[("r/a", QoS::AtMostOnce)]);
    let retained = subscriber.recv_publish();
    assert_eq!(&retained.payload[..], b"second");
    assert!(
        retained.retain,
        "sent because of the new subscription [MQTT-3.3.1-8]"
    );

    // An empty retained payload deletes, and is still forwarded live with retain 0.
    publisher.publish("r/a", b"", QoS::AtLeastOnce, true, 4);
    let live = subscriber.recv_publish();
    assert!(live.payload.is_empty() && !live.retain, "[MQTT-3.3.1-9]");

    let mut late = RawClient::connect(broker.addr(), "s2");
    late.subscribe(1, &[("r/#", QoS::AtMostOnce)]);
    let only = late.recv_publish();
    assert_eq!(&only.payload[..], b"other");
    late.send(&Packet::PingReq);
    assert!(matches!(late.recv(), Packet::PingResp), "r/a was deleted");
}

#[test]
fn retained_delivery_uses_the_lower_qos_and_follows_the_suback() {
    let broker = TestBroker::start();
    RawClient::connect(broker.addr(), "p").publish("q/r", b"two", QoS::ExactlyOnce, true, 1);
    for (sub_qos, expected) in [
        (QoS::AtMostOnce, QoS::AtMostOnce),
        (QoS::AtLeastOnce, QoS::AtLeastOnce),
        (QoS::ExactlyOnce, QoS::ExactlyOnce),
    ] {
        let mut subscriber = RawClient::connect(broker.addr(), "s");
        subscriber.send(&Packet::Subscribe(mqttkit::protocol::Subscribe {
            packet_id: crate::support::raw::pid(1),
            properties: Default::default(),
            filters: vec![(
                mqttkit::protocol::TopicFilter::new("q/#").expect("filter"),
                mqttkit::protocol::SubscriptionOptions::new(sub_qos),
            )],
            rejected: Vec::new(),
        }));
        assert!(
            matches!(subscriber.recv(), Packet::SubAck(_)),
            "SUBACK comes before retained messages"
        );
        let retained = subscriber.recv_publish();
        assert_eq!((retained.qos, retained.retain), (expected, true));
        subscriber.acknowledge(&retained);
        subscriber.disconnect();
    }
}

#[test]
fn retain_available_false_disconnects_clients_that_publish_retained() {
    let broker = TestBroker::with_config(Config {
        retain_available: false,
        sys_interval: 0,
        ..Config::default()
    });
    let mut client = RawClient::connect(broker.addr(), "r");
    client.publish("t", b"plain", QoS::AtLeastOnce, false, 1);
    client.publish("t", b"kept", QoS::AtMostOnce, true, 0);
    client.expect_closed();
}
