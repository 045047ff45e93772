//! Load generation and measurement, shared by the broker comparison benchmark and
//! (later) `rbench`.
//!
//! * [`client`]: [`client::LoadClient`], a lean client on the project's codec
//! * [`scenario`]: closed-loop throughput, one-in-flight latency, idle connections
//! * [`process`]: a broker process's CPU time and RSS; pinning to CPUs

pub mod client;
pub mod process;
pub mod scenario;
