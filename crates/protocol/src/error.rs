//! Why a frame could not be decoded or is out of bounds.

use crate::{DocId, ErrorCode, Frame, InvalidDocId};
use thiserror::Error;
use weft_core::DecodeError;

/// Why bytes are not an acceptable frame. Every failure of
/// [`Frame::decode`] and [`Frame::validate`] is one of these; no input
/// panics.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// The frame is larger than `max_frame_bytes`; nothing was parsed.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Frame length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The envelope or the postcard body is malformed (truncated, bad
    /// magic, unknown format version, wrong kind, bad body, trailing bytes).
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The body starts with a frame type this build does not know.
    #[error("unknown frame type {0}")]
    UnknownFrame(u32),
    /// A document id breaks the [`DocId`] rules.
    #[error("invalid document id: {0}")]
    InvalidDocId(#[from] InvalidDocId),
    /// An update (or, for `Synced`, a diff) is larger than the limit.
    #[error("update of {len} bytes for `{doc}` exceeds the limit of {max} bytes")]
    UpdateTooLarge {
        /// The document.
        doc: DocId,
        /// The update's `seq` when the frame is an `Update`.
        seq: Option<u64>,
        /// Update length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A presence state's encoding is larger than `max_presence_bytes`.
    #[error("presence state of {len} bytes exceeds the limit of {max} bytes")]
    PresenceTooLarge {
        /// Encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A presence state breaks one of its rules.
    #[error("invalid presence: {0}")]
    InvalidPresence(&'static str),
    /// A bounded string field is too long.
    #[error("`{field}` of {len} bytes exceeds the limit of {max} bytes")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A name field contains a control character.
    #[error("`{field}` contains a control character")]
    ControlCharacter {
        /// Which field.
        field: &'static str,
    },
}

impl ProtocolError {
    /// The error code a server sends back for a client frame that failed
    /// this way.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::FrameTooLarge { .. } => ErrorCode::FrameTooLarge,
            ProtocolError::Decode(DecodeError::UnsupportedVersion { .. }) => {
                ErrorCode::UnsupportedVersion
            }
            ProtocolError::InvalidDocId(_) => ErrorCode::InvalidDocId,
            ProtocolError::UpdateTooLarge { seq: Some(_), .. } => ErrorCode::UpdateTooLarge,
            ProtocolError::UpdateTooLarge { seq: None, .. } => ErrorCode::FrameTooLarge,
            _ => ErrorCode::BadFrame,
        }
    }

    /// The [`Frame::Error`] a server sends back for a client frame that
    /// failed this way: connection-level for everything but an oversized
    /// `Update`, which names its document and `seq` (the connection stays
    /// open and the client learns which update was refused).
    ///
    /// ```
    /// use weft_protocol::{ErrorCode, Frame, Limits};
    /// let err = Frame::decode(b"WEFT\x01\x0e\xff", &Limits::default()).unwrap_err();
    /// let Frame::Error { code, doc, seq, .. } = err.error_frame() else { unreachable!() };
    /// assert_eq!((code, doc, seq), (ErrorCode::BadFrame, None, None));
    /// ```
    pub fn error_frame(&self) -> Frame {
        let (doc, seq) = match self {
            ProtocolError::UpdateTooLarge {
                doc,
                seq: Some(seq),
                ..
            } => (Some(doc.clone()), Some(*seq)),
            _ => (None, None),
        };
        Frame::error(self.code(), doc, seq, self.to_string())
    }
}
