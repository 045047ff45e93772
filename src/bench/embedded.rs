//! The embedded broker: rbroker started inside rbench on 127.0.0.1 with an ephemeral
//! port, on its own runtime whose threads are named `rbroker-*`, so its CPU time is
//! read apart from the load generator's. With two or more CPUs the broker is pinned
//! to CPU 1 and the caller may pin itself to CPU 0, as the broker comparison does.

use std::io;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{alloc, process};
use crate::broker::{Broker, BrokerHandle, Config, LogDest, LogTypes, Logger};

/// Thread-name prefix of the embedded broker's threads.
pub const THREAD_PREFIX: &str = "rbroker";

/// A broker running inside this process until stopped or dropped.
pub struct EmbeddedBroker {
    addr: SocketAddr,
    handle: BrokerHandle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Whether the machine has a CPU for the broker and one for the load generator.
pub fn can_pin() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
}

impl EmbeddedBroker {
    /// Starts a broker with mosquitto's defaults, logging nothing, on one worker
    /// thread (pinned to CPU 1 when `pin`).
    pub fn start(pin: bool) -> io::Result<Self> {
        let config = Config {
            log_types: LogTypes::NONE,
            log_dest: LogDest::None,
            ..Config::default()
        };
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("{THREAD_PREFIX}-main"))
            .spawn(move || {
                let on_start = move || {
                    alloc::mark_broker_thread();
                    if pin {
                        let _ = process::pin_current_thread(1);
                    }
                };
                on_start();
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name(format!("{THREAD_PREFIX}-worker"))
                    .on_thread_start(on_start)
                    .enable_all()
                    .build();
                let runtime = match runtime {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let log = Logger::new(LogTypes::NONE, LogDest::None, false);
                    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
                    match Broker::bind_to(config, log, &[loopback]).await {
                        Ok(broker) => {
                            let addr = broker.local_addrs().first().copied();
                            let _ = ready_tx.send(
                                addr.map(|a| (a, broker.handle()))
                                    .ok_or_else(|| io::Error::other("no address")),
                            );
                            broker
                                .run(async move {
                                    let _ = stop_rx.await;
                                })
                                .await;
                        }
                        Err(error) => {
                            let _ = ready_tx.send(Err(error));
                        }
                    }
                });
            })?;
        let (addr, handle) = ready_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| io::Error::other("the embedded broker did not start"))??;
        Ok(EmbeddedBroker {
            addr,
            handle,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn handle(&self) -> &BrokerHandle {
        &self.handle
    }

    /// CPU time the broker's threads have used.
    pub fn cpu_time(&self) -> Duration {
        process::thread_cpu(THREAD_PREFIX).map_or(Duration::ZERO, |(broker, _)| broker)
    }

    /// Stops the broker and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
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

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.shutdown();
    }
}
