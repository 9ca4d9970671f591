//! Collaborative lists: an ordered sequence of values with the same
//! ordering guarantees as [`crate::Text`].
//!
//! Algorithm: a list *is* a text — one placeholder character per element —
//! plus a table from each element's op id to its value. Ordering (FugueMax:
//! concurrent runs inserted at one place never interleave), tombstones,
//! causal buffering, stable positions and the wire codec are the text's;
//! the list adds only the values. An element is immutable once inserted
//! (replace = delete + insert, as in `Y.Array`); nested documents values
//! live at their own path in a [`crate::Doc`].
//!
//! Invariant: every insert the sequence holds with content (applied or
//! buffered) has a value in the table, so every visible element has one;
//! decoding checks this for deltas (values match the inserted count) and
//! snapshots (every content range is covered). Values of deleted elements
//! are kept, as a text keeps deleted characters, so undo can restore them.

use crate::codec::{self, kind, Encode};
use crate::text::PlanStep;
use crate::VersionVector;
use crate::{Bias, Crdt, DecodeError, Dot, ReplicaId, StablePosition, Text, TextDelta, TextOp};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Runs of element ids: `(first id, count)`.
pub(crate) type IdRanges = Vec<(Dot, u64)>;

/// The character standing for one element in the underlying sequence.
const SLOT: char = '\u{1}';

/// A collaboratively edited list of `T`.
///
/// ```
/// use weft_core::{Crdt, List, ReplicaId};
/// let (ra, rb) = (ReplicaId::new(1), ReplicaId::new(2));
/// let mut a: List<String> = List::new();
/// a.push(ra, "milk".to_string());
/// let mut b = a.clone();
/// // Both insert two items after "milk" at the same time.
/// let da = a.insert(ra, 1, ["eggs".to_string(), "flour".to_string()]);
/// let db = b.insert(rb, 1, ["tea".to_string(), "jam".to_string()]);
/// a.apply(&db);
/// b.apply(&da);
/// assert_eq!(a, b);
/// assert_eq!(a.to_vec(), ["milk", "eggs", "flour", "tea", "jam"], "runs never interleave");
/// ```
#[derive(Clone)]
pub struct List<T> {
    seq: Text,
    items: BTreeMap<Dot, T>,
}

/// A change to a [`List`]: what local edits return and [`Crdt::apply`]
/// accepts.
///
/// ```
/// use weft_core::{codec, Crdt, List, ListDelta, ReplicaId};
/// let mut a: List<u32> = List::new();
/// let d = a.insert(ReplicaId::new(1), 0, [1, 2, 3]);
/// let back: ListDelta<u32> = codec::decode(&codec::encode(&d)).unwrap();
/// let mut b = List::new();
/// b.apply(&back);
/// assert_eq!(b.to_vec(), [1, 2, 3]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ListDelta<T> {
    seq: TextDelta,
    /// The values of the insert runs carrying content, in run order.
    items: Vec<T>,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        List {
            seq: Text::new(),
            items: BTreeMap::new(),
        }
    }
}

impl<T> Default for ListDelta<T> {
    fn default() -> Self {
        ListDelta {
            seq: TextDelta::new(),
            items: Vec::new(),
        }
    }
}

/// One step of a list change, over the list as it was: keep, insert or
/// remove elements (the list form of [`TextOp`]).
///
/// ```
/// use weft_core::{Crdt, List, ListOp, ReplicaId};
/// let r = ReplicaId::new(1);
/// let mut a: List<char> = List::new();
/// a.insert(r, 0, ['a', 'c']);
/// let mut b = a.clone();
/// let d = a.insert(r, 1, ['b']);
/// assert_eq!(b.apply_with_events(&d), vec![ListOp::Retain(1), ListOp::Insert(vec!['b'])]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ListOp<T> {
    /// Keep this many elements.
    Retain(usize),
    /// Insert these elements here.
    Insert(Vec<T>),
    /// Remove this many elements.
    Delete(usize),
}

impl<T: Clone> ListOp<T> {
    /// Applies `ops` to `list` (a convenience for views and tests);
    /// retains and deletes past the end are clamped.
    ///
    /// ```
    /// use weft_core::ListOp;
    /// let mut v = vec![1, 2, 3];
    /// ListOp::apply_all(&[ListOp::Retain(1), ListOp::Delete(1), ListOp::Insert(vec![9])], &mut v);
    /// assert_eq!(v, [1, 9, 3]);
    /// ```
    pub fn apply_all(ops: &[ListOp<T>], list: &mut Vec<T>) {
        let mut at = 0usize;
        for op in ops {
            match op {
                ListOp::Retain(n) => at = at.saturating_add(*n).min(list.len()),
                ListOp::Insert(items) => {
                    list.splice(at..at, items.iter().cloned());
                    at += items.len();
                }
                ListOp::Delete(n) => {
                    let end = at.saturating_add(*n).min(list.len());
                    list.drain(at..end);
                }
            }
        }
    }
}

impl<T: Clone> List<T> {
    /// The empty list.
    ///
    /// ```
    /// assert!(weft_core::List::<u8>::new().is_empty());
    /// ```
    pub fn new() -> Self {
        List {
            seq: Text::new(),
            items: BTreeMap::new(),
        }
    }

    /// Number of visible elements.
    ///
    /// ```
    /// use weft_core::{List, ReplicaId};
    /// let mut l = List::new();
    /// l.push(ReplicaId::new(1), 'x');
    /// assert_eq!(l.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.seq.len()
    }

    /// Whether no element is visible.
    ///
    /// ```
    /// assert!(weft_core::List::<u8>::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element at `index`.
    ///
    /// ```
    /// use weft_core::{List, ReplicaId};
    /// let mut l = List::new();
    /// l.insert(ReplicaId::new(1), 0, [10, 20]);
    /// assert_eq!((l.get(1), l.get(2)), (Some(&20), None));
    /// ```
    pub fn get(&self, index: usize) -> Option<&T> {
        self.items.get(&self.seq.dot_at(index)?)
    }

    /// The stable id of the element at `index`: its insert op, which stays
    /// the same wherever concurrent edits move the element.
    ///
    /// ```
    /// use weft_core::{List, ReplicaId};
    /// let r = ReplicaId::new(1);
    /// let mut l = List::new();
    /// l.insert(r, 0, ['b']);
    /// let id = l.id_at(0).unwrap();
    /// l.insert(r, 0, ['a']);
    /// assert_eq!(l.index_of(id), Some(1));
    /// ```
    pub fn id_at(&self, index: usize) -> Option<Dot> {
        self.seq.dot_at(index)
    }

    /// The current index of the element with id `id`; `None` if it is
    /// deleted or unknown.
    pub fn index_of(&self, id: Dot) -> Option<usize> {
        match self.seq.locate_dot(id)? {
            (index, true) => Some(index),
            _ => None,
        }
    }

    /// The visible elements, in order.
    ///
    /// ```
    /// use weft_core::{List, ReplicaId};
    /// let mut l = List::new();
    /// l.insert(ReplicaId::new(1), 0, ["a", "b"]);
    /// assert_eq!(l.iter().copied().collect::<Vec<_>>(), ["a", "b"]);
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.seq
            .dots_in(0, self.len())
            .into_iter()
            .filter_map(move |d| self.items.get(&d))
    }

    /// The visible elements, cloned.
    pub fn to_vec(&self) -> Vec<T> {
        self.iter().cloned().collect()
    }

    /// Inserts `values` before `index` (clamped to the length) as `replica`.
    ///
    /// # Panics
    /// If the list would exceed `u32::MAX - 1` elements ever inserted.
    pub fn insert(
        &mut self,
        replica: ReplicaId,
        index: usize,
        values: impl IntoIterator<Item = T>,
    ) -> ListDelta<T> {
        let values: Vec<T> = values.into_iter().collect();
        if values.is_empty() {
            return ListDelta::default();
        }
        let slots: String = std::iter::repeat_n(SLOT, values.len()).collect();
        let seq = self.seq.insert(replica, index, &slots);
        if let Some((first, _, _)) = seq.insert_runs().next() {
            for (k, v) in values.iter().enumerate() {
                self.items
                    .insert(Dot::new(first.replica, first.counter + k as u64), v.clone());
            }
        }
        ListDelta { seq, items: values }
    }

    /// Inserts `values` right after element `after` (visible or deleted)
    /// as `replica`; returns the delta and the visible index they landed
    /// at (for undo, which restores elements next to their tombstones).
    pub(crate) fn insert_after(
        &mut self,
        replica: ReplicaId,
        after: Option<Dot>,
        values: Vec<T>,
    ) -> (ListDelta<T>, usize) {
        let slots: String = std::iter::repeat_n(SLOT, values.len()).collect();
        let (seq, index) = self.seq.insert_after(replica, after, &slots);
        if let Some((first, _, _)) = seq.insert_runs().next() {
            for (k, v) in values.iter().enumerate() {
                self.items
                    .insert(Dot::new(first.replica, first.counter + k as u64), v.clone());
            }
        }
        (ListDelta { seq, items: values }, index)
    }

    /// Appends `value` as `replica`.
    pub fn push(&mut self, replica: ReplicaId, value: T) -> ListDelta<T> {
        let at = self.len();
        self.insert(replica, at, [value])
    }

    /// Deletes `len` elements from `index` (both clamped) as `replica`.
    ///
    /// ```
    /// use weft_core::{List, ReplicaId};
    /// let r = ReplicaId::new(1);
    /// let mut l = List::new();
    /// l.insert(r, 0, [1, 2, 3, 4]);
    /// l.delete(r, 1, 2);
    /// assert_eq!(l.to_vec(), [1, 4]);
    /// ```
    pub fn delete(&mut self, replica: ReplicaId, index: usize, len: usize) -> ListDelta<T> {
        ListDelta {
            seq: self.seq.delete(replica, index, len),
            items: Vec::new(),
        }
    }

    /// A position before element `index` that follows its neighbour
    /// through concurrent edits (as [`Text::anchor`]).
    ///
    /// ```
    /// use weft_core::{Bias, List, ReplicaId};
    /// let r = ReplicaId::new(1);
    /// let mut l = List::new();
    /// l.insert(r, 0, ['a', 'c']);
    /// let p = l.anchor(1, Bias::Right); // before 'c'
    /// l.insert(r, 0, ['z']);
    /// assert_eq!(l.resolve(&p), Some(2));
    /// ```
    pub fn anchor(&self, index: usize, bias: Bias) -> StablePosition {
        self.seq.anchor(index, bias)
    }

    /// The current index of `pos` (see [`Text::resolve`]).
    pub fn resolve(&self, pos: &StablePosition) -> Option<usize> {
        self.seq.resolve(pos)
    }

    /// Operations received but waiting for ones they depend on.
    pub fn pending_ops(&self) -> u64 {
        self.seq.pending_ops()
    }

    /// Applies `delta` like [`Crdt::apply`] and returns how the visible
    /// list changed, over the old list.
    pub fn apply_with_events(&mut self, delta: &ListDelta<T>) -> Vec<ListOp<T>> {
        let ops = self.seq.apply_with_events(&delta.seq);
        self.store_items(delta);
        let mut out = Vec::with_capacity(ops.len());
        let mut at = 0usize; // position in the new list
        for op in ops {
            match op {
                TextOp::Retain(n) => {
                    at += n;
                    out.push(ListOp::Retain(n));
                }
                TextOp::Insert(s) => {
                    let n = s.chars().count();
                    let values = self
                        .seq
                        .dots_in(at, n)
                        .into_iter()
                        .filter_map(|d| self.items.get(&d).cloned())
                        .collect();
                    at += n;
                    out.push(ListOp::Insert(values));
                }
                TextOp::Delete(n) => out.push(ListOp::Delete(n)),
            }
        }
        out
    }

    /// Records the values `delta` carries for the inserts its sequence
    /// accepted, applied or buffered (first received wins); called after
    /// the sequence took the delta, so a refused run leaves no value.
    fn store_items(&mut self, delta: &ListDelta<T>) {
        let mut values = delta.items.iter();
        for (first, len, content) in delta.seq.insert_runs() {
            if !content {
                continue;
            }
            let held = self.seq.holds_insert(first);
            for k in 0..len {
                let Some(v) = values.next() else { return };
                if held {
                    self.items
                        .entry(Dot::new(first.replica, first.counter + k))
                        .or_insert_with(|| v.clone());
                }
            }
        }
    }

    /// Every value the list holds, with the id of its element.
    pub(crate) fn values_by_id(&self) -> impl Iterator<Item = (Dot, &T)> + '_ {
        self.items.iter().map(|(id, v)| (*id, v))
    }

    /// The value of element `id`, visible or deleted (deleted values are
    /// kept unless the element arrived already deleted).
    pub(crate) fn value_of(&self, id: Dot) -> Option<&T> {
        self.items.get(&id)
    }

    /// See [`Text::undo_plan`].
    pub(crate) fn undo_plan(&self, remove: &[(Dot, u64)], restore: &[(Dot, u64)]) -> Vec<PlanStep> {
        self.seq.undo_plan(remove, restore)
    }

    /// The ids a delta inserted and deleted (for undo).
    pub(crate) fn delta_ids(delta: &ListDelta<T>) -> (IdRanges, IdRanges) {
        (
            delta.seq.insert_runs().map(|(d, n, _)| (d, n)).collect(),
            delta.seq.delete_targets().collect(),
        )
    }

    /// Checks the invariant: every content range has its values.
    fn check_items(&self) -> Result<(), DecodeError> {
        for (first, len) in self.seq.content_ranges() {
            let end = Dot::new(first.replica, first.counter.saturating_add(len));
            if self.items.range(first..end).count() as u64 != len {
                return Err(DecodeError::Invalid("list element without a value"));
            }
        }
        Ok(())
    }
}

impl<T> ListDelta<T> {
    /// Each value the delta carries, with the id of its element.
    pub(crate) fn values_by_id(&self) -> impl Iterator<Item = (Dot, &T)> + '_ {
        self.seq
            .insert_runs()
            .filter(|(_, _, content)| *content)
            .flat_map(|(first, len, _)| {
                (0..len).map(move |k| Dot::new(first.replica, first.counter.saturating_add(k)))
            })
            .zip(&self.items)
    }

    /// The values, to forge what a peer could send.
    #[cfg(test)]
    pub(crate) fn values_mut(&mut self) -> &mut Vec<T> {
        &mut self.items
    }

    /// Whether the delta carries no op.
    ///
    /// ```
    /// assert!(weft_core::ListDelta::<u8>::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.seq.is_empty()
    }

    /// Appends the ops of `other` (applying the result equals applying
    /// `self` then `other`).
    ///
    /// ```
    /// use weft_core::{Crdt, List, ReplicaId};
    /// let r = ReplicaId::new(1);
    /// let mut a = List::new();
    /// let mut d = a.insert(r, 0, [1]);
    /// d.merge(a.push(r, 2));
    /// let mut b = List::new();
    /// b.apply(&d);
    /// assert_eq!(b, a);
    /// ```
    pub fn merge(&mut self, other: ListDelta<T>) {
        self.seq.merge(&other.seq);
        self.items.extend(other.items);
    }
}

impl<T: Clone + PartialEq> PartialEq for List<T> {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq && self.iter_cmp(other)
    }
}

impl<T: Clone + PartialEq> List<T> {
    fn iter_cmp(&self, other: &Self) -> bool {
        self.seq
            .dots_in(0, self.len())
            .into_iter()
            .zip(other.seq.dots_in(0, other.len()))
            .all(|(a, b)| a == b && self.items.get(&a) == other.items.get(&b))
    }
}

impl<T: fmt::Debug + Clone> fmt::Debug for List<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T> Crdt for List<T>
where
    T: Clone + PartialEq + fmt::Debug + Serialize + DeserializeOwned,
{
    type Delta = ListDelta<T>;

    fn join(&mut self, other: &Self) {
        for (id, v) in &other.items {
            self.items.entry(*id).or_insert_with(|| v.clone());
        }
        self.seq.join(&other.seq);
    }

    fn apply(&mut self, delta: &ListDelta<T>) {
        self.seq.apply(&delta.seq);
        self.store_items(delta);
    }

    fn version(&self) -> VersionVector {
        self.seq.version()
    }

    fn version_of(&self, replica: ReplicaId) -> u64 {
        self.seq.version_of(replica)
    }

    fn delta_since(&self, since: &VersionVector) -> ListDelta<T> {
        let seq = self.seq.delta_since(since);
        let mut items = Vec::new();
        for (first, len, content) in seq.insert_runs() {
            if content {
                let end = Dot::new(first.replica, first.counter.saturating_add(len));
                items.extend(self.items.range(first..end).map(|(_, v)| v.clone()));
            }
        }
        ListDelta { seq, items }
    }
}

impl<T: Serialize> Serialize for ListDelta<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        (&self.seq, &self.items).serialize(serializer)
    }
}

/// The values of a delta or snapshot, each charged to the decode budget.
#[derive(Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct Charged<T>(#[serde(deserialize_with = "codec::charged")] Vec<T>);

impl<'de, T: DeserializeOwned> Deserialize<'de> for ListDelta<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (seq, Charged(items)): (TextDelta, Charged<T>) = Deserialize::deserialize(d)?;
        let carried: u64 = seq
            .insert_runs()
            .filter(|(_, _, content)| *content)
            .map(|(_, n, _)| n)
            .sum();
        if carried != items.len() as u64 {
            return Err(serde::de::Error::custom(
                "list delta values do not match its inserts",
            ));
        }
        Ok(ListDelta { seq, items })
    }
}

impl<T: Serialize> Serialize for List<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let items: Vec<(&Dot, &T)> = self.items.iter().collect();
        (&self.seq, items).serialize(serializer)
    }
}

impl<'de, T: DeserializeOwned + Clone> Deserialize<'de> for List<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (seq, Charged(items)): (Text, Charged<(Dot, T)>) = Deserialize::deserialize(d)?;
        if items.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(serde::de::Error::custom(
                "list values not strictly ascending",
            ));
        }
        let list = List {
            seq,
            items: items.into_iter().collect(),
        };
        list.check_items().map_err(serde::de::Error::custom)?;
        Ok(list)
    }
}

impl<T> Encode for List<T>
where
    T: Clone + Serialize + DeserializeOwned,
{
    const KIND: u8 = kind::LIST;
    const NAME: &'static str = "List";
}

impl<T: Serialize + DeserializeOwned> Encode for ListDelta<T> {
    const KIND: u8 = kind::LIST_DELTA;
    const NAME: &'static str = "ListDelta";
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: u64) -> ReplicaId {
        ReplicaId::new(n)
    }

    #[test]
    fn version_of_answers_what_version_holds() {
        let mut a: List<u32> = List::new();
        let mut b: List<u32> = List::new();
        a.insert(r(1), 0, [1, 2, 3]);
        let d = b.insert(r(2), 0, [4]);
        a.apply(&d);
        a.delete(r(1), 0, 2);
        for n in 0..4 {
            assert_eq!(a.version_of(r(n)), a.version().get(r(n)), "replica {n}");
            assert_eq!(b.version_of(r(n)), b.version().get(r(n)), "replica {n}");
        }
    }

    #[test]
    fn concurrent_pushes_do_not_interleave_and_converge() {
        let mut a: List<u32> = List::new();
        let mut b: List<u32> = List::new();
        let mut da = ListDelta::default();
        let mut db = ListDelta::default();
        for i in 0..3 {
            da.merge(a.push(r(1), i));
            db.merge(b.push(r(2), 10 + i));
        }
        let mut a2 = a.clone();
        a2.apply(&db);
        b.apply(&da);
        assert_eq!(a2, b);
        assert_eq!(b.to_vec(), [0, 1, 2, 10, 11, 12]);
    }

    #[test]
    fn snapshot_round_trip_keeps_deleted_values() {
        let mut a: List<String> = List::new();
        a.insert(r(1), 0, ["x".to_string(), "y".to_string()]);
        let id = a.id_at(0).unwrap();
        a.delete(r(1), 0, 1);
        let back: List<String> = codec::decode(&codec::encode(&a)).unwrap();
        assert_eq!(back, a);
        assert_eq!(back.value_of(id).map(String::as_str), Some("x"));
        assert_eq!(back.index_of(id), None);
    }

    #[test]
    fn delta_with_missing_values_is_refused() {
        let mut a: List<u8> = List::new();
        let d = a.insert(r(1), 0, [1, 2]);
        let forged = ListDelta {
            seq: d.seq.clone(),
            items: vec![1],
        };
        assert!(codec::decode::<ListDelta<u8>>(&codec::encode(&forged)).is_err());
        let snap: List<u8> = List {
            seq: a.seq.clone(),
            items: BTreeMap::new(),
        };
        assert!(codec::decode::<List<u8>>(&codec::encode(&snap)).is_err());
    }

    #[test]
    fn events_carry_values() {
        let mut a: List<u8> = List::new();
        a.insert(r(1), 0, [1, 2, 3]);
        let mut b = a.clone();
        let mut d = a.delete(r(1), 0, 1);
        d.merge(a.insert(r(1), 1, [7, 8]));
        let ops = b.apply_with_events(&d);
        let mut v = vec![1, 2, 3];
        ListOp::apply_all(&ops, &mut v);
        assert_eq!(v, a.to_vec());
    }

    /// A run the sequence refuses (its origin names a delete op, not an
    /// element) leaves no value behind: the honest run of the same id that
    /// arrives later shows its own value, as on replicas that never saw
    /// the forged one.
    #[test]
    fn a_refused_run_leaves_no_value_for_a_later_honest_run() {
        let (ra, rb) = (r(1), r(2));
        let mut a: List<u32> = List::new();
        a.insert(ra, 0, [1]);
        a.delete(ra, 0, 1); // op ra:2 deletes; it is not an element
        let forged = ListDelta {
            seq: TextDelta::insert_run(Dot::new(rb, 1), Some(Dot::new(ra, 2)), None, "\u{1}"),
            items: vec![99],
        };
        let mut b = a.clone();
        b.apply(&forged);
        assert_eq!(b.to_vec(), Vec::<u32>::new());
        let mut writer = a.clone();
        let honest = writer.insert(rb, 0, [7]);
        b.apply(&honest);
        a.apply(&honest);
        assert_eq!(b.to_vec(), [7]);
        assert_eq!(a, b);
    }
}
