//! rsub and rpub side by side with mosquitto_sub and mosquitto_pub: the same argv
//! against the same broker must give the same stdout bytes (broker-assigned ids
//! and `%j` times masked), the same exit status and the same first stderr line.
//!
//! Skipped with a printed reason when mosquitto's clients are not installed;
//! mandatory under `MQTTKIT_REQUIRE_MOSQUITTO=1`.

use std::time::Duration;

use bytes::Bytes;
use mqttkit::protocol::{Property, Publish, QoS, TopicName};

use crate::support::TestBroker;
use crate::support::mosquitto::available;
use crate::support::raw::RawClient;
use crate::support::tools::{Finished, mask, ours, run, start};

const QUIET: Duration = Duration::from_millis(300);

fn assert_same(case: &str, theirs: &Finished, ours: &Finished, compare_stdout: bool) {
    assert_eq!(
        ours.status, theirs.status,
        "{case}: exit status (mosquitto's stderr: {:?}, ours: {:?})",
        theirs.stderr, ours.stderr
    );
    assert_eq!(
        ours.first_error_line(),
        theirs.first_error_line(),
        "{case}: first stderr line"
    );
    if compare_stdout {
        assert_eq!(
            mask(&ours.stdout_text()),
            mask(&theirs.stdout_text()),
            "{case}: stdout"
        );
    }
}

/// The messages every subscriber case receives, in order.
fn feed(broker: &TestBroker) {
    let mut publisher = RawClient::connect_v5(broker.addr(), "feeder", []);
    let messages: [(&str, &[u8], QoS, Vec<Property>); 6] = [
        ("e/1", b"first", QoS::AtMostOnce, vec![]),
        ("e/2", b"", QoS::AtLeastOnce, vec![]),
        (
            "e/4",
            br#"{"a":1,"b":"x","c":[true,null]}"#,
            QoS::AtLeastOnce,
            vec![],
        ),
        ("e/5", b"tab\there \"quoted\"\n", QoS::AtMostOnce, vec![]),
        (
            "e/6",
            b"with properties",
            QoS::AtLeastOnce,
            vec![
                Property::PayloadFormatIndicator(1),
                Property::MessageExpiryInterval(3600),
                Property::ContentType("text/plain".into()),
                Property::ResponseTopic("e/replies".into()),
                Property::CorrelationData(Bytes::from_static(b"req-42")),
                Property::UserProperty("unit".into(), "celsius".into()),
                Property::UserProperty("site".into(), "lab1".into()),
            ],
        ),
        // Last: a QoS 2 delivery completes after its PUBREL, so a message after it
        // could overtake it on one subscriber and not the other.
        ("e/3", b"third", QoS::ExactlyOnce, vec![]),
    ];
    for (topic, payload, qos, properties) in messages {
        let publish = Publish {
            qos,
            packet_id: (qos != QoS::AtMostOnce).then(|| crate::support::raw::pid(1)),
            properties: properties.into_iter().collect(),
            ..Publish::new(
                TopicName::new(topic).expect("topic"),
                Bytes::copy_from_slice(payload),
            )
        };
        publisher.publish_packet(publish);
    }
}

fn suback_count(broker: &TestBroker) -> usize {
    broker
        .log_lines()
        .iter()
        .filter(|l| l.contains("Sending SUBACK"))
        .count()
}

/// mosquitto_sub and rsub with the same `args`, both subscribed before the feed.
/// With a fixed client id (`-i`) they would take each other's session over, so
/// they run one after the other, each with its own feed.
fn subscribe_both(broker: &TestBroker, args: &[&str], with_feed: bool) -> (Finished, Finished) {
    let port = broker.port().to_string();
    let mut full = vec!["-p", port.as_str()];
    full.extend_from_slice(args);
    let programs = ["mosquitto_sub", ours("rsub")];
    if args.contains(&"-i") {
        let [theirs, ours] = programs.map(|program| {
            let before = suback_count(broker);
            let running = start(program, &full, None, None);
            broker.wait_for_log_count("Sending SUBACK", before + 1);
            if with_feed {
                feed(broker);
            }
            running.finish()
        });
        return (theirs, ours);
    }
    let before = suback_count(broker);
    let [theirs, ours] = programs.map(|program| start(program, &full, None, None));
    broker.wait_for_log_count("Sending SUBACK", before + 2);
    if with_feed {
        feed(broker);
    }
    (theirs.finish(), ours.finish())
}

#[test]
fn rsub_prints_what_mosquitto_sub_prints() {
    if !available("rsub_prints_what_mosquitto_sub_prints") {
        return;
    }
    let broker = TestBroker::start();
    let cases: &[&[&str]] = &[
        &["-t", "e/#", "-C", "6"],
        &["-t", "e/#", "-C", "6", "-v"],
        &["-t", "e/#", "-C", "6", "-v", "-N"],
        &["-t", "e/#", "-C", "6", "-N"],
        &[
            "-t",
            "e/#",
            "-C",
            "6",
            "-q",
            "2",
            "-F",
            "%t|%r|%q|%m|%l|%x|%X|%p",
        ],
        &[
            "-t",
            "e/#",
            "-C",
            "6",
            "-F",
            "[%-12t] [%10.4p] [%08l] [%5m] [%-5l] [%3X] [%-8x] [%04q]",
        ],
        &[
            "-t",
            "e/#",
            "-C",
            "6",
            "-F",
            "\\t%t\\\\%%@@\\e|%5.2t|%.1t|%-3r|",
        ],
        &["-t", "e/#", "-C", "6", "-F", "%t\\0%p", "-N"],
        &["-t", "e/#", "-C", "6", "-q", "1", "-d"],
        &["-t", "e/#", "-C", "6", "-q", "2", "-d", "-v"],
        &["-t", "e/1", "-t", "e/3", "-t", "e/6", "-C", "3", "-v", "-d"],
        &["-t", "e/#", "-C", "6", "-F", "%j"],
        &["-t", "e/#", "-C", "6", "-q", "1", "-F", "%j"],
        &["-t", "e/4", "-C", "1", "-q", "1", "-F", "%J"],
        &["-t", "e/4", "-C", "1", "-F", "%J", "--pretty"],
        &["-t", "e/4", "-C", "1", "-F", "%j", "--pretty"],
        &["-t", "e/#", "-C", "4", "-T", "e/2", "-T", "e/5", "-v"],
        &[
            "-V",
            "5",
            "-t",
            "e/#",
            "-C",
            "6",
            "-F",
            "%C|%E|%F|%P|%R|%D|%A|%S",
        ],
        &["-V", "5", "-t", "e/6", "-C", "1", "-F", "%j"],
        &["-V", "5", "-t", "e/#", "-C", "6", "-q", "1", "-d", "-v"],
        &[
            "-V",
            "5",
            "-t",
            "e/#",
            "-C",
            "2",
            "-D",
            "subscribe",
            "subscription-identifier",
            "7",
            "-F",
            "%S %t",
        ],
        &["-V", "31", "-t", "e/#", "-C", "6", "-d", "-v"],
        &[
            "-V", "311", "-t", "e/#", "-C", "3", "-q", "2", "-d", "-v", "-i", "fixed-id",
        ],
        &["-t", "e/#", "-C", "6", "-F", "%I", "-N"],
    ];
    for args in cases {
        let (theirs, ours) = subscribe_both(&broker, args, true);
        // %I is the local time to the second: compare the shape, not the value.
        let compare = !args.contains(&"%I");
        assert_same(&format!("rsub {args:?}"), &theirs, &ours, compare);
        if !compare {
            assert_eq!(ours.stdout.len(), theirs.stdout.len(), "%I {args:?}");
        }
    }
}

#[test]
fn rsub_ends_as_mosquitto_sub_ends() {
    if !available("rsub_ends_as_mosquitto_sub_ends") {
        return;
    }
    let broker = TestBroker::start();
    let cases: &[&[&str]] = &[
        &["-t", "quiet/#", "-E"],
        &["-t", "quiet/#", "-E", "-d"],
        &["-t", "quiet/#", "-t", "quiet2/#", "-q", "1", "-E", "-d"],
        &[
            "-V",
            "5",
            "-t",
            "quiet/#",
            "-E",
            "-d",
            "--retain-as-published",
            "-R",
        ],
        &["-t", "quiet/#", "-W", "1"],
        &["-t", "quiet/#", "-W", "1", "--quiet"],
        &["-t", "quiet/#", "-W", "1", "-v", "-d"],
    ];
    for args in cases {
        let (theirs, ours) = subscribe_both(&broker, args, false);
        assert_same(&format!("rsub {args:?}"), &theirs, &ours, true);
    }
}

#[test]
fn retained_messages_and_minus_r_match_mosquitto_sub() {
    if !available("retained_messages_and_minus_r_match_mosquitto_sub") {
        return;
    }
    let broker = TestBroker::start();
    let mut publisher = RawClient::connect(broker.addr(), "retainer");
    publisher.publish("r/old", b"kept", QoS::AtLeastOnce, true, 1);
    for args in [
        &["-t", "r/#", "-C", "1", "-v", "-d"][..],
        &["-t", "r/#", "-C", "1", "-F", "%r %q %t %p"],
        &["-V", "5", "-t", "r/#", "-C", "1", "-F", "%r %q %t %p"],
    ] {
        let (theirs, ours) = subscribe_both(&broker, args, false);
        assert_same(&format!("rsub {args:?}"), &theirs, &ours, true);
    }
    // -R: the retained message is not printed; the live one is.
    let (theirs, ours) = {
        let port = broker.port().to_string();
        let args = ["-p", &port, "-t", "r/#", "-R", "-C", "1", "-v"];
        let before = suback_count(&broker);
        let theirs = start("mosquitto_sub", &args, None, None);
        let ours = start(ours("rsub"), &args, None, None);
        broker.wait_for_log_count("Sending SUBACK", before + 2);
        publisher.publish("r/new", b"live", QoS::AtLeastOnce, false, 2);
        (theirs.finish(), ours.finish())
    };
    assert_same("-R", &theirs, &ours, true);
    assert_eq!(ours.stdout_text(), "r/new live\n");
}

#[test]
fn bad_arguments_give_mosquittos_errors_and_statuses() {
    if !available("bad_arguments_give_mosquittos_errors_and_statuses") {
        return;
    }
    let closed = crate::support::mosquitto::free_port().to_string();
    let sub_cases: Vec<Vec<&str>> = vec![
        vec!["-t", "a/#/b"],
        vec!["-q", "3", "-t", "a"],
        vec![],
        vec!["-Z"],
        vec!["--bogus"],
        vec!["-k", "2", "-t", "a"],
        vec!["-p", "70000", "-t", "a"],
        vec!["-V", "4", "-t", "a"],
        vec!["-C", "0", "-t", "a"],
        vec!["-W", "0", "-t", "a"],
        vec!["-c", "-t", "a"],
        vec!["-R", "--retained-only", "-t", "a"],
        vec!["-t"],
        vec!["-h"],
        vec!["-t", "a", "-p"],
        vec!["-F", "%e", "-t", "a"],
        vec!["-F", "abc%", "-t", "a"],
        vec!["-F", "\\q", "-t", "a"],
        vec!["-D", "subscribe", "bogus", "1", "-t", "a"],
        vec!["-D", "subscribe"],
        vec!["-D", "connect", "receive-maximum", "70000", "-t", "a"],
        vec!["-D", "publish", "session-expiry-interval", "3", "-t", "a"],
        vec!["-i", "a", "-I", "b", "-t", "a"],
        vec!["--will-payload", "x", "-t", "a"],
        vec!["--will-retain", "-t", "a"],
        vec!["--will-topic", "w/+", "-t", "a"],
        vec!["--will-topic", "w", "--will-qos", "3", "-t", "a"],
        vec!["-x", "abc", "-t", "a"],
        vec!["-V", "5", "-x", "-1", "-t", "a"],
        vec!["-M", "0", "-t", "a"],
        vec!["-T", "a/#/b", "-t", "a"],
        vec!["-U", "a/#/b", "-t", "a"],
        vec!["--random-filter", "0", "-t", "a"],
        vec!["-t", "a", "-p", closed.as_str()],
        vec!["-t", "a", "-h", "nonexistent.invalid"],
        vec!["-t", "a", "--cafile", "/nonexistent/ca.crt"],
        vec!["-t", "a", "--cert", "/nonexistent/c.crt"],
        vec!["-L", "mqtt://localhost"],
        vec!["-m", "x", "-t", "a"],
        vec!["-r", "-t", "a"],
    ];
    for args in &sub_cases {
        let theirs = run("mosquitto_sub", args, None);
        let ours = run(ours("rsub"), args, None);
        assert_same(&format!("rsub {args:?}"), &theirs, &ours, true);
    }
    let pub_cases: Vec<(Vec<&str>, bool)> = vec![
        (vec!["-t", "a/+", "-m", "x"], true),
        (vec!["-t", "a"], false),
        (vec!["-m", "x"], false),
        (vec!["-m", "a", "-n", "-t", "x"], true),
        (vec!["-m", "a", "-m", "b", "-t", "x"], true),
        (vec!["-l", "-s", "-t", "x"], true),
        (vec!["-q", "-1", "-t", "a", "-m", "x"], true),
        (vec!["--repeat", "0", "-t", "a", "-m", "x"], true),
        (vec!["--repeat-delay", "-1", "-t", "a", "-m", "x"], true),
        (
            vec![
                "-D",
                "publish",
                "session-expiry-interval",
                "3",
                "-t",
                "a",
                "-m",
                "x",
            ],
            true,
        ),
        (vec!["-D", "publish", "content-type"], true),
        (vec!["-t", "a", "-m", "x", "-p", closed.as_str()], true),
        (
            vec!["-t", "a", "-m", "x", "-h", "nonexistent.invalid"],
            true,
        ),
        (vec!["-V", "mqttv5", "-x", "-1", "-t", "a", "-m", "x"], true),
        (vec!["-c", "-t", "a", "-m", "x"], true),
        (vec!["-C", "1", "-t", "a", "-m", "x"], true),
        (vec!["-v", "-t", "a", "-m", "x"], true),
        (vec!["-t", "a", "-m"], true),
    ];
    for (args, compare_stdout) in &pub_cases {
        let theirs = run("mosquitto_pub", args, None);
        let ours = run(ours("rpub"), args, None);
        assert_same(&format!("rpub {args:?}"), &theirs, &ours, *compare_stdout);
    }
    // -f with a missing file: the same two lines.
    let theirs = run(
        "mosquitto_pub",
        &["-t", "a", "-f", "/nonexistent/file"],
        None,
    );
    let ours = run(ours("rpub"), &["-t", "a", "-f", "/nonexistent/file"], None);
    assert_same("rpub -f missing", &theirs, &ours, true);
    assert_eq!(
        ours.stderr.lines().nth(1),
        theirs.stderr.lines().nth(1),
        "second line of -f's error"
    );
}

#[test]
fn rpub_sends_what_mosquitto_pub_sends() {
    if !available("rpub_sends_what_mosquitto_pub_sends") {
        return;
    }
    let broker = TestBroker::start();
    let port = broker.port().to_string();
    let mut watcher = RawClient::connect_v5(broker.addr(), "watcher", []);
    watcher.subscribe(1, &[("p/#", QoS::ExactlyOnce)]);
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), b"from a file\n\x00\x01binary").expect("write file");
    let file_path = file.path().to_string_lossy().into_owned();
    let cases: Vec<(Vec<&str>, Option<&[u8]>)> = vec![
        (vec!["-t", "p/a", "-m", "hello"], None),
        (vec!["-t", "p/a", "-m", "-5", "-d"], None),
        (vec!["-t", "p/a", "-n", "-r", "-d"], None),
        (vec!["-t", "p/a", "-m", "q1", "-q", "1", "-d"], None),
        (vec!["-t", "p/a", "-m", "q2", "-q", "2", "-d"], None),
        (vec!["-t", "p/a", "-f", file_path.as_str(), "-d"], None),
        (vec!["-t", "p/a", "-s", "-d"], Some(b"whole\ninput\n")),
        (
            vec!["-t", "p/a", "-l", "-d"],
            Some(b"line1\nline2\n\nline4"),
        ),
        (vec!["-t", "p/a", "-l", "-q", "1"], Some(b"a\nb\nc\n")),
        (
            vec!["-t", "p/a", "-m", "again", "--repeat", "3", "-d"],
            None,
        ),
        (
            vec![
                "-t",
                "p/a",
                "-m",
                "again",
                "--repeat",
                "2",
                "--repeat-delay",
                "0.1",
                "-q",
                "1",
            ],
            None,
        ),
        (
            vec![
                "-V",
                "5",
                "-t",
                "p/a",
                "-m",
                "props",
                "-d",
                "-D",
                "publish",
                "content-type",
                "text/plain",
                "-D",
                "publish",
                "user-property",
                "k",
                "v",
                "-D",
                "publish",
                "message-expiry-interval",
                "60",
                "-D",
                "publish",
                "response-topic",
                "p/replies",
                "-D",
                "publish",
                "correlation-data",
                "c-1",
                "-D",
                "publish",
                "payload-format-indicator",
                "1",
            ],
            None,
        ),
        (
            vec!["-V", "31", "-t", "p/a", "-m", "old protocol", "-d"],
            None,
        ),
        (
            vec![
                "-V", "5", "-t", "p/a", "-m", "v5", "-q", "1", "-d", "-i", "pub-id",
            ],
            None,
        ),
        (
            vec!["-L", "mqtt://127.0.0.1:PORT/p/url", "-m", "by url", "-d"],
            None,
        ),
        (
            vec![
                "-t",
                "p/a",
                "-m",
                "will",
                "--will-topic",
                "p/will",
                "--will-payload",
                "gone",
                "-d",
            ],
            None,
        ),
    ];
    for (args, stdin) in &cases {
        let url = args
            .iter()
            .map(|a| a.replace("PORT", &port))
            .collect::<Vec<String>>();
        let mut full: Vec<&str> = vec!["-p", port.as_str()];
        full.extend(url.iter().map(String::as_str));
        let case = format!("rpub {args:?}");
        let theirs = run("mosquitto_pub", &full, *stdin);
        let their_messages = watcher.drain_publishes(QUIET);
        let ours = run(ours("rpub"), &full, *stdin);
        let our_messages = watcher.drain_publishes(QUIET);
        assert_same(&case, &theirs, &ours, true);
        let describe = |messages: &[Publish]| -> Vec<String> {
            messages
                .iter()
                .map(|m| {
                    format!(
                        "{} {:?} q{} r{} {:?}",
                        m.topic.as_str(),
                        String::from_utf8_lossy(&m.payload),
                        m.qos as u8,
                        u8::from(m.retain),
                        m.properties
                    )
                })
                .collect()
        };
        assert!(
            !their_messages.is_empty(),
            "{case}: mosquitto_pub published nothing"
        );
        assert_eq!(
            describe(&our_messages),
            describe(&their_messages),
            "{case}: messages"
        );
    }
}

#[test]
fn the_mosquitto_defaults_file_is_read_by_rsub() {
    if !available("the_mosquitto_defaults_file_is_read_by_rsub") {
        return;
    }
    let broker = TestBroker::start();
    let home = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        home.path().join("mosquitto_sub"),
        format!("# defaults\n-p {}\n-v\n-q 1\n-t e/1\n", broker.port()),
    )
    .expect("defaults file");
    let args = ["-C", "2", "-t", "e/3"];
    let theirs = start("mosquitto_sub", &args, None, Some(home.path()));
    let ours = start(ours("rsub"), &args, None, Some(home.path()));
    broker.wait_for_log_count("Sending SUBACK", 2);
    feed(&broker);
    let (theirs, ours) = (theirs.finish(), ours.finish());
    assert_same("defaults file", &theirs, &ours, true);
    assert_eq!(ours.stdout_text(), "e/1 first\ne/3 third\n");
}

#[test]
fn tls_options_work_as_mosquittos_do() {
    if !available("tls_options_work_as_mosquittos_do") {
        return;
    }
    let certs = crate::support::certs::Certs::generate();
    let broker = crate::support::mosquitto::Mosquitto::start(&certs.mosquitto_listener_config());
    let port = broker.port.to_string();
    let ca = certs.ca.display().to_string();
    let url = format!("mqtts://localhost:{port}/tls/url");
    // Each case: the topic, subscriber argv, publisher argv. The publisher runs
    // first with -r, so the subscriber gets the message whenever it subscribes;
    // the retained message is cleared before the next tool pair.
    let cases: [(&str, Vec<&str>, Vec<&str>); 3] = [
        (
            "tls/a",
            vec![
                "-h",
                "localhost",
                "-p",
                &port,
                "--cafile",
                &ca,
                "-t",
                "tls/#",
                "-C",
                "1",
                "-v",
                "-d",
            ],
            vec![
                "-h",
                "localhost",
                "-p",
                &port,
                "--cafile",
                &ca,
                "-t",
                "tls/a",
                "-m",
                "over tls",
                "-q",
                "1",
                "-r",
            ],
        ),
        (
            "tls/url",
            vec![
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "--cafile",
                &ca,
                "--insecure",
                "-t",
                "tls/#",
                "-C",
                "1",
                "-v",
            ],
            vec!["-L", &url, "--cafile", &ca, "-m", "by url", "-d", "-r"],
        ),
        (
            "tls/b",
            vec![
                "-V",
                "5",
                "-h",
                "localhost",
                "-p",
                &port,
                "--cafile",
                &ca,
                "--tls-version",
                "tlsv1.2",
                "-t",
                "tls/#",
                "-C",
                "1",
                "-v",
            ],
            vec![
                "-V",
                "5",
                "-h",
                "localhost",
                "-p",
                &port,
                "--cafile",
                &ca,
                "-t",
                "tls/b",
                "-m",
                "v5",
                "-q",
                "2",
                "-r",
            ],
        ),
    ];
    for (topic, sub_args, pub_args) in &cases {
        let mut results = Vec::new();
        for (subscriber, publisher) in [
            ("mosquitto_sub", "mosquitto_pub"),
            (ours("rsub"), ours("rpub")),
        ] {
            let published = run(publisher, pub_args, None);
            let received = run(subscriber, sub_args, None);
            let cleared = run(
                "mosquitto_pub",
                &[
                    "-h",
                    "localhost",
                    "-p",
                    &port,
                    "--cafile",
                    &ca,
                    "-t",
                    topic,
                    "-r",
                    "-n",
                ],
                None,
            );
            assert_eq!(cleared.status, Some(0), "clear {topic}: {cleared:?}");
            results.push((received, published));
        }
        let (theirs, ours) = (&results[0], &results[1]);
        assert_same(&format!("rpub {pub_args:?}"), &theirs.1, &ours.1, true);
        assert_same(&format!("rsub {sub_args:?}"), &theirs.0, &ours.0, true);
        assert!(
            !ours.0.stdout.is_empty(),
            "rsub {sub_args:?} printed nothing"
        );
    }
    // A missing CA file: the same line and status.
    let args = [
        "-h",
        "localhost",
        "-p",
        &port,
        "-t",
        "tls/#",
        "-C",
        "1",
        "--cafile",
        "/nonexistent.pem",
    ];
    assert_same(
        "missing CA file",
        &run("mosquitto_sub", &args, None),
        &run(ours("rsub"), &args, None),
        true,
    );
    // A certificate that does not name the host, or from another CA: refused.
    // libmosquitto reports it as "Unable to connect (A TLS error occurred.)."
    // with status 1 when the handshake fails inside its connect call, and as
    // "Error: A TLS error occurred." with status 8 when it fails a moment later
    // (a race inside mosquitto's clients); rsub and rpub always give the second.
    let other = crate::support::certs::Certs::generate();
    let other_ca = other.ca.display().to_string();
    for (tool, theirs_name) in [
        (ours("rsub"), "mosquitto_sub"),
        (ours("rpub"), "mosquitto_pub"),
    ] {
        let action: &[&str] = if theirs_name == "mosquitto_sub" {
            &["-t", "tls/#", "-C", "1"]
        } else {
            &["-t", "tls/x", "-m", "x"]
        };
        for target in [
            ["-h", "127.0.0.1", "--cafile", &ca],
            ["-h", "localhost", "--cafile", &other_ca],
        ] {
            let args = [&["-p", port.as_str()][..], &target, action].concat();
            let theirs = run(theirs_name, &args, None);
            assert!(
                matches!(
                    (theirs.status, theirs.first_error_line()),
                    (Some(8), "Error: A TLS error occurred.")
                        | (Some(1), "Unable to connect (A TLS error occurred.).")
                ),
                "{theirs_name} {args:?}: {theirs:?}"
            );
            let ours = run(tool, &args, None);
            assert_eq!(ours.status, Some(8), "{args:?}: {ours:?}");
            assert_eq!(
                ours.first_error_line(),
                "Error: A TLS error occurred.",
                "{args:?}"
            );
            assert!(
                ours.stderr.contains("invalid peer certificate"),
                "{args:?}: {}",
                ours.stderr
            );
        }
    }
}
