//! The store file's reader (what rbroker reads back after a crash): any bytes
//! give a recovered image or an error naming the damage, never a panic. What it
//! recovers is self-consistent: written out again as a compacted file and read
//! back, it is the same state.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mqttkit::broker::store::format::{Clock, encode, header, put_frame};
use mqttkit::broker::store::recover::read_bytes;
use mqttkit::broker::{LogTypes, Logger};

/// The image as a compacted store file.
fn compact(image: &mqttkit::broker::store::image::Image) -> Vec<u8> {
    let mut body = Vec::new();
    let clock = Clock::now();
    image.snapshot(|record| encode(record, &mut body, &clock));
    let mut file = header().to_vec();
    if !body.is_empty() {
        put_frame(&mut file, &body);
    }
    file
}

fuzz_target!(|data: &[u8]| {
    let log = Logger::in_memory(LogTypes::ERROR);
    let path = Path::new("fuzz.db");
    // Raw bytes, and the same bytes behind a valid header (so the frames and
    // records are reached, not just the header check).
    let mut framed = header().to_vec();
    framed.extend_from_slice(data);
    for bytes in [data, framed.as_slice()] {
        let Ok((image, _)) = read_bytes(bytes, path, &log) else {
            continue;
        };
        // Compaction drops what nothing refers to and expired retained messages;
        // after that, writing and reading back changes nothing.
        let compacted = compact(&image);
        let (once, recovery) =
            read_bytes(&compacted, path, &log).expect("a compacted image reads back");
        assert_eq!(recovery.dropped_bytes, 0);
        let (twice, _) = read_bytes(&compact(&once), path, &log).expect("and again");
        assert_eq!(
            twice.counts(),
            once.counts(),
            "the same messages, retained and sessions"
        );
        assert_eq!(twice.totals, image.totals);
    }
});
