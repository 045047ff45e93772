//! Test fixtures: an in-process broker on 127.0.0.1:0, a raw MQTT client that speaks
//! bytes through the project's codec, and access to the real mosquitto tools.
//!
//! Every wait has a deadline and fails the test when it passes; nothing sleeps and
//! hopes.

pub mod certs;
pub mod credentials;
pub mod devtools;
pub mod durable;
pub mod files;
pub mod logged;
pub mod mosquitto;
pub mod outage;
pub mod paho;
pub mod raw;
pub mod target;
pub mod tools;
pub mod ws;

use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use mqttkit::broker::{Broker, BrokerFigures, BrokerHandle, Config, LogTypes, Logger};

pub use raw::RawClient;

/// How long any single expected event may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// rbroker running in-process on its own runtime thread; stops when dropped.
pub struct TestBroker {
    addr: SocketAddr,
    log: Logger,
    handle: BrokerHandle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TestBroker {
    /// A broker with mosquitto's defaults, but no `$SYS` updates.
    pub fn start() -> Self {
        Self::with_config(Config {
            sys_interval: 0,
            ..Config::default()
        })
    }

    pub fn with_config(config: Config) -> Self {
        let log = Logger::in_memory(LogTypes::ALL);
        let broker_log = log.clone();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("test runtime");
            runtime.block_on(async move {
                let loopback: SocketAddr = "127.0.0.1:0".parse().expect("address");
                let broker = Broker::bind_to(config, broker_log, &[loopback])
                    .await
                    .expect("bind");
                addr_tx
                    .send((broker.local_addrs()[0], broker.handle()))
                    .expect("report address");
                broker
                    .run(async move {
                        let _ = stop_rx.await;
                    })
                    .await;
            });
        });
        let (addr, handle) = addr_rx.recv_timeout(WAIT).expect("broker started");
        TestBroker {
            addr,
            log,
            handle,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The broker's figures now (they stay readable after [`TestBroker::stop`]).
    pub fn figures(&self) -> BrokerFigures {
        self.handle.figures()
    }

    /// Stops the broker gracefully and waits until every connection task ended.
    pub fn stop(&mut self) {
        self.shutdown();
    }

    /// The broker's log lines so far (mosquitto's wording, without timestamps).
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lines()
    }

    /// Waits until `count` log lines contain `text`.
    pub fn wait_for_log_count(&self, text: &str, count: usize) {
        let deadline = std::time::Instant::now() + WAIT;
        while std::time::Instant::now() < deadline {
            if self
                .log_lines()
                .iter()
                .filter(|line| line.contains(text))
                .count()
                >= count
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!(
            "fewer than {count} log lines containing {text:?} within {WAIT:?}; log:\n{}",
            self.log_lines().join("\n")
        );
    }

    /// Waits until `count` connections are parked (held without a task).
    pub fn wait_for_parked(&self, count: usize) {
        let deadline = std::time::Instant::now() + WAIT;
        while std::time::Instant::now() < deadline {
            if self.figures().parked_connections == count {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!(
            "{} connections parked, not {count}, within {WAIT:?}",
            self.figures().parked_connections
        );
    }

    /// Waits until a log line contains `text`.
    pub fn wait_for_log(&self, text: &str) {
        let deadline = std::time::Instant::now() + WAIT;
        while std::time::Instant::now() < deadline {
            if self.log_lines().iter().any(|line| line.contains(text)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!(
            "no log line containing {text:?} within {WAIT:?}; log:\n{}",
            self.log_lines().join("\n")
        );
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.shutdown();
    }
}
