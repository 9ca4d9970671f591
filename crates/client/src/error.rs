//! [`Error`]: what a client call can fail with.

use thiserror::Error;
use weft_core::DocError;
use weft_protocol::{DocId, InvalidDocId, ProtocolError};

/// Why a client call failed.
///
/// ```
/// use weft_client::{Client, Error};
/// let client = Client::in_memory();
/// assert!(matches!(client.replica("no spaces allowed"), Err(Error::InvalidDocId(_))));
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// The document id breaks the relay's `DocId` rules
    /// (1–128 bytes of `A–Z a–z 0–9 . _ ~ -`).
    #[error("invalid document id: {0}")]
    InvalidDocId(#[from] InvalidDocId),
    /// The local store failed. For [`Replica::transact`](crate::Replica::transact)
    /// this means the edit is applied in memory but not yet durable; the
    /// next successful edit stores it too.
    #[error("local store: {0}")]
    Store(#[from] weft_persist::Error),
    /// The edit was refused by the document (nothing changed).
    #[error("document: {0}")]
    Doc(#[from] DocError),
    /// A presence state the relay would refuse (bad colour, too long, ...).
    #[error("presence: {0}")]
    Presence(ProtocolError),
    /// The relay URL is not a `ws://` or `wss://` URL.
    #[error("invalid relay url `{0}`: expected ws://host:port/path or wss://host:port/path")]
    InvalidUrl(String),
    /// The TLS settings of a [`SyncConfig`](crate::SyncConfig) cannot be
    /// used (a root certificate that does not parse, no root at all).
    #[error("tls: {0}")]
    Tls(String),
    /// The document was closed ([`Client::close`](crate::Client::close)):
    /// this handle no longer edits. Open it again with
    /// [`Client::replica`](crate::Client::replica).
    #[error("document `{0}` is closed")]
    Closed(DocId),
    /// The relay announced read-only access to this document
    /// ([`SyncStatus::ReadOnly`](crate::SyncStatus::ReadOnly)): the edit
    /// was not made, so it cannot sit unsynced forever. Refused until a
    /// relay announces write access (say after
    /// [`Client::set_token`](crate::Client::set_token) and a reconnect).
    #[error("document `{0}` is read-only for this client")]
    ReadOnly(DocId),
    /// [`Client::connect`](crate::Client::connect) needs a tokio runtime.
    #[error("no tokio runtime: call this from within a tokio runtime")]
    NoRuntime,
    /// A blocking task of the client panicked or was cancelled.
    #[error("background task failed: {0}")]
    Task(String),
    /// The operating system's random source failed, so no replica id could
    /// be minted for the editing session ([`Client::replica`](crate::Client::replica)).
    /// The client never falls back to a guessable id: two sessions sharing
    /// one would diverge silently. Nothing was opened; try again later.
    #[error("cannot open a document: {0}")]
    RandomUnavailable(#[from] weft_core::RandomUnavailable),
}

/// `Result` with this crate's [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
