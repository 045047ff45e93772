//! Packets a client must not send where it sends them, each refused in one place
//! (`connection/handle.rs`, `connection/mod.rs`), against rbroker and mosquitto:
//! an acknowledgement of the wrong QoS flow, a DISCONNECT reason only a server may
//! give, a Maximum Packet Size no CONNACK fits in, and a packet type only a server
//! sends.

use mqttkit::protocol::{
    Ack, Connect, Disconnect, Packet, Property, ProtocolVersion, QoS, ReasonCode, TopicName, Will,
};

use crate::support::RawClient;
use crate::support::raw::{connect_v5, frame};
use crate::support::target::{Target, on_both};

/// A subscriber on `topic` at `qos` that has just received one message, with the
/// packet id it came with.
fn delivered(target: &Target, version: ProtocolVersion, qos: QoS, id: &str) -> (RawClient, u16) {
    let connect = Connect {
        version,
        ..Connect::new(id, 60)
    };
    let mut subscriber = RawClient::connect_with(target.addr(), connect);
    let topic = format!("flows/{id}");
    subscriber.subscribe(1, &[(topic.as_str(), qos)]);
    let mut publisher = RawClient::connect(target.addr(), &format!("{id}-pub"));
    publisher.publish(&topic, b"x", qos, false, 1);
    let publish = subscriber.recv_publish();
    assert_eq!(publish.qos, qos);
    let packet_id = publish.packet_id.expect("a packet id").get();
    (subscriber, packet_id)
}

/// What the broker did after a bad packet: `Some(reason)` for a DISCONNECT before
/// the close, `None` for a plain close.
fn ending(client: &mut RawClient) -> Option<ReasonCode> {
    client.disconnect_reason()
}

#[test]
fn an_acknowledgement_of_the_wrong_qos_flow_is_a_protocol_error() {
    on_both("wrong_flow_acknowledgements", "", |target| {
        let name = target.name();
        let cases: [(QoS, Answer, &str); 3] = [
            (
                QoS::AtLeastOnce,
                |id| Packet::PubRec(Ack::new(pid(id))),
                "PUBREC for QoS 1",
            ),
            (
                QoS::AtLeastOnce,
                |id| Packet::PubComp(Ack::new(pid(id))),
                "PUBCOMP for QoS 1",
            ),
            (
                QoS::ExactlyOnce,
                |id| Packet::PubAck(Ack::new(pid(id))),
                "PUBACK for QoS 2",
            ),
        ];
        for (n, (qos, answer, what)) in cases.into_iter().enumerate() {
            for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
                let id = format!("flow{n}-{}", version.is_v5() as u8);
                let (mut subscriber, packet_id) = delivered(target, version, qos, &id);
                subscriber.send(&answer(packet_id));
                // rbroker: DISCONNECT 0x82 on 5.0, a close on 3.1.1; mosquitto 2.0.11
                // closes without a DISCONNECT.
                let expected = (version.is_v5() && !target.is_mosquitto())
                    .then_some(ReasonCode::ProtocolError);
                assert_eq!(
                    ending(&mut subscriber),
                    expected,
                    "{name}: {what} {version:?}"
                );
            }
        }
    });
}

/// How a subscriber answers a delivery with packet id `id`.
type Answer = fn(u16) -> Packet;

fn pid(id: u16) -> mqttkit::protocol::PacketId {
    crate::support::raw::pid(id)
}

#[test]
fn a_disconnect_reason_only_a_server_gives_is_a_protocol_error() {
    on_both("server_only_disconnect_reason", "", |target| {
        let name = target.name();
        let mut watcher = RawClient::connect(target.addr(), "reason-watcher");
        watcher.subscribe(1, &[("reasons/will", QoS::AtMostOnce)]);
        let mut connect = connect_v5("reason-leaver", []);
        connect.will = Some(Will {
            topic: TopicName::new("reasons/will").expect("topic"),
            payload: bytes::Bytes::from_static(b"gone"),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Default::default(),
        });
        let mut leaver = RawClient::connect_with(target.addr(), connect);
        // 0x8B "Server shutting down" is for the server to say.
        leaver.send(&Packet::Disconnect(Disconnect::new(
            ReasonCode::ServerShuttingDown,
        )));
        let reason = ending(&mut leaver);
        if target.is_mosquitto() {
            // mosquitto 2.0.11 takes it as a normal DISCONNECT: no will.
            assert_eq!(reason, None, "{name}");
            watcher.send(&Packet::PingReq);
            assert!(
                matches!(watcher.recv(), Packet::PingResp),
                "{name}: a will came"
            );
        } else {
            // Not a normal DISCONNECT, so the will goes.
            assert_eq!(reason, Some(ReasonCode::ProtocolError), "{name}");
            let will = watcher.recv_publish();
            assert_eq!(&will.payload[..], b"gone", "{name}");
        }
    });
}

#[test]
fn a_client_that_cannot_take_a_connack_is_closed_without_one() {
    on_both("maximum_packet_size_below_connack", "", |target| {
        let name = target.name();
        // Any CONNACK either broker sends carries properties: more than 5 bytes.
        let connect = connect_v5("tiny-packets", [Property::MaximumPacketSize(5)]);
        let (_, connack) = RawClient::handshake_or_closed(target.addr(), connect);
        assert_eq!(connack, None, "{name}");
    });
}

#[test]
fn a_packet_only_a_server_sends_is_refused_before_its_fields_are_read() {
    on_both("server_only_packets", "", |target| {
        let name = target.name();
        // v5 CONNACK, SUBACK, UNSUBACK and PINGRESP from a client, the first three
        // with a property that does not exist (0xFF): refused for their type (0x82),
        // not as malformed (0x81).
        let packets: [(&str, Vec<u8>); 4] = [
            ("CONNACK", frame(0x20, &[0, 0, 2, 0xFF, 0])),
            ("SUBACK", frame(0x90, &[0, 1, 2, 0xFF, 0, 0])),
            ("UNSUBACK", frame(0xB0, &[0, 1, 2, 0xFF, 0, 0])),
            ("PINGRESP", frame(0xD0, &[])),
        ];
        for (what, bytes) in packets {
            let (mut client, _) = RawClient::handshake_v5(target.addr(), "server-only", []);
            client.send_bytes(&bytes);
            if !target.is_mosquitto() {
                assert_eq!(
                    ending(&mut client),
                    Some(ReasonCode::ProtocolError),
                    "{name}: {what}"
                );
            } else if what == "PINGRESP" {
                // mosquitto 2.0.11 ignores a PINGRESP from a client.
                client.send(&Packet::PingReq);
                assert!(matches!(client.recv(), Packet::PingResp), "{name}");
            } else {
                // ... and closes on the others, without a DISCONNECT.
                assert_eq!(ending(&mut client), None, "{name}: {what}");
            }
        }
    });
}
