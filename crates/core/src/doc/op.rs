//! The operations a transaction records, and applying one to the
//! document at commit (each was checked when recorded, so applying it
//! cannot fail).

use super::events::{item_of, Change, ListItem};
use super::local_update::Outgoing;
use super::path::{Kind, Path};
use super::value::{Bytes, Elem, Slot, Value, ValueDelta};
use super::Doc;
use crate::text::LocalRun;
use crate::{Crdt, Dot, List, ListOp, TextOp};

/// One recorded operation of a transaction.
#[derive(Debug)]
pub(super) enum Op {
    SetKind {
        map: Path,
        key: String,
        slot: Slot,
    },
    Counter {
        path: Path,
        inc: u64,
        dec: u64,
    },
    Register {
        path: Path,
        bytes: Bytes,
    },
    MultiValue {
        path: Path,
        bytes: Bytes,
    },
    SetAdd {
        path: Path,
        bytes: Bytes,
    },
    SetRemove {
        path: Path,
        bytes: Bytes,
    },
    TextInsert {
        path: Path,
        index: usize,
        /// The inserted text: this range of the transaction's text buffer.
        text: std::ops::Range<usize>,
    },
    TextDelete {
        path: Path,
        index: usize,
        len: usize,
    },
    ListInsert {
        path: Path,
        index: usize,
        items: Vec<Elem>,
    },
    ListDelete {
        path: Path,
        index: usize,
        len: usize,
    },
    /// Undo: put deleted text back right after the tombstone `after`.
    TextRestore {
        path: Path,
        after: Dot,
        text: String,
    },
    /// Undo: put deleted elements back right after the tombstone `after`.
    ListRestore {
        path: Path,
        after: Dot,
        items: Vec<Elem>,
    },
}

/// Applies a local text insert or delete, its runs going to `runs` and its
/// change to `changes` (extending the last change if it is this text's):
/// the path of a commit that records no undo step, where no `TextDelta` is
/// built. Returns the value's path and the change for observers, or the
/// operation back if it is not a text edit.
pub(super) fn apply_local_text(
    doc: &mut Doc,
    op: Op,
    inserted: &str,
    want_events: bool,
    changes: &mut Vec<(Path, Outgoing)>,
    runs: &mut Vec<LocalRun>,
) -> Result<(Path, Option<Change>), Op> {
    let (replica, unit) = (doc.replica, doc.text_unit);
    let (path, insert, index, len) = match op {
        Op::TextInsert { path, index, text } => (path, Some(text), index, 0),
        Op::TextDelete { path, index, len } => (path, None, index, len),
        op => return Err(op),
    };
    let Value::Text(t) = doc.value_mut(&path, Kind::Text) else {
        unreachable_kind()
    };
    let from = match changes.last() {
        Some((p, Outgoing::Text(range))) if *p == path => range.start,
        _ => runs.len(),
    };
    let change = match insert {
        Some(text) => {
            let s = inserted.get(text.clone()).unwrap_or_default();
            let change = want_events.then(|| insert_change(t, index, s, unit));
            t.insert_local(replica, index, s, text.start, runs, from);
            change
        }
        None => {
            let change = want_events.then(|| delete_change(t, index, len, unit));
            t.delete_local(replica, index, len, runs, from);
            change
        }
    };
    match changes.last_mut() {
        Some((p, Outgoing::Text(range))) if *p == path => range.end = runs.len(),
        _ => changes.push((path.clone(), Outgoing::Text(from..runs.len()))),
    }
    Ok((path, change))
}

/// What observers see of inserting `text` at char `index` of `t`.
fn insert_change(t: &crate::Text, index: usize, text: &str, unit: crate::TextUnit) -> Change {
    let mut ops = Vec::with_capacity(2);
    if index > 0 {
        ops.push(TextOp::Retain(t.from_char(index, unit)));
    }
    ops.push(TextOp::Insert(text.to_string()));
    Change::Text(ops)
}

/// What observers see of deleting `len` chars at char `index` of `t` (read
/// before the delete).
fn delete_change(t: &crate::Text, index: usize, len: usize, unit: crate::TextUnit) -> Change {
    let (from, to) = if unit != crate::TextUnit::Chars {
        (t.from_char(index, unit), t.from_char(index + len, unit))
    } else {
        (index, index + len)
    };
    let mut ops = Vec::with_capacity(2);
    if index > 0 {
        ops.push(TextOp::Retain(from));
    }
    ops.push(TextOp::Delete(to - from));
    Change::Text(ops)
}

/// Applies one validated local operation; returns the value's path, the
/// delta to ship and the change for observers (`None` if the operation
/// changes nothing, e.g. removing from a set that does not exist).
pub(super) fn apply_local(
    doc: &mut Doc,
    op: Op,
    inserted: &str,
    now: u64,
    want_events: bool,
) -> Option<(Path, ValueDelta, Option<Change>)> {
    let replica = doc.replica;
    let unit = doc.text_unit;
    Some(match op {
        Op::SetKind { map, key, slot } => {
            let keys = doc.keys_mut(&map);
            let before = keys.get(&key).copied();
            let delta = keys.insert(replica, key.clone(), slot, now);
            let change = (before != Some(slot)).then(|| Change::Keys(vec![key]));
            (map, ValueDelta::Keys(delta), change)
        }
        Op::Counter { path, inc, dec } => {
            let Value::Counter(c) = doc.value_mut(&path, Kind::Counter) else {
                unreachable_kind()
            };
            let old = c.value();
            let mut delta = crate::PnCounter::new();
            // Both checked against the simulated contribution when recorded.
            if let Ok(d) = c.increment(replica, inc) {
                delta.join(&d);
            }
            if dec > 0 {
                if let Ok(d) = c.decrement(replica, dec) {
                    delta.join(&d);
                }
            }
            let new = c.value();
            (
                path,
                ValueDelta::Counter(delta),
                Some(Change::Counter { old, new }),
            )
        }
        Op::Register { path, bytes } => {
            let Value::Register(r) = doc.value_mut(&path, Kind::Register) else {
                unreachable_kind()
            };
            let d = r.set(replica, bytes, now);
            (path, ValueDelta::Register(d), Some(Change::Register))
        }
        Op::MultiValue { path, bytes } => {
            let Value::Multi(r) = doc.value_mut(&path, Kind::MultiValue) else {
                unreachable_kind()
            };
            let d = r.set(replica, bytes);
            (path, ValueDelta::Multi(d), Some(Change::Register))
        }
        Op::SetAdd { path, bytes } => {
            let Value::Set(s) = doc.value_mut(&path, Kind::Set) else {
                unreachable_kind()
            };
            let was = s.contains(&bytes);
            let d = s.add(replica, bytes.clone());
            let change = (!was).then(|| Change::Set {
                added: vec![bytes],
                removed: Vec::new(),
            });
            (path, ValueDelta::Set(d), change)
        }
        Op::SetRemove { path, bytes } => {
            // Removing from a set nobody has created yet changes nothing; not
            // creating it keeps every replica's representation identical.
            let Some(Value::Set(s)) = doc.values.get_mut(&path) else {
                return None;
            };
            let was = s.contains(&bytes);
            let d = s.remove(&bytes);
            let change = was.then(|| Change::Set {
                added: Vec::new(),
                removed: vec![bytes],
            });
            (path, ValueDelta::Set(d), change)
        }
        Op::TextInsert { path, index, text } => {
            let Value::Text(t) = doc.value_mut(&path, Kind::Text) else {
                unreachable_kind()
            };
            let text = inserted.get(text).unwrap_or_default();
            let change = want_events.then(|| insert_change(t, index, text, unit));
            let d = t.insert(replica, index, text);
            (path, ValueDelta::Text(d), change)
        }
        Op::TextDelete { path, index, len } => {
            let Value::Text(t) = doc.value_mut(&path, Kind::Text) else {
                unreachable_kind()
            };
            let change = want_events.then(|| delete_change(t, index, len, unit));
            let d = t.delete(replica, index, len);
            (path, ValueDelta::Text(d), change)
        }
        Op::ListInsert { path, index, items } => apply_insert(doc, path, index, items, want_events),
        Op::ListDelete { path, index, len } => apply_delete(doc, path, index, len, want_events),
        Op::TextRestore { path, after, text } => {
            let Value::Text(t) = doc.value_mut(&path, Kind::Text) else {
                unreachable_kind()
            };
            let (d, index) = t.insert_after(replica, Some(after), &text);
            let change = want_events.then(|| {
                let mut ops = Vec::with_capacity(2);
                if index > 0 {
                    ops.push(TextOp::Retain(t.from_char(index, unit)));
                }
                ops.push(TextOp::Insert(text));
                Change::Text(ops)
            });
            (path, ValueDelta::Text(d), change)
        }
        Op::ListRestore { path, after, items } => {
            apply_restore(doc, path, after, items, want_events)
        }
    })
}

/// `Doc::value_mut` creates values of the path's kind, so a mismatch cannot
/// happen; this documents the impossibility instead of panicking with unwrap.
pub(super) fn unreachable_kind() -> ! {
    unreachable!("a document value always has its path's kind")
}

fn list_mut<'a>(doc: &'a mut Doc, path: &Path) -> &'a mut List<Elem> {
    match doc.value_mut(path, Kind::List) {
        Value::List(l) => l,
        _ => unreachable_kind(),
    }
}

/// Applies a recorded insert (validated when recorded).
fn apply_insert(
    doc: &mut Doc,
    path: Path,
    index: usize,
    items: Vec<Elem>,
    want_events: bool,
) -> (Path, ValueDelta, Option<Change>) {
    let replica = doc.replica;
    let change = want_events.then(|| {
        let mut ops = Vec::with_capacity(2);
        if index > 0 {
            ops.push(ListOp::Retain(index));
        }
        ops.push(ListOp::Insert(
            items.iter().map(|e| item_of(&path, e)).collect(),
        ));
        Change::List(ops)
    });
    let d = list_mut(doc, &path).insert(replica, index, items);
    (path, ValueDelta::List(d), change)
}

/// Applies an undo's re-insert of elements after their tombstone.
fn apply_restore(
    doc: &mut Doc,
    path: Path,
    after: Dot,
    items: Vec<Elem>,
    want_events: bool,
) -> (Path, ValueDelta, Option<Change>) {
    let replica = doc.replica;
    let shown: Vec<ListItem> = if want_events {
        items.iter().map(|e| item_of(&path, e)).collect()
    } else {
        Vec::new()
    };
    let (d, index) = list_mut(doc, &path).insert_after(replica, Some(after), items);
    let change = want_events.then(|| {
        let mut ops = Vec::with_capacity(2);
        if index > 0 {
            ops.push(ListOp::Retain(index));
        }
        ops.push(ListOp::Insert(shown));
        Change::List(ops)
    });
    (path, ValueDelta::List(d), change)
}

/// Applies a recorded delete (validated when recorded).
fn apply_delete(
    doc: &mut Doc,
    path: Path,
    index: usize,
    len: usize,
    want_events: bool,
) -> (Path, ValueDelta, Option<Change>) {
    let replica = doc.replica;
    let d = list_mut(doc, &path).delete(replica, index, len);
    let change = want_events.then(|| {
        let mut ops = Vec::with_capacity(2);
        if index > 0 {
            ops.push(ListOp::Retain(index));
        }
        ops.push(ListOp::Delete(len));
        Change::List(ops)
    });
    (path, ValueDelta::List(d), change)
}
