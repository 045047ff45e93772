//! Command lines: each binary's clap definition and the glue from parsed arguments
//! to the library. Binaries in `src/bin/` only call into here.

pub mod args;
pub mod exit;
pub mod generate;
pub mod mosquitto;
pub mod passwd;
pub mod rbench;
pub mod rbroker;
pub mod rpub;
pub mod rsub;
pub mod session;

/// Developer diagnostics (`RUST_LOG=mqttkit=debug`), separate from the user-facing
/// log lines that mirror mosquitto's. Off unless asked for.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
