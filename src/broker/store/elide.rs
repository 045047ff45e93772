//! Deliveries that begin and end in one batch leave no trace: when a batch holds,
//! for one persistent session, a QoS 1 message `Queued`, then `Sent` as the front
//! of the queue, then `Acked`, the three changes together leave the session as it
//! was, and the writer drops them before they are written or applied.
//!
//! Why it is safe: the `Acked` is the subscriber's PUBACK, so the broker owes
//! nobody this delivery any more, whatever reaches the disk. Sending a QoS 1
//! message does not wait for its queueing to be durable, which is how all three
//! can fall in one batch. The records that are written are exactly those of a
//! session in which the delivery was queued, sent and acknowledged in between, so
//! any prefix of them that a crash leaves on disk replays to a consistent image. A
//! publisher whose PUBACK waited for the `Queued` change gets it once the batch is
//! durable, or once this PUBACK and its other subscribers' came (`confirm.rs`);
//! after a crash before either, it sends the message again (QoS 1 is at least
//! once). A message no other change refers to is not written at all.
//!
//! Conservative by design: a session is followed only through `Queued`, `Sent`,
//! `Skipped` and `Acked`; any other change for it in the batch (opened, replaced
//! queue, QoS 2 steps, ...) stops the matching for that session for the rest of
//! the batch. QoS 2 deliveries are never dropped.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

use super::Change;
use super::image::Image;
use crate::protocol::QoS;

/// What the batch so far says about one session.
#[derive(Default)]
struct Followed {
    /// Entries queued before the batch that the batch has not sent yet: a
    /// `Sent` takes one of these first.
    ahead: usize,
    /// Changes (by index) queued in this batch and not sent yet, front first,
    /// with whether the delivery is QoS 1.
    queued: VecDeque<(usize, bool)>,
    /// Packet id → the QoS 1 `Queued` and `Sent` changes it went out with.
    sent: FxHashMap<u16, (usize, usize)>,
    /// Not followed any further in this batch.
    stopped: bool,
}

/// Removes from `changes` every QoS 1 delivery that was queued, sent and
/// acknowledged within it, and the same entries from `beside` (what the writer
/// keeps per change); `image` is the state before the batch. Returns how many
/// changes went.
pub fn drop_completed_deliveries<T>(
    changes: &mut Vec<Change>,
    beside: &mut Vec<T>,
    image: &Image,
) -> usize {
    // Nothing to gain in a batch without acknowledgements.
    if !changes
        .iter()
        .any(|change| matches!(change, Change::Acked { .. }))
    {
        return 0;
    }
    let mut sessions: FxHashMap<&str, Followed> = FxHashMap::default();
    let mut dropped = vec![false; changes.len()];
    let mut count = 0;
    for (index, change) in changes.iter().enumerate() {
        let client_id = change.client_id();
        // Retained messages and totals belong to no session.
        if client_id.is_empty() {
            continue;
        }
        let followed = sessions.entry(client_id).or_insert_with(|| {
            match image.queue_len(client_id) {
                Some(ahead) => Followed {
                    ahead,
                    ..Followed::default()
                },
                // A session the image does not know yet: not followed.
                None => Followed {
                    stopped: true,
                    ..Followed::default()
                },
            }
        });
        if followed.stopped {
            continue;
        }
        match change {
            Change::Queued { delivery, .. } => followed
                .queued
                .push_back((index, delivery.qos == QoS::AtLeastOnce)),
            Change::Sent { packet_id, .. } => {
                if followed.ahead > 0 {
                    followed.ahead -= 1;
                } else if let Some((queued, qos1)) = followed.queued.pop_front() {
                    if qos1 {
                        followed.sent.insert(*packet_id, (queued, index));
                    }
                } else {
                    followed.stopped = true;
                }
            }
            Change::Skipped { .. } => {
                if followed.ahead > 0 {
                    followed.ahead -= 1;
                } else if followed.queued.pop_front().is_none() {
                    followed.stopped = true;
                }
            }
            Change::Acked { packet_id, .. } => {
                if let Some((queued, sent)) = followed.sent.remove(packet_id) {
                    for at in [queued, sent, index] {
                        dropped[at] = true;
                    }
                    count += 3;
                }
            }
            _ => followed.stopped = true,
        }
    }
    drop(sessions);
    if count > 0 {
        retain_unmarked(changes, &dropped);
        retain_unmarked(beside, &dropped);
    }
    count
}

/// Keeps the entries of `list` whose index `dropped` does not mark.
fn retain_unmarked<T>(list: &mut Vec<T>, dropped: &[bool]) {
    let mut at = 0;
    list.retain(|_| {
        let keep = !dropped.get(at).copied().unwrap_or(false);
        at += 1;
        keep
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::session::Delivery;
    use crate::broker::store::format::Record;
    use std::sync::Arc;

    fn image_with(client_id: &str, queued: usize) -> Image {
        let mut image = Image::default();
        let opened = Change::SessionOpened {
            client_id: client_id.into(),
            username: None,
            scope: 0,
            fresh: true,
            expiry: None,
        };
        let queue = (0..queued).map(|_| Change::Queued {
            client_id: client_id.into(),
            delivery: Delivery::sample(QoS::AtLeastOnce),
        });
        replay(&mut image, std::iter::once(opened).chain(queue).collect());
        assert_eq!(image.queue_len(client_id), Some(queued));
        image
    }

    fn replay(image: &mut Image, changes: Vec<Change>) {
        let mut records: Vec<Record> = Vec::new();
        for change in changes {
            image.translate(change, &mut records);
            for record in records.drain(..) {
                image.apply(record).expect("apply");
            }
        }
    }

    fn queued(qos: QoS) -> Change {
        Change::Queued {
            client_id: "s".into(),
            delivery: Delivery::sample(qos),
        }
    }
    fn sent(packet_id: u16) -> Change {
        Change::Sent {
            client_id: "s".into(),
            packet_id,
        }
    }
    fn acked(packet_id: u16) -> Change {
        Change::Acked {
            client_id: "s".into(),
            packet_id,
        }
    }

    fn kinds(changes: &[Change]) -> Vec<String> {
        changes
            .iter()
            .map(|change| match change {
                Change::Queued { .. } => "Q".to_string(),
                Change::Sent { packet_id, .. } => format!("S{packet_id}"),
                Change::Acked { packet_id, .. } => format!("A{packet_id}"),
                other => format!("{other:?}").chars().take(8).collect(),
            })
            .collect()
    }

    #[test]
    fn a_qos1_delivery_queued_sent_and_acked_in_the_batch_goes() {
        let image = image_with("s", 0);
        let mut changes = vec![
            queued(QoS::AtLeastOnce),
            queued(QoS::AtLeastOnce),
            sent(1),
            sent(2),
            acked(2),
        ];
        // What the writer keeps beside each change goes with it.
        let mut beside: Vec<usize> = (0..changes.len()).collect();
        assert_eq!(
            drop_completed_deliveries(&mut changes, &mut beside, &image),
            3
        );
        // The second message went; the first is in flight.
        assert_eq!(kinds(&changes), ["Q", "S1"]);
        assert_eq!(beside, [0, 2]);
    }

    #[test]
    fn what_was_queued_before_the_batch_goes_out_first_and_stays() {
        // One entry queued before: the first Sent is that one's.
        let image = image_with("s", 1);
        let mut changes = vec![queued(QoS::AtLeastOnce), sent(1), acked(1)];
        assert_eq!(
            drop_completed_deliveries(&mut changes, &mut Vec::<()>::new(), &image),
            0
        );
        let mut changes = vec![
            queued(QoS::AtLeastOnce),
            sent(1),
            sent(2),
            acked(2),
            acked(1),
        ];
        assert_eq!(
            drop_completed_deliveries(&mut changes, &mut Vec::<()>::new(), &image),
            3
        );
        assert_eq!(kinds(&changes), ["S1", "A1"]);
    }

    #[test]
    fn qos2_unknown_sessions_and_other_changes_stop_the_matching() {
        let image = image_with("s", 0);
        let mut changes = vec![queued(QoS::ExactlyOnce), sent(1), acked(1)];
        assert_eq!(
            drop_completed_deliveries(&mut changes, &mut Vec::<()>::new(), &image),
            0
        );
        let mut changes = vec![
            queued(QoS::AtLeastOnce),
            Change::SessionDetached {
                client_id: "s".into(),
                expiry: None,
            },
            sent(1),
            acked(1),
        ];
        assert_eq!(
            drop_completed_deliveries(&mut changes, &mut Vec::<()>::new(), &image),
            0
        );
        let unknown = Image::default();
        let mut changes = vec![queued(QoS::AtLeastOnce), sent(1), acked(1)];
        assert_eq!(
            drop_completed_deliveries(&mut changes, &mut Vec::<()>::new(), &unknown),
            0
        );
    }

    /// A delivery of a message on its own topic, so that entries can be told apart.
    fn on(client_id: &str, topic: &str) -> Change {
        let mut delivery = Delivery::sample(QoS::AtLeastOnce);
        delivery.message = Arc::new(crate::broker::message::Message::new(
            crate::protocol::TopicName::new(topic).expect("topic"),
            bytes::Bytes::from_static(b"x"),
            QoS::AtLeastOnce,
            false,
        ));
        Change::Queued {
            client_id: client_id.into(),
            delivery,
        }
    }

    /// A session by client id: its queue and its in-flight entries, by topic.
    type SessionState = (String, Vec<String>, Vec<(u16, String)>);

    /// Each session's queue and in-flight entries, by topic, and every stored
    /// message's topic.
    fn state(image: &Image) -> (Vec<SessionState>, Vec<String>) {
        let topic = |number: &u64| image.messages[number].message.topic.as_str().to_string();
        let mut sessions: Vec<_> = image
            .sessions
            .values()
            .map(|s| {
                (
                    s.client_id.to_string(),
                    s.queue.iter().map(|e| topic(&e.message)).collect(),
                    s.inflight
                        .iter()
                        .map(|(id, e)| {
                            (*id, e.as_ref().map_or(String::new(), |e| topic(&e.message)))
                        })
                        .collect(),
                )
            })
            .collect();
        sessions.sort();
        let mut messages: Vec<_> = image
            .messages
            .values()
            .map(|m| m.message.topic.as_str().to_string())
            .collect();
        messages.sort();
        (sessions, messages)
    }

    /// `batch` applied to `image` as it is and after the drop give the same state;
    /// returns how many changes were dropped.
    fn same_either_way(prepare: impl Fn() -> Image, batch: impl Fn() -> Vec<Change>) -> usize {
        let mut whole = prepare();
        replay(&mut whole, batch());
        let mut shortened = prepare();
        let mut changes = batch();
        let dropped = drop_completed_deliveries(&mut changes, &mut Vec::<()>::new(), &shortened);
        replay(&mut shortened, changes);
        assert_eq!(state(&whole), state(&shortened));
        dropped
    }

    #[test]
    fn the_image_ends_the_same_with_or_without_the_dropped_changes() {
        // One entry queued before the batch; a skip in the middle.
        let dropped = same_either_way(
            || image_with("s", 1),
            || {
                vec![
                    on("s", "m/1"),
                    on("s", "m/2"),
                    on("s", "m/3"),
                    sent(7),
                    acked(7),
                    sent(8),
                    Change::Skipped {
                        client_id: "s".into(),
                    },
                    acked(8),
                    on("s", "m/4"),
                    sent(9),
                ]
            },
        );
        assert_eq!(dropped, 3);
    }

    #[test]
    fn a_message_two_sessions_share_stays_for_the_one_that_keeps_it() {
        let two = || {
            let mut image = image_with("s", 0);
            replay(
                &mut image,
                vec![Change::SessionOpened {
                    client_id: "t".into(),
                    username: None,
                    scope: 0,
                    fresh: true,
                    expiry: None,
                }],
            );
            image
        };
        // One message queued for both; only "s" sends and acknowledges it.
        let Change::Queued { delivery, .. } = on("s", "shared") else {
            unreachable!()
        };
        let queued_for = |client_id: &str| Change::Queued {
            client_id: client_id.into(),
            delivery: delivery.clone(),
        };
        let batch = || {
            vec![
                queued_for("s"),
                queued_for("t"),
                sent(1),
                acked(1),
                Change::Sent {
                    client_id: "t".into(),
                    packet_id: 1,
                },
            ]
        };
        assert_eq!(same_either_way(two, batch), 3);
        let mut image = two();
        let mut changes = batch();
        drop_completed_deliveries(&mut changes, &mut Vec::<()>::new(), &image);
        replay(&mut image, changes);
        assert_eq!(state(&image).1, ["shared"], "written once, for t");
    }

    #[test]
    fn an_id_acknowledged_before_being_sent_again_pairs_with_the_new_send() {
        // Entry queued before the batch goes out as 5 and is acknowledged; then a
        // new one goes out as 5 too: only the second life is dropped.
        let dropped = same_either_way(
            || image_with("s", 1),
            || vec![sent(5), acked(5), on("s", "new"), sent(5), acked(5)],
        );
        assert_eq!(dropped, 3);
    }

    #[test]
    fn qos2_steps_and_replaced_queues_stop_the_matching() {
        for stop in [
            Change::Released {
                client_id: "s".into(),
                packet_id: 9,
            },
            Change::QueueReplaced {
                client_id: "s".into(),
                deliveries: Vec::new(),
            },
        ] {
            let mut changes = vec![on("s", "a"), stop, sent(1), acked(1)];
            assert_eq!(
                drop_completed_deliveries(&mut changes, &mut Vec::<()>::new(), &image_with("s", 0)),
                0
            );
        }
    }
}
