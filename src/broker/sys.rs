//! `$SYS/broker/...`: the broker's figures as retained messages, under mosquitto's
//! topic names, refreshed every `sys_interval` seconds and published only when a
//! value changed (`version` once at start).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::message::Message;
use super::router::Router;
use super::stats::Stats;
use crate::protocol::{QoS, TopicName};

/// The version string published on `$SYS/broker/version`.
pub fn version_string() -> String {
    format!("rbroker version {}", env!("CARGO_PKG_VERSION"))
}

/// Exponentially damped per-minute rates over 1, 5 and 15 minutes, as mosquitto
/// computes its `load/...` topics.
#[derive(Debug, Default, Clone, Copy)]
struct Load {
    previous: u64,
    averages: [f64; 3],
}

const PERIODS: [(f64, &str); 3] = [(60.0, "1min"), (300.0, "5min"), (900.0, "15min")];

impl Load {
    fn update(&mut self, total: u64, interval: f64) {
        let per_minute = total.saturating_sub(self.previous) as f64 * 60.0 / interval;
        self.previous = total;
        for (average, (period, _)) in self.averages.iter_mut().zip(PERIODS) {
            let decay = (-interval / period).exp();
            *average = per_minute + decay * (*average - per_minute);
        }
    }
}

struct SysTree {
    start: Instant,
    last_values: HashMap<String, String>,
    loads: HashMap<&'static str, Load>,
    last_update: Instant,
}

impl SysTree {
    fn new() -> Self {
        let now = Instant::now();
        SysTree {
            start: now,
            last_values: HashMap::new(),
            loads: HashMap::new(),
            last_update: now,
        }
    }

    fn publish(&mut self, router: &Router, topic: &str, value: String) {
        if self.last_values.get(topic) == Some(&value) {
            return;
        }
        let Ok(name) = TopicName::new(topic) else {
            return;
        };
        self.last_values.insert(topic.to_string(), value.clone());
        router.publish(Arc::new(Message::new(
            name,
            Bytes::from(value),
            QoS::AtMostOnce,
            true,
        )));
    }

    fn update(&mut self, router: &Router) {
        let now = Instant::now();
        let interval = now.duration_since(self.last_update).as_secs_f64().max(1.0);
        self.last_update = now;
        let stats = &router.stats;
        router.purge_expired_retained();
        let snapshot = router.snapshot();
        let get = Stats::get;
        let connected = get(&stats.clients_connected) as usize;
        let disconnected = snapshot.sessions.saturating_sub(connected);
        let stored = snapshot.retained_count + snapshot.queued_messages;
        let values: Vec<(&str, String)> = vec![
            (
                "uptime",
                format!("{} seconds", self.start.elapsed().as_secs()),
            ),
            ("clients/total", snapshot.sessions.to_string()),
            ("clients/inactive", disconnected.to_string()),
            ("clients/disconnected", disconnected.to_string()),
            ("clients/active", connected.to_string()),
            ("clients/connected", connected.to_string()),
            ("clients/expired", get(&stats.sessions_expired).to_string()),
            ("clients/maximum", get(&stats.clients_maximum).to_string()),
            ("messages/stored", stored.to_string()),
            (
                "messages/received",
                get(&stats.packets_received).to_string(),
            ),
            ("messages/sent", get(&stats.packets_sent).to_string()),
            ("store/messages/count", stored.to_string()),
            ("store/messages/bytes", snapshot.retained_bytes.to_string()),
            ("subscriptions/count", snapshot.subscriptions.to_string()),
            ("shared_subscriptions/count", "0".to_string()),
            (
                "retained messages/count",
                snapshot.retained_count.to_string(),
            ),
            (
                "publish/messages/dropped",
                get(&stats.publish_dropped).to_string(),
            ),
            (
                "publish/messages/received",
                get(&stats.publish_received).to_string(),
            ),
            (
                "publish/messages/sent",
                get(&stats.publish_sent).to_string(),
            ),
            (
                "publish/bytes/received",
                get(&stats.publish_bytes_received).to_string(),
            ),
            (
                "publish/bytes/sent",
                get(&stats.publish_bytes_sent).to_string(),
            ),
            ("bytes/received", get(&stats.bytes_received).to_string()),
            ("bytes/sent", get(&stats.bytes_sent).to_string()),
        ];
        for (suffix, value) in values {
            self.publish(router, &format!("$SYS/broker/{suffix}"), value);
        }
        // rbroker's own: what each bridge carried (its state is on its
        // notification topic, as in mosquitto).
        for (name, bridge) in router.bridge_counters() {
            let figures = [
                ("sent", &bridge.sent),
                ("received", &bridge.received),
                ("dropped", &bridge.dropped),
            ];
            for (direction, counter) in figures {
                self.publish(
                    router,
                    &format!("$SYS/broker/bridge/{name}/messages/{direction}"),
                    get(counter).to_string(),
                );
            }
        }
        let counters: [(&'static str, &AtomicU64); 9] = [
            ("messages/received", &stats.packets_received),
            ("messages/sent", &stats.packets_sent),
            ("publish/dropped", &stats.publish_dropped),
            ("publish/received", &stats.publish_received),
            ("publish/sent", &stats.publish_sent),
            ("bytes/received", &stats.bytes_received),
            ("bytes/sent", &stats.bytes_sent),
            ("sockets", &stats.sockets_accepted),
            ("connections", &stats.connections_accepted),
        ];
        for (name, counter) in counters {
            let load = self.loads.entry(name).or_default();
            load.update(get(counter), interval);
            let load = *load;
            for (average, (_, period)) in load.averages.iter().zip(PERIODS) {
                self.publish(
                    router,
                    &format!("$SYS/broker/load/{name}/{period}"),
                    format!("{average:.2}"),
                );
            }
        }
    }
}

/// Publishes the log lines of `log_dest topic` until shutdown, as mosquitto does:
/// QoS 2, not retained, expiring after 20 seconds.
pub async fn publish_log_lines(
    mut lines: super::log::TopicLines,
    router: Arc<Router>,
    shutdown: CancellationToken,
) {
    loop {
        let (topic, line) = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = lines.recv() => match next {
                Some(next) => next,
                None => return,
            },
        };
        let Ok(name) = TopicName::new(topic) else {
            continue;
        };
        let mut message = Message::new(name, Bytes::from(line), QoS::ExactlyOnce, false);
        message
            .properties
            .push(crate::protocol::Property::MessageExpiryInterval(20));
        router.publish(Arc::new(message));
    }
}

/// Publishes `$SYS` every `sys_interval` seconds until shutdown.
pub async fn run(router: Arc<Router>, shutdown: CancellationToken) {
    let mut tree = SysTree::new();
    let interval = Duration::from_secs(router.config.sys_interval.max(1));
    tree.publish(&router, "$SYS/broker/version", version_string());
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => tree.update(&router),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_converges_to_the_rate_per_minute() {
        let mut load = Load::default();
        let mut total = 0;
        // 10,000 s: over ten 15-minute periods.
        for _ in 0..1000 {
            total += 100;
            load.update(total, 10.0);
        }
        // 100 per 10 s is 600 per minute.
        assert!(
            (load.averages[0] - 600.0).abs() < 0.01,
            "{:?}",
            load.averages
        );
        assert!(
            (load.averages[2] - 600.0).abs() < 1.0,
            "{:?}",
            load.averages
        );
    }
}
