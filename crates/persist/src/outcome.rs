//! What a write did: [`Appended`] (one append) and [`CompactionReport`]
//! (one compaction). Plain values, shared by the store trait, the commit
//! seam, the writers and compaction.

/// What [`Store::append`](crate::Store::append) stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The update's sequence number in its document (1, 2, ...; never
    /// reused while the document exists).
    pub seq: u64,
    /// Updates in the log after this one was added.
    pub log_records: u64,
    /// Stored bytes of those updates.
    pub log_bytes: u64,
}

/// What a compaction did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactionReport {
    /// The new snapshot covers the log up to and including this seq.
    pub through_seq: u64,
    /// Updates folded into it and removed from the log (0: nothing to do).
    pub folded: u64,
    /// Stored size of the new snapshot record.
    pub snapshot_bytes: u64,
}
