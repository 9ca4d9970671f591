//! Replica identity.
//!
//! Invariant: a [`ReplicaId`] names exactly one writer. Two live replicas must
//! never share one, or their dots collide and convergence is lost; use
//! [`ReplicaId::random`] (64 random bits) unless the application already owns
//! a unique id per device and session.

use serde::{Deserialize, Serialize};
use std::fmt;

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
    /// Falls back to a time- and address-derived value if the OS source is
    /// unavailable, which is still unique with overwhelming probability.
    pub fn random() -> Self {
        let mut buf = [0u8; 8];
        if getrandom::fill(&mut buf).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            let addr = &buf as *const _ as u64;
            buf = (nanos ^ addr.rotate_left(32) ^ 0x9E37_79B9_7F4A_7C15).to_le_bytes();
        }
        ReplicaId(u64::from_le_bytes(buf))
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
