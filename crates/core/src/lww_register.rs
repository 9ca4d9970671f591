//! Last-writer-wins register.
//!
//! Invariant: `version` covers the dot of the current write and of every write
//! it superseded.

use crate::codec::{kind, Encode};
use crate::{Crdt, Dot, HlcTimestamp, ReplicaId, VersionVector};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::fmt::Debug;

/// One stamped write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Write<T> {
    stamp: HlcTimestamp,
    dot: Dot,
    value: T,
}

impl<T> Write<T> {
    /// The LWW order: timestamp, then replica, then counter (unique per write).
    fn key(&self) -> (HlcTimestamp, ReplicaId, u64) {
        (self.stamp, self.dot.replica, self.dot.counter)
    }
}

/// A last-writer-wins register.
///
/// # Semantics
///
/// Every write carries a hybrid-logical-clock timestamp; the value
/// is the write with the greatest `(timestamp, replica)` pair, a total order,
/// so every replica picks the same winner. A write made after observing the
/// current value is stamped past it (see [`crate::Hlc`]), so it always wins
/// over what it saw, whatever the device clocks say; only writes that never
/// saw each other are decided by the clock. Concurrent writes other than the
/// winner are discarded: use [`crate::MvRegister`] to keep them.
///
/// ```
/// use weft_core::{Crdt, LwwRegister, ReplicaId};
/// let (ra, rb) = (ReplicaId::new(1), ReplicaId::new(2));
/// let mut a = LwwRegister::new();
/// let mut b = LwwRegister::new();
/// let d1 = a.set(ra, 1u32, 7_200_000);
/// b.apply(&d1);
/// // b saw "draft", so its write wins even with a clock an hour behind:
/// let d2 = b.set(rb, 2u32, 3_600_000);
/// a.apply(&d2);
/// assert_eq!(a.get(), Some(&2));
/// assert_eq!(a, b);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "LwwRepr<T>", bound = "T: Serialize + DeserializeOwned")]
pub struct LwwRegister<T> {
    current: Option<Write<T>>,
    version: VersionVector,
}

/// The serialized shape of [`LwwRegister`], validated on the way in.
#[derive(Deserialize)]
struct LwwRepr<T> {
    current: Option<Write<T>>,
    version: VersionVector,
}

impl<T> TryFrom<LwwRepr<T>> for LwwRegister<T> {
    type Error = crate::DecodeError;
    fn try_from(r: LwwRepr<T>) -> Result<Self, crate::DecodeError> {
        match &r.current {
            Some(w) if !r.version.contains(w.dot) => Err(crate::DecodeError::Invalid(
                "lww-register write outside its version",
            )),
            None if !r.version.is_empty() => Err(crate::DecodeError::Invalid(
                "lww-register version without a write",
            )),
            _ => Ok(LwwRegister {
                current: r.current,
                version: r.version,
            }),
        }
    }
}

impl<T> Default for LwwRegister<T> {
    fn default() -> Self {
        LwwRegister {
            current: None,
            version: VersionVector::new(),
        }
    }
}

impl<T: Clone + Debug + PartialEq + Serialize + DeserializeOwned> LwwRegister<T> {
    /// An empty register.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `value` with the wall clock `now_ms`; the stamp is moved past the
    /// current write if the clock is behind it. Returns the delta to ship.
    pub fn set(&mut self, replica: ReplicaId, value: T, now_ms: u64) -> Self {
        let floor = self.current.as_ref().map(|w| w.stamp);
        let stamp = match floor {
            Some(f) if f.physical >= now_ms => f.successor(),
            _ => HlcTimestamp::new(now_ms, 0),
        };
        self.set_stamped(replica, value, stamp)
    }

    /// Writes `value` with a timestamp from the caller's [`crate::Hlc`],
    /// still moved past the current write if it is not already after it.
    pub fn set_stamped(&mut self, replica: ReplicaId, value: T, stamp: HlcTimestamp) -> Self {
        let stamp = match &self.current {
            Some(w) if w.stamp >= stamp => w.stamp.successor(),
            _ => stamp,
        };
        let dot = self.version.increment(replica);
        self.current = Some(Write { stamp, dot, value });
        self.clone()
    }

    /// The current value.
    pub fn get(&self) -> Option<&T> {
        self.current.as_ref().map(|w| &w.value)
    }

    /// The timestamp and writer of the current value.
    pub fn stamp(&self) -> Option<(HlcTimestamp, ReplicaId)> {
        self.current.as_ref().map(|w| (w.stamp, w.dot.replica))
    }
}

impl<T: Clone + Debug + PartialEq + Serialize + DeserializeOwned> Crdt for LwwRegister<T> {
    type Delta = LwwRegister<T>;

    fn join(&mut self, other: &Self) {
        if let Some(theirs) = &other.current {
            let take = match &self.current {
                None => true,
                Some(mine) => theirs.key().cmp(&mine.key()) == Ordering::Greater,
            };
            if take {
                self.current = Some(theirs.clone());
            }
        }
        self.version.join(&other.version);
    }

    fn apply(&mut self, delta: &Self) {
        self.join(delta);
    }

    fn version(&self) -> VersionVector {
        self.version.clone()
    }

    fn delta_since(&self, since: &VersionVector) -> Self {
        if since.dominates(&self.version) {
            Self::default()
        } else {
            self.clone()
        }
    }
}

impl<T: Clone + Debug + PartialEq + Serialize + DeserializeOwned> Encode for LwwRegister<T> {
    const KIND: u8 = kind::LWW_REGISTER;
    const NAME: &'static str = "LwwRegister";
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bug found by the property suite: decoding accepted a current write
    /// whose dot is outside the version (and a version with no write), a
    /// state no replica reaches and that `delta_since` would never ship.
    #[test]
    fn decoding_rejects_write_outside_version() {
        let (ra, rb) = (ReplicaId::new(1), ReplicaId::new(2));
        let mut good = LwwRegister::new();
        good.set(ra, 7u8, 100);
        let bytes = crate::codec::encode(&good);
        assert_eq!(
            crate::codec::decode::<LwwRegister<u8>>(&bytes),
            Ok(good.clone())
        );
        let mut outside = good.clone();
        outside.current.as_mut().unwrap().dot = Dot::new(rb, 1);
        let bytes = crate::codec::encode(&outside);
        assert!(crate::codec::decode::<LwwRegister<u8>>(&bytes).is_err());
        let mut no_write = good;
        no_write.current = None;
        let bytes = crate::codec::encode(&no_write);
        assert!(crate::codec::decode::<LwwRegister<u8>>(&bytes).is_err());
    }

    #[test]
    fn concurrent_writes_pick_max_timestamp_then_replica() {
        let (ra, rb) = (ReplicaId::new(1), ReplicaId::new(2));
        let mut a = LwwRegister::new();
        let mut b = LwwRegister::new();
        let da = a.set(ra, 'a', 50);
        let db = b.set(rb, 'b', 50);
        a.apply(&db);
        b.apply(&da);
        assert_eq!(a.get(), Some(&'b'), "same time: higher replica id wins");
        assert_eq!(a, b);
        let da2 = a.set(ra, 'c', 10);
        b.apply(&da2);
        assert_eq!(b.get(), Some(&'c'), "a write that saw the winner beats it");
    }
}
