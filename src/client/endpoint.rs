//! [`Dialer`]: opens the byte stream to a broker, for rsub, rpub and rbench alike:
//! TCP (optionally from a bound local address), TLS over TCP with rustls, a unix
//! socket, or WebSockets over TCP or TLS (`ws://`, `wss://`).
//!
//! TCP_NODELAY is always on: the connection writes whole batches of packets
//! itself, so Nagle's algorithm would only add latency. `--nodelay` is accepted
//! for compatibility and changes nothing.

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
    /// TLS verified against `server_name` when `tls` is set.
    /// With `websocket`, MQTT goes in WebSocket frames, upgrading that path.
    pub async fn dial_address(
        address: SocketAddr,
        tls: Option<(&Arc<rustls::ClientConfig>, &str)>,
        websocket: Option<&str>,
    ) -> Result<Box<dyn Stream>, DialError> {
        let tcp = TcpStream::connect(address).await.map_err(DialError::Io)?;
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
