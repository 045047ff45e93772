//! What rbench computes from what it measured: latency histograms and their
//! percentiles, and per-subscriber accounting of deliveries (loss, duplicates,
//! order, latency) from the stamps.

use std::collections::HashMap;

use hdrhistogram::Histogram;

use super::stamp::{Stamp, unix_ns};

/// Sequence numbers a subscriber tracks per publisher (a 32 MiB bitmap at most);
/// a stamp beyond is counted as foreign.
const MAX_TRACKED_SEQUENCE: u64 = 1 << 28;

/// A latency histogram in microseconds, 1 µs to 1 minute, 3 significant digits.
/// Record into it with [`record_latency`].
#[allow(clippy::expect_used)]
pub fn latency_histogram() -> Histogram<u64> {
    // Constant bounds that satisfy `new_with_bounds` (low >= 1, high >= 2 * low,
    // 3 significant digits is within 0..=5), so this cannot fail.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid constant histogram bounds")
}

/// Records a latency of `micros`: below 1 µs counts as 1, and beyond the
/// histogram's range as its highest value, so no sample is silently left out.
pub fn record_latency(histogram: &mut Histogram<u64>, micros: u64) {
    histogram.saturating_record(micros.max(1));
}

/// Percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            p50: histogram.value_at_quantile(0.5),
            p90: histogram.value_at_quantile(0.9),
            p99: histogram.value_at_quantile(0.99),
            max: histogram.max(),
        }
    }
}

/// What one publisher stream looked like to one subscriber.
#[derive(Default)]
pub(crate) struct Stream {
    /// Bit per sequence number seen.
    seen: Vec<u64>,
    next_expected: u64,
    highest: Option<u64>,
    distinct: u64,
}

impl Stream {
    /// Marks `sequence`; false if it was seen before.
    fn mark(&mut self, sequence: u64) -> bool {
        let word = (sequence / 64) as usize;
        if word >= self.seen.len() {
            self.seen.resize(word + 1, 0);
        }
        let bit = 1u64 << (sequence % 64);
        if self.seen[word] & bit != 0 {
            return false;
        }
        self.seen[word] |= bit;
        self.distinct += 1;
        self.highest = Some(self.highest.map_or(sequence, |h| h.max(sequence)));
        true
    }
}

/// Per-subscriber accounting of what arrived.
pub(crate) struct Tracker {
    run: u32,
    streams: HashMap<(u32, u32), Stream>,
    pub delivered: u64,
    pub measured: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub foreign: u64,
    pub latency: Histogram<u64>,
}

impl Tracker {
    pub fn new(run: u32) -> Self {
        Tracker {
            run,
            streams: HashMap::new(),
            delivered: 0,
            measured: 0,
            duplicates: 0,
            out_of_order: 0,
            foreign: 0,
            latency: latency_histogram(),
        }
    }

    /// Records a delivery; `own_run_only` ignores stamps from other runs.
    pub fn record(&mut self, stamp: Option<Stamp>, own_run_only: bool, measure_from: u64) {
        let Some(stamp) = stamp else {
            self.foreign += 1;
            return;
        };
        // Another run's messages, when only this run's count; and a sequence beyond
        // what one publisher sends (a payload that only looks stamped), which would
        // otherwise size the seen-bitmap from untrusted bytes.
        if (own_run_only && stamp.run != self.run) || stamp.sequence >= MAX_TRACKED_SEQUENCE {
            self.foreign += 1;
            return;
        }
        let stream = self
            .streams
            .entry((stamp.run, stamp.publisher))
            .or_default();
        if !stream.mark(stamp.sequence) {
            self.duplicates += 1;
            return;
        }
        self.delivered += 1;
        if stamp.sequence < stream.next_expected {
            self.out_of_order += 1;
        } else {
            stream.next_expected = stamp.sequence + 1;
        }
        if stamp.sent_ns >= measure_from {
            self.measured += 1;
            let micros = unix_ns().saturating_sub(stamp.sent_ns) / 1000;
            record_latency(&mut self.latency, micros);
        }
    }

    /// Sequence numbers missing below the highest seen, over every stream.
    pub fn gaps(&self) -> u64 {
        self.streams
            .values()
            .map(|s| s.highest.map_or(0, |h| h + 1 - s.distinct))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_beyond_the_range_are_recorded_saturated() {
        let mut histogram = latency_histogram();
        record_latency(&mut histogram, 0);
        record_latency(&mut histogram, 10 * 60 * 1_000_000);
        assert_eq!(histogram.len(), 2);
        assert_eq!(histogram.min(), 1);
        assert!(histogram.max() >= 59_000_000, "{}", histogram.max());
    }

    #[test]
    fn tracker_counts_duplicates_reordering_and_gaps() {
        let mut tracker = Tracker::new(9);
        let publish = |sequence: u64| {
            Some(Stamp {
                run: 9,
                publisher: 0,
                sequence,
                sent_ns: 0,
            })
        };
        for sequence in [0, 2, 1, 2, 5] {
            tracker.record(publish(sequence), true, 0);
        }
        assert_eq!(
            (tracker.delivered, tracker.duplicates, tracker.out_of_order),
            (4, 1, 1)
        );
        assert_eq!(tracker.gaps(), 2, "3 and 4 are missing");
        tracker.record(None, true, 0);
        assert_eq!(tracker.foreign, 1, "a payload without a stamp");
        // Bytes that look like a stamp from another rbench, with a sequence no
        // publisher reaches: not tracked (no bitmap sized from them).
        tracker.record(
            Some(Stamp {
                run: 1,
                publisher: 0,
                sequence: u64::MAX,
                sent_ns: 0,
            }),
            false,
            0,
        );
        assert_eq!(tracker.foreign, 2);
    }
}
