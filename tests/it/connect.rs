//! CONNECT and CONNACK: return codes, client identifiers, takeover, the connect
//! timeout and keep-alive.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use bytes::Bytes;
use mqttkit::broker::{Config, config::ListenerConfig};
use mqttkit::protocol::{Connect, Packet, Properties, Property, ProtocolVersion, ReasonCode};

use crate::support::{RawClient, TestBroker};

fn connect_as(version: ProtocolVersion, client_id: &str, clean: bool) -> Connect {
    Connect {
        version,
        clean_start: clean,
        ..Connect::new(client_id, 60)
    }
}

#[test]
fn every_protocol_version_connects() {
    let broker = TestBroker::start();
    for version in [
        ProtocolVersion::V3_1,
        ProtocolVersion::V3_1_1,
        ProtocolVersion::V5,
    ] {
        let (mut client, connack) =
            RawClient::handshake(broker.addr(), connect_as(version, "v", true));
        assert_eq!(connack.code, ReasonCode::Success, "{version:?}");
        assert!(!connack.session_present);
        if version.is_v5() {
            assert_eq!(
                connack.properties.receive_maximum(),
                Some(20),
                "max_inflight_messages advertised"
            );
        }
        client.ping();
        client.disconnect();
    }
    let log = broker.log_lines();
    for p in ["(p1, c1, k60)", "(p2, c1, k60)", "(p5, c1, k60)"] {
        assert!(
            log.iter()
                .any(|l| l.starts_with("New client connected from 127.0.0.1:")
                    && l.ends_with(&format!("as v {p}."))),
            "{p}: {log:#?}"
        );
    }
}

#[test]
fn an_empty_client_id_gets_an_assigned_one() {
    let broker = TestBroker::start();
    let mut client = RawClient::connect(broker.addr(), "");
    client.ping();
    broker.wait_for_log(" as auto-");
    let (_, connack) =
        RawClient::handshake(broker.addr(), connect_as(ProtocolVersion::V5, "", true));
    let assigned = connack
        .properties
        .assigned_client_identifier()
        .expect("assigned id in CONNACK");
    assert!(
        assigned.starts_with("auto-") && assigned.len() == 41,
        "{assigned}"
    );
}

#[test]
fn an_empty_client_id_without_clean_session_is_refused_with_code_2() {
    let broker = TestBroker::start();
    for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V3_1] {
        // 3.1 requires an id even with a clean session.
        let clean = version == ProtocolVersion::V3_1;
        let (mut client, connack) =
            RawClient::handshake(broker.addr(), connect_as(version, "", clean));
        assert_eq!(
            connack.code,
            ReasonCode::ClientIdentifierNotValid,
            "{version:?}"
        );
        assert_eq!(connack.code.to_v3_connack(), 2);
        client.expect_closed();
    }
}

#[test]
fn an_unknown_protocol_level_gets_connack_1() {
    let broker = TestBroker::start();
    let mut client = RawClient::open(broker.addr());
    client.send_bytes(&[
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 6, 2, 0, 60, 0, 1, b'x',
    ]);
    let packets = client.packets_until_closed();
    assert_eq!(packets.len(), 1, "{packets:?}");
    assert!(matches!(&packets[0], Packet::ConnAck(c) if c.code.to_v3_connack() == 1));
}

#[test]
fn an_unknown_protocol_name_is_closed_without_a_reply() {
    let broker = TestBroker::start();
    let mut client = RawClient::open(broker.addr());
    client.send_bytes(&[
        0x10, 13, 0, 4, b'M', b'Q', b'X', b'X', 4, 2, 0, 60, 0, 1, b'x',
    ]);
    client.expect_closed();
}

#[test]
fn the_first_packet_must_be_connect() {
    let broker = TestBroker::start();
    let mut client = RawClient::open(broker.addr());
    client.send(&Packet::PingReq);
    client.expect_closed();
    broker.wait_for_log("Client <unknown> disconnected due to protocol error.");
    RawClient::connect(broker.addr(), "after").ping();
}

#[test]
fn a_second_connect_closes_the_connection() {
    let broker = TestBroker::start();
    let mut client = RawClient::connect(broker.addr(), "twice");
    client.send(&Packet::Connect(Box::new(Connect::new("twice", 60))));
    client.expect_closed();
}

#[test]
fn anonymous_clients_are_refused_once_a_listener_is_configured() {
    let broker = TestBroker::with_config(Config {
        listeners: vec![ListenerConfig::new(0, Some("127.0.0.1".into()))],
        sys_interval: 0,
        ..Config::default()
    });
    let (mut client, connack) = RawClient::handshake(broker.addr(), Connect::new("anon", 60));
    assert_eq!(connack.code.to_v3_connack(), 5, "not authorised");
    client.expect_closed();
    // As mosquitto: the client id is not logged for a refused login.
    broker.wait_for_log("Client <unknown> disconnected, not authorised.");
    let (_, connack) = RawClient::handshake(
        broker.addr(),
        connect_as(ProtocolVersion::V5, "anon5", true),
    );
    assert_eq!(connack.code, ReasonCode::NotAuthorized);
    let with_user = Connect {
        username: Some("alice".into()),
        password: Some(Bytes::from_static(b"secret")),
        ..Connect::new("named", 60)
    };
    RawClient::connect_with(broker.addr(), with_user).ping();
}

#[test]
fn a_second_connection_with_the_same_id_takes_over() {
    let broker = TestBroker::start();
    let mut first = RawClient::connect(broker.addr(), "dup");
    let mut second = RawClient::connect(broker.addr(), "dup");
    first.expect_closed();
    second.ping();
    broker.wait_for_log("Client dup already connected, closing old connection.");
}

#[test]
fn of_many_simultaneous_connects_with_one_id_exactly_one_survives() {
    const CLIENTS: usize = 24;
    let broker = TestBroker::start();
    let barrier = Arc::new(Barrier::new(CLIENTS));
    let addr = broker.addr();
    let handles: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut client = RawClient::open(addr);
                let bytes = Packet::Connect(Box::new(Connect::new("storm", 60)))
                    .to_bytes(ProtocolVersion::V3_1_1)
                    .expect("encodable");
                barrier.wait();
                client.send_bytes(&bytes);
                client
            })
        })
        .collect();
    let mut clients: Vec<RawClient> = handles
        .into_iter()
        .map(|h| h.join().expect("client thread"))
        .collect();
    for client in &mut clients {
        assert!(matches!(client.recv(), Packet::ConnAck(c) if c.code == ReasonCode::Success));
    }
    // Every takeover happened before its CONNACK was sent; now each connection either
    // answers a PINGREQ (the survivor) or has been closed.
    let mut survivors = 0;
    for client in &mut clients {
        client.send(&Packet::PingReq);
        match client.recv_or_closed() {
            Some(Packet::PingResp) => survivors += 1,
            None => {}
            Some(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(survivors, 1);
    let takeovers = broker
        .log_lines()
        .iter()
        .filter(|l| l.contains("storm already connected"))
        .count();
    assert_eq!(takeovers, CLIENTS - 1);
}

#[test]
fn a_socket_that_never_completes_connect_is_closed_even_while_sending_bytes() {
    let broker = TestBroker::with_config(Config {
        connect_timeout: Duration::from_secs(1),
        sys_interval: 0,
        ..Config::default()
    });
    let mut silent = RawClient::open(broker.addr());
    let mut trickle = RawClient::open(broker.addr());
    // A CONNECT announcing 100 bytes, sent one byte at a time: partial bytes must not
    // extend the deadline.
    trickle.send_bytes(&[0x10, 100]);
    let mut closed = false;
    for _ in 0..40 {
        trickle.send_bytes(&[0]);
        if !trickle.is_open_and_quiet(Duration::from_millis(200)) {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "a trickling CONNECT kept the socket open for 8 s with a 1 s timeout"
    );
    silent.expect_closed();
}

#[test]
fn keep_alive_expires_after_one_and_a_half_times_the_interval() {
    let broker = TestBroker::start();
    let mut idle = RawClient::connect_with(broker.addr(), Connect::new("idle", 1));
    let mut busy = RawClient::connect_with(broker.addr(), Connect::new("busy", 1));
    // Pinging every 0.5 s keeps a 1 s keep-alive connection open past 1.5 s...
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(500));
        busy.ping();
    }
    // ...while the silent one was closed.
    idle.expect_closed();
    broker.wait_for_log("Client idle has exceeded timeout, disconnecting.");
}

#[test]
fn max_keepalive_refuses_3_1_1_clients_and_overrides_5_0_ones() {
    let broker = TestBroker::with_config(Config {
        max_keepalive: 30,
        sys_interval: 0,
        ..Config::default()
    });
    let (mut client, connack) = RawClient::handshake(broker.addr(), Connect::new("long", 60));
    assert_eq!(connack.code.to_v3_connack(), 2);
    client.expect_closed();
    RawClient::connect_with(broker.addr(), Connect::new("short", 30)).ping();
    let (mut client, connack) = RawClient::handshake(
        broker.addr(),
        connect_as(ProtocolVersion::V5, "long5", true),
    );
    assert_eq!(connack.code, ReasonCode::Success);
    assert_eq!(connack.properties.server_keep_alive(), Some(30));
    client.ping();
}

#[test]
fn a_v5_session_expiry_makes_the_session_persistent() {
    let broker = TestBroker::start();
    let persistent = Connect {
        clean_start: false,
        properties: [Property::SessionExpiryInterval(60)]
            .into_iter()
            .collect::<Properties>(),
        ..connect_as(ProtocolVersion::V5, "v5p", false)
    };
    let (client, connack) = RawClient::handshake(broker.addr(), persistent.clone());
    assert!(!connack.session_present);
    client.disconnect();
    broker.wait_for_log("Client v5p disconnected.");
    let (_, connack) = RawClient::handshake(broker.addr(), persistent);
    assert!(connack.session_present);
}

#[test]
fn connections_beyond_max_connections_are_closed_at_once() {
    let broker = TestBroker::with_config(Config {
        listener_defaults: mqttkit::broker::config::ListenerSettings {
            max_connections: Some(2),
            ..Default::default()
        },
        sys_interval: 0,
        ..Config::default()
    });
    let mut first = RawClient::connect(broker.addr(), "one");
    let _second = RawClient::connect(broker.addr(), "two");
    let mut third = RawClient::open(broker.addr());
    third.expect_closed();
    broker.wait_for_log("Client connection from 127.0.0.1 denied: max_connections exceeded.");
    first.send(&Packet::Disconnect(mqttkit::protocol::Disconnect::new(
        ReasonCode::Success,
    )));
    first.expect_closed();
    // The slot is free once the first connection's task has ended, which may be a
    // moment after its socket closed: retry until a connection is accepted.
    let deadline = std::time::Instant::now() + crate::support::WAIT;
    loop {
        let (mut client, _) =
            RawClient::handshake_or_closed(broker.addr(), Connect::new("three", 60));
        if let Some(mut client) = client.take() {
            client.ping();
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no slot became free");
    }
}
