//! How a Yjs room is kept in the store.
//!
//! A Yjs document `d` is stored under the key `yjs/d` (a key no weft
//! client can name: document ids cannot contain `/`) as a weft document
//! whose root map holds Yjs v1 updates as byte registers:
//!
//! - `u0`, `u1`, …: the updates received since the last compaction, one
//!   weft transaction each, appended through [`Store::append_many`] (one
//!   commit, one fsync per batch);
//! - `s`: one Yjs update holding the whole document as of the last
//!   compaction (yrs `encode_state_as_update_v1`).
//!
//! Compaction (every [`COMPACT_UPDATES`] updates or [`COMPACT_BYTES`]
//! bytes) is one transaction that writes `s` and removes every `u*` key;
//! update keys are then numbered from 0 again, so the removals' tombstones
//! are reused rather than accumulating. The store folds its own log into a
//! weft snapshot as usual, so what the store holds converges to one Yjs
//! snapshot update. Records are checksummed and, when the store is
//! encrypted, sealed like every other document.
//!
//! Every function here blocks: call it on the blocking pool.

use weft_core::{Doc, ReplicaId};
use weft_persist::Store;

/// Updates in the log that trigger a compaction.
pub(crate) const COMPACT_UPDATES: u64 = 500;
/// Bytes in the log that trigger a compaction.
pub(crate) const COMPACT_BYTES: u64 = 4 << 20;
/// Largest snapshot folded into one transaction (the store refuses updates
/// past 64 MiB); a larger document keeps its log.
pub(crate) const MAX_SNAPSHOT_BYTES: usize = 48 << 20;

const SNAPSHOT: &str = "s";

/// The store key of Yjs document `doc`.
pub(crate) fn key(doc: &str) -> String {
    format!("yjs/{doc}")
}

/// Whether the store holds Yjs document `doc`.
pub(crate) fn exists(store: &dyn Store, doc: &str) -> Result<bool, String> {
    store
        .stats(&key(doc))
        .map(|s| s.is_some())
        .map_err(|e| e.to_string())
}

/// Whether the store holds weft document `doc`.
pub(crate) fn weft_exists(store: &dyn Store, doc: &str) -> Result<bool, String> {
    store
        .stats(doc)
        .map(|s| s.is_some())
        .map_err(|e| e.to_string())
}

/// A room's persistent side: the weft document its updates are written to.
#[derive(Debug)]
pub(crate) struct RoomStore {
    key: String,
    doc: Doc,
    /// Next `u` key.
    next: u64,
    /// Bytes of the `u*` updates.
    log_bytes: u64,
}

/// What [`RoomStore::load`] found.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) store: RoomStore,
    /// The snapshot, then every logged update (Yjs v1), in no particular
    /// order: yrs integrates them whatever the order.
    pub(crate) updates: Vec<Vec<u8>>,
}

impl RoomStore {
    /// Loads Yjs document `doc` (empty if absent).
    pub(crate) fn load(store: &dyn Store, doc: &str) -> Result<Loaded, String> {
        let key = key(doc);
        let replica = ReplicaId::try_random().map_err(|e| e.to_string())?;
        let wdoc = match store.load(&key, replica) {
            Ok(Some(d)) => d,
            Ok(None) => Doc::new(replica),
            Err(e) => return Err(format!("stored Yjs document: {e}")),
        };
        let mut updates = Vec::new();
        let mut next = 0;
        let mut log_bytes = 0;
        let root = wdoc.root();
        for (k, _) in root.keys() {
            let bytes = match root.register::<Vec<u8>>(&k) {
                Ok(Some(b)) => b,
                Ok(None) => continue,
                Err(e) => return Err(format!("stored Yjs record {k}: {e}")),
            };
            if k != SNAPSHOT {
                if let Some(n) = k.strip_prefix('u').and_then(|n| n.parse::<u64>().ok()) {
                    next = next.max(n + 1);
                    log_bytes += bytes.len() as u64;
                } else {
                    continue;
                }
            }
            updates.push(bytes);
        }
        Ok(Loaded {
            store: RoomStore {
                key,
                doc: wdoc,
                next,
                log_bytes,
            },
            updates,
        })
    }

    /// Queues `updates` on the store's writer (one commit) without waiting:
    /// the returned commit settles once every one is on disk. Checks the
    /// records on the calling thread (cheap for small batches).
    pub(crate) fn submit(
        &mut self,
        store: &dyn Store,
        updates: &[&[u8]],
    ) -> Result<weft_persist::Commit, String> {
        let encoded = self.stage(updates)?;
        let refs: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
        Ok(store.submit_many(&self.key, &refs))
    }

    /// The log records of `updates`, numbered after the last one.
    fn stage(&mut self, updates: &[&[u8]]) -> Result<Vec<Vec<u8>>, String> {
        let mut encoded = Vec::with_capacity(updates.len());
        for u in updates {
            let name = format!("u{}", self.next);
            let bytes = self
                .doc
                .transact(|tx| tx.root().put(&name, *u))
                .map_err(|e| e.to_string())?;
            self.next += 1;
            self.log_bytes += u.len() as u64;
            encoded.push(bytes);
        }
        Ok(encoded)
    }

    /// Whether the log is long enough to fold.
    pub(crate) fn wants_compaction(&self) -> bool {
        self.next >= COMPACT_UPDATES || self.log_bytes >= COMPACT_BYTES
    }

    /// Replaces the log with `snapshot` (the whole document), durably.
    pub(crate) fn compact(&mut self, store: &dyn Store, snapshot: &[u8]) -> Result<(), String> {
        if snapshot.len() > MAX_SNAPSHOT_BYTES {
            return Err(format!(
                "snapshot of {} bytes is over {MAX_SNAPSHOT_BYTES}: the log is kept",
                snapshot.len()
            ));
        }
        let names: Vec<String> = self
            .doc
            .root()
            .keys()
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with('u'))
            .collect();
        let bytes = self
            .doc
            .transact(|tx| {
                let mut root = tx.root();
                root.put(SNAPSHOT, snapshot)?;
                for k in &names {
                    root.remove(k);
                }
                Ok(())
            })
            .map_err(|e| e.to_string())?;
        store.append(&self.key, &bytes).map_err(|e| e.to_string())?;
        self.next = 0;
        self.log_bytes = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_persist::MemoryStore;

    #[test]
    fn updates_survive_and_compaction_replaces_the_log() {
        let store = MemoryStore::new();
        let mut room = RoomStore::load(&store, "d").unwrap().store;
        assert!(room
            .submit(&store, &[b"one", b"two"])
            .unwrap()
            .wait()
            .iter()
            .all(Result::is_ok));
        let again = RoomStore::load(&store, "d").unwrap();
        let mut got = again.updates.clone();
        got.sort();
        assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec()]);
        assert!(exists(&store, "d").unwrap() && !weft_exists(&store, "d").unwrap());
        let mut room = again.store;
        room.compact(&store, b"snap").unwrap();
        assert!(room
            .submit(&store, &[b"three"])
            .unwrap()
            .wait()
            .iter()
            .all(Result::is_ok));
        let mut got = RoomStore::load(&store, "d").unwrap().updates;
        got.sort();
        assert_eq!(got, vec![b"snap".to_vec(), b"three".to_vec()]);
    }
}
