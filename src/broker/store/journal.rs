//! [`Journal`]: the writer thread behind `persistence true`, with group commit,
//! compaction and what happens when the disk is full.
//!
//! Connection tasks push [`Change`]s onto a list under a mutex and get a sequence
//! number back. One thread takes the whole list whenever it is free, turns it into
//! records (`image.rs`), writes them as one checksummed frame (or a few, for a very
//! large batch) with one `write`, and calls `fdatasync` once. While it syncs, the
//! next batch collects behind it: one fsync covers every change that arrived during
//! the previous one, so throughput comes from batching, never from skipping the
//! sync. Then it publishes the highest durable sequence number and wakes the tasks
//! waiting for it.
//!
//! **Compaction.** The thread's [`Image`] is exactly what a restart would recover.
//! When the file has grown to twice what the image took when last written (and at
//! least `compact_at`), the image is written to `FILE.new`, synced, and renamed over
//! the file, then the directory is synced. The file stays within about twice the
//! live state, and a restart reads at most that.
//!
//! **A full disk.** A failed write or sync leaves the file cut back to its last
//! durable length and the batch held. Nothing in it is acknowledged; the store
//! stops accepting QoS 1/2 messages ([`Journal::accepting`]), and retries every
//! second; once a write succeeds, everything held becomes durable in order and
//! the waiting acknowledgements go out.
//!
//! **Snapshot mode** (mosquitto's behaviour): changes only update the image, every
//! commit is immediate, and the image is written whole every `autosave_interval`
//! seconds (or after that many changes, with `autosave_on_changes`) and at exit.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::format::{self, Record};
use super::image::Image;
use super::{Change, PersistenceMode};
use crate::broker::log::Logger;

/// Bytes of a snapshot frame's body before another frame begins (a snapshot is
/// written whole and renamed into place, so its frames are never torn).
const FRAME_TARGET: usize = 1024 * 1024;
/// Bytes of log records held before they are sealed as a frame of their own. A
/// frame is written and synced before the next, so a crash still tears only the
/// last one, and none nears what a reader accepts (`format::MAX_FRAME`), even
/// with one largest message beyond the cap. A frame ends between changes and
/// never inside a group, so it may pass the cap by what a group holds.
pub const FRAME_CAP: usize = 64 * 1024 * 1024;
/// How far ahead of the log the file is filled with zeros. Frames are then
/// written over blocks that already exist, so `fdatasync` flushes the data alone:
/// an append that grows the file also makes the filesystem commit its new size,
/// which roughly doubles the cost of every sync.
const PREALLOCATE: u64 = 8 * 1024 * 1024;
/// The smallest file compaction bothers with.
pub const COMPACT_AT: u64 = 16 * 1024 * 1024;
/// How long changes nobody waits for (a QoS 1 PUBLISH going out, its PUBACK, a
/// timer's) stay pending before they are written on their own.
const UNWAITED_LINGER: Duration = Duration::from_millis(5);
/// How long changes wait when a task waits for them but may be released sooner
/// by subscribers' acknowledgements ([`Journal::want_soon`]): long enough for an
/// online subscriber's PUBACK to come, so the delivery is not written at all.
const SOON_LINGER: Duration = Duration::from_millis(1);
/// How often a failed write is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// Where and how the journal writes.
#[derive(Debug, Clone)]
pub struct JournalSettings {
    pub path: PathBuf,
    pub mode: PersistenceMode,
    /// `autosave_interval`: seconds, or changes with `autosave_on_changes`; 0 is
    /// "at exit only" (snapshot mode).
    pub autosave_interval: u64,
    pub autosave_on_changes: bool,
    /// The file is compacted once it passes both this and twice its size after
    /// the last compaction.
    pub compact_at: u64,
    /// [`FRAME_CAP`], unless a test wants smaller frames.
    pub frame_cap: usize,
}

/// What the journal did, for `$SYS` and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalFigures {
    /// fdatasync calls that made a batch durable.
    pub syncs: u64,
    /// Bytes appended (frames), compactions and snapshots not counted.
    pub bytes_appended: u64,
    /// Changes recorded.
    pub changes: u64,
    /// Changes never written: deliveries queued, sent and acknowledged within
    /// one batch (`store::elide`).
    pub dropped: u64,
    pub compactions: u64,
    /// Bytes of the file now.
    pub file_bytes: u64,
    /// Writes that failed (a full disk).
    pub write_failures: u64,
}

/// Changes the writer took, with where a frame may end.
struct Batch {
    changes: Vec<Change>,
    /// Per change: whether a frame may end after it ([`Pending::frame_may_end`]).
    frame_may_end: Vec<bool>,
}

#[derive(Debug, Default)]
struct Pending {
    changes: Vec<Change>,
    recorded: u64,
    /// The first sequence number of each open group ([`Journal::open_group`]):
    /// the writer takes only what was recorded before the oldest.
    open_groups: Vec<u64>,
    /// Closed groups as (first, last) sequence numbers, until the writer has
    /// taken them: groups interleave, so one that began before an open group's
    /// start and ended after it must not be cut there, and a batch written as
    /// several frames is cut between groups only.
    closed_groups: Vec<(u64, u64)>,
    /// The highest sequence number a task will wait for ([`Journal::want`]).
    wanted: u64,
    /// The writer sleeps until woken: the next change must wake it.
    asleep: bool,
    stop: bool,
}

impl Pending {
    /// How many of the pending changes the writer may take now: those before the
    /// oldest open group, and before any closed group that runs past that point,
    /// or all of them when stopping.
    fn takeable(&self) -> usize {
        let first = self.recorded + 1 - self.changes.len() as u64;
        let Some(mut cut) = self
            .open_groups
            .iter()
            .min()
            .copied()
            .filter(|_| !self.stop)
        else {
            return self.changes.len();
        };
        // A closed group across the cut moves it back to the group's start; that
        // may put another closed group across it.
        while let Some(start) = self
            .closed_groups
            .iter()
            .filter(|(start, last)| *start < cut && *last >= cut)
            .map(|(start, _)| *start)
            .min()
        {
            cut = start;
        }
        (cut.saturating_sub(first) as usize).min(self.changes.len())
    }

    /// Forgets the closed groups the writer has taken whole (everything up to
    /// `taken`).
    fn taken_upto(&mut self, taken: u64) {
        self.closed_groups.retain(|(_, last)| *last > taken);
    }

    /// For each of the first `count` pending changes, whether a frame may end
    /// after it: not inside a group, whose changes must reach the file in one
    /// frame.
    fn frame_may_end(&self, count: usize) -> Vec<bool> {
        if self.closed_groups.is_empty() {
            return vec![true; count];
        }
        let first = self.recorded + 1 - self.changes.len() as u64;
        // +1 where a group's inside begins, -1 at its last change.
        let mut depth = vec![0i64; count + 1];
        for &(start, last) in &self.closed_groups {
            let (Some(from), Some(to)) = (start.checked_sub(first), last.checked_sub(first)) else {
                continue;
            };
            let (from, to) = (from as usize, (to as usize).min(count));
            if from < to {
                depth[from] += 1;
                depth[to] -= 1;
            }
        }
        let mut inside = 0;
        depth[..count]
            .iter()
            .map(|step| {
                inside += step;
                inside == 0
            })
            .collect()
    }
}

/// Changes that become durable together or not at all ([`Journal::open_group`]);
/// the group closes when this is dropped.
#[derive(Debug)]
pub struct Group {
    journal: Arc<Journal>,
    start: u64,
}

impl Drop for Group {
    fn drop(&mut self) {
        let mut pending = lock(&self.journal.pending);
        if let Some(at) = pending.open_groups.iter().position(|s| *s == self.start) {
            pending.open_groups.swap_remove(at);
        }
        let last = pending.recorded;
        if last >= self.start {
            pending.closed_groups.push((self.start, last));
        }
        let waiting = !pending.changes.is_empty();
        drop(pending);
        if waiting {
            self.journal.wake.notify_one();
        }
    }
}

/// The shared side of the store: what connection tasks push to and wait on.
#[derive(Debug)]
pub struct Journal {
    mode: PersistenceMode,
    pending: Mutex<Pending>,
    wake: Condvar,
    durable: AtomicU64,
    /// The highest sequence number a task waits for unless subscribers release
    /// it first ([`Journal::want_soon`]).
    wanted_soon: AtomicU64,
    /// The writer thread has ended; nothing more becomes durable.
    stopped: AtomicBool,
    /// The last write failed; QoS 1/2 messages are refused until one succeeds.
    failing: AtomicBool,
    notify: tokio::sync::Notify,
    writer: Mutex<Option<JoinHandle<()>>>,
    syncs: AtomicU64,
    bytes_appended: AtomicU64,
    compactions: AtomicU64,
    dropped: AtomicU64,
    file_bytes: AtomicU64,
    write_failures: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Journal {
    /// A journal whose writer has not started: changes pushed now wait for
    /// [`Journal::start`].
    pub fn new(mode: PersistenceMode) -> Arc<Journal> {
        Arc::new(Journal {
            mode,
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            durable: AtomicU64::new(0),
            wanted_soon: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            failing: AtomicBool::new(false),
            notify: tokio::sync::Notify::new(),
            writer: Mutex::new(None),
            syncs: AtomicU64::new(0),
            bytes_appended: AtomicU64::new(0),
            compactions: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            file_bytes: AtomicU64::new(0),
            write_failures: AtomicU64::new(0),
        })
    }

    /// Starts the writer thread over `file` (which holds `image`, `file_len` bytes).
    pub fn start(
        self: &Arc<Self>,
        settings: JournalSettings,
        image: Image,
        file: File,
        file_len: u64,
        log: Logger,
    ) -> std::io::Result<()> {
        self.file_bytes.store(file_len, Ordering::Relaxed);
        let writer = Writer {
            journal: Arc::clone(self),
            settings,
            image,
            file,
            file_len,
            allocated: file_len,
            preallocate: true,
            base_len: file_len,
            unwritten: Vec::new(),
            sealed: std::collections::VecDeque::new(),
            frame: Vec::new(),
            unwritten_upto: 0,
            log,
            changes_since_save: 0,
            last_save: Instant::now(),
        };
        let handle = std::thread::Builder::new()
            .name("rbroker-store".into())
            .spawn(move || writer.run())?;
        *lock(&self.writer) = Some(handle);
        Ok(())
    }

    pub fn mode(&self) -> PersistenceMode {
        self.mode
    }

    /// Adds a change; returns its sequence number.
    ///
    /// The writer takes a batch when a task says it will wait for a change in
    /// it ([`Journal::want`]), not when the change arrives: a connection records
    /// all it handled from one read before it waits, so a batch holds whole
    /// reads (on a shared core a writer woken by the first change would cut in
    /// right after it), changes a publisher waits for unless its subscribers
    /// acknowledge first go within `SOON_LINGER` ([`Journal::want_soon`]), and
    /// changes nobody waits for ride along with the next batch, or go on their
    /// own after [`UNWAITED_LINGER`]. A change wakes the writer only from its
    /// long sleep (after `SOON_LINGER` with nothing to do), to start that
    /// clock.
    pub(super) fn push(&self, change: Change) -> u64 {
        let mut pending = lock(&self.pending);
        pending.changes.push(change);
        pending.recorded += 1;
        let sequence = pending.recorded;
        let asleep = std::mem::take(&mut pending.asleep);
        drop(pending);
        if asleep {
            self.wake.notify_one();
        }
        sequence
    }

    /// Opens a group: the changes recorded from now until the returned guard is
    /// dropped reach the file in one frame, so no durable prefix holds some of
    /// them without the rest. Hold it only across synchronous work (a group the
    /// writer waits for stalls every acknowledgement).
    pub fn open_group(self: &Arc<Self>) -> Group {
        let mut pending = lock(&self.pending);
        let start = pending.recorded + 1;
        pending.open_groups.push(start);
        Group {
            journal: Arc::clone(self),
            start,
        }
    }

    /// Tells the writer a task will wait for `sequence`: the batch holding it
    /// is taken now rather than after a few milliseconds.
    pub fn want(&self, sequence: u64) {
        if self.is_synced(sequence) {
            return;
        }
        let first_to_want = {
            let mut pending = lock(&self.pending);
            let first = pending.wanted < sequence;
            pending.wanted = pending.wanted.max(sequence);
            first
        };
        if first_to_want {
            self.wake.notify_one();
        }
    }

    /// Tells the writer a task will wait for `sequence` unless the subscribers
    /// of its QoS 1 messages acknowledge them first (`confirm.rs`): the batch
    /// holding it is taken within `SOON_LINGER`, which gives those
    /// acknowledgements time to come and the deliveries time to complete
    /// within the batch, unwritten.
    ///
    /// The writer is not woken for it: recording the change woke it if it slept,
    /// and while changes wait it looks at this every `SOON_LINGER`, so a
    /// message to an online subscriber costs no context switch.
    pub fn want_soon(&self, sequence: u64) {
        self.wanted_soon.fetch_max(sequence, Ordering::AcqRel);
    }

    pub fn is_synced(&self, sequence: u64) -> bool {
        self.durable.load(Ordering::Acquire) >= sequence
    }

    pub fn accepting(&self) -> bool {
        !self.failing.load(Ordering::Relaxed) && !self.stopped.load(Ordering::Relaxed)
    }

    /// Completes once `sequence` is durable.
    pub async fn synced(&self, sequence: u64) -> std::io::Result<()> {
        self.want(sequence);
        self.durable(sequence).await
    }

    /// Completes once `sequence` is durable, without asking the writer to hurry.
    pub async fn durable(&self, sequence: u64) -> std::io::Result<()> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_synced(sequence) {
                return Ok(());
            }
            if self.stopped.load(Ordering::Acquire) {
                return Err(std::io::Error::other("the store stopped"));
            }
            notified.await;
        }
    }

    /// Writes what is pending (a final snapshot in snapshot mode) and ends the
    /// writer thread. Blocks until it has.
    pub fn stop(&self) {
        lock(&self.pending).stop = true;
        self.wake.notify_one();
        let handle = lock(&self.writer).take();
        if let Some(handle) = handle {
            let _ = handle.join();
        }
    }

    pub fn figures(&self) -> JournalFigures {
        JournalFigures {
            syncs: self.syncs.load(Ordering::Relaxed),
            bytes_appended: self.bytes_appended.load(Ordering::Relaxed),
            changes: lock(&self.pending).recorded,
            dropped: self.dropped.load(Ordering::Relaxed),
            compactions: self.compactions.load(Ordering::Relaxed),
            file_bytes: self.file_bytes.load(Ordering::Relaxed),
            write_failures: self.write_failures.load(Ordering::Relaxed),
        }
    }

    fn publish_durable(&self, upto: u64) {
        self.durable.fetch_max(upto, Ordering::AcqRel);
        self.notify.notify_waiters();
    }
}

/// The writer thread's own state.
struct Writer {
    journal: Arc<Journal>,
    settings: JournalSettings,
    image: Image,
    file: File,
    /// Where the next frame goes: the end of the log.
    file_len: u64,
    /// The file's size: the log, then zeros ([`PREALLOCATE`]).
    allocated: u64,
    /// Cleared once filling ahead failed (the disk is nearly full); set again by
    /// compaction.
    preallocate: bool,
    /// The file's length after the last compaction.
    base_len: u64,
    /// Records not yet durable: the next frame's body, held across a failed
    /// write so that each write is one frame (a crash can tear only the last).
    unwritten: Vec<u8>,
    /// Earlier frame bodies that reached [`FRAME_CAP`], written before `unwritten`.
    sealed: std::collections::VecDeque<Vec<u8>>,
    /// The frame being written.
    frame: Vec<u8>,
    unwritten_upto: u64,
    log: Logger,
    changes_since_save: u64,
    last_save: Instant,
}

impl Writer {
    fn run(mut self) {
        // However the thread ends, waiters learn that nothing more becomes durable.
        let _stopped = StoppedOnExit(Arc::clone(&self.journal));
        let mut records = Vec::new();
        loop {
            let (batch, upto, stop) = self.next_batch();
            let Batch {
                mut changes,
                mut frame_may_end,
            } = batch;
            let count = changes.len() as u64;
            if self.settings.mode == PersistenceMode::Durable {
                let dropped = super::elide::drop_completed_deliveries(
                    &mut changes,
                    &mut frame_may_end,
                    &self.image,
                );
                self.journal
                    .dropped
                    .fetch_add(dropped as u64, Ordering::Relaxed);
            }
            let clock = format::Clock::now();
            let durable = self.settings.mode == PersistenceMode::Durable;
            for (change, may_end) in changes.into_iter().zip(frame_may_end) {
                self.image.translate(change, &mut records);
                for record in records.drain(..) {
                    let mark = self.unwritten.len();
                    if durable {
                        format::encode(&record, &mut self.unwritten, &clock);
                    }
                    if let Err(error) = self.image.apply(record) {
                        // Never written: a replay would stop on it.
                        self.unwritten.truncate(mark);
                        self.log
                            .error(format_args!("store image: {error}; change dropped."));
                    }
                }
                // A frame ends between changes, never inside a group.
                if may_end && self.unwritten.len() >= self.settings.frame_cap {
                    let body = std::mem::take(&mut self.unwritten);
                    self.sealed.push_back(body);
                }
            }
            self.unwritten_upto = self.unwritten_upto.max(upto);
            match self.settings.mode {
                PersistenceMode::Durable => self.commit(),
                PersistenceMode::Snapshot => {
                    self.journal.publish_durable(upto);
                    self.changes_since_save += count;
                    if self.autosave_due() {
                        self.save();
                    }
                }
            }
            if self.settings.mode == PersistenceMode::Durable
                && self.nothing_held()
                && self.file_len
                    > self
                        .settings
                        .compact_at
                        .max(self.base_len.saturating_mul(2))
            {
                self.compact();
            }
            if stop {
                if self.settings.mode == PersistenceMode::Snapshot {
                    self.save();
                } else if self.nothing_held() {
                    // A clean stop leaves no zeros after the log.
                    let _ = self
                        .file
                        .set_len(self.file_len)
                        .and_then(|()| self.file.sync_all());
                } else {
                    self.log.error(format_args!(
                        "{} bytes of changes could not be written to {} before exit.",
                        self.unwritten.len() + self.sealed.iter().map(Vec::len).sum::<usize>(),
                        self.settings.path.display()
                    ));
                }
                break;
            }
        }
        let figures = self.journal.figures();
        self.log.notice(format_args!(
            "Store {}: {} changes ({} not written: delivered within their batch), {} syncs, {} bytes appended, {} compactions.",
            self.settings.path.display(),
            figures.changes,
            figures.dropped,
            figures.syncs,
            figures.bytes_appended,
            figures.compactions
        ));
    }

    /// Waits for changes, a stop, or a timer (a retry, an autosave).
    fn next_batch(&mut self) -> (Batch, u64, bool) {
        let mut pending = lock(&self.journal.pending);
        let mut unwanted_since: Option<Instant> = None;
        // Right after a batch the writer sleeps lightly: changes arriving then do
        // not wake it (each would cost a context switch), and it looks again
        // after SOON_LINGER.
        let mut light = true;
        loop {
            let takeable = pending.takeable();
            if pending.stop {
                break;
            }
            let own = self.timeout();
            let lightly = takeable == 0 && light && own > SOON_LINGER;
            let timeout = if takeable > 0 {
                // Someone waits for a change not taken yet: now. Otherwise the
                // changes wait a little for company.
                let lingered = unwanted_since.get_or_insert_with(Instant::now).elapsed();
                let wanted_soon = self.journal.wanted_soon.load(Ordering::Acquire);
                let linger = if wanted_soon > self.unwritten_upto {
                    SOON_LINGER
                } else {
                    UNWAITED_LINGER
                };
                if pending.wanted > self.unwritten_upto || lingered >= linger {
                    break;
                }
                // Looks again within SOON_LINGER: a task may want them soon.
                linger.saturating_sub(lingered).min(SOON_LINGER).min(own)
            } else if lightly {
                SOON_LINGER
            } else {
                pending.asleep = true;
                own
            };
            if timeout.is_zero() {
                break;
            }
            let (guard, result) = self
                .journal
                .wake
                .wait_timeout(pending, timeout)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            pending = guard;
            pending.asleep = false;
            if result.timed_out() && takeable == 0 {
                if lightly {
                    light = false;
                    continue;
                }
                // A timer of the writer's own (a retry, an autosave) is due.
                break;
            }
        }
        let take = pending.takeable();
        let upto = pending.recorded - (pending.changes.len() - take) as u64;
        let frame_may_end = pending.frame_may_end(take);
        let changes = if take == pending.changes.len() {
            std::mem::take(&mut pending.changes)
        } else {
            pending.changes.drain(..take).collect()
        };
        pending.taken_upto(upto);
        (
            Batch {
                changes,
                frame_may_end,
            },
            upto,
            pending.stop,
        )
    }

    fn timeout(&self) -> Duration {
        if !self.nothing_held() {
            return RETRY;
        }
        match self.settings.mode {
            PersistenceMode::Snapshot
                if self.settings.autosave_interval > 0 && !self.settings.autosave_on_changes =>
            {
                Duration::from_secs(self.settings.autosave_interval)
                    .saturating_sub(self.last_save.elapsed())
                    .max(Duration::from_millis(1))
            }
            _ => Duration::from_secs(3600),
        }
    }

    fn autosave_due(&self) -> bool {
        let interval = self.settings.autosave_interval;
        if interval == 0 || self.changes_since_save == 0 {
            return false;
        }
        if self.settings.autosave_on_changes {
            self.changes_since_save >= interval
        } else {
            self.last_save.elapsed() >= Duration::from_secs(interval)
        }
    }

    /// Whether every recorded change has been written (or there was none).
    fn nothing_held(&self) -> bool {
        self.unwritten.is_empty() && self.sealed.is_empty()
    }

    /// Writes each held frame body (sealed ones first) as a frame of its own,
    /// synced before the next.
    fn write_held(&mut self) -> std::io::Result<()> {
        while let Some(body) = self.sealed.pop_front() {
            if let Err(error) = self.append(&body) {
                self.sealed.push_front(body);
                return Err(error);
            }
        }
        if !self.unwritten.is_empty() {
            let body = std::mem::take(&mut self.unwritten);
            let result = self.append(&body);
            self.unwritten = body;
            result?;
            self.unwritten.clear();
        }
        Ok(())
    }

    /// Writes and syncs what is held, then publishes it as durable; on failure
    /// keeps it for the next try.
    fn commit(&mut self) {
        if self.nothing_held() {
            self.journal.publish_durable(self.unwritten_upto);
            return;
        }
        let result = self.write_held();
        match result {
            Ok(()) => {
                if self.unwritten.capacity() > 4 * FRAME_TARGET {
                    self.unwritten = Vec::new();
                    self.frame = Vec::new();
                }
                if self.journal.failing.swap(false, Ordering::Relaxed) {
                    self.log.notice(format_args!(
                        "Store {} is writable again; acknowledgements resume.",
                        self.settings.path.display()
                    ));
                }
                self.journal.publish_durable(self.unwritten_upto);
            }
            Err(error) => {
                self.journal.write_failures.fetch_add(1, Ordering::Relaxed);
                // The next try writes these records and any later ones as one frame
                // at the same offset, over whatever part of this one reached the
                // file. A compacted file holds all of them too, and may fit where
                // the log no longer does (a file-size limit, a nearly full disk).
                if self.compact() {
                    self.unwritten.clear();
                    self.sealed.clear();
                    if self.journal.failing.swap(false, Ordering::Relaxed) {
                        self.log.notice(format_args!(
                            "Store {} is writable again; acknowledgements resume.",
                            self.settings.path.display()
                        ));
                    }
                    self.journal.publish_durable(self.unwritten_upto);
                    return;
                }
                if !self.journal.failing.swap(true, Ordering::Relaxed) {
                    self.log.error(format_args!(
                        "unable to write to store {}: {error}. QoS 1 and 2 messages are refused until it can be written.",
                        self.settings.path.display()
                    ));
                }
            }
        }
    }

    /// Writes `body` as one frame at the end of the log and syncs it.
    fn append(&mut self, body: &[u8]) -> std::io::Result<()> {
        self.frame.clear();
        format::put_frame(&mut self.frame, body);
        let end = self.file_len + self.frame.len() as u64;
        if end > self.allocated {
            self.extend(end)?;
        }
        write_all_at(&self.file, &self.frame, self.file_len)?;
        self.file.sync_data()?;
        let written = self.frame.len() as u64;
        self.file_len += written;
        self.journal.syncs.fetch_add(1, Ordering::Relaxed);
        self.journal
            .bytes_appended
            .fetch_add(written, Ordering::Relaxed);
        self.journal
            .file_bytes
            .store(self.file_len, Ordering::Relaxed);
        Ok(())
    }

    /// Fills the file with zeros to at least `end` (and [`PREALLOCATE`] beyond
    /// while that succeeds), and makes the new size durable.
    fn extend(&mut self, end: u64) -> std::io::Result<()> {
        let ahead = end + PREALLOCATE;
        if self.preallocate {
            match fill_zeros(&self.file, self.allocated, ahead) {
                Ok(()) => {
                    self.allocated = ahead;
                    return self.file.sync_all();
                }
                Err(_) => {
                    self.preallocate = false;
                    let _ = self.file.set_len(self.allocated);
                }
            }
        }
        if let Err(error) = fill_zeros(&self.file, self.allocated, end) {
            let _ = self.file.set_len(self.allocated);
            return Err(error);
        }
        self.allocated = end;
        self.file.sync_all()
    }

    /// Rewrites the file from the image (durable mode); whether it did.
    fn compact(&mut self) -> bool {
        match write_image(&self.settings.path, &mut self.image) {
            Ok((file, len)) => {
                self.file = file;
                self.file_len = len;
                self.allocated = len;
                self.preallocate = true;
                self.base_len = len;
                self.journal.compactions.fetch_add(1, Ordering::Relaxed);
                self.journal.file_bytes.store(len, Ordering::Relaxed);
                true
            }
            Err(error) => {
                // Not again until the file has grown as much once more.
                self.base_len = self.file_len;
                self.log.warning(format_args!(
                    "Warning: unable to compact store {}: {error}.",
                    self.settings.path.display()
                ));
                false
            }
        }
    }

    /// Writes the image whole (snapshot mode), as mosquitto's autosave does.
    fn save(&mut self) {
        self.log.notice(format_args!(
            "Saving in-memory database to {}.",
            self.settings.path.display()
        ));
        match write_image(&self.settings.path, &mut self.image) {
            Ok((_, len)) => {
                self.journal.file_bytes.store(len, Ordering::Relaxed);
                self.journal.syncs.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => self.log.error(format_args!(
                "Error saving in-memory database to {}: {error}.",
                self.settings.path.display()
            )),
        }
        self.changes_since_save = 0;
        self.last_save = Instant::now();
    }
}

/// Writes all of `bytes` at `offset`.
fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
    }
    #[cfg(not(unix))]
    {
        use std::io::{Seek, SeekFrom};
        let mut file = file;
        file.seek(SeekFrom::Start(offset))?;
        file.write_all(bytes)
    }
}

/// Writes zeros over `[from, to)`.
fn fill_zeros(file: &File, from: u64, to: u64) -> std::io::Result<()> {
    const CHUNK: usize = 256 * 1024;
    let zeros = vec![0u8; CHUNK];
    let mut at = from;
    while at < to {
        let n = CHUNK.min((to - at) as usize);
        write_all_at(file, &zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// Marks the journal stopped when the writer thread ends, by return or panic.
struct StoppedOnExit(Arc<Journal>);

impl Drop for StoppedOnExit {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::Release);
        self.0.notify.notify_waiters();
    }
}

/// `PATH.new`, next to the store file.
fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".new");
    PathBuf::from(name)
}

/// Writes `image` as a complete store file: to `PATH.new`, synced, renamed over
/// `PATH`, with the directory synced. Returns the file (the same open file, so it
/// is the one the path names) and its length. Expired retained messages are
/// dropped from the image first, as from the file.
pub fn write_image(path: &Path, image: &mut Image) -> std::io::Result<(File, u64)> {
    image.purge_expired_retained();
    let image = &*image;
    let temporary = temporary_path(path);
    let result = (|| {
        let mut file = create_private(&temporary)?;
        let mut out = Vec::with_capacity(FRAME_TARGET + 64 * 1024);
        out.extend_from_slice(&format::header());
        let mut body = Vec::new();
        let mut failed = None;
        let mut total = 0u64;
        let clock = format::Clock::now();
        image.snapshot(|record: &Record| {
            if failed.is_some() {
                return;
            }
            format::encode(record, &mut body, &clock);
            if body.len() >= FRAME_TARGET {
                format::put_frame(&mut out, &body);
                body.clear();
                total += out.len() as u64;
                if let Err(error) = file.write_all(&out) {
                    failed = Some(error);
                }
                out.clear();
            }
        });
        if let Some(error) = failed {
            return Err(error);
        }
        if !body.is_empty() {
            format::put_frame(&mut out, &body);
        }
        total += out.len() as u64;
        file.write_all(&out)?;
        file.sync_all()?;
        Ok((file, total))
    })();
    let (file, total) = match result {
        Ok(done) => done,
        Err(error) => {
            let _ = std::fs::remove_file(&temporary);
            return Err(error);
        }
    };
    std::fs::rename(&temporary, path)?;
    // Renamed: from here on the new file is the store, whatever else fails. A
    // directory that cannot be synced leaves the rename to the filesystem's
    // next commit.
    if let Err(error) = sync_directory(path) {
        tracing::warn!(%error, "could not sync the store's directory after a rename");
    }
    Ok((file, total))
}

/// Creates a file only its owner may read, as mosquitto creates its database.
fn create_private(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Makes a rename in the file's directory durable.
fn sync_directory(path: &Path) -> std::io::Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    File::open(directory)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::config::LogTypes;
    use crate::broker::message::Message;
    use crate::broker::store::{Store, recover};
    use crate::protocol::{QoS, TopicName};
    use bytes::Bytes;

    fn retained(topic: &str, payload: &str) -> Change {
        Change::Retained(Arc::new(Message::new(
            TopicName::new(topic).expect("topic"),
            Bytes::from(payload.to_owned()),
            QoS::AtLeastOnce,
            true,
        )))
    }

    fn settings(path: &Path, compact_at: u64) -> JournalSettings {
        JournalSettings {
            path: path.to_path_buf(),
            mode: PersistenceMode::Durable,
            autosave_interval: 0,
            autosave_on_changes: false,
            compact_at,
            frame_cap: FRAME_CAP,
        }
    }

    fn open(path: &Path) -> (Image, File, u64) {
        let (image, file, len, _) =
            recover::open(path, &Logger::in_memory(LogTypes::ALL)).expect("open");
        (image, file, len)
    }

    /// A journal on a fresh store at `path`, what starts its writer, and a
    /// runtime to wait on it.
    fn journal_at(
        path: &Path,
        settings: JournalSettings,
    ) -> (Arc<Journal>, Store, impl FnOnce(), tokio::runtime::Runtime) {
        let (image, file, len) = open(path);
        let journal = Journal::new(PersistenceMode::Durable);
        let store = Store::Kept(Arc::clone(&journal));
        let starting = Arc::clone(&journal);
        let start = move || {
            starting
                .start(settings, image, file, len, Logger::in_memory(LogTypes::ALL))
                .expect("start");
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        (journal, store, start, runtime)
    }

    #[test]
    fn changes_waiting_together_share_one_sync() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("store.db");
        let (journal, store, start, runtime) = journal_at(&path, settings(&path, u64::MAX));
        // Recorded before the writer runs: one batch, however many changes.
        for n in 0..500 {
            store.record(retained(&format!("t/{n}"), "x"));
        }
        start();
        runtime.block_on(store.synced(500)).expect("synced");
        let figures = journal.figures();
        assert_eq!((figures.changes, figures.syncs), (500, 1));
        journal.stop();
        let (image, _) = recover::read(&path, &Logger::in_memory(LogTypes::ALL)).expect("read");
        assert_eq!(image.counts().1, 500);
    }

    #[test]
    fn a_group_becomes_durable_whole_and_after_what_came_before() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("store.db");
        let (journal, store, start, runtime) = journal_at(&path, settings(&path, u64::MAX));
        store.record(retained("before", "1"));
        let group = store.group().expect("kept");
        store.record(retained("in/1", "x"));
        let log = Logger::in_memory(LogTypes::ALL);
        let frames_before = recover::read(&path, &log).expect("read").1.frames;
        // Both were pending when the writer first ran: without the group they
        // would have been one batch, durable together.
        start();
        runtime.block_on(store.synced(1)).expect("synced");
        assert!(!store.is_synced(2), "a change of an open group is durable");
        store.record(retained("in/2", "x"));
        drop(group);
        runtime.block_on(store.synced(3)).expect("synced");
        assert_eq!(journal.figures().syncs, 2, "{:?}", journal.figures());
        journal.stop();
        let (image, recovery) = recover::read(&path, &log).expect("read");
        assert_eq!((image.counts().1, recovery.frames - frames_before), (3, 2));
    }

    #[test]
    fn interleaved_groups_are_not_cut_where_a_later_one_began() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("store.db");
        let (journal, store, start, runtime) = journal_at(&path, settings(&path, u64::MAX));
        store.record(retained("before", "1"));
        let first = store.group().expect("kept");
        store.record(retained("first/1", "x"));
        let second = store.group().expect("kept");
        store.record(retained("second/1", "x"));
        store.record(retained("first/2", "x"));
        // The first group closes while the second, begun inside it, is open:
        // cutting at the second's start would take half of the first.
        drop(first);
        start();
        runtime.block_on(store.synced(1)).expect("synced");
        assert!(!store.is_synced(2), "the first group was split");
        drop(second);
        runtime.block_on(store.synced(4)).expect("synced");
        journal.stop();
        let (image, _) = recover::read(&path, &Logger::in_memory(LogTypes::ALL)).expect("read");
        assert_eq!(image.counts().1, 4);
    }

    /// Settings whose frames end after 1 KiB, to see batches cut into frames.
    fn small_frames(path: &Path) -> JournalSettings {
        JournalSettings {
            frame_cap: 1024,
            ..settings(path, u64::MAX)
        }
    }

    #[test]
    fn a_frame_never_ends_inside_a_group() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("store.db");
        let (journal, store, start, runtime) = journal_at(&path, small_frames(&path));
        // About 3 KiB in one group: one frame over the cap, not three within it.
        let group = store.group().expect("kept");
        for n in 0..20 {
            store.record(retained(&format!("g/{n}"), &"x".repeat(100)));
        }
        drop(group);
        start();
        runtime.block_on(store.synced(20)).expect("synced");
        assert_eq!(journal.figures().syncs, 1, "{:?}", journal.figures());
        journal.stop();
        let (image, _) = recover::read(&path, &Logger::in_memory(LogTypes::ALL)).expect("read");
        assert_eq!(image.counts().1, 20);
    }

    #[test]
    fn a_large_batch_is_written_as_frames_of_at_most_the_cap() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("store.db");
        let (journal, store, start, runtime) = journal_at(&path, small_frames(&path));
        for n in 0..100 {
            store.record(retained(&format!("t/{n}"), &"x".repeat(100)));
        }
        start();
        runtime.block_on(store.synced(100)).expect("synced");
        // About 150 bytes a record: 1 KiB frames, each synced on its own.
        assert!(journal.figures().syncs >= 10, "{:?}", journal.figures());
        journal.stop();
        let (image, recovery) =
            recover::read(&path, &Logger::in_memory(LogTypes::ALL)).expect("read");
        assert_eq!(image.counts().1, 100);
        assert!(recovery.frames >= 11, "{recovery:?}");
    }

    #[test]
    fn compaction_keeps_the_file_near_the_live_state() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("store.db");
        let (journal, store, start, runtime) = journal_at(&path, settings(&path, 16 * 1024));
        start();
        // Ten topics overwritten 2,000 times each: the log would hold 20,000
        // messages; the state is ten.
        for round in 0..2000 {
            for topic in 0..10 {
                store.record(retained(&format!("t/{topic}"), &format!("{round:0100}")));
            }
            runtime
                .block_on(store.synced(journal.figures().changes))
                .expect("synced");
        }
        let figures = journal.figures();
        assert!(figures.compactions > 10, "{figures:?}");
        assert!(figures.file_bytes < 64 * 1024, "{figures:?}");
        journal.stop();
        let (image, _) = recover::read(&path, &Logger::in_memory(LogTypes::ALL)).expect("read");
        assert_eq!(image.counts(), (10, 10, 0));
        let last = image
            .retained
            .values()
            .map(|n| image.message(*n).expect("stored"));
        assert!(last.into_iter().all(|m| m.payload.ends_with(b"1999")));
    }

    #[test]
    fn zeros_filled_ahead_end_the_log_on_reading() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("store.db");
        let (journal, store, start, runtime) = journal_at(&path, settings(&path, u64::MAX));
        start();
        store.record(retained("a", "1"));
        runtime.block_on(store.synced(1)).expect("synced");
        // As after a crash: the file is the log, then zeros.
        let size = std::fs::metadata(&path).expect("metadata").len();
        assert!(size >= PREALLOCATE, "{size}");
        let log = Logger::in_memory(LogTypes::ALL);
        let (image, recovery) = recover::read(&path, &log).expect("read");
        assert_eq!((image.counts().1, recovery.dropped_bytes), (1, 0));
        journal.stop();
    }
}
