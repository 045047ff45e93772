//! The password-file parser (mosquitto's `$7$` and `$6$` lines): a file or an
//! error naming its line, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqttkit::broker::auth::password::PasswordFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = PasswordFile::parse(text);
    }
});
