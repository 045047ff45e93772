//! [`Image`]: the durable state as the store's records describe it, rebuilt by
//! replaying them.
//!
//! The same replay serves twice. At startup the records on disk are applied to an
//! empty image, and the broker is built from the result (`recover.rs`). While the
//! broker runs, the writer thread applies every record it writes, so the image is
//! always what a restart would recover; compaction writes the image out as a fresh
//! file of records ([`Image::snapshot`]) instead of reading the old file back.
//!
//! The writer also turns the broker's [`Change`]s into records here
//! ([`Image::translate`]): a message is written once and then referred to by
//! number, a session by the number its opening record gave it.

use std::collections::{BTreeMap, VecDeque};

// The writer thread looks these maps up several times per change; FxHash is
// several times cheaper than SipHash, and the keys are the broker's own.
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use super::Change;
use super::format::{Entry, FormatError, Record, Totals, epoch_ms};
use crate::broker::message::Message;
use crate::broker::session::Delivery;
#[cfg(test)]
use crate::protocol::QoS;
use crate::protocol::SubscriptionOptions;

/// A message and how many records of the image refer to it.
#[derive(Debug)]
pub struct StoredMessage {
    pub message: Arc<Message>,
    refs: u32,
}

/// One persistent session as a restart would recover it.
#[derive(Debug, Default)]
pub struct SessionImage {
    pub client_id: Arc<str>,
    pub username: Option<String>,
    /// The auth scope it logged in on.
    pub scope: u32,
    /// Seconds kept after disconnect; `None` for ever.
    pub expiry: Option<u32>,
    /// When its connection ended (ms since the epoch); `None` while connected.
    pub detached_at: Option<u64>,
    pub subscriptions: BTreeMap<String, (SubscriptionOptions, Option<u32>)>,
    /// QoS 1/2 messages not yet sent.
    pub queue: VecDeque<Entry>,
    /// Sent and unfinished, in send order: `None` once PUBREC came (PUBREL is due).
    /// A deque: acknowledgements mostly come in send order, so the front goes.
    pub inflight: VecDeque<(u16, Option<Entry>)>,
    /// Incoming QoS 2 packet ids awaiting PUBREL.
    pub incoming: Vec<u16>,
    /// A will waiting for its delay: (message number, due in ms since the epoch).
    pub will: Option<(u64, u64)>,
}

/// Everything the store keeps.
#[derive(Debug, Default)]
pub struct Image {
    pub messages: HashMap<u64, StoredMessage>,
    /// Topic → message number.
    pub retained: HashMap<String, u64>,
    pub sessions: HashMap<u32, SessionImage>,
    pub totals: Totals,
    /// Message numbers by the address of the broker's `Arc<Message>`: the image
    /// holds a clone, so an address cannot be reused while it is listed.
    by_address: HashMap<usize, u64>,
    /// Session numbers by client id.
    numbers: HashMap<Arc<str>, u32>,
    next_message: u64,
    next_session: u32,
}

const UNKNOWN_MESSAGE: FormatError = FormatError("a record refers to a message never stored");
/// Numbers are handed out once; a second message under one would leave the
/// records that refer to the first pointing at another message.
const MESSAGE_TWICE: FormatError = FormatError("two messages are stored under one number");

fn address(message: &Arc<Message>) -> usize {
    Arc::as_ptr(message) as usize
}

impl Image {
    /// Applies one record. Records about a session the image does not hold are
    /// ignored (a session removed while a change to it was in flight); a reference
    /// to a message never stored is damage.
    pub fn apply(&mut self, record: Record) -> Result<(), FormatError> {
        match record {
            Record::Message { number, message } => {
                if self.messages.contains_key(&number) {
                    return Err(MESSAGE_TWICE);
                }
                self.next_message = self.next_message.max(number + 1);
                self.by_address.insert(address(&message), number);
                self.messages
                    .insert(number, StoredMessage { message, refs: 0 });
            }
            Record::Retained { message } => {
                let stored = self.messages.get(&message).ok_or(UNKNOWN_MESSAGE)?;
                let topic = stored.message.topic.as_str().to_owned();
                let previous = if stored.message.payload.is_empty() {
                    self.retained.remove(&topic)
                } else {
                    self.add_ref(message)?;
                    self.retained.insert(topic, message)
                };
                if let Some(previous) = previous {
                    self.release(previous);
                }
                self.drop_unused(message);
            }
            Record::SessionOpened {
                session,
                client_id,
                username,
                scope,
                fresh,
                expiry,
            } => {
                self.next_session = self.next_session.max(session.saturating_add(1));
                if fresh && let Some(old) = self.numbers.get(&client_id).copied() {
                    self.remove_session(old);
                }
                if fresh || !self.sessions.contains_key(&session) {
                    self.remove_session(session);
                    self.numbers.insert(Arc::clone(&client_id), session);
                    self.sessions.insert(
                        session,
                        SessionImage {
                            client_id,
                            ..SessionImage::default()
                        },
                    );
                }
                if let Some(image) = self.sessions.get_mut(&session) {
                    image.username = username;
                    image.scope = scope;
                    image.expiry = expiry;
                    image.detached_at = None;
                }
            }
            Record::SessionRemoved { session } => self.remove_session(session),
            Record::WillPending {
                session,
                message,
                due,
            } => {
                if !self.sessions.contains_key(&session) {
                    return Ok(());
                }
                self.add_ref(message)?;
                let old = self
                    .sessions
                    .get_mut(&session)
                    .and_then(|image| image.will.replace((message, due)));
                if let Some((old, _)) = old {
                    self.release(old);
                }
            }
            Record::Queued { session, entry } => {
                if !self.sessions.contains_key(&session) {
                    return Ok(());
                }
                self.add_ref(entry.message)?;
                if let Some(image) = self.sessions.get_mut(&session) {
                    image.queue.push_back(entry);
                }
            }
            Record::Totals(totals) => self.totals = totals,
            other => self.apply_to_session(other),
        }
        Ok(())
    }

    /// Records that only change one session's own lists.
    fn apply_to_session(&mut self, record: Record) {
        let mut released = Vec::new();
        let session = match &record {
            Record::SessionDetached { session, .. }
            | Record::Subscribed { session, .. }
            | Record::Unsubscribed { session, .. }
            | Record::Sent { session, .. }
            | Record::Skipped { session }
            | Record::QueueCleared { session }
            | Record::Acked { session, .. }
            | Record::Released { session, .. }
            | Record::Received { session, .. }
            | Record::ReceiveDone { session, .. }
            | Record::WillCleared { session } => *session,
            _ => return,
        };
        let Some(image) = self.sessions.get_mut(&session) else {
            return;
        };
        match record {
            Record::SessionDetached { expiry, at, .. } => {
                image.expiry = expiry;
                image.detached_at = Some(at);
            }
            Record::Subscribed {
                filter,
                options,
                identifier,
                ..
            } => {
                image.subscriptions.insert(filter, (options, identifier));
            }
            Record::Unsubscribed { filter, .. } => {
                image.subscriptions.remove(&filter);
            }
            Record::Sent { packet_id, .. } => {
                if let Some(entry) = image.queue.pop_front() {
                    image.inflight.push_back((packet_id, Some(entry)));
                }
            }
            Record::Skipped { .. } => {
                released.extend(image.queue.pop_front().map(|entry| entry.message));
            }
            Record::QueueCleared { .. } => {
                released.extend(image.queue.drain(..).map(|entry| entry.message));
            }
            Record::Acked { packet_id, .. } => {
                if let Some(at) = image.inflight.iter().position(|(id, _)| *id == packet_id)
                    && let Some((_, entry)) = image.inflight.remove(at)
                {
                    released.extend(entry.map(|entry| entry.message));
                }
            }
            Record::Released { packet_id, .. } => {
                match image.inflight.iter_mut().find(|(id, _)| *id == packet_id) {
                    Some((_, entry)) => released.extend(entry.take().map(|entry| entry.message)),
                    None => image.inflight.push_back((packet_id, None)),
                }
            }
            Record::Received { packet_id, .. } if !image.incoming.contains(&packet_id) => {
                image.incoming.push(packet_id);
            }
            Record::ReceiveDone { packet_id, .. } => {
                image.incoming.retain(|id| *id != packet_id);
            }
            Record::WillCleared { .. } => {
                released.extend(image.will.take().map(|(message, _)| message));
            }
            _ => {}
        }
        for message in released {
            self.release(message);
        }
    }

    fn add_ref(&mut self, number: u64) -> Result<(), FormatError> {
        let stored = self.messages.get_mut(&number).ok_or(UNKNOWN_MESSAGE)?;
        stored.refs += 1;
        Ok(())
    }

    fn release(&mut self, number: u64) {
        if let Some(stored) = self.messages.get_mut(&number) {
            stored.refs = stored.refs.saturating_sub(1);
            self.drop_unused(number);
        }
    }

    fn drop_unused(&mut self, number: u64) {
        if self
            .messages
            .get(&number)
            .is_some_and(|stored| stored.refs == 0)
            && let Some(stored) = self.messages.remove(&number)
        {
            self.by_address.remove(&address(&stored.message));
        }
    }

    fn remove_session(&mut self, session: u32) {
        let Some(image) = self.sessions.remove(&session) else {
            return;
        };
        if self.numbers.get(&image.client_id) == Some(&session) {
            self.numbers.remove(&image.client_id);
        }
        let messages = image
            .queue
            .iter()
            .map(|entry| entry.message)
            .chain(
                image
                    .inflight
                    .iter()
                    .filter_map(|(_, e)| e.as_ref().map(|e| e.message)),
            )
            .chain(image.will.map(|(message, _)| message))
            .collect::<Vec<_>>();
        for message in messages {
            self.release(message);
        }
    }

    /// The number of `message`, writing its record first if the image lacks it.
    fn message_number(&mut self, message: &Arc<Message>, out: &mut Vec<Record>) -> u64 {
        if let Some(number) = self.by_address.get(&address(message)) {
            return *number;
        }
        let number = self.next_message;
        self.next_message += 1;
        // Listed now, so a second reference in the same batch finds it.
        self.by_address.insert(address(message), number);
        out.push(Record::Message {
            number,
            message: Arc::clone(message),
        });
        number
    }

    fn entry(&mut self, delivery: &Delivery, out: &mut Vec<Record>) -> Entry {
        Entry {
            message: self.message_number(&delivery.message, out),
            qos: delivery.qos,
            retain: delivery.retain,
            subscription_ids: delivery.subscription_ids.clone(),
            shared: delivery.shared.as_ref().map(|f| f.as_str().to_owned()),
        }
    }

    /// How many entries wait in the queue of the session of `client_id`, if the
    /// image knows that session.
    pub fn queue_len(&self, client_id: &str) -> Option<usize> {
        let session = self.numbers.get(client_id)?;
        self.sessions.get(session).map(|image| image.queue.len())
    }

    /// The records for one change, in the order they must be applied.
    pub fn translate(&mut self, change: Change, out: &mut Vec<Record>) {
        if let Change::SessionOpened {
            client_id,
            username,
            scope,
            fresh,
            expiry,
        } = change
        {
            let known = self.numbers.get(&client_id).copied();
            let (session, fresh) = match known {
                Some(session) if !fresh => (session, false),
                _ => {
                    // Numbers outlive restarts; after a wrap, skip those in use.
                    while self.sessions.contains_key(&self.next_session) {
                        self.next_session = self.next_session.wrapping_add(1);
                    }
                    let session = self.next_session;
                    self.next_session = self.next_session.wrapping_add(1);
                    (session, true)
                }
            };
            out.push(Record::SessionOpened {
                session,
                client_id,
                username,
                scope: u32::try_from(scope).unwrap_or(u32::MAX),
                fresh,
                expiry: expiry.map(secs),
            });
            return;
        }
        if let Change::Totals(totals) = change {
            out.push(Record::Totals(totals));
            return;
        }
        if let Change::Retained(message) = change {
            let message = self.message_number(&message, out);
            out.push(Record::Retained { message });
            return;
        }
        let Some(session) = self.numbers.get(change.client_id()).copied() else {
            return;
        };
        let record = match change {
            Change::SessionDetached { expiry, .. } => Record::SessionDetached {
                session,
                expiry: expiry.map(secs),
                at: epoch_ms(SystemTime::now()),
            },
            Change::SessionRemoved { .. } => Record::SessionRemoved { session },
            Change::Subscribed {
                filter,
                options,
                identifier,
                ..
            } => Record::Subscribed {
                session,
                filter: filter.as_str().to_owned(),
                options,
                identifier,
            },
            Change::Unsubscribed { filter, .. } => Record::Unsubscribed {
                session,
                filter: filter.as_str().to_owned(),
            },
            Change::Queued { delivery, .. } => Record::Queued {
                session,
                entry: self.entry(&delivery, out),
            },
            Change::QueueReplaced { deliveries, .. } => {
                // The kept messages are queued again first, so they are still
                // referred to when the old entries are dropped from the front.
                let old = self.sessions.get(&session).map_or(0, |s| s.queue.len());
                for delivery in deliveries {
                    let entry = self.entry(&delivery, out);
                    out.push(Record::Queued { session, entry });
                }
                out.extend((0..old).map(|_| Record::Skipped { session }));
                return;
            }
            Change::Sent { packet_id, .. } => Record::Sent { session, packet_id },
            Change::Skipped { .. } => Record::Skipped { session },
            Change::Acked { packet_id, .. } => Record::Acked { session, packet_id },
            Change::Released { packet_id, .. } => Record::Released { session, packet_id },
            Change::Received { packet_id, .. } => Record::Received { session, packet_id },
            Change::ReceiveDone { packet_id, .. } => Record::ReceiveDone { session, packet_id },
            Change::WillPending { will, due, .. } => Record::WillPending {
                session,
                message: self.message_number(&will, out),
                due: epoch_ms(due),
            },
            Change::WillCleared { .. } => Record::WillCleared { session },
            Change::SessionOpened { .. } | Change::Retained(_) | Change::Totals(_) => return,
        };
        out.push(record);
    }

    /// Every record needed to rebuild this image from nothing: what compaction
    /// writes. Expired retained messages are left out.
    pub fn snapshot(&self, mut sink: impl FnMut(&Record)) {
        sink(&Record::Totals(self.totals));
        let now = std::time::Instant::now();
        // Expired retained messages, and the messages only they refer to, go.
        let mut expired = rustc_hash::FxHashSet::default();
        for number in self.retained.values() {
            if self
                .messages
                .get(number)
                .is_some_and(|stored| stored.message.is_expired(now))
            {
                expired.insert(*number);
            }
        }
        let mut numbers: Vec<_> = self
            .messages
            .iter()
            .filter(|(number, stored)| {
                stored.refs > 0 && !(stored.refs == 1 && expired.contains(*number))
            })
            .map(|(number, _)| *number)
            .collect();
        numbers.sort_unstable();
        for number in &numbers {
            sink(&Record::Message {
                number: *number,
                message: Arc::clone(&self.messages[number].message),
            });
        }
        let mut retained: Vec<_> = self
            .retained
            .iter()
            .filter(|(_, number)| !expired.contains(*number))
            .collect();
        retained.sort_unstable();
        for (_, message) in retained {
            sink(&Record::Retained { message: *message });
        }
        let mut sessions: Vec<_> = self.sessions.iter().collect();
        sessions.sort_unstable_by_key(|(number, _)| **number);
        for (&session, image) in sessions {
            sink(&Record::SessionOpened {
                session,
                client_id: Arc::clone(&image.client_id),
                username: image.username.clone(),
                scope: image.scope,
                fresh: true,
                expiry: image.expiry,
            });
            if let Some(at) = image.detached_at {
                sink(&Record::SessionDetached {
                    session,
                    expiry: image.expiry,
                    at,
                });
            }
            for (filter, (options, identifier)) in &image.subscriptions {
                sink(&Record::Subscribed {
                    session,
                    filter: filter.clone(),
                    options: *options,
                    identifier: *identifier,
                });
            }
            for (packet_id, entry) in &image.inflight {
                let packet_id = *packet_id;
                match entry {
                    Some(entry) => {
                        sink(&Record::Queued {
                            session,
                            entry: entry.clone(),
                        });
                        sink(&Record::Sent { session, packet_id });
                    }
                    None => sink(&Record::Released { session, packet_id }),
                }
            }
            for entry in &image.queue {
                sink(&Record::Queued {
                    session,
                    entry: entry.clone(),
                });
            }
            for packet_id in &image.incoming {
                sink(&Record::Received {
                    session,
                    packet_id: *packet_id,
                });
            }
            if let Some((message, due)) = image.will {
                sink(&Record::WillPending {
                    session,
                    message,
                    due,
                });
            }
        }
    }

    /// Drops retained messages whose expiry passed, as a snapshot leaves them out,
    /// so the image stays what the file it writes describes.
    pub fn purge_expired_retained(&mut self) {
        let now = std::time::Instant::now();
        let expired: Vec<(String, u64)> = self
            .retained
            .iter()
            .filter(|(_, number)| {
                self.messages
                    .get(number)
                    .is_some_and(|stored| stored.message.is_expired(now))
            })
            .map(|(topic, number)| (topic.clone(), *number))
            .collect();
        for (topic, number) in expired {
            self.retained.remove(&topic);
            self.release(number);
        }
    }

    /// Messages and sessions held, for the log and the benchmark.
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.messages.len(),
            self.retained.len(),
            self.sessions.len(),
        )
    }

    /// The stored message with this number.
    pub fn message(&self, number: u64) -> Option<&Arc<Message>> {
        self.messages.get(&number).map(|stored| &stored.message)
    }
}

/// Seconds of a session expiry, as stored.
fn secs(expiry: std::time::Duration) -> u32 {
    u32::try_from(expiry.as_secs()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::TopicName;
    use bytes::Bytes;

    #[test]
    fn a_second_message_under_one_number_is_damage() {
        let mut image = Image::default();
        let first = Record::Message {
            number: 7,
            message: message("a", b"1"),
        };
        image.apply(first).expect("first");
        image
            .apply(Record::Retained { message: 7 })
            .expect("retained");
        let second = Record::Message {
            number: 7,
            message: message("b", b"2"),
        };
        assert_eq!(image.apply(second), Err(MESSAGE_TWICE));
        // What refers to the first still finds it.
        assert_eq!(
            image.message(7).map(|m| m.topic.as_str().to_string()),
            Some("a".to_string())
        );
    }

    fn message(topic: &str, payload: &'static [u8]) -> Arc<Message> {
        Arc::new(Message::new(
            TopicName::new(topic).expect("topic"),
            Bytes::from_static(payload),
            QoS::AtLeastOnce,
            false,
        ))
    }

    fn delivery(message: &Arc<Message>) -> Delivery {
        Delivery {
            message: Arc::clone(message),
            qos: QoS::AtLeastOnce,
            retain: false,
            subscription_ids: Vec::new(),
            shared: None,
            confirms: None,
        }
    }

    fn run(image: &mut Image, changes: Vec<Change>) -> Vec<Record> {
        let mut all = Vec::new();
        for change in changes {
            let mut records = Vec::new();
            image.translate(change, &mut records);
            for record in records {
                all.push(record.clone());
                image.apply(record).expect("applies");
            }
        }
        all
    }

    fn client() -> Arc<str> {
        Arc::from("c")
    }

    #[test]
    fn a_message_is_written_once_and_freed_when_nothing_refers_to_it() {
        let mut image = Image::default();
        let m = message("t", b"1");
        let records = run(
            &mut image,
            vec![
                Change::SessionOpened {
                    client_id: client(),
                    username: None,
                    scope: 0,
                    fresh: true,
                    expiry: None,
                },
                Change::Queued {
                    client_id: client(),
                    delivery: delivery(&m),
                },
                Change::Queued {
                    client_id: client(),
                    delivery: delivery(&m),
                },
            ],
        );
        let stored = records
            .iter()
            .filter(|r| matches!(r, Record::Message { .. }))
            .count();
        assert_eq!(stored, 1, "{records:?}");
        run(
            &mut image,
            vec![
                Change::Sent {
                    client_id: client(),
                    packet_id: 1,
                },
                Change::Skipped {
                    client_id: client(),
                },
            ],
        );
        assert_eq!(image.messages.len(), 1);
        run(
            &mut image,
            vec![Change::Acked {
                client_id: client(),
                packet_id: 1,
            }],
        );
        assert!(image.messages.is_empty() && image.by_address.is_empty());
    }

    #[test]
    fn a_snapshot_rebuilds_the_same_image() {
        let mut image = Image::default();
        let (a, b, r) = (message("a", b"1"), message("b", b"2"), message("r", b"3"));
        run(
            &mut image,
            vec![
                Change::Retained(Arc::clone(&r)),
                Change::SessionOpened {
                    client_id: client(),
                    username: Some("u".into()),
                    scope: 0,
                    fresh: true,
                    expiry: Some(std::time::Duration::from_secs(60)),
                },
                Change::Queued {
                    client_id: client(),
                    delivery: delivery(&a),
                },
                Change::Queued {
                    client_id: client(),
                    delivery: delivery(&b),
                },
                Change::Sent {
                    client_id: client(),
                    packet_id: 4,
                },
                Change::Received {
                    client_id: client(),
                    packet_id: 9,
                },
            ],
        );
        let mut copy = Image::default();
        image.snapshot(|record| copy.apply(record.clone()).expect("applies"));
        let (original, rebuilt) = (&image.sessions[&0], &copy.sessions[&0]);
        assert_eq!(original.inflight, rebuilt.inflight);
        assert_eq!(original.queue, rebuilt.queue);
        assert_eq!(rebuilt.incoming, vec![9]);
        assert_eq!(rebuilt.username.as_deref(), Some("u"));
        assert_eq!(copy.retained.len(), 1);
        assert_eq!(copy.messages.len(), 3);
        // Deleting the retained message frees it.
        let empty = message("r", b"");
        run(&mut image, vec![Change::Retained(empty)]);
        assert!(image.retained.is_empty());
        assert_eq!(image.messages.len(), 2);
    }

    #[test]
    fn a_queue_filtered_on_resume_replays_to_the_same_queue() {
        let mut image = Image::default();
        let (a, b, c) = (message("a", b"1"), message("b", b"2"), message("c", b"3"));
        let mut changes = vec![Change::SessionOpened {
            client_id: client(),
            username: None,
            scope: 0,
            fresh: true,
            expiry: None,
        }];
        for m in [&a, &b, &c] {
            changes.push(Change::Queued {
                client_id: client(),
                delivery: delivery(m),
            });
        }
        // An ACL change took "b" away while the client was gone.
        changes.push(Change::QueueReplaced {
            client_id: client(),
            deliveries: vec![delivery(&a), delivery(&c)],
        });
        let records = run(&mut image, changes);
        let topics = |image: &Image| -> Vec<String> {
            let session = image.sessions.values().next().expect("session");
            session
                .queue
                .iter()
                .map(|e| {
                    image
                        .message(e.message)
                        .expect("stored")
                        .topic
                        .as_str()
                        .to_owned()
                })
                .collect()
        };
        assert_eq!(topics(&image), ["a", "c"]);
        assert_eq!(image.messages.len(), 2);
        // What was written replays to the same state.
        let mut replayed = Image::default();
        for record in records {
            replayed.apply(record).expect("every record applies");
        }
        assert_eq!(topics(&replayed), ["a", "c"]);
        assert_eq!(replayed.messages.len(), 2);
    }

    #[test]
    fn a_fresh_session_replaces_the_old_one_and_stale_changes_are_ignored() {
        let mut image = Image::default();
        let m = message("t", b"1");
        let open = |fresh| Change::SessionOpened {
            client_id: client(),
            username: None,
            scope: 0,
            fresh,
            expiry: None,
        };
        run(
            &mut image,
            vec![
                open(true),
                Change::Queued {
                    client_id: client(),
                    delivery: delivery(&m),
                },
                open(true),
            ],
        );
        assert_eq!(image.sessions.len(), 1);
        assert!(image.sessions.values().all(|s| s.queue.is_empty()));
        assert!(image.messages.is_empty());
        run(
            &mut image,
            vec![
                Change::SessionRemoved {
                    client_id: client(),
                },
                Change::Queued {
                    client_id: client(),
                    delivery: delivery(&m),
                },
            ],
        );
        assert!(image.sessions.is_empty() && image.messages.is_empty());
    }
}
