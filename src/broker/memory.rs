//! `memory_limit`: the heap the broker may use, counted by a global allocator.
//!
//! mosquitto counts the bytes its own allocation wrappers hand out and denies any
//! request beyond the limit. Rust has one place that sees every allocation, the
//! global allocator, so [`CountingAllocator`] wraps the system allocator and keeps
//! the same tally. `rbroker` installs it; a program embedding the broker that sets
//! `memory_limit` must install it too, or startup fails (see [`start_counting`]),
//! so the limit is never silently absent.
//!
//! Counting is off until [`start_counting`] turns it on, so a broker without a limit
//! pays one relaxed load per allocation. Where the limit is consulted: a PUBLISH that
//! would take the heap past it is refused (PUBACK/PUBREC 0x97 on MQTT 5, the
//! connection closed on 3.x, as mosquitto does when its allocation fails), and a new
//! connection is closed at once.
//!
//! [`ReturnPolicy`] hands freed heap back to the system after many connections
//! left: glibc keeps freed memory for reuse, so without it the RSS of a broker
//! that once held 5,000 clients stays where it was.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

/// Whether allocations are being counted.
static COUNTING: AtomicBool = AtomicBool::new(false);

/// Bytes allocated minus bytes freed since counting started. Signed: memory
/// allocated before counting began may be freed after.
static IN_USE: AtomicIsize = AtomicIsize::new(0);

/// The system allocator, counting the bytes it hands out once [`start_counting`]
/// has been called. Install it with `#[global_allocator]`.
pub struct CountingAllocator;

fn add(bytes: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        IN_USE.fetch_add(bytes as isize, Ordering::Relaxed);
    }
}

fn sub(bytes: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        IN_USE.fetch_sub(bytes as isize, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed to `System` unchanged; the tally has no effect on
// what is allocated.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `alloc`'s contract, passed on as is.
        let pointer = unsafe { System.alloc(layout) };
        if !pointer.is_null() {
            add(layout.size());
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(pointer, layout) };
        sub(layout.size());
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if !pointer.is_null() {
            add(layout.size());
        }
        pointer
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if !moved.is_null() {
            add(new_size);
            sub(layout.size());
        }
        moved
    }
}

/// Turns counting on; false when the global allocator is not a
/// [`CountingAllocator`], so the caller can refuse to run without the limit.
pub fn start_counting() -> bool {
    COUNTING.store(true, Ordering::Relaxed);
    let before = IN_USE.load(Ordering::Relaxed);
    let probe = std::hint::black_box(Box::new([0u8; 4096]));
    let counted = IN_USE.load(Ordering::Relaxed) != before;
    drop(probe);
    if !counted {
        COUNTING.store(false, Ordering::Relaxed);
    }
    counted
}

/// Heap bytes in use as counted since [`start_counting`] (0 when not counting).
pub fn in_use() -> usize {
    usize::try_from(IN_USE.load(Ordering::Relaxed)).unwrap_or(0)
}

/// Whether `more` bytes would take the heap past `limit`.
pub fn would_exceed(limit: Option<usize>, more: usize) -> bool {
    limit.is_some_and(|limit| in_use().saturating_add(more) > limit)
}

/// When to give freed heap back to the system: once at least
/// [`ReturnPolicy::LEFT`] connections have left since the last time and at most
/// half of the peak remain. Fed the connection count by the keep-alive sweep.
#[derive(Debug, Default)]
pub struct ReturnPolicy {
    peak: usize,
}

impl ReturnPolicy {
    /// Connections that must have left before memory is given back.
    pub const LEFT: usize = 1000;

    /// Notes the most connections there were since the last call and how many
    /// there are now; true when memory should be given back now.
    pub fn observe(&mut self, peak: usize, connections: usize) -> bool {
        self.peak = self.peak.max(peak).max(connections);
        if self.peak - connections >= Self::LEFT && connections <= self.peak / 2 {
            self.peak = connections;
            true
        } else {
            false
        }
    }
}

/// Gives the heap's free pages back to the system (glibc's `malloc_trim`); a
/// no-op elsewhere.
pub fn return_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory malloc holds free; it has no
    // precondition.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod return_policy_tests {
    use super::ReturnPolicy;

    #[test]
    fn memory_goes_back_once_many_connections_left_and_not_before() {
        let mut policy = ReturnPolicy::default();
        let mut observe = |connections| policy.observe(connections, connections);
        assert!(!observe(5000));
        assert!(!observe(4500), "500 left");
        assert!(!observe(3000), "more than half remain");
        assert!(observe(2000));
        assert!(!observe(1500), "the peak is now 2000: 500 left since");
        assert!(observe(900), "1,100 left since, under half remain");
    }

    #[test]
    fn a_burst_between_two_looks_counts() {
        let mut policy = ReturnPolicy::default();
        assert!(!policy.observe(0, 0));
        // 5,000 came and went between two looks of the sweep.
        assert!(policy.observe(5000, 0));
    }
}
