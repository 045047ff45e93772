//! Connecting for rsub and rpub, and reporting a failure as mosquitto's tools do:
//! the same first line on stderr and the same exit status.

use tokio::signal::unix::{SignalKind, signal};

use super::mosquitto::{Settings, Tool, strerror};
use crate::client::connection::{ClientError, Connection};
use crate::client::endpoint::DialError;
use crate::client::trace::Trace;
use crate::protocol::{ConnAck, Connect, ReasonCode};

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
            1
        }
        Failure::Dial(DialError::Io(error)) => {
            lines.push(format!("Error: {}", strerror(error)));
            1
        }
        Failure::Dial(DialError::Tls(error)) | Failure::Client(ClientError::Io(error))
            if is_tls(error) =>
        {
            lines.push("Error: A TLS error occurred.".into());
            lines.push(format!("{}: {error}", tool.name()));
            8
        }
        Failure::Dial(DialError::Tls(_)) => {
            lines.push("Error: A TLS error occurred.".into());
            8
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
            2
        }
        Failure::Client(_) => {
            lines.push("Error: The connection was lost.".into());
            7
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
