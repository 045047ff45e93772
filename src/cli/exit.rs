//! How the four binaries end: every exit status they use, named, with the
//! program each is mosquitto's for, and the one place an error at a binary's edge
//! is printed ([`fail`], an `anyhow` error with its context). Errors mosquitto
//! words itself (usage, configuration, connection) are printed in its words where
//! they are found and end with the typed status here. A refused connection's
//! status is the CONNACK or reason code itself, as mosquitto_sub and
//! mosquitto_pub return it.

use std::process::ExitCode;

/// Done.
pub const SUCCESS: u8 = 0;
/// Any failure without a status of its own; mosquitto_sub and mosquitto_pub also
/// end a usage error with it.
pub const FAILURE: u8 = 1;
/// rbench's usage error (clap's convention), and `rbroker passwd`'s password
/// mismatch (mosquitto_passwd's).
pub const USAGE_OR_MISMATCH: u8 = 2;
/// mosquitto_sub/pub: the broker broke the protocol.
pub const PROTOCOL_ERROR: u8 = 2;
/// rbroker: a usage or configuration error, as mosquitto.
pub const BROKER_USAGE: u8 = 3;
/// mosquitto_sub/pub: the connection was lost.
pub const CONNECTION_LOST: u8 = 7;
/// mosquitto_sub/pub: a TLS error.
pub const TLS_ERROR: u8 = 8;
/// rbroker: a password or ACL file that cannot be opened, as mosquitto.
pub const UNREADABLE_FILE: u8 = 13;
/// mosquitto_sub `-W`: the timeout passed.
pub const TIMED_OUT: u8 = 27;
/// mosquitto_sub/pub: interrupted before the connection was made.
pub const INTERRUPTED_BEFORE_CONNECTING: u8 = 255;

/// The edge of a binary: prints `program: error` (with its causes) and returns
/// the failure status.
pub fn fail(program: &str, error: &anyhow::Error) -> ExitCode {
    eprintln!("{program}: {error:#}");
    ExitCode::from(FAILURE)
}
