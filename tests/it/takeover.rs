//! A client that connects again while its old connection is still open takes the
//! session over. The old connection's will is published only when the takeover
//! ends the session, as mosquitto does: on 3.1.1 when either connection is clean,
//! on 5.0 when the old session had a session expiry of 0 or the new connection
//! starts clean. A takeover that resumes the session cancels the will, with or
//! without a will delay, exactly as a reconnect after the old connection closed does.

use std::time::{Duration, Instant};

use bytes::Bytes;
use mqttkit::protocol::{Connect, Properties, Property, ProtocolVersion, QoS, TopicName, Will};

use crate::support::RawClient;
use crate::support::target::{Target, on_both};
use crate::support::{WAIT, paho};

/// A CONNECT for `id`, with a will on `topic` when `will` is given (its delay).
fn connect(
    version: ProtocolVersion,
    id: &str,
    clean: bool,
    session_expiry: Option<u32>,
    will: Option<(&str, u32)>,
) -> Connect {
    let mut properties = Properties::new();
    if let Some(seconds) = session_expiry {
        properties.push(Property::SessionExpiryInterval(seconds));
    }
    Connect {
        version,
        clean_start: clean,
        properties,
        will: will.map(|(topic, delay)| {
            let mut properties = Properties::new();
            if delay > 0 {
                properties.push(Property::WillDelayInterval(delay));
            }
            Will {
                topic: TopicName::new(topic).expect("topic"),
                payload: Bytes::from_static(b"offline"),
                qos: QoS::AtLeastOnce,
                retain: false,
                properties,
            }
        }),
        ..Connect::new(id, 60)
    }
}

/// Waits until rbroker has released the connection that was taken over (its will
/// is decided by then); mosquitto does both in the step that answers the CONNECT.
fn old_connection_released(target: &Target, connected: u64) {
    let Target::Rbroker(broker) = target else {
        return;
    };
    let deadline = Instant::now() + WAIT;
    while broker.figures().clients_connected != connected {
        assert!(
            Instant::now() < deadline,
            "the old connection is still open"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// One takeover; returns whether the watcher saw the old connection's will.
fn will_on_takeover(
    target: &Target,
    watcher: &mut RawClient,
    case: &str,
    old: Connect,
    new: Connect,
) -> bool {
    let topic = format!("status/{case}");
    let _old = RawClient::connect_with(target.addr(), old);
    let mut new = RawClient::connect_with(target.addr(), new);
    old_connection_released(target, 2);
    new.publish(&topic, b"marker", QoS::AtLeastOnce, false, 1);
    let first = watcher.recv_publish();
    watcher.acknowledge(&first);
    assert_eq!(first.topic.as_str(), topic, "{case}");
    let will_seen = first.payload.as_ref() == b"offline";
    if will_seen {
        let marker = watcher.recv_publish();
        watcher.acknowledge(&marker);
        assert_eq!(marker.payload.as_ref(), b"marker", "{case}");
    }
    new.disconnect();
    will_seen
}

#[test]
fn a_takeover_publishes_the_will_only_when_the_session_ends_on_3_1_1() {
    on_both("takeover_will_3_1_1", "", |target| {
        let mut watcher = RawClient::connect(target.addr(), "takeover-watcher-3");
        watcher.subscribe(1, &[("status/#", QoS::AtLeastOnce)]);
        for old_clean in [false, true] {
            for new_clean in [false, true] {
                let case = format!("v3-old{}-new{}", u8::from(old_clean), u8::from(new_clean));
                let topic = format!("status/{case}");
                let v3 = ProtocolVersion::V3_1_1;
                let old = connect(v3, &case, old_clean, None, Some((&topic, 0)));
                let new = connect(v3, &case, new_clean, None, None);
                let seen = will_on_takeover(target, &mut watcher, &case, old, new);
                assert_eq!(seen, old_clean || new_clean, "{}: {case}", target.name());
            }
        }
    });
}

#[test]
fn a_takeover_publishes_the_will_only_when_the_session_ends_on_5_0() {
    on_both("takeover_will_5_0", "", |target| {
        let mut watcher = RawClient::connect(target.addr(), "takeover-watcher-5");
        watcher.subscribe(1, &[("status/#", QoS::AtLeastOnce)]);
        for old_expiry in [0, 300] {
            for new_expiry in [0, 300] {
                for new_clean in [false, true] {
                    for delay in [0, 60] {
                        let case = format!(
                            "v5-old{old_expiry}-new{new_expiry}-clean{}-delay{delay}",
                            u8::from(new_clean)
                        );
                        let topic = format!("status/{case}");
                        let v5 = ProtocolVersion::V5;
                        let old = connect(v5, &case, true, Some(old_expiry), Some((&topic, delay)));
                        let new = connect(v5, &case, new_clean, Some(new_expiry), None);
                        let seen = will_on_takeover(target, &mut watcher, &case, old, new);
                        // The takeover ends the session when the old one was not
                        // persistent or the new connection starts clean; a new
                        // expiry of 0 resumes it (Session Present) all the same.
                        let session_ends = old_expiry == 0 || new_clean;
                        // mosquitto 2.0.11 holds a delayed will even then; rbroker
                        // sends it, as the session is over (v5 §3.1.3.2.2).
                        let expected = session_ends && (delay == 0 || !target.is_mosquitto());
                        assert_eq!(seen, expected, "{}: {case}", target.name());
                    }
                }
            }
        }
    });
}

#[test]
fn paho_reconnect_over_a_connection_still_open_raises_no_false_will() {
    let Some(python) =
        paho::python("paho_reconnect_over_a_connection_still_open_raises_no_false_will")
    else {
        return;
    };
    on_both("paho_takeover", "", |target| {
        let (status, stdout) = paho::run_script(
            &python,
            "tests/it/paho_takeover.py",
            &[&target.port(), target.name()],
            Duration::from_secs(30),
        );
        assert!(status.success(), "{}: {stdout}", target.name());
        assert!(
            stdout.lines().any(|line| line == "ok no false will"),
            "{}: {stdout}",
            target.name()
        );
    });
}
