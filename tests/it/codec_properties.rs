//! Property tests for the codec: generated packets survive `encode` then `decode`
//! unchanged in every version, no byte string makes framing or decoding panic, and
//! the load generator's in-place PUBLISH view and short acknowledgements agree with
//! the decoder.

use bytes::Bytes;
use mqttkit::protocol::{
    Ack, ConnAck, Connect, Disconnect, FrameStatus, Packet, PacketId, PacketType, Properties,
    Property, ProtocolVersion, Publish, PublishView, QoS, ReasonCode, ReasonContext,
    RetainHandling, SubAck, Subscribe, SubscriptionOptions, TopicFilter, TopicName, UnsubAck,
    Unsubscribe, Will, check_frame, encode_short_ack,
};
use proptest::prelude::*;

fn version() -> impl Strategy<Value = ProtocolVersion> {
    prop_oneof![
        Just(ProtocolVersion::V3_1),
        Just(ProtocolVersion::V3_1_1),
        Just(ProtocolVersion::V5)
    ]
}

fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

fn packet_id() -> impl Strategy<Value = PacketId> {
    (1u16..).prop_map(|id| PacketId::new(id).expect("non-zero by range"))
}

fn level() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _$é€\u{10348}-]{0,6}"
}

fn topic_name() -> impl Strategy<Value = TopicName> {
    prop::collection::vec(level(), 1..5)
        .prop_map(|levels| levels.join("/"))
        .prop_filter_map("non-empty", |text| TopicName::new(text).ok())
}

fn topic_filter() -> impl Strategy<Value = TopicFilter> {
    let level = prop_oneof![4 => level(), 1 => Just("+".to_string())];
    (
        prop::collection::vec(level, 1..5),
        any::<bool>(),
        prop::option::of("[a-z]{1,4}"),
    )
        .prop_map(|(levels, hash, share)| {
            let mut text = levels.join("/");
            if hash {
                text.push_str("/#");
            }
            match share {
                Some(group) => format!("$share/{group}/{text}"),
                None => text,
            }
        })
        .prop_filter_map("valid filter", |text| TopicFilter::new(text).ok())
}

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 /é-]{0,12}"
}

fn binary() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

/// Up to one of each single-valued property plus a few user properties, drawn from
/// the properties a given packet may carry.
fn properties(candidates: Vec<BoxedStrategy<Property>>) -> impl Strategy<Value = Properties> {
    let user = prop::collection::vec(
        (text(), text()).prop_map(|(k, v)| Property::UserProperty(k, v)),
        0..3,
    );
    let picks: Vec<_> = candidates.into_iter().map(prop::option::of).collect();
    (picks, user).prop_map(|(picked, user)| {
        picked
            .into_iter()
            .flatten()
            .chain(user)
            .collect::<Properties>()
    })
}

fn flag() -> impl Strategy<Value = u8> {
    0u8..=1
}

fn message_properties(will: bool) -> impl Strategy<Value = Properties> {
    let mut list = vec![
        flag().prop_map(Property::PayloadFormatIndicator).boxed(),
        any::<u32>()
            .prop_map(Property::MessageExpiryInterval)
            .boxed(),
        text().prop_map(Property::ContentType).boxed(),
        topic_name()
            .prop_map(|t| Property::ResponseTopic(t.to_string()))
            .boxed(),
        binary().prop_map(Property::CorrelationData).boxed(),
    ];
    if will {
        list.push(any::<u32>().prop_map(Property::WillDelayInterval).boxed());
    } else {
        list.push(
            (1u32..=268_435_455)
                .prop_map(Property::SubscriptionIdentifier)
                .boxed(),
        );
    }
    properties(list)
}

/// A reason code the packet may carry, chosen from the allowed ones (filtering
/// random bytes rejects most of them, and proptest gives up on too many rejects).
fn reason(context: ReasonContext) -> impl Strategy<Value = ReasonCode> {
    let allowed: Vec<ReasonCode> = (0..=u8::MAX)
        .filter_map(ReasonCode::from_u8)
        .filter(|code| context.allows(*code))
        .collect();
    proptest::sample::select(allowed)
}

/// Properties exist only in 5.0; 3.x packets carry an empty list.
fn only_v5(version: ProtocolVersion, props: Properties) -> Properties {
    if version.is_v5() {
        props
    } else {
        Properties::new()
    }
}

pub(crate) fn packet(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    let v5 = version.is_v5();
    let connect = (
        any::<bool>(),
        any::<u16>(),
        "[a-zA-Z0-9]{0,23}",
        prop::option::of((
            topic_name(),
            binary(),
            qos(),
            any::<bool>(),
            message_properties(true),
        )),
        prop::option::of(text()),
        prop::option::of(binary()),
        properties(vec![
            any::<u32>()
                .prop_map(Property::SessionExpiryInterval)
                .boxed(),
            (1u16..).prop_map(Property::ReceiveMaximum).boxed(),
            (1u32..).prop_map(Property::MaximumPacketSize).boxed(),
            any::<u16>().prop_map(Property::TopicAliasMaximum).boxed(),
            flag().prop_map(Property::RequestProblemInformation).boxed(),
            flag()
                .prop_map(Property::RequestResponseInformation)
                .boxed(),
            text().prop_map(Property::AuthenticationMethod).boxed(),
        ]),
    )
        .prop_map(
            move |(clean, keep_alive, id, will, username, password, props)| {
                // 3.x forbids a password without a user name [MQTT-3.1.2-22].
                let username = if !v5 && password.is_some() && username.is_none() {
                    Some(String::new())
                } else {
                    username
                };
                Packet::Connect(Box::new(Connect {
                    version,
                    clean_start: clean,
                    keep_alive,
                    properties: only_v5(version, props),
                    client_id: id,
                    will: will.map(|(topic, payload, qos, retain, props)| Will {
                        topic,
                        payload,
                        qos,
                        retain,
                        properties: only_v5(version, props),
                    }),
                    username,
                    password,
                    bridge: false,
                }))
            },
        );
    let connack = (
        any::<bool>(),
        if v5 {
            reason(ReasonContext::ConnAck).boxed()
        } else {
            (0u8..=5)
                .prop_map(|code| ReasonCode::from_v3_connack(code).expect("0..=5 are defined"))
                .boxed()
        },
        properties(vec![
            text().prop_map(Property::AssignedClientIdentifier).boxed(),
            any::<u16>().prop_map(Property::ServerKeepAlive).boxed(),
            flag().prop_map(Property::MaximumQos).boxed(),
            flag().prop_map(Property::RetainAvailable).boxed(),
            text().prop_map(Property::ReasonString).boxed(),
        ]),
    )
        .prop_map(move |(session_present, code, props)| {
            Packet::ConnAck(ConnAck {
                session_present,
                code,
                properties: only_v5(version, props),
            })
        });
    let publish = (
        topic_name(),
        qos(),
        any::<bool>(),
        any::<bool>(),
        packet_id(),
        binary(),
        message_properties(false),
    )
        .prop_map(move |(topic, qos, dup, retain, id, payload, props)| {
            let has_id = qos != QoS::AtMostOnce;
            Packet::Publish(Publish {
                dup: dup && has_id,
                qos,
                retain,
                topic,
                packet_id: has_id.then_some(id),
                properties: only_v5(version, props),
                payload,
            })
        });
    let ack = |context: ReasonContext| {
        (
            packet_id(),
            reason(context),
            properties(vec![text().prop_map(Property::ReasonString).boxed()]),
        )
            .prop_map(move |(id, code, props)| Ack {
                packet_id: id,
                reason: if v5 { code } else { ReasonCode::Success },
                properties: only_v5(version, props),
            })
    };
    let subscribe = (
        packet_id(),
        prop::collection::vec(
            (topic_filter(), qos(), any::<bool>(), any::<bool>(), 0u8..3),
            1..4,
        ),
        properties(vec![
            (1u32..=268_435_455)
                .prop_map(Property::SubscriptionIdentifier)
                .boxed(),
        ]),
    )
        .prop_map(move |(id, entries, props)| {
            let filters = entries
                .into_iter()
                .map(|(filter, qos, no_local, rap, handling)| {
                    let mut options = SubscriptionOptions::new(qos);
                    if v5 {
                        options.no_local = no_local && filter.share_group().is_none();
                        options.retain_as_published = rap;
                        options.retain_handling = match handling {
                            0 => RetainHandling::SendAtSubscribe,
                            1 => RetainHandling::SendIfNew,
                            _ => RetainHandling::DoNotSend,
                        };
                    }
                    (filter, options)
                })
                .collect();
            Packet::Subscribe(Subscribe {
                packet_id: id,
                properties: only_v5(version, props),
                filters,
                rejected: Vec::new(),
            })
        });
    let suback_code = if v5 {
        reason(ReasonContext::SubAck).boxed()
    } else {
        prop_oneof![
            Just(ReasonCode::Success),
            Just(ReasonCode::GrantedQoS1),
            Just(ReasonCode::GrantedQoS2),
            Just(ReasonCode::UnspecifiedError)
        ]
        .boxed()
    };
    let suback =
        (packet_id(), prop::collection::vec(suback_code, 1..4)).prop_map(move |(id, codes)| {
            Packet::SubAck(SubAck {
                packet_id: id,
                properties: Properties::new(),
                codes,
            })
        });
    let unsubscribe =
        (packet_id(), prop::collection::vec(topic_filter(), 1..4)).prop_map(|(id, filters)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id: id,
                properties: Properties::new(),
                filters,
            })
        });
    let unsuback = (
        packet_id(),
        prop::collection::vec(reason(ReasonContext::UnsubAck), 1..4),
    )
        .prop_map(move |(id, codes)| {
            Packet::UnsubAck(UnsubAck {
                packet_id: id,
                properties: Properties::new(),
                codes: if v5 { codes } else { Vec::new() },
            })
        });
    let disconnect = (
        reason(ReasonContext::Disconnect),
        properties(vec![
            any::<u32>()
                .prop_map(Property::SessionExpiryInterval)
                .boxed(),
        ]),
    )
        .prop_map(move |(code, props)| {
            Packet::Disconnect(Disconnect {
                reason: if v5 { code } else { ReasonCode::Success },
                properties: only_v5(version, props),
            })
        });
    prop_oneof![
        connect,
        connack,
        publish,
        ack(ReasonContext::PubAck).prop_map(Packet::PubAck),
        ack(ReasonContext::PubAck).prop_map(Packet::PubRec),
        ack(ReasonContext::PubRel).prop_map(Packet::PubRel),
        ack(ReasonContext::PubRel).prop_map(Packet::PubComp),
        subscribe,
        suback,
        unsubscribe,
        unsuback,
        Just(Packet::PingReq),
        Just(Packet::PingResp),
        disconnect,
    ]
    .boxed()
}

pub(crate) fn version_and_packet() -> impl Strategy<Value = (ProtocolVersion, Packet)> {
    version().prop_flat_map(|version| (Just(version), packet(version)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decode_of_encode_is_identity((version, packet) in version_and_packet()) {
        let bytes = packet.to_bytes(version).expect("generated packets are encodable");
        let status = check_frame(&bytes, usize::MAX).expect("framing accepts it");
        match status {
            FrameStatus::Complete(header) => prop_assert_eq!(header.frame_len(), bytes.len()),
            FrameStatus::Incomplete { .. } => prop_assert!(false, "whole packet reported incomplete"),
        }
        prop_assert_eq!(Packet::decode(&bytes, version), Ok(packet));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64), version in version()) {
        if let Ok(FrameStatus::Complete(header)) = check_frame(&bytes, 1 << 20) {
            let _ = Packet::decode(&bytes[..header.frame_len()], version);
        }
    }

    /// Flipping bytes of a valid packet reaches far deeper into the decoder than
    /// random bytes do; whatever comes out must be an error or a packet that encodes.
    #[test]
    fn mutated_packets_never_panic(
        (version, packet) in version_and_packet(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = packet.to_bytes(version).expect("encodable");
        for (index, value) in flips {
            let at = index.index(bytes.len());
            bytes[at] = value;
        }
        if let Ok(FrameStatus::Complete(header)) = check_frame(&bytes, 1 << 20)
            && let Ok(decoded) = Packet::decode(&bytes[..header.frame_len()], version)
        {
            let connect_version = match &decoded {
                Packet::Connect(connect) => connect.version,
                _ => version,
            };
            prop_assert!(decoded.to_bytes(connect_version).is_ok());
        }
    }

    /// Framing and decoding agree on where a packet ends, whatever follows it.
    #[test]
    fn check_agrees_with_decode((version, packet) in version_and_packet(), tail in prop::collection::vec(any::<u8>(), 0..8)) {
        let bytes = packet.to_bytes(version).expect("encodable");
        let mut stream = bytes.clone();
        stream.extend(tail);
        for cut in 0..bytes.len() {
            let partial = check_frame(&stream[..cut], usize::MAX).expect("a prefix is never invalid");
            let is_incomplete = matches!(partial, FrameStatus::Incomplete { needed } if needed >= 1 && cut + needed <= bytes.len());
            prop_assert!(is_incomplete, "prefix of {} bytes: {:?}", cut, partial);
        }
        match check_frame(&stream, usize::MAX) {
            Ok(FrameStatus::Complete(header)) => {
                prop_assert_eq!(header.frame_len(), bytes.len());
                prop_assert_eq!(Packet::decode(&stream[..header.frame_len()], version), Ok(packet));
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    /// The borrowed view of the load generator's hot path reads every PUBLISH the
    /// full decoder reads, with the same fields; the short acknowledgements decode
    /// as the acknowledgements they stand for.
    #[test]
    fn publish_view_and_short_acks_agree_with_decode((version, packet) in version_and_packet()) {
        let bytes = packet.to_bytes(version).expect("encodable");
        let Ok(FrameStatus::Complete(header)) = check_frame(&bytes, usize::MAX) else {
            return Err(TestCaseError::fail("not a whole frame"));
        };
        let view = PublishView::parse(bytes[0], &bytes[header.header_len..], version);
        match &packet {
            Packet::Publish(publish) => {
                let view = view.expect("a PUBLISH is viewed");
                prop_assert_eq!(view.header.qos, publish.qos);
                prop_assert_eq!(view.header.dup, publish.dup);
                prop_assert_eq!(view.header.retain, publish.retain);
                prop_assert_eq!(view.header.packet_id, publish.packet_id);
                prop_assert_eq!(view.topic, publish.topic.as_str().as_bytes());
                prop_assert_eq!(view.payload, &publish.payload[..]);
                let mut short = Vec::new();
                if let Some(id) = publish.packet_id {
                    for (kind, rebuilt) in [
                        (PacketType::PubAck, Packet::PubAck(Ack::new(id))),
                        (PacketType::PubRec, Packet::PubRec(Ack::new(id))),
                        (PacketType::PubRel, Packet::PubRel(Ack::new(id))),
                        (PacketType::PubComp, Packet::PubComp(Ack::new(id))),
                    ] {
                        short.clear();
                        prop_assert!(encode_short_ack(&mut short, kind, id));
                        prop_assert_eq!(Packet::decode(&short, version), Ok(rebuilt));
                    }
                }
            }
            _ => prop_assert!(view.is_none()),
        }
    }
}
