//! [`Transport`]: the byte stream a connection runs over.
//!
//! Connections use readiness-based I/O (wait until readable, then read what is
//! there without blocking), which lets one read fetch many packets and one write
//! flush everything queued for a client. A TLS, WebSocket or unix-socket listener
//! adds an implementation of this trait and an accept loop; the connection code
//! stays the same.

use std::future::Future;
use std::io;

use tokio::net::TcpStream;

pub trait Transport: Send + Sync + 'static {
    /// Completes when a read may make progress.
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Completes when a write may make progress.
    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send;
    /// Reads what is available; `WouldBlock` when nothing is, `Ok(0)` at end of stream.
    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes what the stream accepts now; `WouldBlock` when it accepts nothing.
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
}

impl Transport for TcpStream {
    fn readable(&self) -> impl Future<Output = io::Result<()>> + Send {
        TcpStream::readable(self)
    }

    fn writable(&self) -> impl Future<Output = io::Result<()>> + Send {
        TcpStream::writable(self)
    }

    fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        TcpStream::try_read(self, buf)
    }

    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        TcpStream::try_write(self, buf)
    }
}
