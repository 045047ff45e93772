//! `docs/learn-mqtt.md`, run as a reader would run it: a broker started with
//! `rbroker -v`, then every console block in order, by trycmd, which compares
//! each command's output and exit status with the page (`[..]` and `...` stand
//! for what varies). The page's commands name no port, as the reader's reach
//! 1883; here rsub and rpub find the test broker's port in their defaults files
//! (`$XDG_CONFIG_HOME/rsub`, as mosquitto_sub's). Two kinds of block trycmd does
//! not run are checked here too: the `log` blocks, the broker's own lines, which
//! must appear in its log in that order; and the `python` blocks, run with
//! paho-mqtt. Section 10's files come from `docs/learn-mqtt.in/` and the
//! commands run in a copy of it (trycmd's sandbox, on because
//! `docs/learn-mqtt.out/` exists, which holds what section 10 must leave there).
//!
//! `TRYCMD=overwrite cargo test learn` rewrites the console blocks' output.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::credentials::shared_dir;
use crate::support::files::{RBROKER, write};
use crate::support::logged::Running;
use crate::support::mosquitto::free_port;
use crate::support::paho;

const PAGE: &str = "docs/learn-mqtt.md";

fn page() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(PAGE)
}

/// The blocks of `text` fenced with ```` ```language ````, each as its lines.
fn blocks<'a>(text: &'a str, language: &str) -> Vec<Vec<&'a str>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        match &mut current {
            None if line.trim_end() == format!("```{language}") => current = Some(Vec::new()),
            Some(lines) if line.starts_with("```") => {
                blocks.push(std::mem::take(lines));
                current = None;
            }
            Some(lines) => lines.push(line),
            None => {}
        }
    }
    blocks
}

/// Whether `line` fits `pattern`, where `[..]` stands for any text (trycmd's
/// notation, so the page reads the same in every block).
fn fits(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("[..]").collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == line;
    };
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Finds the lines of `block` in `log` from `from` on: consecutive lines,
/// except that `...` skips any number. Returns where the match ended.
fn find_block(log: &[String], block: &[&str], from: usize) -> Option<usize> {
    let mut at = from;
    for segment in block.split(|line| *line == "...") {
        if segment.is_empty() {
            continue;
        }
        // The first segment, and each after a `...`, may start anywhere later.
        let start = (at..log.len()).find(|start| {
            segment.len() <= log.len() - start
                && segment
                    .iter()
                    .zip(&log[*start..])
                    .all(|(pattern, line)| fits(pattern, line))
        });
        at = start? + segment.len();
    }
    Some(at)
}

/// Stops the brokers sections 10 to 12 start in the background (by their
/// command line, which only they have), when made and when dropped.
struct StopBackground;

impl StopBackground {
    fn now() -> Self {
        Self::stop();
        StopBackground
    }

    fn stop() {
        for conf in ["secure.conf", "small-queue.conf", "console.conf"] {
            let _ = std::process::Command::new("pkill")
                .args(["-f", &format!("rbroker -c {conf}")])
                .status();
        }
    }
}

impl Drop for StopBackground {
    fn drop(&mut self) {
        Self::stop();
    }
}

#[test]
fn the_walkthrough_runs_as_written() {
    let dir = shared_dir();
    let port = free_port();
    let config = dir.path().join("config");
    std::fs::create_dir(&config).expect("config dir");
    // 127.0.0.1, not localhost: the log lines the page shows say 127.0.0.1,
    // where localhost may resolve to ::1 first.
    for tool in ["rsub", "rpub"] {
        write(&config, tool, &format!("-h 127.0.0.1\n-p {port}\n"));
    }
    let mut broker = Running::program(RBROKER, &["-v", "-p", &port.to_string()]);
    // `timeout` runs rsub by name, as the reader's shell would.
    let bins = Path::new(env!("CARGO_BIN_EXE_rsub"))
        .parent()
        .expect("target directory");
    let path = format!(
        "{}:{}",
        bins.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Sections 10 to 12 start brokers in the background on fixed ports, as the
    // page does; one left over by an interrupted run would hold them.
    // They are stopped before the run, and after it however it ends: trycmd
    // skips the steps after a failure, the page's `pkill` lines included.
    let _background = StopBackground::now();
    let program = |name: &str| {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .map(|dir| dir.join(name))
            .find(|path| path.exists())
            .unwrap_or_else(|| panic!("{name} is needed by {PAGE}"))
    };
    trycmd::TestCases::new()
        .env("XDG_CONFIG_HOME", config.display().to_string())
        .env("PATH", path)
        .register_bin("rbroker", Path::new(RBROKER))
        .register_bin("rsub", Path::new(env!("CARGO_BIN_EXE_rsub")))
        .register_bin("rpub", Path::new(env!("CARGO_BIN_EXE_rpub")))
        .register_bin("rbench", Path::new(env!("CARGO_BIN_EXE_rbench")))
        .register_bin("timeout", program("timeout"))
        .register_bin("openssl", program("openssl"))
        .register_bin("pkill", program("pkill"))
        // A command that never ends (a subscriber waiting for a message that
        // did not come) fails the test instead of hanging it.
        .timeout(Duration::from_secs(30))
        .case(page())
        .run();

    let text = std::fs::read_to_string(page()).expect("the page");
    // The configuration files the page shows are the ones its commands use.
    let fixtures = page().with_extension("in");
    for entry in std::fs::read_dir(&fixtures).expect("docs/learn-mqtt.in") {
        let path = entry.expect("entry").path();
        let file = std::fs::read_to_string(&path).expect("fixture");
        assert!(
            blocks(&text, "text")
                .iter()
                .any(|block| block.join("\n") == file.trim_end()),
            "{PAGE} does not show {} as it is",
            path.display()
        );
    }
    // The pictures it shows are in the repository (the console test takes them).
    for image in text.split("](images/").skip(1) {
        let name = image.split(')').next().expect("a closing parenthesis");
        let path = page().with_file_name("images").join(name);
        assert!(
            path.is_file(),
            "{PAGE} shows {}, which is missing",
            path.display()
        );
    }
    // The Python blocks, against the same broker.
    let test = "the_walkthrough_runs_as_written";
    let Some(python) = paho::python(test) else {
        eprintln!("skipped the Python blocks and the broker's log of {PAGE}: no paho-mqtt");
        return;
    };
    let snippets = blocks(&text, "python");
    assert_eq!(snippets.len(), 2, "the Python blocks of {PAGE}");
    for block in snippets {
        let script = block.join("\n").replace("1883", &port.to_string());
        let path = write(dir.path(), "snippet.py", &script);
        let (status, printed) = paho::run_script(&python, &path, &[], Duration::from_secs(30));
        assert!(status.success(), "{script}\n{printed}");
        // The page says what it prints, right after the block.
        let said = text
            .split(&block.join("\n"))
            .nth(1)
            .and_then(|after| after.split("It prints `").nth(1))
            .and_then(|rest| rest.split('`').next())
            .expect("the page says what the snippet prints");
        assert_eq!(printed.trim(), said, "{script}");
    }

    // The broker's lines, as the reader's terminal shows them on port 1883.
    let mut log = broker.seen.clone();
    log.extend(broker.lines_within(Duration::from_millis(300)));
    let log: Vec<String> = log
        .into_iter()
        .map(|line| line.replace(&format!("on port {port}."), "on port 1883."))
        .collect();
    let mut from = 0;
    let log_blocks = blocks(&text, "log");
    assert_eq!(log_blocks.len(), 4, "the log blocks of {PAGE}");
    for block in log_blocks {
        match find_block(&log, &block, from) {
            Some(end) => from = end,
            None => panic!("not in the broker's log in this order: {block:#?}\nlog: {log:#?}"),
        }
    }
}

#[test]
fn log_blocks_match_lines_and_gaps() {
    let log: Vec<String> = ["a 1", "b 2", "c 3", "d 4"].map(String::from).into();
    assert_eq!(find_block(&log, &["b [..]", "c 3"], 0), Some(3));
    assert_eq!(find_block(&log, &["a [..]", "...", "d 4"], 0), Some(4));
    assert_eq!(
        find_block(&log, &["a 1", "c 3"], 0),
        None,
        "not consecutive"
    );
    assert_eq!(find_block(&log, &["c 3"], 3), None, "not after `from`");
    assert!(fits("x [..] y [..] z", "x 1 y 2 z"));
    assert!(!fits("x[..]y", "x"));
}
