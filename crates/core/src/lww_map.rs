//! Map with field-level last-writer-wins merge.
//!
//! Invariant: every entry's dot is in the context.

use crate::codec::{kind, Encode};
use crate::{Crdt, DecodeError, Dot, DotSet, HlcTimestamp, ReplicaId, VersionVector};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Debug;

/// Bounds for map keys.
pub trait Key: Ord + Clone + Debug + Serialize + DeserializeOwned {}
impl<T: Ord + Clone + Debug + Serialize + DeserializeOwned> Key for T {}

/// Bounds for map values.
pub trait Value: Clone + Debug + PartialEq + Serialize + DeserializeOwned {}
impl<T: Clone + Debug + PartialEq + Serialize + DeserializeOwned> Value for T {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Slot<V> {
    stamp: HlcTimestamp,
    dot: Dot,
    /// `None` once removed.
    value: Option<V>,
}

impl<V> Slot<V> {
    fn key(&self) -> (HlcTimestamp, ReplicaId, u64) {
        (self.stamp, self.dot.replica, self.dot.counter)
    }
}

/// A map whose keys merge independently, each last-writer-wins.
///
/// # Semantics
///
/// Each key is an independent last-writer-wins register, so two
/// replicas that edit different keys offline both keep their edits (A edits
/// `title`, B edits `description`: the merged record has both). Writes to the
/// same key are ordered by `(hybrid logical timestamp, replica)` exactly as in
/// [`crate::LwwRegister`].
///
/// Removal: `remove(k)` is a write of "absent" to `k` and competes with
/// concurrent writes by the same order; the later one wins. A removed key keeps
/// one small entry (timestamp and dot, no value) so that a stale write that
/// arrives later cannot resurrect it. The cost is bounded by the number of
/// distinct keys ever used, never by the number of operations.
///
/// ```
/// use weft_core::{Crdt, LwwMap, ReplicaId};
/// let (ra, rb) = (ReplicaId::new(1), ReplicaId::new(2));
/// let mut a: LwwMap<String, String> = LwwMap::new();
/// let mut b = a.clone();
/// let da = a.insert(ra, "title".into(), "Plan".into(), 1_000);
/// let db = b.insert(rb, "description".into(), "Q3 goals".into(), 1_000);
/// a.apply(&db);
/// b.apply(&da);
/// assert_eq!(a, b);
/// assert_eq!(a.get(&"title".to_string()).map(String::as_str), Some("Plan"));
/// assert_eq!(a.get(&"description".to_string()).map(String::as_str), Some("Q3 goals"));
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "MapRepr<K, V>",
    into = "MapRepr<K, V>",
    bound = "K: Key, V: Value"
)]
pub struct LwwMap<K: Key, V: Value> {
    entries: BTreeMap<K, Slot<V>>,
    context: DotSet,
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "K: Key, V: Value")]
struct MapRepr<K: Key, V: Value> {
    entries: Vec<(K, Slot<V>)>,
    context: DotSet,
}

impl<K: Key, V: Value> Default for LwwMap<K, V> {
    fn default() -> Self {
        LwwMap {
            entries: BTreeMap::new(),
            context: DotSet::new(),
        }
    }
}

impl<K: Key, V: Value> Debug for LwwMap<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LwwMap")
            .field("entries", &self.entries)
            .field("context", &self.context)
            .finish()
    }
}

impl<K: Key, V: Value> LwwMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    fn write(&mut self, replica: ReplicaId, key: K, value: Option<V>, now_ms: u64) -> Self {
        let stamp = match self.entries.get(&key) {
            Some(s) if s.stamp.physical >= now_ms => s.stamp.successor(),
            _ => HlcTimestamp::new(now_ms, 0),
        };
        let dot = self.context.next_dot(replica);
        self.context.insert(dot);
        let slot = Slot { stamp, dot, value };
        self.entries.insert(key.clone(), slot.clone());
        let mut delta = LwwMap::new();
        delta.context.insert(dot);
        delta.entries.insert(key, slot);
        delta
    }

    /// Sets `key` to `value` with wall clock `now_ms`; returns the delta.
    pub fn insert(&mut self, replica: ReplicaId, key: K, value: V, now_ms: u64) -> Self {
        self.write(replica, key, Some(value), now_ms)
    }

    /// Removes `key` (a last-writer-wins write of "absent"); returns the delta.
    pub fn remove(&mut self, replica: ReplicaId, key: K, now_ms: u64) -> Self {
        self.write(replica, key, None, now_ms)
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key).and_then(|s| s.value.as_ref())
    }

    /// The value of `key`, looked up by a borrowed form (`&str` for `String`
    /// keys), if present.
    pub fn get_by<Q>(&self, key: &Q) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.entries.get(key).and_then(|s| s.value.as_ref())
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// Present entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries
            .iter()
            .filter_map(|(k, s)| s.value.as_ref().map(|v| (k, v)))
    }

    /// Every key with an entry, present or removed, in order (a delta's keys
    /// are exactly the keys it changes).
    pub fn entry_keys(&self) -> impl Iterator<Item = &K> {
        self.entries.keys()
    }

    /// Number of present keys.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether no key is present.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Number of removed keys still remembered (one small entry each).
    pub fn removed_keys(&self) -> usize {
        self.entries.values().filter(|s| s.value.is_none()).count()
    }
}

impl<K: Key, V: Value> Crdt for LwwMap<K, V> {
    type Delta = LwwMap<K, V>;

    fn join(&mut self, other: &Self) {
        for (k, theirs) in &other.entries {
            match self.entries.get_mut(k) {
                Some(mine) if mine.key() >= theirs.key() => {}
                Some(mine) => *mine = theirs.clone(),
                None => {
                    self.entries.insert(k.clone(), theirs.clone());
                }
            }
        }
        self.context.union(&other.context);
    }

    fn apply(&mut self, delta: &Self) {
        self.join(delta);
    }

    fn version(&self) -> VersionVector {
        self.context.version()
    }

    fn delta_since(&self, since: &VersionVector) -> Self {
        let entries: BTreeMap<K, Slot<V>> = self
            .entries
            .iter()
            .filter(|(_, s)| !since.contains(s.dot))
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        // The peer already holds every dot of `since`; send the rest.
        let mut context = self.context.clone();
        context.subtract_version(since);
        LwwMap { entries, context }
    }
}

impl<K: Key, V: Value> TryFrom<MapRepr<K, V>> for LwwMap<K, V> {
    type Error = DecodeError;
    fn try_from(r: MapRepr<K, V>) -> Result<Self, DecodeError> {
        if r.entries.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(DecodeError::Invalid("map keys not strictly ascending"));
        }
        if r.entries.iter().any(|(_, s)| !r.context.contains(s.dot)) {
            return Err(DecodeError::Invalid("map entry dot missing from context"));
        }
        Ok(LwwMap {
            entries: r.entries.into_iter().collect(),
            context: r.context,
        })
    }
}

impl<K: Key, V: Value> From<LwwMap<K, V>> for MapRepr<K, V> {
    fn from(m: LwwMap<K, V>) -> Self {
        MapRepr {
            entries: m.entries.into_iter().collect(),
            context: m.context,
        }
    }
}

impl<K: Key, V: Value> Encode for LwwMap<K, V> {
    const KIND: u8 = kind::LWW_MAP;
    const NAME: &'static str = "LwwMap";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_write_does_not_resurrect_removed_key() {
        let (ra, rb) = (ReplicaId::new(1), ReplicaId::new(2));
        let mut a: LwwMap<u8, u8> = LwwMap::new();
        let old = a.insert(ra, 1, 10, 100);
        let mut b = LwwMap::new();
        b.apply(&old);
        let rm = b.remove(rb, 1, 200);
        a.apply(&rm);
        a.apply(&old);
        assert!(!a.contains_key(&1));
        assert_eq!(a.removed_keys(), 1);
        assert_eq!(a, b);
    }
}
