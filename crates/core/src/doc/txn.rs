//! Transactions: local edits grouped into one update, all or nothing.
//!
//! A transaction records operations and checks each one against the state
//! the transaction has built so far (kinds of keys, text lengths, counter
//! ranges), so every error is reported at the call that causes it. Nothing
//! touches the document until [`Transaction::commit`], which applies every
//! recorded operation (each already known to succeed) and returns the one
//! encoded update to send. Dropping a transaction, or returning an error
//! from [`crate::Doc::transact`], discards it: the document is unchanged.
//!
//! Invariant: the simulated state (`kinds`, `text_len`, `counters`) equals
//! what the document would hold after applying `ops` in order.

use super::events::{Change, Event, Origin, OriginTag};
use super::local_update::{self, Outgoing};
use super::op::{apply_local, apply_local_text, Op};
use super::path::{Kind, Path};
use super::undo_record::{Pre, Record, Role};
use super::update::UpdateBody;
use super::value::{encode_scalar, Slot, Value, ValueDelta};
use super::Doc;
use crate::codec;
use crate::text::{LocalRun, TextWriter};
use crate::{DocError, OverflowError};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

/// A group of local edits that becomes one update.
///
/// ```
/// use weft_core::{Doc, ReplicaId};
/// let mut doc = Doc::new(ReplicaId::new(1));
/// let mut tx = doc.transaction();
/// tx.text("body").unwrap().insert(0, "Hello").unwrap();
/// tx.counter("edits").unwrap().increment(1).unwrap();
/// let update = tx.commit();
/// assert_eq!(doc.text("body").unwrap().to_string(), "Hello");
///
/// // A dropped transaction changes nothing.
/// let mut tx = doc.transaction();
/// tx.text("body").unwrap().insert(5, " world").unwrap();
/// drop(tx);
/// assert_eq!(doc.text("body").unwrap().to_string(), "Hello");
///
/// let mut peer = Doc::new(ReplicaId::new(2));
/// peer.apply(&update).unwrap();
/// assert_eq!(peer.text("body").unwrap().to_string(), "Hello");
/// ```
pub struct Transaction<'d> {
    pub(super) doc: &'d mut Doc,
    /// Kinds of keys set by this transaction (`None` until one is: most
    /// transactions set none, and an absent map costs nothing to drop).
    kinds: Option<BTreeMap<(Path, String), Slot>>,
    /// Counter contributions as of this transaction's increments.
    counters: Option<BTreeMap<Path, (u64, u64)>>,
    /// The origin given to [`crate::Doc::transact_with`].
    tag: Option<OriginTag>,
    /// Whether this is an ordinary edit, an undo or a redo.
    pub(super) role: Role,
    /// For undo and redo: the index of each op that re-inserts deleted
    /// elements, with the ids of the elements it restores.
    pub(super) restores: Option<BTreeMap<usize, Vec<crate::Dot>>>,
}

/// The reusable buffers of a transaction, kept by the document (so typing
/// allocates none of them). Emptied when a transaction ends.
#[derive(Default)]
pub(crate) struct Scratch {
    pub(super) ops: Vec<Op>,
    /// The text of every insert recorded, back to back.
    text: String,
    /// Text lengths as of the edits recorded so far (few entries: a linear
    /// scan beats a map).
    text_len: Vec<(Path, usize)>,
    /// Changes to ship, by value, in the order values were first touched.
    changes: Vec<(Path, Outgoing)>,
    /// The runs of the text changes among `changes`.
    runs: Vec<LocalRun>,
    /// Writes those runs into the update (buffers kept between commits;
    /// boxed so that moving the scratch in and out of the document is
    /// cheap).
    writer: Option<Box<TextWriter>>,
    /// Values touched, with their replica counter after the commit.
    touched: Vec<(Path, u64)>,
}

impl Scratch {
    fn clear(&mut self) {
        self.ops.clear();
        self.text.clear();
        self.text_len.clear();
        self.changes.clear();
        self.runs.clear();
        self.touched.clear();
    }
}

impl fmt::Debug for Scratch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scratch")
            .field("ops", &self.ops.len())
            .finish()
    }
}

impl fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("ops", &self.doc.scratch.ops)
            .finish()
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        self.doc.scratch.clear();
    }
}

/// Paths a document remembers having handed out, so that opening the same
/// value in the next transaction shares the path instead of building it.
const RECENT_PATHS: usize = 8;

impl<'d> Transaction<'d> {
    pub(crate) fn new(doc: &'d mut Doc) -> Self {
        Transaction {
            doc,
            kinds: None,
            counters: None,
            tag: None,
            role: Role::Edit,
            restores: None,
        }
    }

    pub(super) fn with_tag(mut self, tag: Option<OriginTag>) -> Self {
        self.tag = tag;
        self
    }

    /// The origin this transaction's events will carry.
    pub fn origin(&self) -> Option<&OriginTag> {
        self.tag.as_ref()
    }

    /// The document as it was before this transaction.
    pub fn doc(&self) -> &Doc {
        self.doc
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.doc.scratch.ops.is_empty()
    }

    /// `parent`'s child `key` of `kind` in `generation`: a path the document
    /// handed out recently, or a new one it remembers.
    fn child_path(&mut self, parent: &Path, key: &str, kind: Kind, generation: u32) -> Path {
        let recent = &mut self.doc.recent_paths;
        if let Some(p) = recent
            .iter()
            .find(|p| p.is_child(parent, key, kind, generation))
        {
            return p.clone();
        }
        let path = parent.child_gen(key, kind, generation);
        if recent.len() >= RECENT_PATHS {
            recent.remove(0);
        }
        recent.push(path.clone());
        path
    }

    fn slot_now(&self, map: &Path, key: &str) -> Option<Slot> {
        if let Some(kinds) = &self.kinds {
            if let Some(s) = kinds.get(&(map.clone(), key.to_string())) {
                return Some(*s);
            }
        }
        self.doc.slot(map, key)
    }

    fn set_slot(&mut self, map: &Path, key: &str, slot: Slot) {
        self.doc.scratch.ops.push(Op::SetKind {
            map: map.clone(),
            key: key.to_string(),
            slot,
        });
        self.kinds
            .get_or_insert_with(BTreeMap::new)
            .insert((map.clone(), key.to_string()), slot);
    }

    /// Makes `key` in `map` hold `kind` (creating it if absent).
    pub(super) fn ensure(&mut self, map: &Path, key: &str, kind: Kind) -> Result<Path, DocError> {
        if map.steps().len() >= super::path::MAX_DEPTH {
            return Err(DocError::Limit {
                path: map.child(key, kind).to_string(),
                reason: "nesting deeper than the limit",
            });
        }
        if key.len() > super::path::MAX_KEY_BYTES {
            return Err(DocError::Limit {
                path: map.child(key, kind).to_string(),
                reason: "key longer than the limit",
            });
        }
        let generation = match self.slot_now(map, key) {
            Some(Slot {
                kind: Some(found),
                generation,
            }) => {
                if found == kind {
                    return Ok(self.child_path(map, key, kind, generation));
                }
                let path = map.child_gen(key, kind, generation);
                return Err(DocError::TypeMismatch {
                    path: path.to_string(),
                    expected: kind,
                    found,
                });
            }
            // Removed before: a new generation, so old content stays gone.
            Some(Slot {
                kind: None,
                generation,
            }) => generation.checked_add(1).ok_or_else(|| DocError::Limit {
                path: map.child(key, kind).to_string(),
                reason: "key removed and re-created too many times",
            })?,
            None => 0,
        };
        self.set_slot(
            map,
            key,
            Slot {
                kind: Some(kind),
                generation,
            },
        );
        Ok(self.child_path(map, key, kind, generation))
    }

    fn remove_key(&mut self, map: &Path, key: &str) {
        if let Some(Slot {
            kind: Some(_),
            generation,
        }) = self.slot_now(map, key)
        {
            self.set_slot(
                map,
                key,
                Slot {
                    kind: None,
                    generation,
                },
            );
        }
    }

    pub(super) fn text_len(&self, path: &Path) -> usize {
        match self.doc.scratch.text_len.iter().find(|(p, _)| p == path) {
            Some(&(_, n)) => n,
            None => match self.doc.values.get(path) {
                Some(Value::Text(t)) => t.len(),
                Some(Value::List(l)) => l.len(),
                _ => 0,
            },
        }
    }

    pub(super) fn set_text_len(&mut self, path: &Path, len: usize) {
        match self
            .doc
            .scratch
            .text_len
            .iter_mut()
            .find(|(p, _)| p == path)
        {
            Some((_, n)) => *n = len,
            None => self.doc.scratch.text_len.push((path.clone(), len)),
        }
    }

    fn counter_contribution(&self, path: &Path) -> (u64, u64) {
        match self.counters.as_ref().and_then(|c| c.get(path)) {
            Some(&c) => c,
            None => match self.doc.values.get(path) {
                Some(Value::Counter(c)) => c.contribution(self.doc.replica),
                _ => (0, 0),
            },
        }
    }

    /// The root map, for edits.
    pub fn root(&mut self) -> MapMut<'_, 'd> {
        MapMut {
            tx: self,
            path: Path::root(),
        }
    }

    /// The text named `name` at the root (created if absent).
    pub fn text(&mut self, name: &str) -> Result<TextMut<'_, 'd>, DocError> {
        let path = self.ensure(&Path::root(), name, Kind::Text)?;
        Ok(TextMut { tx: self, path })
    }

    /// The counter named `name` at the root (created if absent).
    pub fn counter(&mut self, name: &str) -> Result<CounterMut<'_, 'd>, DocError> {
        let path = self.ensure(&Path::root(), name, Kind::Counter)?;
        Ok(CounterMut { tx: self, path })
    }

    /// The set named `name` at the root, holding `T` (created if absent).
    pub fn set<T: Serialize>(&mut self, name: &str) -> Result<SetMut<'_, 'd, T>, DocError> {
        let path = self.ensure(&Path::root(), name, Kind::Set)?;
        Ok(SetMut {
            tx: self,
            path,
            _t: PhantomData,
        })
    }

    /// The map named `name` at the root (created if absent).
    pub fn map(&mut self, name: &str) -> Result<MapMut<'_, 'd>, DocError> {
        let path = self.ensure(&Path::root(), name, Kind::Map)?;
        Ok(MapMut { tx: self, path })
    }

    /// The list named `name` at the root (created if absent).
    pub fn list(&mut self, name: &str) -> Result<super::ListMut<'_, 'd>, DocError> {
        let path = self.ensure(&Path::root(), name, Kind::List)?;
        Ok(super::ListMut::new(self, path))
    }

    /// Applies every recorded operation and returns the encoded update to
    /// send to other replicas. A transaction that recorded nothing returns an
    /// update that changes nothing.
    pub fn commit(mut self) -> Vec<u8> {
        let doc = &mut *self.doc;
        // Out of the document while ops are applied to it; put back below
        // (and emptied when the transaction drops).
        let mut sc = std::mem::take(&mut doc.scratch);
        let (tag, role) = (self.tag.take(), self.role);
        let mut restores = self.restores.take();
        let replica = doc.replica;
        let mut record = doc
            .undo
            .as_ref()
            .filter(|u| u.records(role, tag.as_ref()))
            .map(|_| Record::default());
        // Only last-writer-wins writes and undo grouping read the clock:
        // plain typing reads none.
        let stamped = record.is_some()
            || sc
                .ops
                .iter()
                .any(|op| matches!(op, Op::SetKind { .. } | Op::Register { .. }));
        let now = if stamped { (doc.clock)() } else { 0 };
        let want_events = !doc.observers.is_empty();
        let mut events: Vec<Event> = Vec::new();
        let text = std::mem::take(&mut sc.text);
        for (i, op) in sc.ops.drain(..).enumerate() {
            // Text edits of a commit that records no undo step ship their
            // runs without building a delta.
            let op = if record.is_none() {
                match apply_local_text(doc, op, &text, want_events, &mut sc.changes, &mut sc.runs) {
                    Ok((path, change)) => {
                        note(&mut sc.touched, &mut events, path, change);
                        continue;
                    }
                    Err(op) => op,
                }
            } else {
                op
            };
            let pre = record.as_ref().map(|_| Pre::of(doc, &op));
            let Some((path, delta, change)) = apply_local(doc, op, &text, now, want_events) else {
                continue;
            };
            if let (Some(rec), Some(pre)) = (record.as_mut(), pre) {
                rec.add(pre, &delta, restores.as_mut().and_then(|r| r.remove(&i)));
            }
            match (sc.changes.last_mut(), delta) {
                (Some((p, Outgoing::Delta(ValueDelta::Text(prev)))), ValueDelta::Text(d))
                    if *p == path =>
                {
                    prev.merge(&d)
                }
                (Some((p, Outgoing::Delta(ValueDelta::List(prev)))), ValueDelta::List(d))
                    if *p == path =>
                {
                    prev.merge(d)
                }
                (_, delta) => sc.changes.push((path.clone(), Outgoing::Delta(delta))),
            }
            note(&mut sc.touched, &mut events, path, change);
        }
        // The update, written once into the buffer that is returned: the
        // bytes `codec::encode(&UpdateBody { .. })` would produce, with
        // nothing cloned to build that body (`local_update.rs`).
        let mut out = codec::header::<UpdateBody>(64 + text.len());
        if sc.changes.is_empty() {
            sc.text = text;
            doc.scratch = sc;
            local_update::empty(&mut out, &doc.version);
            return out;
        }
        local_update::version(&mut out, &doc.version); // from
        let counter = doc.version.increment(replica).counter;
        for (path, val) in sc.touched.iter_mut() {
            *val = doc.values.get(path).map_or(0, |v| v.version_of(replica));
            match doc.touches.get_mut(path) {
                Some(t) => t.record(replica, counter, *val),
                None => doc
                    .touches
                    .entry(path.clone())
                    .or_default()
                    .record(replica, counter, *val),
            }
        }
        local_update::version(&mut out, &doc.version); // to
        let writer = sc.writer.get_or_insert_with(Box::default);
        local_update::changes(&mut out, &sc.changes, &sc.runs, &text, writer);
        local_update::local_touches(&mut out, &sc.touched, replica, counter);
        sc.text = text;
        doc.scratch = sc;
        if !events.is_empty() {
            let tag = tag.or_else(|| role.tag());
            doc.observers.emit(&mut events, &tag, &doc.version);
        }
        if let (Some(undo), Some(rec)) = (doc.undo.as_mut(), record) {
            undo.push(rec, role, now);
        }
        doc.decoded_bytes = doc.decoded_bytes.saturating_add(out.len() as u64);
        out
    }
}

/// Files what one applied operation did: its value among those touched (in
/// the order first touched) and its change for observers.
fn note(
    touched: &mut Vec<(Path, u64)>,
    events: &mut Vec<Event>,
    path: Path,
    change: Option<Change>,
) {
    if let Some(change) = change {
        events.push(Event {
            path: path.clone(),
            change,
            origin: Origin::Local,
            tag: None,
            version: Default::default(),
        });
    }
    if !touched.iter().any(|(p, _)| *p == path) {
        touched.push((path, 0));
    }
}

/// A map being edited inside a transaction (the root is one).
pub struct MapMut<'t, 'd> {
    pub(super) tx: &'t mut Transaction<'d>,
    pub(super) path: Path,
}

impl fmt::Debug for MapMut<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapMut").field("path", &self.path).finish()
    }
}

impl<'d> MapMut<'_, 'd> {
    /// The nested map under `key` (created if absent).
    pub fn map(&mut self, key: &str) -> Result<MapMut<'_, 'd>, DocError> {
        let path = self.tx.ensure(&self.path, key, Kind::Map)?;
        Ok(MapMut { tx: self.tx, path })
    }

    /// The list under `key` (created if absent).
    pub fn list(&mut self, key: &str) -> Result<super::ListMut<'_, 'd>, DocError> {
        let path = self.tx.ensure(&self.path, key, Kind::List)?;
        Ok(super::ListMut::new(self.tx, path))
    }

    /// The text under `key` (created if absent).
    pub fn text(&mut self, key: &str) -> Result<TextMut<'_, 'd>, DocError> {
        let path = self.tx.ensure(&self.path, key, Kind::Text)?;
        Ok(TextMut { tx: self.tx, path })
    }

    /// The counter under `key` (created if absent).
    pub fn counter(&mut self, key: &str) -> Result<CounterMut<'_, 'd>, DocError> {
        let path = self.tx.ensure(&self.path, key, Kind::Counter)?;
        Ok(CounterMut { tx: self.tx, path })
    }

    /// The set under `key`, holding `T` (created if absent).
    pub fn set<T: Serialize>(&mut self, key: &str) -> Result<SetMut<'_, 'd, T>, DocError> {
        let path = self.tx.ensure(&self.path, key, Kind::Set)?;
        Ok(SetMut {
            tx: self.tx,
            path,
            _t: PhantomData,
        })
    }

    /// Writes `value` to the last-writer-wins register under `key`.
    pub fn put<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), DocError> {
        let path = self.tx.ensure(&self.path, key, Kind::Register)?;
        let bytes = encode_scalar(&path, value)?;
        self.tx.doc.scratch.ops.push(Op::Register { path, bytes });
        Ok(())
    }

    /// Writes `value` to the multi-value register under `key`, replacing
    /// every value this replica has seen there.
    pub fn put_multi<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<(), DocError> {
        let path = self.tx.ensure(&self.path, key, Kind::MultiValue)?;
        let bytes = encode_scalar(&path, value)?;
        self.tx.doc.scratch.ops.push(Op::MultiValue { path, bytes });
        Ok(())
    }

    /// Removes `key` (a last-writer-wins removal; no-op if absent).
    pub fn remove(&mut self, key: &str) {
        self.tx.remove_key(&self.path, key);
    }
}

/// A text being edited inside a transaction.
pub struct TextMut<'t, 'd> {
    pub(super) tx: &'t mut Transaction<'d>,
    pub(super) path: Path,
}

impl fmt::Debug for TextMut<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TextMut").field("path", &self.path).finish()
    }
}

impl TextMut<'_, '_> {
    /// Length as of the edits recorded so far in this transaction.
    pub fn len(&self) -> usize {
        self.tx.text_len(&self.path)
    }

    /// Whether the text is empty at this point of the transaction.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Inserts `s` before char `index` (`index <= len()`).
    pub fn insert(&mut self, index: usize, s: &str) -> Result<(), DocError> {
        let len = self.len();
        if index > len {
            return Err(DocError::IndexOutOfRange {
                path: self.path.to_string(),
                index,
                len,
            });
        }
        if s.is_empty() {
            return Ok(());
        }
        self.tx.set_text_len(&self.path, len + s.chars().count());
        let buf = &mut self.tx.doc.scratch.text;
        let start = buf.len();
        buf.push_str(s);
        self.tx.doc.scratch.ops.push(Op::TextInsert {
            path: self.path.clone(),
            index,
            text: start..buf.len(),
        });
        Ok(())
    }

    /// Deletes `n` chars from `index` (`index + n <= len()`).
    pub fn delete(&mut self, index: usize, n: usize) -> Result<(), DocError> {
        let len = self.len();
        let end = index
            .checked_add(n)
            .filter(|&e| e <= len)
            .ok_or(DocError::IndexOutOfRange {
                path: self.path.to_string(),
                index: index.saturating_add(n),
                len,
            })?;
        if n == 0 {
            return Ok(());
        }
        self.tx.set_text_len(&self.path, len - (end - index));
        self.tx.doc.scratch.ops.push(Op::TextDelete {
            path: self.path.clone(),
            index,
            len: n,
        });
        Ok(())
    }
}

/// A counter being edited inside a transaction.
pub struct CounterMut<'t, 'd> {
    pub(super) tx: &'t mut Transaction<'d>,
    pub(super) path: Path,
}

impl fmt::Debug for CounterMut<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CounterMut")
            .field("path", &self.path)
            .finish()
    }
}

impl CounterMut<'_, '_> {
    fn add(&mut self, inc: u64, dec: u64) -> Result<(), DocError> {
        let (i, d) = self.tx.counter_contribution(&self.path);
        let overflow = |_| DocError::Overflow {
            path: self.path.to_string(),
            source: OverflowError,
        };
        let ni = i.checked_add(inc).ok_or(OverflowError).map_err(overflow)?;
        let nd = d.checked_add(dec).ok_or(OverflowError).map_err(overflow)?;
        self.tx
            .counters
            .get_or_insert_with(BTreeMap::new)
            .insert(self.path.clone(), (ni, nd));
        self.tx.doc.scratch.ops.push(Op::Counter {
            path: self.path.clone(),
            inc,
            dec,
        });
        Ok(())
    }

    /// Adds `by`.
    pub fn increment(&mut self, by: u64) -> Result<(), DocError> {
        self.add(by, 0)
    }

    /// Subtracts `by`.
    pub fn decrement(&mut self, by: u64) -> Result<(), DocError> {
        self.add(0, by)
    }
}

/// A set of `T` being edited inside a transaction.
pub struct SetMut<'t, 'd, T> {
    pub(super) tx: &'t mut Transaction<'d>,
    pub(super) path: Path,
    pub(super) _t: PhantomData<fn(T)>,
}

impl<T> fmt::Debug for SetMut<'_, '_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetMut").field("path", &self.path).finish()
    }
}

impl<T: Serialize> SetMut<'_, '_, T> {
    /// Adds `value` (add wins over concurrent removes).
    pub fn add(&mut self, value: &T) -> Result<(), DocError> {
        let bytes = encode_scalar(&self.path, value)?;
        self.tx.doc.scratch.ops.push(Op::SetAdd {
            path: self.path.clone(),
            bytes,
        });
        Ok(())
    }

    /// Removes `value` as seen here.
    pub fn remove(&mut self, value: &T) -> Result<(), DocError> {
        let bytes = encode_scalar(&self.path, value)?;
        self.tx.doc.scratch.ops.push(Op::SetRemove {
            path: self.path.clone(),
            bytes,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::update::UpdateBody;
    use crate::{codec, Doc, ReplicaId};

    /// `commit` writes the update field by field; the bytes must be exactly
    /// what encoding the decoded body gives (same format, nothing lost).
    #[test]
    fn committed_bytes_are_the_canonical_encoding_of_their_body() {
        let mut doc = Doc::new(ReplicaId::new(7)).with_clock(|| 1_000);
        let check = |bytes: Vec<u8>| {
            let body: UpdateBody = codec::decode(&bytes).unwrap();
            assert_eq!(codec::encode(&body), bytes);
        };
        check(doc.transaction().commit()); // nothing recorded
        check(
            doc.transact(|tx| {
                let mut t = tx.text("body")?;
                t.insert(0, "héllo wörld")?;
                t.delete(2, 3)?;
                t.insert(1, "😀")?;
                tx.counter("n")?.increment(3)?;
                tx.map("meta")?.put("title", "x")?;
                tx.set::<u32>("tags")?.add(&5)
            })
            .unwrap(),
        );
        for i in 0..50 {
            check(
                doc.transact(|tx| tx.text("body")?.insert(i, &"ab".repeat(i + 1)))
                    .unwrap(),
            );
        }
        // A large insert, whose content section is compressed.
        check(
            doc.transact(|tx| tx.text("body")?.insert(0, &"lorem ipsum ".repeat(500)))
                .unwrap(),
        );
        let mut peer = Doc::new(ReplicaId::new(8));
        peer.apply(&doc.diff(&crate::VersionVector::new())).unwrap();
        assert_eq!(peer, doc);
    }
}
