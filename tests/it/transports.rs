//! TLS and unix-socket listeners, and every client over every transport: the
//! mosquitto clients against rbroker's TLS listeners (with a CA, with client
//! certificates, refused with a wrong CA), side by side with mosquitto from the same
//! file; plain MQTT on a TLS port and TLS on a plain port; a handshake flood that
//! never finishes; the unix listener; rsub, rpub and rbench over TCP, TLS, unix
//! sockets, ws and wss; and the startup errors of bad TLS options.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use mqttkit::protocol::{Connect, Packet, ProtocolVersion};

use crate::support::certs::{CLIENT_SUBJECT, Certs};
use crate::support::credentials::{shared_dir, writable_dir};
use crate::support::files::{RBROKER, addr, programs, write};
use crate::support::logged::{Running, refused_start};
use crate::support::mosquitto::{Tool, available, free_port, run};
use crate::support::{RawClient, WAIT};

const RSUB: &str = env!("CARGO_BIN_EXE_rsub");
const RPUB: &str = env!("CARGO_BIN_EXE_rpub");

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// The lines that make a listener serve TLS with the test server certificate.
fn tls_lines(certs: &Certs) -> String {
    format!(
        "certfile {}\nkeyfile {}\n",
        path(&certs.server_cert),
        path(&certs.server_key)
    )
}

/// `program` (a subscriber tool with `-d`) once its SUBACK arrived.
fn subscribed(program: &str, args: &[&str]) -> Tool {
    let mut all = vec!["-d", "-C", "1"];
    all.extend_from_slice(args);
    let mut tool = Tool::spawn(program, &all);
    tool.wait_for("received SUBACK");
    tool
}

/// Publishes `message` with `program` and `args`; whether it succeeded.
fn published(program: &str, args: &[&str], message: &str) -> bool {
    let mut all = args.to_vec();
    all.extend_from_slice(&["-m", message, "-q", "1"]);
    run(program, &all).0.success()
}

/// The message lines a finished subscriber printed.
fn received(tool: Tool) -> Vec<String> {
    let (_, lines) = tool.finish();
    lines
        .into_iter()
        .filter(|l| !l.starts_with("Client ") && !l.starts_with("Subscribed"))
        .collect()
}

#[test]
fn tls_listeners_serve_the_mosquitto_clients_as_mosquitto_does() {
    let certs = Certs::generate();
    let other = Certs::generate();
    let dir = shared_dir();
    for program in programs("tls_listeners_serve_the_mosquitto_clients_as_mosquitto_does") {
        let (open, by_subject, by_name) = (free_port(), free_port(), free_port());
        let tls = format!(
            "certfile {}\nkeyfile {}\n",
            path(&certs.server_cert),
            path(&certs.server_key)
        );
        let client_certs = format!("cafile {}\nrequire_certificate true\n", path(&certs.ca));
        let conf = write(
            dir.path(),
            "tls.conf",
            &format!(
                "allow_anonymous true\nlistener {open} 127.0.0.1\n{tls}\
                 listener {by_subject} 127.0.0.1\n{tls}{client_certs}use_subject_as_username true\n\
                 listener {by_name} 127.0.0.1\n{tls}{client_certs}use_identity_as_username true\n"
            ),
        );
        let mut broker = Running::program(program, &["-c", &conf, "-v"]);
        let ca = path(&certs.ca);
        let (cert, key) = (path(&certs.client_cert), path(&certs.client_key));
        let port = open.to_string();
        let server = ["-h", "localhost", "--cafile", &ca];
        // With the CA: a message goes through.
        let sub = subscribed(
            "mosquitto_sub",
            &[&server[..], &["-p", &port, "-t", "tls/t"]].concat(),
        );
        assert!(published(
            "mosquitto_pub",
            &[&server[..], &["-p", &port, "-t", "tls/t"]].concat(),
            "over tls"
        ));
        assert_eq!(received(sub), ["over tls"], "{program}");
        // A CA that did not sign the server's certificate: refused by the client.
        let wrong = path(&other.ca);
        assert!(
            !published(
                "mosquitto_pub",
                &[
                    "-h",
                    "localhost",
                    "--cafile",
                    &wrong,
                    "-p",
                    &port,
                    "-t",
                    "x"
                ],
                "never"
            ),
            "{program}: a wrong CA was accepted"
        );
        // Client certificates: the subject, then the common name, is the username.
        for (port, username) in [(by_subject, CLIENT_SUBJECT), (by_name, "test client")] {
            let port = port.to_string();
            let with_cert = [&server[..], &["-p", &port, "--cert", &cert, "--key", &key]].concat();
            assert!(
                published(
                    "mosquitto_pub",
                    &[&with_cert[..], &["-t", "c", "-i", "certified"]].concat(),
                    "m"
                ),
                "{program}: a client certificate was refused on {port}"
            );
            let line = broker.wait_for("as certified");
            assert!(
                line.ends_with(&format!("(p2, c1, k60, u'{username}').")),
                "{program}: {line}"
            );
            // Without a client certificate the handshake fails.
            assert!(
                !published(
                    "mosquitto_pub",
                    &[&server[..], &["-p", &port, "-t", "c"]].concat(),
                    "m"
                ),
                "{program}: no client certificate was accepted on {port}"
            );
        }
    }
}

#[test]
fn plain_mqtt_on_a_tls_port_and_tls_on_a_plain_port_close_only_that_connection() {
    let certs = Certs::generate();
    let dir = shared_dir();
    let test = "plain_mqtt_on_a_tls_port_and_tls_on_a_plain_port_close_only_that_connection";
    for program in programs(test) {
        let (tls_port, plain_port) = (free_port(), free_port());
        let conf = write(
            dir.path(),
            "mixed.conf",
            &format!(
                "allow_anonymous true\nlistener {plain_port} 127.0.0.1\nlistener {tls_port} 127.0.0.1\ncertfile {}\nkeyfile {}\n",
                path(&certs.server_cert),
                path(&certs.server_key)
            ),
        );
        let mut broker = Running::program(program, &["-c", &conf, "-v"]);
        // A CONNECT in plaintext: no CONNACK (at most a TLS alert), then the end.
        let mut plaintext = TcpStream::connect(addr(tls_port)).expect("connect");
        let connect = Packet::Connect(Box::new(Connect::new("p", 60)));
        plaintext
            .write_all(&connect.to_bytes(ProtocolVersion::V3_1_1).expect("encodes"))
            .expect("write");
        plaintext.set_read_timeout(Some(WAIT)).expect("timeout");
        let mut answer = Vec::new();
        let _ = plaintext.read_to_end(&mut answer);
        assert_ne!(
            answer.first(),
            Some(&0x20),
            "{program}: a CONNACK in plaintext"
        );
        // Closed from this side too, so a broker still waiting for the rest of a
        // handshake sees the end now rather than at its own timeout.
        drop(plaintext);
        // mosquitto fails the handshake in its accept when the bytes are
        // already there, and later in its loop ("Client <unknown>
        // disconnected: Protocol error.") when they arrive after it; rbroker
        // always gives the first line, with the reason.
        let failed = "Client connection from 127.0.0.1 failed: ";
        if program == "mosquitto" {
            broker.wait_for_any(&[failed, "Client <unknown> disconnected: Protocol error."]);
        } else {
            broker.wait_for(failed);
        }
        // A TLS client on the plain port: refused.
        let ca = path(&certs.ca);
        let plain = plain_port.to_string();
        assert!(
            !published(
                "mosquitto_pub",
                &["-h", "localhost", "--cafile", &ca, "-p", &plain, "-t", "x"],
                "never"
            ),
            "{program}"
        );
        // Both listeners still serve.
        let tls = tls_port.to_string();
        assert!(published(
            "mosquitto_pub",
            &["-h", "localhost", "--cafile", &ca, "-p", &tls, "-t", "x"],
            "fine"
        ));
        RawClient::connect(addr(plain_port), "canary");
    }
}

/// Opens `count` connections to `port` that each send `opening` and then
/// nothing more.
fn stalled_handshakes(port: u16, count: usize, opening: &[u8]) -> Vec<TcpStream> {
    (0..count)
        .map(|_| {
            let mut stream = TcpStream::connect(addr(port)).expect("connect");
            stream.write_all(opening).expect("write");
            stream
        })
        .collect()
}

#[test]
fn a_flood_of_handshakes_that_never_finish_is_closed_by_connect_timeout() {
    let certs = Certs::generate();
    let dir = shared_dir();
    let (tls_port, ws_port, plain_port) = (free_port(), free_port(), free_port());
    let conf = write(
        dir.path(),
        "flood.conf",
        &format!(
            "allow_anonymous true\nconnect_timeout 2\nlistener {plain_port} 127.0.0.1\n\
             listener {tls_port} 127.0.0.1\ncertfile {}\nkeyfile {}\n\
             listener {ws_port} 127.0.0.1\nprotocol websockets\n",
            path(&certs.server_cert),
            path(&certs.server_key)
        ),
    );
    let _broker = Running::start(&["-c", &conf]);
    // Half a ClientHello record header, and half an HTTP request.
    let mut flood = stalled_handshakes(tls_port, 5_000, &[0x16, 0x03, 0x01]);
    flood.extend(stalled_handshakes(
        ws_port,
        5_000,
        b"GET / HTTP/1.1\r\nHost: x\r\n",
    ));
    // While 10,000 handshakes hang, clients are served on every listener.
    let ca = path(&certs.ca);
    let tls = tls_port.to_string();
    let ws = format!("ws://127.0.0.1:{ws_port}/mqtt");
    let sub = subscribed(RSUB, &["-L", &ws, "-t", "flood/t"]);
    assert!(published(
        RPUB,
        &[
            "-h",
            "localhost",
            "--cafile",
            &ca,
            "-p",
            &tls,
            "-t",
            "flood/t"
        ],
        "served"
    ));
    assert_eq!(received(sub), ["served"]);
    RawClient::connect(addr(plain_port), "canary");
    // Then every stalled connection is closed by the broker.
    for stream in &mut flood {
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        let mut byte = [0u8; 512];
        loop {
            match stream.read(&mut byte) {
                Ok(0) => break,
                // An HTTP or TLS refusal may come first.
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("a stalled handshake was left open: {e}"),
            }
        }
    }
}

#[test]
fn the_unix_socket_listener_serves_the_mosquitto_clients() {
    let dir = shared_dir();
    for program in programs("the_unix_socket_listener_serves_the_mosquitto_clients") {
        // mosquitto creates the socket after dropping root privileges.
        let sockets = writable_dir(dir.path(), &format!("sockets-{}", free_port()));
        let socket = sockets.join("mqtt.sock");
        let conf = write(
            dir.path(),
            "unix.conf",
            &format!("allow_anonymous true\nlistener 0 {}\n", socket.display()),
        );
        let mut broker = Running::program(program, &["-c", &conf, "-v"]);
        let socket_path = path(&socket);
        for (sub, publisher) in [("mosquitto_sub", "mosquitto_pub"), (RSUB, RPUB)] {
            let tool = subscribed(sub, &["--unix", &socket_path, "-t", "u/t"]);
            broker.wait_for(&format!("New connection from {socket_path}:0 on port 0."));
            assert!(published(
                publisher,
                &["--unix", &socket_path, "-t", "u/t"],
                "local"
            ));
            assert_eq!(received(tool), ["local"], "{program} with {sub}");
        }
        // Only the broker's user and group may connect, as mosquitto leaves it.
        use std::os::unix::fs::{FileTypeExt, PermissionsExt};
        let metadata = std::fs::metadata(&socket).expect("socket file");
        assert!(metadata.file_type().is_socket());
        assert_eq!(metadata.permissions().mode() & 0o777, 0o770, "{program}");
    }
}

#[test]
fn rsub_and_rpub_reach_brokers_over_every_transport() {
    let certs = Certs::generate();
    let dir = shared_dir();
    let (tcp, tls, ws, wss) = (free_port(), free_port(), free_port(), free_port());
    let socket = dir.path().join("every.sock");
    let tls_lines = tls_lines(&certs);
    let conf = write(
        dir.path(),
        "every.conf",
        &format!(
            "allow_anonymous true\nlistener {tcp} 127.0.0.1\nlistener {tls} 127.0.0.1\n{tls_lines}\
             listener {ws} 127.0.0.1\nprotocol websockets\n\
             listener {wss} 127.0.0.1\nprotocol websockets\n{tls_lines}\
             listener 0 {}\n",
            socket.display()
        ),
    );
    let _broker = Running::start(&["-c", &conf]);
    let ca = path(&certs.ca);
    let (tcp, tls, ws, wss, unix) = (
        tcp.to_string(),
        tls.to_string(),
        format!("ws://127.0.0.1:{ws}"),
        format!("wss://localhost:{wss}/mqtt"),
        path(&socket),
    );
    let transports: [(&str, Vec<&str>); 5] = [
        ("tcp", vec!["-p", &tcp]),
        ("tls", vec!["-h", "localhost", "-p", &tls, "--cafile", &ca]),
        ("ws", vec!["-L", &ws]),
        ("wss", vec!["-L", &wss, "--cafile", &ca]),
        ("unix", vec!["--unix", &unix]),
    ];
    // Every pair: the subscriber on one transport, the publisher on another.
    for (sub_name, sub_args) in &transports {
        let topic = format!("every/{sub_name}");
        let sub = subscribed(RSUB, &[&sub_args[..], &["-t", &topic]].concat());
        for (pub_name, pub_args) in &transports {
            let message = format!("{pub_name} to {sub_name}");
            assert!(
                published(RPUB, &[&pub_args[..], &["-t", &topic]].concat(), &message),
                "rpub over {pub_name}"
            );
        }
        let (_, lines) = sub.finish();
        assert!(
            lines.iter().any(|l| l == &format!("tcp to {sub_name}")),
            "rsub over {sub_name}: {lines:?}"
        );
    }
    // Each publisher's message reaches a subscriber on each transport.
    for (sub_name, sub_args) in &transports {
        let mut all = vec!["-d", "-C", "5"];
        all.extend_from_slice(sub_args);
        all.extend_from_slice(&["-t", "all"]);
        let mut sub = Tool::spawn(RSUB, &all);
        sub.wait_for("received SUBACK");
        for (pub_name, pub_args) in &transports {
            assert!(published(
                RPUB,
                &[&pub_args[..], &["-t", "all"]].concat(),
                pub_name
            ));
        }
        let mut got = received(sub);
        got.sort();
        assert_eq!(
            got,
            ["tcp", "tls", "unix", "ws", "wss"],
            "rsub over {sub_name}"
        );
    }
}

#[test]
fn rsub_and_rpub_reach_mosquitto_over_tcp_and_tls() {
    if !available("rsub_and_rpub_reach_mosquitto_over_tcp_and_tls") {
        return;
    }
    let certs = Certs::generate();
    let tls_port = free_port();
    let mosquitto = crate::support::mosquitto::Mosquitto::start(&format!(
        "listener {tls_port} 127.0.0.1\ncertfile {}\nkeyfile {}\n",
        path(&certs.server_cert),
        path(&certs.server_key)
    ));
    crate::support::mosquitto::wait_until_listening(tls_port);
    let ca = path(&certs.ca);
    let (plain, tls) = (mosquitto.port.to_string(), tls_port.to_string());
    let tls_args = ["-h", "localhost", "-p", &tls, "--cafile", &ca];
    let sub = subscribed(RSUB, &[&tls_args[..], &["-t", "m/t"]].concat());
    assert!(published(RPUB, &["-p", &plain, "-t", "m/t"], "tcp to tls"));
    assert_eq!(received(sub), ["tcp to tls"]);
    let sub = subscribed(RSUB, &["-p", &plain, "-t", "m/t"]);
    assert!(published(
        RPUB,
        &[&tls_args[..], &["-t", "m/t"]].concat(),
        "tls to tcp"
    ));
    assert_eq!(received(sub), ["tls to tcp"]);
}

#[test]
fn rbench_measures_over_tls_and_websockets() {
    let certs = Certs::generate();
    let dir = shared_dir();
    let (tls, ws, wss) = (free_port(), free_port(), free_port());
    let tls_lines = tls_lines(&certs);
    let conf = write(
        dir.path(),
        "bench.conf",
        &format!(
            "allow_anonymous true\nlistener {tls} 127.0.0.1\n{tls_lines}\
             listener {ws} 127.0.0.1\nprotocol websockets\n\
             listener {wss} 127.0.0.1\nprotocol websockets\n{tls_lines}"
        ),
    );
    let _broker = Running::start(&["-c", &conf]);
    let ca = path(&certs.ca);
    let tls_host = format!("localhost:{tls}");
    let ws_host = format!("ws://127.0.0.1:{ws}/mqtt");
    let wss_host = format!("wss://localhost:{wss}");
    for host in [
        vec!["-h", &tls_host, "--cafile", &ca],
        vec!["-h", &ws_host],
        vec!["-h", &wss_host, "--cafile", &ca],
    ] {
        let mut args = vec!["pubsub", "-q", "1", "-c", "2", "-n", "300", "--json"];
        args.extend_from_slice(&host);
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_rbench"))
            .args(&args)
            .output()
            .expect("run rbench");
        assert!(
            output.status.success(),
            "{host:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
        assert_eq!(report["delivered"], 600, "{host:?}: {report}");
        assert_eq!(report["lost"], 0, "{host:?}: {report}");
    }
}

#[test]
fn bad_tls_options_stop_startup_naming_the_line() {
    let certs = Certs::generate();
    let dir = shared_dir();
    let port = free_port();
    let (cert, key, ca) = (
        path(&certs.server_cert),
        path(&certs.server_key),
        path(&certs.ca),
    );
    let client_key = path(&certs.client_key);
    let missing = path(&dir.path().join("missing.pem"));
    // (config after the listener line, exit status, text of the error)
    let cases: [(String, i32, &str); 8] = [
        (
            format!("certfile {cert}\n"),
            3,
            "certfile is set but keyfile is not",
        ),
        (
            format!("cafile {ca}\n"),
            3,
            "TLS options are set but certfile and keyfile are not",
        ),
        (
            format!("certfile {cert}\nkeyfile {key}\nrequire_certificate true\n"),
            3,
            "needs cafile or capath",
        ),
        (
            format!("certfile {cert}\nkeyfile {key}\ntls_version tlsv1.1\n"),
            3,
            "tlsv1.1 is not supported",
        ),
        (
            format!("certfile {missing}\nkeyfile {key}\n"),
            1,
            "Unable to load server certificate",
        ),
        (
            format!("certfile {cert}\nkeyfile {client_key}\n"),
            1,
            "key values mismatch",
        ),
        (
            format!("certfile {cert}\nkeyfile {key}\nciphers HIGH\n"),
            1,
            "Unsupported cipher \"HIGH\"",
        ),
        (
            "listener 0\n".to_string(),
            3,
            "must provide a Unix socket path",
        ),
    ];
    for (index, (lines, status, text)) in cases.iter().enumerate() {
        let conf = write(
            dir.path(),
            &format!("bad{index}.conf"),
            &format!("listener {port} 127.0.0.1\n{lines}"),
        );
        let (code, stderr) = refused_start(RBROKER, Path::new(&conf));
        assert_eq!(code, Some(*status), "{lines}: {stderr}");
        assert!(stderr.contains(text), "{lines}: {stderr}");
        assert!(
            stderr.contains(&format!("{conf}:")),
            "{lines}: no file:line in {stderr}"
        );
    }
}

#[test]
fn a_tls_client_gets_its_messages_split_across_records() {
    // A payload larger than a TLS record (16 KiB) and the write buffer goes
    // through whole, both ways.
    let certs = Certs::generate();
    let dir = shared_dir();
    let tls = free_port();
    let conf = write(
        dir.path(),
        "big.conf",
        &format!(
            "allow_anonymous true\nlistener {tls} 127.0.0.1\ncertfile {}\nkeyfile {}\n",
            path(&certs.server_cert),
            path(&certs.server_key)
        ),
    );
    let _broker = Running::start(&["-c", &conf]);
    let ca = path(&certs.ca);
    let port = tls.to_string();
    let file = dir.path().join("payload.bin");
    let payload: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(&file, &payload).expect("write payload");
    let server = ["-h", "localhost", "-p", &port, "--cafile", &ca];
    let sub = subscribed(RSUB, &[&server[..], &["-t", "big"]].concat());
    let file = path(&file);
    let (status, _) = run(
        RPUB,
        &[&server[..], &["-t", "big", "-f", &file, "-q", "1"]].concat(),
    );
    assert!(status.success());
    let (_, lines) = sub.finish();
    let text = lines
        .iter()
        .filter(|l| !l.starts_with("Client ") && !l.starts_with("Subscribed"))
        .cloned()
        .collect::<String>();
    assert_eq!(text.len(), payload.len());
    assert_eq!(text.as_bytes(), &payload[..]);
}

/// The shell block that follows `marker` in the README.
fn readme_block(marker: &str) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let after = &readme[readme.find(marker).expect("marker in README")..];
    let start = after.find("```sh\n").expect("block") + "```sh\n".len();
    let end = start + after[start..].find("\n```").expect("end of block");
    after[start..end].to_string()
}

#[test]
fn the_readme_transport_layout_works_as_written() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        if std::env::var("CI").is_ok() {
            panic!("openssl is required in CI");
        }
        eprintln!("skipped the_readme_transport_layout_works_as_written: no openssl");
        return;
    }
    let dir = shared_dir();
    let shell = |script: &str| {
        let output = std::process::Command::new("bash")
            .args(["-euc", script])
            .current_dir(dir.path())
            .output()
            .expect("bash");
        assert!(
            output.status.success(),
            "{script}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    // The README's certificates, then its config file without starting the broker.
    shell(&readme_block("<!-- openssl-commands -->"));
    let conf_block = readme_block("<!-- transports-conf -->");
    let (write_conf, _start) = conf_block.split_once("\nEOF\n").expect("a here-document");
    shell(&format!("{write_conf}\nEOF\n"));
    // Its ports, moved to free ones.
    let ports: Vec<(u16, u16)> = [1883, 8883, 8884, 8080, 8081]
        .into_iter()
        .map(|port| (port, free_port()))
        .collect();
    let conf_path = dir.path().join("transports.conf");
    let mut conf = std::fs::read_to_string(&conf_path).expect("conf written");
    for (from, to) in &ports {
        conf = conf.replace(
            &format!("listener {from}\n"),
            &format!("listener {to} 127.0.0.1\n"),
        );
    }
    std::fs::write(&conf_path, conf).expect("rewrite conf");
    let _broker = Running::start(&["-c", &path(&conf_path)]);
    let moved = |text: &str| {
        ports.iter().fold(text.to_string(), |text, (from, to)| {
            text.replace(&format!("-p {from}"), &format!("-p {to}"))
                .replace(&format!(":{from}/"), &format!(":{to}/"))
        })
    };
    // The table's commands: each rpub reaches an rsub on the plain port.
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let commands: Vec<String> = readme
        .lines()
        .filter(|line| line.starts_with("| ") && line.contains("`rpub "))
        .map(|line| {
            let command = line.rsplit('`').nth(1).expect("a command in backticks");
            moved(command)
        })
        .collect();
    assert_eq!(commands.len(), 5, "{commands:?}");
    let plain = ports[0].1.to_string();
    let mut sub = Tool::spawn(RSUB, &["-d", "-C", "5", "-p", &plain, "-t", "demo/#", "-v"]);
    sub.wait_for("received SUBACK");
    let binaries = std::path::Path::new(RPUB).parent().expect("target dir");
    for command in &commands {
        let output = std::process::Command::new("bash")
            .args(["-euc", command])
            .current_dir(dir.path())
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    binaries.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .output()
            .expect("bash");
        assert!(
            output.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut got = received(sub);
    got.sort();
    assert_eq!(
        got,
        [
            "demo/cert hi",
            "demo/local hi",
            "demo/tls hi",
            "demo/ws hi",
            "demo/wss hi"
        ]
    );
}

#[test]
fn rpub_streams_many_qos_1_and_2_lines_over_tls_and_websockets() {
    // A window of in-flight messages kept full: a frame or TLS record left in a
    // layer's buffer would stall the stream until the keep-alive. The queue is
    // large enough that a slow subscriber drops nothing.
    let certs = Certs::generate();
    let dir = shared_dir();
    let (plain, tls, wss) = (free_port(), free_port(), free_port());
    let tls_lines = tls_lines(&certs);
    let conf = write(
        dir.path(),
        "lines.conf",
        &format!(
            "allow_anonymous true\nmax_queued_messages 10000\nlistener {plain} 127.0.0.1\n\
             listener {tls} 127.0.0.1\n{tls_lines}listener {wss} 127.0.0.1\nprotocol websockets\n{tls_lines}"
        ),
    );
    let _broker = Running::start(&["-c", &conf]);
    let ca = path(&certs.ca);
    let lines: String = (1..=2000).map(|i| format!("line {i}\n")).collect();
    let input = dir.path().join("lines.txt");
    std::fs::write(&input, &lines).expect("write lines");
    let input = path(&input);
    let plain = plain.to_string();
    let tls = tls.to_string();
    let wss = format!("wss://localhost:{wss}");
    for (name, args) in [
        ("tls", vec!["-h", "localhost", "-p", &tls, "--cafile", &ca]),
        ("wss", vec!["-L", &wss, "--cafile", &ca]),
    ] {
        for qos in ["1", "2"] {
            let topic = format!("lines/{name}/{qos}");
            let mut sub = Tool::spawn(
                RSUB,
                &["-d", "-C", "2000", "-p", &plain, "-t", &topic, "-q", "1"],
            );
            sub.wait_for("received SUBACK");
            let mut all = args.clone();
            all.extend_from_slice(&["-t", &topic, "-q", qos, "-l"]);
            let status = std::process::Command::new(RPUB)
                .args(&all)
                .stdin(std::fs::File::open(&input).expect("lines"))
                .status()
                .expect("rpub");
            assert!(status.success(), "rpub over {name} at QoS {qos}");
            let got = received(sub);
            assert_eq!(got.len(), 2000, "over {name} at QoS {qos}");
            assert_eq!(got[1999], "line 2000");
        }
    }
}

#[test]
fn a_certificate_login_survives_a_reload_of_the_password_file() {
    let certs = Certs::generate();
    let dir = shared_dir();
    let passwords = crate::support::credentials::password_file(
        dir.path(),
        crate::support::credentials::Maker::Rbroker,
        &[("someone", "else")],
    );
    let port = free_port();
    let conf = write(
        dir.path(),
        "reload.conf",
        &format!(
            "listener {port} 127.0.0.1\npassword_file {}\ncertfile {}\nkeyfile {}\ncafile {}\nrequire_certificate true\nuse_identity_as_username true\n",
            path(&passwords),
            path(&certs.server_cert),
            path(&certs.server_key),
            path(&certs.ca)
        ),
    );
    let mut broker = Running::start(&["-c", &conf, "-v"]);
    let (ca, cert, key) = (
        path(&certs.ca),
        path(&certs.client_cert),
        path(&certs.client_key),
    );
    let port = port.to_string();
    let args = [
        "-h",
        "localhost",
        "-p",
        &port,
        "--cafile",
        &ca,
        "--cert",
        &cert,
        "--key",
        &key,
    ];
    let sub = subscribed(RSUB, &[&args[..], &["-t", "after/reload"]].concat());
    broker.signal(libc::SIGHUP);
    broker.wait_for("Reloading config.");
    // The subscriber, not in the password file, is still connected and served.
    assert!(published(
        RPUB,
        &[&args[..], &["-t", "after/reload"]].concat(),
        "still here"
    ));
    assert_eq!(received(sub), ["still here"]);
}

#[test]
fn client_certificates_are_checked_against_capath_and_crlfile() {
    let certs = Certs::generate();
    // mosquitto (OpenSSL) finds CA files in a capath by their hash names.
    let rehashed = std::process::Command::new("openssl")
        .arg("rehash")
        .arg(&certs.capath)
        .status()
        .is_ok_and(|status| status.success());
    let dir = shared_dir();
    let test = "client_certificates_are_checked_against_capath_and_crlfile";
    let programs = if rehashed {
        programs(test)
    } else {
        vec![RBROKER]
    };
    for program in programs {
        let (by_path, revoking) = (free_port(), free_port());
        let tls = tls_lines(&certs);
        let conf = write(
            dir.path(),
            "crl.conf",
            &format!(
                "allow_anonymous true\n\
                 listener {by_path} 127.0.0.1\n{tls}capath {}\nrequire_certificate true\n\
                 listener {revoking} 127.0.0.1\n{tls}cafile {}\nrequire_certificate true\ncrlfile {}\n",
                path(&certs.capath),
                path(&certs.ca),
                path(&certs.crl_revoking_client)
            ),
        );
        let _broker = Running::program(program, &["-c", &conf]);
        let (ca, cert, key) = (
            path(&certs.ca),
            path(&certs.client_cert),
            path(&certs.client_key),
        );
        let client = |port: u16| {
            let port = port.to_string();
            let args = [
                "-h",
                "localhost",
                "-p",
                &port,
                "--cafile",
                &ca,
                "--cert",
                &cert,
                "--key",
                &key,
                "-t",
                "crl",
            ];
            published("mosquitto_pub", &args, "m")
        };
        assert!(client(by_path), "{program}: the CA in capath was not used");
        assert!(
            !client(revoking),
            "{program}: a revoked certificate was accepted"
        );
    }
}
