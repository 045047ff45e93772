//! MQTT 5 messages: PUBLISH properties forwarded in order, Payload Format Indicator,
//! Message Expiry, subscription options (No Local, Retain As Published, Retain
//! Handling), subscription identifiers, shared subscriptions, and the reason codes
//! of PUBACK, PUBREC, SUBACK and UNSUBACK. Each scenario runs against rbroker and,
//! where it is installed, against mosquitto; where mosquitto chooses differently
//! the scenario says what mosquitto does.

use std::time::Duration;

use bytes::Bytes;
use mqttkit::protocol::{
    Connect, Disconnect, Packet, Properties, Property, Publish, QoS, ReasonCode, RetainHandling,
    SubscriptionOptions, TopicFilter, Unsubscribe,
};

use crate::support::raw::{RawClient, connect_v5, frame, pid, publish_v5};
use crate::support::target::{Target, on_both};

/// How long "nothing more arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);

fn options(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions::new(qos)
}

#[test]
fn publish_properties_are_forwarded_unchanged_and_in_order() {
    on_both(
        "publish_properties_are_forwarded_unchanged_and_in_order",
        "",
        |target| {
            let sent = vec![
                Property::UserProperty("z".into(), "first".into()),
                Property::PayloadFormatIndicator(1),
                Property::ContentType("application/json".into()),
                Property::ResponseTopic("replies/42".into()),
                Property::CorrelationData(Bytes::from_static(&[0, 1, 2, 0xff])),
                Property::UserProperty("a".into(), "second".into()),
                Property::UserProperty("z".into(), "third".into()),
            ];
            let mut subscriber = RawClient::connect_v5(target.addr(), "reader", []);
            subscriber.subscribe(1, &[("props/#", QoS::AtLeastOnce)]);
            let mut publisher = RawClient::connect_v5(target.addr(), "writer", []);
            publisher.publish_packet(publish_v5("props/t", b"{}", QoS::AtLeastOnce, sent.clone()));
            let received = subscriber.recv_publish();
            let received: Vec<Property> = received.properties.iter().cloned().collect();
            if target.is_mosquitto() {
                // mosquitto 2.0 keeps the user properties' order but moves them
                // after its own.
                let user = |list: &[Property]| -> Vec<Property> {
                    list.iter()
                        .filter(|p| matches!(p, Property::UserProperty(..)))
                        .cloned()
                        .collect()
                };
                assert_eq!(user(&received), user(&sent));
                let mut sorted = received.clone();
                let mut expected = sent.clone();
                sorted.sort_by_key(|p| p.id());
                expected.sort_by_key(|p| p.id());
                assert_eq!(sorted.len(), expected.len(), "{received:?}");
            } else {
                assert_eq!(received, sent);
            }
        },
    );
}

#[test]
fn a_payload_that_is_not_the_utf8_it_claims_is_refused_with_0x99() {
    on_both(
        "a_payload_that_is_not_the_utf8_it_claims_is_refused_with_0x99",
        "",
        |target| {
            let name = target.name();
            let mut subscriber = RawClient::connect_v5(target.addr(), "reader", []);
            subscriber.subscribe(1, &[("pfi/#", QoS::AtLeastOnce)]);
            let mut publisher = RawClient::connect_v5(target.addr(), "writer", []);
            let utf8 = [Property::PayloadFormatIndicator(1)];
            for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
                let ack =
                    publisher.publish_packet(publish_v5("pfi/bad", b"\xc3\x28", qos, utf8.clone()));
                if let Some(ack) = ack {
                    let expected = if target.is_mosquitto() {
                        // mosquitto 2.0 does not check the payload.
                        ReasonCode::Success
                    } else {
                        ReasonCode::PayloadFormatInvalid
                    };
                    assert_eq!(ack.reason, expected, "{name} {qos:?}");
                }
            }
            // Bytes declared unspecified (0) and valid UTF-8 both pass.
            publisher.publish_packet(publish_v5(
                "pfi/binary",
                b"\xc3\x28",
                QoS::AtLeastOnce,
                [Property::PayloadFormatIndicator(0)],
            ));
            publisher.publish_packet(publish_v5(
                "pfi/text",
                "grüße".as_bytes(),
                QoS::AtLeastOnce,
                utf8,
            ));
            let topics: Vec<String> = subscriber
                .drain_publishes(QUIET)
                .iter()
                .map(|publish| publish.topic.as_str().to_string())
                .collect();
            let expected: &[&str] = if target.is_mosquitto() {
                &["pfi/bad", "pfi/bad", "pfi/bad", "pfi/binary", "pfi/text"]
            } else {
                &["pfi/binary", "pfi/text"]
            };
            assert_eq!(topics, expected, "{name}");
        },
    );
}

#[test]
fn message_expiry_counts_down_and_expired_messages_are_dropped() {
    on_both(
        "message_expiry_counts_down_and_expired_messages_are_dropped",
        "",
        |target| {
            let addr = target.addr();
            let name = target.name();
            let session = Connect {
                clean_start: false,
                ..connect_v5("offline", [Property::SessionExpiryInterval(60)])
            };
            let (mut offline, _) = RawClient::handshake(addr, session.clone());
            offline.subscribe(1, &[("expiring/queued/#", QoS::AtLeastOnce)]);
            offline.disconnect_and_wait(Disconnect::new(ReasonCode::Success));

            let mut publisher = RawClient::connect_v5(addr, "publisher", []);
            for (kind, retain) in [("queued", false), ("retained", true)] {
                for (life, expiry) in [("short", 1), ("long", 10)] {
                    publisher.publish_packet(Publish {
                        retain,
                        ..publish_v5(
                            &format!("expiring/{kind}/{life}"),
                            life.as_bytes(),
                            QoS::AtLeastOnce,
                            [Property::MessageExpiryInterval(expiry)],
                        )
                    });
                }
            }
            // Let 2.2 s pass: past the short life even at mosquitto's whole-second
            // resolution.
            std::thread::sleep(Duration::from_millis(2200));

            let check = |publish: Publish, topic: &str| {
                assert_eq!(
                    publish.topic.as_str(),
                    topic,
                    "{name}: the short-lived one expired"
                );
                let left = publish.properties.message_expiry_interval();
                assert!(
                    matches!(left, Some(7 | 8)),
                    "{name}: {topic} has {left:?} of 10 s left after 2.2 s"
                );
            };
            let (mut offline, connack) = RawClient::handshake(addr, session);
            assert!(connack.session_present, "{name}");
            let queued = offline.recv_publish();
            offline.acknowledge(&queued);
            check(queued, "expiring/queued/long");
            assert!(offline.is_open_and_quiet(QUIET), "{name}");

            let mut late = RawClient::connect_v5(addr, "late", []);
            late.subscribe(1, &[("expiring/retained/#", QoS::AtLeastOnce)]);
            let retained = late.recv_publish();
            late.acknowledge(&retained);
            check(retained, "expiring/retained/long");
            assert!(late.is_open_and_quiet(QUIET), "{name}");
        },
    );
}

#[test]
fn no_local_keeps_a_clients_own_messages_from_it() {
    on_both(
        "no_local_keeps_a_clients_own_messages_from_it",
        "",
        |target| {
            let mut client = RawClient::connect_v5(target.addr(), "talker", []);
            client.subscribe_with(
                1,
                [],
                &[(
                    "local/#",
                    SubscriptionOptions {
                        no_local: true,
                        ..options(QoS::AtLeastOnce)
                    },
                )],
            );
            let mut other = RawClient::connect_v5(target.addr(), "other", []);
            other.subscribe(1, &[("local/#", QoS::AtLeastOnce)]);
            client.publish_packet(publish_v5("local/mine", b"1", QoS::AtLeastOnce, []));
            assert_eq!(other.recv_publish().topic.as_str(), "local/mine");
            let mut third = RawClient::connect_v5(target.addr(), "third", []);
            third.publish_packet(publish_v5("local/theirs", b"2", QoS::AtLeastOnce, []));
            let delivered = client.recv_publish();
            assert_eq!(
                delivered.topic.as_str(),
                "local/theirs",
                "{}: its own message came back",
                target.name()
            );
        },
    );
}

#[test]
fn retain_as_published_keeps_the_retain_flag() {
    on_both("retain_as_published_keeps_the_retain_flag", "", |target| {
        let mut keeps = RawClient::connect_v5(target.addr(), "keeps", []);
        keeps.subscribe_with(
            1,
            [],
            &[(
                "rap/#",
                SubscriptionOptions {
                    retain_as_published: true,
                    ..options(QoS::AtMostOnce)
                },
            )],
        );
        let mut clears = RawClient::connect_v5(target.addr(), "clears", []);
        clears.subscribe(1, &[("rap/#", QoS::AtMostOnce)]);
        let mut publisher = RawClient::connect_v5(target.addr(), "publisher", []);
        publisher.publish_packet(Publish {
            retain: true,
            ..publish_v5("rap/t", b"r", QoS::AtLeastOnce, [])
        });
        assert!(keeps.recv_publish().retain, "{}", target.name());
        assert!(!clears.recv_publish().retain, "{}", target.name());
    });
}

#[test]
fn retain_handling_chooses_when_retained_messages_are_sent() {
    on_both(
        "retain_handling_chooses_when_retained_messages_are_sent",
        "",
        |target| {
            let name = target.name();
            let mut publisher = RawClient::connect_v5(target.addr(), "publisher", []);
            publisher.publish_packet(Publish {
                retain: true,
                ..publish_v5("rh/t", b"kept", QoS::AtLeastOnce, [])
            });
            let mut client = RawClient::connect_v5(target.addr(), "handler", []);
            let subscribe = |client: &mut RawClient, id: u16, handling| {
                let options = SubscriptionOptions {
                    retain_handling: handling,
                    ..options(QoS::AtMostOnce)
                };
                client.subscribe_with(id, [], &[("rh/#", options)]);
                client.recv_within(QUIET).is_some()
            };
            use RetainHandling::*;
            let steps = [
                (SendAtSubscribe, true),
                (SendAtSubscribe, true),
                (SendIfNew, false),
                (DoNotSend, false),
            ];
            for (id, (handling, sent)) in steps.into_iter().enumerate() {
                assert_eq!(
                    subscribe(&mut client, id as u16 + 1, handling),
                    sent,
                    "{name}: {handling:?} on an existing subscription"
                );
            }
            let mut fresh = RawClient::connect_v5(target.addr(), "fresh", []);
            assert!(subscribe(&mut fresh, 1, SendIfNew), "{name}");
            let mut never = RawClient::connect_v5(target.addr(), "never", []);
            assert!(!subscribe(&mut never, 1, DoNotSend), "{name}");
        },
    );
}

#[test]
fn one_publish_carries_every_matching_subscription_identifier() {
    on_both(
        "one_publish_carries_every_matching_subscription_identifier",
        "",
        |target| {
            let name = target.name();
            let mut client = RawClient::connect_v5(target.addr(), "overlap", []);
            client.subscribe_with(
                1,
                [Property::SubscriptionIdentifier(7)],
                &[("sid/#", options(QoS::AtLeastOnce))],
            );
            client.subscribe_with(
                2,
                [Property::SubscriptionIdentifier(300)],
                &[("sid/+", options(QoS::AtMostOnce))],
            );
            client.subscribe_with(3, [], &[("+/t", options(QoS::AtMostOnce))]);
            let mut publisher = RawClient::connect_v5(target.addr(), "publisher", []);
            publisher.publish_packet(publish_v5("sid/t", b"once", QoS::AtLeastOnce, []));
            if target.is_mosquitto() {
                // mosquitto 2.0 sends a copy per matching subscription, each with
                // its own identifier (§3.3.4 allows this too).
                let mut copies: Vec<(Vec<u32>, QoS)> = client
                    .drain_publishes(QUIET)
                    .iter()
                    .map(|publish| {
                        let ids = publish.properties.subscription_identifiers().collect();
                        (ids, publish.qos)
                    })
                    .collect();
                copies.sort();
                let expected = vec![
                    (vec![], QoS::AtMostOnce),
                    (vec![7], QoS::AtLeastOnce),
                    (vec![300], QoS::AtMostOnce),
                ];
                assert_eq!(copies, expected, "{name}");
            } else {
                let delivered = client.recv_publish();
                client.acknowledge(&delivered);
                let mut ids: Vec<u32> = delivered.properties.subscription_identifiers().collect();
                ids.sort_unstable();
                assert_eq!(ids, [7, 300], "[MQTT-3.3.4-4]");
                assert_eq!(delivered.qos, QoS::AtLeastOnce, "the highest granted QoS");
                assert!(client.is_open_and_quiet(QUIET), "one PUBLISH only");
            }
            publisher.publish_packet(publish_v5("sid/deeper/x", b"one id", QoS::AtMostOnce, []));
            let delivered = client.recv_publish();
            let ids: Vec<u32> = delivered.properties.subscription_identifiers().collect();
            assert_eq!(ids, [7], "{name}");
        },
    );
}

#[test]
fn a_subscription_identifier_from_a_client_publish_is_a_protocol_error() {
    on_both(
        "a_subscription_identifier_from_a_client_publish_is_a_protocol_error",
        "",
        |target| {
            let mut client = RawClient::connect_v5(target.addr(), "sender", []);
            let publish = publish_v5(
                "sid/t",
                b"x",
                QoS::AtMostOnce,
                [Property::SubscriptionIdentifier(1)],
            );
            client.send(&Packet::Publish(publish));
            if target.is_mosquitto() {
                // mosquitto 2.0 accepts it.
                client.ping();
            } else {
                assert_eq!(
                    client.expect_disconnect().reason,
                    ReasonCode::ProtocolError,
                    "[MQTT-3.3.4-6]"
                );
            }
        },
    );
}

#[test]
fn shared_subscriptions_take_turns_and_leave_others_alone() {
    on_both(
        "shared_subscriptions_take_turns_and_leave_others_alone",
        "",
        |target| {
            let name = target.name();
            let addr = target.addr();
            let mut members: Vec<RawClient> = ["m1", "m2"]
                .iter()
                .map(|id| {
                    let mut member = RawClient::connect_v5(addr, id, []);
                    member.subscribe(1, &[("$share/workers/jobs/#", QoS::AtLeastOnce)]);
                    member
                })
                .collect();
            let mut watcher = RawClient::connect_v5(addr, "watcher", []);
            watcher.subscribe(1, &[("jobs/#", QoS::AtLeastOnce)]);
            let mut publisher = RawClient::connect_v5(addr, "publisher", []);
            for job in 0..6u8 {
                publisher.publish_packet(publish_v5("jobs/t", &[b'0' + job], QoS::AtLeastOnce, []));
            }
            let shares: Vec<Vec<u8>> = members
                .iter_mut()
                .map(|member| {
                    let received = member.drain_publishes(QUIET);
                    received.iter().map(|publish| publish.payload[0]).collect()
                })
                .collect();
            assert_eq!(
                shares,
                [b"024".to_vec(), b"135".to_vec()],
                "{name}: round robin"
            );
            for job in 0..6u8 {
                let publish = watcher.recv_publish();
                watcher.acknowledge(&publish);
                assert_eq!(
                    publish.payload[0],
                    b'0' + job,
                    "{name}: the normal subscriber"
                );
            }
        },
    );
}

#[test]
fn a_shared_member_that_leaves_hands_its_unacknowledged_messages_to_the_group() {
    on_both(
        "a_shared_member_that_leaves_hands_its_unacknowledged_messages_to_the_group",
        "",
        |target| {
            let addr = target.addr();
            let mut leaving = RawClient::connect_v5(addr, "leaving", []);
            leaving.subscribe(1, &[("$share/g/work", QoS::AtLeastOnce)]);
            let mut publisher = RawClient::connect_v5(addr, "publisher", []);
            publisher.publish_packet(publish_v5("work", b"job", QoS::AtLeastOnce, []));
            let unacknowledged = leaving.recv_publish();
            assert_eq!(&unacknowledged.payload[..], b"job");
            let mut staying = RawClient::connect_v5(addr, "staying", []);
            staying.subscribe(1, &[("$share/g/work", QoS::AtLeastOnce)]);
            drop(leaving);
            if target.is_mosquitto() {
                // mosquitto 2.0 drops it with the leaving member's session.
                assert!(staying.is_open_and_quiet(Duration::from_secs(1)));
            } else {
                let handed = staying.recv_publish();
                assert_eq!(&handed.payload[..], b"job");
                assert_eq!(handed.qos, QoS::AtLeastOnce);
            }
        },
    );
}

#[test]
fn retained_messages_are_not_sent_to_a_new_shared_subscription() {
    on_both(
        "retained_messages_are_not_sent_to_a_new_shared_subscription",
        "",
        |target| {
            let mut publisher = RawClient::connect_v5(target.addr(), "publisher", []);
            publisher.publish_packet(Publish {
                retain: true,
                ..publish_v5("shared/retained", b"old", QoS::AtLeastOnce, [])
            });
            let mut member = RawClient::connect_v5(target.addr(), "member", []);
            member.subscribe(1, &[("$share/g/shared/#", QoS::AtLeastOnce)]);
            if target.is_mosquitto() {
                // mosquitto 2.0.11 sends it anyway.
                assert_eq!(member.recv_publish().topic.as_str(), "shared/retained");
            } else {
                assert!(member.is_open_and_quiet(QUIET), "[MQTT-3.8.4-4]");
            }
            publisher.publish_packet(publish_v5("shared/new", b"new", QoS::AtLeastOnce, []));
            assert_eq!(member.recv_publish().topic.as_str(), "shared/new");
        },
    );
}

#[test]
fn no_local_on_a_shared_subscription_is_a_protocol_error() {
    on_both(
        "no_local_on_a_shared_subscription_is_a_protocol_error",
        "",
        |target| {
            let mut client = RawClient::connect_v5(target.addr(), "member", []);
            client.send(&Packet::Subscribe(mqttkit::protocol::Subscribe {
                packet_id: pid(1),
                properties: Properties::new(),
                filters: vec![(
                    TopicFilter::new("$share/g/t").expect("filter"),
                    SubscriptionOptions {
                        no_local: true,
                        ..options(QoS::AtMostOnce)
                    },
                )],
                rejected: Vec::new(),
            }));
            if target.is_mosquitto() {
                // mosquitto 2.0.11 grants it.
                match client.recv() {
                    Packet::SubAck(suback) => assert_eq!(suback.codes, [ReasonCode::Success]),
                    other => panic!("mosquitto: {other:?}"),
                }
            } else {
                assert_eq!(
                    client.expect_disconnect().reason,
                    ReasonCode::ProtocolError,
                    "[MQTT-3.8.3-4]"
                );
            }
        },
    );
}

#[test]
fn shared_subscriptions_and_subscription_identifiers_can_be_turned_off() {
    let target = Target::rbroker(
        "shared_subscription_available false\nsubscription_identifier_available false",
    );
    let (mut client, connack) = RawClient::handshake_v5(target.addr(), "client", []);
    assert_eq!(
        (
            connack.properties.iter().find_map(|p| match p {
                Property::SharedSubscriptionAvailable(v) => Some(*v),
                _ => None,
            }),
            connack.properties.iter().find_map(|p| match p {
                Property::SubscriptionIdentifierAvailable(v) => Some(*v),
                _ => None,
            }),
        ),
        (Some(0), Some(0))
    );
    let suback = client.subscribe(
        1,
        &[("$share/g/t", QoS::AtMostOnce), ("t", QoS::AtLeastOnce)],
    );
    assert_eq!(
        suback.codes,
        [
            ReasonCode::SharedSubscriptionsNotSupported,
            ReasonCode::GrantedQoS1
        ]
    );
    let suback = client.subscribe_with(
        2,
        [Property::SubscriptionIdentifier(1)],
        &[("t", options(QoS::AtMostOnce))],
    );
    assert_eq!(
        suback.codes,
        [ReasonCode::SubscriptionIdentifiersNotSupported]
    );
}

#[test]
fn puback_and_pubrec_say_when_nobody_matched_or_every_queue_was_full() {
    on_both(
        "puback_and_pubrec_say_when_nobody_matched_or_every_queue_was_full",
        "max_queued_messages 1",
        |target| {
            let name = target.name();
            let addr = target.addr();
            let mut publisher = RawClient::connect_v5(addr, "publisher", []);
            let reason = |publisher: &mut RawClient, topic: &str, qos| {
                publisher
                    .publish_packet(publish_v5(topic, b"m", qos, []))
                    .expect("acknowledged")
                    .reason
            };
            assert_eq!(
                reason(&mut publisher, "nobody", QoS::AtLeastOnce),
                ReasonCode::NoMatchingSubscribers,
                "{name}"
            );
            let pubrec = reason(&mut publisher, "nobody", QoS::ExactlyOnce);
            if target.is_mosquitto() {
                assert_eq!(
                    pubrec,
                    ReasonCode::Success,
                    "mosquitto 2.0: no 0x10 in PUBREC"
                );
            } else {
                assert_eq!(pubrec, ReasonCode::NoMatchingSubscribers);
            }

            let session = Connect {
                clean_start: false,
                ..connect_v5("full", [Property::SessionExpiryInterval(60)])
            };
            let (mut away, _) = RawClient::handshake(addr, session);
            away.subscribe(1, &[("queue", QoS::AtLeastOnce)]);
            away.disconnect_and_wait(Disconnect::new(ReasonCode::Success));
            assert_eq!(
                reason(&mut publisher, "queue", QoS::AtLeastOnce),
                ReasonCode::Success
            );
            let full = reason(&mut publisher, "queue", QoS::AtLeastOnce);
            if target.is_mosquitto() {
                // mosquitto 2.0 drops the message and still says Success.
                assert_eq!(full, ReasonCode::Success);
            } else {
                assert_eq!(full, ReasonCode::QuotaExceeded, "the only queue was full");
            }
        },
    );
}

#[test]
fn suback_answers_each_filter_and_an_invalid_one_gets_0x8f() {
    on_both(
        "suback_answers_each_filter_and_an_invalid_one_gets_0x8f",
        "",
        |target| {
            let mut client = RawClient::connect_v5(target.addr(), "filters", []);
            let mut body = vec![0, 1, 0];
            for (filter, options) in [("ok/+", 1u8), ("bad/#/x", 2), ("ok/#", 2)] {
                body.extend_from_slice(&(filter.len() as u16).to_be_bytes());
                body.extend_from_slice(filter.as_bytes());
                body.push(options);
            }
            client.send_bytes(&frame(0x82, &body));
            if target.is_mosquitto() {
                // mosquitto 2.0 ends the connection over one invalid filter.
                assert_eq!(
                    client.disconnect_reason(),
                    Some(ReasonCode::MalformedPacket)
                );
                return;
            }
            match client.recv() {
                Packet::SubAck(suback) => assert_eq!(
                    suback.codes,
                    [
                        ReasonCode::GrantedQoS1,
                        ReasonCode::TopicFilterInvalid,
                        ReasonCode::GrantedQoS2
                    ]
                ),
                other => panic!("expected SUBACK, got {other:?}"),
            }
            client.ping();
        },
    );
}

#[test]
fn unsuback_says_which_filters_were_not_subscribed() {
    on_both(
        "unsuback_says_which_filters_were_not_subscribed",
        "",
        |target| {
            let mut client = RawClient::connect_v5(target.addr(), "leaver", []);
            client.subscribe(1, &[("here", QoS::AtMostOnce)]);
            client.send(&Packet::Unsubscribe(Unsubscribe {
                packet_id: pid(2),
                properties: Properties::new(),
                filters: ["here", "never"]
                    .iter()
                    .map(|f| TopicFilter::new(*f).expect("filter"))
                    .collect(),
            }));
            match client.recv() {
                Packet::UnsubAck(unsuback) => assert_eq!(
                    unsuback.codes,
                    [ReasonCode::Success, ReasonCode::NoSubscriptionExisted],
                    "{}",
                    target.name()
                ),
                other => panic!("expected UNSUBACK, got {other:?}"),
            }
        },
    );
}

#[test]
fn a_payload_above_message_size_limit_is_refused_with_a_valid_reason_code() {
    use std::io::{Read, Write};
    on_both(
        "message_size_limit_reason",
        "message_size_limit 10\n",
        |target| {
            let name = target.name();
            // A raw socket, since mosquitto's answer does not decode.
            let mut stream = std::net::TcpStream::connect(target.addr()).expect("connect");
            stream
                .set_read_timeout(Some(crate::support::WAIT))
                .expect("timeout");
            let connect = Packet::Connect(Box::new(mqttkit::protocol::Connect {
                version: mqttkit::protocol::ProtocolVersion::V5,
                ..mqttkit::protocol::Connect::new("size-limited", 60)
            }));
            let publish = Packet::Publish(crate::support::raw::publish_v5(
                "big",
                b"12345678901",
                QoS::AtLeastOnce,
                [],
            ));
            for packet in [connect, publish] {
                let bytes = packet
                    .to_bytes(mqttkit::protocol::ProtocolVersion::V5)
                    .expect("encode");
                stream.write_all(&bytes).expect("write");
            }
            // CONNACK first (skipped by its length), then the PUBACK.
            let mut header = [0u8; 2];
            stream.read_exact(&mut header).expect("CONNACK header");
            let mut rest = vec![0u8; usize::from(header[1])];
            stream.read_exact(&mut rest).expect("CONNACK body");
            let mut puback = [0u8; 5];
            stream.read_exact(&mut puback).expect("PUBACK");
            assert_eq!(puback[0], 0x40, "{name}: {puback:?}");
            if target.is_mosquitto() {
                // mosquitto 2.0.11: 0x95, not a PUBACK reason code (§3.4.2.1).
                assert_eq!(puback[4], 0x95, "{name}");
            } else {
                assert_eq!(puback[4], ReasonCode::QuotaExceeded as u8, "{name}");
                let length = usize::from(puback[1]);
                let mut properties = vec![0u8; length + 2 - puback.len()];
                stream
                    .read_exact(&mut properties)
                    .expect("PUBACK properties");
                let whole = [&puback[..], &properties].concat();
                assert!(
                    Packet::decode(&whole, mqttkit::protocol::ProtocolVersion::V5).is_ok(),
                    "{name}: our own decoder takes it"
                );
            }
        },
    );
}
