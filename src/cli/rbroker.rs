//! `rbroker`'s command line, as mosquitto 2.0's: `rbroker [-c file] [-p port]... [-v]`.
//!
//! Usage errors print mosquitto's wording on stderr and exit with status 3, as
//! `mosquitto` does; so does `-h`, which prints the usage on stdout.

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{ArgAction, Parser};

use crate::broker::{Broker, BrokerHandle, Config, LogTypes, Logger, Security, version_string};

/// Status for usage and configuration errors, as mosquitto.
use super::exit::BROKER_USAGE as USAGE_ERROR;

/// An MQTT 5.0/3.1.1/3.1 broker that starts and behaves like mosquitto.
#[derive(Debug, Parser)]
#[command(
    name = "rbroker",
    version,
    disable_help_flag = true,
    disable_version_flag = true
)]
pub struct Args {
    /// Read the configuration from this mosquitto.conf file.
    #[arg(short = 'c', long = "config-file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,
    /// Listen on this port (repeatable). Without -c, the broker listens on loopback
    /// only; with a config file that defines listeners, -p is ignored.
    #[arg(short = 'p', long = "port", value_name = "PORT", action = ArgAction::Append)]
    pub ports: Vec<String>,
    /// Verbose: enable every log type, overriding the config file's logging.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,
    /// Run in the background as a daemon (configuration errors are reported first).
    #[arg(short = 'd', long = "daemon")]
    pub daemon: bool,
    /// Print the usage and exit (status 3, as mosquitto).
    #[arg(short = 'h', long = "help", action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Print the version and exit.
    #[arg(long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,
}

fn usage() -> String {
    format!(
        "{}\n\nrbroker is an MQTT v5.0/v3.1.1/v3.1 broker.\n\n\
         Usage: rbroker [-c config_file] [-d] [-h] [-p port] [-v]\n       \
         rbroker passwd ...  (manage a password file; rbroker passwd -h)\n\n \
         -c : specify the broker config file.\n \
         -d : put the broker into the background after starting.\n \
         -h : display this help.\n \
         -p : start the broker listening on the specified port.\n      \
         Not recommended in conjunction with the -c option.\n \
         -v : verbose mode - enable all logging types. This overrides\n      \
         any logging options given in the config file.\n",
        version_string()
    )
}

/// The line mosquitto prints for a command-line error.
fn error_line(error: &clap::Error) -> String {
    let argument = match error.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) => arg
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    };
    match error.kind() {
        ErrorKind::UnknownArgument => format!("Error: Unknown option '{argument}'."),
        ErrorKind::InvalidValue | ErrorKind::NoEquals
            if argument.starts_with("-p") || argument.starts_with("--port") =>
        {
            "Error: -p argument given, but no port specified.".to_string()
        }
        ErrorKind::InvalidValue | ErrorKind::NoEquals
            if argument.starts_with("-c") || argument.starts_with("--config") =>
        {
            "Error: -c argument given but no file specified.".to_string()
        }
        _ => format!("Error: {}", error.kind()),
    }
}

/// A command line that ends rbroker before it starts: what to print, where, and
/// the exit status.
#[derive(Debug)]
pub struct Stop {
    pub text: String,
    /// Help and version go to standard output, errors to standard error.
    pub to_stdout: bool,
    pub status: u8,
}

impl Stop {
    /// Prints the text where it belongs; the exit status.
    fn print(&self) -> ExitCode {
        if self.to_stdout {
            println!("{}", self.text);
        } else {
            eprint!("{}", self.text);
        }
        ExitCode::from(self.status)
    }
}

/// Parses the command line the way mosquitto does (help exits 3, as mosquitto).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, Stop> {
    match Args::try_parse_from(args) {
        Ok(args) => Ok(args),
        Err(error) if error.kind() == ErrorKind::DisplayHelp => Err(Stop {
            text: usage(),
            to_stdout: true,
            status: USAGE_ERROR,
        }),
        Err(error) if error.kind() == ErrorKind::DisplayVersion => Err(Stop {
            text: version_string(),
            to_stdout: true,
            status: super::exit::SUCCESS,
        }),
        Err(error) => Err(Stop {
            text: format!("{}\n{}", error_line(&error), usage()),
            to_stdout: false,
            status: USAGE_ERROR,
        }),
    }
}

/// Checks each `-p` value; mosquitto accepts 1..=65535.
fn parse_ports(values: &[String]) -> Result<Vec<u16>, String> {
    values
        .iter()
        .map(|value| {
            value
                .parse::<u16>()
                .ok()
                .filter(|port| *port > 0)
                .ok_or_else(|| format!("Error: Invalid port specified ({value})."))
        })
        .collect()
}

/// `rbroker`'s main: parse, configure, bind, serve until SIGINT/SIGTERM.
pub fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().collect();
    if arguments.get(1).map(String::as_str) == Some("passwd") {
        return super::passwd::main(&arguments[2..]);
    }
    let args = match parse(arguments) {
        Ok(args) => args,
        Err(stop) => return stop.print(),
    };
    crate::cli::init_tracing();
    // A store that reaches the file-size limit gets an error from write (EFBIG)
    // and stops acknowledging until it can write again, as on a full disk;
    // SIGXFSZ's default action would end the broker instead.
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to "ignore" has no preconditions.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    // Everything that can be wrong with the configuration is reported here, before
    // `-d` leaves the terminal.
    let prepared = match prepare(&args) {
        Ok(prepared) => prepared,
        Err(status) => return status,
    };
    if args.daemon
        && let Err(error) = daemonize()
    {
        prepared
            .log
            .error(format_args!("Unable to run as a daemon: {error}."));
        return ExitCode::FAILURE;
    }
    // Before the runtime's threads exist, growing the table costs no RCU wait.
    crate::broker::reserve_descriptor_table();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let error = anyhow::Error::from(error).context("cannot start the runtime");
            return super::exit::fail("rbroker", &error);
        }
    };
    runtime.block_on(async {
        // Handlers are installed before the broker binds, so a signal that arrives
        // right after "running" still means a graceful shutdown.
        match shutdown_signal() {
            Ok(shutdown) => serve(prepared, args.config_file, shutdown).await,
            Err(error) => {
                eprintln!("Error: cannot handle signals: {error}");
                ExitCode::FAILURE
            }
        }
    })
}

/// `-d`: into the background, as mosquitto does. The working directory is kept,
/// so relative paths in the config still name the same files on SIGHUP. Unlike
/// mosquitto, the command returns only once the broker serves (listeners bound,
/// store opened: see [`announce_ready`]), with status 0, or once it failed, with
/// status 1 and its error on the terminal: a client started right after finds it
/// listening. Called before any thread exists.
#[cfg(unix)]
fn daemonize() -> std::io::Result<()> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes. Close on
    // exec: no program the broker might start inherits them.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    let [read_end, write_end] = fds;
    // SAFETY: no other thread runs yet (the runtime is built after this), so
    // forking cannot leave a lock held by a thread that does not exist in the child.
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()),
        0 => {
            // SAFETY: closing the end this process does not use; setsid has no
            // preconditions (a forked child is never a group leader).
            unsafe {
                libc::close(read_end);
                libc::setsid();
            }
            READY.store(write_end, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        }
        _ => {
            // SAFETY: closing the child's end here, so that its exit is seen as EOF.
            unsafe { libc::close(write_end) };
            let mut byte = [0u8; 1];
            let ready = loop {
                // SAFETY: reading one byte into `byte`; EOF (0) means the child ended.
                let read = unsafe { libc::read(read_end, byte.as_mut_ptr().cast(), 1) };
                if read == -1
                    && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
                {
                    continue;
                }
                break read == 1;
            };
            // SAFETY: leaving without running destructors, which belong to the child.
            unsafe { libc::_exit(if ready { 0 } else { 1 }) }
        }
    }
}

/// The pipe end a daemon writes to once it serves (`-d`); -1 otherwise.
#[cfg(unix)]
static READY: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// Tells the command that started a daemon (`-d`) that the broker serves, and
/// sends the standard streams to /dev/null as a daemon's are. Does nothing in
/// the foreground.
#[cfg(unix)]
fn announce_ready() {
    let fd = READY.swap(-1, std::sync::atomic::Ordering::Relaxed);
    if fd < 0 {
        return;
    }
    // SAFETY: `fd` is the pipe's write end, owned here; /dev/null is opened and
    // duplicated onto the standard descriptors, which stay valid for the process.
    unsafe {
        libc::write(fd, b"1".as_ptr().cast(), 1);
        libc::close(fd);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for target in 0..3 {
                libc::dup2(null, target);
            }
            if null > 2 {
                libc::close(null);
            }
        }
    }
}

#[cfg(not(unix))]
fn announce_ready() {}

#[cfg(not(unix))]
fn daemonize() -> std::io::Result<()> {
    Err(std::io::Error::other("daemon mode needs a Unix system"))
}

/// The user a broker started as root switches to without a `user` line, as
/// mosquitto; `nobody` when it does not exist (named or by default).
const DEFAULT_USER: &str = "mosquitto";

/// `user`: a broker started as root switches to this user (`mosquitto` by default,
/// falling back to `nobody`) and its groups once its sockets are bound, as
/// mosquitto does; as another user nothing changes, and `user root` stays root
/// with a warning. glibc applies the switch to every thread of the process.
#[cfg(unix)]
fn drop_privileges(user: Option<&str>, sockets: &[PathBuf], log: &Logger) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    match user.unwrap_or(DEFAULT_USER) {
        "root" => {
            log.warning(format_args!(
                "Warning: rbroker should not be run as root/administrator."
            ));
            Ok(())
        }
        DEFAULT_USER => match switch_user(DEFAULT_USER, sockets) {
            Err(SwitchFailed::Missing(_)) => {
                log.warning(format_args!(
                    "Warning: Unable to drop privileges to '{DEFAULT_USER}' because this user does not exist. Trying 'nobody' instead."
                ));
                switch_user("nobody", sockets).map_err(|error| match error {
                    SwitchFailed::Missing(_) => "Unable to drop privileges to 'nobody'.".into(),
                    SwitchFailed::Failed(text) => text,
                })
            }
            other => other.map_err(SwitchFailed::into_message),
        },
        user => switch_user(user, sockets).map_err(SwitchFailed::into_message),
    }
}

/// Why a switch of user failed.
enum SwitchFailed {
    /// No such user.
    Missing(String),
    /// A system call refused.
    Failed(String),
}

impl SwitchFailed {
    fn into_message(self) -> String {
        match self {
            SwitchFailed::Missing(text) | SwitchFailed::Failed(text) => text,
        }
    }
}

/// Switches the process to `user` and its groups, handing it the unix socket
/// files the broker bound (mosquitto creates them as that user), so that it can
/// remove them at exit.
#[cfg(unix)]
fn switch_user(user: &str, sockets: &[PathBuf]) -> Result<(), SwitchFailed> {
    let name = std::ffi::CString::new(user)
        .map_err(|_| SwitchFailed::Missing(format!("Invalid user name \"{user}\".")))?;
    // SAFETY: `entry` and `buffer` outlive the call, which writes only into them;
    // the result pointer is read only when the call succeeded.
    let (uid, gid) = unsafe {
        let mut entry: libc::passwd = std::mem::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let mut buffer = vec![0 as libc::c_char; 16 * 1024];
        let status = libc::getpwnam_r(
            name.as_ptr(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        );
        if status != 0 || found.is_null() {
            return Err(SwitchFailed::Missing(format!(
                "Unable to drop privileges to '{user}' because this user does not exist."
            )));
        }
        (entry.pw_uid, entry.pw_gid)
    };
    for socket in sockets {
        std::os::unix::fs::chown(socket, Some(uid), Some(gid)).map_err(|error| {
            SwitchFailed::Failed(format!(
                "Unable to give {} to '{user}': {error}.",
                socket.display()
            ))
        })?;
    }
    // mosquitto's messages.
    let failed = |what: &str| {
        SwitchFailed::Failed(format!(
            "Error setting {what} whilst dropping privileges: {}.",
            std::io::Error::last_os_error()
        ))
    };
    // SAFETY: plain system calls on numbers; each result is checked.
    unsafe {
        if libc::initgroups(name.as_ptr(), gid) != 0 {
            return Err(failed("groups"));
        }
        if libc::setgid(gid) != 0 {
            return Err(failed("gid"));
        }
        if libc::setuid(uid) != 0 {
            return Err(failed("uid"));
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn drop_privileges(_user: Option<&str>, _sockets: &[PathBuf], _log: &Logger) -> Result<(), String> {
    Ok(())
}

/// What startup found out before binding: the configuration, its log, and the
/// password and ACL files.
pub struct Prepared {
    config: Config,
    log: Logger,
    security: Security,
    ports: Vec<u16>,
}

/// Runs the broker until `shutdown` completes; the exit status of `rbroker`.
pub async fn run(args: Args, shutdown: impl Future<Output = ()>) -> ExitCode {
    match prepare(&args) {
        Ok(prepared) => serve(prepared, args.config_file, shutdown).await,
        Err(status) => status,
    }
}

/// Reads the configuration and the files it names, and logs the startup lines;
/// `Err` is the exit status after a logged error.
pub fn prepare(args: &Args) -> Result<Prepared, ExitCode> {
    let startup_log = Logger::new(LogTypes::DEFAULT, crate::broker::LogDest::Stderr, true);
    let ports = match parse_ports(&args.ports) {
        Ok(ports) => ports,
        Err(line) => {
            eprintln!("{line}");
            return Err(ExitCode::from(USAGE_ERROR));
        }
    };
    let mut warnings = Vec::new();
    let mut config = match &args.config_file {
        None => Config::default(),
        Some(path) => {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(_) => {
                    startup_log.error(format_args!(
                        "Unable to open config file {}.",
                        path.display()
                    ));
                    return Err(ExitCode::from(USAGE_ERROR));
                }
            };
            let mut config = Config::default();
            match config.apply_text(&text, &path.display().to_string()) {
                Ok(found) => warnings = found,
                Err(error) => {
                    for line in error.to_string().lines() {
                        startup_log.error(format_args!("{line}"));
                    }
                    return Err(ExitCode::from(USAGE_ERROR));
                }
            }
            config
        }
    };
    if args.verbose {
        config.log_types = LogTypes::ALL;
    }
    let log = Logger::new(
        config.log_types,
        config.log_dest,
        config.connection_messages,
    )
    .with_timestamps(config.log_timestamp, config.log_timestamp_format.as_deref());
    let log = if config.log_topic {
        log.with_topic()
    } else {
        log
    };
    #[cfg(unix)]
    let log = if config.log_syslog {
        log.with_syslog(config.log_facility)
    } else {
        log
    };
    let log = match &config.log_file {
        None => log,
        Some(path) => match log.with_file(path) {
            Ok(log) => log,
            Err(error) => {
                startup_log.error(format_args!(
                    "Unable to open log file {} for writing ({error}).",
                    path.display()
                ));
                return Err(ExitCode::FAILURE);
            }
        },
    };
    log.notice(format_args!("{} starting", version_string()));
    match &args.config_file {
        Some(path) => log.notice(format_args!("Config loaded from {}.", path.display())),
        None => log.notice(format_args!("Using default config.")),
    }
    for warning in &warnings {
        log.warning(format_args!("{warning}"));
    }
    if !config.has_listeners() {
        log.notice(format_args!(
            "Starting in local only mode. Connections will only be possible from clients running on this machine."
        ));
        log.notice(format_args!(
            "Create a configuration file which defines a listener to allow remote access."
        ));
        log.notice(format_args!(
            "For more details see https://mosquitto.org/documentation/authentication-methods/"
        ));
        if args.verbose {
            log.notice(format_args!(
                "To watch this broker in a web browser, start it with -c FILE holding the lines \"listener 9001\", \"protocol websockets\", \"web_console true\" and \"allow_anonymous true\", then open http://localhost:9001/console/ (docs/learn-mqtt.md, section 12)."
            ));
        }
    } else if !ports.is_empty() {
        log.warning(format_args!(
            "Warning: -p is ignored because the configuration file defines listeners."
        ));
    }
    // A password or ACL file that cannot be read or parsed stops startup.
    let security = match Security::load(&config) {
        Ok((security, warnings)) => {
            for warning in warnings {
                log.warning(format_args!("{warning}"));
            }
            security
        }
        Err(error) => {
            for line in error.to_string().lines() {
                log.error(format_args!("{line}"));
            }
            return Err(ExitCode::from(error.exit_status()));
        }
    };
    Ok(Prepared {
        config,
        log,
        security,
        ports,
    })
}

/// Binds and serves what [`prepare`] read until `shutdown` completes.
pub async fn serve(
    prepared: Prepared,
    config_file: Option<PathBuf>,
    shutdown: impl Future<Output = ()>,
) -> ExitCode {
    let Prepared {
        config,
        log,
        security,
        ports,
    } = prepared;
    #[cfg(unix)]
    let (hangup, user2) = {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::hangup()),
            signal(SignalKind::user_defined2()),
        ) {
            (Ok(hangup), Ok(user2)) => (hangup, user2),
            (Err(error), _) | (_, Err(error)) => {
                log.error(format_args!(
                    "Error: cannot handle SIGHUP and SIGUSR2: {error}"
                ));
                return ExitCode::FAILURE;
            }
        }
    };
    let pid_file = config.pid_file.clone();
    let user = config.user.clone();
    let mut broker = match Broker::bind_with_security(config, security, log.clone(), &ports).await {
        Ok(broker) => broker,
        Err(error) => {
            log.error(format_args!("{error}"));
            log.error(format_args!(
                "Unable to start any listening sockets, exiting."
            ));
            return ExitCode::FAILURE;
        }
    };
    // As mosquitto: written once the broker is up, removed when it stops; a file
    // that cannot be written stops startup.
    if let Some(path) = &pid_file
        && let Err(error) = std::fs::write(path, format!("{}\n", std::process::id()))
    {
        log.error(format_args!(
            "Unable to write pid file {}: {error}.",
            path.display()
        ));
        return ExitCode::FAILURE;
    }
    if let Err(error) = drop_privileges(user.as_deref(), &broker.unix_socket_paths(), &log) {
        log.error(format_args!("{error}"));
        if let Some(path) = &pid_file {
            let _ = std::fs::remove_file(path);
        }
        return ExitCode::FAILURE;
    }
    // The store is read as the user the broker runs as, whose file it is.
    if let Err(error) = broker.open_store() {
        // The line already says "Error: ", which the log adds too.
        log.error(format_args!(
            "{}",
            error.strip_prefix("Error: ").unwrap_or(&error)
        ));
        if let Some(path) = &pid_file {
            let _ = std::fs::remove_file(path);
        }
        return ExitCode::FAILURE;
    }
    log.notice(format_args!("{} running", version_string()));
    announce_ready();
    #[cfg(unix)]
    let reloader = tokio::spawn(reload_on_hangup(
        hangup,
        config_file,
        broker.handle(),
        log.clone(),
    ));
    #[cfg(unix)]
    let tree_printer = tokio::spawn(print_tree_on_user2(user2, broker.handle()));
    broker.run(shutdown).await;
    #[cfg(unix)]
    {
        reloader.abort();
        tree_printer.abort();
    }
    if let Some(path) = &pid_file {
        let _ = std::fs::remove_file(path);
    }
    log.notice(format_args!("{} terminating", version_string()));
    ExitCode::SUCCESS
}

/// On each SIGHUP, re-reads the config file's auth options and the password and
/// ACL files, as mosquitto does; a bad file keeps the ones in force and says why.
#[cfg(unix)]
async fn reload_on_hangup(
    mut hangup: tokio::signal::unix::Signal,
    config_file: Option<PathBuf>,
    broker: BrokerHandle,
    log: Logger,
) {
    while hangup.recv().await.is_some() {
        if let Err(error) = log.reopen() {
            log.error(format_args!("Unable to reopen the log file: {error}."));
        }
        log.notice(format_args!("Reloading config."));
        let config = match config_file.as_deref().map(Config::from_file).transpose() {
            Ok(config) => config,
            Err(error) => {
                for line in error.to_string().lines() {
                    log.error(format_args!("{line}"));
                }
                log.error(format_args!(
                    "Keeping the password and ACL files loaded before the reload."
                ));
                continue;
            }
        };
        if let Some(next) = &config {
            for option in broker.config().needs_restart(next) {
                log.warning(format_args!(
                    "Warning: {option} changed in the configuration file; restart rbroker to apply it."
                ));
            }
        }
        match broker.reload_security(config.as_ref()) {
            Ok(warnings) => {
                for warning in warnings {
                    log.warning(format_args!("{warning}"));
                }
            }
            Err(error) => {
                for line in error.to_string().lines() {
                    log.error(format_args!("{line}"));
                }
                log.error(format_args!(
                    "Keeping the password and ACL files loaded before the reload."
                ));
            }
        }
    }
}

/// On each SIGUSR2, prints the subscription tree to standard output, as mosquitto.
#[cfg(unix)]
async fn print_tree_on_user2(mut user2: tokio::signal::unix::Signal, broker: BrokerHandle) {
    use std::io::Write;
    while user2.recv().await.is_some() {
        let tree = broker.subscription_tree();
        let mut stdout = std::io::stdout().lock();
        // Nowhere to report a closed stdout; the broker keeps serving.
        let _ = stdout.write_all(tree.as_bytes());
        let _ = stdout.flush();
    }
}

/// Installs SIGINT and SIGTERM handlers now; the future completes on either.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Completes on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_line(line: &str) -> Result<Args, Stop> {
        parse(line.split_whitespace().map(String::from))
    }

    #[test]
    fn accepts_mosquittos_options() {
        let args = parse_line("rbroker -c /etc/m.conf -p 1884 -p 1885 -v").expect("valid");
        assert_eq!(args.config_file, Some(PathBuf::from("/etc/m.conf")));
        assert_eq!(parse_ports(&args.ports), Ok(vec![1884, 1885]));
        assert!(args.verbose);
    }

    #[test]
    fn errors_read_like_mosquitto() {
        let stop = parse_line("rbroker -x").expect_err("unknown option");
        assert!(
            stop.text.starts_with("Error: Unknown option '-x'.\n"),
            "{stop:?}"
        );
        assert_eq!(stop.status, 3);
        let stop = parse_line("rbroker -p").expect_err("missing port");
        assert!(
            stop.text
                .starts_with("Error: -p argument given, but no port specified."),
            "{stop:?}"
        );
        let stop = parse_line("rbroker -h").expect_err("help");
        assert!(stop.to_stdout && stop.text.contains("Usage: rbroker"));
        assert_eq!(stop.status, 3);
        assert_eq!(
            parse_ports(&["0".into()]),
            Err("Error: Invalid port specified (0).".into())
        );
        assert!(parse_ports(&["http".into()]).is_err());
    }
}
