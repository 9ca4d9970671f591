//! Editor events: what an `apply` changed, as one Quill-style delta.
//!
//! While a remote delta is applied, the text records which old items became
//! deleted; items allocated during the apply are the new ones. Afterwards the
//! affected pieces are located in the final document and sorted, and the gaps
//! between them become retains. Cost: `O(k log k)` in the number of affected
//! pieces plus a chunk scan each, independent of the document size.
//!
//! Invariant: applying the returned ops, in order, to the visible text from
//! before the apply yields the visible text after it.

use super::tree::Tree;
use serde::{Deserialize, Serialize};

/// One step of an edit, in Unicode scalar values (chars), Quill-delta style:
/// walk the old text from its start, keeping, inserting or removing.
///
/// ```
/// use weft_core::{ReplicaId, Text, TextOp};
/// let mut a = Text::new();
/// a.insert(ReplicaId::new(1), 0, "held");
/// let mut b = a.clone();
/// let d = a.insert(ReplicaId::new(1), 3, "lo worl");
/// let ops = b.apply_with_events(&d);
/// assert_eq!(ops, vec![TextOp::Retain(3), TextOp::Insert("lo worl".into())]);
/// let mut doc = "held".to_string();
/// TextOp::apply_all(&ops, &mut doc);
/// assert_eq!(doc, "hello world");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TextOp {
    /// Keep this many characters.
    Retain(usize),
    /// Insert this text here.
    Insert(String),
    /// Remove this many characters.
    Delete(usize),
}

impl TextOp {
    /// Applies `ops` to `text` (a convenience for editors and tests).
    /// Retains and deletes past the end are clamped.
    ///
    /// ```
    /// use weft_core::TextOp;
    /// let mut s = "abcd".to_string();
    /// TextOp::apply_all(&[TextOp::Retain(1), TextOp::Delete(2), TextOp::Insert("X".into())], &mut s);
    /// assert_eq!(s, "aXd");
    /// ```
    pub fn apply_all(ops: &[TextOp], text: &mut String) {
        let mut byte = 0usize;
        for op in ops {
            match op {
                TextOp::Retain(n) => byte = advance(text, byte, *n),
                TextOp::Insert(s) => {
                    text.insert_str(byte, s);
                    byte += s.len();
                }
                TextOp::Delete(n) => {
                    let end = advance(text, byte, *n);
                    text.replace_range(byte..end, "");
                }
            }
        }
    }
}

/// The byte offset `n` chars after `byte` (clamped to the end).
fn advance(text: &str, byte: usize, n: usize) -> usize {
    text[byte..]
        .char_indices()
        .nth(n)
        .map_or(text.len(), |(i, _)| byte + i)
}

/// What an apply changed, recorded while it runs.
#[derive(Debug, Default)]
pub(super) struct EventLog {
    /// Items that existed before the apply.
    pub(super) items_before: u32,
    /// Old items that became deleted: `(first item, count)`.
    pub(super) deleted: Vec<(u32, u32)>,
}

impl EventLog {
    /// Builds the ops; `slice(pos, len)` returns new visible text.
    pub(super) fn finish(
        &self,
        tree: &Tree,
        slice: impl Fn(usize, usize) -> String,
    ) -> Vec<TextOp> {
        // (visible position in the new text, is insert, len)
        let mut pieces: Vec<(u64, bool, u32)> = Vec::new();
        let mut walk = |item: u32, len: u32, insert: bool| {
            let (mut item, end) = (item, item + len);
            while item < end {
                let c = tree.locate(item);
                let s = tree.span_at(c);
                let n = (s.len - c.offset).min(end - item);
                if insert != s.deleted {
                    pieces.push((tree.visible_before(c), insert, n));
                }
                item += n;
            }
        };
        for &(item, len) in &self.deleted {
            walk(item, len, false);
        }
        let items_now = tree.items();
        if items_now > self.items_before {
            walk(self.items_before, items_now - self.items_before, true);
        }
        pieces.sort_unstable();
        let mut ops: Vec<TextOp> = Vec::new();
        let mut at = 0u64;
        for (pos, insert, n) in pieces {
            if pos > at {
                push(&mut ops, TextOp::Retain((pos - at) as usize));
                at = pos;
            }
            if insert {
                push(&mut ops, TextOp::Insert(slice(pos as usize, n as usize)));
                at += u64::from(n);
            } else {
                push(&mut ops, TextOp::Delete(n as usize));
            }
        }
        ops
    }
}

/// Appends `op`, coalescing with a previous op of the same kind.
fn push(ops: &mut Vec<TextOp>, op: TextOp) {
    match (ops.last_mut(), op) {
        (Some(TextOp::Retain(a)), TextOp::Retain(b)) => *a += b,
        (Some(TextOp::Delete(a)), TextOp::Delete(b)) => *a += b,
        (Some(TextOp::Insert(a)), TextOp::Insert(b)) => a.push_str(&b),
        (_, op) => ops.push(op),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_all_handles_unicode() {
        let mut s = "héllo".to_string();
        TextOp::apply_all(
            &[
                TextOp::Retain(1),
                TextOp::Delete(1),
                TextOp::Insert("€".into()),
                TextOp::Retain(10),
            ],
            &mut s,
        );
        assert_eq!(s, "h€llo");
    }
}
