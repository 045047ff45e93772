//! The store file's bytes: the header, checksummed frames, and the records inside
//! them.
//!
//! ```text
//! file   = header frame*
//! header = "rbroker store\n\0\0" (16 bytes) · format version (u32 LE) · 0 (u32 LE)
//! frame  = length (u32 LE) · CRC-32 of the body (u32 LE) · body
//! body   = record+            (one group commit, or one piece of a snapshot)
//! record = tag (u8) · fields  (integers little-endian; strings and bytes carry a
//!                              u32 length; options are a 0/1 byte, then the value)
//! ```
//!
//! A frame is written whole before the fsync that makes it durable, and nothing it
//! holds is acknowledged before that, so a frame cut short or failing its checksum
//! at the end of the file is a crash mid-write: it is dropped. A bad frame with good
//! frames after it is damage, and stops startup (see `recover.rs`).
//!
//! Messages are written once (topic, payload, flags, and the MQTT 5 properties in
//! the codec's own encoding, read back by its strict decoder) and referred to by
//! number from every record that queues them.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::broker::auth::Principal;
use crate::broker::message::Message;
use crate::protocol::{
    PropertyContext, ProtocolVersion, QoS, SubscriptionOptions, TopicFilter, TopicName,
};

/// The first bytes of every store file.
pub const MAGIC: &[u8; 16] = b"rbroker store\n\0\0";
/// The format this build writes and reads.
pub const VERSION: u32 = 1;
/// Header bytes: magic, version, reserved.
pub const HEADER_LEN: usize = 24;
/// Bytes before a frame's body.
pub const FRAME_HEAD: usize = 8;
/// The largest frame body a reader accepts. A group commit is one frame (so a
/// crash can tear only the last one), and a message may be as large as MQTT
/// allows (256 MiB), so this leaves room for both.
pub const MAX_FRAME: usize = 1 << 30;
/// mosquitto's own database starts with these bytes.
pub const MOSQUITTO_MAGIC: &[u8] = b"\x00\xb5\x00mosquitto db";

/// Why bytes could not be read as a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError(pub &'static str);

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// One message on its way to one session, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The message's number (see [`Record::Message`]).
    pub message: u64,
    pub qos: QoS,
    pub retain: bool,
    pub subscription_ids: Vec<u32>,
    /// The shared subscription it came through.
    pub shared: Option<String>,
}

/// One change to durable state. Sessions are referred to by a number given in
/// [`Record::SessionOpened`], messages by the number given in [`Record::Message`].
#[derive(Debug, Clone)]
pub enum Record {
    /// A message some later record refers to.
    Message {
        number: u64,
        message: Arc<Message>,
    },
    /// The retained message for its topic (an empty payload deletes it).
    Retained {
        message: u64,
    },
    SessionOpened {
        session: u32,
        client_id: Arc<str>,
        username: Option<String>,
        /// The auth scope (listener, with `per_listener_settings`) it logged in on.
        scope: u32,
        /// A new session: whatever the number or client id held before is gone.
        fresh: bool,
        /// Seconds kept after disconnect; `None` for ever.
        expiry: Option<u32>,
    },
    /// The session's connection ended at `at` (ms since the epoch).
    SessionDetached {
        session: u32,
        expiry: Option<u32>,
        at: u64,
    },
    SessionRemoved {
        session: u32,
    },
    Subscribed {
        session: u32,
        filter: String,
        options: SubscriptionOptions,
        identifier: Option<u32>,
    },
    Unsubscribed {
        session: u32,
        filter: String,
    },
    /// A QoS 1/2 message joined the back of the session's queue.
    Queued {
        session: u32,
        entry: Entry,
    },
    /// The front of the queue went out with this packet id.
    Sent {
        session: u32,
        packet_id: u16,
    },
    /// The front of the queue was dropped unsent (expired, or too large).
    Skipped {
        session: u32,
    },
    /// The queue was emptied (before being written again, whole).
    QueueCleared {
        session: u32,
    },
    /// PUBACK, or PUBCOMP: the packet id is done.
    Acked {
        session: u32,
        packet_id: u16,
    },
    /// PUBREC: the message is the client's; PUBREL goes out until PUBCOMP.
    Released {
        session: u32,
        packet_id: u16,
    },
    /// An incoming QoS 2 message, awaiting PUBREL.
    Received {
        session: u32,
        packet_id: u16,
    },
    /// Its PUBREL came.
    ReceiveDone {
        session: u32,
        packet_id: u16,
    },
    /// A will waiting for its delay, due at `due` (ms since the epoch).
    WillPending {
        session: u32,
        message: u64,
        due: u64,
    },
    WillCleared {
        session: u32,
    },
    /// The broker's lifetime counters, as `$SYS` shows them.
    Totals(Totals),
}

/// The `$SYS` counters that count from the first start, kept across restarts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub packets_received: u64,
    pub packets_sent: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub publish_received: u64,
    pub publish_sent: u64,
    pub publish_dropped: u64,
    pub publish_bytes_received: u64,
    pub publish_bytes_sent: u64,
    pub connections_accepted: u64,
    pub sockets_accepted: u64,
    pub sessions_expired: u64,
}

impl Totals {
    /// The counters in the order they are written (and `Stats` lists them).
    pub fn fields(&self) -> [u64; 12] {
        [
            self.packets_received,
            self.packets_sent,
            self.bytes_received,
            self.bytes_sent,
            self.publish_received,
            self.publish_sent,
            self.publish_dropped,
            self.publish_bytes_received,
            self.publish_bytes_sent,
            self.connections_accepted,
            self.sockets_accepted,
            self.sessions_expired,
        ]
    }

    pub fn from_fields(f: [u64; 12]) -> Self {
        Totals {
            packets_received: f[0],
            packets_sent: f[1],
            bytes_received: f[2],
            bytes_sent: f[3],
            publish_received: f[4],
            publish_sent: f[5],
            publish_dropped: f[6],
            publish_bytes_received: f[7],
            publish_bytes_sent: f[8],
            connections_accepted: f[9],
            sockets_accepted: f[10],
            sessions_expired: f[11],
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn epoch_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

/// Both clocks read once, to turn many `Instant`s into wall-clock times.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    instant: std::time::Instant,
    system: SystemTime,
}

impl Clock {
    pub fn now() -> Self {
        Clock {
            instant: std::time::Instant::now(),
            system: SystemTime::now(),
        }
    }

    /// The wall-clock time an `Instant` of this process stands for.
    pub fn wall_time(&self, instant: std::time::Instant) -> SystemTime {
        self.system - self.instant.saturating_duration_since(instant)
    }
}

/// The `Instant` of this process that a wall-clock time stands for (now, for a
/// time in the future; the earliest representable for one too far back).
pub fn instant_of(ms: u64) -> std::time::Instant {
    let now = std::time::Instant::now();
    let ago = SystemTime::now()
        .duration_since(UNIX_EPOCH + Duration::from_millis(ms))
        .unwrap_or_default();
    now.checked_sub(ago).unwrap_or(now)
}

/// The file header.
pub fn header() -> [u8; HEADER_LEN] {
    let mut header = [0; HEADER_LEN];
    header[..16].copy_from_slice(MAGIC);
    header[16..20].copy_from_slice(&VERSION.to_le_bytes());
    header
}

/// Checks a file header: ours, of a version this build reads.
pub fn check_header(bytes: &[u8]) -> Result<(), String> {
    if bytes.starts_with(MOSQUITTO_MAGIC) {
        return Err("is a mosquitto database; rbroker keeps its own format and cannot read it. Move it away to start with an empty store.".into());
    }
    if bytes.len() < HEADER_LEN || &bytes[..16] != MAGIC {
        return Err("is not an rbroker store (unrecognised header).".into());
    }
    let version = u32::from_le_bytes(bytes[16..20].try_into().unwrap_or_default());
    if version > VERSION {
        return Err(format!(
            "was written by a newer rbroker (store format {version}; this one reads up to {VERSION}). Run that version, or move the file away to start empty."
        ));
    }
    if version == 0 {
        return Err("has store format 0, which no rbroker writes.".into());
    }
    Ok(())
}

/// Appends a frame holding `body` to `out`.
pub fn put_frame(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
}

/// What [`next_frame`] found at an offset.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A whole frame with a good checksum, and the offset after it.
    Good(&'a [u8], usize),
    /// Fewer bytes than the frame says it has: the file ends mid-frame.
    Short,
    /// The checksum or the length is wrong.
    Bad,
}

/// Reads the frame at `at` (which must be before the end of `bytes`).
pub fn next_frame(bytes: &[u8], at: usize) -> Frame<'_> {
    let Some(head) = bytes.get(at..at + FRAME_HEAD) else {
        return Frame::Short;
    };
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if len == 0 || len > MAX_FRAME {
        return Frame::Bad;
    }
    let start = at + FRAME_HEAD;
    let Some(body) = bytes.get(start..start + len) else {
        return Frame::Short;
    };
    if crc32fast::hash(body) != crc {
        return Frame::Bad;
    }
    Frame::Good(body, start + len)
}

mod tag {
    pub const MESSAGE: u8 = 1;
    pub const RETAINED: u8 = 2;
    pub const SESSION_OPENED: u8 = 3;
    pub const SESSION_DETACHED: u8 = 4;
    pub const SESSION_REMOVED: u8 = 5;
    pub const SUBSCRIBED: u8 = 6;
    pub const UNSUBSCRIBED: u8 = 7;
    pub const QUEUED: u8 = 8;
    pub const SENT: u8 = 9;
    pub const SKIPPED: u8 = 10;
    pub const QUEUE_CLEARED: u8 = 11;
    pub const ACKED: u8 = 12;
    pub const RELEASED: u8 = 13;
    pub const RECEIVED: u8 = 14;
    pub const RECEIVE_DONE: u8 = 15;
    pub const WILL_PENDING: u8 = 16;
    pub const WILL_CLEARED: u8 = 17;
    pub const TOTALS: u8 = 18;
}

fn put_u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}
fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}
fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}
fn put_bytes(out: &mut Vec<u8>, value: &[u8]) {
    put_u32(out, value.len() as u32);
    out.extend_from_slice(value);
}
fn put_opt_u32(out: &mut Vec<u8>, value: Option<u32>) {
    match value {
        Some(value) => {
            out.push(1);
            put_u32(out, value);
        }
        None => out.push(0),
    }
}
fn put_opt_str(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(value) => {
            out.push(1);
            put_bytes(out, value.as_bytes());
        }
        None => out.push(0),
    }
}

fn put_session(out: &mut Vec<u8>, tag: u8, session: u32) {
    out.push(tag);
    put_u32(out, session);
}

fn put_session_id(out: &mut Vec<u8>, tag: u8, session: u32, packet_id: u16) {
    put_session(out, tag, session);
    put_u16(out, packet_id);
}

/// Appends the bytes of `record`; `clock` dates its messages.
pub fn encode(record: &Record, out: &mut Vec<u8>, clock: &Clock) {
    match record {
        Record::Message { number, message } => {
            out.push(tag::MESSAGE);
            put_u64(out, *number);
            put_u64(out, epoch_ms(clock.wall_time(message.received_at)));
            match &message.publisher {
                Some(principal) => {
                    out.push(1);
                    put_opt_str(out, principal.username.as_deref());
                    put_bytes(out, principal.client_id.as_bytes());
                    put_u32(out, principal.scope);
                    out.push(u8::from(principal.certified));
                }
                None => out.push(0),
            }
            out.push(message.qos as u8 | u8::from(message.retain) << 2);
            put_bytes(out, message.topic.as_str().as_bytes());
            let mut properties = Vec::new();
            // Properties the broker accepted or built always encode (their total
            // is bounded by the packet that carried them).
            let _ = message.properties.encode(&mut properties);
            put_bytes(out, &properties);
            put_bytes(out, &message.payload);
        }
        Record::Retained { message } => {
            out.push(tag::RETAINED);
            put_u64(out, *message);
        }
        Record::SessionOpened {
            session,
            client_id,
            username,
            scope,
            fresh,
            expiry,
        } => {
            put_session(out, tag::SESSION_OPENED, *session);
            put_bytes(out, client_id.as_bytes());
            put_opt_str(out, username.as_deref());
            put_u32(out, *scope);
            out.push(u8::from(*fresh));
            put_opt_u32(out, *expiry);
        }
        Record::SessionDetached {
            session,
            expiry,
            at,
        } => {
            put_session(out, tag::SESSION_DETACHED, *session);
            put_opt_u32(out, *expiry);
            put_u64(out, *at);
        }
        Record::SessionRemoved { session } => put_session(out, tag::SESSION_REMOVED, *session),
        Record::Subscribed {
            session,
            filter,
            options,
            identifier,
        } => {
            put_session(out, tag::SUBSCRIBED, *session);
            put_bytes(out, filter.as_bytes());
            out.push(options.to_byte(ProtocolVersion::V5));
            put_opt_u32(out, *identifier);
        }
        Record::Unsubscribed { session, filter } => {
            put_session(out, tag::UNSUBSCRIBED, *session);
            put_bytes(out, filter.as_bytes());
        }
        Record::Queued { session, entry } => {
            put_session(out, tag::QUEUED, *session);
            put_u64(out, entry.message);
            out.push(entry.qos as u8 | u8::from(entry.retain) << 2);
            put_u32(out, entry.subscription_ids.len() as u32);
            for id in &entry.subscription_ids {
                put_u32(out, *id);
            }
            put_opt_str(out, entry.shared.as_deref());
        }
        Record::Sent { session, packet_id } => {
            put_session_id(out, tag::SENT, *session, *packet_id);
        }
        Record::Skipped { session } => put_session(out, tag::SKIPPED, *session),
        Record::QueueCleared { session } => put_session(out, tag::QUEUE_CLEARED, *session),
        Record::Acked { session, packet_id } => {
            put_session_id(out, tag::ACKED, *session, *packet_id);
        }
        Record::Released { session, packet_id } => {
            put_session_id(out, tag::RELEASED, *session, *packet_id);
        }
        Record::Received { session, packet_id } => {
            put_session_id(out, tag::RECEIVED, *session, *packet_id);
        }
        Record::ReceiveDone { session, packet_id } => {
            put_session_id(out, tag::RECEIVE_DONE, *session, *packet_id);
        }
        Record::WillPending {
            session,
            message,
            due,
        } => {
            put_session(out, tag::WILL_PENDING, *session);
            put_u64(out, *message);
            put_u64(out, *due);
        }
        Record::WillCleared { session } => put_session(out, tag::WILL_CLEARED, *session),
        Record::Totals(totals) => {
            out.push(tag::TOTALS);
            for value in totals.fields() {
                put_u64(out, value);
            }
        }
    }
}

/// Reads records from a frame body.
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

const TRUNCATED: FormatError = FormatError("a record ends early");

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let end = self.at.checked_add(n).ok_or(TRUNCATED)?;
        let slice = self.bytes.get(self.at..end).ok_or(TRUNCATED)?;
        self.at = end;
        Ok(slice)
    }
    fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, FormatError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, FormatError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, FormatError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| TRUNCATED)?))
    }
    fn bytes(&mut self) -> Result<&'a [u8], FormatError> {
        let len = self.u32()? as usize;
        self.take(len)
    }
    fn string(&mut self) -> Result<String, FormatError> {
        std::str::from_utf8(self.bytes()?)
            .map(str::to_owned)
            .map_err(|_| FormatError("a string is not UTF-8"))
    }
    fn flag(&mut self) -> Result<bool, FormatError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(FormatError("a flag is neither 0 nor 1")),
        }
    }
    fn opt_u32(&mut self) -> Result<Option<u32>, FormatError> {
        Ok(if self.flag()? {
            Some(self.u32()?)
        } else {
            None
        })
    }
    fn opt_string(&mut self) -> Result<Option<String>, FormatError> {
        Ok(if self.flag()? {
            Some(self.string()?)
        } else {
            None
        })
    }
    fn packet_id(&mut self) -> Result<u16, FormatError> {
        match self.u16()? {
            0 => Err(FormatError("packet id 0")),
            id => Ok(id),
        }
    }

    /// The next record, or `None` at the end of the body.
    pub fn next_record(&mut self) -> Result<Option<Record>, FormatError> {
        if self.at == self.bytes.len() {
            return Ok(None);
        }
        let tag = self.u8()?;
        let record = match tag {
            tag::MESSAGE => {
                let number = self.u64()?;
                let received = self.u64()?;
                let publisher = if self.flag()? {
                    let username = self.opt_string()?;
                    let client_id: Arc<str> = Arc::from(self.string()?);
                    let scope = self.u32()? as usize;
                    let certified = self.flag()?;
                    Some(Arc::new(Principal::new(
                        username, client_id, scope, certified,
                    )))
                } else {
                    None
                };
                let flags = self.u8()?;
                let qos = QoS::from_u8(flags & 0x03)
                    .filter(|_| flags & !0x07 == 0)
                    .ok_or(FormatError("bad flags on a stored message"))?;
                let topic = std::str::from_utf8(self.bytes()?)
                    .ok()
                    .and_then(|topic| TopicName::new(topic).ok())
                    .ok_or(FormatError("a stored message has an invalid topic"))?;
                let mut properties = crate::protocol::wire::Reader::new(self.bytes()?);
                let properties =
                    crate::protocol::Properties::decode(&mut properties, PropertyContext::Publish)
                        .map_err(|_| FormatError("a stored message has invalid properties"))?;
                let message = Message {
                    topic,
                    payload: Bytes::copy_from_slice(self.bytes()?),
                    qos,
                    retain: flags & 0x04 != 0,
                    properties,
                    origin: 0,
                    received_at: instant_of(received),
                    publisher,
                };
                Record::Message {
                    number,
                    message: Arc::new(message),
                }
            }
            tag::RETAINED => Record::Retained {
                message: self.u64()?,
            },
            tag::SESSION_OPENED => Record::SessionOpened {
                session: self.u32()?,
                client_id: Arc::from(self.string()?),
                username: self.opt_string()?,
                scope: self.u32()?,
                fresh: self.flag()?,
                expiry: self.opt_u32()?,
            },
            tag::SESSION_DETACHED => Record::SessionDetached {
                session: self.u32()?,
                expiry: self.opt_u32()?,
                at: self.u64()?,
            },
            tag::SESSION_REMOVED => Record::SessionRemoved {
                session: self.u32()?,
            },
            tag::SUBSCRIBED => {
                let session = self.u32()?;
                let filter = self.filter()?;
                let options = SubscriptionOptions::decode(self.u8()?, ProtocolVersion::V5)
                    .map_err(|_| FormatError("bad subscription options"))?;
                Record::Subscribed {
                    session,
                    filter,
                    options,
                    identifier: self.opt_u32()?,
                }
            }
            tag::UNSUBSCRIBED => Record::Unsubscribed {
                session: self.u32()?,
                filter: self.filter()?,
            },
            tag::QUEUED => {
                let session = self.u32()?;
                let message = self.u64()?;
                let flags = self.u8()?;
                let qos = match flags & 0x03 {
                    1 => QoS::AtLeastOnce,
                    2 => QoS::ExactlyOnce,
                    _ => return Err(FormatError("a queued message is not QoS 1 or 2")),
                };
                if flags & !0x07 != 0 {
                    return Err(FormatError("unknown flags on a queued message"));
                }
                let count = self.u32()? as usize;
                if count > self.bytes.len() {
                    return Err(TRUNCATED);
                }
                let subscription_ids = (0..count)
                    .map(|_| self.u32())
                    .collect::<Result<Vec<_>, _>>()?;
                Record::Queued {
                    session,
                    entry: Entry {
                        message,
                        qos,
                        retain: flags & 0x04 != 0,
                        subscription_ids,
                        shared: self.opt_string()?,
                    },
                }
            }
            tag::SENT => Record::Sent {
                session: self.u32()?,
                packet_id: self.packet_id()?,
            },
            tag::SKIPPED => Record::Skipped {
                session: self.u32()?,
            },
            tag::QUEUE_CLEARED => Record::QueueCleared {
                session: self.u32()?,
            },
            tag::ACKED => Record::Acked {
                session: self.u32()?,
                packet_id: self.packet_id()?,
            },
            tag::RELEASED => Record::Released {
                session: self.u32()?,
                packet_id: self.packet_id()?,
            },
            tag::RECEIVED => Record::Received {
                session: self.u32()?,
                packet_id: self.packet_id()?,
            },
            tag::RECEIVE_DONE => Record::ReceiveDone {
                session: self.u32()?,
                packet_id: self.packet_id()?,
            },
            tag::WILL_PENDING => Record::WillPending {
                session: self.u32()?,
                message: self.u64()?,
                due: self.u64()?,
            },
            tag::WILL_CLEARED => Record::WillCleared {
                session: self.u32()?,
            },
            tag::TOTALS => {
                let mut fields = [0; 12];
                for field in &mut fields {
                    *field = self.u64()?;
                }
                Record::Totals(Totals::from_fields(fields))
            }
            _ => return Err(FormatError("unknown record type")),
        };
        Ok(Some(record))
    }

    fn filter(&mut self) -> Result<String, FormatError> {
        let filter = self.string()?;
        TopicFilter::new(filter.as_str()).map_err(|_| FormatError("a stored filter is invalid"))?;
        Ok(filter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Property, TopicName};

    fn round_trip(record: &Record) -> Record {
        let mut body = Vec::new();
        encode(record, &mut body, &Clock::now());
        let mut reader = Reader::new(&body);
        let back = reader.next_record().expect("decodes").expect("one record");
        assert!(reader.next_record().expect("decodes").is_none());
        back
    }

    #[test]
    fn a_message_keeps_its_properties_publisher_and_age() {
        let mut message = Message::new(
            TopicName::new("a/b").expect("topic"),
            Bytes::from_static(b"payload"),
            QoS::ExactlyOnce,
            true,
        );
        message.properties.push(Property::MessageExpiryInterval(60));
        message
            .properties
            .push(Property::ContentType("text/plain".into()));
        message.publisher = Some(Arc::new(Principal::new(
            Some("alice".into()),
            Arc::from("c1"),
            2,
            true,
        )));
        message.received_at = std::time::Instant::now() - Duration::from_secs(5);
        let Record::Message {
            number,
            message: back,
        } = round_trip(&Record::Message {
            number: 7,
            message: Arc::new(message.clone()),
        })
        else {
            panic!("not a message");
        };
        assert_eq!(number, 7);
        assert_eq!(back.topic, message.topic);
        assert_eq!(back.payload, message.payload);
        assert_eq!((back.qos, back.retain), (QoS::ExactlyOnce, true));
        assert_eq!(back.properties, message.properties);
        let publisher = back.publisher.as_deref().expect("publisher");
        assert_eq!(publisher.username.as_deref(), Some("alice"));
        assert_eq!(
            (&*publisher.client_id, publisher.scope, publisher.certified),
            ("c1", 2, true)
        );
        assert_eq!(back.remaining_life(std::time::Instant::now()), Some(55));
    }

    #[test]
    fn every_record_reads_back_as_written() {
        let records = [
            Record::Retained { message: 3 },
            Record::SessionOpened {
                session: 1,
                client_id: Arc::from("client"),
                username: None,
                scope: 1,
                fresh: true,
                expiry: Some(30),
            },
            Record::SessionDetached {
                session: 1,
                expiry: None,
                at: 12345,
            },
            Record::Subscribed {
                session: 1,
                filter: "$share/g/a/#".into(),
                options: SubscriptionOptions {
                    no_local: true,
                    ..SubscriptionOptions::new(QoS::AtLeastOnce)
                },
                identifier: Some(9),
            },
            Record::Queued {
                session: 1,
                entry: Entry {
                    message: 3,
                    qos: QoS::ExactlyOnce,
                    retain: true,
                    subscription_ids: vec![1, 2],
                    shared: Some("$share/g/a/#".into()),
                },
            },
            Record::Sent {
                session: 1,
                packet_id: 65535,
            },
            Record::WillPending {
                session: 1,
                message: 3,
                due: 99,
            },
            Record::Totals(Totals {
                publish_sent: 5,
                sessions_expired: 2,
                ..Totals::default()
            }),
        ];
        for record in &records {
            let mut first = Vec::new();
            encode(record, &mut first, &Clock::now());
            let mut again = Vec::new();
            encode(&round_trip(record), &mut again, &Clock::now());
            assert_eq!(first, again, "{record:?}");
        }
    }

    #[test]
    fn frames_tell_a_torn_end_from_a_bad_checksum() {
        let mut file = Vec::new();
        put_frame(&mut file, b"first");
        put_frame(&mut file, b"second");
        let Frame::Good(body, next) = next_frame(&file, 0) else {
            panic!("first frame");
        };
        assert_eq!(body, b"first");
        assert_eq!(next_frame(&file[..file.len() - 1], next), Frame::Short);
        let mut flipped = file.clone();
        flipped[next + FRAME_HEAD] ^= 1;
        assert_eq!(next_frame(&flipped, next), Frame::Bad);
    }

    #[test]
    fn headers_from_mosquitto_or_a_newer_version_are_refused() {
        assert!(check_header(&header()).is_ok());
        let mut newer = header();
        newer[16] = 2;
        assert!(check_header(&newer).unwrap_err().contains("newer rbroker"));
        assert!(
            check_header(b"\x00\xb5\x00mosquitto db\0\0\0\0\0\0\0\x06")
                .unwrap_err()
                .contains("mosquitto database")
        );
        assert!(check_header(b"").is_err());
    }
}
