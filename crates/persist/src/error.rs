//! Errors of the persistence crate.
//!
//! Every failure names what it is about: a damaged record names its
//! document and sequence number, a failed SQLite call names the operation.
//! Nothing read from disk is unwrapped: bad bytes are one of these errors.

use std::fmt;
use thiserror::Error;
use weft_core::DocError;

/// `Result` with this crate's [`Error`](enum@Error).
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which kind of record a [`RecordRef`] points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RecordKind {
    /// An update in a document's log.
    Update,
    /// A snapshot ([`weft_core::Doc::save`] bytes) covering the log up to its seq.
    Snapshot,
}

impl RecordKind {
    /// The kind byte stored in the record header.
    pub(crate) fn tag(self) -> u8 {
        match self {
            RecordKind::Update => 1,
            RecordKind::Snapshot => 2,
        }
    }
}

/// One stored record: its kind and sequence number within its document.
///
/// A snapshot's `seq` is the last log sequence number it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RecordRef {
    /// Update or snapshot.
    pub kind: RecordKind,
    /// Sequence number (updates count from 1 per document).
    pub seq: u64,
}

impl fmt::Display for RecordRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            RecordKind::Update => write!(f, "update #{}", self.seq),
            RecordKind::Snapshot => write!(f, "snapshot through #{}", self.seq),
        }
    }
}

/// Why one stored record could not be read.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    /// Shorter than the fixed header and checksum.
    #[error("record is {len} bytes, shorter than its {min}-byte frame")]
    TooShort {
        /// Stored length.
        len: usize,
        /// Smallest valid length.
        min: usize,
    },
    /// The header's payload length disagrees with the stored length
    /// (a truncated or extended record).
    #[error("header declares a {declared}-byte payload but {actual} bytes are stored")]
    LengthMismatch {
        /// Payload length in the header.
        declared: usize,
        /// Payload bytes present.
        actual: usize,
    },
    /// The checksum does not match: the bytes changed after they were written.
    #[error("checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum {
        /// Checksum in the record.
        stored: u32,
        /// Checksum of the bytes as read.
        computed: u32,
    },
    /// Written by a newer record format than this build reads.
    #[error("record format version {found} is newer than this build reads ({supported})")]
    UnsupportedVersion {
        /// Version byte in the record.
        found: u8,
        /// Highest version this build reads.
        supported: u8,
    },
    /// The header names another kind than the table it was read from.
    #[error("record kind {found} where kind {expected} was expected")]
    WrongKind {
        /// Kind byte expected.
        expected: u8,
        /// Kind byte found.
        found: u8,
    },
    /// Unknown flag bits are set.
    #[error("unknown record flags {0:#04x}")]
    UnknownFlags(u8),
    /// The record is encrypted but the store is not (or the other way round).
    #[error("record is {}, the store is {}", if *.sealed { "encrypted" } else { "plain" }, if *.sealed { "not" } else { "encrypted" })]
    SealMismatch {
        /// Whether the record is sealed.
        sealed: bool,
    },
    /// Decryption failed: the ciphertext, nonce or binding data was altered
    /// (the key itself is checked when the store opens).
    #[error("authentication failed: the encrypted record was altered")]
    Authentication,
}

/// Why a store operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// A document id that is empty, too long, or contains NUL.
    #[error("invalid document id: {reason}")]
    InvalidDocId {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// An update given to `append` does not decode as a weft update; nothing
    /// was stored.
    #[error("document `{doc_id}`: refusing to store an invalid update: {source}")]
    InvalidUpdate {
        /// The document.
        doc_id: String,
        /// Why the update was rejected.
        #[source]
        source: DocError,
    },
    /// A stored record failed its integrity check.
    #[error("document `{doc_id}`, {record}: corrupted record: {reason}")]
    Corrupt {
        /// The document.
        doc_id: String,
        /// The record.
        record: RecordRef,
        /// What is wrong with it.
        #[source]
        reason: RecordError,
    },
    /// A document's records disagree with its bookkeeping (a record is
    /// missing, or one is where none should be).
    #[error("document `{doc_id}`: inconsistent records: {detail}")]
    Inconsistent {
        /// The document.
        doc_id: String,
        /// What disagrees.
        detail: String,
    },
    /// A record passed its checksum but its content would not apply.
    #[error("document `{doc_id}`, {record}: cannot replay: {source}")]
    Replay {
        /// The document.
        doc_id: String,
        /// The record.
        record: RecordRef,
        /// The document layer's error.
        #[source]
        source: DocError,
    },
    /// The store was written by a newer version of this crate.
    #[error("store format version {found} is newer than this build supports ({supported}); upgrade weft-persist")]
    NewerFormat {
        /// Version recorded in the store.
        found: i64,
        /// Highest version this build opens.
        supported: i64,
    },
    /// The file is a database, but not a weft store.
    #[error("{path} is not a weft store")]
    NotAStore {
        /// The file.
        path: String,
    },
    /// The store is encrypted and no key was given.
    #[error("the store is encrypted: a key is required")]
    KeyRequired,
    /// The key does not open this store.
    #[error("wrong encryption key for this store")]
    WrongKey,
    /// A key was given but the store was created without encryption.
    #[error("a key was given but the store is not encrypted")]
    NotEncrypted,
    /// SQLite reports a damaged database file (truncated, overwritten).
    #[error("database file is damaged ({context}): {detail}")]
    DatabaseCorrupt {
        /// The operation that hit the damage.
        context: &'static str,
        /// SQLite's message.
        detail: String,
    },
    /// Any other SQLite failure (I/O error, disk full, locked, ...).
    #[error("storage error ({context}): {source}")]
    Storage {
        /// The operation that failed.
        context: &'static str,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A PostgreSQL failure ([`PostgresStore`](crate::PostgresStore)):
    /// the server is unreachable, restarting or refused the statement.
    /// Retry later; nothing of the failed operation was committed.
    #[cfg(feature = "postgres")]
    #[error("postgres error ({context}): {source}")]
    Postgres {
        /// The operation that failed.
        context: &'static str,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The shared store could not commit a batch of writes (each caller of
    /// the batch gets this copy of the cause); nothing of the batch was
    /// stored. Retryable.
    #[error("storage unavailable: {detail}")]
    Unavailable {
        /// The cause.
        detail: String,
    },
    /// A filesystem error outside SQLite.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The store's writer thread has stopped (the store is shutting down or
    /// the thread panicked); the operation may not have been applied.
    #[error("the store's writer has stopped")]
    Closed,
    /// The blocking task running an async call panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
}

impl Error {
    /// Wraps a SQLite error, separating file damage from other failures.
    pub(crate) fn sqlite(context: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
        move |source| {
            if let rusqlite::Error::SqliteFailure(e, msg) = &source {
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
                ) {
                    return Error::DatabaseCorrupt {
                        context,
                        detail: msg.clone().unwrap_or_else(|| e.to_string()),
                    };
                }
            }
            Error::Storage { context, source }
        }
    }

    /// Whether the error reports damaged stored data (a bad record, missing
    /// records, or a damaged database file), as opposed to a usage error or a
    /// transient failure.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::Corrupt { .. }
                | Error::Inconsistent { .. }
                | Error::Replay { .. }
                | Error::DatabaseCorrupt { .. }
        )
    }
}
