//! The wire form of text changes: run-length encoded ops with their ids.
//!
//! A [`TextDelta`] is a list of runs. A run is either consecutive inserted
//! characters of one replica (first op id, the left origin of its first
//! character, the shared right origin, the text) or consecutive deletions
//! (first op id, the lowest target seq, the count, and whether the targets
//! were deleted right to left, as backspace does).
//!
//! An insert run may carry its length instead of its text when the sender
//! has all of its characters deleted ([`Content::Deleted`]); the receiver
//! integrates such characters as tombstones.
//!
//! Encoding: the columnar layout of `wire.rs` (`docs/protocol.md`, "Text").
//! Invariant (checked when decoding): table entries are unique, indices are
//! in range, counters start at 1, runs are non-empty, no id range overflows
//! `u64` and no run exceeds `u32::MAX` characters.

use super::wire::{self, OpRef, RunRef};
use crate::codec::{kind, Encode};
use crate::Dot;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

/// A change to a [`crate::Text`]: what local edits return and
/// [`crate::Crdt::apply`] accepts.
///
/// ```
/// use weft_core::{codec, Crdt, ReplicaId, Text, TextDelta};
/// let mut a = Text::new();
/// let mut d = a.insert(ReplicaId::new(1), 0, "hello");
/// d.merge(&a.delete(ReplicaId::new(1), 0, 1));
/// assert_eq!(d.len(), 6); // five inserted and one deleted character
/// let back: TextDelta = codec::decode(&codec::encode(&d)).unwrap();
/// let mut b = Text::new();
/// b.apply(&back);
/// assert_eq!(b.to_string(), "ello");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextDelta {
    /// Inline for one run (what a keystroke returns).
    pub(super) runs: SmallVec<[Run; 1]>,
}

/// One run of consecutive ops of one replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Run {
    /// Id of the first op.
    pub(super) id: Dot,
    pub(super) op: RunOp,
}

/// What a [`Run`] does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum RunOp {
    Insert {
        origin_left: Option<Dot>,
        origin_right: Option<Dot>,
        content: Content,
    },
    Delete {
        /// Replica and lowest seq of the deleted items.
        target: Dot,
        len: u64,
        reversed: bool,
    },
}

/// The characters of an insert run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Content {
    /// The inserted text.
    Text(String),
    /// This many characters whose text is not carried because the sender
    /// has them deleted (Yjs' `ContentDeleted`): they integrate as
    /// tombstones. Only sent where every receiver with a consistent version
    /// also receives (or has) an op deleting them; see `docs/protocol.md`.
    Deleted(u64),
}

impl Run {
    /// Number of ops (characters).
    pub(super) fn len(&self) -> u64 {
        match &self.op {
            RunOp::Insert {
                content: Content::Text(s),
                ..
            } => s.chars().count() as u64,
            RunOp::Insert {
                content: Content::Deleted(n),
                ..
            } => *n,
            RunOp::Delete { len, .. } => *len,
        }
    }

    /// This run, borrowed.
    pub(super) fn as_ref(&self) -> RunRef<'_> {
        let op = match &self.op {
            RunOp::Insert {
                origin_left,
                origin_right,
                content,
            } => OpRef::Insert {
                origin_left: *origin_left,
                origin_right: *origin_right,
                text: match content {
                    Content::Text(s) => Some(s.as_str()),
                    Content::Deleted(_) => None,
                },
            },
            RunOp::Delete {
                target, reversed, ..
            } => OpRef::Delete {
                target: *target,
                reversed: *reversed,
            },
        };
        RunRef {
            id: self.id,
            len: self.len(),
            op,
        }
    }

    /// Appends `next` if it continues this run; returns whether it did.
    fn extend(&mut self, next: &Run) -> bool {
        let len = self.len();
        if next.id.replica != self.id.replica || self.id.counter + len != next.id.counter {
            return false;
        }
        match (&mut self.op, &next.op) {
            (
                RunOp::Insert {
                    origin_right,
                    content,
                    ..
                },
                RunOp::Insert {
                    origin_left: l2,
                    origin_right: r2,
                    content: c2,
                },
            ) if *l2 == Some(Dot::new(next.id.replica, next.id.counter - 1))
                && origin_right == r2 =>
            {
                match (content, c2) {
                    (Content::Text(a), Content::Text(b)) => a.push_str(b),
                    (Content::Deleted(a), Content::Deleted(b)) if a.checked_add(*b).is_some() => {
                        *a += b
                    }
                    _ => return false,
                }
                true
            }
            (
                RunOp::Delete {
                    target,
                    len,
                    reversed: false,
                },
                RunOp::Delete {
                    target: t2,
                    len: l2,
                    reversed: false,
                },
            ) if t2.replica == target.replica && target.counter + *len == t2.counter => {
                *len += l2;
                true
            }
            _ => false,
        }
    }
}

impl<'a> RunRef<'a> {
    /// An owned copy.
    pub(super) fn to_run(self) -> Run {
        let op = match self.op {
            OpRef::Insert {
                origin_left,
                origin_right,
                text,
            } => RunOp::Insert {
                origin_left,
                origin_right,
                content: match text {
                    Some(s) => Content::Text(s.to_string()),
                    None => Content::Deleted(self.len),
                },
            },
            OpRef::Delete { target, reversed } => RunOp::Delete {
                target,
                len: self.len,
                reversed,
            },
        };
        Run { id: self.id, op }
    }
}

impl TextDelta {
    /// One insert run with the given id and origins (tests build runs a
    /// peer could send but no local edit makes).
    #[cfg(test)]
    pub(crate) fn insert_run(
        id: Dot,
        origin_left: Option<Dot>,
        origin_right: Option<Dot>,
        text: &str,
    ) -> TextDelta {
        TextDelta {
            runs: smallvec::smallvec![Run {
                id,
                op: RunOp::Insert {
                    origin_left,
                    origin_right,
                    content: Content::Text(text.to_string()),
                },
            }],
        }
    }

    /// The empty delta.
    ///
    /// ```
    /// assert!(weft_core::TextDelta::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the delta carries no op.
    ///
    /// ```
    /// use weft_core::{ReplicaId, Text};
    /// let mut t = Text::new();
    /// assert!(t.insert(ReplicaId::new(1), 0, "").is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    /// Number of ops (inserted plus deleted characters).
    ///
    /// ```
    /// use weft_core::{ReplicaId, Text};
    /// let mut t = Text::new();
    /// assert_eq!(t.insert(ReplicaId::new(1), 0, "héllo").len(), 5);
    /// ```
    pub fn len(&self) -> u64 {
        self.runs.iter().map(Run::len).sum()
    }

    /// Number of runs (the run-length encoded size).
    ///
    /// ```
    /// use weft_core::{ReplicaId, Text};
    /// let r = ReplicaId::new(1);
    /// let mut t = Text::new();
    /// let mut d = t.insert(r, 0, "a");
    /// d.merge(&t.insert(r, 1, "b"));
    /// assert_eq!(d.runs(), 1, "typing forms one run");
    /// ```
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Appends the ops of `other` (applying the result equals applying
    /// `self` then `other`); adjacent runs are coalesced.
    ///
    /// ```
    /// use weft_core::{Crdt, ReplicaId, Text};
    /// let r = ReplicaId::new(1);
    /// let mut t = Text::new();
    /// let mut d = t.insert(r, 0, "ab");
    /// d.merge(&t.insert(r, 2, "c"));
    /// let mut u = Text::new();
    /// u.apply(&d);
    /// assert_eq!(u, t);
    /// ```
    pub fn merge(&mut self, other: &TextDelta) {
        for run in &other.runs {
            self.push(run.clone());
        }
    }

    pub(super) fn push(&mut self, run: Run) {
        if let Some(last) = self.runs.last_mut() {
            if last.extend(&run) {
                return;
            }
        }
        self.runs.push(run);
    }
}

impl Serialize for TextDelta {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        wire::Encoder::with_reused(|enc, out| {
            for run in &self.runs {
                enc.push(run.as_ref());
            }
            enc.finish_into(&[self.runs.len() as u64], out);
            serializer.serialize_bytes(out)
        })
    }
}

impl<'de> Deserialize<'de> for TextDelta {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_bytes(wire::BlobVisitor(|blob: &[u8]| {
            let mut runs = Vec::new();
            wire::decode(blob, 1, |_, run| {
                crate::codec::charge(crate::codec::element_cost::<Run>())?;
                runs.push(run.to_run());
                Ok(())
            })?;
            Ok(TextDelta { runs: runs.into() })
        }))
    }
}

impl Encode for TextDelta {
    const KIND: u8 = kind::TEXT_DELTA;
    const NAME: &'static str = "TextDelta";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{codec, ReplicaId};

    /// A framed `TextDelta` encoding of `runs` (which may break invariants).
    fn bytes(runs: &[RunRef<'_>]) -> Vec<u8> {
        let mut enc = wire::Encoder::new();
        for &run in runs {
            enc.push(run);
        }
        frame(&enc.finish(&[runs.len() as u64]))
    }

    fn frame(blob: &[u8]) -> Vec<u8> {
        let mut out = codec::MAGIC.to_vec();
        out.push(codec::FORMAT_VERSION);
        out.push(kind::TEXT_DELTA);
        postcard::to_extend(&Bytes(blob), out).unwrap()
    }

    struct Bytes<'a>(&'a [u8]);
    impl Serialize for Bytes<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    fn dot(counter: u64) -> Dot {
        Dot::new(ReplicaId::new(1), counter)
    }

    fn insert(seq: u64, len: u64, text: Option<&str>) -> RunRef<'_> {
        RunRef {
            id: dot(seq),
            len,
            op: OpRef::Insert {
                origin_left: None,
                origin_right: None,
                text,
            },
        }
    }

    fn delete(seq: u64, target: u64, len: u64) -> RunRef<'static> {
        RunRef {
            id: dot(seq),
            len,
            op: OpRef::Delete {
                target: dot(target),
                reversed: false,
            },
        }
    }

    #[test]
    fn layout_matches_the_protocol_example() {
        let mut t = crate::Text::new();
        let d = t.insert(ReplicaId::new(1), 0, "hi");
        let expected = [
            0x57, 0x45, 0x46, 0x54, 0x01, 0x0b, 0x12, 0x00, 0x01, 0x01, 0x01, 0x0a, 0x01, 0x0c,
            0x00, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x68, 0x69,
        ];
        assert_eq!(codec::encode(&d), expected);
    }

    #[test]
    fn deleted_content_round_trips_and_merges() {
        let mut d = TextDelta::new();
        d.push(insert(1, 2, Some("ab")).to_run());
        d.push(insert(3, 4, None).to_run());
        let mut chained = insert(7, 3, None).to_run();
        if let RunOp::Insert { origin_left, .. } = &mut chained.op {
            *origin_left = Some(dot(6));
        }
        d.push(chained);
        assert_eq!(
            d.runs(),
            2,
            "deleted pieces coalesce, text and deleted do not"
        );
        assert_eq!(d.len(), 9);
        let back: TextDelta = codec::decode(&codec::encode(&d)).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn decoding_rejects_malformed_runs() {
        assert!(codec::decode::<TextDelta>(&bytes(&[insert(1, 2, Some("ab"))])).is_ok());
        let cases: Vec<Vec<u8>> = vec![
            bytes(&[insert(0, 2, Some("ab"))]),
            bytes(&[insert(1, 0, Some(""))]),
            bytes(&[insert(1, 0, None)]),
            bytes(&[insert(u64::MAX, 2, Some("ab"))]),
            bytes(&[insert(1, 1 << 40, None)]),
            // Content shorter than the run says.
            bytes(&[insert(1, 3, Some("ab"))]),
            bytes(&[delete(1, 0, 1)]),
            bytes(&[delete(1, 1, 0)]),
            bytes(&[delete(1, 1, 1 << 40)]),
            bytes(&[delete(1, u64::MAX, 2)]),
            // Duplicate replica table entries.
            frame(&[0, 2, 1, 1, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            // Unknown flags.
            frame(&[0x80, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            // A compressed section claiming an absurd size.
            frame(&[1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 0, 0]),
        ];
        for case in cases {
            assert!(codec::decode::<TextDelta>(&case).is_err(), "{case:?}");
        }
        // The empty delta: no replicas, no runs, eight empty columns.
        let empty = frame(&[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(codec::decode::<TextDelta>(&empty), Ok(TextDelta::new()));
        assert_eq!(codec::encode(&TextDelta::new()), empty);
    }
}
