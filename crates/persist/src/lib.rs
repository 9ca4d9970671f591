//! # weft-persist
//!
//! The local store of weft documents, written through by both the client and
//! the relay: per document, an append-only log of updates and a snapshot the
//! log continues. An append is durable when it returns; loading is the
//! latest snapshot plus the updates after it; compaction folds the log into
//! a new snapshot atomically.
//!
//! ```
//! use weft_core::{Doc, ReplicaId};
//! use weft_persist::{Options, SqliteStore, Store};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqliteStore::open(dir.path().join("weft.db"), Options::default()).unwrap();
//!
//! // The client: apply an edit locally, append its update, then show it.
//! let mut doc = Doc::new(ReplicaId::random());
//! let update = doc.transact(|tx| tx.text("body")?.insert(0, "Hello")).unwrap();
//! let appended = store.append("note-1", &update).unwrap(); // fsynced
//! assert_eq!(appended.seq, 1);
//!
//! // After a restart: snapshot + log, replayed.
//! let loaded = store.load("note-1", ReplicaId::random()).unwrap().unwrap();
//! assert_eq!(loaded.text("body").unwrap().to_string(), "Hello");
//!
//! store.compact("note-1").unwrap(); // also automatic past a threshold
//! assert_eq!(store.stats("note-1").unwrap().unwrap().log_records, 0);
//! assert_eq!(store.list().unwrap(), vec!["note-1".to_string()]);
//! ```
//!
//! | file | responsibility |
//! |---|---|
//! | `store.rs` | the [`Store`] trait, [`Options`], [`DocStats`] |
//! | `outcome.rs` | what a write did: [`Appended`], [`CompactionReport`] |
//! | `sqlite.rs` | [`SqliteStore`]: schema, WAL + `synchronous=FULL`, format version, reads, write SQL |
//! | `sqlite_write.rs` | the writer's SQL: append, compaction commit, delete |
//! | `group_commit.rs` | the writer thread: concurrent appends share one transaction |
//! | `compaction.rs` | [`CompactionPolicy`], folding, the background compactor |
//! | `load.rs` | verifying records against bookkeeping, replay ([`StoredDoc`]) |
//! | `record.rs` | record framing: version, kind, length, CRC-32, optional seal |
//! | `crypto.rs` | [`EncryptionKey`], XChaCha20-Poly1305 sealing, key check |
//! | `postgres.rs` | `PostgresStore` (feature `postgres`): the shared store of cluster mode |
//! | `memory.rs` | [`MemoryStore`], for tests |
//! | `commit.rs` | [`Commit`]: queued appends answered once durable, awaited or waited for |
//! | `async_store.rs` | [`AsyncStore`] (feature `tokio`, on by default): appends through [`Commit`], reads on the blocking pool |
//! | `error.rs` | [`Error`], [`RecordError`], [`Result`] |
//!
//! Durability, the on-disk format byte by byte and how both are tested:
//! `docs/storage.md`.

#[cfg(feature = "tokio")]
mod async_store;
mod commit;
mod compaction;
mod crypto;
mod doc_id;
mod error;
mod group_commit;
mod load;
mod memory;
mod outcome;
#[cfg(feature = "postgres")]
mod postgres;
mod record;
mod sqlite;
mod sqlite_write;
mod store;

#[cfg(feature = "tokio")]
pub use async_store::AsyncStore;
pub use commit::Commit;
pub use compaction::CompactionPolicy;
pub use crypto::EncryptionKey;
pub use doc_id::{validate_doc_id, MAX_DOC_ID_BYTES};
pub use error::{Error, RecordError, RecordKind, RecordRef, Result};
pub use load::{Replayed, SkippedRecord, StoredDoc};
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresStore, MAX_PG_READERS, PG_SCHEMA_VERSION};
pub use record::RECORD_VERSION;
pub use sqlite::{CheckReport, CommitStats, SqliteStore, FORMAT_VERSION};
pub use store::{Appended, CompactionReport, DocStats, Options, Store};
