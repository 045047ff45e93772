//! mqttkit: an MQTT toolkit whose binaries (`rbroker`, `rbench`, and later `rsub` and
//! `rpub`) share this library.
//!
//! # Layout
//! * [`protocol`]: the MQTT packet model for 3.1, 3.1.1 and 5.0; strict decoding,
//!   encoding, topic names and filters. Pure, no I/O.
//! * [`broker`]: the broker as a library: listeners, connections, sessions, the
//!   subscription index, retained messages, wills, `$SYS`, configuration and logging.
//!   `rbroker` is a thin main over [`broker::Broker`].
//! * [`cli`]: each binary's command line and the glue to the library.
//! * [`client`]: client-side connection settings (TLS) shared by the binaries.
//! * [`bench`](mod@bench): load generation and measurement against any broker.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod bench;
pub mod broker;
pub mod cli;
pub mod client;
pub mod protocol;
