//! Loading: verify a document's records against its bookkeeping, then
//! replay them (latest snapshot + every later update).
//!
//! Two different failures, treated differently:
//!
//! * **Damaged bytes** — a record that fails its checksum or seal, or
//!   records that disagree with the bookkeeping — are an error of
//!   [`Store::read`](crate::Store::read) (`Error::Corrupt`,
//!   `Error::Inconsistent`): the stored bytes are not what was written, and a
//!   gap is never replayed as if it were whole.
//! * **Intact records that do not replay** — bytes exactly as written that
//!   the document layer refuses (written by an older build before a check
//!   existed, or refused by a stricter one) — are skipped and reported
//!   ([`SkippedRecord`]), so one such record never makes the whole document
//!   unloadable and never traps the edits stored beside it.
//!
//! Replay is not bounded by the pending-update limit meant for network
//! input ([`weft_core::doc::Limits::max_pending_updates`]): the store is the
//! local truth, and updates that were stored while waiting for a dependency
//! come back waiting.

use crate::error::{RecordKind, RecordRef};
use crate::record::RecordCodec;
use crate::{Error, Result};
use std::fmt;
use weft_core::doc::Limits;
use weft_core::{Doc, DocError, ReplicaId};

/// A document's records as a backend read them, not yet verified.
#[derive(Debug)]
pub(crate) struct RawDoc {
    /// Backend-specific incarnation of the document (changes when it is
    /// deleted and created again), so a stale compaction cannot commit.
    pub(crate) key: i64,
    /// Seq the next append would get.
    pub(crate) next_seq: u64,
    /// Last seq covered by the snapshot (0: no snapshot).
    pub(crate) snapshot_seq: u64,
    /// Log records the bookkeeping says exist.
    pub(crate) log_count: u64,
    /// The snapshot record, if any was found.
    pub(crate) snapshot: Option<(u64, Vec<u8>)>,
    /// Log records found, ascending by seq.
    pub(crate) log: Vec<(u64, Vec<u8>)>,
}

/// A document's verified contents: the snapshot and the updates after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDoc {
    /// The snapshot ([`Doc::save`] bytes) and the last seq it covers.
    pub snapshot: Option<(u64, Vec<u8>)>,
    /// The updates after the snapshot, ascending by seq.
    pub updates: Vec<(u64, Vec<u8>)>,
}

/// A stored record that verified (checksum, seal, place in the log) but
/// that the document layer refused to replay, and why.
///
/// Reported by [`StoredDoc::replay`] and
/// [`Store::load_report`](crate::Store::load_report); the rest of the
/// document loads without it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedRecord {
    /// Which record (a snapshot, or an update by its seq).
    pub record: RecordRef,
    /// Why it did not replay.
    pub error: DocError,
}

impl SkippedRecord {
    /// This skip as an [`Error::Replay`] naming `doc_id` (what
    /// [`SqliteStore::check`](crate::SqliteStore::check) and compaction
    /// report).
    pub fn to_error(&self, doc_id: &str) -> Error {
        Error::Replay {
            doc_id: doc_id.to_owned(),
            record: self.record,
            source: self.error.clone(),
        }
    }
}

impl fmt::Display for SkippedRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.record, self.error)
    }
}

/// A document replayed from its records, and the records left out.
///
/// ```
/// use weft_core::{Doc, ReplicaId};
/// use weft_persist::StoredDoc;
/// let mut author = Doc::new(ReplicaId::new(1));
/// let first = author.transact(|tx| tx.text("t")?.insert(0, "a")).unwrap();
/// let second = author.transact(|tx| tx.text("t")?.insert(1, "b")).unwrap();
/// let stored = StoredDoc {
///     snapshot: None,
///     updates: vec![(1, first), (2, b"not an update".to_vec()), (3, second)],
/// };
/// let replayed = stored.replay(ReplicaId::new(2));
/// assert_eq!(replayed.doc.text("t").unwrap().to_string(), "ab");
/// assert_eq!(replayed.skipped.len(), 1);
/// assert_eq!(replayed.skipped[0].record.seq, 2);
/// assert!(!replayed.is_complete());
/// ```
#[derive(Debug)]
pub struct Replayed {
    /// Everything that replayed, to be edited as the replica asked for,
    /// with [`Limits::default`] for what it receives from now on (replace
    /// them with [`Doc::with_limits`]). Updates that were stored while
    /// waiting for a dependency are waiting again
    /// ([`Doc::pending_updates`]).
    pub doc: Doc,
    /// Records that verified but did not replay, in log order (a snapshot
    /// first). Empty when the whole document replayed.
    pub skipped: Vec<SkippedRecord>,
}

impl Replayed {
    /// Whether every record replayed.
    pub fn is_complete(&self) -> bool {
        self.skipped.is_empty()
    }
}

/// The limits replay runs under: none. The records were validated when they
/// were appended (or written by the document itself as a snapshot), so
/// the limits meant for untrusted network input — sizes, and above all the
/// pending-update buffer — do not apply: an update stored while it waited
/// for a dependency must come back waiting, however many there are. The
/// store also holds the loading replica's own earlier transactions when an
/// application resumes under a replica id it owns, so those are accepted
/// too (`allow_own_replica`).
fn replay_limits() -> Limits {
    Limits {
        max_input_bytes: usize::MAX,
        max_decoded_bytes: usize::MAX,
        max_update_authors: usize::MAX,
        max_pending_updates: usize::MAX,
        max_pending_bytes: usize::MAX,
        allow_own_replica: true,
    }
}

impl StoredDoc {
    /// Replays the snapshot and updates into a document edited as
    /// `replica`, skipping (and reporting) every record that verified but
    /// does not replay. Never fails: a snapshot that does not load leaves
    /// an empty document for the updates after it (those that depend on
    /// its content come back waiting for it, to be filled by a peer).
    /// Not bounded by the pending-update limit (see the module docs).
    ///
    /// ```
    /// use weft_core::{Doc, ReplicaId};
    /// use weft_persist::StoredDoc;
    /// let mut author = Doc::new(ReplicaId::new(1));
    /// let missing = author.transact(|tx| tx.counter("n")?.increment(1)).unwrap();
    /// // 5,000 updates that all wait for `missing`: more than a document
    /// // keeps waiting from the network, but the store is the local truth.
    /// let updates: Vec<(u64, Vec<u8>)> = (1..=5_000)
    ///     .map(|seq| (seq, author.transact(|tx| tx.counter("n")?.increment(1)).unwrap()))
    ///     .collect();
    /// let replayed = StoredDoc { snapshot: None, updates }.replay(ReplicaId::new(2));
    /// assert!(replayed.is_complete());
    /// let mut doc = replayed.doc;
    /// assert_eq!(doc.pending_updates(), 5_000);
    /// doc.apply(&missing).unwrap();
    /// assert_eq!(doc.counter("n").unwrap(), 5_001);
    /// ```
    pub fn replay(&self, replica: ReplicaId) -> Replayed {
        let limits = replay_limits();
        let mut skipped = Vec::new();
        let mut doc = match &self.snapshot {
            Some((seq, bytes)) => match Doc::load_with_limits(bytes, replica, limits) {
                Ok(doc) => doc,
                Err(error) => {
                    skipped.push(SkippedRecord {
                        record: RecordRef {
                            kind: RecordKind::Snapshot,
                            seq: *seq,
                        },
                        error,
                    });
                    Doc::new(replica).with_limits(limits)
                }
            },
            None => Doc::new(replica).with_limits(limits),
        };
        for (seq, update) in &self.updates {
            if let Err(error) = doc.apply(update) {
                skipped.push(SkippedRecord {
                    record: RecordRef {
                        kind: RecordKind::Update,
                        seq: *seq,
                    },
                    error,
                });
            }
        }
        Replayed {
            doc: doc.with_limits(Limits::default()),
            skipped,
        }
    }

    /// Replays the snapshot and updates into a document edited as `replica`
    /// ([`StoredDoc::replay`]), logging each skipped record at `WARN`
    /// (target `weft_persist`); `doc_id` only names the document in the
    /// log. Replay no longer fails as a whole because of one record, so
    /// this returns `Ok` whenever it is called; the `Result` is kept for
    /// compatibility. Use [`StoredDoc::replay`] to get the skipped records.
    pub fn into_doc(self, doc_id: &str, replica: ReplicaId) -> Result<Doc> {
        let replayed = self.replay(replica);
        for skipped in &replayed.skipped {
            tracing::warn!(doc_id, record = %skipped.record, error = %skipped.error,
                "stored record skipped: it does not replay");
        }
        Ok(replayed.doc)
    }

    /// Replays everything or fails with the first record that does not
    /// replay ([`Error::Replay`]): for compaction, which must never fold a
    /// document without one of its records (the fold would delete it).
    pub(crate) fn into_doc_strict(self, doc_id: &str, replica: ReplicaId) -> Result<Doc> {
        let replayed = self.replay(replica);
        match replayed.skipped.first() {
            Some(skipped) => Err(skipped.to_error(doc_id)),
            None => Ok(replayed.doc),
        }
    }

    /// The last seq these records cover.
    pub fn last_seq(&self) -> u64 {
        self.updates
            .last()
            .map(|(s, _)| *s)
            .or(self.snapshot.as_ref().map(|(s, _)| *s))
            .unwrap_or(0)
    }
}

/// Checks `raw` against its bookkeeping and every record's checksum (and
/// seal), returning the payloads. The first problem is the error: nothing is
/// skipped.
pub(crate) fn verify(codec: &RecordCodec, doc_id: &str, raw: RawDoc) -> Result<StoredDoc> {
    let inconsistent = |detail: String| Error::Inconsistent {
        doc_id: doc_id.to_owned(),
        detail,
    };
    let snapshot = match (raw.snapshot_seq, raw.snapshot) {
        (0, None) => None,
        (0, Some((seq, _))) => {
            return Err(inconsistent(format!(
                "snapshot through #{seq} found but none is recorded"
            )))
        }
        (want, None) => return Err(inconsistent(format!("snapshot through #{want} is missing"))),
        (want, Some((seq, _))) if seq != want => {
            return Err(inconsistent(format!(
                "snapshot through #{seq} found, #{want} recorded"
            )))
        }
        (_, Some((seq, record))) => {
            let kind = RecordKind::Snapshot;
            let payload = codec
                .open(doc_id, kind, seq, &record)
                .map_err(|reason| corrupt(doc_id, kind, seq, reason))?;
            Some((seq, payload))
        }
    };
    if raw.log.len() as u64 != raw.log_count {
        return Err(inconsistent(format!(
            "{} updates recorded after #{}, {} found",
            raw.log_count,
            raw.snapshot_seq,
            raw.log.len()
        )));
    }
    let mut updates = Vec::with_capacity(raw.log.len());
    let mut prev = raw.snapshot_seq;
    for (seq, record) in raw.log {
        if seq <= prev || seq >= raw.next_seq {
            return Err(inconsistent(format!(
                "update #{seq} out of place (after #{prev}, next is #{})",
                raw.next_seq
            )));
        }
        prev = seq;
        let kind = RecordKind::Update;
        let payload = codec
            .open(doc_id, kind, seq, &record)
            .map_err(|reason| corrupt(doc_id, kind, seq, reason))?;
        updates.push((seq, payload));
    }
    Ok(StoredDoc { snapshot, updates })
}

fn corrupt(doc_id: &str, kind: RecordKind, seq: u64, reason: crate::RecordError) -> Error {
    Error::Corrupt {
        doc_id: doc_id.to_owned(),
        record: RecordRef { kind, seq },
        reason,
    }
}

/// The bytes of one append: checked raw bytes, or an update core decoded
/// (shared, not copied).
#[derive(Debug)]
pub(crate) enum Payload {
    Raw(Vec<u8>),
    Update(weft_core::Update),
}

impl Payload {
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match self {
            Payload::Raw(b) => b,
            Payload::Update(u) => u.as_bytes(),
        }
    }
}

/// What a store's writer is handed for `updates` appended to `doc_id`: each
/// checked ([`validate_doc_id`](crate::validate_doc_id), [`validate_update`])
/// and owned, or the reason it is refused. Shared by every store's
/// `append_many`.
pub(crate) fn checked_appends<'a>(
    doc_id: &'a str,
    updates: &'a [&'a [u8]],
) -> impl Iterator<Item = Result<(String, Payload)>> + 'a {
    updates.iter().map(move |update| {
        crate::validate_doc_id(doc_id)?;
        validate_update(doc_id, update)?;
        Ok((doc_id.to_owned(), Payload::Raw(update.to_vec())))
    })
}

/// [`checked_appends`] for updates core already decoded and checked
/// ([`weft_core::Update`]): their bytes are taken as they are. Shared by
/// every store's `append_updates`.
pub(crate) fn trusted_appends<'a>(
    doc_id: &'a str,
    updates: &'a [&'a weft_core::Update],
) -> impl Iterator<Item = Result<(String, Payload)>> + 'a {
    updates.iter().map(move |update| {
        crate::validate_doc_id(doc_id)?;
        Ok((doc_id.to_owned(), Payload::Update((*update).clone())))
    })
}

/// Refuses bytes that are not a weft update before they are stored, so one
/// bad append cannot make a document unloadable. Checked as a fresh
/// document would take it with the default limits; the validating
/// document's replica id is not a reason to refuse (any writer may append
/// its own updates, whatever its id).
pub(crate) fn validate_update(doc_id: &str, update: &[u8]) -> Result<()> {
    let limits = Limits {
        allow_own_replica: true,
        ..Limits::default()
    };
    Doc::new(ReplicaId::new(0))
        .with_limits(limits)
        .apply(update)
        .map(|_| ())
        .map_err(|source| Error::InvalidUpdate {
            doc_id: doc_id.to_owned(),
            source,
        })
}
