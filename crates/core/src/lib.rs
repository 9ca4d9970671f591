//! # weft-core
//!
//! The conflict-free replicated data types of weft, with the causality
//! primitives they stand on and a compact, versioned binary encoding.
//! No I/O, no async: storage and networking live in other crates.
//!
//! Every type implements [`Crdt`]: local mutators apply at once and return a
//! delta; `apply` merges deltas idempotently in any order; `delta_since`
//! computes exactly what a peer at a given [`VersionVector`] is missing.
//!
//! | type | semantics |
//! |---|---|
//! | [`GCounter`] | grow-only sum; overflow is an error |
//! | [`PnCounter`] | increments minus decrements; overflow is an error |
//! | [`OrSet`] | add-wins observed-remove set, no per-element tombstones |
//! | [`LwwRegister`] | last writer wins by (hybrid logical clock, replica) |
//! | [`MvRegister`] | keeps concurrent writes side by side until one supersedes them |
//! | [`LwwMap`] | keys merge independently, each last-writer-wins |
//! | [`Text`] | collaborative plain text (Fugue: concurrent runs never interleave) |
//! | [`List`] | collaborative list of values (the text's ordering: concurrent runs never interleave) |
//!
//! ```
//! use weft_core::{codec, Crdt, OrSet, ReplicaId};
//! let (ra, rb) = (ReplicaId::new(1), ReplicaId::new(2));
//! let mut a: OrSet<String> = OrSet::new();
//! let mut b: OrSet<String> = OrSet::new();
//! // Both replicas edit offline...
//! a.add(ra, "milk".to_string());
//! b.add(rb, "eggs".to_string());
//! // ...then exchange what the other is missing, over the wire.
//! let to_b = codec::encode(&a.delta_since(&b.version()));
//! let to_a = codec::encode(&b.delta_since(&a.version()));
//! b.apply(&codec::decode(&to_b).unwrap());
//! a.apply(&codec::decode(&to_a).unwrap());
//! assert_eq!(a, b);
//! assert_eq!(a.len(), 2);
//! ```

pub mod codec;
mod crdt;
pub mod doc;
mod dot;
mod dot_set;
mod error;
mod g_counter;
mod hlc;
mod list;
mod lww_map;
mod lww_register;
mod mv_register;
mod or_set;
mod pn_counter;
mod replica;
mod text;
mod version_vector;

pub use crdt::Crdt;
pub use doc::{Doc, Update};
pub use dot::Dot;
pub use dot_set::DotSet;
pub use error::{DecodeError, DocError, OverflowError};
pub use g_counter::GCounter;
pub use hlc::{wall_clock_ms, ClockSkew, Hlc, HlcTimestamp};
pub use list::{List, ListDelta, ListOp};
pub use lww_map::LwwMap;
pub use lww_register::LwwRegister;
pub use mv_register::MvRegister;
pub use or_set::{OrSet, OrSetDelta};
pub use pn_counter::PnCounter;
pub use replica::{RandomUnavailable, ReplicaId};
pub use text::{Bias, LineCol, StablePosition, Text, TextDelta, TextOp, TextUnit};
pub use version_vector::{Causality, VersionVector};
