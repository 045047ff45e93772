//! Broker settings and the mosquitto.conf subset that sets them.
//!
//! The parser follows mosquitto 2.0: one `key value...` per line, `#` starts a comment
//! line, an unknown key or a bad value is an error naming `file:line`. mosquitto
//! options that rbroker does not implement yet are of two kinds: those that cannot
//! weaken security (persistence, tuning, logging) are accepted with a warning, so
//! existing config files keep loading; those that protect something (TLS, plugins,
//! PSK, mount points, included files that may hold either) stop startup, so the
//! broker never runs with a protection silently missing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::session::QueueLimits;
use crate::protocol::QoS;

pub mod bridge;
pub mod catalogue;
pub mod transport;

use catalogue::Status;
pub use transport::{ListenerProtocol, Located, TlsOptions, TlsVersion, TransportOptions};

/// Which log lines are written (mosquitto's `log_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogTypes(u16);

impl LogTypes {
    pub const ERROR: LogTypes = LogTypes(1);
    pub const WARNING: LogTypes = LogTypes(1 << 1);
    pub const NOTICE: LogTypes = LogTypes(1 << 2);
    pub const INFORMATION: LogTypes = LogTypes(1 << 3);
    pub const DEBUG: LogTypes = LogTypes(1 << 4);
    pub const SUBSCRIBE: LogTypes = LogTypes(1 << 5);
    pub const UNSUBSCRIBE: LogTypes = LogTypes(1 << 6);
    pub const NONE: LogTypes = LogTypes(0);
    pub const ALL: LogTypes = LogTypes(0x7f);
    /// mosquitto's default: error, warning, notice and information.
    pub const DEFAULT: LogTypes = LogTypes(0x0f);

    pub fn contains(self, other: LogTypes) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn union(self, other: LogTypes) -> LogTypes {
        LogTypes(self.0 | other.0)
    }
}

/// Where log lines go (mosquitto's `log_dest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogDest {
    Stderr,
    Stdout,
    None,
}

/// Who may connect and what they may do: global, or one listener's with
/// `per_listener_settings true`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// `None` leaves the 2.0 default: allowed without configured listeners, refused
    /// once a listener is configured.
    pub allow_anonymous: Option<bool>,
    pub password_file: Option<PathBuf>,
    pub acl_file: Option<PathBuf>,
    /// Whether a client may connect with an empty client id (and get one
    /// assigned); `None` is mosquitto's default, yes.
    pub allow_zero_length_clientid: Option<bool>,
    /// What assigned client ids start with; `None` is mosquitto's `auto-`.
    pub auto_id_prefix: Option<String>,
}

/// Settings mosquitto keeps per listener (not security options: these do not
/// depend on `per_listener_settings`). Lines before the first `listener` set the
/// default listener's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerSettings {
    /// Open client connections allowed on the listener; `None` is unlimited.
    pub max_connections: Option<usize>,
    /// The highest QoS clients may use (publish, subscribe, wills).
    pub max_qos: QoS,
    /// Topic aliases an MQTT 5 client may use.
    pub max_topic_alias: u16,
    /// Whether a client's username replaces its client id.
    pub use_username_as_clientid: bool,
    /// `use_identity_as_username` / `use_subject_as_username`: the client
    /// certificate names the user, and no password is checked.
    pub certificate_username: CertificateUsername,
}

/// Which part of a client certificate becomes the username.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CertificateUsername {
    #[default]
    Off,
    /// The subject's Common Name (`use_identity_as_username`).
    CommonName,
    /// The whole subject in RFC 2253 form (`use_subject_as_username`).
    Subject,
}

impl Default for ListenerSettings {
    fn default() -> Self {
        ListenerSettings {
            max_connections: None,
            max_qos: QoS::ExactlyOnce,
            max_topic_alias: 10,
            use_username_as_clientid: false,
            certificate_username: CertificateUsername::Off,
        }
    }
}

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    pub port: u16,
    /// `None` listens on every interface, as mosquitto does for `listener PORT`.
    pub bind_address: Option<String>,
    /// This listener's rules; used only with `per_listener_settings true`.
    pub auth: AuthConfig,
    /// `socket_domain`: only IPv4 (`Some(false)`) or only IPv6 (`Some(true)`).
    pub ipv6_only: Option<bool>,
    /// `bind_interface`: listen on that network interface's addresses only.
    pub bind_interface: Option<String>,
    pub settings: ListenerSettings,
    /// TLS, WebSockets, unix socket.
    pub transport: TransportOptions,
    /// `mount_point`: put in front of every topic and filter a client of this
    /// listener sends, and taken off what it receives.
    pub mount_point: Option<String>,
}

impl ListenerConfig {
    /// A listener on `port` (at `bind_address`, or every interface) with nothing
    /// else set.
    pub fn new(port: u16, bind_address: Option<String>) -> Self {
        ListenerConfig {
            port,
            bind_address,
            auth: AuthConfig::default(),
            ipv6_only: None,
            bind_interface: None,
            settings: ListenerSettings::default(),
            transport: TransportOptions::default(),
            mount_point: None,
        }
    }
}

/// Everything that shapes the broker's behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Listeners from the config file. Empty means mosquitto 2.0's "local only"
    /// default: loopback on port 1883 (or the `-p` ports).
    pub listeners: Vec<ListenerConfig>,
    /// `connection` blocks: the bridges to other brokers (not reloaded on SIGHUP).
    pub bridges: bridge::Bridges,
    /// The global rules (and the default listener's).
    pub auth: AuthConfig,
    /// Whether `allow_anonymous`, `password_file` and `acl_file` apply to the
    /// listener they follow rather than to every listener.
    pub per_listener_settings: bool,
    /// Longest keep-alive accepted; 65535 leaves clients free.
    pub max_keepalive: u16,
    /// Outgoing QoS 1/2 messages in flight per client; 0 means no limit.
    pub max_inflight_messages: u16,
    /// Messages queued per client beyond those in flight; 0 means no limit.
    pub max_queued_messages: usize,
    /// Payload bytes queued per client beyond those in flight; 0 means no limit.
    pub max_queued_bytes: usize,
    /// Payload bytes of QoS 1/2 messages in flight per client; 0 means no limit.
    pub max_inflight_bytes: usize,
    /// Heap bytes the broker may use (see [`super::memory`]); `None` is no limit.
    pub memory_limit: Option<usize>,
    /// Largest payload accepted; larger messages are acknowledged and dropped.
    pub message_size_limit: Option<usize>,
    /// Largest packet accepted; a larger one closes the connection.
    pub max_packet_size: Option<usize>,
    pub retain_available: bool,
    /// Seconds between `$SYS` updates; 0 disables `$SYS`.
    pub sys_interval: u64,
    /// The default listener's settings (lines before the first `listener`), which
    /// also serve the local-only listener and addresses bound directly.
    pub listener_defaults: ListenerSettings,
    pub log_types: LogTypes,
    pub log_dest: LogDest,
    /// Whether connects and disconnects are logged.
    pub connection_messages: bool,
    /// Time allowed between accepting a socket and receiving its CONNECT.
    pub connect_timeout: Duration,
    /// Whether `$share/...` subscriptions are accepted (rbroker option).
    pub shared_subscription_available: bool,
    /// Whether MQTT 5 Subscription Identifiers are accepted (rbroker option).
    pub subscription_identifier_available: bool,
    /// Whether a retained message is delivered only while its publisher still may
    /// write its topic (mosquitto's `check_retain_source`, default true).
    pub check_retain_source: bool,
    /// Most levels a topic name or filter may have (rbroker option); mosquitto's
    /// fixed limit is 200 `/` separators, so 201 levels.
    pub max_topic_levels: usize,
    /// mosquitto's default listener, set by the deprecated `port` and
    /// `bind_address`; opened after the `listener`s, with the global auth rules.
    pub default_listener: Option<ListenerConfig>,
    /// Whether Nagle's algorithm is off on client sockets. rbroker coalesces its own
    /// writes, so it defaults to true (mosquitto: false); `false` is honoured.
    pub set_tcp_nodelay: bool,
    /// A file the broker writes its process id to while it runs.
    pub pid_file: Option<PathBuf>,
    /// A file log lines are appended to (`log_dest file PATH`), besides `log_dest`.
    pub log_file: Option<PathBuf>,
    /// Whether log lines are also published to `$SYS/broker/log/...` (`log_dest topic`).
    pub log_topic: bool,
    /// Whether log lines also go to syslog (`log_dest syslog`).
    pub log_syslog: bool,
    /// `log_facility`: syslog's `local0` to `local7`; `None` is `daemon`.
    pub log_facility: Option<u8>,
    /// Whether log lines start with a time.
    pub log_timestamp: bool,
    /// A strftime format for that time; `None` is mosquitto's Unix seconds.
    pub log_timestamp_format: Option<String>,
    /// Whether QoS 0 messages are queued for offline persistent clients.
    pub queue_qos0_messages: bool,
    /// Whether messages go out at the subscription's QoS even when published lower.
    pub upgrade_outgoing_qos: bool,
    /// How long a persistent session without an expiry of its own (3.x, or MQTT
    /// 5's "never") is kept after its client left; `None` is for ever.
    pub persistent_client_expiration: Option<Duration>,
    /// Only client ids starting with this may connect.
    pub clientid_prefixes: Option<String>,
    /// The user a broker started as root switches to once its sockets are bound.
    pub user: Option<String>,
    /// `persistence` and the options that go with it.
    pub persistence: Persistence,
}

/// `persistence`, `persistence_location`, `persistence_file`, `autosave_interval`,
/// `autosave_on_changes`, and rbroker's `persistence_mode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persistence {
    pub enabled: bool,
    /// A directory; the file is `location/file` (mosquitto joins them with `/`).
    pub location: Option<PathBuf>,
    pub file: String,
    /// Seconds between saves in snapshot mode (changes, with `on_changes`).
    pub autosave_interval: u64,
    pub autosave_on_changes: bool,
    pub mode: crate::broker::store::PersistenceMode,
}

impl Default for Persistence {
    fn default() -> Self {
        Persistence {
            enabled: false,
            location: None,
            file: "mosquitto.db".into(),
            autosave_interval: 1800,
            autosave_on_changes: false,
            mode: crate::broker::store::PersistenceMode::Durable,
        }
    }
}

impl Persistence {
    /// The store file.
    pub fn path(&self) -> PathBuf {
        match &self.location {
            Some(location) => location.join(&self.file),
            None => PathBuf::from(&self.file),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listeners: Vec::new(),
            bridges: bridge::Bridges::default(),
            auth: AuthConfig::default(),
            per_listener_settings: false,
            max_keepalive: 65535,
            max_inflight_messages: 20,
            max_queued_messages: 1000,
            max_queued_bytes: 0,
            max_inflight_bytes: 0,
            memory_limit: None,
            message_size_limit: None,
            max_packet_size: None,
            retain_available: true,
            sys_interval: 10,
            listener_defaults: ListenerSettings::default(),
            log_types: LogTypes::DEFAULT,
            log_dest: LogDest::Stderr,
            connection_messages: true,
            connect_timeout: Duration::from_secs(10),
            shared_subscription_available: true,
            subscription_identifier_available: true,
            max_topic_levels: DEFAULT_MAX_TOPIC_LEVELS,
            check_retain_source: true,
            default_listener: None,
            set_tcp_nodelay: true,
            pid_file: None,
            log_file: None,
            log_topic: false,
            log_syslog: false,
            log_facility: None,
            log_timestamp: true,
            log_timestamp_format: None,
            queue_qos0_messages: false,
            upgrade_outgoing_qos: false,
            persistent_client_expiration: None,
            clientid_prefixes: None,
            user: None,
            persistence: Persistence::default(),
        }
    }
}

/// Largest CONNECT accepted before a client is known: enough for every field at its
/// 64 KiB maximum, small enough that unauthenticated sockets cannot claim much memory.
pub const MAX_CONNECT_PACKET: usize = 512 * 1024;

/// The largest WebSocket frame without `max_packet_size`.
pub const MAX_WEBSOCKET_FRAME: usize = 16 * 1024 * 1024;

/// mosquitto's limit: topics with up to 200 `/` are served.
pub const DEFAULT_MAX_TOPIC_LEVELS: usize = 201;

/// The most `max_topic_levels` may say: every walk over a topic's levels (the
/// subscription and retained tries, ACL rules) stays this deep at most.
pub const MAX_TOPIC_LEVELS_LIMIT: usize = 1000;

/// Largest packet MQTT can express: a 4-byte remaining length plus the fixed header.
pub const PROTOCOL_MAX_PACKET: usize = 268_435_455 + 5;

impl Config {
    /// The rules an auth option line sets: the last listener's with
    /// `per_listener_settings true`, else the global ones.
    fn auth_target(&mut self) -> &mut AuthConfig {
        match self.listeners.last_mut() {
            Some(listener) if self.per_listener_settings => &mut listener.auth,
            // The default listener's rules are the global ones.
            _ => &mut self.auth,
        }
    }

    /// The settings of configured listener `index`, or (`None`) the default
    /// listener's.
    pub fn listener_settings(&self, index: Option<usize>) -> ListenerSettings {
        index
            .and_then(|i| self.listeners.get(i))
            .map_or(self.listener_defaults, |listener| listener.settings)
    }

    /// The settings a listener option line sets: the last listener's, or before
    /// any, the default listener's.
    fn listener_target(&mut self) -> &mut ListenerSettings {
        match self.listeners.last_mut() {
            Some(listener) => &mut listener.settings,
            None => &mut self.listener_defaults,
        }
    }

    /// mosquitto 2.0 opens its default listener (port 1883, every interface) when
    /// one of these is set before the first `listener`; says so, as a warning.
    fn defaults_open_default_listener(&mut self, key: &str) -> Option<String> {
        if !self.listeners.is_empty() {
            return None;
        }
        let opened = self.default_listener.is_none();
        self.default_listener_mut();
        opened.then(|| format!("{key} before the first listener sets up the default listener on port 1883 on every interface, as in mosquitto; put it after a listener line to apply it there"))
    }

    /// The options that differ in `next` (a re-read config file) and that take a
    /// restart to apply: everything but the security options, which SIGHUP
    /// re-reads. Listener options are reported as `listener`.
    pub fn needs_restart(&self, next: &Config) -> Vec<&'static str> {
        let mut changed = Vec::new();
        // Every field is named here, so a new option cannot be left out unnoticed.
        let Config {
            listeners: _,
            bridges,
            auth: _,
            listener_defaults: _,
            default_listener: _,
            per_listener_settings,
            max_keepalive,
            max_inflight_messages,
            max_queued_messages,
            max_queued_bytes,
            max_inflight_bytes,
            memory_limit,
            message_size_limit,
            max_packet_size,
            retain_available,
            sys_interval,
            log_types,
            log_dest,
            log_file,
            log_topic,
            log_syslog,
            log_facility,
            connection_messages,
            connect_timeout,
            shared_subscription_available,
            subscription_identifier_available,
            check_retain_source,
            max_topic_levels,
            set_tcp_nodelay,
            pid_file,
            log_timestamp,
            log_timestamp_format,
            queue_qos0_messages,
            upgrade_outgoing_qos,
            persistent_client_expiration,
            clientid_prefixes,
            user,
            persistence,
        } = self;
        macro_rules! compare {
            ($($field:ident => $option:literal),* $(,)?) => {
                $(if *$field != next.$field {
                    changed.push($option);
                })*
            };
        }
        compare!(
            per_listener_settings => "per_listener_settings",
            max_keepalive => "max_keepalive",
            max_inflight_messages => "max_inflight_messages",
            max_queued_messages => "max_queued_messages",
            max_queued_bytes => "max_queued_bytes",
            max_inflight_bytes => "max_inflight_bytes",
            memory_limit => "memory_limit",
            message_size_limit => "message_size_limit",
            max_packet_size => "max_packet_size",
            retain_available => "retain_available",
            sys_interval => "sys_interval",
            log_types => "log_type",
            log_dest => "log_dest",
            log_file => "log_dest",
            log_topic => "log_dest",
            log_syslog => "log_dest",
            log_facility => "log_facility",
            connection_messages => "connection_messages",
            connect_timeout => "connect_timeout",
            shared_subscription_available => "shared_subscription_available",
            subscription_identifier_available => "subscription_identifier_available",
            check_retain_source => "check_retain_source",
            max_topic_levels => "max_topic_levels",
            set_tcp_nodelay => "set_tcp_nodelay",
            pid_file => "pid_file",
            log_timestamp => "log_timestamp",
            log_timestamp_format => "log_timestamp_format",
            queue_qos0_messages => "queue_qos0_messages",
            upgrade_outgoing_qos => "upgrade_outgoing_qos",
            persistent_client_expiration => "persistent_client_expiration",
            clientid_prefixes => "clientid_prefixes",
            user => "user",
            persistence => "persistence",
            bridges => "connection",
        );
        // Listeners (addresses and listener options), without their auth rules.
        let places = |config: &Config| {
            config
                .listeners
                .iter()
                .chain(&config.default_listener)
                .map(|l| ListenerConfig {
                    auth: AuthConfig::default(),
                    ..l.clone()
                })
                .collect::<Vec<_>>()
        };
        if places(self) != places(next) || self.listener_defaults != next.listener_defaults {
            changed.push("listener");
        }
        changed.dedup();
        changed
    }

    /// What may wait for one client.
    pub fn queue_limits(&self) -> QueueLimits {
        QueueLimits {
            inflight_messages: self.max_inflight_messages,
            inflight_bytes: self.max_inflight_bytes,
            queued_messages: self.max_queued_messages,
            queued_bytes: self.max_queued_bytes,
        }
    }

    /// Whether a topic name or filter has more levels than `max_topic_levels`.
    pub fn too_deep(&self, topic: &str) -> bool {
        topic.bytes().filter(|&b| b == b'/').count() >= self.max_topic_levels
    }

    /// The packet size limit in force after CONNECT.
    pub fn packet_limit(&self) -> usize {
        self.max_packet_size.unwrap_or(PROTOCOL_MAX_PACKET)
    }

    /// The packet size limit for the first packet.
    pub fn connect_packet_limit(&self) -> usize {
        self.packet_limit().min(MAX_CONNECT_PACKET)
    }

    /// The largest WebSocket frame once a client is connected: `max_packet_size`,
    /// or 16 MiB when it is unset. The framing reserves a frame's memory when its
    /// header arrives, so a frame may not claim what MQTT's largest packet could.
    pub fn websocket_frame_limit(&self) -> usize {
        self.max_packet_size.unwrap_or(MAX_WEBSOCKET_FRAME)
    }

    /// Addresses to bind when no listener is configured: loopback only, IPv4 and
    /// IPv6, as mosquitto 2.0 does.
    pub fn local_only_addresses(port: u16) -> Vec<SocketAddr> {
        vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        ]
    }

    /// Reads a mosquitto.conf file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|_| ConfigError::Unreadable {
            path: path.display().to_string(),
        })?;
        let mut config = Config::default();
        config.apply_text(&text, &path.display().to_string())?;
        Ok(config)
    }

    /// Whether any listener is configured (`listener`, or `port`/`bind_address`):
    /// without one, mosquitto 2.0's local-only mode applies.
    pub fn has_listeners(&self) -> bool {
        !self.listeners.is_empty() || self.default_listener.is_some()
    }

    /// The default listener, created by its first `port` or `bind_address` line.
    fn default_listener_mut(&mut self) -> &mut ListenerConfig {
        self.default_listener
            .get_or_insert_with(|| ListenerConfig::new(1883, None))
    }

    /// Applies config lines; `origin` names the file in errors.
    pub fn apply_text(&mut self, text: &str, origin: &str) -> Result<Vec<String>, ConfigError> {
        let mut warnings = Vec::new();
        // Where an auth option went to no listener under per_listener_settings.
        let mut unattached = None;
        let mut log_dest_seen = false;
        self.apply_lines(
            text,
            origin,
            true,
            &mut warnings,
            (&mut unattached, &mut log_dest_seen),
        )?;
        // With per_listener_settings, rules before the first listener are for the
        // default listener; with listeners but no default listener, every listener
        // would run without them.
        if let Some(at) =
            unattached.filter(|_| !self.listeners.is_empty() && self.default_listener.is_none())
        {
            return Err(ConfigError::Line {
                reason: "With per_listener_settings true, allow_anonymous, password_file, acl_file, allow_zero_length_clientid and auto_id_prefix must follow the listener they are for.".into(),
                at,
            });
        }
        if let Some(last) = self.bridges.list.last() {
            self.bridges
                .finish_last()
                .map_err(|reason| ConfigError::Line {
                    reason,
                    at: last.at.clone(),
                })?;
        }
        self.bridges
            .check_all()
            .map_err(|(reason, at)| ConfigError::Line { reason, at })?;
        let configured = self.listeners.iter().map(|l| (l, l.settings));
        let default = (self.default_listener.iter()).map(|l| (l, self.listener_defaults));
        for (listener, settings) in configured.chain(default) {
            let identity = settings.certificate_username != CertificateUsername::Off;
            match listener.transport.check(identity) {
                Ok(None) => {}
                Ok(Some(warning)) => warnings.push(format!("Warning: {warning}")),
                Err((reason, at)) => return Err(ConfigError::Line { reason, at }),
            }
        }
        Ok(warnings)
    }

    /// The mount point of configured listener `index` (the default listener has
    /// none, as in mosquitto).
    pub fn listener_mount_point(&self, index: Option<usize>) -> Option<&str> {
        index
            .and_then(|i| self.listeners.get(i))
            .and_then(|listener| listener.mount_point.as_deref())
    }

    /// The transport of configured listener `index`, or (`None`) the default
    /// listener's: plain MQTT over TCP when nothing is configured.
    pub fn listener_transport(&self, index: Option<usize>) -> &TransportOptions {
        static PLAIN: std::sync::OnceLock<TransportOptions> = std::sync::OnceLock::new();
        match index {
            Some(i) => &self.listeners[i].transport,
            None => self.default_listener.as_ref().map_or_else(
                || PLAIN.get_or_init(TransportOptions::default),
                |l| &l.transport,
            ),
        }
    }

    /// Applies the lines of one file; `main` is false inside `include_dir` files.
    fn apply_lines(
        &mut self,
        text: &str,
        origin: &str,
        main: bool,
        warnings: &mut Vec<String>,
        (unattached, log_dest_seen): (&mut Option<String>, &mut bool),
    ) -> Result<(), ConfigError> {
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = || format!("{origin}:{}", index + 1);
            let mut words = line.split_whitespace();
            let key = words.next().unwrap_or_default();
            let values: Vec<&str> = words.collect();
            if AUTH_OPTIONS.contains(&key)
                && self.per_listener_settings
                && self.listeners.is_empty()
                && self.default_listener.is_none()
            {
                unattached.get_or_insert_with(at);
            }
            if key == "include_dir" {
                let files = included_files(main, &values)
                    .map_err(|reason| ConfigError::Line { reason, at: at() })?;
                for (path, text) in files {
                    let origin = path.display().to_string();
                    self.apply_lines(
                        &text,
                        &origin,
                        false,
                        warnings,
                        (&mut *unattached, &mut *log_dest_seen),
                    )?;
                }
                continue;
            }
            // The first log_dest line replaces the default (stderr); later ones add.
            if key == "log_dest" && !std::mem::replace(log_dest_seen, true) {
                self.log_dest = LogDest::None;
                self.log_file = None;
                self.log_topic = false;
                self.log_syslog = false;
            }
            if key == "connection" || bridge::KEYS.contains(&key) {
                match self.bridges.apply(key, &values, &at()) {
                    Ok(None) => {}
                    Ok(Some(warning)) => warnings.push(format!("Warning: {warning} ({})", at())),
                    Err(reason) => return Err(ConfigError::Line { reason, at: at() }),
                }
                continue;
            }
            if transport::KEYS.contains(&key) {
                let opened = self.defaults_open_default_listener(key);
                let target = match self.listeners.last_mut() {
                    Some(listener) => listener,
                    None => self.default_listener_mut(),
                };
                target
                    .transport
                    .apply(key, &values, &at())
                    .map_err(|reason| ConfigError::Line { reason, at: at() })?;
                if let Some(warning) = opened {
                    warnings.push(format!("Warning: {warning} ({})", at()));
                }
                continue;
            }
            if matches!(key, "use_identity_as_username" | "use_subject_as_username") {
                let enabled = parse_bool(key, &values)
                    .map_err(|reason| ConfigError::Line { reason, at: at() })?;
                let settings = self.listener_target();
                // As mosquitto: the identity wins over the subject when both are set.
                settings.certificate_username = match (key, enabled, settings.certificate_username)
                {
                    (_, false, current) => current,
                    ("use_subject_as_username", true, CertificateUsername::CommonName) => {
                        CertificateUsername::CommonName
                    }
                    ("use_subject_as_username", true, _) => CertificateUsername::Subject,
                    _ => CertificateUsername::CommonName,
                };
                if enabled {
                    let target = match self.listeners.last_mut() {
                        Some(listener) => listener,
                        None => self.default_listener_mut(),
                    };
                    target.transport.tls.first_at.get_or_insert_with(at);
                }
                continue;
            }
            match self.apply_line(key, &values) {
                Ok(None) => {}
                Ok(Some(warning)) => warnings.push(format!("Warning: {warning} ({})", at())),
                Err(reason) => return Err(ConfigError::Line { reason, at: at() }),
            }
        }
        Ok(())
    }

    /// Applies one `key values...` line; `Ok(Some(text))` is a warning.
    fn apply_line(&mut self, key: &str, values: &[&str]) -> Result<Option<String>, String> {
        match key {
            "listener" => {
                let port = values
                    .first()
                    .ok_or_else(|| "Empty listener value in configuration.".to_string())?;
                let port = parse_port(port)?;
                if values.len() > 2 {
                    return Err("Too many values for listener.".into());
                }
                if port == 0 {
                    let Some(path) = values.get(1) else {
                        return Err(
                            "A listener with port 0 must provide a Unix socket path.".into()
                        );
                    };
                    let mut listener = ListenerConfig::new(0, None);
                    listener.transport.unix_path = Some(PathBuf::from(path));
                    self.listeners.push(listener);
                    return Ok(None);
                }
                self.listeners.push(ListenerConfig::new(
                    port,
                    values.get(1).map(|s| (*s).to_string()),
                ));
            }
            "allow_anonymous" => {
                self.auth_target().allow_anonymous = Some(parse_bool(key, values)?)
            }
            "password_file" => {
                let path = path_value(key, values)?;
                set_once(key, &mut self.auth_target().password_file, path)?;
            }
            "acl_file" => {
                let path = path_value(key, values)?;
                set_once(key, &mut self.auth_target().acl_file, path)?;
            }
            "per_listener_settings" => {
                let per_listener = parse_bool(key, values)?;
                if per_listener != self.per_listener_settings
                    && (self.auth != AuthConfig::default()
                        || self
                            .listeners
                            .iter()
                            .any(|l| l.auth != AuthConfig::default()))
                {
                    return Err(
                        "per_listener_settings must be set before any other security settings."
                            .into(),
                    );
                }
                self.per_listener_settings = per_listener;
            }
            "max_keepalive" => {
                self.max_keepalive = parse_number(key, values, 10, 65535)? as u16;
            }
            "max_inflight_messages" => {
                self.max_inflight_messages = parse_number(key, values, 0, 65535)? as u16;
            }
            "max_queued_messages" => {
                self.max_queued_messages = parse_number(key, values, 0, u32::MAX.into())? as usize;
            }
            "max_queued_bytes" => {
                self.max_queued_bytes = parse_number(key, values, 0, u32::MAX.into())? as usize;
            }
            "max_inflight_bytes" => {
                self.max_inflight_bytes = parse_number(key, values, 0, u32::MAX.into())? as usize;
            }
            "memory_limit" => {
                let limit = parse_number(key, values, 0, u64::MAX)?;
                self.memory_limit =
                    (limit > 0).then(|| usize::try_from(limit).unwrap_or(usize::MAX));
            }
            "message_size_limit" => {
                let limit = parse_number(key, values, 0, 268_435_455)? as usize;
                self.message_size_limit = (limit > 0).then_some(limit);
            }
            "max_packet_size" => {
                let size = parse_number(key, values, 0, 268_435_460)? as usize;
                if size != 0 && size < 20 {
                    return Err("max_packet_size must be at least 20.".into());
                }
                self.max_packet_size = (size > 0).then_some(size);
            }
            "retain_available" => self.retain_available = parse_bool(key, values)?,
            "sys_interval" => self.sys_interval = parse_number(key, values, 0, 65535)?,
            "max_connections" => {
                let value = single(key, values)?;
                let count: i64 = value
                    .parse()
                    .map_err(|_| format!("Invalid max_connections value ({value})."))?;
                // -1 (and, as in mosquitto, 0) is no limit.
                let limit = usize::try_from(count).ok().filter(|limit| *limit > 0);
                self.listener_target().max_connections = limit;
                if count != -1 {
                    return Ok(self.defaults_open_default_listener(key));
                }
            }
            "log_type" => {
                let value = single(key, values)?;
                let types = match value {
                    "error" => LogTypes::ERROR,
                    "warning" => LogTypes::WARNING,
                    "notice" => LogTypes::NOTICE,
                    "information" => LogTypes::INFORMATION,
                    "debug" => LogTypes::DEBUG,
                    "subscribe" => LogTypes::SUBSCRIBE,
                    "unsubscribe" => LogTypes::UNSUBSCRIBE,
                    // Neither has a line in rbroker.
                    "websockets" | "internal" => LogTypes::NONE,
                    "all" => LogTypes::ALL,
                    "none" => LogTypes::NONE,
                    other => return Err(format!("Invalid log_type value ({other}).")),
                };
                // The first log_type line replaces the default set; later ones add.
                self.log_types = if self.log_types == LogTypes::DEFAULT {
                    types
                } else {
                    self.log_types.union(types)
                };
            }
            "log_dest" => match values {
                ["stderr"] => self.log_dest = LogDest::Stderr,
                ["stdout"] => self.log_dest = LogDest::Stdout,
                ["none"] => {
                    self.log_dest = LogDest::None;
                    self.log_file = None;
                    self.log_topic = false;
                    self.log_syslog = false;
                }
                ["topic"] => self.log_topic = true,
                ["syslog"] => self.log_syslog = true,
                ["file"] => return Err("Empty log file name in configuration.".into()),
                ["file", path @ ..] => {
                    if self.log_file.is_some() {
                        return Err("Duplicate \"log_dest file\" value in configuration.".into());
                    }
                    self.log_file = Some(PathBuf::from(path.join(" ")));
                }
                ["dlt"] => {
                    return Err("\"log_dest dlt\" is not supported: rbroker is built without the Diagnostic Log and Trace daemon.".into());
                }
                [] => return Err("Empty log_dest value in configuration.".into()),
                [other, ..] => return Err(format!("Invalid log_dest value ({other}).")),
            },
            // Gone from mosquitto 2.0, which accepts it with this warning.
            "retry_interval" => {
                parse_number(key, values, 0, u32::MAX.into())?;
                return Ok(Some(
                    "The retry_interval option is no longer available.".into(),
                ));
            }
            "log_facility" => {
                self.log_facility = Some(parse_number(key, values, 0, 7)? as u8);
            }
            // libwebsockets' settings: checked, then not needed (see the catalogue).
            "websockets_headers_size" => {
                parse_number(key, values, 0, 65535)?;
            }
            "websockets_log_level" => {
                parse_number(key, values, 0, u32::MAX.into())?;
            }
            "connection_messages" => self.connection_messages = parse_bool(key, values)?,
            "max_topic_alias" => {
                self.listener_target().max_topic_alias =
                    parse_number(key, values, 0, 65535)? as u16;
            }
            "use_username_as_clientid" => {
                let enabled = parse_bool(key, values)?;
                self.listener_target().use_username_as_clientid = enabled;
                if enabled {
                    return Ok(self.defaults_open_default_listener(key));
                }
            }
            "shared_subscription_available" => {
                self.shared_subscription_available = parse_bool(key, values)?;
            }
            "subscription_identifier_available" => {
                self.subscription_identifier_available = parse_bool(key, values)?;
            }
            "check_retain_source" => self.check_retain_source = parse_bool(key, values)?,
            "max_topic_levels" => {
                self.max_topic_levels =
                    parse_number(key, values, 1, MAX_TOPIC_LEVELS_LIMIT as u64)? as usize;
            }
            "connect_timeout" => {
                self.connect_timeout = Duration::from_secs(parse_number(key, values, 1, 3600)?);
            }
            // mosquitto drops root privileges to this user; running as root, rbroker
            // cannot honour it, and ignoring it would leave the broker running as root.
            "user" => self.user = Some(single(key, values)?.to_string()),
            "allow_zero_length_clientid" => {
                self.auth_target().allow_zero_length_clientid = Some(parse_bool(key, values)?);
            }
            "auto_id_prefix" => {
                let prefix = single(key, values)?;
                if prefix.len() > 50 || prefix.contains(['+', '#', '/']) {
                    return Err(format!(
                        "Invalid auto_id_prefix value ({prefix}): at most 50 characters, without '+', '#' or '/'."
                    ));
                }
                self.auth_target().auto_id_prefix = Some(prefix.to_string());
            }
            "port" => {
                let port = parse_port(single(key, values)?)?;
                if port == 0 {
                    return Err("Invalid port value (0).".into());
                }
                self.default_listener_mut().port = port;
                return Ok(Some("The 'port' option is now deprecated and will be removed in a future version. Please use 'listener' instead.".into()));
            }
            "bind_address" => {
                let address = single(key, values)?.to_string();
                self.default_listener_mut().bind_address = Some(address);
                return Ok(Some("The 'bind_address' option is now deprecated and will be removed in a future version. The behaviour will default to true.".into()));
            }
            "set_tcp_nodelay" => self.set_tcp_nodelay = parse_bool(key, values)?,
            "socket_domain" => {
                let ipv6 = match single(key, values)? {
                    "ipv4" => false,
                    "ipv6" => true,
                    other => return Err(format!("Invalid socket_domain value ({other}).")),
                };
                // For the listener it follows, as mosquitto; before any, the default
                // one, which it sets up.
                let opened = self.defaults_open_default_listener(key);
                if let Some(listener) = self.listeners.last_mut().or(self.default_listener.as_mut())
                {
                    listener.ipv6_only = Some(ipv6);
                }
                return Ok(opened);
            }
            "bind_interface" => {
                let name = single(key, values)?.to_string();
                let opened = self.defaults_open_default_listener(key);
                if let Some(listener) = self.listeners.last_mut().or(self.default_listener.as_mut())
                {
                    listener.bind_interface = Some(name);
                }
                return Ok(opened);
            }
            "queue_qos0_messages" => self.queue_qos0_messages = parse_bool(key, values)?,
            "mount_point" => {
                let prefix = single(key, values)?;
                let Some(listener) = self.listeners.last_mut() else {
                    return Err(
                        "A mount_point belongs to a listener: put it after a listener line.".into(),
                    );
                };
                let valid = crate::protocol::TopicName::new(prefix).is_ok();
                if !valid || prefix.contains(['+', '#']) {
                    return Err(format!(
                        "Invalid mount_point value ({prefix}): a topic prefix, without wildcards."
                    ));
                }
                listener.mount_point = Some(prefix.to_string());
            }
            "persistent_client_expiration" => {
                self.persistent_client_expiration = Some(parse_expiration(single(key, values)?)?);
            }
            "clientid_prefixes" => {
                self.clientid_prefixes = Some(single(key, values)?.to_string());
            }
            "allow_duplicate_messages" => {
                if parse_bool(key, values)? {
                    return Err("\"allow_duplicate_messages true\" is not supported: rbroker sends a client one copy of a message however many of its subscriptions match.".into());
                }
            }
            "upgrade_outgoing_qos" => self.upgrade_outgoing_qos = parse_bool(key, values)?,
            // mosquitto's older name for it.
            "max_qos" | "maximum_qos" => {
                let max_qos = match parse_number(key, values, 0, 2)? {
                    0 => QoS::AtMostOnce,
                    1 => QoS::AtLeastOnce,
                    _ => QoS::ExactlyOnce,
                };
                self.listener_target().max_qos = max_qos;
                if max_qos != QoS::ExactlyOnce {
                    return Ok(self.defaults_open_default_listener(key));
                }
            }
            "pid_file" => self.pid_file = Some(PathBuf::from(path_value(key, values)?)),
            "persistence" | "retained_persistence" => {
                self.persistence.enabled = parse_bool(key, values)?;
            }
            "persistence_location" => {
                self.persistence.location = Some(PathBuf::from(path_value(key, values)?));
            }
            "persistence_file" => self.persistence.file = path_value(key, values)?,
            "autosave_interval" => {
                self.persistence.autosave_interval =
                    parse_number(key, values, 0, u64::from(u32::MAX))?;
            }
            "autosave_on_changes" => {
                self.persistence.autosave_on_changes = parse_bool(key, values)?;
            }
            "persistence_mode" => {
                self.persistence.mode = match single(key, values)? {
                    "durable" => crate::broker::store::PersistenceMode::Durable,
                    "snapshot" => crate::broker::store::PersistenceMode::Snapshot,
                    other => {
                        return Err(format!(
                            "Invalid persistence_mode value ({other}): durable or snapshot."
                        ));
                    }
                };
            }
            "log_timestamp" => self.log_timestamp = parse_bool(key, values)?,
            "log_timestamp_format" => {
                let format = values.join(" ");
                if format.is_empty() {
                    return Err("Empty log_timestamp_format value in configuration.".into());
                }
                let items = chrono::format::StrftimeItems::new(&format);
                if items
                    .clone()
                    .any(|item| matches!(item, chrono::format::Item::Error))
                {
                    return Err(format!("Invalid log_timestamp_format value ({format})."));
                }
                self.log_timestamp_format = Some(format);
            }
            _ => match catalogue::find(key).map(|entry| entry.status) {
                Some(Status::Refused(reason)) => {
                    return Err(format!("\"{key}\" is not supported: {reason}."));
                }
                _ => return Err(format!("Unknown configuration variable \"{key}\".")),
            },
        }
        Ok(None)
    }
}

/// The options `per_listener_settings` makes per listener.
const AUTH_OPTIONS: &[&str] = &[
    "allow_anonymous",
    "password_file",
    "acl_file",
    "allow_zero_length_clientid",
    "auto_id_prefix",
];

/// Most files one `include_dir` may hold, so a mistaken directory cannot stall startup.
const MAX_INCLUDED_FILES: usize = 1000;

/// The `*.conf` files of an `include_dir`, with their text, in mosquitto's order:
/// by name, byte by byte (capital letters first).
fn included_files(main: bool, values: &[&str]) -> Result<Vec<(PathBuf, String)>, String> {
    if !main {
        return Err("include_dir is only read from the main configuration file.".into());
    }
    let directory = PathBuf::from(path_value("include_dir", values)?);
    let entries = std::fs::read_dir(&directory).map_err(|error| {
        format!(
            "Unable to open include_dir '{}' ({error}).",
            directory.display()
        )
    })?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| {
            format!(
                "Unable to read include_dir '{}' ({error}).",
                directory.display()
            )
        })?;
        let name = entry.file_name();
        if name.to_str().is_some_and(|name| name.ends_with(".conf")) {
            paths.push(entry.path());
        }
        if paths.len() > MAX_INCLUDED_FILES {
            return Err(format!(
                "include_dir '{}' holds more than {MAX_INCLUDED_FILES} .conf files.",
                directory.display()
            ));
        }
    }
    paths.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).map_err(|error| {
                format!("Unable to open config file {} ({error}).", path.display())
            })?;
            Ok((path, text))
        })
        .collect()
}

/// mosquitto's expiration period: a number followed by h, d, w, m or y (hours,
/// days, weeks, months of 30 days, years of 365 days).
fn parse_expiration(value: &str) -> Result<Duration, String> {
    let invalid = || format!("Invalid persistent_client_expiration duration ({value}).");
    let unit = value.chars().last().ok_or_else(invalid)?;
    let seconds: u64 = match unit {
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        'm' => 30 * 86_400,
        'y' => 365 * 86_400,
        _ => return Err(invalid()),
    };
    let count: u64 = value[..value.len() - 1]
        .parse()
        .ok()
        .filter(|count| *count > 0)
        .ok_or_else(invalid)?;
    count
        .checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(invalid)
}

/// Sets a file option that may appear once per scope, as mosquitto.
fn set_once(key: &str, slot: &mut Option<PathBuf>, path: String) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("Duplicate {key} value in configuration."));
    }
    *slot = Some(PathBuf::from(path));
    Ok(())
}

/// The rest of a line as one path (mosquitto allows spaces in paths).
fn path_value(key: &str, values: &[&str]) -> Result<String, String> {
    if values.is_empty() {
        return Err(format!("Empty {key} value in configuration."));
    }
    Ok(values.join(" "))
}

fn single<'a>(key: &str, values: &[&'a str]) -> Result<&'a str, String> {
    match values {
        [value] => Ok(value),
        [] => Err(format!("Empty {key} value in configuration.")),
        _ => Err(format!("Too many values for {key}.")),
    }
}

fn parse_bool(key: &str, values: &[&str]) -> Result<bool, String> {
    match single(key, values)? {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("Invalid {key} value ({other}).")),
    }
}

fn parse_number(key: &str, values: &[&str], min: u64, max: u64) -> Result<u64, String> {
    let value = single(key, values)?;
    value
        .parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            format!("Invalid {key} value ({value}); it must be a number from {min} to {max}.")
        })
}

fn parse_port(value: &str) -> Result<u16, String> {
    value
        .parse::<u16>()
        .map_err(|_| format!("Invalid port value ({value})."))
}

/// Why a config file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("Unable to open config file {path}.")]
    Unreadable { path: String },
    /// mosquitto prints the reason, then `Error found at FILE:LINE.`
    #[error("{reason}\nError found at {at}.")]
    Line { reason: String, at: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        config.apply_text(text, "test.conf")?;
        Ok(config)
    }

    #[test]
    fn defaults_match_mosquitto_2() {
        let config = Config::default();
        assert_eq!(config.auth, AuthConfig::default());
        assert_eq!(config.max_inflight_messages, 20);
        assert_eq!(config.max_queued_messages, 1000);
        assert_eq!(config.sys_interval, 10);
        assert_eq!(config.connect_timeout, Duration::from_secs(10));
    }

    /// Found by the `config` fuzz target: the error had no file:line when the
    /// unix listener's problem was `protocol websockets` (no TLS line to name).
    #[test]
    fn a_websocket_unix_listener_is_refused_naming_the_protocol_line() {
        let error =
            parse("listener 0 /tmp/mqtt.sock\n\nprotocol websockets\n").expect_err("refused");
        let text = error.to_string();
        assert!(text.contains("test.conf:3"), "{text}");
        assert!(text.contains("serves plain MQTT only"), "{text}");
    }

    #[test]
    fn listeners_and_auth_options_are_read() {
        let config = parse("# comment\nlistener 1884 127.0.0.1\n\nlistener 1885\n").expect("valid");
        assert_eq!(config.listeners.len(), 2);
        assert_eq!(
            config.listeners[0].bind_address.as_deref(),
            Some("127.0.0.1")
        );
        let config =
            parse("listener 1884\nallow_anonymous true\npassword_file /etc/my pw\nacl_file a\n")
                .expect("valid");
        assert_eq!(config.auth.allow_anonymous, Some(true));
        assert_eq!(config.auth.password_file, Some(PathBuf::from("/etc/my pw")));
        assert_eq!(config.auth.acl_file, Some(PathBuf::from("a")));
        assert_eq!(config.listeners[0].auth, AuthConfig::default());
    }

    #[test]
    fn per_listener_settings_give_each_listener_its_rules() {
        let config = parse(
            "per_listener_settings true\nlistener 1884\npassword_file p\nlistener 1885\nallow_anonymous false\n",
        )
        .expect("valid");
        assert_eq!(config.auth, AuthConfig::default());
        assert_eq!(
            config.listeners[0].auth.password_file,
            Some(PathBuf::from("p"))
        );
        assert_eq!(config.listeners[1].auth.allow_anonymous, Some(false));
        let error = parse("password_file p\nper_listener_settings true\n").expect_err("late");
        assert!(error.to_string().contains("test.conf:2"), "{error}");
        // Rules before the first listener would protect no listener.
        let error = parse("per_listener_settings true\npassword_file p\nlistener 1884\n")
            .expect_err("unattached");
        assert!(error.to_string().contains("test.conf:2"), "{error}");
        assert!(parse("per_listener_settings true\npassword_file p\n").is_ok());
    }

    #[test]
    fn security_options_rbroker_lacks_stop_startup() {
        for line in [
            "certfile /x",
            "plugin /usr/lib/x.so",
            "auth_plugin x",
            "plugin_opt_foo 1",
            "auth_opt_db x",
            "psk_file x",
            "log_dest dlt",
            "cafile /x",
            "keyfile /x",
            "certfile /c\nkeyfile /k\nrequire_certificate true",
            "use_identity_as_username true",
            "certfile /c\nkeyfile /k\ntls_version tlsv1.1",
            "certfile /c\nkeyfile /k\nciphers_tls1.3 TLS_AES_128_GCM_SHA256\nciphers_tls1.3 x",
            "password_file",
            "password_file a\npassword_file b",
        ] {
            let error = parse(&format!("listener 1884\n{line}\n")).expect_err(line);
            let at = 2 + line.matches('\n').count();
            assert!(
                error.to_string().contains(&format!("test.conf:{at}")),
                "{line}: {error}"
            );
        }
        assert!(parse("protocol mqtt\n").is_ok());
        assert!(parse("listener 1884\nprotocol websockets\n").is_ok());
        assert!(parse("listener 1884\ncertfile /c\nkeyfile /k\n").is_ok());
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let error = parse("listener 1884\nfoo bar\n").expect_err("unknown key");
        assert_eq!(
            error.to_string(),
            "Unknown configuration variable \"foo\".\nError found at test.conf:2."
        );
        let error = parse("max_inflight_messages abc\n").expect_err("not a number");
        assert!(error.to_string().contains("test.conf:1"), "{error}");
        assert!(parse("listener\n").is_err());
        assert!(parse("allow_anonymous maybe\n").is_err());
        assert!(parse("max_packet_size 10\n").is_err());
    }

    #[test]
    fn a_bridge_block_ends_at_the_next_connection_and_is_checked_whole() {
        let mut config = Config::default();
        config
            .apply_text(
                "connection a\naddress 127.0.0.1:1884\ntopic x/# out 1\nlog_type all\nconnection b\naddress h\ntopic y in\nremote_clientid rb\n",
                "c",
            )
            .expect("accepted");
        assert_eq!(config.log_types, LogTypes::ALL);
        let names: Vec<&str> = config
            .bridges
            .list
            .iter()
            .map(|b| b.name.as_str())
            .collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(config.bridges.list[1].local_clientid(), "local.rb");
        // The first block had no topic when the second began.
        let error = Config::default()
            .apply_text("connection a\naddress h\nconnection b\n", "c")
            .expect_err("no topics");
        assert_eq!(
            error.to_string(),
            "Invalid bridge configuration: no topics defined.\nError found at c:3."
        );
        let error = Config::default()
            .apply_text(
                "connection a\naddress h\ntopic x\nlocal_clientid same\nconnection b\naddress h\ntopic y\nlocal_clientid same\n",
                "c",
            )
            .expect_err("shared local id");
        assert!(error.to_string().contains("c:5"), "{error}");
    }

    #[test]
    fn topic_depth_is_mosquittos_unless_configured() {
        let config = Config::default();
        assert!(!config.too_deep(&"/".repeat(200)));
        assert!(config.too_deep(&"/".repeat(201)));
        let config = parse("max_topic_levels 3\n").expect("valid");
        assert!(!config.too_deep("a/b/c") && config.too_deep("a/b/c/d"));
        assert!(parse("max_topic_levels 0\n").is_err());
        assert!(parse("max_topic_levels 1001\n").is_err());
    }

    #[test]
    fn port_and_bind_address_make_the_default_listener() {
        let config = parse("bind_address 127.0.0.1\nport 1884\n").expect("valid");
        let default = config.default_listener.as_ref().expect("default listener");
        assert_eq!(default.port, 1884);
        assert_eq!(default.bind_address.as_deref(), Some("127.0.0.1"));
        assert!(config.has_listeners() && config.listeners.is_empty());
        assert_eq!(
            parse("port 1885\n")
                .expect("valid")
                .default_listener
                .map(|l| l.port),
            Some(1885)
        );
        assert!(parse("port\n").is_err() && parse("port 70000\n").is_err());
        assert!(parse("port 1 2\n").is_err());
    }

    #[test]
    fn client_id_and_log_options_are_checked() {
        let config = parse(
            "allow_zero_length_clientid false\nauto_id_prefix lab-\nlog_timestamp false\nset_tcp_nodelay false\n",
        )
        .expect("valid");
        assert_eq!(config.auth.allow_zero_length_clientid, Some(false));
        assert!(!config.log_timestamp && !config.set_tcp_nodelay);
        assert_eq!(config.auth.auto_id_prefix.as_deref(), Some("lab-"));
        for bad in [
            "auto_id_prefix a/b",
            "auto_id_prefix",
            "log_timestamp_format %Y-%",
            "log_timestamp_format",
            "log_timestamp maybe",
            "pid_file",
        ] {
            assert!(parse(&format!("{bad}\n")).is_err(), "{bad}");
        }
        let config =
            parse("persistent_client_expiration 2w\nclientid_prefixes lab-\n").expect("valid");
        assert_eq!(
            config.persistent_client_expiration,
            Some(Duration::from_secs(14 * 86_400))
        );
        assert_eq!(config.clientid_prefixes.as_deref(), Some("lab-"));
        for bad in ["0d", "d", "3", "-1h", "1.5d", "99999999999999999y", "1s"] {
            assert!(
                parse(&format!("persistent_client_expiration {bad}\n")).is_err(),
                "{bad}"
            );
        }
        assert!(parse("allow_duplicate_messages false\n").is_ok());
        assert!(parse("allow_duplicate_messages true\n").is_err());
        let config = parse("max_qos 1\nqueue_qos0_messages true\nupgrade_outgoing_qos true\n")
            .expect("valid");
        assert_eq!(config.listener_defaults.max_qos, QoS::AtLeastOnce);
        assert!(config.queue_qos0_messages && config.upgrade_outgoing_qos);
        assert!(parse("max_qos 3\n").is_err());
        // Per listener, as mosquitto; before any listener, the default listener's,
        // which it sets up (port 1883, every interface).
        let config = parse("max_qos 1\nlistener 1\nmax_qos 0\nlistener 2\n").expect("valid");
        assert_eq!(config.listener_settings(Some(0)).max_qos, QoS::AtMostOnce);
        assert_eq!(config.listener_settings(Some(1)).max_qos, QoS::ExactlyOnce);
        assert_eq!(config.listener_settings(None).max_qos, QoS::AtLeastOnce);
        assert_eq!(config.default_listener.map(|l| l.port), Some(1883));
        let config = parse("listener 1\nmax_topic_alias 3\nmax_connections 4\n").expect("valid");
        assert_eq!(config.listener_settings(Some(0)).max_topic_alias, 3);
        assert_eq!(config.listener_settings(Some(0)).max_connections, Some(4));
        assert!(config.default_listener.is_none());
        assert!(parse("log_dest file a\nlog_dest file b\n").is_err());
        assert!(parse("port 0\n").is_err());
        let config = parse("log_timestamp_format %Y-%m-%d %H:%M:%S\n").expect("valid");
        assert_eq!(
            config.log_timestamp_format.as_deref(),
            Some("%Y-%m-%d %H:%M:%S")
        );
    }

    /// Every option of mosquitto.conf(5) 2.0.11 (its option headings, and the older
    /// names its parser still takes), written out here independently of the
    /// catalogue, which must cover each.
    const MOSQUITTO_OPTIONS: &[&str] = &[
        "acl_file",
        "address",
        "addresses",
        "allow_anonymous",
        "allow_duplicate_messages",
        "allow_zero_length_clientid",
        "auth_plugin",
        "auth_plugin_deny_special_chars",
        "auto_id_prefix",
        "autosave_interval",
        "autosave_on_changes",
        "bind_address",
        "bind_interface",
        "bridge_alpn",
        "bridge_attempt_unsubscribe",
        "bridge_bind_address",
        "bridge_cafile",
        "bridge_capath",
        "bridge_certfile",
        "bridge_identity",
        "bridge_insecure",
        "bridge_keyfile",
        "bridge_max_packet_size",
        "bridge_outgoing_retain",
        "bridge_protocol_version",
        "bridge_psk",
        "bridge_require_ocsp",
        "bridge_tls_version",
        "cafile",
        "capath",
        "certfile",
        "check_retain_source",
        "ciphers",
        "ciphers_tls1.3",
        "cleansession",
        "clientid_prefixes",
        "connection",
        "connection_messages",
        "crlfile",
        "dhparamfile",
        "http_dir",
        "idle_timeout",
        "include_dir",
        "keepalive_interval",
        "keyfile",
        "listener",
        "local_cleansession",
        "local_clientid",
        "local_password",
        "local_username",
        "log_dest",
        "log_facility",
        "log_timestamp",
        "log_timestamp_format",
        "log_type",
        "max_connections",
        "max_inflight_bytes",
        "max_inflight_messages",
        "max_keepalive",
        "max_packet_size",
        "max_qos",
        "maximum_qos",
        "max_queued_bytes",
        "max_queued_messages",
        "max_topic_alias",
        "memory_limit",
        "message_size_limit",
        "mount_point",
        "notification_topic",
        "notifications",
        "notifications_local_only",
        "password_file",
        "per_listener_settings",
        "persistence",
        "persistence_file",
        "persistence_location",
        "persistent_client_expiration",
        "pid_file",
        "plugin",
        "port",
        "protocol",
        "psk_file",
        "psk_hint",
        "queue_qos0_messages",
        "remote_clientid",
        "remote_password",
        "remote_username",
        "require_certificate",
        "restart_timeout",
        "retain_available",
        "retained_persistence",
        "retry_interval",
        "round_robin",
        "set_tcp_nodelay",
        "socket_domain",
        "start_type",
        "sys_interval",
        "threshold",
        "tls_engine",
        "tls_engine_kpass_sha1",
        "tls_keyform",
        "tls_version",
        "topic",
        "try_private",
        "upgrade_outgoing_qos",
        "use_identity_as_username",
        "use_subject_as_username",
        "use_username_as_clientid",
        "user",
        "websockets_headers_size",
        "websockets_log_level",
    ];

    /// A value each option accepts (or at least parses), for the walk below.
    fn sample(option: &str) -> &'static str {
        match option {
            "listener" => "1885",
            "address" | "addresses" => "127.0.0.1:1884",
            "topic" => "b/# in 2",
            "bridge_protocol_version" => "mqttv50",
            "start_type" => "lazy",
            "restart_timeout" => "5 30",
            "bridge_tls_version" => "tlsv1.3",
            "bridge_require_ocsp" => "false",
            "notification_topic" => "bridges/walk",
            "idle_timeout" | "threshold" | "bridge_max_packet_size" => "10",
            "round_robin"
            | "try_private"
            | "notifications"
            | "notifications_local_only"
            | "cleansession"
            | "local_cleansession"
            | "bridge_insecure"
            | "bridge_attempt_unsubscribe"
            | "bridge_outgoing_retain" => "true",
            "port" => "1886",
            "log_dest" => "stderr",
            "log_type" => "all",
            "protocol" => "mqtt",
            "tls_version" => "tlsv1.2",
            "ciphers" => "ECDHE-RSA-AES128-GCM-SHA256",
            "ciphers_tls1.3" => "TLS_AES_128_GCM_SHA256",
            "require_certificate" | "use_identity_as_username" | "use_subject_as_username" => {
                "true"
            }
            "websockets_headers_size" => "1024",
            "websockets_log_level" => "0",
            "socket_domain" => "ipv4",
            "max_qos" | "maximum_qos" => "1",
            "memory_limit" => "100000000",
            "max_packet_size" | "message_size_limit" | "sys_interval" => "1000",
            "use_username_as_clientid" | "retain_available" => "true",
            "bind_interface" => "lo",
            "log_facility" => "5",
            "connect_timeout" => "10",
            "allow_duplicate_messages" => "false",
            "persistent_client_expiration" => "1d",
            "persistence_mode" => "snapshot",
            "web_console" => "true",
            "autosave_on_changes" | "persistence" | "retained_persistence" => "true",
            "persistence_file" => "rbroker.db",
            "log_timestamp_format" => "%H:%M:%S",
            "include_dir" => "/nonexistent/rbroker-walk",
            "auto_id_prefix" | "clientid_prefixes" | "user" => "root",
            option
                if option.starts_with("allow_")
                    || option.ends_with("_available")
                    || option.starts_with("check_")
                    || option.starts_with("queue_")
                    || option.starts_with("upgrade_")
                    || option.starts_with("set_")
                    || option.starts_with("log_timestamp")
                    || option == "connection_messages"
                    || option == "per_listener_settings" =>
            {
                "true"
            }
            option if option.starts_with("max_") || option.ends_with("_interval") => "10",
            _ => "/etc/rbroker/value",
        }
    }

    /// Lines a bridge option needs before it: the bridge it belongs to.
    fn preamble(option: &str) -> &'static str {
        if bridge::KEYS.contains(&option) {
            "connection walk\naddress 127.0.0.1:1884\ntopic a/# both 1\n"
        } else {
            ""
        }
    }

    /// Lines a TLS option needs beside it to make a whole listener (TLS options
    /// alone stop startup), and a bridge's (`connection`) to make a whole bridge.
    fn companions(option: &str) -> &'static str {
        match option {
            "connection" => "address 127.0.0.1:1884\ntopic a/# both 1\n",
            "bridge_certfile" => "bridge_keyfile /k\nbridge_cafile /ca\n",
            "bridge_keyfile" => "bridge_certfile /c\nbridge_cafile /ca\n",
            "bridge_insecure" | "bridge_alpn" | "bridge_tls_version" => "bridge_cafile /ca\n",
            "certfile" => "keyfile /k\n",
            "web_console" => "protocol websockets\n",
            "keyfile" => "certfile /c\n",
            "cafile" => "certfile /c\nkeyfile /k\n",
            "capath"
            | "crlfile"
            | "require_certificate"
            | "tls_version"
            | "ciphers"
            | "ciphers_tls1.3"
            | "use_identity_as_username"
            | "use_subject_as_username" => {
                "certfile /c\nkeyfile /k\ncafile /ca\nrequire_certificate true\n"
            }
            _ => "",
        }
    }

    #[test]
    fn every_mosquitto_option_is_in_the_catalogue_and_does_what_it_says() {
        for option in MOSQUITTO_OPTIONS {
            assert!(catalogue::find(option).is_some(), "{option} is missing");
        }
        let include = tempfile::tempdir().expect("temporary directory");
        for entry in catalogue::OPTIONS {
            let option = entry.name.replace('*', "x");
            let value = match option.as_str() {
                "include_dir" => include.path().display().to_string(),
                _ => sample(&option).to_string(),
            };
            let before = preamble(&option);
            let line = before.lines().count() + 2;
            let text = format!(
                "{before}listener 1884\n{option} {value}\n{}",
                companions(&option)
            );
            let outcome = Config::default().apply_text(&text, "walk.conf");
            let unsupported =
                |warnings: &[String]| warnings.iter().any(|w| w.contains("not supported"));
            match (entry.status, outcome) {
                (Status::Refused(reason), Err(error)) => {
                    let text = error.to_string();
                    assert!(
                        text.contains(reason) && text.contains(&format!("walk.conf:{line}")),
                        "{option}: {text}"
                    );
                }
                (Status::Same | Status::Differs(_) | Status::Own(_), Ok(warnings)) => {
                    assert!(!unsupported(&warnings), "{option}: {warnings:?}")
                }
                (status, outcome) => panic!("{option}: {status:?} but {outcome:?}"),
            }
        }
        // Nothing outside mosquitto's list but rbroker's own options.
        for entry in catalogue::OPTIONS {
            assert!(
                MOSQUITTO_OPTIONS.contains(&entry.name)
                    || entry.name.ends_with('*')
                    || matches!(entry.status, Status::Own(_)),
                "{}",
                entry.name
            );
        }
    }

    /// Every option with a missing, extra, negative, overflowing or misspelled value,
    /// and a misspelled name: each refused naming the line, none panics.
    #[test]
    fn bad_values_are_refused_for_every_option() {
        for entry in catalogue::OPTIONS {
            if matches!(entry.status, Status::Refused(_)) {
                continue;
            }
            let option = entry.name;
            let good = sample(option);
            let mut bad = vec![String::new(), format!("{good}x")];
            if good == "true" {
                bad.extend(["ture".into(), "true false".into(), "1".into()]);
            } else if good.bytes().all(|b| b.is_ascii_digit()) {
                bad.extend(["99999999999999999999999".to_string(), "1.5".into()]);
                // A second word on `listener` is its address.
                if option != "listener" {
                    bad.push(format!("{good} {good}"));
                }
                // max_connections -1 is mosquitto's "no limit".
                if option != "max_connections" {
                    bad.push("-1".into());
                }
            }
            for value in bad {
                // Some values are fine where the option takes a name or a path.
                let before = preamble(option);
                let line = before.lines().count() + 2;
                let text = format!(
                    "{before}listener 1884\n{option} {value}\n{}",
                    companions(option)
                );
                match Config::default().apply_text(&text, "bad.conf") {
                    Err(error) => assert!(
                        error.to_string().contains(&format!("bad.conf:{line}")),
                        "{option} {value:?}: {error}"
                    ),
                    Ok(_) => assert!(
                        !value.is_empty()
                            && !good.bytes().all(|b| b.is_ascii_digit())
                            && good != "true",
                        "{option} {value:?} was accepted"
                    ),
                }
            }
            let misspelled = format!("listener 1884\n{option}s {good}\n");
            let error = Config::default()
                .apply_text(&misspelled, "bad.conf")
                .expect_err(option);
            assert!(
                error.to_string().contains("Unknown configuration variable"),
                "{option}: {error}"
            );
        }
    }

    #[test]
    fn a_reload_names_the_options_that_need_a_restart() {
        let before =
            parse("listener 1884\nmax_queued_messages 10\npassword_file a\n").expect("valid");
        let after = parse(
            "listener 1884\nmax_queued_messages 20\nlog_type all\nmax_qos 1\npassword_file b\nauto_id_prefix x-\n",
        )
        .expect("valid");
        assert_eq!(
            before.needs_restart(&after),
            ["max_queued_messages", "log_type", "listener"]
        );
        assert!(before.needs_restart(&before.clone()).is_empty());
    }

    #[test]
    fn log_types_accumulate_after_the_first() {
        let config = parse("log_type error\nlog_type debug\n").expect("valid");
        assert!(config.log_types.contains(LogTypes::ERROR));
        assert!(config.log_types.contains(LogTypes::DEBUG));
        assert!(!config.log_types.contains(LogTypes::NOTICE));
    }
}
