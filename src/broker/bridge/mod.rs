//! Bridges (`connection NAME` in mosquitto.conf): rbroker as a client of another
//! broker, carrying the topics the `topic` lines name in either direction.
//!
//! A bridge is two things joined by one task:
//! * toward the remote broker, a client of the client engine
//!   ([`client::connection::Connection`](crate::client::connection::Connection))
//!   with manual acknowledgements, dialled through the client's [`Dialer`] (TCP or
//!   TLS);
//! * on this broker, a session like any client's (id `local_clientid`,
//!   persistent unless `local_cleansession`), holding subscriptions for the
//!   `out` and `both` lines with No Local and Retain As Published, so what the
//!   bridge brings in never goes back out.
//!
//! The packet ids on the link are the local session's own, so its in-flight
//! window and queue (kept in the store with `persistence`) are what a lost link or
//! a restart resumes from: a QoS 1/2 message acknowledged to a local publisher
//! stays in the session until the remote broker acknowledges it. Every answer the
//! bridge gives the remote broker (PUBACK, PUBREC, PUBREL, PUBCOMP) goes out only
//! once this broker's store holds what it promises, as for any client.
//!
//! Topics are renamed by `topics.rs`; the connection state is published, retained,
//! on the notification topic (`1` up, `0` down, `0` also as the will on the remote
//! side), and the counters of messages each way in `$SYS` (`sys.rs`).

mod topics;

use std::collections::HashSet;
use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::auth::BRIDGE_SCOPE;
use super::config::bridge::{BridgeConfig, Restart, StartType};
use super::connection::v5::outgoing_properties;
use super::message::Message;
use super::router::Router;
use super::session::{
    Acked, ConnectionLink, ConnectionSignal, Delivery, Outgoing, Session, Signalled,
};
use super::store;
use crate::client::connection::{ClientError, Connection, Event};
use crate::client::endpoint::{Dialer, Endpoint};
use crate::client::tls::TlsOptions;
use crate::client::trace::Trace;
use crate::protocol::{
    ConnAck, Connect, PacketId, Properties, Property, ProtocolVersion, Publish, PublishHeader, QoS,
    ReasonCode, RetainHandling, SubscriptionOptions, TopicName, Will, publish_len,
};

/// Bytes queued toward the remote broker before the bridge stops taking
/// deliveries from its session until they are written.
const WRITE_HIGH_WATER: usize = 64 * 1024;
/// How often a bridge on a later address checks whether the first is back
/// (without `round_robin`), as mosquitto.
const PRIMARY_PROBE: Duration = Duration::from_secs(5);

/// What the bridge has done, for `$SYS`.
#[derive(Debug, Default)]
pub struct BridgeCounters {
    /// Messages sent to the remote broker.
    pub sent: AtomicU64,
    /// Messages received from the remote broker.
    pub received: AtomicU64,
    /// Messages too large for the remote broker, dropped.
    pub dropped: AtomicU64,
}

/// One configured bridge, its TLS settings loaded.
pub struct Bridge {
    config: BridgeConfig,
    tls: Option<Arc<rustls::ClientConfig>>,
    remote_id: String,
    /// Shared, so handling a packet takes it without copying it.
    local_id: Arc<str>,
    state_topic: Option<TopicName>,
    pub counters: Arc<BridgeCounters>,
}

impl Bridge {
    pub fn name(&self) -> &str {
        &self.config.name
    }
}

/// The bridges `config` names, their TLS files read now: one that does not load
/// stops startup, so no bridge runs in plaintext or without its certificate.
pub fn prepare(list: &[BridgeConfig]) -> io::Result<Vec<Bridge>> {
    list.iter()
        .map(|config| {
            let tls = TlsOptions {
                cafile: config.tls.cafile.clone(),
                capath: config.tls.capath.clone(),
                cert: config.tls.certfile.clone(),
                key: config.tls.keyfile.clone(),
                insecure: config.tls.insecure,
                use_os_certs: false,
                alpn: config.tls.alpn.clone(),
                version: config.tls.version.clone(),
            };
            let tls = tls.client_config().map_err(|error| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("Error: bridge {} ({}): {error}.", config.name, config.at),
                )
            })?;
            let state_topic = if config.notifications {
                Some(TopicName::new(config.notification_topic()).map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "Error: bridge {}: invalid notification topic {}.",
                            config.name,
                            config.notification_topic()
                        ),
                    )
                })?)
            } else {
                None
            };
            Ok(Bridge {
                remote_id: config.remote_clientid(),
                local_id: Arc::from(config.local_clientid()),
                config: config.clone(),
                tls,
                state_topic,
                counters: Arc::default(),
            })
        })
        .collect()
}

/// What the remote broker is owed once the store has synced.
enum Answer {
    /// PUBACK (QoS 1) or PUBREC (QoS 2) for an incoming message.
    Acknowledge(PacketId, QoS),
    /// PUBREL for an outgoing QoS 2 message whose PUBREC came.
    Release(PacketId),
    /// PUBCOMP for an incoming QoS 2 message whose PUBREL came.
    Complete(PacketId),
}

/// Why a connection to the remote broker ended.
enum Ended {
    Shutdown,
    Lost(String),
    /// A `lazy` bridge had nothing to send for `idle_timeout`.
    Idle,
    /// The first address answers again (no `round_robin`).
    PrimaryBack,
    /// A client connected with the bridge's local id and took its session.
    TakenOver,
}

/// The bridge's task state.
pub(crate) struct Link {
    bridge: Bridge,
    router: Arc<Router>,
    id: u64,
    signal: Arc<ConnectionSignal>,
    session: Option<Arc<Session>>,
    /// Whether the remote broker still gets the private protocol level (it
    /// refused it once: mosquitto then stops trying).
    try_private: bool,
    /// The remote broker's limits, from its CONNACK.
    remote_max_packet: Option<u32>,
    remote_retain: bool,
    remote_max_qos: QoS,
    /// Message ids of the SUBSCRIBE, UNSUBSCRIBE and state PUBLISH sent after
    /// CONNACK and not yet acknowledged: the session's messages wait for them,
    /// so no packet id is in use twice [MQTT-2.2.1-3].
    pending: HashSet<u16>,
    /// The next address to dial.
    address: usize,
    last_activity: Instant,
    /// Whether the session subscribed since the last connection started, so the
    /// next one need not subscribe again.
    subscribed: bool,
}

/// Opens `bridge`'s session on this broker and subscribes it, before the
/// listeners accept anyone: a message published right after startup is queued
/// for the bridge like any later one.
pub(crate) fn attach_at_start(bridge: Bridge, router: Arc<Router>) -> Link {
    let mut link = Link {
        try_private: bridge.config.try_private && !bridge.config.protocol.is_v5(),
        bridge,
        router: Arc::clone(&router),
        id: 0,
        signal: Arc::new(ConnectionSignal::default()),
        session: None,
        remote_max_packet: None,
        remote_retain: true,
        remote_max_qos: QoS::ExactlyOnce,
        pending: HashSet::new(),
        address: 0,
        last_activity: Instant::now(),
        subscribed: false,
    };
    // Until the first connection, the state is "down" (mosquitto stores a
    // local retained 0 at the first attempt).
    link.notify_local(false);
    link.attach();
    link
}

/// Runs the bridge of `link` (from [`attach_at_start`]) until `stop`: connects,
/// carries messages, and reconnects after `restart_timeout` as its `start_type`
/// says.
pub(crate) async fn run(mut link: Link, stop: CancellationToken) {
    let router = Arc::clone(&link.router);
    let lazy = link.bridge.config.start_type == StartType::Lazy;
    let mut waits = Backoff::new(link.bridge.config.restart);
    loop {
        if lazy {
            // A lazy bridge's session stays attached, so it counts what waits.
            link.attach();
            match link.await_threshold(&stop).await {
                Threshold::Reached => {}
                Threshold::Stopped => break,
                Threshold::TakenOver => {
                    link.taken_over();
                    if !pause(&stop, waits.next()).await {
                        break;
                    }
                    continue;
                }
            }
        }
        let attempt = tokio::select! {
            () = stop.cancelled() => break,
            attempt = link.connect() => attempt,
        };
        let (remote, connack) = match attempt {
            Ok(connected) => connected,
            Err(reason) => {
                link.router
                    .log
                    .notice(format_args!("Error creating bridge: {reason}."));
                link.next_address();
                if !pause(&stop, waits.next()).await {
                    break;
                }
                continue;
            }
        };
        waits.reset();
        let ended = link.serve(remote, connack, &stop).await;
        link.notify_local(false);
        match &ended {
            Ended::Shutdown => break,
            Ended::Lost(reason) => {
                link.router.log.notice(format_args!(
                    "Client {} closed its connection.",
                    link.bridge.local_id
                ));
                link.router
                    .log
                    .debug(format_args!("Bridge {}: {reason}", link.bridge.config.name));
                link.next_address();
            }
            Ended::Idle => link.router.log.notice(format_args!(
                "Bridge {} stopped: nothing to send for {} s (idle_timeout).",
                link.bridge.config.name,
                link.bridge.config.idle_timeout.as_secs()
            )),
            Ended::PrimaryBack => link.address = 0,
            Ended::TakenOver => link.taken_over(),
        }
        if !lazy {
            link.detach();
        }
        if link.bridge.config.start_type == StartType::Once {
            stop.cancelled().await;
            break;
        }
        if matches!(ended, Ended::PrimaryBack) {
            continue;
        }
        if !pause(&stop, waits.next()).await {
            break;
        }
    }
    link.detach();
    router.unregister_connection(link.id);
}

/// Waits `wait`; false when `stop` came first.
async fn pause(stop: &CancellationToken, wait: Duration) -> bool {
    tokio::select! {
        () = stop.cancelled() => false,
        () = tokio::time::sleep(wait) => true,
    }
}

/// How waiting for a lazy bridge's threshold ended.
enum Threshold {
    Reached,
    Stopped,
    TakenOver,
}

/// `restart_timeout`: a constant wait, or mosquitto's backoff (each wait drawn
/// from [base, 3 × the previous), capped; back to base after a connection).
struct Backoff {
    restart: Restart,
    previous: Duration,
    seed: u64,
}

impl Backoff {
    fn new(restart: Restart) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9, |d| d.as_nanos() as u64)
            | 1;
        let mut backoff = Backoff {
            restart,
            previous: Duration::ZERO,
            seed,
        };
        backoff.reset();
        backoff
    }

    fn reset(&mut self) {
        self.previous = match self.restart {
            Restart::Constant(wait) => wait,
            Restart::Backoff { base, .. } => base,
        };
    }

    fn next(&mut self) -> Duration {
        let Restart::Backoff { base, cap } = self.restart else {
            return self.previous;
        };
        let wait = self.previous;
        // xorshift: the spread only keeps many bridges from retrying in step.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let upper = self
            .previous
            .saturating_mul(3)
            .max(base.saturating_add(Duration::from_millis(1)));
        let span = u64::try_from(upper.saturating_sub(base).as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        self.previous = base
            .saturating_add(Duration::from_millis(self.seed % span))
            .min(cap);
        wait
    }
}

impl Link {
    fn counters(&self) -> &BridgeCounters {
        &self.bridge.counters
    }

    fn next_address(&mut self) {
        self.address = (self.address + 1) % self.bridge.config.addresses.len();
    }

    /// Publishes the connection state on this broker, retained.
    fn notify_local(&self, up: bool) {
        let Some(topic) = &self.bridge.state_topic else {
            return;
        };
        let payload = Bytes::from_static(if up { b"1" } else { b"0" });
        self.router.publish(Arc::new(Message::new(
            topic.clone(),
            payload,
            QoS::AtLeastOnce,
            true,
        )));
    }

    /// Opens (or resumes) the bridge's session on this broker and subscribes it
    /// to the local side of every `out` and `both` line, which queues the
    /// retained messages they match.
    fn attach(&mut self) {
        if self.session.is_some() {
            return;
        }
        // A fresh signal for each attachment: what an earlier one was told (a
        // takeover) stays with it.
        if self.id != 0 {
            self.router.unregister_connection(self.id);
        }
        self.signal = Arc::new(ConnectionSignal::default());
        self.id = self.router.register_connection(Arc::clone(&self.signal));
        let config = &self.bridge.config;
        let clean = config.local_cleansession();
        let link = ConnectionLink {
            id: self.id,
            signal: Arc::clone(&self.signal),
        };
        let opened = self.router.open_session(
            &self.bridge.local_id,
            clean,
            !clean,
            link,
            (None, BRIDGE_SCOPE, true),
            None,
        );
        if let Some(previous) = opened.previous.as_ref().filter(|p| p.id != self.id) {
            previous.take_over();
        }
        for line in config.topics.iter().filter(|t| t.direction.outgoing()) {
            self.router.log.debug(format_args!(
                "Bridge {} doing local SUBSCRIBE on topic {}",
                self.bridge.local_id, line.local
            ));
            self.router
                .subscribe(&opened.session, &line.local, local_options(line.qos), None);
        }
        self.session = Some(opened.session);
        self.subscribed = true;
    }

    /// A client connected with the bridge's local client id and took its
    /// session: the bridge takes it back at its next connection.
    fn taken_over(&mut self) {
        self.router.log.warning(format_args!(
            "Warning: bridge {}: a client connected as {} and took its session; the bridge takes it back when it connects again.",
            self.bridge.config.name, self.bridge.local_id
        ));
        self.session = None;
    }

    /// Detaches the session: kept (queueing QoS 1/2 messages) unless
    /// `local_cleansession`.
    fn detach(&mut self) {
        if let Some(session) = self.session.take() {
            self.router.close_session(&session, self.id, None);
        }
    }

    /// Waits (as a `lazy` bridge) until `threshold` messages wait for the remote
    /// broker.
    async fn await_threshold(&mut self, stop: &CancellationToken) -> Threshold {
        loop {
            let Some(session) = &self.session else {
                return Threshold::TakenOver;
            };
            let waiting = {
                let state = session.lock();
                state.queued() + state.inflight()
            };
            if waiting >= self.bridge.config.threshold {
                return Threshold::Reached;
            }
            let signalled = poll_fn(|cx| match self.signal.poll(cx) {
                Some(signalled) => Poll::Ready(signalled),
                None => Poll::Pending,
            });
            tokio::select! {
                () = stop.cancelled() => return Threshold::Stopped,
                signalled = signalled => match signalled {
                    Signalled::Shutdown => return Threshold::Stopped,
                    Signalled::TakenOver | Signalled::Revoked => return Threshold::TakenOver,
                    Signalled::Expired | Signalled::Deliveries | Signalled::Park => {}
                },
            }
        }
    }

    /// The CONNECT this bridge sends.
    fn connect_packet(&self) -> Connect {
        let config = &self.bridge.config;
        let mut connect = Connect::new(self.bridge.remote_id.clone(), config.keepalive);
        connect.version = config.protocol;
        connect.clean_start = config.cleansession;
        connect.bridge = self.try_private;
        connect.username = config.remote_username.clone();
        connect.password = config
            .remote_password
            .as_ref()
            .map(|p| Bytes::from(p.clone().into_bytes()));
        if config.protocol.is_v5() && !config.cleansession {
            // The remote broker keeps the session until the bridge is back.
            connect
                .properties
                .push(Property::SessionExpiryInterval(u32::MAX));
        }
        if let Some(topic) = self
            .bridge
            .state_topic
            .as_ref()
            .filter(|_| !config.notifications_local_only)
        {
            connect.will = Some(Will {
                topic: topic.clone(),
                payload: Bytes::from_static(b"0"),
                qos: QoS::AtLeastOnce,
                retain: true,
                properties: Properties::new(),
            });
        }
        connect
    }

    /// Dials the current address and logs in; a remote broker refusing the
    /// private protocol level is asked again without it.
    async fn connect(&mut self) -> Result<(Connection, ConnAck), String> {
        let (host, port) = self.bridge.config.addresses[self.address].clone();
        for step in [1, 2] {
            self.router.log.notice(format_args!(
                "Connecting bridge (step {step}) {} ({host}:{port})",
                self.bridge.config.name
            ));
        }
        let dialer = Dialer {
            endpoint: Endpoint::Tcp {
                host: host.clone(),
                port,
            },
            bind_address: self.bridge.config.bind_address.clone(),
            tls: self.bridge.tls.clone(),
        };
        loop {
            let connect = self.connect_packet();
            self.router.log.debug(format_args!(
                "Bridge {} sending CONNECT",
                self.bridge.remote_id
            ));
            // Dialling (TCP, TLS) and the CONNACK get one keep-alive interval.
            let limit = u64::from(self.bridge.config.keepalive);
            let attempt = tokio::time::timeout(Duration::from_secs(limit), async {
                let stream = dialer.dial().await.map_err(worded)?;
                Connection::handshake(stream, &connect, u16::MAX, Trace::default())
                    .await
                    .map_err(|error| match error {
                        ClientError::Refused(code) => refusal(code),
                        other => worded(other),
                    })
            })
            .await
            .map_err(|_| format!("no CONNACK within {limit} s (keepalive_interval)"))?;
            match attempt {
                Err(reason)
                    if connect.bridge
                        && reason == refusal(ReasonCode::UnsupportedProtocolVersion) =>
                {
                    self.router.log.notice(format_args!(
                        "Bridge {}: {reason}; connecting again without try_private.",
                        self.bridge.config.name
                    ));
                    self.try_private = false;
                }
                Err(reason) => return Err(reason),
                Ok((mut remote, connack)) => {
                    remote.set_manual_acks();
                    self.router.log.debug(format_args!(
                        "Received CONNACK on connection {}.",
                        self.bridge.local_id
                    ));
                    return Ok((remote, connack));
                }
            }
        }
    }

    /// Carries messages both ways over one connection until it ends.
    async fn serve(
        &mut self,
        mut remote: Connection,
        connack: ConnAck,
        stop: &CancellationToken,
    ) -> Ended {
        let config = self.bridge.config.clone();
        self.remote_max_packet = connack.properties.maximum_packet_size();
        self.remote_retain = connack.properties.retain_available() != Some(0);
        self.remote_max_qos = connack
            .properties
            .maximum_qos()
            .and_then(QoS::from_u8)
            .unwrap_or(QoS::ExactlyOnce);
        self.last_activity = Instant::now();
        self.attach();
        let resubscribe = !std::mem::replace(&mut self.subscribed, false);
        let Some(session) = self.session.clone() else {
            return Ended::TakenOver;
        };
        {
            let mut state = session.lock();
            // Never more unacknowledged messages than the remote broker's Receive
            // Maximum allows [MQTT-3.3.4-9 5.0].
            state.set_receive_maximum(
                self.router.config.max_inflight_messages,
                connack.properties.receive_maximum().unwrap_or(u16::MAX),
            );
            // A remote broker without our session has no QoS 2 message of ours
            // half done: an id it sends again is a new message.
            if !connack.session_present {
                state.forget_incoming_qos2();
            }
        }
        self.notify_local(true);
        if let Err(error) = self.start(&mut remote, &session, &config, resubscribe) {
            return Ended::Lost(error.to_string());
        }
        let probing = !config.round_robin && self.address != 0;
        let mut probe = tokio::time::interval_at(Instant::now() + PRIMARY_PROBE, PRIMARY_PROBE);
        let mut probing_now: Option<tokio::task::JoinHandle<bool>> = None;
        loop {
            if self.pending.is_empty() {
                match self.drain(&mut remote, &session) {
                    Ok(true) => {}
                    Ok(false) => return Ended::TakenOver,
                    Err(error) => return Ended::Lost(error.to_string()),
                }
            }
            if let Err(ended) = self.synced().await {
                return ended;
            }
            let idle_at = (config.start_type == StartType::Lazy)
                .then(|| self.last_activity + config.idle_timeout);
            let signalled = poll_fn(|cx| match self.signal.poll(cx) {
                Some(signalled) => Poll::Ready(signalled),
                None => Poll::Pending,
            });
            let may_probe = probing && probing_now.is_none();
            let probed = async {
                match probing_now.as_mut() {
                    Some(task) => task.await.unwrap_or(false),
                    None => std::future::pending().await,
                }
            };
            let event = tokio::select! {
                () = stop.cancelled() => return Ended::Shutdown,
                signalled = signalled => match signalled {
                    Signalled::Shutdown => return Ended::Shutdown,
                    Signalled::TakenOver | Signalled::Revoked => return Ended::TakenOver,
                    Signalled::Expired | Signalled::Deliveries | Signalled::Park => continue,
                },
                // Returns early once a write leaves room, so a backlog of QoS 0
                // messages (nothing acknowledges them) keeps flowing.
                event = remote.next_event_or_written(Some(WRITE_HIGH_WATER)) => Some(event),
                _ = probe.tick(), if may_probe => None,
                back = probed => {
                    probing_now = None;
                    if back {
                        return Ended::PrimaryBack;
                    }
                    continue;
                }
                () = sleep_until(idle_at) => {
                    let idle = session.lock().queued() == 0 && remote.in_flight() == 0;
                    if idle && Instant::now() >= self.last_activity + config.idle_timeout {
                        let _ = remote.disconnect(ReasonCode::Success, Properties::new()).await;
                        return Ended::Idle;
                    }
                    self.last_activity = Instant::now();
                    continue;
                }
            };
            let Some(event) = event else {
                // The probe interval came: ask the first address in the background.
                let (host, port) = config.addresses[0].clone();
                probing_now = Some(tokio::spawn(answers(host, port)));
                continue;
            };
            let result = match event {
                Ok(Some(event)) => self.on_events(event, &mut remote, &session).await,
                Ok(None) => Ok(()),
                Err(error) => Err(Ended::Lost(error.to_string())),
            };
            if let Err(ended) = result {
                return ended;
            }
        }
    }

    /// What follows a CONNACK: the messages an earlier connection left in
    /// flight, the state `1`, and the remote subscriptions; the session's other
    /// messages wait until the remote broker has acknowledged these.
    fn start(
        &mut self,
        remote: &mut Connection,
        session: &Arc<Session>,
        config: &BridgeConfig,
        resubscribe: bool,
    ) -> Result<(), ClientError> {
        let v5 = config.protocol.is_v5();
        self.pending.clear();
        // In flight first, under their ids, so the ids the engine picks for the
        // packets below are not among them.
        let replay = session.lock().replay();
        for outgoing in replay {
            self.send(remote, outgoing)?;
        }
        if let Some(topic) = self
            .bridge
            .state_topic
            .as_ref()
            .filter(|_| !config.notifications_local_only)
        {
            let state = Publish {
                qos: QoS::AtLeastOnce.min(self.remote_max_qos),
                retain: self.remote_retain,
                ..Publish::new(topic.clone(), Bytes::from_static(b"1"))
            };
            let mid = remote.publish(state)?;
            if self.remote_max_qos != QoS::AtMostOnce {
                self.pending.insert(mid);
            }
        }
        if config.attempt_unsubscribe {
            for line in config.topics.iter().filter(|t| !t.direction.incoming()) {
                let mid = remote.unsubscribe(vec![line.remote.clone()], Properties::new())?;
                self.pending.insert(mid);
                self.router.log.debug(format_args!(
                    "Bridge {} sending UNSUBSCRIBE (Mid: {mid}, Topic: {})",
                    self.bridge.local_id, line.remote
                ));
            }
        }
        for line in config.topics.iter().filter(|t| t.direction.incoming()) {
            let options = SubscriptionOptions {
                qos: line.qos.min(self.remote_max_qos),
                no_local: v5,
                retain_as_published: v5,
                retain_handling: RetainHandling::SendAtSubscribe,
            };
            let mid = remote.subscribe(vec![(line.remote.clone(), options)], Properties::new())?;
            self.pending.insert(mid);
            self.router.log.debug(format_args!(
                "Bridge {} sending SUBSCRIBE (Mid: {mid}, Topic: {}, QoS: {}, Options: 0x{:02x})",
                self.bridge.local_id,
                line.remote,
                options.qos as u8,
                options_byte(&options) & !0x03
            ));
        }
        if resubscribe {
            // mosquitto makes the local subscriptions again at each connection,
            // so the retained messages they match go out again.
            for line in config.topics.iter().filter(|t| t.direction.outgoing()) {
                self.router
                    .subscribe(session, &line.local, local_options(line.qos), None);
            }
        }
        Ok(())
    }

    /// Moves deliveries from the session to the remote broker, within the
    /// session's in-flight window; false when the session was taken over.
    fn drain(
        &mut self,
        remote: &mut Connection,
        session: &Arc<Session>,
    ) -> Result<bool, ClientError> {
        store::take_recorded_here();
        let mut state = session.lock();
        if !state.is_connected_to(self.id) {
            return Ok(false);
        }
        let now = std::time::Instant::now();
        while remote.unwritten() < WRITE_HIGH_WATER {
            let fits = |delivery: &Delivery| self.fits(delivery, remote.version());
            let Some(outgoing) = state.next_publish(now, fits) else {
                break;
            };
            self.send(remote, outgoing)?;
        }
        Ok(true)
    }

    /// Whether a delivery fits the remote broker's Maximum Packet Size and
    /// `bridge_max_packet_size`; one that does not is logged and dropped.
    fn fits(&self, delivery: &Delivery, version: ProtocolVersion) -> bool {
        let limit = match (self.remote_max_packet, self.bridge.config.max_packet_size) {
            (None, 0) => return true,
            (Some(remote), 0) => remote,
            (None, own) => own,
            (Some(remote), own) => remote.min(own),
        };
        let message = &delivery.message;
        let topic = topics::to_remote(&self.bridge.config.topics, message.topic.as_str());
        let qos = delivery.qos.min(self.remote_max_qos);
        let size = publish_len(
            version,
            qos,
            &topic,
            &message.properties,
            message.payload.len(),
        );
        if size <= limit as usize {
            return true;
        }
        self.counters().dropped.fetch_add(1, Ordering::Relaxed);
        self.router.log.notice(format_args!(
            "Dropping too large outgoing PUBLISH for {} ({size} bytes)",
            self.bridge.local_id
        ));
        false
    }

    /// The PUBLISH the remote broker gets for `delivery`: its topic renamed, and
    /// on MQTT 5 its properties with the expiry that remains.
    fn outgoing_publish(
        &self,
        delivery: &Delivery,
        packet_id: Option<PacketId>,
        dup: bool,
        version: ProtocolVersion,
    ) -> Option<Publish> {
        let message = &delivery.message;
        let topic = topics::to_remote(&self.bridge.config.topics, message.topic.as_str());
        let topic = TopicName::new(topic).ok()?;
        let properties = if version.is_v5() {
            // As to any subscriber: the expiry that remains (the bridge's
            // subscriptions have no identifiers, and it uses no topic aliases).
            outgoing_properties(delivery, std::time::Instant::now(), None).into_owned()
        } else {
            Properties::new()
        };
        Some(Publish {
            dup,
            // The remote broker's Maximum QoS (MQTT 5) caps what it is sent.
            qos: delivery.qos.min(self.remote_max_qos),
            retain: delivery.retain && self.bridge.config.outgoing_retain && self.remote_retain,
            topic,
            packet_id,
            properties,
            payload: message.payload.clone(),
        })
    }

    fn send(&mut self, remote: &mut Connection, outgoing: Outgoing) -> Result<(), ClientError> {
        match outgoing {
            Outgoing::PubRel(id) => remote.release(id),
            Outgoing::Publish {
                delivery,
                packet_id,
                dup,
            } => {
                let Some(publish) =
                    self.outgoing_publish(&delivery, packet_id, dup, remote.version())
                else {
                    return Ok(());
                };
                self.counters().sent.fetch_add(1, Ordering::Relaxed);
                self.last_activity = Instant::now();
                let log = &self.router.log;
                if log.is_debug() {
                    let header = PublishHeader {
                        dup: publish.dup,
                        qos: publish.qos,
                        retain: publish.retain,
                        packet_id: publish.packet_id,
                    };
                    log.sending_publish(
                        &self.bridge.local_id,
                        header,
                        publish.topic.as_str(),
                        publish.payload.len(),
                    );
                }
                remote.publish_with_id(publish)
            }
        }
    }

    /// Waits until the store holds what this task recorded since the last
    /// `take_recorded_here` (nothing to wait for without `persistence`).
    async fn synced(&self) -> Result<(), Ended> {
        let recorded = store::take_recorded_here();
        let store = &self.router.store;
        if recorded == 0 || store.is_synced(recorded) {
            return Ok(());
        }
        store.want(recorded);
        store
            .synced(recorded)
            .await
            .map_err(|error| Ended::Lost(format!("the store cannot write: {error}")))
    }

    /// Handles `event` and every event already read behind it, then, once the
    /// store holds what they recorded (one sync for the batch), sends the
    /// answers they call for.
    async fn on_events(
        &mut self,
        event: Event,
        remote: &mut Connection,
        session: &Arc<Session>,
    ) -> Result<(), Ended> {
        let lost = |error: ClientError| Ended::Lost(error.to_string());
        store::take_recorded_here();
        let mut answers = Vec::new();
        let mut next = Some(event);
        while let Some(event) = next {
            if let Some(answer) = self.apply(event, session) {
                answers.push(answer);
            }
            next = remote.buffered_event().map_err(lost)?;
        }
        if answers.is_empty() {
            return Ok(());
        }
        self.synced().await?;
        let router = Arc::clone(&self.router);
        let log = &router.log;
        let local_id = &self.bridge.local_id;
        for answer in answers {
            match answer {
                Answer::Acknowledge(id, qos) => {
                    remote
                        .acknowledge(id, qos, ReasonCode::Success)
                        .map_err(lost)?;
                    let kind = if qos == QoS::AtLeastOnce {
                        "PUBACK"
                    } else {
                        "PUBREC"
                    };
                    log.debug(format_args!("Sending {kind} to {local_id} (m{id}, rc0)"));
                }
                Answer::Release(id) => {
                    remote.release(id).map_err(lost)?;
                    log.debug(format_args!("Sending PUBREL to {local_id} (m{id})"));
                }
                Answer::Complete(id) => {
                    remote.complete(id).map_err(lost)?;
                    log.debug(format_args!("Sending PUBCOMP to {local_id} (m{id})"));
                }
            }
        }
        Ok(())
    }

    /// Applies one event from the remote broker to this broker, returning the
    /// answer it calls for, which waits for the store.
    fn apply(&mut self, event: Event, session: &Arc<Session>) -> Option<Answer> {
        let router = Arc::clone(&self.router);
        let log = &router.log;
        let local_id = Arc::clone(&self.bridge.local_id);
        match event {
            Event::Message(publish) => {
                self.last_activity = Instant::now();
                let (qos, id) = (publish.qos, publish.packet_id);
                self.incoming(publish, session);
                id.filter(|_| qos != QoS::AtMostOnce)
                    .map(|id| Answer::Acknowledge(id, qos))
            }
            Event::Received { mid } => {
                let id = PacketId::new(mid)?;
                log.debug(format_args!("Received PUBREC from {local_id} (Mid: {mid})"));
                session.lock().pubrec(id);
                Some(Answer::Release(id))
            }
            Event::Released { mid } => {
                let id = PacketId::new(mid)?;
                log.debug(format_args!("Received PUBREL from {local_id} (Mid: {mid})"));
                session.lock().release_qos2(id);
                Some(Answer::Complete(id))
            }
            Event::Published { mid, reason } => {
                if self.pending.remove(&mid) {
                    // The state message's PUBACK.
                    return None;
                }
                let id = PacketId::new(mid)?;
                let mut state = session.lock();
                // PUBACK ends a QoS 1 flow, PUBCOMP a QoS 2 one; a refusing PUBREC
                // (MQTT 5) ends a QoS 2 flow before its PUBREL.
                let kind = if state.puback(id) != Acked::WrongFlow {
                    "PUBACK"
                } else if state.pubcomp(id) != Acked::WrongFlow {
                    "PUBCOMP"
                } else {
                    state.pubrec(id);
                    state.pubcomp(id);
                    "PUBREC"
                };
                drop(state);
                log.debug(format_args!(
                    "Received {kind} from {local_id} (Mid: {mid}, RC:{})",
                    reason as u8
                ));
                if reason.is_error() {
                    log.notice(format_args!(
                        "Bridge {}: the remote broker refused message {mid}: {}.",
                        self.bridge.config.name,
                        reason.name()
                    ));
                }
                None
            }
            Event::SubAck(suback) => {
                self.pending.remove(&suback.packet_id.get());
                log.debug(format_args!("Received SUBACK from {local_id}"));
                if suback.codes.iter().any(|code| code.is_error()) {
                    log.warning(format_args!(
                        "Warning: bridge {}: the remote broker refused a subscription (Mid: {}).",
                        self.bridge.config.name,
                        suback.packet_id.get()
                    ));
                }
                None
            }
            Event::UnsubAck(unsuback) => {
                self.pending.remove(&unsuback.packet_id.get());
                log.debug(format_args!("Received UNSUBACK from {local_id}"));
                None
            }
            Event::Pong => None,
        }
    }

    /// Routes a message from the remote broker on this broker, under its local
    /// topic, as published by the bridge's session (so its No Local
    /// subscriptions do not send it back). A QoS 2 message re-sent before its
    /// PUBREL is routed once: its id stays in the session until then.
    fn incoming(&mut self, mut publish: Publish, session: &Arc<Session>) {
        let local = topics::to_local(&self.bridge.config.topics, publish.topic.as_str());
        let Ok(topic) = TopicName::new(local) else {
            return;
        };
        publish.topic = topic;
        // Properties only the link uses stay behind.
        publish.properties = publish
            .properties
            .iter()
            .filter(|p| {
                !matches!(
                    p,
                    Property::TopicAlias(_) | Property::SubscriptionIdentifier(_)
                )
            })
            .cloned()
            .collect();
        self.router
            .log
            .received_publish(&self.bridge.local_id, &publish);
        self.counters().received.fetch_add(1, Ordering::Relaxed);
        let (qos, id) = (publish.qos, publish.packet_id);
        let route = |publish: Publish| {
            self.router
                .publish(Arc::new(Message::from_publish(publish, session.id)));
        };
        match (qos, id) {
            (QoS::ExactlyOnce, Some(id)) => {
                let state = session.lock();
                if state.awaiting_release(id) {
                    return;
                }
                // The deliveries and the id that guards them reach the store together.
                let _together = if state.journal.is_some() {
                    self.router.store.group()
                } else {
                    None
                };
                drop(state);
                route(publish);
                session.lock().receive_qos2(id);
            }
            _ => route(publish),
        }
    }
}

/// Whether `host:port` accepts a TCP connection within 2 s.
async fn answers(host: String, port: u16) -> bool {
    matches!(
        tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect((host.as_str(), port))
        )
        .await,
        Ok(Ok(_))
    )
}

/// The options of the bridge's subscriptions on this broker: what the bridge
/// brought in never goes back out, and retain flags pass as published.
fn local_options(qos: QoS) -> SubscriptionOptions {
    SubscriptionOptions {
        qos,
        no_local: true,
        retain_as_published: true,
        retain_handling: RetainHandling::SendAtSubscribe,
    }
}

/// An error as mosquitto words it: without Rust's "(os error N)".
fn worded(error: impl std::fmt::Display) -> String {
    let text = error.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The wording of a refused CONNECT, as mosquitto logs it.
fn refusal(code: ReasonCode) -> String {
    match code {
        ReasonCode::UnsupportedProtocolVersion => {
            "Connection Refused: unacceptable protocol version".into()
        }
        ReasonCode::ClientIdentifierNotValid => "Connection Refused: identifier rejected".into(),
        ReasonCode::ServerUnavailable => "Connection Refused: broker unavailable".into(),
        ReasonCode::BadUserNameOrPassword => "Connection Refused: bad user name or password".into(),
        ReasonCode::NotAuthorized => "Connection Refused: not authorised".into(),
        other => format!("Connection Refused: {}", other.name()),
    }
}

/// A SUBSCRIBE's options byte (MQTT 5 §3.8.3.1).
fn options_byte(options: &SubscriptionOptions) -> u8 {
    options.qos as u8
        | (u8::from(options.no_local) << 2)
        | (u8::from(options.retain_as_published) << 3)
        | ((options.retain_handling as u8) << 4)
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_waits_are_constant_or_a_capped_backoff_that_resets() {
        let mut constant = Backoff::new(Restart::Constant(Duration::from_secs(3)));
        assert!((0..5).all(|_| constant.next() == Duration::from_secs(3)));
        let (base, cap) = (Duration::from_secs(5), Duration::from_secs(30));
        let mut backoff = Backoff::new(Restart::Backoff { base, cap });
        assert_eq!(backoff.next(), base, "the first wait is the base");
        let waits: Vec<Duration> = (0..50).map(|_| backoff.next()).collect();
        assert!(waits.iter().all(|w| *w >= base && *w <= cap), "{waits:?}");
        assert!(waits.iter().any(|w| *w > base), "it backs off: {waits:?}");
        backoff.reset();
        assert_eq!(backoff.next(), base, "a connection resets it");
    }

    #[test]
    fn options_bytes_and_refusals_read_as_mosquitto_logs_them() {
        let options = SubscriptionOptions {
            qos: QoS::ExactlyOnce,
            no_local: true,
            retain_as_published: true,
            retain_handling: RetainHandling::SendAtSubscribe,
        };
        assert_eq!(options_byte(&options), 0x0e);
        assert_eq!(
            refusal(ReasonCode::NotAuthorized),
            "Connection Refused: not authorised"
        );
        assert_eq!(
            worded(io::Error::from_raw_os_error(libc::ECONNREFUSED)),
            "Connection refused"
        );
    }
}
