//! The contract every weft CRDT satisfies.
//!
//! Invariant (the laws, property-tested for every type in `tests/`):
//! `join` is commutative, associative and idempotent; `apply` of any delta,
//! in any order, any number of times, ends in the same state as joining the
//! states the deltas came from; `b.apply(&a.delta_since(&b.version()))`
//! leaves `b` equal to `join(a, b)`.

use crate::VersionVector;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

/// A delta-state CRDT: a join-semilattice whose changes ship as deltas.
///
/// Local mutators live on each type (`increment`, `insert`, `set`, ...); they
/// change the replica at once and return the delta to send to others.
///
/// ```
/// use weft_core::{Crdt, GCounter, ReplicaId};
/// let (ra, rb) = (ReplicaId::new(1), ReplicaId::new(2));
/// let mut a = GCounter::new();
/// let mut b = GCounter::new();
/// let d1 = a.increment(ra, 3).unwrap();
/// b.increment(rb, 4).unwrap();
/// b.apply(&d1);
/// b.apply(&d1); // duplicates are harmless
/// a.apply(&b.delta_since(&a.version()));
/// assert_eq!(a, b);
/// assert_eq!(a.value(), 7);
/// ```
pub trait Crdt: Clone + Default + PartialEq + Debug + Serialize + DeserializeOwned {
    /// What a mutator returns and `apply` accepts.
    type Delta: Clone + Debug + PartialEq + Serialize + DeserializeOwned;

    /// Merges another replica's full state into this one.
    fn join(&mut self, other: &Self);

    /// Merges a delta. Idempotent and order-independent.
    fn apply(&mut self, delta: &Self::Delta);

    /// The events this replica has seen, without gaps.
    fn version(&self) -> VersionVector;

    /// `replica`'s counter in [`Crdt::version`] (0 if absent). Types that
    /// build their version on demand answer without building it.
    ///
    /// ```
    /// use weft_core::{Crdt, ReplicaId, Text};
    /// let mut t = Text::new();
    /// t.insert(ReplicaId::new(1), 0, "hey");
    /// assert_eq!(t.version_of(ReplicaId::new(1)), t.version().get(ReplicaId::new(1)));
    /// assert_eq!(t.version_of(ReplicaId::new(2)), 0);
    /// ```
    fn version_of(&self, replica: crate::ReplicaId) -> u64 {
        self.version().get(replica)
    }

    /// Everything a replica at version `since` is missing.
    fn delta_since(&self, since: &VersionVector) -> Self::Delta;
}
