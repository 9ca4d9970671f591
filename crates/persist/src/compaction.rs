//! Compaction: when to fold a log into a snapshot, how to fold it, and the
//! background thread that does it for [`SqliteStore`](crate::SqliteStore).
//!
//! Folding = replay the verified snapshot and log into a [`weft_core::Doc`]
//! and save it. The result covers the log up to the last update read; updates
//! appended meanwhile keep higher seqs and stay in the log. Backends commit
//! the new snapshot, the removal of the folded updates and the removal of the
//! old snapshot in one transaction, and only if the document is still the
//! one that was read (same incarnation, same snapshot) — a stale fold is
//! discarded and retried.

use crate::error::RecordKind;
use crate::load::{verify, RawDoc, StoredDoc};
use crate::outcome::CompactionReport;
use crate::record::RecordCodec;
use crate::Result;
use std::collections::HashSet;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use weft_core::ReplicaId;

/// When a document's log is folded into a new snapshot.
///
/// With `automatic` set, a document is compacted in the background once its
/// log holds more than `max_log_records` updates or `max_log_bytes` stored
/// bytes, so loading replays at most about that much (plus what is appended
/// while a compaction runs). [`Store::compact`](crate::Store::compact) works
/// whatever the policy.
///
/// ```
/// use weft_persist::CompactionPolicy;
/// let p = CompactionPolicy::default();
/// assert!(!p.should_compact(10, 1_000));
/// assert!(p.should_compact(p.max_log_records + 1, 0));
/// assert!(!CompactionPolicy::manual().should_compact(u64::MAX, u64::MAX));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactionPolicy {
    /// Compact when the log holds more updates than this.
    pub max_log_records: u64,
    /// Compact when the log's stored bytes exceed this.
    pub max_log_bytes: u64,
    /// Compact automatically (otherwise only on explicit calls).
    pub automatic: bool,
}

impl Default for CompactionPolicy {
    /// 1000 updates or 4 MiB, automatic.
    fn default() -> Self {
        CompactionPolicy {
            max_log_records: 1000,
            max_log_bytes: 4 << 20,
            automatic: true,
        }
    }
}

impl CompactionPolicy {
    /// Never compacts on its own.
    pub fn manual() -> Self {
        CompactionPolicy {
            automatic: false,
            ..CompactionPolicy::default()
        }
    }

    /// Whether a log of this size should be folded now.
    pub fn should_compact(&self, log_records: u64, log_bytes: u64) -> bool {
        self.automatic && (log_records > self.max_log_records || log_bytes > self.max_log_bytes)
    }
}

/// A folded document: the snapshot bytes and the last seq they cover.
#[derive(Debug)]
pub(crate) struct Folded {
    pub(crate) through_seq: u64,
    pub(crate) snapshot: Vec<u8>,
    pub(crate) folded: u64,
}

/// Replays `stored` and saves the result; `None` if the log is empty.
pub(crate) fn fold(doc_id: &str, stored: StoredDoc) -> Result<Option<Folded>> {
    if stored.updates.is_empty() {
        return Ok(None);
    }
    let through_seq = stored.last_seq();
    let folded = stored.updates.len() as u64;
    // The replica id is irrelevant: the snapshot does not record it. Strict:
    // a record that does not replay must not be folded away.
    let doc = stored.into_doc_strict(doc_id, ReplicaId::new(0))?;
    Ok(Some(Folded {
        through_seq,
        snapshot: doc.save(),
        folded,
    }))
}

/// A folded, sealed snapshot ready to replace the log it covers.
pub(crate) struct CompactCommit {
    /// The document incarnation that was read.
    pub(crate) key: i64,
    /// The snapshot it was folded onto (must still be current).
    pub(crate) base_snapshot_seq: u64,
    pub(crate) through_seq: u64,
    pub(crate) folded: u64,
    pub(crate) record: Vec<u8>,
}

/// What a compaction attempt found to do.
pub(crate) enum Plan {
    /// The log is empty: nothing to fold (the report says so).
    Nothing(CompactionReport),
    /// A new snapshot to commit, if the document has not changed meanwhile.
    Commit(CompactCommit),
}

/// Verifies `raw`, folds its log and seals the new snapshot: the part of a
/// compaction that is the same for every backend.
pub(crate) fn prepare(codec: &RecordCodec, doc_id: &str, raw: RawDoc) -> Result<Plan> {
    let key = raw.key;
    let base_snapshot_seq = raw.snapshot_seq;
    let Some(folded) = fold(doc_id, verify(codec, doc_id, raw)?)? else {
        return Ok(Plan::Nothing(CompactionReport {
            through_seq: base_snapshot_seq,
            folded: 0,
            snapshot_bytes: 0,
        }));
    };
    let record = codec.seal(
        doc_id,
        RecordKind::Snapshot,
        folded.through_seq,
        &folded.snapshot,
    )?;
    Ok(Plan::Commit(CompactCommit {
        key,
        base_snapshot_seq,
        through_seq: folded.through_seq,
        folded: folded.folded,
        record,
    }))
}

/// A thread that compacts documents on request, one at a time; requests
/// for a document already queued are merged.
pub(crate) struct Compactor {
    tx: Option<mpsc::Sender<String>>,
    queued: Arc<Mutex<HashSet<String>>>,
    handle: Option<thread::JoinHandle<()>>,
}

/// A cloneable way to ask a [`Compactor`] for work.
#[derive(Clone)]
pub(crate) struct CompactorHandle {
    tx: mpsc::Sender<String>,
    queued: Arc<Mutex<HashSet<String>>>,
}

impl CompactorHandle {
    /// Queues `doc_id` unless it is already queued.
    pub(crate) fn request(&self, doc_id: &str) {
        let mut q = match self.queued.lock() {
            Ok(q) => q,
            Err(poisoned) => poisoned.into_inner(),
        };
        if q.insert(doc_id.to_owned()) && self.tx.send(doc_id.to_owned()).is_err() {
            q.remove(doc_id);
        }
    }
}

impl Compactor {
    /// Starts the thread; `work` compacts one document.
    pub(crate) fn spawn<F>(work: F) -> std::io::Result<Compactor>
    where
        F: Fn(&str) + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<String>();
        let queued = Arc::new(Mutex::new(HashSet::new()));
        let q = queued.clone();
        let handle = thread::Builder::new()
            .name("weft-persist-compactor".into())
            .spawn(move || {
                while let Ok(doc_id) = rx.recv() {
                    // Dequeue before working: appends during the work may
                    // queue the document again.
                    match q.lock() {
                        Ok(mut q) => q.remove(&doc_id),
                        Err(poisoned) => poisoned.into_inner().remove(&doc_id),
                    };
                    work(&doc_id);
                }
            })?;
        Ok(Compactor {
            tx: Some(tx),
            queued,
            handle: Some(handle),
        })
    }

    /// A handle for requesting work.
    pub(crate) fn handle(&self) -> Option<CompactorHandle> {
        self.tx.as_ref().map(|tx| CompactorHandle {
            tx: tx.clone(),
            queued: self.queued.clone(),
        })
    }

    /// Stops accepting work and waits for the thread, once every other
    /// handle is gone.
    pub(crate) fn shutdown(&mut self) {
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
