//! `rbroker`: an MQTT broker that starts and behaves like mosquitto.
use std::process::ExitCode;

fn main() -> ExitCode {
    mqttkit::cli::rbroker::main()
}
