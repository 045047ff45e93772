//! `rpub`: mosquitto_pub's command line, output and exit statuses, plus `--json`
//! (publish the lines `rsub --json` prints), `--color` and `--pw-file`.
//!
//! `-l` and `--json` keep one connection for all lines. At QoS 1 and 2 a line
//! counts as sent only when the broker acknowledged it: across a lost connection
//! rpub reconnects every second and sends again what was not acknowledged, so
//! no line is lost (mosquitto_pub 2.0.11 can drop them).

use super::exit;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::{ArgAction, ArgMatches, Parser};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::mosquitto::{CommonArgs, Settings, Tool, UsageError, publish_topic, qos_option};
use super::session::{self, Failure, interrupted, open, report};
use crate::client::connection::{ClientError, Connection, Event, Unacknowledged};
use crate::client::format::parse_json_line;
use crate::client::trace::{Output, Trace};
use crate::protocol::{Connect, Properties, Property, Publish, QoS, ReasonCode, TopicName};

/// Publish MQTT messages: a drop-in for mosquitto_pub.
#[derive(Debug, Parser)]
#[command(
    name = "rpub",
    version,
    about = "Publish MQTT messages: mosquitto_pub's options and behaviour",
    disable_help_flag = true,
    disable_version_flag = true,
    args_override_self = true
)]
pub struct Args {
    /// Topic to publish to.
    #[arg(
        short = 't',
        long = "topic",
        value_name = "TOPIC",
        allow_hyphen_values = true,
        help_heading = "Message"
    )]
    pub topic: Option<String>,
    /// The payload.
    #[arg(
        short = 'm',
        long = "message",
        value_name = "PAYLOAD",
        allow_hyphen_values = true,
        action = ArgAction::Append,
        help_heading = "Message"
    )]
    pub message: Vec<String>,
    /// Send this file's contents as the payload.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        allow_hyphen_values = true,
        action = ArgAction::Append,
        help_heading = "Message"
    )]
    pub file: Vec<PathBuf>,
    /// Send all of stdin as one message.
    #[arg(short = 's', long = "stdin-file", action = ArgAction::Count, help_heading = "Message")]
    pub stdin_file: u8,
    /// Send each line of stdin as a message, over one connection.
    #[arg(short = 'l', long = "stdin-line", action = ArgAction::Count, help_heading = "Message")]
    pub stdin_line: u8,
    /// Send an empty message.
    #[arg(short = 'n', long = "null-message", action = ArgAction::Count, help_heading = "Message")]
    pub null_message: u8,
    /// Read JSON lines (as rsub --json prints them) from stdin and publish each.
    #[arg(long = "json", action = ArgAction::Count, help_heading = "Message")]
    pub json: u8,
    /// QoS: 0, 1 or 2.
    #[arg(
        short = 'q',
        long = "qos",
        value_name = "QOS",
        allow_hyphen_values = true,
        help_heading = "Message"
    )]
    pub qos: Option<String>,
    /// Retain the message.
    #[arg(short = 'r', long = "retain", help_heading = "Message")]
    pub retain: bool,
    /// Publish the -m/-f/-s/-n message this many times.
    #[arg(
        long = "repeat",
        value_name = "COUNT",
        allow_hyphen_values = true,
        help_heading = "Message"
    )]
    pub repeat: Option<String>,
    /// Seconds (fractions allowed) between repeats.
    #[arg(
        long = "repeat-delay",
        value_name = "SECONDS",
        allow_hyphen_values = true,
        help_heading = "Message"
    )]
    pub repeat_delay: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// What to publish.
enum Source {
    /// One payload (-m, -f, -s, -n), sent `repeat` times.
    Once(Bytes),
    Lines,
    Json,
}

struct Plan {
    settings: Settings,
    topic: Option<TopicName>,
    source: Source,
    qos: QoS,
    retain: bool,
    repeat: u64,
    repeat_delay: Duration,
}

impl Args {
    fn plan(&self, matches: &ArgMatches) -> Result<Plan, UsageError> {
        // Each message option counts once per use: mosquitto_pub refuses a
        // repeated one as it refuses two different ones.
        let modes = self.message.len()
            + self.file.len()
            + usize::from(self.stdin_file)
            + usize::from(self.stdin_line)
            + usize::from(self.null_message)
            + usize::from(self.json);
        if modes > 1 {
            return Err(UsageError(
                "Error: Only one type of message can be sent at once.".into(),
            ));
        }
        let qos = qos_option(self.qos.as_deref())?;
        let repeat = match self.repeat.as_deref() {
            None => 1,
            Some(text) => text
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| UsageError("Error: --repeat argument must be >0.".into()))?,
        };
        let repeat_delay = match self.repeat_delay.as_deref() {
            None => Duration::ZERO,
            Some(text) => text
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(Duration::from_secs_f64)
                .ok_or_else(|| {
                    UsageError("Error: --repeat-delay argument must be >=0.0.".into())
                })?,
        };
        let topic = match &self.topic {
            Some(topic) => Some(publish_topic(topic, "publish")?),
            None => None,
        };
        let settings = self.common.resolve(matches, Tool::Pub)?;
        let topic = match (topic, &settings.url_topic) {
            (None, Some(url_topic)) => Some(publish_topic(url_topic, "publish")?),
            (topic, _) => topic,
        };
        let source = if self.json > 0 {
            Source::Json
        } else if self.stdin_line > 0 {
            Source::Lines
        } else if let Some(message) = self.message.last() {
            Source::Once(Bytes::from(message.clone()))
        } else if self.null_message > 0 {
            Source::Once(Bytes::new())
        } else if let Some(file) = self.file.last() {
            match std::fs::read(file) {
                Ok(bytes) => Source::Once(Bytes::from(bytes)),
                Err(_) => {
                    return Err(UsageError(format!(
                        "Error: Unable to open file \"{0}\".\nError loading input file \"{0}\".",
                        file.display()
                    )));
                }
            }
        } else if self.stdin_file > 0 {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
                .map_err(|e| UsageError(format!("Error: Unable to read from stdin: {e}.")))?;
            if bytes.is_empty() {
                return Err(UsageError("Error: Zero length input.".into()));
            }
            Source::Once(Bytes::from(bytes))
        } else {
            return Err(UsageError(
                "Error: Both topic and message must be supplied.".into(),
            ));
        };
        if topic.is_none() && !matches!(source, Source::Json) {
            return Err(UsageError(
                "Error: Both topic and message must be supplied.".into(),
            ));
        }
        Ok(Plan {
            settings,
            topic,
            source,
            qos,
            retain: self.retain,
            repeat,
            repeat_delay,
        })
    }
}

pub fn main() -> ExitCode {
    session::main(Tool::Pub, Args::plan, run)
}

/// Builds PUBLISHes the way mosquitto_pub does, including `-D publish
/// topic-alias`: after the first message the alias stands for the topic.
struct Publisher {
    properties: Properties,
    alias_sent: bool,
}

impl Publisher {
    fn message(&mut self, topic: &TopicName, payload: Bytes, qos: QoS, retain: bool) -> Publish {
        let mut topic = topic.clone();
        if self.properties.topic_alias().is_some() {
            if self.alias_sent {
                topic = TopicName::alias_placeholder();
            }
            self.alias_sent = true;
        }
        Publish {
            qos,
            retain,
            properties: self.properties.clone(),
            ..Publish::new(topic, payload)
        }
    }
}

async fn run(plan: Plan) -> u8 {
    let output = Output::default();
    let status = run_with(plan, output.clone()).await;
    output.exit_status(Tool::Pub.name(), status)
}

async fn run_with(plan: Plan, output: Output) -> u8 {
    let trace = if plan.settings.debug {
        Trace::new(output.clone(), plan.settings.color)
    } else {
        Trace::default()
    };
    let connect = plan.settings.connect.clone();
    let opened = tokio::select! {
        result = open(&plan.settings, &connect, trace.clone()) => result,
        _ = interrupted() => return exit::INTERRUPTED_BEFORE_CONNECTING,
    };
    let mut connection = match opened {
        Ok((connection, _)) => connection,
        Err(failure) => {
            output.flush();
            return report(&failure, Tool::Pub, &connect, plan.settings.quiet);
        }
    };
    let mut publisher = Publisher {
        properties: plan.settings.properties.publish.clone(),
        alias_sent: false,
    };
    let status = match &plan.source {
        Source::Once(payload) => {
            publish_repeatedly(&plan, &mut connection, &mut publisher, payload, &output).await
        }
        Source::Lines | Source::Json => {
            publish_stream(&plan, connection, &mut publisher, &connect, &trace, &output).await
        }
    };
    output.flush();
    status
}

/// `-m`, `-f`, `-s`, `-n`: the message, `--repeat` times with `--repeat-delay`
/// between, each one finished (written, or acknowledged at QoS 1/2) before the next.
async fn publish_repeatedly(
    plan: &Plan,
    connection: &mut Connection,
    publisher: &mut Publisher,
    payload: &Bytes,
    output: &Output,
) -> u8 {
    let Some(topic) = &plan.topic else {
        return exit::FAILURE;
    };
    for round in 0..plan.repeat {
        if round > 0 && !plan.repeat_delay.is_zero() {
            tokio::time::sleep(plan.repeat_delay).await;
        }
        let message = publisher.message(topic, payload.clone(), plan.qos, plan.retain);
        let result = async {
            let mid = connection.publish(message)?;
            if plan.qos == QoS::AtMostOnce {
                return connection.flush_all().await;
            }
            loop {
                output.flush();
                if let Event::Published { mid: done, reason } = connection.next_event().await?
                    && done == mid
                {
                    warn_refused(plan, done, reason, output);
                    return Ok(());
                }
            }
        };
        let outcome = tokio::select! {
            outcome = result => outcome,
            _ = interrupted() => return exit::SUCCESS,
        };
        if let Err(error) = outcome {
            return lost(plan, &error, output);
        }
    }
    let _ = connection
        .disconnect(
            ReasonCode::Success,
            plan.settings.properties.disconnect.clone(),
        )
        .await;
    exit::SUCCESS
}

/// mosquitto_pub's warning for a PUBACK/PUBREC that refuses the message.
fn warn_refused(plan: &Plan, mid: u16, reason: ReasonCode, output: &Output) {
    if reason.is_error() && !plan.settings.quiet {
        output.flush();
        eprintln!("Warning: Publish {mid} failed: {}.", reason.name());
    }
}

fn lost(plan: &Plan, error: &ClientError, output: &Output) -> u8 {
    output.flush();
    match error {
        ClientError::Disconnected(reason) => {
            if !plan.settings.quiet {
                eprintln!("Error: {}", reason.name());
            }
            *reason as u8
        }
        _ => {
            if !plan.settings.quiet {
                eprintln!("Error: The connection was lost.");
            }
            exit::CONNECTION_LOST
        }
    }
}

/// Keeps stdin lines in a buffer between select! rounds.
struct LineReader {
    reader: BufReader<tokio::io::Stdin>,
    line: Vec<u8>,
    finished: bool,
}

impl LineReader {
    /// The next whole line without its `\n`; a last line without one counts.
    /// Cancel-safe: a partial line stays in the buffer.
    async fn next(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let read = self.reader.read_until(b'\n', &mut self.line).await?;
        if read == 0 {
            self.finished = true;
            if self.line.is_empty() {
                return Ok(None);
            }
            return Ok(Some(std::mem::take(&mut self.line)));
        }
        if self.line.last() == Some(&b'\n') {
            self.line.pop();
        } else {
            // The input ended without a final newline.
            self.finished = true;
        }
        Ok(Some(std::mem::take(&mut self.line)))
    }
}

/// The most bytes queued for the socket before rpub stops reading stdin.
const WRITE_BACKLOG: usize = 1 << 20;

/// `-l` and `--json`: every line a message, over one connection that is
/// re-established (with unacknowledged messages sent again) if it drops.
async fn publish_stream(
    plan: &Plan,
    mut connection: Connection,
    publisher: &mut Publisher,
    connect: &Connect,
    trace: &Trace,
    output: &Output,
) -> u8 {
    let mut lines = LineReader {
        reader: BufReader::with_capacity(64 * 1024, tokio::io::stdin()),
        line: Vec::new(),
        finished: false,
    };
    let mut pending: Option<Publish> = None;
    loop {
        let result: Result<bool, ClientError> = async {
            loop {
                if let Some(publish) = pending.take() {
                    if publish.qos != QoS::AtMostOnce && !connection.can_publish() {
                        pending = Some(publish);
                    } else {
                        connection.publish(publish)?;
                    }
                }
                if lines.finished && pending.is_none() && connection.in_flight() == 0 {
                    connection.flush_all().await?;
                    return Ok(true);
                }
                let room =
                    pending.is_none() && !lines.finished && connection.unwritten() < WRITE_BACKLOG;
                output.flush();
                tokio::select! {
                    biased;
                    line = lines.next(), if room => {
                        let Some(line) = line.map_err(ClientError::Io)? else { continue };
                        match message_from_line(plan, publisher, line) {
                            Ok(publish) => pending = Some(publish),
                            Err(problem) => {
                                if !plan.settings.quiet {
                                    output.flush();
                                    eprintln!("{}: skipped a line: {problem}", Tool::Pub.name());
                                }
                            }
                        }
                    }
                    // Returns after a write too, so reading stdin resumes once
                    // the backlog shrinks, acknowledgements or not.
                    event = connection.next_event_or_written(Some(WRITE_BACKLOG)) => {
                        if let Some(Event::Published { mid, reason }) = event? {
                            warn_refused(plan, mid, reason, output);
                        }
                    }
                    _ = interrupted() => return Ok(false),
                }
            }
        }
        .await;
        match result {
            Ok(_) => {
                let _ = connection
                    .disconnect(
                        ReasonCode::Success,
                        plan.settings.properties.disconnect.clone(),
                    )
                    .await;
                return exit::SUCCESS;
            }
            Err(error) => {
                if !plan.settings.quiet {
                    output.flush();
                    eprintln!(
                        "{}: connection lost ({error}); reconnecting",
                        Tool::Pub.name()
                    );
                }
                let unacknowledged = connection.take_unacknowledged();
                match reconnect(plan, connect, trace, unacknowledged).await {
                    Ok(next) => {
                        if !plan.settings.quiet {
                            eprintln!("{}: reconnected", Tool::Pub.name());
                        }
                        connection = next;
                    }
                    Err(status) => return status,
                }
            }
        }
    }
}

/// A PUBLISH for one line of `-l` (the line is the payload) or `--json`.
fn message_from_line(
    plan: &Plan,
    publisher: &mut Publisher,
    line: Vec<u8>,
) -> Result<Publish, String> {
    match plan.source {
        Source::Json => {
            let message = parse_json_line(&line)?;
            let topic = TopicName::new(message.topic.as_str())
                .map_err(|_| format!("invalid topic '{}'", message.topic))?;
            let qos = match message.qos {
                Some(q) => QoS::from_u8(q).unwrap_or(plan.qos),
                None => plan.qos,
            };
            let mut publish = publisher.message(
                &topic,
                Bytes::from(message.payload),
                qos,
                message.retain.unwrap_or(plan.retain),
            );
            if plan.settings.version().is_v5() {
                for property in message.properties.iter() {
                    if !matches!(property, Property::TopicAlias(_)) {
                        publish.properties.push(property.clone());
                    }
                }
            }
            Ok(publish)
        }
        _ => {
            let topic = plan.topic.as_ref().ok_or("no topic")?;
            Ok(publisher.message(topic, Bytes::from(line), plan.qos, plan.retain))
        }
    }
}

/// Connects again every second until it works; unacknowledged messages are
/// sent again on the new connection.
async fn reconnect(
    plan: &Plan,
    connect: &Connect,
    trace: &Trace,
    unacknowledged: Vec<Unacknowledged>,
) -> Result<Connection, u8> {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = interrupted() => return Err(0),
        }
        match open(&plan.settings, connect, trace.clone()).await {
            Ok((mut connection, _)) => {
                if connection.resume(unacknowledged.clone()).is_err() {
                    continue;
                }
                return Ok(connection);
            }
            Err(failure @ Failure::Client(ClientError::Refused(_))) => {
                return Err(report(&failure, Tool::Pub, connect, plan.settings.quiet));
            }
            Err(_) => continue,
        }
    }
}
