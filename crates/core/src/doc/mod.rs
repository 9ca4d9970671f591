//! Documents: named CRDT values synced as one unit.
//!
//! A [`Doc`] holds a tree of values — texts, lists, counters, registers,
//! sets and nested maps — under one replica id and one document version. Local edits
//! go through [`Transaction`]s, each of which becomes one encoded update;
//! [`Doc::diff`] computes what a peer at a given version lacks and
//! [`Doc::apply`] merges updates from peers in any order, any number of
//! times. Observers receive editor-ready [`Event`]s after every change.
//!
//! Versions: the document version counts transactions per replica. Each
//! value keeps its own CRDT version; the document records, per value, how
//! the two relate (`touches.rs`), so `diff` can ask each value for exactly
//! what a peer lacks.
//!
//! Causality: an update carries the version its author had (`from`). It is
//! applied once the receiver has that version, otherwise it waits in a
//! bounded pending buffer and is applied as soon as its dependencies arrive.
//!
//! Invariant: every value in `values` sits at a path whose last step names
//! its kind (map key registries at the map's own path); `version` covers
//! exactly the transactions whose changes have been applied; `touches`
//! records, for each of those transactions, the touched values' versions.

mod events;
#[cfg(feature = "forge")]
pub mod forge;
mod list;
mod local_update;
mod op;
mod path;
mod pending;
mod refs;
mod snapshot;
mod touches;
mod txn;
mod undo;
mod undo_record;
mod update;
mod value;

pub use events::ListItem;
pub use events::{Change, Event, Origin, OriginTag, SubscriptionId};
pub use list::{ListMut, ListRef};
pub use path::{Kind, Path, Step, MAX_DEPTH, MAX_KEY_BYTES};
pub use refs::{MapRef, SetRef, TextRef};
pub use txn::{CounterMut, MapMut, SetMut, TextMut, Transaction};
pub use undo::UndoManager;
pub use update::{Update, MAX_COUNTER};

use crate::codec;
use crate::{DocError, LwwMap, ReplicaId, VersionVector};
use events::Observers;
use snapshot::{PendingBodies, SnapshotBody, SnapshotView};
use std::collections::BTreeMap;
use std::fmt;
use touches::Touches;
use update::UpdateBody;
use value::Value;

/// Limits that keep untrusted input from exhausting memory or corrupting
/// the document.
///
/// ```
/// use weft_core::doc::Limits;
/// use weft_core::{Doc, ReplicaId};
/// let strict = Limits { max_decoded_bytes: 1 << 20, max_update_authors: 4, ..Limits::default() };
/// let doc = Doc::new(ReplicaId::new(1)).with_limits(strict);
/// assert_eq!(doc.limits().max_update_authors, 4);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest encoded update or snapshot accepted, in bytes.
    pub max_input_bytes: usize,
    /// Most bytes the compressed sections of one update or snapshot may
    /// inflate to, in all: a small input never expands past this.
    pub max_decoded_bytes: usize,
    /// Most replicas whose transactions one update may carry (a client's own
    /// edit carries one; a catch-up diff carries every writer's).
    pub max_update_authors: usize,
    /// Most updates kept waiting for missing dependencies.
    pub max_pending_updates: usize,
    /// Most bytes of updates kept waiting.
    pub max_pending_bytes: usize,
    /// Accept updates carrying transactions of this document's own replica
    /// that it does not have. Off by default: only this document makes its
    /// replica's transactions, so such an update is forged (or the replica id
    /// was reused). Turn on only to replay a store the replica wrote itself.
    pub allow_own_replica: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: codec::DEFAULT_MAX_BYTES,
            max_decoded_bytes: codec::DEFAULT_MAX_BYTES,
            max_update_authors: 1 << 16,
            max_pending_updates: 1 << 18,
            max_pending_bytes: 64 << 20,
            allow_own_replica: false,
        }
    }
}

/// What [`Doc::apply`] did with an update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyReport {
    /// Applied now, already known, or waiting for dependencies.
    pub status: ApplyStatus,
    /// Updates applied from the pending buffer because this one filled a gap.
    pub unblocked: usize,
    /// Updates still waiting after this call.
    pub pending: usize,
    /// What the document still lacks for its waiting updates (per replica,
    /// the highest transaction counter needed; empty when nothing waits).
    pub missing: VersionVector,
}

/// The fate of one applied update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyStatus {
    /// Its changes are now part of the document.
    Applied,
    /// The document already had everything in it.
    Duplicate,
    /// It depends on transactions not received yet; it is kept and applied
    /// when they arrive.
    Pending,
}

/// A collaborative document: named values, one replica id, one version.
///
/// ```
/// use weft_core::{Doc, ReplicaId};
/// let mut alice = Doc::new(ReplicaId::new(1));
/// let mut bob = Doc::new(ReplicaId::new(2));
/// let u1 = alice
///     .transact(|tx| {
///         tx.text("body")?.insert(0, "Hello")?;
///         tx.set::<String>("tags")?.add(&"draft".to_string())?;
///         Ok(())
///     })
///     .unwrap();
/// let u2 = bob
///     .transact(|tx| {
///         tx.counter("likes")?.increment(1)?;
///         tx.map("meta")?.put("title", "Greeting")?;
///         Ok(())
///     })
///     .unwrap();
/// alice.apply(&u2).unwrap();
/// bob.apply(&u1).unwrap();
/// bob.apply(&u1).unwrap(); // duplicates are harmless
/// assert_eq!(alice, bob, "same updates, same document");
/// assert_eq!(bob.text("body").unwrap().to_string(), "Hello");
/// assert_eq!(alice.counter("likes").unwrap(), 1);
/// assert_eq!(alice.map("meta").unwrap().register::<String>("title").unwrap().as_deref(), Some("Greeting"));
/// // A peer that knows nothing catches up from one diff.
/// let mut carol = Doc::new(ReplicaId::new(3));
/// carol.apply(&alice.diff(carol.version())).unwrap();
/// assert_eq!(carol.set::<String>("tags").unwrap().to_vec().unwrap(), vec!["draft".to_string()]);
/// ```
pub struct Doc {
    replica: ReplicaId,
    version: VersionVector,
    values: BTreeMap<Path, Value>,
    touches: BTreeMap<Path, Touches>,
    pending: pending::Pending,
    /// Decoded bytes of the snapshot this document was loaded from plus of
    /// every update applied or made since: an upper bound on its content.
    decoded_bytes: u64,
    limits: Limits,
    clock: fn() -> u64,
    observers: Observers,
    /// The buffers transactions reuse (empty between transactions).
    scratch: txn::Scratch,
    /// Paths recently opened by transactions, shared by the next ones.
    recent_paths: Vec<Path>,
    /// The tag of the apply in progress ([`Doc::apply_with`]).
    applying: Option<OriginTag>,
    /// Undo and redo stacks, when enabled ([`Doc::with_undo`]).
    undo: Option<Box<undo::UndoManager>>,
    /// The unit text events count in ([`Doc::with_text_unit`]).
    text_unit: crate::TextUnit,
}

impl fmt::Debug for Doc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Doc")
            .field("replica", &self.replica)
            .field("version", &self.version)
            .field("values", &self.values.len())
            .field("pending", &self.pending.len())
            .field("observers", &self.observers)
            .finish()
    }
}

/// Two documents are equal when they have applied the same transactions and
/// hold the same values. Replica ids, pending updates and observers are not
/// compared.
impl PartialEq for Doc {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version && self.values == other.values
    }
}

impl Doc {
    /// An empty document edited as `replica`.
    ///
    /// Use a fresh [`ReplicaId::random`] for every process that edits, unless
    /// every update this replica ever made is in the state you start from.
    pub fn new(replica: ReplicaId) -> Self {
        Doc {
            replica,
            version: VersionVector::new(),
            values: BTreeMap::new(),
            touches: BTreeMap::new(),
            pending: pending::Pending::default(),
            decoded_bytes: 0,
            limits: Limits::default(),
            clock: crate::wall_clock_ms,
            observers: Observers::default(),
            scratch: txn::Scratch::default(),
            recent_paths: Vec::new(),
            applying: None,
            undo: None,
            text_unit: crate::TextUnit::Chars,
        }
    }

    /// Counts retains and deletes of text events ([`Change::Text`]) in
    /// `unit` instead of chars — UTF-16 code units for browser and most GUI
    /// editors, bytes for Rust buffers. Positions passed to text edits stay
    /// in chars; convert with [`crate::Text::to_char`] (via
    /// [`TextRef::as_text`]).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use weft_core::doc::Change;
    /// use weft_core::{Doc, ReplicaId, TextOp, TextUnit};
    /// let mut doc = Doc::new(ReplicaId::new(1)).with_text_unit(TextUnit::Utf16);
    /// doc.transact(|tx| tx.text("t")?.insert(0, "😀")).unwrap();
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = seen.clone();
    /// doc.subscribe(move |ev| if let Change::Text(ops) = &ev.change { sink.lock().unwrap().push(ops.clone()) });
    /// doc.transact(|tx| tx.text("t")?.insert(1, "x")).unwrap();
    /// assert_eq!(seen.lock().unwrap()[0], vec![TextOp::Retain(2), TextOp::Insert("x".into())]);
    /// ```
    pub fn with_text_unit(mut self, unit: crate::TextUnit) -> Self {
        self.text_unit = unit;
        self
    }

    /// The unit text events count in.
    pub fn text_unit(&self) -> crate::TextUnit {
        self.text_unit
    }

    /// Replaces the limits on untrusted input.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The limits on untrusted input in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// An upper bound on the document's decoded size: the decoded bytes of
    /// the snapshot it was loaded from plus those of every update applied or
    /// committed since (deleted and duplicate content included). What a
    /// server's per-document size limit is checked against.
    pub fn decoded_bytes(&self) -> u64 {
        self.decoded_bytes
    }

    /// Replaces the wall clock (milliseconds since the epoch) used to stamp
    /// last-writer-wins writes; for tests and simulations.
    pub fn with_clock(mut self, clock: fn() -> u64) -> Self {
        self.clock = clock;
        self
    }

    /// This replica's id.
    pub fn replica(&self) -> ReplicaId {
        self.replica
    }

    /// The transactions this document has applied, per replica.
    pub fn version(&self) -> &VersionVector {
        &self.version
    }

    /// Updates waiting for missing dependencies.
    pub fn pending_updates(&self) -> usize {
        self.pending.len()
    }

    // ----- reading ---------------------------------------------------------

    /// The root map.
    pub fn root(&self) -> MapRef<'_> {
        MapRef::new(self, Path::root())
    }

    /// The text named `name` (empty if absent; an error if `name` holds
    /// another kind).
    pub fn text(&self, name: &str) -> Result<TextRef<'_>, DocError> {
        self.root().text(name)
    }

    /// The counter named `name` (0 if absent).
    pub fn counter(&self, name: &str) -> Result<i128, DocError> {
        self.root().counter(name)
    }

    /// The set named `name`, with elements of type `T`.
    pub fn set<T: serde::de::DeserializeOwned + serde::Serialize>(
        &self,
        name: &str,
    ) -> Result<SetRef<'_, T>, DocError> {
        self.root().set(name)
    }

    /// The map named `name`.
    pub fn map(&self, name: &str) -> Result<MapRef<'_>, DocError> {
        self.root().map(name)
    }

    /// The list named `name` (empty if absent).
    pub fn list(&self, name: &str) -> Result<ListRef<'_>, DocError> {
        self.root().list(name)
    }

    /// The last-writer-wins register named `name`, decoded as `T`.
    pub fn register<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, DocError> {
        self.root().register(name)
    }

    // ----- writing ---------------------------------------------------------

    /// Starts a transaction; nothing changes until it is committed.
    pub fn transaction(&mut self) -> Transaction<'_> {
        Transaction::new(self)
    }

    /// Runs `edit` in a transaction: commits and returns the update if it
    /// returns `Ok`, discards everything if it returns `Err`.
    ///
    /// ```
    /// use weft_core::{Doc, DocError, ReplicaId};
    /// let mut doc = Doc::new(ReplicaId::new(1));
    /// let failed = doc.transact(|tx| {
    ///     tx.text("body")?.insert(0, "draft")?;
    ///     tx.counter("body")?; // "body" is a text: TypeMismatch
    ///     Ok(())
    /// });
    /// assert!(matches!(failed, Err(DocError::TypeMismatch { .. })));
    /// assert_eq!(doc.text("body").unwrap().to_string(), "", "nothing was applied");
    /// ```
    pub fn transact<F>(&mut self, edit: F) -> Result<Vec<u8>, DocError>
    where
        F: FnOnce(&mut Transaction<'_>) -> Result<(), DocError>,
    {
        let mut tx = Transaction::new(self);
        edit(&mut tx)?;
        Ok(tx.commit())
    }

    /// [`Doc::transact`] with an origin: every event the commit causes
    /// carries `origin` in [`Event::tag`], and an undo manager restricted
    /// to some origins ([`UndoManager::track_origin`]) records it only if
    /// it is one of them.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use weft_core::doc::OriginTag;
    /// use weft_core::{Doc, ReplicaId};
    /// let mut doc = Doc::new(ReplicaId::new(1));
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = seen.clone();
    /// let body = weft_core::doc::Path::root().child("t", weft_core::doc::Kind::Text);
    /// doc.subscribe_path(body, move |ev| {
    ///     sink.lock().unwrap().push((ev.tag.clone(), ev.version.get(ReplicaId::new(1))))
    /// });
    /// doc.transact_with("editor", |tx| tx.text("t")?.insert(0, "hi")).unwrap();
    /// doc.transact(|tx| tx.text("t")?.insert(2, "!")).unwrap();
    /// assert_eq!(*seen.lock().unwrap(), vec![(Some(OriginTag::from("editor")), 1), (None, 2)]);
    /// ```
    pub fn transact_with<F>(
        &mut self,
        origin: impl Into<OriginTag>,
        edit: F,
    ) -> Result<Vec<u8>, DocError>
    where
        F: FnOnce(&mut Transaction<'_>) -> Result<(), DocError>,
    {
        let mut tx = Transaction::new(self).with_tag(Some(origin.into()));
        edit(&mut tx)?;
        Ok(tx.commit())
    }

    // ----- sync ------------------------------------------------------------

    fn diff_body(&self, since: &VersionVector) -> UpdateBody {
        let mut touches = Vec::new();
        for (path, t) in &self.touches {
            for (replica, runs) in t.since(since) {
                touches.push((path.clone(), replica, runs));
            }
        }
        // Only values a transaction the peer lacks touched can hold anything
        // it lacks (an update carries no change outside its transactions).
        let mut changes = Vec::new();
        let mut last: Option<&Path> = None;
        for (path, _, _) in &touches {
            if last == Some(path) {
                continue;
            }
            last = Some(path);
            let Some(value) = self.values.get(path) else {
                continue;
            };
            let theirs = match self.touches.get(path) {
                Some(t) => t.translate(since),
                None => VersionVector::new(),
            };
            if let Some(delta) = value.delta_since(&theirs) {
                changes.push((path.clone(), delta));
            }
        }
        UpdateBody {
            from: since.clone(),
            to: self.version.clone(),
            changes,
            touches,
        }
    }

    /// The encoded update a peer at version `since` is missing.
    ///
    /// ```
    /// use weft_core::{Doc, ReplicaId};
    /// let mut a = Doc::new(ReplicaId::new(1));
    /// a.transact(|tx| tx.text("t")?.insert(0, "abc")).unwrap();
    /// let mut b = Doc::new(ReplicaId::new(2));
    /// b.apply(&a.diff(b.version())).unwrap();
    /// assert_eq!(b.text("t").unwrap().to_string(), "abc");
    /// ```
    pub fn diff(&self, since: &VersionVector) -> Vec<u8> {
        codec::encode(&self.diff_body(since))
    }

    /// The encoded update a peer at version `since` is missing, as a checked
    /// [`Update`] (no decode needed to pass it on).
    ///
    /// ```
    /// use weft_core::{Doc, ReplicaId};
    /// let mut a = Doc::new(ReplicaId::new(1));
    /// a.transact(|tx| tx.counter("n")?.increment(2)).unwrap();
    /// let update = a.diff_update(&Default::default());
    /// let mut b = Doc::new(ReplicaId::new(2));
    /// b.apply_update(&update).unwrap();
    /// assert_eq!(b.counter("n").unwrap(), 2);
    /// ```
    pub fn diff_update(&self, since: &VersionVector) -> Update {
        let body = self.diff_body(since);
        let bytes = codec::encode(&body);
        Update::from_parts(bytes, body, 0)
    }

    /// Applies an encoded update from a peer.
    ///
    /// Idempotent and order-independent: duplicates are recognised, and an
    /// update whose dependencies have not arrived is kept (bounded by
    /// [`Limits`]) and applied as soon as they do. Malformed bytes are an
    /// error and change nothing; so is an update whose claims do not match
    /// its content, one carrying transactions of this document's own replica
    /// that it lacks, and one carrying a transaction this document already
    /// holds with a different shape ([`DocError::Conflict`]).
    pub fn apply(&mut self, bytes: &[u8]) -> Result<ApplyReport, DocError> {
        let (body, built) = UpdateBody::decode_checked(bytes, &self.limits)?;
        let body = std::sync::Arc::new(body);
        self.apply_checked(&body, bytes.len() + built, pending::hash_bytes(bytes))
    }

    /// [`Doc::apply`] with an origin: every event the update causes
    /// (including updates it unblocks) carries `origin` in [`Event::tag`].
    ///
    /// ```
    /// use weft_core::{Doc, ReplicaId};
    /// let mut a = Doc::new(ReplicaId::new(1));
    /// let u = a.transact(|tx| tx.counter("n")?.increment(1)).unwrap();
    /// let mut b = Doc::new(ReplicaId::new(2));
    /// let tags = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    /// let sink = tags.clone();
    /// b.subscribe(move |ev| sink.lock().unwrap().push(ev.tag.clone()));
    /// b.apply_with(&u, "relay").unwrap();
    /// assert_eq!(tags.lock().unwrap()[0].as_ref().map(|t| t.as_str()), Some("relay"));
    /// ```
    pub fn apply_with(
        &mut self,
        bytes: &[u8],
        origin: impl Into<OriginTag>,
    ) -> Result<ApplyReport, DocError> {
        self.applying = Some(origin.into());
        let result = self.apply(bytes);
        self.applying = None;
        result
    }

    /// [`Doc::apply_update`] with an origin (see [`Doc::apply_with`]).
    pub fn apply_update_with(
        &mut self,
        update: &Update,
        origin: impl Into<OriginTag>,
    ) -> Result<ApplyReport, DocError> {
        self.applying = Some(origin.into());
        let result = self.apply_update(update);
        self.applying = None;
        result
    }

    /// Applies an update decoded once by [`Update::decode`]: as
    /// [`Doc::apply`] without decoding again.
    pub fn apply_update(&mut self, update: &Update) -> Result<ApplyReport, DocError> {
        self.apply_checked(
            update.shared_body(),
            update.decoded_len(),
            pending::hash_bytes(update.as_bytes()),
        )
    }

    /// What [`Doc::apply_update`] would do with `update` now (applied,
    /// duplicate, or pending), without changing anything. Refusals are not
    /// predicted.
    pub fn readiness(&self, update: &Update) -> ApplyStatus {
        let body = update.body();
        if self.version.dominates(&body.to) {
            ApplyStatus::Duplicate
        } else if self.version.dominates(&body.from) {
            ApplyStatus::Applied
        } else {
            ApplyStatus::Pending
        }
    }

    /// The checks that need the document's state, then the apply.
    fn apply_checked(
        &mut self,
        body: &std::sync::Arc<UpdateBody>,
        decoded: usize,
        hash: u64,
    ) -> Result<ApplyReport, DocError> {
        let mine = body.to.get(self.replica);
        if !self.limits.allow_own_replica && mine > self.version.get(self.replica) {
            return Err(DocError::OwnReplica {
                replica: self.replica,
                counter: mine,
            });
        }
        if let Some((replica, counter)) = self.conflict(body) {
            return Err(DocError::Conflict { replica, counter });
        }
        let applicable = !self.version.dominates(&body.to);
        let report = self.apply_body(body, decoded, hash)?;
        if report.status == ApplyStatus::Applied && applicable {
            self.decoded_bytes = self.decoded_bytes.saturating_add(decoded as u64);
        }
        Ok(report)
    }

    /// A transaction `body` carries that this document already holds with a
    /// different shape: touching other values, or leaving them at other
    /// value counters, than the one applied here. (Identical transactions
    /// are what duplicates are; a conflicting one must not be mistaken for
    /// one and acknowledged.)
    fn conflict(&self, body: &UpdateBody) -> Option<(ReplicaId, u64)> {
        let known = |r: ReplicaId| self.version.get(r);
        // Every known transaction the update names must match our records.
        for (path, replica, runs) in &body.touches {
            let have = known(*replica);
            for run in runs.iter().filter(|run| run.doc <= have) {
                let agrees = self
                    .touches
                    .get(path)
                    .is_some_and(|t| t.agrees(*replica, run, have));
                if !agrees {
                    return Some((*replica, run.doc));
                }
            }
        }
        // And every value we recorded a known transaction of it touching
        // must be named by the update.
        for (replica, range) in body.authors() {
            let lo = *range.start();
            let hi = (*range.end()).min(known(replica));
            if lo > hi {
                continue;
            }
            for (path, t) in &self.touches {
                for (a, b) in t.recorded(replica, lo, hi) {
                    let covered = body
                        .touches
                        .iter()
                        .filter(|(p, r, _)| p == path && *r == replica)
                        .flat_map(|(_, _, runs)| runs.iter())
                        .any(|run| run.doc <= a && run.last_doc() >= b);
                    if !covered {
                        return Some((replica, a));
                    }
                }
            }
        }
        None
    }

    /// Merges everything `other` has applied into `self`, exactly as if
    /// `other` had sent `other.diff(self.version())`. Updates still waiting in
    /// `other`'s pending buffer are not part of its state and stay there.
    /// Cannot fail: the diff is made against this document's own version, so
    /// it is always applicable.
    pub fn merge(&mut self, other: &Doc) -> ApplyReport {
        let body = other.diff_body(&self.version);
        let report = self.integrate_ready(&body);
        ApplyReport {
            pending: self.pending.len(),
            missing: self.missing(),
            ..report
        }
    }

    /// Applies a body known to be applicable (its `from` is included).
    fn integrate_ready(&mut self, body: &UpdateBody) -> ApplyReport {
        let status = if self.version.dominates(&body.to) {
            ApplyStatus::Duplicate
        } else {
            self.integrate(body);
            ApplyStatus::Applied
        };
        let unblocked = if status == ApplyStatus::Applied && self.pending.len() > 0 {
            self.drain_pending(&body.to)
        } else {
            0
        };
        ApplyReport {
            status,
            unblocked,
            pending: self.pending.len(),
            missing: self.missing(),
        }
    }

    /// Waiting updates are accounted at their decoded size (`len`).
    fn apply_body(
        &mut self,
        body: &std::sync::Arc<UpdateBody>,
        len: usize,
        hash: u64,
    ) -> Result<ApplyReport, DocError> {
        let Some(need) = (!self.version.dominates(&body.to))
            .then(|| pending::first_need(&body.from, &self.version))
            .flatten()
        else {
            return Ok(self.integrate_ready(body));
        };
        // Not applicable yet: keep it, once (a resent copy is not kept twice).
        if !self.pending.contains(body, hash) {
            if self.pending.len() >= self.limits.max_pending_updates
                || self.pending.bytes().saturating_add(len) > self.limits.max_pending_bytes
            {
                return Err(DocError::PendingFull {
                    updates: self.pending.len(),
                    bytes: self.pending.bytes(),
                });
            }
            self.pending
                .insert(std::sync::Arc::clone(body), len, hash, need);
        }
        Ok(ApplyReport {
            status: ApplyStatus::Pending,
            unblocked: 0,
            pending: self.pending.len(),
            missing: self.missing(),
        })
    }

    /// Applies waiting updates whose dependencies are now met, starting from
    /// those waiting on the replicas of `advanced`; returns how many. Each
    /// waiting update is looked at only when a replica it waits on advances.
    fn drain_pending(&mut self, advanced: &VersionVector) -> usize {
        let mut applied = 0;
        let mut work: Vec<ReplicaId> = advanced.iter().map(|(r, _)| r).collect();
        let mut due = Vec::new();
        while let Some(r) = work.pop() {
            self.pending.due(r, self.version.get(r), &mut due);
            for &id in &due {
                let need = self
                    .pending
                    .body(id)
                    .and_then(|b| pending::first_need(&b.from, &self.version));
                if let Some(need) = need {
                    self.pending.refile(id, need);
                    continue;
                }
                let Some((body, len)) = self.pending.remove(id) else {
                    continue;
                };
                // A waiting update that turns out to conflict with what
                // arrived meanwhile is dropped, never half-applied.
                if !self.version.dominates(&body.to) && self.conflict(&body).is_none() {
                    self.integrate(&body);
                    self.decoded_bytes = self.decoded_bytes.saturating_add(len as u64);
                    applied += 1;
                    work.extend(body.to.iter().map(|(r, _)| r));
                }
            }
        }
        applied
    }

    /// What waiting updates need that this document lacks.
    fn missing(&self) -> VersionVector {
        self.pending.missing(&self.version)
    }

    fn integrate(&mut self, body: &UpdateBody) {
        let want_events = !self.observers.is_empty();
        let mut events = Vec::new();
        for (path, delta) in &body.changes {
            let unit = self.text_unit;
            let value = self.value_mut(path, delta.kind());
            let effect = match (value, delta) {
                (Value::Text(t), value::ValueDelta::Text(d))
                    if want_events && unit != crate::TextUnit::Chars =>
                {
                    let ops = t.apply_with_events_in(d, unit);
                    if ops.is_empty() {
                        value::Effect::None
                    } else {
                        value::Effect::Text(ops)
                    }
                }
                (value, delta) => value.apply(delta, want_events),
            };
            if let Some(ev) = Event::from_effect(path, effect, Origin::Remote) {
                events.push(ev);
            }
        }
        for (path, replica, runs) in &body.touches {
            self.touches
                .entry(path.clone())
                .or_default()
                .merge(*replica, runs);
        }
        self.version.join(&body.to);
        if want_events {
            self.observers
                .emit(&mut events, &self.applying, &self.version);
        }
    }

    /// The registry entry of `key` in the map at `map`, if it ever existed.
    pub(crate) fn slot(&self, map: &Path, key: &str) -> Option<value::Slot> {
        match self.values.get(map) {
            Some(Value::Keys(keys)) => keys.get_by(key).copied(),
            _ => None,
        }
    }

    /// The kind visible under `key` in the map at `map`, if any.
    pub(crate) fn visible_kind(&self, map: &Path, key: &str) -> Option<Kind> {
        self.slot(map, key).and_then(|s| s.kind)
    }

    pub(crate) fn value_mut(&mut self, path: &Path, kind: Kind) -> &mut Value {
        self.values
            .entry(path.clone())
            .or_insert_with(|| Value::empty(kind))
    }

    pub(crate) fn keys_mut(&mut self, map: &Path) -> &mut LwwMap<String, value::Slot> {
        let value = self.value_mut(map, Kind::Map);
        if !matches!(value, Value::Keys(_)) {
            *value = Value::empty(Kind::Map);
        }
        match value {
            Value::Keys(k) => k,
            _ => unreachable!("just replaced by a key registry"),
        }
    }

    // ----- snapshots -------------------------------------------------------

    /// Encodes the whole document (values, version, pending updates).
    pub fn save(&self) -> Vec<u8> {
        codec::encode_view::<SnapshotBody>(&SnapshotView {
            version: &self.version,
            values: &self.values,
            touches: &self.touches,
            pending: PendingBodies(&self.pending),
        })
    }

    /// Loads a snapshot from [`Doc::save`], to be edited as `replica`.
    ///
    /// ```
    /// use weft_core::{Doc, ReplicaId};
    /// let mut a = Doc::new(ReplicaId::new(1));
    /// a.transact(|tx| tx.counter("n")?.increment(3)).unwrap();
    /// let b = Doc::load(&a.save(), ReplicaId::random()).unwrap();
    /// assert_eq!(b.counter("n").unwrap(), 3);
    /// assert!(Doc::load(b"not a snapshot", ReplicaId::random()).is_err());
    /// ```
    pub fn load(bytes: &[u8], replica: ReplicaId) -> Result<Doc, DocError> {
        Self::load_with_limits(bytes, replica, Limits::default())
    }

    /// [`Doc::load`] with explicit limits.
    pub fn load_with_limits(
        bytes: &[u8],
        replica: ReplicaId,
        limits: Limits,
    ) -> Result<Doc, DocError> {
        let (snap, inflated): (SnapshotBody, usize) =
            codec::decode_bounded(bytes, limits.max_input_bytes, limits.max_decoded_bytes)?;
        snap.validate()?;
        let mut doc = Doc::new(replica).with_limits(limits);
        doc.decoded_bytes = (bytes.len() + inflated) as u64;
        doc.version = snap.version;
        doc.values = snap.values.into_iter().collect();
        doc.touches = snap.touches.into_iter().collect();
        for body in snap.pending {
            let bytes = codec::encode(&body);
            match pending::first_need(&body.from, &doc.version) {
                Some(need) if !doc.version.dominates(&body.to) => {
                    let hash = pending::hash_bytes(&bytes);
                    if !doc.pending.contains(&body, hash) {
                        // Accounted as `apply` accounts it: its decoded size.
                        let built =
                            codec::decode_bounded::<UpdateBody>(&bytes, usize::MAX, usize::MAX)
                                .map_or(0, |(_, built)| built);
                        doc.pending.insert(
                            std::sync::Arc::new(body),
                            bytes.len() + built,
                            hash,
                            need,
                        );
                    }
                }
                // Applicable already (an older writer saved it waiting):
                // apply it now, as `apply` would have.
                _ => {
                    if !doc.version.dominates(&body.to) && doc.conflict(&body).is_none() {
                        doc.integrate(&body);
                        doc.drain_pending(&body.to);
                    }
                }
            }
        }
        Ok(doc)
    }

    // ----- observers -------------------------------------------------------

    /// Calls `callback` after every change to any value (local commits and
    /// applied remote updates).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use weft_core::doc::Change;
    /// use weft_core::{Doc, ReplicaId, TextOp};
    /// let mut a = Doc::new(ReplicaId::new(1));
    /// let mut b = Doc::new(ReplicaId::new(2));
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = seen.clone();
    /// b.subscribe(move |ev| sink.lock().unwrap().push(ev.change.clone()));
    /// let u = a.transact(|tx| tx.text("t")?.insert(0, "hi")).unwrap();
    /// b.apply(&u).unwrap();
    /// assert!(seen.lock().unwrap().contains(&Change::Text(vec![TextOp::Insert("hi".into())])));
    /// ```
    pub fn subscribe<F>(&mut self, callback: F) -> SubscriptionId
    where
        F: FnMut(&Event) + Send + 'static,
    {
        self.observers.add(Path::root(), Box::new(callback))
    }

    /// Calls `callback` after every change at or below `path`.
    pub fn subscribe_path<F>(&mut self, path: Path, callback: F) -> SubscriptionId
    where
        F: FnMut(&Event) + Send + 'static,
    {
        self.observers.add(path, Box::new(callback))
    }

    /// Reads the document and subscribes to changes at or below `path` as
    /// one step: `read` sees the state the first event delivered to
    /// `callback` applies to, so a view built from `read`'s result and then
    /// patched with every event never misses or repeats a change. (Events
    /// are delivered synchronously inside the `&mut self` call that makes
    /// the change, so nothing can change between the read and the
    /// subscription; every event carries the version it leads to, which is
    /// newer than the version read here.)
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use weft_core::doc::{Change, Path};
    /// use weft_core::{Doc, ReplicaId, TextOp};
    /// let mut doc = Doc::new(ReplicaId::new(1));
    /// doc.transact(|tx| tx.text("t")?.insert(0, "ab")).unwrap();
    /// let view = Arc::new(Mutex::new(String::new()));
    /// let sink = view.clone();
    /// let (text, _id) = doc.read_and_subscribe(
    ///     Path::root(),
    ///     |d| d.text("t").unwrap().to_string(),
    ///     move |ev| {
    ///         if let Change::Text(ops) = &ev.change {
    ///             TextOp::apply_all(ops, &mut sink.lock().unwrap());
    ///         }
    ///     },
    /// );
    /// *view.lock().unwrap() = text;
    /// doc.transact(|tx| tx.text("t")?.insert(1, "X")).unwrap();
    /// assert_eq!(*view.lock().unwrap(), doc.text("t").unwrap().to_string());
    /// ```
    pub fn read_and_subscribe<R, F>(
        &mut self,
        path: Path,
        read: impl FnOnce(&Doc) -> R,
        callback: F,
    ) -> (R, SubscriptionId)
    where
        F: FnMut(&Event) + Send + 'static,
    {
        let value = read(self);
        (value, self.observers.add(path, Box::new(callback)))
    }

    /// Cancels a subscription; returns whether it existed.
    pub fn unsubscribe(&mut self, id: SubscriptionId) -> bool {
        self.observers.remove(id)
    }
}

#[cfg(test)]
mod save_tests {
    use super::*;

    /// `save` serializes a borrowed view; its bytes must be exactly the
    /// encoding of the owned snapshot body (the format `load` decodes).
    #[test]
    fn saved_bytes_are_the_canonical_encoding_of_the_snapshot_body() {
        let mut a = Doc::new(ReplicaId::new(1)).with_clock(|| 5);
        a.transact(|tx| {
            tx.text("body")?.insert(0, "héllo")?;
            tx.counter("n")?.increment(2)?;
            tx.map("meta")?.put("k", "v")?;
            tx.list("items")?.push("x")
        })
        .unwrap();
        let mut b = Doc::new(ReplicaId::new(2));
        let first = b.transact(|tx| tx.text("body")?.insert(0, "one")).unwrap();
        let second = b.transact(|tx| tx.text("body")?.insert(3, "two")).unwrap();
        let _ = first;
        // `second` waits in `a` for `first`: the snapshot carries it.
        a.apply(&second).unwrap();
        assert_eq!(a.pending_updates(), 1);
        let owned = SnapshotBody {
            version: a.version.clone(),
            values: a
                .values
                .iter()
                .map(|(p, v)| (p.clone(), v.clone()))
                .collect(),
            touches: a
                .touches
                .iter()
                .map(|(p, t)| (p.clone(), t.clone()))
                .collect(),
            pending: a.pending.bodies().cloned().collect(),
        };
        let saved = a.save();
        assert_eq!(saved, codec::encode(&owned));
        let back = Doc::load(&saved, ReplicaId::new(3)).unwrap();
        assert_eq!(back.save(), saved);
    }
}
