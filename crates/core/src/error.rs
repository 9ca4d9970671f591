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
