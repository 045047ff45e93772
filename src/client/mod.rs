//! The client side shared by rsub and rpub (and TLS for rbench):
//!
//! * [`engine`]: the protocol rules both clients follow (CONNACK, QoS replies)
//! * [`connection`]: one MQTT connection on the project's codec, every version
//! * [`endpoint`]: dialing TCP, TLS, a unix socket or WebSockets, for rbench too
//! * [`format`](mod@format): how rsub prints a message (`-v`, `-F`, `%j`, `--json`)
//! * [`properties`]: `-D` MQTT 5 properties with mosquitto's checks
//! * [`trace`]: `-d` lines in libmosquitto's wording, and the shared stdout
//! * [`tls`]: a rustls client configuration from mosquitto-style options
//! * [`websocket`]: the WebSocket upgrade and MQTT in binary frames (`ws://`, `wss://`)

pub mod connection;
pub mod endpoint;
pub mod engine;
pub mod format;
pub mod properties;
pub mod tls;
pub mod trace;
pub mod websocket;
