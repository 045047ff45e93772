//! `rbench`: the QoS lesson in one command, and a load tester for any MQTT broker.
use std::process::ExitCode;

/// Lets `rbench conn` report the embedded broker's heap per connection.
#[global_allocator]
static ALLOCATOR: mqttkit::bench::alloc::TrackingAllocator =
    mqttkit::bench::alloc::TrackingAllocator;

fn main() -> ExitCode {
    mqttkit::cli::rbench::main()
}
