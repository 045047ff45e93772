//! Differential test against rumqttc's MQTT 3.1.1 codec (`rumqttc::mqttbytes::v4`):
//! for generated 3.1.1 packets, rumqttc must read our bytes as the same packet, and
//! write that packet back as the same bytes.

use bytes::BytesMut;
use mqttkit::protocol::{
    Ack, ConnAck, Connect, Packet, PacketId, Properties, ProtocolVersion, Publish, QoS, ReasonCode,
    SubAck, Subscribe, SubscriptionOptions, TopicFilter, TopicName, UnsubAck, Unsubscribe, Will,
};
use proptest::prelude::*;
use rumqttc::mqttbytes::v4 as theirs;

const V311: ProtocolVersion = ProtocolVersion::V3_1_1;

fn their_qos(qos: QoS) -> rumqttc::mqttbytes::QoS {
    match qos {
        QoS::AtMostOnce => rumqttc::mqttbytes::QoS::AtMostOnce,
        QoS::AtLeastOnce => rumqttc::mqttbytes::QoS::AtLeastOnce,
        QoS::ExactlyOnce => rumqttc::mqttbytes::QoS::ExactlyOnce,
    }
}

fn our_qos(qos: rumqttc::mqttbytes::QoS) -> QoS {
    QoS::from_u8(qos as u8).expect("rumqttc QoS is 0..=2")
}

fn pid(id: u16) -> PacketId {
    PacketId::new(id).expect("rumqttc read a non-zero id")
}

/// Our packet as rumqttc models it, or `None` where rumqttc cannot represent it:
/// rumqttc's `Login` needs both fields, writes neither when empty, and holds the
/// password as UTF-8.
fn to_theirs(packet: &Packet) -> Option<theirs::Packet> {
    Some(match packet {
        Packet::Connect(c) => {
            let login = match (&c.username, &c.password) {
                (None, None) => None,
                (Some(user), Some(pass)) if !user.is_empty() && !pass.is_empty() => {
                    Some(theirs::Login {
                        username: user.clone(),
                        password: String::from_utf8(pass.to_vec()).ok()?,
                    })
                }
                _ => return None,
            };
            theirs::Packet::Connect(theirs::Connect {
                protocol: rumqttc::mqttbytes::Protocol::V4,
                keep_alive: c.keep_alive,
                client_id: c.client_id.clone(),
                clean_session: c.clean_start,
                last_will: c.will.as_ref().map(|w| theirs::LastWill {
                    topic: w.topic.to_string(),
                    message: w.payload.clone(),
                    qos: their_qos(w.qos),
                    retain: w.retain,
                }),
                login,
            })
        }
        Packet::ConnAck(c) => theirs::Packet::ConnAck(theirs::ConnAck {
            session_present: c.session_present,
            code: match c.code.to_v3_connack() {
                0 => theirs::ConnectReturnCode::Success,
                1 => theirs::ConnectReturnCode::RefusedProtocolVersion,
                2 => theirs::ConnectReturnCode::BadClientId,
                3 => theirs::ConnectReturnCode::ServiceUnavailable,
                4 => theirs::ConnectReturnCode::BadUserNamePassword,
                _ => theirs::ConnectReturnCode::NotAuthorized,
            },
        }),
        Packet::Publish(p) => theirs::Packet::Publish(theirs::Publish {
            dup: p.dup,
            qos: their_qos(p.qos),
            retain: p.retain,
            topic: p.topic.to_string(),
            pkid: p.packet_id.map_or(0, |id| id.get()),
            payload: p.payload.clone(),
        }),
        Packet::PubAck(a) => theirs::Packet::PubAck(theirs::PubAck {
            pkid: a.packet_id.get(),
        }),
        Packet::PubRec(a) => theirs::Packet::PubRec(theirs::PubRec {
            pkid: a.packet_id.get(),
        }),
        Packet::PubRel(a) => theirs::Packet::PubRel(theirs::PubRel {
            pkid: a.packet_id.get(),
        }),
        Packet::PubComp(a) => theirs::Packet::PubComp(theirs::PubComp {
            pkid: a.packet_id.get(),
        }),
        Packet::Subscribe(s) => theirs::Packet::Subscribe(theirs::Subscribe {
            pkid: s.packet_id.get(),
            filters: s
                .filters
                .iter()
                .map(|(filter, options)| theirs::SubscribeFilter {
                    path: filter.to_string(),
                    qos: their_qos(options.qos),
                })
                .collect(),
        }),
        Packet::SubAck(s) => theirs::Packet::SubAck(theirs::SubAck {
            pkid: s.packet_id.get(),
            return_codes: s
                .codes
                .iter()
                .map(|code| match code {
                    ReasonCode::Success => {
                        theirs::SubscribeReasonCode::Success(rumqttc::mqttbytes::QoS::AtMostOnce)
                    }
                    ReasonCode::GrantedQoS1 => {
                        theirs::SubscribeReasonCode::Success(rumqttc::mqttbytes::QoS::AtLeastOnce)
                    }
                    ReasonCode::GrantedQoS2 => {
                        theirs::SubscribeReasonCode::Success(rumqttc::mqttbytes::QoS::ExactlyOnce)
                    }
                    _ => theirs::SubscribeReasonCode::Failure,
                })
                .collect(),
        }),
        Packet::Unsubscribe(u) => theirs::Packet::Unsubscribe(theirs::Unsubscribe {
            pkid: u.packet_id.get(),
            topics: u.filters.iter().map(ToString::to_string).collect(),
        }),
        Packet::UnsubAck(u) => theirs::Packet::UnsubAck(theirs::UnsubAck {
            pkid: u.packet_id.get(),
        }),
        Packet::PingReq => theirs::Packet::PingReq,
        Packet::PingResp => theirs::Packet::PingResp,
        Packet::Disconnect(_) => theirs::Packet::Disconnect,
        Packet::Auth(_) => return None,
    })
}

/// rumqttc's packet in our model.
fn to_ours(packet: theirs::Packet) -> Packet {
    match packet {
        theirs::Packet::Connect(c) => Packet::Connect(Box::new(Connect {
            version: V311,
            clean_start: c.clean_session,
            keep_alive: c.keep_alive,
            properties: Properties::new(),
            client_id: c.client_id,
            will: c.last_will.map(|w| Will {
                topic: TopicName::new(w.topic).expect("valid will topic"),
                payload: w.message,
                qos: our_qos(w.qos),
                retain: w.retain,
                properties: Properties::new(),
            }),
            username: c.login.as_ref().map(|l| l.username.clone()),
            password: c.login.map(|l| bytes::Bytes::from(l.password.into_bytes())),
            bridge: false,
        })),
        theirs::Packet::ConnAck(c) => Packet::ConnAck(ConnAck::new(
            ReasonCode::from_v3_connack(c.code as u8).expect("defined code"),
            c.session_present,
        )),
        theirs::Packet::Publish(p) => Packet::Publish(Publish {
            dup: p.dup,
            qos: our_qos(p.qos),
            retain: p.retain,
            topic: TopicName::new(p.topic).expect("valid topic"),
            packet_id: PacketId::new(p.pkid),
            properties: Properties::new(),
            payload: p.payload,
        }),
        theirs::Packet::PubAck(a) => Packet::PubAck(Ack::new(pid(a.pkid))),
        theirs::Packet::PubRec(a) => Packet::PubRec(Ack::new(pid(a.pkid))),
        theirs::Packet::PubRel(a) => Packet::PubRel(Ack::new(pid(a.pkid))),
        theirs::Packet::PubComp(a) => Packet::PubComp(Ack::new(pid(a.pkid))),
        theirs::Packet::Subscribe(s) => Packet::Subscribe(Subscribe {
            packet_id: pid(s.pkid),
            properties: Properties::new(),
            filters: s
                .filters
                .into_iter()
                .map(|f| {
                    (
                        TopicFilter::new(f.path).expect("valid filter"),
                        SubscriptionOptions::new(our_qos(f.qos)),
                    )
                })
                .collect(),
            rejected: Vec::new(),
        }),
        theirs::Packet::SubAck(s) => Packet::SubAck(SubAck {
            packet_id: pid(s.pkid),
            properties: Properties::new(),
            codes: s
                .return_codes
                .into_iter()
                .map(|code| match code {
                    theirs::SubscribeReasonCode::Success(qos) => {
                        ReasonCode::from_u8(qos as u8).expect("granted QoS")
                    }
                    theirs::SubscribeReasonCode::Failure => ReasonCode::UnspecifiedError,
                })
                .collect(),
        }),
        theirs::Packet::Unsubscribe(u) => Packet::Unsubscribe(Unsubscribe {
            packet_id: pid(u.pkid),
            properties: Properties::new(),
            filters: u
                .topics
                .into_iter()
                .map(|t| TopicFilter::new(t).expect("valid filter"))
                .collect(),
        }),
        theirs::Packet::UnsubAck(u) => Packet::UnsubAck(UnsubAck {
            packet_id: pid(u.pkid),
            properties: Properties::new(),
            codes: Vec::new(),
        }),
        theirs::Packet::PingReq => Packet::PingReq,
        theirs::Packet::PingResp => Packet::PingResp,
        theirs::Packet::Disconnect => {
            Packet::Disconnect(mqttkit::protocol::Disconnect::new(ReasonCode::Success))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn rumqttc_reads_and_writes_our_3_1_1_packets_identically(packet in crate::codec_properties::packet(V311)) {
        let Some(their_packet) = to_theirs(&packet) else {
            return Ok(());
        };
        let ours = packet.to_bytes(V311).expect("encodable");

        let mut stream = BytesMut::from(&ours[..]);
        let read = theirs::Packet::read(&mut stream, usize::MAX).expect("rumqttc reads our bytes");
        prop_assert!(stream.is_empty(), "rumqttc left bytes unread");
        prop_assert_eq!(to_ours(read), packet.clone());

        let mut written = BytesMut::new();
        their_packet.write(&mut written, usize::MAX).expect("rumqttc writes the packet");
        prop_assert_eq!(&written[..], &ours[..]);
        prop_assert_eq!(Packet::decode(&written, V311), Ok(packet));
    }
}
