//! Startup with `persistence true`: reading the store file back, and building the
//! broker's sessions and retained messages from it.
//!
//! * No file: an empty store. An empty file, or one cut inside its header, is what
//!   an interrupted first start leaves: an empty store, with a warning.
//! * A file that is mosquitto's, not a store, or from a newer format stops startup.
//! * A frame cut short or failing its checksum with no good frame after it is a
//!   crash mid-write (a torn tail). Nothing in it was acknowledged, since nothing
//!   is before its fsync; it is dropped, the log says how many bytes, and startup
//!   goes on.
//! * Zeros after the last frame are space the journal filled ahead; they end
//!   the log.
//! * A bad frame with a good frame after it, or a frame whose records do not read,
//!   is damage in the middle: startup stops, naming the byte offset. The way out
//!   is in the README: keep everything before the damage with
//!   `truncate -s OFFSET FILE` (the rest is lost), or move the file away.
//!
//! The recovered image is written back at once as a fresh file (dropping any torn
//! tail), and the journal appends to that.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::format::{self, Entry, Frame, HEADER_LEN, Reader};
use super::image::{Image, SessionImage};
use crate::broker::log::Logger;
use crate::broker::router::Router;
use crate::broker::session::{Delivery, SessionState};
use crate::protocol::TopicFilter;

/// What reading the file found, for the startup log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes of a torn tail that were dropped.
    pub dropped_bytes: u64,
    pub frames: u64,
    pub records: u64,
}

/// Reads the store at `path` (absent: empty). `Err` is the one line startup
/// prints before exiting.
pub fn read(path: &Path, log: &Logger) -> Result<(Image, Recovery), String> {
    let (image, recovery) = (Image::default(), Recovery::default());
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok((image, recovery));
        }
        Err(error) => {
            return Err(format!(
                "Error: Unable to open store {}: {error}.",
                path.display()
            ));
        }
    };
    if bytes.len() < HEADER_LEN && format::header().starts_with(&bytes) {
        log.warning(format_args!(
            "Warning: store {} is empty or cut inside its header ({} bytes); starting with an empty store.",
            path.display(),
            bytes.len()
        ));
        return Ok((image, recovery));
    }
    read_bytes(&bytes, path, log)
}

/// [`read`] on the bytes of a store file; `path` names it in messages.
pub fn read_bytes(bytes: &[u8], path: &Path, log: &Logger) -> Result<(Image, Recovery), String> {
    let mut image = Image::default();
    let mut recovery = Recovery::default();
    format::check_header(bytes).map_err(|why| format!("Error: {} {why}", path.display()))?;
    let mut at = HEADER_LEN;
    while at < bytes.len() {
        // The zeros the journal fills ahead of its log: the end.
        if bytes[at..].starts_with(&[0; 4]) && bytes[at..].iter().all(|byte| *byte == 0) {
            break;
        }
        match format::next_frame(bytes, at) {
            Frame::Good(body, next) => {
                let mut reader = Reader::new(body);
                loop {
                    let record = reader
                        .next_record()
                        .map_err(|error| damage(path, at, error.0))?;
                    let Some(record) = record else { break };
                    image
                        .apply(record)
                        .map_err(|error| damage(path, at, error.0))?;
                    recovery.records += 1;
                }
                recovery.frames += 1;
                at = next;
            }
            Frame::Short | Frame::Bad => {
                if let Some(good) = good_frame_after(bytes, at + 1) {
                    return Err(damage(
                        path,
                        at,
                        &format!(
                            "a frame fails its checksum, with good data at byte {good} after it"
                        ),
                    ));
                }
                recovery.dropped_bytes = (bytes.len() - at) as u64;
                log.warning(format_args!(
                    "Warning: store {} ends in a torn write ({} bytes from byte {at}), dropped; nothing in it was acknowledged.",
                    path.display(),
                    recovery.dropped_bytes
                ));
                break;
            }
        }
    }
    Ok((image, recovery))
}

fn damage(path: &Path, at: usize, why: &str) -> String {
    format!(
        "Error: store {} is damaged at byte {at}: {why}. To keep what comes before, run `truncate -s {at} {}` (what follows is lost), or move the file away to start empty.",
        path.display(),
        path.display()
    )
}

/// The offset of a whole, checksummed frame at or after `from`, if any.
fn good_frame_after(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len().saturating_sub(format::FRAME_HEAD))
        .find(|&at| matches!(format::next_frame(bytes, at), Frame::Good(..)))
}

/// Reads the store, writes it back compacted, and returns it with the file the
/// journal appends to.
pub fn open(path: &Path, log: &Logger) -> Result<(Image, File, u64, Recovery), String> {
    let (mut image, recovery) = read(path, log)?;
    let (file, len) = super::journal::write_image(path, &mut image)
        .map_err(|error| format!("Error: Unable to write store {}: {error}.", path.display()))?;
    Ok((image, file, len, recovery))
}

/// Builds the broker's retained messages, sessions (offline, with their
/// subscriptions, queues, in-flight messages and incoming QoS 2 ids), pending
/// wills and `$SYS` totals from `image`, and starts their timers. Runs before any
/// listener accepts.
pub(crate) fn restore(router: &Arc<Router>, image: &Image) {
    router.stats.restore_totals(&image.totals);
    let now = std::time::Instant::now();
    for number in image.retained.values() {
        if let Some(message) = image.message(*number)
            && !message.is_expired(now)
        {
            router.restore_retained(message);
        }
    }
    let now_ms = format::epoch_ms(std::time::SystemTime::now());
    let mut due_wills = Vec::new();
    for session in image.sessions.values() {
        let Some((state, subscriptions)) = session_state(router, image, session) else {
            continue;
        };
        let restored = router.restore_session(
            &session.client_id,
            state,
            subscriptions,
            (session.username.clone(), session.scope as usize),
        );
        let epoch = restored.lock().epoch;
        if let Some(expiry) = session.expiry {
            let away = session
                .detached_at
                .map_or(0, |at| now_ms.saturating_sub(at));
            let left =
                Duration::from_secs(u64::from(expiry)).saturating_sub(Duration::from_millis(away));
            router.expire_after(&restored, epoch, left);
        }
        if let Some((number, due)) = session.will
            && let Some(will) = image.message(number)
        {
            if due <= now_ms {
                // Sent now, and no longer pending: a second restart must not send
                // it again.
                restored.lock().note_will_cleared();
                due_wills.push(Arc::clone(will));
            } else {
                restored.lock().pending_will = Some(Arc::clone(will));
                crate::broker::will::resume_delayed(
                    router,
                    &restored,
                    epoch,
                    Duration::from_millis(due - now_ms),
                );
            }
        }
    }
    for will in due_wills {
        crate::broker::will::publish(router, will);
    }
}

/// A delivery as the session holds it.
fn delivery(image: &Image, entry: &Entry) -> Option<Delivery> {
    Some(Delivery {
        message: Arc::clone(image.message(entry.message)?),
        qos: entry.qos,
        retain: entry.retain,
        subscription_ids: entry.subscription_ids.clone(),
        shared: entry
            .shared
            .as_deref()
            .and_then(|filter| TopicFilter::new(filter).ok())
            .map(Arc::new),
        confirms: None,
    })
}

type Subscriptions = Vec<(
    TopicFilter,
    crate::protocol::SubscriptionOptions,
    Option<u32>,
)>;

fn session_state(
    router: &Router,
    image: &Image,
    session: &SessionImage,
) -> Option<(SessionState, Subscriptions)> {
    let mut state = SessionState::new(router.config.queue_limits(), true);
    state.expiry = session
        .expiry
        .map(|secs| Duration::from_secs(u64::from(secs)));
    state.queue_qos0 = router.config.queue_qos0_messages;
    for (packet_id, entry) in &session.inflight {
        let packet_id = crate::protocol::PacketId::new(*packet_id)?;
        state.restore_inflight(packet_id, entry.as_ref().and_then(|e| delivery(image, e)));
    }
    for entry in &session.queue {
        if let Some(delivery) = delivery(image, entry) {
            state.restore_queued(delivery);
        }
    }
    for packet_id in &session.incoming {
        if let Some(packet_id) = crate::protocol::PacketId::new(*packet_id) {
            state.receive_qos2(packet_id);
        }
    }
    let subscriptions = session
        .subscriptions
        .iter()
        .filter_map(|(filter, (options, identifier))| {
            Some((
                TopicFilter::new(filter.as_str()).ok()?,
                *options,
                *identifier,
            ))
        })
        .collect();
    Some((state, subscriptions))
}
