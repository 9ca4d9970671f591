//! Errors of the core crate.
//!
//! Joins and applies never fail: a well-formed value always merges. Errors
//! exist only at the boundaries: bytes that do not decode, and arithmetic
//! that would overflow.

use thiserror::Error;

/// Why bytes could not be decoded into a weft value.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the header was complete.
    #[error("input too short for a weft header ({0} bytes)")]
    Truncated(usize),
    /// The input does not start with the weft magic bytes.
    #[error("not weft data: bad magic bytes")]
    BadMagic,
    /// The input was written by a format version this build cannot read.
    #[error("unsupported format version {found} (this build reads up to {supported})")]
    UnsupportedVersion {
        /// Version in the header.
        found: u8,
        /// Highest version this build reads.
        supported: u8,
    },
    /// The header names another kind of value than the one requested.
    #[error("wrong kind of value: expected {expected}, found tag {found}")]
    WrongKind {
        /// What the caller asked for.
        expected: &'static str,
        /// The tag found in the header.
        found: u8,
    },
    /// The input is larger than the configured limit.
    #[error("input of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body is not valid postcard for the value's schema.
    #[error("malformed body: {0}")]
    Malformed(#[from] postcard::Error),
    /// Decoding would produce more than the configured limit (compressed
    /// sections inflating past it); nothing was allocated for the excess.
    #[error("decoded size exceeds the limit of {max} bytes")]
    DecodedTooLarge {
        /// The limit on bytes produced by decompression.
        max: usize,
    },
    /// Bytes remained after the value.
    #[error("{0} trailing bytes after the value")]
    TrailingBytes(usize),
    /// The body parsed but breaks an invariant of the value.
    #[error("invalid value: {0}")]
    Invalid(&'static str),
}

/// A counter operation would overflow its 64-bit range.
///
/// Counters never wrap silently: the operation is refused and the counter is
/// left unchanged.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[error("counter overflow: the operation would exceed the 64-bit range")]
pub struct OverflowError;

/// Why a document operation failed. The document is unchanged whenever one
/// of these is returned.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DocError {
    /// The name already holds a value of another kind.
    #[error("`{path}` holds a {found}, not a {expected}")]
    TypeMismatch {
        /// Where.
        path: String,
        /// The kind asked for.
        expected: crate::doc::Kind,
        /// The kind present.
        found: crate::doc::Kind,
    },
    /// A text position past the end.
    #[error("index {index} is out of range for `{path}` of length {len}")]
    IndexOutOfRange {
        /// Which text.
        path: String,
        /// The index given (end of the range for deletes).
        index: usize,
        /// The text's length at that point of the transaction.
        len: usize,
    },
    /// A counter would overflow.
    #[error("`{path}`: {source}")]
    Overflow {
        /// Which counter.
        path: String,
        /// The overflow.
        source: OverflowError,
    },
    /// A stored scalar is not a valid value of the type asked for.
    #[error("`{path}` does not hold values of the requested type: {reason}")]
    ValueType {
        /// Where.
        path: String,
        /// The decoder's message.
        reason: String,
    },
    /// A value could not be serialized.
    #[error("could not serialize a value for `{path}`: {reason}")]
    Serialize {
        /// Where.
        path: String,
        /// The encoder's message.
        reason: String,
    },
    /// Bytes from a peer or disk did not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The buffer of updates waiting for missing dependencies is full; the
    /// update was not kept and must be sent again once the gap is filled.
    #[error("pending buffer full ({updates} updates, {bytes} bytes); update refused")]
    PendingFull {
        /// Updates already waiting.
        updates: usize,
        /// Their size in bytes.
        bytes: usize,
    },
    /// The update carries transactions of this document's own replica that
    /// the document does not have: only this document makes them, so the
    /// update is forged or the replica id was reused. Nothing was applied.
    #[error("update carries transaction {counter} of this document's own replica {replica}, which it never made")]
    OwnReplica {
        /// This document's replica.
        replica: crate::ReplicaId,
        /// The highest counter the update claims for it.
        counter: u64,
    },
    /// The update carries a transaction this document already holds, with
    /// different content: not a duplicate, and not applied.
    #[error("update carries transaction {counter} of replica {replica} with content other than what is held")]
    Conflict {
        /// The transaction's replica.
        replica: crate::ReplicaId,
        /// Its counter (the first conflicting one found).
        counter: u64,
    },
    /// A key or path over the document's limits.
    #[error("`{path}` exceeds the document's limits: {reason}")]
    Limit {
        /// Where.
        path: String,
        /// Which limit.
        reason: &'static str,
    },
}
