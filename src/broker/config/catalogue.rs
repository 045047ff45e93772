//! Every mosquitto.conf(5) option of mosquitto 2.0, with what rbroker does with
//! it: the parser takes the refusals and warnings from here, a unit test checks
//! each entry against the parser, and the README's option table is rendered from
//! it (`MQTTKIT_BLESS=1 cargo test generated` rewrites it).

/// What rbroker does with an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Honoured with mosquitto's meaning.
    Same,
    /// Honoured; the note says where rbroker differs.
    Differs(&'static str),
    /// Stops startup with `file:line`, exit status 3, and this reason.
    Refused(&'static str),
    /// rbroker's own option; mosquitto has none of that name.
    Own(&'static str),
}

/// One option.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub name: &'static str,
    pub status: Status,
}

const PLUGIN: Status = Status::Refused("plugins are not supported by this version of rbroker");
const ENGINE: Status =
    Status::Refused("OpenSSL engines do not exist for rbroker, which uses rustls");
const PSK: Status = Status::Refused("TLS-PSK is not supported: rustls has no PSK cipher suites");
const BRIDGE: Status = Status::Same;
const BRIDGE_TLS_FILE: Status = Status::Differs(
    "Read when rbroker starts: a file that does not load stops startup (mosquitto fails each connection attempt instead).",
);
const CERT_PAIR: Status = Status::Differs(
    "TLS is on with both `certfile` and `keyfile`; one without the other, or any other TLS option without both, stops startup (mosquitto serves plaintext). Re-read at restart, not on SIGHUP.",
);
const IDENTITY: Status =
    Status::Differs("Needs a TLS listener with `require_certificate true`, else startup stops.");

const fn entry(name: &'static str, status: Status) -> Entry {
    Entry { name, status }
}

/// mosquitto.conf(5) 2.0's options, then rbroker's own, by name.
pub const OPTIONS: &[Entry] = &[
    entry(
        "acl_file",
        Status::Differs(
            "A SUBSCRIBE is checked against the ACL too (0x80 on 3.1.1, 0x87 on 5.0); a malformed line stops startup naming `file:line` (mosquitto skips it).",
        ),
    ),
    entry("address", BRIDGE),
    entry("addresses", BRIDGE),
    entry("allow_anonymous", Status::Same),
    entry(
        "allow_duplicate_messages",
        Status::Differs(
            "Only `false`: a client gets one copy of a message however many of its subscriptions match; `true` is refused.",
        ),
    ),
    entry(
        "allow_zero_length_clientid",
        Status::Differs("An MQTT 5 client is refused with 0x85 (mosquitto 2.0.11: 0x80)."),
    ),
    entry("auth_opt_*", PLUGIN),
    entry("auth_plugin", PLUGIN),
    entry("auth_plugin_deny_special_chars", PLUGIN),
    entry("auto_id_prefix", Status::Same),
    entry(
        "autosave_interval",
        Status::Differs(
            "Used by `persistence_mode snapshot` only: the default durable mode writes every change before acknowledging it, and compacts the file as it grows.",
        ),
    ),
    entry(
        "autosave_on_changes",
        Status::Differs("Used by `persistence_mode snapshot` only, as `autosave_interval`."),
    ),
    entry("bind_address", Status::Same),
    entry("bind_interface", Status::Same),
    entry("bridge_alpn", BRIDGE),
    entry("bridge_attempt_unsubscribe", BRIDGE),
    entry("bridge_bind_address", BRIDGE),
    entry("bridge_cafile", BRIDGE_TLS_FILE),
    entry("bridge_capath", BRIDGE_TLS_FILE),
    entry("bridge_certfile", BRIDGE_TLS_FILE),
    entry("bridge_identity", PSK),
    entry("bridge_insecure", BRIDGE),
    entry("bridge_keyfile", BRIDGE_TLS_FILE),
    entry("bridge_max_packet_size", BRIDGE),
    entry("bridge_outgoing_retain", BRIDGE),
    entry(
        "bridge_protocol_version",
        Status::Differs(
            "A `mqttv50` bridge that a 3.1.1-only broker refuses is not tried again in 3.1.1 (mosquitto falls back); set `mqttv311` for such a broker.",
        ),
    ),
    entry("bridge_psk", PSK),
    entry(
        "bridge_require_ocsp",
        Status::Differs(
            "Only `false`: rbroker does not check OCSP responses, so `true` stops startup.",
        ),
    ),
    entry(
        "bridge_tls_version",
        Status::Differs(
            "`tlsv1.2` or `tlsv1.3`, the oldest version allowed (rustls speaks no older one).",
        ),
    ),
    entry("cafile", Status::Same),
    entry(
        "capath",
        Status::Differs(
            "Every file in the directory that holds PEM certificates is read; `openssl rehash` links are not needed.",
        ),
    ),
    entry("certfile", CERT_PAIR),
    entry("check_retain_source", Status::Same),
    entry(
        "ciphers",
        Status::Differs(
            "A list of OpenSSL suite names (separated by `:`) that rustls implements: the ECDHE AES-GCM and CHACHA20-POLY1305 suites; keywords such as `HIGH` or `!aNULL` stop startup.",
        ),
    ),
    entry(
        "ciphers_tls1.3",
        Status::Differs(
            "`TLS_AES_256_GCM_SHA384`, `TLS_AES_128_GCM_SHA256` and `TLS_CHACHA20_POLY1305_SHA256`; any other name stops startup.",
        ),
    ),
    entry("cleansession", BRIDGE),
    entry("clientid_prefixes", Status::Same),
    entry("connection", BRIDGE),
    entry("connection_messages", Status::Same),
    entry("crlfile", Status::Same),
    entry(
        "dhparamfile",
        Status::Refused(
            "rustls uses ECDHE key exchange only, so there are no DH parameters to load",
        ),
    ),
    entry(
        "http_dir",
        Status::Differs(
            "Files are served with a `Content-Type` from their extension (mosquitto sends none); HEAD is answered too.",
        ),
    ),
    entry(
        "idle_timeout",
        Status::Differs(
            "Honoured as documented: a `lazy` bridge disconnects after this many seconds with nothing to send (mosquitto 2.0 never reads it).",
        ),
    ),
    entry(
        "include_dir",
        Status::Differs(
            "An `include_dir` inside an included file is an error (mosquitto ignores it).",
        ),
    ),
    entry("keepalive_interval", BRIDGE),
    entry("keyfile", CERT_PAIR),
    entry(
        "listener",
        Status::Differs(
            "A unix socket listener (`listener 0 PATH`) serves plain MQTT: TLS or WebSocket options on it stop startup.",
        ),
    ),
    entry("local_cleansession", BRIDGE),
    entry("local_clientid", BRIDGE),
    entry(
        "local_password",
        Status::Differs(
            "Accepted and unused, as in mosquitto 2.0: the local side of a bridge is not checked against the password file or ACL.",
        ),
    ),
    entry(
        "local_username",
        Status::Differs(
            "Accepted and unused, as in mosquitto 2.0: the local side of a bridge is not checked against the password file or ACL.",
        ),
    ),
    entry(
        "log_dest",
        Status::Differs(
            "`dlt` is refused. `topic` lines are published just after they are logged, so a client subscribing at that moment may get them (mosquitto publishes before it returns).",
        ),
    ),
    entry("log_facility", Status::Same),
    entry("log_timestamp", Status::Same),
    entry("log_timestamp_format", Status::Same),
    entry("log_type", Status::Same),
    entry("max_connections", Status::Same),
    entry(
        "max_inflight_bytes",
        Status::Differs(
            "The window holds to the limit, as documented; mosquitto 2.0.11 sends more once messages are queued behind it.",
        ),
    ),
    entry(
        "max_inflight_messages",
        Status::Differs(
            "Never more unacknowledged messages than an MQTT 5 client's Receive Maximum (mosquitto refills several slots per acknowledgement).",
        ),
    ),
    entry("max_keepalive", Status::Same),
    entry("max_packet_size", Status::Same),
    entry("max_qos", Status::Same),
    entry("maximum_qos", Status::Same),
    entry(
        "max_queued_bytes",
        Status::Differs(
            "Also bounds QoS 0 messages waiting for a connected client, which otherwise rbroker bounds at 64 MiB.",
        ),
    ),
    entry(
        "max_queued_messages",
        Status::Differs(
            "Holds under fan-in too (mosquitto 2.0.11 drops QoS 1/2 messages there); QoS 0 messages for a connected client are bounded by bytes instead.",
        ),
    ),
    entry("max_topic_alias", Status::Same),
    entry(
        "memory_limit",
        Status::Differs(
            "An MQTT 5 QoS 1/2 PUBLISH past the limit gets 0x97 and the client stays (mosquitto disconnects it with 0x80); counted by rbroker's allocator, so an embedding program must install it.",
        ),
    ),
    entry(
        "message_size_limit",
        Status::Differs(
            "On MQTT 5 a larger payload is refused with PUBACK/PUBREC 0x97; mosquitto 2.0.11 sends 0x95, which those packets may not carry, so strict clients reject its answer.",
        ),
    ),
    entry(
        "mount_point",
        Status::Differs(
            "After a listener only (before any it stops startup). Taken off the topics a client receives, as mosquitto 2.0.12 and later do (2.0.11 delivers them with it); inside a `$share/GROUP/` filter it goes before the filter.",
        ),
    ),
    entry("notification_topic", BRIDGE),
    entry("notifications", BRIDGE),
    entry("notifications_local_only", BRIDGE),
    entry(
        "password_file",
        Status::Differs(
            "A malformed line stops startup naming `file:line`; a wrong password gets 0x86 on MQTT 5 (mosquitto: 0x87).",
        ),
    ),
    entry(
        "per_listener_settings",
        Status::Differs(
            "With `true`, auth options before the first listener are an error when no default listener exists (they would protect nothing).",
        ),
    ),
    entry(
        "persistence",
        Status::Differs(
            "Durable by default: PUBACK, PUBREC, PUBCOMP, SUBACK, UNSUBACK and a persistent session's CONNACK go out only after fsync, with group commit (a QoS 1 PUBACK also once the message was acknowledged by every persistent subscriber it was queued for, all of them online); mosquitto saves a snapshot every `autosave_interval` (`persistence_mode snapshot`). Wills waiting for their delay and the `$SYS` totals are kept too. rbroker's own file format: a mosquitto database is refused with a message.",
        ),
    ),
    entry("persistence_file", Status::Same),
    entry("persistence_location", Status::Same),
    entry("persistent_client_expiration", Status::Same),
    entry("pid_file", Status::Same),
    entry("plugin", PLUGIN),
    entry("plugin_opt_*", PLUGIN),
    entry("port", Status::Same),
    entry("protocol", Status::Same),
    entry("psk_file", PSK),
    entry("psk_hint", PSK),
    entry("queue_qos0_messages", Status::Same),
    entry("remote_clientid", BRIDGE),
    entry("remote_password", BRIDGE),
    entry("remote_username", BRIDGE),
    entry(
        "require_certificate",
        Status::Differs("`true` without `cafile` or `capath` stops startup."),
    ),
    entry("restart_timeout", BRIDGE),
    entry("retain_available", Status::Same),
    entry(
        "retained_persistence",
        Status::Differs("An old name of `persistence`."),
    ),
    entry(
        "retry_interval",
        Status::Differs(
            "Accepted with mosquitto 2.0's warning that it is no longer available; it does nothing in either.",
        ),
    ),
    entry("round_robin", BRIDGE),
    entry(
        "set_tcp_nodelay",
        Status::Differs(
            "Defaults to `true`: rbroker coalesces its own writes, so Nagle only adds latency.",
        ),
    ),
    entry("socket_domain", Status::Same),
    entry("start_type", BRIDGE),
    entry("sys_interval", Status::Same),
    entry("threshold", BRIDGE),
    entry("tls_engine", ENGINE),
    entry("tls_engine_kpass_sha1", ENGINE),
    entry("tls_keyform", ENGINE),
    entry(
        "tls_version",
        Status::Differs("`tlsv1.1` stops startup: rustls implements TLS 1.2 and 1.3 only."),
    ),
    entry("topic", BRIDGE),
    entry("try_private", BRIDGE),
    entry("upgrade_outgoing_qos", Status::Same),
    entry("use_identity_as_username", IDENTITY),
    entry("use_subject_as_username", IDENTITY),
    entry("use_username_as_clientid", Status::Same),
    entry(
        "user",
        Status::Differs(
            "rbroker switches user once its sockets are bound and its pid file written, so it can listen on ports below 1024; mosquitto switches before both.",
        ),
    ),
    entry(
        "websockets_headers_size",
        Status::Differs(
            "Checked and not needed: rbroker reads HTTP request heads of up to 16 KiB (libwebsockets in mosquitto: this many bytes, 1 KiB by default).",
        ),
    ),
    entry(
        "websockets_log_level",
        Status::Differs("Accepted and ignored: rbroker has no libwebsockets to log."),
    ),
    entry(
        "connect_timeout",
        Status::Own("Seconds (default 10) between accepting a socket and its CONNECT."),
    ),
    entry(
        "max_topic_levels",
        Status::Own(
            "Most levels in a topic or filter (default 201, mosquitto's fixed limit; at most 1000).",
        ),
    ),
    entry(
        "persistence_mode",
        Status::Own(
            "`durable` (default): nothing is acknowledged before it is on disk, or, for QoS 1, delivered and acknowledged by every subscriber that keeps a session. `snapshot`: mosquitto's behaviour, a snapshot every `autosave_interval`; a crash loses what changed since.",
        ),
    ),
    entry(
        "shared_subscription_available",
        Status::Own("`false` refuses `$share/...` subscriptions (default `true`)."),
    ),
    entry(
        "subscription_identifier_available",
        Status::Own("`false` refuses MQTT 5 Subscription Identifiers (default `true`)."),
    ),
    entry(
        "web_console",
        Status::Own(
            "`true` on a `protocol websockets` listener serves the web console at `/console/` (and at `/` without `http_dir`): a live topic tree, a publish form, `$SYS` charts and a filter matcher, built in, talking MQTT over this listener.",
        ),
    ),
];

/// The entry for `key`, matching `plugin_opt_*` and `auth_opt_*` by prefix.
pub fn find(key: &str) -> Option<&'static Entry> {
    OPTIONS
        .iter()
        .find(|entry| match entry.name.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => entry.name == key,
        })
}

/// The option table for the README: option, status, and any difference.
pub fn markdown_table() -> String {
    let mut table =
        String::from("| Option | rbroker | Difference from mosquitto 2.0 |\n|---|---|---|\n");
    for entry in OPTIONS {
        let (status, note) = match entry.status {
            Status::Same => ("as mosquitto", ""),
            Status::Differs(note) => ("honoured", note),
            Status::Refused(reason) => ("refused at startup", reason),
            Status::Own(note) => ("rbroker only", note),
        };
        let note = match entry.status {
            Status::Refused(_) => format!("{}.", capitalised(note)),
            _ => note.to_string(),
        };
        table.push_str(&format!("| `{}` | {status} | {note} |\n", entry.name));
    }
    table
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
