//! Index conversions between chars, UTF-16 code units and UTF-8 bytes.
//!
//! The visible text lives in a chunked rope (`rope.rs`) that indexes all
//! three metrics, so each conversion is `O(log n)` plus one leaf scan. Invariant: every conversion
//! clamps its input to the document, so none panics.

use super::rope::Metric;
use super::Text;

impl Text {
    /// Length of the visible text in UTF-16 code units.
    ///
    /// ```
    /// use weft_core::{ReplicaId, Text};
    /// let mut t = Text::new();
    /// t.insert(ReplicaId::new(1), 0, "a😀");
    /// assert_eq!((t.len(), t.len_utf16(), t.len_bytes()), (2, 3, 5));
    /// ```
    pub fn len_utf16(&self) -> usize {
        self.rope.len(Metric::Utf16)
    }

    /// Length of the visible text in UTF-8 bytes.
    ///
    /// ```
    /// use weft_core::{ReplicaId, Text};
    /// let mut t = Text::new();
    /// t.insert(ReplicaId::new(1), 0, "é");
    /// assert_eq!(t.len_bytes(), 2);
    /// ```
    pub fn len_bytes(&self) -> usize {
        self.rope.len(Metric::Bytes)
    }

    /// The char index at UTF-16 offset `utf16` (clamped to the end; an
    /// offset inside a surrogate pair gives the char of that pair).
    ///
    /// ```
    /// use weft_core::{ReplicaId, Text};
    /// let mut t = Text::new();
    /// t.insert(ReplicaId::new(1), 0, "😀x");
    /// assert_eq!(t.utf16_to_char(2), 1);
    /// assert_eq!(t.utf16_to_char(99), 2);
    /// ```
    pub fn utf16_to_char(&self, utf16: usize) -> usize {
        self.rope.convert(Metric::Utf16, utf16, Metric::Chars)
    }

    /// The UTF-16 offset of char index `index` (clamped to the end).
    ///
    /// ```
    /// use weft_core::{ReplicaId, Text};
    /// let mut t = Text::new();
    /// t.insert(ReplicaId::new(1), 0, "😀x");
    /// assert_eq!(t.char_to_utf16(1), 2);
    /// ```
    pub fn char_to_utf16(&self, index: usize) -> usize {
        self.rope.convert(Metric::Chars, index, Metric::Utf16)
    }

    /// The char index at UTF-8 byte offset `byte` (clamped to the end; a
    /// byte inside a char gives that char).
    ///
    /// ```
    /// use weft_core::{ReplicaId, Text};
    /// let mut t = Text::new();
    /// t.insert(ReplicaId::new(1), 0, "éx");
    /// assert_eq!(t.byte_to_char(2), 1);
    /// ```
    pub fn byte_to_char(&self, byte: usize) -> usize {
        self.rope.convert(Metric::Bytes, byte, Metric::Chars)
    }

    /// The UTF-8 byte offset of char index `index` (clamped to the end).
    ///
    /// ```
    /// use weft_core::{ReplicaId, Text};
    /// let mut t = Text::new();
    /// t.insert(ReplicaId::new(1), 0, "éx");
    /// assert_eq!(t.char_to_byte(1), 2);
    /// ```
    pub fn char_to_byte(&self, index: usize) -> usize {
        self.rope.convert(Metric::Chars, index, Metric::Bytes)
    }
}
