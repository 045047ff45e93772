//! Where passwords are checked: a few low-priority threads of their own, so that key
//! derivation (hundreds of milliseconds at 210,000 iterations) never runs on the
//! threads that move messages, and a burst of logins slows other logins, not delivery.
//!
//! A hand-written pool rather than tokio's `spawn_blocking`: that pool grows to
//! hundreds of threads under a burst, and on a small machine hundreds of threads
//! deriving keys would take the CPU from the runtime's workers. Here the number of
//! threads is fixed (one fewer than the cores, at least one) and they run at nice
//! 10, so the scheduler prefers the workers when both want a core.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// Niceness of the verifier threads (higher is lower priority).
const NICE: libc::c_int = 10;

/// Checks queued or running at once. A CONNECT waits parked with its packet while
/// its check is queued, so this bounds that memory too; beyond it a login is
/// answered "server busy" at once rather than queued for minutes.
pub const MAX_WAITING: usize = 256;

/// Checks queued or running now.
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// Counts one waiting check until dropped, however the job ends.
struct Waiting;

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING.fetch_sub(1, Ordering::Relaxed);
    }
}

fn queue() -> &'static Mutex<Sender<Job>> {
    static QUEUE: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    QUEUE.get_or_init(|| {
        let (sender, receiver) = channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get().saturating_sub(1))
            .max(1);
        for index in 0..threads {
            let receiver = Arc::clone(&receiver);
            let spawned = std::thread::Builder::new()
                .name(format!("rbroker-auth-{index}"))
                .spawn(move || work(&receiver));
            if let Err(error) = spawned {
                tracing::error!(%error, "could not start a password verifier thread");
            }
        }
        Mutex::new(sender)
    })
}

fn work(receiver: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        let job = {
            let receiver = receiver.lock().unwrap_or_else(|p| p.into_inner());
            receiver.recv()
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// Linux applies `setpriority(PRIO_PROCESS, tid)` to one thread.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid has no preconditions; setpriority only reads its arguments.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, NICE);
    }
}

/// Runs `check` on a verifier thread; the receiver yields its answer, or an error
/// if no verifier thread could take it (which callers treat as a refusal). `None`
/// when [`MAX_WAITING`] checks are waiting already.
pub fn run(check: impl FnOnce() -> bool + Send + 'static) -> Option<oneshot::Receiver<bool>> {
    if WAITING.fetch_add(1, Ordering::Relaxed) >= MAX_WAITING {
        WAITING.fetch_sub(1, Ordering::Relaxed);
        return None;
    }
    let waiting = Waiting;
    let (answer, verdict) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _waiting = waiting;
        // Nobody waits any more (the broker shut down): skip the work.
        if !answer.is_closed() {
            let _ = answer.send(check());
        }
    });
    let sender = queue().lock().unwrap_or_else(|p| p.into_inner());
    // A send fails only when every verifier thread is gone; dropping the job drops
    // `answer`, so the caller sees a closed channel.
    let _ = sender.send(job);
    Some(verdict)
}
