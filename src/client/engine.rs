//! The client side's protocol rules, without I/O: what the broker's answer to
//! CONNECT means, and which acknowledgement each packet from the broker requires.
//! rsub and rpub's [`Connection`](super::connection::Connection) and rbench's lean
//! `LoadClient` both follow them, so the two clients cannot drift apart; each does
//! its own I/O (the load client keeps no per-message state on its hot path).

use crate::protocol::{ConnAck, Packet, PacketType, QoS, ReasonCode};

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
}
