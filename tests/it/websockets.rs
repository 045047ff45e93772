//! WebSocket listeners: MQTT split and joined across binary frames, fragmented
//! messages, ping and close; every kind of bad input closing only its own
//! connection while a canary client is still served; `http_dir`; and paho-mqtt
//! (what the course uses) over ws and wss.

use std::path::Path;
use std::time::Instant;

use mqttkit::protocol::{
    Connect, Packet, Properties, QoS, Subscribe, SubscriptionOptions, TopicFilter,
};

use crate::support::certs::Certs;
use crate::support::credentials::{open_to_all, shared_dir};
use crate::support::files::{addr, write};
use crate::support::logged::Running;
use crate::support::mosquitto::{Tool, free_port, run};
use crate::support::raw::pid;
use crate::support::ws::{
    OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT, WsClient, frame, http,
    read_to_close, upgrade_request,
};
use crate::support::{RawClient, WAIT};

const RSUB: &str = env!("CARGO_BIN_EXE_rsub");
const RPUB: &str = env!("CARGO_BIN_EXE_rpub");

/// rbroker with a plain listener (for the canary) and a WebSocket listener with
/// `extra` lines; (broker, plain port, ws port).
fn broker(dir: &Path, extra: &str) -> (Running, u16, u16) {
    let (plain, ws) = (free_port(), free_port());
    let conf = write(
        dir,
        "ws.conf",
        &format!(
            "allow_anonymous true\nlistener {plain} 127.0.0.1\nlistener {ws} 127.0.0.1\nprotocol websockets\n{extra}"
        ),
    );
    (Running::start(&["-c", &conf]), plain, ws)
}

fn bytes(packet: &Packet) -> Vec<u8> {
    packet
        .to_bytes(mqttkit::protocol::ProtocolVersion::V3_1_1)
        .expect("encodes")
}

fn connect(id: &str) -> Vec<u8> {
    bytes(&Packet::Connect(Box::new(Connect::new(id, 60))))
}

fn subscribe(filter: &str) -> Vec<u8> {
    bytes(&Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        properties: Properties::new(),
        filters: vec![(
            TopicFilter::new(filter).expect("filter"),
            SubscriptionOptions::new(QoS::AtMostOnce),
        )],
        rejected: Vec::new(),
    }))
}

/// The canary: a client on the plain listener that must still get PINGRESP.
fn canary_answers(canary: &mut RawClient) {
    canary.send(&Packet::PingReq);
    assert_eq!(canary.recv(), Packet::PingResp, "the canary was not served");
}

#[test]
fn mqtt_packets_split_and_joined_across_frames_and_fragments() {
    let dir = shared_dir();
    let (_broker, plain, ws) = broker(dir.path(), "");
    // CONNECT in three frames, then SUBSCRIBE and PINGREQ together in one.
    let mut client = WsClient::open(addr(ws));
    let hello = connect("framed");
    for part in [&hello[..3], &hello[3..7], &hello[7..]] {
        client.send_binary(part);
    }
    assert!(matches!(client.recv(), Some(Packet::ConnAck(_))));
    let mut joined = subscribe("ws/t");
    joined.extend(bytes(&Packet::PingReq));
    client.send_binary(&joined);
    assert!(matches!(client.recv(), Some(Packet::SubAck(_))));
    assert_eq!(client.recv(), Some(Packet::PingResp));
    // A fragmented message (binary, then continuation) carries a PINGREQ.
    let ping = bytes(&Packet::PingReq);
    client.send_raw(&frame(false, OP_BINARY, &ping[..1], true));
    client.send_raw(&frame(true, OP_CONTINUATION, &ping[1..], true));
    assert_eq!(client.recv(), Some(Packet::PingResp));
    // A WebSocket ping is answered with a pong carrying its payload.
    client.send_raw(&frame(true, OP_PING, b"are you there", true));
    let deadline = Instant::now() + WAIT;
    while !client.control.iter().any(|(op, _)| *op == OP_PONG) {
        assert!(client.read_frame(deadline), "closed instead of a pong");
    }
    assert!(
        client
            .control
            .contains(&(OP_PONG, b"are you there".to_vec()))
    );
    // A message from a plain TCP client arrives in binary frames.
    let plain = plain.to_string();
    let (status, _) = run(RPUB, &["-p", &plain, "-t", "ws/t", "-m", "to the browser"]);
    assert!(status.success());
    match client.recv() {
        Some(Packet::Publish(publish)) => assert_eq!(&publish.payload[..], b"to the browser"),
        other => panic!("expected the PUBLISH, got {other:?}"),
    }
    // A close frame is answered with a close frame, then the connection ends.
    client.send_raw(&frame(true, OP_CLOSE, &1000u16.to_be_bytes(), true));
    assert!(client.is_closed_by_broker());
    assert!(client.control.iter().any(|(op, _)| *op == OP_CLOSE));
}

#[test]
fn bad_websocket_input_closes_only_that_connection() {
    let dir = shared_dir();
    let (_broker, plain, ws) = broker(dir.path(), "");
    let mut canary = RawClient::connect(addr(plain), "canary");
    // HTTP without an Upgrade header.
    let (mut stream, head) = http(addr(ws), "GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    read_to_close(&mut stream);
    canary_answers(&mut canary);
    // An upgrade without the mqtt subprotocol [MQTT-6.0.0-3], or with another one.
    for offered in [None, Some("chat")] {
        let (mut stream, head) = http(addr(ws), &upgrade_request(offered));
        assert!(head.starts_with("HTTP/1.1 400"), "{offered:?}: {head}");
        read_to_close(&mut stream);
    }
    canary_answers(&mut canary);
    // mqttv3.1 is accepted too, as mosquitto does.
    let (_, head) = http(addr(ws), &upgrade_request(Some("mqttv3.1")));
    assert!(
        head.contains("Sec-WebSocket-Protocol: mqttv3.1\r\n"),
        "{head}"
    );
    // Each of these ends its connection, after a CONNECT was accepted.
    let cases: [(&str, Vec<u8>); 4] = [
        // [MQTT-6.0.0-1]: MQTT only in binary frames.
        ("a text frame", frame(true, OP_TEXT, b"hello", true)),
        // A client's frames must be masked (RFC 6455 section 5.1).
        (
            "an unmasked frame",
            frame(true, OP_BINARY, &bytes(&Packet::PingReq), false),
        ),
        // A frame claiming a terabyte.
        ("an oversized frame", {
            let mut f = vec![0x82, 0xFF];
            f.extend_from_slice(&(1u64 << 40).to_be_bytes());
            f.extend_from_slice(&[1, 2, 3, 4]);
            f
        }),
        // A continuation with no message to continue.
        (
            "a stray continuation",
            frame(true, OP_CONTINUATION, b"x", true),
        ),
    ];
    for (what, bad) in cases {
        let mut client = WsClient::open(addr(ws));
        client.send_binary(&connect(&format!("bad-{}", what.len())));
        assert!(matches!(client.recv(), Some(Packet::ConnAck(_))), "{what}");
        client.send_raw(&bad);
        assert!(
            client.is_closed_by_broker(),
            "{what} left the connection open"
        );
        canary_answers(&mut canary);
    }
    // Before CONNECT a frame may not claim more than a first packet may be.
    let mut client = WsClient::open(addr(ws));
    let mut claim = vec![0x82, 0xFF];
    claim.extend_from_slice(&(1u64 << 20).to_be_bytes());
    claim.extend_from_slice(&[1, 2, 3, 4]);
    client.send_raw(&claim);
    assert!(client.is_closed_by_broker(), "a 1 MiB frame before CONNECT");
    canary_answers(&mut canary);
    // A first packet other than CONNECT, in a frame.
    let mut client = WsClient::open(addr(ws));
    client.send_binary(&bytes(&Packet::PingReq));
    assert!(client.is_closed_by_broker());
    canary_answers(&mut canary);
}

#[test]
fn http_dir_serves_files_and_nothing_outside_it() {
    let dir = shared_dir();
    let www = dir.path().join("www");
    std::fs::create_dir(&www).expect("mkdir");
    open_to_all(&www, 0o755);
    write(&www, "index.html", "<h1>mqttkit</h1>");
    write(&www, "app.js", "console.log(1)");
    write(dir.path(), "secret.txt", "not for the web");
    let (_broker, _, ws) = broker(dir.path(), &format!("http_dir {}\n", www.display()));
    let get = |path: &str| {
        let (mut stream, head) = http(
            addr(ws),
            &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        );
        let body = read_to_close(&mut stream);
        (head, String::from_utf8_lossy(&body).into_owned())
    };
    let (head, body) = get("/");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Content-Type: text/html"), "{head}");
    assert_eq!(body, "<h1>mqttkit</h1>");
    let (head, body) = get("/app.js");
    assert!(head.contains("Content-Type: text/javascript"), "{head}");
    assert_eq!(body, "console.log(1)");
    for escape in ["/../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt"] {
        let (head, body) = get(escape);
        assert!(head.starts_with("HTTP/1.1 403"), "{escape}: {head}");
        assert!(!body.contains("not for the web"), "{escape}");
    }
    let (head, _) = get("/missing.html");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
    // The same listener still upgrades MQTT clients.
    let mut client = WsClient::open(addr(ws));
    client.send_binary(&connect("after-http"));
    assert!(matches!(client.recv(), Some(Packet::ConnAck(_))));
}

#[test]
fn paho_mqtt_over_websockets_with_and_without_tls() {
    let Some(python) =
        crate::support::paho::python("paho_mqtt_over_websockets_with_and_without_tls")
    else {
        return;
    };
    let certs = Certs::generate();
    let dir = shared_dir();
    let (plain, ws, wss) = (free_port(), free_port(), free_port());
    let conf = write(
        dir.path(),
        "paho.conf",
        &format!(
            "allow_anonymous true\nlistener {plain} 127.0.0.1\n\
             listener {ws} 127.0.0.1\nprotocol websockets\n\
             listener {wss} 127.0.0.1\nprotocol websockets\ncertfile {}\nkeyfile {}\n",
            certs.server_cert.display(),
            certs.server_key.display()
        ),
    );
    let _broker = Running::start(&["-c", &conf]);
    let script = format!("{}/tests/it/paho_websockets.py", env!("CARGO_MANIFEST_DIR"));
    let python = python.display().to_string();
    let ca = certs.ca.display().to_string();
    let plain = plain.to_string();
    for (port, cafile) in [(ws, None), (wss, Some(ca.as_str()))] {
        let port = port.to_string();
        let topic = format!("paho/{port}");
        // rsub over plain TCP waits for paho's reply.
        let mut reply = Tool::spawn(
            RSUB,
            &[
                "-d",
                "-C",
                "1",
                "-p",
                &plain,
                "-t",
                &format!("{topic}/reply"),
            ],
        );
        reply.wait_for("received SUBACK");
        let mut args = vec![script.as_str(), port.as_str(), topic.as_str()];
        args.extend(cafile);
        let mut paho = Tool::spawn(&python, &args);
        paho.wait_for("subscribed");
        let (status, _) = run(
            RPUB,
            &["-p", &plain, "-t", &topic, "-m", "from rpub", "-q", "1"],
        );
        assert!(status.success());
        paho.wait_for("got from rpub");
        let (status, _) = paho.finish();
        assert!(
            status.success(),
            "paho over port {port} (tls: {})",
            cafile.is_some()
        );
        let (_, lines) = reply.finish();
        assert!(lines.iter().any(|l| l == "reply from paho"), "{lines:?}");
    }
}
