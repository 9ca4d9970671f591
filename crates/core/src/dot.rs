//! Dots: the unique name of one event.
//!
//! Invariant: counters start at 1. The `n`-th event of a replica is the dot
//! `(replica, n)`, so a version-vector entry `n` means both "the last dot seen"
//! and "the number of events seen" from that replica.

use crate::ReplicaId;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One event: the `counter`-th event made by `replica` (counters start at 1).
///
/// ```
/// use weft_core::{Dot, ReplicaId};
/// let d = Dot::new(ReplicaId::new(1), 3);
/// assert_eq!(d.counter, 3);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    /// Who made the event.
    pub replica: ReplicaId,
    /// Its sequence number at that replica, from 1.
    pub counter: u64,
}

impl Dot {
    /// Builds a dot.
    pub const fn new(replica: ReplicaId, counter: u64) -> Self {
        Dot { replica, counter }
    }
}

impl fmt::Debug for Dot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}@{}", self.replica, self.counter)
    }
}
