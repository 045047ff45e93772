//! mosquitto's bridge options: a `connection NAME` line starts a bridge and the
//! options after it (up to the next `connection`) configure it. Checked as
//! mosquitto checks them, with mosquitto's messages; what rbroker cannot honour
//! (TLS-PSK, OCSP) stops startup instead of being ignored.
//!
//! The bridge itself runs in `broker::bridge`.

use std::path::PathBuf;
use std::time::Duration;

use crate::protocol::{ProtocolVersion, QoS, TopicFilter};

/// Every option that configures the current bridge.
pub const KEYS: &[&str] = &[
    "address",
    "addresses",
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
    "cleansession",
    "clientid",
    "idle_timeout",
    "keepalive_interval",
    "local_cleansession",
    "local_clientid",
    "local_password",
    "local_username",
    "notification_topic",
    "notifications",
    "notifications_local_only",
    "password",
    "remote_clientid",
    "remote_password",
    "remote_username",
    "restart_timeout",
    "round_robin",
    "start_type",
    "threshold",
    "topic",
    "try_private",
    "username",
];

/// Which way a `topic` line carries messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Local messages go to the remote broker (mosquitto's default).
    Out,
    /// Remote messages come to this broker.
    In,
    Both,
}

impl Direction {
    pub fn outgoing(self) -> bool {
        matches!(self, Direction::Out | Direction::Both)
    }

    pub fn incoming(self) -> bool {
        matches!(self, Direction::In | Direction::Both)
    }
}

/// One `topic PATTERN [DIRECTION [QOS [LOCAL_PREFIX [REMOTE_PREFIX]]]]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeTopic {
    pub direction: Direction,
    pub qos: QoS,
    pub local_prefix: String,
    pub remote_prefix: String,
    /// The filter on this broker: local prefix + pattern.
    pub local: TopicFilter,
    /// The filter on the remote broker: remote prefix + pattern.
    pub remote: TopicFilter,
}

/// When a bridge connects (`start_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartType {
    /// At startup, and again after each lost connection.
    Automatic,
    /// Once `threshold` messages wait for it; it disconnects after
    /// `idle_timeout` seconds with nothing to send.
    Lazy,
    /// At startup only: a lost connection is not made again.
    Once,
}

/// How long to wait before connecting again (`restart_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// `restart_timeout N`: always N seconds.
    Constant(Duration),
    /// `restart_timeout BASE CAP`: each wait drawn from [BASE, 3 × the previous
    /// wait), at most CAP; back to BASE after a successful connection.
    Backoff { base: Duration, cap: Duration },
}

/// TLS toward the remote broker: on when `bridge_cafile` or `bridge_capath` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeTls {
    pub cafile: Option<PathBuf>,
    pub capath: Option<PathBuf>,
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
    /// Skips the host name check (the chain is still verified), as mosquitto.
    pub insecure: bool,
    pub alpn: Option<String>,
    /// `tlsv1.2` or `tlsv1.3`: the oldest version allowed.
    pub version: Option<String>,
}

impl BridgeTls {
    pub fn enabled(&self) -> bool {
        self.cafile.is_some() || self.capath.is_some()
    }
}

/// One `connection` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    pub name: String,
    /// Where the `connection` line is, for errors about the whole block.
    pub at: String,
    /// `address host[:port] ...`, in order; 1883 when no port is given.
    pub addresses: Vec<(String, u16)>,
    pub round_robin: bool,
    remote_clientid: Option<String>,
    local_clientid: Option<String>,
    pub remote_username: Option<String>,
    pub remote_password: Option<String>,
    pub cleansession: bool,
    local_cleansession: Option<bool>,
    pub protocol: ProtocolVersion,
    pub try_private: bool,
    pub notifications: bool,
    notification_topic: Option<String>,
    pub notifications_local_only: bool,
    /// Seconds; at least 5.
    pub keepalive: u16,
    pub restart: Restart,
    pub start_type: StartType,
    pub idle_timeout: Duration,
    pub threshold: usize,
    pub topics: Vec<BridgeTopic>,
    pub attempt_unsubscribe: bool,
    pub outgoing_retain: bool,
    /// 0: no limit of the bridge's own.
    pub max_packet_size: u32,
    pub bind_address: Option<String>,
    pub tls: BridgeTls,
    /// Where a TLS option is, for the error when TLS stays off.
    tls_option_at: Option<String>,
}

impl BridgeConfig {
    fn new(name: String, at: String) -> Self {
        BridgeConfig {
            name,
            at,
            addresses: Vec::new(),
            round_robin: false,
            remote_clientid: None,
            local_clientid: None,
            remote_username: None,
            remote_password: None,
            cleansession: false,
            local_cleansession: None,
            protocol: ProtocolVersion::V3_1_1,
            try_private: true,
            notifications: true,
            notification_topic: None,
            notifications_local_only: false,
            keepalive: 60,
            restart: Restart::Backoff {
                base: Duration::from_secs(5),
                cap: Duration::from_secs(30),
            },
            start_type: StartType::Automatic,
            idle_timeout: Duration::from_secs(60),
            threshold: 10,
            topics: Vec::new(),
            attempt_unsubscribe: true,
            outgoing_retain: true,
            max_packet_size: 0,
            bind_address: None,
            tls: BridgeTls::default(),
            tls_option_at: None,
        }
    }

    /// The client id on the remote broker: `remote_clientid`, else
    /// `<hostname>.<name>` as mosquitto.
    pub fn remote_clientid(&self) -> String {
        self.remote_clientid
            .clone()
            .unwrap_or_else(|| format!("{}.{}", hostname(), self.name))
    }

    /// The id of the bridge's session on this broker: `local_clientid`, else
    /// `local.<remote client id>`.
    pub fn local_clientid(&self) -> String {
        self.local_clientid
            .clone()
            .unwrap_or_else(|| format!("local.{}", self.remote_clientid()))
    }

    /// Whether the bridge's session on this broker ends with each connection
    /// (`local_cleansession`, which defaults to `cleansession`).
    pub fn local_cleansession(&self) -> bool {
        self.local_cleansession.unwrap_or(self.cleansession)
    }

    /// Where the bridge reports its state: `notification_topic`, else
    /// `$SYS/broker/connection/<remote client id>/state`.
    pub fn notification_topic(&self) -> String {
        self.notification_topic
            .clone()
            .unwrap_or_else(|| format!("$SYS/broker/connection/{}/state", self.remote_clientid()))
    }

    /// Applies one option of this block.
    fn apply(&mut self, key: &str, values: &[&str], at: &str) -> Result<Option<String>, String> {
        match key {
            "address" | "addresses" => {
                if values.is_empty() {
                    return Err(format!("Empty {key} value in configuration."));
                }
                for value in values {
                    self.addresses.push(parse_address(value)?);
                }
            }
            "round_robin" => self.round_robin = parse_bool(key, values)?,
            "remote_clientid" | "clientid" => {
                self.remote_clientid = Some(single(key, values)?.to_string())
            }
            "local_clientid" => self.local_clientid = Some(single(key, values)?.to_string()),
            "remote_username" | "username" => {
                self.remote_username = Some(single(key, values)?.to_string())
            }
            "remote_password" | "password" => {
                self.remote_password = Some(single(key, values)?.to_string())
            }
            // mosquitto 2.0 does not use them: the local side of a bridge is not
            // checked against the password file or the ACL.
            "local_username" | "local_password" => {
                single(key, values)?;
            }
            "cleansession" => self.cleansession = parse_bool(key, values)?,
            "local_cleansession" => self.local_cleansession = Some(parse_bool(key, values)?),
            "bridge_protocol_version" => {
                self.protocol = match single(key, values)? {
                    "mqttv31" => ProtocolVersion::V3_1,
                    "mqttv311" => ProtocolVersion::V3_1_1,
                    "mqttv50" => ProtocolVersion::V5,
                    other => {
                        return Err(format!("Invalid bridge_protocol_version value ({other})."));
                    }
                }
            }
            "try_private" => self.try_private = parse_bool(key, values)?,
            "notifications" => self.notifications = parse_bool(key, values)?,
            "notifications_local_only" => self.notifications_local_only = parse_bool(key, values)?,
            "notification_topic" => {
                let topic = single(key, values)?;
                crate::protocol::TopicName::new(topic)
                    .map_err(|_| format!("Invalid notification_topic value ({topic})."))?;
                self.notification_topic = Some(topic.to_string());
            }
            "keepalive_interval" => {
                let seconds = parse_number(key, values, 0, 65535)? as u16;
                if seconds < 5 {
                    self.keepalive = 5;
                    return Ok(Some("keepalive interval too low, using 5 seconds".into()));
                }
                self.keepalive = seconds;
            }
            "restart_timeout" => {
                let seconds = |value: &str| {
                    value
                        .parse::<u64>()
                        .ok()
                        .filter(|s| (1..=u64::from(u32::MAX)).contains(s))
                        .map(Duration::from_secs)
                        .ok_or_else(|| format!("Invalid restart_timeout value ({value})."))
                };
                self.restart = match values {
                    [] => return Err("Empty restart_timeout value in configuration.".into()),
                    [constant] => Restart::Constant(seconds(constant)?),
                    [base, cap] => {
                        let (base, cap) = (seconds(base)?, seconds(cap)?);
                        if cap < base {
                            return Err(format!(
                                "Invalid restart_timeout value ({}); the cap is below the base.",
                                values.join(" ")
                            ));
                        }
                        Restart::Backoff { base, cap }
                    }
                    _ => return Err("Too many values for restart_timeout.".into()),
                };
            }
            "start_type" => {
                self.start_type = match single(key, values)? {
                    "automatic" => StartType::Automatic,
                    "lazy" => StartType::Lazy,
                    "once" => StartType::Once,
                    other => {
                        return Err(format!(
                            "Invalid start_type value in configuration ({other})."
                        ));
                    }
                }
            }
            "idle_timeout" => {
                self.idle_timeout =
                    Duration::from_secs(parse_number(key, values, 1, u64::from(u32::MAX))?)
            }
            "threshold" => {
                self.threshold = parse_number(key, values, 1, u64::from(u32::MAX))? as usize
            }
            "topic" => {
                let topic = parse_topic(values)?;
                self.topics.push(topic);
            }
            "bridge_attempt_unsubscribe" => self.attempt_unsubscribe = parse_bool(key, values)?,
            "bridge_outgoing_retain" => self.outgoing_retain = parse_bool(key, values)?,
            "bridge_max_packet_size" => {
                self.max_packet_size = parse_number(key, values, 0, 268_435_455)? as u32
            }
            "bridge_bind_address" => self.bind_address = Some(single(key, values)?.to_string()),
            "bridge_cafile" | "bridge_capath" | "bridge_certfile" | "bridge_keyfile" => {
                let path = PathBuf::from(path_value(key, values)?);
                let slot = match key {
                    "bridge_cafile" => &mut self.tls.cafile,
                    "bridge_capath" => &mut self.tls.capath,
                    "bridge_certfile" => &mut self.tls.certfile,
                    _ => &mut self.tls.keyfile,
                };
                *slot = Some(path);
                self.tls_option_at.get_or_insert_with(|| at.to_string());
            }
            "bridge_insecure" => {
                self.tls.insecure = parse_bool(key, values)?;
                self.tls_option_at.get_or_insert_with(|| at.to_string());
            }
            "bridge_alpn" => {
                self.tls.alpn = Some(single(key, values)?.to_string());
                self.tls_option_at.get_or_insert_with(|| at.to_string());
            }
            "bridge_tls_version" => {
                let version = single(key, values)?;
                if !matches!(version, "tlsv1.2" | "tlsv1.3") {
                    return Err(format!(
                        "Invalid bridge_tls_version value ({version}); rbroker speaks tlsv1.2 and tlsv1.3."
                    ));
                }
                self.tls.version = Some(version.to_string());
                self.tls_option_at.get_or_insert_with(|| at.to_string());
            }
            "bridge_require_ocsp" => {
                if parse_bool(key, values)? {
                    return Err(
                        "\"bridge_require_ocsp\" is not supported: rbroker does not check OCSP responses."
                            .into(),
                    );
                }
            }
            "bridge_identity" | "bridge_psk" => {
                return Err(format!(
                    "\"{key}\" is not supported: TLS-PSK is not supported: rustls has no PSK cipher suites."
                ));
            }
            _ => return Err(format!("Unknown configuration variable \"{key}\".")),
        }
        Ok(None)
    }

    /// The checks mosquitto makes once the block is complete.
    fn check(&self) -> Result<(), String> {
        if self.addresses.is_empty() {
            return Err("Invalid bridge configuration: no remote addresses defined.".into());
        }
        if self.topics.is_empty() {
            return Err("Invalid bridge configuration: no topics defined.".into());
        }
        if self.tls.certfile.is_some() != self.tls.keyfile.is_some() {
            return Err(format!(
                "Bridge {}: bridge_certfile and bridge_keyfile go together.",
                self.name
            ));
        }
        if let Some(at) = &self.tls_option_at
            && !self.tls.enabled()
        {
            return Err(format!(
                "Bridge {}: a TLS option ({at}) without bridge_cafile or bridge_capath would leave the bridge in plaintext.",
                self.name
            ));
        }
        Ok(())
    }
}

/// The bridge options of a whole configuration, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bridges {
    pub list: Vec<BridgeConfig>,
}

impl Bridges {
    /// Applies a `connection` line or a bridge option at `at`.
    pub fn apply(
        &mut self,
        key: &str,
        values: &[&str],
        at: &str,
    ) -> Result<Option<String>, String> {
        if key == "connection" {
            self.finish_last()?;
            let name = single(key, values)?;
            if self.list.iter().any(|b| b.name == name) {
                return Err(format!("Duplicate bridge name \"{name}\"."));
            }
            self.list
                .push(BridgeConfig::new(name.to_string(), at.to_string()));
            return Ok(None);
        }
        match self.list.last_mut() {
            Some(bridge) => bridge.apply(key, values, at),
            None => Err("Invalid bridge configuration.".into()),
        }
    }

    /// Checks the last block, once no more lines can add to it.
    pub fn finish_last(&self) -> Result<(), String> {
        self.list.last().map_or(Ok(()), BridgeConfig::check)
    }

    /// Checks across blocks: every bridge's session here needs its own id.
    pub fn check_all(&self) -> Result<(), (String, String)> {
        for (index, bridge) in self.list.iter().enumerate() {
            let id = bridge.local_clientid();
            if self.list[..index].iter().any(|b| b.local_clientid() == id) {
                return Err((
                    format!("Duplicate local_clientid \"{id}\"."),
                    bridge.at.clone(),
                ));
            }
        }
        Ok(())
    }
}

/// `host[:port]`, split at the last colon; an IPv6 address needs its port.
fn parse_address(value: &str) -> Result<(String, u16), String> {
    match value.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && !host.ends_with(':') => {
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("Invalid port value ({port})."))?;
            Ok((host.trim_matches(['[', ']']).to_string(), port))
        }
        _ => Ok((value.to_string(), 1883)),
    }
}

/// A prefix may not hold wildcards; `""` is the empty string.
fn prefix(value: Option<&&str>, which: &str) -> Result<String, String> {
    let Some(value) = value else {
        return Ok(String::new());
    };
    if *value == "\"\"" {
        return Ok(String::new());
    }
    if value.contains(['+', '#']) {
        return Err(format!("Invalid bridge topic {which} prefix '{value}'."));
    }
    Ok((*value).to_string())
}

fn parse_topic(values: &[&str]) -> Result<BridgeTopic, String> {
    let Some(pattern) = values.first() else {
        return Err("Empty topic value in configuration.".into());
    };
    if values.len() > 5 {
        return Err("Too many values for topic.".into());
    }
    let pattern = if *pattern == "\"\"" { "" } else { pattern };
    let direction = match values.get(1) {
        None => Direction::Out,
        Some(&"out") => Direction::Out,
        Some(&"in") => Direction::In,
        Some(&"both") => Direction::Both,
        Some(other) => return Err(format!("Invalid bridge topic direction '{other}'.")),
    };
    let qos = match values.get(2) {
        None => QoS::AtMostOnce,
        Some(level) => level
            .parse::<u8>()
            .ok()
            .and_then(QoS::from_u8)
            .ok_or_else(|| format!("Invalid bridge QoS level '{level}'."))?,
    };
    let local_prefix = prefix(values.get(3), "local")?;
    let remote_prefix = prefix(values.get(4), "remote")?;
    if pattern.is_empty() && (local_prefix.is_empty() || remote_prefix.is_empty()) {
        return Err("Invalid bridge remapping.".into());
    }
    let filter = |prefix: &str| {
        TopicFilter::new(format!("{prefix}{pattern}"))
            .map_err(|_| format!("Invalid bridge topic '{prefix}{pattern}'."))
    };
    Ok(BridgeTopic {
        direction,
        qos,
        local: filter(&local_prefix)?,
        remote: filter(&remote_prefix)?,
        local_prefix,
        remote_prefix,
    })
}

/// This machine's name, as mosquitto's default remote client id uses it.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    if ok && len > 0 {
        String::from_utf8_lossy(&buf[..len]).into_owned()
    } else {
        "localhost".to_string()
    }
}

use super::{parse_bool, parse_number, path_value, single};

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[&str]) -> Result<Bridges, String> {
        let mut bridges = Bridges::default();
        for (n, line) in lines.iter().enumerate() {
            let mut words = line.split_whitespace();
            let key = words.next().expect("key");
            let values: Vec<&str> = words.collect();
            bridges.apply(key, &values, &format!("c:{}", n + 1))?;
        }
        bridges.finish_last()?;
        Ok(bridges)
    }

    #[test]
    fn a_topic_line_takes_mosquitto_defaults_and_joins_prefixes() {
        let bridges = parse(&[
            "connection b1",
            "address 127.0.0.1:1884 example.com",
            "topic sensors/# out 1 local/ remote/",
            "topic cmd/#",
            "topic \"\" in 2 here/x there/y",
        ])
        .expect("valid");
        let bridge = &bridges.list[0];
        assert_eq!(
            bridge.addresses,
            vec![
                ("127.0.0.1".to_string(), 1884),
                ("example.com".to_string(), 1883)
            ]
        );
        let first = &bridge.topics[0];
        assert_eq!(first.local.as_str(), "local/sensors/#");
        assert_eq!(first.remote.as_str(), "remote/sensors/#");
        assert_eq!(
            (first.direction, first.qos),
            (Direction::Out, QoS::AtLeastOnce)
        );
        let second = &bridge.topics[1];
        assert_eq!(
            (second.direction, second.qos),
            (Direction::Out, QoS::AtMostOnce)
        );
        assert_eq!(second.local.as_str(), "cmd/#");
        assert_eq!(bridge.topics[2].local.as_str(), "here/x");
        assert_eq!(bridge.topics[2].remote.as_str(), "there/y");
        assert!(bridge.remote_clientid().ends_with(".b1"));
        assert_eq!(
            bridge.local_clientid(),
            format!("local.{}", bridge.remote_clientid())
        );
        assert_eq!(
            bridge.notification_topic(),
            format!("$SYS/broker/connection/{}/state", bridge.remote_clientid())
        );
    }

    #[test]
    fn bad_bridge_lines_get_mosquittos_messages() {
        let cases: &[(&[&str], &str)] = &[
            (&["address 127.0.0.1"], "Invalid bridge configuration."),
            (
                &["connection b", "topic # both 1"],
                "Invalid bridge configuration: no remote addresses defined.",
            ),
            (
                &["connection b", "address h"],
                "Invalid bridge configuration: no topics defined.",
            ),
            (
                &["connection b", "address h", "topic # sideways"],
                "Invalid bridge topic direction 'sideways'.",
            ),
            (
                &["connection b", "address h", "topic # in 3"],
                "Invalid bridge QoS level '3'.",
            ),
            (
                &["connection b", "address h", "topic \"\" in 1 a/"],
                "Invalid bridge remapping.",
            ),
            (
                &["connection b", "address h", "topic a/# in 1 a/+/"],
                "Invalid bridge topic local prefix 'a/+/'.",
            ),
            (
                &["connection b", "address h", "topic a", "connection b"],
                "Duplicate bridge name \"b\".",
            ),
            (
                &["connection b", "address h", "start_type never"],
                "Invalid start_type value in configuration (never).",
            ),
            (
                &["connection b", "bridge_protocol_version mqttv4"],
                "Invalid bridge_protocol_version value (mqttv4).",
            ),
            (
                &["connection b", "address h:99999"],
                "Invalid port value (99999).",
            ),
            (
                &["connection b", "address"],
                "Empty address value in configuration.",
            ),
            (&["connection"], "Empty connection value in configuration."),
            (
                &["connection b", "address h", "topic"],
                "Empty topic value in configuration.",
            ),
        ];
        for (lines, message) in cases {
            assert_eq!(parse(lines).expect_err(message), *message, "{lines:?}");
        }
    }

    #[test]
    fn what_rbroker_cannot_honour_stops_startup() {
        for line in [
            "bridge_psk 0123",
            "bridge_identity me",
            "bridge_require_ocsp true",
        ] {
            let error = parse(&["connection b", "address h", "topic a", line]).expect_err(line);
            assert!(error.contains("not supported"), "{line}: {error}");
        }
        let plaintext = parse(&[
            "connection b",
            "address h",
            "topic a",
            "bridge_insecure true",
        ])
        .expect_err("TLS option without a CA");
        assert!(plaintext.contains("plaintext"), "{plaintext}");
        let half = parse(&[
            "connection b",
            "address h",
            "topic a",
            "bridge_cafile ca.pem",
            "bridge_certfile c.pem",
        ])
        .expect_err("certificate without key");
        assert!(half.contains("go together"), "{half}");
    }

    #[test]
    fn restart_timeout_is_constant_or_a_backoff() {
        let constant =
            parse(&["connection b", "address h", "topic a", "restart_timeout 3"]).expect("valid");
        assert_eq!(
            constant.list[0].restart,
            Restart::Constant(Duration::from_secs(3))
        );
        let backoff = parse(&[
            "connection b",
            "address h",
            "topic a",
            "restart_timeout 2 40",
        ])
        .expect("valid");
        assert_eq!(
            backoff.list[0].restart,
            Restart::Backoff {
                base: Duration::from_secs(2),
                cap: Duration::from_secs(40)
            }
        );
    }
}
