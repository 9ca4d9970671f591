//! Observed-remove set with add-wins semantics (ORSWOT style).
//!
//! Invariant: every live dot is in the context, each dot belongs to at most
//! one element, and dot lists are sorted, unique and non-empty.

use crate::codec::{kind, Encode};
use crate::{Crdt, DecodeError, Dot, DotSet, ReplicaId, VersionVector};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

/// What an element type needs to live in an [`OrSet`].
pub trait Element: Ord + Clone + Debug + Serialize + DeserializeOwned {}
impl<T: Ord + Clone + Debug + Serialize + DeserializeOwned> Element for T {}

/// An add-wins observed-remove set.
///
/// # Semantics
///
/// `add(x)` tags `x` with a fresh dot; `remove(x)` removes the dots
/// of `x` this replica has observed. An element is present while it holds at
/// least one dot. A remove therefore only cancels the adds it saw: an add
/// concurrent with a remove survives it (**add wins**).
///
/// Storage: each present element keeps its live dots (normally one); the set
/// keeps one causal context, a [`DotSet`] of every dot it has seen. A removed
/// element leaves no entry behind: its dots live on only inside the causal
/// context, which compresses into per-replica ranges. There are no
/// per-element tombstones.
///
/// ```
/// use weft_core::{Crdt, OrSet, ReplicaId};
/// let (ra, rb) = (ReplicaId::new(1), ReplicaId::new(2));
/// let mut a = OrSet::new();
/// let d = a.add(ra, 'x');
/// let mut b = OrSet::new();
/// b.apply(&d);
/// // Concurrently: a removes x, b adds x again.
/// let rm = a.remove(&'x');
/// let re = b.add(rb, 'x');
/// a.apply(&re);
/// b.apply(&rm);
/// assert!(a.contains(&'x') && b.contains(&'x'), "add wins over a concurrent remove");
/// assert_eq!(a, b);
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "OrSetRepr<T>", into = "OrSetRepr<T>", bound = "T: Element")]
pub struct OrSet<T: Element> {
    entries: BTreeMap<T, Vec<Dot>>,
    context: DotSet,
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "T: Element")]
struct OrSetRepr<T: Element> {
    entries: Vec<(T, Vec<Dot>)>,
    context: DotSet,
}

/// A change to an [`OrSet`]: named elements with their live and removed dots,
/// plus (from [`Crdt::delta_since`] only) removed dots whose element is gone.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "OrSetDeltaRepr<T>",
    into = "OrSetDeltaRepr<T>",
    bound = "T: Element"
)]
pub struct OrSetDelta<T: Element> {
    elements: BTreeMap<T, ElementDots>,
    removed: DotSet,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ElementDots {
    /// Dots of this element live at the sender (that the receiver may lack).
    live: Vec<Dot>,
    /// Dots of this element the sender has seen removed or superseded.
    removed: Vec<Dot>,
}

#[derive(Serialize, Deserialize)]
#[serde(bound = "T: Element")]
struct OrSetDeltaRepr<T: Element> {
    elements: Vec<(T, ElementDots)>,
    removed: DotSet,
}

impl<T: Element> Default for OrSet<T> {
    fn default() -> Self {
        OrSet {
            entries: BTreeMap::new(),
            context: DotSet::new(),
        }
    }
}

impl<T: Element> Default for OrSetDelta<T> {
    fn default() -> Self {
        OrSetDelta {
            elements: BTreeMap::new(),
            removed: DotSet::new(),
        }
    }
}

impl<T: Element> Debug for OrSet<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrSet")
            .field("entries", &self.entries)
            .field("context", &self.context)
            .finish()
    }
}

impl<T: Element> Debug for OrSetDelta<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrSetDelta")
            .field("elements", &self.elements)
            .field("removed", &self.removed)
            .finish()
    }
}

impl<T: Element> OrSet<T> {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value` on behalf of `replica` (re-adding refreshes its dot).
    pub fn add(&mut self, replica: ReplicaId, value: T) -> OrSetDelta<T> {
        let dot = self.context.next_dot(replica);
        self.context.insert(dot);
        let old = self
            .entries
            .insert(value.clone(), vec![dot])
            .unwrap_or_default();
        let mut delta = OrSetDelta::default();
        delta.elements.insert(
            value,
            ElementDots {
                live: vec![dot],
                removed: old,
            },
        );
        delta
    }

    /// Removes `value` as observed here; an absent value gives an empty delta.
    pub fn remove(&mut self, value: &T) -> OrSetDelta<T> {
        let mut delta = OrSetDelta::default();
        if let Some((value, old)) = self.entries.remove_entry(value) {
            delta.elements.insert(
                value,
                ElementDots {
                    live: Vec::new(),
                    removed: old,
                },
            );
        }
        delta
    }

    /// Removes every element observed here.
    pub fn clear(&mut self) -> OrSetDelta<T> {
        let mut delta = OrSetDelta::default();
        for (value, old) in std::mem::take(&mut self.entries) {
            delta.elements.insert(
                value,
                ElementDots {
                    live: Vec::new(),
                    removed: old,
                },
            );
        }
        delta
    }

    /// Whether `value` is present.
    pub fn contains(&self, value: &T) -> bool {
        self.entries.contains_key(value)
    }

    /// Present elements in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.entries.keys()
    }

    /// Number of present elements.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no element is present.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The causal context: every dot this replica has seen.
    pub fn context(&self) -> &DotSet {
        &self.context
    }

    /// Joins the dots of one element: keep ours unless `removed` covers them
    /// (or the other side's context covers them and they are not live there),
    /// and take theirs unless our context already covers them.
    fn merge_element(&mut self, value: &T, theirs_live: &[Dot], dropped: impl Fn(Dot) -> bool) {
        let mine = self.entries.get(value).map(Vec::as_slice).unwrap_or(&[]);
        let mut out: Vec<Dot> = mine
            .iter()
            .copied()
            .filter(|&d| theirs_live.contains(&d) || !dropped(d))
            .collect();
        for &d in theirs_live {
            if !self.context.contains(d) && !out.contains(&d) {
                out.push(d);
            }
        }
        out.sort_unstable();
        if out.is_empty() {
            self.entries.remove(value);
        } else {
            self.entries.insert(value.clone(), out);
        }
    }

    /// Drops every live dot in `removed`, whatever element holds it.
    fn drop_removed_everywhere(&mut self, removed: &DotSet) {
        if removed.is_empty() {
            return;
        }
        self.entries.retain(|_, dots| {
            dots.retain(|&d| !removed.contains(d));
            !dots.is_empty()
        });
    }
}

impl<T: Element> Crdt for OrSet<T> {
    type Delta = OrSetDelta<T>;

    fn join(&mut self, other: &Self) {
        let keys: BTreeSet<T> = self
            .entries
            .keys()
            .chain(other.entries.keys())
            .cloned()
            .collect();
        for value in keys {
            let theirs = other.entries.get(&value).map(Vec::as_slice).unwrap_or(&[]);
            self.merge_element(&value, theirs, |d| other.context.contains(d));
        }
        self.context.union(&other.context);
    }

    fn apply(&mut self, delta: &OrSetDelta<T>) {
        // Removed dots with no named element can touch any element: scan.
        self.drop_removed_everywhere(&delta.removed);
        for (value, ed) in &delta.elements {
            self.merge_element(value, &ed.live, |d| {
                ed.removed.contains(&d) || delta.removed.contains(d)
            });
        }
        for ed in delta.elements.values() {
            for &d in ed.live.iter().chain(&ed.removed) {
                self.context.insert(d);
            }
        }
        self.context.union(&delta.removed);
    }

    fn version(&self) -> VersionVector {
        self.context.version()
    }

    fn delta_since(&self, since: &VersionVector) -> OrSetDelta<T> {
        let mut all_live: Vec<Dot> = self.entries.values().flatten().copied().collect();
        all_live.sort_unstable();
        let mut live_set = DotSet::new();
        for d in all_live {
            live_set.insert(d); // sorted input: each insert appends or extends
        }
        let removed = self.context.difference(&live_set);
        let mut elements = BTreeMap::new();
        for (value, dots) in &self.entries {
            let live: Vec<Dot> = dots
                .iter()
                .copied()
                .filter(|&d| !since.contains(d))
                .collect();
            if !live.is_empty() {
                elements.insert(
                    value.clone(),
                    ElementDots {
                        live,
                        removed: Vec::new(),
                    },
                );
            }
        }
        OrSetDelta { elements, removed }
    }
}

impl<T: Element> OrSetDelta<T> {
    /// Whether the delta changes nothing.
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty() && self.removed.is_empty()
    }
}

fn check_dot_list(dots: &[Dot], allow_empty: bool) -> Result<(), DecodeError> {
    if dots.is_empty() && !allow_empty {
        return Err(DecodeError::Invalid("or-set element without dots"));
    }
    if dots.iter().any(|d| d.counter == 0) {
        return Err(DecodeError::Invalid("or-set dot with counter zero"));
    }
    if dots.windows(2).any(|w| w[0] >= w[1]) {
        return Err(DecodeError::Invalid("or-set dots not strictly ascending"));
    }
    Ok(())
}

fn sorted_unique_keys<K: Ord>(keys: impl Iterator<Item = K>) -> bool {
    let mut prev: Option<K> = None;
    for k in keys {
        if prev.as_ref().is_some_and(|p| *p >= k) {
            return false;
        }
        prev = Some(k);
    }
    true
}

impl<T: Element> TryFrom<OrSetRepr<T>> for OrSet<T> {
    type Error = DecodeError;
    fn try_from(r: OrSetRepr<T>) -> Result<Self, DecodeError> {
        if !sorted_unique_keys(r.entries.iter().map(|(k, _)| k)) {
            return Err(DecodeError::Invalid(
                "or-set elements not strictly ascending",
            ));
        }
        let mut seen = BTreeSet::new();
        for (_, dots) in &r.entries {
            check_dot_list(dots, false)?;
            for &d in dots {
                if !r.context.contains(d) {
                    return Err(DecodeError::Invalid("or-set live dot missing from context"));
                }
                if !seen.insert(d) {
                    return Err(DecodeError::Invalid("or-set dot shared by two elements"));
                }
            }
        }
        Ok(OrSet {
            entries: r.entries.into_iter().collect(),
            context: r.context,
        })
    }
}

impl<T: Element> From<OrSet<T>> for OrSetRepr<T> {
    fn from(s: OrSet<T>) -> Self {
        OrSetRepr {
            entries: s.entries.into_iter().collect(),
            context: s.context,
        }
    }
}

impl<T: Element> TryFrom<OrSetDeltaRepr<T>> for OrSetDelta<T> {
    type Error = DecodeError;
    fn try_from(r: OrSetDeltaRepr<T>) -> Result<Self, DecodeError> {
        if !sorted_unique_keys(r.elements.iter().map(|(k, _)| k)) {
            return Err(DecodeError::Invalid(
                "or-set delta elements not strictly ascending",
            ));
        }
        let mut seen = BTreeSet::new();
        for (_, ed) in &r.elements {
            check_dot_list(&ed.live, true)?;
            check_dot_list(&ed.removed, true)?;
            for &d in ed.live.iter().chain(&ed.removed) {
                if !seen.insert(d) {
                    return Err(DecodeError::Invalid("or-set delta names a dot twice"));
                }
            }
            if ed.live.iter().any(|&d| r.removed.contains(d)) {
                return Err(DecodeError::Invalid(
                    "or-set delta dot both live and removed",
                ));
            }
        }
        Ok(OrSetDelta {
            elements: r.elements.into_iter().collect(),
            removed: r.removed,
        })
    }
}

impl<T: Element> From<OrSetDelta<T>> for OrSetDeltaRepr<T> {
    fn from(d: OrSetDelta<T>) -> Self {
        OrSetDeltaRepr {
            elements: d.elements.into_iter().collect(),
            removed: d.removed,
        }
    }
}

impl<T: Element> Encode for OrSet<T> {
    const KIND: u8 = kind::OR_SET;
    const NAME: &'static str = "OrSet";
}

impl<T: Element> Encode for OrSetDelta<T> {
    const KIND: u8 = kind::OR_SET_DELTA;
    const NAME: &'static str = "OrSetDelta";
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: ReplicaId = ReplicaId::new(1);
    const B: ReplicaId = ReplicaId::new(2);

    #[test]
    fn removed_elements_leave_only_compact_context() {
        let mut s = OrSet::new();
        for i in 0..1000u32 {
            s.add(A, i);
        }
        for i in 0..1000u32 {
            s.remove(&i);
        }
        assert!(s.is_empty());
        assert_eq!(
            s.context().range_count(),
            1,
            "1000 removed adds = one range"
        );
    }

    #[test]
    fn delta_since_carries_removals_of_old_dots() {
        let mut a = OrSet::new();
        a.add(A, 1u8);
        a.add(A, 2u8);
        let mut b = a.clone();
        a.remove(&1);
        a.add(A, 3);
        b.apply(&a.delta_since(&b.version()));
        assert_eq!(a, b);
        assert_eq!(b.iter().copied().collect::<Vec<_>>(), vec![2, 3]);
    }

    #[test]
    fn delta_with_dot_both_live_and_removed_is_rejected() {
        let d = Dot::new(A, 1);
        let mut removed = DotSet::new();
        removed.insert(d);
        let repr = OrSetDeltaRepr {
            elements: vec![(
                7u8,
                ElementDots {
                    live: vec![d],
                    removed: vec![],
                },
            )],
            removed,
        };
        assert!(OrSetDelta::try_from(repr).is_err());
    }

    #[test]
    fn readd_supersedes_old_dot() {
        let mut a = OrSet::new();
        let d1 = a.add(A, 'k');
        let d2 = a.add(A, 'k');
        let mut b = OrSet::new();
        b.apply(&d2);
        b.apply(&d1);
        assert_eq!(a, b);
        assert_eq!(b.entries[&'k'].len(), 1);
        let _ = B;
    }
}
