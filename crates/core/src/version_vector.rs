//! Version vectors: what a replica has seen, as one counter per writer.
//!
//! Invariant: an entry `r -> n` means every dot `(r, 1..=n)` has been seen;
//! entries are never zero (absent means zero), so two vectors that describe
//! the same history are equal as values and encode to the same bytes.

use crate::{DecodeError, Dot, ReplicaId};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// How two versions relate in the happened-before partial order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Causality {
    /// The left side is strictly older: the right has seen all of it and more.
    Before,
    /// Both have seen exactly the same events.
    Equal,
    /// The left side is strictly newer.
    After,
    /// Each has seen something the other has not.
    Concurrent,
}

/// A version vector: for each replica, how many of its events have been seen.
///
/// ```
/// use weft_core::{Causality, Dot, ReplicaId, VersionVector};
/// let (a, b) = (ReplicaId::new(1), ReplicaId::new(2));
/// let mut x = VersionVector::new();
/// let mut y = VersionVector::new();
/// x.increment(a);
/// y.increment(b);
/// assert_eq!(x.compare(&y), Causality::Concurrent);
/// y.join(&x);
/// assert_eq!(x.compare(&y), Causality::Before);
/// assert!(y.contains(Dot::new(a, 1)));
/// assert!(x < y);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct VersionVector {
    entries: BTreeMap<ReplicaId, u64>,
}

impl VersionVector {
    /// The empty version (nothing seen).
    pub fn new() -> Self {
        Self::default()
    }

    /// Events seen from `replica` (0 if none).
    pub fn get(&self, replica: ReplicaId) -> u64 {
        self.entries.get(&replica).copied().unwrap_or(0)
    }

    /// Whether the event `dot` is included in this version.
    pub fn contains(&self, dot: Dot) -> bool {
        dot.counter != 0 && dot.counter <= self.get(dot.replica)
    }

    /// Records the next event of `replica` and returns its dot.
    ///
    /// # Panics
    /// Never in practice: a replica would need 2^64 events.
    pub fn increment(&mut self, replica: ReplicaId) -> Dot {
        let next = self.get(replica).saturating_add(1);
        self.entries.insert(replica, next);
        Dot::new(replica, next)
    }

    /// The dot the next event of `replica` will get, without recording it.
    pub fn next_dot(&self, replica: ReplicaId) -> Dot {
        Dot::new(replica, self.get(replica).saturating_add(1))
    }

    /// Raises the entry of `dot.replica` to at least `dot.counter`.
    ///
    /// Only correct when every earlier dot of that replica has also been seen
    /// (use [`crate::DotSet`] to track gaps).
    pub fn observe(&mut self, dot: Dot) {
        if dot.counter == 0 {
            return;
        }
        let e = self.entries.entry(dot.replica).or_insert(0);
        *e = (*e).max(dot.counter);
    }

    /// Sets the entry of `replica` to exactly `counter` (0 removes it).
    pub fn set(&mut self, replica: ReplicaId, counter: u64) {
        if counter == 0 {
            self.entries.remove(&replica);
        } else {
            self.entries.insert(replica, counter);
        }
    }

    /// Pointwise maximum: afterwards `self` has seen everything either had.
    pub fn join(&mut self, other: &VersionVector) {
        for (&r, &n) in &other.entries {
            let e = self.entries.entry(r).or_insert(0);
            *e = (*e).max(n);
        }
    }

    /// Pointwise minimum: the events both have seen.
    pub fn meet(&self, other: &VersionVector) -> VersionVector {
        let entries = self
            .entries
            .iter()
            .filter_map(|(&r, &n)| {
                let m = n.min(other.get(r));
                (m > 0).then_some((r, m))
            })
            .collect();
        VersionVector { entries }
    }

    /// Where `self` stands relative to `other` in the causal partial order.
    pub fn compare(&self, other: &VersionVector) -> Causality {
        let mut less = false;
        let mut greater = false;
        for (&r, &n) in &self.entries {
            match n.cmp(&other.get(r)) {
                Ordering::Less => less = true,
                Ordering::Greater => greater = true,
                Ordering::Equal => {}
            }
        }
        for (&r, &n) in &other.entries {
            if !self.entries.contains_key(&r) && n > 0 {
                less = true;
            }
        }
        match (less, greater) {
            (false, false) => Causality::Equal,
            (true, false) => Causality::Before,
            (false, true) => Causality::After,
            (true, true) => Causality::Concurrent,
        }
    }

    /// Whether every event in `other` is in `self` (`self >= other`).
    pub fn dominates(&self, other: &VersionVector) -> bool {
        matches!(self.compare(other), Causality::After | Causality::Equal)
    }

    /// `(replica, counter)` pairs in replica order.
    pub fn iter(&self) -> impl Iterator<Item = (ReplicaId, u64)> + '_ {
        self.entries.iter().map(|(&r, &n)| (r, n))
    }

    /// Number of replicas with a non-zero entry.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing has been seen.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total number of events covered (sum of entries, saturating).
    pub fn total(&self) -> u64 {
        self.entries
            .values()
            .fold(0u64, |a, &n| a.saturating_add(n))
    }
}

impl PartialOrd for VersionVector {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.compare(other) {
            Causality::Before => Some(Ordering::Less),
            Causality::Equal => Some(Ordering::Equal),
            Causality::After => Some(Ordering::Greater),
            Causality::Concurrent => None,
        }
    }
}

impl std::fmt::Debug for VersionVector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.entries.iter()).finish()
    }
}

impl FromIterator<(ReplicaId, u64)> for VersionVector {
    fn from_iter<I: IntoIterator<Item = (ReplicaId, u64)>>(iter: I) -> Self {
        let mut v = VersionVector::new();
        for (r, n) in iter {
            v.observe(Dot::new(r, n));
        }
        v
    }
}

impl TryFrom<Vec<(ReplicaId, u64)>> for VersionVector {
    type Error = DecodeError;
    fn try_from(pairs: Vec<(ReplicaId, u64)>) -> Result<Self, DecodeError> {
        let mut entries = BTreeMap::new();
        let mut prev: Option<ReplicaId> = None;
        for (r, n) in pairs {
            if n == 0 {
                return Err(DecodeError::Invalid("version vector entry is zero"));
            }
            if prev.is_some_and(|p| p >= r) {
                return Err(DecodeError::Invalid(
                    "version vector replicas not strictly ascending",
                ));
            }
            prev = Some(r);
            entries.insert(r, n);
        }
        Ok(VersionVector { entries })
    }
}

/// Serialized as a sequence of `(replica, counter)` pairs in replica order,
/// without building an intermediate vector.
impl Serialize for VersionVector {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.entries.iter())
    }
}

/// Decoded entry by entry, each charged to the decode's budget before it is
/// stored (a long vector of tiny encodings cannot become a huge map), with
/// the same checks as `TryFrom<Vec<_>>`.
impl<'de> Deserialize<'de> for VersionVector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let pairs: Vec<(ReplicaId, u64)> = crate::codec::charged(d)?;
        VersionVector::try_from(pairs).map_err(serde::de::Error::custom)
    }
}

impl From<VersionVector> for Vec<(ReplicaId, u64)> {
    fn from(v: VersionVector) -> Self {
        v.entries.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vv(pairs: &[(u64, u64)]) -> VersionVector {
        pairs.iter().map(|&(r, n)| (ReplicaId::new(r), n)).collect()
    }

    #[test]
    fn compare_covers_all_four_cases() {
        assert_eq!(vv(&[(1, 2)]).compare(&vv(&[(1, 2)])), Causality::Equal);
        assert_eq!(vv(&[(1, 1)]).compare(&vv(&[(1, 2)])), Causality::Before);
        assert_eq!(vv(&[(1, 3)]).compare(&vv(&[(1, 2)])), Causality::After);
        assert_eq!(vv(&[(1, 3)]).compare(&vv(&[(2, 1)])), Causality::Concurrent);
        assert_eq!(vv(&[]).compare(&vv(&[(2, 1)])), Causality::Before);
    }

    #[test]
    fn meet_and_join() {
        let a = vv(&[(1, 3), (2, 1)]);
        let b = vv(&[(1, 1), (3, 4)]);
        let mut j = a.clone();
        j.join(&b);
        assert_eq!(j, vv(&[(1, 3), (2, 1), (3, 4)]));
        assert_eq!(a.meet(&b), vv(&[(1, 1)]));
    }

    #[test]
    fn decoding_rejects_non_canonical_vectors() {
        let zero = vec![(ReplicaId::new(1), 0u64)];
        assert!(VersionVector::try_from(zero).is_err());
        let unsorted = vec![(ReplicaId::new(2), 1u64), (ReplicaId::new(1), 1)];
        assert!(VersionVector::try_from(unsorted).is_err());
    }
}
