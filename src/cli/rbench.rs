//! `rbench`'s command line: the QoS comparison (no subcommand) and the load modes
//! `conn`, `pub`, `sub` and `pubsub`.
//!
//! Without `-h` rbench starts its own broker (the embedded rbroker) and measures
//! that; with `-h` it measures any broker, or several nodes of a cluster. Reports go
//! to stdout (table, `--json` or `--csv`); progress goes to stderr (a bar on a
//! terminal, a line per `--interval` otherwise). Ctrl-C stops the run and reports
//! what was measured. Exit status: 0 done, 1 failed, 2 usage error.

use super::exit;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{ArgAction, Args as ClapArgs, Parser, Subcommand, ValueEnum};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::args::ColorChoice;
use super::args::{ConnectArgs, parse_duration, parse_qos};
use crate::bench::conn::{ConnPlan, open_connections};
use crate::bench::embedded::{self, EmbeddedBroker, THREAD_PREFIX};
use crate::bench::load::{self, Pace, Plan, Progress, Until};
use crate::bench::qos::{CpuMeter, QosPlan, compare};
use crate::bench::report::{self, ConnReport, Context, LoadReport, thousands};
use crate::bench::{alloc, process};
use crate::protocol::QoS;

/// Measure an MQTT broker: the QoS 0/1/2 comparison by default, or a load mode.
#[derive(Debug, Parser)]
#[command(
    name = "rbench",
    version,
    disable_help_flag = true,
    disable_version_flag = true,
    after_help = "Without -h, rbench starts its own broker on 127.0.0.1 and measures it."
)]
pub struct Args {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Messages per QoS level (QoS comparison).
    #[arg(short = 'n', long = "messages", default_value_t = 10_000)]
    pub messages: u64,
    /// Payload size in bytes (QoS comparison).
    #[arg(short = 's', long = "size", default_value_t = 64)]
    pub size: usize,
    /// Messages per level sent one at a time to measure latency [default: n/10, 100..=2000].
    #[arg(long = "latency-messages")]
    pub latency_messages: Option<u64>,
    #[command(subcommand)]
    pub mode: Option<Mode>,
    /// Print help.
    #[arg(long = "help", action = ArgAction::Help, global = true)]
    pub help: Option<bool>,
    /// Print the version.
    #[arg(long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,
}

#[derive(Debug, Clone, ClapArgs)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// One JSON document on stdout.
    #[arg(long, global = true, conflicts_with = "csv")]
    pub json: bool,
    /// CSV on stdout.
    #[arg(long, global = true)]
    pub csv: bool,
    /// Colour the table: auto (a terminal, NO_COLOR unset), always or never.
    #[arg(long, value_enum, default_value = "auto", global = true)]
    pub color: ColorChoice,
    /// No progress on stderr.
    #[arg(long, global = true)]
    pub quiet: bool,
    /// Time between progress lines when stderr is not a terminal.
    #[arg(long, value_parser = parse_duration, default_value = "1s", global = true)]
    pub interval: Duration,
    /// PID of the measured broker on this machine, to report its CPU time and memory.
    #[arg(long = "broker-pid", global = true)]
    pub broker_pid: Option<u32>,
    /// Do not pin the embedded broker and rbench to separate CPUs.
    #[arg(long = "no-pin", global = true)]
    pub no_pin: bool,
}

#[derive(Debug, Subcommand)]
pub enum Mode {
    /// Open many connections at a rate; report connect rate, latency, failures and the
    /// broker's memory per connection.
    Conn(ConnArgs),
    /// Publish from many clients.
    Pub(PubArgs),
    /// Subscribe with many clients.
    Sub(SubArgs),
    /// Publishers and subscribers together: 1:1 pairs, fan-in or fan-out.
    Pubsub(PubSubArgs),
}

#[derive(Debug, ClapArgs)]
pub struct ConnArgs {
    /// Connections to open.
    #[arg(short = 'c', long = "clients", default_value_t = 1000)]
    pub clients: usize,
    /// New connections per second [default: as fast as --concurrency allows].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Connection attempts under way at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Give up on one attempt after this long.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub timeout: Duration,
    /// Keep the connections open this long after the report.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub hold: Duration,
}

/// How long a load runs and what it sends.
#[derive(Debug, ClapArgs)]
pub struct RunArgs {
    #[arg(short = 'q', long = "qos", value_parser = parse_qos, default_value = "0")]
    pub qos: QoS,
    /// Payload size in bytes (24 or more carry rbench's stamp, for latency and loss).
    #[arg(short = 's', long = "size", default_value_t = 64)]
    pub size: usize,
    /// Messages per client (publisher; subscriber in `sub`).
    #[arg(short = 'n', long = "count", conflicts_with = "duration")]
    pub count: Option<u64>,
    /// How long to run after the warm-up [default: 10s].
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Time at the start that is not counted.
    #[arg(long, value_parser = parse_duration, default_value = "0s")]
    pub warmup: Duration,
}

impl RunArgs {
    fn until(&self) -> Until {
        match (self.count, self.duration) {
            (Some(count), _) => Until::Count(count),
            (None, Some(duration)) => Until::Duration(duration),
            (None, None) => Until::Duration(Duration::from_secs(10)),
        }
    }
}

#[derive(Debug, ClapArgs)]
pub struct PubArgs {
    /// Publishing clients.
    #[arg(short = 'c', long = "clients", default_value_t = 1)]
    pub clients: usize,
    /// Topic; %i is the client index, %c the client id.
    #[arg(short = 't', long = "topic", default_value = "rbench/%i")]
    pub topic: String,
    /// Messages per second over all clients [default: as fast as the broker takes them].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Messages per second per client.
    #[arg(long = "rate-per-client", conflicts_with = "rate")]
    pub rate_per_client: Option<f64>,
    /// Unacknowledged QoS 1/2 messages per client.
    #[arg(long, default_value_t = 20)]
    pub inflight: usize,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, ClapArgs)]
pub struct SubArgs {
    /// Subscribing clients.
    #[arg(short = 'c', long = "clients", default_value_t = 1)]
    pub clients: usize,
    /// Topic filter; %i is the client index, %c the client id.
    #[arg(short = 't', long = "topic", default_value = "rbench/#")]
    pub topic: String,
    #[command(flatten)]
    pub run: RunArgs,
}

/// How publishers and subscribers are arranged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shape {
    /// Publisher i → subscriber i, each pair on its own topic.
    Pairs,
    /// Every publisher → one subscriber.
    FanIn,
    /// One publisher → every subscriber.
    FanOut,
}

#[derive(Debug, ClapArgs)]
pub struct PubSubArgs {
    #[arg(long, value_enum, default_value = "pairs")]
    pub shape: Shape,
    /// Pairs, publishers (fan-in) or subscribers (fan-out).
    #[arg(short = 'c', long = "clients", default_value_t = 1)]
    pub clients: usize,
    /// Fixed rate in messages per second over all publishers, instead of the
    /// closed-loop window.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Closed loop: most messages published and not yet delivered.
    #[arg(long, default_value_t = 500)]
    pub window: u64,
    /// Unacknowledged QoS 1/2 messages per publisher.
    #[arg(long, default_value_t = 20)]
    pub inflight: usize,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `rbench`'s main.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) => {
            let _ = error.print();
            return match error.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(exit::USAGE_OR_MISMATCH),
            };
        }
    };
    args.output.color.apply();
    crate::cli::init_tracing();
    // rbench holds thousands of sockets too: grow its descriptor table now, not
    // while connecting (see the function).
    crate::broker::reserve_descriptor_table();
    let embedded = args.connect.hosts.is_empty();
    let pin = embedded && !args.output.no_pin && embedded::can_pin();
    if pin {
        let _ = process::pin_current_thread(0);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let error = anyhow::Error::from(error).context("cannot start the runtime");
            return exit::fail("rbench", &error);
        }
    };
    match runtime.block_on(run(args, pin)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => exit::fail("rbench", &anyhow::Error::msg(message)),
    }
}

/// CPU time of rbench itself and of the broker (embedded threads, or `--broker-pid`).
struct Meter {
    embedded: bool,
    broker_pid: Option<u32>,
}

impl CpuMeter for Meter {
    fn sample(&self) -> (Duration, Option<Duration>) {
        let (broker_threads, all) = process::thread_cpu(THREAD_PREFIX).unwrap_or_default();
        if self.embedded {
            (all.saturating_sub(broker_threads), Some(broker_threads))
        } else {
            let broker = self
                .broker_pid
                .and_then(|pid| process::sample(pid).ok())
                .map(|s| s.cpu);
            (all, broker)
        }
    }
}

/// Where progress goes while a run is under way.
struct Display {
    interactive: bool,
    enabled: bool,
    interval: Duration,
}

impl Display {
    /// Shows progress of `label` until the returned guard is dropped.
    fn track(&self, label: String, progress: Arc<Progress>, counted: Counted) -> Tracking {
        if !self.enabled {
            return Tracking { task: None };
        }
        let interactive = self.interactive;
        let interval = self.interval;
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let bar = interactive.then(|| {
                let bar = indicatif::ProgressBar::new(0);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{prefix:>8} [{bar:30}] {pos}/{len} {msg}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_prefix(label.clone());
                bar
            });
            let tick = if interactive {
                Duration::from_millis(100)
            } else {
                interval
            };
            loop {
                tokio::time::sleep(tick).await;
                let published = progress.published.load(Ordering::Relaxed);
                let delivered = progress.delivered.load(Ordering::Relaxed);
                let expected = progress.expected.load(Ordering::Relaxed);
                let seconds = started.elapsed().as_secs_f64().max(1e-3);
                match &bar {
                    Some(bar) => {
                        bar.set_length(expected.max(delivered));
                        bar.set_position(delivered);
                        bar.set_message(format!(
                            "{} {}/s",
                            thousands(delivered as f64 / seconds),
                            counted.unit()
                        ));
                    }
                    None => match counted {
                        Counted::Messages => eprintln!(
                            "rbench: {label} {seconds:.1}s published {published} delivered {delivered} ({} msg/s)",
                            thousands(delivered as f64 / seconds)
                        ),
                        Counted::Connections => eprintln!(
                            "rbench: {label} {seconds:.1}s connected {delivered} of {expected} ({} conn/s)",
                            thousands(delivered as f64 / seconds)
                        ),
                    },
                }
            }
        });
        Tracking { task: Some(task) }
    }
}

/// What a progress display counts: messages delivered, or connections answered.
#[derive(Debug, Clone, Copy)]
enum Counted {
    Messages,
    Connections,
}

impl Counted {
    fn unit(self) -> &'static str {
        match self {
            Counted::Messages => "msg",
            Counted::Connections => "conn",
        }
    }
}

/// Stops a progress display when dropped.
struct Tracking {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Tracking {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn run(args: Args, pin: bool) -> Result<(), String> {
    let stop = CancellationToken::new();
    let interrupted = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("rbench: stopping; reporting what was measured");
            interrupted.cancel();
        }
    });
    if args.connect.hosts.is_empty() && args.connect.tls.options().enabled() {
        return Err("the embedded broker does not serve TLS yet: give -h for a TLS broker".into());
    }
    let broker = if args.connect.hosts.is_empty() {
        Some(
            EmbeddedBroker::start(pin)
                .map_err(|e| format!("cannot start the embedded broker: {e}"))?,
        )
    } else {
        None
    };
    let named: Vec<(SocketAddr, String)> = match &broker {
        Some(broker) => vec![(broker.addr(), broker.addr().ip().to_string())],
        None => args.connect.resolve()?,
    };
    let hosts: Vec<SocketAddr> = named.iter().map(|(addr, _)| *addr).collect();
    let context = Context {
        broker: if broker.is_some() {
            "embedded".into()
        } else {
            hosts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        },
        address: hosts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
        payload: args.size,
    };
    let display = Display {
        interactive: std::io::stderr().is_terminal(),
        enabled: !args.output.quiet,
        interval: args.output.interval,
    };
    let meter = Meter {
        embedded: broker.is_some(),
        broker_pid: args.output.broker_pid,
    };
    let run = Run {
        args: &args,
        options: args.connect.options(&named)?,
        hosts,
        context,
        display,
        meter,
        broker,
        stop,
    };
    let result = match &args.mode {
        None => qos_comparison(&run).await,
        Some(Mode::Conn(conn)) => connections(&run, conn).await,
        Some(mode) => load_mode(&run, mode).await,
    };
    if let Some(broker) = run.broker {
        broker.stop();
    }
    result
}

/// Prints the report in the format asked for. A closed pipe (`| head`) is a quiet
/// success; any other failure to write standard output is an error.
fn emit(
    args: &Args,
    table: impl FnOnce() -> String,
    json: impl FnOnce() -> Value,
    csv: impl FnOnce() -> String,
) -> Result<(), String> {
    use std::io::Write;
    let text = if args.output.json {
        format!("{}\n", json())
    } else if args.output.csv {
        csv()
    } else {
        table()
    };
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write to standard output: {error}"))
        }
        _ => Ok(()),
    }
}

/// What every mode runs with: the arguments, where the broker is, how to connect,
/// and how to show and measure the run.
struct Run<'a> {
    args: &'a Args,
    hosts: Vec<SocketAddr>,
    options: crate::bench::client::ConnectOptions,
    context: Context,
    display: Display,
    meter: Meter,
    /// The broker rbench started itself, when no `-h` was given.
    broker: Option<EmbeddedBroker>,
    /// Cancelled by Ctrl-C: stop and report what was measured.
    stop: CancellationToken,
}

async fn qos_comparison(run: &Run<'_>) -> Result<(), String> {
    let Run {
        args,
        hosts,
        options,
        context,
        display,
        meter,
        stop,
        ..
    } = run;
    let plan = QosPlan {
        host: hosts[0],
        options: options.clone(),
        messages: args.messages,
        latency_messages: args
            .latency_messages
            .unwrap_or((args.messages / 10).clamp(100, 2000)),
        payload: args.size,
        levels: vec![QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce],
    };
    let mut tracking = None;
    let results = compare(&plan, meter, stop, |qos, progress| {
        tracking = Some(display.track(format!("QoS {}", qos as u8), progress, Counted::Messages));
    })
    .await
    .map_err(|e| format!("{e}"))?;
    drop(tracking);
    emit(
        args,
        || report::qos_table(&results, context),
        || report::qos_json(&results, context),
        || report::qos_csv(&results),
    )?;
    Ok(())
}

async fn connections(run: &Run<'_>, conn: &ConnArgs) -> Result<(), String> {
    let Run {
        args,
        hosts,
        options,
        context,
        display,
        stop,
        ..
    } = run;
    let broker = run.broker.as_ref();
    let plan = ConnPlan {
        hosts: hosts.to_vec(),
        options: options.clone(),
        client_prefix: "rbench".into(),
        count: conn.clients,
        rate: conn.rate,
        concurrency: conn.concurrency,
        timeout: conn.timeout,
    };
    let progress = Arc::new(Progress::default());
    progress
        .expected
        .store(conn.clients as u64, Ordering::Relaxed);
    let answered = Arc::new(AtomicU64::new(0));
    let mirror = {
        let (answered, progress) = (Arc::clone(&answered), Arc::clone(&progress));
        tokio::spawn(async move {
            loop {
                progress
                    .delivered
                    .store(answered.load(Ordering::Relaxed), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let tracking = display.track("connect".into(), progress, Counted::Connections);
    let heap_before = broker.and_then(|_| {
        alloc::set_counting(true);
        alloc::broker_heap_bytes()
    });
    let rss_before = args
        .output
        .broker_pid
        .and_then(|pid| process::sample(pid).ok());
    let result = open_connections(&plan, answered, stop.clone()).await;
    // Let the broker finish setting up the last sessions before reading its memory.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let heap_after = broker.and_then(|_| alloc::broker_heap_bytes());
    alloc::set_counting(false);
    let rss_after = args
        .output
        .broker_pid
        .and_then(|pid| process::sample(pid).ok());
    drop(tracking);
    mirror.abort();
    let per_connection = |before: i64, after: i64| {
        (result.connected > 0).then(|| (after - before) as f64 / result.connected as f64)
    };
    let heap_per_connection = heap_before
        .zip(heap_after)
        .and_then(|(b, a)| per_connection(b, a));
    let rss_per_connection = rss_before
        .zip(rss_after)
        .and_then(|(b, a)| per_connection(b.rss_bytes as i64, a.rss_bytes as i64));
    let report = ConnReport {
        result: &result,
        heap_per_connection,
        rss_per_connection,
    };
    emit(
        args,
        || report::conn_table(&report, context),
        || report::conn_json(&report, context),
        || report::conn_csv(&report),
    )?;
    if !conn.hold.is_zero() && !stop.is_cancelled() {
        tokio::select! {
            _ = tokio::time::sleep(conn.hold) => {}
            _ = stop.cancelled() => {}
        }
    }
    drop(result.clients);
    Ok(())
}

/// The plan of a `pub`, `sub` or `pubsub` run, and a description for the report.
fn load_plan(
    mode: &Mode,
    hosts: &[SocketAddr],
    options: &crate::bench::client::ConnectOptions,
) -> (Plan, &'static str, String) {
    let mut plan = Plan::new(hosts.to_vec(), 0, 0, QoS::AtMostOnce, Until::Count(0));
    plan.options = options.clone();
    let (run, name, shape) = match mode {
        Mode::Pub(p) => {
            plan.publishers = p.clients;
            plan.topic = p.topic.clone();
            plan.publisher_inflight = p.inflight;
            plan.pace = match (p.rate, p.rate_per_client) {
                (Some(rate), _) => Pace::Rate(rate),
                (None, Some(rate)) => Pace::Rate(rate * p.clients as f64),
                (None, None) => Pace::Unlimited,
            };
            (
                &p.run,
                "pub",
                format!("{} publishers on {}", p.clients, p.topic),
            )
        }
        Mode::Sub(s) => {
            plan.subscribers = s.clients;
            plan.filter = s.topic.clone();
            (
                &s.run,
                "sub",
                format!("{} subscribers on {}", s.clients, s.topic),
            )
        }
        Mode::Pubsub(p) => {
            let n = p.clients.max(1);
            let (publishers, subscribers, topic, description) = match p.shape {
                Shape::Pairs => (n, n, "rbench/pair/%i", format!("{n} pairs")),
                Shape::FanIn => (
                    n,
                    1,
                    "rbench/fan-in",
                    format!("fan-in, {n} publishers → 1 subscriber"),
                ),
                Shape::FanOut => (
                    1,
                    n,
                    "rbench/fan-out",
                    format!("fan-out, 1 publisher → {n} subscribers"),
                ),
            };
            plan.publishers = publishers;
            plan.subscribers = subscribers;
            plan.topic = topic.into();
            plan.filter = topic.into();
            plan.publisher_inflight = p.inflight;
            plan.pace = p.rate.map_or(Pace::Window(p.window), Pace::Rate);
            (&p.run, "pubsub", description)
        }
        Mode::Conn(_) => return (plan, "conn", String::new()),
    };
    plan.qos = run.qos;
    plan.payload = run.size;
    plan.until = run.until();
    plan.warmup = run.warmup;
    (plan, name, shape)
}

async fn load_mode(run: &Run<'_>, mode: &Mode) -> Result<(), String> {
    let Run {
        args,
        hosts,
        options,
        context,
        display,
        meter,
        stop,
        ..
    } = run;
    let (plan, name, description) = load_plan(mode, hosts, options);
    let progress = Arc::new(Progress::default());
    let tracking = display.track(name.into(), Arc::clone(&progress), Counted::Messages);
    let before = meter.sample();
    let result = load::run(&plan, progress, stop.clone())
        .await
        .map_err(|e| e.to_string())?;
    let after = meter.sample();
    drop(tracking);
    let messages = if plan.subscribers > 0 {
        result.delivered
    } else {
        result.published
    }
    .max(1) as f64;
    let per_message = |b: Duration, a: Duration| a.saturating_sub(b).as_secs_f64() * 1e6 / messages;
    let rbench_cpu = per_message(before.0, after.0);
    let broker_cpu = before.1.zip(after.1).map(|(b, a)| per_message(b, a));
    let report = LoadReport {
        name,
        description: &description,
        plan: &plan,
        result: &result,
        rbench_cpu,
        broker_cpu,
    };
    emit(
        args,
        || report::load_table(&report, context),
        || report::load_json(&report, context),
        || report::load_csv(&report),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Args, clap::Error> {
        Args::try_parse_from(line.split_whitespace())
    }

    #[test]
    fn the_qos_comparison_is_the_default() {
        let args = parse("rbench -n 500 -s 128").expect("valid");
        assert!(args.mode.is_none());
        assert_eq!((args.messages, args.size), (500, 128));
        assert!(args.connect.hosts.is_empty());
    }

    #[test]
    fn connection_options_go_anywhere_and_hosts_repeat() {
        let args =
            parse("rbench pubsub --shape fan-in -c 4 -q 1 -h 10.0.0.1 -h 10.0.0.2:1884 --json")
                .expect("valid");
        assert_eq!(args.connect.hosts, vec!["10.0.0.1", "10.0.0.2:1884"]);
        assert!(args.output.json);
        let Some(Mode::Pubsub(p)) = args.mode else {
            panic!("pubsub")
        };
        assert_eq!(
            (p.shape, p.clients, p.run.qos),
            (Shape::FanIn, 4, QoS::AtLeastOnce)
        );
    }

    #[test]
    fn count_and_duration_exclude_each_other() {
        assert!(parse("rbench pub -n 10 --duration 5s").is_err());
        let Some(Mode::Pub(p)) = parse("rbench pub --duration 5s").expect("valid").mode else {
            panic!("pub")
        };
        assert_eq!(p.run.until(), Until::Duration(Duration::from_secs(5)));
        assert!(parse("rbench sub -q 3").is_err());
    }

    #[test]
    fn shapes_build_the_right_topology() {
        let hosts = ["127.0.0.1:1883".parse().expect("address")];
        let options = crate::bench::client::ConnectOptions::default();
        let args = parse("rbench pubsub --shape fan-out -c 8").expect("valid");
        let (plan, _, _) = load_plan(args.mode.as_ref().expect("mode"), &hosts, &options);
        assert_eq!((plan.publishers, plan.subscribers), (1, 8));
        let args = parse("rbench pub -c 3 --rate-per-client 100").expect("valid");
        let (plan, _, _) = load_plan(args.mode.as_ref().expect("mode"), &hosts, &options);
        assert_eq!(plan.pace, Pace::Rate(300.0));
    }
}
