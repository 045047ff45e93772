//! mqttkit: an MQTT suite whose four binaries share this library:
//! * `rbroker`: an MQTT 3.1/3.1.1/5.0 broker that starts, configures (mosquitto.conf)
//!   and logs like mosquitto; `rbroker passwd` manages password files like
//!   mosquitto_passwd;
//! * `rsub` and `rpub`: drop-ins for mosquitto_sub and mosquitto_pub, same flags,
//!   output and exit statuses, plus JSON lines;
//! * `rbench`: the QoS 0/1/2 lesson by default, and connection and load modes
//!   (`conn`, `pub`, `sub`, `pubsub`) against its embedded broker or any other.
//!
//! # Layout
//! * [`protocol`]: the MQTT packet model for 3.1, 3.1.1 and 5.0; strict decoding,
//!   encoding, topic names and filters. Pure, no I/O.
//! * [`broker`]: the broker as a library: listeners, connections, sessions, the
//!   subscription index, retained messages, wills, `$SYS`, configuration and logging.
//!   `rbroker` is a thin main over [`broker::Broker`].
//! * [`cli`]: each binary's command line and the glue to the library.
//! * [`client`]: the client side of rsub and rpub (connection state machine,
//!   output formats, `-D` properties) and the dialer (TCP, TLS, unix sockets) that
//!   rbench's load client shares.
//! * [`bench`](mod@bench): load generation and measurement against any broker.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod bench;
pub mod broker;
pub mod cli;
pub mod client;
pub mod protocol;
