//! The client side shared by rsub and rpub (and TLS for rbench):
//!
//! * [`connection`]: one MQTT connection on the project's codec, every version
//! * [`trace`]: `-d` lines in libmosquitto's wording, and the shared stdout
//! * [`tls`]: a rustls client configuration from mosquitto-style options

pub mod connection;
pub mod endpoint;
pub mod format;
pub mod properties;
pub mod tls;
pub mod trace;
