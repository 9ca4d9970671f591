//! Frames: one WebSocket binary message is one frame.

use crate::presence::check_text;
use crate::wire::{check_update, Wire, FRAME_TYPES};
use crate::{DocId, ErrorCode, PeerId, PresenceState, ProtocolError};
use serde::{Deserialize, Serialize};
use weft_core::codec::{self, kind, HEADER_LEN, MAGIC};
use weft_core::{DecodeError, VersionVector};

/// The relay protocol version this build speaks best (negotiated in
/// [`Frame::Hello`] / [`Frame::Welcome`]).
///
/// Version 2 adds [`Frame::Access`] (the client's permission on each
/// document it subscribes); everything else is version 1 unchanged.
pub const PROTOCOL_VERSION: u16 = 2;
/// The first protocol version with [`Frame::Access`].
pub const ACCESS_VERSION: u16 = 2;
/// The oldest protocol version this build still speaks.
pub const MIN_PROTOCOL_VERSION: u16 = 1;

/// Longest `client_name` and `server_name`, in bytes.
pub const MAX_NAME_BYTES: usize = 128;
/// Longest `token`, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8192;
/// Longest error `message`, in bytes ([`Frame::error`] truncates to it).
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// Bounds on what a peer accepts. A server announces its own in
/// [`Frame::Welcome`]; each side decodes what it receives with its own.
///
/// ```
/// use weft_protocol::Limits;
/// let l = Limits::default();
/// assert_eq!(l.max_frame_bytes, 32 << 20);
/// assert!(l.max_update_bytes <= l.max_frame_bytes);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Limits {
    /// Largest frame, header included. Checked before anything is parsed.
    pub max_frame_bytes: u32,
    /// Largest update in an `Update` or `Remote` frame (a `Synced` diff is
    /// bounded by `max_frame_bytes` only).
    pub max_update_bytes: u32,
    /// Largest encoded [`PresenceState`].
    pub max_presence_bytes: u32,
    /// Most documents subscribed at once on one connection (enforced by the
    /// server with [`ErrorCode::TooManyDocs`]).
    pub max_docs: u32,
    /// The server closes a connection it has received nothing from for this
    /// long ([`ErrorCode::IdleTimeout`]); clients ping well within it.
    pub idle_timeout_ms: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_bytes: 32 << 20,
            max_update_bytes: 16 << 20,
            max_presence_bytes: 4096,
            max_docs: 256,
            idle_timeout_ms: 30_000,
        }
    }
}

/// What a connection may do with a document, announced by the server in
/// [`Frame::Access`] (protocol version 2 on).
///
/// ```
/// use weft_protocol::Access;
/// assert!(Access::ReadWrite.may_write());
/// assert!(!Access::ReadOnly.may_write());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Access {
    /// Receives the document and its updates; every `Update` is refused
    /// with [`ErrorCode::ReadOnly`]. Wire value 0.
    ReadOnly,
    /// May also send updates. Wire value 1.
    ReadWrite,
}

impl Access {
    /// Whether updates are accepted.
    pub fn may_write(self) -> bool {
        self == Access::ReadWrite
    }
}

/// Who may send a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Only the client.
    ToServer,
    /// Only the server.
    ToClient,
    /// Either side (keepalive).
    Both,
}

/// One message of the relay protocol (`docs/protocol.md` §7). The comment
/// on each variant gives its wire type number (postcard variant index).
///
/// Client → server: `Hello` (first, once), `Subscribe`, `Unsubscribe`,
/// `Update`, `Presence`. Server → client: `Welcome` (first, once),
/// `Error`, `Synced`, `Ack`, `Remote`, `PresenceUpdate`, `PresenceRemoved`,
/// `Access` (version 2 on). Either: `Ping`, `Pong`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// 0, client: opens the connection.
    Hello {
        /// Oldest protocol version the client speaks.
        min_version: u16,
        /// Newest protocol version the client speaks.
        max_version: u16,
        /// Free-form client name for logs (e.g. `"weft-client/0.1"`).
        client_name: Option<String>,
        /// Credentials, checked by the server's authenticator.
        token: Option<String>,
    },
    /// 1, server: accepts `Hello`.
    Welcome {
        /// The negotiated version, used for the rest of the connection.
        protocol_version: u16,
        /// Free-form server name for logs.
        server_name: String,
        /// This connection's id in presence frames.
        peer: PeerId,
        /// What the server accepts; the client stays within them.
        limits: Limits,
    },
    /// 2, server: something went wrong; [`ErrorCode::scope`] says what it
    /// ends.
    Error {
        /// Stable code.
        code: ErrorCode,
        /// The document concerned, for document and update errors.
        doc: Option<DocId>,
        /// The refused update's `seq`, for update errors.
        seq: Option<u64>,
        /// Human-readable detail for logs; not for matching.
        message: String,
    },
    /// 3, either side: asks for a `Pong`.
    Ping {
        /// Echoed in the `Pong`.
        nonce: u64,
    },
    /// 4, either side: answers a `Ping`.
    Pong {
        /// The `Ping`'s nonce.
        nonce: u64,
    },
    /// 5, client: start (or restart) syncing a document from `version`.
    Subscribe {
        /// The document.
        doc: DocId,
        /// Everything the client already has (`Doc::version`).
        version: VersionVector,
    },
    /// 6, server: answers `Subscribe` with exactly what the client lacks.
    Synced {
        /// The document.
        doc: DocId,
        /// `Doc::diff(client's version)`: apply it.
        update: Vec<u8>,
        /// The server's version; the client sends `diff(version)` back as
        /// an `Update` if it has anything the server lacks.
        version: VersionVector,
    },
    /// 7, client: stop syncing a document (and drop this peer's presence).
    Unsubscribe {
        /// The document.
        doc: DocId,
    },
    /// 8, client: a local update (or catch-up diff) for the server to store
    /// and fan out.
    Update {
        /// The document.
        doc: DocId,
        /// Client-chosen id, echoed by the `Ack` (or `Error`).
        seq: u64,
        /// An encoded document update.
        update: Vec<u8>,
    },
    /// 9, server: the update `seq` is durably stored.
    Ack {
        /// The document.
        doc: DocId,
        /// The `Update`'s seq.
        seq: u64,
    },
    /// 10, server: an update from another peer.
    Remote {
        /// The document.
        doc: DocId,
        /// An encoded document update: apply it.
        update: Vec<u8>,
    },
    /// 11, client: this connection's presence in a document (`None` clears
    /// it).
    Presence {
        /// The document.
        doc: DocId,
        /// The new state.
        state: Option<PresenceState>,
    },
    /// 12, server: other peers' presence, new or changed.
    PresenceUpdate {
        /// The document.
        doc: DocId,
        /// Each peer's full current state.
        peers: Vec<(PeerId, PresenceState)>,
    },
    /// 13, server: peers whose presence is gone (left, cleared, timed out).
    PresenceRemoved {
        /// The document.
        doc: DocId,
        /// The peers.
        peers: Vec<PeerId>,
    },
    /// 14, server, protocol version 2 on: the connection's permission on
    /// `doc`, sent in answer to each `Subscribe` the server accepts, before
    /// its `Synced`. Never sent on a version 1 connection.
    Access {
        /// The document.
        doc: DocId,
        /// What this connection may do with it.
        access: Access,
    },
}

impl Frame {
    /// A `Hello` offering every version this build speaks.
    pub fn hello(client_name: Option<String>, token: Option<String>) -> Frame {
        Frame::Hello {
            min_version: MIN_PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            client_name,
            token,
        }
    }

    /// An `Error` frame, its message cut to [`MAX_MESSAGE_BYTES`] (at a
    /// character boundary).
    pub fn error(
        code: ErrorCode,
        doc: Option<DocId>,
        seq: Option<u64>,
        message: impl Into<String>,
    ) -> Frame {
        let mut message = message.into();
        if message.len() > MAX_MESSAGE_BYTES {
            let mut end = MAX_MESSAGE_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        Frame::Error {
            code,
            doc,
            seq,
            message,
        }
    }

    /// The variant's name, e.g. `"Subscribe"`.
    pub fn name(&self) -> &'static str {
        match self {
            Frame::Hello { .. } => "Hello",
            Frame::Welcome { .. } => "Welcome",
            Frame::Error { .. } => "Error",
            Frame::Ping { .. } => "Ping",
            Frame::Pong { .. } => "Pong",
            Frame::Subscribe { .. } => "Subscribe",
            Frame::Synced { .. } => "Synced",
            Frame::Unsubscribe { .. } => "Unsubscribe",
            Frame::Update { .. } => "Update",
            Frame::Ack { .. } => "Ack",
            Frame::Remote { .. } => "Remote",
            Frame::Presence { .. } => "Presence",
            Frame::PresenceUpdate { .. } => "PresenceUpdate",
            Frame::PresenceRemoved { .. } => "PresenceRemoved",
            Frame::Access { .. } => "Access",
        }
    }

    /// Who may send this frame.
    pub fn direction(&self) -> Direction {
        match self {
            Frame::Hello { .. }
            | Frame::Subscribe { .. }
            | Frame::Unsubscribe { .. }
            | Frame::Update { .. }
            | Frame::Presence { .. } => Direction::ToServer,
            Frame::Ping { .. } | Frame::Pong { .. } => Direction::Both,
            Frame::Welcome { .. }
            | Frame::Error { .. }
            | Frame::Synced { .. }
            | Frame::Ack { .. }
            | Frame::Remote { .. }
            | Frame::PresenceUpdate { .. }
            | Frame::PresenceRemoved { .. }
            | Frame::Access { .. } => Direction::ToClient,
        }
    }

    /// The document the frame is about, if any.
    pub fn doc(&self) -> Option<&DocId> {
        match self {
            Frame::Hello { .. }
            | Frame::Welcome { .. }
            | Frame::Ping { .. }
            | Frame::Pong { .. } => None,
            Frame::Error { doc, .. } => doc.as_ref(),
            Frame::Subscribe { doc, .. }
            | Frame::Synced { doc, .. }
            | Frame::Unsubscribe { doc }
            | Frame::Update { doc, .. }
            | Frame::Ack { doc, .. }
            | Frame::Remote { doc, .. }
            | Frame::Presence { doc, .. }
            | Frame::PresenceUpdate { doc, .. }
            | Frame::PresenceRemoved { doc, .. }
            | Frame::Access { doc, .. } => Some(doc),
        }
    }

    /// The frame's bytes: the weft header (`WEFT`, format version, kind
    /// [`kind::PROTOCOL_FRAME`]) and the postcard body.
    ///
    /// Encoding does not check bounds; [`Frame::validate`] against the
    /// peer's limits tells whether the peer will accept the frame.
    pub fn encode(&self) -> Vec<u8> {
        encode_wire(&Wire::of(self))
    }

    /// The bytes of `Frame::Remote { doc, update }` without building the
    /// frame: a relay fanning out an update it holds encodes it from the
    /// borrowed bytes, with no copy of the update first.
    ///
    /// ```
    /// use weft_protocol::{DocId, Frame};
    /// let doc = DocId::new("notes").unwrap();
    /// let frame = Frame::Remote { doc: doc.clone(), update: vec![1, 2, 3] };
    /// assert_eq!(Frame::encode_remote(&doc, &[1, 2, 3]), frame.encode());
    /// ```
    pub fn encode_remote(doc: &DocId, update: &[u8]) -> Vec<u8> {
        encode_wire(&Wire::Remote {
            doc: doc.as_str(),
            update,
        })
    }

    /// The length of [`Frame::encode`]'s output, without encoding.
    pub fn encoded_len(&self) -> usize {
        let body = postcard::serialize_with_flavor::<_, _, usize>(
            &Wire::of(self),
            postcard::ser_flavors::Size::default(),
        );
        body.map_or(usize::MAX, |b| HEADER_LEN + b)
    }

    /// Decodes one frame, checking in order: the size against
    /// `limits.max_frame_bytes` (before parsing anything), the header, the
    /// frame type, the body (no trailing bytes), document ids, update sizes
    /// (before copying them) and every other bound ([`Frame::validate`]).
    /// Never panics.
    pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Frame, ProtocolError> {
        let max = limits.max_frame_bytes as usize;
        if bytes.len() > max {
            return Err(ProtocolError::FrameTooLarge {
                len: bytes.len(),
                max,
            });
        }
        let body = check_header(bytes)?;
        if let Some(index) = peek_varint(body) {
            if index >= FRAME_TYPES {
                return Err(ProtocolError::UnknownFrame(index));
            }
        }
        // What decoding builds (version vectors, cursor paths) is charged to
        // a budget of four times the frame limit (at least 1 MiB), so a
        // frame of tiny entries cannot become a structure many times its
        // size, while any frame within the limit that honest peers send
        // decodes.
        let budget = max.saturating_mul(4).max(1 << 20);
        let (wire, rest) =
            codec::with_budget(budget, || postcard::take_from_bytes::<Wire<'_>>(body))?
                .map_err(DecodeError::from)?;
        if !rest.is_empty() {
            return Err(DecodeError::TrailingBytes(rest.len()).into());
        }
        let frame = wire.into_frame(limits)?;
        frame.validate_fields(limits)?;
        Ok(frame)
    }

    /// Checks every bound a receiver with `limits` applies: the encoded
    /// size, update sizes, presence states and string fields. A frame that
    /// passes is accepted by [`Frame::decode`] with the same limits.
    pub fn validate(&self, limits: &Limits) -> Result<(), ProtocolError> {
        let len = self.encoded_len();
        let max = limits.max_frame_bytes as usize;
        if len > max {
            return Err(ProtocolError::FrameTooLarge { len, max });
        }
        self.validate_fields(limits)
    }

    fn validate_fields(&self, limits: &Limits) -> Result<(), ProtocolError> {
        let max_presence = limits.max_presence_bytes as usize;
        let max_update = limits.max_update_bytes as usize;
        match self {
            Frame::Hello {
                client_name, token, ..
            } => {
                if let Some(name) = client_name {
                    check_text("client_name", name, MAX_NAME_BYTES)?;
                }
                if let Some(token) = token {
                    if token.len() > MAX_TOKEN_BYTES {
                        return Err(ProtocolError::FieldTooLong {
                            field: "token",
                            len: token.len(),
                            max: MAX_TOKEN_BYTES,
                        });
                    }
                }
            }
            Frame::Welcome { server_name, .. } => {
                check_text("server_name", server_name, MAX_NAME_BYTES)?;
            }
            Frame::Error { message, .. } => {
                if message.len() > MAX_MESSAGE_BYTES {
                    return Err(ProtocolError::FieldTooLong {
                        field: "message",
                        len: message.len(),
                        max: MAX_MESSAGE_BYTES,
                    });
                }
            }
            Frame::Update { doc, seq, update } => {
                check_update(doc, Some(*seq), update, max_update)?;
            }
            Frame::Remote { doc, update } => check_update(doc, None, update, max_update)?,
            Frame::Presence { state, .. } => {
                if let Some(state) = state {
                    state.validate(max_presence)?;
                }
            }
            Frame::PresenceUpdate { peers, .. } => {
                for (_, state) in peers {
                    state.validate(max_presence)?;
                }
            }
            Frame::Ping { .. }
            | Frame::Pong { .. }
            | Frame::Subscribe { .. }
            | Frame::Synced { .. }
            | Frame::Unsubscribe { .. }
            | Frame::Ack { .. }
            | Frame::PresenceRemoved { .. }
            | Frame::Access { .. } => {}
        }
        Ok(())
    }
}

/// Checks the weft header and returns the body.
fn check_header(bytes: &[u8]) -> Result<&[u8], DecodeError> {
    let Some((header, body)) = bytes.split_first_chunk::<HEADER_LEN>() else {
        return Err(DecodeError::Truncated(bytes.len()));
    };
    if header[..4] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if header[4] == 0 || header[4] > codec::FORMAT_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            found: header[4],
            supported: codec::FORMAT_VERSION,
        });
    }
    if header[5] != kind::PROTOCOL_FRAME {
        return Err(DecodeError::WrongKind {
            expected: "Frame",
            found: header[5],
        });
    }
    Ok(body)
}

/// The `u32` varint at the start of `body`, if it is a complete one.
fn peek_varint(body: &[u8]) -> Option<u32> {
    let mut value: u64 = 0;
    for (i, &byte) in body.iter().take(5).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return u32::try_from(value).ok();
        }
    }
    None
}
/// The weft header (`WEFT`, format version, kind
/// [`kind::PROTOCOL_FRAME`]) and `wire`'s postcard body.
fn encode_wire(wire: &Wire<'_>) -> Vec<u8> {
    let header = || {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&MAGIC);
        out.push(codec::FORMAT_VERSION);
        out.push(kind::PROTOCOL_FRAME);
        out
    };
    // Serializing into a Vec fails only for a serde impl that reports an
    // error, which none here does; a header-only frame would then fail
    // to decode with a typed error rather than panic here.
    postcard::to_extend(wire, header()).unwrap_or_else(|_| header())
}
