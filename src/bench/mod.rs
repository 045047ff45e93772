//! Load generation and measurement against any broker, for `rbench` and the broker
//! comparison benchmark.
//!
//! * [`client`]: [`client::LoadClient`], a lean client on the project's codec
//! * [`load`]: the load engine: publishers and subscribers, paced, with accounting
//! * [`qos`]: the QoS 0/1/2 comparison, rbench's default
//! * [`scenario`]: one-in-flight latency
//! * [`conn`]: opening many connections at a rate
//! * [`process`]: CPU time and memory of a process or of some of its threads
//! * [`embedded`]: rbroker inside rbench, with its CPU time kept apart
//! * [`alloc`]: heap accounting for the embedded broker

pub mod alloc;
pub mod client;
pub mod conn;
pub mod embedded;
pub mod load;
pub mod process;
pub mod qos;
pub mod report;
pub mod scenario;
pub mod stamp;
pub mod stats;
