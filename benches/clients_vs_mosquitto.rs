//! rpub and rsub against mosquitto_pub and mosquitto_sub, side by side in one run,
//! on the same broker: a subscriber `-C 100001` (the retained ready message plus
//! every line) reading into a pipe, and a publisher `-l` sending 100,000 lines of
//! 64 bytes from a file, at QoS 0, 1 and 2.
//!
//! Both tool pairs run against mosquitto and then against rbroker, each with
//! `max_queued_messages 0` so that neither broker drops what a subscriber has
//! not read yet. The broker is
//! pinned to CPU 1 and both tools to CPU 0; rounds alternate which pair goes first
//! and the median is shown. Figures: wall time from starting the publisher until
//! the subscriber has every line and exits, the publisher's own wall time, CPU
//! time of both tools together and of the broker, and lines lost (a subscriber that stops receiving
//! for 3 s after the publisher ended is stopped and the missing lines counted).
//!
//! `cargo bench --bench clients_vs_mosquitto`; `MQTTKIT_BENCH_ROUNDS` (default 3)
//! and `MQTTKIT_BENCH_LINES` (default 100000) change the effort.

mod common;

use std::io::{Read, Write};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mqttkit::bench::process;

use common::{Broker, Kind, can_pin, installed, median, on_cpu, rounds};

/// Which publisher and subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tools {
    Ours,
    Mosquittos,
}

impl Tools {
    fn publisher(self) -> &'static str {
        match self {
            Tools::Ours => env!("CARGO_BIN_EXE_rpub"),
            Tools::Mosquittos => "mosquitto_pub",
        }
    }

    fn subscriber(self) -> &'static str {
        match self {
            Tools::Ours => env!("CARGO_BIN_EXE_rsub"),
            Tools::Mosquittos => "mosquitto_sub",
        }
    }
}

/// One run of one tool pair.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// Publisher start → subscriber exit with every line (or stopped), seconds.
    wall: f64,
    /// Publisher start → publisher exit, seconds.
    publisher_wall: f64,
    /// User + system CPU of both tools, seconds.
    cpu: f64,
    /// The broker's CPU during the run, seconds: fewer, fuller writes cost it less.
    broker_cpu: f64,
    lost: u64,
    /// Lines the subscriber printed.
    delivered: u64,
}

/// A child process reaped with wait4(2), which also reports its CPU time;
/// std's `Child::wait` does not.
struct Process {
    child: Child,
    ended: Option<(ExitStatus, Duration)>,
}

impl Process {
    fn try_end(&mut self) -> Option<(ExitStatus, Duration)> {
        if self.ended.is_none() {
            let mut status = 0;
            // SAFETY: zeroed rusage is a valid value for wait4 to fill in.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: wait4 on our own child's pid with valid out-pointers.
            let pid = unsafe {
                libc::wait4(
                    self.child.id() as libc::pid_t,
                    &mut status,
                    libc::WNOHANG,
                    &mut usage,
                )
            };
            if pid > 0 {
                let cpu = |t: libc::timeval| {
                    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
                };
                let status = std::os::unix::process::ExitStatusExt::from_raw(status);
                self.ended = Some((status, cpu(usage.ru_utime) + cpu(usage.ru_stime)));
            }
        }
        self.ended
    }

    fn kill(&mut self) {
        if self.ended.is_none() {
            let _ = self.child.kill();
            while self.try_end().is_none() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Counts the subscriber's output lines as they arrive; the first one (the
/// retained ready message) says it has subscribed. The thread ends at the end
/// of the output, and only then is the count final.
fn count_lines(
    mut stdout: impl Read + Send + 'static,
) -> (Arc<AtomicU64>, Receiver<()>, JoinHandle<()>) {
    let lines = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&lines);
    let (ready, ready_rx) = channel();
    let reader = std::thread::spawn(move || {
        let mut buffer = vec![0u8; 64 * 1024];
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 {
                break;
            }
            let new = buffer[..n].iter().filter(|b| **b == b'\n').count() as u64;
            if counter.fetch_add(new, Ordering::SeqCst) == 0 && new > 0 {
                let _ = ready.send(());
            }
        }
    });
    (lines, ready_rx, reader)
}

fn run_pair(
    tools: Tools,
    broker: &Broker,
    qos: &str,
    lines: u64,
    input: &std::path::Path,
    pinned: bool,
) -> Run {
    let port = broker.addr.port().to_string();
    let count = (lines + 1).to_string();
    let mut subscriber = on_cpu(tools.subscriber(), 0, pinned);
    subscriber
        .args(["-p", &port, "-q", qos, "-t", "bench/#", "-C", &count])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = subscriber.spawn().expect("start the subscriber");
    let (received, ready, reader) = count_lines(child.stdout.take().expect("piped stdout"));
    let mut subscriber = Process { child, ended: None };
    ready
        .recv_timeout(Duration::from_secs(10))
        .expect("the subscriber receives the retained ready message");

    let broker_before = process::sample(broker.pid()).expect("broker /proc readable");
    let started = Instant::now();
    let mut publisher = on_cpu(tools.publisher(), 0, pinned);
    publisher
        .args(["-p", &port, "-q", qos, "-t", "bench/lines", "-l"])
        .stdin(std::fs::File::open(input).expect("lines file"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut publisher = Process {
        child: publisher.spawn().expect("start the publisher"),
        ended: None,
    };
    let mut publisher_wall = None;
    let mut last_progress = (0, Instant::now());
    let (sub_cpu, wall) = loop {
        if publisher_wall.is_none() && publisher.try_end().is_some() {
            publisher_wall = Some(started.elapsed());
        }
        if let Some((_, cpu)) = subscriber.try_end() {
            break (cpu, started.elapsed());
        }
        let now = received.load(Ordering::SeqCst);
        if now != last_progress.0 {
            last_progress = (now, Instant::now());
        } else if publisher_wall.is_some() && last_progress.1.elapsed() > Duration::from_secs(3) {
            subscriber.kill();
            let cpu = subscriber.try_end().map(|(_, cpu)| cpu).unwrap_or_default();
            break (cpu, last_progress.1 - started);
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    while publisher.try_end().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the publisher hangs"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let publisher_wall = publisher_wall.unwrap_or_else(|| started.elapsed());
    let pub_cpu = publisher.try_end().map(|(_, cpu)| cpu).unwrap_or_default();
    let broker_after = process::sample(broker.pid()).expect("broker /proc readable");
    // The subscriber has exited; its last lines may still be in the pipe.
    let _ = reader.join();
    let got = received.load(Ordering::SeqCst).saturating_sub(1);
    Run {
        wall: wall.as_secs_f64(),
        publisher_wall: publisher_wall.as_secs_f64(),
        cpu: (sub_cpu + pub_cpu).as_secs_f64(),
        broker_cpu: broker_after
            .cpu
            .saturating_sub(broker_before.cpu)
            .as_secs_f64(),
        lost: lines.saturating_sub(got),
        delivered: got,
    }
}

fn main() {
    if !["mosquitto", "mosquitto_pub", "mosquitto_sub"]
        .iter()
        .all(|p| installed(p))
    {
        println!(
            "mosquitto and its clients are not installed (apt-get install mosquitto mosquitto-clients): nothing to compare against."
        );
        return;
    }
    let rounds = rounds();
    let lines: u64 = std::env::var("MQTTKIT_BENCH_LINES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let pinned = can_pin();
    let mut input = tempfile::NamedTempFile::new().expect("lines file");
    {
        let mut writer = std::io::BufWriter::new(input.as_file_mut());
        for n in 0..lines {
            // 64 bytes a line with its newline.
            writeln!(writer, "{n:08} {}", "x".repeat(54)).expect("write lines");
        }
    }
    println!(
        "rpub -l + rsub -C vs mosquitto_pub -l + mosquitto_sub -C, {lines} lines of 64 bytes; broker {}; {rounds} round(s), median shown\n",
        if pinned {
            "pinned to CPU 1, both tools to CPU 0"
        } else {
            "not pinned (fewer than 2 CPUs or no taskset)"
        }
    );
    println!(
        "{:<22} {:>30} {:>30} {:>8}",
        "broker, QoS", "rpub + rsub", "mosquitto_pub + _sub", "ratio"
    );
    for kind in [Kind::Mosquitto, Kind::Rbroker] {
        for qos in ["0", "1", "2"] {
            // No queue limit: a subscriber that falls behind the publisher (both
            // share CPU 0) must not have messages dropped by the broker, so lost
            // lines are the tools' own.
            let broker = Broker::start(kind, pinned, "max_queued_messages 0");
            // The retained message each subscriber receives first, so the
            // benchmark knows when it has subscribed.
            let ready = std::process::Command::new(env!("CARGO_BIN_EXE_rpub"))
                .args([
                    "-p",
                    &broker.addr.port().to_string(),
                    "-t",
                    "bench/ready",
                    "-m",
                    "ready",
                    "-r",
                    "-q",
                    "1",
                ])
                .status()
                .expect("publish the ready message");
            assert!(ready.success(), "ready message");
            let mut runs: Vec<(Tools, Run)> = Vec::new();
            for round in 0..rounds {
                let order = if round % 2 == 0 {
                    [Tools::Ours, Tools::Mosquittos]
                } else {
                    [Tools::Mosquittos, Tools::Ours]
                };
                for tools in order {
                    runs.push((
                        tools,
                        run_pair(tools, &broker, qos, lines, input.path(), pinned),
                    ));
                }
            }
            let pick = |tools: Tools, field: fn(&Run) -> f64| {
                let mut values: Vec<f64> = runs
                    .iter()
                    .filter(|(t, _)| *t == tools)
                    .map(|(_, r)| field(r))
                    .collect();
                median(&mut values)
            };
            let row = |label: &str, field: fn(&Run) -> f64, unit: &str| {
                let (ours, theirs) = (pick(Tools::Ours, field), pick(Tools::Mosquittos, field));
                println!(
                    "{:<22} {:>27.3} {unit:<2} {:>27.3} {unit:<2} {:>7.2}x",
                    label,
                    ours,
                    theirs,
                    ours / theirs.max(1e-9)
                );
            };
            row(&format!("{}, QoS {qos}", kind.name()), |r| r.wall, "s");
            row(
                "  per line delivered",
                |r| r.wall * 1e6 / r.delivered.max(1) as f64,
                "µs",
            );
            row("  publisher alone", |r| r.publisher_wall, "s");
            row("  CPU, both tools", |r| r.cpu, "s");
            row(
                "  ... per line delivered",
                |r| r.cpu * 1e6 / r.delivered.max(1) as f64,
                "µs",
            );
            row("  CPU, broker", |r| r.broker_cpu, "s");
            let (lost_ours, lost_theirs) = (
                pick(Tools::Ours, |r| r.lost as f64),
                pick(Tools::Mosquittos, |r| r.lost as f64),
            );
            println!(
                "{:<22} {:>30} {:>30}",
                "  lines lost", lost_ours, lost_theirs
            );
        }
    }
    println!(
        "\nratio: ours / mosquitto's (below 1 means rpub + rsub take less). Wall time stops when the subscriber has every line; with lines lost, it stops at the last one received, so compare the per-line rows."
    );
}
