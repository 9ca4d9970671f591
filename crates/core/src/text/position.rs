//! Stable positions: cursors and selections that survive concurrent edits.
//!
//! A position is anchored to a character's op id and a side. Resolving
//! finds that character in the current document; if it was deleted, its
//! tombstone still has a place, so the position resolves to where the
//! character was. Invariant: resolving never fails for an anchor created by
//! this document or any replica that has since synced with it.

use crate::Dot;
use serde::{Deserialize, Serialize};

/// Which neighbour a position sticks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Bias {
    /// Stick to the character before the position: text inserted at the
    /// position goes after the cursor.
    Left,
    /// Stick to the character after the position: text inserted at the
    /// position goes before the cursor.
    Right,
}

/// A position between two characters, stable under concurrent edits
/// (serializable, e.g. for presence).
///
/// ```
/// use weft_core::{Bias, Crdt, ReplicaId, Text};
/// let (ra, rb) = (ReplicaId::new(1), ReplicaId::new(2));
/// let mut a = Text::new();
/// a.insert(ra, 0, "hello world");
/// let mut b = a.clone();
/// let cursor = a.anchor(6, Bias::Right); // before "world"
/// b.apply(&a.insert(ra, 0, ">> "));
/// b.apply(&a.delete(ra, 9, 5)); // delete "world"... and the anchor char
/// assert_eq!(b.to_string(), ">> hello ");
/// assert_eq!(b.resolve(&cursor), Some(9));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StablePosition {
    /// The character stuck to; `None` is the document start (for
    /// [`Bias::Left`]) or end (for [`Bias::Right`]).
    pub anchor: Option<Dot>,
    /// Which side of the position the anchor is on.
    pub bias: Bias,
}
