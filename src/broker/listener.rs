//! Listening sockets: binding as mosquitto 2.0 does, and the accept loop that hands
//! each socket to a connection task.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::config::{Config, ListenerConfig};
use super::connection;
use super::log::Logger;
use super::router::Router;

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

/// A bound socket, with the configured listener it serves.
pub type BoundListener = (TcpListener, Option<usize>);

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
            ..
        },
    ) in configured.chain(config.default_listener.iter().map(|l| (None, l)))
    {
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

/// Binds every address, logging mosquitto's "Opening ..." lines. An IPv6 address
/// that cannot be bound (no IPv6 on the host) is skipped with a warning as long as
/// something else was bound.
pub fn bind_all(addresses: &[ListenAddress], log: &Logger) -> io::Result<Vec<BoundListener>> {
    let mut listeners = Vec::new();
    let mut skipped = None;
    for (address, listener) in addresses {
        let family = if address.is_ipv4() { "ipv4" } else { "ipv6" };
        log.notice(format_args!(
            "Opening {family} listen socket on port {}.",
            address.port()
        ));
        match bind_tcp(*address) {
            Ok(socket) => listeners.push((socket, *listener)),
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

/// Decrements its listener's open-connection count when a connection task ends,
/// however it ends.
struct OpenSocket(Arc<AtomicUsize>);

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Connections open on one configured listener (all its sockets), for its
/// `max_connections`.
pub type OpenConnections = Arc<AtomicUsize>;

/// Accepts connections until shutdown, one task each.
pub async fn accept_loop(
    (listener, index): BoundListener,
    on_this_listener: OpenConnections,
    router: Arc<Router>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
) {
    let port = listener.local_addr().map_or(0, |address| address.port());
    let max_connections = router.config.listener_settings(index).max_connections;
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
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
        backoff = Duration::from_millis(10);
        router
            .stats
            .sockets_accepted
            .fetch_add(1, Ordering::Relaxed);
        let open = on_this_listener.fetch_add(1, Ordering::Relaxed) + 1;
        let guard = OpenSocket(Arc::clone(&on_this_listener));
        if max_connections.is_some_and(|max| open > max) {
            // As mosquitto: accepted, then closed at once.
            router.log.notice(format_args!(
                "Client connection from {} denied: max_connections exceeded.",
                peer.ip()
            ));
            continue;
        }
        if super::memory::would_exceed(router.config.memory_limit, 0) {
            continue;
        }
        // The connection coalesces its own writes, so Nagle would only add latency;
        // `set_tcp_nodelay false` turns it back on.
        let _ = stream.set_nodelay(router.config.set_tcp_nodelay);
        let router = Arc::clone(&router);
        tasks.spawn(async move {
            let _guard = guard;
            connection::serve(router, stream, peer, port, index).await;
        });
    }
}
