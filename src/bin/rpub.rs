//! `rpub`: publish, as mosquitto_pub. See [`mqttkit::cli::rpub`].

fn main() -> std::process::ExitCode {
    mqttkit::cli::rpub::main()
}
