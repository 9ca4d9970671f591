//! The runs of one local transaction on a text, kept until the transaction
//! encodes its update: what `Doc::transact` ships without building a
//! [`super::TextDelta`] per edit.
//!
//! A [`LocalRun`] is a `delta::Run` whose inserted text is a range of the
//! transaction's own text buffer (every insert of a transaction is copied
//! there once, back to back), so recording a keystroke allocates nothing.
//! [`push`] coalesces runs exactly where `TextDelta::push` would (typing
//! forms one run, a forward delete of consecutive characters another), and
//! [`TextWriter`] writes them in the layout of `wire.rs`: the bytes equal
//! the encoding of the `TextDelta` the same edits return.

use super::wire::{Encoder, OpRef, RunRef};
use crate::Dot;
use std::ops::Range;

/// One run of consecutive ops of the local replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LocalRun {
    /// Id of the first op.
    id: Dot,
    /// Number of ops (characters inserted or deleted).
    len: u64,
    op: LocalOp,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum LocalOp {
    Insert {
        origin_left: Option<Dot>,
        origin_right: Option<Dot>,
        /// The inserted text: a byte range of the transaction's buffer.
        text: Range<usize>,
    },
    /// Forward deletion of `len` characters from `target` on.
    Delete { target: Dot },
}

impl LocalRun {
    /// `len` characters inserted with id `id` between the two origins; the
    /// text is `text` of the transaction's buffer.
    pub(super) fn insert(
        id: Dot,
        len: u64,
        origin_left: Option<Dot>,
        origin_right: Option<Dot>,
        text: Range<usize>,
    ) -> Self {
        LocalRun {
            id,
            len,
            op: LocalOp::Insert {
                origin_left,
                origin_right,
                text,
            },
        }
    }

    /// `len` characters from `target` on deleted by ops from `id` on.
    pub(super) fn delete(id: Dot, target: Dot, len: u64) -> Self {
        LocalRun {
            id,
            len,
            op: LocalOp::Delete { target },
        }
    }

    /// Appends `next` if it continues this run (the rule of
    /// `delta::Run::extend`); returns whether it did.
    fn extend(&mut self, next: &LocalRun) -> bool {
        if next.id.replica != self.id.replica || self.id.counter + self.len != next.id.counter {
            return false;
        }
        match (&mut self.op, &next.op) {
            (
                LocalOp::Insert {
                    origin_right, text, ..
                },
                LocalOp::Insert {
                    origin_left: l2,
                    origin_right: r2,
                    text: t2,
                },
            ) if *l2 == Some(Dot::new(next.id.replica, next.id.counter - 1))
                && origin_right == r2
                && text.end == t2.start =>
            {
                text.end = t2.end;
            }
            (LocalOp::Delete { target }, LocalOp::Delete { target: t2 })
                if t2.replica == target.replica && target.counter + self.len == t2.counter => {}
            _ => return false,
        }
        self.len += next.len;
        true
    }

    fn as_ref<'a>(&self, text: &'a str) -> RunRef<'a> {
        let op = match &self.op {
            LocalOp::Insert {
                origin_left,
                origin_right,
                text: range,
            } => OpRef::Insert {
                origin_left: *origin_left,
                origin_right: *origin_right,
                text: Some(text.get(range.clone()).unwrap_or_default()),
            },
            LocalOp::Delete { target } => OpRef::Delete {
                target: *target,
                reversed: false,
            },
        };
        RunRef {
            id: self.id,
            len: self.len,
            op,
        }
    }
}

/// Appends `run` to `runs`, extending the last run if `run` continues it and
/// that run is at index `from` or later (runs before `from` belong to another
/// change).
pub(crate) fn push(runs: &mut Vec<LocalRun>, from: usize, run: LocalRun) {
    if runs.len() > from {
        if let Some(last) = runs.last_mut() {
            if last.extend(&run) {
                return;
            }
        }
    }
    runs.push(run);
}

/// Writes local runs as a `TextDelta` field of an update, reusing its
/// buffers from one transaction to the next.
#[derive(Debug, Default)]
pub(crate) struct TextWriter {
    enc: Encoder,
    blob: Vec<u8>,
}

/// Largest buffer a writer keeps between transactions.
const KEEP_MAX: usize = 64 << 10;

impl TextWriter {
    /// Appends to `out` what serializing the `TextDelta` of `runs` (inserted
    /// text taken from `text`) appends: the blob's length, then the blob.
    pub(crate) fn write(&mut self, runs: &[LocalRun], text: &str, out: &mut Vec<u8>) {
        self.enc.reset();
        for run in runs {
            self.enc.push(run.as_ref(text));
        }
        self.enc
            .finish_prefixed(&[runs.len() as u64], out, &mut self.blob);
        self.trim();
    }

    /// Drops buffers one large transaction grew.
    fn trim(&mut self) {
        if self.blob.capacity() > KEEP_MAX {
            self.blob = Vec::new();
        }
        if self.enc.retained_bytes() > KEEP_MAX {
            self.enc = Encoder::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{codec, ReplicaId, Text, TextDelta};

    /// Local runs of a sequence of edits encode to the bytes of the
    /// `TextDelta` the same edits return, merged.
    #[test]
    fn local_runs_encode_as_the_merged_delta() {
        let r = ReplicaId::new(7);
        let mut a = Text::new();
        let mut b = Text::new();
        let mut buf = String::new();
        let mut runs = Vec::new();
        let mut delta = TextDelta::new();
        // Typing, a jump, a paste with emoji, backspaces, forward deletes.
        let edits: &[(bool, usize, &str, usize)] = &[
            (true, 0, "hello", 0),
            (true, 5, " world", 0),
            (true, 0, "¡", 0),
            (true, 3, "🦀 crab 蟹", 0),
            (false, 2, "", 3),
            (false, 1, "", 1),
            (false, 0, "", 1),
            (true, 4, "x", 0),
            (true, 5, "y", 0),
        ];
        for &(ins, index, s, n) in edits {
            if ins {
                delta.merge(&a.insert(r, index, s));
                let start = buf.len();
                buf.push_str(s);
                b.insert_local(r, index, &buf[start..], start, &mut runs, 0);
            } else {
                delta.merge(&a.delete(r, index, n));
                b.delete_local(r, index, n, &mut runs, 0);
            }
            assert_eq!(a.to_string(), b.to_string());
        }
        assert_eq!(runs.len(), delta.runs());
        let mut w = TextWriter::default();
        let mut out = Vec::new();
        w.write(&runs, &buf, &mut out);
        let mut expected = Vec::new();
        expected = postcard::to_extend(&delta, expected).unwrap();
        assert_eq!(out, expected);
        // And again with the writer's buffers reused.
        out.clear();
        w.write(&runs, &buf, &mut out);
        assert_eq!(out, expected);
        let back: TextDelta = codec::decode(&codec::encode(&delta)).unwrap();
        let mut c = Text::new();
        crate::Crdt::apply(&mut c, &back);
        assert_eq!(c.to_string(), a.to_string());
    }

    /// Runs before `from` are never extended.
    #[test]
    fn push_respects_the_change_boundary() {
        let r = ReplicaId::new(1);
        let mut runs = Vec::new();
        push(
            &mut runs,
            0,
            LocalRun::insert(Dot::new(r, 1), 1, None, None, 0..1),
        );
        let next = LocalRun::insert(Dot::new(r, 2), 1, Some(Dot::new(r, 1)), None, 1..2);
        push(&mut runs, 1, next.clone());
        assert_eq!(runs.len(), 2);
        runs.pop();
        push(&mut runs, 0, next);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].len, 2);
    }
}
