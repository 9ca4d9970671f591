//! Shared helpers for weft's benchmarks: a counting global allocator (for
//! live-heap measurements) and a loader for the editing traces.

pub mod alloc;
pub mod doc_replay;
pub mod orders;
pub mod traces;

use std::time::{Duration, Instant};

/// Runs `f` `runs` times and returns the median wall time and the last result.
pub fn median_time<R>(runs: usize, mut f: impl FnMut() -> R) -> (Duration, R) {
    assert!(runs > 0, "at least one run");
    let mut times = Vec::with_capacity(runs);
    let mut last = None;
    for _ in 0..runs {
        // Drop the previous result before timing the next run.
        drop(last.take());
        let t = Instant::now();
        let r = f();
        times.push(t.elapsed());
        last = Some(r);
    }
    times.sort_unstable();
    (times[times.len() / 2], last.expect("runs > 0"))
}

/// Formats a duration in milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}
