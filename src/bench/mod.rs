//! Load generation and measurement against any broker, for `rbench` and the broker
//! comparison benchmark.
//!
//! * [`client`]: [`client::LoadClient`], a lean client on the project's codec
//! * [`load`]: the load engine: publishers and subscribers, paced, with accounting
//! * [`scenario`]: one-in-flight latency
//! * [`conn`]: opening many connections at a rate
//! * [`process`]: CPU time and memory of a process or of some of its threads

pub mod client;
pub mod conn;
pub mod load;
pub mod process;
pub mod scenario;
