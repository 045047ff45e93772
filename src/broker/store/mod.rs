//! The durability boundary: what the broker must keep across a restart, and the
//! rule that nothing is acknowledged before it is kept.
//!
//! Every change a restart must survive is reported as a [`Change`] at the point it
//! happens in memory, under the lock that orders it ([`Store::record`]; cheap: a
//! push onto a list). Each change gets a sequence number. A connection task that
//! recorded changes while handling a batch of packets waits, before writing that
//! batch's answers (PUBACK, PUBREC, PUBCOMP, SUBACK, UNSUBACK, the CONNACK of a
//! persistent session, a QoS 2 PUBLISH or PUBREL to a persistent session), until
//! the store says that sequence number is durable ([`Store::synced`]). So
//! "acknowledged" means "on disk", or, for a QoS 1 message, "acknowledged by every
//! persistent subscriber it was queued for" (`confirm.rs`,
//! [`Store::record_counted`]). A QoS 1 PUBLISH going out, and the PUBACK or
//! PUBCOMP that completes one, are recorded in order but waited for by no one
//! ([`Store::record_unwaited`]): losing them only means a QoS 1 message is sent
//! again.
//!
//! * [`Store::Memory`]: nothing is kept (no `persistence`); every commit is
//!   immediate and nothing is recorded.
//! * [`Store::Kept`]: a [`Journal`] with its writer thread. In
//!   `durable` mode (the default) it appends each group of changes to the store
//!   file as one checksummed frame and fsyncs once for all of them (group commit);
//!   in `snapshot` mode (mosquitto's) it only keeps the image in memory and writes
//!   it whole every `autosave_interval`.
//!
//! The files: `format.rs` (bytes), `image.rs` (the state the records describe),
//! `journal.rs` (the writer thread, group commit, compaction, a full disk),
//! `recover.rs` (reading the file back at startup, torn tails, damage),
//! `elide.rs` (deliveries completed within one batch, never written),
//! `confirm.rs` (a QoS 1 publisher answered once its subscribers acknowledged,
//! without waiting for the disk).

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub mod confirm;
pub mod elide;
pub mod format;
pub mod image;
pub mod journal;
pub mod recover;

use super::message::Message;
use super::session::Delivery;
use crate::protocol::{SubscriptionOptions, TopicFilter};
pub use journal::{Group, Journal, JournalFigures};

/// How the store keeps state (`persistence_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PersistenceMode {
    /// Every acknowledgement waits for fsync (group commit).
    #[default]
    Durable,
    /// mosquitto's: the whole state is written every `autosave_interval`; a crash
    /// loses what changed since.
    Snapshot,
}

/// A change to durable state, reported as it is applied in memory.
#[derive(Debug)]
pub enum Change {
    /// A retained message was stored (or deleted, for an empty payload).
    Retained(Arc<Message>),
    /// A persistent session began (`fresh`) or was resumed.
    SessionOpened {
        client_id: Arc<str>,
        username: Option<String>,
        /// The auth scope it logged in on ([`Principal::scope`](crate::broker::auth::Principal)).
        scope: usize,
        fresh: bool,
        /// How long it is kept after disconnect; `None` for ever.
        expiry: Option<Duration>,
    },
    /// Its connection ended; it is kept for `expiry`.
    SessionDetached {
        client_id: Arc<str>,
        expiry: Option<Duration>,
    },
    /// A session and everything queued for it was discarded.
    SessionRemoved { client_id: Arc<str> },
    Subscribed {
        client_id: Arc<str>,
        filter: TopicFilter,
        options: SubscriptionOptions,
        identifier: Option<u32>,
    },
    Unsubscribed {
        client_id: Arc<str>,
        filter: TopicFilter,
    },
    /// A QoS 1/2 message joined the back of a persistent session's queue.
    Queued {
        client_id: Arc<str>,
        delivery: Delivery,
    },
    /// The front QoS 1/2 message of the queue went out with this packet id.
    Sent { client_id: Arc<str>, packet_id: u16 },
    /// The front QoS 1/2 message of the queue was dropped unsent.
    Skipped { client_id: Arc<str> },
    /// The QoS 1/2 part of the queue is now exactly `deliveries`.
    QueueReplaced {
        client_id: Arc<str>,
        deliveries: Vec<Delivery>,
    },
    /// PUBACK or PUBCOMP from the client.
    Acked { client_id: Arc<str>, packet_id: u16 },
    /// PUBREC from the client.
    Released { client_id: Arc<str>, packet_id: u16 },
    /// A QoS 2 PUBLISH from the client, first seen.
    Received { client_id: Arc<str>, packet_id: u16 },
    /// PUBREL from the client.
    ReceiveDone { client_id: Arc<str>, packet_id: u16 },
    /// A will now waits for its delay, until `due`.
    WillPending {
        client_id: Arc<str>,
        will: Arc<Message>,
        due: SystemTime,
    },
    /// The will no longer waits (sent, or the client came back).
    WillCleared { client_id: Arc<str> },
    /// The `$SYS` lifetime counters.
    Totals(format::Totals),
}

impl Change {
    /// The client the change is about ("" for broker-wide changes).
    pub fn client_id(&self) -> &str {
        match self {
            Change::Retained(_) | Change::Totals(_) => "",
            Change::SessionOpened { client_id, .. }
            | Change::SessionDetached { client_id, .. }
            | Change::SessionRemoved { client_id }
            | Change::Subscribed { client_id, .. }
            | Change::Unsubscribed { client_id, .. }
            | Change::Queued { client_id, .. }
            | Change::Sent { client_id, .. }
            | Change::Skipped { client_id }
            | Change::QueueReplaced { client_id, .. }
            | Change::Acked { client_id, .. }
            | Change::Released { client_id, .. }
            | Change::Received { client_id, .. }
            | Change::ReceiveDone { client_id, .. }
            | Change::WillPending { client_id, .. }
            | Change::WillCleared { client_id } => client_id,
        }
    }
}

thread_local! {
    /// The highest sequence number recorded on this thread since the last
    /// [`take_recorded_here`]. A connection task takes it before and after each
    /// synchronous stretch of handling (no `.await` in between), so it sees
    /// exactly what it recorded, not what a timer or another task left.
    static RECORDED_HERE: Cell<u64> = const { Cell::new(0) };
}

/// The highest sequence number recorded on this thread since the last call; 0 if
/// none.
pub fn take_recorded_here() -> u64 {
    RECORDED_HERE.with(|cell| cell.replace(0))
}

/// Where durable state goes.
#[derive(Debug, Clone, Default)]
pub enum Store {
    /// Nothing survives a restart.
    #[default]
    Memory,
    /// Kept by a journal (`persistence true`).
    Kept(Arc<Journal>),
}

impl Store {
    /// Whether changes are recorded at all.
    pub fn is_kept(&self) -> bool {
        matches!(self, Store::Kept(_))
    }

    /// Whether a QoS 1 publisher may be answered once its persistent subscribers
    /// acknowledged the message, before its queueing is durable (`confirm.rs`):
    /// in durable mode. In snapshot mode nothing waits for the disk anyway.
    pub fn confirms_on_delivery(&self) -> bool {
        matches!(self, Store::Kept(journal) if journal.mode() == PersistenceMode::Durable)
    }

    /// Notes a change; called under the lock that orders it.
    pub fn record(&self, change: Change) {
        if let Store::Kept(journal) = self {
            let sequence = journal.push(change);
            RECORDED_HERE.with(|cell| cell.set(cell.get().max(sequence)));
        }
    }

    /// Notes a change nothing the broker sends depends on (a QoS 1 PUBLISH going
    /// out, an acknowledgement that completes a delivery): it is written in order
    /// with the rest, but no connection waits for it. Losing it in a crash means a
    /// QoS 1 message is sent again, which QoS 1 allows.
    pub fn record_unwaited(&self, change: Change) {
        if let Store::Kept(journal) = self {
            journal.push(change);
        }
    }

    /// Notes the queueing of a QoS 1 delivery counted by `confirmation`: the
    /// publisher's answer waits for it to be durable only while the subscriber
    /// has not acknowledged it (see `confirm.rs`).
    pub fn record_counted(&self, change: Change, confirmation: &confirm::Confirmation) {
        if let Store::Kept(journal) = self {
            confirmation.count(journal.push(change));
        }
    }

    /// Opens a group of changes that become durable together or not at all (see
    /// [`Journal::open_group`]); `None` when nothing is kept.
    pub fn group(&self) -> Option<Group> {
        match self {
            Store::Memory => None,
            Store::Kept(journal) => Some(journal.open_group()),
        }
    }

    /// Says that `sequence` will be waited for, so the writer takes it at once.
    pub fn want(&self, sequence: u64) {
        if let Store::Kept(journal) = self {
            journal.want(sequence);
        }
    }

    /// Says that `sequence` will be waited for unless subscribers release the
    /// wait first ([`Journal::want_soon`]).
    pub fn want_soon(&self, sequence: u64) {
        if let Store::Kept(journal) = self {
            journal.want_soon(sequence);
        }
    }

    /// Completes once every change up to `sequence` is durable, without asking
    /// the writer to hurry; an error once the journal stopped.
    pub async fn durable(&self, sequence: u64) -> std::io::Result<()> {
        match self {
            Store::Memory => Ok(()),
            Store::Kept(journal) => journal.durable(sequence).await,
        }
    }

    /// Whether `sequence` is durable already.
    pub fn is_synced(&self, sequence: u64) -> bool {
        match self {
            Store::Memory => true,
            Store::Kept(journal) => journal.is_synced(sequence),
        }
    }

    /// Completes once every change up to `sequence` is durable; an error once the
    /// journal stopped without making it so.
    pub async fn synced(&self, sequence: u64) -> std::io::Result<()> {
        match self {
            Store::Memory => Ok(()),
            Store::Kept(journal) => journal.synced(sequence).await,
        }
    }

    /// False while the store cannot write (a full disk): QoS 1/2 messages are
    /// refused rather than acknowledged.
    pub fn accepting(&self) -> bool {
        match self {
            Store::Memory => true,
            Store::Kept(journal) => journal.accepting(),
        }
    }
}
