//! Undo and redo of a replica's own edits.
//!
//! While a document has an [`UndoManager`], every local commit it tracks
//! records what it did in a `Record`, in terms that survive concurrent
//! edits: the op ids of the characters and list elements it inserted and
//! deleted (not indices), the counter amounts it added, and the previous
//! and new value of every register, map key and set element it changed.
//! Commits within the capture window form one undo step.
//!
//! Undoing a step runs one ordinary transaction (so its update syncs like
//! any edit): it deletes the still-visible elements the step inserted and
//! re-inserts the ones it deleted where their tombstones are now (so they
//! come back between the same neighbours, wherever remote edits moved
//! them), subtracts what it added to counters, and writes back registers,
//! keys and set elements *only where the step's value is still the current
//! one* — a value someone else has since overwritten is left alone. The
//! undo transaction records its own inverse, which becomes the redo step.
//!
//! Remote changes are never recorded, so undo only ever reverts this
//! replica's edits. Restoring a removed map key or a deleted nested list
//! element brings back the same value (same generation or element key), so
//! its nested content returns with it.
//!
//! What a step records, and the operations that revert it, are in
//! `undo_record.rs`; this module keeps the stacks.

use super::events::OriginTag;
use super::txn::Transaction;
use super::undo_record::{Record, Role};
use super::Doc;
use crate::DocError;
use std::collections::BTreeSet;
use std::fmt;

/// One undo (or redo) step.
#[derive(Clone, Debug)]
struct Group {
    record: Record,
    /// When its last change was recorded (the document's clock).
    at: u64,
}

/// Undo and redo of this replica's own edits: the stacks and the rules for
/// what goes on them. Install one with [`Doc::with_undo`].
///
/// - Local commits within `capture_window` ms of the previous one (by the
///   document's clock, see [`Doc::with_clock`]) form one step;
///   [`UndoManager::stop_capturing`] or [`Doc::undo_boundary`] ends a step
///   early.
/// - With [`UndoManager::track_origin`], only commits made with
///   [`Doc::transact_with`] and one of those origins are recorded (per
///   origin undo, e.g. only the editor's typing).
/// - Remote updates are never recorded, and never clear the redo stack; a
///   new tracked local edit does.
/// - The stacks live in memory with this document: [`Doc::save`] does not
///   keep them (a reloaded document starts with empty stacks).
///
/// ```
/// use weft_core::doc::UndoManager;
/// use weft_core::{Doc, ReplicaId};
/// let mut a = Doc::new(ReplicaId::new(1)).with_undo(UndoManager::new());
/// let mut b = Doc::new(ReplicaId::new(2));
/// a.transact(|tx| tx.text("t")?.insert(0, "hello")).unwrap();
/// b.apply(&a.diff(b.version())).unwrap();
/// a.undo_boundary();
/// a.transact(|tx| tx.text("t")?.delete(0, 5)).unwrap();
/// // A remote edit arrives in between.
/// let remote = b.transact(|tx| tx.text("t")?.insert(5, " world")).unwrap();
/// a.apply(&remote).unwrap();
/// assert_eq!(a.text("t").unwrap().to_string(), " world");
/// // Undo brings "hello" back where it was; the update syncs like any edit.
/// let update = a.undo().unwrap().unwrap();
/// assert_eq!(a.text("t").unwrap().to_string(), "hello world");
/// b.apply(&update).unwrap();
/// assert_eq!(b.text("t").unwrap().to_string(), "hello world");
/// a.redo().unwrap();
/// assert_eq!(a.text("t").unwrap().to_string(), " world");
/// ```
#[derive(Clone)]
pub struct UndoManager {
    capture_ms: u64,
    origins: Option<BTreeSet<OriginTag>>,
    max_steps: usize,
    undo: Vec<Group>,
    redo: Vec<Group>,
    /// The next recorded edit starts a new step.
    boundary: bool,
}

impl fmt::Debug for UndoManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UndoManager")
            .field("capture_ms", &self.capture_ms)
            .field("origins", &self.origins)
            .field("undo", &self.undo.len())
            .field("redo", &self.redo.len())
            .finish()
    }
}

impl Default for UndoManager {
    fn default() -> Self {
        Self::new()
    }
}

impl UndoManager {
    /// Default capture window: edits closer than this form one step.
    pub const DEFAULT_CAPTURE_MS: u64 = 500;
    /// Default most steps kept (the oldest are dropped beyond).
    pub const DEFAULT_MAX_STEPS: usize = 1000;

    /// A manager tracking every local commit, 500 ms capture window.
    ///
    /// ```
    /// let undo = weft_core::doc::UndoManager::new();
    /// assert!(!undo.can_undo());
    /// ```
    pub fn new() -> Self {
        UndoManager {
            capture_ms: Self::DEFAULT_CAPTURE_MS,
            origins: None,
            max_steps: Self::DEFAULT_MAX_STEPS,
            undo: Vec::new(),
            redo: Vec::new(),
            boundary: false,
        }
    }

    /// Sets the capture window in milliseconds (0: every commit is a step).
    pub fn capture_window(mut self, ms: u64) -> Self {
        self.capture_ms = ms;
        self
    }

    /// Records only commits made with this origin (call again to add more).
    pub fn track_origin(mut self, origin: impl Into<OriginTag>) -> Self {
        self.origins
            .get_or_insert_with(BTreeSet::new)
            .insert(origin.into());
        self
    }

    /// Keeps at most `n` undo steps (at least 1).
    pub fn max_steps(mut self, n: usize) -> Self {
        self.max_steps = n.max(1);
        self
    }

    /// Whether there is a step to undo.
    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    /// Whether there is a step to redo.
    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    /// Steps on the undo stack.
    pub fn undo_len(&self) -> usize {
        self.undo.len()
    }

    /// Steps on the redo stack.
    pub fn redo_len(&self) -> usize {
        self.redo.len()
    }

    /// Ends the current step: the next edit starts a new one.
    pub fn stop_capturing(&mut self) {
        self.boundary = true;
    }

    /// Forgets both stacks.
    pub fn clear(&mut self) {
        self.undo.clear();
        self.redo.clear();
    }

    /// Whether a commit of this role and origin is recorded.
    pub(super) fn records(&self, role: Role, tag: Option<&OriginTag>) -> bool {
        match role {
            Role::Undo | Role::Redo => true,
            Role::Edit => match &self.origins {
                None => true,
                Some(set) => tag.is_some_and(|t| set.contains(t)),
            },
        }
    }

    /// Stores what a commit did.
    pub(super) fn push(&mut self, mut record: Record, role: Role, now: u64) {
        if record.is_empty() {
            return;
        }
        match role {
            Role::Edit => {
                self.redo.clear();
                match self.undo.last_mut() {
                    Some(g) if !self.boundary && now.saturating_sub(g.at) <= self.capture_ms => {
                        g.record.then(record);
                        g.at = now;
                    }
                    _ => self.undo.push(Group { record, at: now }),
                }
                self.boundary = false;
                if self.undo.len() > self.max_steps {
                    let excess = self.undo.len() - self.max_steps;
                    self.undo.drain(..excess);
                }
            }
            Role::Undo | Role::Redo => {
                if !record.moved.is_empty() {
                    let moved = std::mem::take(&mut record.moved);
                    for g in self.undo.iter_mut().chain(self.redo.iter_mut()) {
                        g.record.remap(&moved);
                    }
                }
                let group = Group { record, at: now };
                if role == Role::Undo {
                    self.redo.push(group);
                } else {
                    self.undo.push(group);
                    self.boundary = true;
                }
            }
        }
    }
}

impl Doc {
    /// Installs an undo manager: from now on, tracked local commits can be
    /// undone with [`Doc::undo`].
    pub fn with_undo(mut self, manager: UndoManager) -> Self {
        self.undo = Some(Box::new(manager));
        self
    }

    /// Installs (or replaces) the undo manager.
    pub fn set_undo_manager(&mut self, manager: Option<UndoManager>) {
        self.undo = manager.map(Box::new);
    }

    /// The undo manager, if installed.
    pub fn undo_manager(&self) -> Option<&UndoManager> {
        self.undo.as_deref()
    }

    /// The undo manager, to change its stacks.
    pub fn undo_manager_mut(&mut self) -> Option<&mut UndoManager> {
        self.undo.as_deref_mut()
    }

    /// Ends the current undo step (see [`UndoManager::stop_capturing`]).
    pub fn undo_boundary(&mut self) {
        if let Some(u) = self.undo.as_mut() {
            u.stop_capturing();
        }
    }

    /// Reverts the latest undo step of this replica's own edits in one
    /// transaction and returns its update (to send like any other), or
    /// `None` if there is nothing to undo or no manager. See
    /// [`UndoManager`] for what is restored.
    pub fn undo(&mut self) -> Result<Option<Vec<u8>>, DocError> {
        self.step(Role::Undo)
    }

    /// Re-applies the latest undone step (the inverse of [`Doc::undo`]).
    pub fn redo(&mut self) -> Result<Option<Vec<u8>>, DocError> {
        self.step(Role::Redo)
    }

    fn step(&mut self, role: Role) -> Result<Option<Vec<u8>>, DocError> {
        let Some(manager) = self.undo.as_mut() else {
            return Ok(None);
        };
        let stack = match role {
            Role::Redo => &mut manager.redo,
            _ => &mut manager.undo,
        };
        let Some(group) = stack.pop() else {
            return Ok(None);
        };
        manager.boundary = true;
        let (ops, restores) = group.record.inverse(self);
        let mut tx = Transaction::new(self);
        tx.role = role;
        tx.doc.scratch.ops.extend(ops);
        tx.restores = Some(restores);
        Ok(Some(tx.commit()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReplicaId;

    /// A tiny deterministic generator (the property tests in `tests/` use
    /// proptest; this keeps a fast randomized check next to the code).
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 33) as usize
        }
    }

    type View = (String, Vec<Option<u32>>, i128, Vec<(String, Option<u32>)>);

    fn view(d: &Doc) -> View {
        let l = d.list("l").unwrap();
        let items = (0..l.len())
            .map(|i| match l.get::<u32>(i) {
                Ok(v) => v,
                Err(_) => l
                    .map(i)
                    .unwrap()
                    .register::<u32>("v")
                    .unwrap()
                    .map(|v| v + 1000),
            })
            .collect();
        let m = d.map("m").unwrap();
        let keys = m
            .keys()
            .into_iter()
            .map(|(k, _)| {
                let v = m.register::<u32>(&k).unwrap();
                (k, v)
            })
            .collect();
        (
            d.text("t").unwrap().to_string(),
            items,
            d.counter("c").unwrap(),
            keys,
        )
    }

    fn edit_a(d: &mut Doc, rng: &mut Rng) -> Vec<u8> {
        let tlen = d.text("t").unwrap().len();
        let llen = d.list("l").unwrap().len();
        let (x, y, z) = (rng.next(), rng.next(), rng.next() as u32 % 50);
        d.transact(|tx| {
            match x % 8 {
                0 => tx.text("t")?.insert(y % (tlen + 1), "ab")?,
                1 if tlen > 0 => tx
                    .text("t")?
                    .delete(y % tlen, 1 + z as usize % (tlen - y % tlen))?,
                2 => tx.list("l")?.insert(y % (llen + 1), &z)?,
                3 if llen > 0 => tx.list("l")?.delete(y % llen, 1)?,
                4 => tx.list("l")?.insert_map(y % (llen + 1))?.put("v", &z)?,
                5 => tx.counter("c")?.increment(u64::from(z))?,
                6 => tx.map("m")?.put(&format!("a{}", y % 3), &z)?,
                _ => tx.map("m")?.remove(&format!("a{}", y % 3)),
            }
            Ok(())
        })
        .unwrap()
    }

    fn edit_b(d: &mut Doc, rng: &mut Rng) -> Vec<u8> {
        let tlen = d.text("t").unwrap().len();
        let llen = d.list("l").unwrap().len();
        let (x, y, z) = (rng.next(), rng.next(), rng.next() as u32 % 50);
        d.transact(|tx| {
            match x % 4 {
                0 => tx.text("t")?.insert(y % (tlen + 1), "XY")?,
                1 => tx.list("l")?.insert(y % (llen + 1), &(z + 500))?,
                2 => tx.counter("c")?.decrement(u64::from(z))?,
                _ => tx.map("m")?.put(&format!("b{}", y % 3), &z)?,
            }
            Ok(())
        })
        .unwrap()
    }

    #[test]
    fn undo_all_leaves_the_remote_edits_and_redo_all_restores() {
        for seed in 0..300 {
            let mut rng = Rng(seed);
            let mut z = Doc::new(ReplicaId::new(7));
            let base = z
                .transact(|tx| {
                    tx.text("t")?.insert(0, "base")?;
                    tx.list("l")?.insert_all(0, &[1u32, 2])?;
                    tx.counter("c")?.increment(1)?;
                    tx.map("m")?.put("a0", &9u32)?;
                    Ok(())
                })
                .unwrap();
            let mut a = Doc::new(ReplicaId::new(1)).with_undo(UndoManager::new().capture_window(0));
            let mut b = Doc::new(ReplicaId::new(2));
            let mut c = Doc::new(ReplicaId::new(3));
            for d in [&mut a, &mut b, &mut c] {
                d.apply(&base).unwrap();
            }
            let (mut to_a, mut to_b) = (Vec::new(), Vec::new());
            for _ in 0..(rng.next() % 12 + 1) {
                to_b.push(edit_a(&mut a, &mut rng));
                a.undo_boundary();
                if rng.next().is_multiple_of(2) {
                    let u = edit_b(&mut b, &mut rng);
                    c.apply(&u).unwrap();
                    to_a.push(u);
                }
                if rng.next().is_multiple_of(3) {
                    for u in to_a.drain(..) {
                        a.apply(&u).unwrap();
                    }
                }
            }
            for u in to_a.drain(..) {
                a.apply(&u).unwrap();
            }
            for u in to_b.drain(..) {
                b.apply(&u).unwrap();
            }
            assert_eq!(a, b, "seed {seed}");
            let done = view(&a);
            while let Some(u) = a.undo().unwrap() {
                b.apply(&u).unwrap();
            }
            assert_eq!(view(&a), view(&c), "seed {seed}: undo-all");
            assert_eq!(a, b, "seed {seed}: undo syncs");
            while let Some(u) = a.redo().unwrap() {
                b.apply(&u).unwrap();
            }
            assert_eq!(view(&a), done, "seed {seed}: redo-all");
            assert_eq!(a, b, "seed {seed}: redo syncs");
        }
    }
}
