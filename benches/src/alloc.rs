//! A counting global allocator.
//!
//! Each benchmark binary that reports memory installs it with
//! `#[global_allocator] static A: CountingAlloc = CountingAlloc;` and reads
//! [`net_bytes`] before and after building a value: the difference, once
//! temporaries are dropped, is the value's live heap (bytes requested from the
//! allocator, not counting allocator overhead or slack).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

static NET: AtomicI64 = AtomicI64::new(0);
static TOTAL: AtomicU64 = AtomicU64::new(0);

/// The system allocator, counting requested bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAlloc;

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; the counters are plain atomics and never affect allocation.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            NET.fetch_add(layout.size() as i64, Ordering::Relaxed);
            TOTAL.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            NET.fetch_add(layout.size() as i64, Ordering::Relaxed);
            TOTAL.fetch_add(layout.size() as u64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        NET.fetch_sub(layout.size() as i64, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            NET.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
            TOTAL.fetch_add(new_size as u64, Ordering::Relaxed);
        }
        p
    }
}

/// Bytes currently allocated (allocated minus freed) through [`CountingAlloc`].
/// Zero-ish and meaningless unless it is the global allocator.
pub fn net_bytes() -> i64 {
    NET.load(Ordering::Relaxed)
}

/// Bytes ever requested (a rough measure of allocation churn).
pub fn total_bytes() -> u64 {
    TOTAL.load(Ordering::Relaxed)
}

/// Builds a value and returns it with its live heap: the net bytes still
/// allocated after `build` returns (its temporaries are dropped by then).
pub fn measure_live<T>(build: impl FnOnce() -> T) -> (T, i64) {
    let before = net_bytes();
    let value = build();
    (value, net_bytes() - before)
}
