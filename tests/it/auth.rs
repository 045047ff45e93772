//! Users and permissions: password files (made by `rbroker passwd` and by
//! mosquitto_passwd, read by both brokers), `allow_anonymous`, ACL files at CONNECT,
//! SUBSCRIBE, PUBLISH and every delivery, topics reserved for the broker, and the
//! password check running beside a CONNECT's pipelined packets. Each scenario runs
//! against rbroker and mosquitto from the same files, asserting each side's answer.

use std::process::Command;

use bytes::Bytes;
use mqttkit::protocol::{
    Connect, Packet, ProtocolVersion, Publish, QoS, ReasonCode, Subscribe, SubscriptionOptions,
    TopicFilter, TopicName, Will,
};

use crate::support::RawClient;
use crate::support::credentials::{
    Maker, TEST_ITERATIONS, login, open_to_all, password_file, rbroker_passwd, shared_dir,
};
use crate::support::mosquitto::available;
use crate::support::raw::pid;
use crate::support::target::{Target, on_both, with_mosquitto_tools};

/// The CONNACK code for a login, as `ReasonCode` (3.x codes mapped by the codec).
fn answer(target: &Target, connect: Connect) -> ReasonCode {
    let (_, connack) = RawClient::handshake(target.addr(), connect);
    connack.code
}

fn connected(target: &Target, connect: Connect) -> RawClient {
    RawClient::connect_with(target.addr(), connect)
}

#[test]
fn wrong_passwords_unknown_users_and_anonymous_clients_are_refused_alike() {
    if !available("wrong_passwords_unknown_users_and_anonymous_clients_are_refused_alike") {
        return;
    }
    let dir = shared_dir();
    for maker in [Maker::Rbroker, Maker::Mosquitto] {
        let file = password_file(dir.path(), maker, &[("alice", "secret"), ("bob", "")]);
        let conf = format!("allow_anonymous false\npassword_file {}\n", file.display());
        with_mosquitto_tools("password_files", &conf, |target| {
            use ProtocolVersion::{V3_1, V3_1_1, V5};
            let context = format!("{} with a file from {maker:?}", target.name());
            for version in [V3_1, V3_1_1, V5] {
                let ok = answer(target, login(version, "a1", Some("alice"), Some("secret")));
                assert_eq!(ok, ReasonCode::Success, "{context} {version:?}");
            }
            // 3.x: every refusal is 5, "not authorised".
            for (user, password) in [
                (Some("alice"), Some("Secret")),
                (Some("alice"), Some("")),
                (Some("alice"), None),
                (Some("eve"), Some("secret")),
                (Some(""), Some("secret")),
                (None, None),
            ] {
                let code = answer(target, login(V3_1_1, "a2", user, password));
                assert_eq!(
                    code,
                    ReasonCode::NotAuthorized,
                    "{context}: {user:?}/{password:?}"
                );
            }
            // 5.0: a wrong password or unknown user is 0x86 on rbroker (mosquitto
            // 2.0 says 0x87 for both); a client without a username is 0x87.
            let bad_credentials = if target.is_mosquitto() {
                ReasonCode::NotAuthorized
            } else {
                ReasonCode::BadUserNameOrPassword
            };
            for (user, password) in [
                (Some("alice"), Some("wrong")),
                (Some("eve"), Some("secret")),
            ] {
                let code = answer(target, login(V5, "a3", user, password));
                assert_eq!(code, bad_credentials, "{context}: {user:?}");
            }
            let anonymous = answer(target, login(V5, "a4", None, None));
            assert_eq!(anonymous, ReasonCode::NotAuthorized, "{context}");
            // An empty password never logs in, even for a user whose password is
            // empty (mosquitto_passwd -b writes one).
            let empty = answer(target, login(V3_1_1, "a5", Some("bob"), Some("")));
            assert_eq!(empty, ReasonCode::NotAuthorized, "{context}");
        });
    }
}

#[test]
fn rbroker_passwd_writes_files_mosquitto_reads_at_the_default_cost() {
    if !available("rbroker_passwd_writes_files_mosquitto_reads_at_the_default_cost") {
        return;
    }
    let dir = shared_dir();
    let path = dir.path().join("passwords");
    let file = path.to_str().expect("utf-8 path");
    rbroker_passwd(&["-c", "-b", file, "alice", "first"]);
    rbroker_passwd(&["-b", file, "bob", "second"]);
    rbroker_passwd(&["-b", file, "alice", "third"]);
    rbroker_passwd(&["-H", "sha512", "-b", file, "carol", "fourth"]);
    let text = std::fs::read_to_string(&path).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("alice:$7$210000$"), "{text}");
    assert!(lines[1].starts_with("bob:$7$210000$"), "{text}");
    assert!(lines[2].starts_with("carol:$6$"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o077, 0, "readable by others: {mode:o}");
    }
    open_to_all(&path, 0o644);
    // Deleting a user, and a user who is not there (mosquitto_passwd's warning, 1).
    rbroker_passwd(&["-D", file, "bob"]);
    let missing = Command::new(env!("CARGO_BIN_EXE_rbroker"))
        .args(["passwd", "-D", file, "bob"])
        .output()
        .expect("run");
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr).trim(),
        "Warning: User bob not found in password file."
    );
    // Through a symbolic link the target is updated, keeping its owner.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).expect("symlink");
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        if root {
            std::os::unix::fs::chown(&path, Some(1), Some(1)).expect("chown");
        }
        rbroker_passwd(&["-b", link.to_str().expect("utf-8"), "erin", "sixth"]);
        assert!(std::fs::symlink_metadata(&link).expect("stat").is_symlink());
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("\nerin:$7$"), "{text}");
        if root {
            let metadata = std::fs::metadata(&path).expect("stat");
            assert_eq!((metadata.uid(), metadata.gid()), (1, 1));
        }
    }
    // `-U` hashes plain-text lines and leaves hashed ones alone.
    let plain = dir.path().join("plain");
    std::fs::write(&plain, format!("dave:fifth\n{}\n", lines[0])).expect("write");
    rbroker_passwd(&["-I", TEST_ITERATIONS, "-U", plain.to_str().expect("utf-8")]);
    let updated = std::fs::read_to_string(&plain).expect("read");
    assert!(updated.starts_with("dave:$7$1000$"), "{updated}");
    assert!(updated.contains(lines[0]), "{updated}");
    let conf = format!("allow_anonymous false\npassword_file {}\n", path.display());
    with_mosquitto_tools("rbroker_passwd_files", &conf, |target| {
        let v3 = ProtocolVersion::V3_1_1;
        let cases = [
            ("alice", "third", ReasonCode::Success),
            ("alice", "first", ReasonCode::NotAuthorized),
            ("bob", "second", ReasonCode::NotAuthorized),
            ("carol", "fourth", ReasonCode::Success),
        ];
        for (user, password, expected) in cases {
            let code = answer(target, login(v3, "p1", Some(user), Some(password)));
            assert_eq!(code, expected, "{}: {user}", target.name());
        }
    });
}

const ACL: &str = "\
# anonymous clients
topic read public/#

user alice
topic readwrite lab/#
topic deny lab/secret
topic write alice/out

user bob
topic readwrite lab/#
topic write other/#
topic write public/#

user watcher
topic read #

user mallory
topic read public/#

pattern readwrite clients/%c/#
pattern read users/%u/#
";

/// A directory with a password file (alice, bob, watcher, mallory; password =
/// name) and
/// `ACL`, and the config lines naming them.
fn users_and_acl(anonymous: bool) -> (tempfile::TempDir, String) {
    let dir = shared_dir();
    let passwords = password_file(
        dir.path(),
        Maker::Rbroker,
        &[
            ("alice", "alice"),
            ("bob", "bob"),
            ("watcher", "watcher"),
            ("mallory", "mallory"),
        ],
    );
    let acl = dir.path().join("acl");
    std::fs::write(&acl, ACL).expect("write acl");
    open_to_all(&acl, 0o644);
    let conf = format!(
        "allow_anonymous {anonymous}\npassword_file {}\nacl_file {}\n",
        passwords.display(),
        acl.display()
    );
    (dir, conf)
}

fn user(target: &Target, version: ProtocolVersion, id: &str, name: &str) -> RawClient {
    connected(target, login(version, id, Some(name), Some(name)))
}

fn publish(topic: &str, payload: &str, qos: QoS, retain: bool) -> Publish {
    Publish {
        qos,
        retain,
        packet_id: (qos != QoS::AtMostOnce).then(|| pid(7)),
        ..Publish::new(
            TopicName::new(topic).expect("topic"),
            Bytes::copy_from_slice(payload.as_bytes()),
        )
    }
}

/// The topics of the next live PUBLISHes up to and including `marker`,
/// acknowledged; retained copies sent at subscription are passed over.
fn topics_until(client: &mut RawClient, marker: &str) -> Vec<String> {
    let mut topics = Vec::new();
    loop {
        let received = client.recv_publish();
        client.acknowledge(&received);
        if received.retain {
            continue;
        }
        topics.push(received.topic.as_str().to_string());
        if received.topic.as_str() == marker {
            return topics;
        }
    }
}

#[test]
fn the_acl_decides_publishing_subscribing_and_every_delivery() {
    let (_dir, conf) = users_and_acl(false);
    on_both("acl_decisions", &conf, |target| {
        let name = target.name();
        let v5 = ProtocolVersion::V5;
        // Retained before anyone subscribes: one alice may read, one she may not.
        let mut bob = user(target, v5, "bob-1", "bob");
        for topic in ["lab/keep", "lab/secret"] {
            let ack = bob.publish_packet(publish(topic, "kept", QoS::AtLeastOnce, true));
            assert!(!ack.expect("PUBACK").reason.is_error(), "{name}: {topic}");
        }
        let mut alice = user(target, v5, "alice-1", "alice");
        let all = SubscriptionOptions::new(QoS::AtLeastOnce);
        let suback =
            alice.subscribe_with(1, [], &[("#", all), ("lab/secret", all), ("public/#", all)]);
        // rbroker refuses filters the ACL can never serve; mosquitto 2.0's acl_file
        // grants every filter and filters at delivery.
        let expected = if target.is_mosquitto() {
            vec![ReasonCode::GrantedQoS1; 3]
        } else {
            vec![
                ReasonCode::GrantedQoS1,
                ReasonCode::NotAuthorized,
                ReasonCode::NotAuthorized,
            ]
        };
        assert_eq!(suback.codes, expected, "{name}");
        // The retained message she may not read never arrives.
        let retained = alice.recv_publish();
        alice.acknowledge(&retained);
        assert_eq!(retained.topic.as_str(), "lab/keep", "{name}");
        assert!(retained.retain);
        // Live: lab/secret and other/x are bob's to write but not alice's to read.
        for topic in ["lab/secret", "other/x", "lab/a"] {
            let ack = bob.publish_packet(publish(topic, "live", QoS::AtLeastOnce, false));
            // A reader turned away by the ACL does not make the publish fail.
            assert_eq!(
                ack.expect("PUBACK").reason,
                ReasonCode::Success,
                "{name}: {topic}"
            );
        }
        assert_eq!(topics_until(&mut alice, "lab/a"), ["lab/a"], "{name}");

        // Publishing where the ACL says no: 0x87 on 5.0; acknowledged and dropped
        // on 3.1.1; the watcher, who reads everything, sees neither.
        let mut watcher = user(target, v5, "watcher-1", "watcher");
        watcher.subscribe(1, &[("#", QoS::AtLeastOnce)]);
        let ack = alice.publish_packet(publish("other/x", "no", QoS::AtLeastOnce, false));
        assert_eq!(
            ack.expect("PUBACK").reason,
            ReasonCode::NotAuthorized,
            "{name}"
        );
        let ack = alice.publish_packet(publish("other/y", "no", QoS::ExactlyOnce, false));
        assert_eq!(
            ack.expect("PUBREC").reason,
            ReasonCode::NotAuthorized,
            "{name}"
        );
        let mut alice_v3 = user(target, ProtocolVersion::V3_1_1, "alice-2", "alice");
        let ack = alice_v3.publish_packet(publish("other/z", "no", QoS::AtLeastOnce, false));
        assert_eq!(ack.expect("PUBACK").reason, ReasonCode::Success, "{name}");
        alice_v3.publish("alice/out", b"written", QoS::AtLeastOnce, false, 8);
        assert_eq!(
            topics_until(&mut watcher, "alice/out"),
            ["alice/out"],
            "{name}"
        );

        // Wills: the one alice may not write is dropped when due, bob's arrives.
        let mut will_of_alice = login(v5, "alice-3", Some("alice"), Some("alice"));
        will_of_alice.will = Some(will("other/will-of-alice"));
        drop(connected(target, will_of_alice));
        let mut will_of_bob = login(v5, "bob-2", Some("bob"), Some("bob"));
        will_of_bob.will = Some(will("other/will-of-bob"));
        drop(connected(target, will_of_bob));
        let seen = topics_until(&mut watcher, "other/will-of-bob");
        assert_eq!(seen, ["other/will-of-bob"], "{name}");
    });
}

fn will(topic: &str) -> Will {
    Will {
        topic: TopicName::new(topic).expect("topic"),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    }
}

#[test]
fn anonymous_clients_get_the_lines_before_the_first_user_and_client_id_patterns() {
    let (_dir, conf) = users_and_acl(true);
    on_both("acl_anonymous", &conf, |target| {
        let name = target.name();
        let v5 = ProtocolVersion::V5;
        let mut watcher = user(target, v5, "watcher-2", "watcher");
        watcher.subscribe(1, &[("#", QoS::AtLeastOnce)]);
        let mut anonymous = connected(target, login(v5, "anon", None, None));
        // public/# is read-only for anonymous clients; clients/<own id>/# is theirs.
        let ack = anonymous.publish_packet(publish("public/x", "no", QoS::AtLeastOnce, false));
        assert_eq!(
            ack.expect("PUBACK").reason,
            ReasonCode::NotAuthorized,
            "{name}"
        );
        let ack =
            anonymous.publish_packet(publish("clients/anon/x", "ok", QoS::AtLeastOnce, false));
        assert!(!ack.expect("PUBACK").reason.is_error(), "{name}");
        assert_eq!(
            topics_until(&mut watcher, "clients/anon/x"),
            ["clients/anon/x"],
            "{name}"
        );
        // A client id that is a wildcard never matches a pattern (CVE-2017-7650):
        // `clients/%c/#` must not become `clients/+/#`.
        let mut sneaky = connected(target, login(v5, "+", None, None));
        let ack = sneaky.publish_packet(publish("clients/anyone/x", "no", QoS::AtLeastOnce, false));
        assert_eq!(
            ack.expect("PUBACK").reason,
            ReasonCode::NotAuthorized,
            "{name}"
        );
        // Delivery to an anonymous reader: public/news yes, other/hidden no.
        let mut reader = connected(target, login(v5, "anon-reader", None, None));
        let suback = reader.subscribe(1, &[("#", QoS::AtLeastOnce)]);
        assert_eq!(suback.codes, [ReasonCode::GrantedQoS1], "{name}");
        let mut bob = user(target, v5, "bob-3", "bob");
        bob.publish("other/hidden", b"x", QoS::AtLeastOnce, false, 2);
        bob.publish("public/news", b"x", QoS::AtLeastOnce, false, 3);
        assert_eq!(
            topics_until(&mut reader, "public/news"),
            ["public/news"],
            "{name}"
        );
    });
}

#[test]
fn a_connect_waiting_for_its_password_check_keeps_the_packets_behind_it() {
    let (_dir, conf) = users_and_acl(false);
    on_both("pipelined_login", &conf, |target| {
        let name = target.name();
        let mut client = RawClient::open(target.addr());
        let mut bytes = Packet::Connect(Box::new(login(
            ProtocolVersion::V3_1_1,
            "piped",
            Some("alice"),
            Some("alice"),
        )))
        .to_bytes(ProtocolVersion::V3_1_1)
        .expect("encode");
        let subscribe = Packet::Subscribe(Subscribe {
            packet_id: pid(1),
            properties: Default::default(),
            filters: vec![(
                TopicFilter::new("lab/piped").expect("filter"),
                SubscriptionOptions::new(QoS::AtLeastOnce),
            )],
            rejected: Vec::new(),
        });
        bytes.extend(subscribe.to_bytes(ProtocolVersion::V3_1_1).expect("encode"));
        bytes.extend(
            Packet::Publish(publish("lab/piped", "self", QoS::AtLeastOnce, false))
                .to_bytes(ProtocolVersion::V3_1_1)
                .expect("encode"),
        );
        client.send_bytes(&bytes);
        assert!(
            matches!(client.recv(), Packet::ConnAck(c) if c.code == ReasonCode::Success),
            "{name}"
        );
        assert!(matches!(client.recv(), Packet::SubAck(_)), "{name}");
        let mut saw_own_message = false;
        let mut saw_ack = false;
        while !(saw_own_message && saw_ack) {
            match client.recv() {
                Packet::PubAck(_) => saw_ack = true,
                Packet::Publish(received) => {
                    assert_eq!(received.topic.as_str(), "lab/piped");
                    client.acknowledge(&received);
                    saw_own_message = true;
                }
                other => panic!("{name}: unexpected {other:?}"),
            }
        }
    });
}

#[test]
fn clients_cannot_publish_into_sys_or_share_topics() {
    on_both("reserved_topics", "", |target| {
        let name = target.name();
        let mut watcher = RawClient::connect(target.addr(), "sys-watcher");
        watcher.subscribe(
            1,
            &[("$share/g/#", QoS::AtLeastOnce), ("$x/#", QoS::AtLeastOnce)],
        );
        let mut v5 = RawClient::connect_v5(target.addr(), "sys-writer-5", []);
        for topic in ["$SYS/broker/uptime", "$SYSX/a", "$share/g/x"] {
            let ack = v5.publish_packet(publish(topic, "spoof", QoS::AtLeastOnce, false));
            assert_eq!(
                ack.expect("PUBACK").reason,
                ReasonCode::NotAuthorized,
                "{name}: {topic}"
            );
        }
        let mut v3 = RawClient::connect(target.addr(), "sys-writer-3");
        let ack = v3.publish_packet(publish(
            "$SYS/broker/uptime",
            "spoof",
            QoS::AtLeastOnce,
            false,
        ));
        assert_eq!(ack.expect("PUBACK").reason, ReasonCode::Success, "{name}");
        // Except a bridge's state topic, which a remote broker bridging in sends.
        let bridge_state = "$SYS/broker/connection/edge/state";
        let ack = v5.publish_packet(publish(bridge_state, "1", QoS::AtLeastOnce, false));
        assert!(!ack.expect("PUBACK").reason.is_error(), "{name}");
        // Other `$` topics are ordinary topics.
        let ack = v5.publish_packet(publish("$x/y", "fine", QoS::AtLeastOnce, false));
        assert!(!ack.expect("PUBACK").reason.is_error(), "{name}");
        let received = watcher.recv_publish();
        assert_eq!(received.topic.as_str(), "$x/y", "{name}");
        // A will into $SYS or $CONTROL: rbroker refuses the CONNECT as not
        // authorised; mosquitto 2.0.11 accepts it (and drops the will when due).
        for topic in ["$SYS/broker/uptime", "$CONTROL/dynamic-security/v1"] {
            let mut connect = login(ProtocolVersion::V3_1_1, "sys-will", None, None);
            connect.will = Some(will(topic));
            let (_, connack) = RawClient::handshake_or_closed(target.addr(), connect);
            let expected = if target.is_mosquitto() {
                ReasonCode::Success
            } else {
                ReasonCode::NotAuthorized
            };
            assert_eq!(connack.map(|c| c.code), Some(expected), "{name}: {topic}");
        }
    });
}

#[test]
fn another_user_reusing_a_client_id_gets_a_fresh_session() {
    let (_dir, conf) = users_and_acl(false);
    on_both("session_owner", &conf, |target| {
        let name = target.name();
        let v3 = ProtocolVersion::V3_1_1;
        let persistent = |user: &str| Connect {
            clean_start: false,
            ..login(v3, "owned-session", Some(user), Some(user))
        };
        let mut alice = connected(target, persistent("alice"));
        alice.subscribe(1, &[("lab/#", QoS::AtLeastOnce)]);
        alice.disconnect();
        // Queued for alice while she is away.
        let mut bob = user(target, v3, "bob-4", "bob");
        bob.publish("lab/private", b"for alice", QoS::AtLeastOnce, false, 1);
        let (mut mallory, connack) = RawClient::handshake(target.addr(), persistent("mallory"));
        assert_eq!(connack.code, ReasonCode::Success, "{name}");
        // rbroker starts mallory afresh; mosquitto 2.0.11 resumes alice's session
        // for her (and then holds back what mallory may not read).
        assert_eq!(connack.session_present, target.is_mosquitto(), "{name}");
        // Nothing of alice's reaches mallory: a public message is her first.
        mallory.subscribe(1, &[("public/#", QoS::AtLeastOnce)]);
        bob.publish("public/hello", b"x", QoS::AtLeastOnce, false, 3);
        let first = mallory.recv_publish();
        assert_eq!(first.topic.as_str(), "public/hello", "{name}");
    });
}

#[test]
fn a_shared_group_gives_each_message_to_a_member_who_may_read_it() {
    let (_dir, conf) = users_and_acl(false);
    let target = Target::rbroker(&conf);
    let v5 = ProtocolVersion::V5;
    let group = [("$share/g/#", SubscriptionOptions::new(QoS::AtLeastOnce))];
    let mut alice = user(&target, v5, "alice-shared", "alice");
    alice.subscribe_with(1, [], &group);
    // mallory may read public/# only; the group filter overlaps that.
    let mut mallory = user(&target, v5, "mallory-shared", "mallory");
    let suback = mallory.subscribe_with(1, [], &group);
    assert_eq!(suback.codes, [ReasonCode::GrantedQoS1]);
    let mut bob = user(&target, v5, "bob-shared", "bob");
    for index in 0..4 {
        bob.publish(&format!("lab/{index}"), b"x", QoS::AtLeastOnce, false, 1);
    }
    // Every lab/ message goes to alice, none is lost to mallory's turn.
    let topics: Vec<String> = (0..4)
        .map(|_| {
            let received = alice.recv_publish();
            alice.acknowledge(&received);
            received.topic.as_str().to_string()
        })
        .collect();
    assert_eq!(topics, ["lab/0", "lab/1", "lab/2", "lab/3"]);
    // A public message may go to either; mallory is served when it is her turn.
    bob.publish("public/a", b"x", QoS::AtLeastOnce, false, 2);
    bob.publish("public/b", b"x", QoS::AtLeastOnce, false, 3);
    let first = mallory.recv_publish();
    assert!(first.topic.as_str().starts_with("public/"));
}

/// Runs `rbroker passwd ARGS` on a terminal (util-linux `script`), answering each
/// prompt once it shows; returns the exit status and what the terminal showed.
fn passwd_on_a_terminal(args: &str, answers: &[&str]) -> Option<(Option<i32>, String)> {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` to give rbroker passwd a terminal");
        return None;
    }
    let command = format!("{} passwd {args}", env!("CARGO_BIN_EXE_rbroker"));
    let mut running =
        crate::support::tools::start("script", &["-qec", &command, "/dev/null"], None, None);
    for (index, answer) in answers.iter().enumerate() {
        running.wait_for_stdout("assword: ", index + 1);
        // rpassword writes the prompt, then turns echo off: typing in between would
        // be echoed by the terminal, not by rbroker.
        std::thread::sleep(std::time::Duration::from_millis(200));
        running.write_stdin(format!("{answer}\n").as_bytes());
    }
    let finished = running.finish();
    Some((finished.status, finished.stdout_text()))
}

#[test]
fn rbroker_passwd_prompts_twice_without_echo() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("passwords");
    let file = path.to_str().expect("utf-8");
    let Some((status, screen)) = passwd_on_a_terminal(
        &format!("-I {TEST_ITERATIONS} -c {file} alice"),
        &["typed-secret", "typed-secret"],
    ) else {
        return;
    };
    assert_eq!(status, Some(0), "{screen}");
    assert!(
        screen.contains("Password: ") && screen.contains("Reenter password: "),
        "{screen}"
    );
    assert!(!screen.contains("typed-secret"), "echoed: {screen}");
    let text = std::fs::read_to_string(&path).expect("read");
    let passwords = mqttkit::broker::auth::password::PasswordFile::parse(&text).expect("valid");
    assert!(
        passwords
            .get("alice")
            .expect("alice")
            .verify(b"typed-secret")
    );
    // Two different answers: mosquitto_passwd's message and status 2, file untouched.
    let (status, screen) =
        passwd_on_a_terminal(&format!("{file} bob"), &["one", "two"]).expect("script");
    assert_eq!(status, Some(2), "{screen}");
    assert!(
        screen.contains("Error: Passwords do not match."),
        "{screen}"
    );
    assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
}
