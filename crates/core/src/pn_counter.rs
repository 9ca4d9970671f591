//! Positive-negative counter.
//!
//! Invariant: `inc` and `dec` of an entry each stay within `u64`; an operation
//! that would overflow one is refused with [`OverflowError`] and changes
//! nothing. The value is an `i128`, exact for any reachable state.

use crate::codec::{kind, Encode};
use crate::{Crdt, OverflowError, ReplicaId, VersionVector};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    ops: u64,
    inc: u64,
    dec: u64,
}

/// A counter that can go up and down.
///
/// # Semantics
///
/// The value is (sum of increments) - (sum of decrements), over
/// every replica. Each replica owns one entry `(ops, inc, dec)`; join keeps,
/// per replica, the entry with more ops (all three fields only grow).
///
/// ```
/// use weft_core::{Crdt, PnCounter, ReplicaId};
/// let (ra, rb) = (ReplicaId::new(1), ReplicaId::new(2));
/// let (mut a, mut b) = (PnCounter::new(), PnCounter::new());
/// let d1 = a.increment(ra, 10).unwrap();
/// let d2 = b.decrement(rb, 3).unwrap();
/// a.apply(&d2);
/// b.apply(&d1);
/// assert_eq!(a.value(), 7);
/// assert_eq!(a, b);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PnCounter {
    #[serde(deserialize_with = "deserialize_entries")]
    entries: BTreeMap<ReplicaId, Entry>,
}

fn deserialize_entries<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<ReplicaId, Entry>, D::Error> {
    crate::g_counter::canonical_entries(d, |e: &Entry| e.ops > 0)
}

impl PnCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `by` on behalf of `replica`; returns the delta to ship.
    pub fn increment(&mut self, replica: ReplicaId, by: u64) -> Result<PnCounter, OverflowError> {
        self.update(replica, by, 0)
    }

    /// Subtracts `by` on behalf of `replica`; returns the delta to ship.
    pub fn decrement(&mut self, replica: ReplicaId, by: u64) -> Result<PnCounter, OverflowError> {
        self.update(replica, 0, by)
    }

    /// Adds a signed amount (negative decrements).
    pub fn add(&mut self, replica: ReplicaId, amount: i64) -> Result<PnCounter, OverflowError> {
        if amount >= 0 {
            self.increment(replica, amount as u64)
        } else {
            self.decrement(replica, amount.unsigned_abs())
        }
    }

    fn update(
        &mut self,
        replica: ReplicaId,
        inc: u64,
        dec: u64,
    ) -> Result<PnCounter, OverflowError> {
        let e = self.entries.get(&replica).copied().unwrap_or_default();
        let next = Entry {
            ops: e.ops.checked_add(1).ok_or(OverflowError)?,
            inc: e.inc.checked_add(inc).ok_or(OverflowError)?,
            dec: e.dec.checked_add(dec).ok_or(OverflowError)?,
        };
        self.entries.insert(replica, next);
        let mut delta = PnCounter::new();
        delta.entries.insert(replica, next);
        Ok(delta)
    }

    /// What `replica` has added and subtracted in total: `(inc, dec)`.
    pub fn contribution(&self, replica: ReplicaId) -> (u64, u64) {
        self.entries
            .get(&replica)
            .map_or((0, 0), |e| (e.inc, e.dec))
    }

    /// Increments minus decrements, exact.
    pub fn value(&self) -> i128 {
        self.entries
            .values()
            .map(|e| e.inc as i128 - e.dec as i128)
            .sum()
    }
}

impl Crdt for PnCounter {
    type Delta = PnCounter;

    fn join(&mut self, other: &Self) {
        for (&r, &e) in &other.entries {
            let mine = self.entries.entry(r).or_default();
            if e.ops > mine.ops {
                *mine = e;
            }
        }
    }

    fn apply(&mut self, delta: &PnCounter) {
        self.join(delta);
    }

    fn version(&self) -> VersionVector {
        self.entries.iter().map(|(&r, e)| (r, e.ops)).collect()
    }

    fn delta_since(&self, since: &VersionVector) -> PnCounter {
        let entries = self
            .entries
            .iter()
            .filter(|(&r, e)| e.ops > since.get(r))
            .map(|(&r, &e)| (r, e))
            .collect();
        PnCounter { entries }
    }
}

impl Encode for PnCounter {
    const KIND: u8 = kind::PN_COUNTER;
    const NAME: &'static str = "PnCounter";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bug found by the property suite: decoding accepted unsorted or
    /// duplicate replicas and entries with `ops == 0`.
    #[test]
    fn decoding_rejects_non_canonical_counter_entries() {
        let enc = |entries: &[(u64, u64, u64, u64)]| {
            let pairs: Vec<(u64, (u64, u64, u64))> =
                entries.iter().map(|&(r, o, i, d)| (r, (o, i, d))).collect();
            let mut out = b"WEFT".to_vec();
            out.extend([crate::codec::FORMAT_VERSION, kind::PN_COUNTER]);
            out.extend(postcard::to_allocvec(&pairs).unwrap());
            out
        };
        let decode = |e: &[(u64, u64, u64, u64)]| crate::codec::decode::<PnCounter>(&enc(e));
        assert_eq!(decode(&[(1, 2, 5, 1), (3, 1, 0, 4)]).unwrap().value(), 0);
        assert!(decode(&[(3, 1, 0, 4), (1, 2, 5, 1)]).is_err(), "unsorted");
        assert!(decode(&[(1, 2, 5, 1), (1, 2, 5, 1)]).is_err(), "duplicate");
        assert!(decode(&[(1, 0, 0, 7)]).is_err(), "amount without ops");
    }

    #[test]
    fn overflow_is_an_error_in_both_directions() {
        let r = ReplicaId::new(1);
        let mut c = PnCounter::new();
        c.increment(r, u64::MAX).unwrap();
        c.decrement(r, u64::MAX).unwrap();
        let before = c.clone();
        assert_eq!(c.increment(r, 1), Err(OverflowError));
        assert_eq!(c.decrement(r, 1), Err(OverflowError));
        assert_eq!(c, before);
        assert_eq!(c.value(), 0);
        assert_eq!(
            c.add(ReplicaId::new(2), i64::MIN).unwrap().value(),
            i64::MIN as i128
        );
    }
}
