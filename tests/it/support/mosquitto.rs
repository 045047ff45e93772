//! The real mosquitto broker and clients, for interop tests.
//!
//! When they are not installed a test prints why it is skipped and passes, unless
//! `MQTTKIT_REQUIRE_MOSQUITTO=1` (set by `.ci/run`) makes their absence a failure.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use super::WAIT;

fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// True when mosquitto, mosquitto_sub and mosquitto_pub are on PATH; otherwise
/// prints the skip reason, or fails when they are required.
pub fn available(test: &str) -> bool {
    if ["mosquitto", "mosquitto_sub", "mosquitto_pub"]
        .iter()
        .all(|p| installed(p))
    {
        return true;
    }
    if std::env::var("MQTTKIT_REQUIRE_MOSQUITTO").is_ok_and(|v| v == "1") {
        panic!("{test}: mosquitto is required (MQTTKIT_REQUIRE_MOSQUITTO=1) but not installed");
    }
    eprintln!(
        "skipped {test}: mosquitto not installed (apt-get install mosquitto mosquitto-clients)"
    );
    false
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    // The kernel may hand the same port to two binds in a row once the first
    // socket is closed, and tests ask for several at once: never return one twice.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Waits until something accepts connections on `port`.
pub fn wait_until_listening(port: u16) {
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "nothing listening on port {port} after {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A real mosquitto broker on a free loopback port; killed when dropped.
pub struct Mosquitto {
    child: Child,
    pub port: u16,
    _config: tempfile::NamedTempFile,
}

impl Mosquitto {
    /// Starts mosquitto with a listener on 127.0.0.1, anonymous access, and `extra`
    /// config lines.
    pub fn start(extra: &str) -> Self {
        let port = free_port();
        let mut config = tempfile::NamedTempFile::new().expect("temp config");
        std::io::Write::write_all(
            &mut config,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\n{extra}\n").as_bytes(),
        )
        .expect("write config");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(config.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        wait_until_listening(port);
        Mosquitto {
            child,
            port,
            _config: config,
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running client tool whose stdout is read line by line.
pub struct Tool {
    child: Child,
    lines: Receiver<String>,
    pub seen: Vec<String>,
}

impl Tool {
    /// Starts `program` with line-buffered stdout (`stdbuf -oL`): mosquitto_sub's
    /// `-d` lines are otherwise held in a block buffer while stdout is a pipe.
    pub fn spawn(program: &str, args: &[&str]) -> Self {
        let mut child = Command::new("stdbuf")
            .arg("-oL")
            .arg(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Tool {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a stdout line containing `text`.
    pub fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(text);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    panic!("no line containing {text:?}; saw {:?}", self.seen)
                }
            }
        }
    }

    /// Waits for the tool to exit; returns its status and every stdout line.
    pub fn finish(mut self) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for tool") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "tool still running after {WAIT:?}; saw {:?}",
                self.seen
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        while let Ok(line) = self.lines.recv_timeout(WAIT) {
            self.seen.push(line);
        }
        (status, std::mem::take(&mut self.seen))
    }

    /// SIGKILL: the process ends without sending DISCONNECT.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Tool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a tool to completion; returns its status and stdout lines.
pub fn run(program: &str, args: &[&str]) -> (ExitStatus, Vec<String>) {
    Tool::spawn(program, args).finish()
}

/// mosquitto_sub with `-d`, once its SUBACK arrived.
pub fn subscriber(port: &str, args: &[&str]) -> Tool {
    let mut full = vec!["-p", port, "-d"];
    full.extend_from_slice(args);
    let mut tool = Tool::spawn("mosquitto_sub", &full);
    tool.wait_for("received SUBACK");
    tool
}

/// Runs mosquitto_pub to completion; fails the test unless it succeeds.
pub fn publish(port: &str, args: &[&str]) {
    let mut full = vec!["-p", port];
    full.extend_from_slice(args);
    let (status, lines) = run("mosquitto_pub", &full);
    assert!(
        status.success(),
        "mosquitto_pub {args:?}: {status} {lines:?}"
    );
}

/// Output lines that are messages, not `-d` debug lines.
pub fn messages(lines: &[String]) -> Vec<&str> {
    lines
        .iter()
        .map(String::as_str)
        .filter(|l| !l.starts_with("Client ") && !l.starts_with("Subscribed"))
        .collect()
}
