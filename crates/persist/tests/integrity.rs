//! Damage on disk: flipped bytes, truncated and missing records, a truncated
//! database file, newer format versions, foreign files, and compaction that
//! fails half-way. Every case is a typed error naming the document and
//! record, the rest of the store stays readable, and nothing panics.

mod common;

use common::edits;
use rusqlite::Connection;
use std::path::Path;
use weft_core::{Doc, ReplicaId};
use weft_persist::{
    CompactionPolicy, Error, Options, RecordError, RecordKind, RecordRef, SqliteStore, Store,
};

fn manual() -> Options {
    Options::default().with_compaction(CompactionPolicy::manual())
}

/// A store at `path` with docs "a" (snapshot through #10 + 10 updates) and
/// "b" (20 updates); returns the expected documents.
fn populate(path: &Path) -> (Doc, Doc) {
    let store = SqliteStore::open(path, manual()).unwrap();
    let mut a = Doc::new(ReplicaId::new(1));
    let mut b = Doc::new(ReplicaId::new(2));
    let ua = edits(&mut a, 20);
    for u in &ua[..10] {
        store.append("a", u).unwrap();
    }
    store.compact("a").unwrap();
    for u in &ua[10..] {
        store.append("a", u).unwrap();
    }
    for u in edits(&mut b, 20) {
        store.append("b", &u).unwrap();
    }
    (a, b)
}

fn raw(path: &Path, sql: &str) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(sql).unwrap();
}

/// Rewrites update `seq` of document `doc` through `f`, behind the store's back.
fn edit_update(path: &Path, doc: &str, seq: i64, f: impl FnOnce(&mut Vec<u8>)) {
    let conn = Connection::open(path).unwrap();
    let sql_where = "WHERE seq = ?1 AND doc = (SELECT id FROM docs WHERE name = ?2)";
    let mut record: Vec<u8> = conn
        .query_row(
            &format!("SELECT record FROM log {sql_where}"),
            rusqlite::params![seq, doc],
            |r| r.get(0),
        )
        .unwrap();
    f(&mut record);
    let n = conn
        .execute(
            &format!("UPDATE log SET record = ?3 {sql_where}"),
            rusqlite::params![seq, doc, record],
        )
        .unwrap();
    assert_eq!(n, 1);
}

const DOC_A_LOG: &str = "FROM log WHERE doc = (SELECT id FROM docs WHERE name = 'a')";

#[test]
fn flipped_byte_in_an_update_names_doc_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let (_, b) = populate(&path);
    // Flip one payload byte of update #14 of "a".
    edit_update(&path, "a", 14, |r| r[9] ^= 0x01);
    let store = SqliteStore::open(&path, manual()).unwrap();
    let err = store.load("a", ReplicaId::new(9)).unwrap_err();
    match &err {
        Error::Corrupt {
            doc_id,
            record,
            reason,
        } => {
            assert_eq!(doc_id, "a");
            assert_eq!(
                *record,
                RecordRef {
                    kind: RecordKind::Update,
                    seq: 14
                }
            );
            assert!(matches!(reason, RecordError::Checksum { .. }), "{reason:?}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(err.is_corruption());
    assert!(
        err.to_string().contains("`a`") && err.to_string().contains("update #14"),
        "{err}"
    );
    // The rest of the store is readable; compaction refuses to fold damage.
    assert_eq!(store.load("b", ReplicaId::new(9)).unwrap().unwrap(), b);
    assert!(matches!(store.compact("a"), Err(Error::Corrupt { .. })));
    assert_eq!(store.list().unwrap(), ["a", "b"]);
    let report = store.check().unwrap();
    assert_eq!(report.docs, 2);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
}

#[test]
fn flipped_byte_in_a_snapshot_and_every_position_of_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    populate(&path);
    let conn = Connection::open(&path).unwrap();
    let good: Vec<u8> = conn
        .query_row("SELECT record FROM snapshots", [], |r| r.get(0))
        .unwrap();
    let store = SqliteStore::open(&path, manual()).unwrap();
    // Every byte position, one bit at a time: always an error naming the snapshot.
    for i in (0..good.len()).step_by((good.len() / 64).max(1)) {
        let mut bad = good.clone();
        bad[i] ^= 1 << (i % 8);
        conn.execute("UPDATE snapshots SET record = ?1", [&bad])
            .unwrap();
        match store.load("a", ReplicaId::new(9)) {
            Err(Error::Corrupt { doc_id, record, .. }) => {
                assert_eq!(doc_id, "a");
                assert_eq!(
                    record,
                    RecordRef {
                        kind: RecordKind::Snapshot,
                        seq: 10
                    }
                );
            }
            other => panic!("byte {i}: expected Corrupt, got {other:?}"),
        }
    }
}

#[test]
fn truncated_and_missing_records_are_errors_not_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    populate(&path);
    let store = SqliteStore::open(&path, manual()).unwrap();

    edit_update(&path, "a", 12, |r| r.truncate(20));
    match store.load("a", ReplicaId::new(9)) {
        Err(Error::Corrupt {
            record,
            reason: RecordError::LengthMismatch { .. },
            ..
        }) => {
            assert_eq!(record.seq, 12)
        }
        other => panic!("expected LengthMismatch, got {other:?}"),
    }
    edit_update(&path, "a", 12, |r| r.truncate(1));
    assert!(matches!(
        store.load("a", ReplicaId::new(9)),
        Err(Error::Corrupt {
            reason: RecordError::TooShort { .. },
            ..
        })
    ));
    // A whole record gone: the bookkeeping notices, nothing is skipped.
    raw(&path, &format!("DELETE {DOC_A_LOG} AND seq = 12"));
    let err = store.load("a", ReplicaId::new(9)).unwrap_err();
    assert!(
        matches!(&err, Error::Inconsistent { doc_id, .. } if doc_id == "a"),
        "{err}"
    );
    // The snapshot gone.
    raw(&path, "DELETE FROM snapshots");
    assert!(matches!(
        store.load("a", ReplicaId::new(9)),
        Err(Error::Inconsistent { .. })
    ));
    assert!(store.load("b", ReplicaId::new(9)).unwrap().is_some());
}

#[test]
fn a_record_moved_to_another_seq_or_document_fails_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    populate(&path);
    // Swap the records of "b" #3 and #4.
    raw(
        &path,
        "UPDATE log SET seq = -1 WHERE seq = 3 AND doc = (SELECT id FROM docs WHERE name = 'b');
         UPDATE log SET seq = 3 WHERE seq = 4 AND doc = (SELECT id FROM docs WHERE name = 'b');
         UPDATE log SET seq = 4 WHERE seq = -1 AND doc = (SELECT id FROM docs WHERE name = 'b');",
    );
    let store = SqliteStore::open(&path, manual()).unwrap();
    assert!(matches!(
        store.load("b", ReplicaId::new(9)),
        Err(Error::Corrupt {
            record: RecordRef { seq: 3, .. },
            reason: RecordError::Checksum { .. },
            ..
        })
    ));
}

#[test]
fn truncated_database_file_is_an_error_never_a_panic_or_silent_loss() {
    for keep in [0.9, 0.5, 0.2, 0.0] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let (a, b) = populate(&path);
        {
            // Make the file big enough that truncation cuts real data.
            let store = SqliteStore::open(&path, manual()).unwrap();
            let mut c = Doc::new(ReplicaId::new(3));
            for u in edits(&mut c, 300) {
                store.append("c", &u).unwrap();
            }
        } // closed: the WAL is checkpointed into the main file
        let len = std::fs::metadata(&path).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len((len as f64 * keep) as u64).unwrap();
        drop(file);
        match SqliteStore::open(&path, manual()) {
            // A clear error on open is a correct outcome.
            Err(e) => assert!(keep > 0.0, "an empty file opens as a new store: {e}"),
            Ok(store) => {
                if keep == 0.0 {
                    // SQLite treats an empty file as a new database: the store
                    // is empty, and says so (no document claims to be whole).
                    assert!(store.list().unwrap().is_empty());
                    continue;
                }
                let report = store.check().unwrap();
                assert!(
                    !report.problems.is_empty(),
                    "truncation to {keep} went unnoticed"
                );
                // Whatever still loads must be exactly what was written.
                for (id, want) in [("a", &a), ("b", &b)] {
                    if let Ok(Some(got)) = store.load(id, ReplicaId::new(9)) {
                        assert_eq!(&got, want, "{id} after truncation to {keep}");
                    }
                }
            }
        }
    }
}

#[test]
fn newer_format_version_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    populate(&path);
    raw(
        &path,
        "UPDATE meta SET value = 2 WHERE key = 'format_version'",
    );
    let err = SqliteStore::open(&path, manual()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NewerFormat {
                found: 2,
                supported: 1
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("newer"), "{err}");

    // A record written by a newer record format.
    raw(
        &path,
        "UPDATE meta SET value = 1 WHERE key = 'format_version'",
    );
    edit_update(&path, "a", 11, |r| r[0] = 2);
    let store = SqliteStore::open(&path, manual()).unwrap();
    assert!(matches!(
        store.load("a", ReplicaId::new(1)),
        Err(Error::Corrupt {
            reason: RecordError::UnsupportedVersion {
                found: 2,
                supported: 1
            },
            ..
        })
    ));
}

#[test]
fn foreign_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other.db");
    raw(&other, "CREATE TABLE t (x); INSERT INTO t VALUES (1);");
    assert!(matches!(
        SqliteStore::open(&other, manual()),
        Err(Error::NotAStore { .. })
    ));
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, vec![0x5a; 8192]).unwrap();
    let err = SqliteStore::open(&junk, manual()).unwrap_err();
    assert!(err.is_corruption(), "{err:?}");
}

#[test]
fn compaction_failing_half_way_keeps_the_old_snapshot_and_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let (a, _) = populate(&path);
    let store = SqliteStore::open(&path, manual()).unwrap();
    let before = store.stats("a").unwrap().unwrap();
    // Fail after the new snapshot row is inserted, at each later step: when
    // deleting folded updates, then when deleting the old snapshot.
    for trigger in [
        "CREATE TRIGGER fail BEFORE DELETE ON log BEGIN SELECT RAISE(ABORT, 'injected'); END;",
        "CREATE TRIGGER fail BEFORE DELETE ON snapshots BEGIN SELECT RAISE(ABORT, 'injected'); END;",
        "CREATE TRIGGER fail BEFORE UPDATE OF snapshot_seq ON docs BEGIN SELECT RAISE(ABORT, 'injected'); END;",
    ] {
        raw(&path, trigger);
        let err = store.compact("a").unwrap_err();
        assert!(err.to_string().contains("injected"), "{err}");
        assert_eq!(store.stats("a").unwrap().unwrap(), before, "{trigger}");
        let conn = Connection::open(&path).unwrap();
        let snaps: i64 = conn.query_row("SELECT count(*) FROM snapshots", [], |r| r.get(0)).unwrap();
        assert_eq!(snaps, 1, "old snapshot only");
        assert_eq!(store.load("a", ReplicaId::new(1)).unwrap().unwrap(), a);
        raw(&path, "DROP TRIGGER fail");
    }
    // Appends in the same batch as a failing command are unaffected, and
    // the compaction succeeds once the fault is gone.
    let report = store.compact("a").unwrap().unwrap();
    assert_eq!((report.through_seq, report.folded), (20, 10));
    assert_eq!(store.load("a", ReplicaId::new(1)).unwrap().unwrap(), a);
}
