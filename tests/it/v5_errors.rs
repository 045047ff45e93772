//! MQTT 5 errors after CONNACK: the broker sends DISCONNECT with the reason code
//! the spec names, then half-closes so the client can read it (an orderly FIN, not
//! a reset, even when unread input is left behind). Each scenario runs against
//! rbroker and, where it is installed, against mosquitto, whose choices are listed.

use std::time::{Duration, Instant};

use mqttkit::protocol::{Connect, Packet, ReasonCode};

use crate::support::raw::{RawClient, connect_v5, frame};
use crate::support::target::{Target, on_both};

/// A v5 PUBLISH frame on `topic` with the raw property bytes `properties`.
fn raw_publish(first_byte: u8, topic: &[u8], properties: &[u8]) -> Vec<u8> {
    let mut body = (topic.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(topic);
    if first_byte & 0x06 != 0 {
        body.extend_from_slice(&[0, 1]);
    }
    body.push(properties.len() as u8);
    body.extend_from_slice(properties);
    body.extend_from_slice(b"payload");
    frame(first_byte, &body)
}

/// Protocol errors and malformed packets a connected v5 client can send, with the
/// reason rbroker gives and the one mosquitto 2.0.11 gives (`None`: it closes
/// without a DISCONNECT).
fn violations() -> Vec<(&'static str, Vec<u8>, ReasonCode, Option<ReasonCode>)> {
    use ReasonCode::{MalformedPacket, ProtocolError};
    let second_connect = Packet::Connect(Box::new(connect_v5("again", [])))
        .to_bytes(mqttkit::protocol::ProtocolVersion::V5)
        .expect("encodable");
    vec![
        (
            "topic name not UTF-8 [MQTT-1.5.4-1]",
            raw_publish(0x30, b"bad\xff", &[]),
            MalformedPacket,
            Some(MalformedPacket),
        ),
        (
            "wildcard in a topic name [MQTT-3.3.2-2]",
            raw_publish(0x30, b"a/+", &[]),
            ProtocolError,
            Some(ProtocolError),
        ),
        (
            "empty topic name without a Topic Alias [MQTT-3.3.2-1]",
            raw_publish(0x30, b"", &[]),
            ProtocolError,
            Some(ProtocolError),
        ),
        (
            "QoS 3 [MQTT-3.3.1-4]",
            raw_publish(0x36, b"t", &[]),
            MalformedPacket,
            Some(MalformedPacket),
        ),
        (
            "Session Expiry Interval in a PUBLISH (§2.2.2.2)",
            raw_publish(0x30, b"t", &[0x11, 0, 0, 0, 1]),
            MalformedPacket,
            Some(MalformedPacket),
        ),
        (
            "a property twice (§2.2.2.2)",
            raw_publish(0x30, b"t", &[0x02, 0, 0, 0, 1, 0x02, 0, 0, 0, 2]),
            ProtocolError,
            None,
        ),
        (
            "property length past the end of the packet",
            frame(0x30, &[0, 1, b't', 40, 0x02, 0, 0]),
            MalformedPacket,
            Some(MalformedPacket),
        ),
        (
            "SUBSCRIBE with reserved flags 0000 [MQTT-3.8.1-1]",
            frame(0x80, &[0, 1, 0, 0, 1, b't', 0]),
            MalformedPacket,
            Some(MalformedPacket),
        ),
        (
            "SUBSCRIBE without a filter [MQTT-3.8.3-2]",
            frame(0x82, &[0, 1, 0]),
            ProtocolError,
            Some(MalformedPacket),
        ),
        (
            "subscription options with reserved bits [MQTT-3.8.3-5]",
            frame(0x82, &[0, 1, 0, 0, 1, b't', 0xc0]),
            MalformedPacket,
            Some(MalformedPacket),
        ),
        (
            "a second CONNECT [MQTT-3.1.0-2]",
            second_connect,
            ProtocolError,
            None,
        ),
        (
            "reserved packet type 0",
            frame(0x00, &[]),
            ProtocolError,
            Some(ProtocolError),
        ),
    ]
}

#[test]
fn violations_after_connack_get_a_reason_coded_disconnect_then_an_orderly_close() {
    on_both(
        "violations_after_connack_get_a_reason_coded_disconnect_then_an_orderly_close",
        "",
        |target| {
            let mut observed = Vec::new();
            for (case, bytes, rbroker, mosquitto) in violations() {
                let mut client = RawClient::connect_v5(target.addr(), "offender", []);
                client.send_bytes(&bytes);
                if target.is_mosquitto() {
                    observed.push((case, client.disconnect_reason(), mosquitto));
                } else {
                    assert_eq!(client.expect_disconnect().reason, rbroker, "{case}");
                }
            }
            let differing: Vec<_> = observed
                .iter()
                .filter(|(_, got, expected)| got != expected)
                .collect();
            assert!(differing.is_empty(), "mosquitto: {differing:#?}");
        },
    );
}

#[test]
fn the_disconnect_survives_unread_input_after_the_bad_packet() {
    let target = Target::rbroker("");
    let mut client = RawClient::connect_v5(target.addr(), "noisy", []);
    let mut bytes = raw_publish(0x30, b"bad\xff", &[]);
    // Input the broker will never read: closing on it would reset the connection.
    bytes.extend(std::iter::repeat_n(0x30, 64 * 1024));
    client.send_bytes(&bytes);
    assert_eq!(
        client.expect_disconnect().reason,
        ReasonCode::MalformedPacket
    );
}

#[test]
fn a_silent_client_is_told_its_keep_alive_expired() {
    on_both(
        "a_silent_client_is_told_its_keep_alive_expired",
        "",
        |target| {
            let mut client = RawClient::connect_with(
                target.addr(),
                Connect {
                    keep_alive: 1,
                    ..connect_v5("silent", [])
                },
            );
            let started = Instant::now();
            if target.is_mosquitto() {
                // mosquitto 2.0.11 closes without a DISCONNECT, and only when its
                // periodic check comes round: about 5 s for a keep-alive of 1.
                let replies = client.packets_until_closed_within(Duration::from_secs(15));
                assert!(replies.is_empty(), "mosquitto: {replies:?}");
            } else {
                assert_eq!(
                    client.expect_disconnect().reason,
                    ReasonCode::KeepAliveTimeout
                );
                assert!(
                    started.elapsed() >= Duration::from_millis(1500),
                    "1.5 × keep alive"
                );
            }
        },
    );
}

#[test]
fn a_session_taken_over_is_told_so() {
    on_both("a_session_taken_over_is_told_so", "", |target| {
        let mut first = RawClient::connect_v5(target.addr(), "twin", []);
        let _second = RawClient::connect_v5(target.addr(), "twin", []);
        if target.is_mosquitto() {
            // mosquitto 2.0.11 closes the old connection without a DISCONNECT.
            assert_eq!(first.disconnect_reason(), None);
        } else {
            assert_eq!(
                first.expect_disconnect().reason,
                ReasonCode::SessionTakenOver
            );
        }
    });
}

#[test]
fn clients_are_told_when_the_broker_shuts_down() {
    let mut broker = crate::support::TestBroker::start();
    let mut v5 = RawClient::connect_v5(broker.addr(), "v5", []);
    let mut v3 = RawClient::connect(broker.addr(), "v3");
    let stopping = std::thread::spawn(move || broker.stop());
    assert_eq!(
        v5.expect_disconnect().reason,
        ReasonCode::ServerShuttingDown
    );
    // 3.1.1 has no DISCONNECT from the server [MQTT-3.14.0-1 in 5.0 terms].
    v3.expect_closed();
    stopping.join().expect("broker stopped");
}

#[test]
fn connect_errors_get_a_connack_reason_code() {
    on_both("connect_errors_get_a_connack_reason_code", "", |target| {
        let name = target.name();
        let cases = [
            (
                "will QoS 3 [MQTT-3.1.2-12]",
                frame(
                    0x10,
                    &[
                        0, 4, b'M', b'Q', b'T', b'T', 5, 0x1e, 0, 60, 0, 0, 1, b'c', 0, 0, 1, b'w',
                        0, 0,
                    ],
                ),
                ReasonCode::MalformedPacket,
            ),
            (
                "reserved CONNECT flag [MQTT-3.1.2-3]",
                frame(
                    0x10,
                    &[0, 4, b'M', b'Q', b'T', b'T', 5, 0x03, 0, 60, 0, 0, 1, b'c'],
                ),
                ReasonCode::MalformedPacket,
            ),
            (
                "Receive Maximum 0 (§3.1.2.11.3)",
                frame(
                    0x10,
                    &[
                        0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 3, 0x21, 0, 0, 0, 1, b'c',
                    ],
                ),
                ReasonCode::ProtocolError,
            ),
            (
                "Maximum Packet Size 0 (§3.1.2.11.4)",
                frame(
                    0x10,
                    &[
                        0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 5, 0x27, 0, 0, 0, 0, 0, 1,
                        b'c',
                    ],
                ),
                ReasonCode::ProtocolError,
            ),
        ];
        for (case, bytes, reason) in cases {
            let mut client = RawClient::open(target.addr());
            client.version = mqttkit::protocol::ProtocolVersion::V5;
            client.send_bytes(&bytes);
            let replies = client.packets_until_closed();
            let code = match replies.as_slice() {
                [Packet::ConnAck(connack)] => Some(connack.code),
                [] => None,
                other => panic!("{name} {case}: {other:?}"),
            };
            if target.is_mosquitto() {
                // mosquitto 2.0 closes without a CONNACK.
                assert_eq!(code, None, "mosquitto: {case}");
            } else {
                assert_eq!(code, Some(reason), "{case}");
            }
        }
    });
}
