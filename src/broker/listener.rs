//! Listening sockets: binding as mosquitto 2.0 does (TCP and unix sockets), and
//! the accept loop that hands each socket to a connection task, after the TLS and
//! WebSocket handshakes its listener asks for.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use std::path::{Path, PathBuf};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::config::{Config, ListenerConfig, ListenerProtocol};
use super::connection::{self, OpenSocket};
use super::log::{Logger, PeerAddress};
use super::router::Router;
use super::transport::Transport;
use super::transport::http::Site;
use super::transport::tls::TlsTransport;
use super::transport::websocket::{self, WsTransport};

/// Pending connections the kernel may hold for each listener.
const BACKLOG: i32 = 1024;

/// Binds one TCP listener; IPv6 sockets are IPv6-only so `0.0.0.0` and `::` can
/// share a port, as mosquitto's two sockets do.
pub fn bind_tcp(address: SocketAddr) -> io::Result<TcpListener> {
    let domain = Domain::for_address(address);
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

/// An address to bind, with the index of the configured listener it serves (`None`
/// for the default listener and for addresses bound directly).
pub type ListenAddress = (SocketAddr, Option<usize>);

/// A listening socket.
pub enum ListenSocket {
    Tcp(TcpListener),
    /// A unix socket, and the file it was bound at (removed when it closes).
    Unix(UnixListener, UnixSocketFile),
}

/// The file of a unix socket listener; removed when the listener is dropped, as
/// mosquitto removes it at exit.
pub struct UnixSocketFile(pub PathBuf);

impl Drop for UnixSocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A bound socket, with the configured listener it serves and that listener's
/// TLS configuration.
pub struct BoundListener {
    pub socket: ListenSocket,
    pub index: Option<usize>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl BoundListener {
    pub fn tcp(socket: TcpListener, index: Option<usize>) -> BoundListener {
        BoundListener {
            socket: ListenSocket::Tcp(socket),
            index,
            tls: None,
        }
    }

    /// The TCP address bound; `None` for a unix socket.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match &self.socket {
            ListenSocket::Tcp(socket) => socket.local_addr().ok(),
            ListenSocket::Unix(..) => None,
        }
    }
}

/// Binds a unix socket listener at `path`, replacing a stale socket file (never
/// another kind of file), with mode 0770 as mosquitto leaves it.
pub fn bind_unix(path: &Path) -> io::Result<(UnixListener, UnixSocketFile)> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(metadata) = std::fs::symlink_metadata(path) {
        if !metadata.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    let file = UnixSocketFile(path.to_path_buf());
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o770))?;
    Ok((listener, file))
}

/// The TLS configuration of every configured listener that serves TLS (and of the
/// default listener, `None`), loaded from its files. An error names the option's
/// `file:line`.
pub fn tls_configs(
    config: &Config,
) -> io::Result<std::collections::HashMap<Option<usize>, Arc<rustls::ServerConfig>>> {
    let mut configs = std::collections::HashMap::new();
    let listeners = config
        .listeners
        .iter()
        .enumerate()
        .map(|(i, l)| (Some(i), l));
    for (index, listener) in listeners.chain(config.default_listener.iter().map(|l| (None, l))) {
        let transport = &listener.transport;
        if transport.tls.enabled() {
            let tls = super::transport::tls::server_config(&transport.tls, transport.protocol)
                .map_err(|reason| io::Error::new(io::ErrorKind::InvalidInput, reason))?;
            configs.insert(index, tls);
        }
    }
    Ok(configs)
}

/// Binds every unix socket listener of `config`.
pub fn bind_unix_listeners(config: &Config, log: &Logger) -> io::Result<Vec<BoundListener>> {
    let mut bound = Vec::new();
    for (index, listener) in config.listeners.iter().enumerate() {
        if let Some(path) = &listener.transport.unix_path {
            log.notice(format_args!(
                "Opening unix listen socket on path {}.",
                path.display()
            ));
            let (socket, file) = bind_unix(path).map_err(|error| {
                io::Error::new(
                    error.kind(),
                    format!(
                        "Unable to listen on unix socket {}: {error}.",
                        path.display()
                    ),
                )
            })?;
            bound.push(BoundListener {
                socket: ListenSocket::Unix(socket, file),
                index: Some(index),
                tls: None,
            });
        }
    }
    Ok(bound)
}

/// The addresses to bind: each configured listener (every interface when it names
/// no address), then the default listener of `port`/`bind_address`, or, with none
/// configured, loopback on `ports`.
pub async fn addresses(
    config: &Config,
    ports: &[u16],
    log: &Logger,
) -> io::Result<Vec<ListenAddress>> {
    if !config.has_listeners() {
        return Ok(ports
            .iter()
            .flat_map(|port| Config::local_only_addresses(*port))
            .map(|address| (address, None))
            .collect());
    }
    let mut addresses = Vec::new();
    let configured = config
        .listeners
        .iter()
        .enumerate()
        .map(|(i, l)| (Some(i), l));
    for (
        listener,
        ListenerConfig {
            port,
            bind_address,
            ipv6_only,
            bind_interface,
            transport,
            ..
        },
    ) in configured.chain(config.default_listener.iter().map(|l| (None, l)))
    {
        if transport.unix_path.is_some() {
            continue;
        }
        // socket_domain: only the addresses of that family.
        let wanted = |address: &SocketAddr| ipv6_only.is_none_or(|v6| address.is_ipv6() == v6);
        let before = addresses.len();
        match bind_address {
            None => {
                let any_v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), *port);
                let any_v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), *port);
                addresses.extend(
                    [any_v4, any_v6]
                        .into_iter()
                        .filter(wanted)
                        .map(|address| (address, listener)),
                );
            }
            Some(host) => addresses.extend(
                tokio::net::lookup_host((host.as_str(), *port))
                    .await?
                    .filter(wanted)
                    .map(|address| (address, listener)),
            ),
        }
        if let Some(interface) = bind_interface {
            let mut these = addresses.split_off(before);
            on_interface(interface, &mut these, bind_address.is_some(), log)?;
            // What the interface cannot serve is skipped (with mosquitto's warnings).
            addresses.extend(these.into_iter().filter(|(a, _)| !a.ip().is_unspecified()));
        }
        // A listener left with nothing to bind stops startup, as in mosquitto.
        if addresses.len() == before {
            let reason = match bind_interface {
                Some(interface) => {
                    format!("Interface {interface} has no address for the listener on port {port}.")
                }
                None => format!(
                    "Error creating listener on port {port}: Address family for hostname not supported."
                ),
            };
            return Err(io::Error::new(io::ErrorKind::InvalidInput, reason));
        }
    }
    Ok(addresses)
}

/// `bind_interface`: each address becomes the interface's address of its family,
/// as mosquitto does (by address, since binding to a device needs privileges). A
/// family the interface lacks (every family, when no interface has that name), and
/// an address the listener names that is not the interface's, are left
/// unspecified, to be skipped, with mosquitto's warnings.
fn on_interface(
    interface: &str,
    addresses: &mut [ListenAddress],
    named_address: bool,
    log: &Logger,
) -> io::Result<()> {
    let owned = interface_addresses(interface)?;
    let unspecified = |address: &SocketAddr| {
        if address.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        }
    };
    for (address, _) in addresses.iter_mut() {
        let same_family = owned
            .iter()
            .find(|ip| ip.is_ipv4() == address.is_ipv4())
            .copied();
        match same_family {
            // As mosquitto 2.0.11: a warning, and that address is not bound.
            Some(_) if named_address && !owned.contains(&address.ip()) => {
                log.warning(format_args!(
                    "Warning: Interface address for {interface} does not match specified listener address ({}).",
                    address.ip()
                ));
                address.set_ip(unspecified(address));
            }
            // The listener's own address, which the interface has.
            Some(_) if named_address => {}
            Some(ip) => address.set_ip(ip),
            None => {
                let family = if address.is_ipv4() { "IPv4" } else { "IPv6" };
                log.warning(format_args!(
                    "Warning: Interface {interface} does not support {family} configuration."
                ));
                address.set_ip(unspecified(address));
            }
        }
    }
    Ok(())
}

/// The addresses of the network interface `name` (compared ignoring case, as
/// mosquitto does); none when no interface has that name.
fn interface_addresses(name: &str) -> io::Result<Vec<IpAddr>> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list freed below.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let mut addresses = Vec::new();
    let mut entry = list;
    while !entry.is_null() {
        // SAFETY: `entry` is a node of the list getifaddrs returned, not yet freed.
        let node = unsafe { &*entry };
        entry = node.ifa_next;
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let entry_name = unsafe { std::ffi::CStr::from_ptr(node.ifa_name) };
        if !entry_name.to_string_lossy().eq_ignore_ascii_case(name) {
            continue;
        }
        if node.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_addr points to a sockaddr whose family says its real type.
        let family = i32::from(unsafe { (*node.ifa_addr).sa_family });
        if family == libc::AF_INET {
            // SAFETY: an AF_INET address is a sockaddr_in.
            let v4 = unsafe { &*(node.ifa_addr as *const libc::sockaddr_in) };
            addresses.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr))));
        } else if family == libc::AF_INET6 {
            // SAFETY: an AF_INET6 address is a sockaddr_in6.
            let v6 = unsafe { &*(node.ifa_addr as *const libc::sockaddr_in6) };
            addresses.push(IpAddr::V6(Ipv6Addr::from(v6.sin6_addr.s6_addr)));
        }
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    Ok(addresses)
}

/// Logs where each configured listener with `web_console true` serves the console,
/// once per listener (not per socket).
pub fn announce_consoles(config: &Config, listeners: &[BoundListener], log: &Logger) {
    let mut announced = Vec::new();
    for bound in listeners {
        // `None`: the default listener (`port` before any `listener`).
        let index = bound.index;
        if !config.listener_transport(index).web_console || announced.contains(&index) {
            continue;
        }
        let Some(address) = bound.local_addr() else {
            continue;
        };
        announced.push(index);
        let scheme = if bound.tls.is_some() { "https" } else { "http" };
        let host = match address.ip() {
            ip if ip.is_unspecified() || ip.is_loopback() => "localhost".to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        log.notice(format_args!(
            "Web console on port {}: open {scheme}://{host}:{}{} in a browser.",
            address.port(),
            address.port(),
            super::console::PATH
        ));
    }
}

/// Binds every address, logging mosquitto's "Opening ..." lines (`websockets`:
/// whether a listener speaks WebSockets). An IPv6 address
/// that cannot be bound (no IPv6 on the host) is skipped with a warning as long as
/// something else was bound.
pub fn bind_all(
    addresses: &[ListenAddress],
    websockets: &dyn Fn(Option<usize>) -> bool,
    log: &Logger,
) -> io::Result<Vec<BoundListener>> {
    let mut listeners = Vec::new();
    let mut skipped = None;
    let mut websockets_announced = Vec::new();
    for (address, listener) in addresses {
        // mosquitto names a WebSocket listener once, whatever it binds.
        if websockets(*listener) {
            if !websockets_announced.contains(listener) {
                websockets_announced.push(*listener);
                log.notice(format_args!(
                    "Opening websockets listen socket on port {}.",
                    address.port()
                ));
            }
        } else {
            let family = if address.is_ipv4() { "ipv4" } else { "ipv6" };
            log.notice(format_args!(
                "Opening {family} listen socket on port {}.",
                address.port()
            ));
        }
        match bind_tcp(*address) {
            Ok(socket) => listeners.push(BoundListener::tcp(socket, *listener)),
            Err(error) if address.is_ipv6() && error.kind() != io::ErrorKind::AddrInUse => {
                log.warning(format_args!("Warning: {error} ({address})"));
                skipped = Some(error);
            }
            Err(error) => return Err(error),
        }
    }
    if listeners.is_empty() {
        return Err(skipped.unwrap_or_else(|| io::Error::other("no listener configured")));
    }
    Ok(listeners)
}

/// Descriptors the table is grown to at most, up front (see
/// [`reserve_descriptor_table`]).
const RESERVED_DESCRIPTORS: u64 = 65_536;

/// Grows the process's descriptor table once, before any client connects, to
/// the descriptor limit (at most 65,536).
///
/// The kernel doubles the table as descriptors are opened (at 256, 512, 1024,
/// ...), and in a multi-threaded process each doubling waits for an RCU grace
/// period (`synchronize_rcu` in `expand_fdtable`): `accept4` took 4 to 11 ms
/// at each step, during which no client was accepted, and that was the connect
/// p99 of a burst of clients. mosquitto, single-threaded, does not pay it. The
/// table costs the kernel 8 bytes per slot (512 KiB at 65,536), outside the
/// process's RSS. The broker calls it before it listens (`rbroker` before its
/// runtime starts threads, when growing the table waits for nothing); rbench,
/// which holds as many sockets, calls it at startup. Once grown, a call costs
/// one `fcntl`.
pub fn reserve_descriptor_table() {
    use std::os::fd::AsRawFd;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct passed, which lives here.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return;
    }
    let highest = limit.rlim_cur.min(RESERVED_DESCRIPTORS).saturating_sub(1);
    let Ok(highest) = libc::c_int::try_from(highest) else {
        return;
    };
    if highest < 1024 {
        return;
    }
    let Ok(null) = std::fs::File::open("/dev/null") else {
        return;
    };
    // SAFETY: duplicating a descriptor this function owns onto the lowest free
    // slot at or above `highest`, then closing the duplicate at once; no other
    // code sees it.
    unsafe {
        let duplicate = libc::fcntl(null.as_raw_fd(), libc::F_DUPFD_CLOEXEC, highest);
        if duplicate >= 0 {
            libc::close(duplicate);
        }
    }
}

/// Connections open on one configured listener (all its sockets), for its
/// `max_connections`.
pub type OpenConnections = Arc<AtomicUsize>;

/// Accepts connections until shutdown, one task each.
pub async fn accept_loop(
    listener: BoundListener,
    on_this_listener: OpenConnections,
    router: Arc<Router>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
) {
    let BoundListener { socket, index, tls } = listener;
    let port = match &socket {
        ListenSocket::Tcp(socket) => socket.local_addr().map_or(0, |address| address.port()),
        ListenSocket::Unix(..) => 0,
    };
    let unix_path: Option<Arc<str>> = match &socket {
        ListenSocket::Unix(_, file) => Some(file.0.display().to_string().into()),
        ListenSocket::Tcp(_) => None,
    };
    let max_connections = router.config.listener_settings(index).max_connections;
    let layers = Arc::new(Layers {
        tls,
        websocket: router.config.listener_transport(index).protocol == ListenerProtocol::WebSockets,
        site: Site {
            dir: router.config.listener_transport(index).http_dir.clone(),
            console: router.config.listener_transport(index).web_console,
        },
    });
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = accept(&socket) => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors or similar: wait rather than spin on the error.
                router
                    .log
                    .error(format_args!("Unable to accept a connection: {error}."));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let peer = match (peer, &unix_path) {
            (Some(address), _) => PeerAddress::Ip(address),
            (None, Some(path)) => PeerAddress::Unix(Arc::clone(path)),
            (None, None) => continue,
        };
        backoff = Duration::from_millis(10);
        router
            .stats
            .sockets_accepted
            .fetch_add(1, Ordering::Relaxed);
        let (guard, open) = OpenSocket::count(&on_this_listener);
        if max_connections.is_some_and(|max| open > max) {
            // As mosquitto: accepted, then closed at once.
            router.log.notice(format_args!(
                "Client connection from {} denied: max_connections exceeded.",
                peer.host()
            ));
            continue;
        }
        if super::memory::would_exceed(router.config.memory_limit, 0) {
            continue;
        }
        // Each kind of socket is spawned as its own future: one task type for all
        // would be as large as the largest, the TLS and WebSocket handshakes. The
        // guard goes into the connection's future rather than a wrapping `async`
        // block, which would hold that future twice (once captured, once awaited).
        let router = Arc::clone(&router);
        match stream {
            Accepted::Tcp(stream) => {
                // The connection coalesces its own writes, so Nagle would only
                // add latency; `set_tcp_nodelay false` turns it back on.
                let _ = stream.set_nodelay(router.config.set_tcp_nodelay);
                if layers.tls.is_none() && !layers.websocket {
                    spawn_plain(&tasks, router, stream, peer, (port, index), guard);
                } else {
                    let layers = Arc::clone(&layers);
                    tasks.spawn(async move {
                        let _guard = guard;
                        open_layers(router, stream, peer, (port, index), &layers).await;
                    });
                }
            }
            Accepted::Unix(stream) => {
                spawn_plain(&tasks, router, stream, peer, (port, index), guard);
            }
        }
    }
}

/// Serves a socket without TLS or WebSocket layers in its own task; `at` is
/// its listener's port and configured index.
fn spawn_plain<T: Transport>(
    tasks: &TaskTracker,
    router: Arc<Router>,
    stream: T,
    peer: PeerAddress,
    at: (u16, Option<usize>),
    guard: OpenSocket,
) {
    let (port, index) = at;
    router.log.new_connection(&peer, port);
    tasks.spawn(connection::serve(
        router,
        stream,
        peer,
        None,
        index,
        None,
        Some(guard),
    ));
}

/// An accepted socket.
enum Accepted {
    Tcp(tokio::net::TcpStream),
    Unix(tokio::net::UnixStream),
}

async fn accept(socket: &ListenSocket) -> io::Result<(Accepted, Option<SocketAddr>)> {
    match socket {
        ListenSocket::Tcp(listener) => {
            let (stream, peer) = listener.accept().await?;
            Ok((Accepted::Tcp(stream), Some(peer)))
        }
        ListenSocket::Unix(listener, _) => {
            let (stream, _) = listener.accept().await?;
            Ok((Accepted::Unix(stream), None))
        }
    }
}

/// What a listener puts between TCP and MQTT.
struct Layers {
    tls: Option<Arc<rustls::ServerConfig>>,
    websocket: bool,
    /// What plain HTTP requests on a WebSocket listener get.
    site: Site,
}

/// Runs a connection's TLS and WebSocket handshakes, bounded together by
/// `connect_timeout`, then serves MQTT over the result. A failed handshake closes
/// this connection only, with a log line. As mosquitto, a connection is logged
/// as new once its handshakes are done; a plain HTTP request is not logged.
async fn open_layers(
    router: Arc<Router>,
    stream: tokio::net::TcpStream,
    peer: PeerAddress,
    (port, index): (u16, Option<usize>),
    layers: &Layers,
) {
    let limit = router.config.connect_timeout;
    let deadline = tokio::time::Instant::now() + limit;
    let log = &router.log;
    // Before CONNECT a frame may hold what the first packet may be (and its header).
    let max_frame = router.config.connect_packet_limit() + 16;
    let mut identity = None;
    let transport: Box<dyn Transport> = match &layers.tls {
        // The handshakes are boxed, each freed once done: kept inline, their
        // state (KiBs) would stay in the task of every connection for its life.
        None => match Box::pin(upgrade(stream, layers, max_frame, deadline, log, &peer)).await {
            Some(ws) => ws,
            None => return,
        },
        Some(config) => {
            let handshake = Box::pin(TlsTransport::accept(stream, Arc::clone(config)));
            let tls = match tokio::time::timeout_at(deadline, handshake).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    log.handshake_failed(&peer, format_args!("{error}"));
                    return;
                }
                Err(_) => {
                    log.handshake_failed(
                        &peer,
                        format_args!(
                            "no TLS handshake within connect_timeout ({} s)",
                            limit.as_secs()
                        ),
                    );
                    return;
                }
            };
            identity = tls.peer_identity();
            if layers.websocket {
                match Box::pin(upgrade(tls, layers, max_frame, deadline, log, &peer)).await {
                    Some(ws) => ws,
                    None => return,
                }
            } else {
                Box::new(tls)
            }
        }
    };
    // As mosquitto: a connection is new once its handshakes are done.
    log.new_connection(&peer, port);
    // The handshakes spent part of connect_timeout: CONNECT has what is left.
    connection::serve(
        router,
        transport,
        peer,
        identity,
        index,
        Some(deadline),
        None,
    )
    .await;
}

/// The WebSocket upgrade (or an `http_dir` file) on `inner`, by `deadline`.
async fn upgrade<T: Transport>(
    inner: T,
    layers: &Layers,
    max_frame: usize,
    deadline: tokio::time::Instant,
    log: &Logger,
    peer: &PeerAddress,
) -> Option<Box<WsTransport<T>>> {
    let request = websocket::accept(inner, &layers.site, max_frame);
    match tokio::time::timeout_at(deadline, request).await {
        Ok(Ok(websocket::Request::Upgraded(ws))) => Some(ws),
        Ok(Ok(websocket::Request::Answered)) => {
            log.debug(format_args!("HTTP request from {peer} answered."));
            None
        }
        Ok(Err(error)) => {
            log.notice(format_args!(
                "WebSocket handshake from {peer} refused: {error}."
            ));
            None
        }
        Err(_) => {
            log.notice(format_args!(
                "Client {peer} did not finish the WebSocket handshake in time."
            ));
            None
        }
    }
}
