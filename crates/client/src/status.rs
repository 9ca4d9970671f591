//! What the application can show: per-document [`SyncStatus`], the
//! connection's [`ConnectionState`] and [`ClientEvent`]s.

use std::time::Duration;
use weft_core::{DecodeError, DocError};
use weft_persist::SkippedRecord;
use weft_protocol::{Access, DocId, ErrorCode, PeerId};

/// The sync state of one document, as a UI would show it.
///
/// `pending` counts transactions the relay is not known to hold: it falls
/// as acknowledgements arrive, so it doubles as progress for a long backlog.
///
/// ```
/// use weft_client::{Client, SyncStatus};
/// let client = Client::in_memory();
/// let notes = client.replica("notes").unwrap();
/// assert_eq!(*notes.status().borrow(), SyncStatus::Offline); // no relay configured
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncStatus {
    /// No relay connection (none configured, or between attempts). Edits
    /// still apply and persist locally.
    Offline,
    /// Connecting or waiting for the relay's catch-up (`Synced`).
    Connecting,
    /// Subscribed; the relay lacks `pending` local transactions (or their
    /// acknowledgements are outstanding).
    Syncing {
        /// Transactions not yet acknowledged by the relay.
        pending: u64,
    },
    /// The relay holds everything this replica has, and vice versa as far
    /// as the relay has told us.
    Synced,
    /// Subscribed with read-only access (the relay's `Access`, protocol
    /// 2): everything other replicas write arrives, nothing of this replica
    /// is uploaded, and [`Replica::transact`](crate::Replica::transact)
    /// refuses new edits ([`Error::ReadOnly`](crate::Error::ReadOnly)).
    /// `unsent` counts local transactions the relay lacks (made offline
    /// before it said): they stay in the local store, unsynced, until a
    /// connection with write access.
    ReadOnly {
        /// Local transactions the relay lacks and will not take.
        unsent: u64,
    },
    /// The relay refused the document (e.g. `Forbidden`); it stays local
    /// until the next connection.
    Refused {
        /// The relay's error code.
        code: ErrorCode,
    },
}

/// The state of the connection to the relay (the client's state machine:
/// idle → connecting → connected ⇄ backing off; see `docs/architecture.md`).
///
/// ```
/// use weft_client::{Client, ConnectionState};
/// let client = Client::in_memory();
/// assert_eq!(*client.connection().borrow(), ConnectionState::Idle);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectionState {
    /// No relay configured: pure local use.
    Idle,
    /// Opening the WebSocket and handshaking.
    Connecting {
        /// Consecutive failed attempts before this one.
        attempt: u32,
    },
    /// Handshake done; documents sync.
    Connected {
        /// This connection's presence key, assigned by the relay.
        peer: PeerId,
        /// The relay's name from `Welcome`.
        server: String,
    },
    /// Waiting before the next attempt.
    BackingOff {
        /// Consecutive failed attempts.
        attempt: u32,
        /// The drawn delay.
        retry_in: Duration,
    },
}

/// Something the application may want to react to (a
/// [`tokio::sync::broadcast`] stream: [`Client::events`](crate::Client::events)).
///
/// ```
/// use weft_client::Client;
/// let client = Client::in_memory();
/// let mut events = client.events();
/// assert!(events.try_recv().is_err()); // nothing happened yet
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// The handshake succeeded.
    Connected {
        /// Our presence key on this connection.
        peer: PeerId,
        /// The relay's name.
        server: String,
    },
    /// The connection ended; the client backs off and reconnects.
    Disconnected {
        /// Why, for logs.
        reason: String,
    },
    /// The relay closed the connection with a connection-scope error (for
    /// example `Unauthorized` or `TokenExpired`: update the token with
    /// [`Client::set_token`](crate::Client::set_token)).
    ConnectionError {
        /// The code.
        code: ErrorCode,
        /// The relay's message, for logs.
        message: String,
    },
    /// The relay announced a different permission on a document than last
    /// known (protocol 2 `Access`, sent on every subscribe; reported when
    /// it changes, including the first time). From
    /// [`Access::ReadOnly`], local edits are refused with
    /// [`Error::ReadOnly`](crate::Error::ReadOnly) and the status is
    /// [`SyncStatus::ReadOnly`].
    AccessChanged {
        /// Which document.
        doc: DocId,
        /// What this client may now do with it.
        access: Access,
    },
    /// The relay refused a document (`Forbidden`, `TooManyDocs`).
    DocumentRefused {
        /// Which.
        doc: DocId,
        /// Why.
        code: ErrorCode,
        /// The relay's message, for logs.
        message: String,
    },
    /// The relay refused an update (250–299: `UpdateRejected`,
    /// `ReadOnly`, `UpdateTooLarge`). It stays in the local document and is
    /// not resent on this connection.
    UpdateRefused {
        /// Which document.
        doc: DocId,
        /// Why.
        code: ErrorCode,
        /// The relay's message (or the client's, for a local size check).
        message: String,
    },
    /// The client refused an update the relay sent: over the document's
    /// [`ClientLimits`](crate::ClientLimits) (size, decoded size, waiting
    /// updates), malformed, claiming transactions of this session's own
    /// replica id, or conflicting with transactions already held. It was
    /// neither applied nor stored (nor will it be uploaded anywhere); the
    /// connection goes on. If it was the catch-up (`Synced`), the document
    /// is refused on this connection ([`SyncStatus::Refused`] with `code`)
    /// until the next one.
    RemoteUpdateRefused {
        /// Which document.
        doc: DocId,
        /// The code a relay answers the same refusal with
        /// ([`refusal_code`]): `UpdateTooLarge`, `ReplicaNotOwned`,
        /// `ConflictingTransaction`, `MissingDependencies` or
        /// `UpdateRejected`.
        code: ErrorCode,
        /// The document layer's reason.
        error: DocError,
        /// Whether it was the catch-up diff of `Synced`.
        catch_up: bool,
    },
    /// Opening the document, records of the local store verified but did
    /// not replay; the document opened with everything else (see
    /// [`Store::load_report`](weft_persist::Store::load_report)). Also
    /// available as [`Replica::skipped_records`](crate::Replica::skipped_records).
    StoredRecordsSkipped {
        /// Which document.
        doc: DocId,
        /// The records and why each did not replay.
        skipped: Vec<SkippedRecord>,
    },
}

/// The protocol code for a refusal of an update by the document layer: what
/// a relay answers an update it refuses for the same reason with.
///
/// ```
/// use weft_client::{refusal_code, ErrorCode};
/// use weft_core::{DocError, ReplicaId};
/// let forged = DocError::OwnReplica { replica: ReplicaId::new(1), counter: 9 };
/// assert_eq!(refusal_code(&forged), ErrorCode::ReplicaNotOwned);
/// let full = DocError::PendingFull { updates: 4096, bytes: 0 };
/// assert_eq!(refusal_code(&full), ErrorCode::MissingDependencies);
/// ```
pub fn refusal_code(error: &DocError) -> ErrorCode {
    match error {
        DocError::Decode(DecodeError::TooLarge { .. } | DecodeError::DecodedTooLarge { .. }) => {
            ErrorCode::UpdateTooLarge
        }
        DocError::OwnReplica { .. } => ErrorCode::ReplicaNotOwned,
        DocError::Conflict { .. } => ErrorCode::ConflictingTransaction,
        DocError::PendingFull { .. } => ErrorCode::MissingDependencies,
        _ => ErrorCode::UpdateRejected,
    }
}
