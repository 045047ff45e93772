//! Load scenarios against any broker: closed-loop throughput (fan-in, fan-out, 1:1),
//! one-in-flight latency, and idle connections.
//!
//! Every payload carries its publisher, a sequence number and its send time, so the
//! subscribers count exactly what was lost, duplicated or reordered. Throughput is
//! closed-loop: at most `window` messages are published and not yet delivered, so the
//! figure is what the broker delivers, not how fast it can drop (the open-loop tools'
//! weakness).

use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::client::LoadClient;
use crate::protocol::{Packet, PacketId, ProtocolVersion, Publish, QoS};

/// Bytes of the stamp at the front of each payload.
pub const STAMP_LEN: usize = 20;

/// Who sent a message, its number, and when (nanoseconds after the run's epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub publisher: u32,
    pub sequence: u64,
    pub sent_ns: u64,
}

impl Stamp {
    pub fn write(&self, payload: &mut [u8]) {
        payload[..4].copy_from_slice(&self.publisher.to_be_bytes());
        payload[4..12].copy_from_slice(&self.sequence.to_be_bytes());
        payload[12..20].copy_from_slice(&self.sent_ns.to_be_bytes());
    }

    pub fn read(payload: &[u8]) -> Option<Stamp> {
        let field = |range: std::ops::Range<usize>| payload.get(range);
        Some(Stamp {
            publisher: u32::from_be_bytes(field(0..4)?.try_into().ok()?),
            sequence: u64::from_be_bytes(field(4..12)?.try_into().ok()?),
            sent_ns: u64::from_be_bytes(field(12..20)?.try_into().ok()?),
        })
    }
}

/// A latency histogram in microseconds, 1 µs to 1 minute, 3 significant digits.
#[allow(clippy::expect_used)]
pub fn latency_histogram() -> Histogram<u64> {
    // Constant bounds that satisfy `new_with_bounds` (low >= 1, high >= 2 * low,
    // 3 significant digits is within 0..=5), so this cannot fail.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid constant histogram bounds")
}

/// A throughput run: `publishers` clients publish `messages` in total to one topic
/// that `subscribers` clients subscribe to.
#[derive(Debug, Clone)]
pub struct Load {
    pub publishers: usize,
    pub subscribers: usize,
    pub qos: QoS,
    pub messages: u64,
    /// Payload bytes; at least [`STAMP_LEN`].
    pub payload: usize,
    /// Most messages published but not yet delivered to every subscriber.
    pub window: u64,
    /// Most unacknowledged QoS 1/2 PUBLISHes per publisher.
    pub publisher_inflight: usize,
    pub topic: String,
    pub version: ProtocolVersion,
    /// How long without progress before waiting messages are counted as lost.
    pub stall: Duration,
}

impl Load {
    pub fn new(publishers: usize, subscribers: usize, qos: QoS, messages: u64) -> Self {
        Load {
            publishers,
            subscribers,
            qos,
            messages,
            payload: 64,
            window: 500,
            publisher_inflight: 20,
            topic: "bench/load".into(),
            version: ProtocolVersion::V3_1_1,
            stall: Duration::from_millis(200),
        }
    }
}

/// What a throughput run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    pub published: u64,
    /// Deliveries expected: messages × subscribers.
    pub expected: u64,
    /// Distinct messages delivered, summed over subscribers.
    pub delivered: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// First publish to last delivery.
    pub elapsed: Duration,
    /// End-to-end latency of every delivery, in microseconds.
    pub latency: Histogram<u64>,
    /// Packets the load generator sent and received.
    pub packets: u64,
    /// Subscribers whose connection the broker closed before the run ended.
    pub disconnects: u64,
}

impl LoadResult {
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.delivered)
    }

    pub fn deliveries_per_second(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Publishers and subscribers share this to keep the window.
struct Flow {
    sent: AtomicU64,
    /// Deliveries summed over subscribers.
    delivered: AtomicU64,
    /// Messages given up on as lost after a stall.
    forgiven: AtomicU64,
    subscribers: u64,
    window: u64,
    progress: Notify,
    publishing_done: AtomicBool,
    /// Subscribers still connected; publishing stops when none is left.
    subscribers_left: AtomicU64,
    first_sent: std::sync::Mutex<Option<Instant>>,
}

impl Flow {
    fn outstanding(&self) -> u64 {
        let delivered = self.delivered.load(Ordering::Relaxed) / self.subscribers;
        let sent = self.sent.load(Ordering::Relaxed);
        sent.saturating_sub(delivered + self.forgiven.load(Ordering::Relaxed))
    }

    fn may_send(&self) -> bool {
        self.outstanding() < self.window
    }

    /// After a stall, counts what is still outstanding as lost so publishing goes on.
    fn forgive(&self) {
        self.forgiven
            .fetch_add(self.outstanding(), Ordering::Relaxed);
    }
}

/// Runs a throughput scenario against the broker at `addr`.
pub async fn run_load(addr: SocketAddr, load: &Load) -> io::Result<LoadResult> {
    let epoch = Instant::now();
    let flow = Arc::new(Flow {
        sent: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        forgiven: AtomicU64::new(0),
        subscribers: load.subscribers.max(1) as u64,
        window: load.window.max(1),
        progress: Notify::new(),
        publishing_done: AtomicBool::new(false),
        subscribers_left: AtomicU64::new(load.subscribers as u64),
        first_sent: std::sync::Mutex::new(None),
    });
    let per_publisher = split(load.messages, load.publishers);
    let mut subscribers = Vec::new();
    for index in 0..load.subscribers {
        let mut client =
            LoadClient::connect(addr, &format!("bench-sub-{index}"), load.version, 60).await?;
        client.subscribe(&load.topic, load.qos).await?;
        let tracker = Tracker::new(&per_publisher);
        subscribers.push(tokio::spawn(subscribe(
            client,
            tracker,
            Arc::clone(&flow),
            load.messages,
            epoch,
            load.stall,
        )));
    }
    let mut publishers = Vec::new();
    for (index, count) in per_publisher.iter().enumerate() {
        let client =
            LoadClient::connect(addr, &format!("bench-pub-{index}"), load.version, 60).await?;
        let job = Publishing {
            index: index as u32,
            count: *count,
            load: load.clone(),
        };
        publishers.push(tokio::spawn(publish(client, job, Arc::clone(&flow), epoch)));
    }
    let mut packets = 0;
    let mut published = 0;
    for (index, task) in publishers.into_iter().enumerate() {
        let (sent, client_packets) = task
            .await
            .map_err(io::Error::other)?
            .map_err(|e| io::Error::new(e.kind(), format!("publisher {index}: {e}")))?;
        published += sent;
        packets += client_packets;
    }
    flow.publishing_done.store(true, Ordering::Release);
    flow.progress.notify_waiters();
    let mut result = LoadResult {
        published,
        expected: load.messages * load.subscribers as u64,
        delivered: 0,
        duplicates: 0,
        out_of_order: 0,
        elapsed: Duration::ZERO,
        latency: latency_histogram(),
        packets,
        disconnects: 0,
    };
    let mut last_delivery = epoch;
    for (index, task) in subscribers.into_iter().enumerate() {
        let (tracker, last, client_packets, closed) = task
            .await
            .map_err(io::Error::other)?
            .map_err(|e| io::Error::new(e.kind(), format!("subscriber {index}: {e}")))?;
        result.disconnects += u64::from(closed);
        result.delivered += tracker.delivered;
        result.duplicates += tracker.duplicates;
        result.out_of_order += tracker.out_of_order;
        let _ = result.latency.add(&tracker.latency);
        last_delivery = last_delivery.max(last);
        result.packets += client_packets;
    }
    let first = flow
        .first_sent
        .lock()
        .map(|f| f.unwrap_or(epoch))
        .unwrap_or(epoch);
    result.elapsed = last_delivery.saturating_duration_since(first);
    Ok(result)
}

/// `total` split as evenly as possible into `parts`.
fn split(total: u64, parts: usize) -> Vec<u64> {
    let parts = parts.max(1) as u64;
    (0..parts)
        .map(|i| total / parts + u64::from(i < total % parts))
        .collect()
}

struct Publishing {
    index: u32,
    count: u64,
    load: Load,
}

fn elapsed_ns(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Publishes `job.count` messages within the flow's window and the per-publisher
/// in-flight limit; returns messages sent and packets exchanged.
async fn publish(
    mut client: LoadClient,
    job: Publishing,
    flow: Arc<Flow>,
    epoch: Instant,
) -> io::Result<(u64, u64)> {
    let qos = job.load.qos;
    let mut payload = vec![0u8; job.load.payload.max(STAMP_LEN)];
    let mut sequence = 0u64;
    let mut inflight = 0usize;
    let mut packet_id: u16 = 0;
    if let Ok(mut first) = flow.first_sent.lock() {
        first.get_or_insert_with(Instant::now);
    }
    loop {
        // Registered before checking the window, so a wake-up in between is not lost.
        let mut progress = pin!(flow.progress.notified());
        progress.as_mut().enable();
        while sequence < job.count
            && (qos == QoS::AtMostOnce || inflight < job.load.publisher_inflight)
            && flow.may_send()
        {
            Stamp {
                publisher: job.index,
                sequence,
                sent_ns: elapsed_ns(epoch),
            }
            .write(&mut payload);
            let id = if qos == QoS::AtMostOnce {
                None
            } else {
                packet_id = packet_id.checked_add(1).unwrap_or(1);
                inflight += 1;
                PacketId::new(packet_id)
            };
            client.queue_publish(&job.load.topic, qos, id, &payload);
            flow.sent.fetch_add(1, Ordering::Relaxed);
            sequence += 1;
        }
        client.flush().await?;
        let nobody_listens = flow.subscribers_left.load(Ordering::Acquire) == 0;
        if (sequence == job.count && inflight == 0) || nobody_listens {
            return Ok((sequence, client.packets_sent + client.packets_received));
        }
        let waiting_for_window = sequence < job.count
            && (qos == QoS::AtMostOnce || inflight < job.load.publisher_inflight);
        tokio::select! {
            read = client.read_some() => {
                read?;
                while let Some(packet) = client.next_packet()? {
                    client.answer(&packet);
                    if matches!(packet, Packet::PubAck(_) | Packet::PubComp(_)) {
                        inflight = inflight.saturating_sub(1);
                    }
                }
            }
            _ = &mut progress, if waiting_for_window => {}
            _ = tokio::time::sleep(job.load.stall), if waiting_for_window => flow.forgive(),
        }
    }
}

/// Per-subscriber accounting of what arrived.
struct Tracker {
    seen: Vec<Vec<bool>>,
    next_expected: Vec<u64>,
    delivered: u64,
    duplicates: u64,
    out_of_order: u64,
    latency: Histogram<u64>,
}

impl Tracker {
    fn new(per_publisher: &[u64]) -> Self {
        Tracker {
            seen: per_publisher
                .iter()
                .map(|n| vec![false; *n as usize])
                .collect(),
            next_expected: vec![0; per_publisher.len()],
            delivered: 0,
            duplicates: 0,
            out_of_order: 0,
            latency: latency_histogram(),
        }
    }

    fn record(&mut self, publish: &Publish, epoch: Instant) {
        let Some(stamp) = Stamp::read(&publish.payload) else {
            return;
        };
        let Some(seen) = self.seen.get_mut(stamp.publisher as usize) else {
            return;
        };
        let Some(slot) = seen.get_mut(stamp.sequence as usize) else {
            return;
        };
        if *slot {
            self.duplicates += 1;
            return;
        }
        *slot = true;
        self.delivered += 1;
        let expected = &mut self.next_expected[stamp.publisher as usize];
        if stamp.sequence < *expected {
            self.out_of_order += 1;
        } else {
            *expected = stamp.sequence + 1;
        }
        let micros = elapsed_ns(epoch).saturating_sub(stamp.sent_ns) / 1000;
        let _ = self.latency.record(micros.max(1));
    }
}

/// Receives until every message arrived, publishing is over and nothing came for
/// `stall`, or the broker closed the connection; returns the accounting, the time of
/// the last delivery, the packet count, and whether the broker closed the connection.
async fn subscribe(
    mut client: LoadClient,
    mut tracker: Tracker,
    flow: Arc<Flow>,
    expected: u64,
    epoch: Instant,
    stall: Duration,
) -> io::Result<(Tracker, Instant, u64, bool)> {
    let mut last = epoch;
    let mut closed = false;
    while tracker.delivered < expected {
        let quiet_for = if flow.publishing_done.load(Ordering::Acquire) {
            stall * 5
        } else {
            Duration::from_secs(3600)
        };
        tokio::select! {
            read = client.read_some() => match read {
                Ok(()) => {}
                // What did not arrive counts as lost; publishers must not wait for it.
                Err(e) if matches!(e.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset) => {
                    closed = true;
                    flow.subscribers_left.fetch_sub(1, Ordering::AcqRel);
                    flow.forgive();
                    flow.progress.notify_waiters();
                    break;
                }
                Err(e) => return Err(e),
            },
            _ = tokio::time::sleep(quiet_for) => break,
        }
        let before = tracker.delivered;
        while let Some(packet) = client.next_packet()? {
            client.answer(&packet);
            if let Packet::Publish(publish) = &packet {
                tracker.record(publish, epoch);
            }
        }
        client.flush().await?;
        let arrived = tracker.delivered - before;
        if arrived > 0 {
            last = Instant::now();
            flow.delivered.fetch_add(arrived, Ordering::Relaxed);
            flow.progress.notify_waiters();
        }
    }
    Ok((
        tracker,
        last,
        client.packets_sent + client.packets_received,
        closed,
    ))
}

/// One-in-flight latency: publish → delivery, and publish → end of the publisher's
/// QoS flow (PUBACK, or PUBCOMP), in microseconds.
#[derive(Debug, Clone)]
pub struct LatencyResult {
    pub end_to_end: Histogram<u64>,
    pub acknowledged: Histogram<u64>,
}

/// Sends `messages` one at a time from one publisher to one subscriber.
pub async fn run_latency(
    addr: SocketAddr,
    version: ProtocolVersion,
    qos: QoS,
    messages: u64,
    payload: usize,
) -> io::Result<LatencyResult> {
    let topic = "bench/latency";
    let mut subscriber = LoadClient::connect(addr, "bench-lat-sub", version, 60).await?;
    subscriber.subscribe(topic, qos).await?;
    let mut publisher = LoadClient::connect(addr, "bench-lat-pub", version, 60).await?;
    let mut result = LatencyResult {
        end_to_end: latency_histogram(),
        acknowledged: latency_histogram(),
    };
    let body = vec![0u8; payload.max(STAMP_LEN)];
    let mut packet_id: u16 = 0;
    for _ in 0..messages {
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
                    while let Some(packet) = subscriber.next_packet()? {
                        subscriber.answer(&packet);
                        if matches!(packet, Packet::Publish(_)) {
                            let _ = result.end_to_end.record(micros_since(start));
                            delivered = true;
                        }
                    }
                    subscriber.flush().await?;
                }
                read = publisher.read_some(), if !acknowledged => {
                    read?;
                    while let Some(packet) = publisher.next_packet()? {
                        publisher.answer(&packet);
                        if matches!(packet, Packet::PubAck(_) | Packet::PubComp(_)) {
                            let _ = result.acknowledged.record(micros_since(start));
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
            while let Some(packet) = subscriber.next_packet()? {
                subscriber.answer(&packet);
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

/// Opens `count` connections (64 at a time) and keeps them idle.
pub async fn open_idle(
    addr: SocketAddr,
    version: ProtocolVersion,
    count: usize,
    keep_alive: u16,
) -> io::Result<Vec<LoadClient>> {
    let mut clients = Vec::with_capacity(count);
    let mut next = 0;
    while next < count {
        let batch: Vec<_> = (next..count.min(next + 64))
            .map(|i| {
                tokio::spawn(async move {
                    LoadClient::connect(addr, &format!("bench-idle-{i}"), version, keep_alive).await
                })
            })
            .collect();
        for task in batch {
            clients.push(task.await.map_err(io::Error::other)??);
        }
        next = clients.len();
    }
    Ok(clients)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_reject_short_payloads() {
        let stamp = Stamp {
            publisher: 3,
            sequence: 1 << 40,
            sent_ns: 123_456_789,
        };
        let mut payload = [0u8; 64];
        stamp.write(&mut payload);
        assert_eq!(Stamp::read(&payload), Some(stamp));
        assert_eq!(Stamp::read(&payload[..19]), None);
    }

    #[test]
    fn messages_split_evenly() {
        assert_eq!(split(10, 4), vec![3, 3, 2, 2]);
        assert_eq!(split(3, 1), vec![3]);
    }

    #[test]
    fn tracker_counts_duplicates_and_reordering() {
        let mut tracker = Tracker::new(&[4]);
        let epoch = Instant::now();
        let publish = |sequence: u64| {
            let mut payload = vec![0u8; 20];
            Stamp {
                publisher: 0,
                sequence,
                sent_ns: 0,
            }
            .write(&mut payload);
            Publish::new(
                crate::protocol::TopicName::new("t").expect("topic"),
                payload,
            )
        };
        for sequence in [0, 2, 1, 2] {
            tracker.record(&publish(sequence), epoch);
        }
        assert_eq!(
            (tracker.delivered, tracker.duplicates, tracker.out_of_order),
            (3, 1, 1)
        );
    }
}
