//! Identity and history: the mapping between global op ids `(replica, seq)`
//! and local item ids, and the run-length encoded log of every applied op.
//!
//! Every inserted or deleted character consumes one sequence number of its
//! replica, so each replica's ops form the contiguous range `1..=next`.
//! Inserted characters additionally get a local item id (`u32`) in arrival
//! order; runs of consecutive items from one replica share one [`ItemRun`].
//!
//! Invariant: each replica's entries are sorted by `seq`, contiguous from 1
//! and non-overlapping; `item_runs` is sorted by item and covers `0..items`;
//! entries' `arrival` numbers are unique and increase in the order the
//! entries were applied, so replaying entries in that order satisfies every
//! causal dependency (an entry only grows while it is the latest one).

use super::span::NONE;
use crate::{Dot, ReplicaId};
use std::collections::HashMap;

/// One run of consecutive ops of one replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    /// First sequence number.
    pub(super) seq: u64,
    /// Number of ops (characters).
    pub(super) len: u32,
    /// Application order among all entries of all replicas.
    pub(super) arrival: u32,
    /// What the ops did.
    pub(super) kind: EntryKind,
}

/// The ops of an [`Entry`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum EntryKind {
    /// Inserted characters: items `item..item + len`, content in the buffer
    /// at `content..content + bytes`; `bytes == 0` means the text is not
    /// known (received without it because it is deleted).
    Insert {
        item: u32,
        origin_left: u32,
        origin_right: u32,
        content: u32,
        bytes: u32,
    },
    /// Deleted characters: the items with seqs `lo..lo + len` of replica
    /// `target` (op `k` deleted `lo + k`, or `lo + len - 1 - k` if reversed).
    Delete {
        target: u32,
        lo: u64,
        reversed: bool,
    },
}

/// Local items `item..item + len` are seqs `seq..` of replica `replica`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ItemRun {
    item: u32,
    len: u32,
    replica: u32,
    seq: u64,
}

/// One replica's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ReplicaLog {
    pub(super) id: ReplicaId,
    /// Ops applied so far (the last seq).
    pub(super) next: u64,
    pub(super) entries: Vec<Entry>,
}

/// Why an op id could not be resolved to an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Lookup {
    /// Not received yet: wait for it.
    Missing,
    /// Names a delete op, never an item: the referring op is invalid.
    NotAnItem,
}

/// The id tables and op log of a text.
#[derive(Clone, Debug, Default)]
pub(super) struct Ids {
    pub(super) replicas: Vec<ReplicaLog>,
    index: HashMap<ReplicaId, u32>,
    item_runs: Vec<ItemRun>,
    items: u32,
    /// Entries created so far (the next `arrival` number).
    arrivals: u32,
    /// `(replica, entry)` of the latest entry.
    last_entry: Option<(u32, u32)>,
    /// Inserted text, in application order.
    pub(super) content: String,
    /// The replica looked up last (a cache: local typing repeats it).
    last_replica: Option<(ReplicaId, u32)>,
    /// The item whose dot was looked up last through [`Ids::dot_cached`]
    /// (typing keeps the same right origin).
    last_dot: Option<(u32, Dot)>,
    /// The item run [`Ids::dots_of`] used last.
    run_hint: usize,
    /// While loading a snapshot: per replica, the item of each seq
    /// (`seq - 1` indexes; [`NONE`] for a delete op), so that resolving an
    /// op id is `O(1)`. Dropped by [`Ids::end_bulk`].
    seq_items: Option<Vec<Vec<u32>>>,
    /// Entries to reserve for the next replica log created (bulk loading).
    reserve_runs: usize,
}

impl Ids {
    /// The index of `id`, if it has a log.
    pub(super) fn find(&self, id: ReplicaId) -> Option<u32> {
        match self.last_replica {
            Some((last, r)) if last == id => Some(r),
            _ => self.index.get(&id).copied(),
        }
    }

    /// The index of `id`, creating its log.
    pub(super) fn replica(&mut self, id: ReplicaId) -> u32 {
        if let Some(&(last, r)) = self.last_replica.as_ref() {
            if last == id {
                return r;
            }
        }
        if let Some(&r) = self.index.get(&id) {
            self.last_replica = Some((id, r));
            return r;
        }
        let r = self.replicas.len() as u32;
        self.replicas.push(ReplicaLog {
            id,
            next: 0,
            entries: Vec::with_capacity(std::mem::take(&mut self.reserve_runs)),
        });
        self.index.insert(id, r);
        r
    }

    /// Ops applied from replica `id`.
    pub(super) fn known(&self, id: ReplicaId) -> u64 {
        self.find(id).map_or(0, |r| self.replicas[r as usize].next)
    }

    /// Items allocated so far.
    pub(super) fn items(&self) -> u32 {
        self.items
    }

    /// The entry of replica `r` holding `seq` (which must be applied).
    pub(super) fn entry_index(&self, r: u32, seq: u64) -> usize {
        let entries = &self.replicas[r as usize].entries;
        // Ops mostly refer to the latest entries (typing, backspace).
        let n = entries.len();
        for back in 1..=2 {
            match n.checked_sub(back).map(|i| (i, &entries[i])) {
                Some((i, e)) if e.seq <= seq => {
                    return if seq < e.seq + u64::from(e.len) {
                        i
                    } else {
                        i + 1
                    };
                }
                Some(_) => {}
                None => return 0,
            }
        }
        entries.partition_point(|e| e.seq + u64::from(e.len) <= seq)
    }

    /// Starts keeping the `O(1)` seq -> item table (for bulk loading).
    pub(super) fn begin_bulk(&mut self) {
        let mut table = Vec::with_capacity(self.replicas.len());
        for r in 0..self.replicas.len() as u32 {
            let log = &self.replicas[r as usize];
            let mut v = Vec::with_capacity(log.next as usize);
            for seq in 1..=log.next {
                let item = self.item(Some(Dot::new(log.id, seq))).unwrap_or(NONE);
                v.push(item);
            }
            table.push(v);
        }
        self.seq_items = Some(table);
    }

    /// Reserves room for a snapshot of `runs` runs and `bytes` of text
    /// (while bulk loading: the first replica's log gets room for all runs).
    pub(super) fn reserve(&mut self, runs: u64, bytes: usize) {
        self.content.reserve_exact(bytes);
        self.reserve_runs = usize::try_from(runs).unwrap_or(0).min(1 << 24);
        self.item_runs.reserve(self.reserve_runs / 2);
    }

    /// Drops the bulk-loading table and trims spare capacity.
    pub(super) fn end_bulk(&mut self) {
        self.seq_items = None;
        self.reserve_runs = 0;
        self.content.shrink_to_fit();
        self.item_runs.shrink_to_fit();
        for log in &mut self.replicas {
            log.entries.shrink_to_fit();
        }
    }

    /// Records items `item..item + len` (or delete ops when `item` is
    /// [`NONE`]) as the next seqs of replica `r` in the bulk table.
    fn note_bulk(&mut self, r: u32, item: u32, len: u32) {
        if let Some(table) = &mut self.seq_items {
            if table.len() <= r as usize {
                table.resize_with(r as usize + 1, Vec::new);
            }
            let v = &mut table[r as usize];
            if item == NONE {
                v.resize(v.len() + len as usize, NONE);
            } else {
                v.extend(item..item + len);
            }
        }
    }

    /// The local item of op `dot` (`None` resolves to [`NONE`]).
    pub(super) fn item(&self, dot: Option<Dot>) -> Result<u32, Lookup> {
        let Some(dot) = dot else { return Ok(NONE) };
        let r = self.find(dot.replica).ok_or(Lookup::Missing)?;
        let log = &self.replicas[r as usize];
        if dot.counter == 0 || dot.counter > log.next {
            return Err(Lookup::Missing);
        }
        if let Some(table) = &self.seq_items {
            return match table[r as usize][(dot.counter - 1) as usize] {
                NONE => Err(Lookup::NotAnItem),
                item => Ok(item),
            };
        }
        let e = &log.entries[self.entry_index(r, dot.counter)];
        match e.kind {
            EntryKind::Insert { item, .. } => Ok(item + (dot.counter - e.seq) as u32),
            EntryKind::Delete { .. } => Err(Lookup::NotAnItem),
        }
    }

    /// Calls `f(first_item, len)` for the items of seqs `lo..lo + len` of
    /// replica `r`; fails if any is missing or not an insert.
    pub(super) fn items_of(
        &self,
        r: u32,
        lo: u64,
        len: u64,
        mut f: impl FnMut(u32, u32),
    ) -> Result<(), Lookup> {
        let log = &self.replicas[r as usize];
        if lo == 0 || lo.saturating_add(len - 1) > log.next {
            return Err(Lookup::Missing);
        }
        if let Some(table) = &self.seq_items {
            let seqs = &table[r as usize][(lo - 1) as usize..(lo - 1 + len) as usize];
            if seqs.contains(&NONE) {
                return Err(Lookup::NotAnItem);
            }
            let mut i = 0;
            while i < seqs.len() {
                let start = seqs[i];
                let mut n = 1;
                while i + n < seqs.len() && seqs[i + n] == start + n as u32 {
                    n += 1;
                }
                f(start, n as u32);
                i += n;
            }
            return Ok(());
        }
        let first = self.entry_index(r, lo);
        let mut ranges = Vec::new();
        let (mut seq, end) = (lo, lo + len);
        for e in &log.entries[first..] {
            if seq >= end {
                break;
            }
            let EntryKind::Insert { item, .. } = e.kind else {
                return Err(Lookup::NotAnItem);
            };
            let off = (seq - e.seq) as u32;
            let n = (u64::from(e.len - off)).min(end - seq) as u32;
            ranges.push((item + off, n));
            seq += u64::from(n);
        }
        for (item, n) in ranges {
            f(item, n);
        }
        Ok(())
    }

    /// The index of the item run holding `item` (the last run is checked
    /// first: it is where typing happens).
    fn run_index(&self, item: u32) -> usize {
        match self.item_runs.last() {
            Some(last) if last.item <= item => self.item_runs.len() - 1,
            _ => self.item_runs.partition_point(|r| r.item + r.len <= item),
        }
    }

    /// The op id of local item `item`.
    pub(super) fn dot(&self, item: u32) -> Dot {
        let i = self.run_index(item);
        let run = self.item_runs[i.min(self.item_runs.len() - 1)];
        Dot::new(
            self.replicas[run.replica as usize].id,
            run.seq + u64::from(item - run.item),
        )
    }

    /// [`Ids::dot_opt`] with a one-entry cache.
    pub(super) fn dot_cached(&mut self, item: u32) -> Option<Dot> {
        match self.last_dot {
            Some((i, dot)) if i == item => Some(dot),
            _ => {
                let dot = self.dot_opt(item)?;
                self.last_dot = Some((item, dot));
                Some(dot)
            }
        }
    }

    /// The op id of `item`, `None` for [`NONE`].
    pub(super) fn dot_opt(&self, item: u32) -> Option<Dot> {
        (item != NONE).then(|| self.dot(item))
    }

    /// Calls `f(dot, len)` for the items `item..item + len`, one call per
    /// run of consecutive seqs of one replica.
    /// (Remembers the run for the next call: deletes cluster.)
    pub(super) fn dots_of(&mut self, mut item: u32, len: u32, mut f: impl FnMut(Dot, u32)) {
        let end = item + len;
        let mut i = match self.item_runs.get(self.run_hint) {
            Some(r) if r.item <= item && item < r.item + r.len => self.run_hint,
            _ => self.run_index(item),
        };
        self.run_hint = i;
        while item < end {
            let run = self.item_runs[i];
            let n = (run.item + run.len).min(end) - item;
            let dot = Dot::new(
                self.replicas[run.replica as usize].id,
                run.seq + u64::from(item - run.item),
            );
            f(dot, n);
            item += n;
            i += 1;
        }
    }

    fn push_entry(&mut self, r: u32, mut entry: Entry) {
        let log = &mut self.replicas[r as usize];
        log.next = entry.seq + u64::from(entry.len) - 1;
        let idx = log.entries.len().wrapping_sub(1) as u32;
        if let Some(prev) = log.entries.last_mut() {
            if self.last_entry == Some((r, idx)) && extend(prev, &entry) {
                return;
            }
        }
        entry.arrival = self.arrivals;
        self.arrivals += 1;
        log.entries.push(entry);
        self.last_entry = Some((r, (log.entries.len() - 1) as u32));
    }

    /// Records inserted ops `seq..seq + len` of replica `r` (which must be
    /// the next ones) and allocates their items; returns the first item.
    pub(super) fn push_insert(
        &mut self,
        r: u32,
        seq: u64,
        len: u32,
        origins: (u32, u32),
        text: &str,
    ) -> u32 {
        let item = self.items;
        self.items += len;
        self.note_bulk(r, item, len);
        match self.item_runs.last_mut() {
            Some(run)
                if run.replica == r
                    && run.item + run.len == item
                    && run.seq + u64::from(run.len) == seq =>
            {
                run.len += len
            }
            _ => self.item_runs.push(ItemRun {
                item,
                len,
                replica: r,
                seq,
            }),
        }
        let content = self.content.len() as u32;
        self.content.push_str(text);
        let entry = Entry {
            seq,
            len,
            arrival: 0,
            kind: EntryKind::Insert {
                item,
                origin_left: origins.0,
                origin_right: origins.1,
                content,
                bytes: text.len() as u32,
            },
        };
        self.push_entry(r, entry);
        item
    }

    /// Records deleted ops `seq..seq + len` of replica `r`.
    pub(super) fn push_delete(&mut self, r: u32, seq: u64, len: u32, kind: EntryKind) {
        self.note_bulk(r, NONE, len);
        self.push_entry(
            r,
            Entry {
                seq,
                len,
                arrival: 0,
                kind,
            },
        );
    }
}

/// Appends `next` to `prev` if it continues it as one run.
fn extend(prev: &mut Entry, next: &Entry) -> bool {
    if prev.seq + u64::from(prev.len) != next.seq || prev.len.checked_add(next.len).is_none() {
        return false;
    }
    match (&mut prev.kind, &next.kind) {
        (
            EntryKind::Insert {
                item,
                origin_right,
                content,
                bytes,
                ..
            },
            EntryKind::Insert {
                item: item2,
                origin_left: left2,
                origin_right: right2,
                content: content2,
                bytes: bytes2,
            },
        ) if *item + prev.len == *item2
            && *left2 == *item2 - 1
            && origin_right == right2
            && *content + *bytes == *content2
            && (*bytes == 0) == (*bytes2 == 0) =>
        {
            *bytes += bytes2;
        }
        (
            EntryKind::Delete {
                target,
                lo,
                reversed,
            },
            EntryKind::Delete {
                target: t2,
                lo: lo2,
                reversed: r2,
            },
        ) if target == t2 && !*r2 => {
            let len = u64::from(prev.len);
            if !*reversed && *lo + len == *lo2 {
                // forward delete: targets keep increasing
            } else if (*reversed || prev.len == 1)
                && next.len == 1
                && lo2.checked_add(1) == Some(*lo)
            {
                *reversed = true;
                *lo = *lo2;
            } else {
                return false;
            }
        }
        _ => return false,
    }
    prev.len += next.len;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_merge_and_resolve() {
        let mut ids = Ids::default();
        let r = ids.replica(ReplicaId::new(7));
        let a = ids.push_insert(r, 1, 2, (NONE, NONE), "ab");
        let b = ids.push_insert(r, 3, 1, (a + 1, NONE), "c");
        assert_eq!((a, b), (0, 2));
        assert_eq!(ids.replicas[0].entries.len(), 1, "typing is one entry");
        assert_eq!(ids.dot(2), Dot::new(ReplicaId::new(7), 3));
        assert_eq!(ids.item(Some(Dot::new(ReplicaId::new(7), 2))), Ok(1));
        // Backspaces: c, then b.
        let del = |lo| EntryKind::Delete {
            target: r,
            lo,
            reversed: false,
        };
        ids.push_delete(r, 4, 1, del(3));
        ids.push_delete(r, 5, 1, del(2));
        let log = &ids.replicas[0];
        assert_eq!(log.entries.len(), 2);
        assert_eq!(
            log.entries[1].kind,
            EntryKind::Delete {
                target: r,
                lo: 2,
                reversed: true
            }
        );
        assert_eq!(
            ids.item(Some(Dot::new(ReplicaId::new(7), 4))),
            Err(Lookup::NotAnItem)
        );
        assert_eq!(
            ids.item(Some(Dot::new(ReplicaId::new(7), 9))),
            Err(Lookup::Missing)
        );
        let mut seen = Vec::new();
        assert!(ids.items_of(r, 2, 2, |i, n| seen.push((i, n))).is_ok());
        assert_eq!(seen, vec![(1, 2)]);
    }
}
