//! Argument groups and values shared by the client-side binaries
//! (`#[command(flatten)]`), with mosquitto's letters: `-h` is the host and `-V` the
//! protocol version, so help and version are long-only; and `--color`, which rsub,
//! rpub and rbench share.

use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, ValueEnum};

use crate::bench::client::{ConnectOptions, TlsSettings};
use crate::client::tls::TlsOptions;
use crate::protocol::{ProtocolVersion, QoS};

/// When to colour human output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum ColorChoice {
    /// When stdout is a terminal and NO_COLOR is not set.
    #[default]
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Decides, and tells the `colored` crate, which would otherwise apply its
    /// own terminal test and keep `--color always` from colouring a pipe.
    pub fn apply(self) -> bool {
        let enabled = self.enabled();
        colored::control::set_override(enabled);
        enabled
    }

    fn enabled(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::io::stdout().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            }
        }
    }
}

/// MQTT protocol version, as mosquitto's `-V` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VersionArg {
    #[value(name = "mqttv31", alias = "31")]
    V31,
    #[value(name = "mqttv311", alias = "311")]
    V311,
    #[value(name = "mqttv5", alias = "5")]
    V5,
}

impl From<VersionArg> for ProtocolVersion {
    fn from(value: VersionArg) -> Self {
        match value {
            VersionArg::V31 => ProtocolVersion::V3_1,
            VersionArg::V311 => ProtocolVersion::V3_1_1,
            VersionArg::V5 => ProtocolVersion::V5,
        }
    }
}

/// Where and how to connect.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection")]
pub struct ConnectArgs {
    // The help is an attribute: its brackets are not rustdoc links.
    #[arg(
        short = 'h',
        long = "host",
        value_name = "HOST[:PORT]",
        global = true,
        action = clap::ArgAction::Append,
        help = "Broker host, as HOST or HOST:PORT, or ws://HOST[:PORT][/PATH] and wss://... for MQTT over WebSockets (path /mqtt, port 8080 or 8081 by default); repeat it to spread clients round-robin over the nodes of a cluster. Without it, rbench starts its own broker."
    )]
    pub hosts: Vec<String>,
    /// Port for hosts given without one [default: 1883, or 8883 with TLS].
    #[arg(short = 'p', long = "port", global = true)]
    pub port: Option<u16>,
    /// MQTT version: mqttv31 (31), mqttv311 (311) or mqttv5 (5).
    #[arg(
        short = 'V',
        long = "protocol-version",
        value_enum,
        default_value = "mqttv311",
        global = true
    )]
    pub protocol_version: VersionArg,
    #[arg(short = 'u', long = "username", global = true)]
    pub username: Option<String>,
    /// Password; the MQTT_PASSWORD environment variable keeps it out of `ps`.
    #[arg(
        short = 'P',
        long = "pw",
        global = true,
        env = "MQTT_PASSWORD",
        hide_env_values = true
    )]
    pub password: Option<String>,
    /// Keep-alive in seconds.
    #[arg(short = 'k', long = "keepalive", default_value_t = 60, global = true)]
    pub keep_alive: u16,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// TLS, with mosquitto_sub's options.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "TLS")]
pub struct TlsArgs {
    /// PEM file of CA certificates to trust; turns TLS on.
    #[arg(long, global = true, value_name = "FILE", allow_hyphen_values = true)]
    pub cafile: Option<PathBuf>,
    /// Directory of PEM CA certificates to trust; turns TLS on.
    #[arg(long, global = true, value_name = "DIR", allow_hyphen_values = true)]
    pub capath: Option<PathBuf>,
    /// Client certificate (PEM), with --key.
    #[arg(long, global = true, value_name = "FILE", allow_hyphen_values = true)]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM), with --cert.
    #[arg(long, global = true, value_name = "FILE", allow_hyphen_values = true)]
    pub key: Option<PathBuf>,
    /// Do not check that the certificate names the host (the chain is still checked).
    #[arg(long, global = true)]
    pub insecure: bool,
    /// Trust the operating system's CA certificates; turns TLS on.
    #[arg(long = "tls-use-os-certs", global = true)]
    pub use_os_certs: bool,
    /// ALPN protocol to offer.
    #[arg(
        long = "tls-alpn",
        global = true,
        value_name = "PROTOCOL",
        allow_hyphen_values = true
    )]
    pub alpn: Option<String>,
    /// Lowest TLS version: tlsv1.2 (default) or tlsv1.3.
    #[arg(
        id = "tls_version",
        long = "tls-version",
        global = true,
        value_name = "VERSION",
        allow_hyphen_values = true
    )]
    pub version: Option<String>,
}

impl TlsArgs {
    pub fn options(&self) -> TlsOptions {
        TlsOptions {
            cafile: self.cafile.clone(),
            capath: self.capath.clone(),
            cert: self.cert.clone(),
            key: self.key.clone(),
            insecure: self.insecure,
            use_os_certs: self.use_os_certs,
            alpn: self.alpn.clone(),
            version: self.version.clone(),
        }
    }
}

impl ConnectArgs {
    /// The port for hosts given without one.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(if self.tls.options().enabled() {
            8883
        } else {
            1883
        })
    }

    /// `ws://` and `wss://` hosts: MQTT over WebSockets (over TLS for `wss`), with
    /// the path to upgrade (`/mqtt` when the URL has none). Every host must use the
    /// same transport.
    pub fn websocket(&self) -> Result<Option<WebSocketUrl>, String> {
        let mut kinds = self.hosts.iter().map(|host| WebSocketUrl::parse(host));
        let Some(first) = kinds.next() else {
            return Ok(None);
        };
        for other in kinds {
            if other.as_ref().map(|u| (u.tls, &u.path)) != first.as_ref().map(|u| (u.tls, &u.path))
            {
                return Err("every -h must use the same transport (and WebSocket path)".into());
            }
        }
        Ok(first)
    }

    /// The addresses of the hosts given, in order, each with the name it was given as.
    pub fn resolve(&self) -> Result<Vec<(SocketAddr, String)>, String> {
        let websocket = self.websocket()?;
        let port = match (&websocket, self.port) {
            (_, Some(port)) => port,
            (Some(url), None) => url.default_port(),
            (None, None) => self.port(),
        };
        self.hosts
            .iter()
            .map(|host| WebSocketUrl::parse(host).map_or(host.clone(), |url| url.authority))
            .map(|host| {
                let host = &host;
                let with_port = if host.parse::<SocketAddr>().is_ok()
                    || host
                        .rsplit_once(':')
                        .is_some_and(|(h, p)| !h.contains(':') && p.parse::<u16>().is_ok())
                {
                    host.clone()
                } else if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                };
                let addr = with_port
                    .to_socket_addrs()
                    .map_err(|e| format!("cannot resolve {host}: {e}"))?
                    .next()
                    .ok_or_else(|| format!("no address for {host}"))?;
                let name = with_port
                    .rsplit_once(':')
                    .map_or(host.as_str(), |(name, _)| name)
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string();
                Ok((addr, name))
            })
            .collect()
    }

    /// Connection options for `hosts` (as [`ConnectArgs::resolve`] returns them).
    pub fn options(&self, hosts: &[(SocketAddr, String)]) -> Result<ConnectOptions, String> {
        let websocket = self.websocket()?;
        let mut tls_options = self.tls.options();
        // wss:// without trust options means the operating system's CAs.
        if websocket.as_ref().is_some_and(|url| url.tls) && !tls_options.enabled() {
            tls_options.use_os_certs = true;
        }
        let tls = tls_options
            .client_config()
            .map_err(|e| e.to_string())?
            .map(|config| TlsSettings {
                config,
                names: Arc::new(hosts.iter().cloned().collect()),
            });
        Ok(ConnectOptions {
            version: self.protocol_version.into(),
            keep_alive: self.keep_alive,
            username: self.username.clone(),
            password: self.password.clone().map(Bytes::from),
            clean_start: true,
            session_expiry: 0,
            tls,
            websocket: websocket.map(|url| url.path),
        })
    }
}

/// A `ws://` or `wss://` broker address: `HOST[:PORT][/PATH]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSocketUrl {
    pub tls: bool,
    /// `HOST[:PORT]`.
    pub authority: String,
    pub path: String,
}

impl WebSocketUrl {
    /// `None` when `text` is not a WebSocket URL.
    pub fn parse(text: &str) -> Option<WebSocketUrl> {
        let lower = text.to_ascii_lowercase();
        let (tls, rest) = if lower.starts_with("ws://") {
            (false, &text[5..])
        } else if lower.starts_with("wss://") {
            (true, &text[6..])
        } else {
            return None;
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => (&rest[..slash], rest[slash..].to_string()),
            None => (rest, DEFAULT_WEBSOCKET_PATH.to_string()),
        };
        Some(WebSocketUrl {
            tls,
            authority: authority.to_string(),
            path,
        })
    }

    /// 8080 for ws, 8081 for wss: the ports of test.mosquitto.org and of the
    /// README's layout.
    pub fn default_port(&self) -> u16 {
        if self.tls { 8081 } else { 8080 }
    }
}

/// The path asked for when a WebSocket URL names none, as MQTTX and mqtt.js do.
pub const DEFAULT_WEBSOCKET_PATH: &str = "/mqtt";

/// `0`, `1` or `2`.
pub fn parse_qos(text: &str) -> Result<QoS, String> {
    text.parse::<u8>()
        .ok()
        .and_then(QoS::from_u8)
        .ok_or_else(|| format!("invalid QoS {text}: use 0, 1 or 2"))
}

/// `10`, `10s`, `500ms`, `2m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text}"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("invalid duration {text}: use ms, s, m or h")),
    };
    if !(seconds.is_finite() && seconds >= 0.0) {
        return Err(format!("invalid duration {text}"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn hosts_with_and_without_ports() {
        let args = ConnectArgs {
            hosts: vec![
                "127.0.0.1".into(),
                "127.0.0.1:1884".into(),
                "::1".into(),
                "[::1]:9".into(),
            ],
            port: Some(1999),
            protocol_version: VersionArg::V311,
            username: None,
            password: None,
            keep_alive: 60,
            tls: TlsArgs::default(),
        };
        let addrs = args.resolve().expect("resolvable");
        let ports: Vec<u16> = addrs.iter().map(|(a, _)| a.port()).collect();
        assert_eq!(ports, vec![1999, 1884, 1999, 9]);
        let names: Vec<&str> = addrs.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, vec!["127.0.0.1", "127.0.0.1", "::1", "::1"]);
    }
}
