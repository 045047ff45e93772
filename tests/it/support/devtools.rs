//! Headless Chromium driven through the Chrome DevTools Protocol: the browser
//! starts with `--remote-debugging-port=0`, writes the port it chose to
//! `DevToolsActivePort` in its profile, and the test talks JSON to the page over
//! a WebSocket (tungstenite, already the broker's framing). This needs no
//! chromedriver, which Debian packages apart from Chromium.
//!
//! Waiting happens in the page: [`Page::wait_until`] sends a promise that
//! resolves when its condition holds, checked on each animation frame, and the
//! test blocks on its answer with a deadline.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// Chromium (Debian's `chromium`, or `MQTTKIT_CHROMIUM`), or `None` with the
/// reason printed; required when `MQTTKIT_REQUIRE_BROWSER=1` (set by `.ci/run`).
pub fn chromium(test: &str) -> Option<PathBuf> {
    let chromium = std::env::var_os("MQTTKIT_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if chromium.exists() {
        return Some(chromium);
    }
    skip_or_fail(test, &format!("no Chromium at {}", chromium.display()));
    None
}

/// Prints why `test` is skipped, or fails it when the browser tests are required.
pub fn skip_or_fail(test: &str, missing: &str) {
    if std::env::var("MQTTKIT_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
        panic!("{test}: the browser test is required (MQTTKIT_REQUIRE_BROWSER=1): {missing}");
    }
    eprintln!("skipped {test}: {missing}");
}

/// The switches every test browser gets: headless, as root, no traffic of its own.
pub const HEADLESS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    // The test CA is not in the browser's store.
    "--ignore-certificate-errors",
];

/// A headless Chromium with one page under the test's control; killed when dropped.
pub struct Page {
    child: Child,
    socket: WebSocket<TcpStream>,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Page {
    /// Starts Chromium on `about:blank` and attaches to its page.
    pub fn open(chromium: &Path, width: u32, height: u32) -> Page {
        let profile = tempfile::tempdir().expect("profile dir");
        let child = Command::new(chromium)
            // Its own process group, so that dropping the page ends the renderers
            // and helpers too.
            .process_group(0)
            .args(HEADLESS)
            .arg("--remote-debugging-port=0")
            .arg("--remote-allow-origins=*")
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let mut page = PendingPage {
            child: Some(child),
            profile: Some(profile),
        };
        let port = page.debugging_port();
        let url = page_socket_url(port);
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("DevTools socket");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("read timeout");
        let (socket, _) = tungstenite::client(url.as_str(), stream).expect("attach to the page");
        Page {
            child: page.child.take().expect("child"),
            socket,
            next_id: 1,
            _profile: page.profile.take().expect("profile"),
        }
    }

    /// Sends one command and returns its result, skipping events.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"id": id, "method": method, "params": params});
        self.socket
            .send(Message::text(request.to_string()))
            .expect("send to the browser");
        loop {
            let message = self
                .socket
                .read()
                .unwrap_or_else(|e| panic!("{method}: no answer from the browser: {e}"));
            let Message::Text(text) = message else {
                continue;
            };
            let answer: Value = serde_json::from_str(text.as_str()).expect("DevTools JSON");
            if answer["id"] != json!(id) {
                continue;
            }
            if let Some(error) = answer.get("error") {
                panic!("{method} failed: {error}");
            }
            return answer["result"].clone();
        }
    }

    /// Loads `url` in the page.
    pub fn navigate(&mut self, url: &str) {
        let result = self.call("Page.navigate", json!({ "url": url }));
        if let Some(error) = result.get("errorText") {
            panic!("loading {url} failed: {error}");
        }
    }

    /// The value of a JavaScript expression (awaited when it is a promise).
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(exception) = result.get("exceptionDetails") {
            panic!("{expression} threw: {exception}");
        }
        result["result"]["value"].clone()
    }

    /// Waits until `condition` (a JavaScript expression) is truthy in the page,
    /// checked on each animation frame, for at most `limit`; returns
    /// `describe`'s value then, or fails the test with it.
    pub fn wait_until(&mut self, condition: &str, describe: &str, limit: Duration) -> Value {
        let script = format!(
            "new Promise((resolve) => {{ const end = performance.now() + {ms}; \
             const check = () => {{ let ok = false; try {{ ok = !!({condition}); }} catch (e) {{}} \
             if (ok || performance.now() > end) resolve({{ ok, seen: ({describe}) }}); \
             else requestAnimationFrame(check); }}; check(); }})",
            ms = limit.as_millis()
        );
        let started = Instant::now();
        let answer = self.eval(&script);
        assert!(
            answer["ok"] == json!(true),
            "after {:?}, still not {condition}; the page shows {}",
            started.elapsed(),
            answer["seen"]
        );
        answer["seen"].clone()
    }

    /// A PNG of the whole page, beyond the window too.
    pub fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine as _;
        let size = self.eval(
            // Without its scroll bar (the capture grows the window to the whole page),
            // the page is as wide as the window.
            "[window.innerWidth, document.documentElement.scrollHeight]",
        );
        let clip = json!({"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1});
        let result = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true, "clip": clip}),
        );
        let data = result["data"].as_str().expect("screenshot data");
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64 PNG")
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        end_group(&mut self.child);
    }
}

/// Kills the browser's process group (the browser leads it) and reaps the browser.
fn end_group(child: &mut Child) {
    if let Ok(group) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the group; nothing is shared.
        unsafe { libc::kill(-group, libc::SIGKILL) };
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The browser while the test attaches: killed if attaching fails.
struct PendingPage {
    child: Option<Child>,
    profile: Option<tempfile::TempDir>,
}

impl PendingPage {
    /// The port Chromium chose, from `DevToolsActivePort` once it exists.
    fn debugging_port(&mut self) -> u16 {
        let file = self
            .profile
            .as_ref()
            .expect("profile")
            .path()
            .join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Two lines (the port, the browser's path): a file being written has fewer.
            if let Ok(text) = std::fs::read_to_string(&file)
                && text.lines().count() >= 2
                && let Some(port) = text.lines().next().and_then(|line| line.parse().ok())
            {
                return port;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok())
                .flatten()
            {
                panic!("chromium exited before it listened: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "chromium wrote no DevToolsActivePort in 30 s"
            );
            // The file appears once, written by a process that does not signal us.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PendingPage {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            end_group(&mut child);
        }
    }
}

/// The DevTools WebSocket address of a new page (`/json/new`): a tab of the
/// test's own, which nothing else opens or closes while the browser starts.
fn page_socket_url(port: u16) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("DevTools HTTP");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    stream
        .write_all(
            format!(
                "PUT /json/new?about:blank HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .expect("ask for a page");
    // Chromium keeps the connection open: the body ends at its Content-Length.
    let mut reply = Vec::new();
    let body = loop {
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).expect("the new page");
        assert!(read > 0, "DevTools closed before answering");
        reply.extend_from_slice(&chunk[..read]);
        let text = String::from_utf8_lossy(&reply);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            continue;
        };
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .expect("Content-Length");
        if body.len() >= length {
            break body[..length].to_string();
        }
    };
    let target: Value = serde_json::from_str(&body).expect("target JSON");
    target["webSocketDebuggerUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("no page target in {body}"))
        .to_string()
}
