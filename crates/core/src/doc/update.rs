//! Updates, what travels between replicas (snapshots, the other encoded
//! form of a document, are in `snapshot.rs`).
//!
//! Invariant: a decoded update has passed [`UpdateBody::validate`]: every
//! path is within the limits and every delta has the kind its path names,
//! so applying it cannot fail.

use super::path::{Kind, Path};
use super::touches::{validate_runs, Run};
use super::value::{Elem, ValueDelta};
use super::Limits;
use crate::codec::{self, kind, Encode};
use crate::{DecodeError, DocError, Dot, ReplicaId, VersionVector};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::RangeInclusive;
use std::sync::Arc;

/// The highest transaction counter a decoded update or snapshot may name
/// (2^53, as in Yjs): far below `u64::MAX`, so no counter arithmetic can
/// overflow and no peer can exhaust a replica's counters.
pub const MAX_COUNTER: u64 = 1 << 53;

/// An update: the changes of one or more transactions.
///
/// Applicable once the receiver's version includes `from`; afterwards the
/// receiver's version includes `to`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct UpdateBody {
    pub(crate) from: VersionVector,
    pub(crate) to: VersionVector,
    #[serde(deserialize_with = "codec::charged")]
    pub(crate) changes: Vec<(Path, ValueDelta)>,
    #[serde(deserialize_with = "charged_touches")]
    pub(crate) touches: Vec<TouchEntry>,
}

/// Which value `count` transactions of a replica touched (see `Run`).
pub(crate) type TouchEntry = (Path, ReplicaId, Vec<Run>);

/// Translation runs, every entry and run charged to the decode's budget.
fn charged_touches<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<TouchEntry>, D::Error> {
    #[derive(Deserialize)]
    struct Entry(
        Path,
        ReplicaId,
        #[serde(deserialize_with = "codec::charged")] Vec<Run>,
    );
    let entries: Vec<Entry> = codec::charged(d)?;
    Ok(entries
        .into_iter()
        .map(|Entry(p, r, runs)| (p, r, runs))
        .collect())
}

/// Whether a value or delta of `found` kind may live at `path`.
pub(super) fn kind_fits(path: &Path, found: Kind) -> bool {
    match path.kind() {
        None => found == Kind::Map,
        Some(k) => k == found,
    }
}

/// Checks the nested elements a list value or delta carries at `path`.
pub(super) fn check_list_values<'a>(
    path: &Path,
    mut values: impl Iterator<Item = (Dot, &'a Elem)>,
) -> Result<(), DecodeError> {
    values.try_for_each(|(_, e)| e.validate(path))
}

/// Checks that every counter of `v` is at most [`MAX_COUNTER`].
pub(super) fn check_counters(v: &VersionVector) -> Result<(), DecodeError> {
    if v.iter().any(|(_, n)| n > MAX_COUNTER) {
        return Err(DecodeError::Invalid("version counter above the maximum"));
    }
    Ok(())
}

impl UpdateBody {
    /// The transactions this update carries: per replica whose `to` passes
    /// its `from`, the counters `from + 1 ..= to`.
    pub(crate) fn authors(&self) -> impl Iterator<Item = (ReplicaId, RangeInclusive<u64>)> + '_ {
        self.to.iter().filter_map(|(r, hi)| {
            let lo = self.from.get(r);
            (hi > lo).then(|| (r, lo + 1..=hi))
        })
    }

    /// The update's claims against its content: `to` is `from` advanced by
    /// exactly the transactions its translation runs name (every carried
    /// transaction is named, nothing outside `from..to` is), counters stay
    /// at most [`MAX_COUNTER`], and every change belongs to a value some
    /// carried transaction touched.
    fn check_claims(&self) -> Result<(), DecodeError> {
        check_counters(&self.from)?;
        check_counters(&self.to)?;
        // Per replica, the doc-counter intervals named by the runs.
        let mut named: BTreeMap<ReplicaId, Vec<(u64, u64)>> = BTreeMap::new();
        for (_, replica, runs) in &self.touches {
            let (lo, hi) = (self.from.get(*replica), self.to.get(*replica));
            for run in runs {
                let last = run.doc + (run.count - 1);
                let last_val = run.val + run.step * (run.count - 1);
                if last_val > MAX_COUNTER {
                    return Err(DecodeError::Invalid("value counter above the maximum"));
                }
                if run.doc <= lo || last > hi {
                    return Err(DecodeError::Invalid(
                        "update names a transaction outside its from..to",
                    ));
                }
                named.entry(*replica).or_default().push((run.doc, last));
            }
        }
        for (replica, range) in self.authors() {
            let Some(intervals) = named.get_mut(&replica) else {
                return Err(DecodeError::Invalid(
                    "update claims transactions it does not carry",
                ));
            };
            intervals.sort_unstable();
            let mut next = *range.start();
            for &(a, b) in intervals.iter() {
                if a > next {
                    break;
                }
                next = next.max(b + 1);
            }
            if next != range.end() + 1 {
                return Err(DecodeError::Invalid(
                    "update claims transactions it does not carry",
                ));
            }
        }
        let touched: std::collections::BTreeSet<&Path> =
            self.touches.iter().map(|(p, _, _)| p).collect();
        if self.changes.iter().any(|(p, _)| !touched.contains(p)) {
            return Err(DecodeError::Invalid(
                "update changes a value no transaction in it touched",
            ));
        }
        Ok(())
    }

    /// The one decode of an update's bytes under `limits`, then
    /// [`UpdateBody::check`]; returns the body and the bytes decoding built
    /// beyond the input. `Update::decode` and `Doc::apply` both go through
    /// it.
    pub(crate) fn decode_checked(
        bytes: &[u8],
        limits: &Limits,
    ) -> Result<(UpdateBody, usize), DocError> {
        let (body, built): (UpdateBody, usize) =
            codec::decode_bounded(bytes, limits.max_input_bytes, limits.max_decoded_bytes)?;
        body.check(limits)?;
        Ok((body, built))
    }

    /// Everything checked of a decoded update, under `limits`: the author
    /// cap first (cheap, before anything is built from a huge update), then
    /// [`UpdateBody::validate`].
    pub(crate) fn check(&self, limits: &Limits) -> Result<(), DocError> {
        if self.authors().nth(limits.max_update_authors).is_some() {
            return Err(DocError::Limit {
                path: String::new(),
                reason: "update carries transactions of too many replicas",
            });
        }
        Ok(self.validate()?)
    }

    pub(crate) fn validate(&self) -> Result<(), DecodeError> {
        for (path, delta) in &self.changes {
            path.validate()?;
            if !kind_fits(path, delta.kind()) {
                return Err(DecodeError::Invalid(
                    "update change does not fit its path's kind",
                ));
            }
            if let ValueDelta::List(d) = delta {
                check_list_values(path, d.values_by_id())?;
            }
        }
        for (path, replica, runs) in &self.touches {
            path.validate()?;
            let limit = self.to.get(*replica);
            validate_runs(runs, limit)?;
            if runs.iter().any(|r| r.doc + (r.count - 1) > limit) {
                return Err(DecodeError::Invalid(
                    "update touches beyond its own version",
                ));
            }
        }
        self.check_claims()
    }
}

impl Encode for UpdateBody {
    const KIND: u8 = kind::DOC_UPDATE;
    const NAME: &'static str = "Update";
}

/// A document update that has been decoded and checked once, carrying its
/// bytes: what stores, frames and outboxes pass on without decoding again.
///
/// Built only by [`Update::decode`] (which checks the update's claims
/// against its content and bounds what decoding produces) or by the
/// document itself ([`Doc::diff_update`](super::Doc::diff_update)). Cloning
/// is cheap (shared).
///
/// ```
/// use weft_core::doc::Limits;
/// use weft_core::{Doc, ReplicaId, Update};
/// let mut a = Doc::new(ReplicaId::new(1));
/// let bytes = a.transact(|tx| tx.text("t")?.insert(0, "hi")).unwrap();
/// let update = Update::decode(bytes, &Limits::default()).unwrap();
/// assert_eq!(update.authors().collect::<Vec<_>>(), vec![(ReplicaId::new(1), 1..=1)]);
/// let mut b = Doc::new(ReplicaId::new(2));
/// b.apply_update(&update).unwrap();
/// assert_eq!(b.text("t").unwrap().to_string(), "hi");
/// assert!(Update::decode(b"junk".to_vec(), &Limits::default()).is_err());
/// ```
#[derive(Clone)]
pub struct Update(Arc<Inner>);

struct Inner {
    bytes: Vec<u8>,
    /// Shared with the pending buffer if the update has to wait.
    body: Arc<UpdateBody>,
    inflated: usize,
}

impl Update {
    /// Decodes and checks `bytes` under `limits` (input size, inflated size,
    /// transaction authors): the one decode an update gets.
    pub fn decode(bytes: Vec<u8>, limits: &Limits) -> Result<Update, DocError> {
        let (body, built) = UpdateBody::decode_checked(&bytes, limits)?;
        Ok(Update::from_parts(bytes, body, built))
    }

    pub(crate) fn from_parts(bytes: Vec<u8>, body: UpdateBody, inflated: usize) -> Update {
        Update(Arc::new(Inner {
            bytes,
            body: Arc::new(body),
            inflated,
        }))
    }

    pub(crate) fn body(&self) -> &UpdateBody {
        &self.0.body
    }

    /// The decoded body, to keep without copying it.
    pub(crate) fn shared_body(&self) -> &Arc<UpdateBody> {
        &self.0.body
    }

    /// The encoded bytes, exactly as received or produced.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0.bytes
    }

    /// The encoded bytes (copied only if the update is shared).
    pub fn into_bytes(self) -> Vec<u8> {
        match Arc::try_unwrap(self.0) {
            Ok(inner) => inner.bytes,
            Err(shared) => shared.bytes.clone(),
        }
    }

    /// Encoded length in bytes.
    pub fn len(&self) -> usize {
        self.0.bytes.len()
    }

    /// Whether the encoding is empty (never true for a decoded update).
    pub fn is_empty(&self) -> bool {
        self.0.bytes.is_empty()
    }

    /// Bytes this update took once decoded: its encoding plus everything
    /// its compressed sections inflated to. The measure memory and
    /// document-size limits account in.
    pub fn decoded_len(&self) -> usize {
        self.0.bytes.len().saturating_add(self.0.inflated)
    }

    /// The `from` and `to` versions at the head of an encoded update,
    /// without decoding (or checking) the rest: for bookkeeping on bytes
    /// that were already checked (an outbox, a load tool). `None` if
    /// `bytes` do not start like an update. Not a validation: use
    /// [`Update::decode`] on anything untrusted that will be applied.
    ///
    /// ```
    /// use weft_core::{Doc, ReplicaId, Update, VersionVector};
    /// let mut doc = Doc::new(ReplicaId::new(7));
    /// let bytes = doc.transact(|tx| tx.counter("n")?.increment(1)).unwrap();
    /// let (from, to) = Update::peek_versions(&bytes).unwrap();
    /// assert_eq!(from, VersionVector::new());
    /// assert_eq!(to.get(ReplicaId::new(7)), 1);
    /// assert!(Update::peek_versions(b"not an update").is_none());
    /// ```
    pub fn peek_versions(bytes: &[u8]) -> Option<(VersionVector, VersionVector)> {
        let (header, body) = bytes.split_first_chunk::<{ codec::HEADER_LEN }>()?;
        if header[..4] != codec::MAGIC
            || header[4] != codec::FORMAT_VERSION
            || header[5] != kind::DOC_UPDATE
        {
            return None;
        }
        let ((from, to), _) =
            postcard::take_from_bytes::<(VersionVector, VersionVector)>(body).ok()?;
        Some((from, to))
    }

    /// The version the author had: applicable once the receiver has it.
    pub fn from(&self) -> &VersionVector {
        &self.0.body.from
    }

    /// The version a receiver has after applying it (joined with its own).
    pub fn to(&self) -> &VersionVector {
        &self.0.body.to
    }

    /// The transactions it carries: per replica, the counters
    /// `from + 1 ..= to` (checked on decode to be exactly what it contains).
    pub fn authors(&self) -> impl Iterator<Item = (ReplicaId, RangeInclusive<u64>)> + '_ {
        self.0.body.authors()
    }

    /// Whether it carries no transaction at all (an empty commit).
    pub fn carries_nothing(&self) -> bool {
        self.authors().next().is_none()
    }
}

impl AsRef<[u8]> for Update {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for Update {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Update {}

impl fmt::Debug for Update {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Update")
            .field("len", &self.len())
            .field("decoded_len", &self.decoded_len())
            .field("from", self.from())
            .field("to", self.to())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::path::{MAX_DEPTH, MAX_KEY_BYTES};
    use crate::Doc;

    /// A doc update whose list's nested element `forge` rewrites.
    fn forged(forge: impl Fn(&mut String)) -> Vec<u8> {
        let mut a = Doc::new(ReplicaId::new(1));
        let bytes = a
            .transact(|tx| tx.list("todo")?.push_map()?.put("title", "x"))
            .unwrap();
        let mut body: UpdateBody = codec::decode(&bytes).unwrap();
        let mut forged_one = false;
        for (_, delta) in &mut body.changes {
            if let ValueDelta::List(d) = delta {
                for e in d.values_mut() {
                    if let Elem::Nested { key, .. } = e {
                        forge(key);
                        forged_one = true;
                    }
                }
            }
        }
        assert!(forged_one, "the update carries a nested element");
        codec::encode(&body)
    }

    /// A nested list element must lie within the path limits; anything
    /// else is refused with a decode error before it touches the document.
    #[test]
    fn nested_list_elements_are_checked() {
        let honest = forged(|_| {});
        Doc::new(ReplicaId::new(2)).apply(&honest).unwrap();
        // A nested element of a list at the depth limit would live below it.
        let mut deep = Path::root();
        for i in 0..MAX_DEPTH - 1 {
            deep = deep.child(i.to_string(), Kind::Map);
        }
        let list = deep.child("l", Kind::List);
        let nested = Elem::Nested {
            kind: Kind::Map,
            key: "k".into(),
        };
        assert!(nested.validate(&list).is_err());
        assert!(Elem::Scalar(Default::default()).validate(&list).is_ok());
        let mut b = Doc::new(ReplicaId::new(2));
        let long = forged(|k| k.push_str(&"z".repeat(MAX_KEY_BYTES)));
        let err = b.apply(&long).unwrap_err();
        assert!(matches!(err, DocError::Decode(_)), "{err:?}");
        assert!(b.version().is_empty(), "nothing applied");
    }
}
