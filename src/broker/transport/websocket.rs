//! WebSocket listeners: the HTTP upgrade (subprotocol `mqtt` or `mqttv3.1`, any
//! path), plain HTTP requests handed to [`http`](super::http) for `http_dir` and
//! the web console, and
//! [`WsTransport`], MQTT bytes carried in binary frames over any [`Transport`].
//!
//! Framing is tungstenite's, used without its blocking assumptions: its stream
//! reads and writes go to the inner transport's non-blocking calls, and a
//! `WouldBlock` from it means "wait for readiness". The HTTP request itself is
//! read here (httparse), so that one request can be an upgrade or a file.

use std::io::{self, Read, Write};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tungstenite::{Error as WsError, Message};

use super::http::{Body, Site};
use super::{Transport, readable, writable};

const EMPTY: Body = Body::Text("");

/// The largest HTTP request head read before it is refused.
pub const MAX_REQUEST_HEAD: usize = 16 * 1024;
/// Payload bytes put in one binary frame.
const FRAME_PAYLOAD: usize = 64 * 1024;
/// Frames queued for sending beyond which writes wait for the socket.
const MAX_UNSENT: usize = 1024 * 1024;

/// The subprotocols an MQTT client may ask for; the first offered is chosen.
const SUBPROTOCOLS: [&str; 2] = ["mqtt", "mqttv3.1"];

/// What the first request on a WebSocket listener turned out to be.
pub enum Request<T: Transport> {
    /// An accepted upgrade: MQTT runs over the returned transport.
    Upgraded(Box<WsTransport<T>>),
    /// A plain HTTP request that was answered; the connection is done.
    Answered,
}

/// Why a request was not upgraded, for the log.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("malformed HTTP request")]
    Malformed,
    #[error("HTTP request head larger than {MAX_REQUEST_HEAD} bytes")]
    TooLarge,
    #[error("WebSocket upgrade without the mqtt subprotocol")]
    NoSubprotocol,
    #[error("WebSocket upgrade without a valid key or version 13")]
    BadUpgrade,
}

/// Reads one HTTP request from `inner` and answers it: a WebSocket upgrade becomes
/// a [`WsTransport`]; any other request is answered by the listener's [`Site`]
/// (`http_dir`, the web console), or refused. The caller bounds how long this may take.
pub async fn accept<T: Transport>(
    inner: T,
    site: &Site,
    max_frame: usize,
) -> Result<Request<T>, HandshakeError> {
    let mut head = Vec::with_capacity(1024);
    let (head_len, request) = loop {
        readable(&inner).await?;
        let mut chunk = [0u8; 2048];
        match inner.try_read(&mut chunk) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(read) => head.extend_from_slice(&chunk[..read]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e.into()),
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut parsed = httparse::Request::new(&mut headers);
        match parsed.parse(&head) {
            Ok(httparse::Status::Complete(len)) => break (len, ParsedRequest::from(&parsed)),
            Ok(httparse::Status::Partial) if head.len() < MAX_REQUEST_HEAD => {}
            Ok(httparse::Status::Partial) => {
                respond(
                    &inner,
                    "431 Request Header Fields Too Large",
                    &[],
                    &EMPTY,
                    true,
                )
                .await?;
                return Err(HandshakeError::TooLarge);
            }
            Err(_) => {
                respond(&inner, "400 Bad Request", &[], &EMPTY, true).await?;
                return Err(HandshakeError::Malformed);
            }
        }
    };
    if !request.upgrade || request.method != "GET" {
        let (status, headers, body) = site.answer(&request.method, &request.path);
        respond(&inner, status, &headers, &body, request.method != "HEAD").await?;
        return Ok(Request::Answered);
    }
    let Some(subprotocol) = request.subprotocol else {
        respond(&inner, "400 Bad Request", &[], &EMPTY, true).await?;
        return Err(HandshakeError::NoSubprotocol);
    };
    let Some(key) = request.key.filter(|_| request.version_13) else {
        let headers = [("Sec-WebSocket-Version", "13".to_string())];
        respond(&inner, "426 Upgrade Required", &headers, &EMPTY, true).await?;
        return Err(HandshakeError::BadUpgrade);
    };
    let accept_key = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let reply = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept_key}\r\nSec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
    );
    write_all(&inner, reply.as_bytes()).await?;
    let early = head.split_off(head_len);
    let config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_UNSENT + FRAME_PAYLOAD + 64)
        .max_frame_size(Some(max_frame))
        .max_message_size(Some(max_frame));
    let socket = WebSocket::from_partially_read(Inner(inner), early, Role::Server, Some(config));
    Ok(Request::Upgraded(Box::new(WsTransport {
        state: Mutex::new(State {
            socket,
            unread: Vec::new(),
            taken: 0,
            drained: false,
            closed: false,
            unsent: false,
        }),
    })))
}

/// What the connection needs from the request head.
struct ParsedRequest {
    method: String,
    path: String,
    upgrade: bool,
    key: Option<String>,
    version_13: bool,
    /// The first `mqtt` or `mqttv3.1` the client offered, as it wrote it.
    subprotocol: Option<String>,
}

impl From<&httparse::Request<'_, '_>> for ParsedRequest {
    fn from(request: &httparse::Request<'_, '_>) -> Self {
        let header = |name: &str| {
            request
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name))
                .filter_map(|h| std::str::from_utf8(h.value).ok())
                .collect::<Vec<_>>()
        };
        let has_token = |name: &str, token: &str| {
            header(name).iter().any(|value| {
                value
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case(token))
            })
        };
        let offered: Vec<String> = header("Sec-WebSocket-Protocol")
            .iter()
            .flat_map(|value| value.split(','))
            .map(|p| p.trim().to_string())
            .collect();
        ParsedRequest {
            method: request.method.unwrap_or_default().to_string(),
            path: request.path.unwrap_or("/").to_string(),
            upgrade: has_token("Upgrade", "websocket") && has_token("Connection", "upgrade"),
            key: header("Sec-WebSocket-Key")
                .first()
                .map(|k| k.trim().to_string()),
            version_13: header("Sec-WebSocket-Version")
                .iter()
                .any(|v| v.trim() == "13"),
            subprotocol: offered.into_iter().find(|p| {
                SUBPROTOCOLS
                    .iter()
                    .any(|known| p.eq_ignore_ascii_case(known))
            }),
        }
    }
}

/// Writes an HTTP/1.1 response (the body only when `with_body`: not for HEAD)
/// and closes the sending direction. A file is streamed in chunks.
async fn respond<T: Transport>(
    inner: &T,
    status: &str,
    headers: &[(&str, String)],
    body: &Body,
    with_body: bool,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nServer: rbroker\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    write_all(inner, head.as_bytes()).await?;
    if with_body {
        match body {
            Body::Text(text) => write_all(inner, text.as_bytes()).await?,
            Body::File(path, len) => {
                // A regular file (checked): its reads do not block for long.
                let mut file = std::fs::File::open(path)?;
                let mut left = *len;
                let mut chunk = vec![0u8; 64 * 1024];
                while left > 0 {
                    let read = file.read(&mut chunk)?;
                    if read == 0 {
                        break;
                    }
                    let read = read.min(usize::try_from(left).unwrap_or(usize::MAX));
                    write_all(inner, &chunk[..read]).await?;
                    left -= read as u64;
                }
            }
        }
    }
    // Let the client read the answer before the socket closes: a close with its
    // request unread would reset the connection.
    inner.shutdown_write()?;
    let mut scratch = [0u8; 1024];
    let drain = async {
        loop {
            if readable(inner).await.is_err() {
                return;
            }
            match inner.try_read(&mut scratch) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    Ok(())
}

async fn write_all<T: Transport>(inner: &T, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        inner.flush_buffered()?;
        match inner.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(written) => data = &data[written..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => writable(inner).await?,
            Err(e) => return Err(e),
        }
    }
    while inner.wants_write() {
        writable(inner).await?;
        inner.flush_buffered()?;
    }
    Ok(())
}

/// The inner transport as the blocking-style stream tungstenite expects.
struct Inner<T>(T);

impl<T: Transport> Read for Inner<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl<T: Transport> Write for Inner<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.flush_buffered()?;
        if self.0.wants_write() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.0.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush_buffered()?;
        if self.0.wants_write() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(())
    }
}

struct State<T> {
    socket: WebSocket<Inner<T>>,
    /// Payload received but not yet read by the connection, from `taken` on.
    unread: Vec<u8>,
    taken: usize,
    /// Whether the last read from the socket found nothing more (readiness is then
    /// the socket's); until then, frames may be waiting in tungstenite's buffer.
    drained: bool,
    /// A close frame arrived, or the stream ended.
    closed: bool,
    /// Frames queued in tungstenite that the socket has not taken yet.
    unsent: bool,
}

/// MQTT over WebSocket frames on `T`.
pub struct WsTransport<T> {
    state: Mutex<State<T>>,
}

impl<T: Transport> WsTransport<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Maps a tungstenite error to what the connection understands.
fn io_error(error: WsError) -> io::Error {
    match error {
        WsError::Io(error) => error,
        // Writing after the peer's close frame: the peer has gone.
        WsError::ConnectionClosed
        | WsError::AlreadyClosed
        | WsError::Protocol(tungstenite::error::ProtocolError::SendAfterClosing) => {
            io::ErrorKind::ConnectionAborted.into()
        }
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

impl<T> State<T>
where
    T: Transport,
{
    /// Sends queued frames as far as the socket takes them.
    fn flush(&mut self) -> io::Result<()> {
        match self.socket.flush() {
            Ok(()) => self.unsent = false,
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => self.unsent = true,
            Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => self.unsent = false,
            Err(e) => return Err(io_error(e)),
        }
        Ok(())
    }
}

impl<T: Transport> Transport for WsTransport<T> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let state = self.lock();
        if state.taken < state.unread.len() || !state.drained || state.closed {
            return Poll::Ready(Ok(()));
        }
        state.socket.get_ref().0.poll_read_ready(cx)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.lock().socket.get_ref().0.poll_write_ready(cx)
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut state = self.lock();
        let mut filled = 0;
        if state.taken < state.unread.len() {
            let from = &state.unread[state.taken..];
            let n = from.len().min(buf.len());
            buf[..n].copy_from_slice(&from[..n]);
            state.taken += n;
            if state.taken == state.unread.len() {
                state.unread = Vec::new();
                state.taken = 0;
            }
            filled = n;
        }
        // Frames after that, until the buffer is full or nothing more has arrived.
        while filled < buf.len() && !state.closed {
            let message = state.socket.read();
            match message {
                Ok(Message::Binary(payload)) => {
                    let n = payload.len().min(buf.len() - filled);
                    buf[filled..filled + n].copy_from_slice(&payload[..n]);
                    filled += n;
                    if n < payload.len() {
                        state.unread = payload[n..].to_vec();
                        state.taken = 0;
                    }
                }
                // [MQTT-6.0.0-1]: MQTT travels in binary frames only; anything else
                // closes the connection.
                Ok(Message::Text(_)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "WebSocket text frame",
                    ));
                }
                Ok(Message::Close(_)) => state.closed = true,
                // Pings are answered by tungstenite, with the next flush.
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    state.drained = true;
                    break;
                }
                // A peer that closes the TCP connection without a close frame has
                // gone away, as a plain TCP client closing would have.
                Err(
                    WsError::ConnectionClosed
                    | WsError::AlreadyClosed
                    | WsError::Protocol(
                        tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                    ),
                ) => state.closed = true,
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    state.closed = true;
                }
                Err(e) => return Err(io_error(e)),
            }
            if filled == buf.len() {
                // Stopped with room gone, not because the socket ran dry.
                state.drained = false;
            }
        }
        // A pong or a close reply may be waiting.
        state.flush()?;
        if filled > 0 {
            return Ok(filled);
        }
        if state.closed {
            return Ok(0);
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.lock();
        if state.unsent {
            state.flush()?;
            if state.unsent {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        }
        let n = buf.len().min(FRAME_PAYLOAD);
        let frame = Message::Binary(bytes::Bytes::copy_from_slice(&buf[..n]));
        match state.socket.write(frame) {
            Ok(()) => {}
            // Queued; it goes when the socket is writable.
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(WsError::WriteBufferFull(_)) => return Err(io::ErrorKind::WouldBlock.into()),
            Err(e) => return Err(io_error(e)),
        }
        state.flush()?;
        Ok(n)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        let mut state = self.lock();
        match state.socket.close(None) {
            Ok(()) => {}
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {}
            Err(e) => return Err(io_error(e)),
        }
        state.flush()?;
        state.socket.get_ref().0.shutdown_write()
    }

    fn wants_write(&self) -> bool {
        let state = self.lock();
        state.unsent || state.socket.get_ref().0.wants_write()
    }

    fn set_frame_limit(&self, limit: usize) {
        self.lock().socket.set_config(|config| {
            config.max_frame_size = Some(limit);
            config.max_message_size = Some(limit);
        });
    }

    fn closes_in_band(&self) -> bool {
        true
    }

    fn flush_buffered(&self) -> io::Result<()> {
        self.lock().flush()
    }
}
