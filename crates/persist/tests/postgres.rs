//! `PostgresStore` on a real PostgreSQL server started by this test
//! process (or `WEFT_TEST_POSTGRES_URL`): what only a shared store has —
//! several nodes appending to one document, compaction by one node at a
//! time, schema versions, the server going away — plus encryption and
//! corruption checks as on SQLite. The backend-neutral checks run in
//! `tests/store.rs` against every backend.

mod common;

use common::services::Postgres;
use common::{edits, replay};
use std::sync::Arc;
use weft_core::{Doc, ReplicaId};
use weft_persist::{
    CompactionPolicy, EncryptionKey, Error, Options, PostgresStore, Store, MAX_PG_READERS,
    PG_SCHEMA_VERSION,
};

fn manual() -> Options {
    Options::default().with_compaction(CompactionPolicy::manual())
}

#[test]
fn reopening_keeps_everything_and_two_nodes_share_one_log() {
    let url = Postgres::shared().new_database();
    let mut doc = Doc::new(ReplicaId::new(1));
    let updates = edits(&mut doc, 40);
    {
        let store = PostgresStore::open(&url, manual()).unwrap();
        for u in &updates[..20] {
            store.append("d", u).unwrap();
        }
        store.compact("d").unwrap();
    }
    // Two "nodes" on one database append concurrently: distinct seqs,
    // nothing lost, each sees the other's updates.
    let a = Arc::new(PostgresStore::open(&url, manual()).unwrap());
    let b = Arc::new(PostgresStore::open(&url, manual()).unwrap());
    let mut threads = Vec::new();
    for (i, chunk) in updates[20..].chunks(5).enumerate() {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        let chunk = chunk.to_vec();
        threads.push(std::thread::spawn(move || {
            chunk
                .iter()
                .map(|u| store.append("d", u).unwrap().seq)
                .collect::<Vec<_>>()
        }));
    }
    let mut seqs: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (21..=40).collect::<Vec<_>>());
    for store in [&a, &b] {
        assert_eq!(store.load("d", ReplicaId::new(3)).unwrap().unwrap(), doc);
    }
    assert_eq!(replay(&updates), doc);
    let stats = a.stats("d").unwrap().unwrap();
    assert_eq!(
        (stats.snapshot_seq, stats.log_records, stats.last_seq),
        (20, 20, 40)
    );
}

/// Many threads reading at once share at most `MAX_PG_READERS` server
/// connections of one node: readers wait for a slot rather than opening
/// a connection each.
#[test]
fn concurrent_reads_use_at_most_the_reader_cap_of_server_connections() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let pg = Postgres::shared();
    let url = pg.new_database();
    let store = Arc::new(PostgresStore::open(&url, manual()).unwrap());
    let mut doc = Doc::new(ReplicaId::new(1));
    for u in edits(&mut doc, 20) {
        store.append("d", &u).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..64)
        .map(|_| {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    assert!(store.read("d").unwrap().is_some());
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let mut most = 0usize;
    for _ in 0..25 {
        let n = pg.psql(
            &url,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()",
        );
        most = most.max(n.parse().unwrap());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let reads: usize = readers.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(reads >= 64, "{reads} reads");
    // The readers, the store's writer and psql's own session.
    assert!(
        most <= MAX_PG_READERS + 2,
        "{most} connections at once (cap {MAX_PG_READERS} readers)"
    );
    assert_eq!(store.load("d", ReplicaId::new(2)).unwrap().unwrap(), doc);
}

/// Two nodes whose concurrent batches touch the same documents in opposite
/// orders: each batch locks documents in one global order, so neither
/// waits on the other and PostgreSQL never fails a batch as a deadlock.
#[test]
fn batches_from_two_nodes_touching_documents_in_opposite_orders_never_deadlock() {
    let url = Postgres::shared().new_database();
    let docs = ["d0", "d1", "d2", "d3"];
    let mut doc = Doc::new(ReplicaId::new(1));
    let update = edits(&mut doc, 1).remove(0);
    let a = Arc::new(PostgresStore::open(&url, manual()).unwrap());
    let b = Arc::new(PostgresStore::open(&url, manual()).unwrap());
    let mut threads = Vec::new();
    // Per node, one thread per document: each node's group commit gathers
    // appends to several documents in a batch, in whatever order they
    // came; node `b` visits them in the reverse order.
    for (n, store) in [a.clone(), b.clone()].into_iter().enumerate() {
        for t in 0..docs.len() {
            let store = store.clone();
            let update = update.clone();
            threads.push(std::thread::spawn(move || {
                let mut failures = Vec::new();
                for round in 0..60 {
                    let k = (t + round) % docs.len();
                    let d = if n == 0 {
                        docs[k]
                    } else {
                        docs[docs.len() - 1 - k]
                    };
                    if let Err(e) = store.append(d, &update) {
                        failures.push(e.to_string());
                    }
                }
                failures
            }));
        }
    }
    let failures: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    let total: u64 = docs
        .iter()
        .map(|d| a.stats(d).unwrap().unwrap().log_records)
        .sum();
    assert_eq!(total, 2 * 4 * 60);
}

#[test]
fn concurrent_compactions_from_two_nodes_fold_once_and_lose_nothing() {
    let url = Postgres::shared().new_database();
    let a = Arc::new(PostgresStore::open(&url, manual()).unwrap());
    let b = Arc::new(PostgresStore::open(&url, manual()).unwrap());
    let mut doc = Doc::new(ReplicaId::new(1));
    let updates = edits(&mut doc, 300);
    for u in &updates[..200] {
        a.append("c", u).unwrap();
    }
    // Both nodes compact while a writer keeps appending.
    let writer = {
        let b = b.clone();
        let rest = updates[200..].to_vec();
        std::thread::spawn(move || {
            for u in &rest {
                b.append("c", u).unwrap();
            }
        })
    };
    let compactors: Vec<_> = [a.clone(), b.clone()]
        .into_iter()
        .map(|s| {
            std::thread::spawn(move || {
                let mut done = 0;
                for _ in 0..5 {
                    // Folded, or left to the node holding the lock.
                    assert!(s.compact("c").unwrap().is_some());
                    done += 1;
                }
                done
            })
        })
        .collect();
    writer.join().unwrap();
    for c in compactors {
        assert_eq!(c.join().unwrap(), 5);
    }
    assert_eq!(a.load("c", ReplicaId::new(2)).unwrap().unwrap(), doc);
    a.compact("c").unwrap();
    let s = b.stats("c").unwrap().unwrap();
    assert_eq!(s.log_records, 0);
    assert_eq!(s.snapshot_seq, 300);
    assert_eq!(b.load("c", ReplicaId::new(2)).unwrap().unwrap(), doc);
}

#[test]
fn automatic_compaction_runs_in_the_background() {
    let url = Postgres::shared().new_database();
    let policy = CompactionPolicy {
        max_log_records: 16,
        max_log_bytes: u64::MAX,
        automatic: true,
    };
    let store = PostgresStore::open(&url, Options::default().with_compaction(policy)).unwrap();
    let mut doc = Doc::new(ReplicaId::new(1));
    for u in edits(&mut doc, 100) {
        store.append("auto", &u).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let s = store.stats("auto").unwrap().unwrap();
        if s.compactions >= 1 && s.log_records <= 16 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no compaction: {s:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(store.take_background_errors().is_empty());
    assert_eq!(store.load("auto", ReplicaId::new(2)).unwrap().unwrap(), doc);
}

#[test]
fn encryption_and_keys_as_on_sqlite() {
    let url = Postgres::shared().new_database();
    let key = EncryptionKey::from_bytes([7; 32]);
    let mut doc = Doc::new(ReplicaId::new(1));
    let u = edits(&mut doc, 1).remove(0);
    {
        let store = PostgresStore::open(&url, manual().with_encryption(key.clone())).unwrap();
        store.append("secret", &u).unwrap();
    }
    assert!(matches!(
        PostgresStore::open(&url, manual()),
        Err(Error::KeyRequired)
    ));
    assert!(matches!(
        PostgresStore::open(
            &url,
            manual().with_encryption(EncryptionKey::from_bytes([8; 32]))
        ),
        Err(Error::WrongKey)
    ));
    let store = PostgresStore::open(&url, manual().with_encryption(key)).unwrap();
    assert_eq!(
        store.load("secret", ReplicaId::new(2)).unwrap().unwrap(),
        doc
    );
    // The stored bytes are not the plaintext update.
    let hex = Postgres::shared().psql(&url, "SELECT encode(record, 'hex') FROM weft_log");
    let plain: String = u.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!hex.contains(&plain));

    let plain_url = Postgres::shared().new_database();
    drop(PostgresStore::open(&plain_url, manual()).unwrap());
    assert!(matches!(
        PostgresStore::open(
            &plain_url,
            manual().with_encryption(EncryptionKey::from_bytes([7; 32]))
        ),
        Err(Error::NotEncrypted)
    ));
}

#[test]
fn a_damaged_record_is_reported_never_loaded() {
    let pg = Postgres::shared();
    let url = pg.new_database();
    let store = PostgresStore::open(&url, manual()).unwrap();
    let mut doc = Doc::new(ReplicaId::new(1));
    for u in edits(&mut doc, 5) {
        store.append("x", &u).unwrap();
    }
    // Flip one payload byte of update #3 behind the store's back.
    pg.psql(
        &url,
        "UPDATE weft_log SET record = set_byte(record, 9, get_byte(record, 9) # 1) WHERE seq = 3",
    );
    let err = store.load("x", ReplicaId::new(2)).unwrap_err();
    assert!(err.is_corruption(), "{err}");
    assert!(err.to_string().contains("update #3"), "{err}");
    // A missing record is caught by the bookkeeping.
    pg.psql(&url, "DELETE FROM weft_log WHERE seq = 4");
    assert!(store.read("x").unwrap_err().is_corruption());
}

#[test]
fn a_newer_schema_is_refused_and_the_current_one_opens() {
    let pg = Postgres::shared();
    let url = pg.new_database();
    drop(PostgresStore::open(&url, manual()).unwrap());
    assert_eq!(
        pg.psql(&url, "SELECT version FROM weft_schema"),
        PG_SCHEMA_VERSION.to_string()
    );
    pg.psql(
        &url,
        &format!("UPDATE weft_schema SET version = {}", PG_SCHEMA_VERSION + 1),
    );
    match PostgresStore::open(&url, manual()) {
        Err(Error::NewerFormat { found, supported }) => {
            assert_eq!(found, i64::from(PG_SCHEMA_VERSION) + 1);
            assert_eq!(supported, i64::from(PG_SCHEMA_VERSION));
        }
        other => panic!("expected NewerFormat, got {other:?}"),
    }
}

#[test]
fn writes_fail_with_a_retryable_error_while_the_server_is_down_then_resume() {
    let mut pg = Postgres::start();
    let url = pg.new_database();
    let store = PostgresStore::open(&url, manual()).unwrap();
    let mut doc = Doc::new(ReplicaId::new(1));
    let updates = edits(&mut doc, 4);
    store.append("r", &updates[0]).unwrap();
    pg.stop();
    let err = store.append("r", &updates[1]).unwrap_err();
    assert!(
        matches!(err, Error::Unavailable { .. } | Error::Postgres { .. }),
        "{err:?}"
    );
    assert!(store.read("r").is_err());
    pg.restart();
    // The writer and readers reconnect on their next call.
    store.append("r", &updates[1]).unwrap();
    store.append("r", &updates[2]).unwrap();
    store.append("r", &updates[3]).unwrap();
    assert_eq!(store.load("r", ReplicaId::new(2)).unwrap().unwrap(), doc);
    assert_eq!(store.stats("r").unwrap().unwrap().last_seq, 4);
}
