//! Deliveries that begin and end in one batch leave no trace: when a batch holds,
//! for one persistent session, a QoS 1 message `Queued`, then `Sent` as the front
//! of the queue, then `Acked`, the three changes together leave the session as it
//! was, and the writer drops them before they are written or applied.
//!
//! Why it is safe: the batch becomes durable whole or not at all. If it does, the
//! message was delivered and acknowledged and nothing must bring it back. If it
//! does not (a crash before the sync), its publisher got no PUBACK either, since
//! that waits for this batch, and sends it again. A message no other change
//! refers to is then not written at all.
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
/// acknowledged within it; `image` is the state before the batch. Returns how
/// many changes went.
pub fn drop_completed_deliveries(changes: &mut Vec<Change>, image: &Image) -> usize {
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
        let mut at = 0;
        changes.retain(|_| {
            let keep = !dropped[at];
            at += 1;
            keep
        });
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::session::Delivery;
    use crate::broker::store::format::Record;

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
        assert_eq!(drop_completed_deliveries(&mut changes, &image), 3);
        // The second message went; the first is in flight.
        assert_eq!(kinds(&changes), ["Q", "S1"]);
    }

    #[test]
    fn what_was_queued_before_the_batch_goes_out_first_and_stays() {
        // One entry queued before: the first Sent is that one's.
        let image = image_with("s", 1);
        let mut changes = vec![queued(QoS::AtLeastOnce), sent(1), acked(1)];
        assert_eq!(drop_completed_deliveries(&mut changes, &image), 0);
        let mut changes = vec![
            queued(QoS::AtLeastOnce),
            sent(1),
            sent(2),
            acked(2),
            acked(1),
        ];
        assert_eq!(drop_completed_deliveries(&mut changes, &image), 3);
        assert_eq!(kinds(&changes), ["S1", "A1"]);
    }

    #[test]
    fn qos2_unknown_sessions_and_other_changes_stop_the_matching() {
        let image = image_with("s", 0);
        let mut changes = vec![queued(QoS::ExactlyOnce), sent(1), acked(1)];
        assert_eq!(drop_completed_deliveries(&mut changes, &image), 0);
        let mut changes = vec![
            queued(QoS::AtLeastOnce),
            Change::SessionDetached {
                client_id: "s".into(),
                expiry: None,
            },
            sent(1),
            acked(1),
        ];
        assert_eq!(drop_completed_deliveries(&mut changes, &image), 0);
        let unknown = Image::default();
        let mut changes = vec![queued(QoS::AtLeastOnce), sent(1), acked(1)];
        assert_eq!(drop_completed_deliveries(&mut changes, &unknown), 0);
    }

    #[test]
    fn the_image_ends_the_same_with_or_without_the_dropped_changes() {
        let batch = || {
            vec![
                queued(QoS::AtLeastOnce),
                queued(QoS::AtLeastOnce),
                queued(QoS::AtLeastOnce),
                sent(7),
                acked(7),
                sent(8),
                Change::Skipped {
                    client_id: "s".into(),
                },
                acked(8),
                queued(QoS::AtLeastOnce),
            ]
        };
        let mut whole = image_with("s", 1);
        replay(&mut whole, batch());
        let mut shortened = image_with("s", 1);
        let mut changes = batch();
        let dropped = drop_completed_deliveries(&mut changes, &shortened);
        assert_eq!(dropped, 3, "{:?}", kinds(&changes));
        replay(&mut shortened, changes);
        let session = |image: &Image| {
            let (_, s) = image.sessions.iter().next().expect("one session");
            (
                s.queue.len(),
                s.inflight.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            )
        };
        assert_eq!(session(&whole), session(&shortened));
        // Messages nothing refers to are gone from both.
        assert_eq!(whole.messages.len(), shortened.messages.len());
    }
}
