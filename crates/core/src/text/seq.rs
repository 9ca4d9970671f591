//! What other sequence types and undo need from a text, by op id.
//!
//! `List` is a text of placeholder characters whose op ids key the list's
//! elements, so it gets Fugue ordering, tombstones, positions and the wire
//! codec from here. Undo reasons in op ids too: it deletes the characters
//! a transaction inserted and re-inserts the ones it deleted, wherever
//! concurrent edits have moved them. Everything here is read-only and
//! clamps or skips ids it does not know, so none of it can panic on ids from
//! a peer.

use super::delta::{Content, RunOp};
use super::ids::EntryKind;
use super::span::NONE;
use super::tree::Cursor;
use super::{Text, TextDelta};
use crate::{Dot, ReplicaId};

/// One step of an undo plan over a sequence; steps are given so that
/// performing them in order keeps the indices of later steps valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PlanStep {
    /// Delete `len` visible elements from `index`.
    Delete { index: usize, len: usize },
    /// Re-insert the (deleted, adjacent) elements `dots`, in document
    /// order, right after the last of them (visible `index`).
    Insert { index: usize, dots: Vec<Dot> },
}

impl TextDelta {
    /// The insert runs: first op id, number of characters, and whether the
    /// run carries its text (`false`: received as already deleted).
    pub(crate) fn insert_runs(&self) -> impl Iterator<Item = (Dot, u64, bool)> + '_ {
        self.runs.iter().filter_map(|run| match &run.op {
            RunOp::Insert { content, .. } => {
                Some((run.id, run.len(), matches!(content, Content::Text(_))))
            }
            RunOp::Delete { .. } => None,
        })
    }

    /// The characters the delete runs delete: `(first target, count)`.
    pub(crate) fn delete_targets(&self) -> impl Iterator<Item = (Dot, u64)> + '_ {
        self.runs.iter().filter_map(|run| match &run.op {
            RunOp::Delete { target, len, .. } => Some((*target, *len)),
            RunOp::Insert { .. } => None,
        })
    }
}

impl Text {
    /// The op id of visible character `index`, if in range.
    pub(crate) fn dot_at(&self, index: usize) -> Option<Dot> {
        if index >= self.len() {
            return None;
        }
        let c = self.tree.find_visible(index as u64);
        Some(self.ids.dot(self.tree.span_at(c).item + c.offset))
    }

    /// The op ids of visible characters `start..start + n` (clamped).
    pub(crate) fn dots_in(&self, start: usize, n: usize) -> Vec<Dot> {
        let end = start.saturating_add(n).min(self.len());
        (start..end).filter_map(|i| self.dot_at(i)).collect()
    }

    /// Whether the insert `id` is integrated or buffered here (what a list
    /// needs before it keeps the value a delta carries for `id`: a run the
    /// sequence refused must not leave a value behind for a later, honest
    /// run of the same id).
    pub(crate) fn holds_insert(&self, id: Dot) -> bool {
        if self.ids.item(Some(id)).is_ok() {
            return true;
        }
        self.pending_runs().any(|run| {
            matches!(run.op, RunOp::Insert { .. })
                && run.id.replica == id.replica
                && run.id.counter <= id.counter
                && id.counter - run.id.counter < run.len()
        })
    }

    /// Where the character `dot` is: visible characters before it, and
    /// whether it is visible. `None` if it was never received.
    pub(crate) fn locate_dot(&self, dot: Dot) -> Option<(usize, bool)> {
        let item = self.ids.item(Some(dot)).ok()?;
        let c = self.tree.locate(item);
        Some((
            self.tree.visible_before(c) as usize,
            !self.tree.span_at(c).deleted,
        ))
    }

    /// The text of characters `dot..dot + len` of one replica, if every one
    /// was received with its text.
    pub(crate) fn content_of(&self, dot: Dot, len: u64) -> Option<String> {
        let r = self.ids.find(dot.replica)?;
        let log = &self.ids.replicas[r as usize];
        if dot.counter == 0 || dot.counter.checked_add(len)? > log.next + 1 {
            return None;
        }
        let mut out = String::new();
        let (mut seq, end) = (dot.counter, dot.counter + len);
        while seq < end {
            let e = log.entries.get(self.ids.entry_index(r, seq))?;
            let EntryKind::Insert { content, bytes, .. } = e.kind else {
                return None;
            };
            if bytes == 0 {
                return None;
            }
            let text = self
                .ids
                .content
                .get(content as usize..(content as usize + bytes as usize))?;
            let skip = (seq - e.seq) as usize;
            let take = (u64::from(e.len) - (seq - e.seq)).min(end - seq) as usize;
            out.extend(text.chars().skip(skip).take(take));
            seq += take as u64;
            if take == 0 {
                return None;
            }
        }
        Some(out)
    }

    /// The steps that delete the still-visible characters of `remove` and
    /// re-insert the deleted characters of `restore` where their
    /// tombstones are (unknown ids are skipped). Steps run right to left,
    /// so performing them in order needs no index adjustment.
    pub(crate) fn undo_plan(&self, remove: &[(Dot, u64)], restore: &[(Dot, u64)]) -> Vec<PlanStep> {
        // (document position, item, restore?)
        let mut actions: Vec<(Cursor, u32, bool)> = Vec::new();
        for (ranges, want_restore) in [(remove, false), (restore, true)] {
            for &(dot, len) in ranges {
                let Some(r) = self.ids.find(dot.replica) else {
                    continue;
                };
                let log = &self.ids.replicas[r as usize];
                if len == 0 || dot.counter == 0 || dot.counter > log.next {
                    continue;
                }
                let len = len.min(log.next + 1 - dot.counter);
                // Ranges may span several entries; resolve op by op (items of
                // one range are contiguous per entry, so this stays cheap).
                let mut seq = dot.counter;
                let end = dot.counter + len;
                while seq < end {
                    let i = self.ids.entry_index(r, seq);
                    let Some(e) = log.entries.get(i) else { break };
                    let take = (u64::from(e.len) - (seq - e.seq)).min(end - seq);
                    if let EntryKind::Insert { item, .. } = e.kind {
                        let first = item + (seq - e.seq) as u32;
                        for it in first..first + take as u32 {
                            let c = self.tree.locate(it);
                            let deleted = self.tree.span_at(c).deleted;
                            if deleted == want_restore {
                                actions.push((c, it, want_restore));
                            }
                        }
                    }
                    seq += take.max(1);
                }
            }
        }
        actions.sort_unstable_by_key(|a| std::cmp::Reverse(a.0));
        actions.dedup_by(|a, b| a.1 == b.1);
        let mut steps: Vec<PlanStep> = Vec::new();
        let mut next_item = NONE; // the item of the previous (later) action
        for (c, item, restore) in actions {
            let index = self.tree.visible_before(c) as usize;
            let dot = self.ids.dot(item);
            // Restored runs group only tombstones adjacent in the document,
            // so each comes back exactly where it was.
            let adjacent = {
                let mut gap = c;
                gap.offset += 1;
                self.tree.item_after(gap) == next_item
            };
            next_item = item;
            match (steps.last_mut(), restore) {
                (Some(PlanStep::Delete { index: at, len }), false) if *at == index + 1 => {
                    *at = index;
                    *len += 1;
                }
                (Some(PlanStep::Insert { index: at, dots }), true) if *at == index && adjacent => {
                    dots.push(dot)
                }
                (_, false) => steps.push(PlanStep::Delete { index, len: 1 }),
                (_, true) => steps.push(PlanStep::Insert {
                    index,
                    dots: vec![dot],
                }),
            }
        }
        for step in &mut steps {
            if let PlanStep::Insert { dots, .. } = step {
                dots.reverse();
            }
        }
        steps
    }

    /// The text of `dots` (consecutive ids read as one run); `None` if any
    /// was received without its text.
    pub(crate) fn content_of_dots(&self, dots: &[Dot]) -> Option<String> {
        let mut out = String::new();
        let mut i = 0;
        while i < dots.len() {
            let mut n = 1;
            while i + n < dots.len()
                && dots[i + n].replica == dots[i].replica
                && dots[i + n].counter == dots[i].counter + n as u64
            {
                n += 1;
            }
            out.push_str(&self.content_of(dots[i], n as u64)?);
            i += n;
        }
        Some(out)
    }
}

impl Text {
    /// Every inserted run received with its text, applied or buffered:
    /// `(first op id, count)`. What a list checks its element table against.
    pub(crate) fn content_ranges(&self) -> Vec<(Dot, u64)> {
        let mut out = Vec::new();
        for log in &self.ids.replicas {
            for e in &log.entries {
                if let EntryKind::Insert { bytes, .. } = e.kind {
                    if bytes > 0 {
                        out.push((Dot::new(log.id, e.seq), u64::from(e.len)));
                    }
                }
            }
        }
        for run in self.pending_runs() {
            if let RunOp::Insert {
                content: Content::Text(_),
                ..
            } = &run.op
            {
                out.push((run.id, run.len()));
            }
        }
        out
    }
}

impl Text {
    /// Inserts `s` right after the character `after` (visible or not; the
    /// document start for `None` or an unknown id) as `replica`; returns
    /// the delta and the visible index of the inserted text. What undo
    /// uses to put deleted text back exactly where its tombstones are.
    pub(crate) fn insert_after(
        &mut self,
        replica: ReplicaId,
        after: Option<Dot>,
        s: &str,
    ) -> (TextDelta, usize) {
        let n = s.chars().count();
        let left = after
            .and_then(|d| self.ids.item(Some(d)).ok())
            .unwrap_or(NONE);
        let cursor = if left == NONE {
            self.tree.start()
        } else {
            let mut c = self.tree.locate(left);
            c.offset += 1;
            c
        };
        let index = self.tree.visible_before(cursor) as usize;
        let Ok(n) = u32::try_from(n) else {
            return (TextDelta::new(), index);
        };
        if n == 0 || n >= NONE - self.ids.items() {
            return (TextDelta::new(), index);
        }
        let delta = self
            .insert_at(replica, cursor, left, index, s, n)
            .into_delta(s);
        (delta, index)
    }
}
