//! mosquitto.conf options beyond listeners and auth, run against rbroker's binary
//! and mosquitto from the same file: `port`/`bind_address` (the default listener of
//! every tutorial), `include_dir`, `allow_zero_length_clientid`, `auto_id_prefix`,
//! `pid_file`, `log_timestamp` and `log_timestamp_format`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use mqttkit::protocol::{
    Connect, Disconnect, Packet, Property, ProtocolVersion, QoS, ReasonCode, TopicName, Will,
};

use crate::support::credentials::{open_to_all, shared_dir, writable_dir};
use crate::support::files::{RBROKER, addr, programs, write};
use crate::support::logged::{Running, refused_start};
use crate::support::mosquitto::{free_port, messages, publish, subscriber, wait_until_listening};
use crate::support::target::{Target, on_both};
use crate::support::{RawClient, WAIT};

/// A broker process killed when the test ends, passing or failing.
struct Reaped(Option<std::process::Child>);

impl Reaped {
    fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, std::process::Child::id)
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A daemon (by pid) stopped with SIGTERM when the test ends, passing or failing.
struct Daemon(i32);

impl Drop for Daemon {
    fn drop(&mut self) {
        // SAFETY: signalling the daemon this test started.
        unsafe { libc::kill(self.0, libc::SIGTERM) };
    }
}

/// `program` serving anonymous clients on a free loopback port with `extra`
/// config lines (written as `name` in `dir`); the broker and its port.
fn serving(program: &str, dir: &Path, name: &str, extra: &str) -> (Running, u16) {
    let port = free_port();
    let conf = write(
        dir,
        name,
        &format!("listener {port} 127.0.0.1\nallow_anonymous true\n{extra}"),
    );
    (Running::program(program, &["-c", &conf]), port)
}

fn anonymous(port: u16, version: ProtocolVersion, id: &str) -> ReasonCode {
    let connect = Connect {
        version,
        ..Connect::new(id, 60)
    };
    RawClient::handshake(addr(port), connect).1.code
}

#[test]
fn port_and_bind_address_set_the_default_listener() {
    let dir = shared_dir();
    for program in programs("port_and_bind_address_set_the_default_listener") {
        // `port` alone: every interface, and anonymous clients are refused, since a
        // listener is configured.
        let port = free_port();
        let conf = write(dir.path(), "port.conf", &format!("port {port}\n"));
        let broker = Running::program(program, &["-c", &conf]);
        assert!(
            broker
                .raw
                .iter()
                .any(|l| l.contains("The 'port' option is now deprecated")),
            "{program}: {:#?}",
            broker.raw
        );
        let opening = format!("Opening ipv4 listen socket on port {port}.");
        assert!(
            broker.seen.contains(&opening),
            "{program}: {:#?}",
            broker.seen
        );
        assert_eq!(
            anonymous(port, ProtocolVersion::V3_1_1, "p"),
            ReasonCode::NotAuthorized,
            "{program}"
        );
        drop(broker);
        // With `bind_address`, `allow_anonymous true`, and a `listener` beside it.
        let (port, other) = (free_port(), free_port());
        let conf = write(
            dir.path(),
            "bind.conf",
            &format!(
                "bind_address 127.0.0.1\nport {port}\nallow_anonymous true\nlistener {other} 127.0.0.1\n"
            ),
        );
        let broker = Running::program(program, &["-c", &conf]);
        wait_until_listening(port);
        assert_eq!(
            anonymous(port, ProtocolVersion::V3_1_1, "b"),
            ReasonCode::Success,
            "{program}"
        );
        // Without per_listener_settings, allow_anonymous holds for both.
        assert_eq!(
            anonymous(other, ProtocolVersion::V3_1_1, "o"),
            ReasonCode::Success,
            "{program}"
        );
        drop(broker);
    }
}

/// The exit status and stderr of a broker that must refuse `conf`.
fn refused(program: &str, conf: &str) -> (Option<i32>, String) {
    refused_start(program, Path::new(conf))
}

#[test]
fn include_dir_reads_conf_files_in_name_order_and_errors_point_into_them() {
    let dir = shared_dir();
    let included = dir.path().join("conf.d");
    std::fs::create_dir(&included).expect("mkdir");
    open_to_all(&included, 0o755);
    let port = free_port();
    // Capital letters sort first: B.conf, then a.conf; notes.txt is not read.
    write(&included, "B.conf", "allow_anonymous true\n");
    write(&included, "a.conf", "# second\nmax_keepalive 30\n");
    write(&included, "notes.txt", "this is not configuration\n");
    let conf = write(
        dir.path(),
        "main.conf",
        &format!(
            "listener {port} 127.0.0.1\ninclude_dir {}\n",
            included.display()
        ),
    );
    for program in programs("include_dir_reads_conf_files") {
        let broker = Running::program(program, &["-c", &conf]);
        // B.conf allowed anonymous clients; a.conf's max_keepalive refuses a 3.1.1
        // client asking for 60 s (mosquitto 2.0.12+ and rbroker: identifier rejected).
        let code = anonymous(port, ProtocolVersion::V3_1_1, "inc");
        assert_ne!(code, ReasonCode::NotAuthorized, "{program}");
        let v5 = RawClient::handshake(
            addr(port),
            Connect {
                version: ProtocolVersion::V5,
                ..Connect::new("inc5", 60)
            },
        )
        .1;
        assert!(
            v5.properties
                .iter()
                .any(|p| *p == Property::ServerKeepAlive(30)),
            "{program}: {v5:?}"
        );
        drop(broker);
    }
    // The same option set twice: the error names the later file and its line.
    let passwords = write(dir.path(), "passwords", "");
    write(&included, "C.conf", &format!("password_file {passwords}\n"));
    write(
        &included,
        "c.conf",
        &format!("# again\npassword_file {passwords}\n"),
    );
    for program in programs("include_dir_errors") {
        let (status, stderr) = refused(program, &conf);
        assert_eq!(status, Some(3), "{program}: {stderr}");
        let at = format!("{}:2", included.join("c.conf").display());
        assert!(stderr.contains(&at), "{program}: {stderr}");
    }
    std::fs::remove_file(included.join("C.conf")).expect("remove");
    std::fs::remove_file(included.join("c.conf")).expect("remove");
    // rbroker refuses what it cannot read, naming the include_dir line.
    let broken = [
        ("a directory", "sub.conf", None),
        ("a symbolic link loop", "loop.conf", Some("loop.conf")),
        // Root reads any file; a link to nothing is a file it cannot read either.
        (
            "an unreadable file",
            "dangling.conf",
            Some("/nonexistent/rbroker.conf"),
        ),
    ];
    for (what, name, target) in broken {
        let path = included.join(name);
        let directory = target.is_none();
        match target {
            None => std::fs::create_dir(&path).expect("mkdir"),
            Some(target) => {
                std::os::unix::fs::symlink(included.join(target), &path).expect("symlink")
            }
        }
        let (status, stderr) = refused(RBROKER, &conf);
        assert_eq!(status, Some(3), "{what}: {stderr}");
        assert!(stderr.contains(&format!("{conf}:2")), "{what}: {stderr}");
        if directory {
            std::fs::remove_dir(&path).expect("rmdir");
        } else {
            std::fs::remove_file(&path).expect("rm");
        }
    }
    let missing = write(
        dir.path(),
        "missing.conf",
        "listener 1883\ninclude_dir /nonexistent/conf.d\n",
    );
    let (status, stderr) = refused(RBROKER, &missing);
    assert_eq!(status, Some(3), "{stderr}");
    assert!(stderr.contains(&format!("{missing}:2")), "{stderr}");
}

#[test]
fn zero_length_client_ids_can_be_refused_and_assigned_ids_prefixed() {
    let dir = shared_dir();
    for program in programs("zero_length_client_ids") {
        let (broker, port) = serving(
            program,
            dir.path(),
            "ids.conf",
            "allow_zero_length_clientid false\n",
        );
        assert_eq!(
            anonymous(port, ProtocolVersion::V3_1_1, ""),
            ReasonCode::ClientIdentifierNotValid,
            "{program}"
        );
        // MQTT 5: 0x85 "Client Identifier not valid"; mosquitto 2.0.11 says 0x80.
        let expected = if program == RBROKER {
            ReasonCode::ClientIdentifierNotValid
        } else {
            ReasonCode::UnspecifiedError
        };
        assert_eq!(
            anonymous(port, ProtocolVersion::V5, ""),
            expected,
            "{program}"
        );
        drop(broker);
        let port = free_port();
        let conf = write(
            dir.path(),
            "prefix.conf",
            &format!("listener {port} 127.0.0.1\nallow_anonymous true\nauto_id_prefix lab-\n"),
        );
        let broker = Running::program(program, &["-c", &conf]);
        let connect = Connect {
            version: ProtocolVersion::V5,
            ..Connect::new("", 60)
        };
        let connack = RawClient::handshake(addr(port), connect).1;
        let assigned = connack.properties.iter().find_map(|p| match p {
            Property::AssignedClientIdentifier(id) => Some(id.clone()),
            _ => None,
        });
        assert!(
            assigned.as_deref().is_some_and(|id| id.starts_with("lab-")),
            "{program}: {connack:?}"
        );
        drop(broker);
    }
}

#[test]
fn pid_file_holds_the_process_id_while_the_broker_runs() {
    let dir = shared_dir();
    let port = free_port();
    // Removed at exit by the user a root broker switched to.
    let pid_path = writable_dir(dir.path(), "run").join("broker.pid");
    let conf = write(
        dir.path(),
        "pid.conf",
        &format!(
            "listener {port} 127.0.0.1\npid_file {}\n",
            pid_path.display()
        ),
    );
    let broker = Running::start(&["-c", &conf]);
    let written = std::fs::read_to_string(&pid_path).expect("pid file");
    assert_eq!(written.trim(), broker.pid().to_string());
    broker.signal(libc::SIGTERM);
    assert_eq!(broker.wait(), 0);
    assert!(!pid_path.exists(), "pid file left behind");
    // A pid file that cannot be written stops startup.
    let conf = write(
        dir.path(),
        "bad-pid.conf",
        &format!(
            "listener {}\npid_file /nonexistent/dir/broker.pid\n",
            free_port()
        ),
    );
    let (status, stderr) = refused(RBROKER, &conf);
    assert_eq!(status, Some(1), "{stderr}");
    assert!(stderr.contains("Unable to write pid file"), "{stderr}");
}

#[test]
fn log_timestamps_can_be_formatted_or_left_out() {
    let dir = shared_dir();
    for program in programs("log_timestamps") {
        let conf = write(
            dir.path(),
            "plain.conf",
            &format!("listener {} 127.0.0.1\nlog_timestamp false\n", free_port()),
        );
        let broker = Running::program(program, &["-c", &conf]);
        let running = broker
            .raw
            .iter()
            .find(|l| l.ends_with(" running"))
            .expect("running line");
        assert!(
            !running.starts_with(|c: char| c.is_ascii_digit()),
            "{program}: {running}"
        );
        drop(broker);
        let conf = write(
            dir.path(),
            "format.conf",
            &format!(
                "listener {} 127.0.0.1\nlog_timestamp_format %Y-%m-%dT%H:%M:%S\n",
                free_port()
            ),
        );
        let broker = Running::program(program, &["-c", &conf]);
        let running = broker
            .raw
            .iter()
            .find(|l| l.ends_with(" running"))
            .expect("running line");
        let bytes = running.as_bytes();
        assert!(
            bytes.len() > 20 && bytes[4] == b'-' && bytes[10] == b'T' && bytes[19] == b':',
            "{program}: {running}"
        );
        drop(broker);
    }
}

#[test]
fn daemon_mode_returns_at_once_and_leaves_the_broker_serving() {
    let dir = shared_dir();
    let run = writable_dir(dir.path(), "run");
    for program in programs("daemon_mode") {
        let port = free_port();
        let pid_path = run.join(format!("daemon-{port}.pid"));
        let conf = write(
            dir.path(),
            "daemon.conf",
            &format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npid_file {}\n",
                pid_path.display()
            ),
        );
        let started = std::process::Command::new(program)
            .args(["-d", "-c", &conf])
            .status()
            .expect("run");
        assert!(started.success(), "{program}: {started}");
        wait_until_listening(port);
        let deadline = Instant::now() + WAIT;
        let daemon = loop {
            if let Some(pid) = std::fs::read_to_string(&pid_path)
                .ok()
                .and_then(|text| text.trim().parse::<i32>().ok())
            {
                break Daemon(pid);
            }
            assert!(Instant::now() < deadline, "{program}: no pid file");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(
            anonymous(port, ProtocolVersion::V3_1_1, "daemon"),
            ReasonCode::Success,
            "{program}"
        );
        drop(daemon);
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(addr(port)).is_ok() {
            assert!(Instant::now() < deadline, "{program}: still serving");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// `rbroker -d` returns once the broker serves, so a client connects at once,
/// without waiting; a second one on the same port returns status 1 with the
/// error on the terminal (mosquitto returns 0 at once and the error is lost).
#[test]
fn rbroker_daemon_returns_once_serving_or_with_its_error() {
    let dir = shared_dir();
    let run = writable_dir(dir.path(), "run");
    let port = free_port();
    let conf = |name: &str| {
        write(
            dir.path(),
            &format!("{name}.conf"),
            &format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npid_file {}\n",
                run.join(format!("{name}.pid")).display()
            ),
        )
    };
    let first = std::process::Command::new(RBROKER)
        .args(["-d", "-c", &conf("first")])
        .output()
        .expect("run");
    assert!(first.status.success(), "{first:?}");
    let pid = std::fs::read_to_string(run.join("first.pid")).expect("pid file");
    let _daemon = Daemon(pid.trim().parse().expect("pid"));
    assert!(
        std::net::TcpStream::connect(addr(port)).is_ok(),
        "not listening when -d returned"
    );
    let second = std::process::Command::new(RBROKER)
        .args(["-d", "-c", &conf("second")])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Address already in use")
            && stderr.contains("Unable to start any listening sockets"),
        "{stderr}"
    );
}

/// A persistent 3.1.1 client for `id`, subscribed to `filter` at `qos`, that then
/// leaves; returns once the broker has closed its connection.
fn leave_subscribed(target: &Target, id: &str, filter: &str, qos: QoS) {
    let connect = Connect {
        clean_start: false,
        ..Connect::new(id, 60)
    };
    let mut client = RawClient::connect_with(target.addr(), connect);
    client.subscribe(1, &[(filter, qos)]);
    client.disconnect_and_wait(Disconnect::new(ReasonCode::Success));
}

#[test]
fn queue_qos0_messages_keeps_qos_0_for_offline_persistent_clients() {
    for (conf, queued) in [("", false), ("queue_qos0_messages true\n", true)] {
        on_both("queue_qos0_messages", conf, |target| {
            let name = target.name();
            leave_subscribed(target, "offline-q0", "q0/#", QoS::AtMostOnce);
            let mut publisher = RawClient::connect(target.addr(), "q0-publisher");
            publisher.publish("q0/while-away", b"x", QoS::AtMostOnce, false, 1);
            publisher.ping();
            let connect = Connect {
                clean_start: false,
                ..Connect::new("offline-q0", 60)
            };
            let mut back = RawClient::connect_with(target.addr(), connect);
            publisher.publish("q0/marker", b"x", QoS::AtMostOnce, false, 2);
            let first = back.recv_publish();
            let expected = if queued { "q0/while-away" } else { "q0/marker" };
            assert_eq!(first.topic.as_str(), expected, "{name}: {conf:?}");
        });
    }
}

#[test]
fn upgrade_outgoing_qos_delivers_at_the_subscriptions_qos() {
    for (conf, upgraded) in [("", false), ("upgrade_outgoing_qos true\n", true)] {
        on_both("upgrade_outgoing_qos", conf, |target| {
            let mut subscriber = RawClient::connect(target.addr(), "upgrade-sub");
            subscriber.subscribe(1, &[("up/#", QoS::ExactlyOnce)]);
            let mut publisher = RawClient::connect(target.addr(), "upgrade-pub");
            publisher.publish("up/x", b"x", QoS::AtMostOnce, false, 1);
            let received = subscriber.recv_publish();
            subscriber.acknowledge(&received);
            let expected = if upgraded {
                QoS::ExactlyOnce
            } else {
                QoS::AtMostOnce
            };
            assert_eq!(received.qos, expected, "{}: {conf:?}", target.name());
        });
    }
}

#[test]
fn max_qos_caps_subscriptions_and_refuses_higher_publishes_and_wills() {
    on_both("max_qos", "max_qos 1\n", |target| {
        let name = target.name();
        let (mut client, connack) = RawClient::handshake(
            target.addr(),
            Connect {
                version: ProtocolVersion::V5,
                ..Connect::new("max-qos-5", 60)
            },
        );
        assert!(
            connack
                .properties
                .iter()
                .any(|p| *p == Property::MaximumQos(1)),
            "{name}: {connack:?}"
        );
        let suback = client.subscribe(1, &[("mq/#", QoS::ExactlyOnce)]);
        assert_eq!(suback.codes, [ReasonCode::GrantedQoS1], "{name}");
        client.send(&Packet::Publish(crate::support::raw::publish_v5(
            "mq/x",
            b"x",
            QoS::ExactlyOnce,
            [],
        )));
        assert_eq!(
            client.disconnect_reason(),
            Some(ReasonCode::QoSNotSupported),
            "{name}"
        );
        let mut v3 = RawClient::connect(target.addr(), "max-qos-3");
        let suback = v3.subscribe(1, &[("mq/#", QoS::ExactlyOnce)]);
        assert_eq!(suback.codes, [ReasonCode::GrantedQoS1], "{name}");
        v3.send(&Packet::Publish(crate::support::raw::publish_v5(
            "mq/x",
            b"x",
            QoS::ExactlyOnce,
            [],
        )));
        assert!(v3.packets_until_closed().is_empty(), "{name}");
        for version in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
            let connect = Connect {
                version,
                will: Some(Will {
                    topic: TopicName::new("mq/will").expect("topic"),
                    payload: Default::default(),
                    qos: QoS::ExactlyOnce,
                    retain: false,
                    properties: Default::default(),
                }),
                ..Connect::new("max-qos-will", 60)
            };
            // 5.0: CONNACK 0x9B; 3.1.1 has no code for it: closed without a CONNACK.
            let (_, connack) = RawClient::handshake_or_closed(target.addr(), connect);
            let expected = version.is_v5().then_some(ReasonCode::QoSNotSupported);
            assert_eq!(connack.map(|c| c.code), expected, "{name} {version:?}");
        }
    });
}

/// Waits until the file at `path` holds `text`.
fn wait_for_file_text(path: &Path, text: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let content = std::fs::read_to_string(path).unwrap_or_default();
        if content.contains(text) {
            return content;
        }
        assert!(
            Instant::now() < deadline,
            "{} never held {text:?}: {content}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn log_dest_file_writes_there_instead_of_stderr_and_reopens_on_sighup() {
    let dir = shared_dir();
    let logs = writable_dir(dir.path(), "logs");
    for program in programs("log_dest_file") {
        let port = free_port();
        let log_path = logs.join(format!("broker-{port}.log"));
        let conf = write(
            dir.path(),
            "logfile.conf",
            &format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\nlog_dest file {}\n",
                log_path.display()
            ),
        );
        let mut child = Reaped(Some(
            std::process::Command::new(program)
                .args(["-v", "-c", &conf])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start"),
        ));
        wait_until_listening(port);
        RawClient::connect(addr(port), "logged").disconnect();
        wait_for_file_text(&log_path, "as logged (p2, c1, k60).");
        wait_for_file_text(&log_path, "Client logged disconnected.");
        // Rotated away, then SIGHUP: a new file takes the lines that follow.
        let rotated = logs.join(format!("broker-{port}.log.1"));
        std::fs::rename(&log_path, &rotated).expect("rotate");
        let pid = i32::try_from(child.id()).expect("pid");

        // SAFETY: signalling the broker this test started.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
        // Lines written after the reopen go to the new file (mosquitto may write
        // "Reloading config." before reopening): a client that connects now.
        let deadline = Instant::now() + WAIT;
        while !std::fs::read_to_string(&log_path)
            .unwrap_or_default()
            .contains("as rotated (p2, c1, k60).")
        {
            assert!(
                Instant::now() < deadline,
                "{program}: no line in the new file"
            );
            RawClient::connect(addr(port), "rotated").disconnect();
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        let output = child
            .0
            .take()
            .expect("child")
            .wait_with_output()
            .expect("wait");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("New client connected"),
            "{program}: {stderr}"
        );
        let rotated_text = std::fs::read_to_string(&rotated).expect("rotated log");
        assert!(
            rotated_text.contains(" running"),
            "{program}: {rotated_text}"
        );
    }
}

#[test]
fn persistent_client_expiration_ends_sessions_that_would_live_for_ever() {
    let broker = crate::support::TestBroker::with_config(mqttkit::broker::Config {
        sys_interval: 0,
        persistent_client_expiration: Some(Duration::from_secs(1)),
        ..mqttkit::broker::Config::default()
    });
    let connect = Connect {
        clean_start: false,
        ..Connect::new("kept-a-while", 60)
    };
    let mut client = RawClient::connect_with(broker.addr(), connect);
    client.subscribe(1, &[("a/#", QoS::AtLeastOnce)]);
    client.disconnect_and_wait(Disconnect::new(ReasonCode::Success));
    assert_eq!(broker.figures().sessions, 1);
    let deadline = Instant::now() + WAIT;
    while broker.figures().sessions != 0 {
        assert!(Instant::now() < deadline, "the session never expired");
        std::thread::sleep(Duration::from_millis(10));
    }
    let connect = Connect {
        clean_start: false,
        ..Connect::new("kept-a-while", 60)
    };
    let (_, connack) = RawClient::handshake(broker.addr(), connect);
    assert!(!connack.session_present);
}

#[test]
fn clientid_prefixes_admits_only_matching_client_ids() {
    on_both("clientid_prefixes", "clientid_prefixes lab-\n", |target| {
        let name = target.name();
        for (id, version, expected) in [
            ("lab-1", ProtocolVersion::V3_1_1, ReasonCode::Success),
            ("other", ProtocolVersion::V3_1_1, ReasonCode::NotAuthorized),
            ("other", ProtocolVersion::V5, ReasonCode::NotAuthorized),
        ] {
            let connect = Connect {
                version,
                ..Connect::new(id, 60)
            };
            let (_, connack) = RawClient::handshake(target.addr(), connect);
            assert_eq!(connack.code, expected, "{name}: {id} {version:?}");
        }
    });
}

#[test]
fn socket_domain_limits_a_listener_to_one_address_family() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!(
            "skipped socket_domain_limits_a_listener_to_one_address_family: no IPv6 loopback"
        );
        return;
    }
    let dir = shared_dir();
    for program in programs("socket_domain") {
        for (domain, v4, v6) in [("ipv4", true, false), ("ipv6", false, true)] {
            let port = free_port();
            let conf = write(
                dir.path(),
                "domain.conf",
                &format!("listener {port}\nsocket_domain {domain}\nallow_anonymous true\n"),
            );
            let child = Reaped(Some(
                std::process::Command::new(program)
                    .args(["-c", &conf])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .expect("start"),
            ));
            let (reachable, unreachable) = if v4 {
                (
                    addr(port),
                    SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)),
                )
            } else {
                (
                    SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)),
                    addr(port),
                )
            };
            let deadline = Instant::now() + WAIT;
            while std::net::TcpStream::connect(reachable).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "{program} {domain}: not listening"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(
                std::net::TcpStream::connect(unreachable).is_err(),
                "{program} {domain}: also listening on {unreachable} (v4 {v4}, v6 {v6})"
            );
            drop(child);
        }
    }
}

#[test]
fn user_drops_root_privileges_once_the_sockets_are_bound() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped user_drops_root_privileges: not running as root");
        return;
    }
    let uid_of = |user: &str| {
        let output = std::process::Command::new("id")
            .args(["-u", user])
            .output()
            .expect("id");
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
    };
    let uids_of = |pid: u32| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .expect("Uid line")
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let nobody = uid_of("nobody").expect("a nobody user");
    // Without a `user` line: `mosquitto`, or `nobody` where it does not exist.
    let default_user = uid_of("mosquitto").unwrap_or_else(|| nobody.clone());
    let dir = shared_dir();
    for program in programs("user_drops_privileges") {
        for (line, expected) in [("user nobody\n", &nobody), ("", &default_user)] {
            let port = free_port();
            let conf = write(
                dir.path(),
                "user.conf",
                &format!("listener {port} 127.0.0.1\nallow_anonymous true\n{line}"),
            );
            let broker = Running::program(program, &["-c", &conf]);
            let uids = uids_of(broker.pid());
            assert!(
                uids.iter().all(|uid| uid == expected),
                "{program} {line:?}: {uids:?}"
            );
            assert_eq!(
                anonymous(port, ProtocolVersion::V3_1_1, "switched"),
                ReasonCode::Success,
                "{program}"
            );
            drop(broker);
        }
        // `user root` stays root, with a warning.
        let port = free_port();
        let conf = write(
            dir.path(),
            "root.conf",
            &format!("listener {port} 127.0.0.1\nallow_anonymous true\nuser root\n"),
        );
        let broker = Running::program(program, &["-c", &conf]);
        assert!(
            uids_of(broker.pid()).iter().all(|uid| uid == "0"),
            "{program}"
        );
        assert!(
            broker
                .seen
                .iter()
                .any(|l| l.contains("should not be run as root/administrator.")),
            "{program}: {:#?}",
            broker.seen
        );
        drop(broker);
    }
    // A user that does not exist stops startup.
    let conf = write(
        dir.path(),
        "nouser.conf",
        &format!("listener {}\nuser no-such-user-here\n", free_port()),
    );
    for program in programs("user_drops_privileges") {
        let (status, stderr) = refused(program, &conf);
        assert_eq!(status, Some(1), "{program}: {stderr}");
        assert!(
            stderr.contains("Error: Unable to drop privileges to 'no-such-user-here' because this user does not exist."),
            "{program}: {stderr}"
        );
    }
}

/// Publishes `count` QoS 1 messages of 100 bytes to `topic`, each acknowledged.
fn publish_hundred_byte_messages(target: &Target, id: &str, topic: &str, count: u16) {
    let mut publisher = RawClient::connect(target.addr(), id);
    for n in 1..=count {
        let payload = format!("{n:0>100}");
        publisher.publish(topic, payload.as_bytes(), QoS::AtLeastOnce, false, n);
    }
}

/// The message numbers in 100-byte payloads written by `publish_hundred_byte_messages`.
fn numbers(publishes: &[mqttkit::protocol::Publish]) -> Vec<u32> {
    publishes
        .iter()
        .map(|p| {
            String::from_utf8_lossy(&p.payload)
                .parse()
                .expect("a number")
        })
        .collect()
}

/// Asserts that a PINGREQ is answered with nothing before its PINGRESP.
fn assert_nothing_pending(client: &mut RawClient, name: &str) {
    client.send(&Packet::PingReq);
    let packet = client.recv();
    assert!(
        matches!(packet, Packet::PingResp),
        "{name}: expected nothing before PINGRESP, got {packet:?}"
    );
}

#[test]
fn max_inflight_bytes_and_max_queued_bytes_bound_a_client_by_payload_bytes() {
    let conf = "max_inflight_messages 0\nmax_inflight_bytes 250\nmax_queued_messages 0\nmax_queued_bytes 300\n";
    on_both("max_inflight_bytes", conf, |target| {
        let name = target.name();
        let mut subscriber = RawClient::connect(target.addr(), "bytes-sub");
        subscriber.subscribe(1, &[("bytes/#", QoS::AtLeastOnce)]);
        publish_hundred_byte_messages(target, "bytes-pub", "bytes/x", 8);
        // In flight while fewer than 250 bytes are: three of 100, as mosquitto.conf(5)
        // says. mosquitto 2.0.11 sends more once messages are queued behind them.
        let mut window = Vec::new();
        while let Some(packet) = subscriber.recv_within(Duration::from_millis(300)) {
            let Packet::Publish(publish) = packet else {
                panic!("{name}: expected PUBLISH, got {packet:?}")
            };
            window.push(publish);
        }
        if target.is_mosquitto() {
            assert!(window.len() > 3, "{name}: {:?}", numbers(&window));
        } else {
            assert_eq!(numbers(&window), [1, 2, 3], "{name}");
        }
        // Accepted while the window and the queue held fewer than 250 + 300 bytes: six.
        for publish in &window {
            subscriber.acknowledge(publish);
        }
        let mut received = window.clone();
        received.extend(subscriber.drain_publishes(Duration::from_millis(300)));
        assert_eq!(numbers(&received), [1, 2, 3, 4, 5, 6], "{name}");
        assert_nothing_pending(&mut subscriber, name);
    });
}

#[test]
fn max_queued_bytes_bounds_what_waits_for_an_offline_client() {
    let conf = "max_queued_messages 0\nmax_queued_bytes 250\n";
    on_both("max_queued_bytes", conf, |target| {
        let name = target.name();
        leave_subscribed(target, "bytes-away", "away/#", QoS::AtLeastOnce);
        publish_hundred_byte_messages(target, "away-pub", "away/x", 6);
        let connect = Connect {
            clean_start: false,
            ..Connect::new("bytes-away", 60)
        };
        let mut back = RawClient::connect_with(target.addr(), connect);
        let mut received = Vec::new();
        for _ in 0..3 {
            let publish = back.recv_publish();
            back.acknowledge(&publish);
            received.push(publish);
        }
        // Queued while fewer than 250 bytes waited: three of 100.
        assert_eq!(numbers(&received), [1, 2, 3], "{name}");
        assert_nothing_pending(&mut back, name);
        // The other three count as dropped in $SYS/broker/publish/messages/dropped.
        if let Target::Rbroker(broker) = target {
            assert_eq!(broker.figures().publish_dropped, 3);
        }
    });
}

/// An IPv4 address of this machine that is not loopback, if it has one: the source
/// address of a route out (a UDP "connect" sends nothing).
fn outside_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn bind_interface_listens_on_that_interfaces_addresses_only() {
    let dir = shared_dir();
    let outside = outside_address();
    if outside.is_none() {
        eprintln!("bind_interface: no address besides loopback; only lo is checked");
    }
    for program in programs("bind_interface_listens_on_that_interfaces_addresses_only") {
        let port = free_port();
        let conf = write(
            dir.path(),
            "interface.conf",
            &format!("listener {port}\nbind_interface lo\nallow_anonymous true\n"),
        );
        let broker = Running::program(program, &["-c", &conf]);
        wait_until_listening(port);
        assert_eq!(
            anonymous(port, ProtocolVersion::V3_1_1, "on-lo"),
            ReasonCode::Success,
            "{program}"
        );
        if let Some(ip) = outside {
            let refused = std::net::TcpStream::connect_timeout(
                &SocketAddr::new(ip, port),
                Duration::from_secs(2),
            );
            assert!(refused.is_err(), "{program}: reachable on {ip}");
        }
        drop(broker);
        // A listener address the interface has is kept; one it lacks is not bound.
        let conf = write(
            dir.path(),
            "interface-address.conf",
            &format!("listener {port} 127.0.0.1\nbind_interface lo\nallow_anonymous true\n"),
        );
        let broker = Running::program(program, &["-c", &conf]);
        wait_until_listening(port);
        drop(broker);
        let conf = write(
            dir.path(),
            "other-address.conf",
            &format!("listener {port} 127.0.0.2\nbind_interface lo\n"),
        );
        let (status, stderr) = refused(program, &conf);
        assert_eq!(status, Some(1), "{program}: {stderr}");
        assert!(
            stderr.contains(
                "Warning: Interface address for lo does not match specified listener address (127.0.0.2)."
            ),
            "{program}: {stderr}"
        );
        // An interface with no address (none by that name): nothing to listen on.
        let conf = write(
            dir.path(),
            "no-interface.conf",
            &format!("listener {port}\nbind_interface rbrokernone0\n"),
        );
        let (status, stderr) = refused(program, &conf);
        assert_eq!(status, Some(1), "{program}: {stderr}");
        assert!(
            stderr.contains("Warning: Interface rbrokernone0 does not support IPv4 configuration."),
            "{program}: {stderr}"
        );
    }
}

/// A retained QoS 1 PUBLISH of `bytes` bytes to `topic`.
fn retained(topic: &str, bytes: usize) -> mqttkit::protocol::Publish {
    mqttkit::protocol::Publish {
        retain: true,
        ..crate::support::raw::publish_v5(topic, &vec![b'm'; bytes], QoS::AtLeastOnce, [])
    }
}

#[test]
fn memory_limit_refuses_messages_instead_of_growing() {
    const MESSAGE: usize = 500_000;
    let dir = shared_dir();
    for program in programs("memory_limit_refuses_messages_instead_of_growing") {
        let (mut broker, port) =
            serving(program, dir.path(), "memory.conf", "memory_limit 3000000\n");
        // MQTT 5: retained messages are kept until one would pass the limit.
        let (mut v5, _) = RawClient::handshake_v5(addr(port), "memory-v5", []);
        let mut kept = 0;
        let refusal = loop {
            assert!(kept < 20, "{program}: 10 MB kept under a 3 MB limit");
            v5.send(&Packet::Publish(retained(
                &format!("memory/{kept}"),
                MESSAGE,
            )));
            match v5.recv_or_closed() {
                Some(Packet::PubAck(ack)) if !ack.reason.is_error() => kept += 1,
                other => break other,
            }
        };
        assert!(kept >= 1, "{program}: nothing kept");
        if program == RBROKER {
            // Refused with 0x97, and the connection stays.
            let Some(Packet::PubAck(ack)) = refusal else {
                panic!("{program}: {refusal:?}")
            };
            assert_eq!(ack.reason, ReasonCode::QuotaExceeded, "{program}");
            v5.send(&Packet::PingReq);
            assert!(matches!(v5.recv(), Packet::PingResp), "{program}");
        } else {
            // mosquitto 2.0.11 disconnects the client (DISCONNECT 0x80).
            let Some(Packet::Disconnect(disconnect)) = refusal else {
                panic!("{program}: {refusal:?}")
            };
            assert_eq!(disconnect.reason, ReasonCode::UnspecifiedError, "{program}");
        }
        // 3.1.1 cannot be told: the publisher is disconnected, as mosquitto does.
        let mut v3 = RawClient::connect(addr(port), "memory-v3");
        v3.send(&Packet::Publish(mqttkit::protocol::Publish {
            retain: false,
            ..retained("memory/v3", MESSAGE)
        }));
        assert!(v3.packets_until_closed().is_empty(), "{program}");
        broker.wait_for("Client memory-v3 disconnected due to out of memory.");
        // Deleting the retained messages gives the memory back.
        let mut cleaner = RawClient::connect(addr(port), "memory-cleaner");
        for n in 0..kept {
            cleaner.publish(&format!("memory/{n}"), b"", QoS::AtLeastOnce, true, 1);
        }
        let (mut again, _) = RawClient::handshake_v5(addr(port), "memory-again", []);
        let ack = again
            .publish_packet(retained("memory/again", MESSAGE))
            .expect("PUBACK");
        // 0x10 (no matching subscribers) is a success.
        assert!(!ack.reason.is_error(), "{program}: {ack:?}");
    }
}

#[test]
fn memory_limit_needs_an_allocator_that_counts() {
    // The test program's allocator does not count: the broker must not start
    // without the protection its config asks for.
    let config = mqttkit::broker::Config {
        memory_limit: Some(1_000_000),
        ..Default::default()
    };
    let log = mqttkit::broker::Logger::new(config.log_types, mqttkit::broker::LogDest::None, false);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let bound = runtime.block_on(mqttkit::broker::Broker::bind_to(config, log, &[addr(0)]));
    let error = bound.err().expect("refused");
    assert!(error.to_string().contains("memory_limit"), "{error}");
}

#[test]
fn sigusr2_prints_the_subscription_tree() {
    let dir = shared_dir();
    for program in programs("sigusr2_prints_the_subscription_tree") {
        let port = free_port();
        let conf = write(
            dir.path(),
            "tree.conf",
            &format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
        );
        let out_path = dir.path().join(format!("tree-{port}.out"));
        let out = std::fs::File::create(&out_path).expect("create");
        // Line-buffered, so mosquitto's printf output reaches the file as printed.
        let child = std::process::Command::new("stdbuf")
            .args(["-oL", program, "-c", &conf])
            .stdout(out)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start stdbuf");
        let broker = Reaped(Some(child));
        wait_until_listening(port);
        let mut subscriber = RawClient::connect(addr(port), "tree-sub");
        // Created in name order, so mosquitto's creation order and rbroker's name
        // order agree.
        subscriber.subscribe(1, &[("x/#", QoS::ExactlyOnce), ("x/y/z", QoS::AtLeastOnce)]);
        let pid = i32::try_from(broker.id()).expect("pid");
        // SAFETY: signalling the broker this test started.
        unsafe { libc::kill(pid, libc::SIGUSR2) };
        let printed = wait_for_file_text(&out_path, "$SYS\n    \n");
        assert_eq!(
            printed,
            concat!(
                "    \n",
                "      \n",
                "        x\n",
                "          # (tree-sub, 2)\n",
                "          y\n",
                "            z (tree-sub, 1)\n",
                "    $SYS\n",
                "    \n",
            ),
            "{program}"
        );
        drop(broker);
    }
}

#[test]
fn log_dest_topic_publishes_log_lines_under_sys_broker_log() {
    let dir = shared_dir();
    for program in programs("log_dest_topic_publishes_log_lines_under_sys_broker_log") {
        let (_broker, port) = serving(
            program,
            dir.path(),
            "log-topic.conf",
            "log_dest topic\nlog_dest stderr\nlog_type all\n",
        );
        let (mut watcher, _) = RawClient::handshake_v5(addr(port), "log-watcher", []);
        // Its own subscribe line may arrive before the SUBACK, on both brokers.
        watcher.send(&Packet::Subscribe(mqttkit::protocol::Subscribe {
            packet_id: crate::support::raw::pid(1),
            properties: Default::default(),
            filters: vec![(
                mqttkit::protocol::TopicFilter::new("$SYS/broker/log/#").expect("filter"),
                mqttkit::protocol::SubscriptionOptions::new(QoS::AtLeastOnce),
            )],
            rejected: Vec::new(),
        }));
        loop {
            match watcher.recv() {
                Packet::SubAck(_) => break,
                Packet::Publish(publish) => watcher.acknowledge(&publish),
                other => panic!("{program}: {other:?}"),
            }
        }
        let mut probe = RawClient::connect(addr(port), "log-probe");
        probe.subscribe(1, &[("probe/topic", QoS::AtMostOnce)]);
        let mut wanted = vec![
            ("$SYS/broker/log/N", "as log-probe (p2, c1, k60)."),
            ("$SYS/broker/log/M/subscribe", ": log-probe 0 probe/topic"),
        ];
        let deadline = Instant::now() + WAIT;
        while !wanted.is_empty() {
            assert!(Instant::now() < deadline, "{program}: never saw {wanted:?}");
            let publish = watcher.recv_publish();
            watcher.acknowledge(&publish);
            // Published above QoS 0 (QoS 2, delivered at the subscription's 1), not
            // retained, expiring after 20 seconds, starting with the line's time.
            assert_eq!(publish.qos, QoS::AtLeastOnce, "{program}");
            assert!(!publish.retain, "{program}");
            assert_eq!(
                publish.properties.message_expiry_interval(),
                Some(20),
                "{program}"
            );
            let line = String::from_utf8_lossy(&publish.payload).into_owned();
            let (time, _) = line.split_once(": ").expect("a timestamp");
            assert!(time.parse::<u64>().is_ok(), "{program}: {line}");
            wanted
                .retain(|(topic, text)| !(publish.topic.as_str() == *topic && line.contains(text)));
        }
    }
}

/// `/dev/log` bound by this test while it runs, removed when it ends.
struct SyslogSocket(std::os::unix::net::UnixDatagram);

impl Drop for SyslogSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file("/dev/log");
    }
}

#[test]
fn log_dest_syslog_sends_lines_to_the_chosen_facility() {
    // The test plays the syslog daemon; a real one keeps /dev/log to itself.
    if Path::new("/dev/log").exists() {
        eprintln!("skipped log_dest_syslog: /dev/log belongs to a running syslog daemon");
        return;
    }
    let socket = match std::os::unix::net::UnixDatagram::bind("/dev/log") {
        Ok(socket) => SyslogSocket(socket),
        Err(error) => {
            eprintln!("skipped log_dest_syslog: cannot bind /dev/log ({error})");
            return;
        }
    };
    open_to_all(Path::new("/dev/log"), 0o666);
    socket.0.set_read_timeout(Some(WAIT)).expect("timeout");
    let dir = shared_dir();
    for program in programs("log_dest_syslog_sends_lines_to_the_chosen_facility") {
        let port = free_port();
        let conf = write(
            dir.path(),
            "syslog.conf",
            &format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\nlog_dest syslog\nlog_facility 5\n"
            ),
        );
        let broker = Reaped(Some(
            std::process::Command::new(program)
                .args(["-c", &conf])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("start"),
        ));
        wait_until_listening(port);
        RawClient::connect(addr(port), "syslog-probe").disconnect();
        // local5 (21) and notice (5): priority 21 * 8 + 5; the line as on stderr.
        let name = Path::new(program)
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name");
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "{program}: no syslog line");
            let mut buffer = [0u8; 2048];
            let length = socket.0.recv(&mut buffer).expect("a syslog datagram");
            let datagram = String::from_utf8_lossy(&buffer[..length]).into_owned();
            if datagram.contains("as syslog-probe (p2, c1, k60).") {
                assert!(datagram.starts_with("<173>"), "{program}: {datagram}");
                assert!(
                    datagram.contains(&format!(" {name}[")),
                    "{program}: {datagram}"
                );
                let line = datagram.split_once("]: ").expect("a tag").1;
                let (time, text) = line.split_once(": ").expect("a time");
                assert!(time.parse::<u64>().is_ok(), "{program}: {datagram}");
                assert!(
                    text.starts_with("New client connected from 127.0.0.1:"),
                    "{program}: {datagram}"
                );
                break;
            }
        }
        // Nothing went to stderr: syslog replaced it.
        let mut child = broker;
        let mut child = child.0.take().expect("child");
        let _ = child.kill();
        let output = child.wait_with_output().expect("output");
        assert!(
            !String::from_utf8_lossy(&output.stderr).contains("syslog-probe"),
            "{program}"
        );
    }
}

#[test]
fn listener_settings_apply_to_the_listener_they_follow() {
    let dir = shared_dir();
    for program in programs("listener_settings_apply_to_the_listener_they_follow") {
        let (plain, named) = (free_port(), free_port());
        let conf = write(
            dir.path(),
            "per-listener.conf",
            &format!(
                "allow_anonymous true\nlistener {plain} 127.0.0.1\nmax_qos 1\nlistener {named} 127.0.0.1\nuse_username_as_clientid true\n"
            ),
        );
        let mut broker = Running::program(program, &["-c", &conf]);
        wait_until_listening(named);
        let maximum_qos = |port: u16| {
            let (_, connack) = RawClient::handshake_v5(addr(port), "", []);
            connack.properties.iter().find_map(|p| match p {
                Property::MaximumQos(qos) => Some(*qos),
                _ => None,
            })
        };
        assert_eq!(maximum_qos(plain), Some(1), "{program}");
        assert_eq!(maximum_qos(named), None, "{program}");
        // The username is the client id on the second listener only.
        let with_user = |port: u16, version: ProtocolVersion, user: Option<&str>| {
            let connect = Connect {
                version,
                username: user.map(str::to_string),
                ..Connect::new("given-id", 60)
            };
            RawClient::handshake(addr(port), connect).1.code
        };
        let v311 = ProtocolVersion::V3_1_1;
        assert_eq!(
            with_user(named, v311, Some("carol")),
            ReasonCode::Success,
            "{program}"
        );
        broker.wait_for("as carol (p2, c1, k60, u'carol').");
        assert_eq!(
            with_user(plain, v311, Some("dave")),
            ReasonCode::Success,
            "{program}"
        );
        broker.wait_for("as given-id (p2, c1, k60, u'dave').");
        // Without a username there is no client id: not authorised.
        assert_eq!(
            with_user(named, v311, None),
            ReasonCode::NotAuthorized,
            "{program}"
        );
        assert_eq!(
            with_user(named, ProtocolVersion::V5, None),
            ReasonCode::NotAuthorized,
            "{program}"
        );
    }
}

#[test]
fn sighup_names_the_options_that_need_a_restart() {
    let dir = shared_dir();
    for program in programs("sighup_names_the_options_that_need_a_restart") {
        let port = free_port();
        let base = format!("listener {port} 127.0.0.1\nallow_anonymous true\n");
        let conf = write(
            dir.path(),
            "reload.conf",
            &format!("{base}max_queued_messages 10\n"),
        );
        let mut broker = Running::program(program, &["-c", &conf]);
        write(
            dir.path(),
            "reload.conf",
            &format!("{base}max_queued_messages 20\n"),
        );
        broker.signal(libc::SIGHUP);
        broker.wait_for("Reloading config.");
        if program == RBROKER {
            broker.wait_for(
                "Warning: max_queued_messages changed in the configuration file; restart rbroker to apply it.",
            );
        }
        // Still serving.
        assert_eq!(
            anonymous(port, ProtocolVersion::V3_1_1, "after-reload"),
            ReasonCode::Success,
            "{program}"
        );
    }
}

#[test]
fn mount_point_puts_a_listeners_clients_below_a_prefix() {
    let dir = shared_dir();
    for program in programs("mount_point_puts_a_listeners_clients_below_a_prefix") {
        let (open, mounted) = (free_port(), free_port());
        let conf = write(
            dir.path(),
            "mount.conf",
            &format!(
                "allow_anonymous true\nlistener {open} 127.0.0.1\nlistener {mounted} 127.0.0.1\nmount_point site1/\n"
            ),
        );
        let _broker = Running::program(program, &["-c", &conf]);
        let (open, mounted) = (open.to_string(), mounted.to_string());
        // What a mounted client publishes lands below the prefix.
        let everything = subscriber(&open, &["-t", "#", "-v", "-C", "1"]);
        publish(&mounted, &["-t", "t", "-m", "up"]);
        let (_, lines) = everything.finish();
        assert_eq!(messages(&lines), ["site1/t up"], "{program}");
        // A mounted client sees only what is below it.
        let inside = subscriber(&mounted, &["-t", "#", "-v", "-C", "1"]);
        publish(&open, &["-t", "elsewhere/t", "-m", "not for it"]);
        publish(&open, &["-t", "site1/u", "-m", "down"]);
        let (_, lines) = inside.finish();
        // mosquitto 2.0.11 delivers the prefix too; 2.0.12 and rbroker take it off.
        let expected = if program == RBROKER {
            "u down"
        } else {
            "site1/u down"
        };
        assert_eq!(messages(&lines), [expected], "{program}");
    }
    // A mount point before any listener, or with a wildcard, stops startup.
    for (name, text) in [
        ("early.conf", "mount_point a/\nlistener 1884\n"),
        ("wild.conf", "listener 1884\nmount_point a/+/\n"),
    ] {
        let conf = write(dir.path(), name, text);
        let (code, stderr) = refused(RBROKER, &conf);
        assert_eq!(code, Some(3), "{stderr}");
        assert!(stderr.contains("mount_point"), "{stderr}");
    }
}
