//! Dot sets: arbitrary sets of events, stored as per-replica ranges.
//!
//! Invariant: for each replica the ranges are sorted, disjoint, non-adjacent
//! and non-empty, and a replica with no dots has no entry. The representation
//! is therefore canonical: equal sets are equal values with equal encodings.
//! A set that is downward closed (every dot since 1) is exactly one range per
//! replica, so a [`crate::VersionVector`] is the common, compact case; gaps
//! (dots received out of order, or removed dots) cost one range each.

use crate::{DecodeError, Dot, ReplicaId, VersionVector};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Sorted, disjoint, non-adjacent inclusive ranges of counters.
#[derive(Clone, Default, PartialEq, Eq, Hash, Debug)]
struct Ranges(Vec<(u64, u64)>);

impl Ranges {
    fn contains(&self, c: u64) -> bool {
        match self.0.binary_search_by(|&(s, _)| s.cmp(&c)) {
            Ok(_) => true,
            Err(0) => false,
            Err(i) => self.0[i - 1].1 >= c,
        }
    }

    /// Inserts `[s, e]` (inclusive), merging with neighbours.
    fn insert(&mut self, s: u64, e: u64) {
        debug_assert!(s >= 1 && s <= e);
        // First range that could touch [s, e]: its end + 1 >= s.
        let lo = self.0.partition_point(|&(_, re)| re.saturating_add(1) < s);
        // First range that starts strictly after e + 1.
        let hi = self.0.partition_point(|&(rs, _)| rs <= e.saturating_add(1));
        if lo >= hi {
            self.0.insert(lo, (s, e));
        } else {
            let ns = s.min(self.0[lo].0);
            let ne = e.max(self.0[hi - 1].1);
            self.0.splice(lo..hi, std::iter::once((ns, ne)));
        }
    }

    /// Removes `[s, e]` (inclusive).
    fn remove(&mut self, s: u64, e: u64) {
        let mut out = Vec::with_capacity(self.0.len() + 1);
        for &(rs, re) in &self.0 {
            if re < s || rs > e {
                out.push((rs, re));
                continue;
            }
            if rs < s {
                out.push((rs, s - 1));
            }
            if re > e {
                out.push((e + 1, re));
            }
        }
        self.0 = out;
    }

    /// The counters in `self` and not in `other`, in one linear sweep.
    fn difference(&self, other: &Ranges) -> Ranges {
        let mut out = Vec::with_capacity(self.0.len());
        let mut j = 0;
        for &(s, e) in &self.0 {
            let mut start = s;
            // Skip other's ranges that end before this one starts.
            while j < other.0.len() && other.0[j].1 < start {
                j += 1;
            }
            let mut k = j;
            while start <= e {
                match other.0.get(k) {
                    Some(&(os, oe)) if os <= e => {
                        if os > start {
                            out.push((start, os - 1));
                        }
                        if oe >= e {
                            start = e.saturating_add(1);
                            if oe == u64::MAX {
                                break;
                            }
                        } else {
                            start = oe + 1;
                            k += 1;
                        }
                    }
                    _ => {
                        out.push((start, e));
                        break;
                    }
                }
            }
        }
        Ranges(out)
    }

    /// Length of the run starting at 1 (0 if 1 is missing).
    fn prefix(&self) -> u64 {
        match self.0.first() {
            Some(&(1, e)) => e,
            _ => 0,
        }
    }

    fn count(&self) -> u64 {
        self.0.iter().map(|&(s, e)| e - s + 1).sum()
    }

    fn validate(v: Vec<(u64, u64)>) -> Result<Self, DecodeError> {
        let mut prev_end: Option<u64> = None;
        for &(s, e) in &v {
            if s == 0 || s > e {
                return Err(DecodeError::Invalid("dot range empty or starts at zero"));
            }
            if let Some(pe) = prev_end {
                if pe.saturating_add(1) >= s {
                    return Err(DecodeError::Invalid(
                        "dot ranges overlap, touch or are unsorted",
                    ));
                }
            }
            prev_end = Some(e);
        }
        if v.is_empty() {
            return Err(DecodeError::Invalid("empty dot range list"));
        }
        Ok(Ranges(v))
    }
}

/// A set of dots, compressed into ranges per replica.
///
/// Used as the causal context of the observed-remove types: the dots a replica
/// has seen, including the ones whose effect has since been removed.
///
/// ```
/// use weft_core::{Dot, DotSet, ReplicaId};
/// let r = ReplicaId::new(1);
/// let mut s = DotSet::new();
/// s.insert(Dot::new(r, 1));
/// s.insert(Dot::new(r, 3));
/// assert!(!s.contains(Dot::new(r, 2)));
/// assert_eq!(s.version().get(r), 1); // the gap at 2 stops the prefix
/// s.insert(Dot::new(r, 2));
/// assert_eq!(s.version().get(r), 3);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(
    try_from = "Vec<(ReplicaId, Vec<(u64, u64)>)>",
    into = "Vec<(ReplicaId, Vec<(u64, u64)>)>"
)]
pub struct DotSet {
    replicas: BTreeMap<ReplicaId, Ranges>,
}

impl DotSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `dot` is in the set.
    pub fn contains(&self, dot: Dot) -> bool {
        self.replicas
            .get(&dot.replica)
            .is_some_and(|r| r.contains(dot.counter))
    }

    /// Adds one dot (counter 0 is ignored: it names no event).
    pub fn insert(&mut self, dot: Dot) {
        if dot.counter == 0 {
            return;
        }
        self.replicas
            .entry(dot.replica)
            .or_default()
            .insert(dot.counter, dot.counter);
    }

    /// Adds dots `start..=end` of `replica`.
    pub fn insert_range(&mut self, replica: ReplicaId, start: u64, end: u64) {
        let start = start.max(1);
        if start > end {
            return;
        }
        self.replicas.entry(replica).or_default().insert(start, end);
    }

    /// Removes one dot.
    pub fn remove(&mut self, dot: Dot) {
        if let Some(r) = self.replicas.get_mut(&dot.replica) {
            r.remove(dot.counter, dot.counter);
            if r.0.is_empty() {
                self.replicas.remove(&dot.replica);
            }
        }
    }

    /// Adds every dot of `other`.
    pub fn union(&mut self, other: &DotSet) {
        for (&rep, ranges) in &other.replicas {
            let mine = self.replicas.entry(rep).or_default();
            for &(s, e) in &ranges.0 {
                mine.insert(s, e);
            }
        }
    }

    /// The dots in `self` and not in `other`; linear in the number of ranges.
    pub fn difference(&self, other: &DotSet) -> DotSet {
        let mut replicas = BTreeMap::new();
        for (&rep, mine) in &self.replicas {
            let rest = match other.replicas.get(&rep) {
                Some(theirs) => mine.difference(theirs),
                None => mine.clone(),
            };
            if !rest.0.is_empty() {
                replicas.insert(rep, rest);
            }
        }
        DotSet { replicas }
    }

    /// Adds every dot covered by `version`.
    pub fn union_version(&mut self, version: &VersionVector) {
        for (rep, n) in version.iter() {
            self.insert_range(rep, 1, n);
        }
    }

    /// Removes every dot covered by `version`.
    pub fn subtract_version(&mut self, version: &VersionVector) {
        for (rep, n) in version.iter() {
            if let Some(r) = self.replicas.get_mut(&rep) {
                r.remove(1, n);
                if r.0.is_empty() {
                    self.replicas.remove(&rep);
                }
            }
        }
    }

    /// The downward-closed part of the set: for each replica, the counters
    /// `1..=n` it holds without a gap.
    pub fn version(&self) -> VersionVector {
        self.replicas
            .iter()
            .map(|(&r, ranges)| (r, ranges.prefix()))
            .filter(|&(_, n)| n > 0)
            .collect()
    }

    /// Whether the set is exactly downward closed (no gaps anywhere).
    pub fn is_contiguous(&self) -> bool {
        self.replicas
            .values()
            .all(|r| r.0.len() == 1 && r.0[0].0 == 1)
    }

    /// Highest counter held for `replica` (0 if none).
    pub fn max_counter(&self, replica: ReplicaId) -> u64 {
        self.replicas
            .get(&replica)
            .and_then(|r| r.0.last())
            .map_or(0, |&(_, e)| e)
    }

    /// The next unused dot of `replica` (one past the highest held).
    pub fn next_dot(&self, replica: ReplicaId) -> Dot {
        Dot::new(replica, self.max_counter(replica).saturating_add(1))
    }

    /// Number of dots in the set (saturating).
    pub fn count(&self) -> u64 {
        self.replicas
            .values()
            .fold(0u64, |a, r| a.saturating_add(r.count()))
    }

    /// Number of stored ranges: the size of the encoding.
    pub fn range_count(&self) -> usize {
        self.replicas.values().map(|r| r.0.len()).sum()
    }

    /// Whether the set has no dots.
    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    /// `(replica, start, end)` inclusive ranges in order.
    pub fn ranges(&self) -> impl Iterator<Item = (ReplicaId, u64, u64)> + '_ {
        self.replicas
            .iter()
            .flat_map(|(&r, rs)| rs.0.iter().map(move |&(s, e)| (r, s, e)))
    }
}

impl std::fmt::Debug for DotSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.replicas.iter().map(|(r, rs)| (r, &rs.0)))
            .finish()
    }
}

impl From<&VersionVector> for DotSet {
    fn from(v: &VersionVector) -> Self {
        let mut s = DotSet::new();
        s.union_version(v);
        s
    }
}

impl TryFrom<Vec<(ReplicaId, Vec<(u64, u64)>)>> for DotSet {
    type Error = DecodeError;
    fn try_from(v: Vec<(ReplicaId, Vec<(u64, u64)>)>) -> Result<Self, DecodeError> {
        let mut replicas = BTreeMap::new();
        let mut prev: Option<ReplicaId> = None;
        for (r, ranges) in v {
            if prev.is_some_and(|p| p >= r) {
                return Err(DecodeError::Invalid(
                    "dot set replicas not strictly ascending",
                ));
            }
            prev = Some(r);
            replicas.insert(r, Ranges::validate(ranges)?);
        }
        Ok(DotSet { replicas })
    }
}

impl From<DotSet> for Vec<(ReplicaId, Vec<(u64, u64)>)> {
    fn from(s: DotSet) -> Self {
        s.replicas.into_iter().map(|(r, rs)| (r, rs.0)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: ReplicaId = ReplicaId::new(9);

    fn d(c: u64) -> Dot {
        Dot::new(R, c)
    }

    #[test]
    fn inserts_merge_into_ranges() {
        let mut s = DotSet::new();
        for c in [5, 1, 3, 2, 4, 9] {
            s.insert(d(c));
        }
        assert_eq!(s.ranges().collect::<Vec<_>>(), vec![(R, 1, 5), (R, 9, 9)]);
        assert_eq!(s.count(), 6);
        s.insert_range(R, 6, 8);
        assert_eq!(s.ranges().collect::<Vec<_>>(), vec![(R, 1, 9)]);
    }

    #[test]
    fn remove_splits_ranges() {
        let mut s = DotSet::new();
        s.insert_range(R, 1, 10);
        s.remove(d(4));
        assert!(!s.contains(d(4)));
        assert!(s.contains(d(3)) && s.contains(d(5)));
        assert_eq!(s.version().get(R), 3);
        let mut v = VersionVector::new();
        v.set(R, 6);
        s.subtract_version(&v);
        assert_eq!(s.ranges().collect::<Vec<_>>(), vec![(R, 7, 10)]);
    }

    #[test]
    fn difference_matches_pointwise_model() {
        let mut a = DotSet::new();
        let mut b = DotSet::new();
        for c in (1..200).filter(|c| c % 3 != 0) {
            a.insert(d(c));
        }
        for c in (1..200).filter(|c| c % 5 == 0 || (50..90).contains(c)) {
            b.insert(d(c));
        }
        b.insert(Dot::new(ReplicaId::new(1), 4));
        let diff = a.difference(&b);
        for c in 1..210 {
            assert_eq!(
                diff.contains(d(c)),
                a.contains(d(c)) && !b.contains(d(c)),
                "dot {c}"
            );
        }
        let mut edge = DotSet::new();
        edge.insert_range(R, u64::MAX - 3, u64::MAX);
        let mut cut = DotSet::new();
        cut.insert_range(R, u64::MAX - 1, u64::MAX);
        assert_eq!(
            edge.difference(&cut).ranges().collect::<Vec<_>>(),
            vec![(R, u64::MAX - 3, u64::MAX - 2)]
        );
    }

    #[test]
    fn decoding_rejects_non_canonical_ranges() {
        let bad = vec![(R, vec![(3u64, 4u64), (5, 6)])];
        assert!(DotSet::try_from(bad).is_err());
        let zero = vec![(R, vec![(0u64, 4u64)])];
        assert!(DotSet::try_from(zero).is_err());
        let ok = vec![(R, vec![(1u64, 4u64), (6, 6)])];
        assert!(DotSet::try_from(ok).is_ok());
    }
}
