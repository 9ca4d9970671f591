//! Loading: verify a document's records against its bookkeeping, then
//! replay them (latest snapshot + every later update).

use crate::error::{RecordKind, RecordRef};
use crate::record::RecordCodec;
use crate::{Error, Result};
use weft_core::{Doc, ReplicaId};

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

impl StoredDoc {
    /// Replays the snapshot and updates into a document edited as `replica`.
    /// `doc_id` only names the document in errors.
    pub fn into_doc(self, doc_id: &str, replica: ReplicaId) -> Result<Doc> {
        let mut doc = match &self.snapshot {
            Some((seq, bytes)) => Doc::load(bytes, replica).map_err(|source| Error::Replay {
                doc_id: doc_id.to_owned(),
                record: RecordRef {
                    kind: RecordKind::Snapshot,
                    seq: *seq,
                },
                source,
            })?,
            None => Doc::new(replica),
        };
        for (seq, update) in &self.updates {
            doc.apply(update).map_err(|source| Error::Replay {
                doc_id: doc_id.to_owned(),
                record: RecordRef {
                    kind: RecordKind::Update,
                    seq: *seq,
                },
                source,
            })?;
        }
        Ok(doc)
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

/// Refuses bytes that are not a weft update before they are stored, so one
/// bad append cannot make a document unloadable.
pub(crate) fn validate_update(doc_id: &str, update: &[u8]) -> Result<()> {
    Doc::new(ReplicaId::new(0))
        .apply(update)
        .map(|_| ())
        .map_err(|source| Error::InvalidUpdate {
            doc_id: doc_id.to_owned(),
            source,
        })
}
