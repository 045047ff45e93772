//! A broker process whose log is read as it runs: for the startup, `-v` and
//! reload lines, against rbroker's binary and mosquitto alike.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};

use super::WAIT;

/// A broker (rbroker, or mosquitto) running as a process, its stderr read line
/// by line: `raw` as written, `seen` with a "<unix time>: " prefix dropped.
pub struct Running {
    child: Child,
    lines: Receiver<String>,
    pub seen: Vec<String>,
    pub raw: Vec<String>,
}

/// A line without its "<unix time>: " prefix, if it has one.
fn without_time(line: &str) -> String {
    match line.split_once(": ") {
        Some((time, rest)) if !time.is_empty() && time.bytes().all(|b| b.is_ascii_digit()) => {
            rest.to_string()
        }
        _ => line.to_string(),
    }
}

impl Running {
    /// rbroker with `args`, once it logged that it runs.
    pub fn start(args: &[&str]) -> Self {
        Self::program(env!("CARGO_BIN_EXE_rbroker"), args)
    }

    /// `program` (rbroker or mosquitto) with `args`, once it logged that it runs.
    pub fn program(program: &str, args: &[&str]) -> Self {
        let mut command = Command::new(program);
        command.args(args);
        Self::command(command)
    }

    /// A broker started by `command` (its stderr is taken over), once it logged
    /// that it runs.
    pub fn command(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {command:?}: {e}"));
        let stderr = child.stderr.take().expect("piped");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut running = Running {
            child,
            lines,
            seen: Vec::new(),
            raw: Vec::new(),
        };
        // "... version X running", not "... clients running on this machine."
        while !running.wait_for(" running").ends_with(" running") {}
        running
    }

    pub fn wait_for(&mut self, text: &str) -> String {
        self.wait_for_any(&[text])
    }

    /// The first line containing `text`, within `limit` however quiet the log
    /// is meanwhile (for what the broker does on a timer of its own).
    pub fn wait_for_within(&mut self, text: &str, limit: std::time::Duration) -> String {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(raw) => {
                    let line = without_time(&raw);
                    self.raw.push(raw);
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line containing {text:?} within {limit:?}; stderr so far: {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// The first line containing any of `texts`: for an event a broker may
    /// report in more than one way (mosquitto's TLS failures depend on
    /// whether the bytes arrived before or after the accept).
    pub fn wait_for_any(&mut self, texts: &[&str]) -> String {
        loop {
            match self.lines.recv_timeout(WAIT) {
                Ok(raw) => {
                    let line = without_time(&raw);
                    self.raw.push(raw);
                    self.seen.push(line.clone());
                    if texts.iter().any(|text| line.contains(text)) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line containing any of {texts:?}; stderr so far: {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// The lines logged from now until `limit` passes (for what must not
    /// happen within it).
    pub fn lines_within(&mut self, limit: std::time::Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + limit;
        let mut lines = Vec::new();
        while let Ok(raw) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            let line = without_time(&raw);
            self.raw.push(raw);
            self.seen.push(line.clone());
            lines.push(line);
        }
        lines
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid fits");
        // SAFETY: sending a signal to our own child process.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    pub fn wait(mut self) -> i32 {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                while let Ok(raw) = self.lines.recv_timeout(WAIT) {
                    self.seen.push(without_time(&raw));
                    self.raw.push(raw);
                }
                return status.code().expect("exited normally");
            }
            assert!(std::time::Instant::now() < deadline, "rbroker did not exit");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `program` (rbroker or mosquitto) on `conf`, which must stop startup:
/// returns its exit status and stderr, killing it (and failing) if it starts.
pub fn refused_start(program: &str, conf: &std::path::Path) -> (Option<i32>, String) {
    let mut child = Command::new(program)
        .arg("-c")
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    let deadline = std::time::Instant::now() + WAIT;
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{program} started with {}", conf.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let output = child.wait_with_output().expect("output");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
