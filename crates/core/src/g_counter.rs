//! Grow-only counter.
//!
//! Invariant: `total` of an entry never exceeds `u64::MAX`; an increment that
//! would is refused with [`OverflowError`] and changes nothing.

use crate::codec::{kind, Encode};
use crate::{Crdt, OverflowError, ReplicaId, VersionVector};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One replica's contribution: `ops` increments summing to `total`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    ops: u64,
    total: u64,
}

/// A grow-only counter.
///
/// # Semantics
///
/// The value is the sum of every increment ever made, on any
/// replica. Each replica owns one entry `(ops, total)`: how many increments it
/// made and their sum. Join keeps, per replica, the entry with more ops (both
/// fields only grow, so this is a pointwise maximum).
///
/// Two replicas increment offline; after exchanging deltas both read the sum:
///
/// ```
/// use weft_core::{Crdt, GCounter, ReplicaId};
/// let (ra, rb) = (ReplicaId::new(1), ReplicaId::new(2));
/// let (mut a, mut b) = (GCounter::new(), GCounter::new());
/// let da = a.increment(ra, 2).unwrap();
/// let db = b.increment(rb, 5).unwrap();
/// a.apply(&db);
/// b.apply(&da);
/// assert_eq!((a.value(), b.value()), (7, 7));
/// // Overflow is an error, never a silent wrap:
/// assert!(a.increment(ra, u64::MAX).is_err());
/// assert_eq!(a.value(), 7);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GCounter {
    entries: BTreeMap<ReplicaId, Entry>,
}

impl GCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `by` on behalf of `replica`; returns the delta to ship.
    pub fn increment(&mut self, replica: ReplicaId, by: u64) -> Result<GCounter, OverflowError> {
        let e = self.entries.get(&replica).copied().unwrap_or_default();
        let next = Entry {
            ops: e.ops.checked_add(1).ok_or(OverflowError)?,
            total: e.total.checked_add(by).ok_or(OverflowError)?,
        };
        self.entries.insert(replica, next);
        let mut delta = GCounter::new();
        delta.entries.insert(replica, next);
        Ok(delta)
    }

    /// The sum of all increments. `u128`, so it cannot overflow.
    pub fn value(&self) -> u128 {
        self.entries.values().map(|e| e.total as u128).sum()
    }

    /// The sum contributed by one replica.
    pub fn contribution(&self, replica: ReplicaId) -> u64 {
        self.entries.get(&replica).map_or(0, |e| e.total)
    }
}

impl Crdt for GCounter {
    type Delta = GCounter;

    fn join(&mut self, other: &Self) {
        for (&r, &e) in &other.entries {
            let mine = self.entries.entry(r).or_default();
            if e.ops > mine.ops {
                *mine = e;
            }
        }
    }

    fn apply(&mut self, delta: &GCounter) {
        self.join(delta);
    }

    fn version(&self) -> VersionVector {
        self.entries.iter().map(|(&r, e)| (r, e.ops)).collect()
    }

    fn delta_since(&self, since: &VersionVector) -> GCounter {
        let entries = self
            .entries
            .iter()
            .filter(|(&r, e)| e.ops > since.get(r))
            .map(|(&r, &e)| (r, e))
            .collect();
        GCounter { entries }
    }
}

impl Encode for GCounter {
    const KIND: u8 = kind::G_COUNTER;
    const NAME: &'static str = "GCounter";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delta_since_sends_only_newer_entries() {
        let (ra, rb) = (ReplicaId::new(1), ReplicaId::new(2));
        let mut a = GCounter::new();
        a.increment(ra, 1).unwrap();
        a.increment(rb, 1).unwrap();
        let v = a.version();
        a.increment(ra, 4).unwrap();
        let d = a.delta_since(&v);
        assert_eq!(d.entries.len(), 1);
        assert_eq!(d.contribution(ra), 5);
    }

    #[test]
    fn overflow_leaves_counter_unchanged() {
        let r = ReplicaId::new(1);
        let mut a = GCounter::new();
        a.increment(r, u64::MAX).unwrap();
        let before = a.clone();
        assert_eq!(a.increment(r, 1), Err(OverflowError));
        assert_eq!(a, before);
        // Other replicas still add; the sum is exact in u128.
        a.increment(ReplicaId::new(2), u64::MAX).unwrap();
        assert_eq!(a.value(), 2 * u64::MAX as u128);
    }
}
