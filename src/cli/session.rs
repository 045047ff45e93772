//! The life of an rsub or rpub process: parsing the command line (defaults file
//! first) with mosquitto's usage errors, running the plan on a current-thread
//! runtime, connecting, and reporting a failure as mosquitto's tools do: the
//! same first line on stderr and the same exit status.

use super::exit;
use std::ffi::OsString;
use std::future::Future;
use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches};
use tokio::signal::unix::{SignalKind, signal};

use super::mosquitto::{
    Settings, Tool, UsageError, clap_error_message, defaults_file_args, strerror,
};
use crate::client::connection::{ClientError, Connection};
use crate::client::endpoint::DialError;
use crate::client::trace::Trace;
use crate::protocol::{ConnAck, Connect, ReasonCode};

/// A tool's `main`: parse, make the plan (a usage error ends it with status
/// 1), then run the plan to its exit status.
pub fn main<A, P, F>(
    tool: Tool,
    plan: impl FnOnce(&A, &ArgMatches) -> Result<P, UsageError>,
    run: impl FnOnce(P) -> F,
) -> ExitCode
where
    A: CommandFactory + FromArgMatches,
    F: Future<Output = u8>,
{
    let (args, matches) = match parse::<A>(tool) {
        Ok(parsed) => parsed,
        Err(code) => return code,
    };
    let plan = match plan(&args, &matches) {
        Ok(plan) => plan,
        Err(UsageError(message)) => return usage_error(tool, &message),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let error = anyhow::Error::from(error).context("cannot start the runtime");
            return exit::fail(tool.name(), &error);
        }
    };
    ExitCode::from(runtime.block_on(run(plan)))
}

/// Parses the command line for `tool` (defaults file first), printing help,
/// version or mosquitto's error and returning the exit status when it ends there.
pub fn parse<A: CommandFactory + FromArgMatches>(tool: Tool) -> Result<(A, ArgMatches), ExitCode> {
    let mut argv: Vec<OsString> = std::env::args_os().take(1).collect();
    argv.extend(defaults_file_args(tool));
    argv.extend(std::env::args_os().skip(1));
    let matches = match A::command().try_get_matches_from(argv) {
        Ok(matches) => matches,
        Err(error) => {
            use clap::error::ErrorKind;
            return Err(match error.kind() {
                // mosquitto prints usage and version on stdout and exits 1.
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
                    print!("{}", error.render());
                    ExitCode::from(exit::FAILURE)
                }
                _ => usage_error(tool, &clap_error_message(&error)),
            });
        }
    };
    match A::from_arg_matches(&matches) {
        Ok(args) => Ok((args, matches)),
        Err(error) => Err(usage_error(tool, &clap_error_message(&error))),
    }
}

/// Prints a usage error the way mosquitto does, with the hint, and exits 1.
pub fn usage_error(tool: Tool, message: &str) -> ExitCode {
    eprintln!("{message}");
    eprintln!("Use '{} --help' to see usage.", tool.name());
    ExitCode::from(exit::FAILURE)
}

/// Why a connection attempt failed.
#[derive(Debug)]
pub enum Failure {
    Dial(DialError),
    Client(ClientError),
}

/// Dials and completes the CONNECT handshake.
pub async fn open(
    settings: &Settings,
    connect: &Connect,
    trace: Trace,
) -> Result<(Connection, ConnAck), Failure> {
    let stream = settings.dialer.dial().await.map_err(Failure::Dial)?;
    Connection::handshake(stream, connect, settings.max_inflight, trace)
        .await
        .map_err(Failure::Client)
}

/// Prints what mosquitto prints for a failed first connection (unless `quiet`)
/// and returns its exit status.
pub fn report(failure: &Failure, tool: Tool, connect: &Connect, quiet: bool) -> u8 {
    let mut lines: Vec<String> = Vec::new();
    let status = match failure {
        Failure::Dial(DialError::Lookup) => {
            lines.push("Unable to connect (Lookup error.).".into());
            exit::FAILURE
        }
        Failure::Dial(DialError::Io(error)) => {
            lines.push(format!("Error: {}", strerror(error)));
            exit::FAILURE
        }
        Failure::Dial(DialError::Tls(error)) | Failure::Client(ClientError::Io(error))
            if is_tls(error) =>
        {
            lines.push("Error: A TLS error occurred.".into());
            lines.push(format!("{}: {error}", tool.name()));
            exit::TLS_ERROR
        }
        Failure::Dial(DialError::Tls(_)) => {
            lines.push("Error: A TLS error occurred.".into());
            exit::TLS_ERROR
        }
        Failure::Client(ClientError::Refused(code)) => refused(*code, tool, connect, &mut lines),
        Failure::Client(ClientError::Disconnected(reason)) => {
            lines.push(format!("Error: {}", reason.name()));
            *reason as u8
        }
        Failure::Client(ClientError::Protocol(text)) => {
            lines.push(
                "Error: A network protocol error occurred when communicating with the broker."
                    .into(),
            );
            lines.push(format!("{}: {text}", tool.name()));
            exit::PROTOCOL_ERROR
        }
        Failure::Client(_) => {
            lines.push("Error: The connection was lost.".into());
            exit::CONNECTION_LOST
        }
    };
    if !quiet {
        for line in lines {
            eprintln!("{line}");
        }
    }
    status
}

fn is_tls(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
}

/// The CONNACK refusal lines and the exit status (the return or reason code).
fn refused(code: ReasonCode, tool: Tool, connect: &Connect, lines: &mut Vec<String>) -> u8 {
    let value = code as u8;
    if connect.version.is_v5() {
        if code == ReasonCode::UnsupportedProtocolVersion {
            lines.push(format!(
                "Connection error: {}. Try connecting to an MQTT v5 broker, or use MQTT v3.x mode.",
                code.name()
            ));
        } else {
            lines.push(format!("Connection error: {}", code.name()));
        }
        if tool == Tool::Pub {
            lines.push(
                "Error: A network protocol error occurred when communicating with the broker."
                    .into(),
            );
        }
    } else {
        let return_code = code.to_v3_connack();
        lines.push(format!(
            "Connection error: {}",
            ReasonCode::v3_connack_text(return_code)
        ));
        if tool == Tool::Pub {
            lines.push("Error: The connection was refused.".into());
        }
        return return_code;
    }
    value
}

/// SIGINT or SIGTERM, whichever comes first.
pub async fn interrupted() {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
