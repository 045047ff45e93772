//! The load engine: publishers and subscribers on any topics, paced by a closed-loop
//! window or a fixed rate, for a count or a duration, with warm-up, live progress,
//! cancellation that keeps what was measured, and per-message accounting.
//!
//! Every payload starts with a [`Stamp`] (run, publisher, sequence, send time), so
//! subscribers count exactly what was lost, duplicated or reordered, and measure
//! end-to-end latency even for messages published by another rbench process.
//!
//! Closed loop (the default) keeps at most `window` messages published and not yet
//! delivered, so throughput is what the broker delivers, not how fast it drops.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::client::{ConnectOptions, Incoming, LoadClient};
use super::stamp::{Stamp, unix_ns};
use super::stats::{Tracker, latency_histogram, record_latency};
use crate::protocol::{PacketId, QoS, TopicFilter, topic};

/// How publishers are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// At most this many messages published and not yet delivered (closed loop).
    Window(u64),
    /// This many messages per second in total, spread over the publishers.
    Rate(f64),
    /// As fast as the connection takes them (and the in-flight limit allows).
    Unlimited,
}

/// When publishing (or, without publishers, subscribing) ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Messages per publisher (per subscriber in a subscribe-only run).
    Count(u64),
    /// Measured time, after the warm-up.
    Duration(Duration),
}

/// A load run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Client *i* connects to `hosts[i % hosts.len()]`.
    pub hosts: Vec<SocketAddr>,
    /// Where subscriber *i* connects instead, when not empty: the far side of a
    /// bridge, or another node of a cluster.
    pub subscriber_hosts: Vec<SocketAddr>,
    pub options: ConnectOptions,
    /// Client ids are `<prefix>-pub-<i>` and `<prefix>-sub-<i>`.
    pub client_prefix: String,
    pub publishers: usize,
    pub subscribers: usize,
    /// Topic template for publisher *i*: `%i` is the index, `%c` the client id.
    pub topic: String,
    /// Filter template for subscriber *i*.
    pub filter: String,
    pub qos: QoS,
    pub payload: usize,
    pub pace: Pace,
    pub until: Until,
    /// Time at the start whose messages are not counted in the figures.
    pub warmup: Duration,
    /// Most unacknowledged QoS 1/2 PUBLISHes per publisher.
    pub publisher_inflight: usize,
    /// How long without progress before waiting messages count as lost.
    pub stall: Duration,
}

impl Plan {
    /// `publishers` → `subscribers` on one topic, closed loop with 500 outstanding.
    pub fn new(
        hosts: Vec<SocketAddr>,
        publishers: usize,
        subscribers: usize,
        qos: QoS,
        until: Until,
    ) -> Self {
        Plan {
            hosts,
            subscriber_hosts: Vec::new(),
            options: ConnectOptions::default(),
            client_prefix: "rbench".into(),
            publishers,
            subscribers,
            topic: "rbench/load".into(),
            filter: "rbench/load".into(),
            qos,
            payload: 64,
            pace: Pace::Window(500),
            until,
            warmup: Duration::ZERO,
            publisher_inflight: 20,
            stall: Duration::from_millis(200),
        }
    }

    fn host(&self, index: usize) -> io::Result<SocketAddr> {
        if self.hosts.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no broker address",
            ));
        }
        Ok(self.hosts[index % self.hosts.len()])
    }

    fn subscriber_host(&self, index: usize) -> io::Result<SocketAddr> {
        match self.subscriber_hosts.len() {
            0 => self.host(index),
            n => Ok(self.subscriber_hosts[index % n]),
        }
    }

    fn publisher_id(&self, index: usize) -> String {
        format!("{}-pub-{index}", self.client_prefix)
    }

    fn subscriber_id(&self, index: usize) -> String {
        format!("{}-sub-{index}", self.client_prefix)
    }
}

/// Expands `%i` (index) and `%c` (client id) in a topic template.
pub fn expand(template: &str, index: usize, client_id: &str) -> String {
    template
        .replace("%i", &index.to_string())
        .replace("%c", client_id)
}

/// Counters that grow while a run goes on; read them for progress displays.
#[derive(Debug, Default)]
pub struct Progress {
    pub published: AtomicU64,
    pub delivered: AtomicU64,
    /// Deliveries the run expects in total, when it is known in advance.
    pub expected: AtomicU64,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct LoadResult {
    pub published: u64,
    /// Deliveries due: for each message, the subscribers whose filters match it.
    pub expected: u64,
    /// Distinct stamped messages delivered, summed over subscribers.
    pub delivered: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Messages without a stamp, or from another run.
    pub foreign: u64,
    /// Published after the warm-up / delivered of those.
    pub published_measured: u64,
    pub delivered_measured: u64,
    /// From the end of the warm-up to the last publish / last delivery.
    pub publish_elapsed: Duration,
    pub deliver_elapsed: Duration,
    /// End-to-end latency of measured deliveries, µs.
    pub latency: Histogram<u64>,
    /// Publish to PUBACK/PUBCOMP of measured QoS 1/2 messages, µs.
    pub ack_latency: Histogram<u64>,
    /// Packets and bytes after setup, on the publishers' and the subscribers' side.
    pub publisher_packets: u64,
    pub publisher_bytes: u64,
    pub subscriber_packets: u64,
    pub subscriber_bytes: u64,
    /// Subscribers whose connection the broker closed before the end.
    pub disconnects: u64,
    /// The run was cancelled before it finished.
    pub stopped_early: bool,
}

impl LoadResult {
    /// Deliveries that were due and did not arrive. Without publishers in the run,
    /// gaps in each publisher's sequence numbers.
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.delivered)
    }

    pub fn deliveries_per_second(&self) -> f64 {
        rate(self.delivered_measured, self.deliver_elapsed)
    }

    pub fn publishes_per_second(&self) -> f64 {
        rate(self.published_measured, self.publish_elapsed)
    }
}

fn rate(count: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        0.0
    } else {
        count as f64 / elapsed.as_secs_f64()
    }
}

/// Shared by the publishers and subscribers of one run.
struct Flow {
    run: u32,
    sent: AtomicU64,
    delivered: AtomicU64,
    forgiven: AtomicU64,
    /// Average number of subscribers each message goes to.
    fanout: f64,
    pace: Pace,
    progress: Arc<Progress>,
    /// Wakes publishers waiting for the window to open.
    wake: Notify,
    /// Wakes subscribers once publishing is over.
    finished: Notify,
    publishing_done: AtomicBool,
    subscribers_left: AtomicU64,
    stop: CancellationToken,
    /// First publish, and the end of the warm-up after it (Unix ns).
    start_ns: AtomicU64,
    warmup: Duration,
}

impl Flow {
    fn outstanding(&self) -> u64 {
        if self.fanout <= 0.0 {
            return 0;
        }
        let delivered = (self.delivered.load(Ordering::Relaxed) as f64 / self.fanout) as u64;
        let sent = self.sent.load(Ordering::Relaxed);
        sent.saturating_sub(delivered + self.forgiven.load(Ordering::Relaxed))
    }

    fn window_open(&self) -> bool {
        match self.pace {
            Pace::Window(window) => self.outstanding() < window.max(1),
            _ => true,
        }
    }

    fn forgive(&self) {
        self.forgiven
            .fetch_add(self.outstanding(), Ordering::Relaxed);
    }

    fn measure_from_ns(&self) -> u64 {
        let start = self.start_ns.load(Ordering::Acquire);
        start.saturating_add(u64::try_from(self.warmup.as_nanos()).unwrap_or(u64::MAX))
    }
}

/// The subscribers each publisher's messages go to, given the templates.
fn fanouts(plan: &Plan) -> Vec<u64> {
    let filters: Vec<Option<TopicFilter>> = (0..plan.subscribers)
        .map(|i| TopicFilter::new(expand(&plan.filter, i, &plan.subscriber_id(i))).ok())
        .collect();
    (0..plan.publishers)
        .map(|p| {
            let topic_name = expand(&plan.topic, p, &plan.publisher_id(p));
            let mut groups = std::collections::HashSet::new();
            let mut count = 0;
            for filter in filters.iter().flatten() {
                if topic::matches(filter.filter(), &topic_name) {
                    match filter.share_group() {
                        Some(group) => {
                            if groups.insert(group.to_string()) {
                                count += 1;
                            }
                        }
                        None => count += 1,
                    }
                }
            }
            count
        })
        .collect()
}

/// Runs `plan` until it completes or `stop` is cancelled.
pub async fn run(
    plan: &Plan,
    progress: Arc<Progress>,
    stop: CancellationToken,
) -> io::Result<LoadResult> {
    let fanout = fanouts(plan);
    let fanout_total: u64 = fanout.iter().sum();
    let flow = Arc::new(Flow {
        run: rand_u32(),
        sent: AtomicU64::new(0),
        delivered: AtomicU64::new(0),
        forgiven: AtomicU64::new(0),
        fanout: if plan.publishers == 0 {
            0.0
        } else {
            fanout_total as f64 / plan.publishers as f64
        },
        pace: plan.pace,
        progress: Arc::clone(&progress),
        wake: Notify::new(),
        finished: Notify::new(),
        publishing_done: AtomicBool::new(plan.publishers == 0),
        subscribers_left: AtomicU64::new(plan.subscribers as u64),
        stop: stop.clone(),
        start_ns: AtomicU64::new(0),
        warmup: plan.warmup,
    });
    if let Until::Count(per_publisher) = plan.until
        && plan.publishers > 0
    {
        progress
            .expected
            .store(per_publisher * fanout_total, Ordering::Relaxed);
    }

    let mut subscribers = Vec::new();
    for index in 0..plan.subscribers {
        let id = plan.subscriber_id(index);
        let mut client = LoadClient::connect(plan.subscriber_host(index)?, &id, &plan.options)
            .await
            .map_err(|e| io::Error::other(format!("subscriber {id}: {e}")))?;
        client
            .subscribe(&expand(&plan.filter, index, &id), plan.qos)
            .await?;
        client.reset_counters();
        let limit = match plan.until {
            Until::Count(count) if plan.publishers == 0 => Some(count),
            _ => None,
        };
        subscribers.push(tokio::spawn(subscribe(
            client,
            Arc::clone(&flow),
            limit,
            plan.stall,
        )));
    }
    let mut publishers = Vec::new();
    for index in 0..plan.publishers {
        let id = plan.publisher_id(index);
        let mut client = LoadClient::connect(plan.host(index)?, &id, &plan.options)
            .await
            .map_err(|e| io::Error::other(format!("publisher {id}: {e}")))?;
        client.reset_counters();
        let job = Job {
            index: index as u32,
            topic: expand(&plan.topic, index, &id),
            plan: plan.clone(),
        };
        publishers.push(tokio::spawn(publish(client, job, Arc::clone(&flow))));
    }
    if plan.publishers == 0 {
        flow.start_ns.store(unix_ns(), Ordering::Release);
        if let Until::Duration(duration) = plan.until {
            let stop = stop.clone();
            let total = plan.warmup + duration;
            tokio::spawn(async move {
                tokio::time::sleep(total).await;
                stop.cancel();
            });
        }
    }

    let mut result = LoadResult {
        published: 0,
        expected: 0,
        delivered: 0,
        duplicates: 0,
        out_of_order: 0,
        foreign: 0,
        published_measured: 0,
        delivered_measured: 0,
        publish_elapsed: Duration::ZERO,
        deliver_elapsed: Duration::ZERO,
        latency: latency_histogram(),
        ack_latency: latency_histogram(),
        publisher_packets: 0,
        publisher_bytes: 0,
        subscriber_packets: 0,
        subscriber_bytes: 0,
        disconnects: 0,
        stopped_early: false,
    };
    let mut published_per_publisher = Vec::new();
    let mut last_publish_ns = 0;
    for (index, task) in publishers.into_iter().enumerate() {
        let done = task
            .await
            .map_err(io::Error::other)?
            .map_err(|e| io::Error::new(e.kind(), format!("publisher {index}: {e}")))?;
        result.published += done.sent;
        result.published_measured += done.measured;
        result.publisher_packets += done.packets;
        result.publisher_bytes += done.bytes;
        let _ = result.ack_latency.add(&done.ack_latency);
        last_publish_ns = last_publish_ns.max(done.last_ns);
        published_per_publisher.push(done.sent);
    }
    flow.publishing_done.store(true, Ordering::Release);
    flow.finished.notify_waiters();
    result.expected = published_per_publisher
        .iter()
        .zip(&fanout)
        .map(|(sent, fan)| sent * fan)
        .sum();
    let mut last_delivery_ns = 0;
    let mut gaps = 0;
    for (index, task) in subscribers.into_iter().enumerate() {
        let done = task
            .await
            .map_err(io::Error::other)?
            .map_err(|e| io::Error::new(e.kind(), format!("subscriber {index}: {e}")))?;
        result.delivered += done.tracker.delivered;
        result.delivered_measured += done.tracker.measured;
        result.duplicates += done.tracker.duplicates;
        result.out_of_order += done.tracker.out_of_order;
        result.foreign += done.tracker.foreign;
        gaps += done.tracker.gaps();
        let _ = result.latency.add(&done.tracker.latency);
        result.subscriber_packets += done.packets;
        result.subscriber_bytes += done.bytes;
        result.disconnects += u64::from(done.closed);
        last_delivery_ns = last_delivery_ns.max(done.last_ns);
    }
    if plan.publishers == 0 {
        // Without our own publishers, what is due is what each sequence shows.
        result.expected = result.delivered + gaps;
    }
    let measure_from = flow.measure_from_ns();
    let since = |end: u64| Duration::from_nanos(end.saturating_sub(measure_from));
    result.publish_elapsed = since(last_publish_ns);
    result.deliver_elapsed = since(last_delivery_ns);
    if plan.publishers == 0
        && let Until::Duration(duration) = plan.until
    {
        result.deliver_elapsed = duration.min(since(unix_ns()));
    }
    result.stopped_early = stop.is_cancelled() && plan.publishers > 0;
    Ok(result)
}

fn rand_u32() -> u32 {
    (unix_ns() ^ u64::from(std::process::id()).rotate_left(32)) as u32
}

struct Job {
    index: u32,
    topic: String,
    plan: Plan,
}

struct Published {
    sent: u64,
    measured: u64,
    packets: u64,
    bytes: u64,
    last_ns: u64,
    ack_latency: Histogram<u64>,
}

/// One publisher: paced by the window or the rate, within the in-flight limit.
async fn publish(mut client: LoadClient, job: Job, flow: Arc<Flow>) -> io::Result<Published> {
    let plan = &job.plan;
    let qos = plan.qos;
    let mut payload = vec![0u8; plan.payload];
    let mut sequence = 0u64;
    let mut measured = 0u64;
    let mut last_ns = 0u64;
    let mut inflight: VecDeque<(PacketId, u64)> = VecDeque::new();
    let mut packet_id: u16 = 0;
    let mut ack_latency = latency_histogram();
    let _ = flow
        .start_ns
        .compare_exchange(0, unix_ns(), Ordering::AcqRel, Ordering::Acquire);
    let started = Instant::now();
    let per_publisher_rate = match plan.pace {
        Pace::Rate(total) => Some(total / plan.publishers.max(1) as f64),
        _ => None,
    };
    let end_at = match plan.until {
        Until::Duration(duration) => Some(started + plan.warmup + duration),
        Until::Count(_) => None,
    };
    let count = match plan.until {
        Until::Count(count) => count,
        Until::Duration(_) => u64::MAX,
    };
    loop {
        let mut woken = pin!(flow.wake.notified());
        woken.as_mut().enable();
        let now = Instant::now();
        let finished_publishing = sequence >= count
            || end_at.is_some_and(|end| now >= end)
            || flow.stop.is_cancelled()
            || (flow.subscribers_left.load(Ordering::Acquire) == 0 && plan.subscribers > 0);
        // Messages the rate allows by now.
        let due = match per_publisher_rate {
            Some(rate) => ((now - started).as_secs_f64() * rate) as u64 + 1,
            None => u64::MAX,
        };
        if !finished_publishing {
            let measure_from = flow.measure_from_ns();
            while sequence < count
                && sequence < due
                && (qos == QoS::AtMostOnce || inflight.len() < plan.publisher_inflight)
                && flow.window_open()
            {
                let sent_ns = unix_ns();
                Stamp {
                    run: flow.run,
                    publisher: job.index,
                    sequence,
                    sent_ns,
                }
                .write(&mut payload);
                let id = if qos == QoS::AtMostOnce {
                    None
                } else {
                    packet_id = packet_id.checked_add(1).unwrap_or(1);
                    PacketId::new(packet_id)
                };
                if let Some(id) = id {
                    inflight.push_back((id, sent_ns));
                }
                client.queue_publish(&job.topic, qos, id, &payload);
                flow.sent.fetch_add(1, Ordering::Relaxed);
                flow.progress.published.fetch_add(1, Ordering::Relaxed);
                sequence += 1;
                last_ns = sent_ns;
                if sent_ns >= measure_from {
                    measured += 1;
                }
                // Keep each write to a reasonable size.
                if sequence.is_multiple_of(256) {
                    break;
                }
            }
        }
        client.flush().await?;
        let finished_publishing = finished_publishing || sequence >= count;
        if finished_publishing && inflight.is_empty() {
            return Ok(Published {
                sent: sequence,
                measured,
                packets: client.packets_sent + client.packets_received,
                bytes: client.bytes_sent + client.bytes_received,
                last_ns,
                ack_latency,
            });
        }
        let can_send_more = !finished_publishing
            && sequence < count
            && (qos == QoS::AtMostOnce || inflight.len() < plan.publisher_inflight);
        let blocked_by_window = can_send_more && !flow.window_open();
        let next_due = match per_publisher_rate {
            Some(rate) if can_send_more && sequence >= due => {
                Some(started + Duration::from_secs_f64(sequence as f64 / rate))
            }
            _ => None,
        };
        let ready_now = can_send_more && !blocked_by_window && next_due.is_none();
        if ready_now {
            tokio::task::yield_now().await;
            read_acks(
                &mut client,
                &mut inflight,
                &mut ack_latency,
                flow.measure_from_ns(),
            )?;
            continue;
        }
        tokio::select! {
            read = client.read_some() => {
                read?;
                read_acks(&mut client, &mut inflight, &mut ack_latency, flow.measure_from_ns())?;
            }
            _ = &mut woken, if blocked_by_window => {}
            _ = tokio::time::sleep(plan.stall), if blocked_by_window => flow.forgive(),
            _ = tokio::time::sleep_until(next_due.unwrap_or(started)), if next_due.is_some() => {}
            _ = tokio::time::sleep_until(end_at.unwrap_or(started)), if end_at.is_some() && !finished_publishing => {}
            _ = flow.stop.cancelled(), if !finished_publishing => {}
            // Acknowledgements that never come are given up on.
            _ = tokio::time::sleep(plan.stall * 10), if finished_publishing => inflight.clear(),
        }
    }
}

/// Handles what arrived on a publisher: acknowledgements and the QoS 2 flow.
fn read_acks(
    client: &mut LoadClient,
    inflight: &mut VecDeque<(PacketId, u64)>,
    ack_latency: &mut Histogram<u64>,
    measure_from: u64,
) -> io::Result<()> {
    while let Some(incoming) = client.next_incoming()? {
        client.answer_incoming(&incoming);
        let id = match incoming {
            Incoming::PubAck(id) | Incoming::PubComp(id) => id,
            // A refused QoS 2 message (5.0 PUBREC with an error) ends its flow there.
            Incoming::Other(crate::protocol::Packet::PubRec(ack)) if ack.reason.is_error() => {
                ack.packet_id
            }
            _ => continue,
        };
        if let Some(at) = inflight.iter().position(|(pid, _)| *pid == id) {
            let (_, sent_ns) = inflight.remove(at).unwrap_or((id, 0));
            if sent_ns >= measure_from {
                let micros = unix_ns().saturating_sub(sent_ns) / 1000;
                record_latency(ack_latency, micros);
            }
        }
    }
    Ok(())
}

struct Subscribed {
    tracker: Tracker,
    packets: u64,
    bytes: u64,
    last_ns: u64,
    closed: bool,
}

/// One subscriber: receives until publishing is over and nothing more comes within
/// `stall`, until `limit` messages (subscribe-only runs), until cancelled with
/// nothing left, or until the broker closes the connection.
async fn subscribe(
    mut client: LoadClient,
    flow: Arc<Flow>,
    limit: Option<u64>,
    stall: Duration,
) -> io::Result<Subscribed> {
    let own_run_only = flow.fanout > 0.0;
    let mut tracker = Tracker::new(flow.run);
    let mut last_ns = 0;
    let mut closed = false;
    // QoS 2 deliveries answered with PUBREC and not yet released by PUBREL: the
    // exchange is finished before the subscriber leaves, so packets are all counted.
    let mut awaiting_release = 0usize;
    loop {
        // Registered before the checks below, so the end of publishing is not missed.
        let mut finished = pin!(flow.finished.notified());
        finished.as_mut().enable();
        if limit.is_some_and(|limit| tracker.delivered + tracker.foreign >= limit) {
            break;
        }
        let publishing_done = flow.publishing_done.load(Ordering::Acquire);
        if publishing_done && flow.publishers_sent_all_delivered() && awaiting_release == 0 {
            break;
        }
        // A subscribe-only run ends when it is stopped.
        if !own_run_only && flow.stop.is_cancelled() {
            break;
        }
        let quiet = if publishing_done {
            stall * 3
        } else {
            Duration::from_secs(24 * 3600)
        };
        tokio::select! {
            read = client.read_some() => match read {
                Ok(()) => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset) => {
                    closed = true;
                    flow.subscribers_left.fetch_sub(1, Ordering::AcqRel);
                    flow.forgive();
                    flow.wake.notify_waiters();
                    break;
                }
                Err(e) => return Err(e),
            },
            _ = tokio::time::sleep(quiet) => break,
            _ = &mut finished, if !publishing_done => continue,
            _ = flow.stop.cancelled(), if !own_run_only => break,
        }
        let before = tracker.delivered;
        let measure_from = flow.measure_from_ns();
        while let Some(incoming) = client.next_incoming_with(Stamp::read)? {
            client.answer_incoming(&incoming);
            match incoming {
                Incoming::Publish {
                    qos, data: stamp, ..
                } => {
                    if qos == QoS::ExactlyOnce {
                        awaiting_release += 1;
                    }
                    tracker.record(stamp, own_run_only, measure_from);
                }
                Incoming::PubRel(_) => awaiting_release = awaiting_release.saturating_sub(1),
                _ => {}
            }
        }
        client.flush().await?;
        let arrived = tracker.delivered - before;
        if arrived > 0 {
            last_ns = unix_ns();
            flow.delivered.fetch_add(arrived, Ordering::Relaxed);
            flow.progress
                .delivered
                .fetch_add(arrived, Ordering::Relaxed);
            flow.wake.notify_waiters();
        }
    }
    Ok(Subscribed {
        tracker,
        packets: client.packets_sent + client.packets_received,
        bytes: client.bytes_sent + client.bytes_received,
        last_ns,
        closed,
    })
}

impl Flow {
    /// After publishing: every published message reached every subscriber it was
    /// due to (or was given up on).
    fn publishers_sent_all_delivered(&self) -> bool {
        self.fanout > 0.0 && self.outstanding() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_expand() {
        assert_eq!(expand("t/%i/%c", 4, "rbench-pub-4"), "t/4/rbench-pub-4");
    }

    #[test]
    fn fanout_follows_the_filters() {
        let addr = "127.0.0.1:1".parse().expect("address");
        let mut plan = Plan::new(vec![addr], 2, 3, QoS::AtMostOnce, Until::Count(1));
        plan.topic = "t/%i".into();
        plan.filter = "t/%i".into();
        assert_eq!(fanouts(&plan), vec![1, 1], "pairs");
        plan.filter = "t/#".into();
        assert_eq!(fanouts(&plan), vec![3, 3], "fan-out to every subscriber");
        plan.filter = "$share/g/t/#".into();
        assert_eq!(fanouts(&plan), vec![1, 1], "one member of the group");
    }
}
