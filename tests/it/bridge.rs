//! Bridges, against real brokers: rbroker bridged to mosquitto, mosquitto bridged
//! to rbroker, and rbroker to rbroker, each direction, each QoS, MQTT 3.1.1 and
//! 5.0, with prefixes, retained messages and the notification messages; a loop
//! of two bridges that must not amplify; a remote broker killed and restarted
//! while QoS 1/2 traffic flows; a local broker killed with messages queued for
//! its bridge; and remote brokers that are unreachable, refuse, answer garbage,
//! never answer, or show the wrong certificate, while local clients are served.

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mqttkit::protocol::{Ack, Packet, Publish, QoS};

use crate::support::certs::Certs;
use crate::support::credentials::{shared_dir, writable_dir};
use crate::support::durable::{Publisher, Subscriber, flag};
use crate::support::files::{RBROKER, addr, write};
use crate::support::logged::Running;
use crate::support::mosquitto::{available, free_port};
use crate::support::{RawClient, WAIT};

/// The `-v` broker `program` with `conf` on `port`.
fn broker(program: &str, dir: &std::path::Path, name: &str, conf: &str) -> Running {
    let path = write(dir, name, conf);
    Running::program(program, &["-c", &path, "-v"])
}

/// A bridge named `edge` (remote client id `edge`, local `local.edge`) from a
/// broker on `port` to `remote`, with `lines` after the `connection` line.
fn bridge_conf(port: u16, remote: u16, lines: &str) -> String {
    format!(
        "listener {port} 127.0.0.1\nallow_anonymous true\nconnection edge\naddress 127.0.0.1:{remote}\nremote_clientid edge\nrestart_timeout 1\n{lines}"
    )
}

fn plain_conf(port: u16) -> String {
    format!("listener {port} 127.0.0.1\nallow_anonymous true\n")
}

/// A remote rbroker (its config `remote_extra` lines more) and a local rbroker
/// bridged to it with `lines`, once the bridge has its CONNACK: (local, its
/// port, remote, its port).
fn bridged_pair(
    dir: &std::path::Path,
    remote_extra: &str,
    lines: &str,
) -> (Running, u16, Running, u16) {
    let (local_port, remote_port) = (free_port(), free_port());
    let remote_conf = format!("{}{remote_extra}", plain_conf(remote_port));
    let remote = broker(RBROKER, dir, "remote.conf", &remote_conf);
    let mut local = broker(
        RBROKER,
        dir,
        "local.conf",
        &bridge_conf(local_port, remote_port, lines),
    );
    local.wait_for("Received CONNACK on connection local.edge");
    (local, local_port, remote, remote_port)
}

/// The next PUBLISH within `wait`, answering every step of the QoS flows on
/// the way (PUBACK, PUBREC, and PUBCOMP for a PUBREL).
fn next_publish(client: &mut RawClient, wait: Duration) -> Option<Publish> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match client.recv_within(left)? {
            Packet::Publish(publish) => {
                match (publish.qos, publish.packet_id) {
                    (QoS::AtLeastOnce, Some(id)) => client.send(&Packet::PubAck(Ack::new(id))),
                    (QoS::ExactlyOnce, Some(id)) => client.send(&Packet::PubRec(Ack::new(id))),
                    _ => {}
                }
                return Some(publish);
            }
            Packet::PubRel(release) => {
                client.send(&Packet::PubComp(Ack::new(release.packet_id)));
            }
            _ => {}
        }
    }
}

/// Reads PUBLISHes until `want` says it has enough, or fails after [`WAIT`].
fn collect(client: &mut RawClient, want: impl Fn(&[Publish]) -> bool) -> Vec<Publish> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while !want(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        match next_publish(client, left) {
            Some(publish) => seen.push(publish),
            None => panic!("timed out; received so far: {seen:?}"),
        }
    }
    seen
}

/// What arrives until nothing has for `quiet`.
fn quiet(client: &mut RawClient, quiet: Duration) -> Vec<Publish> {
    std::iter::from_fn(|| next_publish(client, quiet)).collect()
}

fn topics(seen: &[Publish]) -> Vec<(String, u8)> {
    seen.iter()
        .map(|p| (p.topic.as_str().to_string(), p.qos as u8))
        .collect()
}

fn has(seen: &[Publish], topic: &str) -> bool {
    seen.iter().any(|p| p.topic.as_str() == topic)
}

/// Waits for a retained `1` on the bridge's state topic.
fn state_is_up(client: &mut RawClient) {
    collect(client, |seen| {
        seen.iter().any(|p| {
            p.topic.as_str() == "$SYS/broker/connection/edge/state" && &p.payload[..] == b"1"
        })
    });
}

/// Each pair of brokers and protocol version: messages each way at each QoS
/// under their prefixes, `both` lines without echoes, retained messages, and
/// the state messages on both sides.
#[test]
fn bridges_carry_each_direction_and_qos_between_rbroker_and_mosquitto() {
    let test = "bridges_carry_each_direction_and_qos_between_rbroker_and_mosquitto";
    let mut pairs = vec![(RBROKER, RBROKER)];
    if available(test) {
        pairs.extend([(RBROKER, "mosquitto"), ("mosquitto", RBROKER)]);
    }
    let dir = shared_dir();
    for (local_program, remote_program) in pairs {
        for version in ["mqttv311", "mqttv50"] {
            let label = format!("{local_program} -> {remote_program}, {version}");
            let (local_port, remote_port) = (free_port(), free_port());
            let _remote = broker(
                remote_program,
                dir.path(),
                "remote.conf",
                &plain_conf(remote_port),
            );
            let lines = format!(
                "bridge_protocol_version {version}\ntopic sensors/# out 2 local/ remote/\ntopic cmd/# in 2 loc/ rem/\ntopic both/# both 2\n"
            );
            let mut local = broker(
                local_program,
                dir.path(),
                "local.conf",
                &bridge_conf(local_port, remote_port, &lines),
            );
            local.wait_for("Received SUBACK from local.edge");

            let state = "$SYS/broker/connection/edge/state";
            let mut far = RawClient::connect(addr(remote_port), "far");
            far.subscribe(
                1,
                &[
                    ("remote/#", QoS::ExactlyOnce),
                    ("both/#", QoS::ExactlyOnce),
                    ("sensors/#", QoS::AtLeastOnce),
                    (state, QoS::AtLeastOnce),
                ],
            );
            state_is_up(&mut far);
            let mut near = RawClient::connect(addr(local_port), "near");
            near.subscribe(
                1,
                &[
                    ("loc/#", QoS::ExactlyOnce),
                    ("both/#", QoS::ExactlyOnce),
                    (state, QoS::AtLeastOnce),
                ],
            );
            state_is_up(&mut near);

            let mut near_pub = RawClient::connect(addr(local_port), "near-pub");
            let mut far_pub = RawClient::connect(addr(remote_port), "far-pub");
            let levels = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce];
            for (n, qos) in levels.into_iter().enumerate() {
                let id = n as u16 + 1;
                near_pub.publish(&format!("local/sensors/q{n}"), b"out", qos, false, id);
                far_pub.publish(&format!("rem/cmd/q{n}"), b"in", qos, false, id);
            }
            // Outside every out line: stays here.
            near_pub.publish("sensors/raw", b"raw", QoS::AtLeastOnce, false, 8);
            near_pub.publish("local/sensors/kept", b"kept", QoS::AtLeastOnce, true, 9);
            near_pub.publish("both/near", b"b", QoS::AtLeastOnce, false, 10);
            far_pub.publish("both/far", b"b", QoS::AtLeastOnce, false, 10);

            let at_far = collect(&mut far, |seen| {
                (0..3).all(|n| has(seen, &format!("remote/sensors/q{n}")))
                    && has(seen, "remote/sensors/kept")
                    && has(seen, "both/near")
                    && has(seen, "both/far")
            });
            let at_near = collect(&mut near, |seen| {
                (0..3).all(|n| has(seen, &format!("loc/cmd/q{n}")))
                    && has(seen, "both/near")
                    && has(seen, "both/far")
            });
            // Each hop is a subscription: the message keeps its QoS (the lines say 2).
            for (n, qos) in levels.into_iter().enumerate() {
                let out = at_far
                    .iter()
                    .find(|p| p.topic.as_str() == format!("remote/sensors/q{n}"));
                assert_eq!(
                    out.map(|p| p.qos),
                    Some(qos),
                    "{label}: {:?}",
                    topics(&at_far)
                );
                let back = at_near
                    .iter()
                    .find(|p| p.topic.as_str() == format!("loc/cmd/q{n}"));
                assert_eq!(
                    back.map(|p| p.qos),
                    Some(qos),
                    "{label}: {:?}",
                    topics(&at_near)
                );
            }
            // A late subscriber on the remote side gets the retained message.
            let mut late = RawClient::connect(addr(remote_port), "late");
            late.subscribe(1, &[("remote/sensors/kept", QoS::AtLeastOnce)]);
            let kept = collect(&mut late, |seen| !seen.is_empty());
            assert!(
                kept[0].retain && &kept[0].payload[..] == b"kept",
                "{label}: {kept:?}"
            );
            // Each `both` message once on each side (no echo), and nothing from
            // outside the lines crossed: counting everything that arrived until
            // nothing more did for 500 ms.
            let all_far: Vec<Publish> = at_far
                .into_iter()
                .chain(quiet(&mut far, Duration::from_millis(500)))
                .collect();
            let all_near: Vec<Publish> = at_near
                .into_iter()
                .chain(quiet(&mut near, Duration::from_millis(300)))
                .collect();
            for (side, seen) in [("far", &all_far), ("near", &all_near)] {
                for topic in ["both/near", "both/far"] {
                    let copies = seen.iter().filter(|p| p.topic.as_str() == topic).count();
                    assert_eq!(copies, 1, "{label}: {topic} at {side}: {:?}", topics(seen));
                }
            }
            assert!(
                !has(&all_far, "sensors/raw"),
                "{label}: {:?}",
                topics(&all_far)
            );
            // The local broker goes away: the remote side publishes its will, 0.
            drop(local);
            let down = collect(&mut far, |seen| {
                seen.iter()
                    .any(|p| p.topic.as_str() == state && &p.payload[..] == b"0")
            });
            assert!(!down.is_empty(), "{label}");
        }
    }
}

/// rbroker A bridged to rbroker B on `loop/#` in both directions, in 3.1.1
/// (try_private) and 5.0 (No Local): 100 messages published on each side
/// arrive once on each side, none sent back where it came from.
///
/// Two bridges configured in opposite directions on the same topics (A to B
/// and B to A) would pass each message round for ever, with mosquitto as with
/// rbroker: neither broker can tell that the other's bridge leads back to
/// itself. One bridge with `both` is the way (README, "Scaling out").
#[test]
fn a_bridge_in_both_directions_between_two_rbrokers_does_not_amplify() {
    let dir = shared_dir();
    for version in ["mqttv311", "mqttv50"] {
        let (a, b) = (free_port(), free_port());
        let _b = broker(RBROKER, dir.path(), "b.conf", &plain_conf(b));
        let lines = format!("bridge_protocol_version {version}\ntopic loop/# both 2\n");
        let mut first = broker(RBROKER, dir.path(), "a.conf", &bridge_conf(a, b, &lines));
        first.wait_for("Received SUBACK from local.edge");
        let mut on_a = RawClient::connect(addr(a), "on-a");
        on_a.subscribe(1, &[("loop/#", QoS::ExactlyOnce)]);
        let mut on_b = RawClient::connect(addr(b), "on-b");
        on_b.subscribe(1, &[("loop/#", QoS::ExactlyOnce)]);
        let mut pub_a = RawClient::connect(addr(a), "pub-a");
        let mut pub_b = RawClient::connect(addr(b), "pub-b");
        for n in 1..=100u16 {
            let qos = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][usize::from(n % 3)];
            pub_a.publish(&format!("loop/a/{n}"), b"a", qos, false, n);
            pub_b.publish(&format!("loop/b/{n}"), b"b", qos, false, n);
        }
        for (side, client) in [("A", &mut on_a), ("B", &mut on_b)] {
            let mut seen = collect(client, |seen| seen.len() >= 200);
            seen.extend(quiet(client, Duration::from_millis(500)));
            let mut counts: HashMap<String, u32> = HashMap::new();
            for publish in &seen {
                *counts
                    .entry(publish.topic.as_str().to_string())
                    .or_default() += 1;
            }
            let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
            assert!(
                counts.len() == 200 && twice.is_empty(),
                "{version}, on {side}: {} topics, repeated {twice:?}",
                counts.len()
            );
        }
    }
}

/// Starts rbroker with persistence on `dir` and `conf` (a listener on `port`),
/// once it runs.
fn durable(dir: &std::path::Path, name: &str, conf: &str) -> Running {
    let conf = format!(
        "{conf}persistence true\npersistence_location {}/\nmax_queued_messages 0\nmax_inflight_messages 1000\n",
        dir.display()
    );
    broker(RBROKER, dir, name, &conf)
}

/// Delivery counts of `publisher`'s messages at `subscriber`: (missing, duplicated).
fn losses(subscriber: &Subscriber, publisher: &Publisher) -> (usize, usize) {
    let mut missing = 0;
    let mut twice = 0;
    for sequence in &publisher.acknowledged {
        match subscriber
            .delivered
            .get(&(publisher.name.clone(), *sequence))
        {
            None => missing += 1,
            Some(count) if *count > 1 => twice += 1,
            Some(_) => {}
        }
    }
    (missing, twice)
}

/// Drains `subscriber`'s session on `port` until it has every acknowledged
/// message of `publishers`, reconnecting as needed, for at most 60 s (this
/// subscriber answers one packet at a time, and each QoS 2 step waits for the
/// remote broker's disk).
fn drain(subscriber: &mut Subscriber, port: u16, publishers: &[Publisher]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let complete = |s: &Subscriber| publishers.iter().all(|p| s.has_all(p));
    while !complete(subscriber) && Instant::now() < deadline {
        subscriber.run(addr(port), &|s| complete(s) || Instant::now() > deadline);
    }
}

/// The remote broker is stopped twice and restarted on its store while QoS 1
/// and QoS 2 messages flow through the bridge, out (published here, subscribed
/// there) and in (the other way): every acknowledged message reaches its
/// subscriber, the QoS 2 ones exactly once. A durable rbroker is killed with
/// SIGKILL; mosquitto, whose store is a snapshot written at exit, with SIGTERM.
#[test]
fn a_remote_killed_mid_stream_loses_nothing_and_duplicates_no_qos2_message() {
    let test = "a_remote_killed_mid_stream_loses_nothing_and_duplicates_no_qos2_message";
    let mut remotes = vec![RBROKER];
    if available(test) {
        remotes.push("mosquitto");
    }
    for remote in remotes {
        for outgoing in [true, false] {
            remote_killed_mid_stream(remote, outgoing);
        }
    }
}

/// Starts `program` with persistence on `dir`, on `port`.
fn durable_remote(program: &str, dir: &std::path::Path, port: u16) -> Running {
    let conf = format!(
        "{}persistence true\npersistence_location {}/\nmax_queued_messages 0\nmax_inflight_messages 1000\n",
        plain_conf(port),
        dir.display()
    );
    broker(program, dir, "remote.conf", &conf)
}

fn remote_killed_mid_stream(program: &str, outgoing: bool) {
    let direction = if outgoing { "out" } else { "in" };
    let parent = shared_dir();
    let dir = writable_dir(parent.path(), "stores");
    let dir = dir.as_path();
    let (local_port, remote_port) = (free_port(), free_port());
    let (publish_port, subscribe_port) = if outgoing {
        (local_port, remote_port)
    } else {
        (remote_port, local_port)
    };
    let mut remote = durable_remote(program, dir, remote_port);
    // The local broker keeps a store too: its PUBACKs wait for the disk, which
    // paces the publishers as a real deployment would.
    let local_dir = writable_dir(parent.path(), "local");
    let mut local = durable(
        &local_dir,
        "local.conf",
        &bridge_conf(
            local_port,
            remote_port,
            &format!("topic crash/# {direction} 2\n"),
        ),
    );
    local.wait_for("Received CONNACK on connection local.edge");
    let mut subscriber = Subscriber::new("far");
    subscriber.run(addr(subscribe_port), &|s| s.connected_before());
    let stop = flag();
    // Publishing to rbroker, its disk paces the publishers.
    let durable_publisher = outgoing || program == RBROKER;
    let publishers: Vec<_> = [("one", QoS::AtLeastOnce), ("two", QoS::ExactlyOnce)]
        .into_iter()
        .map(|(name, qos)| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut publisher = Publisher::new(name, qos, false);
                // mosquitto acknowledges without waiting for its disk: about
                // 1,000 messages a second each keeps the drain bounded.
                if !durable_publisher {
                    publisher.pace = Duration::from_millis(1);
                }
                while !stop.load(Ordering::Relaxed) {
                    publisher.run(addr(publish_port), &stop);
                }
                publisher
            })
        })
        .collect();
    let traffic = if outgoing {
        "Sending PUBLISH to local.edge"
    } else {
        "Received PUBLISH from local.edge"
    };
    for _ in 0..2 {
        // Traffic crosses the bridge, then the remote broker dies mid-stream.
        local.wait_for(traffic);
        if program == RBROKER {
            // Dropping a Running sends SIGKILL and reaps it.
            drop(remote);
        } else {
            remote.signal(libc::SIGTERM);
            assert_eq!(remote.wait(), 0, "{program} stopped");
        }
        local.wait_for("Client local.edge closed its connection.");
        remote = durable_remote(program, dir, remote_port);
        local.wait_for("Received CONNACK on connection local.edge");
    }
    local.wait_for(traffic);
    stop.store(true, Ordering::Relaxed);
    let publishers: Vec<Publisher> = publishers
        .into_iter()
        .map(|thread| thread.join().expect("publisher"))
        .collect();
    drain(&mut subscriber, subscribe_port, &publishers);
    let sent: usize = publishers.iter().map(|p| p.acknowledged.len()).sum();
    assert!(sent > 0, "nothing was published");
    let (missing_one, _) = losses(&subscriber, &publishers[0]);
    let (missing_two, twice_two) = losses(&subscriber, &publishers[1]);
    println!(
        "{direction}, {program} stopped 2 times: {sent} acknowledged messages, {missing_one} QoS 1 and {missing_two} QoS 2 missing, {twice_two} QoS 2 delivered twice"
    );
    assert_eq!(
        (missing_one, missing_two, twice_two),
        (0, 0, 0),
        "{direction}, {program}"
    );
}

/// Messages acknowledged locally while the remote broker is down wait in the
/// bridge's session; with persistence they survive a SIGKILL of the local
/// broker and reach the remote side once it is back.
#[test]
fn messages_queued_for_a_bridge_survive_a_local_sigkill() {
    let dir = shared_dir();
    let local_dir = writable_dir(dir.path(), "local");
    let remote_dir = writable_dir(dir.path(), "remote");
    let (local_port, remote_port) = (free_port(), free_port());
    let remote = durable(&remote_dir, "remote.conf", &plain_conf(remote_port));
    let mut subscriber = Subscriber::new("far");
    subscriber.run(addr(remote_port), &|s| s.connected_before());
    drop(remote);
    let local_conf = bridge_conf(local_port, remote_port, "topic crash/# out 2\n");
    let mut local = durable(&local_dir, "local.conf", &local_conf);
    local.wait_for("Error creating bridge");
    let mut publishers = Vec::new();
    for (name, qos) in [("one", QoS::AtLeastOnce), ("two", QoS::ExactlyOnce)] {
        let mut publisher = Publisher::new(name, qos, false);
        // 50 messages, each acknowledged before the next.
        let mut client = RawClient::connect(addr(local_port), &format!("pub-{name}"));
        for sequence in 1..=50u16 {
            client.publish(
                &publisher.topic(),
                format!("{name}:{sequence}").as_bytes(),
                qos,
                false,
                sequence,
            );
            publisher.acknowledged.push(u64::from(sequence));
        }
        publishers.push(publisher);
    }
    drop(local);
    let _remote = durable(&remote_dir, "remote.conf", &plain_conf(remote_port));
    let _local = durable(&local_dir, "local.conf", &local_conf);
    drain(&mut subscriber, remote_port, &publishers);
    for publisher in &publishers {
        assert_eq!(losses(&subscriber, publisher), (0, 0), "{}", publisher.name);
    }
}

/// A listener that answers every connection with `answer` (garbage), or with
/// nothing at all when it is empty, and keeps the socket open.
fn impostor(answer: &'static [u8]) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut stream in listener.incoming().map_while(Result::ok) {
            let _ = stream.write_all(answer);
            held.push(stream);
        }
    });
    port
}

/// One local broker with five bridges that cannot work: nothing listening, a
/// wrong password, garbage, silence, and a certificate from another CA. Each is
/// logged for what it is, and local clients are served throughout.
#[test]
fn broken_remotes_are_logged_and_local_clients_stay_served() {
    let dir = shared_dir();
    let local_port = free_port();
    let closed = free_port();
    let guarded = free_port();
    let passwords = write(dir.path(), "passwords", "");
    let _guarded = broker(
        RBROKER,
        dir.path(),
        "guarded.conf",
        &format!(
            "listener {guarded} 127.0.0.1\nallow_anonymous false\npassword_file {passwords}\n"
        ),
    );
    let garbage = impostor(b"\xff\xff\xff\xff garbage");
    let silent = impostor(b"");
    let certs = Certs::generate();
    let other = Certs::generate();
    let tls_port = free_port();
    let _tls = broker(
        RBROKER,
        dir.path(),
        "tls.conf",
        &format!(
            "listener {tls_port} 127.0.0.1\nallow_anonymous true\ncertfile {}\nkeyfile {}\n",
            certs.server_cert.display(),
            certs.server_key.display()
        ),
    );
    let block = |name: &str, port: u16, extra: &str| {
        format!(
            "connection {name}\naddress 127.0.0.1:{port}\nremote_clientid {name}\ntopic x/# both 1\nrestart_timeout 1\nkeepalive_interval 5\n{extra}"
        )
    };
    let conf = format!(
        "listener {local_port} 127.0.0.1\nallow_anonymous true\n{}{}{}{}{}",
        block("closed", closed, ""),
        block(
            "refused",
            guarded,
            "remote_username someone\nremote_password wrong\n"
        ),
        block("garbage", garbage, ""),
        block("silent", silent, ""),
        block(
            "wrongca",
            tls_port,
            &format!("bridge_cafile {}\n", other.ca.display())
        ),
    );
    let mut local = broker(RBROKER, dir.path(), "local.conf", &conf);
    let mut client = RawClient::connect(addr(local_port), "served");
    client.subscribe(1, &[("y/#", QoS::AtLeastOnce)]);
    let mut expected: HashMap<&str, bool> = [
        "Error creating bridge: Connection refused.",
        "Error creating bridge: Connection Refused: not authorised.",
        "Error creating bridge: protocol error",
        "Error creating bridge: no CONNACK within 5 s (keepalive_interval).",
        "Error creating bridge: TLS: invalid peer certificate",
    ]
    .into_iter()
    .map(|line| (line, false))
    .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while expected.values().any(|seen| !seen) {
        assert!(Instant::now() < deadline, "not logged: {expected:?}");
        let line = local.wait_for("Error creating bridge");
        for (text, seen) in expected.iter_mut() {
            *seen |= line.contains(text);
        }
        // The broker's own clients are served all along.
        client.publish("y/z", b"still here", QoS::AtLeastOnce, false, 2);
        let echo = collect(&mut client, |seen| !seen.is_empty());
        assert_eq!(&echo[0].payload[..], b"still here");
    }
}

/// `start_type lazy`: the bridge connects once `threshold` messages wait for
/// it, delivers them, and disconnects after `idle_timeout` with nothing to
/// send; its counters appear in `$SYS`.
#[test]
fn a_lazy_bridge_starts_at_its_threshold_and_stops_when_idle() {
    let dir = shared_dir();
    let (local_port, remote_port) = (free_port(), free_port());
    let _remote = broker(RBROKER, dir.path(), "remote.conf", &plain_conf(remote_port));
    let mut far = RawClient::connect(addr(remote_port), "far");
    far.subscribe(1, &[("lazy/#", QoS::AtLeastOnce)]);
    let lines = "start_type lazy\nthreshold 3\nidle_timeout 1\ntopic lazy/# out 1\n";
    let conf = format!(
        "sys_interval 1\n{}",
        bridge_conf(local_port, remote_port, lines)
    );
    let mut local = broker(RBROKER, dir.path(), "local.conf", &conf);
    let mut publisher = RawClient::connect(addr(local_port), "near-pub");
    for n in 1..=3u16 {
        publisher.publish(&format!("lazy/{n}"), b"m", QoS::AtLeastOnce, false, n);
    }
    local.wait_for("Connecting bridge (step 1) edge");
    // Nothing connected before the third message was there.
    let third = local
        .seen
        .iter()
        .position(|line| line.contains("Received PUBLISH from near-pub") && line.contains("lazy/3"))
        .expect("third PUBLISH logged");
    let connecting = local
        .seen
        .iter()
        .position(|line| line.contains("Connecting bridge"))
        .expect("connecting logged");
    assert!(third < connecting, "{:#?}", local.seen);
    let arrived = collect(&mut far, |seen| seen.len() >= 3);
    assert_eq!(
        topics(&arrived),
        [
            ("lazy/1".to_string(), 1),
            ("lazy/2".to_string(), 1),
            ("lazy/3".to_string(), 1)
        ]
    );
    local.wait_for_within(
        "Bridge edge stopped: nothing to send for 1 s (idle_timeout).",
        Duration::from_secs(5),
    );
    let mut watcher = RawClient::connect(addr(local_port), "watcher");
    watcher.subscribe(
        1,
        &[("$SYS/broker/bridge/edge/messages/sent", QoS::AtMostOnce)],
    );
    // The three messages; the state message is not counted.
    collect(&mut watcher, |seen| {
        seen.last().is_some_and(|p| &p.payload[..] == b"3")
    });
}

/// `start_type once`: after its connection is lost the bridge does not try
/// again, and what is published meanwhile stays on this broker.
#[test]
fn a_once_bridge_does_not_reconnect() {
    let dir = shared_dir();
    let (mut local, local_port, remote, remote_port) =
        bridged_pair(dir.path(), "", "start_type once\ntopic once/# out 1\n");
    drop(remote);
    local.wait_for("Client local.edge closed its connection.");
    let _remote = broker(RBROKER, dir.path(), "remote.conf", &plain_conf(remote_port));
    let mut far = RawClient::connect(addr(remote_port), "far");
    far.subscribe(1, &[("once/#", QoS::AtLeastOnce)]);
    RawClient::connect(addr(local_port), "pub").publish("once/x", b"m", QoS::AtLeastOnce, false, 1);
    // restart_timeout is 1 s: twice that passes without an attempt.
    assert!(quiet(&mut far, Duration::from_secs(2)).is_empty());
    let later = local.lines_within(Duration::from_millis(100));
    let attempts = local
        .seen
        .iter()
        .filter(|l| l.contains("Connecting bridge (step 1)"))
        .count();
    assert_eq!(attempts, 1, "{later:#?}");
}

/// Without `round_robin`, a bridge that had to use its second address goes
/// back to the first as soon as it answers again (checked every 5 s).
#[test]
fn a_bridge_returns_to_its_first_address_when_it_is_back() {
    let dir = shared_dir();
    let (local_port, first, second) = (free_port(), free_port(), free_port());
    let _second = broker(RBROKER, dir.path(), "second.conf", &plain_conf(second));
    let conf = format!(
        "listener {local_port} 127.0.0.1\nallow_anonymous true\nconnection edge\naddress 127.0.0.1:{first} 127.0.0.1:{second}\nremote_clientid edge\nrestart_timeout 1\ntopic rr/# out 1\n"
    );
    let mut local = broker(RBROKER, dir.path(), "local.conf", &conf);
    local.wait_for(&format!(
        "Connecting bridge (step 1) edge (127.0.0.1:{second})"
    ));
    local.wait_for("Received CONNACK on connection local.edge");
    let _first = broker(RBROKER, dir.path(), "first.conf", &plain_conf(first));
    local.wait_for_within(
        &format!("Connecting bridge (step 1) edge (127.0.0.1:{first})"),
        Duration::from_secs(10),
    );
    local.wait_for("Received CONNACK on connection local.edge");
    let mut far = RawClient::connect(addr(first), "far");
    far.subscribe(1, &[("rr/#", QoS::AtLeastOnce)]);
    RawClient::connect(addr(local_port), "pub").publish("rr/x", b"m", QoS::AtLeastOnce, false, 1);
    collect(&mut far, |seen| has(seen, "rr/x"));
}

/// A bridge over TLS with a client certificate to a listener that requires
/// one, and a notification topic of its own that stays local.
#[test]
fn a_bridge_over_tls_presents_its_certificate() {
    let dir = shared_dir();
    let certs = Certs::generate();
    let (local_port, remote_port) = (free_port(), free_port());
    let _remote = broker(
        RBROKER,
        dir.path(),
        "remote.conf",
        &format!(
            "listener {remote_port} 127.0.0.1\nallow_anonymous true\ncertfile {}\nkeyfile {}\ncafile {}\nrequire_certificate true\n",
            certs.server_cert.display(),
            certs.server_key.display(),
            certs.ca.display()
        ),
    );
    let conf = format!(
        "listener {local_port} 127.0.0.1\nallow_anonymous true\nconnection edge\naddress localhost:{remote_port}\nremote_clientid edge\nrestart_timeout 1\ntopic secure/# both 1\nbridge_cafile {}\nbridge_certfile {}\nbridge_keyfile {}\nbridge_tls_version tlsv1.2\nnotification_topic bridges/edge\nnotifications_local_only true\n",
        certs.ca.display(),
        certs.client_cert.display(),
        certs.client_key.display()
    );
    let mut local = broker(RBROKER, dir.path(), "local.conf", &conf);
    local.wait_for("Received SUBACK from local.edge");
    let mut near = RawClient::connect(addr(local_port), "near");
    near.subscribe(
        1,
        &[
            ("secure/#", QoS::AtLeastOnce),
            ("bridges/edge", QoS::AtLeastOnce),
        ],
    );
    let state = collect(&mut near, |seen| has(seen, "bridges/edge"));
    assert_eq!(&state[0].payload[..], b"1");
    let tls = [
        "-h".to_string(),
        "localhost".into(),
        "-p".into(),
        remote_port.to_string(),
        "--cafile".into(),
        certs.ca.display().to_string(),
        "--cert".into(),
        certs.client_cert.display().to_string(),
        "--key".into(),
        certs.client_key.display().to_string(),
    ];
    // Out through the bridge, and in from a client of the remote broker.
    RawClient::connect(addr(local_port), "pub").publish(
        "secure/out",
        b"m",
        QoS::AtLeastOnce,
        false,
        1,
    );
    local.wait_for("Received PUBACK from local.edge");
    let published = std::process::Command::new(env!("CARGO_BIN_EXE_rpub"))
        .args(&tls)
        .args(["-t", "secure/in", "-m", "in", "-q", "1"])
        .status()
        .expect("rpub");
    assert!(published.success());
    collect(&mut near, |seen| has(seen, "secure/in"));
    // The remote side holds no state message: notifications_local_only.
    let remote_state = std::process::Command::new(env!("CARGO_BIN_EXE_rsub"))
        .args(&tls)
        .args(["-t", "bridges/edge", "-C", "1", "-W", "1"])
        .output()
        .expect("rsub");
    // Connected, subscribed, and timed out without a message (mosquitto_sub's 27).
    assert_eq!(remote_state.status.code(), Some(27), "{remote_state:?}");
    assert!(remote_state.stdout.is_empty(), "{remote_state:?}");
}

/// A client that connects with the bridge's local client id takes its session;
/// the bridge says so, keeps running, and takes the session back at its next
/// connection, carrying messages again.
#[test]
fn a_client_taking_the_bridges_session_does_not_stop_the_bridge() {
    let dir = shared_dir();
    let (mut local, local_port, _remote, remote_port) =
        bridged_pair(dir.path(), "", "topic take/# out 1\n");
    let mut far = RawClient::connect(addr(remote_port), "far");
    far.subscribe(1, &[("take/#", QoS::AtLeastOnce)]);
    let intruder = RawClient::connect(addr(local_port), "local.edge");
    local.wait_for("a client connected as local.edge and took its session");
    local.wait_for("Received CONNACK on connection local.edge");
    drop(intruder);
    RawClient::connect(addr(local_port), "pub").publish("take/x", b"m", QoS::AtLeastOnce, false, 1);
    collect(&mut far, |seen| has(seen, "take/x"));
}

/// An MQTT 5 remote broker with Maximum QoS 1 and a Maximum Packet Size: a QoS 2
/// message goes at QoS 1, one too large is dropped and logged, and the next
/// still goes; 3,000 QoS 0 messages (more than the bridge's write buffer holds)
/// all arrive without waiting for a keep-alive.
#[test]
fn a_bridge_keeps_to_the_remote_limits_and_flushes_qos0_bursts() {
    let dir = shared_dir();
    let (mut local, local_port, _remote, remote_port) = bridged_pair(
        dir.path(),
        "max_qos 1\nmax_packet_size 300\n",
        "bridge_protocol_version mqttv50\ntopic lim/# out 2\n",
    );
    let mut far = RawClient::connect(addr(remote_port), "far");
    far.subscribe(1, &[("lim/#", QoS::ExactlyOnce)]);
    let mut publisher = RawClient::connect(addr(local_port), "pub");
    publisher.publish("lim/small", b"s", QoS::ExactlyOnce, false, 1);
    publisher.publish("lim/big", &[b'x'; 500], QoS::AtLeastOnce, false, 2);
    publisher.publish("lim/after", b"a", QoS::AtLeastOnce, false, 3);
    let seen = collect(&mut far, |seen| has(seen, "lim/after"));
    assert_eq!(
        topics(&seen),
        [("lim/small".to_string(), 1), ("lim/after".to_string(), 1)]
    );
    local.wait_for("Dropping too large outgoing PUBLISH for local.edge");
    for n in 0..3000u32 {
        publisher.publish(
            &format!("lim/burst/{n}"),
            &[b'b'; 100],
            QoS::AtMostOnce,
            false,
            0,
        );
    }
    let burst = collect(&mut far, |seen| seen.len() >= 3000);
    assert_eq!(burst.len(), 3000);
}

/// A stand-in for a remote broker that loses its session: it takes a QoS 2
/// message as far as PUBREC, drops the connection, and answers the bridge's
/// next CONNECT with Session Present 0, then sends a new message under the same
/// packet id. The local subscriber gets both.
#[test]
fn a_remote_that_lost_its_session_can_reuse_a_qos2_id() {
    use mqttkit::protocol::{ConnAck, PacketId, ReasonCode, SubAck, TopicName};
    let dir = shared_dir();
    let local_port = free_port();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let remote_port = listener.local_addr().expect("address").port();
    let lines = "notifications false\ntopic in/# in 2\n";
    let _local = broker(
        RBROKER,
        dir.path(),
        "local.conf",
        &bridge_conf(local_port, remote_port, lines),
    );
    let mut near = RawClient::connect(addr(local_port), "near");
    near.subscribe(1, &[("in/#", QoS::ExactlyOnce)]);
    let id = PacketId::new(7).expect("id");
    for payload in [&b"first"[..], b"second"] {
        let (stream, _) = listener.accept().expect("the bridge connects");
        let mut bridge = RawClient::accepted(stream);
        assert!(matches!(bridge.recv(), Packet::Connect(_)));
        bridge.send(&Packet::ConnAck(ConnAck::new(ReasonCode::Success, false)));
        let Packet::Subscribe(subscribe) = bridge.recv() else {
            panic!("expected SUBSCRIBE");
        };
        bridge.send(&Packet::SubAck(SubAck {
            packet_id: subscribe.packet_id,
            properties: Default::default(),
            codes: vec![ReasonCode::GrantedQoS2],
        }));
        bridge.send(&Packet::Publish(Publish {
            qos: QoS::ExactlyOnce,
            packet_id: Some(id),
            ..Publish::new(
                TopicName::new("in/x").expect("topic"),
                bytes::Bytes::from_static(payload),
            )
        }));
        assert!(matches!(bridge.recv(), Packet::PubRec(ack) if ack.packet_id == id));
        // The first time, the connection drops before PUBREL.
        if payload == b"second" {
            bridge.send(&Packet::PubRel(Ack::new(id)));
            assert!(matches!(bridge.recv(), Packet::PubComp(ack) if ack.packet_id == id));
        }
    }
    let seen = collect(&mut near, |seen| seen.len() >= 2);
    let payloads: Vec<&[u8]> = seen.iter().map(|p| &p.payload[..]).collect();
    assert_eq!(payloads, [&b"first"[..], b"second"]);
}
