//! Connection load: open many connections at a given rate and keep them, measuring
//! connect latency (TCP connect to CONNACK) and counting failures by reason.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::client::{ConnectOptions, LoadClient};
use super::stats::{latency_histogram, record_latency};

/// A connection run.
#[derive(Debug, Clone)]
pub struct ConnPlan {
    /// Connection *i* goes to `hosts[i % hosts.len()]`.
    pub hosts: Vec<SocketAddr>,
    pub options: ConnectOptions,
    pub client_prefix: String,
    pub count: usize,
    /// New connections per second; `None` opens them as fast as `concurrency` allows.
    pub rate: Option<f64>,
    /// Connection attempts under way at once.
    pub concurrency: usize,
    /// Give up on one attempt after this long.
    pub timeout: Duration,
}

/// What a connection run measured; the connections stay open in `clients`.
pub struct ConnResult {
    pub attempted: u64,
    pub connected: u64,
    pub failures: BTreeMap<String, u64>,
    /// TCP connect to CONNACK, µs.
    pub latency: Histogram<u64>,
    /// First attempt to last answer.
    pub elapsed: Duration,
    pub clients: Vec<LoadClient>,
    pub stopped_early: bool,
}

impl ConnResult {
    pub fn connects_per_second(&self) -> f64 {
        if self.elapsed.is_zero() {
            0.0
        } else {
            self.connected as f64 / self.elapsed.as_secs_f64()
        }
    }
}

/// Opens `plan.count` connections; `progress` counts answered attempts.
pub async fn open_connections(
    plan: &ConnPlan,
    progress: Arc<AtomicU64>,
    stop: CancellationToken,
) -> ConnResult {
    let started = Instant::now();
    let mut result = ConnResult {
        attempted: 0,
        connected: 0,
        failures: BTreeMap::new(),
        latency: latency_histogram(),
        elapsed: Duration::ZERO,
        clients: Vec::with_capacity(plan.count),
        stopped_early: false,
    };
    if plan.hosts.is_empty() {
        result
            .failures
            .insert("no broker address".into(), plan.count as u64);
        return result;
    }
    let mut attempts = JoinSet::new();
    let mut next = 0usize;
    let concurrency = plan.concurrency.max(1);
    loop {
        while next < plan.count && attempts.len() < concurrency && !stop.is_cancelled() {
            if let Some(rate) = plan.rate {
                let due = started + Duration::from_secs_f64(next as f64 / rate.max(1e-3));
                if Instant::now() < due {
                    break;
                }
            }
            let addr = plan.hosts[next % plan.hosts.len()];
            let id = format!("{}-conn-{next}", plan.client_prefix);
            let options = plan.options.clone();
            let timeout = plan.timeout;
            attempts.spawn(async move {
                let begun = Instant::now();
                let outcome =
                    tokio::time::timeout(timeout, LoadClient::connect(addr, &id, &options)).await;
                (begun.elapsed(), outcome)
            });
            next += 1;
            result.attempted += 1;
        }
        if attempts.is_empty() && (next >= plan.count || stop.is_cancelled()) {
            break;
        }
        let next_due = plan
            .rate
            .filter(|_| next < plan.count && attempts.len() < concurrency)
            .map(|rate| started + Duration::from_secs_f64(next as f64 / rate.max(1e-3)));
        tokio::select! {
            joined = attempts.join_next(), if !attempts.is_empty() => {
                let Some(joined) = joined else { continue };
                progress.fetch_add(1, Ordering::Relaxed);
                match joined {
                    Ok((took, Ok(Ok(client)))) => {
                        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
                        record_latency(&mut result.latency, micros);
                        result.connected += 1;
                        result.clients.push(client);
                    }
                    Ok((_, Ok(Err(error)))) => *result.failures.entry(error.reason()).or_default() += 1,
                    Ok((_, Err(_))) => *result.failures.entry("timed out".into()).or_default() += 1,
                    Err(_) => *result.failures.entry("task failed".into()).or_default() += 1,
                }
            }
            _ = tokio::time::sleep_until(next_due.unwrap_or(started)), if next_due.is_some() => {}
            _ = stop.cancelled(), if !stop.is_cancelled() => {}
        }
    }
    result.elapsed = started.elapsed();
    result.stopped_early = stop.is_cancelled() && (result.attempted as usize) < plan.count;
    result
}
