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
    #[serde(deserialize_with = "deserialize_entries")]
    entries: BTreeMap<ReplicaId, Entry>,
}

fn deserialize_entries<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<ReplicaId, Entry>, D::Error> {
    canonical_entries(d, |e: &Entry| e.ops > 0)
}

/// Deserializes a counter's per-replica entries, rejecting what no replica
/// writes: replicas not strictly ascending (unsorted or duplicate) and
/// entries that fail `valid` (no operations). Accepting them would decode
/// the same counter from several encodings, or a counter whose entry
/// (`ops == 0` with a non-zero amount) never merges and so never converges.
pub(crate) fn canonical_entries<'de, D, E>(
    d: D,
    valid: fn(&E) -> bool,
) -> Result<BTreeMap<ReplicaId, E>, D::Error>
where
    D: serde::Deserializer<'de>,
    E: Deserialize<'de>,
{
    struct Visit<E>(fn(&E) -> bool);
    impl<'de, E: Deserialize<'de>> serde::de::Visitor<'de> for Visit<E> {
        type Value = BTreeMap<ReplicaId, E>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("counter entries in strictly ascending replica order")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            let mut prev: Option<ReplicaId> = None;
            while let Some((r, e)) = map.next_entry::<ReplicaId, E>()? {
                if prev.is_some_and(|p| p >= r) {
                    return Err(serde::de::Error::custom(
                        "counter replicas not strictly ascending",
                    ));
                }
                if !(self.0)(&e) {
                    return Err(serde::de::Error::custom("counter entry without operations"));
                }
                prev = Some(r);
                out.insert(r, e);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Visit(valid))
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

    /// Bug found by the property suite: decoding accepted unsorted or
    /// duplicate replicas and entries with `ops == 0`.
    #[test]
    fn decoding_rejects_non_canonical_counter_entries() {
        let enc = |entries: &[(u64, u64, u64)]| {
            let pairs: Vec<(u64, (u64, u64))> =
                entries.iter().map(|&(r, o, t)| (r, (o, t))).collect();
            let mut out = b"WEFT".to_vec();
            out.extend([crate::codec::FORMAT_VERSION, kind::G_COUNTER]);
            out.extend(postcard::to_allocvec(&pairs).unwrap());
            out
        };
        let ok: GCounter = crate::codec::decode(&enc(&[(1, 1, 5), (2, 2, 0)])).unwrap();
        assert_eq!(ok.value(), 5);
        let decode = |e: &[(u64, u64, u64)]| crate::codec::decode::<GCounter>(&enc(e));
        assert!(decode(&[(2, 1, 5), (1, 1, 5)]).is_err(), "unsorted");
        assert!(decode(&[(1, 1, 5), (1, 2, 6)]).is_err(), "duplicate");
        assert!(decode(&[(1, 0, 5)]).is_err(), "amount without ops");
        assert!(decode(&[(1, 0, 0)]).is_err(), "empty entry");
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
