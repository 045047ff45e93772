//! MQTT over WebSockets for the clients: the HTTP upgrade asking for the `mqtt`
//! subprotocol, then [`WsStream`], which carries the MQTT byte stream in binary
//! frames and is read and written like any other stream (tokio's `AsyncRead` and
//! `AsyncWrite`), so the client engine and rbench's load client run over it
//! unchanged.
//!
//! Framing is tungstenite's; the upgrade is written here because it is a few
//! lines over an async stream, where tungstenite's own client handshake expects a
//! blocking one.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use base64::Engine;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tungstenite::{Error as WsError, Message};

use super::connection::Stream;

/// The most bytes of response head read during the upgrade.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// Payload bytes put in one binary frame.
const FRAME_PAYLOAD: usize = 64 * 1024;

/// Asks the server at `host` to upgrade `path` to a WebSocket with the `mqtt`
/// subprotocol, over `stream` (TCP or TLS).
pub async fn upgrade(
    mut stream: Box<dyn Stream>,
    host: &str,
    port: u16,
    path: &str,
) -> io::Result<WsStream> {
    let key = base64::engine::general_purpose::STANDARD.encode(uuid::Uuid::new_v4().as_bytes());
    let host_header = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    let refused = |why: String| io::Error::new(io::ErrorKind::ConnectionRefused, why);
    let mut head = Vec::with_capacity(512);
    let (head_len, status, accept, protocol) = loop {
        let mut chunk = [0u8; 1024];
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(refused(
                "the server closed the connection during the WebSocket upgrade".into(),
            ));
        }
        head.extend_from_slice(&chunk[..read]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&head) {
            Ok(httparse::Status::Complete(len)) => {
                let header = |name: &str| {
                    response
                        .headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .and_then(|h| std::str::from_utf8(h.value).ok())
                        .map(|v| v.trim().to_string())
                };
                break (
                    len,
                    response.code.unwrap_or(0),
                    header("Sec-WebSocket-Accept"),
                    header("Sec-WebSocket-Protocol"),
                );
            }
            Ok(httparse::Status::Partial) if head.len() < MAX_RESPONSE_HEAD => {}
            _ => {
                return Err(refused(
                    "malformed HTTP response to the WebSocket upgrade".into(),
                ));
            }
        }
    };
    if status != 101 {
        return Err(refused(format!(
            "the server answered the WebSocket upgrade with HTTP {status}"
        )));
    }
    if accept.as_deref() != Some(&tungstenite::handshake::derive_accept_key(key.as_bytes())) {
        return Err(refused(
            "wrong Sec-WebSocket-Accept in the upgrade response".into(),
        ));
    }
    if !protocol.is_some_and(|p| p.eq_ignore_ascii_case("mqtt")) {
        return Err(refused(
            "the server did not accept the mqtt subprotocol".into(),
        ));
    }
    let early = head.split_off(head_len);
    let config = WebSocketConfig::default()
        .read_buffer_size(64 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(4 * FRAME_PAYLOAD);
    let socket = WebSocket::from_partially_read(
        Bridge {
            stream,
            waker: Waker::noop().clone(),
        },
        early,
        Role::Client,
        Some(config),
    );
    Ok(WsStream {
        socket,
        unread: Vec::new(),
        taken: 0,
        closed: false,
    })
}

/// An async stream seen as a non-blocking `Read + Write`: `Pending` becomes
/// `WouldBlock`, with the waker of the poll in progress registered.
struct Bridge {
    stream: Box<dyn Stream>,
    waker: Waker,
}

impl Read for Bridge {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut cx = Context::from_waker(&self.waker);
        let mut buf = ReadBuf::new(buf);
        match Pin::new(&mut self.stream).poll_read(&mut cx, &mut buf) {
            Poll::Ready(Ok(())) => Ok(buf.filled().len()),
            Poll::Ready(Err(e)) => Err(e),
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for Bridge {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut cx = Context::from_waker(&self.waker);
        match Pin::new(&mut self.stream).poll_write(&mut cx, buf) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut cx = Context::from_waker(&self.waker);
        match Pin::new(&mut self.stream).poll_flush(&mut cx) {
            Poll::Ready(result) => result,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

/// The MQTT byte stream in WebSocket binary frames.
///
/// It keeps one waker, the last poll's: both directions must be polled from one
/// task (as the client engine and rbench's load client do, also through
/// `tokio::io::split`), or a wake-up for one could be lost to the other.
pub struct WsStream {
    socket: WebSocket<Bridge>,
    /// Payload received but not yet read, from `taken` on.
    unread: Vec<u8>,
    taken: usize,
    closed: bool,
}

impl WsStream {
    fn register(&mut self, cx: &Context<'_>) {
        let waker = &mut self.socket.get_mut().waker;
        if !waker.will_wake(cx.waker()) {
            *waker = cx.waker().clone();
        }
    }

    /// Sends queued frames: `Pending` while the socket does not take them.
    fn poll_send(&mut self) -> Poll<io::Result<()>> {
        match self.socket.flush() {
            Ok(()) => Poll::Ready(Ok(())),
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(io_error(e))),
        }
    }
}

fn io_error(error: WsError) -> io::Error {
    match error {
        WsError::Io(error) => error,
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            io::ErrorKind::ConnectionAborted.into()
        }
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

impl AsyncRead for WsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.register(cx);
        loop {
            if this.taken < this.unread.len() {
                let n = (this.unread.len() - this.taken).min(buf.remaining());
                buf.put_slice(&this.unread[this.taken..this.taken + n]);
                this.taken += n;
                return Poll::Ready(Ok(()));
            }
            if this.closed {
                return Poll::Ready(Ok(()));
            }
            match this.socket.read() {
                Ok(Message::Binary(payload)) => {
                    this.unread = payload.to_vec();
                    this.taken = 0;
                }
                Ok(Message::Text(_)) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "WebSocket text frame",
                    )));
                }
                Ok(Message::Close(_)) => this.closed = true,
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => {}
                Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Poll::Pending;
                }
                Err(
                    WsError::ConnectionClosed
                    | WsError::AlreadyClosed
                    | WsError::Protocol(
                        tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
                    ),
                ) => this.closed = true,
                Err(e) => return Poll::Ready(Err(io_error(e))),
            }
        }
    }
}

impl AsyncWrite for WsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.register(cx);
        let n = buf.len().min(FRAME_PAYLOAD);
        let frame = Message::Binary(bytes::Bytes::copy_from_slice(&buf[..n]));
        match this.socket.write(frame) {
            Ok(()) => {}
            // Queued: it goes with the next flush.
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(WsError::WriteBufferFull(_)) => {
                return match this.poll_send() {
                    Poll::Ready(Ok(())) => {
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                };
            }
            Err(e) => return Poll::Ready(Err(io_error(e))),
        }
        // Start sending now; what the socket does not take goes with the flush.
        if let Poll::Ready(Err(e)) = this.poll_send() {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.register(cx);
        this.poll_send()
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.register(cx);
        match this.socket.close(None) {
            Ok(()) => {}
            Err(WsError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return Poll::Pending,
            Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => {}
            Err(e) => return Poll::Ready(Err(io_error(e))),
        }
        match this.poll_send() {
            Poll::Ready(Ok(())) => Pin::new(&mut this.socket.get_mut().stream).poll_shutdown(cx),
            other => other,
        }
    }
}
