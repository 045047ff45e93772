//! The command line rsub and rpub share with mosquitto_sub and mosquitto_pub: the
//! clap argument group, the per-user defaults file, mosquitto's error messages
//! for bad arguments, and the resolved [`Settings`] a connection is made from.
//!
//! Parsing follows mosquitto's quirks: `-h` is the host (help is `--help`), every
//! value may start with `-` (`-m -5`), a repeated scalar takes the last value,
//! lists (`-t`, `-T`, `-U`, `-D`) accumulate, and `-D` switches to MQTT 5.
//! Numbers must be numbers: where mosquitto would read `-q abc` as 0, rsub says
//! the value is invalid.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use clap::{ArgMatches, Args};

use super::args::{ColorChoice, TlsArgs};
use crate::cli::args::DEFAULT_WEBSOCKET_PATH;
use crate::client::endpoint::{Dialer, Endpoint};
use crate::client::properties::CommandProperties;
use crate::protocol::{Connect, Property, ProtocolVersion, QoS, TopicFilter, TopicName, Will};

/// Which tool is running; decides names in messages and the defaults file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Sub,
    Pub,
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::Sub => "rsub",
            Tool::Pub => "rpub",
        }
    }

    /// The mosquitto tool it stands in for, whose defaults file it also reads.
    pub fn mosquitto_name(self) -> &'static str {
        match self {
            Tool::Sub => "mosquitto_sub",
            Tool::Pub => "mosquitto_pub",
        }
    }
}

/// Options both tools take, with mosquitto's letters.
#[derive(Debug, Clone, Default, Args)]
pub struct CommonArgs {
    /// Broker host [default: localhost].
    #[arg(
        short = 'h',
        long = "host",
        value_name = "HOST",
        allow_hyphen_values = true,
        help_heading = "Connection"
    )]
    pub host: Option<String>,
    /// Port [default: 1883, or 8883 with --cafile/--capath].
    #[arg(
        short = 'p',
        long = "port",
        value_name = "PORT",
        allow_hyphen_values = true,
        help_heading = "Connection"
    )]
    pub port: Option<String>,
    /// Connect through this unix socket instead of TCP.
    #[arg(
        long = "unix",
        value_name = "PATH",
        allow_hyphen_values = true,
        help_heading = "Connection"
    )]
    pub unix: Option<String>,
    #[arg(
        short = 'L',
        long = "url",
        help = "mqtt(s)://[user[:password]@]host[:port]/topic, or ws(s)://[user[:password]@]host[:port][/path] for MQTT over WebSockets (topics from -t)",
        value_name = "URL",
        allow_hyphen_values = true,
        help_heading = "Connection"
    )]
    pub url: Option<String>,
    /// Local address to connect from.
    #[arg(
        short = 'A',
        value_name = "ADDRESS",
        allow_hyphen_values = true,
        help_heading = "Connection"
    )]
    pub bind_address: Option<String>,
    /// Disable Nagle's algorithm (always on in rsub/rpub; accepted for scripts).
    #[arg(long = "nodelay", help_heading = "Connection")]
    pub nodelay: bool,
    /// MQTT version: mqttv31 (31), mqttv311 (311, default) or mqttv5 (5).
    #[arg(
        short = 'V',
        long = "protocol-version",
        value_name = "VERSION",
        allow_hyphen_values = true,
        help_heading = "Connection"
    )]
    pub protocol_version: Option<String>,
    /// Client id [default: none sent; the broker assigns one].
    #[arg(
        short = 'i',
        long = "id",
        value_name = "ID",
        allow_hyphen_values = true,
        help_heading = "Connection"
    )]
    pub id: Option<String>,
    /// Client id prefix; the process id is appended.
    #[arg(
        short = 'I',
        long = "id-prefix",
        value_name = "PREFIX",
        allow_hyphen_values = true,
        help_heading = "Connection"
    )]
    pub id_prefix: Option<String>,
    /// Keep-alive in seconds, 5 to 65535 [default: 60].
    #[arg(
        short = 'k',
        long = "keepalive",
        value_name = "SECONDS",
        allow_hyphen_values = true,
        help_heading = "Connection"
    )]
    pub keepalive: Option<String>,
    /// Persistent session (needs -i).
    #[arg(
        short = 'c',
        long = "disable-clean-session",
        help_heading = "Connection"
    )]
    pub disable_clean_session: bool,
    /// MQTT 5 session expiry in seconds; -1 or ∞ for never.
    #[arg(
        short = 'x',
        value_name = "SECONDS",
        allow_hyphen_values = true,
        help_heading = "Connection"
    )]
    pub session_expiry: Option<String>,
    /// Most QoS 1/2 messages in flight at once [default: 20].
    #[arg(
        short = 'M',
        value_name = "COUNT",
        allow_hyphen_values = true,
        help_heading = "Connection"
    )]
    pub max_inflight: Option<String>,
    #[arg(
        short = 'u',
        long = "username",
        value_name = "USER",
        allow_hyphen_values = true,
        help_heading = "Authentication"
    )]
    pub username: Option<String>,
    /// Password (visible in ps; prefer --pw-file or MQTT_PASSWORD).
    #[arg(
        short = 'P',
        long = "pw",
        value_name = "PASSWORD",
        allow_hyphen_values = true,
        help_heading = "Authentication"
    )]
    pub password: Option<String>,
    /// Read the password from the first line of FILE.
    #[arg(
        long = "pw-file",
        value_name = "FILE",
        allow_hyphen_values = true,
        help_heading = "Authentication"
    )]
    pub password_file: Option<PathBuf>,
    /// MQTT 5 property: -D COMMAND PROPERTY VALUE (user-property takes KEY VALUE).
    #[arg(
        short = 'D',
        long = "property",
        num_args = 3..=4,
        value_names = ["COMMAND", "PROPERTY", "VALUE"],
        help_heading = "MQTT 5"
    )]
    pub properties: Vec<String>,
    #[arg(
        long = "will-topic",
        value_name = "TOPIC",
        allow_hyphen_values = true,
        help_heading = "Will"
    )]
    pub will_topic: Option<String>,
    #[arg(
        long = "will-payload",
        value_name = "PAYLOAD",
        allow_hyphen_values = true,
        help_heading = "Will"
    )]
    pub will_payload: Option<String>,
    #[arg(
        long = "will-qos",
        value_name = "QOS",
        allow_hyphen_values = true,
        help_heading = "Will"
    )]
    pub will_qos: Option<String>,
    #[arg(long = "will-retain", help_heading = "Will")]
    pub will_retain: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub unsupported: UnsupportedArgs,
    /// Print every packet sent and received (on stdout, as mosquitto).
    #[arg(short = 'd', long = "debug", help_heading = "Output")]
    pub debug: bool,
    /// Print no runtime errors.
    #[arg(long = "quiet", help_heading = "Output")]
    pub quiet: bool,
    /// Colour human output: auto (a terminal, and NO_COLOR unset), always, never.
    #[arg(
        long = "color",
        value_enum,
        default_value = "auto",
        value_name = "WHEN",
        help_heading = "Output"
    )]
    pub color: ColorChoice,
    /// Print help.
    #[arg(long = "help", action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Print the version.
    #[arg(long = "version", action = clap::ArgAction::Version)]
    pub version: Option<bool>,
}

/// mosquitto options rsub and rpub cannot honour: accepted by the parser so the
/// error names the option, then refused with one line and exit status 1.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Not supported (refused with an error)")]
pub struct UnsupportedArgs {
    /// OpenSSL cipher list (rustls chooses its own safe suites).
    #[arg(long = "ciphers", value_name = "CIPHERS", allow_hyphen_values = true)]
    pub ciphers: Option<String>,
    #[arg(long = "tls-engine", value_name = "ENGINE", allow_hyphen_values = true)]
    pub tls_engine: Option<String>,
    #[arg(long = "keyform", value_name = "FORM", allow_hyphen_values = true)]
    pub keyform: Option<String>,
    #[arg(
        long = "tls-engine-kpass-sha1",
        value_name = "SHA1",
        allow_hyphen_values = true
    )]
    pub tls_engine_kpass_sha1: Option<String>,
    #[arg(long = "psk", value_name = "HEX", allow_hyphen_values = true)]
    pub psk: Option<String>,
    #[arg(
        long = "psk-identity",
        value_name = "IDENTITY",
        allow_hyphen_values = true
    )]
    pub psk_identity: Option<String>,
    #[arg(long = "proxy", value_name = "URL", allow_hyphen_values = true)]
    pub proxy: Option<String>,
    /// DNS SRV lookup.
    #[arg(short = 'S')]
    pub srv: bool,
}

/// A problem with the command line: mosquitto's line, then a usage hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

/// mosquitto's message for a clap error, by the option it names.
pub fn clap_error_message(error: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let invalid_arg = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(text)) => text.clone(),
        _ => String::new(),
    };
    let flag = invalid_arg
        .split([' ', '='])
        .next()
        .unwrap_or_default()
        .to_string();
    match error.kind() {
        ErrorKind::UnknownArgument => format!("Error: Unknown option '{flag}'."),
        ErrorKind::InvalidValue | ErrorKind::WrongNumberOfValues | ErrorKind::TooFewValues => {
            missing_value_message(&flag)
        }
        ErrorKind::ValueValidation => {
            let value = match error.get(ContextKind::InvalidValue) {
                Some(ContextValue::String(text)) => text.clone(),
                _ => String::new(),
            };
            format!("Error: Invalid value '{value}' for {flag}.")
        }
        _ => {
            let text = error.to_string();
            let first = text.lines().next().unwrap_or_default();
            format!("Error: {}", first.trim_start_matches("error: "))
        }
    }
}

/// "Error: -t argument given but no topic specified." and the like.
fn missing_value_message(flag: &str) -> String {
    let (name, what) = match flag {
        "-A" => ("-A", "address"),
        "-C" => ("-C", "count"),
        "-f" | "--file" => ("-f", "file"),
        "-F" => ("-F", "format"),
        "-h" | "--host" => ("-h", "host"),
        "-i" | "--id" => ("-i", "id"),
        "-I" | "--id-prefix" => ("-I", "id prefix"),
        "-k" | "--keepalive" => ("-k", "keepalive"),
        "-L" | "--url" => ("-L", "URL"),
        "-M" => return "Error: -M argument given but max_inflight not specified.".into(),
        "-m" | "--message" => ("-m", "message"),
        "-p" | "--port" => ("-p", "port"),
        "-P" | "--pw" => ("-P", "password"),
        "-q" | "--qos" => ("-q", "QoS"),
        "-t" | "--topic" => ("-t", "topic"),
        "-T" | "--filter-out" => ("-T", "topic filter"),
        "-u" | "--username" => ("-u", "username"),
        "-U" | "--unsubscribe" => ("-U", "unsubscribe topic"),
        "-V" | "--protocol-version" => ("--protocol-version", "version"),
        "-W" => ("-W", "timeout"),
        "-x" => ("-x", "session expiry interval"),
        "-D" | "--property" => {
            return "Error: --property argument given but not enough arguments specified.".into();
        }
        "--cafile" | "--cert" | "--key" => (flag, "file"),
        "--capath" => (flag, "directory"),
        "--ciphers" => (flag, "ciphers"),
        "--keyform" => (flag, "keyform"),
        "--proxy" => (flag, "proxy url"),
        "--psk" => (flag, "key"),
        "--psk-identity" => (flag, "identity"),
        "--random-filter" => (flag, "chance"),
        "--repeat" => (flag, "count"),
        "--repeat-delay" => (flag, "time"),
        "--tls-alpn" => (flag, "protocol"),
        "--tls-engine" => (flag, "engine_id"),
        "--tls-engine-kpass-sha1" => (flag, "kpass sha1"),
        "--tls-version" => (flag, "version"),
        "--unix" => (flag, "socket path"),
        "--will-payload" => (flag, "will payload"),
        "--will-qos" => (flag, "will QoS"),
        "--will-topic" => (flag, "will topic"),
        "--pw-file" => (flag, "file"),
        "--color" => (flag, "choice"),
        other => (other, "value"),
    };
    format!("Error: {name} argument given but no {what} specified.")
}

/// The arguments from the per-user defaults file, to go before the real ones:
/// `$XDG_CONFIG_HOME/<name>` when XDG_CONFIG_HOME is set, otherwise
/// `~/.config/<name>`; `<name>` is the tool's own name, or the mosquitto tool's
/// when there is no file of its own. One option a line, split at the first space.
pub fn defaults_file_args(tool: Tool) -> Vec<OsString> {
    let directory = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => match std::env::var_os("HOME") {
            Some(home) => Path::new(&home).join(".config"),
            None => return Vec::new(),
        },
    };
    let text = [tool.name(), tool.mosquitto_name()]
        .iter()
        .find_map(|name| std::fs::read(directory.join(name)).ok());
    let Some(text) = text else {
        return Vec::new();
    };
    let mut args = Vec::new();
    for line in String::from_utf8_lossy(&text).lines() {
        if line.starts_with('#') {
            continue;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        let line = line.trim_start_matches(' ');
        if line.is_empty() {
            continue;
        }
        match line.split_once(' ') {
            Some((option, rest)) => {
                args.push(OsString::from(option));
                let rest = rest.trim_start_matches(' ');
                if !rest.is_empty() {
                    args.push(OsString::from(rest));
                }
            }
            None => args.push(OsString::from(line)),
        }
    }
    args
}

/// How often an option occurred, and where its last occurrence stood.
fn last_index(matches: &ArgMatches, id: &str) -> Option<usize> {
    if matches.value_source(id) != Some(clap::parser::ValueSource::CommandLine) {
        return None;
    }
    matches.indices_of(id).and_then(Iterator::max)
}

/// An integer as mosquitto's options need it: digits with an optional sign.
fn integer(text: &str) -> Option<i64> {
    let trimmed = text.trim();
    trimmed.parse::<i64>().ok()
}

fn parse_qos(text: &str, message: impl Fn(&str) -> String) -> Result<QoS, UsageError> {
    integer(text)
        .and_then(|n| u8::try_from(n).ok())
        .and_then(QoS::from_u8)
        .ok_or_else(|| UsageError(message(text)))
}

/// `-q` for both tools.
pub fn qos_option(text: Option<&str>) -> Result<QoS, UsageError> {
    match text {
        None => Ok(QoS::AtMostOnce),
        Some(text) => parse_qos(text, |t| format!("Error: Invalid QoS given: {t}")),
    }
}

/// What a connection is made from, resolved from the common arguments.
pub struct Settings {
    pub dialer: Dialer,
    /// The CONNECT to send; rsub adds its Receive Maximum for small `-C`.
    pub connect: Connect,
    pub properties: CommandProperties,
    pub max_inflight: u16,
    pub debug: bool,
    pub quiet: bool,
    pub color: bool,
    /// The topic of `-L`, for `-t`'s list (rsub) or as the topic (rpub).
    pub url_topic: Option<String>,
}

impl Settings {
    pub fn version(&self) -> ProtocolVersion {
        self.connect.version
    }
}

/// The pieces of `-L mqtt(s)://[user[:password]@]host[:port]/topic`, or of
/// `-L ws(s)://[user[:password]@]host[:port][/path]`, where the path is the
/// WebSocket's (as in MQTTX and browsers) and topics come from `-t`.
struct Url {
    tls: bool,
    username: Option<String>,
    password: Option<String>,
    host: String,
    port: Option<String>,
    /// The topic of an mqtt(s) URL.
    topic: Option<String>,
    /// The path of a ws(s) URL.
    websocket: Option<String>,
}

fn parse_url(url: &str) -> Result<Url, UsageError> {
    let lower = url.to_ascii_lowercase();
    let (tls, websocket, rest) = if lower.starts_with("mqtt://") {
        (false, false, &url[7..])
    } else if lower.starts_with("mqtts://") {
        (true, false, &url[8..])
    } else if lower.starts_with("ws://") {
        (false, true, &url[5..])
    } else if lower.starts_with("wss://") {
        (true, true, &url[6..])
    } else {
        return Err(UsageError("Error: Unsupported URL scheme.".into()));
    };
    let (authority, topic, websocket) = if websocket {
        match rest.find('/') {
            Some(slash) => (&rest[..slash], None, Some(rest[slash..].to_string())),
            None => (rest, None, Some(DEFAULT_WEBSOCKET_PATH.to_string())),
        }
    } else {
        let Some((authority, topic)) = rest.split_once('/') else {
            return Err(UsageError(
                "Error: Invalid URL for -L argument specified - topic missing.".into(),
            ));
        };
        (authority, Some(topic.to_string()), None)
    };
    let (credentials, host_port) = match authority.split_once('@') {
        Some((credentials, host_port)) => (Some(credentials), host_port),
        None => (None, authority),
    };
    let (username, password) = match credentials {
        Some(credentials) => match credentials.split_once(':') {
            Some((user, password)) => (Some(user.to_string()), Some(password.to_string())),
            None => (Some(credentials.to_string()), None),
        },
        None => (None, None),
    };
    let (host, port) = match host_port.split_once(':') {
        Some((host, port)) => (host.to_string(), Some(port.to_string())),
        None => (host_port.to_string(), None),
    };
    Ok(Url {
        tls,
        username,
        password,
        host,
        port,
        topic,
        websocket,
    })
}

/// Checks a topic to publish to (`-t` of rpub, `--will-topic`).
pub fn publish_topic(topic: &str, what: &str) -> Result<TopicName, UsageError> {
    TopicName::new(topic).map_err(|_| {
        UsageError(format!(
            "Error: Invalid {what} topic '{topic}', does it contain '+' or '#'?"
        ))
    })
}

/// Checks a filter (`-t` of rsub, `-T`, `-U`); `what` names it in the error.
pub fn subscription_filter(filter: &str, what: &str) -> Result<TopicFilter, UsageError> {
    TopicFilter::new(filter).map_err(|_| {
        UsageError(format!(
            "Error: Invalid {what} topic '{filter}', are all '+' and '#' wildcards correct?"
        ))
    })
}

/// Where to connect and as whom, after `-L` (a URL sets what it names, over
/// earlier options).
struct Destination {
    host: Option<String>,
    port: Option<u16>,
    username: Option<String>,
    password: Option<String>,
    tls_options: crate::client::tls::TlsOptions,
    url_topic: Option<String>,
    /// The WebSocket path of a ws(s) URL.
    websocket: Option<String>,
}

impl CommonArgs {
    /// Resolves the options into [`Settings`], with mosquitto's checks and
    /// messages, in mosquitto's order. `matches` gives the order of `-D` and `-V`.
    pub fn resolve(&self, matches: &ArgMatches, _tool: Tool) -> Result<Settings, UsageError> {
        if self.id.is_some() && self.id_prefix.is_some() {
            return Err(usage("Error: -i and -I argument cannot be used together."));
        }
        let properties = command_properties(matches)?;
        let version = self.protocol_version(matches)?;
        let keep_alive = self.keep_alive()?;
        let max_inflight = self.max_inflight()?;
        let session_expiry = self.session_expiry()?;
        let destination = self.destination()?;
        let will = self.will(&properties)?;
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(usage(
                "Error: Both certfile and keyfile must be provided if one of them is set.",
            ));
        }
        self.unsupported.check()?;
        let (client_id, clean_start, connect_properties) =
            self.session(version, session_expiry, &properties)?;
        let Destination {
            host,
            port,
            username,
            password,
            mut tls_options,
            url_topic,
            websocket,
        } = destination;
        let password = match (password, &self.password_file) {
            (Some(password), _) => Some(password),
            (None, Some(file)) => Some(read_password_file(file)?),
            (None, None) => std::env::var("MQTT_PASSWORD").ok(),
        };
        // 3.x cannot send a password without a user name [MQTT-3.1.2-22 3.1.1].
        let password = password.filter(|_| username.is_some() || version.is_v5());
        // Port 8883 without trust options means the operating system's CAs.
        if port == Some(8883) && !tls_options.enabled() {
            tls_options.use_os_certs = true;
        }
        let tls_config = tls_config(&tls_options)?;
        let default_port = if self.tls.cafile.is_some() || self.tls.capath.is_some() {
            8883
        } else {
            1883
        };
        let host = host.unwrap_or_else(|| "localhost".to_string());
        let port = port.unwrap_or(default_port);
        let endpoint = match (&self.unix, websocket) {
            (Some(path), _) => Endpoint::Unix(PathBuf::from(path)),
            (None, Some(path)) => Endpoint::WebSocket { host, port, path },
            (None, None) => Endpoint::Tcp { host, port },
        };
        let connect = Connect {
            version,
            clean_start,
            keep_alive,
            properties: connect_properties,
            client_id,
            will,
            username,
            password: password.map(Bytes::from),
            bridge: false,
        };
        Ok(Settings {
            dialer: Dialer {
                endpoint,
                bind_address: self.bind_address.clone(),
                tls: tls_config,
            },
            connect,
            properties,
            max_inflight,
            debug: self.debug,
            quiet: self.quiet,
            color: self.color.apply(),
            url_topic,
        })
    }

    /// `-V`, switched to MQTT 5 by a `-D` that comes after it.
    fn protocol_version(&self, matches: &ArgMatches) -> Result<ProtocolVersion, UsageError> {
        let version = match self.protocol_version.as_deref() {
            None | Some("mqttv311") | Some("311") => ProtocolVersion::V3_1_1,
            Some("mqttv31") | Some("31") => ProtocolVersion::V3_1,
            Some("mqttv5") | Some("5") => ProtocolVersion::V5,
            Some(_) => return Err(usage("Error: Invalid protocol version argument given.")),
        };
        if !self.properties.is_empty()
            && last_index(matches, "properties") > last_index(matches, "protocol_version")
        {
            return Ok(ProtocolVersion::V5);
        }
        Ok(version)
    }

    /// `-k`: 5 to 65535 seconds, 60 by default.
    fn keep_alive(&self) -> Result<u16, UsageError> {
        match self.keepalive.as_deref() {
            None => Ok(60),
            Some(text) => integer(text)
                .filter(|k| (5..=65_535).contains(k))
                .map(|k| k as u16)
                .ok_or_else(|| {
                    usage(
                        "Error: Invalid keepalive given, it must be between 5 and 65535 inclusive.",
                    )
                }),
        }
    }

    /// `--max-inflight`: at least 1, 20 by default.
    fn max_inflight(&self) -> Result<u16, UsageError> {
        match self.max_inflight.as_deref() {
            None => Ok(20),
            Some(text) => integer(text)
                .filter(|m| *m >= 1)
                .map(|m| m.min(i64::from(u16::MAX)) as u16)
                .ok_or_else(|| usage("Error: Maximum inflight messages must be greater than 0.")),
        }
    }

    /// `-x`: seconds, `-1` or `∞` for "never".
    fn session_expiry(&self) -> Result<Option<u32>, UsageError> {
        match self.session_expiry.as_deref() {
            None => Ok(None),
            Some("∞") => Ok(Some(u32::MAX)),
            Some(text) => {
                let value = parse_c_long(text)
                    .ok_or_else(|| usage("Error: session-expiry-interval not a number."))?;
                if !(-1..=i64::from(u32::MAX)).contains(&value) {
                    return Err(usage("Error: session-expiry-interval out of range."));
                }
                Ok(Some(if value == -1 { u32::MAX } else { value as u32 }))
            }
        }
    }

    /// `-h`, `-p`, `-u`, `-P` and the TLS options, with `-L` applied over them.
    fn destination(&self) -> Result<Destination, UsageError> {
        let url = self.url.as_deref().map(parse_url).transpose()?;
        let mut port_text = self.port.clone();
        let mut destination = Destination {
            host: self.host.clone(),
            port: None,
            username: self.username.clone(),
            password: self.password.clone(),
            tls_options: self.tls.options(),
            url_topic: None,
            websocket: None,
        };
        if let Some(url) = url {
            destination.host = Some(url.host);
            let default_port = match (url.websocket.is_some(), url.tls) {
                (false, false) => "1883",
                (false, true) => "8883",
                (true, false) => "8080",
                (true, true) => "8081",
            };
            port_text = Some(url.port.unwrap_or_else(|| default_port.to_string()));
            destination.websocket = url.websocket;
            if url.username.is_some() {
                destination.username = url.username;
            }
            if url.password.is_some() {
                destination.password = url.password;
            }
            if url.tls {
                destination.tls_options.use_os_certs = true;
            }
            destination.url_topic = url.topic;
        }
        destination.port = match port_text.as_deref() {
            None => None,
            Some(text) => Some(
                integer(text)
                    .filter(|p| (0..=65_535).contains(p))
                    .ok_or_else(|| UsageError(format!("Error: Invalid port given: {text}")))?
                    as u16,
            ),
        };
        Ok(destination)
    }

    /// `--will-*`: a will needs its topic.
    fn will(&self, properties: &CommandProperties) -> Result<Option<Will>, UsageError> {
        if self.will_payload.is_some() && self.will_topic.is_none() {
            return Err(usage("Error: Will payload given, but no will topic given."));
        }
        if self.will_retain && self.will_topic.is_none() {
            return Err(usage("Error: Will retain given, but no will topic given."));
        }
        let Some(topic) = &self.will_topic else {
            return Ok(None);
        };
        Ok(Some(Will {
            topic: publish_topic(topic, "will")?,
            payload: Bytes::from(self.will_payload.clone().unwrap_or_default()),
            qos: match self.will_qos.as_deref() {
                None => QoS::AtMostOnce,
                Some(text) => parse_qos(text, |t| format!("Error: Invalid will QoS {t}."))?,
            },
            retain: self.will_retain,
            properties: properties.will.clone(),
        }))
    }

    /// The client id (`-i`, `-I`, or none for the broker to assign), whether the
    /// session starts clean (`-c`), and the CONNECT properties with the session
    /// expiry, with mosquitto's rules for persistent sessions.
    fn session(
        &self,
        version: ProtocolVersion,
        mut session_expiry: Option<u32>,
        properties: &CommandProperties,
    ) -> Result<(String, bool, crate::protocol::Properties), UsageError> {
        let client_id = match (&self.id, &self.id_prefix) {
            (Some(id), _) => id.clone(),
            (None, Some(prefix)) => format!("{prefix}{}", std::process::id()),
            // MQTT 3.1 needs an id; libmosquitto makes one up ("mosq-" and 18
            // random letters and digits). Later versions let the broker assign it.
            (None, None) if version == ProtocolVersion::V3_1 => random_mosq_id(),
            (None, None) => String::new(),
        };
        let clean_start = !self.disable_clean_session;
        let mut connect_properties = properties.connect.clone();
        if version.is_v5() {
            if !clean_start && session_expiry.is_none() {
                session_expiry = Some(u32::MAX);
            }
            if let Some(expiry) = session_expiry.filter(|e| *e > 0) {
                if expiry == u32::MAX && (self.id_prefix.is_some() || self.id.is_none()) {
                    return Err(usage(
                        "Error: You must provide a client id if you are using an infinite session expiry interval.",
                    ));
                }
                connect_properties.remove(0x11);
                connect_properties.push(Property::SessionExpiryInterval(expiry));
            }
        } else if !clean_start && (self.id_prefix.is_some() || self.id.is_none()) {
            return Err(usage(
                "Error: You must provide a client id if you are using the -c option.",
            ));
        }
        Ok((client_id, clean_start, connect_properties))
    }
}

/// A usage error with mosquitto's text.
fn usage(text: &str) -> UsageError {
    UsageError(text.to_string())
}

/// The `-D` options, in command-line order.
fn command_properties(matches: &ArgMatches) -> Result<CommandProperties, UsageError> {
    let mut properties = CommandProperties::default();
    let occurrences: Vec<Vec<String>> = matches
        .get_occurrences::<String>("properties")
        .map(|occurrences| {
            occurrences
                .map(|values| values.cloned().collect())
                .collect()
        })
        .unwrap_or_default();
    for values in &occurrences {
        if values.len() == 4 && values[1] != "user-property" {
            return Err(UsageError(format!(
                "Error: Unknown option '{}'.",
                values[3]
            )));
        }
        properties.add(values).map_err(UsageError)?;
    }
    Ok(properties)
}

/// The rustls configuration the TLS options ask for, `None` without TLS, with
/// mosquitto's messages for what cannot be read or set.
fn tls_config(
    options: &crate::client::tls::TlsOptions,
) -> Result<Option<std::sync::Arc<rustls::ClientConfig>>, UsageError> {
    if !options.enabled() {
        return Ok(None);
    }
    match options.client_config() {
        Ok(config) => Ok(config),
        Err(crate::client::tls::TlsError::Read { .. })
        | Err(crate::client::tls::TlsError::NoCertificate { .. }) => {
            Err(usage("Error: Problem setting TLS options: File not found."))
        }
        Err(crate::client::tls::TlsError::Version(version)) => Err(UsageError(format!(
            "Error: Problem setting TLS options, check the options are valid.\nrsub and rpub use rustls, which speaks TLS 1.2 and 1.3, not {version}."
        ))),
        Err(other) => Err(UsageError(format!(
            "Error: Problem setting TLS options: {other}."
        ))),
    }
}

impl UnsupportedArgs {
    /// One clear line for an option rsub and rpub cannot honour.
    fn check(&self) -> Result<(), UsageError> {
        let refuse = |option: &str, why: &str| {
            Err(UsageError(format!(
                "Error: {option} is not supported: {why}."
            )))
        };
        if self.psk.is_some() || self.psk_identity.is_some() {
            return refuse(
                "--psk",
                "rustls has no TLS-PSK; use certificates (--cafile)",
            );
        }
        if self.tls_engine.is_some()
            || self.keyform.is_some()
            || self.tls_engine_kpass_sha1.is_some()
        {
            return refuse("--tls-engine", "OpenSSL engines do not exist in rustls");
        }
        if self.ciphers.is_some() {
            return refuse("--ciphers", "rustls offers only its own safe cipher suites");
        }
        if self.proxy.is_some() {
            return refuse("--proxy", "SOCKS proxies are not implemented");
        }
        if self.srv {
            return refuse("-S", "DNS SRV lookups are not implemented");
        }
        Ok(())
    }
}

/// `mosq-` and 18 random letters and digits, as libmosquitto generates.
fn random_mosq_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let random = uuid::Uuid::new_v4().as_u128();
    let mut id = String::from("mosq-");
    for index in 0..18 {
        let digit = (random >> (index * 6)) as usize % ALPHABET.len();
        id.push(ALPHABET[digit] as char);
    }
    id
}

/// strtol with base 0 over the whole text: decimal, 0x hex or 0 octal.
fn parse_c_long(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let value = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(hex, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        i64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse::<i64>().ok()?
    };
    Some(if negative { -value } else { value })
}

fn read_password_file(path: &Path) -> Result<String, UsageError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        UsageError(format!(
            "Error: Unable to read password file \"{}\": {e}.",
            path.display()
        ))
    })?;
    Ok(text.lines().next().unwrap_or_default().to_string())
}

/// The text after `strerror` for an I/O error: "Connection refused", not
/// "Connection refused (os error 111)".
pub fn strerror(error: &std::io::Error) -> String {
    match error.raw_os_error() {
        Some(code) => {
            // SAFETY: strerror returns a pointer to a static, NUL-terminated string.
            let text = unsafe { std::ffi::CStr::from_ptr(libc::strerror(code)) };
            text.to_string_lossy().into_owned()
        }
        None => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let url = parse_url("mqtts://user:secret@broker.example:8884/a/b").expect("valid");
        assert!(url.tls);
        assert_eq!(url.username.as_deref(), Some("user"));
        assert_eq!(url.password.as_deref(), Some("secret"));
        assert_eq!(
            (url.host.as_str(), url.port.as_deref()),
            ("broker.example", Some("8884"))
        );
        assert_eq!(url.topic.as_deref(), Some("a/b"));
        assert_eq!(
            parse_url("http://h/t").err(),
            Some(UsageError("Error: Unsupported URL scheme.".into()))
        );
        assert!(parse_url("mqtt://host").is_err());
    }

    #[test]
    fn c_numbers() {
        assert_eq!(parse_c_long("0x10"), Some(16));
        assert_eq!(parse_c_long("010"), Some(8));
        assert_eq!(parse_c_long("-1"), Some(-1));
        assert_eq!(parse_c_long("abc"), None);
        assert_eq!(parse_c_long("5s"), None);
    }

    #[test]
    fn missing_values_name_the_option() {
        assert_eq!(
            missing_value_message("--topic"),
            "Error: -t argument given but no topic specified."
        );
        assert_eq!(
            missing_value_message("-V"),
            "Error: --protocol-version argument given but no version specified."
        );
    }
}
