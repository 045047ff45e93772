//! [`Transport`]: the byte stream a connection runs over: TCP and unix sockets
//! here, TLS over TCP ([`tls`]), WebSockets over either ([`websocket`]).
//!
//! Connections use readiness-based I/O (wait until readable, then read what is
//! there without blocking), which lets one read fetch many packets and one write
//! flush everything queued for a client. Readiness is polled, so the waiting task's
//! waker lives with the socket rather than in a future inside every connection
//! task. A layer (TLS, WebSocket framing) wraps the transport below it, keeps its
//! own bytes to send, and says so through [`Transport::wants_write`]; the connection
//! code is the same for every transport.

use std::io;
use std::task::{Context, Poll};

use tokio::net::{TcpStream, UnixStream};

pub mod http;
pub mod tls;
pub mod websocket;

pub trait Transport: Send + Sync + 'static {
    /// Ready when a read may make progress; otherwise registers `cx` for a wake-up.
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Ready when a write may make progress; otherwise registers `cx` for a wake-up.
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Reads what is available; `WouldBlock` when nothing is, `Ok(0)` at end of stream.
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes what the stream accepts now; `WouldBlock` when it accepts nothing.
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
    /// Closes the sending direction, so the peer reads what was sent, then the end.
    fn shutdown_write(&self) -> io::Result<()>;
    /// Whether the transport holds bytes of its own to send (TLS records, WebSocket
    /// frames, a pong) that wait for the socket to be writable.
    fn wants_write(&self) -> bool {
        false
    }
    /// Sends what [`wants_write`](Transport::wants_write) holds, as far as the
    /// socket takes it now.
    fn flush_buffered(&self) -> io::Result<()> {
        Ok(())
    }
    /// Once CONNECT is accepted: the largest frame a framing layer may take now
    /// (until then it takes what the first packet may be).
    fn set_frame_limit(&self, _limit: usize) {}
    /// Whether closing should say so inside the stream (TLS close_notify, a
    /// WebSocket close frame) rather than only close the socket.
    fn closes_in_band(&self) -> bool {
        false
    }
    /// Whether an idle connection on this transport may park: hand its socket
    /// to the broker's epoll set and end its task (`connection/park.rs`).
    /// Only a plain TCP socket can; a layer keeps state in user space.
    fn parkable(&self) -> bool {
        false
    }
    /// The socket, out of tokio's reactor, for parking; an error if this
    /// transport cannot park.
    fn into_parked(self) -> io::Result<std::net::TcpStream>
    where
        Self: Sized,
    {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

impl Transport for Box<dyn Transport> {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        (**self).poll_read_ready(cx)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        (**self).poll_write_ready(cx)
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        (**self).try_read(buf)
    }

    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        (**self).try_write(buf)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        (**self).shutdown_write()
    }

    fn wants_write(&self) -> bool {
        (**self).wants_write()
    }

    fn flush_buffered(&self) -> io::Result<()> {
        (**self).flush_buffered()
    }

    fn set_frame_limit(&self, limit: usize) {
        (**self).set_frame_limit(limit)
    }

    fn closes_in_band(&self) -> bool {
        (**self).closes_in_band()
    }
}

impl Transport for UnixStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        UnixStream::poll_read_ready(self, cx)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        UnixStream::poll_write_ready(self, cx)
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        UnixStream::try_read(self, buf)
    }

    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        UnixStream::try_write(self, buf)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        socket2::SockRef::from(self).shutdown(std::net::Shutdown::Write)
    }
}

/// A transport as `std::io::Read + Write` that never blocks (`WouldBlock`
/// instead), for the layers whose libraries (rustls, tungstenite) work on those
/// traits.
pub struct NonBlocking<'a, T: ?Sized>(pub &'a T);

impl<T: Transport + ?Sized> io::Read for NonBlocking<'_, T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl<T: Transport + ?Sized> io::Write for NonBlocking<'_, T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Waits until `transport` is readable.
pub async fn readable<T: Transport + ?Sized>(transport: &T) -> io::Result<()> {
    std::future::poll_fn(|cx| transport.poll_read_ready(cx)).await
}

/// Waits until `transport` is writable.
pub async fn writable<T: Transport + ?Sized>(transport: &T) -> io::Result<()> {
    std::future::poll_fn(|cx| transport.poll_write_ready(cx)).await
}

impl Transport for TcpStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TcpStream::poll_read_ready(self, cx)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        TcpStream::poll_write_ready(self, cx)
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        TcpStream::try_read(self, buf)
    }

    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        TcpStream::try_write(self, buf)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        socket2::SockRef::from(self).shutdown(std::net::Shutdown::Write)
    }

    fn parkable(&self) -> bool {
        true
    }

    fn into_parked(self) -> io::Result<std::net::TcpStream> {
        self.into_std()
    }
}
