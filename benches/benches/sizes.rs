//! Bytes per element of weft's `OrSet` against `crdts::Orswot`, encoded
//! (postcard for both; weft through `codec::encode`, header included) and in
//! memory (live heap counted by a counting global allocator), at 1k and 100k
//! elements, in one run.
//!
//! `cargo bench -p weft-benches --bench sizes` prints markdown tables.

use crdts::{CmRDT, CvRDT, Orswot};
use serde::Serialize;
use std::hint::black_box;
use weft_benches::alloc::{measure_live, CountingAlloc};
use weft_core::{codec, Crdt, OrSet, ReplicaId};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const SIZES: [usize; 2] = [1_000, 100_000];
const WRITERS: u64 = 4;

/// Builds weft's set: element `i` added by replica `i % writers`, replicas
/// joined into one.
fn weft_set<T: Ord + Clone + std::fmt::Debug + Serialize + serde::de::DeserializeOwned>(
    elements: &[T],
    writers: u64,
) -> OrSet<T> {
    let mut replicas: Vec<OrSet<T>> = (0..writers).map(|_| OrSet::new()).collect();
    for (i, x) in elements.iter().enumerate() {
        let w = i as u64 % writers;
        replicas[w as usize].add(ReplicaId::new(w + 1), x.clone());
    }
    let mut out = replicas.pop().expect("at least one writer");
    for r in &replicas {
        out.join(r);
    }
    out
}

/// The same with `crdts::Orswot` (actors are `u64`, like weft's replica ids).
fn crdts_set<T: std::hash::Hash + Eq + Clone + std::fmt::Debug>(
    elements: &[T],
    writers: u64,
) -> Orswot<T, u64> {
    let mut replicas: Vec<Orswot<T, u64>> = (0..writers).map(|_| Orswot::new()).collect();
    for (i, x) in elements.iter().enumerate() {
        let w = i as u64 % writers;
        let s = &mut replicas[w as usize];
        let ctx = s.read_ctx().derive_add_ctx(w + 1);
        let op = s.add(x.clone(), ctx);
        s.apply(op);
    }
    let mut out = replicas.pop().expect("at least one writer");
    for r in replicas {
        out.merge(r);
    }
    out
}

struct Row {
    ty: &'static str,
    n: usize,
    writers: u64,
    raw: usize,
    weft_enc: usize,
    crdts_enc: usize,
    weft_mem: i64,
    crdts_mem: i64,
}

fn measure<T>(ty: &'static str, elements: &[T], writers: u64) -> Row
where
    T: Ord + Clone + std::hash::Hash + std::fmt::Debug + Serialize + serde::de::DeserializeOwned,
{
    let n = elements.len();
    let (w, weft_mem) = measure_live(|| weft_set(elements, writers));
    assert_eq!(w.len(), n);
    let weft_enc = codec::encode(&w).len();
    drop(w);
    let (c, crdts_mem) = measure_live(|| crdts_set(elements, writers));
    assert_eq!(c.read().val.len(), n);
    let crdts_enc = postcard::to_allocvec(&c).expect("postcard").len();
    drop(c);
    let raw = postcard::to_allocvec(elements).expect("postcard").len();
    Row {
        ty,
        n,
        writers,
        raw,
        weft_enc,
        crdts_enc,
        weft_mem,
        crdts_mem,
    }
}

fn per(bytes: f64, n: usize) -> String {
    format!("{:.2}", bytes / n as f64)
}

fn main() {
    let mut rows = Vec::new();
    for n in SIZES {
        let ints: Vec<u64> = (0..n as u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16)
            .collect();
        let strings: Vec<String> = (0..n).map(|i| format!("user-{i:06}@example")).collect();
        for writers in [1, WRITERS] {
            rows.push(measure("u64", &ints, writers));
            rows.push(measure("String", &strings, writers));
        }
        black_box((&ints, &strings));
    }
    println!("# OrSet vs crdts::Orswot: bytes per element\n");
    println!("Elements: u64 = spread 48-bit integers; String = `user-NNNNNN@example` (18 bytes).");
    println!(
        "`raw` = postcard of the bare `Vec<T>` of elements, for scale. Element `i` is added by"
    );
    println!("replica `i % writers`, replicas then merged. Ratios are weft / crdts.\n");
    println!("| T | elements | writers | raw enc B/elem | weft enc B/elem | crdts enc B/elem | enc ratio | weft heap B/elem | crdts heap B/elem | heap ratio |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.2} | {} | {} | {:.2} |",
            r.ty,
            r.n,
            r.writers,
            per(r.raw as f64, r.n),
            per(r.weft_enc as f64, r.n),
            per(r.crdts_enc as f64, r.n),
            r.weft_enc as f64 / r.crdts_enc as f64,
            per(r.weft_mem as f64, r.n),
            per(r.crdts_mem as f64, r.n),
            r.weft_mem as f64 / r.crdts_mem as f64,
        );
    }
}
