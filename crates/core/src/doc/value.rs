//! The values a document holds, and their deltas, as one closed enum.
//!
//! Invariant: a [`Value`] and a [`ValueDelta`] of the same variant always
//! belong together; the document never applies a delta to a value of
//! another kind (updates are checked before anything is applied).

use super::path::{Kind, Path, MAX_DEPTH, MAX_KEY_BYTES};
use crate::{Crdt, LwwMap, LwwRegister, MvRegister, OrSet, OrSetDelta, PnCounter, Text, TextDelta};
use crate::{DecodeError, DocError};
use crate::{List, ListDelta, ListOp, TextOp, VersionVector};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Encodes an application value for a register or set at `path`.
pub(crate) fn encode_scalar<T: Serialize + ?Sized>(
    path: &Path,
    value: &T,
) -> Result<Bytes, DocError> {
    postcard::to_allocvec(value).map_err(|e| DocError::Serialize {
        path: path.to_string(),
        reason: e.to_string(),
    })
}

/// Decodes an application value stored at `path` as `T`. The whole encoding
/// must be consumed: a prefix that happens to parse (a `String` read as
/// `u64`, a `u16` read as `u8`) is another type, not a value of `T`.
pub(crate) fn decode_scalar<T: DeserializeOwned>(path: &Path, bytes: &[u8]) -> Result<T, DocError> {
    let err = |reason: String| DocError::ValueType {
        path: path.to_string(),
        reason,
    };
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|e| err(e.to_string()))?;
    if !rest.is_empty() {
        return Err(err(format!(
            "{} bytes left over after the value",
            rest.len()
        )));
    }
    Ok(value)
}

/// Scalars inside registers and sets are stored as their postcard bytes, so
/// one document can hold any serde type; typed handles decode them.
pub(crate) type Bytes = Vec<u8>;

/// An entry of a map's key registry: the kind visible under a key (`None`
/// once removed) and the key's generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Slot {
    pub(crate) kind: Option<Kind>,
    pub(crate) generation: u32,
}

/// One CRDT instance inside a document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum Value {
    Counter(PnCounter),
    Register(LwwRegister<Bytes>),
    Multi(MvRegister<Bytes>),
    Set(OrSet<Bytes>),
    Text(Box<Text>),
    /// The key registry of a map: which kind is visible under each key.
    Keys(LwwMap<String, Slot>),
    List(Box<List<Elem>>),
}

/// One element of a document list: a scalar, or a nested value living at
/// the list's path plus `key` (a key no other element uses).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Elem {
    Scalar(Bytes),
    Nested { kind: Kind, key: String },
}

impl Elem {
    /// Checks a received element of the list at `list`: a nested value
    /// must fit the path limits (its path is `list` plus its key), so a
    /// peer cannot plant a value no local edit could reach or make. Keys
    /// are not tied to the inserting replica: undo restores a deleted
    /// element by inserting its value, key and all, again.
    pub(crate) fn validate(&self, list: &Path) -> Result<(), DecodeError> {
        let Elem::Nested { key, .. } = self else {
            return Ok(());
        };
        if list.steps().len() >= MAX_DEPTH {
            return Err(DecodeError::Invalid(
                "nested list value deeper than the limit",
            ));
        }
        if key.len() > MAX_KEY_BYTES {
            return Err(DecodeError::Invalid(
                "nested list value key longer than the limit",
            ));
        }
        Ok(())
    }
}

/// A change to one [`Value`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) enum ValueDelta {
    Counter(PnCounter),
    Register(LwwRegister<Bytes>),
    Multi(MvRegister<Bytes>),
    Set(OrSetDelta<Bytes>),
    Text(TextDelta),
    Keys(LwwMap<String, Slot>),
    List(ListDelta<Elem>),
}

/// What an applied delta changed, for observers.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Effect {
    None,
    Counter {
        old: i128,
        new: i128,
    },
    Register,
    Set {
        added: Vec<Bytes>,
        removed: Vec<Bytes>,
    },
    Text(Vec<TextOp>),
    Keys(Vec<String>),
    List(Vec<ListOp<Elem>>),
}

impl Value {
    /// An empty value of the kind a path ends in (`Map` means its keys).
    pub(crate) fn empty(kind: Kind) -> Value {
        match kind {
            Kind::Counter => Value::Counter(PnCounter::new()),
            Kind::Register => Value::Register(LwwRegister::new()),
            Kind::MultiValue => Value::Multi(MvRegister::new()),
            Kind::Set => Value::Set(OrSet::new()),
            Kind::Text => Value::Text(Box::default()),
            Kind::Map => Value::Keys(LwwMap::new()),
            Kind::List => Value::List(Box::default()),
        }
    }

    /// The kind of path this value may live at.
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Value::Counter(_) => Kind::Counter,
            Value::Register(_) => Kind::Register,
            Value::Multi(_) => Kind::MultiValue,
            Value::Set(_) => Kind::Set,
            Value::Text(_) => Kind::Text,
            Value::Keys(_) => Kind::Map,
            Value::List(_) => Kind::List,
        }
    }

    pub(crate) fn version(&self) -> VersionVector {
        match self {
            Value::Counter(v) => v.version(),
            Value::Register(v) => v.version(),
            Value::Multi(v) => v.version(),
            Value::Set(v) => v.version(),
            Value::Text(v) => v.version(),
            Value::Keys(v) => v.version(),
            Value::List(v) => v.version(),
        }
    }

    /// `replica`'s counter in [`Value::version`], without building it.
    pub(crate) fn version_of(&self, replica: crate::ReplicaId) -> u64 {
        match self {
            Value::Counter(v) => v.version_of(replica),
            Value::Register(v) => v.version_of(replica),
            Value::Multi(v) => v.version_of(replica),
            Value::Set(v) => v.version_of(replica),
            Value::Text(v) => v.version_of(replica),
            Value::Keys(v) => v.version_of(replica),
            Value::List(v) => v.version_of(replica),
        }
    }

    /// What a peer whose version of this value is `since` lacks, or `None`
    /// if it lacks nothing.
    pub(crate) fn delta_since(&self, since: &VersionVector) -> Option<ValueDelta> {
        if let Value::Set(v) = self {
            // Removals do not advance a set's version: always ask the set.
            let d = v.delta_since(since);
            return (!d.is_empty()).then_some(ValueDelta::Set(d));
        }
        if since.dominates(&self.version()) {
            return None;
        }
        match self {
            Value::Set(_) => None,
            Value::Counter(v) => Some(ValueDelta::Counter(v.delta_since(since))),
            Value::Register(v) => Some(ValueDelta::Register(v.delta_since(since))),
            Value::Multi(v) => Some(ValueDelta::Multi(v.delta_since(since))),
            Value::Text(v) => Some(ValueDelta::Text(v.delta_since(since))),
            Value::Keys(v) => Some(ValueDelta::Keys(v.delta_since(since))),
            Value::List(v) => Some(ValueDelta::List(v.delta_since(since))),
        }
    }

    /// Applies a delta of the same kind; returns what changed. A delta of
    /// another kind is ignored (callers check kinds first).
    pub(crate) fn apply(&mut self, delta: &ValueDelta, want_effect: bool) -> Effect {
        match (self, delta) {
            (Value::Counter(v), ValueDelta::Counter(d)) => {
                let old = v.value();
                v.apply(d);
                let new = v.value();
                if old == new {
                    Effect::None
                } else {
                    Effect::Counter { old, new }
                }
            }
            (Value::Register(v), ValueDelta::Register(d)) => {
                let old = v.get().cloned();
                v.apply(d);
                if v.get() == old.as_ref() {
                    Effect::None
                } else {
                    Effect::Register
                }
            }
            (Value::Multi(v), ValueDelta::Multi(d)) => {
                let old = v.clone();
                v.apply(d);
                if old.values().eq(v.values()) {
                    Effect::None
                } else {
                    Effect::Register
                }
            }
            (Value::Set(v), ValueDelta::Set(d)) => {
                if !want_effect {
                    v.apply(d);
                    return Effect::None;
                }
                let before: Vec<Bytes> = v.iter().cloned().collect();
                v.apply(d);
                set_effect(&before, v)
            }
            (Value::Text(v), ValueDelta::Text(d)) => {
                if want_effect {
                    let ops = v.apply_with_events(d);
                    if ops.is_empty() {
                        Effect::None
                    } else {
                        Effect::Text(ops)
                    }
                } else {
                    v.apply(d);
                    Effect::None
                }
            }
            (Value::List(v), ValueDelta::List(d)) => {
                if want_effect {
                    let ops = v.apply_with_events(d);
                    if ops.is_empty() {
                        Effect::None
                    } else {
                        Effect::List(ops)
                    }
                } else {
                    v.apply(d);
                    Effect::None
                }
            }
            (Value::Keys(v), ValueDelta::Keys(d)) => {
                let touched: Vec<String> = d.entry_keys().cloned().collect();
                let before: Vec<Option<Slot>> = touched.iter().map(|k| v.get(k).copied()).collect();
                v.apply(d);
                let changed: Vec<String> = touched
                    .into_iter()
                    .zip(before)
                    .filter(|(k, b)| v.get(k).copied() != *b)
                    .map(|(k, _)| k)
                    .collect();
                if changed.is_empty() {
                    Effect::None
                } else {
                    Effect::Keys(changed)
                }
            }
            _ => Effect::None,
        }
    }
}

impl ValueDelta {
    /// The kind of value this delta applies to.
    pub(crate) fn kind(&self) -> Kind {
        match self {
            ValueDelta::Counter(_) => Kind::Counter,
            ValueDelta::Register(_) => Kind::Register,
            ValueDelta::Multi(_) => Kind::MultiValue,
            ValueDelta::Set(_) => Kind::Set,
            ValueDelta::Text(_) => Kind::Text,
            ValueDelta::Keys(_) => Kind::Map,
            ValueDelta::List(_) => Kind::List,
        }
    }
}

fn set_effect(before: &[Bytes], after: &OrSet<Bytes>) -> Effect {
    let removed: Vec<Bytes> = before
        .iter()
        .filter(|e| !after.contains(e))
        .cloned()
        .collect();
    let added: Vec<Bytes> = after
        .iter()
        .filter(|e| before.binary_search(e).is_err())
        .cloned()
        .collect();
    if added.is_empty() && removed.is_empty() {
        Effect::None
    } else {
        Effect::Set { added, removed }
    }
}
