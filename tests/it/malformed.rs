//! Bad input: every protocol violation closes that connection only, without a reply
//! on 3.1.1, never takes the broker or other clients down, and nothing a peer sends
//! before CONNECT can claim much memory.
//!
//! Each case runs on its own socket while a canary client stays connected; after
//! every case the canary still answers and a new client can connect.

use std::time::Duration;

use mqttkit::broker::Config;
use mqttkit::protocol::{Packet, ProtocolVersion, QoS};

use crate::support::raw::frame as packet;
use crate::support::{RawClient, TestBroker};

fn assert_broker_serves(broker: &TestBroker, canary: &mut RawClient, case: &str) {
    canary.send(&Packet::PingReq);
    assert!(
        matches!(canary.recv(), Packet::PingResp),
        "canary lost after {case}"
    );
    RawClient::connect(broker.addr(), "next").ping();
}

/// Packets that must close a connected 3.1.1 client without any reply.
fn violations_after_connect() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("[MQTT-2.2.2-2] PINGREQ with reserved flags", vec![0xc1, 0]),
        ("packet type 0", vec![0x00, 0]),
        ("AUTH before MQTT 5", vec![0xf0, 0]),
        (
            "[MQTT-3.3.1-4] PUBLISH with QoS 3",
            packet(0x36, &[0, 1, b'x', 0, 1]),
        ),
        (
            "[MQTT-2.3.1-1] PUBLISH with packet id 0",
            packet(0x32, &[0, 1, b'x', 0, 0]),
        ),
        (
            "[MQTT-3.3.2-2] wildcard in a topic name",
            packet(0x30, &[0, 3, b'a', b'/', b'+']),
        ),
        (
            "[MQTT-4.7.3-1] zero-length topic name",
            packet(0x30, &[0, 0, b'x']),
        ),
        (
            "[MQTT-1.5.3-1] invalid UTF-8 in a topic",
            packet(0x30, &[0, 2, 0xc3, 0x28]),
        ),
        (
            "[MQTT-1.5.3-2] U+0000 in a topic",
            packet(0x30, &[0, 3, b'a', 0, b'b']),
        ),
        (
            "[MQTT-3.8.3-3] SUBSCRIBE without a filter",
            packet(0x82, &[0, 1]),
        ),
        (
            "[MQTT-3.8.1-1] SUBSCRIBE with flags 0",
            packet(0x80, &[0, 1, 0, 1, b'a', 0]),
        ),
        (
            "[MQTT-4.7.1-1] filter a/#/b",
            packet(0x82, &[0, 1, 0, 5, b'a', b'/', b'#', b'/', b'b', 0]),
        ),
        (
            "[MQTT-4.7.1-2] filter a+",
            packet(0x82, &[0, 1, 0, 2, b'a', b'+', 0]),
        ),
        (
            "[MQTT-3-8.3-4] subscription QoS 3",
            packet(0x82, &[0, 1, 0, 1, b'a', 3]),
        ),
        (
            "[MQTT-3.10.3-2] UNSUBSCRIBE without a filter",
            packet(0xa2, &[0, 1]),
        ),
        (
            "[MQTT-2.3.1-1] PUBACK with packet id 0",
            packet(0x40, &[0, 0]),
        ),
        ("PUBACK shorter than a packet id", packet(0x40, &[0])),
        ("DISCONNECT with a body", packet(0xe0, &[0])),
        ("CONNACK sent by a client", packet(0x20, &[0, 0])),
        ("SUBACK sent by a client", packet(0x90, &[0, 1, 0])),
        (
            "[MQTT-3.1.0-2] a second CONNECT",
            packet(
                0x10,
                &[0, 4, b'M', b'Q', b'T', b'T', 4, 2, 0, 60, 0, 1, b'c'],
            ),
        ),
        (
            "remaining length of five bytes",
            vec![0x30, 0xff, 0xff, 0xff, 0xff, 0x01],
        ),
    ]
}

#[test]
fn each_protocol_violation_closes_only_its_connection_without_a_reply() {
    let broker = TestBroker::start();
    let mut canary = RawClient::connect(broker.addr(), "canary");
    for (case, bytes) in violations_after_connect() {
        let mut client = RawClient::connect(broker.addr(), "bad");
        client.send_bytes(&bytes);
        let replies = client.packets_until_closed();
        assert!(replies.is_empty(), "{case}: the broker replied {replies:?}");
        assert_broker_serves(&broker, &mut canary, case);
    }
}

/// First packets that must close the socket without a reply (mosquitto's
/// 01-bad-initial-packets, CVE-2017-7651 and CVE-2023-0809).
#[test]
fn bad_first_packets_are_refused_from_their_header() {
    let broker = TestBroker::start();
    let mut canary = RawClient::connect(broker.addr(), "canary");
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        (
            "CONNECT announcing 256 MB".into(),
            vec![0x10, 0xff, 0xff, 0xff, 0x7f],
        ),
        (
            "PUBLISH announcing 100 MB before CONNECT".into(),
            vec![0x30, 0x80, 0x80, 0x80, 0x30, b't'],
        ),
        ("garbage".into(), b"GET / HTTP/1.1\r\n\r\n".to_vec()),
    ];
    for packet_type in 2..=15u8 {
        cases.push((
            format!("packet type {packet_type} first"),
            vec![packet_type << 4, 0],
        ));
    }
    for (case, bytes) in cases {
        // Only the header is sent: the broker must decide without the body.
        let mut client = RawClient::open(broker.addr());
        client.send_bytes(&bytes);
        let replies = client.packets_until_closed();
        assert!(replies.is_empty(), "{case}: the broker replied {replies:?}");
        assert_broker_serves(&broker, &mut canary, &case);
    }
}

#[test]
fn malformed_connect_variants_are_closed() {
    let broker = TestBroker::start();
    let mut canary = RawClient::connect(broker.addr(), "canary");
    let connect = |level: u8, flags: u8, rest: &[u8]| {
        let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', level, flags, 0, 60];
        body.extend_from_slice(rest);
        packet(0x10, &body)
    };
    let cases = [
        (
            "[MQTT-3.1.2-3] reserved flag",
            connect(4, 0x03, &[0, 1, b'c']),
        ),
        (
            "[MQTT-3.1.2-14] will QoS 3",
            connect(4, 0x1e, &[0, 1, b'c', 0, 1, b'w', 0, 0]),
        ),
        (
            "[MQTT-3.1.2-22] password without user name",
            connect(4, 0x42, &[0, 1, b'c', 0, 1, b'p']),
        ),
        ("truncated client id", connect(4, 0x02, &[0, 9, b'c'])),
    ];
    for (case, bytes) in cases {
        let mut client = RawClient::open(broker.addr());
        client.send_bytes(&bytes);
        assert!(client.packets_until_closed().is_empty(), "{case}");
        assert_broker_serves(&broker, &mut canary, case);
    }
    // CVE-2023-3592: a Topic Alias in the will properties. An MQTT 5 client
    // is told why with CONNACK 0x81 [MQTT-3.2.2-8] before the close.
    let mut client = RawClient::open(broker.addr());
    client.version = ProtocolVersion::V5;
    client.send_bytes(&connect(
        5,
        0x06,
        &[0, 0, 1, b'c', 3, 0x23, 0, 1, 0, 1, b'w', 0, 0],
    ));
    let replies = client.packets_until_closed();
    assert!(
        matches!(
            replies.as_slice(),
            [Packet::ConnAck(ack)] if ack.code == mqttkit::protocol::ReasonCode::MalformedPacket
        ),
        "CVE-2023-3592: {replies:?}"
    );
    assert_broker_serves(&broker, &mut canary, "CVE-2023-3592");
}

#[test]
fn a_connect_with_ten_thousand_user_properties_is_handled_in_one_pass() {
    // CVE-2021-41039: quadratic work on many user properties.
    let broker = TestBroker::start();
    let mut properties = Vec::new();
    for _ in 0..10_000 {
        properties.extend_from_slice(&[0x26, 0, 1, b'k', 0, 1, b'v']);
    }
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 5, 2, 0, 60];
    mqttkit::protocol::wire::put_varint(&mut body, properties.len() as u32);
    body.extend(properties);
    body.extend_from_slice(&[0, 1, b'c']);
    let mut client = RawClient::open(broker.addr());
    client.version = ProtocolVersion::V5;
    client.send_bytes(&packet(0x10, &body));
    assert!(
        matches!(client.recv(), Packet::ConnAck(c) if c.code == mqttkit::protocol::ReasonCode::Success)
    );
    client.ping();
}

#[test]
fn a_qos2_packet_id_reused_without_pubrel_delivers_once_and_holds_no_payloads() {
    // CVE-2023-28366: many QoS 2 PUBLISHes with one id and no PUBREL.
    let broker = TestBroker::start();
    let mut subscriber = RawClient::connect(broker.addr(), "s");
    subscriber.subscribe(1, &[("leak", QoS::ExactlyOnce)]);
    let mut publisher = RawClient::connect(broker.addr(), "leaky");
    let publish = packet(0x34, &[0, 4, b'l', b'e', b'a', b'k', 0, 9, b'p']);
    for _ in 0..10_000 {
        publisher.send_bytes(&publish);
    }
    for _ in 0..10_000 {
        assert!(matches!(publisher.recv(), Packet::PubRec(_)));
    }
    let received = subscriber.recv_publish();
    subscriber.acknowledge(&received);
    subscriber.send(&Packet::PingReq);
    assert!(
        matches!(subscriber.recv(), Packet::PingResp),
        "delivered once"
    );
}

#[test]
fn many_idle_sockets_before_connect_cost_no_buffers_and_time_out() {
    let broker = TestBroker::with_config(Config {
        connect_timeout: Duration::from_secs(2),
        sys_interval: 0,
        ..Config::default()
    });
    let mut idle: Vec<RawClient> = (0..1000).map(|_| RawClient::open(broker.addr())).collect();
    // The broker keeps serving while they sit there...
    let mut client = RawClient::connect(broker.addr(), "busy");
    client.subscribe(1, &[("t", QoS::AtLeastOnce)]);
    client.publish("t", b"still here", QoS::AtLeastOnce, false, 1);
    assert_eq!(&client.recv_publish().payload[..], b"still here");
    // ...and closes each of them once the connect timeout passes.
    for socket in idle.iter_mut() {
        socket.expect_closed();
    }
}
