//! Multi-value register: concurrent writes are kept side by side.
//!
//! Invariant: `values` holds exactly the maximal writes (none observed by
//! another), sorted by dot; `version` covers their dots and every dot they
//! superseded.

use crate::codec::{kind, Encode};
use crate::{Crdt, DecodeError, Dot, ReplicaId, VersionVector};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt::Debug;

/// A multi-value register.
///
/// # Semantics
///
/// A write replaces every value its replica has observed. Writes
/// that did not observe each other are all kept, so an application can show the
/// conflict and let the user choose; the user's choice is an ordinary write,
/// which observes all of them and collapses the register to one value.
///
/// ```
/// use weft_core::{Crdt, MvRegister, ReplicaId};
/// let (ra, rb) = (ReplicaId::new(1), ReplicaId::new(2));
/// let mut a = MvRegister::new();
/// let mut b = MvRegister::new();
/// let da = a.set(ra, "blue".to_string());
/// let db = b.set(rb, "green".to_string());
/// a.apply(&db);
/// b.apply(&da);
/// assert_eq!(a.values().collect::<Vec<_>>(), ["blue", "green"]);
/// // The user picks one: a write that saw both collapses the conflict.
/// let pick = a.set(ra, "green".to_string());
/// b.apply(&pick);
/// assert_eq!(b.values().collect::<Vec<_>>(), ["green"]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    try_from = "MvRepr<T>",
    into = "MvRepr<T>",
    bound = "T: Clone + Serialize + DeserializeOwned"
)]
pub struct MvRegister<T: Clone> {
    values: Vec<(Dot, T)>,
    version: VersionVector,
}

#[derive(Serialize, Deserialize)]
struct MvRepr<T> {
    values: Vec<(Dot, T)>,
    version: VersionVector,
}

impl<T: Clone> Default for MvRegister<T> {
    fn default() -> Self {
        MvRegister {
            values: Vec::new(),
            version: VersionVector::new(),
        }
    }
}

impl<T: Clone + Debug + PartialEq + Serialize + DeserializeOwned> MvRegister<T> {
    /// An empty register.
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `value`, replacing every value observed here. Returns the delta.
    pub fn set(&mut self, replica: ReplicaId, value: T) -> Self {
        let dot = self.version.increment(replica);
        self.values = vec![(dot, value)];
        self.clone()
    }

    /// The concurrent values, in dot order (deterministic on every replica).
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.values.iter().map(|(_, v)| v)
    }

    /// Whether more than one concurrent value is present.
    pub fn is_conflicted(&self) -> bool {
        self.values.len() > 1
    }

    /// The single value, if there is exactly one.
    pub fn get(&self) -> Option<&T> {
        match self.values.as_slice() {
            [(_, v)] => Some(v),
            _ => None,
        }
    }
}

impl<T: Clone + Debug + PartialEq + Serialize + DeserializeOwned> Crdt for MvRegister<T> {
    type Delta = MvRegister<T>;

    fn join(&mut self, other: &Self) {
        let mut out: Vec<(Dot, T)> = self
            .values
            .iter()
            .filter(|(d, _)| {
                other.values.iter().any(|(o, _)| o == d) || !other.version.contains(*d)
            })
            .cloned()
            .collect();
        for (d, v) in &other.values {
            if !self.version.contains(*d) && !out.iter().any(|(o, _)| o == d) {
                out.push((*d, v.clone()));
            }
        }
        out.sort_by_key(|(d, _)| *d);
        self.values = out;
        self.version.join(&other.version);
    }

    fn apply(&mut self, delta: &Self) {
        self.join(delta);
    }

    fn version(&self) -> VersionVector {
        self.version.clone()
    }

    fn delta_since(&self, since: &VersionVector) -> Self {
        if since.dominates(&self.version) {
            Self::default()
        } else {
            self.clone()
        }
    }
}

impl<T: Clone> TryFrom<MvRepr<T>> for MvRegister<T> {
    type Error = DecodeError;
    fn try_from(r: MvRepr<T>) -> Result<Self, DecodeError> {
        if r.values.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(DecodeError::Invalid(
                "mv-register dots not strictly ascending",
            ));
        }
        if r.values.iter().any(|(d, _)| !r.version.contains(*d)) {
            return Err(DecodeError::Invalid(
                "mv-register value outside its version",
            ));
        }
        Ok(MvRegister {
            values: r.values,
            version: r.version,
        })
    }
}

impl<T: Clone> From<MvRegister<T>> for MvRepr<T> {
    fn from(m: MvRegister<T>) -> Self {
        MvRepr {
            values: m.values,
            version: m.version,
        }
    }
}

impl<T: Clone + Debug + PartialEq + Serialize + DeserializeOwned> Encode for MvRegister<T> {
    const KIND: u8 = kind::MV_REGISTER;
    const NAME: &'static str = "MvRegister";
}
