//! The [`Store`] trait both the client and the relay write through, and the
//! values it returns.

use crate::commit::Commit;
use crate::compaction::CompactionPolicy;
use crate::crypto::EncryptionKey;
use crate::load::{Replayed, StoredDoc};
pub use crate::outcome::{Appended, CompactionReport};
use crate::Result;
use std::fmt;
use std::time::SystemTime;
use weft_core::{Doc, ReplicaId};

/// A durable home for documents: per document, an append-only log of
/// updates and at most one snapshot that the log continues.
///
/// Implementations: [`SqliteStore`](crate::SqliteStore) (durable, the
/// default) and [`MemoryStore`](crate::MemoryStore) (tests only). Every
/// method blocks the calling thread; from async code use
/// [`AsyncStore`](crate::AsyncStore) or a blocking task.
///
/// ```
/// use weft_core::{Doc, ReplicaId};
/// use weft_persist::{MemoryStore, Store};
///
/// fn save_edit(store: &dyn Store, doc: &mut Doc) -> weft_persist::Result<()> {
///     let update = doc.transact(|tx| tx.counter("n")?.increment(1)).unwrap();
///     store.append("counter-doc", &update)?; // durable when this returns
///     Ok(())
/// }
/// let store = MemoryStore::new();
/// let mut doc = Doc::new(ReplicaId::random());
/// save_edit(&store, &mut doc).unwrap();
/// let back = store.load("counter-doc", ReplicaId::random()).unwrap().unwrap();
/// assert_eq!(back, doc);
/// ```
pub trait Store: Send + Sync + fmt::Debug {
    /// Appends an encoded update ([`Doc::transact`] or [`Doc::diff`]
    /// output) to `doc_id`'s log, creating the document if needed. When this
    /// returns `Ok`, the update is durable (for [`SqliteStore`](crate::SqliteStore):
    /// committed and fsynced). Bytes that do not decode as an update are
    /// refused with [`Error::InvalidUpdate`](crate::Error::InvalidUpdate).
    fn append(&self, doc_id: &str, update: &[u8]) -> Result<Appended>;

    /// Appends several updates to `doc_id`, each with [`Store::append`]'s
    /// guarantee, and returns one result per update in order. One update's
    /// failure does not fail the others. [`SqliteStore`](crate::SqliteStore)
    /// queues them all before waiting, so they share one commit (one fsync)
    /// instead of one each. Waits on [`Store::submit_many`].
    fn append_many(&self, doc_id: &str, updates: &[&[u8]]) -> Vec<Result<Appended>> {
        self.submit_many(doc_id, updates).wait()
    }

    /// [`Store::append_many`] for updates already decoded and checked
    /// ([`weft_core::Update`]): stores their bytes without decoding them
    /// again (stores with a writer; the default [`Store::submit_updates`]
    /// re-validates). Waits on [`Store::submit_updates`].
    ///
    /// ```
    /// use weft_core::doc::Limits;
    /// use weft_core::{Doc, ReplicaId, Update};
    /// use weft_persist::{MemoryStore, Store};
    /// let mut doc = Doc::new(ReplicaId::random());
    /// let bytes = doc.transact(|tx| tx.counter("n")?.increment(1)).unwrap();
    /// let update = Update::decode(bytes, &Limits::default()).unwrap();
    /// let store = MemoryStore::new();
    /// assert!(store.append_updates("d", &[&update])[0].is_ok());
    /// ```
    fn append_updates(
        &self,
        doc_id: &str,
        updates: &[&weft_core::Update],
    ) -> Vec<Result<Appended>> {
        self.submit_updates(doc_id, updates).wait()
    }

    /// Queues `updates` (decoded and checked by core) for appending to
    /// `doc_id` and returns at once: the [`Commit`] answers each append,
    /// in order, once it is durable. Appends queued later by anyone commit
    /// in the same or a later transaction, never an earlier one, so a
    /// caller that submits in order is stored in order.
    ///
    /// This is the seam for async code: awaiting the commit parks no
    /// thread. [`SqliteStore`](crate::SqliteStore) and
    /// `PostgresStore` queue on their writer; the default implementation
    /// (used by [`MemoryStore`](crate::MemoryStore)) appends on the
    /// calling thread and returns a settled commit, so a custom store
    /// without a writer blocks the caller here.
    ///
    /// ```
    /// use weft_core::doc::Limits;
    /// use weft_core::{Doc, ReplicaId, Update};
    /// use weft_persist::{MemoryStore, Store};
    /// let mut doc = Doc::new(ReplicaId::random());
    /// let bytes = doc.transact(|tx| tx.counter("n")?.increment(1)).unwrap();
    /// let update = Update::decode(bytes, &Limits::default()).unwrap();
    /// let commit = MemoryStore::new().submit_updates("d", &[&update]);
    /// assert_eq!(commit.wait()[0].as_ref().unwrap().seq, 1);
    /// ```
    fn submit_updates(&self, doc_id: &str, updates: &[&weft_core::Update]) -> Commit {
        let bytes: Vec<&[u8]> = updates.iter().map(|u| u.as_bytes()).collect();
        self.submit_many(doc_id, &bytes)
    }

    /// [`Store::submit_updates`] for encoded records that are checked here
    /// like [`Store::append_many`]'s (so not free of CPU work on the
    /// calling thread for large ones).
    ///
    /// ```
    /// use weft_core::{Doc, ReplicaId};
    /// use weft_persist::{MemoryStore, Store};
    /// let mut doc = Doc::new(ReplicaId::random());
    /// let bytes = doc.transact(|tx| tx.counter("n")?.increment(1)).unwrap();
    /// let results = MemoryStore::new().submit_many("d", &[&bytes, b"junk"]).wait();
    /// assert!(results[0].is_ok() && results[1].is_err());
    /// ```
    ///
    /// Stores with a writer override this and [`Store::submit_updates`];
    /// the default appends each record with [`Store::append`] on the
    /// calling thread.
    fn submit_many(&self, doc_id: &str, records: &[&[u8]]) -> Commit {
        Commit::ready(records.iter().map(|r| self.append(doc_id, r)).collect())
    }

    /// The verified records of `doc_id` (snapshot and the updates after it),
    /// or `None` if the document does not exist. Every record's checksum is
    /// checked; a bad or missing record is an error, never skipped.
    fn read(&self, doc_id: &str) -> Result<Option<StoredDoc>>;

    /// Loads `doc_id`: its snapshot with every later update applied, to be
    /// edited as `replica`. `None` if the document does not exist.
    ///
    /// A record that verified but does not replay is skipped and logged
    /// (`WARN`), never the reason the whole document fails to load; use
    /// [`Store::load_report`] to get the skipped records. Errors are those
    /// of [`Store::read`]: damaged or missing records, storage failures.
    fn load(&self, doc_id: &str, replica: ReplicaId) -> Result<Option<Doc>> {
        match self.read(doc_id)? {
            Some(stored) => stored.into_doc(doc_id, replica).map(Some),
            None => Ok(None),
        }
    }

    /// [`Store::load`] with a report: the document and every record that
    /// verified but did not replay ([`Replayed::skipped`]), so the caller
    /// can tell the user what is missing and keep working with the rest.
    /// Replay is not bounded by the pending-update limit: updates stored
    /// while waiting for a dependency come back waiting.
    ///
    /// ```
    /// use weft_core::{Doc, ReplicaId};
    /// use weft_persist::{MemoryStore, Store};
    /// let store = MemoryStore::new();
    /// let mut author = Doc::new(ReplicaId::new(1));
    /// let _lost = author.transact(|tx| tx.counter("n")?.increment(1)).unwrap();
    /// // Stored while waiting for `_lost`, which never arrived.
    /// let waiting = author.transact(|tx| tx.counter("n")?.increment(1)).unwrap();
    /// store.append("d", &waiting).unwrap();
    /// let report = store.load_report("d", ReplicaId::new(2)).unwrap().unwrap();
    /// assert!(report.is_complete());
    /// assert_eq!(report.doc.pending_updates(), 1, "it comes back waiting");
    /// assert!(store.load_report("absent", ReplicaId::new(2)).unwrap().is_none());
    /// ```
    fn load_report(&self, doc_id: &str, replica: ReplicaId) -> Result<Option<Replayed>> {
        Ok(self.read(doc_id)?.map(|stored| stored.replay(replica)))
    }

    /// Folds the log of `doc_id` into a new snapshot, atomically: the new
    /// snapshot and the removal of the folded updates and of the old
    /// snapshot commit together or not at all. `None` if the document does
    /// not exist.
    fn compact(&self, doc_id: &str) -> Result<Option<CompactionReport>>;

    /// All document ids, sorted.
    fn list(&self) -> Result<Vec<String>>;

    /// Deletes `doc_id` and all its records; returns whether it existed.
    fn delete(&self, doc_id: &str) -> Result<bool>;

    /// Log length, sizes and compaction history of `doc_id`.
    fn stats(&self, doc_id: &str) -> Result<Option<DocStats>>;
}

/// Per-document numbers from [`Store::stats`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DocStats {
    /// Updates in the log (after the snapshot).
    pub log_records: u64,
    /// Stored bytes of those updates (framing included).
    pub log_bytes: u64,
    /// Stored bytes of the snapshot (0 if none).
    pub snapshot_bytes: u64,
    /// Last seq the snapshot covers (0 if none).
    pub snapshot_seq: u64,
    /// Seq of the latest update ever appended (0 if none).
    pub last_seq: u64,
    /// Compactions so far.
    pub compactions: u64,
    /// When the last compaction committed.
    pub last_compaction: Option<SystemTime>,
}

/// How a store is opened.
///
/// ```
/// use weft_persist::{CompactionPolicy, EncryptionKey, Options};
/// let options = Options::default()
///     .with_compaction(CompactionPolicy { max_log_records: 500, ..CompactionPolicy::default() })
///     .with_encryption(EncryptionKey::from_bytes([42; 32]));
/// assert_eq!(options.compaction.max_log_records, 500);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// When logs are folded into snapshots.
    pub compaction: CompactionPolicy,
    /// Seal every record with this key (off by default). A store is created
    /// encrypted or plain and stays so: opening it the other way is an error.
    pub encryption: Option<EncryptionKey>,
    /// Most appends grouped into one transaction by the writer thread.
    pub max_batch: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            compaction: CompactionPolicy::default(),
            encryption: None,
            max_batch: 1024,
        }
    }
}

impl Options {
    /// Replaces the compaction policy.
    pub fn with_compaction(mut self, policy: CompactionPolicy) -> Self {
        self.compaction = policy;
        self
    }

    /// Encrypts records at rest with `key`.
    pub fn with_encryption(mut self, key: EncryptionKey) -> Self {
        self.encryption = Some(key);
        self
    }

    /// Caps how many appends share one transaction (at least 1).
    pub fn with_max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch.max(1);
        self
    }
}
