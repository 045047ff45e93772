//! [`Dialer`]: opens the byte stream to a broker, for rsub, rpub and rbench alike:
//! TCP (optionally from a bound local address), TLS over TCP with rustls, a unix
//! socket, or WebSockets over TCP or TLS (`ws://`, `wss://`).
//!
//! TCP_NODELAY is always on: the connection writes whole batches of packets
//! itself, so Nagle's algorithm would only add latency. `--nodelay` is accepted
//! for compatibility and changes nothing.
//!
//! rbench's connections to a loopback broker come from 127.0.0.1 to 127.0.0.8 in
//! turn (Linux answers on all of 127/8): see [`Dialer::dial_address`].

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::net::{TcpSocket, TcpStream};

use super::connection::Stream;

/// Where the broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Tcp {
        host: String,
        port: u16,
    },
    Unix(PathBuf),
    /// MQTT in WebSocket frames, upgrading the HTTP request for `path`; over TLS
    /// when the dialer has a TLS configuration.
    WebSocket {
        host: String,
        port: u16,
        path: String,
    },
}

/// Why no stream could be opened.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The host name did not resolve.
    #[error("lookup error")]
    Lookup,
    #[error("{0}")]
    Io(io::Error),
    /// The TLS handshake failed.
    #[error("TLS: {0}")]
    Tls(io::Error),
}

/// How to reach the broker; dial again after a lost connection.
#[derive(Clone)]
pub struct Dialer {
    pub endpoint: Endpoint,
    /// `-A`: the local address to connect from.
    pub bind_address: Option<String>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Dialer {
    pub async fn dial(&self) -> Result<Box<dyn Stream>, DialError> {
        match &self.endpoint {
            Endpoint::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(DialError::Io)?;
                Ok(Box::new(stream))
            }
            Endpoint::Tcp { host, port } => {
                let tcp = self.connect_tcp(host, *port).await?;
                match &self.tls {
                    None => Ok(Box::new(tcp)),
                    Some(config) => with_tls(tcp, config, host).await,
                }
            }
            Endpoint::WebSocket { host, port, path } => {
                let tcp = self.connect_tcp(host, *port).await?;
                let stream: Box<dyn Stream> = match &self.tls {
                    None => Box::new(tcp),
                    Some(config) => with_tls(tcp, config, host).await?,
                };
                with_websocket(stream, host, *port, path).await
            }
        }
    }

    /// A stream to one resolved `address` (rbench resolves its brokers once), over
    /// TLS verified against `server_name` when `tls` is set. To a loopback
    /// broker, successive calls connect from successive source addresses
    /// (127.0.0.1 to 127.0.0.8 in turn, on Linux).
    /// With `websocket`, MQTT goes in WebSocket frames, upgrading that path.
    pub async fn dial_address(
        address: SocketAddr,
        tls: Option<(&Arc<rustls::ClientConfig>, &str)>,
        websocket: Option<&str>,
    ) -> Result<Box<dyn Stream>, DialError> {
        let tcp = connect_spread(address).await.map_err(DialError::Io)?;
        tcp.set_nodelay(true).map_err(DialError::Io)?;
        let (stream, host): (Box<dyn Stream>, String) = match tls {
            None => (Box::new(tcp), address.ip().to_string()),
            Some((config, server_name)) => (
                with_tls(tcp, config, server_name).await?,
                server_name.to_string(),
            ),
        };
        match websocket {
            None => Ok(stream),
            Some(path) => with_websocket(stream, &host, address.port(), path).await,
        }
    }

    async fn connect_tcp(&self, host: &str, port: u16) -> Result<TcpStream, DialError> {
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| DialError::Lookup)?
            .collect();
        let local = match &self.bind_address {
            Some(bind) => Some(
                tokio::net::lookup_host((bind.as_str(), 0))
                    .await
                    .map_err(|_| DialError::Lookup)?
                    .next()
                    .ok_or(DialError::Lookup)?,
            ),
            None => None,
        };
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for address in addresses {
            let socket = if address.is_ipv4() {
                TcpSocket::new_v4()
            } else {
                TcpSocket::new_v6()
            }
            .map_err(DialError::Io)?;
            if let Some(local) = local.filter(|l| l.is_ipv4() == address.is_ipv4()) {
                socket.bind(local).map_err(DialError::Io)?;
            }
            match socket.connect(address).await {
                Ok(stream) => {
                    stream.set_nodelay(true).map_err(DialError::Io)?;
                    return Ok(stream);
                }
                Err(error) => last = error,
            }
        }
        Err(DialError::Io(last))
    }
}

/// Source addresses a load generator's loopback connections take in turn.
const LOOPBACK_SOURCES: u8 = 8;

/// Connects to `address`; to an IPv4 loopback address on Linux, from
/// 127.0.0.1 to 127.0.0.[`LOOPBACK_SOURCES`] in turn.
///
/// From one source address, all connections to one broker port share one
/// range of ephemeral ports: beyond about 28,000 there is none left, and long
/// before that the kernel's search for a free one (`__inet_hash_connect`) took
/// half of rbench's CPU and made connect p99 30 ms at 15,000 clients. Eight
/// sources make the search short and the limit eight times higher. The source
/// port is picked at connect time (`IP_BIND_ADDRESS_NO_PORT`), from the whole
/// four-tuple. A source that cannot be bound falls back to a plain connect.
async fn connect_spread(address: SocketAddr) -> io::Result<TcpStream> {
    #[cfg(target_os = "linux")]
    if let SocketAddr::V4(v4) = address
        && v4.ip().is_loopback()
    {
        use std::os::fd::AsRawFd;
        use std::sync::atomic::{AtomicU8, Ordering};
        static NEXT: AtomicU8 = AtomicU8::new(0);
        let source = NEXT.fetch_add(1, Ordering::Relaxed) % LOOPBACK_SOURCES + 1;
        let socket = TcpSocket::new_v4()?;
        let enable: libc::c_int = 1;
        // SAFETY: setting an integer option on a socket this function owns,
        // from a value that outlives the call.
        unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&raw const enable).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
        if socket
            .bind(SocketAddr::from(([127, 0, 0, source], 0)))
            .is_ok()
        {
            return socket.connect(address).await;
        }
    }
    TcpStream::connect(address).await
}

/// The TLS handshake over `tcp`, verifying the broker as `server_name`.
async fn with_tls(
    tcp: TcpStream,
    config: &Arc<rustls::ClientConfig>,
    server_name: &str,
) -> Result<Box<dyn Stream>, DialError> {
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| DialError::Tls(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
    let tls = connector.connect(name, tcp).await.map_err(DialError::Tls)?;
    Ok(Box::new(tls))
}

/// The WebSocket upgrade over `stream`.
async fn with_websocket(
    stream: Box<dyn Stream>,
    host: &str,
    port: u16,
    path: &str,
) -> Result<Box<dyn Stream>, DialError> {
    let ws = super::websocket::upgrade(stream, host, port, path)
        .await
        .map_err(DialError::Io)?;
    Ok(Box::new(ws))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn loopback_connections_come_from_addresses_in_turn() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("listener");
            let address = listener.local_addr().expect("address");
            let mut sources = std::collections::HashSet::new();
            let mut streams = Vec::new();
            // Other tests may dial meanwhile and take turns too: twice round
            // shows the spreading whatever they take.
            for _ in 0..2 * LOOPBACK_SOURCES {
                streams.push(connect_spread(address).await.expect("connect"));
                let (_, peer) = listener.accept().await.expect("accept");
                assert!(peer.ip().is_loopback(), "{peer}");
                sources.insert(peer.ip());
            }
            assert!(
                sources.len() > 1,
                "connections from more than one address: {sources:?}"
            );
        });
    }
}
