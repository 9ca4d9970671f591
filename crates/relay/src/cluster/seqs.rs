//! Which of a document's store seqs this node has integrated, to notice a
//! missed bus message.

use std::collections::BTreeSet;
use std::time::Instant;

/// Seqs integrated: everything up to `floor`, plus `above` (past a gap).
#[derive(Debug)]
pub(crate) struct SeqTracker {
    floor: u64,
    above: BTreeSet<u64>,
    /// Since when a gap (a seq missing below one that arrived) is known.
    gap_since: Option<Instant>,
}

/// Most seqs kept past a gap; beyond it the node catches up at once.
const MAX_ABOVE: usize = 4096;

impl SeqTracker {
    /// Everything up to `floor` is integrated (a load).
    pub(crate) fn new(floor: u64) -> SeqTracker {
        SeqTracker {
            floor,
            above: BTreeSet::new(),
            gap_since: None,
        }
    }

    /// Seq `seq` was integrated (stored here, or received over the bus).
    pub(crate) fn insert(&mut self, seq: u64) {
        if seq <= self.floor {
            return;
        }
        self.above.insert(seq);
        while self.above.remove(&(self.floor + 1)) {
            self.floor += 1;
        }
        if self.above.is_empty() {
            self.gap_since = None;
        } else if self.gap_since.is_none() {
            self.gap_since = Some(Instant::now());
        }
    }

    /// Everything up to `floor` is integrated (a catch-up from the store).
    pub(crate) fn reset(&mut self, floor: u64) {
        if floor >= self.floor {
            self.floor = floor;
        }
        let floor = self.floor;
        self.above.retain(|s| *s > floor);
        while self.above.remove(&(self.floor + 1)) {
            self.floor += 1;
        }
        if self.above.is_empty() {
            self.gap_since = None;
        }
    }

    /// Every seq up to this one is integrated.
    pub(crate) fn floor(&self) -> u64 {
        self.floor
    }

    /// Since when a gap is known, if one is; or now if too many seqs wait.
    pub(crate) fn gap_since(&self) -> Option<Instant> {
        if self.above.len() > MAX_ABOVE {
            return Some(Instant::now() - std::time::Duration::from_secs(3600));
        }
        self.gap_since
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_noticed_and_closed() {
        let mut t = SeqTracker::new(3);
        t.insert(2);
        t.insert(4);
        assert_eq!((t.floor(), t.gap_since().is_none()), (4, true));
        t.insert(6);
        assert!(t.gap_since().is_some());
        t.insert(5);
        assert_eq!((t.floor(), t.gap_since().is_none()), (6, true));
        t.insert(9);
        t.reset(8);
        assert_eq!((t.floor(), t.gap_since().is_none()), (9, true));
        t.reset(2);
        assert_eq!(t.floor(), 9, "never goes back");
    }
}
