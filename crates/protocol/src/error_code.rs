//! Error codes sent in [`Frame::Error`](crate::Frame::Error).
//!
//! Codes are **stable**: a number, once assigned, keeps its meaning in every
//! protocol version and is never reused. The range a code lies in says what
//! it ends, so a client can act on codes newer than itself
//! ([`ErrorCode::scope`]):
//!
//! | range | scope | what the receiver does |
//! |---|---|---|
//! | 1–99 | connection | the server closes the connection after the frame |
//! | 100–199 | document | the document named in the frame is no longer subscribed |
//! | 200–249 | update, retry | the update named by `doc` + `seq` was not stored; keep it and send it again later |
//! | 250–299 | update, refused | the update was not stored and will not be accepted as it is |
//! | 0, 300– | connection | unassigned; treated as connection errors |

use std::fmt;

/// A stable, numeric error code (`docs/protocol.md` §7.7 has the table).
///
/// Unknown numbers decode to [`ErrorCode::Unknown`], so a newer server's
/// codes reach older clients intact. `Unknown` is meant for numbers this
/// build does not assign: `Unknown(1)` encodes as `1` and decodes as
/// [`ErrorCode::BadFrame`].
///
/// ```
/// use weft_protocol::{ErrorCode, ErrorScope};
/// assert_eq!(ErrorCode::Unauthorized.code(), 6);
/// assert_eq!(ErrorCode::from_code(6), ErrorCode::Unauthorized);
/// assert_eq!(ErrorCode::from_code(4242), ErrorCode::Unknown(4242));
/// assert_eq!(ErrorCode::from_code(230).scope(), ErrorScope::UpdateRetry);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    // ----- connection (1–99): the server closes the connection -------------
    /// 1: the frame did not decode (bad header, body, UTF-8, field bound or
    /// unknown frame type).
    BadFrame,
    /// 2: the frame is larger than the receiver's `max_frame_bytes`.
    FrameTooLarge,
    /// 3: no protocol version both sides speak (or an unknown envelope
    /// format version).
    UnsupportedVersion,
    /// 4: a frame out of order: anything before `Hello`, a second `Hello`,
    /// or a frame only the server may send.
    UnexpectedFrame,
    /// 5: a document id that breaks the [`DocId`](crate::DocId) rules.
    InvalidDocId,
    /// 6: missing or invalid credentials.
    Unauthorized,
    /// 7: the credentials were valid but have expired; refresh them and
    /// reconnect.
    TokenExpired,
    /// 8: the server is over capacity; reconnect with backoff.
    ServerBusy,
    /// 9: the client did not read its frames fast enough and fell too far
    /// behind; reconnect (and resume by version vector).
    SlowConsumer,
    /// 10: nothing was received within `idle_timeout_ms`.
    IdleTimeout,
    /// 11: the server is shutting down; reconnect later.
    ShuttingDown,
    /// 12: a server bug or unexpected failure.
    Internal,
    /// 13: the handshake (`Hello`) or a started message did not arrive
    /// within the server's deadline.
    HandshakeTimeout,

    // ----- document (100–199): the document is no longer subscribed ---------
    /// 100: the credentials do not grant access to this document.
    Forbidden,
    /// 101: the connection already has `max_docs` documents subscribed.
    TooManyDocs,
    /// 102: an `Update` or `Presence` for a document not subscribed on this
    /// connection.
    NotSubscribed,
    /// 103: the server could not load the document (storage failure, or
    /// too many documents open on the server); subscribe again later.
    DocUnavailable,
    /// 104: too many `Subscribe` frames too fast on this connection;
    /// subscribe again after a delay.
    SubscribeRateLimited,

    // ----- update, retry (200–249): keep the update, send it again later ----
    /// 200: too many updates too fast; send it again after a delay.
    RateLimited,
    /// 201: the update could not be stored durably right now.
    StoreUnavailable,
    /// 202: the update depends on transactions the server does not have
    /// yet, and the sender's allowance for waiting updates is used up; send
    /// it again once its dependencies are acknowledged.
    MissingDependencies,

    // ----- update, refused (250–299): resending the same bytes is pointless -
    /// 250: the update did not decode as a document update or breaks the
    /// document's limits.
    UpdateRejected,
    /// 251: the credentials allow reading this document but not writing it.
    ReadOnly,
    /// 252: the update is larger than the server's `max_update_bytes`
    /// (encoded, or once decoded).
    UpdateTooLarge,
    /// 253: the update carries new transactions of a replica id that belongs
    /// to another subject (another token's `sub`).
    ReplicaNotOwned,
    /// 254: the update carries a transaction `(replica, counter)` the server
    /// already holds with different content.
    ConflictingTransaction,
    /// 255: applying the update would make the document larger than the
    /// server's `max_doc_bytes`.
    DocTooLarge,

    /// A code this build does not know (from a newer peer).
    Unknown(u16),
}

/// What an error ends, derived from its code's range (so it is known even
/// for [`ErrorCode::Unknown`] codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorScope {
    /// The connection is closed after the frame.
    Connection,
    /// The document named in the frame is no longer subscribed.
    Document,
    /// The update named by `doc` + `seq` was not stored; keep it and resend
    /// it later.
    UpdateRetry,
    /// The update named by `doc` + `seq` was not stored and will not be
    /// accepted as it is.
    UpdateRefused,
}

macro_rules! codes {
    ($($variant:ident = $code:literal),* $(,)?) => {
        impl ErrorCode {
            /// Every assigned code, in numeric order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The stable number sent on the wire.
            pub fn code(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $code,)*
                    ErrorCode::Unknown(code) => code,
                }
            }

            /// The code for a number; unassigned numbers give
            /// [`ErrorCode::Unknown`].
            pub fn from_code(code: u16) -> ErrorCode {
                match code {
                    $($code => ErrorCode::$variant,)*
                    other => ErrorCode::Unknown(other),
                }
            }

            /// The variant's name, e.g. `"BadFrame"` (`"Unknown"` for
            /// unknown codes).
            pub fn name(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => stringify!($variant),)*
                    ErrorCode::Unknown(_) => "Unknown",
                }
            }
        }
    };
}

codes! {
    BadFrame = 1,
    FrameTooLarge = 2,
    UnsupportedVersion = 3,
    UnexpectedFrame = 4,
    InvalidDocId = 5,
    Unauthorized = 6,
    TokenExpired = 7,
    ServerBusy = 8,
    SlowConsumer = 9,
    IdleTimeout = 10,
    ShuttingDown = 11,
    Internal = 12,
    HandshakeTimeout = 13,
    Forbidden = 100,
    TooManyDocs = 101,
    NotSubscribed = 102,
    DocUnavailable = 103,
    SubscribeRateLimited = 104,
    RateLimited = 200,
    StoreUnavailable = 201,
    MissingDependencies = 202,
    UpdateRejected = 250,
    ReadOnly = 251,
    UpdateTooLarge = 252,
    ReplicaNotOwned = 253,
    ConflictingTransaction = 254,
    DocTooLarge = 255,
}

impl ErrorCode {
    /// What the error ends (see the module table).
    pub fn scope(self) -> ErrorScope {
        match self.code() {
            100..=199 => ErrorScope::Document,
            200..=249 => ErrorScope::UpdateRetry,
            250..=299 => ErrorScope::UpdateRefused,
            _ => ErrorScope::Connection,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_pinned() {
        // The table in docs/protocol.md §7.7; changing a number is a
        // protocol break.
        let pinned: Vec<(u16, &str)> = ErrorCode::ALL
            .iter()
            .map(|c| (c.code(), c.name()))
            .collect();
        assert_eq!(
            pinned,
            [
                (1, "BadFrame"),
                (2, "FrameTooLarge"),
                (3, "UnsupportedVersion"),
                (4, "UnexpectedFrame"),
                (5, "InvalidDocId"),
                (6, "Unauthorized"),
                (7, "TokenExpired"),
                (8, "ServerBusy"),
                (9, "SlowConsumer"),
                (10, "IdleTimeout"),
                (11, "ShuttingDown"),
                (12, "Internal"),
                (13, "HandshakeTimeout"),
                (100, "Forbidden"),
                (101, "TooManyDocs"),
                (102, "NotSubscribed"),
                (103, "DocUnavailable"),
                (104, "SubscribeRateLimited"),
                (200, "RateLimited"),
                (201, "StoreUnavailable"),
                (202, "MissingDependencies"),
                (250, "UpdateRejected"),
                (251, "ReadOnly"),
                (252, "UpdateTooLarge"),
                (253, "ReplicaNotOwned"),
                (254, "ConflictingTransaction"),
                (255, "DocTooLarge"),
            ]
        );
    }

    #[test]
    fn every_number_round_trips() {
        for n in 0..=u16::MAX {
            let code = ErrorCode::from_code(n);
            assert_eq!(code.code(), n);
            assert_eq!(
                matches!(code, ErrorCode::Unknown(_)),
                !ErrorCode::ALL.iter().any(|c| c.code() == n)
            );
        }
    }

    #[test]
    fn scopes_follow_ranges() {
        use ErrorScope::*;
        assert_eq!(ErrorCode::BadFrame.scope(), Connection);
        assert_eq!(ErrorCode::Internal.scope(), Connection);
        assert_eq!(ErrorCode::Forbidden.scope(), Document);
        assert_eq!(ErrorCode::DocUnavailable.scope(), Document);
        assert_eq!(ErrorCode::RateLimited.scope(), UpdateRetry);
        assert_eq!(ErrorCode::StoreUnavailable.scope(), UpdateRetry);
        assert_eq!(ErrorCode::UpdateRejected.scope(), UpdateRefused);
        assert_eq!(ErrorCode::UpdateTooLarge.scope(), UpdateRefused);
        assert_eq!(ErrorCode::Unknown(0).scope(), Connection);
        assert_eq!(ErrorCode::Unknown(99).scope(), Connection);
        assert_eq!(ErrorCode::Unknown(150).scope(), Document);
        assert_eq!(ErrorCode::Unknown(249).scope(), UpdateRetry);
        assert_eq!(ErrorCode::Unknown(299).scope(), UpdateRefused);
        assert_eq!(ErrorCode::Unknown(300).scope(), Connection);
        assert_eq!(ErrorCode::ReadOnly.to_string(), "ReadOnly (251)");
        assert_eq!(ErrorCode::Unknown(7000).to_string(), "Unknown (7000)");
    }
}
