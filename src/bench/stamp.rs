//! The stamp at the front of every rbench payload: which run and publisher sent
//! a message, its number and its send time. It is what makes loss, duplicates,
//! order and end-to-end latency exact, even across rbench processes; the wire
//! client never looks at it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Bytes of the stamp at the front of each payload; shorter payloads carry none.
pub const STAMP_LEN: usize = 24;

/// Which run and publisher sent a message, its number, and when (Unix time in ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub run: u32,
    pub publisher: u32,
    pub sequence: u64,
    pub sent_ns: u64,
}

impl Stamp {
    pub fn write(&self, payload: &mut [u8]) {
        if payload.len() < STAMP_LEN {
            return;
        }
        payload[..4].copy_from_slice(&self.run.to_be_bytes());
        payload[4..8].copy_from_slice(&self.publisher.to_be_bytes());
        payload[8..16].copy_from_slice(&self.sequence.to_be_bytes());
        payload[16..24].copy_from_slice(&self.sent_ns.to_be_bytes());
    }

    pub fn read(payload: &[u8]) -> Option<Stamp> {
        let field = |range: std::ops::Range<usize>| payload.get(range);
        Some(Stamp {
            run: u32::from_be_bytes(field(0..4)?.try_into().ok()?),
            publisher: u32::from_be_bytes(field(4..8)?.try_into().ok()?),
            sequence: u64::from_be_bytes(field(8..16)?.try_into().ok()?),
            sent_ns: u64::from_be_bytes(field(16..24)?.try_into().ok()?),
        })
    }
}

/// Nanoseconds since the Unix epoch: comparable across processes on one machine.
pub fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_need_24_bytes() {
        let stamp = Stamp {
            run: 7,
            publisher: 3,
            sequence: 1 << 40,
            sent_ns: 123_456_789,
        };
        let mut payload = [0u8; 64];
        stamp.write(&mut payload);
        assert_eq!(Stamp::read(&payload), Some(stamp));
        assert_eq!(Stamp::read(&payload[..23]), None);
    }
}
