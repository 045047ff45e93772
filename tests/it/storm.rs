//! A reconnect storm: many persistent-session clients drop and reconnect at once,
//! several times, while a QoS 1 flow runs. Nothing of the flow may be lost, every
//! reconnect must find its session (session present, subscription kept), and a
//! message queued while a client was away must reach it after the storm.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mqttkit::bench::client::{ConnectOptions, LoadClient};
use mqttkit::bench::load::{self, Pace, Plan, Progress, Until};
use mqttkit::protocol::{Packet, QoS};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::support::TestBroker;

/// Storm clients: enough for hundreds of connects to land at once, bounded for CI.
const CLIENTS: usize = 500;
const STORMS: usize = 3;
const WAIT: Duration = Duration::from_secs(30);

fn persistent() -> ConnectOptions {
    ConnectOptions {
        clean_start: false,
        keep_alive: 600,
        ..ConnectOptions::default()
    }
}

/// Connects every storm client at once; returns them in client order.
async fn connect_all(broker: std::net::SocketAddr) -> Vec<LoadClient> {
    let mut connecting = JoinSet::new();
    for index in 0..CLIENTS {
        connecting.spawn(async move {
            let client = LoadClient::connect(broker, &format!("storm-{index}"), &persistent())
                .await
                .unwrap_or_else(|error| panic!("storm-{index} did not connect: {error}"));
            (index, client)
        });
    }
    let mut clients: Vec<Option<LoadClient>> = (0..CLIENTS).map(|_| None).collect();
    while let Some(joined) = connecting.join_next().await {
        let (index, client) = joined.expect("connect task");
        clients[index] = Some(client);
    }
    clients.into_iter().map(|c| c.expect("connected")).collect()
}

#[test]
fn a_reconnect_storm_loses_no_message_and_no_session() {
    let broker = TestBroker::start();
    let addr = broker.addr();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");

    let mut clients = runtime.block_on(async {
        let mut clients = connect_all(addr).await;
        for (index, client) in clients.iter_mut().enumerate() {
            assert!(!client.session_present, "storm-{index} starts fresh");
            client
                .subscribe(&format!("storm/{index}"), QoS::AtLeastOnce)
                .await
                .expect("subscribe");
        }
        clients
    });

    // The QoS 1 flow, on its own thread: 5 s at 2,000 msg/s, well beyond the
    // storms, which start once it delivers.
    let progress = Arc::new(Progress::default());
    let flow = {
        let progress = Arc::clone(&progress);
        let mut plan = Plan::new(vec![addr], 1, 1, QoS::AtLeastOnce, Until::Count(10_000));
        plan.pace = Pace::Rate(2000.0);
        plan.client_prefix = "storm-flow".into();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("flow runtime")
                .block_on(load::run(&plan, progress, CancellationToken::new()))
                .expect("flow")
        })
    };
    let flowing = std::time::Instant::now();
    while progress.delivered.load(Ordering::Relaxed) == 0 {
        assert!(flowing.elapsed() < WAIT, "the flow never delivered");
        std::thread::sleep(Duration::from_millis(5));
    }

    runtime.block_on(async {
        let mut feeder = LoadClient::connect(addr, "storm-feeder", &ConnectOptions::default())
            .await
            .expect("feeder");
        for storm in 0..STORMS {
            drop(std::mem::take(&mut clients));
            // One message for each client while it is away (or going): its session
            // must keep it.
            for index in 0..CLIENTS {
                let payload = format!("{storm}-{index}");
                let id = mqttkit::protocol::PacketId::new(u16::try_from(index + 1).unwrap());
                feeder.queue_publish(
                    &format!("storm/{index}"),
                    QoS::AtLeastOnce,
                    id,
                    payload.as_bytes(),
                );
                feeder.flush().await.expect("feeder write");
                let ack = tokio::time::timeout(WAIT, feeder.recv())
                    .await
                    .expect("PUBACK in time")
                    .expect("feeder read");
                assert!(matches!(ack, Packet::PubAck(_)), "{ack:?}");
            }
            clients = connect_all(addr).await;
            for (index, client) in clients.iter_mut().enumerate() {
                assert!(
                    client.session_present,
                    "storm {storm}: storm-{index} lost its session"
                );
                let expected = format!("{storm}-{index}");
                let mut seen = HashSet::new();
                // Earlier storms' messages may come again (QoS 1 resends an
                // unacknowledged one); this storm's must come.
                while !seen.contains(expected.as_bytes()) {
                    let packet = tokio::time::timeout(WAIT, client.recv())
                        .await
                        .unwrap_or_else(|_| panic!("storm {storm}: nothing for storm-{index}"))
                        .expect("storm client read");
                    let Packet::Publish(publish) = &packet else {
                        panic!("storm {storm}: storm-{index} got {packet:?}");
                    };
                    assert_eq!(publish.topic.as_str(), format!("storm/{index}"));
                    seen.insert(publish.payload.to_vec());
                    client.answer(&packet);
                    client.flush().await.expect("PUBACK");
                }
            }
        }
    });

    let result = flow.join().expect("flow thread");
    assert!(result.delivered > 0, "the flow ran");
    assert_eq!(
        result.lost(),
        0,
        "QoS 1 messages lost during the storms: {result:?}"
    );
    assert_eq!(
        result.disconnects, 0,
        "the flow's clients were disconnected"
    );
}
