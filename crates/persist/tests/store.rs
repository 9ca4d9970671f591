//! The Store API on both backends: round trips, compaction, listing,
//! deletion, stats, validation, concurrency and the async wrapper.

mod common;

use common::{edits, replay};
use std::sync::Arc;
use weft_core::{Doc, ReplicaId};
use weft_persist::{AsyncStore, CompactionPolicy, Error, MemoryStore, Options, SqliteStore, Store};

fn manual() -> Options {
    Options::default().with_compaction(CompactionPolicy::manual())
}

/// Runs `check` against a fresh SQLite store and a fresh memory store,
/// and (feature `postgres`) a fresh Postgres store on a server this test
/// process starts: the same conformance checks for every backend.
fn both(options: Options, check: impl Fn(&dyn Store)) {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path().join("s.db"), options.clone()).unwrap();
    check(&sqlite);
    check(&MemoryStore::with_options(options.clone()));
    #[cfg(feature = "postgres")]
    {
        let url = common::services::Postgres::shared().new_database();
        let pg = weft_persist::PostgresStore::open(&url, options).unwrap();
        check(&pg);
    }
}

#[test]
fn round_trip_snapshot_plus_log() {
    both(manual(), |store| {
        let mut doc = Doc::new(ReplicaId::new(1));
        let updates = edits(&mut doc, 30);
        for (i, u) in updates[..20].iter().enumerate() {
            assert_eq!(store.append("d", u).unwrap().seq, i as u64 + 1);
        }
        let report = store.compact("d").unwrap().unwrap();
        assert_eq!((report.through_seq, report.folded), (20, 20));
        for u in &updates[20..] {
            store.append("d", u).unwrap();
        }
        let stored = store.read("d").unwrap().unwrap();
        assert_eq!(stored.snapshot.as_ref().unwrap().0, 20);
        assert_eq!(stored.updates.len(), 10);
        let loaded = store.load("d", ReplicaId::new(5)).unwrap().unwrap();
        assert_eq!(loaded, doc);
        assert_eq!(loaded, replay(&updates));
        let stats = store.stats("d").unwrap().unwrap();
        assert_eq!(stats.log_records, 10);
        assert_eq!(stats.snapshot_seq, 20);
        assert_eq!(stats.last_seq, 30);
        assert_eq!(stats.compactions, 1);
        assert!(stats.last_compaction.is_some());
        assert!(stats.snapshot_bytes > 0 && stats.log_bytes > 0);
    });
}

#[test]
fn updates_in_any_order_and_duplicates_load_the_same() {
    both(manual(), |store| {
        let mut a = Doc::new(ReplicaId::new(1));
        let updates = edits(&mut a, 12);
        // A relay may receive updates out of causal order, and twice.
        for u in updates.iter().rev().chain(updates.iter()) {
            store.append("r", u).unwrap();
        }
        assert_eq!(store.load("r", ReplicaId::new(2)).unwrap().unwrap(), a);
        store.compact("r").unwrap();
        assert_eq!(store.load("r", ReplicaId::new(2)).unwrap().unwrap(), a);
    });
}

#[test]
fn list_delete_and_missing_documents() {
    both(manual(), |store| {
        let mut doc = Doc::new(ReplicaId::new(1));
        let u = edits(&mut doc, 1).remove(0);
        for id in ["b", "a", "c/d"] {
            store.append(id, &u).unwrap();
        }
        assert_eq!(store.list().unwrap(), ["a", "b", "c/d"]);
        assert!(store.delete("b").unwrap());
        assert!(!store.delete("b").unwrap());
        assert_eq!(store.list().unwrap(), ["a", "c/d"]);
        assert!(store.load("b", ReplicaId::new(1)).unwrap().is_none());
        assert!(store.stats("b").unwrap().is_none());
        assert!(store.compact("b").unwrap().is_none());
        // Recreated after deletion: numbering starts again.
        assert_eq!(store.append("b", &u).unwrap().seq, 1);
    });
}

#[test]
fn invalid_ids_and_updates_are_refused_before_storing() {
    both(manual(), |store| {
        let mut doc = Doc::new(ReplicaId::new(1));
        let u = edits(&mut doc, 1).remove(0);
        for bad in ["", "a\0b", &"x".repeat(257)] {
            assert!(matches!(
                store.append(bad, &u),
                Err(Error::InvalidDocId { .. })
            ));
        }
        assert!(store.append(&"x".repeat(256), &u).is_ok());
        let err = store.append("d", b"not an update").unwrap_err();
        assert!(matches!(err, Error::InvalidUpdate { ref doc_id, .. } if doc_id == "d"));
        assert!(store.stats("d").unwrap().is_none(), "nothing stored");
        // A snapshot is not an update either.
        assert!(store.append("d", &doc.save()).is_err());
    });
}

#[test]
fn compaction_of_an_empty_log_changes_nothing() {
    both(manual(), |store| {
        let mut doc = Doc::new(ReplicaId::new(1));
        for u in edits(&mut doc, 3) {
            store.append("d", &u).unwrap();
        }
        store.compact("d").unwrap();
        let again = store.compact("d").unwrap().unwrap();
        assert_eq!((again.folded, again.through_seq), (0, 3));
        assert_eq!(store.stats("d").unwrap().unwrap().compactions, 1);
        assert_eq!(store.load("d", ReplicaId::new(1)).unwrap().unwrap(), doc);
    });
}

#[test]
fn automatic_compaction_bounds_the_log() {
    let policy = CompactionPolicy {
        max_log_records: 16,
        max_log_bytes: u64::MAX,
        automatic: true,
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(
        dir.path().join("a.db"),
        Options::default().with_compaction(policy),
    )
    .unwrap();
    let memory = MemoryStore::with_options(Options::default().with_compaction(policy));
    let mut doc = Doc::new(ReplicaId::new(1));
    let updates = edits(&mut doc, 200);
    for u in &updates {
        sqlite.append("d", u).unwrap();
        memory.append("d", u).unwrap();
    }
    // Memory compacts inline: the log never exceeds the threshold.
    let m = memory.stats("d").unwrap().unwrap();
    assert!(m.log_records <= 16 && m.compactions >= 11, "{m:?}");
    // SQLite compacts in the background: wait for it by compacting once
    // more (serialised with it through the writer), then check it ran.
    sqlite.compact("d").unwrap();
    let s = sqlite.stats("d").unwrap().unwrap();
    assert!(s.compactions >= 2, "background compactions ran: {s:?}");
    assert_eq!(s.log_records, 0);
    assert!(sqlite.take_background_errors().is_empty());
    for store in [&sqlite as &dyn Store, &memory] {
        assert_eq!(store.load("d", ReplicaId::new(2)).unwrap().unwrap(), doc);
    }

    // Byte threshold.
    let by_bytes =
        MemoryStore::with_options(Options::default().with_compaction(CompactionPolicy {
            max_log_records: u64::MAX,
            max_log_bytes: 2_000,
            automatic: true,
        }));
    for u in &updates {
        by_bytes.append("d", u).unwrap();
    }
    assert!(by_bytes.stats("d").unwrap().unwrap().log_bytes <= 2_000);
}

#[test]
fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let mut doc = Doc::new(ReplicaId::new(1));
    let updates = edits(&mut doc, 50);
    {
        let store = SqliteStore::open(&path, manual()).unwrap();
        for u in &updates[..25] {
            store.append("d", u).unwrap();
        }
        store.compact("d").unwrap();
    }
    {
        let store = SqliteStore::open(&path, manual()).unwrap();
        for u in &updates[25..] {
            assert!(store.append("d", u).unwrap().seq > 25);
        }
    }
    let store = SqliteStore::open(&path, manual()).unwrap();
    assert_eq!(store.load("d", ReplicaId::new(3)).unwrap().unwrap(), doc);
    assert!(store.check().unwrap().problems.is_empty());
}

#[test]
fn concurrent_appends_from_many_threads_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("c.db"), manual()).unwrap();
    const THREADS: usize = 32;
    const PER_THREAD: usize = 20;
    let expected: Vec<Doc> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let store = store.clone();
                s.spawn(move || {
                    let mut doc = Doc::new(ReplicaId::new(t as u64 + 1));
                    let mut seqs = Vec::new();
                    for u in edits(&mut doc, PER_THREAD) {
                        seqs.push(store.append(&format!("doc-{}", t % 8), &u).unwrap().seq);
                    }
                    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "per-doc order");
                    doc
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let stats = store.commit_stats();
    assert_eq!(stats.appends, (THREADS * PER_THREAD) as u64);
    assert!(stats.transactions <= stats.appends);
    eprintln!("{stats:?}");
    for d in 0..8 {
        let mut want = Doc::new(ReplicaId::new(0));
        for doc in expected.iter().skip(d).step_by(8) {
            want.merge(doc);
        }
        let got = store
            .load(&format!("doc-{d}"), ReplicaId::new(0))
            .unwrap()
            .unwrap();
        assert_eq!(got, want, "doc-{d}");
        assert_eq!(
            store.stats(&format!("doc-{d}")).unwrap().unwrap().last_seq,
            (PER_THREAD * THREADS / 8) as u64
        );
    }
}

#[test]
fn group_commit_batches_when_writers_queue_up() {
    // With a writer busy committing, queued appends must share the next
    // transaction: 64 threads released together cannot take 64 commits each
    // in a row. Batches are counted, not timed.
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("g.db"), manual()).unwrap();
    let barrier = Arc::new(std::sync::Barrier::new(64));
    std::thread::scope(|s| {
        for t in 0..64u64 {
            let (store, barrier) = (store.clone(), barrier.clone());
            s.spawn(move || {
                let mut doc = Doc::new(ReplicaId::new(t + 1));
                let updates = edits(&mut doc, 10);
                barrier.wait();
                for u in &updates {
                    store.append(&format!("d{t}"), u).unwrap();
                }
            });
        }
    });
    let stats = store.commit_stats();
    assert_eq!(stats.appends, 640);
    assert!(
        stats.transactions < stats.appends,
        "no batching at all: {stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_store_appends_and_loads_without_blocking_the_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let store = AsyncStore::new(SqliteStore::open(dir.path().join("t.db"), manual()).unwrap());
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut doc = Doc::new(ReplicaId::new(t + 1));
            for u in edits(&mut doc, 10) {
                store.append(format!("d{t}"), u).await.unwrap();
            }
            doc
        }));
    }
    // The runtime's two workers stay free while the appends wait on disk:
    // a trivial task still completes.
    tokio::spawn(async { 1 + 1 }).await.unwrap();
    for (t, task) in tasks.into_iter().enumerate() {
        let doc = task.await.unwrap();
        let id = format!("d{t}");
        assert_eq!(
            store
                .load(id.clone(), ReplicaId::new(0))
                .await
                .unwrap()
                .unwrap(),
            doc
        );
        assert_eq!(
            store.stats(id.clone()).await.unwrap().unwrap().log_records,
            10
        );
        assert_eq!(store.compact(id.clone()).await.unwrap().unwrap().folded, 10);
        assert!(store
            .read(id.clone())
            .await
            .unwrap()
            .unwrap()
            .updates
            .is_empty());
    }
    assert_eq!(store.list().await.unwrap().len(), 16);
    assert!(store.delete("d0").await.unwrap());
}

#[test]
fn append_many_stores_each_update_in_order_and_reports_failures_separately() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path().join("s.db"), Options::default()).unwrap();
    let memory = MemoryStore::new();
    for store in [&sqlite as &dyn Store, &memory as &dyn Store] {
        let mut doc = Doc::new(ReplicaId::new(9));
        let mut updates = Vec::new();
        for i in 0..20 {
            updates.push(
                doc.transact(|tx| {
                    tx.counter("n")?.increment(i + 1)?;
                    Ok(())
                })
                .unwrap(),
            );
        }
        let mut refs: Vec<&[u8]> = updates.iter().map(|u| u.as_slice()).collect();
        let garbage = b"not an update".to_vec();
        refs.insert(5, &garbage);
        let results = store.append_many("many", &refs);
        assert_eq!(results.len(), 21);
        assert!(matches!(results[5], Err(Error::InvalidUpdate { .. })));
        let seqs: Vec<u64> = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|a| a.seq)
            .collect();
        assert_eq!(seqs.len(), 20);
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        let back = store.load("many", ReplicaId::new(1)).unwrap().unwrap();
        assert_eq!(back.version(), doc.version());
    }
}
