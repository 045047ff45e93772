//! `rsub`: mosquitto_sub's command line, output and exit statuses, plus `--json`,
//! `--color` and `--pw-file`.
//!
//! Differences from mosquitto_sub 2.0.11, on purpose: after a lost connection rsub
//! says so on stderr (unless `--quiet`) while it reconnects; `--retained-only`
//! (with or without `--remove-retained`) ends once the retained messages have
//! arrived instead of waiting for a live one; `%j` and friends are fixed as
//! [`crate::client::format`] describes.

use super::exit;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use clap::{ArgMatches, Parser};

use super::mosquitto::{CommonArgs, Settings, Tool, UsageError, qos_option, subscription_filter};
use super::session::{self, Failure, interrupted, open, report};
use crate::client::connection::{ClientError, Connection, Event};
use crate::client::format::{FormatString, Printer, Received, Style};
use crate::client::trace::{Output, Trace};
use crate::protocol::{
    Property, Publish, QoS, ReasonCode, RetainHandling, SubscriptionOptions, TopicFilter, TopicName,
};

/// Subscribe to MQTT topics and print the messages: a drop-in for mosquitto_sub.
#[derive(Debug, Parser)]
#[command(
    name = "rsub",
    version,
    about = "Subscribe to MQTT topics and print the messages: mosquitto_sub's options and output",
    disable_help_flag = true,
    disable_version_flag = true,
    args_override_self = true
)]
pub struct Args {
    /// Topic filter to subscribe to; repeat for more.
    #[arg(
        short = 't',
        long = "topic",
        value_name = "FILTER",
        allow_hyphen_values = true,
        help_heading = "Subscription"
    )]
    pub topics: Vec<String>,
    /// Do not connect: say which of the -t filters a message on TOPIC reaches,
    /// and why (the broker's matcher, explained).
    #[arg(
        long = "match",
        value_name = "TOPIC",
        allow_hyphen_values = true,
        help_heading = "Subscription"
    )]
    pub match_topic: Option<String>,
    /// QoS of the subscriptions: 0, 1 or 2.
    #[arg(
        short = 'q',
        long = "qos",
        value_name = "QOS",
        allow_hyphen_values = true,
        help_heading = "Subscription"
    )]
    pub qos: Option<String>,
    /// Do not print messages with the retain flag; MQTT 5 asks for none at all.
    #[arg(short = 'R', help_heading = "Subscription")]
    pub no_retained: bool,
    /// MQTT 5 Retain As Published subscription option.
    #[arg(long = "retain-as-published", help_heading = "Subscription")]
    pub retain_as_published: bool,
    /// Unsubscribe from this filter after connecting; repeat for more.
    #[arg(
        short = 'U',
        long = "unsubscribe",
        value_name = "FILTER",
        allow_hyphen_values = true,
        help_heading = "Subscription"
    )]
    pub unsubscribe: Vec<String>,
    /// Do not print messages on topics matching this filter; repeat for more.
    #[arg(
        short = 'T',
        long = "filter-out",
        value_name = "FILTER",
        allow_hyphen_values = true,
        help_heading = "Subscription"
    )]
    pub filter_out: Vec<String>,
    /// Exit after this many messages.
    #[arg(
        short = 'C',
        value_name = "COUNT",
        allow_hyphen_values = true,
        help_heading = "Ending"
    )]
    pub count: Option<String>,
    /// Exit after this many seconds ("Timed out", status 27).
    #[arg(
        short = 'W',
        value_name = "SECONDS",
        allow_hyphen_values = true,
        help_heading = "Ending"
    )]
    pub timeout: Option<String>,
    /// Exit once the subscriptions are acknowledged.
    #[arg(short = 'E', help_heading = "Ending")]
    pub exit_after_subscribe: bool,
    /// Print only retained messages and exit once they have all arrived.
    #[arg(long = "retained-only", help_heading = "Ending")]
    pub retained_only: bool,
    /// Clear every retained message received (publishes an empty retained one).
    #[arg(long = "remove-retained", help_heading = "Subscription")]
    pub remove_retained: bool,
    /// Print `topic payload`.
    #[arg(short = 'v', long = "verbose", help_heading = "Output")]
    pub verbose: bool,
    /// Output format (mosquitto_sub's %, @ and \ sequences).
    #[arg(
        short = 'F',
        value_name = "FORMAT",
        allow_hyphen_values = true,
        help_heading = "Output"
    )]
    pub format: Option<String>,
    /// No newline after each message.
    #[arg(short = 'N', help_heading = "Output")]
    pub no_eol: bool,
    /// Multi-line JSON for %j and %J.
    #[arg(long = "pretty", help_heading = "Output")]
    pub pretty: bool,
    /// One JSON object a line: topic, qos, retain, time, payload (or
    /// payload_base64), properties. rpub --json reads the same lines.
    #[arg(long = "json", help_heading = "Output")]
    pub json: bool,
    /// Print only this percentage of messages (0.1 to 100).
    #[arg(
        long = "random-filter",
        value_name = "PERCENT",
        allow_hyphen_values = true,
        help_heading = "Output"
    )]
    pub random_filter: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Everything rsub will do, checked.
struct Plan {
    settings: Settings,
    filters: Vec<(TopicFilter, SubscriptionOptions)>,
    unsubscribe: Vec<TopicFilter>,
    filter_out: Vec<TopicFilter>,
    printer: Printer,
    count: Option<u64>,
    timeout: Option<Duration>,
    exit_after_subscribe: bool,
    no_retained: bool,
    retained_only: bool,
    remove_retained: bool,
    /// Chance of printing a message, in ten-thousandths.
    random_filter: Option<u32>,
    /// `--match`: explain the filters against this topic instead of connecting.
    matching: Option<TopicName>,
}

impl Args {
    fn plan(&self, matches: &ArgMatches) -> Result<Plan, UsageError> {
        let error = |text: String| UsageError(text);
        let qos = qos_option(self.qos.as_deref())?;
        let count = self
            .count
            .as_deref()
            .map(|text| {
                text.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| error(format!("Error: Invalid message count \"{text}\".")))
            })
            .transpose()?;
        let timeout = self
            .timeout
            .as_deref()
            .map(|text| {
                text.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .map(Duration::from_secs)
                    .ok_or_else(|| error(format!("Error: Invalid timeout \"{text}\".")))
            })
            .transpose()?;
        let format = self
            .format
            .as_deref()
            .map(FormatString::parse)
            .transpose()
            .map_err(error)?;
        let random_filter = self
            .random_filter
            .as_deref()
            .map(|text| {
                text.trim()
                    .parse::<f64>()
                    .ok()
                    .map(|percent| (percent * 100.0) as i64)
                    .filter(|chance| (10..=10_000).contains(chance))
                    .map(|chance| chance as u32)
                    .ok_or_else(|| {
                        error("Error: --random-filter chance must be between 0.1-100.0".into())
                    })
            })
            .transpose()?;
        let mut settings = self.common.resolve(matches, Tool::Sub)?;
        let mut topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        if let Some(topic) = &settings.url_topic {
            topics.push(topic);
        }
        let options = SubscriptionOptions {
            qos,
            no_local: false,
            retain_as_published: self.retain_as_published,
            retain_handling: if self.no_retained {
                RetainHandling::DoNotSend
            } else {
                RetainHandling::SendAtSubscribe
            },
        };
        let filters = topics
            .iter()
            .map(|topic| subscription_filter(topic, "subscription").map(|f| (f, options)))
            .collect::<Result<Vec<_>, _>>()?;
        let filter_out = self
            .filter_out
            .iter()
            .map(|f| subscription_filter(f, "filter"))
            .collect::<Result<Vec<_>, _>>()?;
        let unsubscribe = self
            .unsubscribe
            .iter()
            .map(|f| subscription_filter(f, "unsubscribe"))
            .collect::<Result<Vec<_>, _>>()?;
        let matching = self
            .match_topic
            .as_deref()
            .map(|topic| {
                TopicName::new(topic).map_err(|_| {
                    error(format!(
                        "Error: Invalid topic '{topic}' for --match: a topic name has no '+' or '#'."
                    ))
                })
            })
            .transpose()?;
        if filters.is_empty() && unsubscribe.is_empty() {
            return Err(error(
                "Error: You must specify a topic to subscribe to.".into(),
            ));
        }
        if self.no_retained && self.retained_only {
            return Err(error(
                // mosquitto_sub starts this one with a blank line.
                "\nError: Combining '-R' and '--retained-only' makes no sense.".into(),
            ));
        }
        // Fewer than 20 messages wanted: ask for no more in flight (as mosquitto_sub).
        if let Some(count) = count.filter(|c| *c < 20)
            && settings.connect.version.is_v5()
            && settings.connect.properties.receive_maximum().is_none()
        {
            settings
                .connect
                .properties
                .push(Property::ReceiveMaximum(count as u16));
        }
        let style = if self.json {
            Style::JsonLines
        } else if let Some(format) = format {
            Style::Format(format)
        } else if self.verbose {
            Style::Verbose
        } else {
            Style::Payload
        };
        let printer = Printer {
            style,
            eol: !self.no_eol,
            pretty: self.pretty,
            color: settings.color,
        };
        Ok(Plan {
            settings,
            filters,
            unsubscribe,
            filter_out,
            printer,
            count,
            timeout,
            exit_after_subscribe: self.exit_after_subscribe,
            no_retained: self.no_retained,
            retained_only: self.retained_only,
            remove_retained: self.remove_retained,
            random_filter,
            matching,
        })
    }
}

pub fn main() -> ExitCode {
    session::main(Tool::Sub, Args::plan, run)
}

/// `--match`: each filter against `topic`, matching or not and why, then how
/// many match.
fn explain_filters(
    topic: &TopicName,
    filters: &[(TopicFilter, SubscriptionOptions)],
    color: bool,
) -> String {
    use colored::Colorize;
    let width = filters
        .iter()
        .map(|(filter, _)| filter.as_str().chars().count())
        .max()
        .unwrap_or(0);
    let mut text = String::new();
    let mut matching = 0;
    for (filter, _) in filters {
        let verdict = crate::protocol::topic::explain(filter.filter(), topic.as_str());
        let label = if verdict.is_match() {
            matching += 1;
            "matches "
        } else {
            "no match"
        };
        let label = match (color, verdict.is_match()) {
            (false, _) => label.normal(),
            (true, true) => label.green(),
            (true, false) => label.red(),
        };
        let pad = width - filter.as_str().chars().count();
        text.push_str(&format!(
            "{}{}  {label}  {verdict}\n",
            filter.as_str(),
            " ".repeat(pad)
        ));
    }
    text.push_str(&format!(
        "{matching} of {} filter{} match {topic}.\n",
        filters.len(),
        if filters.len() == 1 { "" } else { "s" }
    ));
    text
}

/// How a run of rsub ended.
enum Ending {
    /// Done (count reached, -E, retained burst over, Ctrl-C): exit status 0.
    Done,
    /// -W passed.
    TimedOut,
}

/// Where rsub is in its life, for the messages that arrive.
struct State {
    received: u64,
    /// No more messages are printed; waiting for publishes to finish first.
    finishing: bool,
    /// `--retained-only`: ping rounds since the SUBACK, and whether a message
    /// arrived in this round and the one before.
    burst_rounds: Option<(bool, bool)>,
    random: u64,
}

async fn run(plan: Plan) -> u8 {
    if let Some(topic) = &plan.matching {
        print!(
            "{}",
            explain_filters(topic, &plan.filters, plan.printer.color)
        );
        return exit::SUCCESS;
    }
    let output = Output::default();
    let status = run_with(plan, output.clone()).await;
    output.exit_status(Tool::Sub.name(), status)
}

async fn run_with(plan: Plan, output: Output) -> u8 {
    let trace = if plan.settings.debug {
        Trace::new(output.clone(), plan.settings.color)
    } else {
        Trace::default()
    };
    let deadline = plan.timeout.map(|t| Instant::now() + t);
    let mut state = State {
        received: 0,
        finishing: false,
        burst_rounds: None,
        random: SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            | 1,
    };
    let connect = plan.settings.connect.clone();
    let first = tokio::select! {
        result = open(&plan.settings, &connect, trace.clone()) => result,
        _ = interrupted() => return exit::INTERRUPTED_BEFORE_CONNECTING,
    };
    let (mut connection, _) = match first {
        Ok(opened) => opened,
        Err(failure) => {
            output.flush();
            return report(&failure, Tool::Sub, &connect, plan.settings.quiet);
        }
    };
    loop {
        let ended = serve(&plan, &mut connection, &mut state, &output, deadline).await;
        output.flush();
        match ended {
            Ok(Ending::Done) => return exit::SUCCESS,
            Ok(Ending::TimedOut) => {
                if !plan.settings.quiet {
                    eprintln!("Timed out");
                }
                return exit::TIMED_OUT;
            }
            Err(Stop::Lost(error)) => {
                if output.is_broken() {
                    return exit::SUCCESS;
                }
                if !plan.settings.quiet {
                    eprintln!("rsub: connection lost ({error}); reconnecting");
                }
                match reconnect(&plan, &connect, &trace, deadline).await {
                    Ok(Some(next)) => {
                        if !plan.settings.quiet {
                            eprintln!("rsub: reconnected");
                        }
                        connection = next;
                    }
                    Ok(None) => {
                        if !plan.settings.quiet {
                            eprintln!("Timed out");
                        }
                        return exit::TIMED_OUT;
                    }
                    Err(status) => return status,
                }
            }
        }
    }
}

/// Why serving a connection stopped early: it is gone; reconnect.
enum Stop {
    Lost(ClientError),
}

/// Tries to connect again every second (as mosquitto_sub), until it works, the
/// broker refuses, -W passes (`Ok(None)`) or the user interrupts (`Err(0)`).
async fn reconnect(
    plan: &Plan,
    connect: &crate::protocol::Connect,
    trace: &Trace,
    deadline: Option<Instant>,
) -> Result<Option<Connection>, u8> {
    loop {
        let pause = tokio::time::sleep(Duration::from_secs(1));
        tokio::select! {
            _ = pause => {}
            _ = interrupted() => return Err(0),
            _ = sleep_until(deadline) => return Ok(None),
        }
        let attempt = tokio::select! {
            result = open(&plan.settings, connect, trace.clone()) => result,
            _ = interrupted() => return Err(0),
            _ = sleep_until(deadline) => return Ok(None),
        };
        match attempt {
            Ok((connection, _)) => return Ok(Some(connection)),
            Err(failure @ Failure::Client(ClientError::Refused(_))) => {
                return Err(report(&failure, Tool::Sub, connect, plan.settings.quiet));
            }
            Err(_) => continue,
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}

/// Subscribes on `connection` and prints what arrives until the run ends.
async fn serve(
    plan: &Plan,
    connection: &mut Connection,
    state: &mut State,
    output: &Output,
    deadline: Option<Instant>,
) -> Result<Ending, Stop> {
    let lost = Stop::Lost;
    if !plan.filters.is_empty() {
        connection
            .subscribe(
                plan.filters.clone(),
                plan.settings.properties.subscribe.clone(),
            )
            .map_err(lost)?;
    }
    for filter in &plan.unsubscribe {
        connection
            .unsubscribe(
                vec![filter.clone()],
                plan.settings.properties.unsubscribe.clone(),
            )
            .map_err(lost)?;
    }
    loop {
        if output.is_broken() {
            return finish(plan, connection, ReasonCode::Success).await;
        }
        if state.finishing && connection.in_flight() == 0 {
            return finish(plan, connection, ReasonCode::Success).await;
        }
        output.flush();
        let event = tokio::select! {
            event = connection.next_event() => event,
            _ = sleep_until(deadline) => {
                let _ = finish(plan, connection, ReasonCode::Success).await;
                return Ok(Ending::TimedOut);
            }
            _ = interrupted() => {
                // mosquitto_sub ends an MQTT 5 session with "Disconnect with Will Message".
                return finish(plan, connection, ReasonCode::DisconnectWithWillMessage).await;
            }
        };
        match event.map_err(lost)? {
            Event::Message(publish) => {
                if let Some(round) = &mut state.burst_rounds {
                    round.0 = true;
                }
                on_message(plan, connection, state, output, &publish).map_err(lost)?;
            }
            Event::SubAck(suback) => {
                if plan.settings.debug && !plan.settings.quiet {
                    let codes: Vec<String> = suback
                        .codes
                        .iter()
                        .map(|code| suback_value(*code, connection).to_string())
                        .collect();
                    connection.trace().note(&format!(
                        "Subscribed (mid: {}): {}",
                        suback.packet_id.get(),
                        codes.join(", ")
                    ));
                }
                if suback.codes.iter().all(|code| code.is_error()) && !plan.settings.quiet {
                    output.flush();
                    eprintln!("All subscription requests were denied.");
                }
                if plan.exit_after_subscribe {
                    return finish(plan, connection, ReasonCode::Success).await;
                }
                if plan.retained_only {
                    state.burst_rounds = Some((false, true));
                    connection.ping().map_err(lost)?;
                }
            }
            Event::Pong => {
                if let Some((this_round, previous_round)) = state.burst_rounds {
                    if !this_round && !previous_round {
                        // Two quiet ping rounds: every retained message is here.
                        state.burst_rounds = None;
                        state.finishing = true;
                    } else {
                        state.burst_rounds = Some((false, this_round));
                        connection.ping().map_err(lost)?;
                    }
                }
            }
            Event::UnsubAck(_)
            | Event::Published { .. }
            | Event::Received { .. }
            | Event::Released { .. } => {}
        }
    }
}

/// The number `Subscribed (mid: 1): ...` prints: the granted QoS on 3.x (128
/// for a failure), the reason code on MQTT 5.
fn suback_value(code: ReasonCode, connection: &Connection) -> u8 {
    if connection.version().is_v5() || code.is_error() {
        if code.is_error() && !connection.version().is_v5() {
            0x80
        } else {
            code as u8
        }
    } else {
        code as u8
    }
}

/// mosquitto_sub's message callback: retained-only, -R, -T, --remove-retained,
/// printing (with --random-filter) and counting.
fn on_message(
    plan: &Plan,
    connection: &mut Connection,
    state: &mut State,
    output: &Output,
    publish: &Publish,
) -> Result<(), ClientError> {
    if state.finishing {
        return Ok(());
    }
    if plan.retained_only && !publish.retain {
        state.finishing = true;
        return Ok(());
    }
    if publish.retain && plan.no_retained {
        return Ok(());
    }
    if plan
        .filter_out
        .iter()
        .any(|filter| filter.matches(&publish.topic))
    {
        return Ok(());
    }
    if plan.remove_retained && publish.retain {
        let clear = Publish {
            qos: QoS::AtLeastOnce,
            retain: true,
            ..Publish::new(
                TopicName::new(publish.topic.as_str())
                    .map_err(|e| ClientError::Protocol(e.to_string()))?,
                bytes::Bytes::new(),
            )
        };
        connection.publish(clear)?;
    }
    let printed = match plan.random_filter {
        None => true,
        Some(chance) => {
            // xorshift64: enough randomness to sample messages.
            state.random ^= state.random << 13;
            state.random ^= state.random >> 7;
            state.random ^= state.random << 17;
            (state.random % 10_000) < u64::from(chance)
        }
    };
    if printed {
        let received = Received {
            publish,
            mid: publish.packet_id.map_or(0, |id| id.get()),
            at: SystemTime::now(),
        };
        let mut bytes = Vec::with_capacity(publish.payload.len() + 64);
        let errors = plan.printer.render(&received, &mut bytes);
        output.write(&bytes);
        if !errors.is_empty() && !plan.settings.quiet {
            output.flush();
            for line in errors {
                eprintln!("{line}");
            }
        }
    }
    if let Some(count) = plan.count {
        state.received += 1;
        if state.received >= count {
            state.finishing = true;
        }
    }
    Ok(())
}

/// Sends DISCONNECT (with `reason` on MQTT 5) and ends with status 0.
async fn finish(
    plan: &Plan,
    connection: &mut Connection,
    reason: ReasonCode,
) -> Result<Ending, Stop> {
    let _ = connection
        .disconnect(reason, plan.settings.properties.disconnect.clone())
        .await;
    Ok(Ending::Done)
}
