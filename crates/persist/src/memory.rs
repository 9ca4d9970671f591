//! An in-memory [`Store`] for tests (this crate's and other crates'): same
//! records, checksums, encryption and compaction policy as the SQLite store,
//! nothing durable.

use crate::compaction::{prepare, Plan};
use crate::crypto::Cipher;
use crate::error::RecordKind;
use crate::load::{validate_update, verify, RawDoc, StoredDoc};
use crate::record::RecordCodec;
use crate::store::{Appended, CompactionReport, DocStats, Options, Store};
use crate::{validate_doc_id, Result};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

/// A store that keeps everything in memory. **Not durable**: for tests.
///
/// Cheap to clone (shared state). Compaction runs inline, on the appending
/// thread, when the policy says so.
///
/// ```
/// use weft_core::{Doc, ReplicaId};
/// use weft_persist::{MemoryStore, Store};
/// let store = MemoryStore::new();
/// let mut doc = Doc::new(ReplicaId::new(1));
/// let u = doc.transact(|tx| tx.text("t")?.insert(0, "hi")).unwrap();
/// assert_eq!(store.append("a", &u).unwrap().seq, 1);
/// assert_eq!(store.list().unwrap(), vec!["a".to_string()]);
/// assert!(store.delete("a").unwrap());
/// assert!(store.load("a", ReplicaId::new(2)).unwrap().is_none());
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    codec: RecordCodec,
    options: Options,
}

#[derive(Default)]
struct State {
    docs: BTreeMap<String, MemDoc>,
    next_key: i64,
}

struct MemDoc {
    key: i64,
    next_seq: u64,
    snapshot: Option<(u64, Vec<u8>)>,
    log: BTreeMap<u64, Vec<u8>>,
    log_bytes: u64,
    compactions: u64,
    last_compaction: Option<SystemTime>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("docs", &self.lock().docs.len())
            .field("encrypted", &self.options.encryption.is_some())
            .finish()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store with default options.
    pub fn new() -> Self {
        Self::with_options(Options::default())
    }

    /// An empty store with `options` (compaction policy, encryption).
    pub fn with_options(options: Options) -> Self {
        MemoryStore {
            state: Arc::default(),
            codec: RecordCodec::new(options.encryption.as_ref().map(Cipher::new)),
            options,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        }
    }

    fn read_raw(&self, doc_id: &str) -> Option<RawDoc> {
        let state = self.lock();
        let d = state.docs.get(doc_id)?;
        Some(RawDoc {
            key: d.key,
            next_seq: d.next_seq,
            snapshot_seq: d.snapshot.as_ref().map_or(0, |(s, _)| *s),
            log_count: d.log.len() as u64,
            snapshot: d.snapshot.clone(),
            log: d.log.iter().map(|(s, r)| (*s, r.clone())).collect(),
        })
    }
}

impl Store for MemoryStore {
    fn append(&self, doc_id: &str, update: &[u8]) -> Result<Appended> {
        validate_doc_id(doc_id)?;
        validate_update(doc_id, update)?;
        let appended = {
            let mut state = self.lock();
            let state = &mut *state;
            let d = match state.docs.get_mut(doc_id) {
                Some(d) => d,
                None => {
                    state.next_key += 1;
                    state.docs.entry(doc_id.to_owned()).or_insert(MemDoc {
                        key: state.next_key,
                        next_seq: 1,
                        snapshot: None,
                        log: BTreeMap::new(),
                        log_bytes: 0,
                        compactions: 0,
                        last_compaction: None,
                    })
                }
            };
            let seq = d.next_seq;
            let record = self.codec.seal(doc_id, RecordKind::Update, seq, update)?;
            d.log_bytes += record.len() as u64;
            d.log.insert(seq, record);
            d.next_seq += 1;
            Appended {
                seq,
                log_records: d.log.len() as u64,
                log_bytes: d.log_bytes,
            }
        };
        if self
            .options
            .compaction
            .should_compact(appended.log_records, appended.log_bytes)
        {
            self.compact(doc_id)?;
        }
        Ok(appended)
    }

    fn read(&self, doc_id: &str) -> Result<Option<StoredDoc>> {
        validate_doc_id(doc_id)?;
        match self.read_raw(doc_id) {
            Some(raw) => verify(&self.codec, doc_id, raw).map(Some),
            None => Ok(None),
        }
    }

    fn compact(&self, doc_id: &str) -> Result<Option<CompactionReport>> {
        validate_doc_id(doc_id)?;
        loop {
            let Some(raw) = self.read_raw(doc_id) else {
                return Ok(None);
            };
            let commit = match prepare(&self.codec, doc_id, raw)? {
                Plan::Nothing(report) => return Ok(Some(report)),
                Plan::Commit(commit) => commit,
            };
            let mut state = self.lock();
            let Some(d) = state.docs.get_mut(doc_id) else {
                return Ok(None);
            };
            if d.key != commit.key
                || d.snapshot.as_ref().map_or(0, |(s, _)| *s) != commit.base_snapshot_seq
            {
                continue; // changed meanwhile: fold again
            }
            let len = commit.record.len() as u64;
            d.snapshot = Some((commit.through_seq, commit.record));
            d.log = d.log.split_off(&(commit.through_seq + 1));
            d.log_bytes = d.log.values().map(|r| r.len() as u64).sum();
            d.compactions += 1;
            d.last_compaction = Some(SystemTime::now());
            return Ok(Some(CompactionReport {
                through_seq: commit.through_seq,
                folded: commit.folded,
                snapshot_bytes: len,
            }));
        }
    }

    fn list(&self) -> Result<Vec<String>> {
        Ok(self.lock().docs.keys().cloned().collect())
    }

    fn delete(&self, doc_id: &str) -> Result<bool> {
        validate_doc_id(doc_id)?;
        Ok(self.lock().docs.remove(doc_id).is_some())
    }

    fn stats(&self, doc_id: &str) -> Result<Option<DocStats>> {
        validate_doc_id(doc_id)?;
        Ok(self.lock().docs.get(doc_id).map(|d| DocStats {
            log_records: d.log.len() as u64,
            log_bytes: d.log_bytes,
            snapshot_bytes: d.snapshot.as_ref().map_or(0, |(_, r)| r.len() as u64),
            snapshot_seq: d.snapshot.as_ref().map_or(0, |(s, _)| *s),
            last_seq: d.next_seq - 1,
            compactions: d.compactions,
            last_compaction: d.last_compaction,
        }))
    }
}
