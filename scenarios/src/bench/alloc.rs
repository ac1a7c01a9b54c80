//! A counting global allocator, so benchmarks can report the peak heap of each phase.
//! The `exsim` binary installs it; it counts only once a benchmark calls [`start`]: the
//! shared counters would otherwise cost every allocation of a sweep's parallel runs a
//! contended cache line.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

static ON: AtomicBool = AtomicBool::new(false);
// Signed: blocks allocated before counting began may be freed while it runs.
static CURRENT: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

/// The system allocator, counting live bytes and their high-water mark once started.
pub struct Counting;

// SAFETY: delegates every call to `System` unchanged; only adds counters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() && ON.load(Ordering::Relaxed) {
            add(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        if ON.load(Ordering::Relaxed) {
            CURRENT.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() && ON.load(Ordering::Relaxed) {
            CURRENT.fetch_sub(layout.size() as isize, Ordering::Relaxed);
            add(new_size);
        }
        p
    }
}

fn add(size: usize) {
    let now = CURRENT.fetch_add(size as isize, Ordering::Relaxed) + size as isize;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

/// Starts a measurement (and counting, for the rest of the process): resets the peak to
/// the current live bytes and returns them.
pub fn start() -> isize {
    ON.store(true, Ordering::Relaxed);
    let now = CURRENT.load(Ordering::Relaxed);
    PEAK.store(now, Ordering::Relaxed);
    now
}

/// Peak live bytes above `base` since [`start`] returned `base`.
pub fn peak_since(base: isize) -> usize {
    usize::try_from(PEAK.load(Ordering::Relaxed).saturating_sub(base)).unwrap_or(0)
}
