//! Deep topic trees: a depth limit is a policy, not malformation. Both brokers
//! serve topics of up to 200 `/` (201 levels) end to end; beyond that rbroker
//! answers with a reason code (SUBACK 0x80 on 3.1.1, 0x83 on 5.0; PUBACK 0x83 on
//! 5.0) and keeps the connection, where mosquitto 2.0.11 disconnects. A 3.1.1
//! PUBLISH beyond the limit has no way to be refused, so both close it. The limit
//! is rbroker's `max_topic_levels` option.

use mqttkit::broker::Config;
use mqttkit::protocol::{
    Connect, Packet, ProtocolVersion, QoS, ReasonCode, Subscribe, SubscriptionOptions, TopicFilter,
    TopicName, Will,
};

use crate::support::raw::publish_v5;
use crate::support::target::{Target, on_both};
use crate::support::{RawClient, TestBroker};

/// A topic of `levels` levels.
fn deep(levels: usize) -> String {
    "a/".repeat(levels - 1) + "a"
}

fn client(target: &Target, version: ProtocolVersion, id: &str) -> RawClient {
    match version {
        ProtocolVersion::V5 => RawClient::connect_v5(target.addr(), id, []),
        _ => RawClient::connect(target.addr(), id),
    }
}

#[test]
fn topics_of_201_levels_are_served_end_to_end() {
    on_both("deep_topics_served", "", |target| {
        let name = target.name();
        let topic = deep(201);
        let exact = topic.clone();
        let wild = "+/".repeat(200) + "+";
        let mut subscriber = RawClient::connect(target.addr(), "deep-sub");
        let suback = subscriber.subscribe(
            1,
            &[
                (&exact, QoS::AtLeastOnce),
                (&wild, QoS::AtLeastOnce),
                ("#", QoS::AtLeastOnce),
            ],
        );
        assert_eq!(suback.codes, [ReasonCode::GrantedQoS1; 3], "{name}");
        let mut publisher = RawClient::connect_v5(target.addr(), "deep-pub", []);
        let ack = publisher.publish_packet(publish_v5(&topic, b"deep", QoS::AtLeastOnce, []));
        assert!(!ack.expect("PUBACK").reason.is_error(), "{name}");
        // mosquitto sends a copy per matching subscription, rbroker one in all.
        let received = subscriber.recv_publish();
        subscriber.acknowledge(&received);
        assert_eq!(received.topic.as_str(), topic, "{name}");
    });
}

#[test]
fn beyond_the_limit_rbroker_answers_with_a_reason_and_mosquitto_disconnects() {
    on_both("deep_topics_refused", "", |target| {
        let name = target.name();
        let too_deep = deep(202);
        let options = SubscriptionOptions::new(QoS::AtLeastOnce);
        for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
            let mut client = client(target, version, "too-deep");
            client.send(&Packet::Subscribe(Subscribe {
                packet_id: crate::support::raw::pid(1),
                properties: Default::default(),
                filters: vec![
                    (TopicFilter::new("ok/x").expect("filter"), options),
                    (TopicFilter::new(too_deep.clone()).expect("filter"), options),
                ],
                rejected: Vec::new(),
            }));
            let replies = match client.recv_or_closed() {
                Some(Packet::SubAck(suback)) => Some(suback.codes),
                Some(Packet::Disconnect(disconnect)) => {
                    assert_eq!(disconnect.reason, ReasonCode::MalformedPacket, "{name}");
                    None
                }
                None => None,
                Some(other) => panic!("{name}: {other:?}"),
            };
            if target.is_mosquitto() {
                assert_eq!(replies, None, "{name} {version:?}");
                continue;
            }
            // The codec reads 3.1.1's single failure code back as 0x80.
            let refused = if version.is_v5() {
                ReasonCode::ImplementationSpecificError
            } else {
                ReasonCode::UnspecifiedError
            };
            assert_eq!(
                replies,
                Some(vec![ReasonCode::GrantedQoS1, refused]),
                "{name} {version:?}"
            );
            // MQTT 5: a PUBLISH beyond the limit is refused with 0x83 and the
            // connection stays.
            if version.is_v5() {
                let ack = client.publish_packet(publish_v5(&too_deep, b"x", QoS::AtLeastOnce, []));
                assert_eq!(
                    ack.expect("PUBACK").reason,
                    ReasonCode::ImplementationSpecificError
                );
                client.ping();
            }
        }
        // 3.1.1 has no way to refuse a PUBLISH: both brokers close.
        let mut client = RawClient::connect(target.addr(), "too-deep-3");
        client.send(&Packet::Publish(publish_v5(
            &too_deep,
            b"x",
            QoS::AtLeastOnce,
            [],
        )));
        assert!(client.packets_until_closed().is_empty(), "{name}");
    });
}

#[test]
fn max_topic_levels_sets_the_limit_and_a_65_514_level_filter_is_refused_in_place() {
    let broker = TestBroker::with_config(Config {
        sys_interval: 0,
        max_topic_levels: 3,
        ..Config::default()
    });
    let mut client = RawClient::connect_v5(broker.addr(), "limited", []);
    let options = SubscriptionOptions::new(QoS::AtMostOnce);
    let suback = client.subscribe_with(
        1,
        [],
        &[("a/b/c", options), ("a/b/c/d", options), ("a/+/#", options)],
    );
    assert_eq!(
        suback.codes,
        [
            ReasonCode::Success,
            ReasonCode::ImplementationSpecificError,
            ReasonCode::Success
        ]
    );
    // A will beyond the limit: CONNACK 0x83 on 5.0; closed without one on 3.1.1.
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let connect = Connect {
            version,
            will: Some(Will {
                topic: TopicName::new("a/b/c/d").expect("topic"),
                payload: Default::default(),
                qos: QoS::AtMostOnce,
                retain: false,
                properties: Default::default(),
            }),
            ..Connect::new("deep-will", 60)
        };
        let (_, connack) = RawClient::handshake_or_closed(broker.addr(), connect);
        let expected = version
            .is_v5()
            .then_some(ReasonCode::ImplementationSpecificError);
        assert_eq!(connack.map(|c| c.code), expected, "{version:?}");
    }
    // CVE-2019-11779: a filter of 65,514 levels answered without walking it.
    let mut default = TestBroker::start();
    let mut deep_client = RawClient::connect(default.addr(), "cve-2019-11779");
    let suback = deep_client.subscribe(1, &[(&"/".repeat(65_513), QoS::AtMostOnce)]);
    assert_eq!(suback.codes, [ReasonCode::UnspecifiedError]);
    deep_client.ping();
    default.stop();
}
