//! What the application can show: per-document [`SyncStatus`], the
//! connection's [`ConnectionState`] and [`ClientEvent`]s.

use std::time::Duration;
use weft_protocol::{DocId, ErrorCode, PeerId};

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
}
