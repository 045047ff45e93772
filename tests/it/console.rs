//! The web console (`web_console true`) in headless Chromium, driven through the
//! DevTools protocol: messages from rpub appear in its topic tree with their QoS
//! and retained flag, its form publishes what rsub receives (MQTT 5 properties
//! included), a hostile payload or topic is shown as text and never runs, its
//! filter matcher gives the broker's answers to the 15-filter exercise, its `$SYS`
//! charts fill, and it keeps up with 1,000 messages a second. The first and the
//! load test save screenshots to `target/console-screenshots/`; with
//! `MQTTKIT_BLESS=1` they also replace `docs/images/console.png` and
//! `console-load.png`, which the walkthrough shows.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mqttkit::protocol::topic::explain;
use serde_json::{Value, json};

use crate::support::credentials::{Maker, password_file, shared_dir};
use crate::support::devtools::{Page, chromium};
use crate::support::logged::Running;
use crate::support::mosquitto::{Tool, free_port, run};

const RSUB: &str = env!("CARGO_BIN_EXE_rsub");
const RPUB: &str = env!("CARGO_BIN_EXE_rpub");
const RBENCH: &str = env!("CARGO_BIN_EXE_rbench");

/// How long the page may take to show something the test caused.
const SHOWN: Duration = Duration::from_secs(15);

/// rbroker with a plain listener and a console listener, and a browser showing
/// the console.
struct Console {
    page: Page,
    plain: String,
    /// `None` while the test has stopped it.
    broker: Option<Running>,
    /// The broker's configuration, for a restart on the same ports.
    conf: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Console {
    /// `None` (with the reason printed) without Chromium. `before` runs once the
    /// broker is up and before the page opens; the page is connected on return.
    fn open(test: &str, before: impl FnOnce(&str)) -> Option<Console> {
        let mut console = Console::load(test, "allow_anonymous true\n", before)?;
        console.wait_for_state("connected");
        Some(console)
    }

    /// The console of a broker configured with `settings` and then the two
    /// listeners, once the page is loaded.
    fn load(test: &str, settings: &str, before: impl FnOnce(&str)) -> Option<Console> {
        let chromium = chromium(test)?;
        let dir = shared_dir();
        let (plain, ws) = (free_port(), free_port());
        let conf = dir.path().join("console.conf");
        std::fs::write(
            &conf,
            format!(
                "{settings}sys_interval 1\nlistener {plain} 127.0.0.1\n\
                 listener {ws} 127.0.0.1\nprotocol websockets\nweb_console true\n"
            ),
        )
        .expect("write conf");
        let broker = Running::start(&["-c", conf.to_str().expect("utf-8")]);
        // Logged with the listeners, before "running".
        let announced =
            format!("Web console on port {ws}: open http://localhost:{ws}/console/ in a browser.");
        assert!(broker.seen.contains(&announced), "{:?}", broker.seen);
        let plain = plain.to_string();
        before(&plain);
        let mut page = Page::open(&chromium, 1280, 900);
        // The bare address leads to the console.
        page.navigate(&format!("http://127.0.0.1:{ws}/"));
        Some(Console {
            page,
            plain,
            broker: Some(broker),
            conf,
            _dir: dir,
        })
    }

    /// Waits until the status says `state`; returns its text.
    fn wait_for_state(&mut self, state: &str) -> String {
        let shown = self.page.wait_until(
            &format!(
                "document.getElementById('status').dataset.state === {}",
                json!(state)
            ),
            "document.getElementById('status') && document.getElementById('status').textContent",
            SHOWN,
        );
        shown.as_str().expect("status text").to_string()
    }

    /// rpub with `args` on the plain listener; it must succeed.
    fn publish(&self, args: &[&str]) {
        let mut all = vec!["-p", &self.plain];
        all.extend_from_slice(args);
        let (status, lines) = run(RPUB, &all);
        assert!(status.success(), "rpub {args:?}: {lines:?}");
    }

    /// Waits until the tree row of `topic` shows `payload`; returns its
    /// `[payload, meta, name]` texts.
    fn row(&mut self, topic: &str, payload: &str) -> Vec<String> {
        let row = format!(
            "[...document.querySelectorAll('#tree .row')].find((r) => r.dataset.topic === {})",
            json!(topic)
        );
        let seen = self.page.wait_until(
            &format!(
                "{row} && {row}.querySelector('.payload').textContent === {}",
                json!(payload)
            ),
            &format!("{row} && [...{row}.children].map((c) => c.textContent)"),
            SHOWN,
        );
        let texts: Vec<String> = serde_json::from_value(seen).expect("texts");
        vec![texts[2].clone(), texts[3].clone(), texts[1].clone()]
    }
}

#[test]
fn the_console_shows_topics_publishes_from_its_form_and_never_runs_a_payload() {
    let test = "the_console_shows_topics_publishes_from_its_form_and_never_runs_a_payload";
    let Some(mut console) = Console::open(test, |plain| {
        // Retained before the page opens: the console gets it on subscribing.
        let (status, _) = run(
            RPUB,
            &[
                "-p",
                plain,
                "-t",
                "console/demo/greeting",
                "-m",
                "hello",
                "-r",
                "-q",
                "1",
            ],
        );
        assert!(status.success());
    }) else {
        return;
    };

    let [_, meta, _]: [String; 3] = console
        .row("console/demo/greeting", "hello")
        .try_into()
        .expect("3 texts");
    assert!(
        meta.contains("QoS 1") && meta.contains("retained"),
        "{meta}"
    );

    console.publish(&["-t", "console/demo/live", "-m", "2 live", "-q", "2"]);
    let [_, meta, _]: [String; 3] = console
        .row("console/demo/live", "2 live")
        .try_into()
        .expect("3 texts");
    assert!(
        meta.contains("QoS 2") && !meta.contains("retained"),
        "{meta}"
    );

    // Markup in a payload and in a topic is text, in the tree and in the detail.
    let hostile =
        "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>";
    let hostile_level = "<img src=x onerror=\"document.title='pwned'\">";
    let hostile_topic = format!("console/{hostile_level}");
    console.publish(&["-t", "console/hostile", "-m", hostile]);
    console.publish(&["-t", &hostile_topic, "-m", "named in markup"]);
    console.row("console/hostile", hostile);
    let [_, _, name]: [String; 3] = console
        .row(&hostile_topic, "named in markup")
        .try_into()
        .expect("3 texts");
    assert_eq!(name, hostile_level);
    let detail = console.page.eval(
        "(() => { [...document.querySelectorAll('#tree .row')].find((r) => r.dataset.topic === 'console/hostile').click(); \
         return document.getElementById('detail-payload').textContent; })()",
    );
    assert_eq!(detail, json!(hostile));
    let injected = console
        .page
        .eval("[document.title, document.querySelectorAll('main img, main script').length]");
    assert_eq!(
        injected,
        json!(["rbroker console", 0]),
        "markup from a message ran"
    );

    // The form publishes at QoS 2 with MQTT 5 properties, and rsub receives it.
    let mut receiver = Tool::spawn(
        RSUB,
        &[
            "-d",
            "-p",
            &console.plain,
            "-V",
            "5",
            "-q",
            "2",
            "-C",
            "1",
            "-t",
            "console/form",
            "-F",
            "%t|%q|%r|%C|%P|%p",
        ],
    );
    receiver.wait_for("received SUBACK");
    console.page.eval(
        "(() => { const set = (id, value) => { document.getElementById(id).value = value; }; \
         set('pub-topic', 'console/form'); set('pub-payload', 'from the form'); set('pub-qos', '2'); \
         set('pub-content-type', 'text/plain'); set('pub-user-properties', 'course=mqtt\\nstep=12'); \
         document.querySelector('#publish button[type=submit]').click(); return true; })()",
    );
    let result = console.page.wait_until(
        "document.getElementById('pub-result').textContent.startsWith('PUBCOMP')",
        "document.getElementById('pub-result').textContent",
        SHOWN,
    );
    assert_eq!(result, json!("PUBCOMP: 0x00 Success"));
    let (status, lines) = receiver.finish();
    assert!(status.success(), "{lines:?}");
    assert!(
        lines
            .contains(&"console/form|2|0|text/plain|course:mqtt step:12|from the form".to_string()),
        "{lines:?}"
    );
    console.row("console/form", "from the form");

    // The 15-filter exercise, typed into the matcher: each answer and its reason
    // are the broker's own (protocol::topic::explain).
    console.publish(&["-t", "a/b/c/d", "-m", "exercise"]);
    console.row("a/b/c/d", "exercise");
    // The exercise as the walkthrough asks it (section 3).
    let walkthrough =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/learn-mqtt.md"))
            .expect("the walkthrough");
    let exercise: Vec<&str> = walkthrough
        .lines()
        .find(|line| line.starts_with("$ rsub --match a/b/c/d "))
        .expect("the exercise's command")
        .split(" -t ")
        .skip(1)
        .map(|quoted| quoted.trim_matches('\''))
        .collect();
    assert_eq!(exercise.len(), 15, "{exercise:?}");
    for filter in exercise.iter().copied() {
        let verdict = explain(filter, "a/b/c/d");
        let shown = matcher_answer(&mut console.page, filter, "a/b/c/d");
        let list = if verdict.is_match() { "hit" } else { "miss" };
        assert_eq!(shown, json!([list, format!(" — {verdict}")]), "{filter}");
    }
    // $ topics are not for filters starting with a wildcard.
    let verdict = explain("#", "$SYS/broker/version");
    assert!(!verdict.is_match());
    let shown = matcher_answer(&mut console.page, "#", "$SYS/broker/version");
    assert_eq!(shown, json!(["miss", format!(" — {verdict}")]));
    // A shared subscription matches with the filter after its group.
    let shared = mqttkit::protocol::topic::TopicFilter::new("$share/lab/a/+/+/d").expect("valid");
    let verdict = explain(shared.filter(), "a/b/c/d");
    let shown = matcher_answer(&mut console.page, shared.as_str(), "a/b/c/d");
    assert_eq!(shown, json!(["hit", format!(" — {verdict}")]));
    // A filter the broker refuses is refused here too.
    for invalid in ["a/#/b", "a+/b", "$share/lab", "$share/l+b/a"] {
        assert!(mqttkit::protocol::topic::TopicFilter::new(invalid).is_err());
        console.page.eval(&format!(
            "(() => {{ const input = document.getElementById('match-filter'); input.value = {}; \
             input.dispatchEvent(new Event('input')); return true; }})()",
            json!(invalid)
        ));
        console.page.wait_until(
            &format!(
                "document.getElementById('match-summary').textContent.startsWith({} + ' is not a valid filter: ')",
                json!(invalid)
            ),
            "document.getElementById('match-summary').textContent",
            SHOWN,
        );
    }

    // The $SYS charts fill as the broker publishes its figures each second.
    let chart = |topic: &str| {
        format!(
            "[...document.querySelectorAll('.chart')].find((c) => c.dataset.topic === {})",
            json!(topic)
        )
    };
    let clients = chart("$SYS/broker/clients/connected");
    let incoming = chart("$SYS/broker/publish/messages/received");
    console.page.wait_until(
        &format!("Number({clients}.dataset.points) >= 2 && Number({incoming}.dataset.points) >= 2"),
        &format!("[{clients}.textContent, {incoming}.textContent]"),
        SHOWN,
    );
    let connected = console.page.eval(&format!(
        "Number({clients}.querySelector('.value').textContent)"
    ));
    assert!(connected.as_f64().is_some_and(|n| n >= 1.0), "{connected}");

    // A picture for the walkthrough (section 12): its messages, one selected, a
    // filter typed.
    console.publish(&[
        "-t",
        "home/kitchen/temperature",
        "-m",
        "21.5",
        "-q",
        "1",
        "-r",
    ]);
    console.publish(&["-t", "home/hall/light", "-m", "on", "-q", "2"]);
    console.row("home/kitchen/temperature", "21.5");
    console.row("home/hall/light", "on");
    console.page.eval(
        "(() => { [...document.querySelectorAll('#tree .row')].find((r) => r.dataset.topic === 'home/kitchen/temperature').click(); \
         const input = document.getElementById('match-filter'); input.value = 'home/+/temperature'; \
         input.dispatchEvent(new Event('input')); return true; })()",
    );
    console.page.wait_until(
        "document.getElementById('match-summary').textContent.includes('home/+/temperature')",
        "document.getElementById('match-summary').textContent",
        SHOWN,
    );
    save_screenshot(&console.page.screenshot(), "console.png");
    drop(console.broker.take());
}

/// Types `filter` into the matcher and returns `["hit" | "miss", reason]` for `topic`.
fn matcher_answer(page: &mut Page, filter: &str, topic: &str) -> Value {
    page.eval(&format!(
        "(() => {{ const input = document.getElementById('match-filter'); input.value = {}; \
         input.dispatchEvent(new Event('input')); return true; }})()",
        json!(filter)
    ));
    let find = |list: &str| {
        format!(
            "[...document.querySelectorAll('#match-{list} li')].find((li) => li.dataset.topic === {})",
            json!(topic)
        )
    };
    page.wait_until(
        &format!(
            "document.getElementById('match-summary').textContent.startsWith('A subscription to ' + {} + ' would') && ({} || {})",
            json!(filter),
            find("hits"),
            find("misses")
        ),
        &format!(
            "(() => {{ const hit = {}; const miss = {}; const li = hit || miss; \
             return li ? [hit ? 'hit' : 'miss', li.querySelector('.why').textContent] : null; }})()",
            find("hits"),
            find("misses")
        ),
        SHOWN,
    )
}

/// Writes a screenshot under `target/console-screenshots/`, and to `docs/images/`
/// when blessing.
fn save_screenshot(png: &[u8], name: &str) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shots = root.join("target/console-screenshots");
    std::fs::create_dir_all(&shots).expect("mkdir");
    std::fs::write(shots.join(name), png).expect("write screenshot");
    if std::env::var("MQTTKIT_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(root.join("docs/images").join(name), png).expect("bless screenshot");
    }
}

#[test]
fn the_console_keeps_up_with_1000_messages_a_second() {
    let test = "the_console_keeps_up_with_1000_messages_a_second";
    let Some(mut console) = Console::open(test, |_| {}) else {
        return;
    };
    // The longest stretch the page's main thread was busy (a "long task" is 50 ms or more).
    console.page.eval(
        "window.longestTask = 0; new PerformanceObserver((list) => { for (const entry of list.getEntries()) \
         window.longestTask = Math.max(window.longestTask, entry.duration); }).observe({ type: 'longtask' }); true",
    );
    // 100 topics, 50 messages each.
    let (clients, per_client) = (100, 50);
    let started = Instant::now();
    let mut load = Command::new(RBENCH)
        .args([
            "pub",
            "-h",
            "127.0.0.1",
            "-p",
            &console.plain,
            "-q",
            "1",
            "-s",
            "32",
        ])
        .args(["-t", "console/load/%i", "--rate", "1000"])
        .args(["-c", &clients.to_string(), "-n", &per_client.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start rbench");
    // While the load runs, the page answers: each round trip through its main thread.
    // The "messages in /s" chart's figure, read on each round trip.
    let incoming = "Number(([...document.querySelectorAll('.chart')].find((c) => c.dataset.topic === '$SYS/broker/publish/messages/received').dataset.latest) || 0)";
    let mut slowest_answer = Duration::ZERO;
    let mut answers = 0;
    let mut highest_rate: f64 = 0.0;
    let mut pictured = false;
    while load.try_wait().expect("rbench").is_none() {
        // A picture for the walkthrough, three seconds into the load.
        if !pictured && started.elapsed() > Duration::from_secs(3) {
            save_screenshot(&console.page.screenshot(), "console-load.png");
            pictured = true;
        }
        let asked = Instant::now();
        let rate = console.page.eval(incoming);
        slowest_answer = slowest_answer.max(asked.elapsed());
        highest_rate = highest_rate.max(rate.as_f64().unwrap_or_default());
        answers += 1;
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "rbench ran over a minute"
        );
    }
    assert!(load.wait().expect("rbench").success());
    let published = started.elapsed();
    // Every message counted on its topic's row, at QoS 1: none lost.
    let rows = (0..clients)
        .map(|i| {
            format!(
                "([...document.querySelectorAll('#tree .row .count')].find((c) => c.parentNode.parentNode.dataset.topic === 'console/load/{i}') || {{}}).textContent === '{per_client} msg'"
            )
        })
        .collect::<Vec<_>>()
        .join(" && ");
    console.page.wait_until(
        &rows,
        "document.getElementById('totals').textContent",
        SHOWN,
    );
    let caught_up = started.elapsed();
    // The $SYS chart saw the load (its exact figure depends on timing).
    assert!(
        highest_rate > 0.0,
        "the messages-in chart stayed at 0 during the load"
    );
    let longest = match console.page.eval("window.longestTask").as_f64() {
        Some(ms) if ms > 0.0 => format!("the longest main-thread task took {ms:.0} ms"),
        _ => "no main-thread task took 50 ms or more".to_string(),
    };
    eprintln!(
        "console at 1,000 msg/s: {} messages over {clients} topics published in {:.1} s, all shown \
         {:.0} ms later; {answers} page round trips during the load, slowest {:.1} ms; {longest}; \
         the $SYS chart's highest rate {highest_rate:.0} msg/s",
        clients * per_client,
        published.as_secs_f64(),
        (caught_up - published).as_secs_f64() * 1000.0,
        slowest_answer.as_secs_f64() * 1000.0,
    );
}

#[test]
fn the_console_logs_in_where_the_broker_wants_a_password() {
    let test = "the_console_logs_in_where_the_broker_wants_a_password";
    let passwords = shared_dir();
    let file = password_file(passwords.path(), Maker::Rbroker, &[("student", "s3cret")]);
    let settings = format!("allow_anonymous false\npassword_file {}\n", file.display());
    let Some(mut console) = Console::load(test, &settings, |_| {}) else {
        return;
    };
    // Anonymous, as every page starts, then a wrong password, then the right one.
    let refused = console.wait_for_state("refused");
    assert_eq!(refused, "refused: 0x87 Not authorized");
    let login = |page: &mut Page, password: &str| {
        page.eval(&format!(
            "(() => {{ document.getElementById('login-user').value = 'student'; \
             document.getElementById('login-password').value = {}; \
             document.querySelector('#login button').click(); return true; }})()",
            json!(password)
        ));
    };
    assert_eq!(
        console.page.eval("document.getElementById('login').hidden"),
        json!(false)
    );
    login(&mut console.page, "wrong");
    console.page.wait_until(
        "document.getElementById('status').textContent === 'refused: 0x86 Bad User Name or Password'",
        "document.getElementById('status').textContent",
        SHOWN,
    );
    login(&mut console.page, "s3cret");
    console.wait_for_state("connected");
    assert_eq!(
        console.page.eval("document.getElementById('login').hidden"),
        json!(true)
    );
    console.publish(&[
        "-u",
        "student",
        "-P",
        "s3cret",
        "-t",
        "console/private",
        "-m",
        "for students",
    ]);
    console.row("console/private", "for students");
}

#[test]
fn rbroker_v_without_a_config_says_how_to_open_the_console() {
    let port = free_port().to_string();
    let broker = Running::start(&["-v", "-p", &port]);
    let hint = broker
        .seen
        .iter()
        .find(|line| line.starts_with("To watch this broker in a web browser"))
        .cloned()
        .unwrap_or_else(|| panic!("no console line in {:?}", broker.seen));
    assert!(
        hint.contains("\"web_console true\"") && hint.contains("http://localhost:9001/console/"),
        "{hint}"
    );
    // Without -v the broker does not say it.
    let quiet = Running::start(&["-p", &free_port().to_string()]);
    assert!(
        !quiet.seen.iter().any(|line| line.starts_with("To watch")),
        "{:?}",
        quiet.seen
    );
    broker.signal(libc::SIGTERM);
    assert_eq!(broker.wait(), 0);
}

#[test]
fn the_console_reconnects_once_when_its_broker_comes_back() {
    let test = "the_console_reconnects_once_when_its_broker_comes_back";
    let Some(mut console) = Console::open(test, |_| {}) else {
        return;
    };
    // The broker goes away: the page says so and keeps trying.
    drop(console.broker.take());
    let closed = console.wait_for_state("closed");
    assert!(closed.ends_with("; retrying"), "{closed}");
    // Back on the same ports: one console client connects, not one per attempt.
    let conf = console.conf.to_str().expect("utf-8").to_string();
    console.broker = Some(Running::start(&["-c", &conf]));
    console.wait_for_state("connected");
    console.publish(&["-t", "console/after", "-m", "back"]);
    console.row("console/after", "back");
    let broker = console.broker.as_mut().expect("running");
    let mut lines = broker.seen.clone();
    // Any further attempt would come within the page's retry delay (at most 10 s,
    // doubling from 1 s); a stacked one within 2 s.
    lines.extend(broker.lines_within(Duration::from_secs(3)));
    let consoles = lines
        .iter()
        .filter(|line| {
            line.starts_with("New client connected") && line.contains(" as rbroker-console-")
        })
        .count();
    assert_eq!(consoles, 1, "{lines:#?}");
}
