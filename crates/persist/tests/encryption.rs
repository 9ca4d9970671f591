//! Encryption at rest: round trips, wrong or missing keys, tampering, and
//! no plaintext on disk.

mod common;

use common::edits;
use rusqlite::Connection;
use weft_core::{Doc, ReplicaId};
use weft_persist::{
    CompactionPolicy, EncryptionKey, Error, MemoryStore, Options, RecordError, SqliteStore, Store,
};

fn key(b: u8) -> EncryptionKey {
    EncryptionKey::from_bytes([b; 32])
}

fn opts(k: Option<EncryptionKey>) -> Options {
    let o = Options::default().with_compaction(CompactionPolicy::manual());
    match k {
        Some(k) => o.with_encryption(k),
        None => o,
    }
}

fn secret_doc() -> (Doc, Vec<Vec<u8>>) {
    let mut doc = Doc::new(ReplicaId::new(1));
    let mut updates = vec![doc
        .transact(|tx| tx.text("body")?.insert(0, "TOP-SECRET-PLAN"))
        .unwrap()];
    updates.extend(edits(&mut doc, 10));
    (doc, updates)
}

#[test]
fn encrypted_round_trip_leaves_no_plaintext_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.db");
    let (doc, updates) = secret_doc();
    {
        let store = SqliteStore::open(&path, opts(Some(key(1)))).unwrap();
        for u in &updates[..6] {
            store.append("plans", u).unwrap();
        }
        store.compact("plans").unwrap();
        for u in &updates[6..] {
            store.append("plans", u).unwrap();
        }
    }
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        !bytes.windows(10).any(|w| w == b"TOP-SECRET"),
        "plaintext on disk"
    );
    let store = SqliteStore::open(&path, opts(Some(key(1)))).unwrap();
    assert_eq!(
        store.load("plans", ReplicaId::new(2)).unwrap().unwrap(),
        doc
    );

    let memory = MemoryStore::with_options(opts(Some(key(1))));
    for u in &updates {
        memory.append("plans", u).unwrap();
    }
    assert_eq!(
        memory.load("plans", ReplicaId::new(2)).unwrap().unwrap(),
        doc
    );
}

#[test]
fn wrong_missing_or_unexpected_keys_are_errors_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let enc = dir.path().join("e.db");
    let plain = dir.path().join("p.db");
    let (_, updates) = secret_doc();
    SqliteStore::open(&enc, opts(Some(key(1))))
        .unwrap()
        .append("d", &updates[0])
        .unwrap();
    SqliteStore::open(&plain, opts(None))
        .unwrap()
        .append("d", &updates[0])
        .unwrap();
    assert!(matches!(
        SqliteStore::open(&enc, opts(Some(key(2)))),
        Err(Error::WrongKey)
    ));
    assert!(matches!(
        SqliteStore::open(&enc, opts(None)),
        Err(Error::KeyRequired)
    ));
    assert!(matches!(
        SqliteStore::open(&plain, opts(Some(key(1)))),
        Err(Error::NotEncrypted)
    ));
    // The right key still opens it afterwards.
    assert!(SqliteStore::open(&enc, opts(Some(key(1))))
        .unwrap()
        .load("d", ReplicaId::new(1))
        .unwrap()
        .is_some());
}

#[test]
fn tampered_ciphertext_is_an_authentication_error_even_with_a_fixed_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.db");
    let (_, updates) = secret_doc();
    let store = SqliteStore::open(&path, opts(Some(key(7)))).unwrap();
    for u in &updates {
        store.append("d", u).unwrap();
    }
    let conn = Connection::open(&path).unwrap();
    let mut record: Vec<u8> = conn
        .query_row("SELECT record FROM log WHERE seq = 3", [], |r| r.get(0))
        .unwrap();
    let n = record.len();
    record[n - 10] ^= 0x80; // inside the ciphertext/tag
    conn.execute("UPDATE log SET record = ?1 WHERE seq = 3", [&record])
        .unwrap();
    // An accident: the CRC catches it first.
    assert!(matches!(
        store.load("d", ReplicaId::new(1)),
        Err(Error::Corrupt {
            reason: RecordError::Checksum { .. },
            ..
        })
    ));
    // A deliberate attacker recomputes the CRC (binding: doc id and seq).
    let mut h = crc32fast::Hasher::new();
    h.update(&1u32.to_le_bytes());
    h.update(b"d");
    h.update(&3u64.to_le_bytes());
    h.update(&record[..n - 4]);
    let crc = h.finalize();
    record[n - 4..].copy_from_slice(&crc.to_le_bytes());
    conn.execute("UPDATE log SET record = ?1 WHERE seq = 3", [&record])
        .unwrap();
    match store.load("d", ReplicaId::new(1)) {
        Err(Error::Corrupt {
            doc_id,
            record,
            reason: RecordError::Authentication,
        }) => {
            assert_eq!((doc_id.as_str(), record.seq), ("d", 3));
        }
        other => panic!("expected Authentication, got {other:?}"),
    }
}

#[test]
fn a_sealed_record_copied_to_another_place_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.db");
    let (_, updates) = secret_doc();
    let store = SqliteStore::open(&path, opts(Some(key(7)))).unwrap();
    for u in &updates[..3] {
        store.append("x", u).unwrap();
        store.append("y", u).unwrap();
    }
    // Copy x#2 over y#2 (valid ciphertext, valid CRC for x#2).
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "UPDATE log SET record = (SELECT record FROM log WHERE seq = 2 AND doc = (SELECT id FROM docs WHERE name = 'x'))
         WHERE seq = 2 AND doc = (SELECT id FROM docs WHERE name = 'y')",
    )
    .unwrap();
    assert!(matches!(
        store.load("y", ReplicaId::new(1)),
        Err(Error::Corrupt { record, .. }) if record.seq == 2
    ));
    assert!(store.load("x", ReplicaId::new(1)).unwrap().is_some());
}
