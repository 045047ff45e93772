//! The broker's user-visible log: mosquitto's lines, word for word, prefixed with the
//! Unix time as `mosquitto -v` prints them (`1795322602: New connection from ...`).
//!
//! Course material quotes these lines, so each has one method here and tests check
//! them. Developer diagnostics go through `tracing` instead.
//!
//! Besides a stream and a file, lines can go to syslog (`log_dest syslog`, with
//! `log_facility`) and to `$SYS/broker/log/<type>` topics (`log_dest topic`), which
//! the broker publishes from a task fed by [`Logger::take_topic_lines`].

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use super::config::{LogDest, LogTypes};
use crate::protocol::{ProtocolVersion, Publish, PublishHeader, QoS};

/// Where lines go: a standard stream, nowhere, or memory (for tests).
#[derive(Debug, Clone)]
enum Sink {
    Stderr,
    Stdout,
    None,
    Memory(Arc<Mutex<Vec<String>>>),
}

/// How a line's time is written (`log_timestamp`, `log_timestamp_format`).
#[derive(Debug, Clone)]
enum Timestamp {
    /// mosquitto's default: Unix seconds.
    Unix,
    /// A strftime format, in local time (checked when the config was read).
    Format(Arc<str>),
    None,
}

/// A log file (`log_dest file`), reopened on SIGHUP so log rotation works.
#[derive(Debug)]
struct LogFile {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl LogFile {
    /// Opened for appending; created owner-only, as mosquitto does: the log holds
    /// client ids, usernames and addresses.
    fn open(path: &Path) -> std::io::Result<std::fs::File> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(path)
    }
}

/// Lines waiting to be published to `$SYS/broker/log/...` (`log_dest topic`).
#[derive(Debug)]
struct TopicLog {
    sender: tokio::sync::mpsc::Sender<(&'static str, String)>,
    receiver: Mutex<Option<TopicLines>>,
}

/// Log lines for `log_dest topic`: the topic each goes to, and the line.
pub type TopicLines = tokio::sync::mpsc::Receiver<(&'static str, String)>;

/// Lines that may wait for the publishing task before new ones are dropped.
const TOPIC_LOG_BACKLOG: usize = 4096;

/// The topic a line of `kind` is published to, as mosquitto names them; debug lines
/// are not published (each publish would log more of them).
fn log_topic(kind: LogTypes) -> Option<&'static str> {
    Some(match kind {
        LogTypes::ERROR => "$SYS/broker/log/E",
        LogTypes::WARNING => "$SYS/broker/log/W",
        LogTypes::NOTICE => "$SYS/broker/log/N",
        LogTypes::INFORMATION => "$SYS/broker/log/I",
        LogTypes::SUBSCRIBE => "$SYS/broker/log/M/subscribe",
        LogTypes::UNSUBSCRIBE => "$SYS/broker/log/M/unsubscribe",
        _ => return None,
    })
}

/// The syslog priority of a line of `kind`, as mosquitto maps them.
#[cfg(unix)]
fn syslog_priority(kind: LogTypes) -> libc::c_int {
    match kind {
        LogTypes::ERROR => libc::LOG_ERR,
        LogTypes::WARNING => libc::LOG_WARNING,
        LogTypes::INFORMATION => libc::LOG_INFO,
        LogTypes::DEBUG => libc::LOG_DEBUG,
        _ => libc::LOG_NOTICE,
    }
}

/// Writes mosquitto-format log lines of the enabled types.
#[derive(Debug, Clone)]
pub struct Logger {
    types: LogTypes,
    sink: Sink,
    connection_messages: bool,
    timestamp: Timestamp,
    file: Option<Arc<LogFile>>,
    topic: Option<Arc<TopicLog>>,
    syslog: bool,
}

impl Logger {
    pub fn new(types: LogTypes, dest: LogDest, connection_messages: bool) -> Self {
        let sink = match dest {
            LogDest::Stderr => Sink::Stderr,
            LogDest::Stdout => Sink::Stdout,
            LogDest::None => Sink::None,
        };
        Logger {
            types,
            sink,
            connection_messages,
            timestamp: Timestamp::Unix,
            file: None,
            topic: None,
            syslog: false,
        }
    }

    /// Also publishes every line but debug ones to `$SYS/broker/log/<type>`
    /// (`log_dest topic`), once the broker takes the lines with
    /// [`Logger::take_topic_lines`].
    pub fn with_topic(mut self) -> Self {
        let (sender, receiver) = tokio::sync::mpsc::channel(TOPIC_LOG_BACKLOG);
        self.topic = Some(Arc::new(TopicLog {
            sender,
            receiver: Mutex::new(Some(receiver)),
        }));
        self
    }

    /// The lines for `log_dest topic`, for the task that publishes them; `None`
    /// without that destination or once taken.
    pub fn take_topic_lines(&self) -> Option<TopicLines> {
        let topic = self.topic.as_ref()?;
        topic
            .receiver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Also sends every line to syslog (`log_dest syslog`), as `rbroker`, to the
    /// `daemon` facility or to `local0` to `local7` (`log_facility`).
    #[cfg(unix)]
    pub fn with_syslog(mut self, facility: Option<u8>) -> Self {
        let facility = match facility {
            None => libc::LOG_DAEMON,
            Some(n) => libc::LOG_LOCAL0 + (libc::c_int::from(n.min(7)) << 3),
        };
        // SAFETY: the identity is a static NUL-terminated string, as openlog keeps it.
        unsafe {
            libc::openlog(
                c"rbroker".as_ptr(),
                libc::LOG_PID | libc::LOG_CONS,
                facility,
            )
        };
        self.syslog = true;
        self
    }

    /// Also appends every line to `path` (created if missing).
    pub fn with_file(mut self, path: &Path) -> std::io::Result<Self> {
        let file = LogFile::open(path)?;
        self.file = Some(Arc::new(LogFile {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        }));
        Ok(self)
    }

    /// Opens the log file again (after log rotation moved it away).
    pub fn reopen(&self) -> std::io::Result<()> {
        let Some(log) = &self.file else {
            return Ok(());
        };
        let reopened = LogFile::open(&log.path)?;
        *log.file.lock().unwrap_or_else(|p| p.into_inner()) = reopened;
        Ok(())
    }

    /// Lines start with `format`'s time (strftime, local time), with Unix seconds
    /// when `format` is `None`, or with no time when `enabled` is false.
    pub fn with_timestamps(mut self, enabled: bool, format: Option<&str>) -> Self {
        self.timestamp = match (enabled, format) {
            (false, _) => Timestamp::None,
            (true, None) => Timestamp::Unix,
            (true, Some(format)) => Timestamp::Format(Arc::from(format)),
        };
        self
    }

    /// A logger that keeps every line of `types` in memory; see [`Logger::lines`].
    pub fn in_memory(types: LogTypes) -> Self {
        Logger {
            types,
            sink: Sink::Memory(Arc::default()),
            connection_messages: true,
            timestamp: Timestamp::None,
            file: None,
            topic: None,
            syslog: false,
        }
    }

    /// Lines kept by an in-memory logger, without their timestamps.
    pub fn lines(&self) -> Vec<String> {
        match &self.sink {
            Sink::Memory(lines) => lines.lock().map(|l| l.clone()).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    pub fn enabled(&self, kind: LogTypes) -> bool {
        self.types.contains(kind)
            && (!matches!(self.sink, Sink::None)
                || self.file.is_some()
                || self.syslog
                || (self.topic.is_some() && log_topic(kind).is_some()))
    }

    fn write(&self, kind: LogTypes, message: fmt::Arguments<'_>) {
        if !self.enabled(kind) {
            return;
        }
        match &self.sink {
            Sink::Memory(lines) => {
                if let Ok(mut lines) = lines.lock() {
                    lines.push(message.to_string());
                }
            }
            Sink::Stderr | Sink::Stdout | Sink::None => {
                let mut line = String::with_capacity(96);
                match &self.timestamp {
                    Timestamp::Unix => {
                        let now = SystemTime::now()
                            .duration_since(UNIX_EPOCH)
                            .map(|d| d.as_secs())
                            .unwrap_or(0);
                        let _ = write!(line, "{now}: ");
                    }
                    Timestamp::Format(format) => {
                        let _ = write!(line, "{}: ", chrono::Local::now().format(format));
                    }
                    Timestamp::None => {}
                }
                let _ = writeln!(line, "{message}");
                // A failed write to a closed log stream must not take the broker down.
                let _ = match self.sink {
                    Sink::Stdout => std::io::stdout().lock().write_all(line.as_bytes()),
                    Sink::Stderr => std::io::stderr().lock().write_all(line.as_bytes()),
                    _ => Ok(()),
                };
                if let Some(log) = &self.file {
                    let mut file = log.file.lock().unwrap_or_else(|p| p.into_inner());
                    let _ = file.write_all(line.as_bytes());
                }
                let text = line.trim_end_matches('\n');
                #[cfg(unix)]
                if self.syslog {
                    self.to_syslog(kind, text);
                }
                if let Some(topic) = &self.topic
                    && let Some(name) = log_topic(kind)
                {
                    // A full backlog drops the line rather than stall the caller.
                    let _ = topic.sender.try_send((name, text.to_string()));
                }
            }
        }
    }

    /// Sends one line to syslog, with its time as the other destinations (as
    /// mosquitto does, although syslog adds its own).
    #[cfg(unix)]
    fn to_syslog(&self, kind: LogTypes, text: &str) {
        // A line holding NUL cannot be passed on; none of the broker's lines do.
        let Ok(text) = std::ffi::CString::new(text) else {
            return;
        };
        // SAFETY: both strings are NUL-terminated, and "%s" takes exactly one.
        unsafe { libc::syslog(syslog_priority(kind), c"%s".as_ptr(), text.as_ptr()) };
    }

    pub fn error(&self, message: fmt::Arguments<'_>) {
        self.write(LogTypes::ERROR, format_args!("Error: {message}"));
    }

    pub fn warning(&self, message: fmt::Arguments<'_>) {
        self.write(LogTypes::WARNING, message);
    }

    pub fn notice(&self, message: fmt::Arguments<'_>) {
        self.write(LogTypes::NOTICE, message);
    }

    pub fn info(&self, message: fmt::Arguments<'_>) {
        self.write(LogTypes::INFORMATION, message);
    }

    pub fn debug(&self, message: fmt::Arguments<'_>) {
        self.write(LogTypes::DEBUG, message);
    }

    pub fn is_debug(&self) -> bool {
        self.enabled(LogTypes::DEBUG)
    }

    fn connection(&self, message: fmt::Arguments<'_>) {
        if self.connection_messages {
            self.notice(message);
        }
    }

    pub fn new_connection(&self, peer: &PeerAddress, port: u16) {
        self.connection(format_args!("New connection from {peer} on port {port}."));
    }

    /// A TLS or WebSocket handshake that failed: mosquitto's line for TLS
    /// (`Client connection from 127.0.0.1 failed: ...`), with the reason.
    pub fn handshake_failed(&self, peer: &PeerAddress, reason: fmt::Arguments<'_>) {
        self.connection(format_args!(
            "Client connection from {} failed: {reason}.",
            peer.host()
        ));
    }

    /// `New client connected from 127.0.0.1:60608 as X (p2, c1, k60, u'bob').`
    ///
    /// `p` is mosquitto's protocol number: 1 for 3.1, 2 for 3.1.1, 5 for 5.0.
    /// A bridge that said so in its protocol level (`try_private`) is a
    /// `New bridge connected ...`.
    pub fn client_connected(
        &self,
        peer: &PeerAddress,
        client_id: &str,
        (version, bridge): (ProtocolVersion, bool),
        clean: bool,
        keep_alive: u16,
        username: Option<&str>,
    ) {
        let kind = if bridge { "bridge" } else { "client" };
        let clean = u8::from(clean);
        let level = match version {
            ProtocolVersion::V3_1 => 1,
            ProtocolVersion::V3_1_1 => 2,
            ProtocolVersion::V5 => 5,
        };
        match username {
            Some(user) => self.connection(format_args!(
                "New {kind} connected from {} as {client_id} (p{level}, c{clean}, k{keep_alive}, u'{user}').",
                peer
            )),
            None => self.connection(format_args!(
                "New {kind} connected from {} as {client_id} (p{level}, c{clean}, k{keep_alive}).",
                peer
            )),
        }
    }

    pub fn will(&self, will: Option<(usize, bool, QoS, &str)>) {
        match will {
            None => self.debug(format_args!("No will message specified.")),
            Some((len, retain, qos, topic)) => {
                self.debug(format_args!(
                    "Will message specified ({len} bytes) (r{}, q{}).",
                    u8::from(retain),
                    qos as u8
                ));
                self.debug(format_args!("\t{topic}"));
            }
        }
    }

    pub fn disconnected(&self, client_id: &str) {
        self.connection(format_args!("Client {client_id} disconnected."));
    }

    pub fn closed_connection(&self, client_id: &str) {
        self.connection(format_args!("Client {client_id} closed its connection."));
    }

    pub fn keep_alive_expired(&self, client_id: &str) {
        self.connection(format_args!(
            "Client {client_id} has exceeded timeout, disconnecting."
        ));
    }

    pub fn socket_error(&self, client_id: &str) {
        self.connection(format_args!(
            "Socket error on client {client_id}, disconnecting."
        ));
    }

    pub fn protocol_error(&self, client_id: &str, malformed: bool) {
        let what = if malformed {
            "malformed packet"
        } else {
            "protocol error"
        };
        self.connection(format_args!(
            "Client {client_id} disconnected due to {what}."
        ));
    }

    /// A publisher disconnected because its message would pass `memory_limit`.
    pub fn out_of_memory(&self, client_id: &str) {
        self.connection(format_args!(
            "Client {client_id} disconnected due to out of memory."
        ));
    }

    pub fn oversize_packet(&self, client_id: &str) {
        self.connection(format_args!(
            "Client {client_id} disconnected due to oversize packet."
        ));
    }

    pub fn taken_over(&self, client_id: &str) {
        self.connection(format_args!(
            "Client {client_id} already connected, closing old connection."
        ));
    }

    pub fn not_authorised(&self, client_id: &str) {
        self.connection(format_args!(
            "Client {client_id} disconnected, not authorised."
        ));
    }

    pub fn messages_dropped(&self, client_id: &str) {
        self.notice(format_args!(
            "Outgoing messages are being dropped for client {client_id}."
        ));
    }

    /// `Received PUBLISH from X (d0, q1, r0, m1, 'a/b', ... (5 bytes))`
    pub fn received_publish(&self, client_id: &str, publish: &Publish) {
        self.incoming_publish("Received", client_id, publish);
    }

    /// `Denied PUBLISH from X (d0, q1, r0, m1, 'a/b', ... (5 bytes))`
    pub fn denied_publish(&self, client_id: &str, publish: &Publish) {
        self.incoming_publish("Denied", client_id, publish);
    }

    fn incoming_publish(&self, verb: &str, client_id: &str, publish: &Publish) {
        if self.is_debug() {
            let mid = publish.packet_id.map_or(0, |id| id.get());
            self.debug(format_args!(
                "{verb} PUBLISH from {client_id} (d{}, q{}, r{}, m{mid}, '{}', ... ({} bytes))",
                u8::from(publish.dup),
                publish.qos as u8,
                u8::from(publish.retain),
                publish.topic,
                publish.payload.len()
            ));
        }
    }

    /// `Sending PUBLISH to X (d0, q1, r0, m1, 'a/b', ... (5 bytes))`
    pub fn sending_publish(&self, client_id: &str, header: PublishHeader, topic: &str, len: usize) {
        self.debug(format_args!(
            "Sending PUBLISH to {client_id} (d{}, q{}, r{}, m{}, '{topic}', ... ({len} bytes))",
            u8::from(header.dup),
            header.qos as u8,
            u8::from(header.retain),
            header.packet_id.map_or(0, |id| id.get())
        ));
    }

    pub fn subscribed(&self, client_id: &str, filter: &str, qos: QoS) {
        self.debug(format_args!("\t{filter} (QoS {})", qos as u8));
        self.write(
            LogTypes::SUBSCRIBE,
            format_args!("{client_id} {} {filter}", qos as u8),
        );
    }

    pub fn unsubscribed(&self, client_id: &str, filter: &str) {
        self.debug(format_args!("\t{filter}"));
        self.write(LogTypes::UNSUBSCRIBE, format_args!("{client_id} {filter}"));
    }
}

/// Formats an address as mosquitto does: IPv6 without brackets (`::1:5000`).
/// Where a client connects from: an IP address and port, or the unix socket it
/// came in on (mosquitto prints that as `PATH:0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerAddress {
    Ip(SocketAddr),
    Unix(std::sync::Arc<str>),
}

impl PeerAddress {
    /// The address without the port, as mosquitto's CONNACK and refusal lines
    /// name a client not yet known.
    pub fn host(&self) -> String {
        match self {
            PeerAddress::Ip(address) => address.ip().to_string(),
            PeerAddress::Unix(path) => path.to_string(),
        }
    }
}

impl fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddress::Ip(address) => write!(f, "{}:{}", address.ip(), address.port()),
            PeerAddress::Unix(path) => write!(f, "{path}:0"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_match_mosquitto() {
        let log = Logger::in_memory(LogTypes::ALL);
        let peer = PeerAddress::Ip("127.0.0.1:60608".parse().expect("address"));
        log.new_connection(&peer, 1883);
        log.client_connected(&peer, "X", (ProtocolVersion::V3_1_1, false), true, 60, None);
        log.client_connected(
            &peer,
            "Y",
            (ProtocolVersion::V5, false),
            false,
            10,
            Some("bob"),
        );
        log.client_connected(&peer, "B", (ProtocolVersion::V3_1_1, true), false, 60, None);
        log.will(Some((3, false, QoS::AtMostOnce, "w/t")));
        log.subscribed("subber", "a/#", QoS::ExactlyOnce);
        log.error(format_args!("Unable to open config file x."));
        assert_eq!(
            log.lines(),
            vec![
                "New connection from 127.0.0.1:60608 on port 1883.",
                "New client connected from 127.0.0.1:60608 as X (p2, c1, k60).",
                "New client connected from 127.0.0.1:60608 as Y (p5, c0, k10, u'bob').",
                "New bridge connected from 127.0.0.1:60608 as B (p2, c0, k60).",
                "Will message specified (3 bytes) (r0, q0).",
                "\tw/t",
                "\ta/# (QoS 2)",
                "subber 2 a/#",
                "Error: Unable to open config file x.",
            ]
        );
    }

    #[test]
    fn disabled_types_are_not_written() {
        let log = Logger::in_memory(LogTypes::DEFAULT);
        log.debug(format_args!("hidden"));
        log.notice(format_args!("shown"));
        assert_eq!(log.lines(), vec!["shown"]);
    }
}
