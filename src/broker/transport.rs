//! [`Transport`]: the byte stream a connection runs over.
//!
//! Connections use readiness-based I/O (wait until readable, then read what is
//! there without blocking), which lets one read fetch many packets and one write
//! flush everything queued for a client. Readiness is polled, so the waiting task's
//! waker lives with the socket rather than in a future inside every connection task. A TLS, WebSocket or unix-socket listener
//! adds an implementation of this trait and an accept loop; the connection code
//! stays the same.

use std::io;
use std::task::{Context, Poll};

use tokio::net::TcpStream;

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
}
