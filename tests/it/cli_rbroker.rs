//! The `rbroker` binary: mosquitto's command line, startup lines, `-v` log, config
//! errors and graceful shutdown on SIGINT/SIGTERM.

use std::io::Write;
use std::process::Command;

use mqttkit::protocol::{Connect, QoS, ReasonCode};

use crate::support::RawClient;
use crate::support::logged::Running;
use crate::support::mosquitto::free_port;

fn rbroker() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rbroker"))
}

#[test]
fn help_and_bad_options_exit_3_like_mosquitto() {
    let help = rbroker().arg("-h").output().expect("run");
    assert_eq!(help.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&help.stdout)
            .contains("Usage: rbroker [-c config_file] [-d] [-h] [-p port] [-v]")
    );
    let unknown = rbroker().arg("-x").output().expect("run");
    assert_eq!(unknown.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&unknown.stderr).starts_with("Error: Unknown option '-x'."));
    let no_port = rbroker().arg("-p").output().expect("run");
    assert_eq!(no_port.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&no_port.stderr)
            .starts_with("Error: -p argument given, but no port specified.")
    );
}

#[test]
fn config_errors_name_the_file_and_line() {
    let mut file = tempfile::NamedTempFile::new().expect("temp");
    writeln!(file, "listener 1884\nmax_queued_messages lots").expect("write");
    let output = rbroker().arg("-c").arg(file.path()).output().expect("run");
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Error: Invalid max_queued_messages value (lots)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "Error: Error found at {}:2.",
            file.path().display()
        )),
        "{stderr}"
    );
    let missing = rbroker()
        .args(["-c", "/nonexistent/rbroker.conf"])
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("Error: Unable to open config file /nonexistent/rbroker.conf.")
    );
}

#[test]
fn verbose_mode_writes_mosquittos_lines_and_sigint_exits_0() {
    let port = free_port();
    let mut broker = Running::start(&["-v", "-p", &port.to_string()]);
    let addr = format!("127.0.0.1:{port}").parse().expect("address");
    let mut client = RawClient::connect_with(addr, Connect::new("cli-test", 30));
    client.subscribe(1, &[("a/#", QoS::AtLeastOnce)]);
    client.publish("a/b", b"hello", QoS::AtLeastOnce, false, 7);
    let delivered = client.recv_publish();
    client.acknowledge(&delivered);
    client.disconnect();
    let connected = broker.wait_for("New client connected");
    assert!(
        connected.starts_with("New client connected from 127.0.0.1:"),
        "{connected}"
    );
    assert!(
        connected.ends_with(" as cli-test (p2, c1, k30)."),
        "{connected}"
    );
    for line in [
        "No will message specified.",
        "Sending CONNACK to cli-test (0, 0)",
        "Received SUBSCRIBE from cli-test",
        "\ta/# (QoS 1)",
        "cli-test 1 a/#",
        "Sending SUBACK to cli-test",
        "Received PUBLISH from cli-test (d0, q1, r0, m7, 'a/b', ... (5 bytes))",
        "Sending PUBACK to cli-test (m7, rc0)",
        "Sending PUBLISH to cli-test (d0, q1, r0, m1, 'a/b', ... (5 bytes))",
        "Received PUBACK from cli-test (Mid: 1, RC:0)",
        "Received DISCONNECT from cli-test",
        "Client cli-test disconnected.",
    ] {
        broker.wait_for(line);
    }
    broker.signal(libc::SIGINT);
    let code = broker.wait();
    assert_eq!(code, 0);
}

#[test]
fn startup_lines_match_mosquittos_local_only_mode_and_sigterm_exits_0() {
    let port = free_port();
    let mut broker = Running::start(&["-p", &port.to_string()]);
    let seen = broker.seen.clone();
    let expected_start = [
        format!("rbroker version {} starting", env!("CARGO_PKG_VERSION")),
        "Using default config.".to_string(),
        "Starting in local only mode. Connections will only be possible from clients running on this machine.".to_string(),
        "Create a configuration file which defines a listener to allow remote access.".to_string(),
        "For more details see https://mosquitto.org/documentation/authentication-methods/".to_string(),
        format!("Opening ipv4 listen socket on port {port}."),
    ];
    assert_eq!(
        &seen[..expected_start.len()],
        &expected_start[..],
        "{seen:#?}"
    );
    // Default logging does not include debug lines.
    let addr = format!("127.0.0.1:{port}").parse().expect("address");
    RawClient::connect(addr, "quiet").disconnect();
    broker.wait_for("Client quiet disconnected.");
    assert!(!broker.seen.iter().any(|l| l.starts_with("Sending CONNACK")));
    broker.signal(libc::SIGTERM);
    assert_eq!(broker.wait(), 0);
}

#[test]
fn a_configured_listener_refuses_anonymous_clients() {
    let port = free_port();
    let mut file = tempfile::NamedTempFile::new().expect("temp");
    writeln!(file, "# test\nlistener {port} 127.0.0.1\nlog_dest stderr\n").expect("write");
    let path = file.path().display().to_string();
    let broker = Running::start(&["-c", &path]);
    assert!(
        broker.seen.contains(&format!("Config loaded from {path}.")),
        "{:#?}",
        broker.seen
    );
    assert!(
        broker
            .seen
            .contains(&format!("Opening ipv4 listen socket on port {port}."))
    );
    assert!(!broker.seen.iter().any(|l| l.contains("local only mode")));
    let addr = format!("127.0.0.1:{port}").parse().expect("address");
    let (_, connack) = RawClient::handshake(addr, Connect::new("anon", 60));
    assert_eq!(connack.code, ReasonCode::NotAuthorized);
    broker.signal(libc::SIGINT);
    assert_eq!(broker.wait(), 0);
}

#[test]
fn listen_socket_lines_match_mosquittos_for_mqtt_and_websockets_listeners() {
    let test = "listen_socket_lines_match_mosquittos_for_mqtt_and_websockets_listeners";
    if !crate::support::mosquitto::available(test) {
        return;
    }
    let dir = tempfile::tempdir().expect("dir");
    let opening = |program: &str| {
        let (plain, ws, ws_any) = (free_port(), free_port(), free_port());
        let conf = dir.path().join(format!("{}.conf", plain));
        std::fs::write(
            &conf,
            format!(
                "allow_anonymous true\nlistener {plain} 127.0.0.1\n\
                 listener {ws} 127.0.0.1\nprotocol websockets\n\
                 listener {ws_any}\nprotocol websockets\n"
            ),
        )
        .expect("write conf");
        let broker = Running::program(program, &["-c", conf.to_str().expect("utf-8")]);
        let lines: Vec<String> = broker
            .seen
            .iter()
            .filter(|line| line.starts_with("Opening "))
            .map(|line| {
                line.replace(&plain.to_string(), "PLAIN")
                    .replace(&ws_any.to_string(), "WS_ANY")
                    .replace(&ws.to_string(), "WS")
            })
            .collect();
        // Dropped, so killed: mosquitto with a WebSocket listener may take
        // longer than the harness waits to end on SIGTERM.
        drop(broker);
        lines
    };
    let ours = opening(env!("CARGO_BIN_EXE_rbroker"));
    assert_eq!(
        ours,
        [
            "Opening ipv4 listen socket on port PLAIN.",
            "Opening websockets listen socket on port WS.",
            "Opening websockets listen socket on port WS_ANY.",
        ]
    );
    assert_eq!(ours, opening("mosquitto"));
}
