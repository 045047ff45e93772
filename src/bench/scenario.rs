//! Scenarios beside the load engine: one-in-flight latency, where each message
//! waits for the previous one so the figures show the protocol's cost rather than
//! queueing, and idle connections.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use super::client::{ConnectOptions, Incoming, LoadClient};
use super::stats::{latency_histogram, record_latency};
use tokio_util::sync::CancellationToken;

use crate::protocol::{PacketId, QoS};

/// One-in-flight latency: publish → delivery, and publish → end of the publisher's
/// QoS flow (PUBACK, or PUBCOMP), in microseconds.
#[derive(Debug, Clone)]
pub struct LatencyResult {
    pub end_to_end: Histogram<u64>,
    pub acknowledged: Histogram<u64>,
}

/// Sends up to `messages` one at a time from one publisher to one subscriber, until
/// done or `stop` is cancelled.
pub async fn run_latency(
    addr: SocketAddr,
    options: &ConnectOptions,
    qos: QoS,
    messages: u64,
    payload: usize,
    stop: &CancellationToken,
) -> io::Result<LatencyResult> {
    run_latency_across((addr, addr), options, qos, messages, payload, stop).await
}

/// [`run_latency`] with the publisher on one broker and the subscriber on
/// another (`(publisher, subscriber)`): the path through a bridge.
pub async fn run_latency_across(
    (publisher_addr, subscriber_addr): (SocketAddr, SocketAddr),
    options: &ConnectOptions,
    qos: QoS,
    messages: u64,
    payload: usize,
    stop: &CancellationToken,
) -> io::Result<LatencyResult> {
    let topic = "bench/latency";
    let mut subscriber = LoadClient::connect(subscriber_addr, "rbench-lat-sub", options)
        .await
        .map_err(io::Error::other)?;
    subscriber.subscribe(topic, qos).await?;
    let mut publisher = LoadClient::connect(publisher_addr, "rbench-lat-pub", options)
        .await
        .map_err(io::Error::other)?;
    let mut result = LatencyResult {
        end_to_end: latency_histogram(),
        acknowledged: latency_histogram(),
    };
    let body = vec![0u8; payload];
    let mut packet_id: u16 = 0;
    for _ in 0..messages {
        if stop.is_cancelled() {
            break;
        }
        let id = if qos == QoS::AtMostOnce {
            None
        } else {
            packet_id = packet_id.checked_add(1).unwrap_or(1);
            PacketId::new(packet_id)
        };
        let start = Instant::now();
        publisher.queue_publish(topic, qos, id, &body);
        publisher.flush().await?;
        let mut delivered = false;
        let mut acknowledged = qos == QoS::AtMostOnce;
        while !(delivered && acknowledged) {
            tokio::select! {
                read = subscriber.read_some(), if !delivered => {
                    read?;
                    while let Some(incoming) = subscriber.next_incoming()? {
                        subscriber.answer_incoming(&incoming);
                        if matches!(incoming, Incoming::Publish { .. }) {
                            record_latency(&mut result.end_to_end, micros_since(start));
                            delivered = true;
                        }
                    }
                    subscriber.flush().await?;
                }
                read = publisher.read_some(), if !acknowledged => {
                    read?;
                    while let Some(incoming) = publisher.next_incoming()? {
                        publisher.answer_incoming(&incoming);
                        if matches!(incoming, Incoming::PubAck(_) | Incoming::PubComp(_)) {
                            record_latency(&mut result.acknowledged, micros_since(start));
                            acknowledged = true;
                        }
                    }
                    publisher.flush().await?;
                }
            }
        }
    }
    // Let the last QoS 2 exchange with the subscriber finish (PUBREL → PUBCOMP).
    if qos == QoS::ExactlyOnce {
        while let Ok(Ok(())) =
            tokio::time::timeout(Duration::from_millis(50), subscriber.read_some()).await
        {
            while let Some(incoming) = subscriber.next_incoming()? {
                subscriber.answer_incoming(&incoming);
            }
            subscriber.flush().await?;
        }
    }
    Ok(result)
}

fn micros_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros())
        .unwrap_or(u64::MAX)
        .max(1)
}
