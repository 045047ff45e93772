//! The client engine, without I/O: [`ClientState`], the state machine of one
//! client connection (message ids, QoS 1/2 flows both ways, keep-alive, events),
//! and the rules it follows: what the broker's answer to CONNECT means
//! ([`handshake`]) and which acknowledgement each packet requires ([`reply`]).
//! rsub and rpub's [`Connection`](super::connection::Connection) drives the state
//! machine over a stream; rbench's lean `LoadClient` follows the same rules with
//! no per-message state on its hot path (the load engine tracks its own window).

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::time::Duration;

use tokio::time::Instant;

use super::trace::Trace;
use crate::protocol::{
    Ack, ConnAck, Packet, PacketId, PacketType, Properties, ProtocolVersion, Publish, QoS,
    ReasonCode, SubAck, Subscribe, SubscriptionOptions, TopicFilter, UnsubAck, Unsubscribe,
};

/// What a packet received while waiting for CONNACK means.
#[derive(Debug)]
pub enum Handshake {
    /// The broker accepted the connection.
    Accepted(ConnAck),
    /// The broker refused it with this code (3.x return code or 5.0 reason).
    Refused(ReasonCode),
    /// AUTH (MQTT 5 enhanced authentication): keep waiting for CONNACK.
    KeepWaiting,
    /// Anything else breaks the protocol [MQTT-3.2.0-1 3.1.1/5.0].
    Unexpected(PacketType),
}

/// Reads the broker's answer to CONNECT.
pub fn handshake(packet: Packet) -> Handshake {
    match packet {
        Packet::ConnAck(connack) if connack.code.is_error() => Handshake::Refused(connack.code),
        Packet::ConnAck(connack) => Handshake::Accepted(connack),
        Packet::Auth(_) => Handshake::KeepWaiting,
        other => Handshake::Unexpected(other.packet_type()),
    }
}

/// The acknowledgement the protocol requires in answer to a packet of `kind` from
/// the broker: PUBACK for a QoS 1 PUBLISH, PUBREC for a QoS 2 one, PUBREL for a
/// PUBREC that did not refuse the message (an error ends the flow, 5.0 §4.3.3), and
/// PUBCOMP for a PUBREL. `qos` is the PUBLISH's; `reason` the PUBREC's.
pub fn reply(kind: PacketType, qos: QoS, reason: ReasonCode) -> Option<PacketType> {
    match (kind, qos) {
        (PacketType::Publish, QoS::AtLeastOnce) => Some(PacketType::PubAck),
        (PacketType::Publish, QoS::ExactlyOnce) => Some(PacketType::PubRec),
        (PacketType::PubRec, _) if !reason.is_error() => Some(PacketType::PubRel),
        (PacketType::PubRel, _) => Some(PacketType::PubComp),
        _ => None,
    }
}

/// What ended or refused a connection.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The broker answered CONNECT with this code.
    #[error("connection refused: {}", .0.name())]
    Refused(ReasonCode),
    /// The broker sent DISCONNECT (MQTT 5).
    #[error("disconnected by the broker: {}", .0.name())]
    Disconnected(ReasonCode),
    /// The broker sent something the protocol does not allow.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// No PINGRESP within the keep-alive interval.
    #[error("the broker stopped answering (keep-alive)")]
    KeepAlive,
    #[error("the connection closed")]
    Closed,
}

/// What the program sees from a connection.
#[derive(Debug)]
pub enum Event {
    /// An application message, delivered once its QoS handshake allows.
    Message(Publish),
    SubAck(SubAck),
    UnsubAck(UnsubAck),
    /// An outgoing QoS 1/2 message finished (PUBACK, PUBCOMP, or a refusing PUBREC).
    Published {
        mid: u16,
        reason: ReasonCode,
    },
    /// A PINGRESP: everything the broker sent before it has been handled.
    Pong,
    /// With manual acknowledgements: the broker's PUBREC for outgoing QoS 2
    /// message `mid`; [`ClientState::release`] sends the PUBREL.
    Received {
        mid: u16,
    },
    /// With manual acknowledgements: the broker's PUBREL for incoming QoS 2
    /// message `mid`; [`ClientState::complete`] sends the PUBCOMP.
    Released {
        mid: u16,
    },
}

/// The acknowledgement an outgoing QoS 1/2 message waits for.
#[derive(Debug, Clone)]
pub(super) enum Stage {
    Puback,
    Pubrec,
    Pubcomp,
}

/// An outgoing QoS 1/2 message kept until the broker has it.
#[derive(Debug, Clone)]
pub struct Unacknowledged {
    publish: Publish,
    stage: Stage,
}

/// The client side of one connection, without I/O: message ids, the QoS 1/2
/// messages in flight both ways, keep-alive, the events the program has yet to
/// see, and the bytes to send (`out`). [`Connection`](super::connection::Connection)
/// feeds it what it reads and writes what it queues.
pub struct ClientState {
    pub(super) version: ProtocolVersion,
    /// Encoded packets waiting to be written.
    pub(super) out: Vec<u8>,
    /// libmosquitto's message ids: every PUBLISH gets one (QoS 0 too, for `-d`),
    /// and SUBSCRIBE/UNSUBSCRIBE share the sequence.
    last_mid: u16,
    outgoing: BTreeMap<u16, Unacknowledged>,
    /// Incoming QoS 2 messages held until PUBREL, delivered then (as libmosquitto).
    incoming_qos2: BTreeMap<u16, Publish>,
    pub(super) events: VecDeque<Event>,
    pub(super) keep_alive: Option<Duration>,
    pub(super) last_sent: Instant,
    ping_outstanding: Option<Instant>,
    /// The broker's Receive Maximum (MQTT 5) or `-M`: QoS 1/2 messages in flight.
    pub(super) send_window: usize,
    pub(super) trace: Trace,
    /// The program answers each step of the QoS flows itself
    /// ([`ClientState::set_manual_acks`]).
    manual_acks: bool,
}

impl ClientState {
    pub fn new(
        version: ProtocolVersion,
        keep_alive: Option<Duration>,
        max_inflight: u16,
        trace: Trace,
    ) -> Self {
        ClientState {
            version,
            out: Vec::with_capacity(4096),
            last_mid: 0,
            outgoing: BTreeMap::new(),
            incoming_qos2: BTreeMap::new(),
            events: VecDeque::new(),
            keep_alive,
            last_sent: Instant::now(),
            ping_outstanding: None,
            send_window: usize::from(max_inflight.max(1)),
            trace,
            manual_acks: false,
        }
    }

    /// From now on the program sends every acknowledgement itself: an incoming
    /// QoS 1/2 PUBLISH is an [`Event::Message`] at once, each time it arrives
    /// (DUP copies too), and waits for [`ClientState::acknowledge`]; a PUBREC is
    /// an [`Event::Received`] waiting for [`ClientState::release`]; a PUBREL an
    /// [`Event::Released`] waiting for [`ClientState::complete`]. A broker's
    /// bridge uses this to answer only once its own store holds what the answer
    /// promises.
    pub fn set_manual_acks(&mut self) {
        self.manual_acks = true;
    }

    /// Queues `publish` under the packet id it already carries (its sender keeps
    /// its own ids, as a bridge sends a session's messages), DUP as given.
    pub fn publish_with_id(&mut self, publish: Publish) -> Result<(), ClientError> {
        let mid = publish.packet_id.map_or(0, PacketId::get);
        if let Some(id) = publish.packet_id.filter(|_| publish.qos != QoS::AtMostOnce) {
            let stage = if publish.qos == QoS::AtLeastOnce {
                Stage::Puback
            } else {
                Stage::Pubrec
            };
            self.outgoing.insert(
                id.get(),
                Unacknowledged {
                    publish: publish.clone(),
                    stage,
                },
            );
        }
        self.trace.publish("sending", &publish, mid);
        self.queue(&Packet::Publish(publish))
    }

    /// Sends PUBREL for outgoing QoS 2 message `id` (its PUBREC came), and
    /// waits for PUBCOMP; also after a reconnect, for a message whose PUBREC an
    /// earlier connection received.
    pub fn release(&mut self, id: PacketId) -> Result<(), ClientError> {
        let entry = self
            .outgoing
            .entry(id.get())
            .or_insert_with(|| Unacknowledged {
                publish: Publish {
                    qos: QoS::ExactlyOnce,
                    packet_id: Some(id),
                    ..Publish::new(crate::protocol::TopicName::alias_placeholder(), Vec::new())
                },
                stage: Stage::Pubcomp,
            });
        entry.stage = Stage::Pubcomp;
        self.answer(
            PacketType::PubRec,
            QoS::ExactlyOnce,
            ReasonCode::Success,
            id,
        )
    }

    /// Sends PUBACK (QoS 1) or PUBREC (QoS 2) for incoming message `id`, with
    /// `reason` on MQTT 5.
    pub fn acknowledge(
        &mut self,
        id: PacketId,
        qos: QoS,
        reason: ReasonCode,
    ) -> Result<(), ClientError> {
        let reason = if self.version.is_v5() {
            reason
        } else {
            ReasonCode::Success
        };
        let mid = id.get();
        let packet = match qos {
            QoS::AtMostOnce => return Ok(()),
            QoS::AtLeastOnce => {
                self.trace.sending_ack("PUBACK", mid);
                Packet::PubAck(Ack::with_reason(id, reason))
            }
            QoS::ExactlyOnce => {
                self.trace.sending_ack("PUBREC", mid);
                Packet::PubRec(Ack::with_reason(id, reason))
            }
        };
        self.queue(&packet)
    }

    /// Sends PUBCOMP for incoming QoS 2 message `id` (its PUBREL came).
    pub fn complete(&mut self, id: PacketId) -> Result<(), ClientError> {
        self.answer(
            PacketType::PubRel,
            QoS::ExactlyOnce,
            ReasonCode::Success,
            id,
        )
    }

    /// The next message id, skipping 0 and ids still in use.
    pub(super) fn next_mid(&mut self) -> u16 {
        loop {
            self.last_mid = self.last_mid.wrapping_add(1);
            if self.last_mid != 0 && !self.outgoing.contains_key(&self.last_mid) {
                return self.last_mid;
            }
        }
    }

    pub(super) fn queue(&mut self, packet: &Packet) -> Result<(), ClientError> {
        packet
            .encode(self.version, &mut self.out)
            .map_err(|e| ClientError::Protocol(e.to_string()))
    }

    /// Whether another QoS 1/2 message may be sent now.
    pub fn can_publish(&self) -> bool {
        self.outgoing.len() < self.send_window
    }

    /// QoS 1/2 messages sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.outgoing.len()
    }

    /// Queues `publish` (its packet id is assigned here) and returns its message id.
    /// At QoS 1/2 the caller checks [`ClientState::can_publish`] first.
    pub fn publish(&mut self, mut publish: Publish) -> Result<u16, ClientError> {
        let mid = self.next_mid();
        if publish.qos != QoS::AtMostOnce {
            publish.packet_id = PacketId::new(mid);
            let stage = if publish.qos == QoS::AtLeastOnce {
                Stage::Puback
            } else {
                Stage::Pubrec
            };
            self.outgoing.insert(
                mid,
                Unacknowledged {
                    publish: publish.clone(),
                    stage,
                },
            );
        } else {
            publish.packet_id = None;
        }
        self.trace.publish("sending", &publish, mid);
        self.queue(&Packet::Publish(publish))?;
        Ok(mid)
    }

    /// Queues a SUBSCRIBE; returns its message id.
    pub fn subscribe(
        &mut self,
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
        properties: Properties,
    ) -> Result<u16, ClientError> {
        let mid = self.next_mid();
        let packet_id = PacketId::new(mid).ok_or(ClientError::Closed)?;
        for (filter, options) in &filters {
            self.trace.sending_subscribe(mid, filter.as_str(), options);
        }
        self.queue(&Packet::Subscribe(Subscribe {
            packet_id,
            properties,
            filters,
            rejected: Vec::new(),
        }))?;
        Ok(mid)
    }

    /// Queues an UNSUBSCRIBE; returns its message id.
    pub fn unsubscribe(
        &mut self,
        filters: Vec<TopicFilter>,
        properties: Properties,
    ) -> Result<u16, ClientError> {
        let mid = self.next_mid();
        let packet_id = PacketId::new(mid).ok_or(ClientError::Closed)?;
        for filter in &filters {
            self.trace.sending_unsubscribe(mid, filter.as_str());
        }
        self.queue(&Packet::Unsubscribe(Unsubscribe {
            packet_id,
            properties,
            filters,
        }))?;
        Ok(mid)
    }

    /// Sends `PUBLISH` again (DUP set) or `PUBREL` for each message a previous
    /// connection left unacknowledged, in their original order.
    pub fn resume(&mut self, unacknowledged: Vec<Unacknowledged>) -> Result<(), ClientError> {
        for mut entry in unacknowledged {
            let mid = self.next_mid();
            entry.publish.packet_id = PacketId::new(mid);
            match entry.stage {
                Stage::Pubcomp => {
                    self.trace.sending_pubrel(mid);
                    let id = PacketId::new(mid).ok_or(ClientError::Closed)?;
                    self.queue(&Packet::PubRel(Ack::new(id)))?;
                }
                Stage::Puback | Stage::Pubrec => {
                    entry.publish.dup = true;
                    self.trace.publish("sending", &entry.publish, mid);
                    self.queue(&Packet::Publish(entry.publish.clone()))?;
                }
            }
            self.outgoing.insert(mid, entry);
        }
        Ok(())
    }

    /// The QoS 1/2 messages not yet acknowledged, for the next connection.
    pub fn take_unacknowledged(&mut self) -> Vec<Unacknowledged> {
        std::mem::take(&mut self.outgoing).into_values().collect()
    }

    /// Queues a PINGREQ; [`Event::Pong`] follows once the broker answers.
    pub fn ping(&mut self) -> Result<(), ClientError> {
        self.trace.sending("PINGREQ");
        self.queue(&Packet::PingReq)?;
        self.ping_outstanding.get_or_insert_with(Instant::now);
        Ok(())
    }

    /// When keep-alive next needs attention: a PINGREQ due, or a PINGRESP overdue.
    pub(super) fn keep_alive_deadline(&self) -> Option<Instant> {
        let interval = self.keep_alive?;
        Some(match self.ping_outstanding {
            Some(sent) => sent + interval,
            None => self.last_sent + interval,
        })
    }

    pub(super) fn keep_alive_due(&mut self) -> Result<(), ClientError> {
        if self.ping_outstanding.is_some() {
            return Err(ClientError::KeepAlive);
        }
        self.trace.sending("PINGREQ");
        self.queue(&Packet::PingReq)?;
        self.ping_outstanding = Some(Instant::now());
        // Counts as sent now, so the deadline moves on even before the write.
        self.last_sent = Instant::now();
        Ok(())
    }

    /// An outgoing QoS 1/2 message's flow ended (PUBACK, PUBCOMP, or a refusing
    /// PUBREC): the program is told once, if it was still in flight.
    fn finished(&mut self, mid: u16, reason: ReasonCode) {
        if self.outgoing.remove(&mid).is_some() {
            self.events.push_back(Event::Published { mid, reason });
        }
    }

    pub(super) fn handle(&mut self, packet: Packet) -> Result<(), ClientError> {
        match packet {
            Packet::Publish(publish) => self.incoming_publish(publish)?,
            Packet::PubAck(ack) => {
                let mid = ack.packet_id.get();
                self.trace.received_ack("PUBACK", mid, ack.reason);
                self.finished(mid, ack.reason);
            }
            Packet::PubRec(ack) => {
                let mid = ack.packet_id.get();
                self.trace.received_mid("PUBREC", mid);
                if ack.reason.is_error() {
                    self.finished(mid, ack.reason);
                } else if self.manual_acks {
                    self.events.push_back(Event::Received { mid });
                } else {
                    if let Some(entry) = self.outgoing.get_mut(&mid) {
                        entry.stage = Stage::Pubcomp;
                    }
                    self.answer(
                        PacketType::PubRec,
                        QoS::ExactlyOnce,
                        ack.reason,
                        ack.packet_id,
                    )?;
                }
            }
            Packet::PubComp(ack) => {
                let mid = ack.packet_id.get();
                self.trace.received_ack("PUBCOMP", mid, ack.reason);
                self.finished(mid, ack.reason);
            }
            Packet::PubRel(ack) => {
                let mid = ack.packet_id.get();
                self.trace.received_mid("PUBREL", mid);
                if self.manual_acks {
                    self.events.push_back(Event::Released { mid });
                    return Ok(());
                }
                self.answer(
                    PacketType::PubRel,
                    QoS::ExactlyOnce,
                    ack.reason,
                    ack.packet_id,
                )?;
                if let Some(publish) = self.incoming_qos2.remove(&mid) {
                    self.events.push_back(Event::Message(publish));
                }
            }
            Packet::SubAck(suback) => {
                self.trace.received("SUBACK");
                self.events.push_back(Event::SubAck(suback));
            }
            Packet::UnsubAck(unsuback) => {
                self.trace.received("UNSUBACK");
                self.events.push_back(Event::UnsubAck(unsuback));
            }
            Packet::PingResp => {
                self.trace.received("PINGRESP");
                self.ping_outstanding = None;
                self.events.push_back(Event::Pong);
            }
            Packet::PingReq => {
                // Brokers do not ping clients, but answering costs nothing.
                self.queue(&Packet::PingResp)?;
            }
            Packet::Disconnect(disconnect) => {
                self.trace.received_disconnect(disconnect.reason);
                return Err(ClientError::Disconnected(disconnect.reason));
            }
            Packet::Auth(_) => self.trace.received("AUTH"),
            other => {
                return Err(ClientError::Protocol(format!(
                    "unexpected {:?} from the broker",
                    other.packet_type()
                )));
            }
        }
        Ok(())
    }

    /// Sends what the protocol requires in answer to a packet of `kind` from the
    /// broker ([`engine::reply`]), with its `-d` line.
    fn answer(
        &mut self,
        kind: PacketType,
        qos: QoS,
        reason: ReasonCode,
        id: PacketId,
    ) -> Result<(), ClientError> {
        let mid = id.get();
        let reply = match reply(kind, qos, reason) {
            Some(PacketType::PubAck) => {
                self.trace.sending_ack("PUBACK", mid);
                Packet::PubAck(Ack::new(id))
            }
            Some(PacketType::PubRec) => {
                self.trace.sending_ack("PUBREC", mid);
                Packet::PubRec(Ack::new(id))
            }
            Some(PacketType::PubRel) => {
                self.trace.sending_pubrel(mid);
                Packet::PubRel(Ack::new(id))
            }
            Some(PacketType::PubComp) => {
                self.trace.sending_mid("PUBCOMP", mid);
                Packet::PubComp(Ack::new(id))
            }
            _ => return Ok(()),
        };
        self.queue(&reply)
    }

    fn incoming_publish(&mut self, publish: Publish) -> Result<(), ClientError> {
        let mid = publish.packet_id.map_or(0, PacketId::get);
        self.trace.publish("received", &publish, mid);
        match (publish.qos, publish.packet_id) {
            (QoS::AtMostOnce, _) => self.events.push_back(Event::Message(publish)),
            (_, Some(_)) if self.manual_acks => self.events.push_back(Event::Message(publish)),
            (QoS::AtLeastOnce, Some(id)) => {
                self.answer(PacketType::Publish, publish.qos, ReasonCode::Success, id)?;
                self.events.push_back(Event::Message(publish));
            }
            (QoS::ExactlyOnce, Some(id)) => {
                self.answer(PacketType::Publish, publish.qos, ReasonCode::Success, id)?;
                // A re-sent copy before PUBREL replaces the held one: delivered once.
                self.incoming_qos2.insert(mid, publish);
            }
            _ => return Err(ClientError::Protocol("PUBLISH without a packet id".into())),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_of_the_qos_flows_has_its_answer() {
        let ok = ReasonCode::Success;
        assert_eq!(reply(PacketType::Publish, QoS::AtMostOnce, ok), None);
        assert_eq!(
            reply(PacketType::Publish, QoS::AtLeastOnce, ok),
            Some(PacketType::PubAck)
        );
        assert_eq!(
            reply(PacketType::Publish, QoS::ExactlyOnce, ok),
            Some(PacketType::PubRec)
        );
        assert_eq!(
            reply(PacketType::PubRec, QoS::ExactlyOnce, ok),
            Some(PacketType::PubRel)
        );
        assert_eq!(
            reply(
                PacketType::PubRec,
                QoS::ExactlyOnce,
                ReasonCode::QuotaExceeded
            ),
            None
        );
        assert_eq!(
            reply(PacketType::PubRel, QoS::ExactlyOnce, ok),
            Some(PacketType::PubComp)
        );
        for done in [PacketType::PubAck, PacketType::PubComp] {
            assert_eq!(reply(done, QoS::ExactlyOnce, ok), None);
        }
    }

    #[test]
    fn a_refusing_connack_and_a_stray_packet_end_the_handshake() {
        let refused = ConnAck::new(ReasonCode::NotAuthorized, false);
        assert!(matches!(
            handshake(Packet::ConnAck(refused)),
            Handshake::Refused(ReasonCode::NotAuthorized)
        ));
        assert!(matches!(
            handshake(Packet::ConnAck(ConnAck::new(ReasonCode::Success, false))),
            Handshake::Accepted(_)
        ));
        assert!(matches!(
            handshake(Packet::PingResp),
            Handshake::Unexpected(PacketType::PingResp)
        ));
    }

    fn state() -> ClientState {
        ClientState::new(
            ProtocolVersion::V5,
            Some(Duration::from_secs(60)),
            20,
            Trace::default(),
        )
    }

    fn message(qos: QoS) -> Publish {
        Publish {
            qos,
            ..Publish::new(
                crate::protocol::TopicName::new("t").expect("topic"),
                bytes::Bytes::from_static(b"x"),
            )
        }
    }

    fn id(mid: u16) -> PacketId {
        PacketId::new(mid).expect("id")
    }

    #[test]
    fn a_refused_qos2_message_is_finished_without_a_pubrel() {
        let mut state = state();
        let mid = state.publish(message(QoS::ExactlyOnce)).expect("queued");
        state.out.clear();
        state
            .handle(Packet::PubRec(Ack::with_reason(
                id(mid),
                ReasonCode::QuotaExceeded,
            )))
            .expect("handled");
        assert!(state.out.is_empty(), "no PUBREL after a refusal");
        assert!(matches!(
            state.events.pop_front(),
            Some(Event::Published { mid: m, reason: ReasonCode::QuotaExceeded }) if m == mid
        ));
        assert_eq!(state.in_flight(), 0);
    }

    #[test]
    fn a_qos2_message_is_delivered_once_at_pubrel_which_is_always_answered() {
        let mut state = state();
        let mut incoming = message(QoS::ExactlyOnce);
        incoming.packet_id = Some(id(9));
        state
            .handle(Packet::Publish(incoming.clone()))
            .expect("handled");
        // A copy re-sent before PUBREL replaces the held one.
        state.handle(Packet::Publish(incoming)).expect("handled");
        assert!(state.events.is_empty(), "held until PUBREL");
        state.out.clear();
        state
            .handle(Packet::PubRel(Ack::new(id(9))))
            .expect("handled");
        assert_eq!(
            Packet::decode(&state.out, ProtocolVersion::V5),
            Ok(Packet::PubComp(Ack::new(id(9))))
        );
        assert!(matches!(state.events.pop_front(), Some(Event::Message(_))));
        assert!(state.events.is_empty(), "delivered once");
        // A PUBREL for an id it does not hold still gets its PUBCOMP.
        state.out.clear();
        state
            .handle(Packet::PubRel(Ack::new(id(10))))
            .expect("handled");
        assert_eq!(
            Packet::decode(&state.out, ProtocolVersion::V5),
            Ok(Packet::PubComp(Ack::new(id(10))))
        );
    }

    #[test]
    fn with_manual_acks_nothing_is_answered_until_the_program_says_so() {
        let mut state = state();
        state.set_manual_acks();
        let mut incoming = message(QoS::ExactlyOnce);
        incoming.packet_id = Some(id(7));
        state.handle(Packet::Publish(incoming)).expect("handled");
        assert!(state.out.is_empty(), "no PUBREC yet");
        assert!(matches!(state.events.pop_front(), Some(Event::Message(_))));
        state
            .acknowledge(id(7), QoS::ExactlyOnce, ReasonCode::Success)
            .expect("queued");
        assert_eq!(
            Packet::decode(&state.out, ProtocolVersion::V5),
            Ok(Packet::PubRec(Ack::new(id(7))))
        );
        state.out.clear();
        state
            .handle(Packet::PubRel(Ack::new(id(7))))
            .expect("handled");
        assert!(state.out.is_empty(), "no PUBCOMP yet");
        assert!(matches!(
            state.events.pop_front(),
            Some(Event::Released { mid: 7 })
        ));
        state.complete(id(7)).expect("queued");
        assert_eq!(
            Packet::decode(&state.out, ProtocolVersion::V5),
            Ok(Packet::PubComp(Ack::new(id(7))))
        );
        // Outgoing, under the sender's own id.
        state.out.clear();
        let mut outgoing = message(QoS::ExactlyOnce);
        outgoing.packet_id = Some(id(300));
        state.publish_with_id(outgoing).expect("queued");
        assert_eq!(state.in_flight(), 1);
        state.out.clear();
        state
            .handle(Packet::PubRec(Ack::new(id(300))))
            .expect("handled");
        assert!(state.out.is_empty(), "no PUBREL yet");
        assert!(matches!(
            state.events.pop_front(),
            Some(Event::Received { mid: 300 })
        ));
        state.release(id(300)).expect("queued");
        assert_eq!(
            Packet::decode(&state.out, ProtocolVersion::V5),
            Ok(Packet::PubRel(Ack::new(id(300))))
        );
        state
            .handle(Packet::PubComp(Ack::new(id(300))))
            .expect("handled");
        assert!(matches!(
            state.events.pop_front(),
            Some(Event::Published { mid: 300, .. })
        ));
        assert_eq!(state.in_flight(), 0);
    }

    #[test]
    fn a_ping_unanswered_until_the_next_one_is_due_ends_the_connection() {
        let mut state = state();
        state.keep_alive_due().expect("PINGREQ queued");
        assert!(matches!(
            state.keep_alive_due(),
            Err(ClientError::KeepAlive)
        ));
        state.handle(Packet::PingResp).expect("handled");
        assert!(
            state.keep_alive_due().is_ok(),
            "answered: the next one goes"
        );
    }
}
