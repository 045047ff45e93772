//! rpub's `--json` line reader: a message or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqttkit::client::format::parse_json_line;

fuzz_target!(|data: &[u8]| {
    let _ = parse_json_line(data);
});
