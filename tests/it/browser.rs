//! A real browser: headless Chromium loads a page (`tests/browser/index.html`) and
//! mqtt.js from rbroker's `http_dir`, connects over ws and wss, receives what rpub
//! publishes and publishes what rsub receives. The page reports through MQTT, so
//! the test reads everything with rsub and needs no WebDriver.
//!
//! Chromium is Debian's `chromium` (or `MQTTKIT_CHROMIUM`); mqtt.js is npm's
//! `mqtt`, looked for in `MQTTKIT_MQTTJS` or `target/browser/node_modules` (where
//! `.ci/run` installs it). Without either the test says why and is skipped, unless
//! `MQTTKIT_REQUIRE_BROWSER=1` (set by `.ci/run`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support::certs::Certs;
use crate::support::credentials::{open_to_all, shared_dir};
use crate::support::devtools::{HEADLESS, chromium, skip_or_fail};
use crate::support::logged::Running;
use crate::support::mosquitto::{Tool, free_port, run};

const RSUB: &str = env!("CARGO_BIN_EXE_rsub");
const RPUB: &str = env!("CARGO_BIN_EXE_rpub");

/// Chromium and mqtt.min.js, or `None` with the reason printed.
fn browser_and_mqtt_js(test: &str) -> Option<(PathBuf, PathBuf)> {
    let chromium = chromium(test)?;
    let mqtt_js = std::env::var_os("MQTTKIT_MQTTJS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("target/browser/node_modules/mqtt/dist/mqtt.min.js")
        });
    if mqtt_js.exists() {
        return Some((chromium, mqtt_js));
    }
    let missing = format!(
        "no mqtt.js at {} (npm install --prefix target/browser mqtt@5)",
        mqtt_js.display()
    );
    skip_or_fail(test, &missing);
    None
}

/// Headless Chromium showing `url`; killed when dropped.
struct Browser {
    child: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn open(chromium: &Path, url: &str) -> Browser {
        let profile = tempfile::tempdir().expect("profile dir");
        let child = Command::new(chromium)
            .args(HEADLESS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        Browser {
            child,
            _profile: profile,
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_browser_page_from_http_dir_talks_mqtt_over_ws_and_wss() {
    let test = "a_browser_page_from_http_dir_talks_mqtt_over_ws_and_wss";
    let Some((chromium, mqtt_js)) = browser_and_mqtt_js(test) else {
        return;
    };
    let certs = Certs::generate();
    let dir = shared_dir();
    let www = dir.path().join("www");
    std::fs::create_dir(&www).expect("mkdir");
    open_to_all(&www, 0o755);
    let page = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/index.html");
    std::fs::copy(&page, www.join("index.html")).expect("copy page");
    std::fs::copy(&mqtt_js, www.join("mqtt.min.js")).expect("copy mqtt.js");
    let (plain, ws, wss) = (free_port(), free_port(), free_port());
    let conf = dir.path().join("browser.conf");
    std::fs::write(
        &conf,
        format!(
            "allow_anonymous true\nlistener {plain} 127.0.0.1\n\
             listener {ws} 127.0.0.1\nprotocol websockets\nhttp_dir {}\n\
             listener {wss} 127.0.0.1\nprotocol websockets\ncertfile {}\nkeyfile {}\n",
            www.display(),
            certs.server_cert.display(),
            certs.server_key.display()
        ),
    )
    .expect("write conf");
    let _broker = Running::start(&["-c", conf.to_str().expect("utf-8")]);
    let plain = plain.to_string();
    let mut reports = Tool::spawn(
        RSUB,
        &["-d", "-C", "4", "-p", &plain, "-t", "browser/from-page"],
    );
    reports.wait_for("received SUBACK");
    let url = format!(
        "http://127.0.0.1:{ws}/index.html?topic=browser&ws=ws://127.0.0.1:{ws}/mqtt&wss=wss://localhost:{wss}/mqtt"
    );
    let _browser = Browser::open(&chromium, &url);
    // The page connected over both, subscribed, and said so.
    reports.wait_for("ready ");
    reports.wait_for("ready ");
    for scheme in ["ws", "wss"] {
        let ready = format!("ready {scheme}");
        assert!(reports.seen.contains(&ready), "{:?}", reports.seen);
    }
    let (status, _) = run(
        RPUB,
        &[
            "-p",
            &plain,
            "-t",
            "browser/to-page",
            "-m",
            "hello page",
            "-q",
            "1",
        ],
    );
    assert!(status.success());
    let (_, lines) = reports.finish();
    for scheme in ["ws", "wss"] {
        let echo = format!("page {scheme} got hello page");
        assert!(lines.contains(&echo), "no {echo:?} in {lines:?}");
    }
}
