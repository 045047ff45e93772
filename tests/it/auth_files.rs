//! Password and ACL files as rbroker's binary reads them: every malformed line
//! stops startup naming the file and line (never a panic, never a user), security
//! options rbroker lacks stop startup, SIGHUP swaps the files whole or not at all,
//! `per_listener_settings`, and the log lines of a refused login beside mosquitto's.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use mqttkit::protocol::{ProtocolVersion, QoS, ReasonCode};

use crate::support::credentials::{
    Maker, TEST_ITERATIONS, login, open_to_all, password_file, shared_dir,
};
use crate::support::logged::{Running, refused_start};
use crate::support::mosquitto::{available, free_port};
use crate::support::{RawClient, WAIT};

/// A valid `$7$` line for user `alice`, password `secret`, from mosquitto_passwd.
const ALICE: &str = "alice:$7$101$D5Pff4h9K9Ccjj2y$MDwpcQm832afipCYEPyRPpbrgOHPM65sizZFi65Y9g/VeZquCdBqsvjW+j9FHZkZczZzwf7DtM+NWXX9K3GfSQ==";

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn code(port: u16, user: Option<&str>, password: Option<&str>) -> ReasonCode {
    let connect = login(ProtocolVersion::V3_1_1, "files", user, password);
    RawClient::handshake(addr(port), connect).1.code
}

/// Starts `program` (rbroker or mosquitto) on a free loopback port with `lines`
/// after the listener line, and `args` before `-c`; returns it and the port.
fn broker_on(program: &str, dir: &Path, lines: &str, args: &[&str]) -> (Running, u16) {
    let port = free_port();
    let conf = dir.join(format!("listener-{port}.conf"));
    std::fs::write(&conf, format!("listener {port} 127.0.0.1\n{lines}")).expect("write");
    open_to_all(&conf, 0o644);
    let conf = conf.to_str().expect("utf-8").to_string();
    let args = [args, &["-c", &conf]].concat();
    (Running::program(program, &args), port)
}

/// Runs rbroker on a config naming `passwords` and `acl`, which must stop startup;
/// returns its status and stderr.
fn startup(dir: &Path, passwords: &[u8], acl: &[u8]) -> (Option<i32>, String) {
    let password_path = dir.join("passwords");
    let acl_path = dir.join("acl");
    std::fs::write(&password_path, passwords).expect("write");
    std::fs::write(&acl_path, acl).expect("write");
    let conf = dir.join("rbroker.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {} 127.0.0.1\npassword_file {}\nacl_file {}\n",
            free_port(),
            password_path.display(),
            acl_path.display()
        ),
    )
    .expect("write");
    refused_start(env!("CARGO_BIN_EXE_rbroker"), &conf)
}

#[test]
fn every_malformed_password_or_acl_line_stops_startup_naming_its_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let huge = format!("alice:{}\n", "A".repeat(10 * 1024 * 1024));
    let password_cases: Vec<(String, &str)> = vec![
        (format!("{ALICE}\n:$7$101$abc$def\n"), "username is empty"),
        (format!("{ALICE}\nbob\n"), "no ':'"),
        (format!("{ALICE}\nbob:\n"), "no password hash"),
        (format!("{ALICE}\nbob:secret\n"), "not a $7$ or $6$ hash"),
        (
            format!("{ALICE}\nbob:7$101$abc$def\n"),
            "not a $7$ or $6$ hash",
        ),
        (format!("{ALICE}\nbob:$7$abc\n"), "three fields"),
        (format!("{ALICE}\nbob:$7$101$!!$AAAA\n"), "base64"),
        (
            format!("{ALICE}\nbob:$7$101$D5Pff4h9K9Ccjj2y$AAAA\n"),
            "SHA-512 gives 64",
        ),
        (
            format!("{ALICE}\nbob:$7$4000000000$D5Pff4h9K9Ccjj2y$AAAA\n"),
            "iteration count",
        ),
        (format!("{ALICE}\n{huge}"), "longer than 65535"),
        (format!("{ALICE}\n{ALICE}\n"), "appears twice"),
    ];
    for (passwords, reason) in &password_cases {
        let (status, stderr) = startup(dir.path(), passwords.as_bytes(), b"");
        let at = format!("{}:2", dir.path().join("passwords").display());
        assert_eq!(status, Some(3), "{reason}: {stderr}");
        assert!(stderr.contains(&at), "{reason}: {stderr}");
        assert!(stderr.contains(reason), "{reason}: {stderr}");
    }
    let acl_cases: [(&[u8], &str); 5] = [
        (b"user alice\ntopic\n", "no topic"),
        (b"# c\nuser\n", "needs a username"),
        (b"topic a\nallow a/b\n", "unknown ACL keyword"),
        (b"topic a\ntopic read a/#/b\n", "'#' must be last"),
        (b"topic a\ntopic \xff\n", "not valid UTF-8"),
    ];
    for (acl, reason) in acl_cases {
        let (status, stderr) = startup(dir.path(), ALICE.as_bytes(), acl);
        let at = format!("{}:2", dir.path().join("acl").display());
        assert_eq!(status, Some(3), "{reason}: {stderr}");
        assert!(
            stderr.contains(&at) && stderr.contains(reason),
            "{reason}: {stderr}"
        );
    }
    // A file that cannot be opened: mosquitto's lines and status 13.
    let conf = dir.path().join("missing.conf");
    std::fs::write(&conf, "password_file /nonexistent/passwords\n").expect("write");
    let (status, stderr) = refused_start(env!("CARGO_BIN_EXE_rbroker"), &conf);
    assert_eq!(status, Some(13), "{stderr}");
    assert!(
        stderr.contains("Error: Unable to open pwfile \"/nonexistent/passwords\"")
            && stderr.contains("Error opening password file \"/nonexistent/passwords\"."),
        "{stderr}"
    );
}

#[test]
fn a_byte_order_mark_and_crlf_endings_are_read_and_the_user_logs_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    let passwords = dir.path().join("passwords");
    std::fs::write(&passwords, format!("\u{feff}# users\r\n\r\n{ALICE}\r\n")).expect("write");
    let (broker, port) = broker_on(
        env!("CARGO_BIN_EXE_rbroker"),
        dir.path(),
        &format!("password_file {}\n", passwords.display()),
        &[],
    );
    assert_eq!(
        code(port, Some("alice"), Some("secret")),
        ReasonCode::Success
    );
    assert_eq!(
        code(port, Some("alice"), Some("secret\r")),
        ReasonCode::NotAuthorized
    );
    drop(broker);
}

#[test]
fn security_options_rbroker_lacks_stop_startup() {
    let dir = tempfile::tempdir().expect("temp dir");
    for line in [
        "certfile /etc/ssl/server.pem",
        "plugin /usr/lib/mosquitto_dynamic_security.so",
        "psk_file /etc/psk",
        "cafile /etc/ssl/ca.pem",
        "keyfile /etc/ssl/server.key",
    ] {
        let conf = dir.path().join("secure.conf");
        std::fs::write(&conf, format!("listener {}\n{line}\n", free_port())).expect("write");
        let (status, stderr) = refused_start(env!("CARGO_BIN_EXE_rbroker"), &conf);
        assert_eq!(status, Some(3), "{line}: {stderr}");
        assert!(
            stderr.contains(&format!("Error found at {}:2.", conf.display())),
            "{line}: {stderr}"
        );
    }
}

/// Polls a login until it gets `expected` (a reload is logged before it is done).
fn eventually(port: u16, user: &str, password: &str, expected: ReasonCode) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = code(port, Some(user), Some(password));
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{user}/{password}: {got:?}, expected {expected:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sighup_replaces_both_files_or_neither_and_disconnects_revoked_clients() {
    // Readable by the user a root broker switches to, which reads them on SIGHUP.
    let dir = crate::support::credentials::shared_dir();
    let passwords = dir.path().join("passwords");
    let acl = dir.path().join("acl");
    let set_password = |password: &str| {
        crate::support::credentials::rbroker_passwd(&[
            "-c",
            "-I",
            TEST_ITERATIONS,
            "-b",
            passwords.to_str().expect("utf-8"),
            "alice",
            password,
        ]);
        crate::support::credentials::open_to_all(&passwords, 0o644);
    };
    set_password("one");
    std::fs::write(&acl, "user alice\ntopic a/#\n").expect("write");
    let port = free_port();
    let conf = dir.path().join("rbroker.conf");
    let write_conf = |extra: &str| {
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\npassword_file {}\nacl_file {}\n{extra}",
                passwords.display(),
                acl.display()
            ),
        )
        .expect("write");
    };
    write_conf("");
    let mut broker = Running::start(&["-c", conf.to_str().expect("utf-8")]);
    let v5 = ProtocolVersion::V5;
    let mut connected =
        RawClient::connect_with(addr(port), login(v5, "kept", Some("alice"), Some("one")));
    let publish_code = |client: &mut RawClient, topic: &str| {
        client
            .publish_packet(crate::support::raw::publish_v5(
                topic,
                b"x",
                QoS::AtLeastOnce,
                [],
            ))
            .expect("PUBACK")
            .reason
    };
    assert!(!publish_code(&mut connected, "a/x").is_error());

    // A new ACL: the connected client stays, and its next PUBLISH is checked
    // against the new rules.
    std::fs::write(&acl, "user alice\ntopic b/#\n").expect("write");
    broker.signal(libc::SIGHUP);
    broker.wait_for("Reloading config.");
    let deadline = Instant::now() + WAIT;
    while publish_code(&mut connected, "a/x") != ReasonCode::NotAuthorized {
        assert!(Instant::now() < deadline, "the new ACL never applied");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!publish_code(&mut connected, "b/x").is_error());

    // A new password: the client logged in with the old one is disconnected
    // (MQTT 5: DISCONNECT 0x87), the new one logs in, the old one no longer does.
    set_password("two");
    let passwords_in_force = std::fs::read(&passwords).expect("read");
    broker.signal(libc::SIGHUP);
    assert_eq!(
        connected.expect_disconnect().reason,
        ReasonCode::NotAuthorized
    );
    eventually(port, "alice", "two", ReasonCode::Success);
    assert_eq!(
        code(port, Some("alice"), Some("one")),
        ReasonCode::NotAuthorized
    );
    let mut connected =
        RawClient::connect_with(addr(port), login(v5, "kept", Some("alice"), Some("two")));

    // A good password file with a bad ACL: neither is taken, nobody is disconnected.
    set_password("three");
    std::fs::write(&acl, "user alice\ntopic read a/#/b\n").expect("write");
    broker.signal(libc::SIGHUP);
    let error = broker.wait_for("Error: Invalid line in acl file");
    assert!(error.contains(&format!("{}:2", acl.display())), "{error}");
    broker.wait_for("Keeping the password and ACL files loaded before the reload.");
    assert_eq!(code(port, Some("alice"), Some("two")), ReasonCode::Success);
    assert_eq!(
        code(port, Some("alice"), Some("three")),
        ReasonCode::NotAuthorized
    );
    assert!(!publish_code(&mut connected, "b/x").is_error());

    // A password file that is gone: the old users stay.
    std::fs::remove_file(&passwords).expect("remove");
    broker.signal(libc::SIGHUP);
    broker.wait_for("Error opening password file");
    assert_eq!(code(port, Some("alice"), Some("two")), ReasonCode::Success);

    // The config file is read again too: allow_anonymous now, and a valid ACL.
    // The password file comes back as it was (a re-made entry, even for the same
    // password, would disconnect the client: rbroker keeps no password to re-check).
    std::fs::write(&passwords, passwords_in_force).expect("write");
    std::fs::write(&acl, "topic read public/#\nuser alice\ntopic b/#\n").expect("write");
    write_conf("allow_anonymous true\n");
    broker.signal(libc::SIGHUP);
    let deadline = Instant::now() + WAIT;
    while code(port, None, None) != ReasonCode::Success {
        assert!(Instant::now() < deadline, "anonymous access never allowed");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!publish_code(&mut connected, "b/x").is_error());
    broker.signal(libc::SIGTERM);
    assert_eq!(broker.wait(), 0);
}

/// A config with two listeners: `open_port` anonymous and without files,
/// `closed_port` with a password file; both brokers read it.
fn per_listener_conf(passwords: &Path, open_port: u16, closed_port: u16) -> String {
    format!(
        "per_listener_settings true\n\
         listener {open_port} 127.0.0.1\nallow_anonymous true\n\
         listener {closed_port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
        passwords.display()
    )
}

#[test]
fn per_listener_settings_give_each_listener_its_own_rules() {
    if !available("per_listener_settings_give_each_listener_its_own_rules") {
        return;
    }
    let dir = shared_dir();
    let passwords = password_file(dir.path(), Maker::Rbroker, &[("alice", "secret")]);
    for program in [env!("CARGO_BIN_EXE_rbroker"), "mosquitto"] {
        let (open_port, closed_port) = (free_port(), free_port());
        let conf = dir.path().join("per-listener.conf");
        std::fs::write(&conf, per_listener_conf(&passwords, open_port, closed_port))
            .expect("write");
        open_to_all(&conf, 0o644);
        let broker = Running::program(program, &["-c", conf.to_str().expect("utf-8")]);
        crate::support::mosquitto::wait_until_listening(closed_port);
        assert_eq!(
            code(open_port, None, None),
            ReasonCode::Success,
            "{program}"
        );
        assert_eq!(
            code(closed_port, None, None),
            ReasonCode::NotAuthorized,
            "{program}"
        );
        assert_eq!(
            code(closed_port, Some("alice"), Some("wrong")),
            ReasonCode::NotAuthorized,
            "{program}"
        );
        assert_eq!(
            code(closed_port, Some("alice"), Some("secret")),
            ReasonCode::Success,
            "{program}"
        );
        drop(broker);
    }
}

#[test]
fn a_refused_login_is_logged_as_mosquitto_logs_it() {
    if !available("a_refused_login_is_logged_as_mosquitto_logs_it") {
        return;
    }
    let dir = shared_dir();
    let passwords = password_file(dir.path(), Maker::Mosquitto, &[("alice", "secret")]);
    for program in [env!("CARGO_BIN_EXE_rbroker"), "mosquitto"] {
        let (mut broker, port) = broker_on(
            program,
            dir.path(),
            &format!("password_file {}\n", passwords.display()),
            &["-v"],
        );
        for (user, password, code_logged) in [
            (Some("alice"), Some("wrong"), 5),
            (Some("eve"), Some("secret"), 5),
            (None, None, 5),
        ] {
            assert_eq!(code(port, user, password), ReasonCode::NotAuthorized);
            broker.wait_for("New connection from 127.0.0.1:");
            let sending = broker.wait_for("Sending CONNACK to ");
            assert_eq!(
                sending,
                format!("Sending CONNACK to 127.0.0.1 (0, {code_logged})")
            );
            broker.wait_for("Client <unknown> disconnected, not authorised.");
        }
        assert_eq!(
            code(port, Some("alice"), Some("secret")),
            ReasonCode::Success
        );
        let connected = broker.wait_for("New client connected from 127.0.0.1:");
        assert!(
            connected.ends_with(" as files (p2, c1, k60, u'alice')."),
            "{connected}"
        );
    }
}

#[test]
fn paho_logs_in_with_a_username_and_password() {
    let Some(python) = crate::support::paho::python("paho_logs_in_with_a_username_and_password")
    else {
        return;
    };
    let dir = shared_dir();
    let passwords = password_file(dir.path(), Maker::Rbroker, &[("student", "s3cret")]);
    let acl = dir.path().join("acl");
    std::fs::write(&acl, "user student\ntopic readwrite course/#\n").expect("write");
    open_to_all(&acl, 0o644);
    let conf = format!(
        "allow_anonymous false\npassword_file {}\nacl_file {}\n",
        passwords.display(),
        acl.display()
    );
    crate::support::target::on_both("paho_login", &conf, |target| {
        let (status, stdout) = crate::support::paho::run_script(
            &python,
            "tests/it/paho_auth.py",
            &[&target.port(), target.name()],
            Duration::from_secs(30),
        );
        assert!(status.success(), "{}: {stdout}", target.name());
        for scenario in ["good password", "wrong password", "acl"] {
            assert!(
                stdout.lines().any(|l| l == format!("ok {scenario}")),
                "{}: {stdout}",
                target.name()
            );
        }
    });
}

/// The next PUBLISH a client receives, acknowledged: its topic and retain flag.
fn next_message(client: &mut RawClient) -> (String, bool) {
    let received = client.recv_publish();
    client.acknowledge(&received);
    (received.topic.as_str().to_string(), received.retain)
}

#[test]
fn a_retained_message_goes_quiet_when_its_publisher_loses_write_access() {
    if !available("a_retained_message_goes_quiet_when_its_publisher_loses_write_access") {
        return;
    }
    let dir = shared_dir();
    let passwords = password_file(
        dir.path(),
        Maker::Rbroker,
        &[("alice", "alice"), ("bob", "bob"), ("carol", "carol")],
    );
    let acl = dir.path().join("acl");
    let write_acl = |alice_writes: bool| {
        let alice = if alice_writes { "readwrite" } else { "read" };
        std::fs::write(
            &acl,
            format!(
                "user alice\ntopic {alice} lab/#\nuser bob\ntopic read lab/#\nuser carol\ntopic readwrite lab/#\n"
            ),
        )
        .expect("write acl");
        open_to_all(&acl, 0o644);
    };
    let v3 = ProtocolVersion::V3_1_1;
    for check_retain_source in [true, false] {
        for program in [env!("CARGO_BIN_EXE_rbroker"), "mosquitto"] {
            write_acl(true);
            let lines = format!(
                "password_file {}\nacl_file {}\ncheck_retain_source {check_retain_source}\n",
                passwords.display(),
                acl.display()
            );
            let (mut broker, port) = broker_on(program, dir.path(), &lines, &[]);
            let context = format!("{program}, check_retain_source {check_retain_source}");
            let mut alice = RawClient::connect_with(
                addr(port),
                login(v3, "alice", Some("alice"), Some("alice")),
            );
            alice.publish("lab/kept", b"x", QoS::AtLeastOnce, true, 1);
            let mut bob =
                RawClient::connect_with(addr(port), login(v3, "bob-1", Some("bob"), Some("bob")));
            bob.subscribe(1, &[("lab/#", QoS::AtLeastOnce)]);
            assert_eq!(
                next_message(&mut bob),
                ("lab/kept".into(), true),
                "{context}"
            );

            // Alice may only read now.
            write_acl(false);
            broker.signal(libc::SIGHUP);
            broker.wait_for("Reloading config.");
            let mut carol = RawClient::connect_with(
                addr(port),
                login(v3, "carol", Some("carol"), Some("carol")),
            );
            let deadline = Instant::now() + WAIT;
            // rbroker logs the reload before it is done: retry until it shows.
            loop {
                let mut bob = RawClient::connect_with(
                    addr(port),
                    login(v3, "bob-2", Some("bob"), Some("bob")),
                );
                bob.subscribe(1, &[("lab/#", QoS::AtLeastOnce)]);
                carol.publish("lab/marker", b"x", QoS::AtLeastOnce, false, 2);
                let first = next_message(&mut bob);
                let expected = if check_retain_source {
                    ("lab/marker".to_string(), false)
                } else {
                    ("lab/kept".to_string(), true)
                };
                if first == expected {
                    break;
                }
                assert!(Instant::now() < deadline, "{context}: got {first:?}");
            }
            drop(broker);
        }
    }
}

#[test]
fn a_login_being_checked_during_a_reload_is_answered_after_a_fresh_check() {
    let dir = tempfile::tempdir().expect("temp dir");
    let passwords = dir.path().join("passwords");
    // A costly hash, so the check is still running when SIGHUP arrives.
    crate::support::credentials::rbroker_passwd(&[
        "-c",
        "-I",
        "1000000",
        "-b",
        passwords.to_str().expect("utf-8"),
        "alice",
        "slow",
    ]);
    let (mut broker, port) = broker_on(
        env!("CARGO_BIN_EXE_rbroker"),
        dir.path(),
        &format!("password_file {}\n", passwords.display()),
        &[],
    );
    let mut client = RawClient::open(addr(port));
    let v3 = ProtocolVersion::V3_1_1;
    let mut bytes = mqttkit::protocol::Packet::Connect(Box::new(login(
        v3,
        "slow-login",
        Some("alice"),
        Some("slow"),
    )))
    .to_bytes(v3)
    .expect("encode");
    bytes.extend(
        mqttkit::protocol::Packet::PingReq
            .to_bytes(v3)
            .expect("encode"),
    );
    client.send_bytes(&bytes);
    // The CONNECT is read at once; its check takes most of a second. The pause
    // only orders the reload after the check started (were it earlier, the login
    // would simply succeed and the test pass without exercising the re-check).
    std::thread::sleep(Duration::from_millis(150));
    broker.signal(libc::SIGHUP);
    broker.wait_for("Reloading config.");
    // The check ran against files no longer in force, so it runs again; then the
    // CONNECT is answered and the packet behind it handled.
    match client.recv_within(WAIT * 2) {
        Some(mqttkit::protocol::Packet::ConnAck(connack)) => {
            assert_eq!(connack.code, ReasonCode::Success)
        }
        other => panic!("expected CONNACK, got {other:?}"),
    }
    assert!(matches!(client.recv(), mqttkit::protocol::Packet::PingResp));
}
