//! Taking a broker away from a client: a broker process (rbroker or mosquitto)
//! that stops and starts again on the same loopback port, and a relay that cuts
//! one client off (or stops reading from it) while the test's own clients still
//! reach the broker.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::mosquitto::{free_port, wait_until_listening};

/// Which broker program a [`BrokerProcess`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    Rbroker,
    Mosquitto,
}

/// A broker process listening on 127.0.0.1 at a port that survives restarts.
pub struct BrokerProcess {
    program: Program,
    pub port: u16,
    config: tempfile::NamedTempFile,
    child: Option<Child>,
}

impl BrokerProcess {
    pub fn start(program: Program) -> Self {
        let port = free_port();
        let mut config = tempfile::NamedTempFile::new().expect("temp config");
        config
            .write_all(format!("listener {port} 127.0.0.1\nallow_anonymous true\n").as_bytes())
            .expect("write config");
        let mut broker = BrokerProcess {
            program,
            port,
            config,
            child: None,
        };
        broker.resume();
        broker
    }

    /// Starts the broker again after [`BrokerProcess::stop`].
    pub fn resume(&mut self) {
        let path = match self.program {
            Program::Rbroker => PathBuf::from(env!("CARGO_BIN_EXE_rbroker")),
            Program::Mosquitto => PathBuf::from("mosquitto"),
        };
        let child = Command::new(path)
            .arg("-c")
            .arg(self.config.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the broker");
        self.child = Some(child);
        wait_until_listening(self.port);
    }

    /// Kills the broker: every connection drops and its state is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Relays loopback connections from its own port to the broker's; `cut` drops
/// them and refuses new ones until `restore`.
pub struct Relay {
    pub port: u16,
    state: Arc<RelayState>,
}

struct RelayState {
    forwarding: AtomicBool,
    /// While set, nothing is read from the clients: their sends back up.
    paused: Arc<AtomicBool>,
    closing: AtomicBool,
    open: Mutex<Vec<TcpStream>>,
}

impl Relay {
    pub fn to(upstream_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("relay listener");
        let port = listener.local_addr().expect("relay address").port();
        let state = Arc::new(RelayState {
            forwarding: AtomicBool::new(true),
            paused: Arc::new(AtomicBool::new(false)),
            closing: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
        });
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if shared.closing.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                if !shared.forwarding.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(broker) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
                    continue;
                };
                let mut open = shared.open.lock().expect("relay lock");
                for stream in [&client, &broker] {
                    if let Ok(clone) = stream.try_clone() {
                        open.push(clone);
                    }
                }
                pipe(&client, &broker, Some(Arc::clone(&shared.paused)));
                pipe(&broker, &client, None);
            }
        });
        Relay { port, state }
    }

    /// Drops every relayed connection and refuses new ones.
    pub fn cut(&self) {
        self.state.forwarding.store(false, Ordering::SeqCst);
        for stream in self.state.open.lock().expect("relay lock").drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Stops reading from the clients, as a broker that has fallen behind does.
    pub fn pause(&self) {
        self.state.paused.store(true, Ordering::SeqCst);
    }

    /// Reads from the clients again.
    pub fn resume(&self) {
        self.state.paused.store(false, Ordering::SeqCst);
    }

    /// Relays new connections again.
    pub fn restore(&self) {
        self.state.forwarding.store(true, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.state.closing.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees `closing`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies bytes from `from` to `to` on a thread until either side closes, not
/// reading while `paused` is set.
fn pipe(from: &TcpStream, to: &TcpStream, paused: Option<Arc<AtomicBool>>) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            while paused.as_ref().is_some_and(|p| p.load(Ordering::SeqCst)) {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            let Ok(n) = from.read(&mut buffer) else { break };
            if n == 0 || to.write_all(&buffer[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}
