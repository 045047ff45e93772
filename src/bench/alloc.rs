//! Heap accounting for the embedded broker: a global allocator that can count the live
//! bytes allocated by the broker's threads, so `rbench conn` reports the broker's
//! memory per connection even though the broker shares rbench's process.
//!
//! Written by hand because what is needed is narrow (bytes per thread group, freed
//! correctly whichever thread frees them) and general heap profilers are far
//! heavier. Each allocation carries a 16-byte header saying whether it was counted;
//! counting is switched on only for connection runs, so throughput runs pay one
//! relaxed load per allocation. Installed only in the `rbench` binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// Wraps the system allocator; see the module documentation.
pub struct TrackingAllocator;

static INSTALLED: AtomicBool = AtomicBool::new(false);
static COUNTING: AtomicBool = AtomicBool::new(false);
static BROKER_BYTES: AtomicI64 = AtomicI64::new(0);

thread_local! {
    static BROKER_THREAD: Cell<bool> = const { Cell::new(false) };
}

const HEADER: usize = 16;
const COUNTED: u8 = 1;

/// Marks the calling thread as one of the broker's.
pub fn mark_broker_thread() {
    BROKER_THREAD.with(|flag| flag.set(true));
}

/// Starts or stops counting broker allocations.
pub fn set_counting(on: bool) {
    COUNTING.store(on, Ordering::Release);
}

/// Live bytes allocated by broker threads while counting was on; `None` when the
/// tracking allocator is not this program's global allocator.
pub fn broker_heap_bytes() -> Option<i64> {
    INSTALLED
        .load(Ordering::Relaxed)
        .then(|| BROKER_BYTES.load(Ordering::Relaxed))
}

fn offset(layout: Layout) -> usize {
    layout.align().max(HEADER)
}

fn outer(layout: Layout) -> Option<Layout> {
    Layout::from_size_align(layout.size().checked_add(offset(layout))?, offset(layout)).ok()
}

fn should_count() -> bool {
    COUNTING.load(Ordering::Relaxed) && BROKER_THREAD.try_with(Cell::get).unwrap_or(false)
}

// SAFETY: every block handed out is `offset(layout)` bytes into a block of
// `outer(layout)` obtained from `System` with the same alignment; the tag byte lives
// in the header just before the returned pointer, and `dealloc`/`realloc` recompute
// the same offset from the layout they are given, which Rust guarantees equals the
// one used to allocate.
unsafe impl GlobalAlloc for TrackingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        INSTALLED.store(true, Ordering::Relaxed);
        let Some(outer) = outer(layout) else {
            return std::ptr::null_mut();
        };
        // SAFETY: `outer` has a non-zero size (it includes the header).
        let base = unsafe { System.alloc(outer) };
        if base.is_null() {
            return base;
        }
        // SAFETY: `base + offset` and the tag byte before it lie within the block.
        unsafe {
            let user = base.add(offset(layout));
            let tag = if should_count() {
                BROKER_BYTES.fetch_add(layout.size() as i64, Ordering::Relaxed);
                COUNTED
            } else {
                0
            };
            user.sub(1).write(tag);
            user
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout (GlobalAlloc contract).
        unsafe {
            if ptr.sub(1).read() == COUNTED {
                BROKER_BYTES.fetch_sub(layout.size() as i64, Ordering::Relaxed);
            }
            if let Some(outer) = outer(layout) {
                System.dealloc(ptr.sub(offset(layout)), outer);
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(old_outer) = outer(layout) else {
            return std::ptr::null_mut();
        };
        let Some(new_total) = new_size.checked_add(offset(layout)) else {
            return std::ptr::null_mut();
        };
        // SAFETY: the block is the one `alloc` returned; the header keeps its offset
        // because the alignment does not change.
        unsafe {
            let counted = ptr.sub(1).read() == COUNTED;
            let base = System.realloc(ptr.sub(offset(layout)), old_outer, new_total);
            if base.is_null() {
                return base;
            }
            if counted {
                BROKER_BYTES.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
            }
            base.add(offset(layout))
        }
    }
}
