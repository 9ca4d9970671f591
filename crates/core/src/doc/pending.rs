//! Updates waiting for missing dependencies, indexed by the dependency each
//! waits on, so releasing them costs time in proportion to what is
//! released, not to what waits.
//!
//! Invariant: every entry is filed under exactly one `(replica, counter)`
//! it needs and the document lacked when it was filed; `bytes` is the sum
//! of the entries' accounted sizes; a body is kept at most once.

use super::update::UpdateBody;
use crate::{ReplicaId, VersionVector};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

struct Entry {
    body: Arc<UpdateBody>,
    /// Accounted size (decoded bytes where known).
    len: usize,
    hash: u64,
}

/// The waiting updates of one document.
#[derive(Default)]
pub(crate) struct Pending {
    /// By arrival (ids ascend), so snapshots list them in a stable order.
    entries: BTreeMap<u64, Entry>,
    /// Entry ids by the dependency they wait on: `(replica, counter, id)`.
    /// (Sets of tuples, not maps of lists: filing an entry allocates no
    /// list of its own.)
    by_need: BTreeSet<(ReplicaId, u64, u64)>,
    /// Entry ids by the hash of their encoding, to spot a resent copy:
    /// `(hash, id)`.
    by_hash: BTreeSet<(u64, u64)>,
    /// Every `(replica, counter)` named by a waiting body's `from`, counted:
    /// the highest per replica, where the document lacks it, is what the
    /// waiting updates miss (kept here so asking costs nothing per update).
    needs: BTreeMap<ReplicaId, BTreeMap<u64, u32>>,
    bytes: usize,
    next: u64,
}

/// A stable hash of an update's encoding.
pub(crate) fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// A dependency of `from` that `version` lacks, if any.
pub(crate) fn first_need(
    from: &VersionVector,
    version: &VersionVector,
) -> Option<(ReplicaId, u64)> {
    from.iter().find(|&(r, n)| n > version.get(r))
}

impl Pending {
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether this body (with this encoding hash) already waits.
    pub(crate) fn contains(&self, body: &UpdateBody, hash: u64) -> bool {
        self.by_hash
            .range((hash, 0)..=(hash, u64::MAX))
            .any(|(_, id)| self.entries.get(id).is_some_and(|e| *e.body == *body))
    }

    /// Files `body`, which needs `need`.
    pub(crate) fn insert(
        &mut self,
        body: Arc<UpdateBody>,
        len: usize,
        hash: u64,
        need: (ReplicaId, u64),
    ) {
        let id = self.next;
        self.next += 1;
        self.bytes = self.bytes.saturating_add(len);
        self.by_hash.insert((hash, id));
        self.by_need.insert((need.0, need.1, id));
        for (r, n) in body.from.iter() {
            *self.needs.entry(r).or_default().entry(n).or_default() += 1;
        }
        self.entries.insert(id, Entry { body, len, hash });
    }

    /// What the waiting updates need that `version` lacks: per replica, the
    /// highest counter some waiting `from` names above `version`. Costs one
    /// lookup per replica named, not a pass over the waiting updates.
    pub(crate) fn missing(&self, version: &VersionVector) -> VersionVector {
        let mut need = VersionVector::new();
        for (&r, counts) in &self.needs {
            if let Some((&n, _)) = counts.last_key_value() {
                if n > version.get(r) {
                    need.observe(crate::Dot::new(r, n));
                }
            }
        }
        need
    }

    /// Takes the ids filed under a dependency of `replica` at or below
    /// `have` into `ids` (emptied first), by arrival.
    pub(crate) fn due(&mut self, replica: ReplicaId, have: u64, ids: &mut Vec<u64>) {
        ids.clear();
        let range = (replica, 0, 0)..=(replica, have, u64::MAX);
        while let Some(&key) = self.by_need.range(range.clone()).next() {
            self.by_need.remove(&key);
            ids.push(key.2);
        }
        ids.sort_unstable();
    }

    /// The body of a filed entry.
    pub(crate) fn body(&self, id: u64) -> Option<&UpdateBody> {
        self.entries.get(&id).map(|e| &*e.body)
    }

    /// Files entry `id` (taken by [`Pending::due`]) under another need.
    pub(crate) fn refile(&mut self, id: u64, need: (ReplicaId, u64)) {
        self.by_need.insert((need.0, need.1, id));
    }

    /// Removes entry `id` (taken by [`Pending::due`]); its body and size.
    pub(crate) fn remove(&mut self, id: u64) -> Option<(Arc<UpdateBody>, usize)> {
        let e = self.entries.remove(&id)?;
        self.bytes = self.bytes.saturating_sub(e.len);
        for (r, n) in e.body.from.iter() {
            if let Some(counts) = self.needs.get_mut(&r) {
                if let Some(c) = counts.get_mut(&n) {
                    *c -= 1;
                    if *c == 0 {
                        counts.remove(&n);
                    }
                }
                if counts.is_empty() {
                    self.needs.remove(&r);
                }
            }
        }
        self.by_hash.remove(&(e.hash, id));
        Some((e.body, e.len))
    }

    /// The waiting bodies, by arrival.
    pub(crate) fn bodies(&self) -> impl ExactSizeIterator<Item = &UpdateBody> {
        self.entries.values().map(|e| &*e.body)
    }
}
