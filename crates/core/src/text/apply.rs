//! Applying runs from other replicas: trimming what is already known,
//! buffering what cannot be applied yet, integrating the rest.
//!
//! Invariant: a run is applied only when every op it depends on has been
//! (its replica's earlier ops, its origins, its delete targets); a buffered
//! run is filed under the one op it waits for and retried exactly when that
//! op's replica advances, so buffering costs `O(log n)` per run, never a
//! rescan of everything buffered.

use super::delta::{Content, Run, RunOp};
use super::events::EventLog;
use super::ids::{self, EntryKind, Lookup};
use super::span::{Span, NONE};
use super::wire::{OpRef, RunRef};
use super::{integrate, Text, TextDelta};
use crate::Dot;

/// What became of one run handed to `apply_run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    Applied,
    Duplicate,
    /// Waits until this op (and so all earlier ops of its replica) arrives.
    Pending(Dot),
    Invalid,
}

impl Text {
    /// Applies every run of `delta` that can be, buffers the rest, and
    /// applies buffered runs that become ready.
    pub(super) fn apply_inner(&mut self, delta: &TextDelta, mut log: Option<&mut EventLog>) {
        let mut woken = Vec::new();
        for run in &delta.runs {
            self.try_run(run, log.as_deref_mut(), &mut woken);
        }
        while let Some(run) = woken.pop() {
            self.try_run(&run, log.as_deref_mut(), &mut woken);
        }
    }

    /// Applies `run` or buffers it under the op it waits for; after an
    /// apply, moves the runs that waited for it to `woken`.
    pub(super) fn try_run(&mut self, run: &Run, log: Option<&mut EventLog>, woken: &mut Vec<Run>) {
        match self.apply_run(run, log) {
            Outcome::Applied => {
                let known = self.ids.known(run.id.replica);
                if let Some(waiting) = self.pending.get_mut(&run.id.replica) {
                    let later = waiting.split_off(&(known + 1));
                    let ready = std::mem::replace(waiting, later);
                    woken.extend(ready.into_values().flatten());
                    if waiting.is_empty() {
                        self.pending.remove(&run.id.replica);
                    }
                }
            }
            Outcome::Pending(need) => {
                let bucket = self
                    .pending
                    .entry(need.replica)
                    .or_default()
                    .entry(need.counter)
                    .or_default();
                if !bucket.contains(run) {
                    bucket.push(run.clone());
                }
            }
            Outcome::Duplicate | Outcome::Invalid => {}
        }
    }

    /// Applies the part of `run` not applied yet, if its dependencies are.
    pub(super) fn apply_run(&mut self, run: &Run, log: Option<&mut EventLog>) -> Outcome {
        self.apply_ref(run.as_ref(), log)
    }

    /// [`Text::apply_run`] on a borrowed run (`run.len` must be its op
    /// count).
    pub(super) fn apply_ref(&mut self, run: RunRef<'_>, log: Option<&mut EventLog>) -> Outcome {
        let known = self.ids.known(run.id.replica);
        let len = run.len;
        let Some(last) = run.id.counter.checked_add(len.saturating_sub(1)) else {
            return Outcome::Invalid;
        };
        if run.id.counter == 0 || len == 0 || len > u64::from(u32::MAX) {
            return Outcome::Invalid;
        }
        if last <= known {
            return Outcome::Duplicate;
        }
        if run.id.counter > known + 1 {
            return Outcome::Pending(Dot::new(run.id.replica, run.id.counter - 1));
        }
        let skip = known + 1 - run.id.counter;
        let n = (len - skip) as u32;
        match run.op {
            OpRef::Insert {
                origin_left,
                origin_right,
                text,
            } => {
                let left_dot = if skip > 0 {
                    Some(Dot::new(run.id.replica, known))
                } else {
                    origin_left
                };
                let text = text.map(|content| {
                    if skip == 0 {
                        return content;
                    }
                    let byte = content
                        .char_indices()
                        .nth(skip as usize)
                        .map_or(content.len(), |(b, _)| b);
                    &content[byte..]
                });
                let resolve = |dot: Option<Dot>| match self.ids.item(dot) {
                    Ok(i) => Ok(i),
                    Err(Lookup::Missing) => Err(dot.map_or(Outcome::Invalid, Outcome::Pending)),
                    Err(Lookup::NotAnItem) => Err(Outcome::Invalid),
                };
                let left = match resolve(left_dot) {
                    Ok(i) => i,
                    Err(outcome) => return outcome,
                };
                let right = match resolve(origin_right) {
                    Ok(i) => i,
                    Err(outcome) => return outcome,
                };
                if n >= NONE - self.ids.items() {
                    return Outcome::Invalid;
                }
                let r = self.ids.replica(run.id.replica);
                let item = self
                    .ids
                    .push_insert(r, known + 1, n, (left, right), text.unwrap_or(""));
                let span = Span {
                    item,
                    len: n,
                    origin_left: left,
                    origin_right: right,
                    deleted: text.is_none(),
                };
                let cursor = integrate::place(&self.tree, &self.ids, &span);
                match text {
                    Some(text) if !self.loading => {
                        let pos = self.tree.visible_before(cursor) as usize;
                        self.rope.insert(pos, text);
                    }
                    _ => {}
                }
                self.tree.insert(cursor, span);
            }
            OpRef::Delete { target, reversed } => {
                let lo = if reversed {
                    target.counter
                } else {
                    target.counter + skip
                };
                let need = Dot::new(target.replica, lo + u64::from(n) - 1);
                let Some(tr) = self.ids.find(target.replica) else {
                    return Outcome::Pending(need);
                };
                let mut ranges = std::mem::take(&mut self.ranges);
                ranges.clear();
                match self
                    .ids
                    .items_of(tr, lo, u64::from(n), |i, k| ranges.push((i, k)))
                {
                    Ok(()) => {}
                    Err(Lookup::Missing) => {
                        self.ranges = ranges;
                        return Outcome::Pending(need);
                    }
                    Err(Lookup::NotAnItem) => {
                        self.ranges = ranges;
                        return Outcome::Invalid;
                    }
                }
                let r = self.ids.replica(run.id.replica);
                let kind = EntryKind::Delete {
                    target: tr,
                    lo,
                    reversed: reversed && n > 1,
                };
                self.ids.push_delete(r, known + 1, n, kind);
                let mut log = log;
                for &(item, k) in &ranges {
                    self.delete_items(item, k, log.as_deref_mut());
                }
                ranges.clear();
                self.ranges = ranges;
            }
        }
        Outcome::Applied
    }

    /// Marks items `item..item + len` deleted (already deleted ones stay so).
    pub(super) fn delete_items(&mut self, mut item: u32, len: u32, mut log: Option<&mut EventLog>) {
        let end = item + len;
        while item < end {
            let c = self.tree.locate(item);
            let s = *self.tree.span_at(c);
            let take = (s.len - c.offset).min(end - item);
            if !s.deleted && self.loading {
                self.tree.delete(c, take);
            } else if !s.deleted {
                let pos = self.tree.visible_before(c) as usize;
                self.tree.delete(c, take);
                self.rope.remove(pos, pos + take as usize);
                if let Some(log) = log.as_deref_mut() {
                    if item < log.items_before {
                        let old = take.min(log.items_before - item);
                        log.deleted.push((item, old));
                    }
                }
            }
            item += take;
        }
    }

    /// The run of `entry` of replica `r` minus its first `skip` ops.
    pub(super) fn entry_run(&self, r: usize, e: &ids::Entry, skip: u64) -> Run {
        let replica = self.ids.replicas[r].id;
        let id = Dot::new(replica, e.seq + skip);
        let op = match e.kind {
            EntryKind::Insert {
                origin_left,
                origin_right,
                content,
                bytes,
                ..
            } => {
                let content = if bytes == 0 {
                    Content::Deleted(u64::from(e.len) - skip)
                } else {
                    let text = &self.ids.content[content as usize..(content + bytes) as usize];
                    let byte = text
                        .char_indices()
                        .nth(skip as usize)
                        .map_or(text.len(), |(b, _)| b);
                    Content::Text(text[byte..].to_string())
                };
                RunOp::Insert {
                    origin_left: if skip > 0 {
                        Some(Dot::new(replica, e.seq + skip - 1))
                    } else {
                        self.ids.dot_opt(origin_left)
                    },
                    origin_right: self.ids.dot_opt(origin_right),
                    content,
                }
            }
            EntryKind::Delete {
                target,
                lo,
                reversed,
            } => {
                let len = u64::from(e.len) - skip;
                RunOp::Delete {
                    target: Dot::new(
                        self.ids.replicas[target as usize].id,
                        if reversed { lo } else { lo + skip },
                    ),
                    len,
                    reversed: reversed && len > 1,
                }
            }
        };
        Run { id, op }
    }
}
