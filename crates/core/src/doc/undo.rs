//! Undo and redo of a replica's own edits.
//!
//! While a document has an [`UndoManager`], every local commit it tracks
//! records what it did in a [`Record`], in terms that survive concurrent
//! edits: the op ids of the characters and list elements it inserted and
//! deleted (not indices), the counter amounts it added, and the previous
//! and new value of every register, map key and set element it changed.
//! Commits within the capture window form one undo step.
//!
//! Undoing a step runs one ordinary transaction (so its update syncs like
//! any edit): it deletes the still-visible elements the step inserted and
//! re-inserts the ones it deleted where their tombstones are now (so they
//! come back between the same neighbours, wherever remote edits moved
//! them), subtracts what it added to counters, and writes back registers,
//! keys and set elements *only where the step's value is still the current
//! one* — a value someone else has since overwritten is left alone. The
//! undo transaction records its own inverse, which becomes the redo step.
//!
//! Remote changes are never recorded, so undo only ever reverts this
//! replica's edits. Restoring a removed map key or a deleted nested list
//! element brings back the same value (same generation or element key), so
//! its nested content returns with it.
//!
//! Invariant: a [`Record`] lists, per sequence, the ids inserted and still
//! alive within the step (`inserted`) and the ids the step deleted that it
//! did not insert (`deleted`); the two are disjoint.

use super::events::OriginTag;
use super::path::{Kind, Path};
use super::txn::{Op, Transaction};
use super::value::{Bytes, Slot, Value, ValueDelta};
use super::Doc;
use crate::text::PlanStep;
use crate::{DocError, Dot, DotSet, List};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What a transaction is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// An ordinary edit.
    Edit,
    /// Made by [`Doc::undo`].
    Undo,
    /// Made by [`Doc::redo`].
    Redo,
}

impl Role {
    /// The tag events of this role carry when the caller gave none.
    pub(super) fn tag(self) -> Option<OriginTag> {
        match self {
            Role::Edit => None,
            Role::Undo => Some(OriginTag::undo()),
            Role::Redo => Some(OriginTag::redo()),
        }
    }
}

/// The state one operation changes, read just before it is applied.
#[derive(Debug)]
pub(super) enum Pre {
    Keys {
        map: Path,
        key: String,
        before: Option<Slot>,
        after: Slot,
    },
    Counter {
        path: Path,
        inc: u64,
        dec: u64,
    },
    Register {
        path: Path,
        kind: Kind,
        before: Option<Bytes>,
        after: Bytes,
    },
    Set {
        path: Path,
        bytes: Bytes,
        before: bool,
        after: bool,
    },
    Seq {
        path: Path,
        kind: Kind,
    },
}

impl Pre {
    pub(super) fn of(doc: &Doc, op: &Op) -> Pre {
        match op {
            Op::SetKind { map, key, slot } => Pre::Keys {
                map: map.clone(),
                key: key.clone(),
                before: doc.slot(map, key),
                after: *slot,
            },
            Op::Counter { path, inc, dec } => Pre::Counter {
                path: path.clone(),
                inc: *inc,
                dec: *dec,
            },
            Op::Register { path, bytes } => Pre::Register {
                path: path.clone(),
                kind: Kind::Register,
                before: register_bytes(doc, path),
                after: bytes.clone(),
            },
            Op::MultiValue { path, bytes } => Pre::Register {
                path: path.clone(),
                kind: Kind::MultiValue,
                before: register_bytes(doc, path),
                after: bytes.clone(),
            },
            Op::SetAdd { path, bytes } | Op::SetRemove { path, bytes } => Pre::Set {
                path: path.clone(),
                bytes: bytes.clone(),
                before: set_contains(doc, path, bytes),
                after: matches!(op, Op::SetAdd { .. }),
            },
            Op::TextInsert { path, .. }
            | Op::TextDelete { path, .. }
            | Op::TextRestore { path, .. } => Pre::Seq {
                path: path.clone(),
                kind: Kind::Text,
            },
            Op::ListInsert { path, .. }
            | Op::ListDelete { path, .. }
            | Op::ListRestore { path, .. } => Pre::Seq {
                path: path.clone(),
                kind: Kind::List,
            },
        }
    }
}

/// The current value of a register (the first of a multi-value one).
fn register_bytes(doc: &Doc, path: &Path) -> Option<Bytes> {
    match doc.values.get(path) {
        Some(Value::Register(r)) => r.get().cloned(),
        Some(Value::Multi(r)) => r.values().next().cloned(),
        _ => None,
    }
}

fn set_contains(doc: &Doc, path: &Path, bytes: &Bytes) -> bool {
    matches!(doc.values.get(path), Some(Value::Set(s)) if s.contains(bytes))
}

/// Inserted and deleted ids of one sequence within a step.
#[derive(Clone, Debug, Default)]
struct SeqRecord {
    kind: Option<Kind>,
    inserted: DotSet,
    deleted: DotSet,
}

impl SeqRecord {
    /// Folds in a later change of the same step.
    fn then(&mut self, later: SeqRecord) {
        let deleted_new = later.deleted.difference(&self.inserted);
        self.inserted = self.inserted.difference(&later.deleted);
        self.inserted.union(&later.inserted);
        self.deleted.union(&deleted_new);
        self.kind = self.kind.or(later.kind);
    }
}

fn add_ranges(set: &mut DotSet, ranges: impl IntoIterator<Item = (Dot, u64)>) {
    for (dot, n) in ranges {
        if n > 0 {
            set.insert_range(dot.replica, dot.counter, dot.counter + (n - 1));
        }
    }
}

fn ranges_of(set: &DotSet) -> Vec<(Dot, u64)> {
    set.ranges()
        .map(|(r, a, b)| (Dot::new(r, a), b - a + 1))
        .collect()
}

/// What one undo step did, in terms that survive concurrent edits.
#[derive(Clone, Debug, Default)]
pub(crate) struct Record {
    seqs: BTreeMap<Path, SeqRecord>,
    counters: BTreeMap<Path, (u64, u64)>,
    registers: BTreeMap<Path, (Kind, Option<Bytes>, Bytes)>,
    keys: BTreeMap<(Path, String), (Option<Slot>, Slot)>,
    sets: BTreeMap<(Path, Bytes), (bool, bool)>,
    /// Elements this undo or redo re-inserted: old id -> new id. Other
    /// steps naming the old ids are rewritten to the new ones.
    moved: Vec<(Path, Vec<(Dot, Dot)>)>,
}

impl Record {
    /// Rewrites the ids of re-inserted elements (`moved`, old -> new).
    fn remap(&mut self, moved: &[(Path, Vec<(Dot, Dot)>)]) {
        for (path, pairs) in moved {
            let Some(s) = self.seqs.get_mut(path) else {
                continue;
            };
            for &(old, new) in pairs {
                for set in [&mut s.inserted, &mut s.deleted] {
                    if set.contains(old) {
                        set.remove(old);
                        set.insert(new);
                    }
                }
            }
        }
    }

    /// Records one applied operation: its state before and the delta it
    /// produced; `restored` are the old ids of the elements it re-inserted
    /// (undo and redo), in order.
    pub(super) fn add(&mut self, pre: Pre, delta: &ValueDelta, restored: Option<Vec<Dot>>) {
        match pre {
            Pre::Keys {
                map,
                key,
                before,
                after,
            } => {
                // A container made implicitly by the first edit into it is
                // not undone (that would hide what others wrote into the
                // same key concurrently); the edits into it are.
                let container = after
                    .kind
                    .is_some_and(|k| !matches!(k, Kind::Register | Kind::MultiValue));
                let existed = before.is_some_and(|b| b.kind.is_some());
                if container && !existed && !self.keys.contains_key(&(map.clone(), key.clone())) {
                    return;
                }
                self.keys.entry((map, key)).or_insert((before, after)).1 = after;
            }
            Pre::Counter { path, inc, dec } => {
                let c = self.counters.entry(path).or_insert((0, 0));
                c.0 = c.0.saturating_add(inc);
                c.1 = c.1.saturating_add(dec);
            }
            Pre::Register {
                path,
                kind,
                before,
                after,
            } => {
                self.registers
                    .entry(path)
                    .or_insert((kind, before, Vec::new()))
                    .2 = after;
            }
            Pre::Set {
                path,
                bytes,
                before,
                after,
            } => {
                self.sets.entry((path, bytes)).or_insert((before, after)).1 = after;
            }
            Pre::Seq { path, kind } => {
                let mut step = SeqRecord {
                    kind: Some(kind),
                    ..SeqRecord::default()
                };
                let (ins, del) = match delta {
                    ValueDelta::Text(d) => (
                        d.insert_runs().map(|(dot, n, _)| (dot, n)).collect(),
                        d.delete_targets().collect(),
                    ),
                    ValueDelta::List(d) => List::delta_ids(d),
                    _ => (Vec::new(), Vec::new()),
                };
                if let Some(old) = restored {
                    let new = ins.iter().flat_map(|&(d, n)| {
                        (0..n).map(move |k| Dot::new(d.replica, d.counter + k))
                    });
                    self.moved
                        .push((path.clone(), old.into_iter().zip(new).collect()));
                }
                add_ranges(&mut step.inserted, ins);
                add_ranges(&mut step.deleted, del);
                self.seqs.entry(path).or_default().then(step);
            }
        }
    }

    /// Folds in a later record of the same step.
    fn then(&mut self, later: Record) {
        for (path, s) in later.seqs {
            self.seqs.entry(path).or_default().then(s);
        }
        for (path, (i, d)) in later.counters {
            let c = self.counters.entry(path).or_insert((0, 0));
            c.0 = c.0.saturating_add(i);
            c.1 = c.1.saturating_add(d);
        }
        for (path, (kind, before, after)) in later.registers {
            self.registers
                .entry(path)
                .or_insert((kind, before, Vec::new()))
                .2 = after;
        }
        for (k, (before, after)) in later.keys {
            self.keys.entry(k).or_insert((before, after)).1 = after;
        }
        for (k, (before, after)) in later.sets {
            self.sets.entry(k).or_insert((before, after)).1 = after;
        }
    }

    fn is_empty(&self) -> bool {
        self.seqs
            .values()
            .all(|s| s.inserted.is_empty() && s.deleted.is_empty())
            && self.counters.is_empty()
            && self.registers.is_empty()
            && self.keys.is_empty()
            && self.sets.is_empty()
    }

    /// The operations that revert this step in `doc` as it is now, and for
    /// each op that re-inserts elements, their old ids.
    fn inverse(&self, doc: &Doc) -> (Vec<Op>, BTreeMap<usize, Vec<Dot>>) {
        let mut ops = Vec::new();
        let mut restores = BTreeMap::new();
        for (path, s) in &self.seqs {
            let remove = ranges_of(&s.inserted);
            let restore = ranges_of(&s.deleted);
            match doc.values.get(path) {
                Some(Value::Text(t)) => {
                    for step in t.undo_plan(&remove, &restore) {
                        match step {
                            PlanStep::Delete { index, len } => ops.push(Op::TextDelete {
                                path: path.clone(),
                                index,
                                len,
                            }),
                            PlanStep::Insert { dots, .. } => {
                                let (Some(text), Some(&after)) =
                                    (t.content_of_dots(&dots), dots.last())
                                else {
                                    continue;
                                };
                                restores.insert(ops.len(), dots);
                                ops.push(Op::TextRestore {
                                    path: path.clone(),
                                    after,
                                    text,
                                });
                            }
                        }
                    }
                }
                Some(Value::List(l)) => {
                    for step in l.undo_plan(&remove, &restore) {
                        match step {
                            PlanStep::Delete { index, len } => ops.push(Op::ListDelete {
                                path: path.clone(),
                                index,
                                len,
                            }),
                            PlanStep::Insert { dots, .. } => {
                                let items: Option<Vec<_>> =
                                    dots.iter().map(|d| l.value_of(*d).cloned()).collect();
                                let (Some(items), Some(&after)) = (items, dots.last()) else {
                                    continue;
                                };
                                restores.insert(ops.len(), dots);
                                ops.push(Op::ListRestore {
                                    path: path.clone(),
                                    after,
                                    items,
                                });
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        for ((path, bytes), (before, after)) in &self.sets {
            let now = set_contains(doc, path, bytes);
            if *after && !*before && now {
                ops.push(Op::SetRemove {
                    path: path.clone(),
                    bytes: bytes.clone(),
                });
            } else if *before && !*after && !now {
                ops.push(Op::SetAdd {
                    path: path.clone(),
                    bytes: bytes.clone(),
                });
            }
        }
        for (path, (inc, dec)) in &self.counters {
            if inc != dec {
                ops.push(Op::Counter {
                    path: path.clone(),
                    inc: *dec,
                    dec: *inc,
                });
            }
        }
        for (path, (kind, before, after)) in &self.registers {
            let (Some(before), true) = (before, register_bytes(doc, path).as_ref() == Some(after))
            else {
                continue;
            };
            if before == after {
                continue;
            }
            let (path, bytes) = (path.clone(), before.clone());
            ops.push(match kind {
                Kind::MultiValue => Op::MultiValue { path, bytes },
                _ => Op::Register { path, bytes },
            });
        }
        for ((map, key), (before, after)) in &self.keys {
            let now = doc.slot(map, key);
            let removed_still = after.kind.is_none() && now.is_some_and(|s| s.kind.is_none());
            if now != Some(*after) && !removed_still {
                continue; // changed by someone else since: theirs stands
            }
            let back = match before {
                Some(b) if b.kind.is_some() => *b,
                // Created by the step: remove this generation, so a later
                // creation starts a fresh one.
                _ => Slot {
                    kind: None,
                    generation: after.generation,
                },
            };
            if Some(back) != now {
                ops.push(Op::SetKind {
                    map: map.clone(),
                    key: key.clone(),
                    slot: back,
                });
            }
        }
        (ops, restores)
    }
}

/// One undo (or redo) step.
#[derive(Clone, Debug)]
struct Group {
    record: Record,
    /// When its last change was recorded (the document's clock).
    at: u64,
}

/// Undo and redo of this replica's own edits: the stacks and the rules for
/// what goes on them. Install one with [`Doc::with_undo`].
///
/// - Local commits within `capture_window` ms of the previous one (by the
///   document's clock, see [`Doc::with_clock`]) form one step;
///   [`UndoManager::stop_capturing`] or [`Doc::undo_boundary`] ends a step
///   early.
/// - With [`UndoManager::track_origin`], only commits made with
///   [`Doc::transact_with`] and one of those origins are recorded (per
///   origin undo, e.g. only the editor's typing).
/// - Remote updates are never recorded, and never clear the redo stack; a
///   new tracked local edit does.
/// - The stacks live in memory with this document: [`Doc::save`] does not
///   keep them (a reloaded document starts with empty stacks).
///
/// ```
/// use weft_core::doc::UndoManager;
/// use weft_core::{Doc, ReplicaId};
/// let mut a = Doc::new(ReplicaId::new(1)).with_undo(UndoManager::new());
/// let mut b = Doc::new(ReplicaId::new(2));
/// a.transact(|tx| tx.text("t")?.insert(0, "hello")).unwrap();
/// b.apply(&a.diff(b.version())).unwrap();
/// a.undo_boundary();
/// a.transact(|tx| tx.text("t")?.delete(0, 5)).unwrap();
/// // A remote edit arrives in between.
/// let remote = b.transact(|tx| tx.text("t")?.insert(5, " world")).unwrap();
/// a.apply(&remote).unwrap();
/// assert_eq!(a.text("t").unwrap().to_string(), " world");
/// // Undo brings "hello" back where it was; the update syncs like any edit.
/// let update = a.undo().unwrap().unwrap();
/// assert_eq!(a.text("t").unwrap().to_string(), "hello world");
/// b.apply(&update).unwrap();
/// assert_eq!(b.text("t").unwrap().to_string(), "hello world");
/// a.redo().unwrap();
/// assert_eq!(a.text("t").unwrap().to_string(), " world");
/// ```
#[derive(Clone)]
pub struct UndoManager {
    capture_ms: u64,
    origins: Option<BTreeSet<OriginTag>>,
    max_steps: usize,
    undo: Vec<Group>,
    redo: Vec<Group>,
    /// The next recorded edit starts a new step.
    boundary: bool,
}

impl fmt::Debug for UndoManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UndoManager")
            .field("capture_ms", &self.capture_ms)
            .field("origins", &self.origins)
            .field("undo", &self.undo.len())
            .field("redo", &self.redo.len())
            .finish()
    }
}

impl Default for UndoManager {
    fn default() -> Self {
        Self::new()
    }
}

impl UndoManager {
    /// Default capture window: edits closer than this form one step.
    pub const DEFAULT_CAPTURE_MS: u64 = 500;
    /// Default most steps kept (the oldest are dropped beyond).
    pub const DEFAULT_MAX_STEPS: usize = 1000;

    /// A manager tracking every local commit, 500 ms capture window.
    ///
    /// ```
    /// let undo = weft_core::doc::UndoManager::new();
    /// assert!(!undo.can_undo());
    /// ```
    pub fn new() -> Self {
        UndoManager {
            capture_ms: Self::DEFAULT_CAPTURE_MS,
            origins: None,
            max_steps: Self::DEFAULT_MAX_STEPS,
            undo: Vec::new(),
            redo: Vec::new(),
            boundary: false,
        }
    }

    /// Sets the capture window in milliseconds (0: every commit is a step).
    pub fn capture_window(mut self, ms: u64) -> Self {
        self.capture_ms = ms;
        self
    }

    /// Records only commits made with this origin (call again to add more).
    pub fn track_origin(mut self, origin: impl Into<OriginTag>) -> Self {
        self.origins
            .get_or_insert_with(BTreeSet::new)
            .insert(origin.into());
        self
    }

    /// Keeps at most `n` undo steps (at least 1).
    pub fn max_steps(mut self, n: usize) -> Self {
        self.max_steps = n.max(1);
        self
    }

    /// Whether there is a step to undo.
    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    /// Whether there is a step to redo.
    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    /// Steps on the undo stack.
    pub fn undo_len(&self) -> usize {
        self.undo.len()
    }

    /// Steps on the redo stack.
    pub fn redo_len(&self) -> usize {
        self.redo.len()
    }

    /// Ends the current step: the next edit starts a new one.
    pub fn stop_capturing(&mut self) {
        self.boundary = true;
    }

    /// Forgets both stacks.
    pub fn clear(&mut self) {
        self.undo.clear();
        self.redo.clear();
    }

    /// Whether a commit of this role and origin is recorded.
    pub(super) fn records(&self, role: Role, tag: Option<&OriginTag>) -> bool {
        match role {
            Role::Undo | Role::Redo => true,
            Role::Edit => match &self.origins {
                None => true,
                Some(set) => tag.is_some_and(|t| set.contains(t)),
            },
        }
    }

    /// Stores what a commit did.
    pub(super) fn push(&mut self, mut record: Record, role: Role, now: u64) {
        if record.is_empty() {
            return;
        }
        match role {
            Role::Edit => {
                self.redo.clear();
                match self.undo.last_mut() {
                    Some(g) if !self.boundary && now.saturating_sub(g.at) <= self.capture_ms => {
                        g.record.then(record);
                        g.at = now;
                    }
                    _ => self.undo.push(Group { record, at: now }),
                }
                self.boundary = false;
                if self.undo.len() > self.max_steps {
                    let excess = self.undo.len() - self.max_steps;
                    self.undo.drain(..excess);
                }
            }
            Role::Undo | Role::Redo => {
                if !record.moved.is_empty() {
                    let moved = std::mem::take(&mut record.moved);
                    for g in self.undo.iter_mut().chain(self.redo.iter_mut()) {
                        g.record.remap(&moved);
                    }
                }
                let group = Group { record, at: now };
                if role == Role::Undo {
                    self.redo.push(group);
                } else {
                    self.undo.push(group);
                    self.boundary = true;
                }
            }
        }
    }
}

impl Doc {
    /// Installs an undo manager: from now on, tracked local commits can be
    /// undone with [`Doc::undo`].
    pub fn with_undo(mut self, manager: UndoManager) -> Self {
        self.undo = Some(Box::new(manager));
        self
    }

    /// Installs (or replaces) the undo manager.
    pub fn set_undo_manager(&mut self, manager: Option<UndoManager>) {
        self.undo = manager.map(Box::new);
    }

    /// The undo manager, if installed.
    pub fn undo_manager(&self) -> Option<&UndoManager> {
        self.undo.as_deref()
    }

    /// The undo manager, to change its stacks.
    pub fn undo_manager_mut(&mut self) -> Option<&mut UndoManager> {
        self.undo.as_deref_mut()
    }

    /// Ends the current undo step (see [`UndoManager::stop_capturing`]).
    pub fn undo_boundary(&mut self) {
        if let Some(u) = self.undo.as_mut() {
            u.stop_capturing();
        }
    }

    /// Reverts the latest undo step of this replica's own edits in one
    /// transaction and returns its update (to send like any other), or
    /// `None` if there is nothing to undo or no manager. See
    /// [`UndoManager`] for what is restored.
    pub fn undo(&mut self) -> Result<Option<Vec<u8>>, DocError> {
        self.step(Role::Undo)
    }

    /// Re-applies the latest undone step (the inverse of [`Doc::undo`]).
    pub fn redo(&mut self) -> Result<Option<Vec<u8>>, DocError> {
        self.step(Role::Redo)
    }

    fn step(&mut self, role: Role) -> Result<Option<Vec<u8>>, DocError> {
        let Some(manager) = self.undo.as_mut() else {
            return Ok(None);
        };
        let stack = match role {
            Role::Redo => &mut manager.redo,
            _ => &mut manager.undo,
        };
        let Some(group) = stack.pop() else {
            return Ok(None);
        };
        manager.boundary = true;
        let (ops, restores) = group.record.inverse(self);
        let mut tx = Transaction::new(self);
        tx.role = role;
        tx.scratch.ops.extend(ops);
        tx.restores = restores;
        Ok(Some(tx.commit()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReplicaId;

    /// A tiny deterministic generator (the property tests in `tests/` use
    /// proptest; this keeps a fast randomized check next to the code).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) as usize
        }
    }

    type View = (String, Vec<Option<u32>>, i128, Vec<(String, Option<u32>)>);

    fn view(d: &Doc) -> View {
        let l = d.list("l").unwrap();
        let items = (0..l.len())
            .map(|i| match l.get::<u32>(i) {
                Ok(v) => v,
                Err(_) => l
                    .map(i)
                    .unwrap()
                    .register::<u32>("v")
                    .unwrap()
                    .map(|v| v + 1000),
            })
            .collect();
        let m = d.map("m").unwrap();
        let keys = m
            .keys()
            .into_iter()
            .map(|(k, _)| {
                let v = m.register::<u32>(&k).unwrap();
                (k, v)
            })
            .collect();
        (
            d.text("t").unwrap().to_string(),
            items,
            d.counter("c").unwrap(),
            keys,
        )
    }

    fn edit_a(d: &mut Doc, rng: &mut Rng) -> Vec<u8> {
        let tlen = d.text("t").unwrap().len();
        let llen = d.list("l").unwrap().len();
        let (x, y, z) = (rng.next(), rng.next(), rng.next() as u32 % 50);
        d.transact(|tx| {
            match x % 8 {
                0 => tx.text("t")?.insert(y % (tlen + 1), "ab")?,
                1 if tlen > 0 => tx
                    .text("t")?
                    .delete(y % tlen, 1 + z as usize % (tlen - y % tlen))?,
                2 => tx.list("l")?.insert(y % (llen + 1), &z)?,
                3 if llen > 0 => tx.list("l")?.delete(y % llen, 1)?,
                4 => tx.list("l")?.insert_map(y % (llen + 1))?.put("v", &z)?,
                5 => tx.counter("c")?.increment(u64::from(z))?,
                6 => tx.map("m")?.put(&format!("a{}", y % 3), &z)?,
                _ => tx.map("m")?.remove(&format!("a{}", y % 3)),
            }
            Ok(())
        })
        .unwrap()
    }

    fn edit_b(d: &mut Doc, rng: &mut Rng) -> Vec<u8> {
        let tlen = d.text("t").unwrap().len();
        let llen = d.list("l").unwrap().len();
        let (x, y, z) = (rng.next(), rng.next(), rng.next() as u32 % 50);
        d.transact(|tx| {
            match x % 4 {
                0 => tx.text("t")?.insert(y % (tlen + 1), "XY")?,
                1 => tx.list("l")?.insert(y % (llen + 1), &(z + 500))?,
                2 => tx.counter("c")?.decrement(u64::from(z))?,
                _ => tx.map("m")?.put(&format!("b{}", y % 3), &z)?,
            }
            Ok(())
        })
        .unwrap()
    }

    #[test]
    fn undo_all_leaves_the_remote_edits_and_redo_all_restores() {
        for seed in 0..300 {
            let mut rng = Rng(seed);
            let mut z = Doc::new(ReplicaId::new(7));
            let base = z
                .transact(|tx| {
                    tx.text("t")?.insert(0, "base")?;
                    tx.list("l")?.insert_all(0, &[1u32, 2])?;
                    tx.counter("c")?.increment(1)?;
                    tx.map("m")?.put("a0", &9u32)?;
                    Ok(())
                })
                .unwrap();
            let mut a = Doc::new(ReplicaId::new(1)).with_undo(UndoManager::new().capture_window(0));
            let mut b = Doc::new(ReplicaId::new(2));
            let mut c = Doc::new(ReplicaId::new(3));
            for d in [&mut a, &mut b, &mut c] {
                d.apply(&base).unwrap();
            }
            let (mut to_a, mut to_b) = (Vec::new(), Vec::new());
            for _ in 0..(rng.next() % 12 + 1) {
                to_b.push(edit_a(&mut a, &mut rng));
                a.undo_boundary();
                if rng.next().is_multiple_of(2) {
                    let u = edit_b(&mut b, &mut rng);
                    c.apply(&u).unwrap();
                    to_a.push(u);
                }
                if rng.next().is_multiple_of(3) {
                    for u in to_a.drain(..) {
                        a.apply(&u).unwrap();
                    }
                }
            }
            for u in to_a.drain(..) {
                a.apply(&u).unwrap();
            }
            for u in to_b.drain(..) {
                b.apply(&u).unwrap();
            }
            assert_eq!(a, b, "seed {seed}");
            let done = view(&a);
            while let Some(u) = a.undo().unwrap() {
                b.apply(&u).unwrap();
            }
            assert_eq!(view(&a), view(&c), "seed {seed}: undo-all");
            assert_eq!(a, b, "seed {seed}: undo syncs");
            while let Some(u) = a.redo().unwrap() {
                b.apply(&u).unwrap();
            }
            assert_eq!(view(&a), done, "seed {seed}: redo-all");
            assert_eq!(a, b, "seed {seed}: redo syncs");
        }
    }
}
