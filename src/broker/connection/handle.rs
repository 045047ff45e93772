//! What a connection does with each packet it receives: the CONNECT handshake, the
//! QoS flows, SUBSCRIBE and UNSUBSCRIBE, DISCONNECT, and MQTT 5's additions (topic
//! aliases, receive maximum, payload format, reason codes per acknowledgement).
//!
//! Handlers return `Err(End)` to end the connection; `finish` turns that into the log
//! line, the will and, on MQTT 5, a DISCONNECT with the reason code.

use std::sync::Arc;

use tokio::sync::oneshot;

use super::v5::V5;
use super::{Client, Connection, End};
use crate::broker::auth::{Login, Passwords, Principal, Security};
use crate::broker::config::{CertificateUsername, ListenerSettings};
use crate::broker::message::Message;
use crate::broker::router::Router;
use crate::broker::session::{Acked, ConnectionLink, Session};
use crate::broker::store::confirm::Confirmation;
use crate::protocol::topic::matches;
use crate::protocol::{
    Ack, ConnAck, Connect, Packet, PacketId, Properties, Property, ProtocolVersion, Publish, QoS,
    ReasonCode, SubAck, Subscribe, SubscriptionOptions, TopicFilter, TopicName, UnsubAck,
    Unsubscribe,
};

/// Topics no client may publish to (mosquitto 2.0): `$SYS` (the broker's own
/// figures, `$SYSX` included, as mosquitto) except a bridge's state topic, which a
/// remote broker bridging in publishes (and sets as its will); `$share/` (a
/// subscription form, not a topic); and `$CONTROL/` (the broker's control API).
fn reserved_for_broker(topic: &str) -> bool {
    (topic.starts_with("$SYS") && !matches("$SYS/broker/connection/+/state", topic))
        || topic.starts_with("$share/")
        || topic.starts_with("$CONTROL/")
}

/// Whether an acknowledgement belongs to the flow of the message it names: `Ok(true)`
/// when it completed a step, `Ok(false)` for an id not in flight (ignored, as
/// mosquitto does), and a protocol error for the wrong flow (PUBREC or PUBCOMP for a
/// QoS 1 message, PUBACK for a QoS 2 one, PUBCOMP before PUBREC), as mosquitto.
fn acknowledged(acked: Acked) -> Result<bool, End> {
    match acked {
        Acked::Completed => Ok(true),
        Acked::Unknown => Ok(false),
        Acked::WrongFlow => Err(End::Violation(ReasonCode::ProtocolError)),
    }
}

/// Whether a subscriber may have `filter` (a well-formed one): the reason code of
/// its SUBACK entry when not.
fn check_filter(
    router: &crate::broker::router::Router,
    filter: &crate::protocol::TopicFilter,
    acl: Option<&crate::broker::auth::acl::Acl>,
    who: crate::broker::auth::acl::Identity<'_>,
) -> Result<(), ReasonCode> {
    let config = &router.config;
    if filter.share_group().is_some() && !config.shared_subscription_available {
        return Err(ReasonCode::SharedSubscriptionsNotSupported);
    }
    if config.too_deep(filter.filter()) {
        router.log.debug(format_args!(
            "\t{} (more levels than max_topic_levels)",
            filter.as_str()
        ));
        // 0x80 on 3.1.1, 0x83 on 5.0: a limit, not a malformed packet.
        return Err(ReasonCode::ImplementationSpecificError);
    }
    if acl.is_some_and(|acl| !acl.allows_subscription(who, filter.filter())) {
        router
            .log
            .debug(format_args!("\t{} (denied by the ACL)", filter.as_str()));
        // 0x80 on 3.1.1 (the failure return code), 0x87 on 5.0.
        return Err(ReasonCode::NotAuthorized);
    }
    Ok(())
}

/// `mount_point`: `topic` below the listener's prefix (plain concatenation, as
/// mosquitto); `None` when the result is too long to be a topic.
fn mounted_topic(mount: &str, topic: &TopicName) -> Option<TopicName> {
    TopicName::new(format!("{mount}{}", topic.as_str())).ok()
}

/// `mount_point` for a filter; inside `$share/GROUP/` the prefix goes before the
/// filter part.
fn mounted_filter(mount: &str, filter: &TopicFilter) -> Option<TopicFilter> {
    let text = match filter.share_group() {
        Some(group) => format!("$share/{group}/{mount}{}", filter.filter()),
        None => format!("{mount}{}", filter.as_str()),
    };
    TopicFilter::new(text).ok()
}

/// Why a valid PUBLISH is not routed: the acknowledgement's reason code, and its
/// Reason String.
type Refusal = (ReasonCode, &'static str);

/// A CONNECT whose credentials passed, or are being checked.
pub(super) struct LoggedIn {
    connect: Connect,
    client_id: String,
    /// Whether the broker made up the client id.
    assigned: bool,
    /// Whether the client certificate named the user (no password to check).
    certified: bool,
    /// Which auth scope serves the client.
    scope: usize,
    /// The rules the login was decided by.
    security: Option<Arc<Security>>,
}

/// A CONNECT waiting for a verifier thread's answer.
pub(super) struct PendingLogin {
    login: LoggedIn,
    pub(super) verdict: oneshot::Receiver<bool>,
    /// The password file the check runs against.
    passwords: Arc<Passwords>,
}

impl Connection {
    /// Whether the client may publish to `topic`: never into `$SYS` (the broker's
    /// own figures) or `$share/`, and otherwise as its scope's ACL says.
    pub(super) fn may_write(&self, principal: &Principal, topic: &str) -> bool {
        if reserved_for_broker(topic) {
            return false;
        }
        self.router.security.load().may_write(principal, topic)
    }

    /// Answers CONNECT with a refusal, then ends the connection.
    pub(super) fn refuse(&mut self, client_id: &str, code: ReasonCode) -> Result<(), End> {
        self.send(&Packet::ConnAck(ConnAck::new(code, false)));
        let wire_code = if self.version.is_v5() {
            code as u8
        } else {
            code.to_v3_connack()
        };
        self.router.log.debug(format_args!(
            "Sending CONNACK to {client_id} (0, {wire_code})"
        ));
        Err(End::Refused)
    }

    /// Refuses a login, logging as mosquitto does: the CONNACK addressed to the
    /// peer's address, then `Client <unknown> disconnected, not authorised.`
    fn refuse_login(&mut self, code: ReasonCode) -> Result<(), End> {
        let end = self.refuse(&self.peer.host(), code);
        self.router.log.not_authorised("<unknown>");
        end
    }

    pub(super) fn on_connect(&mut self, mut connect: Connect) -> Result<(), End> {
        self.version = connect.version;
        let v5 = connect.version.is_v5();
        let settings = self.settings();
        // use_identity_as_username / use_subject_as_username: the certificate
        // names the user and no password is checked; without a certificate
        // that names one, the login is refused (as mosquitto: 4 / 0x86).
        let identity = self.identity.take();
        let certified = settings.certificate_username != CertificateUsername::Off;
        if certified {
            let name = identity.and_then(|identity| match settings.certificate_username {
                CertificateUsername::CommonName => identity.common_name,
                _ => Some(identity.subject),
            });
            let Some(name) = name else {
                return self.refuse_login(ReasonCode::BadUserNameOrPassword);
            };
            connect.username = Some(name);
            connect.password = None;
        }
        let security = self.router.security.load();
        let scope = security.scope(security.scope_index(self.listener()));
        let assigned = connect.client_id.is_empty();
        let mut client_id = if assigned {
            // [MQTT-3.1.3-8 3.1.1]: an empty id needs a clean session in 3.1.1; 3.1 needs an
            // id; `allow_zero_length_clientid false` refuses it everywhere.
            if connect.version == ProtocolVersion::V3_1
                || (!v5 && !connect.clean_start)
                || !scope.allow_zero_length_clientid
            {
                return self.refuse("<unknown>", ReasonCode::ClientIdentifierNotValid);
            }
            // [MQTT-3.1.3-6 3.1.1/5.0]: a unique id, in mosquitto's form.
            format!(
                "{}{}",
                scope.auto_id_prefix,
                uuid::Uuid::new_v4().hyphenated().to_string().to_uppercase()
            )
        } else {
            connect.client_id.clone()
        };
        if settings.use_username_as_clientid {
            // The username is the client id (and, for an empty one, the assigned
            // id), before the password is checked, as in mosquitto; without a
            // username the client is not authorised.
            match &connect.username {
                Some(username) => client_id = username.clone(),
                None => return self.refuse_login(ReasonCode::NotAuthorized),
            }
        }
        drop(security);
        // clientid_prefixes: other ids are not authorised, as mosquitto.
        if let Some(prefix) = &self.router.config.clientid_prefixes
            && !client_id.starts_with(prefix.as_str())
        {
            return self.refuse_login(ReasonCode::NotAuthorized);
        }
        // No enhanced authentication method is supported [MQTT-4.12.0-1 5.0].
        if connect.properties.authentication_method().is_some() {
            return self.refuse(&client_id, ReasonCode::BadAuthenticationMethod);
        }
        // [MQTT-3.2.2-12 5.0]: a will above Maximum QoS is refused with 0x9B; 3.x has
        // no code for it, and mosquitto closes without a CONNACK.
        if connect
            .will
            .as_ref()
            .is_some_and(|will| will.qos > settings.max_qos)
        {
            if !v5 {
                return Err(End::Violation(ReasonCode::ProtocolError));
            }
            return self.refuse(&client_id, ReasonCode::QoSNotSupported);
        }
        if let Some(will) = &connect.will
            && self.router.config.too_deep(will.topic.as_str())
        {
            // 5.0 says why; 3.x has no code for it, and mosquitto closes.
            if !v5 {
                return Err(End::Violation(ReasonCode::ProtocolError));
            }
            return self.refuse(&client_id, ReasonCode::ImplementationSpecificError);
        }
        self.log_in(LoggedIn {
            connect,
            client_id,
            assigned,
            certified,
            scope: 0,
            security: None,
        })
    }

    /// Checks a CONNECT's credentials against the files in force: answers it, or
    /// parks it while a verifier thread checks the password.
    fn log_in(&mut self, mut login: LoggedIn) -> Result<(), End> {
        let security = self.router.security.load_full();
        login.scope = security.scope_index(self.listener());
        login.security = Some(Arc::clone(&security));
        let scope = security.scope(login.scope);
        let connect = &login.connect;
        if login.certified {
            return self.accept_connect(login);
        }
        match scope.login(connect.username.as_deref(), connect.password.as_deref()) {
            Login::Accepted => self.accept_connect(login),
            Login::AnonymousRefused => self.refuse_login(ReasonCode::NotAuthorized),
            // Too many checks waiting: "server busy" (0x89), 3.x's "server unavailable".
            Login::Busy => self.refuse(
                &self.peer.host(),
                if self.version.is_v5() {
                    ReasonCode::ServerBusy
                } else {
                    ReasonCode::ServerUnavailable
                },
            ),
            Login::Pending { verdict, passwords } => {
                self.pending = Some(Box::new(PendingLogin {
                    login,
                    verdict,
                    passwords,
                }));
                Ok(())
            }
        }
    }

    /// Answers a CONNECT whose password check has finished; `None` when it took
    /// longer than the connect timeout.
    pub(super) fn finish_login(
        &mut self,
        pending: PendingLogin,
        accepted: Option<bool>,
    ) -> Result<(), End> {
        let Some(accepted) = accepted else {
            return self.refuse(
                &self.peer.host(),
                if self.version.is_v5() {
                    ReasonCode::ServerBusy
                } else {
                    ReasonCode::ServerUnavailable
                },
            );
        };
        // A reload while the check ran: the answer is for files no longer in force.
        let security = self.router.security.load();
        let current = &security.scope(pending.login.scope).passwords;
        if !current
            .as_ref()
            .is_some_and(|passwords| Arc::ptr_eq(passwords, &pending.passwords))
        {
            return self.log_in(pending.login);
        }
        if accepted {
            return self.accept_connect(pending.login);
        }
        // A wrong password and an unknown user get the same answer: CONNACK 5 on
        // 3.x ("not authorised", as mosquitto), and on 5.0 the code that says what
        // was wrong, 0x86 (mosquitto 2.0 answers 0x87).
        self.refuse_login(if self.version.is_v5() {
            ReasonCode::BadUserNameOrPassword
        } else {
            ReasonCode::NotAuthorized
        })
    }

    /// Completes a CONNECT whose credentials were accepted.
    fn accept_connect(&mut self, login: LoggedIn) -> Result<(), End> {
        let router = Arc::clone(&self.router);
        let config = &router.config;
        let log = &router.log;
        let LoggedIn {
            connect,
            client_id,
            assigned,
            scope,
            security,
            certified,
        } = login;
        let v5 = connect.version.is_v5();
        // A will into the broker's own topics is refused at once; the ACL decides
        // when the will is published (as mosquitto: the rules may change meanwhile).
        if let Some(will) = &connect.will
            && reserved_for_broker(will.topic.as_str())
        {
            return self.refuse_login(ReasonCode::NotAuthorized);
        }
        let mut keep_alive = connect.keep_alive;
        let mut server_keep_alive = None;
        if config.max_keepalive < u16::MAX && (keep_alive == 0 || keep_alive > config.max_keepalive)
        {
            if !v5 {
                // mosquitto 2.0.12+: 3.x clients cannot be told a keep-alive, so they are refused.
                return self.refuse(&client_id, ReasonCode::ClientIdentifierNotValid);
            }
            // [MQTT-3.2.2-21 5.0]: the client must use the Server Keep Alive.
            keep_alive = config.max_keepalive;
            server_keep_alive = Some(keep_alive);
        }
        let mut connack = ConnAck::new(ReasonCode::Success, false);
        if v5 {
            let props = &mut connack.properties;
            if assigned {
                // [MQTT-3.2.2-16 5.0]
                props.push(Property::AssignedClientIdentifier(client_id.clone()));
            }
            if config.max_inflight_messages > 0 {
                props.push(Property::ReceiveMaximum(config.max_inflight_messages));
            }
            if let Some(size) = config.max_packet_size {
                props.push(Property::MaximumPacketSize(
                    u32::try_from(size).unwrap_or(u32::MAX),
                ));
            }
            let settings = self.settings();
            if settings.max_topic_alias > 0 {
                props.push(Property::TopicAliasMaximum(settings.max_topic_alias));
            }
            if settings.max_qos < QoS::ExactlyOnce {
                props.push(Property::MaximumQos(settings.max_qos as u8));
            }
            if !config.retain_available {
                props.push(Property::RetainAvailable(0));
            }
            if !config.shared_subscription_available {
                props.push(Property::SharedSubscriptionAvailable(0));
            }
            if !config.subscription_identifier_available {
                props.push(Property::SubscriptionIdentifierAvailable(0));
            }
            if let Some(seconds) = server_keep_alive {
                props.push(Property::ServerKeepAlive(seconds));
            }
        }
        // [MQTT-3.1.2-25 5.0]: nothing larger than the client's Maximum Packet Size is
        // sent, and a CONNACK it cannot take means it cannot be served: closed
        // without one, before any session is opened.
        if let Some(limit) = connect.properties.maximum_packet_size()
            && Packet::ConnAck(connack.clone())
                .to_bytes(connect.version)
                .map_or(usize::MAX, |bytes| bytes.len())
                > limit as usize
        {
            return Err(End::Violation(ReasonCode::PacketTooLarge));
        }
        let state_v5 = v5.then(|| Box::new(V5::from_connect(&connect.properties)));
        let persistent = match &state_v5 {
            Some(state) => state.session_expiry != 0,
            None => !connect.clean_start,
        };
        let link = ConnectionLink {
            id: self.id,
            signal: Arc::clone(&self.signal),
        };
        let opened = router.open_session(
            &client_id,
            connect.clean_start,
            persistent,
            link,
            (connect.username.clone(), scope, certified),
            state_v5
                .as_ref()
                .map_or(config.persistent_client_expiration, |v5| {
                    v5.session_expiry().or(config.persistent_client_expiration)
                }),
        );
        let principal = opened.session.lock().principal.clone().unwrap_or_else(|| {
            Arc::new(Principal::new(
                connect.username.clone(),
                Arc::clone(&opened.session.client_id),
                scope,
                certified,
            ))
        });
        // A reload between the login and now: its revocation scan ran before this
        // session was registered (open_session holds the lock it scans under), so
        // check here whether the new rules still admit the client.
        let current = router.security.load();
        if let Some(decided_by) = &security
            && !Arc::ptr_eq(&current, decided_by)
            && !current.still_admits(decided_by, &principal)
        {
            self.signal.revoke();
        }
        if let Some(previous) = &opened.previous {
            log.taken_over(&client_id);
            previous.take_over();
        }
        // [MQTT-3.3.4-9 5.0]: never more unacknowledged PUBLISHes than the client allows.
        opened.session.lock().set_receive_maximum(
            config.max_inflight_messages,
            connect.properties.receive_maximum().unwrap_or(u16::MAX),
        );
        router.stats.client_connected();
        log.client_connected(
            &self.peer,
            &client_id,
            (connect.version, connect.bridge),
            connect.clean_start,
            connect.keep_alive,
            connect.username.as_deref(),
        );
        log.will(
            connect
                .will
                .as_ref()
                .map(|w| (w.payload.len(), w.retain, w.qos, w.topic.as_str())),
        );

        connack.session_present = opened.present;
        self.send(&Packet::ConnAck(connack));
        log.debug(format_args!(
            "Sending CONNACK to {client_id} ({}, 0)",
            u8::from(opened.present)
        ));
        let replay = opened.session.lock().replay();
        let mut will = connect.will.map(Box::new);
        if let (Some(mount), Some(will)) = (config.listener_mount_point(self.listener()), &mut will)
            && let Some(topic) = mounted_topic(mount, &will.topic)
        {
            will.topic = topic;
        }
        self.client = Some(Client {
            session: opened.session,
            principal,
            will,
            keep_alive,
            bridge: connect.bridge,
            v5: state_v5,
        });
        // [MQTT-4.4.0-1 3.1.1/5.0]: unacknowledged messages are re-sent, in order, with DUP.
        for outgoing in replay {
            self.write_outgoing(outgoing);
        }
        Ok(())
    }

    /// Who the client is (set at CONNECT).
    fn principal(&self) -> Result<Arc<Principal>, End> {
        self.client
            .as_ref()
            .map(|c| Arc::clone(&c.principal))
            .ok_or(End::Violation(ReasonCode::ProtocolError))
    }

    pub(super) fn session(&self) -> Result<Arc<Session>, End> {
        self.client
            .as_ref()
            .map(|c| Arc::clone(&c.session))
            .ok_or(End::Violation(ReasonCode::ProtocolError))
    }

    fn v5_mut(&mut self) -> Option<&mut V5> {
        self.client.as_mut().and_then(|c| c.v5.as_deref_mut())
    }

    /// Whether a Reason String may go on acknowledgements [MQTT-3.1.2-29 5.0].
    fn problem_information(&self) -> bool {
        self.client
            .as_ref()
            .and_then(|c| c.v5.as_ref())
            .is_some_and(|v5| v5.problem_information)
    }

    pub(super) fn handle(&mut self, packet: Packet) -> Result<(), End> {
        let router = Arc::clone(&self.router);
        let log = &router.log;
        match packet {
            // [MQTT-3.1.0-2 3.1.1/5.0]: a second CONNECT is a protocol violation.
            Packet::Connect(_) => Err(End::Violation(ReasonCode::ProtocolError)),
            Packet::Publish(publish) => self.on_publish(publish),
            Packet::PubAck(ack) => {
                log.debug(format_args!(
                    "Received PUBACK from {} (Mid: {}, RC:{})",
                    self.client_id(),
                    ack.packet_id,
                    ack.reason as u8
                ));
                acknowledged(self.session()?.lock().puback(ack.packet_id))?;
                Ok(())
            }
            Packet::PubRec(ack) => {
                log.debug(format_args!(
                    "Received PUBREC from {} (Mid: {})",
                    self.client_id(),
                    ack.packet_id
                ));
                let session = self.session()?;
                let known = acknowledged(session.lock().pubrec(ack.packet_id))?;
                // v5: a PUBREC with an error code ends the flow; no PUBREL follows.
                if ack.reason.is_error() {
                    session.lock().pubcomp(ack.packet_id);
                    return Ok(());
                }
                self.send_release(ack.packet_id, known);
                Ok(())
            }
            Packet::PubRel(ack) => {
                log.debug(format_args!(
                    "Received PUBREL from {} (Mid: {})",
                    self.client_id(),
                    ack.packet_id
                ));
                let known = self.session()?.lock().release_qos2(ack.packet_id);
                // [MQTT-4.3.3-11 5.0] (5.0): PUBCOMP even for an unknown id, with 0x92.
                let reason = if known || !self.version.is_v5() {
                    ReasonCode::Success
                } else {
                    ReasonCode::PacketIdentifierNotFound
                };
                self.send(&Packet::PubComp(Ack::with_reason(ack.packet_id, reason)));
                log.debug(format_args!(
                    "Sending PUBCOMP to {} (m{})",
                    self.client_id(),
                    ack.packet_id
                ));
                Ok(())
            }
            Packet::PubComp(ack) => {
                log.debug(format_args!(
                    "Received PUBCOMP from {} (Mid: {}, RC:{})",
                    self.client_id(),
                    ack.packet_id,
                    ack.reason as u8
                ));
                acknowledged(self.session()?.lock().pubcomp(ack.packet_id))?;
                Ok(())
            }
            Packet::Subscribe(subscribe) => self.on_subscribe(subscribe),
            Packet::Unsubscribe(unsubscribe) => self.on_unsubscribe(unsubscribe),
            Packet::PingReq => {
                log.debug(format_args!("Received PINGREQ from {}", self.client_id()));
                self.send(&Packet::PingResp);
                log.debug(format_args!("Sending PINGRESP to {}", self.client_id()));
                Ok(())
            }
            Packet::Disconnect(disconnect) => {
                log.debug(format_args!(
                    "Received DISCONNECT from {}",
                    self.client_id()
                ));
                // v5 §3.14.2.1: some reasons only a server may give.
                if !disconnect.reason.is_client_disconnect() {
                    return Err(End::Violation(ReasonCode::ProtocolError));
                }
                if let Some(state) = self.v5_mut() {
                    state
                        .update_expiry(disconnect.properties.session_expiry_interval())
                        .map_err(End::Violation)?;
                }
                Err(End::Disconnect {
                    with_will: disconnect.reason == ReasonCode::DisconnectWithWillMessage,
                })
            }
            // AUTH without an authentication method in CONNECT is a protocol error
            // (§4.12). The others are packets only a server sends, already refused
            // on their type before decoding (`handle_frame`); kept for completeness.
            Packet::Auth(_)
            | Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp => Err(End::Violation(ReasonCode::ProtocolError)),
        }
    }

    pub(super) fn send_release(&mut self, packet_id: PacketId, known: bool) {
        let reason = if known || !self.version.is_v5() {
            ReasonCode::Success
        } else {
            ReasonCode::PacketIdentifierNotFound
        };
        self.send(&Packet::PubRel(Ack::with_reason(packet_id, reason)));
        self.router.log.debug(format_args!(
            "Sending PUBREL to {} (m{packet_id})",
            self.client_id()
        ));
    }

    /// PUBLISH: validated (what closes the connection, and what only refuses the
    /// message), then applied (logged, routed unless refused, acknowledged).
    fn on_publish(&mut self, mut publish: Publish) -> Result<(), End> {
        // One reference to the router for both steps: its count is shared by every
        // connection, so each clone is a contended atomic on the hot path.
        let router = Arc::clone(&self.router);
        let refusal = self.validate_publish(&router, &mut publish)?;
        self.apply_publish(&router, publish, refusal)
    }

    /// Checks a PUBLISH in its connection's context, resolving its topic alias:
    /// `Err` ends the connection; `Ok(Some(..))` is the reason code (and Reason
    /// String) its acknowledgement gives instead of routing it.
    fn validate_publish(
        &mut self,
        router: &Router,
        publish: &mut Publish,
    ) -> Result<Option<Refusal>, End> {
        let config = &router.config;
        let v5 = self.version.is_v5();
        let ListenerSettings {
            max_qos,
            max_topic_alias,
            ..
        } = self.settings();
        if let Some(state) = self.v5_mut() {
            // [MQTT-3.3.4-6 5.0]: only the server puts Subscription Identifiers in a PUBLISH.
            if publish
                .properties
                .subscription_identifiers()
                .next()
                .is_some()
            {
                return Err(End::Violation(ReasonCode::ProtocolError));
            }
            let alias = publish.properties.topic_alias();
            let topic = std::mem::replace(
                &mut publish.topic,
                crate::protocol::TopicName::alias_placeholder(),
            );
            publish.topic = state
                .resolve_topic(topic, alias, max_topic_alias)
                .map_err(End::Violation)?;
        }
        let size = publish.payload.len() as u64;
        super::count(|c| {
            c.publish_received += 1;
            c.publish_bytes_received += size;
        });
        if publish.topic.is_empty() {
            return Err(End::Violation(ReasonCode::ProtocolError));
        }
        if let Some(mount) = config.listener_mount_point(self.listener()) {
            publish.topic = mounted_topic(mount, &publish.topic)
                .ok_or(End::Violation(ReasonCode::TopicNameInvalid))?;
        }
        // [MQTT-3.2.2-11 5.0], §3.2.2.3.4: a PUBLISH above Maximum QoS ends the connection with
        // 0x9B; 3.x is closed as mosquitto does.
        if publish.qos > max_qos {
            return Err(End::Violation(if v5 {
                ReasonCode::QoSNotSupported
            } else {
                ReasonCode::ProtocolError
            }));
        }
        let too_deep = config.too_deep(publish.topic.as_str());
        if too_deep && !v5 {
            // 3.x has no way to say a message was refused; mosquitto closes too.
            return Err(End::Violation(ReasonCode::ProtocolError));
        }
        if publish.retain && !config.retain_available {
            // v5 §3.2.2.3.5: 0x9A; 3.x has no code, the connection just ends.
            return Err(End::Violation(if v5 {
                ReasonCode::RetainNotSupported
            } else {
                ReasonCode::ProtocolError
            }));
        }
        // memory_limit: the message would take the heap past it. MQTT 5 can refuse a
        // QoS 1/2 message (0x97) and keep the connection; otherwise the publisher is
        // disconnected, as mosquitto does when its allocation fails.
        let out_of_memory =
            crate::broker::memory::would_exceed(config.memory_limit, publish.payload.len());
        if out_of_memory && (!v5 || publish.qos == QoS::AtMostOnce) {
            return Err(End::Violation(ReasonCode::QuotaExceeded));
        }
        // persistence: a store that cannot write (a full disk) acknowledges nothing
        // it could not keep. MQTT 5 is told 0x97; 3.x has no code, so the
        // connection ends and the client sends the message again later.
        let store_full = publish.qos != QoS::AtMostOnce && !router.store.accepting();
        if store_full && !v5 {
            return Err(End::Violation(ReasonCode::QuotaExceeded));
        }
        // What the acknowledgement says, and whether the message is routed at all.
        let mut refusal = None;
        if store_full {
            refusal = Some((ReasonCode::QuotaExceeded, "the store cannot write"));
        } else if out_of_memory {
            refusal = Some((ReasonCode::QuotaExceeded, "memory_limit reached"));
        } else if too_deep {
            refusal = Some((
                ReasonCode::ImplementationSpecificError,
                "topic has more levels than max_topic_levels",
            ));
        } else if config
            .message_size_limit
            .is_some_and(|limit| publish.payload.len() > limit)
        {
            // Acknowledged and dropped, as mosquitto does. On 5.0 with 0x97: mosquitto
            // 2.0.11 says 0x95, which a PUBACK or PUBREC may not carry (§3.4.2.1), so
            // strict clients (rsub and rpub among them) take it as malformed.
            refusal = Some((
                ReasonCode::QuotaExceeded,
                "payload above message_size_limit",
            ));
        } else if v5
            && publish.properties.payload_format_indicator() == Some(1)
            && std::str::from_utf8(&publish.payload).is_err()
        {
            // 5.0 §3.3.2.3.2: a payload said to be UTF-8 may be checked, and refused with 0x99.
            refusal = Some((
                ReasonCode::PayloadFormatInvalid,
                "payload is not valid UTF-8",
            ));
        } else if !self
            .client
            .as_ref()
            .is_some_and(|client| self.may_write(&client.principal, publish.topic.as_str()))
        {
            // As mosquitto: 5.0 is told 0x87, 3.x is acknowledged and the message dropped.
            refusal = Some((
                ReasonCode::NotAuthorized,
                "not authorised to publish to this topic",
            ));
        }
        Ok(refusal)
    }

    /// Logs a validated PUBLISH, routes it unless `refusal` says otherwise, and
    /// acknowledges it as its QoS requires.
    fn apply_publish(
        &mut self,
        router: &Router,
        publish: Publish,
        refusal: Option<Refusal>,
    ) -> Result<(), End> {
        let config = &router.config;
        let session = self.session()?;
        let v5 = self.version.is_v5();
        if refusal.is_some_and(|(code, _)| code == ReasonCode::NotAuthorized) {
            router.log.denied_publish(&session.client_id, &publish);
        } else {
            router.log.received_publish(&session.client_id, &publish);
        }
        let packet_id = publish.packet_id;
        let qos = publish.qos;
        // Only a retained message needs its publisher later (check_retain_source).
        let publisher = publish.retain.then(|| self.principal()).transpose()?;
        // `confirmation` counts the QoS 1 deliveries its PUBACK may wait for
        // instead of the store (`store/confirm.rs`).
        let route = |publish: Publish, confirmation: Option<&Arc<Confirmation>>| -> ReasonCode {
            if let Some((code, _)) = refusal {
                return code;
            }
            let publisher = publisher.clone();
            let message = Arc::new(Message {
                publisher,
                ..Message::from_publish(publish, session.id)
            });
            let routed = router.publish_counted(message, confirmation);
            if routed.matched == 0 {
                ReasonCode::NoMatchingSubscribers
            } else if routed.queued == 0 {
                ReasonCode::QuotaExceeded
            } else {
                ReasonCode::Success
            }
        };
        match (qos, packet_id) {
            (QoS::AtMostOnce, _) => {
                route(publish, None);
            }
            (QoS::AtLeastOnce, Some(id)) => {
                let counted = refusal.is_none() && router.store.confirms_on_delivery();
                let confirmation = counted.then(|| self.confirmation());
                let reason = route(publish, confirmation.as_ref());
                self.acknowledge(id, reason, refusal.map(|(_, text)| text), false);
            }
            (QoS::ExactlyOnce, Some(id)) => {
                // Routed on first receipt (the spec's "Method B"); a copy re-sent before
                // PUBREL is acknowledged but not delivered again [MQTT-4.3.3-10 5.0].
                let state = session.lock();
                let first = !state.awaiting_release(id);
                if first
                    && v5
                    && config.max_inflight_messages > 0
                    && state.awaiting_release_count() >= usize::from(config.max_inflight_messages)
                {
                    // v5 §3.3.4: more unacknowledged QoS 2 than Receive Maximum allows.
                    return Err(End::Violation(ReasonCode::ReceiveMaximumExceeded));
                }
                let reason = if first {
                    // With `persistence`, the deliveries and the id that guards them
                    // against a re-sent copy reach the store in one frame: a crash
                    // keeps both or neither, so the copy is delivered exactly once.
                    let _together = if state.journal.is_some() {
                        router.store.group()
                    } else {
                        None
                    };
                    drop(state);
                    let reason = route(publish, None);
                    // A refused QoS 2 message ends its flow at PUBREC (v5 §4.3.3).
                    if !reason.is_error() {
                        session.lock().receive_qos2(id);
                    }
                    reason
                } else {
                    ReasonCode::Success
                };
                self.acknowledge(id, reason, refusal.map(|(_, text)| text), true);
            }
            // The decoder guarantees a packet id for QoS 1 and 2.
            _ => return Err(End::Violation(ReasonCode::MalformedPacket)),
        }
        Ok(())
    }

    /// Writes PUBACK (or PUBREC) with a reason code on MQTT 5, and a Reason String
    /// when the client allows problem information.
    fn acknowledge(
        &mut self,
        packet_id: PacketId,
        reason: ReasonCode,
        text: Option<&str>,
        exactly_once: bool,
    ) {
        let mut ack = Ack::with_reason(
            packet_id,
            if self.version.is_v5() {
                reason
            } else {
                ReasonCode::Success
            },
        );
        if let Some(text) =
            text.filter(|t| !t.is_empty() && reason.is_error() && self.problem_information())
        {
            ack.properties
                .push(Property::ReasonString(text.to_string()));
        }
        let name = if exactly_once { "PUBREC" } else { "PUBACK" };
        self.send(&if exactly_once {
            Packet::PubRec(ack)
        } else {
            Packet::PubAck(ack)
        });
        // mosquitto logs a denial's 135 on 3.x too, where the packet says success.
        self.router.log.debug(format_args!(
            "Sending {name} to {} (m{packet_id}, rc{})",
            self.client_id(),
            if self.version.is_v5() || reason == ReasonCode::NotAuthorized {
                reason as u8
            } else {
                0
            }
        ));
    }

    fn on_subscribe(&mut self, subscribe: Subscribe) -> Result<(), End> {
        let router = Arc::clone(&self.router);
        let config = &router.config;
        let max_qos = self.settings().max_qos;
        let session = self.session()?;
        router.log.debug(format_args!(
            "Received SUBSCRIBE from {}",
            session.client_id
        ));
        let subscription_id = subscribe.properties.subscription_identifiers().next();
        let total = subscribe.filters.len() + subscribe.rejected.len();
        let mut codes: Vec<Option<ReasonCode>> = vec![None; total];
        for rejected in &subscribe.rejected {
            // v5: an invalid filter gets 0x8F on its own (§3.9.3).
            codes[rejected.position] = Some(ReasonCode::TopicFilterInvalid);
            router
                .log
                .debug(format_args!("\t{} (invalid)", rejected.filter));
        }
        let ids_refused = subscription_id.is_some() && !config.subscription_identifier_available;
        let security = router.security.load();
        let principal = self.principal()?;
        let bridge = self.client.as_ref().is_some_and(|c| c.bridge);
        let acl = security.scope(principal.scope_index()).acl.as_ref();
        let who = principal.identity();
        let mut slots = codes.iter_mut().filter(|c| c.is_none());
        let mount = config.listener_mount_point(self.listener());
        for (filter, options) in &subscribe.filters {
            let mounted;
            let filter = match mount {
                None => filter,
                Some(mount) => match mounted_filter(mount, filter) {
                    Some(filter) => {
                        mounted = filter;
                        &mounted
                    }
                    None => {
                        if let Some(slot) = slots.next() {
                            *slot = Some(ReasonCode::TopicFilterInvalid);
                        }
                        continue;
                    }
                },
            };
            let checked = if ids_refused {
                Err(ReasonCode::SubscriptionIdentifiersNotSupported)
            } else {
                check_filter(&router, filter, acl, who)
            };
            let code = match checked {
                Err(code) => code,
                Ok(()) => {
                    // max_qos: granted at most that, as mosquitto. A bridge
                    // that said so (try_private) never gets its own messages
                    // back, and sees retain flags as published (mosquitto).
                    let mut options = SubscriptionOptions {
                        qos: options.qos.min(max_qos),
                        ..*options
                    };
                    if bridge {
                        options.no_local = true;
                        options.retain_as_published = true;
                    }
                    router.subscribe(&session, filter, options, subscription_id);
                    router
                        .log
                        .subscribed(&session.client_id, filter.as_str(), options.qos);
                    match options.qos {
                        QoS::AtMostOnce => ReasonCode::Success,
                        QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
                        QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
                    }
                }
            };
            if let Some(slot) = slots.next() {
                *slot = Some(code);
            }
        }
        // SUBACK is written now; the retained messages queued above follow it.
        self.send(&Packet::SubAck(SubAck {
            packet_id: subscribe.packet_id,
            properties: Properties::new(),
            codes: codes
                .into_iter()
                .map(|c| c.unwrap_or(ReasonCode::UnspecifiedError))
                .collect(),
        }));
        router
            .log
            .debug(format_args!("Sending SUBACK to {}", session.client_id));
        Ok(())
    }

    fn on_unsubscribe(&mut self, unsubscribe: Unsubscribe) -> Result<(), End> {
        let router = Arc::clone(&self.router);
        let session = self.session()?;
        router.log.debug(format_args!(
            "Received UNSUBSCRIBE from {}",
            session.client_id
        ));
        let mut codes = Vec::with_capacity(unsubscribe.filters.len());
        let mount = router.config.listener_mount_point(self.listener());
        for filter in &unsubscribe.filters {
            let mounted;
            let filter = match mount.map(|mount| mounted_filter(mount, filter)) {
                None => filter,
                Some(Some(filter)) => {
                    mounted = filter;
                    &mounted
                }
                Some(None) => {
                    codes.push(ReasonCode::NoSubscriptionExisted);
                    continue;
                }
            };
            if router.config.too_deep(filter.filter()) {
                // No such subscription can exist.
                codes.push(ReasonCode::ImplementationSpecificError);
                continue;
            }
            let existed = router.unsubscribe(&session, filter);
            router.log.unsubscribed(&session.client_id, filter.as_str());
            codes.push(if existed {
                ReasonCode::Success
            } else {
                ReasonCode::NoSubscriptionExisted
            });
        }
        // [MQTT-3.10.4-4 3.1.1/5.0] [MQTT-3.10.4-5 3.1.1/5.0]: UNSUBACK even when nothing was subscribed.
        self.send(&Packet::UnsubAck(UnsubAck {
            packet_id: unsubscribe.packet_id,
            properties: Properties::new(),
            codes: if self.version.is_v5() {
                codes
            } else {
                Vec::new()
            },
        }));
        router
            .log
            .debug(format_args!("Sending UNSUBACK to {}", session.client_id));
        Ok(())
    }
}
