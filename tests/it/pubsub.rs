//! PUBLISH and SUBSCRIBE: QoS in both directions, the in-flight window and the queue
//! behind it, retransmission, exactly-once, and routing rules.
//!
//! "Nothing else arrives" is shown with a barrier: a PINGREQ sent after the event;
//! the connection handles it only after writing everything already queued for the
//! client, so a PINGRESP that comes next proves nothing more was pending.

use bytes::Bytes;
use mqttkit::broker::Config;
use mqttkit::protocol::{Ack, Connect, Packet, Publish, QoS, ReasonCode, TopicName};

use crate::support::raw::pid;
use crate::support::{RawClient, TestBroker};

/// Asserts that the next packet is the PINGRESP answering a PINGREQ sent now.
fn assert_nothing_pending(client: &mut RawClient) {
    client.send(&Packet::PingReq);
    match client.recv() {
        Packet::PingResp => {}
        other => panic!("expected nothing before PINGRESP, got {other:?}"),
    }
}

const ALL_QOS: [QoS; 3] = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];

#[test]
fn delivery_qos_is_the_lower_of_publish_and_subscription() {
    let broker = TestBroker::start();
    let mut publisher = RawClient::connect(broker.addr(), "pub");
    for sub_qos in ALL_QOS {
        let mut subscriber = RawClient::connect(broker.addr(), "sub");
        let suback = subscriber.subscribe(1, &[("q/t", sub_qos)]);
        assert_eq!(
            suback.codes,
            vec![ReasonCode::from_u8(sub_qos as u8).expect("granted")]
        );
        for (n, pub_qos) in ALL_QOS.into_iter().enumerate() {
            let payload = format!("{pub_qos}->{sub_qos}");
            publisher.publish("q/t", payload.as_bytes(), pub_qos, false, n as u16 + 1);
            let received = subscriber.recv_publish();
            assert_eq!(&received.payload[..], payload.as_bytes());
            assert_eq!(received.qos, pub_qos.min(sub_qos), "{payload}");
            assert!(!received.retain && !received.dup);
            subscriber.acknowledge(&received);
        }
        assert_nothing_pending(&mut subscriber);
        subscriber.disconnect();
    }
}

#[test]
fn overlapping_subscriptions_deliver_one_copy_at_the_highest_qos() {
    let broker = TestBroker::start();
    let mut subscriber = RawClient::connect(broker.addr(), "overlap");
    subscriber.subscribe(
        1,
        &[
            ("a/#", QoS::AtMostOnce),
            ("a/b", QoS::ExactlyOnce),
            ("+/b", QoS::AtLeastOnce),
        ],
    );
    RawClient::connect(broker.addr(), "p").publish("a/b", b"once", QoS::ExactlyOnce, false, 1);
    let received = subscriber.recv_publish();
    assert_eq!(received.qos, QoS::ExactlyOnce);
    subscriber.acknowledge(&received);
    assert_nothing_pending(&mut subscriber);
}

#[test]
fn the_in_flight_window_holds_back_further_qos1_messages() {
    let broker = TestBroker::with_config(Config {
        max_inflight_messages: 2,
        sys_interval: 0,
        ..Config::default()
    });
    let mut subscriber = RawClient::connect(broker.addr(), "slow");
    subscriber.subscribe(1, &[("w", QoS::AtLeastOnce)]);
    let mut publisher = RawClient::connect(broker.addr(), "fast");
    for n in 1..=5u16 {
        publisher.publish("w", format!("m{n}").as_bytes(), QoS::AtLeastOnce, false, n);
    }
    let first = subscriber.recv_publish();
    let second = subscriber.recv_publish();
    assert_eq!(
        (&first.payload[..], &second.payload[..]),
        (&b"m1"[..], &b"m2"[..])
    );
    assert_nothing_pending(&mut subscriber);
    subscriber.acknowledge(&first);
    assert_eq!(&subscriber.recv_publish().payload[..], b"m3");
    assert_nothing_pending(&mut subscriber);
}

#[test]
fn a_full_queue_drops_new_messages_and_says_so_once() {
    let broker = TestBroker::with_config(Config {
        max_inflight_messages: 1,
        max_queued_messages: 3,
        sys_interval: 0,
        ..Config::default()
    });
    let mut subscriber = RawClient::connect(broker.addr(), "full");
    subscriber.subscribe(1, &[("f", QoS::AtLeastOnce)]);
    let mut publisher = RawClient::connect(broker.addr(), "flood");
    for n in 1..=10u16 {
        publisher.publish("f", format!("m{n}").as_bytes(), QoS::AtLeastOnce, false, n);
    }
    // One in flight and three queued survive; six are dropped.
    let mut received = Vec::new();
    for _ in 0..4 {
        let publish = subscriber.recv_publish();
        received.push(String::from_utf8_lossy(&publish.payload).into_owned());
        subscriber.acknowledge(&publish);
    }
    assert_eq!(received, ["m1", "m2", "m3", "m4"]);
    assert_nothing_pending(&mut subscriber);
    let drops = broker
        .log_lines()
        .iter()
        .filter(|l| *l == "Outgoing messages are being dropped for client full.")
        .count();
    assert_eq!(drops, 1, "logged once per episode");
}

#[test]
fn unacknowledged_messages_are_resent_with_dup_after_reconnecting() {
    let broker = TestBroker::start();
    let persistent = Connect {
        clean_start: false,
        ..Connect::new("resume", 60)
    };
    let mut subscriber = RawClient::connect_with(broker.addr(), persistent.clone());
    subscriber.subscribe(1, &[("r/1", QoS::AtLeastOnce), ("r/2", QoS::ExactlyOnce)]);
    let mut publisher = RawClient::connect(broker.addr(), "p");
    publisher.publish("r/1", b"one", QoS::AtLeastOnce, false, 1);
    publisher.publish("r/2", b"two", QoS::ExactlyOnce, false, 2);
    let one = subscriber.recv_publish();
    let two = subscriber.recv_publish();
    // Acknowledge neither; QoS 2 gets as far as PUBREC.
    subscriber.send(&Packet::PubRec(Ack::new(two.packet_id.expect("id"))));
    assert!(matches!(subscriber.recv(), Packet::PubRel(_)));
    drop(subscriber);
    broker.wait_for_log("Client resume closed its connection.");

    let (mut subscriber, connack) = RawClient::handshake(broker.addr(), persistent);
    assert!(connack.session_present);
    let resent = subscriber.recv_publish();
    assert!(resent.dup, "[MQTT-4.4.0-1] re-sent with DUP");
    assert_eq!(
        (resent.packet_id, &resent.payload[..]),
        (one.packet_id, &b"one"[..])
    );
    match subscriber.recv() {
        Packet::PubRel(ack) => assert_eq!(
            Some(ack.packet_id),
            two.packet_id,
            "QoS 2 resumes at PUBREL"
        ),
        other => panic!("expected PUBREL, got {other:?}"),
    }
    subscriber.acknowledge(&resent);
    subscriber.send(&Packet::PubComp(Ack::new(two.packet_id.expect("id"))));
    assert_nothing_pending(&mut subscriber);
}

#[test]
fn a_qos2_publish_resent_before_pubrel_is_delivered_once() {
    let broker = TestBroker::start();
    let mut subscriber = RawClient::connect(broker.addr(), "once");
    subscriber.subscribe(1, &[("x", QoS::ExactlyOnce)]);
    let mut publisher = RawClient::connect(broker.addr(), "twice");
    let publish = Publish {
        qos: QoS::ExactlyOnce,
        packet_id: Some(pid(7)),
        ..Publish::new(
            TopicName::new("x").expect("topic"),
            Bytes::from_static(b"exactly"),
        )
    };
    publisher.send(&Packet::Publish(publish.clone()));
    assert!(matches!(publisher.recv(), Packet::PubRec(a) if a.packet_id == pid(7)));
    publisher.send(&Packet::Publish(Publish {
        dup: true,
        ..publish
    }));
    assert!(matches!(publisher.recv(), Packet::PubRec(a) if a.packet_id == pid(7)));
    publisher.send(&Packet::PubRel(Ack::new(pid(7))));
    assert!(matches!(publisher.recv(), Packet::PubComp(a) if a.packet_id == pid(7)));
    let received = subscriber.recv_publish();
    assert_eq!(&received.payload[..], b"exactly");
    subscriber.acknowledge(&received);
    assert_nothing_pending(&mut subscriber);
}

#[test]
fn pubrel_for_an_unknown_id_is_answered_with_pubcomp() {
    let broker = TestBroker::start();
    let mut client = RawClient::connect(broker.addr(), "stray");
    client.send(&Packet::PubRel(Ack::new(pid(42))));
    assert!(matches!(client.recv(), Packet::PubComp(a) if a.packet_id == pid(42)));
    // Stray acknowledgements are ignored and the connection stays.
    client.send(&Packet::PubAck(Ack::new(pid(9))));
    client.send(&Packet::PubComp(Ack::new(pid(9))));
    client.ping();
}

#[test]
fn unsubscribe_stops_delivery_and_is_always_acknowledged() {
    let broker = TestBroker::start();
    let mut subscriber = RawClient::connect(broker.addr(), "u");
    subscriber.subscribe(1, &[("u/+", QoS::AtMostOnce)]);
    let unsubscribe = |client: &mut RawClient, id: u16, filter: &str| {
        client.send(&Packet::Unsubscribe(mqttkit::protocol::Unsubscribe {
            packet_id: pid(id),
            properties: Default::default(),
            filters: vec![mqttkit::protocol::TopicFilter::new(filter).expect("filter")],
        }));
        assert!(matches!(client.recv(), Packet::UnsubAck(a) if a.packet_id == pid(id)));
    };
    unsubscribe(&mut subscriber, 2, "u/+");
    unsubscribe(&mut subscriber, 3, "never/subscribed");
    RawClient::connect(broker.addr(), "p").publish("u/1", b"gone", QoS::AtLeastOnce, false, 1);
    assert_nothing_pending(&mut subscriber);
}

#[test]
fn leading_wildcards_do_not_match_dollar_topics_and_sys_is_read_only() {
    let broker = TestBroker::start();
    let mut everything = RawClient::connect(broker.addr(), "all");
    everything.subscribe(1, &[("#", QoS::AtMostOnce), ("+/x", QoS::AtMostOnce)]);
    let mut dollar = RawClient::connect(broker.addr(), "dollar");
    dollar.subscribe(
        1,
        &[("$app/#", QoS::AtMostOnce), ("$SYS/#", QoS::AtMostOnce)],
    );
    let mut publisher = RawClient::connect(broker.addr(), "p");
    publisher.publish("$app/x", b"private", QoS::AtLeastOnce, false, 1);
    // Clients cannot write into $SYS: acknowledged, then dropped, as in mosquitto.
    publisher.publish("$SYS/fake", b"forged", QoS::AtLeastOnce, false, 2);
    publisher.publish("plain/x", b"public", QoS::AtLeastOnce, false, 3);
    assert_eq!(&dollar.recv_publish().payload[..], b"private");
    assert_nothing_pending(&mut dollar);
    assert_eq!(&everything.recv_publish().payload[..], b"public");
    assert_nothing_pending(&mut everything);
}

#[test]
fn payloads_above_message_size_limit_are_acknowledged_and_dropped() {
    let broker = TestBroker::with_config(Config {
        message_size_limit: Some(10),
        sys_interval: 0,
        ..Config::default()
    });
    let mut subscriber = RawClient::connect(broker.addr(), "s");
    subscriber.subscribe(1, &[("big", QoS::AtLeastOnce)]);
    let mut publisher = RawClient::connect(broker.addr(), "p");
    publisher.publish("big", &[b'x'; 11], QoS::AtLeastOnce, false, 1);
    publisher.publish("big", &[b'y'; 10], QoS::AtLeastOnce, false, 2);
    assert_eq!(subscriber.recv_publish().payload.len(), 10);
}

#[test]
fn packets_above_max_packet_size_close_the_connection() {
    let broker = TestBroker::with_config(Config {
        max_packet_size: Some(100),
        sys_interval: 0,
        ..Config::default()
    });
    let mut client = RawClient::connect(broker.addr(), "huge");
    client.publish("t", &[0; 80], QoS::AtMostOnce, false, 0);
    client.publish("t", &[0; 200], QoS::AtMostOnce, false, 0);
    client.expect_closed();
    broker.wait_for_log("Client huge disconnected due to oversize packet.");
}

#[test]
fn a_subscriber_that_stops_reading_gets_everything_once_it_reads_again() {
    let broker = TestBroker::start();
    let mut slow = RawClient::connect(broker.addr(), "slow-reader");
    slow.subscribe(1, &[("flood", QoS::AtMostOnce)]);
    // 8 MB, far more than the loopback socket buffers: the broker's writes to the
    // subscriber block and must resume when the socket drains.
    let mut publisher = RawClient::connect(broker.addr(), "flooder");
    let payload = vec![b'x'; 1024];
    for n in 0..8192u32 {
        let mut body = payload.clone();
        body[..4].copy_from_slice(&n.to_be_bytes());
        publisher.publish("flood", &body, QoS::AtMostOnce, false, 0);
    }
    publisher.ping();
    for n in 0..8192u32 {
        let received = slow.recv_publish();
        assert_eq!(
            &received.payload[..4],
            &n.to_be_bytes(),
            "in order, none lost"
        );
    }
    assert_nothing_pending(&mut slow);
}
