//! Client-side connection settings shared by the binaries that connect to brokers.
//!
//! * [`tls`]: a rustls client configuration from mosquitto-style options

pub mod tls;
