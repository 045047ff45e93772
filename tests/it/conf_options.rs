//! mosquitto.conf options beyond listeners and auth, run against rbroker's binary
//! and mosquitto from the same file: `port`/`bind_address` (the default listener of
//! every tutorial), `include_dir`, `allow_zero_length_clientid`, `auto_id_prefix`,
//! `pid_file`, `log_timestamp` and `log_timestamp_format`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use mqttkit::protocol::{Connect, Property, ProtocolVersion, ReasonCode};

use crate::support::credentials::{open_to_all, shared_dir};
use crate::support::logged::Running;
use crate::support::mosquitto::{available, free_port, wait_until_listening};
use crate::support::{RawClient, WAIT};

const RBROKER: &str = env!("CARGO_BIN_EXE_rbroker");

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Writes `text` as `name` in `dir`, readable by mosquitto's own user.
fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    open_to_all(&path, 0o644);
    path.to_str().expect("utf-8").to_string()
}

/// The programs to compare: rbroker, and mosquitto when installed.
fn programs(test: &str) -> Vec<&'static str> {
    if available(test) {
        vec![RBROKER, "mosquitto"]
    } else {
        vec![RBROKER]
    }
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
    let mut child = std::process::Command::new(program)
        .args(["-c", conf])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start");
    let deadline = Instant::now() + WAIT;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{program} started with {conf}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let output = child.wait_with_output().expect("output");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
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
        ("a directory", "sub.conf", true),
        ("a symbolic link loop", "loop.conf", false),
    ];
    for (what, name, directory) in broken {
        let path = included.join(name);
        if directory {
            std::fs::create_dir(&path).expect("mkdir");
        } else {
            std::os::unix::fs::symlink(&path, &path).expect("symlink");
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
        let port = free_port();
        let conf = write(
            dir.path(),
            "ids.conf",
            &format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\nallow_zero_length_clientid false\n"
            ),
        );
        let broker = Running::program(program, &["-c", &conf]);
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
    let pid_path = dir.path().join("broker.pid");
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
