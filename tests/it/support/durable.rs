//! The clients of the crash test: an MQTT 3.1.1 publisher and subscriber that
//! outlive the broker they talk to. Each keeps its own side of the QoS 1/2 flows
//! across a broker restart, as a real client library does (the message it is
//! waiting to have acknowledged, the QoS 2 ids it has received and not yet
//! released), and records what it was acknowledged or delivered.

use std::collections::{HashMap, HashSet};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mqttkit::protocol::{
    Ack, Connect, Disconnect, FrameStatus, Packet, PacketId, ProtocolVersion, Publish, QoS,
    ReasonCode, Subscribe, SubscriptionOptions, TopicFilter, TopicName, check_frame,
};

/// One MQTT 3.1.1 connection whose errors are results, not test failures: the
/// broker behind it is killed on purpose.
pub struct Peer {
    stream: TcpStream,
    buffer: Vec<u8>,
}

fn id(value: u16) -> PacketId {
    PacketId::new(value).expect("non-zero packet id")
}

impl Peer {
    /// Connects with Clean Session 0; returns the peer and Session Present. Retries
    /// while the restarted broker is not accepting yet.
    pub fn connect(addr: SocketAddr, client_id: &str) -> std::io::Result<(Peer, bool)> {
        let deadline = Instant::now() + super::WAIT;
        let stream = loop {
            match TcpStream::connect(addr) {
                Ok(stream) => break stream,
                Err(error) if Instant::now() > deadline => return Err(error),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        stream.set_nodelay(true)?;
        let mut peer = Peer {
            stream,
            buffer: Vec::new(),
        };
        peer.send(&Packet::Connect(Box::new(Connect {
            clean_start: false,
            ..Connect::new(client_id, 60)
        })))?;
        match peer.recv(super::WAIT)? {
            Some(Packet::ConnAck(connack)) if !connack.code.is_error() => {
                Ok((peer, connack.session_present))
            }
            other => Err(std::io::Error::other(format!("no CONNACK: {other:?}"))),
        }
    }

    pub fn send(&mut self, packet: &Packet) -> std::io::Result<()> {
        let bytes = packet
            .to_bytes(ProtocolVersion::V3_1_1)
            .map_err(std::io::Error::other)?;
        self.stream.write_all(&bytes)
    }

    /// The next packet; `Ok(None)` when none came within `wait`; `Err` when the
    /// connection ended.
    pub fn recv(&mut self, wait: Duration) -> std::io::Result<Option<Packet>> {
        let deadline = Instant::now() + wait;
        loop {
            if let Ok(FrameStatus::Complete(header)) = check_frame(&self.buffer, usize::MAX) {
                let frame: Vec<u8> = self.buffer.drain(..header.frame_len()).collect();
                return Packet::decode(&frame, ProtocolVersion::V3_1_1)
                    .map(Some)
                    .map_err(std::io::Error::other);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            self.stream.set_read_timeout(Some(deadline - now))?;
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Ok(None);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// A message a publisher has sent and not yet seen acknowledged.
#[derive(Debug, Clone, Copy)]
struct Unacknowledged {
    sequence: u64,
    packet_id: u16,
    /// PUBREC came: the broker owns the message; PUBREL is what is left.
    released: bool,
}

/// Publishes `<name>:<sequence>` to `crash/<name>`, one message in flight, and
/// remembers which sequence numbers the broker acknowledged (PUBACK, or PUBREC for
/// QoS 2).
pub struct Publisher {
    pub name: String,
    pub qos: QoS,
    pub retain: bool,
    next: u64,
    waiting: Option<Unacknowledged>,
    pub acknowledged: Vec<u64>,
    /// A pause after each message, for a broker that acknowledges faster than
    /// its subscribers can be drained in a bounded test.
    pub pace: Duration,
}

impl Publisher {
    pub fn new(name: &str, qos: QoS, retain: bool) -> Self {
        Publisher {
            name: name.into(),
            qos,
            retain,
            next: 1,
            waiting: None,
            acknowledged: Vec::new(),
            pace: Duration::ZERO,
        }
    }

    /// `crash/NAME`, which every [`Subscriber`] takes; `live/NAME` for a name
    /// starting with `live`, which only a subscriber that asked for `live/#` does.
    pub fn topic(&self) -> String {
        let root = if self.name.starts_with("live") {
            "live"
        } else {
            "crash"
        };
        format!("{root}/{}", self.name)
    }

    fn publish(&self, sequence: u64, packet_id: u16, dup: bool) -> Packet {
        Packet::Publish(Publish {
            dup,
            qos: self.qos,
            retain: self.retain,
            packet_id: Some(id(packet_id)),
            ..Publish::new(
                TopicName::new(self.topic()).expect("topic"),
                Bytes::from(format!("{}:{sequence}", self.name)),
            )
        })
    }

    /// Publishes until `stop` is set (then finishes the message in flight and
    /// disconnects) or the broker goes away. A message left unacknowledged is sent
    /// again, with DUP and its packet id, after the next connect.
    pub fn run(&mut self, addr: SocketAddr, stop: &AtomicBool) {
        let Ok((mut peer, _)) = Peer::connect(addr, &format!("pub-{}", self.name)) else {
            return;
        };
        loop {
            let sending = match self.waiting {
                Some(waiting) if waiting.released => {
                    Packet::PubRel(Ack::new(id(waiting.packet_id)))
                }
                Some(waiting) => self.publish(waiting.sequence, waiting.packet_id, true),
                None => {
                    if !self.pace.is_zero() {
                        std::thread::sleep(self.pace);
                    }
                    if stop.load(Ordering::Relaxed) {
                        let _ =
                            peer.send(&Packet::Disconnect(Disconnect::new(ReasonCode::Success)));
                        return;
                    }
                    let sequence = self.next;
                    self.next += 1;
                    let packet_id = (sequence % 60000) as u16 + 1;
                    self.waiting = Some(Unacknowledged {
                        sequence,
                        packet_id,
                        released: false,
                    });
                    self.publish(sequence, packet_id, false)
                }
            };
            if peer.send(&sending).is_err() {
                return;
            }
            if self.await_answer(&mut peer).is_err() {
                return;
            }
        }
    }

    /// Reads until the step in flight moves on.
    fn await_answer(&mut self, peer: &mut Peer) -> std::io::Result<()> {
        let Some(mut waiting) = self.waiting else {
            return Ok(());
        };
        loop {
            let packet = peer
                .recv(super::WAIT)?
                .ok_or_else(|| std::io::Error::other("no acknowledgement"))?;
            match packet {
                Packet::PubAck(ack) if ack.packet_id.get() == waiting.packet_id => {
                    self.acknowledged.push(waiting.sequence);
                    self.waiting = None;
                    return Ok(());
                }
                Packet::PubRec(ack) if ack.packet_id.get() == waiting.packet_id => {
                    if !waiting.released {
                        self.acknowledged.push(waiting.sequence);
                    }
                    waiting.released = true;
                    self.waiting = Some(waiting);
                    peer.send(&Packet::PubRel(Ack::new(ack.packet_id)))?;
                }
                Packet::PubComp(ack) if ack.packet_id.get() == waiting.packet_id => {
                    self.waiting = None;
                    return Ok(());
                }
                other => return Err(std::io::Error::other(format!("unexpected {other:?}"))),
            }
        }
    }
}

/// A persistent subscriber to `crash/#` (and `live/#` if asked) at QoS 2,
/// counting each message delivered
/// to it by (publisher, sequence). It keeps the QoS 2 ids it received and has not
/// seen released across reconnects, so a message re-sent with DUP is delivered
/// once: exactly-once holds if the broker keeps its side too.
pub struct Subscriber {
    pub client_id: String,
    pub delivered: HashMap<(String, u64), u32>,
    unreleased: HashSet<u16>,
    /// Sessions the broker did not have on reconnect (Session Present 0).
    pub sessions_lost: u32,
    connected_before: bool,
    /// When the last packet arrived (or the last connect).
    last_heard: Instant,
    /// Also subscribes to `live/#`.
    pub live: bool,
}

impl Subscriber {
    pub fn new(client_id: &str) -> Self {
        Subscriber {
            client_id: client_id.into(),
            delivered: HashMap::new(),
            unreleased: HashSet::new(),
            sessions_lost: 0,
            connected_before: false,
            last_heard: Instant::now(),
            live: false,
        }
    }

    /// Connects (subscribing when the broker has no session for it) and reads
    /// until the broker goes away, or until `done` says it has everything.
    pub fn run(&mut self, addr: SocketAddr, done: &dyn Fn(&Subscriber) -> bool) {
        let Ok((mut peer, present)) = Peer::connect(addr, &self.client_id) else {
            return;
        };
        if !present {
            if self.connected_before {
                self.sessions_lost += 1;
            }
            let subscribe = Packet::Subscribe(Subscribe {
                packet_id: id(1),
                properties: Default::default(),
                filters: ["crash/#", "live/#"][..1 + usize::from(self.live)]
                    .iter()
                    .map(|filter| {
                        (
                            TopicFilter::new(*filter).expect("filter"),
                            SubscriptionOptions::new(QoS::ExactlyOnce),
                        )
                    })
                    .collect(),
                rejected: Vec::new(),
            });
            if peer.send(&subscribe).is_err() {
                return;
            }
            // SUBACK says the subscription is kept.
            loop {
                match peer.recv(super::WAIT) {
                    Ok(Some(Packet::SubAck(_))) => break,
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => return,
                }
            }
        }
        self.connected_before = true;
        self.last_heard = Instant::now();
        while !done(self) {
            let packet = match peer.recv(Duration::from_millis(200)) {
                Ok(Some(packet)) => {
                    self.last_heard = Instant::now();
                    packet
                }
                Ok(None) => continue,
                Err(_) => return,
            };
            let answer = match packet {
                Packet::Publish(publish) => {
                    let packet_id = publish.packet_id.expect("QoS 1/2");
                    let fresh =
                        publish.qos != QoS::ExactlyOnce || self.unreleased.insert(packet_id.get());
                    if fresh {
                        let text = String::from_utf8_lossy(&publish.payload).into_owned();
                        let (name, sequence) = text.split_once(':').expect("name:sequence");
                        *self
                            .delivered
                            .entry((name.to_string(), sequence.parse().expect("number")))
                            .or_default() += 1;
                    }
                    match publish.qos {
                        QoS::ExactlyOnce => Packet::PubRec(Ack::new(packet_id)),
                        _ => Packet::PubAck(Ack::new(packet_id)),
                    }
                }
                Packet::PubRel(ack) => {
                    self.unreleased.remove(&ack.packet_id.get());
                    Packet::PubComp(Ack::new(ack.packet_id))
                }
                Packet::SubAck(_) => continue,
                _ => return,
            };
            if peer.send(&answer).is_err() {
                return;
            }
        }
        let _ = peer.send(&Packet::Disconnect(Disconnect::new(ReasonCode::Success)));
    }

    /// How long since the broker last sent it anything.
    pub fn quiet_for(&self) -> Duration {
        self.last_heard.elapsed()
    }

    /// Whether it has connected once (its session exists).
    pub fn connected_before(&self) -> bool {
        self.connected_before
    }

    /// Whether every acknowledged message of `publisher` reached this subscriber.
    pub fn has_all(&self, publisher: &Publisher) -> bool {
        publisher.acknowledged.iter().all(|sequence| {
            self.delivered
                .contains_key(&(publisher.name.clone(), *sequence))
        })
    }
}

/// A shared stop flag.
pub fn flag() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(false))
}
