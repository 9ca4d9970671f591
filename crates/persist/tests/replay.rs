//! Replay never fails a document as a whole because of one record: updates
//! stored while waiting for a dependency come back waiting (however many:
//! the store is not bounded by the network's pending limit), and a record
//! that verifies but does not replay is skipped and reported — by
//! `load_report`, by `check`, and by compaction, which refuses to fold it
//! away.

mod common;

use common::edits;
use rusqlite::Connection;
use std::path::Path;
use weft_core::doc::Limits;
use weft_core::{Doc, DocError, ReplicaId};
use weft_persist::{
    CompactionPolicy, Error, MemoryStore, Options, RecordKind, RecordRef, SqliteStore, Store,
    StoredDoc,
};

fn manual() -> Options {
    Options::default().with_compaction(CompactionPolicy::manual())
}

/// An author's first edit (withheld) and `n` later edits that depend on it.
fn waiting_on_a_gap(n: usize) -> (Doc, Vec<u8>, Vec<Vec<u8>>) {
    let mut author = Doc::new(ReplicaId::new(1));
    let missing = author
        .transact(|tx| tx.text("body")?.insert(0, "first "))
        .unwrap();
    let waiting = edits(&mut author, n);
    (author, missing, waiting)
}

/// The failure of issue #11: more updates waiting on a missing dependency
/// than the network pending limit (4,096 by default) were stored; loading
/// must bring every one of them back waiting, and the gap, once filled,
/// must release them all. (SQLite only: both backends share the replay,
/// and a replay of 4,200 waiting updates costs about a second, since each
/// apply scans the whole pending buffer.)
#[test]
fn more_waiting_updates_than_the_pending_limit_load_and_drain() {
    let (author, missing, waiting) = waiting_on_a_gap(4_200);
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db"), manual()).unwrap();
    let appended = store.append_many(
        "gap",
        &waiting.iter().map(Vec::as_slice).collect::<Vec<_>>(),
    );
    assert!(appended.iter().all(Result::is_ok));
    let report = store
        .load_report("gap", ReplicaId::new(7))
        .unwrap()
        .unwrap();
    assert!(report.is_complete(), "skipped: {:?}", report.skipped);
    let mut doc = report.doc;
    assert_eq!(doc.pending_updates(), 4_200);
    assert_eq!(doc.version().total(), 0);
    doc.apply(&missing).unwrap();
    assert_eq!(doc.pending_updates(), 0);
    assert!(doc == author, "the filled gap releases every update");

    // Compaction keeps them waiting in the snapshot, and they still come
    // back after it.
    let folded = store.compact("gap").unwrap().unwrap();
    assert_eq!(folded.folded, 4_200);
    let mut after = store.load("gap", ReplicaId::new(9)).unwrap().unwrap();
    assert_eq!(after.pending_updates(), 4_200);
    after.apply(&missing).unwrap();
    assert!(after == author);
}

/// The loaded document takes network input with the ordinary limits again:
/// the unbounded buffer is for the store's own records only.
#[test]
fn loaded_documents_get_the_default_limits_back() {
    let (_, _, waiting) = waiting_on_a_gap(4_097);
    let store = MemoryStore::new();
    for u in &waiting[..4_096] {
        store.append("d", u).unwrap();
    }
    let doc = store.load("d", ReplicaId::new(3)).unwrap().unwrap();
    assert_eq!(doc.pending_updates(), 4_096);
    assert_eq!(doc.limits(), &Limits::default());
    // And they hold: with the count limit at what was loaded, one more
    // waiting update is refused.
    let mut doc = doc.with_limits(Limits {
        max_pending_updates: 4_096,
        ..Limits::default()
    });
    assert!(matches!(
        doc.apply(&waiting[4_096]),
        Err(DocError::PendingFull { .. })
    ));
}

/// CRC-32 over `len(doc) ‖ doc ‖ seq ‖ framed` (docs/storage.md).
fn crc(doc: &str, seq: u64, framed: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&(doc.len() as u32).to_le_bytes());
    h.update(doc.as_bytes());
    h.update(&seq.to_le_bytes());
    h.update(framed);
    h.finalize()
}

/// A well-framed, correctly checksummed record holding `payload`.
fn record(doc: &str, kind: u8, seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut r = vec![1, kind, 0, 0];
    r.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    r.extend_from_slice(payload);
    let c = crc(doc, seq, &r);
    r.extend_from_slice(&c.to_le_bytes());
    r
}

/// Replaces the payload of update `seq` of `doc`, keeping the record valid:
/// bytes exactly as "written", which the document layer refuses.
fn rewrite_update(path: &Path, doc: &str, seq: u64, payload: &[u8]) {
    let conn = Connection::open(path).unwrap();
    let n = conn
        .execute(
            "UPDATE log SET record = ?3 WHERE seq = ?1 AND doc = (SELECT id FROM docs WHERE name = ?2)",
            rusqlite::params![seq as i64, doc, record(doc, 1, seq, payload)],
        )
        .unwrap();
    assert_eq!(n, 1);
}

fn rewrite_snapshot(path: &Path, doc: &str, seq: u64, payload: &[u8]) {
    let conn = Connection::open(path).unwrap();
    let n = conn
        .execute(
            "UPDATE snapshots SET record = ?3 WHERE seq = ?1 AND doc = (SELECT id FROM docs WHERE name = ?2)",
            rusqlite::params![seq as i64, doc, record(doc, 2, seq, payload)],
        )
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn an_intact_record_that_does_not_replay_is_skipped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    // Two replicas' independent edits, so the others replay without #5.
    let mut a = Doc::new(ReplicaId::new(1));
    let mut b = Doc::new(ReplicaId::new(2));
    let ua = edits(&mut a, 4);
    let ub = edits(&mut b, 4);
    {
        let store = SqliteStore::open(&path, manual()).unwrap();
        for u in ua.iter().chain(&ub) {
            store.append("d", u).unwrap();
        }
        store.append("other", &ua[0]).unwrap();
    }
    // Update #5 (b's first edit) becomes bytes that are not an update.
    rewrite_update(&path, "d", 5, b"WEFT\x01\x0bnot a body");
    let store = SqliteStore::open(&path, manual()).unwrap();

    let report = store.load_report("d", ReplicaId::new(9)).unwrap().unwrap();
    assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
    let skipped = &report.skipped[0];
    assert_eq!(
        skipped.record,
        RecordRef {
            kind: RecordKind::Update,
            seq: 5
        }
    );
    assert!(matches!(skipped.error, DocError::Decode(_)), "{skipped}");
    // Everything of `a` is there; `b`'s later edits wait for the lost one.
    let mut doc = report.doc;
    assert_eq!(doc.version().get(ReplicaId::new(1)), 4);
    assert_eq!(doc.version().get(ReplicaId::new(2)), 0);
    assert_eq!(doc.pending_updates(), 3);
    doc.apply(&ub[0]).unwrap(); // a peer fills the gap
    assert_eq!(doc.pending_updates(), 0);
    a.apply(&b.diff(a.version())).unwrap();
    assert!(doc == a);

    // `load` still works (and logs); `check` names the record; the other
    // document is untouched.
    let loaded = store.load("d", ReplicaId::new(9)).unwrap().unwrap();
    assert_eq!(loaded.version().get(ReplicaId::new(1)), 4);
    assert!(store
        .load_report("other", ReplicaId::new(9))
        .unwrap()
        .unwrap()
        .is_complete());
    let check = store.check().unwrap();
    assert_eq!(check.problems.len(), 1, "{:?}", check.problems);
    match &check.problems[0] {
        Error::Replay { doc_id, record, .. } => {
            assert_eq!(doc_id, "d");
            assert_eq!(record.seq, 5);
        }
        other => panic!("expected a replay problem, got {other:?}"),
    }
    assert!(check.problems[0].is_corruption());

    // Compaction would delete the record: it refuses, and nothing changes.
    match store.compact("d") {
        Err(Error::Replay { record, .. }) => assert_eq!(record.seq, 5),
        other => panic!("compaction must refuse, got {other:?}"),
    }
    let stats = store.stats("d").unwrap().unwrap();
    assert_eq!((stats.log_records, stats.snapshot_seq), (8, 0));
}

#[test]
fn a_snapshot_that_does_not_load_leaves_the_later_updates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mut a = Doc::new(ReplicaId::new(1));
    let mut b = Doc::new(ReplicaId::new(2));
    let ua = edits(&mut a, 6);
    let ub = edits(&mut b, 3);
    {
        let store = SqliteStore::open(&path, manual()).unwrap();
        for u in &ua[..4] {
            store.append("d", u).unwrap();
        }
        assert_eq!(store.compact("d").unwrap().unwrap().through_seq, 4);
        for u in ua[4..].iter().chain(&ub) {
            store.append("d", u).unwrap();
        }
    }
    rewrite_snapshot(&path, "d", 4, b"WEFT\x01\x0cno snapshot here");
    let store = SqliteStore::open(&path, manual()).unwrap();
    let report = store.load_report("d", ReplicaId::new(9)).unwrap().unwrap();
    assert_eq!(
        report.skipped.iter().map(|s| s.record).collect::<Vec<_>>(),
        [RecordRef {
            kind: RecordKind::Snapshot,
            seq: 4
        }]
    );
    let mut doc = report.doc;
    // b's edits stand alone; a's two later edits wait for the snapshot's.
    assert_eq!(doc.version().get(ReplicaId::new(2)), 3);
    assert_eq!(doc.version().get(ReplicaId::new(1)), 0);
    assert_eq!(doc.pending_updates(), 2);
    for u in &ua[..4] {
        doc.apply(u).unwrap(); // a peer resends what the snapshot held
    }
    assert_eq!(doc.version().get(ReplicaId::new(1)), 6);
    assert_eq!(doc.pending_updates(), 0);
}

#[test]
fn replay_of_constructed_records_skips_exactly_the_bad_ones() {
    let mut a = Doc::new(ReplicaId::new(1));
    let ua = edits(&mut a, 3);
    let stored = StoredDoc {
        snapshot: Some((7, b"garbage".to_vec())),
        updates: vec![
            (8, ua[0].clone()),
            (9, Vec::new()),
            (10, ua[1].clone()),
            (11, ua[2].clone()),
        ],
    };
    let replayed = stored.replay(ReplicaId::new(2));
    let seqs: Vec<(RecordKind, u64)> = replayed
        .skipped
        .iter()
        .map(|s| (s.record.kind, s.record.seq))
        .collect();
    assert_eq!(seqs, [(RecordKind::Snapshot, 7), (RecordKind::Update, 9)]);
    assert!(replayed.doc == a);
    assert_eq!(
        replayed.skipped[1].to_error("doc").to_string(),
        format!(
            "document `doc`, update #9: cannot replay: {}",
            replayed.skipped[1].error
        )
    );
    // `into_doc` is the same replay and does not fail.
    assert!(stored.into_doc("doc", ReplicaId::new(3)).unwrap() == a);
}

/// A writer resuming under the replica id it owns loads its own records,
/// and no writer id (not even the one validation uses) is refused on append.
#[test]
fn a_replica_reloads_its_own_records_and_any_id_may_append() {
    let store = MemoryStore::new();
    for id in [0, 1] {
        let mut author = Doc::new(ReplicaId::new(id));
        let doc_id = format!("by-{id}");
        for u in edits(&mut author, 3) {
            store.append(&doc_id, &u).unwrap();
        }
        let report = store
            .load_report(&doc_id, ReplicaId::new(id))
            .unwrap()
            .unwrap();
        assert!(report.is_complete(), "{:?}", report.skipped);
        assert!(report.doc == author);
        let mut resumed = report.doc;
        resumed
            .transact(|tx| tx.counter("edits")?.increment(1))
            .unwrap();
        assert_eq!(resumed.version().get(ReplicaId::new(id)), 4);
    }
}
