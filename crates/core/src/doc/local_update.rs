//! The update a local transaction returns, written field by field into one
//! buffer.
//!
//! The bytes are the postcard encoding of an `UpdateBody` — a struct is its
//! fields back to back, a sequence its length then its elements, an integer
//! a varint, an enum its variant index then its content — written here
//! without serde for what every keystroke carries (the two versions, the
//! paths, a text's runs, the translation runs). Other changes go through
//! serde. `tests` check the bytes against serde's encoding of the decoded
//! body, so the two cannot drift apart.

use super::path::Path;
use super::value::ValueDelta;
use crate::codec::put_varint as put;
use crate::text::{LocalRun, TextWriter};
use crate::{ReplicaId, VersionVector};
use std::ops::Range;

/// A change a transaction ships for one value.
#[derive(Debug)]
pub(super) enum Outgoing {
    /// A delta built by the value's local operation.
    Delta(ValueDelta),
    /// A text's runs: this range of the transaction's run buffer.
    Text(Range<usize>),
}

/// `ValueDelta::Text`'s variant index (declaration order; checked by a test).
const TEXT_VARIANT: u64 = 4;

/// Appends a version vector (`UpdateBody::from` / `to`).
pub(super) fn version(out: &mut Vec<u8>, v: &VersionVector) {
    put(out, v.len() as u64);
    for (r, n) in v.iter() {
        put(out, r.get());
        put(out, n);
    }
}

/// Appends a path: its steps, each a key, a kind and a generation.
fn path(out: &mut Vec<u8>, p: &Path) {
    put(out, p.steps().len() as u64);
    for s in p.steps() {
        put(out, s.key.len() as u64);
        out.extend_from_slice(s.key.as_bytes());
        put(out, s.kind as u64);
        put(out, u64::from(s.generation));
    }
}

/// Appends `UpdateBody::changes`: each change's path and delta, text runs
/// written by `writer` with their inserted text taken from `text`.
pub(super) fn changes(
    out: &mut Vec<u8>,
    changes: &[(Path, Outgoing)],
    runs: &[LocalRun],
    text: &str,
    writer: &mut TextWriter,
) {
    put(out, changes.len() as u64);
    for (p, change) in changes {
        path(out, p);
        match change {
            Outgoing::Text(range) => {
                put(out, TEXT_VARIANT);
                writer.write(runs.get(range.clone()).unwrap_or_default(), text, out);
            }
            // Serializing into a Vec only fails for a serde impl that
            // reports an error, which no weft type has; such an update
            // would then fail to decode with a typed error, not panic here.
            Outgoing::Delta(d) => {
                *out = postcard::to_extend(d, std::mem::take(out)).unwrap_or_default()
            }
        }
    }
}

/// Appends `UpdateBody::touches` of one local transaction: per value
/// touched, one run saying transaction `counter` of `replica` left the
/// value's counter at `val`.
pub(super) fn local_touches(
    out: &mut Vec<u8>,
    touched: &[(Path, u64)],
    replica: ReplicaId,
    counter: u64,
) {
    put(out, touched.len() as u64);
    for (p, val) in touched {
        path(out, p);
        put(out, replica.get());
        // One `touches::Run { doc: counter, val, count: 1, step: 0 }`.
        put(out, 1);
        for field in [counter, *val, 1, 0] {
            put(out, field);
        }
    }
}

/// An update that changes nothing, from and to `v`.
pub(super) fn empty(out: &mut Vec<u8>, v: &VersionVector) {
    version(out, v);
    version(out, v);
    put(out, 0);
    put(out, 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TextDelta;

    #[test]
    fn the_text_variant_index_is_serdes() {
        let bytes = postcard::to_allocvec(&ValueDelta::Text(TextDelta::new())).unwrap();
        let mut expected = Vec::new();
        put(&mut expected, TEXT_VARIANT);
        assert!(bytes.starts_with(&expected));
    }

    #[test]
    fn versions_and_paths_are_serdes() {
        use crate::doc::Kind;
        let v: VersionVector = [(1u64, 3u64), (300, 1 << 40), (u64::MAX, 1)]
            .iter()
            .map(|&(r, n)| (ReplicaId::new(r), n))
            .collect();
        let mut out = Vec::new();
        version(&mut out, &v);
        assert_eq!(out, postcard::to_allocvec(&v).unwrap());
        let p = Path::root()
            .child("a".repeat(200), Kind::Map)
            .child_gen("ü", Kind::List, 70_000);
        for kind in [Kind::Counter, Kind::Text, Kind::List] {
            let p = p.child("k", kind);
            let mut out = Vec::new();
            path(&mut out, &p);
            assert_eq!(out, postcard::to_allocvec(&p).unwrap());
        }
    }
}
