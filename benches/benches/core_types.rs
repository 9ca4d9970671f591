//! Throughput of weft's core types: `join` of two full states, and one sync
//! step (`delta_since` of a replica that is behind, then `apply`), at 1k and
//! 100k entries (counters: replica entries; set and map: elements and keys).
//! Registers hold one value, so their benches are the cost of one operation.
//!
//! `cargo bench -p weft-benches --bench core_types` (short measurement
//! times are set below; criterion options may be added after `--`).
//!
//! Shapes, for each size `n`:
//! - `join`: a replica holding `n` entries joins another holding `n` entries,
//!   half of them the same (the states cloned outside the timing).
//! - `delta_since+apply`: a replica that saw the first half of the writes
//!   catches up with one that made all of them (and, for the set and the map,
//!   then rewrote or removed a tenth of the first half). Includes `version()`.

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};
use std::time::Duration;
use weft_core::{Crdt, GCounter, LwwMap, LwwRegister, MvRegister, OrSet, PnCounter, ReplicaId};

const SIZES: [usize; 2] = [1_000, 100_000];

fn r(i: usize) -> ReplicaId {
    ReplicaId::new(i as u64 + 1)
}

/// `join` and `delta_since+apply` for one type at one size.
fn pair<C: Crdt>(g: &mut BenchmarkGroup<'_, WallTime>, n: usize, behind: &C, ahead: &C, other: &C) {
    g.throughput(Throughput::Elements(n as u64));
    g.bench_with_input(BenchmarkId::new("join", n), &n, |b, _| {
        b.iter_batched(
            || other.clone(),
            |mut x| {
                x.join(ahead);
                x
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_with_input(BenchmarkId::new("delta_since+apply", n), &n, |b, _| {
        b.iter_batched(
            || behind.clone(),
            |mut x| {
                let d = ahead.delta_since(&x.version());
                x.apply(&d);
                x
            },
            BatchSize::LargeInput,
        )
    });
}

fn g_counter(c: &mut Criterion) {
    let mut g = c.benchmark_group("GCounter");
    for n in SIZES {
        let mut ahead = GCounter::new();
        for i in 0..n {
            ahead.increment(r(i), 1).expect("no overflow");
        }
        let behind = ahead.clone();
        for i in 0..n / 2 {
            ahead.increment(r(i), 2).expect("no overflow");
        }
        let mut other = GCounter::new();
        for i in n / 2..n + n / 2 {
            other.increment(r(i), 3).expect("no overflow");
        }
        pair(&mut g, n, &behind, &ahead, &other);
    }
    g.finish();
}

fn pn_counter(c: &mut Criterion) {
    let mut g = c.benchmark_group("PnCounter");
    for n in SIZES {
        let mut ahead = PnCounter::new();
        for i in 0..n {
            ahead.increment(r(i), 5).expect("no overflow");
        }
        let behind = ahead.clone();
        for i in 0..n / 2 {
            ahead.decrement(r(i), 2).expect("no overflow");
        }
        let mut other = PnCounter::new();
        for i in n / 2..n + n / 2 {
            other.add(r(i), -3).expect("no overflow");
        }
        pair(&mut g, n, &behind, &ahead, &other);
    }
    g.finish();
}

fn or_set(c: &mut Criterion) {
    let mut g = c.benchmark_group("OrSet<u64>");
    for n in SIZES {
        let n64 = n as u64;
        // Four writers share one replica state, taking turns.
        let mut ahead = OrSet::new();
        for i in 0..n64 / 2 {
            ahead.add(r(i as usize % 4), i);
        }
        let behind = ahead.clone();
        for i in n64 / 2..n64 {
            ahead.add(r(i as usize % 4), i);
        }
        for i in (0..n64 / 2).step_by(10) {
            ahead.remove(&i);
        }
        let mut other = OrSet::new();
        for i in n64 / 2..n64 + n64 / 2 {
            other.add(r(4 + i as usize % 4), i);
        }
        pair(&mut g, n, &behind, &ahead, &other);
    }
    g.finish();
}

fn lww_map(c: &mut Criterion) {
    let mut g = c.benchmark_group("LwwMap<u64,u64>");
    for n in SIZES {
        let n64 = n as u64;
        let mut ahead = LwwMap::new();
        for k in 0..n64 / 2 {
            ahead.insert(r(0), k, k, 1_000 + k);
        }
        let behind = ahead.clone();
        for k in n64 / 2..n64 {
            ahead.insert(r(0), k, k, 1_000 + k);
        }
        for k in (0..n64 / 2).step_by(10) {
            if k % 20 == 0 {
                ahead.remove(r(0), k, 10_000_000);
            } else {
                ahead.insert(r(0), k, k + 1, 10_000_000);
            }
        }
        let mut other = LwwMap::new();
        for k in n64 / 2..n64 + n64 / 2 {
            other.insert(r(1), k, k * 2, 2_000 + k);
        }
        pair(&mut g, n, &behind, &ahead, &other);
    }
    g.finish();
}

fn registers(c: &mut Criterion) {
    let mut g = c.benchmark_group("registers (per op)");
    let mut lww_a = LwwRegister::new();
    lww_a.set(r(0), 1u64, 1_000);
    let lww_behind = lww_a.clone();
    lww_a.set(r(0), 2u64, 2_000);
    let mut lww_b = LwwRegister::new();
    lww_b.set(r(1), 3u64, 1_500);
    g.bench_function("LwwRegister/set", |b| {
        let mut x = lww_a.clone();
        let mut t = 3_000;
        b.iter(|| {
            t += 1;
            x.set(r(0), t, t)
        })
    });
    g.bench_function("LwwRegister/join", |b| {
        b.iter_batched(
            || lww_b.clone(),
            |mut x| {
                x.join(&lww_a);
                x
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("LwwRegister/delta_since+apply", |b| {
        b.iter_batched(
            || lww_behind.clone(),
            |mut x| {
                let d = lww_a.delta_since(&x.version());
                x.apply(&d);
                x
            },
            BatchSize::SmallInput,
        )
    });

    let mut mv_a = MvRegister::new();
    mv_a.set(r(0), 1u64);
    let mv_behind = mv_a.clone();
    mv_a.set(r(0), 2u64);
    let mut mv_b = mv_behind.clone();
    mv_b.set(r(1), 3u64);
    g.bench_function("MvRegister/set", |b| {
        let mut x = mv_a.clone();
        let mut v = 0u64;
        b.iter(|| {
            v += 1;
            x.set(r(0), v)
        })
    });
    g.bench_function("MvRegister/join (concurrent)", |b| {
        b.iter_batched(
            || mv_b.clone(),
            |mut x| {
                x.join(&mv_a);
                x
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("MvRegister/delta_since+apply", |b| {
        b.iter_batched(
            || mv_behind.clone(),
            |mut x| {
                let d = mv_a.delta_since(&x.version());
                x.apply(&d);
                x
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args()
}

// criterion's macro makes an undocumented `pub fn`.
#[allow(missing_docs)]
mod group {
    use super::*;
    criterion_group! {
        name = benches;
        config = config();
        targets = g_counter, pn_counter, or_set, lww_map, registers
    }
}
criterion_main!(group::benches);
