//! The mosquitto.conf parser: any text is a configuration or an error naming the
//! file and line, never a panic. `include_dir` lines are left out, so the
//! target does not read the machine's files.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqttkit::broker::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.contains("include_dir") {
        return;
    }
    match Config::default().apply_text(text, "fuzz.conf") {
        Ok(_) => {}
        Err(error) => assert!(error.to_string().contains("fuzz.conf:"), "{error}"),
    }
});
