//! The wire form of text changes: run-length encoded ops with their ids.
//!
//! A [`TextDelta`] is a list of runs. A run is either consecutive inserted
//! characters of one replica (first op id, the left origin of its first
//! character, the shared right origin, the text) or consecutive deletions
//! (first op id, the lowest target seq, the count, and whether the targets
//! were deleted right to left, as backspace does).
//!
//! Encoding: replica ids are written once, in a table, and runs refer to
//! them by index; counters are written as small differences (see
//! `DeltaRepr`). Invariant (checked when decoding): table entries are
//! unique, indices are in range, counters start at 1, runs are non-empty,
//! no id range overflows `u64` and no run exceeds `u32::MAX` characters.

use crate::codec::{kind, Encode};
use crate::{DecodeError, Dot, ReplicaId};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

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
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DeltaRepr", into = "DeltaRepr")]
pub struct TextDelta {
    pub(super) runs: Vec<Run>,
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
        content: String,
    },
    Delete {
        /// Replica and lowest seq of the deleted items.
        target: Dot,
        len: u64,
        reversed: bool,
    },
}

impl Run {
    /// Number of ops (characters).
    pub(super) fn len(&self) -> u64 {
        match &self.op {
            RunOp::Insert { content, .. } => content.chars().count() as u64,
            RunOp::Delete { len, .. } => *len,
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
                content.push_str(c2);
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

impl TextDelta {
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

/// Encoded form: a replica table and runs that index into it.
///
/// Counters are written relative to what the reader can predict, as
/// zigzag-encoded wrapping differences (small numbers are one varint byte):
/// a run's first seq relative to the end of the previous run of the same
/// replica in this delta (1 for its first run), and every origin or delete
/// target counter relative to the run's own first seq.
#[derive(Serialize, Deserialize)]
struct DeltaRepr {
    replicas: Vec<ReplicaId>,
    runs: Vec<RunRepr>,
}

/// `(replica index, relative counter)`.
type IdRepr = (u32, u64);

#[derive(Serialize, Deserialize)]
struct RunRepr {
    id: IdRepr,
    op: OpRepr,
}

#[derive(Serialize, Deserialize)]
enum OpRepr {
    Insert {
        left: Option<IdRepr>,
        right: Option<IdRepr>,
        content: String,
    },
    Delete {
        target: IdRepr,
        len: u64,
        reversed: bool,
    },
}

/// Zigzag encoding of a wrapping difference (bijective on `u64`).
fn zigzag(d: u64) -> u64 {
    let d = d as i64;
    ((d << 1) ^ (d >> 63)) as u64
}

fn unzigzag(z: u64) -> u64 {
    ((z >> 1) as i64 ^ -((z & 1) as i64)) as u64
}

impl From<TextDelta> for DeltaRepr {
    fn from(d: TextDelta) -> Self {
        let mut replicas = Vec::new();
        let mut expected: Vec<u64> = Vec::new();
        let mut index: HashMap<ReplicaId, u32> = HashMap::new();
        let mut slot = |replica: ReplicaId, expected: &mut Vec<u64>| -> u32 {
            *index.entry(replica).or_insert_with(|| {
                replicas.push(replica);
                expected.push(1);
                (replicas.len() - 1) as u32
            })
        };
        let mut runs = Vec::with_capacity(d.runs.len());
        for run in d.runs {
            let len = run.len();
            let seq = run.id.counter;
            let r = slot(run.id.replica, &mut expected);
            let id = (r, zigzag(seq.wrapping_sub(expected[r as usize])));
            expected[r as usize] = seq.wrapping_add(len);
            let mut rel = |dot: Dot| -> IdRepr {
                (
                    slot(dot.replica, &mut expected),
                    zigzag(seq.wrapping_sub(dot.counter)),
                )
            };
            let op = match run.op {
                RunOp::Insert {
                    origin_left,
                    origin_right,
                    content,
                } => OpRepr::Insert {
                    left: origin_left.map(&mut rel),
                    right: origin_right.map(&mut rel),
                    content,
                },
                RunOp::Delete {
                    target,
                    len,
                    reversed,
                } => OpRepr::Delete {
                    target: rel(target),
                    len,
                    reversed,
                },
            };
            runs.push(RunRepr { id, op });
        }
        DeltaRepr { replicas, runs }
    }
}

impl TryFrom<DeltaRepr> for TextDelta {
    type Error = DecodeError;
    fn try_from(repr: DeltaRepr) -> Result<Self, DecodeError> {
        let mut sorted = repr.replicas.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted.len() != repr.replicas.len() {
            return Err(DecodeError::Invalid("text delta: duplicate replica"));
        }
        let mut expected = vec![1u64; repr.replicas.len()];
        let replica = |i: u32| -> Result<ReplicaId, DecodeError> {
            repr.replicas
                .get(i as usize)
                .copied()
                .ok_or(DecodeError::Invalid(
                    "text delta: replica index out of range",
                ))
        };
        let nonzero = |dot: Dot| -> Result<Dot, DecodeError> {
            if dot.counter == 0 {
                return Err(DecodeError::Invalid("text delta: counter 0"));
            }
            Ok(dot)
        };
        let span_ok = |start: u64, len: u64| -> Result<(), DecodeError> {
            if len == 0 {
                return Err(DecodeError::Invalid("text delta: empty run"));
            }
            if len > u64::from(u32::MAX) || start.checked_add(len - 1).is_none() {
                return Err(DecodeError::Invalid("text delta: run length overflows"));
            }
            Ok(())
        };
        let mut runs = Vec::with_capacity(repr.runs.len());
        for r in repr.runs {
            let who = replica(r.id.0)?;
            let slot = &mut expected[r.id.0 as usize];
            let seq = slot.wrapping_add(unzigzag(r.id.1));
            let id = nonzero(Dot::new(who, seq))?;
            let abs = |(i, z): IdRepr| -> Result<Dot, DecodeError> {
                nonzero(Dot::new(replica(i)?, seq.wrapping_sub(unzigzag(z))))
            };
            let op = match r.op {
                OpRepr::Insert {
                    left,
                    right,
                    content,
                } => RunOp::Insert {
                    origin_left: left.map(abs).transpose()?,
                    origin_right: right.map(abs).transpose()?,
                    content,
                },
                OpRepr::Delete {
                    target,
                    len,
                    reversed,
                } => {
                    let target = abs(target)?;
                    span_ok(target.counter, len)?;
                    RunOp::Delete {
                        target,
                        len,
                        reversed,
                    }
                }
            };
            let run = Run { id, op };
            let len = run.len();
            span_ok(seq, len)?;
            expected[r.id.0 as usize] = seq.wrapping_add(len);
            runs.push(run);
        }
        Ok(TextDelta { runs })
    }
}

impl Encode for TextDelta {
    const KIND: u8 = kind::TEXT_DELTA;
    const NAME: &'static str = "TextDelta";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    fn bytes(repr: DeltaRepr) -> Vec<u8> {
        let mut out = codec::MAGIC.to_vec();
        out.push(codec::FORMAT_VERSION);
        out.push(kind::TEXT_DELTA);
        postcard::to_extend(&repr, out).unwrap()
    }

    /// The relative id of the first run of replica 0 at absolute `seq`.
    fn first(seq: u64) -> IdRepr {
        (0, zigzag(seq.wrapping_sub(1)))
    }

    fn insert(seq: u64, content: &str) -> RunRepr {
        RunRepr {
            id: first(seq),
            op: OpRepr::Insert {
                left: None,
                right: None,
                content: content.into(),
            },
        }
    }

    #[test]
    fn zigzag_round_trips_and_keeps_small_numbers_small() {
        for d in [0u64, 1, 2, u64::MAX, u64::MAX - 1, 1 << 63, 12345] {
            assert_eq!(unzigzag(zigzag(d)), d);
        }
        assert_eq!(zigzag(1u64.wrapping_neg()), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn decoding_rejects_malformed_runs() {
        let r = vec![ReplicaId::new(1)];
        let ok = bytes(DeltaRepr {
            replicas: r.clone(),
            runs: vec![insert(1, "ab")],
        });
        assert!(codec::decode::<TextDelta>(&ok).is_ok());
        let cases = [
            DeltaRepr {
                replicas: r.clone(),
                runs: vec![insert(0, "ab")],
            },
            DeltaRepr {
                replicas: r.clone(),
                runs: vec![insert(1, "")],
            },
            DeltaRepr {
                replicas: r.clone(),
                runs: vec![insert(u64::MAX, "ab")],
            },
            DeltaRepr {
                replicas: vec![ReplicaId::new(1), ReplicaId::new(1)],
                runs: vec![],
            },
            DeltaRepr {
                replicas: r.clone(),
                runs: vec![RunRepr {
                    id: (1, 0),
                    op: OpRepr::Delete {
                        target: (0, 0),
                        len: 1,
                        reversed: false,
                    },
                }],
            },
            DeltaRepr {
                replicas: r.clone(),
                runs: vec![RunRepr {
                    id: first(1),
                    op: OpRepr::Delete {
                        target: (0, 0),
                        len: 0,
                        reversed: false,
                    },
                }],
            },
            DeltaRepr {
                replicas: r,
                runs: vec![RunRepr {
                    id: first(1),
                    op: OpRepr::Delete {
                        target: (0, 0),
                        len: 1 << 40,
                        reversed: false,
                    },
                }],
            },
        ];
        for case in cases {
            // serde reports `try_from` failures through postcard.
            assert!(codec::decode::<TextDelta>(&bytes(case)).is_err());
        }
    }
}
