//! A hand-driven WebSocket client for bad-input tests: it writes the HTTP upgrade
//! and frames byte by byte (masked or not, fragmented, oversized), so each case
//! says exactly what went on the wire.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use mqttkit::protocol::{FrameStatus, Packet, ProtocolVersion, check_frame};

use super::WAIT;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;

/// The HTTP request of an upgrade offering `subprotocol` (none when `None`).
pub fn upgrade_request(subprotocol: Option<&str>) -> String {
    let protocol = subprotocol
        .map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n"))
        .unwrap_or_default();
    format!(
        "GET /any/path HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{protocol}\r\n"
    )
}

/// Sends `request` on a new connection and reads the response head.
pub fn http(addr: SocketAddr, request: &str) -> (TcpStream, String) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    stream.write_all(request.as_bytes()).expect("write request");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    (stream, String::from_utf8_lossy(&head).into_owned())
}

/// Reads until the peer closes (or resets); what arrived.
pub fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return all,
            Ok(n) => all.extend_from_slice(&chunk[..n]),
        }
    }
}

/// One frame as a client sends it: `masked` as the spec requires of clients.
pub fn frame(fin: bool, opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x12, 0x34, 0x56, 0x78];
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// A WebSocket connection past the upgrade, speaking MQTT 3.1.1.
pub struct WsClient {
    pub stream: TcpStream,
    /// MQTT bytes received, not yet taken as packets.
    mqtt: Vec<u8>,
    /// Frames received other than binary ones: (opcode, payload).
    pub control: Vec<(u8, Vec<u8>)>,
    raw: Vec<u8>,
}

impl WsClient {
    /// Upgrades a new connection with the `mqtt` subprotocol.
    pub fn open(addr: SocketAddr) -> WsClient {
        let (stream, head) = http(addr, &upgrade_request(Some("mqtt")));
        assert!(head.starts_with("HTTP/1.1 101"), "no upgrade: {head}");
        assert!(
            head.contains("Sec-WebSocket-Protocol: mqtt\r\n"),
            "subprotocol not echoed: {head}"
        );
        WsClient {
            stream,
            mqtt: Vec::new(),
            control: Vec::new(),
            raw: Vec::new(),
        }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write frame");
    }

    /// MQTT bytes in one masked binary frame.
    pub fn send_binary(&mut self, payload: &[u8]) {
        self.send_raw(&frame(true, OP_BINARY, payload, true));
    }

    /// Reads frames until a whole MQTT packet is there; `None` once the
    /// connection closed.
    pub fn recv(&mut self) -> Option<Packet> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(FrameStatus::Complete(header)) = check_frame(&self.mqtt, usize::MAX) {
                let bytes: Vec<u8> = self.mqtt.drain(..header.frame_len()).collect();
                return Some(Packet::decode(&bytes, ProtocolVersion::V3_1_1).expect("decodes"));
            }
            if !self.read_frame(deadline) {
                return None;
            }
        }
    }

    /// Reads one server frame into `mqtt` or `control`; false once closed.
    pub fn read_frame(&mut self, deadline: Instant) -> bool {
        loop {
            if let Some((opcode, payload, used)) = parse_server_frame(&self.raw) {
                self.raw.drain(..used);
                if opcode == OP_BINARY || opcode == OP_CONTINUATION {
                    self.mqtt.extend_from_slice(&payload);
                } else {
                    self.control.push((opcode, payload));
                }
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no frame from the broker in time");
            self.stream
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .expect("timeout");
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return false,
                Ok(n) => self.raw.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Whether the broker closes the connection (after whatever it sends).
    pub fn is_closed_by_broker(&mut self) -> bool {
        let deadline = Instant::now() + WAIT;
        loop {
            if Instant::now() >= deadline {
                return false;
            }
            if !self.read_frame(deadline) {
                return true;
            }
        }
    }
}

/// A frame from the server: never masked. (opcode, payload, bytes used).
fn parse_server_frame(data: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let first = *data.first()?;
    let second = *data.get(1)?;
    assert_eq!(second & 0x80, 0, "the server masked a frame");
    let (len, at) = match second & 0x7F {
        126 => (
            usize::from(u16::from_be_bytes([*data.get(2)?, *data.get(3)?])),
            4,
        ),
        127 => (
            u64::from_be_bytes(data.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (usize::from(n), 2),
    };
    let payload = data.get(at..at + len)?.to_vec();
    Some((first & 0x0F, payload, at + len))
}
