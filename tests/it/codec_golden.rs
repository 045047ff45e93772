//! Golden byte table: every packet type in every protocol version, bytes annotated
//! field by field, checked through both `decode` and `encode`; then a table of bad
//! inputs, each with the class of error the specs require.

use bytes::Bytes;
use mqttkit::protocol::{
    Ack, Auth, ConnAck, Connect, DecodeError, Disconnect, Packet, PacketId, Properties, Property,
    ProtocolVersion, Publish, QoS, ReasonCode, RetainHandling, SubAck, Subscribe,
    SubscriptionOptions, TopicFilter, TopicName, UnsubAck, Unsubscribe, Will,
};

use ProtocolVersion::{V3_1, V3_1_1, V5};

const V3: &[ProtocolVersion] = &[V3_1, V3_1_1];
const ALL: &[ProtocolVersion] = &[V3_1, V3_1_1, V5];

fn pid(id: u16) -> PacketId {
    PacketId::new(id).expect("test ids are not zero")
}

fn topic(text: &str) -> TopicName {
    TopicName::new(text).expect("valid test topic")
}

fn filter(text: &str) -> TopicFilter {
    TopicFilter::new(text).expect("valid test filter")
}

fn props(list: Vec<Property>) -> Properties {
    list.into_iter().collect()
}

struct Case {
    name: &'static str,
    versions: &'static [ProtocolVersion],
    bytes: Vec<u8>,
    packet: Packet,
}

fn connect(version: ProtocolVersion, client_id: &str) -> Connect {
    Connect {
        version,
        ..Connect::new(client_id, 60)
    }
}

fn publish(qos: QoS, packet_id: Option<u16>, payload: &'static [u8]) -> Publish {
    Publish {
        qos,
        packet_id: packet_id.map(pid),
        ..Publish::new(topic("a/b"), Bytes::from_static(payload))
    }
}

fn golden_cases() -> Vec<Case> {
    vec![
        Case {
            name: "CONNECT 3.1.1, clean session, keep-alive 60",
            versions: ALL,
            bytes: vec![
                0x10, 15, // CONNECT, remaining length
                0, 4, b'M', b'Q', b'T', b'T', // protocol name
                4,    // level 4
                0x02, // flags: clean session
                0, 60, // keep-alive
                0, 3, b'a', b'b', b'c', // client id
            ],
            packet: Packet::Connect(Box::new(connect(V3_1_1, "abc"))),
        },
        Case {
            name: "CONNECT 3.1 (MQIsdp)",
            versions: ALL,
            bytes: vec![
                0x10, 17, // CONNECT
                0, 6, b'M', b'Q', b'I', b's', b'd', b'p', // protocol name
                3, 0x02, 0, 60, // level 3, clean, keep-alive
                0, 3, b'a', b'b', b'c',
            ],
            packet: Packet::Connect(Box::new(connect(V3_1, "abc"))),
        },
        Case {
            name: "CONNECT 3.1.1 with will (QoS 1, retained), user name and password",
            versions: ALL,
            bytes: vec![
                0x10, 27, // CONNECT
                0, 4, b'M', b'Q', b'T', b'T', 4,    // protocol
                0xee, // user, password, will retain, will QoS 1, will, clean
                0, 10, // keep-alive
                0, 1, b'c', // client id
                0, 1, b'w', // will topic
                0, 3, b'b', b'y', b'e', // will payload
                0, 1, b'u', // user name
                0, 1, b'p', // password
            ],
            packet: Packet::Connect(Box::new(Connect {
                keep_alive: 10,
                will: Some(Will {
                    topic: topic("w"),
                    payload: Bytes::from_static(b"bye"),
                    qos: QoS::AtLeastOnce,
                    retain: true,
                    properties: Properties::new(),
                }),
                username: Some("u".into()),
                password: Some(Bytes::from_static(b"p")),
                ..connect(V3_1_1, "c")
            })),
        },
        Case {
            name: "CONNECT 5.0 with session expiry, no clean start",
            versions: ALL,
            bytes: vec![
                0x10, 19, // CONNECT
                0, 4, b'M', b'Q', b'T', b'T', 5, // protocol
                0x00, 0, 60, // flags, keep-alive
                5, 0x11, 0, 0, 0, 10, // properties: session expiry 10
                0, 1, b'c',
            ],
            packet: Packet::Connect(Box::new(Connect {
                clean_start: false,
                properties: props(vec![Property::SessionExpiryInterval(10)]),
                ..connect(V5, "c")
            })),
        },
        Case {
            name: "CONNECT 5.0 with will properties and a password without user name",
            versions: ALL,
            bytes: vec![
                0x10, 30, // CONNECT
                0, 4, b'M', b'Q', b'T', b'T', 5, // protocol
                0x46, 0, 60, // password, will, clean; keep-alive
                0,  // no properties
                0, 1, b'c', // client id
                5, 0x18, 0, 0, 0, 5, // will properties: will delay 5
                0, 1, b'w', // will topic
                0, 2, b'h', b'i', // will payload
                0, 1, 0xff, // password (binary)
            ],
            packet: Packet::Connect(Box::new(Connect {
                will: Some(Will {
                    topic: topic("w"),
                    payload: Bytes::from_static(b"hi"),
                    qos: QoS::AtMostOnce,
                    retain: false,
                    properties: props(vec![Property::WillDelayInterval(5)]),
                }),
                password: Some(Bytes::from_static(b"\xff")),
                ..connect(V5, "c")
            })),
        },
        Case {
            name: "CONNACK 3.x, session present",
            versions: V3,
            bytes: vec![0x20, 2, 0x01, 0x00],
            packet: Packet::ConnAck(ConnAck::new(ReasonCode::Success, true)),
        },
        Case {
            name: "CONNACK 3.x, refused: not authorised",
            versions: V3,
            bytes: vec![0x20, 2, 0x00, 0x05],
            packet: Packet::ConnAck(ConnAck::new(ReasonCode::NotAuthorized, false)),
        },
        Case {
            name: "CONNACK 5.0 as mosquitto sends it",
            versions: &[V5],
            bytes: vec![
                0x20, 9, 0x00, 0x00, // flags, reason
                6, 0x22, 0, 10, 0x21, 0, 20, // topic alias maximum 10, receive maximum 20
            ],
            packet: Packet::ConnAck(ConnAck {
                properties: props(vec![
                    Property::TopicAliasMaximum(10),
                    Property::ReceiveMaximum(20),
                ]),
                ..ConnAck::new(ReasonCode::Success, false)
            }),
        },
        Case {
            name: "CONNACK 5.0 refused: not authorized",
            versions: &[V5],
            bytes: vec![0x20, 3, 0x00, 0x87, 0],
            packet: Packet::ConnAck(ConnAck::new(ReasonCode::NotAuthorized, false)),
        },
        Case {
            name: "PUBLISH QoS 0",
            versions: V3,
            bytes: vec![0x30, 7, 0, 3, b'a', b'/', b'b', b'h', b'i'],
            packet: Packet::Publish(publish(QoS::AtMostOnce, None, b"hi")),
        },
        Case {
            name: "PUBLISH QoS 0, empty payload, 5.0",
            versions: &[V5],
            bytes: vec![0x30, 6, 0, 3, b'a', b'/', b'b', 0],
            packet: Packet::Publish(publish(QoS::AtMostOnce, None, b"")),
        },
        Case {
            name: "PUBLISH QoS 1, DUP, retained",
            versions: V3,
            bytes: vec![0x3b, 9, 0, 3, b'a', b'/', b'b', 0, 10, b'h', b'i'],
            packet: Packet::Publish(Publish {
                dup: true,
                retain: true,
                ..publish(QoS::AtLeastOnce, Some(10), b"hi")
            }),
        },
        Case {
            name: "PUBLISH QoS 2 with payload format and expiry, 5.0",
            versions: &[V5],
            bytes: vec![
                0x34, 17, // PUBLISH QoS 2
                0, 3, b'a', b'/', b'b', // topic
                0, 1, // packet id
                7, 0x01, 1, 0x02, 0, 0, 0, 60, // properties
                b'h', b'i',
            ],
            packet: Packet::Publish(Publish {
                properties: props(vec![
                    Property::PayloadFormatIndicator(1),
                    Property::MessageExpiryInterval(60),
                ]),
                ..publish(QoS::ExactlyOnce, Some(1), b"hi")
            }),
        },
        Case {
            name: "PUBLISH through a topic alias, 5.0",
            versions: &[V5],
            bytes: vec![0x30, 7, 0, 0, 3, 0x23, 0, 1, b'x'],
            packet: Packet::Publish(Publish {
                topic: TopicName::alias_placeholder(),
                properties: props(vec![Property::TopicAlias(1)]),
                ..publish(QoS::AtMostOnce, None, b"x")
            }),
        },
        Case {
            name: "PUBACK",
            versions: ALL,
            bytes: vec![0x40, 2, 0, 1],
            packet: Packet::PubAck(Ack::new(pid(1))),
        },
        Case {
            name: "PUBACK 5.0, no matching subscribers",
            versions: &[V5],
            bytes: vec![0x40, 3, 0, 1, 0x10],
            packet: Packet::PubAck(Ack::with_reason(pid(1), ReasonCode::NoMatchingSubscribers)),
        },
        Case {
            name: "PUBACK 5.0, quota exceeded with a reason string",
            versions: &[V5],
            bytes: vec![0x40, 8, 0, 1, 0x97, 4, 0x1f, 0, 1, b'q'],
            packet: Packet::PubAck(Ack {
                properties: props(vec![Property::ReasonString("q".into())]),
                ..Ack::with_reason(pid(1), ReasonCode::QuotaExceeded)
            }),
        },
        Case {
            name: "PUBREC",
            versions: ALL,
            bytes: vec![0x50, 2, 0, 2],
            packet: Packet::PubRec(Ack::new(pid(2))),
        },
        Case {
            name: "PUBREL",
            versions: ALL,
            bytes: vec![0x62, 2, 0, 3],
            packet: Packet::PubRel(Ack::new(pid(3))),
        },
        Case {
            name: "PUBREL 5.0, packet identifier not found",
            versions: &[V5],
            bytes: vec![0x62, 3, 0, 3, 0x92],
            packet: Packet::PubRel(Ack::with_reason(
                pid(3),
                ReasonCode::PacketIdentifierNotFound,
            )),
        },
        Case {
            name: "PUBCOMP",
            versions: ALL,
            bytes: vec![0x70, 2, 0xff, 0xff],
            packet: Packet::PubComp(Ack::new(pid(65535))),
        },
        Case {
            name: "SUBSCRIBE two filters",
            versions: V3,
            bytes: vec![
                0x82, 14, 0, 2, // SUBSCRIBE, packet id 2
                0, 3, b'a', b'/', b'b', 0, // a/b QoS 0
                0, 3, b'c', b'/', b'+', 2, // c/+ QoS 2
            ],
            packet: Packet::Subscribe(Subscribe {
                packet_id: pid(2),
                properties: Properties::new(),
                filters: vec![
                    (filter("a/b"), SubscriptionOptions::new(QoS::AtMostOnce)),
                    (filter("c/+"), SubscriptionOptions::new(QoS::ExactlyOnce)),
                ],
                rejected: Vec::new(),
            }),
        },
        Case {
            name: "SUBSCRIBE 5.0 with identifier and every option",
            versions: &[V5],
            bytes: vec![
                0x82, 11, 0, 1, // SUBSCRIBE, packet id 1
                2, 0x0b, 5, // subscription identifier 5
                0, 3, b'a', b'/', b'#', // filter
                0x1d, // retain handling 1, RAP, no local, QoS 1
            ],
            packet: Packet::Subscribe(Subscribe {
                packet_id: pid(1),
                properties: props(vec![Property::SubscriptionIdentifier(5)]),
                filters: vec![(
                    filter("a/#"),
                    SubscriptionOptions {
                        qos: QoS::AtLeastOnce,
                        no_local: true,
                        retain_as_published: true,
                        retain_handling: RetainHandling::SendIfNew,
                    },
                )],
                rejected: Vec::new(),
            }),
        },
        Case {
            name: "SUBACK granted 1 and failure",
            versions: V3,
            bytes: vec![0x90, 4, 0, 1, 0x01, 0x80],
            packet: Packet::SubAck(SubAck {
                packet_id: pid(1),
                properties: Properties::new(),
                codes: vec![ReasonCode::GrantedQoS1, ReasonCode::UnspecifiedError],
            }),
        },
        Case {
            name: "SUBACK 5.0 granted 2 and topic filter invalid",
            versions: &[V5],
            bytes: vec![0x90, 5, 0, 1, 0, 0x02, 0x8f],
            packet: Packet::SubAck(SubAck {
                packet_id: pid(1),
                properties: Properties::new(),
                codes: vec![ReasonCode::GrantedQoS2, ReasonCode::TopicFilterInvalid],
            }),
        },
        Case {
            name: "UNSUBSCRIBE",
            versions: V3,
            bytes: vec![0xa2, 5, 0, 1, 0, 1, b'a'],
            packet: Packet::Unsubscribe(Unsubscribe {
                packet_id: pid(1),
                properties: Properties::new(),
                filters: vec![filter("a")],
            }),
        },
        Case {
            name: "UNSUBSCRIBE 5.0",
            versions: &[V5],
            bytes: vec![0xa2, 6, 0, 1, 0, 0, 1, b'a'],
            packet: Packet::Unsubscribe(Unsubscribe {
                packet_id: pid(1),
                properties: Properties::new(),
                filters: vec![filter("a")],
            }),
        },
        Case {
            name: "UNSUBACK",
            versions: V3,
            bytes: vec![0xb0, 2, 0, 1],
            packet: Packet::UnsubAck(UnsubAck {
                packet_id: pid(1),
                properties: Properties::new(),
                codes: vec![],
            }),
        },
        Case {
            name: "UNSUBACK 5.0, no subscription existed",
            versions: &[V5],
            bytes: vec![0xb0, 4, 0, 1, 0, 0x11],
            packet: Packet::UnsubAck(UnsubAck {
                packet_id: pid(1),
                properties: Properties::new(),
                codes: vec![ReasonCode::NoSubscriptionExisted],
            }),
        },
        Case {
            name: "PINGREQ",
            versions: ALL,
            bytes: vec![0xc0, 0],
            packet: Packet::PingReq,
        },
        Case {
            name: "PINGRESP",
            versions: ALL,
            bytes: vec![0xd0, 0],
            packet: Packet::PingResp,
        },
        Case {
            name: "DISCONNECT",
            versions: ALL,
            bytes: vec![0xe0, 0],
            packet: Packet::Disconnect(Disconnect::new(ReasonCode::Success)),
        },
        Case {
            name: "DISCONNECT 5.0 with will message",
            versions: &[V5],
            bytes: vec![0xe0, 1, 0x04],
            packet: Packet::Disconnect(Disconnect::new(ReasonCode::DisconnectWithWillMessage)),
        },
        Case {
            name: "DISCONNECT 5.0 setting session expiry to 0",
            versions: &[V5],
            bytes: vec![0xe0, 7, 0x00, 5, 0x11, 0, 0, 0, 0],
            packet: Packet::Disconnect(Disconnect {
                reason: ReasonCode::Success,
                properties: props(vec![Property::SessionExpiryInterval(0)]),
            }),
        },
        Case {
            name: "AUTH 5.0, success",
            versions: &[V5],
            bytes: vec![0xf0, 0],
            packet: Packet::Auth(Auth {
                reason: ReasonCode::Success,
                properties: Properties::new(),
            }),
        },
        Case {
            name: "AUTH 5.0, continue with a method",
            versions: &[V5],
            bytes: vec![0xf0, 9, 0x18, 7, 0x15, 0, 4, b'S', b'C', b'R', b'M'],
            packet: Packet::Auth(Auth {
                reason: ReasonCode::ContinueAuthentication,
                properties: props(vec![Property::AuthenticationMethod("SCRM".into())]),
            }),
        },
    ]
}

#[test]
fn every_golden_packet_decodes_and_encodes_to_its_bytes() {
    let cases = golden_cases();
    for case in &cases {
        for &version in case.versions {
            let decoded = Packet::decode(&case.bytes, version);
            assert_eq!(
                decoded.as_ref(),
                Ok(&case.packet),
                "decode {} ({version:?})",
                case.name
            );
            // CONNECT encodes in the version it carries; everything else in `version`.
            let encoded = case.packet.to_bytes(version).expect("encodable");
            assert_eq!(encoded, case.bytes, "encode {} ({version:?})", case.name);
        }
    }
    let covered: std::collections::HashSet<_> =
        cases.iter().map(|case| case.packet.packet_type()).collect();
    assert_eq!(
        covered.len(),
        15,
        "the table covers all fifteen packet types"
    );
}

/// The error class a bad input must produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Malformed,
    Protocol,
    UnsupportedVersion,
    InvalidName,
}

fn class(error: &DecodeError) -> Expect {
    match error {
        DecodeError::Malformed(_) => Expect::Malformed,
        DecodeError::Protocol(_) => Expect::Protocol,
        DecodeError::UnsupportedProtocolVersion(_) => Expect::UnsupportedVersion,
        DecodeError::InvalidProtocolName => Expect::InvalidName,
        DecodeError::PacketTooLarge { .. } => panic!("size is checked by framing, not decode"),
    }
}

/// A packet whose remaining length is computed from its body.
fn pkt(first_byte: u8, body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![
        first_byte,
        u8::try_from(body.len()).expect("short test body"),
    ];
    bytes.extend_from_slice(body);
    bytes
}

/// `(rule, versions, bytes, expected error)`
fn bad_inputs() -> Vec<(&'static str, &'static [ProtocolVersion], Vec<u8>, Expect)> {
    use Expect::*;
    let connect = |level: u8, flags: u8, rest: &[u8]| {
        let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', level, flags, 0, 60];
        if level == 5 {
            body.push(0);
        }
        body.extend_from_slice(rest);
        pkt(0x10, &body)
    };
    vec![
        ("packet type 0 is reserved", ALL, pkt(0x00, &[]), Protocol),
        (
            "[MQTT-2.2.2-2] PINGREQ with flags",
            ALL,
            pkt(0xc1, &[]),
            Malformed,
        ),
        (
            "[MQTT-3.6.1-1] PUBREL without flag 0b0010",
            ALL,
            pkt(0x60, &[0, 1]),
            Malformed,
        ),
        (
            "[MQTT-3.8.1-1] SUBSCRIBE flags 0",
            ALL,
            pkt(0x80, &[0, 1, 0, 1, b'a', 0]),
            Malformed,
        ),
        (
            "[MQTT-3.10.1-1] UNSUBSCRIBE flags 0",
            ALL,
            pkt(0xa0, &[0, 1, 0, 1, b'a']),
            Malformed,
        ),
        (
            "[MQTT-3.14.1-1] DISCONNECT flags",
            ALL,
            pkt(0xe2, &[]),
            Malformed,
        ),
        ("DISCONNECT 3.x with a body", V3, pkt(0xe0, &[0]), Malformed),
        ("PINGREQ with a body", ALL, pkt(0xc0, &[0]), Malformed),
        (
            "PUBACK 3.x with a reason code",
            V3,
            pkt(0x40, &[0, 1, 0]),
            Malformed,
        ),
        ("AUTH is reserved before 5.0", V3, pkt(0xf0, &[]), Malformed),
        (
            "remaining length too short",
            ALL,
            vec![0x40, 1, 0],
            Malformed,
        ),
        (
            "[MQTT-1.5.5-1] non-minimal remaining length",
            &[V5],
            vec![0xc0, 0x80, 0x00],
            Malformed,
        ),
        (
            "[MQTT-3.3.1-4] PUBLISH QoS 3",
            ALL,
            pkt(0x36, &[0, 1, b'a', 0, 1]),
            Malformed,
        ),
        (
            "[MQTT-3.3.1-2] DUP on QoS 0",
            ALL,
            pkt(0x38, &[0, 1, b'a']),
            Malformed,
        ),
        (
            "[MQTT-2.3.1-1] PUBLISH packet id 0",
            ALL,
            pkt(0x32, &[0, 1, b'a', 0, 0]),
            Protocol,
        ),
        (
            "[MQTT-2.3.1-1] PUBACK packet id 0",
            ALL,
            pkt(0x40, &[0, 0]),
            Protocol,
        ),
        (
            "[MQTT-2.3.1-1] SUBSCRIBE packet id 0",
            ALL,
            pkt(0x82, &[0, 0, 0, 1, b'a', 0]),
            Protocol,
        ),
        (
            "[MQTT-3.3.2-2] wildcard in topic name",
            V3,
            pkt(0x30, &[0, 3, b'a', b'/', b'+']),
            Protocol,
        ),
        (
            "[MQTT-3.3.2-2] '#' in topic name",
            V3,
            pkt(0x30, &[0, 1, b'#']),
            Protocol,
        ),
        (
            "[MQTT-4.7.3-1] empty topic name",
            V3,
            pkt(0x30, &[0, 0, b'x']),
            Protocol,
        ),
        (
            "empty topic without alias",
            &[V5],
            pkt(0x30, &[0, 0, 0, b'x']),
            Protocol,
        ),
        (
            "[MQTT-1.5.4-2] U+0000 in topic",
            V3,
            pkt(0x30, &[0, 3, b'a', 0, b'b']),
            Malformed,
        ),
        (
            "[MQTT-1.5.4-1] invalid UTF-8 in topic",
            V3,
            pkt(0x30, &[0, 2, 0xc3, 0x28]),
            Malformed,
        ),
        (
            "surrogate in topic",
            V3,
            pkt(0x30, &[0, 3, 0xed, 0xa0, 0x80]),
            Malformed,
        ),
        (
            "control character in topic",
            V3,
            pkt(0x30, &[0, 3, b'a', b'\t', b'b']),
            Malformed,
        ),
        (
            "topic length past the end",
            V3,
            pkt(0x30, &[0, 9, b'a']),
            Malformed,
        ),
        (
            "[MQTT-3.8.3-3] SUBSCRIBE without filters",
            V3,
            pkt(0x82, &[0, 1]),
            Protocol,
        ),
        (
            "[MQTT-3.8.3-2] SUBSCRIBE 5.0 without filters",
            &[V5],
            pkt(0x82, &[0, 1, 0]),
            Protocol,
        ),
        (
            "[MQTT-3.10.3-2] UNSUBSCRIBE without filters",
            V3,
            pkt(0xa2, &[0, 1]),
            Protocol,
        ),
        (
            "[MQTT-3.10.3-2] UNSUBSCRIBE 5.0 without filters",
            &[V5],
            pkt(0xa2, &[0, 1, 0]),
            Protocol,
        ),
        (
            "[MQTT-4.7.1-1] filter a/#/b",
            V3,
            pkt(0x82, &[0, 1, 0, 5, b'a', b'/', b'#', b'/', b'b', 0]),
            Malformed,
        ),
        (
            "[MQTT-4.7.1-2] filter a+",
            V3,
            pkt(0x82, &[0, 1, 0, 2, b'a', b'+', 0]),
            Malformed,
        ),
        ("empty filter", V3, pkt(0x82, &[0, 1, 0, 0, 0]), Malformed),
        (
            "[MQTT-3-8.3-4] subscription QoS 3",
            V3,
            pkt(0x82, &[0, 1, 0, 1, b'a', 3]),
            Malformed,
        ),
        (
            "[MQTT-3-8.3-4] reserved subscription bits 3.1.1",
            V3,
            pkt(0x82, &[0, 1, 0, 1, b'a', 0x04]),
            Malformed,
        ),
        (
            "[MQTT-3.8.3-5] reserved subscription bits 5.0",
            &[V5],
            pkt(0x82, &[0, 1, 0, 0, 1, b'a', 0x40]),
            Malformed,
        ),
        (
            "retain handling 3",
            &[V5],
            pkt(0x82, &[0, 1, 0, 0, 1, b'a', 0x30]),
            Protocol,
        ),
        (
            "[MQTT-3.8.3-4] No Local on a shared subscription",
            &[V5],
            pkt(
                0x82,
                &[
                    0, 1, 0, 0, 10, b'$', b's', b'h', b'a', b'r', b'e', b'/', b'g', b'/', b'a',
                    0x04,
                ],
            ),
            Protocol,
        ),
        (
            "[MQTT-3.9.3-2] SUBACK 3.x code 0x87",
            V3,
            pkt(0x90, &[0, 1, 0x87]),
            Malformed,
        ),
        (
            "[MQTT-3.2.2-1] CONNACK reserved flags",
            V3,
            pkt(0x20, &[0x02, 0]),
            Malformed,
        ),
        ("CONNACK return code 6", V3, pkt(0x20, &[0, 6]), Malformed),
        (
            "duplicate property",
            &[V5],
            pkt(0x30, &[0, 1, b'a', 10, 0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2]),
            Protocol,
        ),
        (
            "unknown property",
            &[V5],
            pkt(0x30, &[0, 1, b'a', 2, 0x7f, 0, b'x']),
            Malformed,
        ),
        (
            "property not allowed in PUBLISH",
            &[V5],
            pkt(0x30, &[0, 1, b'a', 5, 0x11, 0, 0, 0, 1]),
            Malformed,
        ),
        (
            "PUBACK 5.0 with a SUBACK-only code",
            &[V5],
            pkt(0x40, &[0, 1, 0x01]),
            Malformed,
        ),
        (
            "[MQTT-3.1.2-1] protocol name",
            ALL,
            {
                let mut bytes = connect(4, 0x02, &[0, 1, b'c']);
                bytes[4] = b'X';
                bytes
            },
            InvalidName,
        ),
        (
            "[MQTT-3.1.2-2] protocol level 6",
            ALL,
            connect(6, 0x02, &[0, 1, b'c']),
            UnsupportedVersion,
        ),
        (
            "MQIsdp at level 4",
            ALL,
            pkt(
                0x10,
                &[
                    0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 4, 2, 0, 60, 0, 1, b'c',
                ],
            ),
            UnsupportedVersion,
        ),
        (
            "[MQTT-3.1.2-3] reserved connect flag",
            ALL,
            connect(4, 0x03, &[0, 1, b'c']),
            Malformed,
        ),
        (
            "[MQTT-3.1.2-14] will QoS 3",
            ALL,
            connect(4, 0x1e, &[0, 1, b'c', 0, 1, b'w', 0, 0]),
            Malformed,
        ),
        (
            "[MQTT-3.1.2-13] will QoS without will",
            ALL,
            connect(4, 0x0a, &[0, 1, b'c']),
            Malformed,
        ),
        (
            "[MQTT-3.1.2-15] will retain without will",
            ALL,
            connect(4, 0x22, &[0, 1, b'c']),
            Malformed,
        ),
        (
            "[MQTT-3.1.2-9] will flag without will topic",
            ALL,
            connect(4, 0x06, &[0, 1, b'c']),
            Malformed,
        ),
        (
            "will topic with a wildcard",
            ALL,
            connect(4, 0x06, &[0, 1, b'c', 0, 1, b'#', 0, 0]),
            Protocol,
        ),
        (
            "[MQTT-3.1.2-22] password without user name",
            ALL,
            connect(4, 0x42, &[0, 1, b'c', 0, 1, b'p']),
            Protocol,
        ),
        (
            "user name flag without the field",
            ALL,
            connect(4, 0x82, &[0, 1, b'c']),
            Malformed,
        ),
        (
            "trailing bytes after CONNECT",
            ALL,
            connect(4, 0x02, &[0, 1, b'c', 0xff]),
            Malformed,
        ),
        (
            "client id with U+0000",
            ALL,
            connect(4, 0x02, &[0, 1, 0]),
            Malformed,
        ),
        (
            "receive maximum 0",
            ALL,
            pkt(
                0x10,
                &[
                    0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 60, 3, 0x21, 0, 0, 0, 1, b'c',
                ],
            ),
            Protocol,
        ),
    ]
}

#[test]
fn bad_inputs_are_refused_with_the_error_the_spec_requires() {
    for (rule, versions, bytes, expected) in bad_inputs() {
        for &version in versions {
            match Packet::decode(&bytes, version) {
                Ok(packet) => panic!("{rule} ({version:?}): accepted as {packet:?}"),
                Err(error) => assert_eq!(class(&error), expected, "{rule} ({version:?}): {error}"),
            }
        }
    }
}

/// The decode fuzz target's seed corpus (`fuzz/corpus/decode`) is the golden table
/// and the bad inputs, each prefixed with the fuzz target's version selector (0:
/// 3.1, 1: 3.1.1, 2: 5.0). `MQTTKIT_BLESS=1 cargo test corpus` rewrites it.
#[test]
fn the_decode_fuzz_corpus_is_the_golden_table() {
    let selector = |version: ProtocolVersion| match version {
        V3_1 => 0u8,
        V3_1_1 => 1,
        _ => 2,
    };
    let mut seeds = std::collections::BTreeMap::new();
    for case in golden_cases() {
        for &version in case.versions {
            let name =
                format!("golden-{}-{}", case.name, selector(version)).replace([' ', '/'], "_");
            seeds.insert(name, [&[selector(version)][..], &case.bytes].concat());
        }
    }
    for (name, versions, bytes, _) in bad_inputs() {
        for &version in versions {
            let name = format!("bad-{name}-{}", selector(version)).replace([' ', '/'], "_");
            seeds.insert(name, [&[selector(version)][..], &bytes].concat());
        }
    }
    let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode");
    if std::env::var("MQTTKIT_BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(&directory).expect("create the corpus");
        for (name, bytes) in &seeds {
            std::fs::write(directory.join(name), bytes).expect("write a seed");
        }
    }
    for (name, bytes) in &seeds {
        let stored = std::fs::read(directory.join(name)).unwrap_or_default();
        assert_eq!(
            &stored, bytes,
            "fuzz/corpus/decode/{name} is stale; run `MQTTKIT_BLESS=1 cargo test corpus`"
        );
    }
}

/// Found by the `decode` fuzz target: an MQTT 5 SUBSCRIBE whose only filter is
/// invalid (`$share/#/a`) decoded, but encoded without it, which no longer decoded.
/// Rejected filters are now encoded back in their places.
#[test]
fn fuzz_regression_a_subscribe_with_only_a_rejected_filter_round_trips() {
    let bytes = [
        &[0x82, 0x10, 0x00, 0x01, 0x00, 0x00, 0x0a][..],
        b"$share/#/a",
        &[0x04],
    ]
    .concat();
    let packet = Packet::decode(&bytes, V5).expect("decodes, the filter rejected");
    let Packet::Subscribe(subscribe) = &packet else {
        panic!("{packet:?}")
    };
    assert!(subscribe.filters.is_empty());
    assert_eq!(subscribe.rejected.len(), 1);
    let encoded = packet.to_bytes(V5).expect("encodes");
    assert_eq!(encoded, bytes);
    assert_eq!(Packet::decode(&encoded, V5), Ok(packet));
}
