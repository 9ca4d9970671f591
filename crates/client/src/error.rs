//! [`Error`]: what a client call can fail with.

use thiserror::Error;
use weft_core::DocError;
use weft_protocol::{InvalidDocId, ProtocolError};

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
    /// The relay URL is not a `ws://` URL.
    #[error("invalid relay url `{0}`: expected ws://host:port/path")]
    InvalidUrl(String),
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
