//! `-d` packet lines in libmosquitto's exact wording, and [`Output`], the buffered
//! stdout that those lines and the messages share so they stay in order.
//!
//! Output is buffered and flushed whenever the program is about to wait (see
//! [`Output::flush`]): every line is on its way before rsub sleeps, without one
//! system call per message.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use colored::Colorize;

use crate::protocol::{Publish, ReasonCode, SubscriptionOptions};

/// Standard output shared by the `-d` lines and the messages. A closed pipe is
/// remembered, so the program can end quietly (`rsub ... | head -1`).
#[derive(Clone)]
pub struct Output {
    inner: Arc<Mutex<io::BufWriter<io::Stdout>>>,
    broken: Arc<AtomicBool>,
    /// The first write error that was not a closed pipe.
    failure: Arc<Mutex<Option<io::Error>>>,
}

impl Default for Output {
    fn default() -> Self {
        Output {
            inner: Arc::new(Mutex::new(io::BufWriter::with_capacity(
                64 * 1024,
                io::stdout(),
            ))),
            broken: Arc::new(AtomicBool::new(false)),
            failure: Arc::default(),
        }
    }
}

impl Output {
    /// Writes `bytes`; after a failure (a closed pipe) nothing more is written.
    pub fn write(&self, bytes: &[u8]) {
        if self.is_broken() {
            return;
        }
        let mut out = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(error) = out.write_all(bytes) {
            self.failed(error);
        }
    }

    /// Stops writing after an error, keeping it unless it is a closed pipe.
    fn failed(&self, error: io::Error) {
        self.broken.store(true, Ordering::Relaxed);
        if error.kind() != io::ErrorKind::BrokenPipe {
            let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
            failure.get_or_insert(error);
        }
    }

    /// The exit status of a program that would end with `status`: a closed pipe
    /// (`| head`) is a quiet success, any other failure to write standard output
    /// (a full disk, an I/O error) is reported and exits 1.
    pub fn exit_status(&self, program: &str, status: u8) -> u8 {
        self.flush();
        let failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        match failure.as_ref() {
            Some(error) => {
                eprintln!("{program}: cannot write to standard output: {error}");
                1
            }
            None => status,
        }
    }

    /// Writes what is buffered.
    pub fn flush(&self) {
        if self.is_broken() {
            return;
        }
        let mut out = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(error) = out.flush() {
            self.failed(error);
        }
    }

    /// Whether stdout stopped taking output.
    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }
}

/// The `-d` log of one client: off, or on with the client id it prints.
#[derive(Clone, Default)]
pub struct Trace {
    output: Option<Output>,
    client_id: Option<String>,
    color: bool,
}

impl Trace {
    /// Debug lines to `output`; `color` highlights packet names.
    pub fn new(output: Output, color: bool) -> Self {
        Trace {
            output: Some(output),
            client_id: None,
            color,
        }
    }

    pub fn is_on(&self) -> bool {
        self.output.is_some()
    }

    /// The id the lines print; empty prints `(null)`, as libmosquitto.
    pub fn set_client_id(&mut self, id: &str) {
        self.client_id = (!id.is_empty()).then(|| id.to_string());
    }

    fn name(&self, packet: &str) -> String {
        if self.color {
            packet.bold().to_string()
        } else {
            packet.to_string()
        }
    }

    fn line(&self, text: std::fmt::Arguments<'_>) {
        if let Some(output) = &self.output {
            let id = self.client_id.as_deref().unwrap_or("(null)");
            output.write(format!("Client {id} {text}\n").as_bytes());
        }
    }

    pub fn sending(&self, packet: &str) {
        if self.is_on() {
            self.line(format_args!("sending {}", self.name(packet)));
        }
    }

    pub fn received(&self, packet: &str) {
        if self.is_on() {
            self.line(format_args!("received {}", self.name(packet)));
        }
    }

    pub fn sending_connect(&self) {
        self.sending("CONNECT");
    }

    /// `received CONNACK (5)`: the 3.x return code, or the MQTT 5 reason code.
    pub fn received_connack(&self, code: ReasonCode, v5: bool) {
        if self.is_on() {
            let value = if v5 { code as u8 } else { code.to_v3_connack() };
            self.line(format_args!("received {} ({value})", self.name("CONNACK")));
        }
    }

    /// `sending`/`received PUBLISH (d0, q1, r0, m1, 'topic', ... (5 bytes))`.
    pub fn publish(&self, direction: &str, publish: &Publish, mid: u16) {
        if self.is_on() {
            self.line(format_args!(
                "{direction} {} (d{}, q{}, r{}, m{mid}, '{}', ... ({} bytes))",
                self.name("PUBLISH"),
                u8::from(publish.dup),
                publish.qos as u8,
                u8::from(publish.retain),
                publish.topic.as_str(),
                publish.payload.len()
            ));
        }
    }

    /// `received PUBACK (Mid: 1, RC:0)`, also for PUBCOMP.
    pub fn received_ack(&self, packet: &str, mid: u16, reason: ReasonCode) {
        if self.is_on() {
            self.line(format_args!(
                "received {} (Mid: {mid}, RC:{})",
                self.name(packet),
                reason as u8
            ));
        }
    }

    /// `received PUBREC (Mid: 1)`, also for PUBREL.
    pub fn received_mid(&self, packet: &str, mid: u16) {
        if self.is_on() {
            self.line(format_args!("received {} (Mid: {mid})", self.name(packet)));
        }
    }

    /// `sending PUBACK (m1, rc0)`, also for PUBREC.
    pub fn sending_ack(&self, packet: &str, mid: u16) {
        if self.is_on() {
            self.line(format_args!("sending {} (m{mid}, rc0)", self.name(packet)));
        }
    }

    /// `sending PUBCOMP (m1)`.
    pub fn sending_mid(&self, packet: &str, mid: u16) {
        if self.is_on() {
            self.line(format_args!("sending {} (m{mid})", self.name(packet)));
        }
    }

    pub fn sending_pubrel(&self, mid: u16) {
        self.sending_mid("PUBREL", mid);
    }

    /// One line per filter, all with the SUBSCRIBE's message id.
    pub fn sending_subscribe(&self, mid: u16, filter: &str, options: &SubscriptionOptions) {
        if self.is_on() {
            let bits = (u8::from(options.no_local) << 2)
                | (u8::from(options.retain_as_published) << 3)
                | ((options.retain_handling as u8) << 4);
            self.line(format_args!(
                "sending {} (Mid: {mid}, Topic: {filter}, QoS: {}, Options: 0x{bits:02x})",
                self.name("SUBSCRIBE"),
                options.qos as u8
            ));
        }
    }

    pub fn sending_unsubscribe(&self, mid: u16, filter: &str) {
        if self.is_on() {
            self.line(format_args!(
                "sending {} (Mid: {mid}, Topic: {filter})",
                self.name("UNSUBSCRIBE")
            ));
        }
    }

    /// `Received DISCONNECT (142)`: libmosquitto prints this one without the id.
    pub fn received_disconnect(&self, reason: ReasonCode) {
        if let Some(output) = &self.output {
            output.write(
                format!("Received {} ({})\n", self.name("DISCONNECT"), reason as u8).as_bytes(),
            );
        }
    }

    /// A line of the program's own, such as `Subscribed (mid: 1): 0`.
    pub fn note(&self, text: &str) {
        if let Some(output) = &self.output {
            output.write(format!("{text}\n").as_bytes());
        }
    }
}
