//! Editor events and positions in the unit an editor counts in: chars
//! (Unicode scalar values), UTF-16 code units (browsers, most GUI toolkits,
//! LSP) or UTF-8 bytes (Rust strings, terminals); and line/column
//! positions.
//!
//! Events in another unit are computed from the char events: retained
//! characters are still in the new text, so their length is read from the
//! rope; deleted characters are read from their tombstones' content (a
//! deleted character was visible just before, so its text is known).
//! Invariant: applying the converted ops to the old text, counting in that
//! unit, yields the new text.

use super::events::{EventLog, TextOp};
use super::rope::Metric;
use super::Text;
use super::TextDelta;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The unit positions and lengths are counted in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TextUnit {
    /// Unicode scalar values (Rust `char`s): weft's native unit.
    #[default]
    Chars,
    /// UTF-16 code units (JavaScript strings, LSP's default).
    Utf16,
    /// UTF-8 bytes (Rust `str` indices).
    Bytes,
}

impl TextUnit {
    /// Length of `s` in this unit.
    ///
    /// ```
    /// use weft_core::TextUnit;
    /// assert_eq!(TextUnit::Utf16.len_of("a😀"), 3);
    /// assert_eq!(TextUnit::Bytes.len_of("é"), 2);
    /// ```
    pub fn len_of(self, s: &str) -> usize {
        match self {
            TextUnit::Chars => s.chars().count(),
            TextUnit::Utf16 => s.encode_utf16().count(),
            TextUnit::Bytes => s.len(),
        }
    }

    fn metric(self) -> Metric {
        match self {
            TextUnit::Chars => Metric::Chars,
            TextUnit::Utf16 => Metric::Utf16,
            TextUnit::Bytes => Metric::Bytes,
        }
    }
}

/// A zero-based line and column; the column counts in a [`TextUnit`].
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct LineCol {
    /// Line (lines end with `\n`).
    pub line: usize,
    /// Offset within the line.
    pub col: usize,
}

impl TextOp {
    /// Converts char ops over `old` (the text before them) to `unit`.
    ///
    /// ```
    /// use weft_core::{TextOp, TextUnit};
    /// let ops = [TextOp::Retain(1), TextOp::Delete(1), TextOp::Insert("é".into())];
    /// let utf8 = TextOp::convert(&ops, "😀x", TextUnit::Bytes);
    /// assert_eq!(utf8, [TextOp::Retain(4), TextOp::Delete(1), TextOp::Insert("é".into())]);
    /// ```
    pub fn convert(ops: &[TextOp], old: &str, unit: TextUnit) -> Vec<TextOp> {
        let mut rest = old;
        let mut out = Vec::with_capacity(ops.len());
        let mut take = |n: usize| {
            let end = rest.char_indices().nth(n).map_or(rest.len(), |(i, _)| i);
            let (head, tail) = rest.split_at(end);
            rest = tail;
            unit.len_of(head)
        };
        for op in ops {
            out.push(match op {
                TextOp::Retain(n) => TextOp::Retain(take(*n)),
                TextOp::Delete(n) => TextOp::Delete(take(*n)),
                TextOp::Insert(s) => TextOp::Insert(s.clone()),
            });
        }
        out
    }
}

impl Text {
    /// [`Text::apply_with_events`] with retains and deletes counted in
    /// `unit` (inserted text is a string either way).
    ///
    /// ```
    /// use weft_core::{ReplicaId, Text, TextOp, TextUnit};
    /// let r = ReplicaId::new(1);
    /// let mut a = Text::new();
    /// a.insert(r, 0, "😀ab");
    /// let mut b = a.clone();
    /// let d = a.delete(r, 1, 1); // "a"
    /// assert_eq!(
    ///     b.apply_with_events_in(&d, TextUnit::Utf16),
    ///     vec![TextOp::Retain(2), TextOp::Delete(1)]
    /// );
    /// ```
    pub fn apply_with_events_in(&mut self, delta: &TextDelta, unit: TextUnit) -> Vec<TextOp> {
        if unit == TextUnit::Chars {
            return self.apply_with_events(delta);
        }
        let mut log = EventLog {
            items_before: self.ids.items(),
            deleted: Vec::new(),
        };
        self.apply_inner(delta, Some(&mut log));
        let ops = {
            let rope = &self.rope;
            log.finish(&self.tree, |pos, n| rope.slice(pos, n))
        };
        // Units deleted at each position of the new text.
        let mut deleted: BTreeMap<u64, usize> = BTreeMap::new();
        for &(first, len) in &log.deleted {
            let (mut item, end) = (first, first + len);
            while item < end {
                let c = self.tree.locate(item);
                let s = *self.tree.span_at(c);
                let n = (s.len - c.offset).min(end - item);
                if s.deleted {
                    let pos = self.tree.visible_before(c);
                    let mut units = 0;
                    let mut runs = Vec::new();
                    self.ids.dots_of(item, n, |dot, k| runs.push((dot, k)));
                    for (dot, k) in runs {
                        units += self
                            .content_of(dot, u64::from(k))
                            .map_or(k as usize, |t| unit.len_of(&t));
                    }
                    *deleted.entry(pos).or_default() += units;
                }
                item += n.max(1);
            }
        }
        let metric = unit.metric();
        let mut at = 0usize; // chars into the new text
        ops.into_iter()
            .map(|op| match op {
                TextOp::Retain(n) => {
                    let from = self.rope.convert(Metric::Chars, at, metric);
                    at += n;
                    TextOp::Retain(self.rope.convert(Metric::Chars, at, metric) - from)
                }
                TextOp::Insert(s) => {
                    at += s.chars().count();
                    TextOp::Insert(s)
                }
                TextOp::Delete(n) => {
                    TextOp::Delete(deleted.get(&(at as u64)).copied().unwrap_or(n))
                }
            })
            .collect()
    }

    /// Length in `unit`.
    ///
    /// ```
    /// use weft_core::{ReplicaId, Text, TextUnit};
    /// let mut t = Text::new();
    /// t.insert(ReplicaId::new(1), 0, "a😀");
    /// assert_eq!(t.len_in(TextUnit::Utf16), 3);
    /// ```
    pub fn len_in(&self, unit: TextUnit) -> usize {
        self.rope.len(unit.metric())
    }

    /// The char index of offset `index` counted in `unit` (clamped; an
    /// offset inside a character gives that character).
    ///
    /// ```
    /// use weft_core::{ReplicaId, Text, TextUnit};
    /// let mut t = Text::new();
    /// t.insert(ReplicaId::new(1), 0, "😀x");
    /// assert_eq!(t.to_char(TextUnit::Utf16, 2), 1);
    /// ```
    pub fn to_char(&self, unit: TextUnit, index: usize) -> usize {
        self.rope.convert(unit.metric(), index, Metric::Chars)
    }

    /// Char index `index` as an offset counted in `unit` (clamped).
    ///
    /// ```
    /// use weft_core::{ReplicaId, Text, TextUnit};
    /// let mut t = Text::new();
    /// t.insert(ReplicaId::new(1), 0, "😀x");
    /// assert_eq!(t.from_char(1, TextUnit::Bytes), 4);
    /// ```
    pub fn from_char(&self, index: usize, unit: TextUnit) -> usize {
        self.rope.convert(Metric::Chars, index, unit.metric())
    }

    /// The line and column (counted in `unit`) of char index `index`
    /// (clamped to the end). Linear in the text before `index`.
    ///
    /// ```
    /// use weft_core::{LineCol, ReplicaId, Text, TextUnit};
    /// let mut t = Text::new();
    /// t.insert(ReplicaId::new(1), 0, "ab\n😀c");
    /// assert_eq!(t.line_col(4, TextUnit::Utf16), LineCol { line: 1, col: 2 });
    /// assert_eq!(t.char_at_line_col(LineCol { line: 1, col: 2 }, TextUnit::Utf16), 4);
    /// ```
    pub fn line_col(&self, index: usize, unit: TextUnit) -> LineCol {
        let mut pos = LineCol::default();
        let mut left = index.min(self.len());
        for chunk in self.rope.chunks() {
            for ch in chunk.chars() {
                if left == 0 {
                    return pos;
                }
                left -= 1;
                if ch == '\n' {
                    pos.line += 1;
                    pos.col = 0;
                } else {
                    pos.col += match unit {
                        TextUnit::Chars => 1,
                        TextUnit::Utf16 => ch.len_utf16(),
                        TextUnit::Bytes => ch.len_utf8(),
                    };
                }
            }
        }
        pos
    }

    /// The char index of a line and column (counted in `unit`): a column
    /// past the line's end gives the line's end, a line past the last gives
    /// the text's end, an offset inside a character gives that character.
    /// Linear in the text before the position.
    pub fn char_at_line_col(&self, at: LineCol, unit: TextUnit) -> usize {
        let mut index = 0usize;
        let (mut line, mut col) = (0usize, 0usize);
        for chunk in self.rope.chunks() {
            for ch in chunk.chars() {
                if line == at.line {
                    if ch == '\n' || col >= at.col {
                        return index;
                    }
                    col += match unit {
                        TextUnit::Chars => 1,
                        TextUnit::Utf16 => ch.len_utf16(),
                        TextUnit::Bytes => ch.len_utf8(),
                    };
                    if col > at.col {
                        return index;
                    }
                } else if ch == '\n' {
                    line += 1;
                }
                index += 1;
            }
        }
        index
    }
}
