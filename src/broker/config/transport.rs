//! A listener's transport options, as mosquitto scopes them (per listener; before
//! the first `listener`, the default listener's): `protocol`, `http_dir`,
//! rbroker's `web_console`, the unix
//! socket of `listener 0 PATH`, and the TLS options from `certfile` to `crlfile`.
//!
//! Files are only named here; `broker::transport::tls` loads them when the
//! listeners are bound, and its errors name the line that named the file.

use std::path::PathBuf;

/// What a listener speaks on its sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListenerProtocol {
    #[default]
    Mqtt,
    WebSockets,
}

/// A value from the configuration, with the `file:line` it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub at: String,
}

/// The oldest TLS version a listener accepts (`tls_version`, a minimum as in
/// mosquitto 2.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    V1_2,
    V1_3,
}

/// mosquitto's per-listener TLS options. TLS is on when both `certfile` and
/// `keyfile` are set; any other TLS option without both stops startup (mosquitto
/// would serve plaintext).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    pub certfile: Option<Located<PathBuf>>,
    pub keyfile: Option<Located<PathBuf>>,
    pub cafile: Option<Located<PathBuf>>,
    pub capath: Option<Located<PathBuf>>,
    pub crlfile: Option<Located<PathBuf>>,
    /// Whether a client must present a certificate signed by `cafile`/`capath`.
    pub require_certificate: bool,
    pub tls_version: Option<TlsVersion>,
    /// `ciphers`: TLS 1.2 suites, in OpenSSL's names.
    pub ciphers: Option<Located<String>>,
    /// `ciphers_tls1.3`: TLS 1.3 suites.
    pub ciphers_tls13: Option<Located<String>>,
    /// Where the first TLS option of the listener is, for errors about the whole set.
    pub first_at: Option<String>,
    /// Where `require_certificate` was set.
    pub require_at: Option<String>,
}

impl TlsOptions {
    /// Whether the listener serves TLS.
    pub fn enabled(&self) -> bool {
        self.certfile.is_some() && self.keyfile.is_some()
    }
}

/// Everything about how a listener's sockets carry MQTT.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransportOptions {
    pub protocol: ListenerProtocol,
    /// Where the `protocol` line is (file:line).
    pub protocol_at: Option<String>,
    /// `http_dir`: static files served to plain HTTP requests on a WebSocket listener.
    pub http_dir: Option<PathBuf>,
    /// `web_console true`: the built-in web console on a WebSocket listener.
    pub web_console: bool,
    /// Where `web_console` was set (file:line).
    pub web_console_at: Option<String>,
    /// `listener 0 PATH`: a unix socket instead of TCP.
    pub unix_path: Option<PathBuf>,
    pub tls: TlsOptions,
}

/// The option names this module handles.
pub const KEYS: &[&str] = &[
    "protocol",
    "http_dir",
    "web_console",
    "certfile",
    "keyfile",
    "cafile",
    "capath",
    "crlfile",
    "require_certificate",
    "tls_version",
    "ciphers",
    "ciphers_tls1.3",
];

fn path(key: &str, values: &[&str], at: &str) -> Result<Located<PathBuf>, String> {
    if values.is_empty() {
        return Err(format!("Empty {key} value in configuration."));
    }
    Ok(Located {
        value: PathBuf::from(values.join(" ")),
        at: at.to_string(),
    })
}

/// A `true`/`false` option's value.
fn flag(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("Invalid {key} value ({other}).")),
    }
}

fn once<T>(key: &str, slot: &mut Option<T>, value: T) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("Duplicate {key} value in configuration."));
    }
    *slot = Some(value);
    Ok(())
}

impl TransportOptions {
    /// Applies one line whose key is in [`KEYS`].
    pub fn apply(&mut self, key: &str, values: &[&str], at: &str) -> Result<(), String> {
        let one = || match values {
            [value] => Ok(*value),
            [] => Err(format!("Empty {key} value in configuration.")),
            _ => Err(format!("Too many values for {key}.")),
        };
        if !matches!(key, "protocol" | "http_dir" | "web_console") {
            self.tls.first_at.get_or_insert_with(|| at.to_string());
        }
        let tls = &mut self.tls;
        match key {
            "protocol" => {
                self.protocol_at = Some(at.to_string());
                self.protocol = match one()? {
                    "mqtt" => ListenerProtocol::Mqtt,
                    "websockets" => ListenerProtocol::WebSockets,
                    other => return Err(format!("Invalid protocol value ({other}).")),
                }
            }
            "http_dir" => once(key, &mut self.http_dir, path(key, values, at)?.value)?,
            "web_console" => {
                self.web_console_at = Some(at.to_string());
                self.web_console = flag(key, one()?)?;
            }
            "certfile" => once(key, &mut tls.certfile, path(key, values, at)?)?,
            "keyfile" => once(key, &mut tls.keyfile, path(key, values, at)?)?,
            "cafile" => once(key, &mut tls.cafile, path(key, values, at)?)?,
            "capath" => once(key, &mut tls.capath, path(key, values, at)?)?,
            "crlfile" => once(key, &mut tls.crlfile, path(key, values, at)?)?,
            "require_certificate" => {
                tls.require_at = Some(at.to_string());
                tls.require_certificate = flag(key, one()?)?;
            }
            "tls_version" => {
                tls.tls_version = Some(match one()? {
                    "tlsv1.3" => TlsVersion::V1_3,
                    "tlsv1.2" => TlsVersion::V1_2,
                    "tlsv1.1" => {
                        return Err("tls_version tlsv1.1 is not supported: rustls implements TLS 1.2 and 1.3 only, and accepting fewer versions than asked for would turn clients away unannounced.".into());
                    }
                    other => return Err(format!("Unsupported tls_version \"{other}\".")),
                });
            }
            "ciphers" | "ciphers_tls1.3" => {
                let list = Located {
                    value: one()?.to_string(),
                    at: at.to_string(),
                };
                let slot = if key == "ciphers" {
                    &mut tls.ciphers
                } else {
                    &mut tls.ciphers_tls13
                };
                once(key, slot, list)?;
            }
            other => unreachable!("{other} is not a transport option"),
        }
        Ok(())
    }

    /// Checks the listener's options as a whole once the file is read: an error
    /// `(reason, file:line)`, or a warning.
    pub fn check(
        &self,
        use_certificate_identity: bool,
    ) -> Result<Option<String>, (String, String)> {
        let tls = &self.tls;
        if let Some(at) = &tls.first_at
            && !tls.enabled()
        {
            let reason = match (&tls.certfile, &tls.keyfile) {
                (Some(_), None) => "certfile is set but keyfile is not",
                (None, Some(_)) => "keyfile is set but certfile is not",
                _ => "TLS options are set but certfile and keyfile are not",
            };
            return Err((
                format!(
                    "{reason}: TLS needs both, and rbroker refuses to serve this listener in plaintext (mosquitto would)."
                ),
                at.clone(),
            ));
        }
        if tls.enabled() && tls.require_certificate && tls.cafile.is_none() && tls.capath.is_none()
        {
            return Err((
                "require_certificate true needs cafile or capath to check client certificates against.".into(),
                tls.require_at.clone().unwrap_or_default(),
            ));
        }
        if use_certificate_identity && !(tls.enabled() && tls.require_certificate) {
            return Err((
                "use_identity_as_username and use_subject_as_username need a TLS listener with require_certificate true.".into(),
                tls.first_at.clone().unwrap_or_default(),
            ));
        }
        if let Some(path) = &self.unix_path
            && (tls.enabled() || self.protocol == ListenerProtocol::WebSockets)
        {
            return Err((
                format!(
                    "The unix socket listener {} serves plain MQTT only: TLS and WebSockets are for TCP listeners.",
                    path.display()
                ),
                // The first TLS line, or else the `protocol websockets` line.
                tls.first_at
                    .clone()
                    .or_else(|| self.protocol_at.clone())
                    .unwrap_or_default(),
            ));
        }
        if self.web_console && self.protocol != ListenerProtocol::WebSockets {
            return Err((
                "web_console true needs a listener with protocol websockets: the console is a web page that talks MQTT over WebSockets.".into(),
                self.web_console_at.clone().unwrap_or_default(),
            ));
        }
        if self.http_dir.is_some() && self.protocol != ListenerProtocol::WebSockets {
            return Ok(Some(
                "http_dir is only used on a listener with protocol websockets".into(),
            ));
        }
        Ok(None)
    }
}
