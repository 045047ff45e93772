//! The paho-mqtt Python client, for MQTT 5 interop scenarios (`tests/it/paho_v5.py`).
//!
//! The interpreter is `MQTTKIT_PYTHON`, else the virtualenv `.ci/run` creates in
//! `target/interop-venv`, else `python3`, whichever can import paho. Without one a
//! test prints why it is skipped, unless `MQTTKIT_REQUIRE_PAHO=1` (set by `.ci/run`).

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

fn imports_paho(python: &PathBuf) -> bool {
    Command::new(python)
        .args(["-c", "import paho.mqtt.client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// A Python interpreter with paho-mqtt, or `None` (skip reason printed).
pub fn python(test: &str) -> Option<PathBuf> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/interop-venv/bin/python");
    let candidates = std::env::var_os("MQTTKIT_PYTHON")
        .map(PathBuf::from)
        .into_iter()
        .chain([venv, PathBuf::from("python3")]);
    for candidate in candidates {
        if imports_paho(&candidate) {
            return Some(candidate);
        }
    }
    if std::env::var("MQTTKIT_REQUIRE_PAHO").is_ok_and(|v| v == "1") {
        panic!("{test}: paho-mqtt is required (MQTTKIT_REQUIRE_PAHO=1) but not importable");
    }
    eprintln!("skipped {test}: no Python with paho-mqtt (pip install paho-mqtt)");
    None
}

/// Runs `script` with `args`; returns its status and stdout, or fails the test
/// after `limit`. stderr (a failing scenario's traceback) is passed through.
pub fn run_script(
    python: &PathBuf,
    script: &str,
    args: &[&str],
    limit: Duration,
) -> (ExitStatus, String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(script);
    let mut child = Command::new(python)
        .arg(path)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start python");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for python") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{script} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, reader.join().expect("stdout reader"))
}
