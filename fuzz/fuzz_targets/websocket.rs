//! The WebSocket listener: the HTTP request and the frames after it. The first
//! byte picks the read sizes; with an even second byte the rest follows a valid
//! upgrade (so it lands in the framing), with an odd one the rest is the HTTP
//! request itself (upgrade, `http_dir` file or refusal). Then a canary upgrades,
//! sends CONNECT, SUBSCRIBE and PINGREQ in one masked binary frame, and must get
//! CONNACK, SUBACK and PINGRESP. Nothing may panic, and memory stays bounded:
//! `fuzz/run` sets `-malloc_limit_mb=64` (a frame or packet length claim never
//! becomes one large allocation) and `-rss_limit_mb=2048`; libFuzzer reports a
//! breach as a crash. The broker runs on a current-thread runtime driven by the
//! fuzzing thread, so its coverage is the input's.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mqttkit::broker::config::{ListenerConfig, ListenerProtocol};
use mqttkit::broker::{Broker, Config, LogDest, Logger, RunningBroker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

struct Harness {
    runtime: Runtime,
    address: SocketAddr,
    _broker: RunningBroker,
    _www: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let www = tempfile::tempdir().expect("http_dir");
        std::fs::write(www.path().join("index.html"), "<p>mqttkit</p>").expect("page");
        let mut listener = ListenerConfig::new(0, None);
        listener.transport.protocol = ListenerProtocol::WebSockets;
        listener.transport.http_dir = Some(www.path().to_path_buf());
        let mut config = Config {
            sys_interval: 0,
            connect_timeout: Duration::from_secs(1),
            default_listener: Some(listener),
            ..Config::default()
        };
        // A configured listener would refuse anonymous clients, the canary too.
        config.auth.allow_anonymous = Some(true);
        let log = Logger::new(config.log_types, LogDest::None, false);
        let broker = runtime.block_on(async {
            Broker::bind_to(config, log, &["127.0.0.1:0".parse().expect("address")])
                .await
                .expect("bind")
                .start()
        });
        let address = broker.local_addrs()[0];
        Harness {
            runtime,
            address,
            _broker: broker,
            _www: www,
        }
    })
}

const UPGRADE: &[u8] = b"GET /mqtt HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";

/// CONNECT (3.1.1, clean, id `canary`), SUBSCRIBE `canary` QoS 0, PINGREQ.
const CANARY: &[u8] = &[
    0x10, 0x12, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x06, b'c', b'a',
    b'n', b'a', b'r', b'y', //
    0x82, 0x0b, 0x00, 0x01, 0x00, 0x06, b'c', b'a', b'n', b'a', b'r', b'y', 0x00, //
    0xc0, 0x00,
];

/// CONNACK, SUBACK, PINGRESP.
const ANSWER: &[u8] = &[
    0x20, 0x02, 0x00, 0x00, //
    0x90, 0x03, 0x00, 0x01, 0x00, //
    0xd0, 0x00,
];

/// One masked binary frame carrying `payload` (shorter than 126 bytes).
fn masked_binary(payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut frame = vec![0x82, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&key);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    frame
}

/// The canary's exchange over its own upgraded connection.
async fn canary(address: SocketAddr) {
    let mut stream = TcpStream::connect(address).await.expect("canary");
    stream.write_all(UPGRADE).await.expect("upgrade");
    stream
        .write_all(&masked_binary(CANARY))
        .await
        .expect("frame");
    let mut received = Vec::new();
    let read_all = async {
        // The 101 response head, then unmasked frames whose payloads are MQTT.
        let mut chunk = [0u8; 1024];
        loop {
            let read = stream.read(&mut chunk).await.expect("canary read");
            assert!(read > 0, "the canary's connection was closed");
            received.extend_from_slice(&chunk[..read]);
            let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            assert!(received.starts_with(b"HTTP/1.1 101"), "no upgrade");
            let mut mqtt = Vec::new();
            let mut at = end + 4;
            while at + 2 <= received.len() {
                let len = usize::from(received[at + 1] & 0x7f);
                if at + 2 + len > received.len() {
                    break;
                }
                mqtt.extend_from_slice(&received[at + 2..at + 2 + len]);
                at += 2 + len;
            }
            if mqtt.len() >= ANSWER.len() {
                assert_eq!(
                    &mqtt[..ANSWER.len()],
                    ANSWER,
                    "the canary is served as before"
                );
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read_all)
        .await
        .expect("the canary is answered within 5 s");
}

fuzz_target!(|data: &[u8]| {
    let harness = harness();
    harness.runtime.block_on(async {
        let (chunk, mode, bytes) = match data {
            [first, second, rest @ ..] => (usize::from(first % 64) + 1, *second, rest),
            _ => (1, 0, data),
        };
        let mut peer = TcpStream::connect(harness.address).await.expect("connect");
        let _ = peer.set_nodelay(true);
        let mut input = Vec::with_capacity(UPGRADE.len() + bytes.len());
        if mode % 2 == 0 {
            input.extend_from_slice(UPGRADE);
        }
        input.extend_from_slice(bytes);
        for piece in input.chunks(chunk) {
            if peer.write_all(piece).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
        drop(peer);
        canary(harness.address).await;
    });
});
