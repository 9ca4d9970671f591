//! Presence (awareness): who is looking at a document and where their cursor
//! is. Ephemeral: never stored, relayed only to the document's current
//! subscribers, and dropped when its peer leaves (see `docs/protocol.md`
//! §7.6).

use crate::ProtocolError;
use serde::{Deserialize, Serialize};
use std::fmt;
use weft_core::doc::{Kind, Path, MAX_DEPTH, MAX_KEY_BYTES};
use weft_core::StablePosition;

/// Longest [`PresenceState::user`], in bytes.
pub const MAX_USER_BYTES: usize = 128;

/// A connection's id on the server, assigned at [`Welcome`](crate::Frame::Welcome)
/// and unique among the server's open connections. Presence is keyed by it,
/// so one user with two tabs shows up twice.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PeerId(pub u64);

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.0)
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer-{}", self.0)
    }
}

/// One peer's presence in one document.
///
/// Bounds (checked by [`PresenceState::validate`] and on decode): `user` at
/// most [`MAX_USER_BYTES`] bytes without control characters; `color` is
/// `#rrggbb` or `#rrggbbaa` (lowercase or uppercase hex), so it can be put
/// into a style without escaping; the cursor's path is a valid text path;
/// the whole encoded state is at most `max_presence_bytes`
/// ([`Limits`](crate::Limits)).
///
/// ```
/// use weft_core::{Bias, Doc, ReplicaId};
/// use weft_core::doc::{Kind, Path};
/// use weft_protocol::{Cursor, PresenceState};
/// let mut doc = Doc::new(ReplicaId::new(1));
/// doc.transact(|tx| tx.text("body")?.insert(0, "hello")).unwrap();
/// let text = doc.text("body").unwrap();
/// let at = text.as_text().unwrap().anchor(5, Bias::Left);
/// let me = PresenceState {
///     user: "Ada".into(),
///     color: "#3366ff".into(),
///     cursor: Some(Cursor { text: Path::root().child("body", Kind::Text), anchor: at, head: at }),
///     extra: Vec::new(),
/// };
/// assert!(me.validate(4096).is_ok());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PresenceState {
    /// Display name.
    pub user: String,
    /// Display colour, `#rrggbb` or `#rrggbbaa`.
    pub color: String,
    /// Where the peer's cursor or selection is, if in a text.
    pub cursor: Option<Cursor>,
    /// Application data, opaque to weft (e.g. "is typing", a viewport).
    pub extra: Vec<u8>,
}

/// A cursor or selection in one text of the document, anchored to
/// characters so it survives concurrent edits.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cursor {
    /// The text's path in the document (its last step is a text).
    pub text: Path,
    /// Where the selection started (equal to `head` for a plain cursor).
    pub anchor: StablePosition,
    /// Where the selection ends: the caret.
    pub head: StablePosition,
}

impl PresenceState {
    /// The state's encoded size in bytes (what `max_presence_bytes` bounds).
    pub fn encoded_len(&self) -> usize {
        postcard::serialize_with_flavor::<_, _, usize>(self, postcard::ser_flavors::Size::default())
            .unwrap_or(usize::MAX)
    }

    /// Checks the bounds in the type's documentation, with `max_bytes` the
    /// limit on the encoded size.
    pub fn validate(&self, max_bytes: usize) -> Result<(), ProtocolError> {
        check_text("user", &self.user, MAX_USER_BYTES)?;
        if !valid_color(&self.color) {
            return Err(ProtocolError::InvalidPresence(
                "color is not #rrggbb or #rrggbbaa",
            ));
        }
        if let Some(cursor) = &self.cursor {
            cursor.validate()?;
        }
        let len = self.encoded_len();
        if len > max_bytes {
            return Err(ProtocolError::PresenceTooLarge {
                len,
                max: max_bytes,
            });
        }
        Ok(())
    }
}

impl Cursor {
    fn validate(&self) -> Result<(), ProtocolError> {
        let steps = self.text.steps();
        if steps.len() > MAX_DEPTH {
            return Err(ProtocolError::InvalidPresence(
                "cursor path deeper than the limit",
            ));
        }
        if steps.iter().any(|s| s.key.len() > MAX_KEY_BYTES) {
            return Err(ProtocolError::InvalidPresence(
                "cursor path key longer than the limit",
            ));
        }
        if steps.iter().rev().skip(1).any(|s| s.kind != Kind::Map) {
            return Err(ProtocolError::InvalidPresence(
                "cursor path steps through a value that is not a map",
            ));
        }
        if self.text.kind() != Some(Kind::Text) {
            return Err(ProtocolError::InvalidPresence(
                "cursor path does not name a text",
            ));
        }
        for pos in [&self.anchor, &self.head] {
            if pos.anchor.is_some_and(|dot| dot.counter == 0) {
                return Err(ProtocolError::InvalidPresence(
                    "cursor anchored to a zero counter",
                ));
            }
        }
        Ok(())
    }
}

fn valid_color(color: &str) -> bool {
    let bytes = color.as_bytes();
    matches!(bytes.len(), 7 | 9) && bytes[0] == b'#' && bytes[1..].iter().all(u8::is_ascii_hexdigit)
}

/// Checks a short human-readable field: length and no control characters.
pub(crate) fn check_text(
    field: &'static str,
    value: &str,
    max: usize,
) -> Result<(), ProtocolError> {
    if value.len() > max {
        return Err(ProtocolError::FieldTooLong {
            field,
            len: value.len(),
            max,
        });
    }
    if value.chars().any(char::is_control) {
        return Err(ProtocolError::ControlCharacter { field });
    }
    Ok(())
}
