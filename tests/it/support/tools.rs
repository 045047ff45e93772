//! Running command-line clients (rsub, rpub and mosquitto's) as processes with
//! controlled stdin, environment and deadlines, capturing stdout bytes, stderr
//! and the exit status.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::WAIT;

/// The path of one of the project's binaries.
pub fn ours(name: &str) -> &'static str {
    match name {
        "rsub" => env!("CARGO_BIN_EXE_rsub"),
        "rpub" => env!("CARGO_BIN_EXE_rpub"),
        other => panic!("no binary {other}"),
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// The exit status, `None` if a signal ended it.
    pub status: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Finished {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The first line of stderr: the part scripts grep for.
    pub fn first_error_line(&self) -> &str {
        self.stderr.lines().next().unwrap_or("")
    }
}

/// A running client; its output is collected as it arrives, so a test can wait
/// for a line, and in full when it exits.
pub struct Running {
    child: Child,
    stdout: Collected,
    stderr: Collected,
    program: String,
}

/// Bytes read from one of the child's pipes so far, and the reading thread.
struct Collected {
    bytes: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Collected {
    fn start(reader: Option<impl Read + Send + 'static>) -> Self {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&bytes);
        let reader = reader.map(|mut reader| {
            std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = reader.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .expect("output lock")
                        .extend_from_slice(&chunk[..n]);
                }
            })
        });
        Collected { bytes, reader }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes.lock().expect("output lock")).into_owned()
    }

    /// Everything, once the pipe closed.
    fn take(&mut self) -> Vec<u8> {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        std::mem::take(&mut *self.bytes.lock().expect("output lock"))
    }
}

/// Starts `program` with `args`; `stdin` is written and closed, or stays
/// open when `None` (see [`Running::stdin`]). No user defaults file is read:
/// XDG_CONFIG_HOME points at `config_home`, or at a directory that does not exist.
pub fn start(
    program: &str,
    args: &[&str],
    stdin: Option<&[u8]>,
    config_home: Option<&std::path::Path>,
) -> Running {
    start_with_env(program, args, stdin, config_home, &[])
}

/// [`start`] with extra environment variables (MQTT_PASSWORD and NO_COLOR are
/// otherwise removed).
pub fn start_with_env(
    program: &str,
    args: &[&str],
    stdin: Option<&[u8]>,
    config_home: Option<&std::path::Path>,
    env: &[(&str, &str)],
) -> Running {
    let missing = std::path::PathBuf::from("/nonexistent/mqttkit-tests");
    let mut child = Command::new(program)
        .args(args)
        .env("XDG_CONFIG_HOME", config_home.unwrap_or(&missing))
        .env_remove("MQTT_PASSWORD")
        .env_remove("NO_COLOR")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    if let Some(bytes) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        let bytes = bytes.to_vec();
        std::thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let stdout = Collected::start(child.stdout.take());
    let stderr = Collected::start(child.stderr.take());
    Running {
        child,
        stdout,
        stderr,
        program: format!("{program} {args:?}"),
    }
}

impl Running {
    /// Stdin, while it is still open.
    pub fn stdin(&mut self) -> Option<&mut std::process::ChildStdin> {
        self.child.stdin.as_mut()
    }

    /// Stdin, to write from another thread; dropping it ends the input.
    pub fn take_stdin(&mut self) -> std::process::ChildStdin {
        self.child.stdin.take().expect("stdin still open")
    }

    /// Closes stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.child.stdin.take();
    }

    /// Writes to stdin, which must still be open.
    pub fn write_stdin(&mut self, bytes: &[u8]) {
        let pipe = self.stdin().expect("stdin still open");
        pipe.write_all(bytes).expect("write to stdin");
        pipe.flush().expect("flush stdin");
    }

    /// Stdout so far.
    pub fn stdout_so_far(&self) -> String {
        self.stdout.text()
    }

    /// Waits until stdout holds `count` lines containing `text`.
    pub fn wait_for_stdout(&self, text: &str, count: usize) {
        self.wait_for(&self.stdout, "stdout", text, count);
    }

    /// Waits until stderr holds `count` lines containing `text`.
    pub fn wait_for_stderr(&self, text: &str, count: usize) {
        self.wait_for(&self.stderr, "stderr", text, count);
    }

    fn wait_for(&self, output: &Collected, name: &str, text: &str, count: usize) {
        let deadline = Instant::now() + WAIT;
        loop {
            let seen = output.text();
            if seen.lines().filter(|line| line.contains(text)).count() >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: fewer than {count} {name} lines containing {text:?} within {WAIT:?}; {name}: {seen:?}",
                self.program
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends SIGINT, as Ctrl-C does.
    pub fn interrupt(&self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGINT);
        }
    }

    /// Waits for the exit (failing the test after `limit`) and collects output.
    pub fn finish_within(mut self, limit: Duration) -> Finished {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stdout = self.stdout.take();
                panic!(
                    "{} still running after {limit:?}; stdout so far: {:?}",
                    self.program,
                    String::from_utf8_lossy(&stdout)
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = self.stdout.take();
        let stderr = self.stderr.take();
        Finished {
            status: status.code(),
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    pub fn finish(self) -> Finished {
        self.finish_within(WAIT * 2)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs to completion with `stdin` (empty when `None`).
pub fn run(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Finished {
    start(program, args, Some(stdin.unwrap_or(b"")), None).finish()
}

/// Replaces what differs between runs by design: broker-assigned client ids
/// (`auto-<UUID>`) and the `tst` of `%j` lines.
pub fn mask(text: &str) -> String {
    let mut out = text.to_string();
    for (prefix, is_id) in [
        (
            "auto-",
            (|c: char| c.is_ascii_hexdigit() || c == '-') as fn(char) -> bool,
        ),
        ("mosq-", |c: char| c.is_ascii_alphanumeric()),
    ] {
        let mut masked = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(at) = rest.find(prefix) {
            masked.push_str(&rest[..at]);
            masked.push_str(prefix);
            masked.push_str("ID");
            let tail = &rest[at + prefix.len()..];
            let id_len = tail.find(|c: char| !is_id(c)).unwrap_or(tail.len());
            rest = &tail[id_len..];
        }
        masked.push_str(rest);
        out = masked;
    }
    let mut masked = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(at) = rest.find("\"tst\":") {
        let after = &rest[at + 6..];
        let value_start = after.find('"').map(|i| i + 1).unwrap_or(0);
        let value_end = after[value_start..]
            .find('"')
            .map(|i| value_start + i + 1)
            .unwrap_or(after.len());
        masked.push_str(&rest[..at]);
        masked.push_str("\"tst\":");
        masked.push_str(&after[..value_start.saturating_sub(1)]);
        masked.push_str("\"T\"");
        rest = &after[value_end..];
    }
    masked.push_str(rest);
    masked
}
