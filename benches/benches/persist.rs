//! weft-persist: durable appends per second (one document; 64 documents
//! from 64 threads) and load time of a 100k-update document before and
//! after compaction. Plain timing (no criterion): each figure is one run of
//! a fixed amount of work on a real file with `synchronous=FULL`, so every
//! append waited for its fsync.
//!
//! `cargo bench -p weft-benches --bench persist` (~1 min). Knobs:
//! `WEFT_BENCH_PERSIST_SINGLE` (appends in the one-document run, default
//! 1000), `WEFT_BENCH_PERSIST_UPDATES` (size of the big document, default
//! 100000). The store lives in a temporary directory under `target/`
//! (`CARGO_TARGET_DIR`), i.e. on the same disk as the build.

use std::time::Instant;
use weft_core::{Doc, ReplicaId};
use weft_persist::{CompactionPolicy, Options, SqliteStore, Store};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn edits(replica: u64, n: usize) -> Vec<Vec<u8>> {
    let mut doc = Doc::new(ReplicaId::new(replica));
    (0..n)
        .map(|i| {
            doc.transact(|tx| {
                let len = tx.text("body")?.len();
                tx.text("body")?
                    .insert(len, if i % 8 == 7 { " " } else { "x" })?;
                Ok(())
            })
            .expect("edit")
        })
        .collect()
}

fn scratch_dir() -> tempfile::TempDir {
    let base = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    std::fs::create_dir_all(&base).expect("target dir");
    tempfile::tempdir_in(base).expect("tempdir")
}

/// Median of 5 timed loads (the first also warms the page cache).
fn median_load(store: &SqliteStore, id: &str) -> (Doc, std::time::Duration) {
    let mut times = Vec::new();
    let mut doc = None;
    for _ in 0..5 {
        let t = Instant::now();
        doc = Some(
            store
                .load(id, ReplicaId::new(0))
                .expect("load")
                .expect("doc"),
        );
        times.push(t.elapsed());
    }
    times.sort();
    (doc.expect("loaded"), times[2])
}

fn manual() -> Options {
    Options::default().with_compaction(CompactionPolicy::manual())
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let single = env_usize("WEFT_BENCH_PERSIST_SINGLE", 1000);
    let big = env_usize("WEFT_BENCH_PERSIST_UPDATES", 100_000);

    // 1. One document, one writer: every append is its own commit + fsync.
    let dir = scratch_dir();
    let store = SqliteStore::open(dir.path().join("one.db"), manual()).expect("open");
    let updates = edits(1, single);
    let t = Instant::now();
    for u in &updates {
        store.append("doc", u).expect("append");
    }
    let secs = t.elapsed().as_secs_f64();
    let c = store.commit_stats();
    println!(
        "durable appends, 1 doc, 1 thread:    {single} appends in {secs:.2} s = {:.0} appends/s ({} commits)",
        single as f64 / secs,
        c.transactions
    );
    drop(store);

    // 2. 64 documents, one thread each: group commit shares fsyncs.
    let dir = scratch_dir();
    let store = SqliteStore::open(dir.path().join("many.db"), manual()).expect("open");
    let per = 200;
    let work: Vec<Vec<Vec<u8>>> = (0..64).map(|t| edits(t + 1, per)).collect();
    let t = Instant::now();
    std::thread::scope(|s| {
        for (i, updates) in work.iter().enumerate() {
            let store = store.clone();
            s.spawn(move || {
                for u in updates {
                    store.append(&format!("doc-{i}"), u).expect("append");
                }
            });
        }
    });
    let secs = t.elapsed().as_secs_f64();
    let c = store.commit_stats();
    println!(
        "durable appends, 64 docs, 64 threads: {} appends in {secs:.2} s = {:.0} appends/s ({} commits, {:.1} appends/commit)",
        c.appends,
        c.appends as f64 / secs,
        c.transactions,
        c.appends as f64 / c.transactions.max(1) as f64
    );
    drop(store);

    // 3. One document with `big` updates (64 replicas writing concurrently
    //    to build it quickly), loaded before and after compaction.
    let dir = scratch_dir();
    let path = dir.path().join("big.db");
    let store = SqliteStore::open(&path, manual()).expect("open");
    let per = big.div_ceil(64);
    let work: Vec<Vec<Vec<u8>>> = (0..64).map(|t| edits(t + 1, per)).collect();
    let t = Instant::now();
    std::thread::scope(|s| {
        for updates in &work {
            let store = store.clone();
            s.spawn(move || {
                for u in updates {
                    store.append("big", u).expect("append");
                }
            });
        }
    });
    let n = store.stats("big").expect("stats").expect("doc").log_records;
    println!(
        "built a {n}-update document in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    drop(store);
    let store = SqliteStore::open(&path, manual()).expect("reopen");
    let (before, load_log) = median_load(&store, "big");
    let stats = store.stats("big").expect("stats").expect("doc");
    println!(
        "load (median of 5), {n} updates in the log ({:.1} MiB):   {:.0} ms",
        stats.log_bytes as f64 / (1 << 20) as f64,
        load_log.as_secs_f64() * 1e3
    );
    let t = Instant::now();
    let report = store.compact("big").expect("compact").expect("doc");
    println!(
        "compaction: folded {} updates into a {:.1} KiB snapshot in {:.0} ms",
        report.folded,
        report.snapshot_bytes as f64 / 1024.0,
        t.elapsed().as_secs_f64() * 1e3
    );
    drop(store);
    let store = SqliteStore::open(&path, manual()).expect("reopen");
    let (after, load_snap) = median_load(&store, "big");
    assert_eq!(before, after, "compaction changed the document");
    println!(
        "load (median of 5), after compaction (snapshot only):  {:.1} ms ({:.0}x faster)",
        load_snap.as_secs_f64() * 1e3,
        load_log.as_secs_f64() / load_snap.as_secs_f64()
    );
    let snapshot = after.save();
    let t = Instant::now();
    let _ = Doc::load(&snapshot, ReplicaId::new(0)).expect("Doc::load");
    println!(
        "  of which Doc::load of the snapshot bytes alone: {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );
}
