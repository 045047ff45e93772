//! The QoS comparison, `rbench`'s default: the same one publisher → one subscriber
//! workload at QoS 0, 1 and 2, so the cost of each level is measured, not assumed.
//!
//! Each level runs two phases: latency with one message in flight (what a message
//! costs, without queueing), then closed-loop throughput (delivered messages per
//! second, packets and bytes on the wire per message on each leg, loss, duplicates,
//! order).

pub use super::stats::Percentiles;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::client::ConnectOptions;
use super::load::{self, Pace, Plan, Progress, Until};
use super::scenario::run_latency;
use crate::protocol::QoS;

/// A QoS comparison.
#[derive(Debug, Clone)]
pub struct QosPlan {
    pub host: SocketAddr,
    pub options: ConnectOptions,
    /// Messages per level in the throughput phase.
    pub messages: u64,
    /// Messages per level in the latency phase.
    pub latency_messages: u64,
    pub payload: usize,
    pub levels: Vec<QoS>,
}

/// Packets and bytes per delivered message on one side of the broker.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Leg {
    pub packets_per_msg: f64,
    pub bytes_per_msg: f64,
}

/// What one QoS level measured.
#[derive(Debug, Clone)]
pub struct QosResult {
    pub qos: QoS,
    /// Messages published in the throughput phase.
    pub messages: u64,
    pub delivered: u64,
    pub msgs_per_sec: f64,
    /// One message in flight, publish to delivery.
    pub latency: Percentiles,
    /// One message in flight, publish to PUBACK / PUBCOMP (QoS 1 and 2).
    pub ack_latency: Percentiles,
    pub publisher: Leg,
    pub subscriber: Leg,
    pub lost: u64,
    pub duplicated: u64,
    pub out_of_order: u64,
    /// CPU µs per delivered message, measured over the throughput phase.
    pub rbench_cpu_us_per_msg: Option<f64>,
    pub broker_cpu_us_per_msg: Option<f64>,
    pub stopped_early: bool,
}

impl QosResult {
    pub fn packets_per_msg(&self) -> f64 {
        self.publisher.packets_per_msg + self.subscriber.packets_per_msg
    }

    pub fn bytes_per_msg(&self) -> f64 {
        self.publisher.bytes_per_msg + self.subscriber.bytes_per_msg
    }
}

/// CPU time used so far by rbench itself and, when known, by the broker.
pub trait CpuMeter {
    fn sample(&self) -> (Duration, Option<Duration>);
}

/// Runs the comparison level by level; `on_level` is told when each level starts,
/// with the progress counters of its throughput phase. Levels finished before `stop`
/// is cancelled are returned, and the level under way with what it measured.
pub async fn compare(
    plan: &QosPlan,
    cpu: &dyn CpuMeter,
    stop: &CancellationToken,
    mut on_level: impl FnMut(QoS, Arc<Progress>),
) -> io::Result<Vec<QosResult>> {
    let mut results = Vec::new();
    for &qos in &plan.levels {
        if stop.is_cancelled() {
            break;
        }
        let progress = Arc::new(Progress::default());
        progress
            .expected
            .store(plan.messages, std::sync::atomic::Ordering::Relaxed);
        on_level(qos, Arc::clone(&progress));
        let latency = run_latency(
            plan.host,
            &plan.options,
            qos,
            plan.latency_messages,
            plan.payload,
            stop,
        )
        .await?;
        let mut load_plan = Plan::new(vec![plan.host], 1, 1, qos, Until::Count(plan.messages));
        load_plan.options = plan.options.clone();
        load_plan.payload = plan.payload.max(super::stamp::STAMP_LEN);
        load_plan.topic = format!("rbench/qos/{}", qos as u8);
        load_plan.filter = load_plan.topic.clone();
        load_plan.pace = Pace::Window(500);
        let before = cpu.sample();
        let run = load::run(&load_plan, progress, stop.clone()).await?;
        let after = cpu.sample();
        let delivered = run.delivered.max(1) as f64;
        let per_message = |before: Duration, after: Duration| {
            after.saturating_sub(before).as_secs_f64() * 1e6 / delivered
        };
        results.push(QosResult {
            qos,
            messages: run.published,
            delivered: run.delivered,
            msgs_per_sec: run.deliveries_per_second(),
            latency: Percentiles::of(&latency.end_to_end),
            ack_latency: Percentiles::of(&latency.acknowledged),
            publisher: Leg {
                packets_per_msg: run.publisher_packets as f64 / delivered,
                bytes_per_msg: run.publisher_bytes as f64 / delivered,
            },
            subscriber: Leg {
                packets_per_msg: run.subscriber_packets as f64 / delivered,
                bytes_per_msg: run.subscriber_bytes as f64 / delivered,
            },
            lost: run.lost(),
            duplicated: run.duplicates,
            out_of_order: run.out_of_order,
            rbench_cpu_us_per_msg: Some(per_message(before.0, after.0)),
            broker_cpu_us_per_msg: before.1.zip(after.1).map(|(b, a)| per_message(b, a)),
            stopped_early: run.stopped_early || stop.is_cancelled(),
        });
    }
    Ok(results)
}
