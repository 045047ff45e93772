//! What the tests that run broker processes from config files share: the
//! loopback address of a port, config files mosquitto's own user can read, and
//! the brokers to run a scenario against.

use std::net::SocketAddr;
use std::path::Path;

use super::credentials::open_to_all;
use super::mosquitto::available;

pub const RBROKER: &str = env!("CARGO_BIN_EXE_rbroker");

/// 127.0.0.1:`port`.
pub fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Writes `text` as `name` in `dir`, readable by mosquitto's own user; its path.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    open_to_all(&path, 0o644);
    path.to_str().expect("utf-8").to_string()
}

/// The programs to compare: rbroker, and mosquitto when installed.
pub fn programs(test: &str) -> Vec<&'static str> {
    if available(test) {
        vec![RBROKER, "mosquitto"]
    } else {
        vec![RBROKER]
    }
}
