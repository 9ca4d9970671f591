//! Simulation kit for document-level tests ([`weft_core::Doc`]).
//!
//! * [`DocOp`] / [`TxSpec`]: random edits at fixed locations of a small
//!   document shape (root texts, counters, registers, sets, a nested map
//!   `m` with `m/t`, `m/inner/c`, ...; `x` and `m/x` take any kind, so
//!   replicas disagree about kinds), run inside one transaction.
//! * [`Model`]: the sequential semantics of those edits, errors included.
//! * [`DocSim`]: 2–5 replicas exchanging encoded updates over an adversarial
//!   network (reordering, duplication, drops with resend, anti-entropy
//!   diffs, direct merges, save/load restarts).
//! * [`read_doc`]: the whole visible content of a document as plain values,
//!   so replicas and models compare by what a user would read.
//!
//! Clocks: [`Doc::with_clock`] takes a `fn() -> u64`, so the simulated wall
//! clock is a thread-local counter ([`reset_clock`] at the start of a case)
//! and [`CLOCKS`] offers accurate, hours-ahead, an-hour-behind and frozen
//! variants of it.

use crate::sim::{EPOCH_MS, HOUR_MS};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError};
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use weft_core::doc::{ApplyReport, ApplyStatus, Kind, MapMut, MapRef, Path, Transaction};
use weft_core::{Doc, DocError, OverflowError, ReplicaId};

/// The scalar type of every register and set in the simulated documents.
pub type Scalar = u16;

/// Proptest's default config (so `PROPTEST_CASES` sets the case count), with
/// failures persisted next to the test source.
pub fn config() -> Config {
    Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    }
}

// ----- clocks ---------------------------------------------------------------

thread_local! {
    static NOW: Cell<u64> = const { Cell::new(EPOCH_MS) };
}

/// Restarts the simulated clock (call at the start of every case, so a case
/// replays identically when proptest shrinks it).
pub fn reset_clock() {
    NOW.with(|n| n.set(EPOCH_MS));
}

fn tick() -> u64 {
    NOW.with(|n| {
        let t = n.get() + 1;
        n.set(t);
        t
    })
}

fn clock_accurate() -> u64 {
    tick()
}

fn clock_ahead() -> u64 {
    tick() + 3 * HOUR_MS as u64
}

fn clock_behind() -> u64 {
    tick() - HOUR_MS as u64
}

fn clock_frozen() -> u64 {
    EPOCH_MS
}

/// Deterministic wall clocks for [`Doc::with_clock`].
pub const CLOCKS: [fn() -> u64; 4] = [clock_accurate, clock_ahead, clock_behind, clock_frozen];

// ----- operations -----------------------------------------------------------

/// Where an edit happens: the maps to walk through, then the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loc {
    /// Keys of the nested maps, from the root.
    pub maps: Vec<&'static str>,
    /// The key in the innermost map.
    pub key: &'static str,
}

impl Loc {
    fn new(path: &[&'static str]) -> Loc {
        let (key, maps) = path.split_last().expect("a location has a key");
        Loc {
            maps: maps.to_vec(),
            key,
        }
    }

    /// The path of the value this location names when it holds `kind`.
    pub fn path(&self, kind: Kind) -> Path {
        let mut p = Path::root();
        for m in &self.maps {
            p = p.child(*m, Kind::Map);
        }
        p.child(self.key, kind)
    }
}

/// A text position: valid by construction, or raw (possibly out of range).
#[derive(Clone, Debug)]
pub enum Pos {
    /// Reduced into `0..=len` at the time of the edit.
    Valid(Index),
    /// Used as is.
    Raw(usize),
}

impl Pos {
    fn insert_at(&self, len: usize) -> usize {
        match self {
            Pos::Valid(i) => i.index(len + 1),
            Pos::Raw(r) => *r,
        }
    }

    fn delete_range(&self, len: usize, n: usize) -> (usize, usize) {
        match self {
            Pos::Valid(i) => {
                let at = i.index(len + 1);
                (at, n.min(len - at))
            }
            Pos::Raw(r) => (*r, n),
        }
    }
}

/// What an edit does at its location.
#[derive(Clone, Debug)]
pub enum Action {
    /// Text insert.
    Insert(Pos, String),
    /// Text delete of up to `n` chars.
    Delete(Pos, usize),
    /// Counter increment.
    Inc(u64),
    /// Counter decrement.
    Dec(u64),
    /// Last-writer-wins register write.
    Put(Scalar),
    /// Multi-value register write.
    PutMulti(Scalar),
    /// Set add.
    Add(Scalar),
    /// Set remove.
    Remove(Scalar),
    /// Removes the key from its map.
    RemoveKey,
}

/// One edit.
#[derive(Clone, Debug)]
pub struct DocOp {
    /// Where.
    pub loc: Loc,
    /// What.
    pub action: Action,
}

/// An edit that fails on purpose, after the transaction's other edits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Creates `fault` as a text, then asks for it as a counter.
    TypeMismatch,
    /// Inserts one past the end of `text`.
    InsertPastEnd,
    /// Deletes `usize::MAX` chars from index 1 of `text` (index + len overflows).
    DeleteOverflow,
    /// Increments counter `n` by `u64::MAX` twice.
    CounterOverflow,
}

/// One transaction: its edits, an optional deliberate failure, and whether it
/// runs through `Doc::transaction()` + `commit()` instead of `Doc::transact`.
#[derive(Clone, Debug)]
pub struct TxSpec {
    /// The edits, in order.
    pub ops: Vec<DocOp>,
    /// A failing edit at the end.
    pub fault: Option<Fault>,
    /// Use the explicit transaction API.
    pub explicit: bool,
}

/// Which edits a strategy generates.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    /// Key removals.
    pub remove_keys: bool,
    /// Edits of any kind at `x` and `m/x` (kind conflicts).
    pub conflicts: bool,
    /// Raw text positions (possibly out of range) and huge counter steps.
    pub raw: bool,
    /// Deliberately failing transactions.
    pub faults: bool,
}

impl Profile {
    /// Everything.
    pub const ALL: Profile = Profile {
        remove_keys: true,
        conflicts: true,
        raw: true,
        faults: true,
    };
    /// Valid edits at fixed kinds, some deliberate failures.
    pub const CONVERGE: Profile = Profile {
        remove_keys: true,
        conflicts: true,
        raw: false,
        faults: true,
    };
    /// Every location keeps its kind and stays visible.
    pub const STABLE: Profile = Profile {
        remove_keys: false,
        conflicts: false,
        raw: false,
        faults: false,
    };
}

fn locs(fixed: &[&[&'static str]], conflicts: bool) -> BoxedStrategy<Loc> {
    let mut all: Vec<Loc> = fixed.iter().map(|p| Loc::new(p)).collect();
    if conflicts {
        all.push(Loc::new(&["x"]));
        all.push(Loc::new(&["m", "x"]));
    }
    proptest::sample::select(all).boxed()
}

fn pos(raw: bool) -> BoxedStrategy<Pos> {
    if raw {
        prop_oneof![
            3 => any::<Index>().prop_map(Pos::Valid),
            1 => (0usize..12).prop_map(Pos::Raw),
            1 => Just(Pos::Raw(usize::MAX)),
        ]
        .boxed()
    } else {
        any::<Index>().prop_map(Pos::Valid).boxed()
    }
}

fn amount(raw: bool) -> BoxedStrategy<u64> {
    if raw {
        prop_oneof![8 => 0u64..10, 1 => Just(u64::MAX / 2 + 1)].boxed()
    } else {
        (0u64..10).boxed()
    }
}

/// A strategy for one edit.
pub fn op_strategy(p: Profile) -> BoxedStrategy<DocOp> {
    let c = p.conflicts;
    let text = locs(&[&["text"], &["m", "t"]], c);
    let counter = locs(&[&["n"], &["m", "inner", "c"]], c);
    let register = locs(&[&["reg"], &["m", "r"]], c);
    let multi = locs(&[&["mv"]], c);
    let set = locs(&[&["tags"], &["m", "s"]], c);
    let elem = || 0 as Scalar..6;
    let mut ops: Vec<(u32, BoxedStrategy<DocOp>)> = vec![
        (
            5,
            (text.clone(), pos(p.raw), "[a-c€😀]{0,3}")
                .prop_map(|(loc, at, s)| DocOp {
                    loc,
                    action: Action::Insert(at, s),
                })
                .boxed(),
        ),
        (
            2,
            (text, pos(p.raw), 0usize..4)
                .prop_map(|(loc, at, n)| DocOp {
                    loc,
                    action: Action::Delete(at, n),
                })
                .boxed(),
        ),
        (
            3,
            (counter, any::<bool>(), amount(p.raw))
                .prop_map(|(loc, up, by)| DocOp {
                    loc,
                    action: if up { Action::Inc(by) } else { Action::Dec(by) },
                })
                .boxed(),
        ),
        (
            2,
            (register, any::<Scalar>())
                .prop_map(|(loc, v)| DocOp {
                    loc,
                    action: Action::Put(v),
                })
                .boxed(),
        ),
        (
            1,
            (multi, elem())
                .prop_map(|(loc, v)| DocOp {
                    loc,
                    action: Action::PutMulti(v),
                })
                .boxed(),
        ),
        (
            3,
            (set, any::<bool>(), elem())
                .prop_map(|(loc, add, v)| DocOp {
                    loc,
                    action: if add {
                        Action::Add(v)
                    } else {
                        Action::Remove(v)
                    },
                })
                .boxed(),
        ),
    ];
    if p.remove_keys {
        let keys = locs(
            &[
                &["text"],
                &["n"],
                &["tags"],
                &["m"],
                &["m", "t"],
                &["m", "inner"],
            ],
            c,
        );
        ops.push((
            1,
            keys.prop_map(|loc| DocOp {
                loc,
                action: Action::RemoveKey,
            })
            .boxed(),
        ));
    }
    proptest::strategy::Union::new_weighted(ops).boxed()
}

/// A strategy for one transaction of 1–3 edits.
pub fn tx_strategy(p: Profile) -> BoxedStrategy<TxSpec> {
    let fault = if p.faults {
        prop_oneof![
            12 => Just(None),
            1 => Just(Some(Fault::TypeMismatch)),
            1 => Just(Some(Fault::InsertPastEnd)),
            1 => Just(Some(Fault::DeleteOverflow)),
            1 => Just(Some(Fault::CounterOverflow)),
        ]
        .boxed()
    } else {
        Just(None).boxed()
    };
    (
        proptest::collection::vec(op_strategy(p), 1..=3),
        fault,
        any::<bool>(),
    )
        .prop_map(|(ops, fault, explicit)| TxSpec {
            ops,
            fault,
            explicit,
        })
        .boxed()
}

fn exec_in<'d>(
    m: &mut MapMut<'_, 'd>,
    maps: &[&str],
    key: &str,
    action: &Action,
) -> Result<(), DocError> {
    if let Some((first, rest)) = maps.split_first() {
        return exec_in(&mut m.map(first)?, rest, key, action);
    }
    match action {
        Action::Insert(at, s) => {
            let mut t = m.text(key)?;
            let i = at.insert_at(t.len());
            t.insert(i, s)
        }
        Action::Delete(at, n) => {
            let mut t = m.text(key)?;
            let (i, n) = at.delete_range(t.len(), *n);
            t.delete(i, n)
        }
        Action::Inc(by) => m.counter(key)?.increment(*by),
        Action::Dec(by) => m.counter(key)?.decrement(*by),
        Action::Put(v) => m.put(key, v),
        Action::PutMulti(v) => m.put_multi(key, v),
        Action::Add(v) => m.set::<Scalar>(key)?.add(v),
        Action::Remove(v) => m.set::<Scalar>(key)?.remove(v),
        Action::RemoveKey => {
            m.remove(key);
            Ok(())
        }
    }
}

/// Runs one edit inside a transaction.
pub fn exec(tx: &mut Transaction<'_>, op: &DocOp) -> Result<(), DocError> {
    exec_in(&mut tx.root(), &op.loc.maps, op.loc.key, &op.action)
}

fn exec_fault(tx: &mut Transaction<'_>, f: Fault) -> Result<(), DocError> {
    match f {
        Fault::TypeMismatch => {
            tx.text("fault")?;
            tx.counter("fault").map(drop)
        }
        Fault::InsertPastEnd => {
            let mut t = tx.text("text")?;
            let len = t.len();
            t.insert(len + 1, "z")
        }
        Fault::DeleteOverflow => tx.text("text")?.delete(1, usize::MAX),
        Fault::CounterOverflow => {
            let mut c = tx.counter("n")?;
            c.increment(u64::MAX)?;
            c.increment(u64::MAX)
        }
    }
}

/// Runs a whole transaction; returns the committed update.
pub fn run_tx(doc: &mut Doc, spec: &TxSpec) -> Result<Vec<u8>, DocError> {
    let body = |tx: &mut Transaction<'_>| -> Result<(), DocError> {
        for op in &spec.ops {
            exec(tx, op)?;
        }
        match spec.fault {
            Some(f) => exec_fault(tx, f),
            None => Ok(()),
        }
    };
    if spec.explicit {
        let mut tx = doc.transaction();
        body(&mut tx)?;
        Ok(tx.commit())
    } else {
        doc.transact(body)
    }
}

/// Runs a transaction and checks the all-or-nothing contract: an error leaves
/// the document byte-for-byte unchanged, and a deliberate fault always fails
/// with its own kind of error. Returns the update if it committed.
pub fn checked_tx(doc: &mut Doc, spec: &TxSpec) -> Result<Option<Vec<u8>>, TestCaseError> {
    let before = doc.save();
    match run_tx(doc, spec) {
        Ok(update) => {
            prop_assert!(spec.fault.is_none(), "a faulty transaction committed");
            Ok(Some(update))
        }
        Err(e) => {
            prop_assert_eq!(
                doc.save(),
                before,
                "failed transaction changed the doc: {}",
                e
            );
            let expected = matches!(
                e,
                DocError::TypeMismatch { .. }
                    | DocError::IndexOutOfRange { .. }
                    | DocError::Overflow { .. }
            );
            prop_assert!(expected, "unexpected transaction error {:?}", e);
            Ok(None)
        }
    }
}

// ----- reading --------------------------------------------------------------

/// A visible value, as a user reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Read {
    /// Text content.
    Text(String),
    /// Counter value.
    Counter(i128),
    /// LWW register value.
    Register(Option<Scalar>),
    /// Multi-value register values.
    Multi(Vec<Scalar>),
    /// Set elements.
    Set(BTreeSet<Scalar>),
    /// A nested map.
    Map(BTreeMap<String, Read>),
    /// A list (this simulation never makes one; `tests/list_props.rs` does).
    List(Vec<weft_core::doc::ListItem>),
}

/// Everything visible in a map, recursively.
pub fn read_map(m: &MapRef<'_>) -> Result<BTreeMap<String, Read>, DocError> {
    let mut out = BTreeMap::new();
    for (k, kind) in m.keys() {
        let v = match kind {
            Kind::Text => Read::Text(m.text(&k)?.to_string()),
            Kind::Counter => Read::Counter(m.counter(&k)?),
            Kind::Register => Read::Register(m.register(&k)?),
            Kind::MultiValue => Read::Multi(m.multi_value(&k)?),
            Kind::Set => Read::Set(m.set::<Scalar>(&k)?.to_vec()?.into_iter().collect()),
            Kind::Map => Read::Map(read_map(&m.map(&k)?)?),
            Kind::List => Read::List(m.list(&k)?.items()),
        };
        out.insert(k, v);
    }
    Ok(out)
}

/// Everything visible in a document.
pub fn read_doc(doc: &Doc) -> Result<BTreeMap<String, Read>, DocError> {
    read_map(&doc.root())
}

/// The map holding the value at `path` (walking visible maps).
pub fn parent_map<'d>(doc: &'d Doc, path: &Path) -> Result<(MapRef<'d>, String), DocError> {
    let (last, init) = path.steps().split_last().expect("not the root");
    let mut m = doc.root();
    for s in init {
        m = m.map(&s.key)?;
    }
    Ok((m, last.key.clone()))
}

// ----- sequential model -----------------------------------------------------

/// One value of the model.
#[derive(Clone, Debug)]
pub enum ModelValue {
    /// Text.
    Text(String),
    /// Counter: this replica's increment and decrement totals.
    Counter {
        /// Increments.
        inc: u64,
        /// Decrements.
        dec: u64,
    },
    /// LWW register.
    Register(Option<Scalar>),
    /// Multi-value register (one writer: at most one value).
    Multi(Option<Scalar>),
    /// Set.
    Set(BTreeSet<Scalar>),
    /// Nested map.
    Map(Model),
}

impl ModelValue {
    fn empty(kind: Kind) -> ModelValue {
        match kind {
            Kind::Text => ModelValue::Text(String::new()),
            Kind::Counter => ModelValue::Counter { inc: 0, dec: 0 },
            Kind::Register => ModelValue::Register(None),
            Kind::MultiValue => ModelValue::Multi(None),
            Kind::Set => ModelValue::Set(BTreeSet::new()),
            // The simulation's ops never create lists (see `list_props.rs`).
            Kind::Map | Kind::List => ModelValue::Map(Model::default()),
        }
    }
}

/// The sequential model of a map (the root is one).
///
/// As in the document, removing a key erases what it held: creating the key
/// again (with any kind) starts from an empty value.
#[derive(Clone, Debug, Default)]
pub struct Model {
    visible: BTreeMap<String, Kind>,
    values: BTreeMap<(String, Kind), ModelValue>,
}

fn join_path(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}/{key}")
    }
}

fn char_splice(s: &mut String, at: usize, del: usize, ins: &str) {
    let start = s.char_indices().nth(at).map_or(s.len(), |(b, _)| b);
    let end = s[start..]
        .char_indices()
        .nth(del)
        .map_or(s.len(), |(b, _)| start + b);
    s.replace_range(start..end, ins);
}

impl Model {
    fn ensure(&mut self, prefix: &str, key: &str, kind: Kind) -> Result<&mut ModelValue, DocError> {
        match self.visible.get(key) {
            Some(&found) if found != kind => {
                return Err(DocError::TypeMismatch {
                    path: join_path(prefix, key),
                    expected: kind,
                    found,
                })
            }
            Some(_) => {}
            None => {
                self.visible.insert(key.to_string(), kind);
            }
        }
        Ok(self
            .values
            .entry((key.to_string(), kind))
            .or_insert_with(|| ModelValue::empty(kind)))
    }

    /// Applies one edit; the error is exactly the one the document reports.
    /// (On error the model may be half-changed: callers work on a copy.)
    pub fn apply(&mut self, op: &DocOp) -> Result<(), DocError> {
        self.apply_in("", &op.loc.maps, op.loc.key, &op.action)
    }

    fn apply_in(
        &mut self,
        prefix: &str,
        maps: &[&str],
        key: &str,
        action: &Action,
    ) -> Result<(), DocError> {
        if let Some((first, rest)) = maps.split_first() {
            let ModelValue::Map(m) = self.ensure(prefix, first, Kind::Map)? else {
                unreachable!("ensured a map")
            };
            return m.apply_in(&join_path(prefix, first), rest, key, action);
        }
        let path = join_path(prefix, key);
        match action {
            Action::Insert(at, s) => {
                let ModelValue::Text(t) = self.ensure(prefix, key, Kind::Text)? else {
                    unreachable!()
                };
                let len = t.chars().count();
                let i = at.insert_at(len);
                if i > len {
                    return Err(DocError::IndexOutOfRange {
                        path,
                        index: i,
                        len,
                    });
                }
                char_splice(t, i, 0, s);
            }
            Action::Delete(at, n) => {
                let ModelValue::Text(t) = self.ensure(prefix, key, Kind::Text)? else {
                    unreachable!()
                };
                let len = t.chars().count();
                let (i, n) = at.delete_range(len, *n);
                match i.checked_add(n) {
                    Some(end) if end <= len => char_splice(t, i, n, ""),
                    _ => {
                        return Err(DocError::IndexOutOfRange {
                            path,
                            index: i.saturating_add(n),
                            len,
                        })
                    }
                }
            }
            Action::Inc(by) | Action::Dec(by) => {
                let ModelValue::Counter { inc, dec } = self.ensure(prefix, key, Kind::Counter)?
                else {
                    unreachable!()
                };
                let total = if matches!(action, Action::Inc(_)) {
                    inc
                } else {
                    dec
                };
                *total = total.checked_add(*by).ok_or(DocError::Overflow {
                    path,
                    source: OverflowError,
                })?;
            }
            Action::Put(v) => {
                let ModelValue::Register(r) = self.ensure(prefix, key, Kind::Register)? else {
                    unreachable!()
                };
                *r = Some(*v);
            }
            Action::PutMulti(v) => {
                let ModelValue::Multi(r) = self.ensure(prefix, key, Kind::MultiValue)? else {
                    unreachable!()
                };
                *r = Some(*v);
            }
            Action::Add(v) | Action::Remove(v) => {
                let ModelValue::Set(s) = self.ensure(prefix, key, Kind::Set)? else {
                    unreachable!()
                };
                if matches!(action, Action::Add(_)) {
                    s.insert(*v);
                } else {
                    s.remove(v);
                }
            }
            Action::RemoveKey => {
                self.visible.remove(key);
                self.values.retain(|(k, _), _| k != key);
            }
        }
        Ok(())
    }

    /// Applies a deliberate fault (always an error).
    pub fn apply_fault(&mut self, f: Fault) -> Result<(), DocError> {
        let text = |at: Pos, n: Option<usize>| DocOp {
            loc: Loc::new(&["text"]),
            action: match n {
                None => Action::Insert(at, "z".into()),
                Some(n) => Action::Delete(at, n),
            },
        };
        match f {
            Fault::TypeMismatch => {
                self.ensure("", "fault", Kind::Text)?;
                self.ensure("", "fault", Kind::Counter).map(drop)
            }
            Fault::InsertPastEnd => {
                self.ensure("", "text", Kind::Text)?;
                let len = match self.values.get(&("text".to_string(), Kind::Text)) {
                    Some(ModelValue::Text(t)) => t.chars().count(),
                    _ => 0,
                };
                self.apply(&text(Pos::Raw(len + 1), None))
            }
            Fault::DeleteOverflow => self.apply(&text(Pos::Raw(1), Some(usize::MAX))),
            Fault::CounterOverflow => {
                let op = |by| DocOp {
                    loc: Loc::new(&["n"]),
                    action: Action::Inc(by),
                };
                self.apply(&op(u64::MAX))?;
                self.apply(&op(u64::MAX))
            }
        }
    }

    /// Runs a transaction on a copy: the new model, or the first error.
    pub fn transact(&self, spec: &TxSpec) -> Result<Model, DocError> {
        let mut m = self.clone();
        for op in &spec.ops {
            m.apply(op)?;
        }
        if let Some(f) = spec.fault {
            m.apply_fault(f)?;
        }
        Ok(m)
    }

    /// What a user reads.
    pub fn read(&self) -> BTreeMap<String, Read> {
        self.visible
            .iter()
            .map(|(k, &kind)| {
                let v = match self.values.get(&(k.clone(), kind)) {
                    Some(ModelValue::Text(t)) => Read::Text(t.clone()),
                    Some(ModelValue::Counter { inc, dec }) => {
                        Read::Counter(i128::from(*inc) - i128::from(*dec))
                    }
                    Some(ModelValue::Register(r)) => Read::Register(*r),
                    Some(ModelValue::Multi(r)) => Read::Multi(r.iter().copied().collect()),
                    Some(ModelValue::Set(s)) => Read::Set(s.clone()),
                    Some(ModelValue::Map(m)) => Read::Map(m.read()),
                    None => unreachable!("a visible key has a value"),
                };
                (k.clone(), v)
            })
            .collect()
    }
}

// ----- network --------------------------------------------------------------

/// One step of a document simulation.
#[derive(Clone, Debug)]
pub enum SimStep {
    /// Replica `replica` runs a transaction; its update is broadcast.
    Txn {
        /// Acting replica (modulo the count).
        replica: usize,
        /// The transaction.
        tx: TxSpec,
    },
    /// Delivers one in-flight packet, maybe keeping a copy in flight.
    Deliver {
        /// Which packet.
        pick: Index,
        /// Keep a duplicate in flight.
        duplicate: bool,
    },
    /// Loses one in-flight packet until the next resend.
    Drop {
        /// Which packet.
        pick: Index,
    },
    /// Puts every dropped packet back in flight.
    Resend,
    /// `to` asks `from` for `from.diff(to.version())`, which travels the
    /// network like any packet.
    AntiEntropy {
        /// Answering replica.
        from: usize,
        /// Asking replica.
        to: usize,
    },
    /// `to.merge(&from)` directly.
    Merge {
        /// Source.
        from: usize,
        /// Destination.
        to: usize,
    },
    /// Replica restarts from its own snapshot (pending updates included).
    Reload {
        /// Which replica.
        replica: usize,
    },
}

/// A generated scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Distinct replica ids.
    pub ids: Vec<ReplicaId>,
    /// Index into [`CLOCKS`] per replica.
    pub clocks: Vec<usize>,
    /// The steps.
    pub steps: Vec<SimStep>,
}

/// A strategy for one step.
pub fn sim_step(p: Profile) -> impl Strategy<Value = SimStep> {
    prop_oneof![
        5 => (0usize..5, tx_strategy(p)).prop_map(|(replica, tx)| SimStep::Txn { replica, tx }),
        5 => (any::<Index>(), prop::bool::weighted(0.2))
            .prop_map(|(pick, duplicate)| SimStep::Deliver { pick, duplicate }),
        1 => any::<Index>().prop_map(|pick| SimStep::Drop { pick }),
        1 => Just(SimStep::Resend),
        1 => (0usize..5, 0usize..5).prop_map(|(from, to)| SimStep::AntiEntropy { from, to }),
        1 => (0usize..5, 0usize..5).prop_map(|(from, to)| SimStep::Merge { from, to }),
        1 => (0usize..5).prop_map(|replica| SimStep::Reload { replica }),
    ]
}

/// A strategy for a scenario of `replicas` replicas and up to `max_steps`
/// steps (about a third of them transactions).
pub fn scenario(
    replicas: std::ops::RangeInclusive<usize>,
    max_steps: usize,
    p: Profile,
) -> impl Strategy<Value = Scenario> {
    replicas.prop_flat_map(move |n| {
        (
            crate::sim::ids_strategy(n).prop_shuffle(),
            proptest::collection::vec(0..CLOCKS.len(), n),
            proptest::collection::vec(sim_step(p), 0..=max_steps),
        )
            .prop_map(|(ids, clocks, steps)| Scenario { ids, clocks, steps })
    })
}

/// A packet in flight.
#[derive(Clone, Debug)]
pub struct Packet {
    /// Destination replica.
    pub to: usize,
    /// An encoded update or diff.
    pub bytes: Vec<u8>,
}

/// Replicas and network of one simulated run.
#[derive(Debug)]
pub struct DocSim {
    /// Replica ids.
    pub ids: Vec<ReplicaId>,
    /// Clock per replica.
    pub clocks: Vec<usize>,
    /// The documents.
    pub docs: Vec<Doc>,
    /// Packets in flight.
    pub in_flight: Vec<Packet>,
    /// Dropped packets awaiting a resend.
    pub dropped: Vec<Packet>,
    /// Every committed update, in commit order.
    pub updates: Vec<Vec<u8>>,
    /// Snapshots (`save()`) of every replica after each of its steps.
    pub snapshots: Vec<Vec<u8>>,
    /// Transactions that failed (and changed nothing).
    pub failed: usize,
}

/// Checks what an [`ApplyReport`] says against the document it came from.
pub fn check_report(doc: &Doc, r: &ApplyReport) -> Result<(), TestCaseError> {
    prop_assert_eq!(r.pending, doc.pending_updates());
    prop_assert_eq!(
        r.missing.is_empty(),
        r.pending == 0,
        "missing must be non-empty exactly when updates wait: {:?}",
        r
    );
    for (replica, n) in r.missing.iter() {
        prop_assert!(
            doc.version().get(replica) < n,
            "missing {:?}:{} is already applied",
            replica,
            n
        );
    }
    if r.status != ApplyStatus::Applied {
        prop_assert_eq!(r.unblocked, 0, "only an applied update unblocks others");
    }
    Ok(())
}

impl DocSim {
    /// Fresh replicas (restarts the simulated clock).
    pub fn new(ids: Vec<ReplicaId>, clocks: Vec<usize>) -> Self {
        reset_clock();
        let docs = ids
            .iter()
            .zip(&clocks)
            .map(|(&id, &c)| Doc::new(id).with_clock(CLOCKS[c]))
            .collect();
        DocSim {
            ids,
            clocks,
            docs,
            in_flight: Vec::new(),
            dropped: Vec::new(),
            updates: Vec::new(),
            snapshots: Vec::new(),
            failed: 0,
        }
    }

    /// Runs a scenario (without settling).
    pub fn run(s: &Scenario) -> Result<Self, TestCaseError> {
        let mut sim = DocSim::new(s.ids.clone(), s.clocks.clone());
        for step in &s.steps {
            sim.step(step)?;
        }
        Ok(sim)
    }

    /// Replica `r` runs `tx`; a committed update is broadcast.
    pub fn transact(&mut self, r: usize, tx: &TxSpec) -> Result<Option<Vec<u8>>, TestCaseError> {
        let update = checked_tx(&mut self.docs[r], tx)?;
        match &update {
            Some(u) => {
                self.updates.push(u.clone());
                for to in (0..self.docs.len()).filter(|&to| to != r) {
                    self.in_flight.push(Packet {
                        to,
                        bytes: u.clone(),
                    });
                }
            }
            None => self.failed += 1,
        }
        Ok(update)
    }

    /// Applies a packet; any error fails the case.
    pub fn deliver(&mut self, p: &Packet) -> Result<ApplyReport, TestCaseError> {
        let doc = &mut self.docs[p.to];
        let r = doc
            .apply(&p.bytes)
            .map_err(|e| TestCaseError::fail(format!("apply failed: {e}")))?;
        check_report(doc, &r)?;
        Ok(r)
    }

    fn reload(&mut self, r: usize) -> Result<(), TestCaseError> {
        let bytes = self.docs[r].save();
        let loaded = Doc::load(&bytes, self.ids[r])
            .map_err(|e| TestCaseError::fail(format!("load failed: {e}")))?
            .with_clock(CLOCKS[self.clocks[r]]);
        prop_assert_eq!(&loaded, &self.docs[r]);
        prop_assert_eq!(loaded.pending_updates(), self.docs[r].pending_updates());
        // Text snapshots group ops by how they arrived, so the first reload
        // may regroup runs; from then on the encoding must be stable.
        let resaved = loaded.save();
        let reloaded = Doc::load(&resaved, self.ids[r])
            .map_err(|e| TestCaseError::fail(format!("reload failed: {e}")))?;
        prop_assert_eq!(&reloaded, &loaded);
        prop_assert_eq!(reloaded.save(), resaved, "save(load(s)) is not a fixpoint");
        self.docs[r] = loaded;
        Ok(())
    }

    /// Runs one step.
    pub fn step(&mut self, step: &SimStep) -> Result<(), TestCaseError> {
        let n = self.docs.len();
        match step {
            SimStep::Txn { replica, tx } => {
                let r = replica % n;
                self.transact(r, tx)?;
                self.snapshots.push(self.docs[r].save());
            }
            SimStep::Deliver { pick, duplicate } => {
                if self.in_flight.is_empty() {
                    return Ok(());
                }
                let i = pick.index(self.in_flight.len());
                let p = if *duplicate {
                    self.in_flight[i].clone()
                } else {
                    self.in_flight.swap_remove(i)
                };
                self.deliver(&p)?;
                self.snapshots.push(self.docs[p.to].save());
            }
            SimStep::Drop { pick } => {
                if !self.in_flight.is_empty() {
                    let i = pick.index(self.in_flight.len());
                    let p = self.in_flight.swap_remove(i);
                    self.dropped.push(p);
                }
            }
            SimStep::Resend => self.in_flight.append(&mut self.dropped),
            SimStep::AntiEntropy { from, to } => {
                let (from, to) = (from % n, to % n);
                if from != to {
                    let bytes = self.docs[from].diff(self.docs[to].version());
                    self.in_flight.push(Packet { to, bytes });
                }
            }
            SimStep::Merge { from, to } => {
                let (from, to) = (from % n, to % n);
                if from != to {
                    let (src, dst) = pair_mut(&mut self.docs, from, to);
                    let r = dst.merge(src);
                    check_report(dst, &r)?;
                    prop_assert!(
                        dst.version().dominates(src.version()),
                        "after merge the destination has everything the source applied"
                    );
                    self.snapshots.push(self.docs[to].save());
                }
            }
            SimStep::Reload { replica } => self.reload(replica % n)?,
        }
        Ok(())
    }

    /// Resends every dropped packet and delivers everything in flight,
    /// newest first.
    pub fn settle(&mut self) -> Result<(), TestCaseError> {
        self.in_flight.append(&mut self.dropped);
        while let Some(p) = self.in_flight.pop() {
            self.deliver(&p)?;
        }
        Ok(())
    }

    /// Every document state the run went through, as snapshots.
    pub fn reachable(&self) -> Vec<Vec<u8>> {
        let mut out = self.snapshots.clone();
        out.extend(self.docs.iter().map(Doc::save));
        out
    }
}

/// `(&v[a], &mut v[b])` for `a != b`.
pub fn pair_mut<T>(v: &mut [T], a: usize, b: usize) -> (&T, &mut T) {
    assert_ne!(a, b);
    if a < b {
        let (lo, hi) = v.split_at_mut(b);
        (&lo[a], &mut hi[0])
    } else {
        let (lo, hi) = v.split_at_mut(a);
        (&hi[0], &mut lo[b])
    }
}

/// Loads a snapshot as replica `id` (test helper: panics on bad bytes).
pub fn load(snapshot: &[u8], id: ReplicaId) -> Doc {
    Doc::load(snapshot, id).expect("a snapshot from save() loads")
}
