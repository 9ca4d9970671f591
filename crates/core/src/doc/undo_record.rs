//! What a tracked local commit records for undo ([`Record`]), in terms that
//! survive concurrent edits: the op ids of the characters and list
//! elements it inserted and deleted (not indices), the counter amounts it
//! added, and the previous and new value of every register, map key and
//! set element it changed; and the operations that revert a record.
//!
//! Invariant: a [`Record`] lists, per sequence, the ids inserted and still
//! alive within the step (`inserted`) and the ids the step deleted that it
//! did not insert (`deleted`); the two are disjoint.

use super::events::OriginTag;
use super::op::Op;
use super::path::{Kind, Path};
use super::value::{Bytes, Slot, Value, ValueDelta};
use super::Doc;
use crate::text::PlanStep;
use crate::{Dot, DotSet, List};
use std::collections::BTreeMap;

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
    pub(super) moved: Vec<(Path, Vec<(Dot, Dot)>)>,
}

impl Record {
    /// Rewrites the ids of re-inserted elements (`moved`, old -> new).
    pub(super) fn remap(&mut self, moved: &[(Path, Vec<(Dot, Dot)>)]) {
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
    pub(super) fn then(&mut self, later: Record) {
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

    pub(super) fn is_empty(&self) -> bool {
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
    pub(super) fn inverse(&self, doc: &Doc) -> (Vec<Op>, BTreeMap<usize, Vec<Dot>>) {
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
