//! The broker's connection state machine: arbitrary bytes, cut into arbitrary read
//! sizes, sent to an in-process broker on one connection; then a well-behaved
//! canary client must still be served (CONNECT, SUBSCRIBE, PINGREQ). Nothing may
//! panic, and memory stays bounded: `fuzz/run` sets `-malloc_limit_mb=64` (no
//! single allocation a peer causes may exceed 64 MiB, whatever length it claims)
//! and `-rss_limit_mb=2048`; libFuzzer reports a breach as a crash.
//! The broker runs on a current-thread runtime driven by the fuzzing thread, so
//! its coverage is the input's.
#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mqttkit::broker::{Broker, Config, LogDest, Logger, RunningBroker};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

struct Harness {
    runtime: Runtime,
    address: SocketAddr,
    _broker: RunningBroker,
}

/// One broker for the whole run, as a long-lived broker meets many peers.
fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let config = Config {
            sys_interval: 0,
            // Short, so a peer that stops mid-CONNECT does not hold the run.
            connect_timeout: Duration::from_secs(1),
            ..Config::default()
        };
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
        }
    })
}

/// A fixed, valid exchange: CONNECT (3.1.1, clean), SUBSCRIBE `canary` QoS 0,
/// PINGREQ.
const CANARY: &[u8] = &[
    0x10, 0x12, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x06, b'c', b'a',
    b'n', b'a', b'r', b'y', //
    0x82, 0x0b, 0x00, 0x01, 0x00, 0x06, b'c', b'a', b'n', b'a', b'r', b'y', 0x00, //
    0xc0, 0x00,
];

/// What the broker answers the canary with: CONNACK, SUBACK, PINGRESP.
const ANSWER: &[u8] = &[
    0x20, 0x02, 0x00, 0x00, //
    0x90, 0x03, 0x00, 0x01, 0x00, //
    0xd0, 0x00,
];

fuzz_target!(|data: &[u8]| {
    let harness = harness();
    harness.runtime.block_on(async {
        // The first byte picks the read sizes the peer's bytes arrive in.
        let (chunk, bytes) = match data.split_first() {
            Some((&first, rest)) => (usize::from(first % 64) + 1, rest),
            None => (1, data),
        };
        let mut peer = TcpStream::connect(harness.address).await.expect("connect");
        let _ = peer.set_nodelay(true);
        for piece in bytes.chunks(chunk) {
            if peer.write_all(piece).await.is_err() {
                break;
            }
            // Lets the broker read this piece on its own.
            tokio::task::yield_now().await;
        }
        drop(peer);
        let mut canary = TcpStream::connect(harness.address).await.expect("canary");
        canary.write_all(CANARY).await.expect("canary write");
        let mut answer = vec![0u8; ANSWER.len()];
        tokio::time::timeout(Duration::from_secs(5), canary.read_exact(&mut answer))
            .await
            .expect("the canary is answered within 5 s")
            .expect("the canary reads its answer");
        assert_eq!(answer, ANSWER, "the canary is served as before");
    });
});
