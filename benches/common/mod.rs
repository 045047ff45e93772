//! What the side-by-side benchmarks share: the two brokers as processes on a
//! free loopback port (optionally pinned to CPU 1), CPU pinning checks and the
//! median of rounds.

// Each bench compiles this module on its own and uses part of it.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rbroker,
    Mosquitto,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Rbroker => "rbroker",
            Kind::Mosquitto => "mosquitto",
        }
    }
}

/// A broker process on 127.0.0.1, default settings plus `extra` mosquitto.conf
/// lines; killed when dropped.
pub struct Broker {
    child: Child,
    pub addr: SocketAddr,
    _config: tempfile::NamedTempFile,
}

impl Broker {
    pub fn start(kind: Kind, pinned: bool, extra: &str) -> Broker {
        Broker::try_start(kind, pinned, extra)
            .unwrap_or_else(|| panic!("{} did not start", kind.name()))
    }

    /// The broker, or `None` when it exits or does not listen within 5 s (a
    /// listener it cannot serve).
    pub fn try_start(kind: Kind, pinned: bool, extra: &str) -> Option<Broker> {
        Broker::try_start_logging(kind, pinned, extra, None)
    }

    /// [`Broker::try_start`], its stderr (the log) appended to `log` if given.
    pub fn try_start_logging(
        kind: Kind,
        pinned: bool,
        extra: &str,
        log: Option<&std::path::Path>,
    ) -> Option<Broker> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let program = match kind {
            Kind::Rbroker => env!("CARGO_BIN_EXE_rbroker").to_string(),
            Kind::Mosquitto => "mosquitto".to_string(),
        };
        let mut config = tempfile::NamedTempFile::new().expect("broker config");
        std::io::Write::write_all(
            &mut config,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\n{extra}\n").as_bytes(),
        )
        .expect("write the broker config");
        let mut command = on_cpu(&program, 1, pinned);
        let mut child = command
            .arg("-c")
            .arg(config.path())
            .stdout(Stdio::null())
            .stderr(match log {
                Some(path) => Stdio::from(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .expect("broker log file"),
                ),
                None => Stdio::null(),
            })
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(addr).is_err() {
            let exited = child.try_wait().ok().flatten().is_some();
            if exited || Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Some(Broker {
            child,
            addr,
            _config: config,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the broker with SIGTERM and waits (at most 30 s) for it to exit.
    pub fn terminate(&mut self) {
        // SAFETY: signalling our own child process.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the process has not exited.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A command for `program`, run under `taskset -c cpu` when `pinned`.
pub fn on_cpu(program: &str, cpu: usize, pinned: bool) -> Command {
    if pinned {
        let mut command = Command::new("taskset");
        command.args(["-c", &cpu.to_string(), program]);
        command
    } else {
        Command::new(program)
    }
}

/// True when `program` is on PATH.
pub fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Two or more CPUs and `taskset`: brokers go on CPU 1, clients on CPU 0.
pub fn can_pin() -> bool {
    std::thread::available_parallelism()
        .map(|n| n.get() >= 2)
        .unwrap_or(false)
        && installed("taskset")
}

/// `MQTTKIT_BENCH_ROUNDS`, default 3.
pub fn rounds() -> usize {
    std::env::var("MQTTKIT_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1)
}

pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

/// `MQTTKIT_BENCH_SCALE`, default 1.0: how much work each scenario does.
pub fn scale() -> f64 {
    std::env::var("MQTTKIT_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

/// Pins the load generator to CPU 0 when brokers can have CPU 1; whether it did,
/// and the current-thread runtime the load runs on.
pub fn load_runtime() -> (bool, tokio::runtime::Runtime) {
    let pinned = can_pin();
    // The load generator opens thousands of sockets: no descriptor-table growth
    // (and its RCU wait) in the middle of a measurement.
    mqttkit::broker::reserve_descriptor_table();
    if pinned {
        mqttkit::bench::process::pin_current_thread(0).expect("pin the load generator to CPU 0");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    (pinned, runtime)
}
