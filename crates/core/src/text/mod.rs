//! Collaborative plain text: a sequence CRDT with Fugue ordering.
//!
//! Algorithm: FugueMax (Weidner & Kleppmann, "The Art of the Fugue:
//! Minimizing Interleaving in Collaborative Text Editing", 2023), integrated
//! the YjsMod way used by diamond-types: each inserted character records the
//! ids of its left and right neighbours at insertion time, and concurrent
//! inserts at one place are ordered so that runs typed concurrently never
//! interleave (see `integrate.rs`). Deleted characters stay as tombstones so
//! positions of concurrent ops keep their meaning.
//!
//! Ids: every inserted and every deleted character consumes one counter
//! value of its replica, so a run of typing is a contiguous [`Dot`] range and
//! [`Crdt::version`] is a plain [`VersionVector`] of op counts.
//!
//! Semantics: concurrent runs typed at the same place end up one after the
//! other, never interleaved; when two runs are true siblings (same left and
//! right origin) the one from the smaller replica id goes first. Deleting a
//! character that is already deleted is a no-op; an insert next to a
//! concurrently deleted character still lands where it was typed.
//!
//! Layout: `tree.rs` keeps the document order as run-length encoded spans
//! in chunks with a visible-length index; `ids.rs` maps op ids to local item
//! ids and keeps the op log (content in one append-only buffer); `apply.rs`
//! applies and buffers remote runs, `integrate.rs` places them; the visible
//! text lives in `rope.rs`, indexed by chars, UTF-16 units and bytes;
//! `local.rs` keeps a document transaction's own runs until its update is
//! encoded (no [`TextDelta`] per keystroke).
//!
//! Invariant: the visible text is a function of the set of applied ops alone;
//! ops whose dependencies (origins, delete targets, the replica's earlier
//! ops) have not arrived are buffered and applied once they do; applying an
//! op twice changes nothing.

mod apply;
mod delta;
mod events;
mod ids;
mod integrate;
mod local;
mod position;
mod rope;
mod seq;
mod span;
mod tree;
mod unicode;
mod units;
mod wire;

pub use delta::TextDelta;
pub use events::TextOp;
pub(crate) use local::{LocalRun, TextWriter};
pub use position::{Bias, StablePosition};
pub(crate) use seq::PlanStep;
pub use units::{LineCol, TextUnit};

use crate::codec::{kind, Encode};
use crate::{Crdt, DecodeError, Dot, ReplicaId, VersionVector};
use apply::Outcome;
use delta::{Content, Run, RunOp};
use events::EventLog;
use ids::{EntryKind, Ids};
use rope::{Metric, Rope};
use serde::{Deserialize, Serialize};
use span::{Span, NONE};
use std::collections::BTreeMap;
use std::fmt;
use tree::Tree;

/// A collaboratively edited plain-text document.
///
/// Indices are in Unicode scalar values (chars); see [`Text::utf16_to_char`]
/// and friends for editors that count otherwise.
///
/// ```
/// use weft_core::{Crdt, ReplicaId, Text};
/// let (ra, rb) = (ReplicaId::new(1), ReplicaId::new(2));
/// let mut a = Text::new();
/// let mut b = Text::new();
/// // Both type at the start of an empty document at the same time.
/// let da = a.insert(ra, 0, "Hello");
/// let db = b.insert(rb, 0, "World");
/// a.apply(&db);
/// b.apply(&da);
/// assert_eq!(a, b);
/// assert_eq!(a.to_string(), "HelloWorld", "runs never interleave");
/// ```
#[derive(Clone, Default)]
pub struct Text {
    ids: Ids,
    tree: Tree,
    rope: Rope,
    /// Buffered runs, keyed by the op they wait for: `(replica, counter)`
    /// means "until `counter` ops of `replica` have been applied".
    pending: BTreeMap<ReplicaId, BTreeMap<u64, Vec<Run>>>,
    /// Set while rebuilding from a snapshot: the rope is left alone and
    /// built once at the end ([`Text::rebuild_rope`]).
    loading: bool,
    /// Reused buffer for the item ranges a delete run targets (kept empty
    /// between calls; saves an allocation per delete run).
    ranges: Vec<(u32, u32)>,
    /// Reused buffer for the op ids a local delete targets (kept empty
    /// between calls; saves an allocation per delete).
    targets: Vec<(Dot, u32)>,
}

/// Where an insert went: its first id, length and origins.
struct Placed {
    id: Dot,
    len: u64,
    origin_left: Option<Dot>,
    origin_right: Option<Dot>,
}

impl Placed {
    /// The delta shipping the insert of `s`.
    fn into_delta(self, s: &str) -> TextDelta {
        TextDelta {
            runs: smallvec::smallvec![Run {
                id: self.id,
                op: RunOp::Insert {
                    origin_left: self.origin_left,
                    origin_right: self.origin_right,
                    content: Content::Text(s.to_string()),
                },
            }],
        }
    }
}

impl Text {
    /// The empty document.
    ///
    /// ```
    /// assert!(weft_core::Text::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of visible characters (Unicode scalar values).
    ///
    /// ```
    /// use weft_core::{ReplicaId, Text};
    /// let mut t = Text::new();
    /// t.insert(ReplicaId::new(1), 0, "né");
    /// assert_eq!(t.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.rope.len(Metric::Chars)
    }

    /// Whether no character is visible.
    ///
    /// ```
    /// assert!(weft_core::Text::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of ops received from other replicas but not applied yet,
    /// because something they depend on has not arrived.
    ///
    /// ```
    /// use weft_core::{Crdt, ReplicaId, Text};
    /// let r = ReplicaId::new(1);
    /// let mut a = Text::new();
    /// let first = a.insert(r, 0, "a");
    /// let second = a.insert(r, 1, "b");
    /// let mut b = Text::new();
    /// b.apply(&second);
    /// assert_eq!((b.pending_ops(), b.len()), (1, 0));
    /// b.apply(&first);
    /// assert_eq!((b.pending_ops(), b.to_string()), (0, "ab".to_string()));
    /// ```
    pub fn pending_ops(&self) -> u64 {
        self.pending_runs().map(Run::len).sum()
    }

    /// Every buffered run, in a deterministic order.
    fn pending_runs(&self) -> impl Iterator<Item = &Run> + '_ {
        self.pending.values().flat_map(|m| m.values().flatten())
    }

    /// Inserts `s` before char `index` (clamped to the length) as `replica`.
    ///
    /// # Panics
    /// If the document would exceed `u32::MAX - 1` characters ever inserted.
    ///
    /// ```
    /// use weft_core::{ReplicaId, Text};
    /// let mut t = Text::new();
    /// t.insert(ReplicaId::new(1), 0, "world");
    /// t.insert(ReplicaId::new(1), 0, "hello ");
    /// assert_eq!(t.to_string(), "hello world");
    /// ```
    pub fn insert(&mut self, replica: ReplicaId, index: usize, s: &str) -> TextDelta {
        match self.place(replica, index, s) {
            Some(placed) => placed.into_delta(s),
            None => TextDelta::new(),
        }
    }

    /// [`Text::insert`] for a transaction: the run goes to `runs` (extending
    /// its last run at or after `from` if it continues it), its text being
    /// `s` at byte `start` of the transaction's buffer.
    pub(crate) fn insert_local(
        &mut self,
        replica: ReplicaId,
        index: usize,
        s: &str,
        start: usize,
        runs: &mut Vec<LocalRun>,
        from: usize,
    ) {
        if let Some(p) = self.place(replica, index, s) {
            let run = LocalRun::insert(
                p.id,
                p.len,
                p.origin_left,
                p.origin_right,
                start..start + s.len(),
            );
            local::push(runs, from, run);
        }
    }

    /// Inserts `s` before char `index` (clamped); `None` if `s` is empty.
    fn place(&mut self, replica: ReplicaId, index: usize, s: &str) -> Option<Placed> {
        let n = s.chars().count();
        if n == 0 {
            return None;
        }
        let n = u32::try_from(n)
            .ok()
            .filter(|&n| n < NONE - self.ids.items())
            .expect("text exceeds u32::MAX characters");
        let index = index.min(self.len());
        let cursor = self.tree.gap_after_visible(index as u64);
        let left = if index == 0 {
            NONE
        } else {
            self.tree.span_at(cursor).item + cursor.offset - 1
        };
        Some(self.insert_at(replica, cursor, left, index, s, n))
    }

    /// Inserts `s` (`n` chars, already checked to fit) as `replica` at
    /// `cursor` (visible index `index`), after item `left`: the op, the
    /// document order, the visible text; returns the run's id and origins.
    /// Shared by [`Text::insert`] and the undo path's insert after a
    /// tombstone.
    fn insert_at(
        &mut self,
        replica: ReplicaId,
        cursor: tree::Cursor,
        left: u32,
        index: usize,
        s: &str,
        n: u32,
    ) -> Placed {
        let right = self.tree.item_after(cursor);
        let r = self.ids.replica(replica);
        let seq = self.ids.replicas[r as usize].next + 1;
        let item = self.ids.push_insert(r, seq, n, (left, right), s);
        self.tree.insert(
            cursor,
            Span {
                item,
                len: n,
                origin_left: left,
                origin_right: right,
                deleted: false,
            },
        );
        self.rope.insert(index, s);
        Placed {
            id: Dot::new(replica, seq),
            len: u64::from(n),
            origin_left: self.ids.dot_opt(left),
            origin_right: self.ids.dot_cached(right),
        }
    }

    /// Deletes `len` chars from `index` (both clamped) as `replica`.
    ///
    /// ```
    /// use weft_core::{ReplicaId, Text};
    /// let mut t = Text::new();
    /// t.insert(ReplicaId::new(1), 0, "hello world");
    /// t.delete(ReplicaId::new(1), 5, 100);
    /// assert_eq!(t.to_string(), "hello");
    /// ```
    pub fn delete(&mut self, replica: ReplicaId, index: usize, len: usize) -> TextDelta {
        let mut delta = TextDelta::new();
        self.delete_with(replica, index, len, |id, target, len| {
            delta.push(Run {
                id,
                op: RunOp::Delete {
                    target,
                    len,
                    reversed: false,
                },
            })
        });
        delta
    }

    /// [`Text::delete`] for a transaction: the runs go to `runs` (extending
    /// its last run at or after `from` where they continue it).
    pub(crate) fn delete_local(
        &mut self,
        replica: ReplicaId,
        index: usize,
        len: usize,
        runs: &mut Vec<LocalRun>,
        from: usize,
    ) {
        self.delete_with(replica, index, len, |id, target, len| {
            local::push(runs, from, LocalRun::delete(id, target, len))
        });
    }

    /// Deletes `len` chars from `index` (both clamped) as `replica`, calling
    /// `emit(id, target, len)` for each run of ops, in order.
    fn delete_with(
        &mut self,
        replica: ReplicaId,
        index: usize,
        len: usize,
        mut emit: impl FnMut(Dot, Dot, u64),
    ) {
        let index = index.min(self.len());
        let mut remaining = len.min(self.len() - index);
        if remaining == 0 {
            return;
        }
        let r = self.ids.replica(replica);
        let mut targets = std::mem::take(&mut self.targets);
        while remaining > 0 {
            let c = self.tree.find_visible_hinted(index as u64);
            let s = *self.tree.span_at(c);
            let take = (s.len - c.offset).min(u32::try_from(remaining).unwrap_or(u32::MAX));
            self.tree.delete(c, take);
            self.rope.remove(index, index + take as usize);
            targets.clear();
            self.ids
                .dots_of(s.item + c.offset, take, |dot, n| targets.push((dot, n)));
            for &(target, n) in &targets {
                let seq = self.ids.replicas[r as usize].next + 1;
                let tr = self.ids.replica(target.replica);
                let kind = EntryKind::Delete {
                    target: tr,
                    lo: target.counter,
                    reversed: false,
                };
                self.ids.push_delete(r, seq, n, kind);
                emit(Dot::new(replica, seq), target, u64::from(n));
            }
            remaining -= take as usize;
        }
        targets.clear();
        self.targets = targets;
    }

    /// Applies `delta` like [`Crdt::apply`] and returns how the visible text
    /// changed, as retain/insert/delete ops over the old text (so an editor
    /// can patch its buffer without diffing). Ops buffered earlier that this
    /// delta unblocks are included.
    ///
    /// ```
    /// use weft_core::{ReplicaId, Text, TextOp};
    /// let r = ReplicaId::new(1);
    /// let mut a = Text::new();
    /// a.insert(r, 0, "abc");
    /// let mut b = a.clone();
    /// let d = a.delete(r, 1, 1);
    /// assert_eq!(b.apply_with_events(&d), vec![TextOp::Retain(1), TextOp::Delete(1)]);
    /// ```
    pub fn apply_with_events(&mut self, delta: &TextDelta) -> Vec<TextOp> {
        let mut log = EventLog {
            items_before: self.ids.items(),
            deleted: Vec::new(),
        };
        self.apply_inner(delta, Some(&mut log));
        let rope = &self.rope;
        log.finish(&self.tree, |pos, n| rope.slice(pos, n))
    }

    /// A position before char `index` (clamped) that follows its
    /// neighbouring character through concurrent edits.
    ///
    /// ```
    /// use weft_core::{Bias, ReplicaId, Text};
    /// let r = ReplicaId::new(1);
    /// let mut t = Text::new();
    /// t.insert(r, 0, "ac");
    /// let left = t.anchor(1, Bias::Left);
    /// let right = t.anchor(1, Bias::Right);
    /// t.insert(r, 1, "b");
    /// assert_eq!((t.resolve(&left), t.resolve(&right)), (Some(1), Some(2)));
    /// ```
    pub fn anchor(&self, index: usize, bias: Bias) -> StablePosition {
        let index = index.min(self.len());
        let item = match bias {
            Bias::Left if index > 0 => Some(index - 1),
            Bias::Right if index < self.len() => Some(index),
            _ => None,
        };
        let anchor = item.map(|i| {
            let c = self.tree.find_visible(i as u64);
            self.ids.dot(self.tree.span_at(c).item + c.offset)
        });
        StablePosition { anchor, bias }
    }

    /// The current char index of `pos`; a deleted anchor resolves to where
    /// it was. `None` if the anchor's character has not been received.
    ///
    /// ```
    /// use weft_core::{Bias, ReplicaId, Text};
    /// let r = ReplicaId::new(1);
    /// let mut t = Text::new();
    /// t.insert(r, 0, "abc");
    /// let p = t.anchor(2, Bias::Left); // after "b"
    /// t.delete(r, 0, 2);
    /// assert_eq!(t.resolve(&p), Some(0));
    /// ```
    pub fn resolve(&self, pos: &StablePosition) -> Option<usize> {
        let Some(dot) = pos.anchor else {
            return Some(match pos.bias {
                Bias::Left => 0,
                Bias::Right => self.len(),
            });
        };
        let item = self.ids.item(Some(dot)).ok()?;
        let c = self.tree.locate(item);
        let before = self.tree.visible_before(c) as usize;
        let visible = !self.tree.span_at(c).deleted;
        Some(match pos.bias {
            Bias::Left if visible => before + 1,
            _ => before,
        })
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.rope.chunks() {
            f.write_str(chunk)?;
        }
        Ok(())
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Text")
            .field("text", &self.to_string())
            .field("version", &self.version())
            .field("pending_ops", &self.pending_ops())
            .finish()
    }
}

/// Two texts are equal when they have applied the same ops (and therefore
/// show the same text); buffered ops are not compared.
impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.version() == other.version() && self.rope == other.rope
    }
}

impl Crdt for Text {
    type Delta = TextDelta;

    fn join(&mut self, other: &Self) {
        let mut delta = other.delta_since(&self.version());
        delta.runs.extend(other.pending_runs().cloned());
        self.apply(&delta);
    }

    fn apply(&mut self, delta: &TextDelta) {
        self.apply_inner(delta, None);
    }

    fn version(&self) -> VersionVector {
        self.ids
            .replicas
            .iter()
            .filter(|l| l.next > 0)
            .map(|l| (l.id, l.next))
            .collect()
    }

    fn version_of(&self, replica: ReplicaId) -> u64 {
        self.ids
            .replicas
            .iter()
            .find(|l| l.id == replica)
            .map_or(0, |l| l.next)
    }

    fn delta_since(&self, since: &VersionVector) -> TextDelta {
        // The entries `since` lacks, per replica by binary search, then
        // merged into application order (which is causal order).
        let mut picks: Vec<(u32, usize, usize, u64)> = Vec::new();
        for (r, log) in self.ids.replicas.iter().enumerate() {
            let have = since.get(log.id);
            if log.next <= have {
                continue;
            }
            let first = log
                .entries
                .partition_point(|e| e.seq + u64::from(e.len) - 1 <= have);
            for (i, e) in log.entries.iter().enumerate().skip(first) {
                picks.push((e.arrival, r, i, have.saturating_sub(e.seq - 1)));
            }
        }
        picks.sort_unstable_by_key(|p| p.0);
        let mut delta = TextDelta::new();
        for (_, r, i, skip) in picks {
            let entry = &self.ids.replicas[r].entries[i];
            delta.push(self.entry_run(r, entry, skip));
        }
        delta
    }
}

impl Text {
    /// Every op-log entry as `(replica, entry)`, in application order.
    fn entries_in_order(&self) -> Vec<(usize, usize)> {
        let mut picks: Vec<(u32, usize, usize)> = Vec::new();
        for (r, log) in self.ids.replicas.iter().enumerate() {
            for (i, e) in log.entries.iter().enumerate() {
                picks.push((e.arrival, r, i));
            }
        }
        picks.sort_unstable_by_key(|p| p.0);
        picks.into_iter().map(|(_, r, i)| (r, i)).collect()
    }

    /// The snapshot blob: the op log in application order with inserts cut
    /// where deletion starts or stops, deleted pieces without their text,
    /// then the buffered runs (see `docs/protocol.md`, "Text").
    fn snapshot(&self) -> Vec<u8> {
        let mut enc = wire::Encoder::new();
        for (r, i) in self.entries_in_order() {
            let replica = self.ids.replicas[r].id;
            let e = &self.ids.replicas[r].entries[i];
            match e.kind {
                EntryKind::Insert {
                    item,
                    origin_left,
                    origin_right,
                    content,
                    bytes,
                } => {
                    let origin_right = self.ids.dot_opt(origin_right);
                    let text = &self.ids.content[content as usize..(content + bytes) as usize];
                    let (mut at, mut byte) = (0u32, 0usize);
                    while at < e.len {
                        let c = self.tree.locate(item + at);
                        let s = self.tree.span_at(c);
                        let n = (s.len - c.offset).min(e.len - at);
                        let origin_left = if at == 0 {
                            self.ids.dot_opt(origin_left)
                        } else {
                            Some(Dot::new(replica, e.seq + u64::from(at) - 1))
                        };
                        let end = if bytes == 0 {
                            0
                        } else if text.len() == e.len as usize {
                            byte + n as usize
                        } else {
                            byte + text[byte..]
                                .char_indices()
                                .nth(n as usize)
                                .map_or(text.len() - byte, |(b, _)| b)
                        };
                        let piece = (bytes > 0 && !s.deleted).then(|| &text[byte..end]);
                        enc.push(wire::RunRef {
                            id: Dot::new(replica, e.seq + u64::from(at)),
                            len: u64::from(n),
                            op: wire::OpRef::Insert {
                                origin_left,
                                origin_right,
                                text: piece,
                            },
                        });
                        at += n;
                        byte = end;
                    }
                }
                EntryKind::Delete { .. } => enc.push(self.entry_run(r, e, 0).as_ref()),
            }
        }
        let ops = enc.runs();
        for run in self.pending_runs() {
            enc.push(run.as_ref());
        }
        let pending = enc.runs() - ops;
        enc.finish(&[ops, pending])
    }

    /// Rebuilds a text from [`Text::snapshot`]'s blob.
    fn from_snapshot(blob: &[u8]) -> Result<Text, DecodeError> {
        let mut text = Text {
            loading: true,
            ..Text::default()
        };
        let mut pending = TextDelta::new();
        text.ids.begin_bulk();
        text.tree.begin_bulk();
        let sizes = std::cell::Cell::new(None);
        let hint = |runs: u64, bytes: usize| sizes.set(Some((runs, bytes)));
        wire::decode_sized(blob, 2, hint, |group, run| {
            if let Some((runs, bytes)) = sizes.take() {
                text.ids.reserve(runs, bytes);
            }
            if group == 1 {
                pending.runs.push(run.to_run());
            } else if text.apply_ref(run, None) != Outcome::Applied {
                return Err(DecodeError::Invalid(
                    "text history is not a causally ordered, gap-free op log",
                ));
            }
            Ok(())
        })?;
        text.loading = false;
        text.ids.end_bulk();
        text.tree.end_bulk();
        text.rebuild_rope();
        text.apply(&pending);
        Ok(text)
    }

    /// Rebuilds the rope from the tree and the op log's content.
    fn rebuild_rope(&mut self) {
        // Insert entries with text, by first item: (item, len, content,
        // bytes); non-ASCII ones get their char boundaries in `bounds` from
        // index `content` on (so slicing costs O(1) per span).
        let mut known: Vec<(u32, u32, u32, u32)> = self
            .ids
            .replicas
            .iter()
            .flat_map(|log| log.entries.iter())
            .filter_map(|e| match e.kind {
                EntryKind::Insert {
                    item,
                    content,
                    bytes,
                    ..
                } if bytes > 0 => Some((item, e.len, content, bytes)),
                _ => None,
            })
            .collect();
        known.sort_unstable();
        let mut bounds: Vec<u32> = Vec::new();
        let mut bounds_at: Vec<u32> = Vec::with_capacity(known.len());
        // The index in `known` of each item's entry (`NONE`: no text).
        let mut entry_of: Vec<u32> = vec![NONE; self.ids.items() as usize];
        for (i, &(first, len, content, bytes)) in known.iter().enumerate() {
            entry_of[first as usize..(first + len) as usize].fill(i as u32);
            bounds_at.push(bounds.len() as u32);
            if bytes != len {
                let text = &self.ids.content[content as usize..(content + bytes) as usize];
                bounds.extend(text.char_indices().map(|(b, _)| content + b as u32));
                bounds.push(content + bytes);
            }
        }
        let content = &self.ids.content;
        let mut visible = String::with_capacity(content.len());
        for s in self.tree.iter().filter(|s| !s.deleted) {
            let (mut item, end) = (s.item, s.end());
            while item < end {
                let i = entry_of.get(item as usize).map_or(NONE, |&i| i) as usize;
                // A visible item always has its text; stop rather than panic.
                let Some(&(first, len, start, bytes)) = known.get(i) else {
                    break;
                };
                let n = (first + len).min(end) - item;
                let (from, to) = ((item - first) as usize, (item - first + n) as usize);
                let (a, b) = if bytes == len {
                    (start as usize + from, start as usize + to)
                } else {
                    let at = bounds_at[i] as usize;
                    (bounds[at + from] as usize, bounds[at + to] as usize)
                };
                visible.push_str(&content[a..b]);
                item += n;
            }
        }
        self.rope = Rope::default();
        self.rope.insert(0, &visible);
    }
}

/// Encoded as one byte string: the columnar snapshot blob (see `docs/protocol.md`).
impl Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.snapshot())
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_bytes(wire::BlobVisitor(Text::from_snapshot))
    }
}

impl Encode for Text {
    const KIND: u8 = kind::TEXT;
    const NAME: &'static str = "Text";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    fn r(n: u64) -> ReplicaId {
        ReplicaId::new(n)
    }

    #[test]
    fn concurrent_runs_at_one_place_do_not_interleave() {
        let mut base = Text::new();
        base.insert(r(9), 0, "[]");
        let mut a = base.clone();
        let mut b = base.clone();
        let mut da = TextDelta::new();
        let mut db = TextDelta::new();
        for (i, ch) in "abc".chars().enumerate() {
            da.merge(&a.insert(r(1), 1 + i, &ch.to_string()));
            db.merge(&b.insert(r(2), 1 + i, &ch.to_string().to_uppercase()));
        }
        a.apply(&db);
        b.apply(&da);
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "[abcABC]");
    }

    #[test]
    fn reverse_typing_concurrently_does_not_interleave() {
        // Each replica types its word backwards (always at the same index).
        let mut a = Text::new();
        let mut b = Text::new();
        let mut da = TextDelta::new();
        let mut db = TextDelta::new();
        for ch in "cba".chars() {
            da.merge(&a.insert(r(1), 0, &ch.to_string()));
        }
        for ch in "ZYX".chars() {
            db.merge(&b.insert(r(2), 0, &ch.to_string()));
        }
        let (mut a2, mut b2) = (a.clone(), b.clone());
        a2.apply(&db);
        b2.apply(&da);
        assert_eq!(a2, b2);
        let s = a2.to_string();
        assert!(s == "abcXYZ" || s == "XYZabc", "{s}");
    }

    #[test]
    fn out_of_order_delivery_buffers() {
        let mut a = Text::new();
        let d1 = a.insert(r(1), 0, "hello");
        let d2 = a.delete(r(1), 1, 3);
        let d3 = a.insert(r(1), 2, "y!");
        let mut b = Text::new();
        b.apply(&d3);
        b.apply(&d2);
        assert_eq!(b.len(), 0);
        b.apply(&d1);
        b.apply(&d1);
        assert_eq!(b, a);
        assert_eq!(b.to_string(), "hoy!");
        assert_eq!(b.pending_ops(), 0);
    }

    #[test]
    fn reverse_delivery_of_a_long_history_is_buffered_efficiently() {
        let mut a = Text::new();
        let mut b = Text::new();
        let mut deltas = Vec::new();
        for i in 0..3000usize {
            let (text, r) = if i % 2 == 0 { (&mut a, 1) } else { (&mut b, 2) };
            let d = if i % 7 == 6 {
                text.delete(ReplicaId::new(r), i % 5, 1)
            } else {
                text.insert(ReplicaId::new(r), i % (text.len() + 1), "xy")
            };
            // Each op is seen by the other replica before its next edit.
            if r == 1 {
                b.apply(&d);
            } else {
                a.apply(&d);
            }
            deltas.push(d);
        }
        let mut c = Text::new();
        for d in deltas.iter().rev() {
            c.apply(d);
        }
        assert_eq!(c.pending_ops(), 0);
        assert_eq!(c, a);
        assert_eq!(a, b);
    }

    #[test]
    fn history_round_trips_through_codec() {
        let mut a = Text::new();
        a.insert(r(1), 0, "hello world");
        a.delete(r(1), 0, 6);
        for i in 0..5 {
            a.delete(r(2), 4 - i, 1);
        }
        a.insert(r(2), 0, "héllo😀");
        let bytes = codec::encode(&a);
        let back: Text = codec::decode(&bytes).unwrap();
        assert_eq!(back, a);
        assert_eq!(back.to_string(), "héllo😀");
        let mut c = Text::new();
        c.apply(&a.delta_since(&VersionVector::new()));
        assert_eq!(c, a);
    }

    #[test]
    fn delta_since_trims_partially_known_runs() {
        let mut a = Text::new();
        a.insert(r(1), 0, "abc");
        let mut b = a.clone();
        a.insert(r(1), 3, "def");
        let d = a.delta_since(&b.version());
        assert_eq!(d.len(), 3);
        b.apply(&d);
        assert_eq!(b, a);
    }
}
