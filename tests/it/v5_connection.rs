//! MQTT 5 connection features: session expiry, Receive Maximum and Maximum Packet
//! Size both ways, topic aliases both ways, assigned client identifiers, Server
//! Keep Alive, problem and response information, enhanced authentication, and the
//! will's delay and properties. Each scenario runs against rbroker and, where it is
//! installed, against mosquitto; where mosquitto chooses differently the scenario
//! says what mosquitto does.

use std::time::{Duration, Instant};

use bytes::Bytes;
use mqttkit::protocol::{
    Auth, Connect, Disconnect, Packet, Properties, Property, Publish, QoS, ReasonCode, TopicName,
    Will,
};

use crate::support::raw::{RawClient, connect_v5, pid, publish_v5};
use crate::support::target::{Target, on_both};

/// How long "nothing more arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);

/// A CONNECT resuming (or starting) `client_id`'s session, kept `expiry` seconds.
fn resume(client_id: &str, expiry: u32) -> Connect {
    Connect {
        clean_start: false,
        ..connect_v5(client_id, [Property::SessionExpiryInterval(expiry)])
    }
}

fn normal_disconnect() -> Disconnect {
    Disconnect::new(ReasonCode::Success)
}

fn disconnect_with(
    reason: ReasonCode,
    properties: impl IntoIterator<Item = Property>,
) -> Disconnect {
    Disconnect {
        reason,
        properties: properties.into_iter().collect(),
    }
}

/// Waits until `$SYS/broker/clients/expired` reports at least `count` sessions.
fn wait_for_expired_sessions(watcher: &mut RawClient, count: u64) {
    loop {
        let update = watcher.recv_publish();
        let expired: u64 = std::str::from_utf8(&update.payload)
            .ok()
            .and_then(|text| text.parse().ok())
            .expect("a number");
        if expired >= count {
            return;
        }
    }
}

#[test]
fn a_session_lives_for_its_expiry_interval_then_goes_with_its_messages() {
    on_both(
        "a_session_lives_for_its_expiry_interval_then_goes_with_its_messages",
        "sys_interval 1",
        |target| {
            let addr = target.addr();
            let name = target.name();
            let mut watcher = RawClient::connect(addr, "watcher");
            watcher.subscribe(1, &[("$SYS/broker/clients/expired", QoS::AtMostOnce)]);
            let (mut away, connack) = RawClient::handshake(addr, resume("away", 2));
            assert!(!connack.session_present, "{name}: a new session");
            away.subscribe(1, &[("expiry/t", QoS::AtLeastOnce)]);
            away.disconnect_and_wait(normal_disconnect());
            let mut publisher = RawClient::connect(addr, "publisher");
            publisher.publish("expiry/t", b"kept", QoS::AtLeastOnce, false, 1);

            let (mut away, connack) = RawClient::handshake(addr, resume("away", 2));
            assert!(connack.session_present, "{name}: back within the interval");
            let kept = away.recv_publish();
            assert_eq!(&kept.payload[..], b"kept", "{name}");
            away.acknowledge(&kept);
            away.disconnect_and_wait(normal_disconnect());
            let left = Instant::now();
            publisher.publish("expiry/t", b"lost", QoS::AtLeastOnce, false, 2);

            wait_for_expired_sessions(&mut watcher, 1);
            let lived = left.elapsed();
            // rbroker times the interval exactly; mosquitto checks once a second.
            let at_least = if target.is_mosquitto() { 1 } else { 2 };
            assert!(
                lived >= Duration::from_secs(at_least),
                "{name}: the session expired after {lived:?}"
            );
            let (mut away, connack) = RawClient::handshake(addr, resume("away", 2));
            assert!(!connack.session_present, "{name}: expired");
            assert!(
                away.is_open_and_quiet(QUIET),
                "{name}: the queued message went with the session"
            );
        },
    );
}

#[test]
fn a_zero_session_expiry_ends_the_session_with_the_connection() {
    on_both(
        "a_zero_session_expiry_ends_the_session_with_the_connection",
        "",
        |target| {
            let brief = Connect {
                clean_start: false,
                ..connect_v5("brief", [])
            };
            let (mut client, _) = RawClient::handshake(target.addr(), brief.clone());
            client.subscribe(1, &[("brief/t", QoS::AtLeastOnce)]);
            client.disconnect_and_wait(normal_disconnect());
            let (_, connack) = RawClient::handshake(target.addr(), brief);
            assert!(!connack.session_present, "{}", target.name());
        },
    );
}

#[test]
fn disconnect_can_change_the_session_expiry_but_not_from_zero() {
    on_both(
        "disconnect_can_change_the_session_expiry_but_not_from_zero",
        "",
        |target| {
            let addr = target.addr();
            let name = target.name();
            // 60 seconds lowered to 0 at DISCONNECT: the session ends now.
            let (mut client, _) = RawClient::handshake(addr, resume("shorten", 60));
            client.subscribe(1, &[("shorten/t", QoS::AtLeastOnce)]);
            client.disconnect_and_wait(disconnect_with(
                ReasonCode::Success,
                [Property::SessionExpiryInterval(0)],
            ));
            let (_, connack) = RawClient::handshake(addr, resume("shorten", 60));
            assert!(!connack.session_present, "{name}: ended at DISCONNECT");

            // 0 raised at DISCONNECT: a Protocol Error (§3.14.2.2.2).
            let mut client = RawClient::connect_v5(addr, "raise", []);
            client.send(&Packet::Disconnect(disconnect_with(
                ReasonCode::Success,
                [Property::SessionExpiryInterval(5)],
            )));
            assert_eq!(
                client.expect_disconnect().reason,
                ReasonCode::ProtocolError,
                "{name}"
            );
        },
    );
}

#[test]
fn the_broker_keeps_within_the_clients_receive_maximum() {
    on_both(
        "the_broker_keeps_within_the_clients_receive_maximum",
        "",
        |target| {
            let addr = target.addr();
            let name = target.name();
            let mut subscriber = RawClient::connect_v5(addr, "slow", [Property::ReceiveMaximum(2)]);
            subscriber.subscribe(1, &[("rm/t", QoS::ExactlyOnce)]);
            let mut publisher = RawClient::connect_v5(addr, "fast", []);
            for (index, qos) in [QoS::AtLeastOnce, QoS::ExactlyOnce]
                .into_iter()
                .cycle()
                .take(6)
                .enumerate()
            {
                publisher.publish_packet(publish_v5("rm/t", &[b'0' + index as u8], qos, []));
            }
            // Take what arrives until the broker stops, then acknowledge the oldest.
            let mut received = Vec::new();
            let mut outstanding = std::collections::VecDeque::new();
            let mut most_outstanding = 0;
            while received.len() < 6 {
                while let Some(packet) = subscriber.recv_within(QUIET) {
                    match packet {
                        Packet::Publish(publish) => outstanding.push_back(publish),
                        other => panic!("{name}: expected PUBLISH, got {other:?}"),
                    }
                }
                most_outstanding = most_outstanding.max(outstanding.len());
                let oldest: Publish = outstanding
                    .pop_front()
                    .unwrap_or_else(|| panic!("{name}: stalled after {received:?}"));
                subscriber.acknowledge(&oldest);
                received.push(oldest.payload[0]);
            }
            assert_eq!(received, b"012345", "{name}: every message, in order");
            if target.is_mosquitto() {
                // mosquitto 2.0.11 refills more than one slot per acknowledgement.
                eprintln!(
                    "mosquitto: at most {most_outstanding} unacknowledged with Receive Maximum 2"
                );
            } else {
                assert_eq!(most_outstanding, 2, "the window is used, never exceeded");
            }
        },
    );
}

#[test]
fn the_broker_advertises_its_receive_maximum_and_enforces_it() {
    on_both(
        "the_broker_advertises_its_receive_maximum_and_enforces_it",
        "max_inflight_messages 2",
        |target| {
            let name = target.name();
            let (mut client, connack) = RawClient::handshake_v5(target.addr(), "eager", []);
            assert_eq!(connack.properties.receive_maximum(), Some(2), "{name}");
            for id in 1..=2 {
                client.send(&Packet::Publish(Publish {
                    packet_id: Some(pid(id)),
                    ..publish_v5("eager/t", b"unreleased", QoS::ExactlyOnce, [])
                }));
                match client.recv() {
                    Packet::PubRec(ack) => assert_eq!(
                        ack.reason,
                        // mosquitto 2.0 says 0x10 in PUBACK but not in PUBREC.
                        if target.is_mosquitto() {
                            ReasonCode::Success
                        } else {
                            ReasonCode::NoMatchingSubscribers
                        },
                        "{name}"
                    ),
                    other => panic!("{name}: expected PUBREC, got {other:?}"),
                }
            }
            client.send(&Packet::Publish(Publish {
                packet_id: Some(pid(3)),
                ..publish_v5("eager/t", b"one too many", QoS::ExactlyOnce, [])
            }));
            if target.is_mosquitto() {
                // mosquitto 2.0 answers PUBREC 0x97 and keeps the connection.
                match client.recv() {
                    Packet::PubRec(ack) => assert_eq!(ack.reason, ReasonCode::QuotaExceeded),
                    other => panic!("{name}: expected PUBREC, got {other:?}"),
                }
            } else {
                assert_eq!(
                    client.expect_disconnect().reason,
                    ReasonCode::ReceiveMaximumExceeded
                );
            }
        },
    );
}

#[test]
fn nothing_above_the_clients_maximum_packet_size_is_sent() {
    on_both(
        "nothing_above_the_clients_maximum_packet_size_is_sent",
        "",
        |target| {
            let addr = target.addr();
            let mut subscriber =
                RawClient::connect_v5(addr, "small", [Property::MaximumPacketSize(64)]);
            subscriber.subscribe(1, &[("mps/#", QoS::AtLeastOnce)]);
            let mut publisher = RawClient::connect_v5(addr, "publisher", []);
            publisher.publish_packet(publish_v5("mps/big", &[b'x'; 100], QoS::AtLeastOnce, []));
            publisher.publish_packet(publish_v5("mps/small", b"fits", QoS::AtLeastOnce, []));
            let delivered = subscriber.recv_publish();
            assert_eq!(
                (delivered.topic.as_str(), &delivered.payload[..]),
                ("mps/small", &b"fits"[..]),
                "{}: the oversized message is dropped for this client",
                target.name()
            );
        },
    );
}

#[test]
fn the_broker_advertises_its_maximum_packet_size_and_enforces_it() {
    on_both(
        "the_broker_advertises_its_maximum_packet_size_and_enforces_it",
        "max_packet_size 100",
        |target| {
            let (mut client, connack) = RawClient::handshake_v5(target.addr(), "large", []);
            assert_eq!(
                connack.properties.maximum_packet_size(),
                Some(100),
                "{}",
                target.name()
            );
            client.send(&Packet::Publish(publish_v5(
                "mps/t",
                &[b'x'; 200],
                QoS::AtMostOnce,
                [],
            )));
            if target.is_mosquitto() {
                // mosquitto 2.0 sends DISCONNECT 0x95 and closes with the rest of the
                // packet unread, which resets the connection and can destroy the
                // DISCONNECT before it is read.
                let reason = client.disconnect_reason();
                assert!(
                    matches!(reason, Some(ReasonCode::PacketTooLarge) | None),
                    "mosquitto: {reason:?}"
                );
            } else {
                // rbroker half-closes and drains, so the DISCONNECT always arrives.
                assert_eq!(
                    client.expect_disconnect().reason,
                    ReasonCode::PacketTooLarge
                );
            }
        },
    );
}

/// A PUBLISH that names its topic only by `alias`.
fn by_alias(alias: u16, payload: &[u8], qos: QoS) -> Publish {
    Publish {
        topic: TopicName::alias_placeholder(),
        ..publish_v5("unused", payload, qos, [Property::TopicAlias(alias)])
    }
}

#[test]
fn topic_aliases_from_a_client_are_resolved_and_checked() {
    on_both(
        "topic_aliases_from_a_client_are_resolved_and_checked",
        "max_topic_alias 10",
        |target| {
            let addr = target.addr();
            let name = target.name();
            let mut subscriber = RawClient::connect_v5(addr, "reader", []);
            subscriber.subscribe(1, &[("alias/#", QoS::AtMostOnce)]);
            let (mut client, connack) = RawClient::handshake_v5(addr, "aliaser", []);
            assert_eq!(connack.properties.topic_alias_maximum(), Some(10), "{name}");
            client.publish_packet(publish_v5(
                "alias/one",
                b"named",
                QoS::AtLeastOnce,
                [Property::TopicAlias(3)],
            ));
            client.publish_packet(by_alias(3, b"aliased", QoS::AtLeastOnce));
            for payload in [&b"named"[..], b"aliased"] {
                let delivered = subscriber.recv_publish();
                assert_eq!(
                    (delivered.topic.as_str(), &delivered.payload[..]),
                    ("alias/one", payload),
                    "{name}"
                );
                assert_eq!(delivered.properties.topic_alias(), None, "{name}");
            }
            client.send(&Packet::Publish(publish_v5(
                "alias/two",
                b"x",
                QoS::AtMostOnce,
                [Property::TopicAlias(11)],
            )));
            assert_eq!(
                client.expect_disconnect().reason,
                ReasonCode::TopicAliasInvalid,
                "{name}: above the maximum"
            );
            let mut forgetful = RawClient::connect_v5(addr, "forgetful", []);
            forgetful.send(&Packet::Publish(by_alias(5, b"x", QoS::AtMostOnce)));
            assert_eq!(
                forgetful.expect_disconnect().reason,
                ReasonCode::ProtocolError,
                "{name}: an alias never set"
            );
        },
    );
}

#[test]
fn the_broker_assigns_topic_aliases_only_when_the_client_allows_them() {
    on_both(
        "the_broker_assigns_topic_aliases_only_when_the_client_allows_them",
        "",
        |target| {
            let addr = target.addr();
            let name = target.name();
            let mut allows =
                RawClient::connect_v5(addr, "allows", [Property::TopicAliasMaximum(1)]);
            allows.subscribe(1, &[("out/#", QoS::AtMostOnce)]);
            let mut plain = RawClient::connect_v5(addr, "plain", []);
            plain.subscribe(1, &[("out/#", QoS::AtMostOnce)]);
            let mut publisher = RawClient::connect_v5(addr, "publisher", []);
            let topics = ["out/a", "out/a", "out/b"];
            for topic in topics {
                publisher.publish_packet(publish_v5(topic, b"m", QoS::AtLeastOnce, []));
            }
            let seen: Vec<(String, Option<u16>)> = (0..3)
                .map(|_| {
                    let publish = allows.recv_publish();
                    (
                        publish.topic.as_str().to_string(),
                        publish.properties.topic_alias(),
                    )
                })
                .collect();
            if target.is_mosquitto() {
                // mosquitto 2.0 never assigns aliases of its own.
                assert!(seen.iter().all(|(_, alias)| alias.is_none()), "{seen:?}");
            } else {
                let expected = [("out/a", Some(1)), ("", Some(1)), ("out/b", None)];
                let expected: Vec<(String, Option<u16>)> = expected
                    .iter()
                    .map(|(topic, alias)| (topic.to_string(), *alias))
                    .collect();
                assert_eq!(
                    seen, expected,
                    "alias 1 for out/a, then the maximum is reached"
                );
            }
            for topic in topics {
                let publish = plain.recv_publish();
                assert_eq!(
                    (publish.topic.as_str(), publish.properties.topic_alias()),
                    (topic, None),
                    "{name}: no aliases without a Topic Alias Maximum"
                );
            }
        },
    );
}

#[test]
fn an_empty_client_id_is_assigned_one() {
    on_both("an_empty_client_id_is_assigned_one", "", |target| {
        let (mut client, connack) = RawClient::handshake_v5(target.addr(), "", []);
        let assigned = connack
            .properties
            .assigned_client_identifier()
            .unwrap_or_else(|| panic!("{}: {connack:?}", target.name()))
            .to_string();
        assert!(!assigned.is_empty());
        client.ping();
        // A second one gets a different identifier and does not take the first over.
        let (_, second) = RawClient::handshake_v5(target.addr(), "", []);
        assert_ne!(
            second.properties.assigned_client_identifier(),
            Some(&*assigned)
        );
        client.ping();
    });
}

#[test]
fn server_keep_alive_lowers_a_keep_alive_above_max_keepalive() {
    on_both(
        "server_keep_alive_lowers_a_keep_alive_above_max_keepalive",
        "max_keepalive 10",
        |target| {
            let name = target.name();
            let (_, connack) = RawClient::handshake(target.addr(), connect_v5("long", []));
            assert_eq!(connack.properties.server_keep_alive(), Some(10), "{name}");
            let (_, connack) = RawClient::handshake(
                target.addr(),
                Connect {
                    keep_alive: 5,
                    ..connect_v5("short", [])
                },
            );
            assert_eq!(connack.properties.server_keep_alive(), None, "{name}");
        },
    );
}

#[test]
fn user_properties_and_response_information_requests_on_connect_are_accepted() {
    on_both(
        "user_properties_and_response_information_requests_on_connect_are_accepted",
        "",
        |target| {
            let (mut client, connack) = RawClient::handshake_v5(
                target.addr(),
                "curious",
                [
                    Property::UserProperty("course".into(), "mqtt-101".into()),
                    Property::UserProperty("course".into(), "mqtt-102".into()),
                    Property::RequestResponseInformation(1),
                    Property::RequestProblemInformation(1),
                ],
            );
            assert_eq!(connack.code, ReasonCode::Success, "{}", target.name());
            // Response Information is optional; neither broker offers one.
            assert!(
                !connack
                    .properties
                    .iter()
                    .any(|p| matches!(p, Property::ResponseInformation(_))),
                "{}",
                target.name()
            );
            client.ping();
        },
    );
}

#[test]
fn reason_strings_only_when_problem_information_is_allowed() {
    on_both(
        "reason_strings_only_when_problem_information_is_allowed",
        "",
        |target| {
            let name = target.name();
            let not_utf8 = || {
                publish_v5(
                    "pfi/t",
                    &[0xff, 0xfe],
                    QoS::AtLeastOnce,
                    [Property::PayloadFormatIndicator(1)],
                )
            };
            for (request, reason_string) in [(None, true), (Some(0), false), (Some(1), true)] {
                let properties = request.map(Property::RequestProblemInformation);
                let mut client = RawClient::connect_v5(target.addr(), "problems", properties);
                let ack = client.publish_packet(not_utf8()).expect("PUBACK");
                if target.is_mosquitto() {
                    // mosquitto 2.0 does not check the payload format.
                    assert_eq!(ack.reason, ReasonCode::NoMatchingSubscribers, "{name}");
                    assert_eq!(ack.properties.reason_string(), None, "{name}");
                } else {
                    assert_eq!(ack.reason, ReasonCode::PayloadFormatInvalid);
                    assert_eq!(
                        ack.properties.reason_string().is_some(),
                        reason_string,
                        "Request Problem Information {request:?}"
                    );
                }
            }
        },
    );
}

#[test]
fn an_unsupported_authentication_method_is_refused_with_0x8c() {
    on_both(
        "an_unsupported_authentication_method_is_refused_with_0x8c",
        "",
        |target| {
            let (client, connack) = RawClient::handshake_or_closed(
                target.addr(),
                connect_v5(
                    "scram",
                    [
                        Property::AuthenticationMethod("SCRAM-SHA-256".into()),
                        Property::AuthenticationData(Bytes::from_static(b"n,,n=user,r=abc")),
                    ],
                ),
            );
            let connack = connack.unwrap_or_else(|| panic!("{}: no CONNACK", target.name()));
            assert_eq!(
                connack.code,
                ReasonCode::BadAuthenticationMethod,
                "{}",
                target.name()
            );
            let mut client = client.expect("open until the CONNACK is read");
            client.expect_closed();
        },
    );
}

#[test]
fn an_auth_packet_without_an_authentication_method_is_a_protocol_error() {
    on_both(
        "an_auth_packet_without_an_authentication_method_is_a_protocol_error",
        "",
        |target| {
            let mut client = RawClient::connect_v5(target.addr(), "stray-auth", []);
            client.send(&Packet::Auth(Auth {
                reason: ReasonCode::ReAuthenticate,
                properties: Properties::new(),
            }));
            let reason = client.disconnect_reason();
            if target.is_mosquitto() {
                // mosquitto 2.0 closes without telling the client why.
                assert_eq!(reason, None);
            } else {
                assert_eq!(
                    reason,
                    Some(ReasonCode::ProtocolError),
                    "§4.12 [MQTT-4.12.0-6]"
                );
            }
        },
    );
}

/// A CONNECT for `client_id` with a QoS 1 will on `will/<client_id>`.
fn with_will(
    client_id: &str,
    session_expiry: u32,
    will_properties: impl IntoIterator<Item = Property>,
) -> Connect {
    Connect {
        clean_start: false,
        will: Some(Will {
            topic: TopicName::new(format!("will/{client_id}")).expect("topic"),
            payload: Bytes::from_static(b"gone"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: will_properties.into_iter().collect(),
        }),
        ..connect_v5(client_id, [Property::SessionExpiryInterval(session_expiry)])
    }
}

fn will_watcher(target: &Target) -> RawClient {
    let mut watcher = RawClient::connect_v5(target.addr(), "will-watcher", []);
    watcher.subscribe(1, &[("will/#", QoS::AtLeastOnce)]);
    watcher
}

#[test]
fn a_delayed_will_is_cancelled_by_a_reconnect_of_the_session() {
    on_both(
        "a_delayed_will_is_cancelled_by_a_reconnect_of_the_session",
        "",
        |target| {
            let mut watcher = will_watcher(target);
            let connect = with_will("returns", 60, [Property::WillDelayInterval(1)]);
            drop(RawClient::connect_with(target.addr(), connect.clone()));
            let (client, connack) = RawClient::handshake(target.addr(), connect);
            assert!(connack.session_present, "{}", target.name());
            // Past the delay, nothing: the session came back in time.
            assert!(
                watcher.is_open_and_quiet(Duration::from_millis(1500)),
                "{}: the will was sent",
                target.name()
            );
            client.disconnect_and_wait(normal_disconnect());
            assert!(watcher.is_open_and_quiet(QUIET), "{}", target.name());
        },
    );
}

#[test]
fn a_delayed_will_waits_for_its_delay() {
    on_both("a_delayed_will_waits_for_its_delay", "", |target| {
        let mut watcher = will_watcher(target);
        let connect = with_will("late", 60, [Property::WillDelayInterval(1)]);
        let client = RawClient::connect_with(target.addr(), connect);
        let dropped = Instant::now();
        drop(client);
        let will = watcher.recv_publish();
        let waited = dropped.elapsed();
        assert_eq!(will.topic.as_str(), "will/late", "{}", target.name());
        // mosquitto checks delayed wills once a second, so up to a second early.
        let at_least = if target.is_mosquitto() {
            Duration::ZERO
        } else {
            Duration::from_secs(1)
        };
        assert!(waited >= at_least, "{}: after {waited:?}", target.name());
        assert_eq!(
            will.properties.will_delay_interval(),
            None,
            "the delay is not forwarded"
        );
    });
}

#[test]
fn a_delayed_will_is_sent_when_the_session_ends_first() {
    on_both(
        "a_delayed_will_is_sent_when_the_session_ends_first",
        "",
        |target| {
            let mut watcher = will_watcher(target);
            // The will would wait an hour; the session ends after a second.
            let connect = with_will("ends", 1, [Property::WillDelayInterval(3600)]);
            drop(RawClient::connect_with(target.addr(), connect));
            let will = watcher.recv_publish();
            assert_eq!(will.topic.as_str(), "will/ends", "{}", target.name());
        },
    );
}

#[test]
fn will_properties_are_delivered_with_the_will_in_order() {
    on_both(
        "will_properties_are_delivered_with_the_will_in_order",
        "",
        |target| {
            let properties = [
                Property::PayloadFormatIndicator(1),
                Property::ContentType("text/plain".into()),
                Property::ResponseTopic("will/replies".into()),
                Property::CorrelationData(Bytes::from_static(b"\x01\x02")),
                Property::UserProperty("b".into(), "2".into()),
                Property::UserProperty("a".into(), "1".into()),
            ];
            let mut watcher = will_watcher(target);
            drop(RawClient::connect_with(
                target.addr(),
                with_will("described", 0, properties.clone()),
            ));
            let will = watcher.recv_publish();
            let mut received: Vec<Property> = will.properties.iter().cloned().collect();
            if target.is_mosquitto() {
                // mosquitto puts its own properties first; the user properties keep
                // their order among themselves.
                received.sort_by_key(|p| p.id());
                let mut expected = properties.to_vec();
                expected.sort_by_key(|p| p.id());
                assert_eq!(received, expected);
            } else {
                assert_eq!(received, properties.to_vec());
            }
        },
    );
}

#[test]
fn disconnect_with_will_message_sends_the_will() {
    on_both(
        "disconnect_with_will_message_sends_the_will",
        "",
        |target| {
            let mut watcher = will_watcher(target);
            RawClient::connect_with(target.addr(), with_will("polite", 0, []))
                .disconnect_and_wait(Disconnect::new(ReasonCode::DisconnectWithWillMessage));
            assert_eq!(watcher.recv_publish().topic.as_str(), "will/polite");
            RawClient::connect_with(target.addr(), with_will("quiet", 0, []))
                .disconnect_and_wait(normal_disconnect());
            assert!(
                watcher.is_open_and_quiet(QUIET),
                "{}: a normal DISCONNECT sends no will",
                target.name()
            );
        },
    );
}
