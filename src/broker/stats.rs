//! Broker-wide counters behind `$SYS/broker/...`.
//!
//! Connections add their counts once per read or write batch, not per packet, so the
//! shared cache lines are touched rarely even at high message rates.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Stats {
    /// Packets of any type received and sent (`messages/received`, `messages/sent`).
    pub packets_received: AtomicU64,
    pub packets_sent: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub publish_received: AtomicU64,
    pub publish_sent: AtomicU64,
    /// Messages lost for some client because its queue was full.
    pub publish_dropped: AtomicU64,
    pub publish_bytes_received: AtomicU64,
    pub publish_bytes_sent: AtomicU64,
    /// Clients with an open, accepted connection.
    pub clients_connected: AtomicU64,
    pub clients_maximum: AtomicU64,
    /// Sockets accepted (`load/sockets`) and CONNECTs accepted (`load/connections`).
    pub sockets_accepted: AtomicU64,
    pub connections_accepted: AtomicU64,
    /// Persistent sessions discarded because their expiry interval passed.
    pub sessions_expired: AtomicU64,
}

/// Counts one connection gathered since its last flush.
#[derive(Debug, Default, Clone, Copy)]
pub struct ConnectionCounts {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub publish_received: u64,
    pub publish_sent: u64,
    pub publish_bytes_received: u64,
    pub publish_bytes_sent: u64,
}

impl Stats {
    pub fn add(&self, counts: &mut ConnectionCounts) {
        let pairs = [
            (&self.packets_received, counts.packets_received),
            (&self.packets_sent, counts.packets_sent),
            (&self.bytes_received, counts.bytes_received),
            (&self.bytes_sent, counts.bytes_sent),
            (&self.publish_received, counts.publish_received),
            (&self.publish_sent, counts.publish_sent),
            (&self.publish_bytes_received, counts.publish_bytes_received),
            (&self.publish_bytes_sent, counts.publish_bytes_sent),
        ];
        for (counter, value) in pairs {
            if value > 0 {
                counter.fetch_add(value, Ordering::Relaxed);
            }
        }
        *counts = ConnectionCounts::default();
    }

    pub fn client_connected(&self) {
        let now = self.clients_connected.fetch_add(1, Ordering::Relaxed) + 1;
        self.clients_maximum.fetch_max(now, Ordering::Relaxed);
        self.connections_accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn client_disconnected(&self) {
        self.clients_connected.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

impl Stats {
    /// The lifetime counters the store keeps across restarts, in the order of
    /// [`Totals::fields`](super::store::format::Totals::fields).
    fn lifetime_counters(&self) -> [&AtomicU64; 12] {
        [
            &self.packets_received,
            &self.packets_sent,
            &self.bytes_received,
            &self.bytes_sent,
            &self.publish_received,
            &self.publish_sent,
            &self.publish_dropped,
            &self.publish_bytes_received,
            &self.publish_bytes_sent,
            &self.connections_accepted,
            &self.sockets_accepted,
            &self.sessions_expired,
        ]
    }

    /// The lifetime counters now, for the store.
    pub fn totals(&self) -> super::store::format::Totals {
        super::store::format::Totals::from_fields(
            self.lifetime_counters()
                .map(|counter| counter.load(Ordering::Relaxed)),
        )
    }

    /// Continues the lifetime counters from what the store kept.
    pub fn restore_totals(&self, totals: &super::store::format::Totals) {
        for (counter, value) in self.lifetime_counters().into_iter().zip(totals.fields()) {
            counter.store(value, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_totals_restore_into_the_counters_they_came_from() {
        let before = Stats::default();
        for (n, counter) in before.lifetime_counters().into_iter().enumerate() {
            counter.store(n as u64 + 1, Ordering::Relaxed);
        }
        let totals = before.totals();
        assert_eq!(totals.publish_dropped, 7);
        let after = Stats::default();
        after.restore_totals(&totals);
        assert_eq!(after.totals(), totals);
        assert_eq!(Stats::get(&after.sessions_expired), 12);
    }
}
