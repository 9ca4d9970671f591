//! Where a value lives in a document: a path of named, typed steps.
//!
//! Invariant: a [`Path`] names one CRDT instance. Each step is a key, the
//! kind of value under it and the key's generation. Two replicas that
//! concurrently create the same key with *different* kinds create two
//! instances and never mix their contents (the map's key registry decides
//! which one is visible); creating a key again after it was removed starts a
//! new generation, so removed content never comes back.

use crate::DecodeError;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// Longest path a document accepts (nesting depth).
pub const MAX_DEPTH: usize = 32;
/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// The kinds of value a document holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// A [`crate::PnCounter`].
    Counter,
    /// A last-writer-wins register of one serde value.
    Register,
    /// A multi-value register: concurrent writes kept for the user to resolve.
    MultiValue,
    /// An add-wins set of serde values.
    Set,
    /// Collaborative text.
    Text,
    /// A nested map whose keys hold any kind, merged per key.
    Map,
    /// A list of values and nested values ([`crate::List`] semantics).
    List,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Kind::Counter => "counter",
            Kind::Register => "register",
            Kind::MultiValue => "multi-value register",
            Kind::Set => "set",
            Kind::Text => "text",
            Kind::Map => "map",
            Kind::List => "list",
        };
        f.write_str(s)
    }
}

/// One step of a path: a key, the kind of value under it, and how many times
/// the key had been removed before this value was created.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Step {
    /// The key in the parent map (the root is a map too).
    pub key: String,
    /// The kind of value under the key.
    pub kind: Kind,
    /// The key's generation: 0 for its first creation, +1 for each
    /// re-creation after a removal.
    pub generation: u32,
}

/// The address of one value in a document, from the root map down.
///
/// ```
/// use weft_core::doc::{Kind, Path};
/// let p = Path::root().child("meta", Kind::Map).child("title", Kind::Register);
/// assert_eq!(p.to_string(), "meta/title");
/// assert_eq!(p.kind(), Some(Kind::Register));
/// ```
///
/// A path is shared, not copied: cloning one (as every transaction and
/// update does for the values it touches) costs a reference count, never an
/// allocation. On the wire it is the sequence of its steps.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Path(Arc<[Step]>);

/// Ordered by steps; a path compared with a clone of itself (the document's
/// maps are searched with the paths they handed out) answers without
/// reading the steps.
impl Ord for Path {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if Arc::ptr_eq(&self.0, &other.0) {
            return std::cmp::Ordering::Equal;
        }
        self.0.cmp(&other.0)
    }
}

impl PartialOrd for Path {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Default for Path {
    fn default() -> Self {
        Path::root()
    }
}

impl Serialize for Path {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.as_ref().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Path {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let steps: Vec<Step> = crate::codec::charged(d)?;
        Ok(Path(steps.into()))
    }
}

thread_local! {
    /// The root path, shared so that naming it allocates nothing.
    static ROOT: Path = Path(Arc::from(Vec::new()));
}

impl Path {
    /// The root map.
    pub fn root() -> Self {
        ROOT.with(Path::clone)
    }

    /// The path of `key` (holding `kind`, first generation) inside the map
    /// at `self`.
    pub fn child(&self, key: impl Into<String>, kind: Kind) -> Path {
        self.child_gen(key, kind, 0)
    }

    /// The path of `key` (holding `kind` in the given generation) inside the
    /// map at `self`.
    pub fn child_gen(&self, key: impl Into<String>, kind: Kind, generation: u32) -> Path {
        let mut steps = Vec::with_capacity(self.0.len() + 1);
        steps.extend_from_slice(&self.0);
        steps.push(Step {
            key: key.into(),
            kind,
            generation,
        });
        Path(steps.into())
    }

    /// Whether this path is `parent`'s child `key` of `kind` in
    /// `generation` (what [`Path::child_gen`] would build), without building
    /// it.
    pub(crate) fn is_child(&self, parent: &Path, key: &str, kind: Kind, generation: u32) -> bool {
        match self.0.split_last() {
            Some((last, init)) => {
                last.kind == kind
                    && last.generation == generation
                    && last.key == key
                    && init == &parent.0[..]
            }
            None => false,
        }
    }

    /// The steps from the root.
    pub fn steps(&self) -> &[Step] {
        &self.0
    }

    /// The kind of the value at this path (`None` for the root map).
    pub fn kind(&self) -> Option<Kind> {
        self.0.last().map(|s| s.kind)
    }

    /// The map holding this value and the key in it (`None` for the root).
    pub fn parent(&self) -> Option<(Path, &str)> {
        let (last, init) = self.0.split_last()?;
        Some((Path(init.into()), last.key.as_str()))
    }

    /// Whether `self` is `prefix` or lies inside it.
    pub fn starts_with(&self, prefix: &Path) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// Checks the limits and that every step but the last is a map or a
    /// list (whose nested values are keyed by their element's key).
    pub(crate) fn validate(&self) -> Result<(), DecodeError> {
        if self.0.len() > MAX_DEPTH {
            return Err(DecodeError::Invalid("path deeper than the limit"));
        }
        if self.0.iter().any(|s| s.key.len() > MAX_KEY_BYTES) {
            return Err(DecodeError::Invalid("path key longer than the limit"));
        }
        if self
            .0
            .iter()
            .rev()
            .skip(1)
            .any(|s| s.kind != Kind::Map && s.kind != Kind::List)
        {
            return Err(DecodeError::Invalid(
                "path steps through a value that is not a map or a list",
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            f.write_str(&s.key)?;
        }
        Ok(())
    }
}
