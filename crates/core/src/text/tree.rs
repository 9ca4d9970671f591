//! The document order: every item ever inserted (tombstones included), as
//! run-length encoded [`Span`]s in chunks, indexed by visible length.
//!
//! Layout: chunks live in an arena and never move; `order` lists them in
//! document order and `rank` is its inverse. A Fenwick tree over ranks holds
//! each chunk's visible length, so the chunk holding a visible index, and the
//! visible length before a chunk, are found in `O(log chunks)`; inside a
//! chunk (at most [`MAX_SPANS`] spans) the scan is linear. `chunk_of` maps
//! every item to its chunk, which makes locating an item by id `O(1 + chunk)`.
//!
//! Invariant: `order` is a permutation of the arena, `rank[order[r]] == r`,
//! the Fenwick tree sums exactly the chunks' visible lengths, every item's
//! `chunk_of` entry names the chunk whose spans contain it, and only the
//! single chunk of an empty document is ever empty.

use super::span::{Span, NONE};
use std::cmp::Ordering;

/// Spans per chunk before it splits in two.
const MAX_SPANS: usize = 32;

/// A place in the document: before the item at `offset` of span `span` of
/// the chunk at `rank` (`offset == len` means just after the span).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Cursor {
    pub(super) rank: usize,
    pub(super) span: usize,
    pub(super) offset: u32,
}

/// Item -> chunk map: two bytes per item while the arena has at most
/// `u16::MAX + 1` chunks (any document under about a million spans), four
/// after that.
#[derive(Clone, Debug)]
enum ChunkIndex {
    Small(Vec<u16>),
    Large(Vec<u32>),
}

impl Default for ChunkIndex {
    fn default() -> Self {
        ChunkIndex::Small(Vec::new())
    }
}

impl ChunkIndex {
    fn len(&self) -> usize {
        match self {
            ChunkIndex::Small(v) => v.len(),
            ChunkIndex::Large(v) => v.len(),
        }
    }

    fn get(&self, item: u32) -> usize {
        match self {
            ChunkIndex::Small(v) => usize::from(v[item as usize]),
            ChunkIndex::Large(v) => v[item as usize] as usize,
        }
    }

    fn widen_for(&mut self, chunk: usize) {
        if let ChunkIndex::Small(v) = self {
            if chunk > usize::from(u16::MAX) {
                *self = ChunkIndex::Large(v.iter().map(|&c| u32::from(c)).collect());
            }
        }
    }

    /// Appends `n` items living in `chunk`.
    fn push(&mut self, n: u32, chunk: usize) {
        self.widen_for(chunk);
        match self {
            ChunkIndex::Small(v) => v.resize(v.len() + n as usize, chunk as u16),
            ChunkIndex::Large(v) => v.resize(v.len() + n as usize, chunk as u32),
        }
    }

    /// Records that items `start..end` now live in `chunk`.
    fn set(&mut self, start: u32, end: u32, chunk: usize) {
        self.widen_for(chunk);
        let range = start as usize..end as usize;
        match self {
            ChunkIndex::Small(v) => v[range].fill(chunk as u16),
            ChunkIndex::Large(v) => v[range].fill(chunk as u32),
        }
    }
}

/// Spans in document order with a visible-length index.
#[derive(Clone, Debug)]
pub(super) struct Tree {
    chunks: Vec<Vec<Span>>,
    chunk_visible: Vec<u64>,
    order: Vec<u32>,
    rank: Vec<u32>,
    fenwick: Vec<i64>,
    chunk_of: ChunkIndex,
    visible: u64,
    /// The chunk of the last local edit and the visible length before it
    /// (kept exact by every update; `None` after a chunk split).
    hint: Option<(usize, u64)>,
    /// Bulk mode (loading a snapshot): the Fenwick tree is left stale and
    /// rebuilt once by [`Tree::end_bulk`]; visible-index queries are not
    /// allowed meanwhile.
    bulk: bool,
}

impl Default for Tree {
    fn default() -> Self {
        Tree {
            chunks: vec![Vec::new()],
            chunk_visible: vec![0],
            order: vec![0],
            rank: vec![0],
            fenwick: vec![0, 0],
            chunk_of: ChunkIndex::default(),
            visible: 0,
            hint: None,
            bulk: false,
        }
    }
}

impl Tree {
    /// Visible characters.
    #[cfg(test)]
    pub(super) fn len(&self) -> u64 {
        self.visible
    }

    /// Number of items (visible or not) placed so far.
    pub(super) fn items(&self) -> u32 {
        self.chunk_of.len() as u32
    }

    fn spans(&self, rank: usize) -> &Vec<Span> {
        &self.chunks[self.order[rank] as usize]
    }

    /// The span a normalized cursor points into.
    pub(super) fn span_at(&self, c: Cursor) -> &Span {
        &self.spans(c.rank)[c.span]
    }

    /// The document start.
    pub(super) fn start(&self) -> Cursor {
        Cursor {
            rank: 0,
            span: 0,
            offset: 0,
        }
    }

    /// Moves `c` forward past span ends so that it points at an item;
    /// `None` at the end of the document.
    pub(super) fn normalize(&self, mut c: Cursor) -> Option<Cursor> {
        loop {
            let spans = self.spans(c.rank);
            if c.span < spans.len() && c.offset < spans[c.span].len {
                return Some(c);
            }
            if c.span + 1 < spans.len() {
                c.span += 1;
                c.offset = 0;
            } else if c.rank + 1 < self.order.len() {
                c.rank += 1;
                c.span = 0;
                c.offset = 0;
            } else {
                return None;
            }
        }
    }

    /// The item right after the gap `c`, or [`NONE`] at the end.
    pub(super) fn item_after(&self, c: Cursor) -> u32 {
        match self.normalize(c) {
            Some(n) => self.span_at(n).item + n.offset,
            None => NONE,
        }
    }

    /// Where `item` is (the cursor points at it).
    pub(super) fn locate(&self, item: u32) -> Cursor {
        let chunk = self.chunk_of.get(item);
        let rank = self.rank[chunk] as usize;
        let spans = &self.chunks[chunk];
        let span = spans
            .iter()
            .position(|s| s.item <= item && item < s.end())
            .unwrap_or(0);
        let offset = item - spans.get(span).map_or(item, |s| s.item);
        Cursor { rank, span, offset }
    }

    /// Document order of two items, where [`NONE`] sorts as `none_is`.
    pub(super) fn cmp_items(&self, a: u32, b: u32, none_is: Ordering) -> Ordering {
        match (a == NONE, b == NONE) {
            (true, true) => Ordering::Equal,
            (true, false) => none_is,
            (false, true) => none_is.reverse(),
            (false, false) => self.locate(a).cmp(&self.locate(b)),
        }
    }

    fn fenwick_add(&mut self, rank: usize, delta: i64) {
        let mut i = rank + 1;
        while i < self.fenwick.len() {
            self.fenwick[i] += delta;
            i += i & i.wrapping_neg();
        }
    }

    fn fenwick_prefix(&self, rank: usize) -> u64 {
        let mut i = rank;
        let mut sum = 0i64;
        while i > 0 {
            sum += self.fenwick[i];
            i &= i - 1;
        }
        sum as u64
    }

    fn fenwick_rebuild(&mut self) {
        let n = self.order.len();
        self.fenwick.clear();
        self.fenwick.resize(n + 1, 0);
        for r in 0..n {
            let i = r + 1;
            self.fenwick[i] += self.chunk_visible[self.order[r] as usize] as i64;
            let parent = i + (i & i.wrapping_neg());
            if parent <= n {
                self.fenwick[parent] += self.fenwick[i];
            }
        }
    }

    /// The rank of the chunk holding visible character `index` (0-based,
    /// `index < len`) and how many visible characters precede that chunk.
    fn find_rank(&self, index: u64) -> (usize, u64) {
        let n = self.order.len();
        let mut pos = 0usize;
        let mut before = 0u64;
        let mut step = n.next_power_of_two();
        while step > 0 {
            let next = pos + step;
            if next <= n && before + self.fenwick[next] as u64 <= index {
                pos = next;
                before += self.fenwick[next] as u64;
            }
            step >>= 1;
        }
        (pos.min(n - 1), before)
    }

    /// [`Tree::find_visible`], remembering the chunk for the next call
    /// (edits cluster, so the Fenwick search is usually skipped).
    pub(super) fn find_visible_hinted(&mut self, index: u64) -> Cursor {
        let (rank, before) = match self.hint {
            Some((rank, before))
                if index >= before
                    && index - before < self.chunk_visible[self.order[rank] as usize] =>
            {
                (rank, before)
            }
            _ => self.find_rank(index),
        };
        self.hint = Some((rank, before));
        self.find_in_chunk(rank, index - before)
    }

    /// The cursor at visible character `index` (`index < len`).
    pub(super) fn find_visible(&self, index: u64) -> Cursor {
        let (rank, before) = self.find_rank(index);
        self.find_in_chunk(rank, index - before)
    }

    fn find_in_chunk(&self, rank: usize, mut rem: u64) -> Cursor {
        for (i, s) in self.spans(rank).iter().enumerate() {
            let v = u64::from(s.visible());
            if rem < v {
                return Cursor {
                    rank,
                    span: i,
                    offset: rem as u32,
                };
            }
            rem -= v;
        }
        // Unreachable while the index invariant holds; the end is a safe answer.
        self.end()
    }

    /// The gap right after visible character `index - 1` (the start for 0).
    pub(super) fn gap_after_visible(&mut self, index: u64) -> Cursor {
        if index == 0 {
            return self.start();
        }
        let mut c = self.find_visible_hinted(index - 1);
        c.offset += 1;
        c
    }

    fn end(&self) -> Cursor {
        let rank = self.order.len() - 1;
        let spans = self.spans(rank);
        match spans.last() {
            Some(s) => Cursor {
                rank,
                span: spans.len() - 1,
                offset: s.len,
            },
            None => self.start(),
        }
    }

    /// Visible characters before the gap `c`.
    pub(super) fn visible_before(&self, c: Cursor) -> u64 {
        let spans = self.spans(c.rank);
        let mut sum = self.fenwick_prefix(c.rank);
        for s in &spans[..c.span.min(spans.len())] {
            sum += u64::from(s.visible());
        }
        if let Some(s) = spans.get(c.span) {
            if !s.deleted {
                sum += u64::from(c.offset);
            }
        }
        sum
    }

    /// Enters bulk mode: until [`Tree::end_bulk`], only inserts, deletes
    /// and item lookups (`locate`, `normalize`, ...) may be used.
    pub(super) fn begin_bulk(&mut self) {
        self.bulk = true;
        self.hint = None;
    }

    /// Leaves bulk mode, rebuilding the visible-length index once.
    pub(super) fn end_bulk(&mut self) {
        if self.bulk {
            self.bulk = false;
            self.fenwick_rebuild();
            self.hint = None;
        }
    }

    fn add_visible(&mut self, rank: usize, delta: i64) {
        let chunk = self.order[rank] as usize;
        self.chunk_visible[chunk] = (self.chunk_visible[chunk] as i64 + delta) as u64;
        self.visible = (self.visible as i64 + delta) as u64;
        if self.bulk {
            return;
        }
        self.fenwick_add(rank, delta);
        if let Some((hint, before)) = &mut self.hint {
            if rank < *hint {
                *before = (*before as i64 + delta) as u64;
            }
        }
    }

    /// Inserts the new items of `new` (the next unplaced ids) at gap `c`.
    pub(super) fn insert(&mut self, c: Cursor, new: Span) {
        debug_assert_eq!(new.item, self.items());
        let chunk = self.order[c.rank] as usize;
        let spans = &mut self.chunks[chunk];
        let at = if c.span >= spans.len() {
            spans.len()
        } else if c.offset == 0 {
            c.span
        } else if c.offset >= spans[c.span].len {
            c.span + 1
        } else {
            let right = spans[c.span].split_off(c.offset);
            spans.insert(c.span + 1, right);
            c.span + 1
        };
        if at > 0 && spans[at - 1].can_append(&new) {
            spans[at - 1].len += new.len;
        } else {
            spans.insert(at, new);
        }
        let too_big = spans.len() > MAX_SPANS;
        self.chunk_of.push(new.len, chunk);
        self.add_visible(c.rank, i64::from(new.visible()));
        if too_big {
            self.split_chunk(c.rank);
        }
    }

    /// Marks the `len` items from cursor `c` deleted (they must lie inside
    /// one span that is not deleted yet).
    pub(super) fn delete(&mut self, c: Cursor, len: u32) {
        let chunk = self.order[c.rank] as usize;
        let spans = &mut self.chunks[chunk];
        let mut i = c.span;
        if c.offset > 0 {
            let right = spans[i].split_off(c.offset);
            spans.insert(i + 1, right);
            i += 1;
        }
        if len < spans[i].len {
            let right = spans[i].split_off(len);
            spans.insert(i + 1, right);
        }
        spans[i].deleted = true;
        if i + 1 < spans.len() && spans[i].can_append(&spans[i + 1]) {
            spans[i].len += spans[i + 1].len;
            spans.remove(i + 1);
        }
        if i > 0 && spans[i - 1].can_append(&spans[i]) {
            spans[i - 1].len += spans[i].len;
            spans.remove(i);
        }
        let too_big = spans.len() > MAX_SPANS;
        self.add_visible(c.rank, -i64::from(len));
        if too_big {
            self.split_chunk(c.rank);
        }
    }

    fn split_chunk(&mut self, rank: usize) {
        let chunk = self.order[rank] as usize;
        let half = self.chunks[chunk].len() / 2;
        let moved = self.chunks[chunk].split_off(half);
        let new_id = self.chunks.len() as u32;
        let moved_visible: u64 = moved.iter().map(|s| u64::from(s.visible())).sum();
        for s in &moved {
            self.chunk_of.set(s.item, s.end(), new_id as usize);
        }
        self.chunks.push(moved);
        self.chunk_visible[chunk] -= moved_visible;
        self.chunk_visible.push(moved_visible);
        self.order.insert(rank + 1, new_id);
        self.rank.push(0);
        for r in rank + 1..self.order.len() {
            self.rank[self.order[r] as usize] = r as u32;
        }
        if !self.bulk {
            self.fenwick_rebuild();
        }
        self.hint = None;
    }

    /// All spans in document order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Span> + '_ {
        self.order
            .iter()
            .flat_map(move |&c| self.chunks[c as usize].iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(item: u32, len: u32, origin_left: u32) -> Span {
        Span {
            item,
            len,
            origin_left,
            origin_right: NONE,
            deleted: false,
        }
    }

    #[test]
    fn chunk_index_widens_past_u16() {
        let mut ix = ChunkIndex::default();
        ix.push(3, 7);
        ix.set(1, 2, 65_535);
        assert!(matches!(ix, ChunkIndex::Small(_)));
        ix.push(2, 70_000);
        assert!(matches!(ix, ChunkIndex::Large(_)));
        assert_eq!(
            (0..5).map(|i| ix.get(i)).collect::<Vec<_>>(),
            [7, 65_535, 7, 70_000, 70_000]
        );
        assert_eq!(ix.len(), 5);
    }

    #[test]
    fn appends_merge_and_chunks_split() {
        let mut t = Tree::default();
        t.insert(t.start(), span(0, 3, NONE));
        let c = t.gap_after_visible(3);
        t.insert(c, span(3, 2, 2));
        assert_eq!(t.iter().count(), 1, "typing extends the run");
        // Insert single characters at the front many times: forces splits.
        for i in 5..200u32 {
            t.insert(t.start(), span(i, 1, NONE));
        }
        assert_eq!(t.len(), 200);
        assert!(t.order.len() > 1);
        for item in 0..200u32 {
            let c = t.locate(item);
            assert_eq!(t.span_at(c).item + c.offset, item);
        }
        assert_eq!(t.visible_before(t.locate(0)), 195);
        assert_eq!(t.find_visible(195), t.locate(0));
        t.delete(t.locate(1), 2);
        assert_eq!(t.len(), 198);
        assert_eq!(t.visible_before(t.locate(3)), 196);
    }
}
