//! `rsub`: subscribe and print, as mosquitto_sub. See [`mqttkit::cli::rsub`].

fn main() -> std::process::ExitCode {
    mqttkit::cli::rsub::main()
}
