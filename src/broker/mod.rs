//! The broker as a library; `rbroker` is a thin main over it, and tests and `rbench`
//! embed it in-process.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use mqttkit::broker::{Broker, Config, Logger};
//! let config = Config::default();
//! let log = Logger::new(config.log_types, config.log_dest, config.connection_messages);
//! let broker = Broker::bind_to(config, log, &["127.0.0.1:0".parse().unwrap()]).await?;
//! println!("listening on {:?}", broker.local_addrs());
//! broker.run(async { tokio::signal::ctrl_c().await.ok(); }).await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! * [`config`]: settings and the mosquitto.conf subset
//! * [`auth`]: password file, ACL file, anonymous access, per listener
//! * `listener`: binding (TCP, unix sockets) and the accept loop, with TLS and
//!   WebSocket handshakes
//! * `transport`: the byte stream a connection runs over (TCP, unix, TLS, WebSocket)
//! * `connection`: one task per client: framing, CONNECT, packets, writes
//! * `keepalive`: one task checking every connection's keep-alive and connect deadline
//! * `session`: sans-I/O QoS state per client
//! * `router`: shared state (sessions, subscription index, retained store) and routing
//! * `topic_tree`, `retain`: the subscription index and the retained store
//! * `store`: the durability boundary; `sys`: `$SYS`; [`log`]: mosquitto's log lines
//! * [`memory`]: the counting allocator behind `memory_limit`
//! * `will`: when a will goes, and the timers (will delay, session expiry)
//! * `subscription_dump`: the subscription tree printed on SIGUSR2
//! * `bridge`: `connection` blocks, rbroker as a client of another broker

pub mod auth;
mod bridge;
pub mod config;
pub(crate) mod connection;
mod console;
mod keepalive;
mod listener;
pub mod log;
pub mod memory;
pub mod message;
mod retain;
mod router;
pub mod session;
mod stats;
pub mod store;
mod subscription_dump;
mod sys;
mod topic_tree;
mod transport;
mod will;

pub use auth::{Security, SecurityError};
pub use config::{AuthConfig, Config, ConfigError, ListenerConfig, LogDest, LogTypes};
pub use listener::reserve_descriptor_table;
pub use log::Logger;
pub use sys::version_string;
pub use transport::Transport;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use router::Router;
use store::Store;

/// A broker with its listeners bound, ready to run.
pub struct Broker {
    router: Arc<Router>,
    listeners: Vec<listener::BoundListener>,
    bridges: Vec<bridge::Bridge>,
}

/// Records the `$SYS` lifetime totals in the store once a second while they
/// change, so a restart (even after a crash) continues from about where they were.
async fn record_totals(router: Arc<Router>, stop: CancellationToken) {
    let mut last = router.stats.totals();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
        }
        let now = router.stats.totals();
        if now != last {
            router.store.record(store::Change::Totals(now));
            last = now;
        }
    }
}

impl Broker {
    /// Binds what `config` asks for: its listeners or, with none, loopback on each of
    /// `ports` (1883 when empty), as mosquitto 2.0 does. Logs the "Opening ..." lines.
    pub async fn bind(config: Config, log: Logger, ports: &[u16]) -> io::Result<Broker> {
        let security = load_security(&config)?;
        Broker::bind_with_security(config, security, log, ports).await
    }

    /// [`Broker::bind`] with password and ACL files loaded already (by
    /// [`Security::load`], whose errors name the file and line).
    pub async fn bind_with_security(
        config: Config,
        security: Security,
        log: Logger,
        ports: &[u16],
    ) -> io::Result<Broker> {
        check_memory_limit(&config)?;
        // Before listening: no client waits while the table grows.
        listener::reserve_descriptor_table();
        let ports = if ports.is_empty() { &[1883][..] } else { ports };
        let tls = listener::tls_configs(&config)?;
        let addresses = listener::addresses(&config, ports, &log).await?;
        let mut listeners = if addresses.is_empty() {
            Vec::new()
        } else {
            let websockets = |index: Option<usize>| {
                config.listener_transport(index).protocol == config::ListenerProtocol::WebSockets
            };
            listener::bind_all(&addresses, &websockets, &log)?
        };
        for bound in &mut listeners {
            bound.tls = tls.get(&bound.index).cloned();
        }
        listeners.extend(listener::bind_unix_listeners(&config, &log)?);
        listener::announce_consoles(&config, &listeners, &log);
        Broker::with_listeners(config, security, log, listeners)
    }

    /// Binds exactly `addresses` (port 0 picks a free port), whatever `config` lists.
    pub async fn bind_to(
        config: Config,
        log: Logger,
        addresses: &[SocketAddr],
    ) -> io::Result<Broker> {
        let security = load_security(&config)?;
        check_memory_limit(&config)?;
        listener::reserve_descriptor_table();
        let addresses: Vec<_> = addresses.iter().map(|address| (*address, None)).collect();
        let listeners = listener::bind_all(&addresses, &|_| false, &log)?;
        Broker::with_listeners(config, security, log, listeners)
    }

    fn with_listeners(
        config: Config,
        security: Security,
        log: Logger,
        listeners: Vec<listener::BoundListener>,
    ) -> io::Result<Broker> {
        // TLS files of bridges are read now: one that does not load stops startup.
        let bridges = bridge::prepare(&config.bridges.list)?;
        let router = Arc::new(Router::new(config, log, Store::Memory, security));
        for bridge in &bridges {
            router.add_bridge_counters(bridge.name(), Arc::clone(&bridge.counters));
        }
        Ok(Broker {
            router,
            listeners,
            bridges,
        })
    }

    /// `persistence true`: reads the store file back (its sessions, retained
    /// messages, wills and `$SYS` totals become the broker's), rewrites it
    /// compacted, and starts the journal that keeps it from now on. Call after the
    /// broker switched to its user (the file is that user's) and before
    /// [`Broker::run`]. Without `persistence` it does nothing. `Err` is the line
    /// startup prints before exiting with status 1.
    pub fn open_store(&mut self) -> Result<(), String> {
        let persistence = self.router.config.persistence.clone();
        if !persistence.enabled {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let path = persistence.path();
        let log = self.router.log.clone();
        let (image, file, len, recovery) = store::recover::open(&path, &log)?;
        let settings = store::journal::JournalSettings {
            path: path.clone(),
            mode: persistence.mode,
            autosave_interval: persistence.autosave_interval,
            autosave_on_changes: persistence.autosave_on_changes,
            compact_at: store::journal::COMPACT_AT,
            frame_cap: store::journal::FRAME_CAP,
        };
        let Some(router) = Arc::get_mut(&mut self.router) else {
            return Err("Error: the store must be opened before the broker runs.".into());
        };
        // Changes made while restoring (a will whose delay passed) wait in the
        // journal until its writer starts with the recovered image.
        let journal = store::Journal::new(persistence.mode);
        router.store = Store::Kept(Arc::clone(&journal));
        store::recover::restore(&self.router, &image);
        let (_, retained, sessions) = image.counts();
        journal
            .start(settings, image, file, len, log.clone())
            .map_err(|error| format!("Error: cannot start the store's writer: {error}."))?;
        log.notice(format_args!(
            "Restored {retained} retained messages and {sessions} sessions from {} ({} records; {len} bytes after compaction) in {} ms.",
            path.display(),
            recovery.records,
            started.elapsed().as_millis()
        ));
        Ok(())
    }

    /// A handle for reading the broker's figures, valid while and after it runs.
    pub fn handle(&self) -> BrokerHandle {
        BrokerHandle {
            router: Arc::clone(&self.router),
        }
    }

    /// The addresses actually bound.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(listener::BoundListener::local_addr)
            .collect()
    }

    /// The files of the unix socket listeners.
    pub fn unix_socket_paths(&self) -> Vec<std::path::PathBuf> {
        self.listeners
            .iter()
            .filter_map(|bound| match &bound.socket {
                listener::ListenSocket::Unix(_, file) => Some(file.0.clone()),
                listener::ListenSocket::Tcp(_) => None,
            })
            .collect()
    }

    /// Serves clients until `shutdown` completes, then closes every connection
    /// (without publishing wills) and returns once all connection tasks ended.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let token = CancellationToken::new();
        let tasks = TaskTracker::new();
        // Not one of `tasks`: it wakes the parked connections shutdown waits for,
        // and stops once they all ended.
        let parking_stop = CancellationToken::new();
        if let Some(parking) = connection::park::Parking::new(tasks.clone())
            && self.router.parking.set(Arc::clone(&parking)).is_ok()
        {
            tokio::spawn(connection::park::run(parking, parking_stop.clone()));
        }
        // Bridges subscribe on this broker before anyone can publish to it.
        let bridges: Vec<_> = self
            .bridges
            .into_iter()
            .map(|bridge| bridge::attach_at_start(bridge, Arc::clone(&self.router)))
            .collect();
        let mut counts: std::collections::HashMap<Option<usize>, listener::OpenConnections> =
            std::collections::HashMap::new();
        for listener in self.listeners {
            let count = Arc::clone(counts.entry(listener.index).or_default());
            tasks.spawn(listener::accept_loop(
                listener,
                count,
                Arc::clone(&self.router),
                tasks.clone(),
                token.clone(),
            ));
        }
        tasks.spawn(keepalive::sweep(Arc::clone(&self.router), token.clone()));
        for bridge in bridges {
            tasks.spawn(bridge::run(bridge, token.clone()));
        }
        if self.router.config.sys_interval > 0 {
            tasks.spawn(sys::run(Arc::clone(&self.router), token.clone()));
        }
        if let Some(lines) = self.router.log.take_topic_lines() {
            tasks.spawn(sys::publish_log_lines(
                lines,
                Arc::clone(&self.router),
                token.clone(),
            ));
        }
        if let Store::Kept(_) = &self.router.store {
            tasks.spawn(record_totals(Arc::clone(&self.router), token.clone()));
        }
        shutdown.await;
        token.cancel();
        self.router.shut_down_connections();
        tasks.close();
        tasks.wait().await;
        parking_stop.cancel();
        self.router.timers.stop().await;
        if let Store::Kept(journal) = &self.router.store {
            self.router
                .store
                .record(store::Change::Totals(self.router.stats.totals()));
            let journal = Arc::clone(journal);
            let _ = tokio::task::spawn_blocking(move || journal.stop()).await;
        }
    }

    /// Runs the broker on the current tokio runtime in the background.
    pub fn start(self) -> RunningBroker {
        let addresses = self.local_addrs();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(self.run(async move { stopped.cancelled().await }));
        RunningBroker {
            addresses,
            stop,
            task: Some(task),
        }
    }
}

/// Loads the password and ACL files `config` names; a file that cannot be read or
/// parsed is an `InvalidInput` error naming it.
fn load_security(config: &Config) -> io::Result<Security> {
    Security::load(config)
        .map(|(security, _warnings)| security)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidInput, error.to_string()))
}

/// With `memory_limit` set, starts counting the heap, or refuses to start when the
/// program's global allocator cannot count (the limit would silently be absent).
fn check_memory_limit(config: &Config) -> io::Result<()> {
    if config.memory_limit.is_some() && !memory::start_counting() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "memory_limit is set, but this program's global allocator is not mqttkit::broker::memory::CountingAllocator.",
        ));
    }
    Ok(())
}

/// Reads a broker's figures (the numbers behind `$SYS`), for embedders and tests.
#[derive(Clone)]
pub struct BrokerHandle {
    router: Arc<Router>,
}

/// The broker's figures at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrokerFigures {
    /// Sessions, connected or kept for a persistent client.
    pub sessions: usize,
    pub clients_connected: u64,
    pub subscriptions: usize,
    pub retained_messages: usize,
    /// QoS 1/2 messages waiting or in flight for some client.
    pub queued_messages: usize,
    pub publish_received: u64,
    pub publish_sent: u64,
    pub publish_dropped: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    /// Connections idle without a task now (`connection/park.rs`).
    pub parked_connections: usize,
    /// Times a connection parked since the broker started.
    pub parks: u64,
}

impl BrokerHandle {
    /// Reads the password and ACL files again, with the auth options of `config`
    /// (a re-read config file; `None` keeps the options the broker started with),
    /// and swaps them in whole; on an error the files in force stay. Clients whose
    /// user was removed, whose password changed, or who are anonymous where that
    /// is no longer allowed are disconnected. `Ok` carries warnings to log.
    pub fn reload_security(&self, config: Option<&Config>) -> Result<Vec<String>, SecurityError> {
        let config = config.unwrap_or(&self.router.config);
        Security::reloadable(&self.router.config, config)?;
        let (security, warnings) = Security::load(config)?;
        let security = Arc::new(security);
        let previous = self.router.security.swap(Arc::clone(&security));
        self.router
            .revoke(|principal| !security.still_admits(&previous, principal));
        Ok(warnings)
    }

    /// The configuration the broker runs with.
    pub fn config(&self) -> &Config {
        &self.router.config
    }

    /// The subscription tree as mosquitto prints it on SIGUSR2.
    pub fn subscription_tree(&self) -> String {
        let subscriptions = self.router.subscription_list();
        subscription_dump::render(
            subscriptions
                .iter()
                .map(|(filter, client_id, qos)| (filter.as_str(), client_id.as_ref(), *qos)),
        )
    }

    pub fn figures(&self) -> BrokerFigures {
        let snapshot = self.router.snapshot();
        let stats = &self.router.stats;
        let get = stats::Stats::get;
        BrokerFigures {
            sessions: snapshot.sessions,
            clients_connected: get(&stats.clients_connected),
            subscriptions: snapshot.subscriptions,
            retained_messages: snapshot.retained_count,
            queued_messages: snapshot.queued_messages,
            publish_received: get(&stats.publish_received),
            publish_sent: get(&stats.publish_sent),
            publish_dropped: get(&stats.publish_dropped),
            bytes_received: get(&stats.bytes_received),
            bytes_sent: get(&stats.bytes_sent),
            parked_connections: self.router.parking.get().map_or(0, |p| p.count()),
            parks: self.router.parking.get().map_or(0, |p| p.parks()),
        }
    }
}

/// A broker running in the background; see [`Broker::start`].
pub struct RunningBroker {
    addresses: Vec<SocketAddr>,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl RunningBroker {
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addresses
    }

    /// Stops the broker and waits for every connection to close.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningBroker {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
