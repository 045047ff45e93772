//! `rbroker`: an MQTT broker that starts and behaves like mosquitto.
use std::process::ExitCode;

/// Counts the heap for `memory_limit`; idle (one load per allocation) without it.
#[global_allocator]
static ALLOCATOR: mqttkit::broker::memory::CountingAllocator =
    mqttkit::broker::memory::CountingAllocator;

fn main() -> ExitCode {
    mqttkit::cli::rbroker::main()
}
