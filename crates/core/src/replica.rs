//! Replica identity.
//!
//! Invariant: a [`ReplicaId`] names exactly one writer. Two live replicas must
//! never share one, or their dots collide and convergence is lost; use
//! [`ReplicaId::random`] (64 random bits) unless the application already owns
//! a unique id per device and session.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The operating system's random source failed, so no replica id could be
/// minted safely.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random source is unavailable: {0}")]
pub struct RandomUnavailable(pub String);

/// A 64-bit identifier of one replica (one writer: a device, a tab, a process).
///
/// ```
/// use weft_core::ReplicaId;
/// let a = ReplicaId::random();
/// let b = ReplicaId::random();
/// assert_ne!(a, b);
/// assert_eq!(ReplicaId::new(7).get(), 7);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReplicaId(u64);

impl ReplicaId {
    /// Wraps an explicit id (tests, or ids the application already owns).
    pub const fn new(id: u64) -> Self {
        ReplicaId(id)
    }

    /// A fresh id from the operating system's random source.
    ///
    /// # Panics
    ///
    /// If the operating system's random source is unavailable. Two replicas
    /// sharing an id silently diverge, so there is no weaker fallback; use
    /// [`ReplicaId::try_random`] to handle that case.
    pub fn random() -> Self {
        match Self::try_random() {
            Ok(id) => id,
            Err(e) => panic!("{e}"),
        }
    }

    /// A fresh id from the operating system's random source, or an error if
    /// that source is unavailable (never a weaker substitute: duplicate ids
    /// mean divergence).
    ///
    /// ```
    /// use weft_core::ReplicaId;
    /// let id = ReplicaId::try_random().expect("the OS has a random source");
    /// assert_ne!(id, ReplicaId::try_random().unwrap());
    /// ```
    pub fn try_random() -> Result<Self, RandomUnavailable> {
        let mut buf = [0u8; 8];
        getrandom::fill(&mut buf).map_err(|e| RandomUnavailable(e.to_string()))?;
        Ok(ReplicaId(u64::from_le_bytes(buf)))
    }

    /// The raw 64-bit value.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Debug for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "R{:x}", self.0)
    }
}

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl From<u64> for ReplicaId {
    fn from(v: u64) -> Self {
        ReplicaId(v)
    }
}
