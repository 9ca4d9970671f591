//! The CRDTs under test, each with random operations, a read-out and a
//! sequential model.
//!
//! A [`Subject`] is a [`Crdt`] that the simulation can drive: `ops()` generates
//! operations, `perform` runs one on a replica (returning its delta, or `None`
//! if the operation was refused, which only counters do, on overflow, and then
//! the state must be unchanged), and `read` is the user-visible value. The
//! [`Subject::Model`] is the plain sequential data type the CRDT must behave
//! like when there is no concurrency.

use proptest::prelude::*;
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use weft_core::codec::Encode;
use weft_core::{
    Crdt, GCounter, HlcTimestamp, LwwMap, LwwRegister, MvRegister, OrSet, OverflowError, PnCounter,
    ReplicaId,
};

/// A CRDT the simulation can drive.
pub trait Subject: Crdt + Encode {
    /// A local operation.
    type Op: Clone + Debug + 'static;
    /// The user-visible value.
    type Read: PartialEq + Debug;
    /// The sequential data type this CRDT must match without concurrency.
    type Model: Default + Debug;
    /// Whether every delta carries the sender's whole state (registers).
    const FULL_STATE_DELTAS: bool;

    /// Random operations.
    fn ops() -> BoxedStrategy<Self::Op>;
    /// Runs `op` as replica `id` with wall clock `now_ms`.
    fn perform(&mut self, id: ReplicaId, now_ms: u64, op: &Self::Op) -> Option<Self::Delta>;
    /// The user-visible value.
    fn read(&self) -> Self::Read;
    /// Runs `op` on the model; returns whether the operation is accepted.
    fn model_step(model: &mut Self::Model, id: ReplicaId, op: &Self::Op) -> bool;
    /// The model's user-visible value.
    fn model_read(model: &Self::Model) -> Self::Read;
}

/// Amounts for counter operations: mostly small, sometimes near `u64::MAX`
/// so that overflow is exercised.
pub fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => 0u64..100,
        1 => (u64::MAX - 300)..=u64::MAX,
        1 => Just(u64::MAX / 2),
    ]
}

/// Runs a counter mutator and checks that a refusal changed nothing.
fn checked<C: Clone + PartialEq + Debug>(
    state: &mut C,
    f: impl FnOnce(&mut C) -> Result<C, OverflowError>,
) -> Option<C> {
    let before = state.clone();
    match f(state) {
        Ok(d) => Some(d),
        Err(OverflowError) => {
            assert_eq!(*state, before, "a refused operation changed the state");
            None
        }
    }
}

/// Operations on a [`GCounter`].
#[derive(Clone, Debug)]
pub enum GOp {
    /// `increment(by)`.
    Inc(u64),
}

/// Sequential model of a [`GCounter`]: each replica's contribution.
pub type GModel = BTreeMap<ReplicaId, u64>;

impl Subject for GCounter {
    type Op = GOp;
    type Read = u128;
    type Model = GModel;
    const FULL_STATE_DELTAS: bool = false;

    fn ops() -> BoxedStrategy<GOp> {
        amount().prop_map(GOp::Inc).boxed()
    }
    fn perform(&mut self, id: ReplicaId, _now: u64, op: &GOp) -> Option<GCounter> {
        let GOp::Inc(by) = *op;
        checked(self, |s| s.increment(id, by))
    }
    fn read(&self) -> u128 {
        self.value()
    }
    fn model_step(m: &mut GModel, id: ReplicaId, op: &GOp) -> bool {
        let GOp::Inc(by) = *op;
        let e = m.entry(id).or_default();
        match e.checked_add(by) {
            Some(v) => {
                *e = v;
                true
            }
            None => false,
        }
    }
    fn model_read(m: &GModel) -> u128 {
        m.values().map(|&v| v as u128).sum()
    }
}

/// Operations on a [`PnCounter`].
#[derive(Clone, Debug)]
pub enum PnOp {
    /// `increment(by)`.
    Inc(u64),
    /// `decrement(by)`.
    Dec(u64),
    /// `add(amount)`.
    Add(i64),
}

/// Sequential model of a [`PnCounter`]: each replica's (increments, decrements).
pub type PnModel = BTreeMap<ReplicaId, (u64, u64)>;

impl Subject for PnCounter {
    type Op = PnOp;
    type Read = i128;
    type Model = PnModel;
    const FULL_STATE_DELTAS: bool = false;

    fn ops() -> BoxedStrategy<PnOp> {
        prop_oneof![
            amount().prop_map(PnOp::Inc),
            amount().prop_map(PnOp::Dec),
            prop_oneof![4 => -100i64..100, 1 => any::<i64>()].prop_map(PnOp::Add),
        ]
        .boxed()
    }
    fn perform(&mut self, id: ReplicaId, _now: u64, op: &PnOp) -> Option<PnCounter> {
        match *op {
            PnOp::Inc(by) => checked(self, |s| s.increment(id, by)),
            PnOp::Dec(by) => checked(self, |s| s.decrement(id, by)),
            PnOp::Add(a) => checked(self, |s| s.add(id, a)),
        }
    }
    fn read(&self) -> i128 {
        self.value()
    }
    fn model_step(m: &mut PnModel, id: ReplicaId, op: &PnOp) -> bool {
        let (inc, dec) = match *op {
            PnOp::Inc(by) => (by, 0),
            PnOp::Dec(by) => (0, by),
            PnOp::Add(a) if a >= 0 => (a as u64, 0),
            PnOp::Add(a) => (0, a.unsigned_abs()),
        };
        let e = m.entry(id).or_default();
        match (e.0.checked_add(inc), e.1.checked_add(dec)) {
            (Some(i), Some(d)) => {
                *e = (i, d);
                true
            }
            _ => false,
        }
    }
    fn model_read(m: &PnModel) -> i128 {
        m.values().map(|&(i, d)| i as i128 - d as i128).sum()
    }
}

/// Operations on an [`OrSet<u8>`].
#[derive(Clone, Debug)]
pub enum SetOp {
    /// `add(x)`.
    Add(u8),
    /// `remove(x)`.
    Remove(u8),
    /// `clear()`.
    Clear,
}

impl SetOp {
    /// Whether the operation concerns element `x` (an add, remove or clear).
    pub fn touches(&self, x: u8) -> bool {
        match *self {
            SetOp::Add(y) | SetOp::Remove(y) => y == x,
            SetOp::Clear => true,
        }
    }
}

/// Elements used by set and map operations: few, so operations collide.
pub const ELEMENTS: u8 = 6;

impl Subject for OrSet<u8> {
    type Op = SetOp;
    type Read = Vec<u8>;
    type Model = BTreeSet<u8>;
    const FULL_STATE_DELTAS: bool = false;

    fn ops() -> BoxedStrategy<SetOp> {
        prop_oneof![
            6 => (0..ELEMENTS).prop_map(SetOp::Add),
            4 => (0..ELEMENTS).prop_map(SetOp::Remove),
            1 => Just(SetOp::Clear),
        ]
        .boxed()
    }
    fn perform(&mut self, id: ReplicaId, _now: u64, op: &SetOp) -> Option<Self::Delta> {
        Some(match *op {
            SetOp::Add(x) => self.add(id, x),
            SetOp::Remove(x) => self.remove(&x),
            SetOp::Clear => self.clear(),
        })
    }
    fn read(&self) -> Vec<u8> {
        self.iter().copied().collect()
    }
    fn model_step(m: &mut BTreeSet<u8>, _id: ReplicaId, op: &SetOp) -> bool {
        match *op {
            SetOp::Add(x) => {
                m.insert(x);
            }
            SetOp::Remove(x) => {
                m.remove(&x);
            }
            SetOp::Clear => m.clear(),
        }
        true
    }
    fn model_read(m: &BTreeSet<u8>) -> Vec<u8> {
        m.iter().copied().collect()
    }
}

/// Operations on a register of `u16`.
#[derive(Clone, Debug)]
pub enum RegOp {
    /// `set(v)` with the replica's wall clock.
    Set(u16),
    /// `set_stamped(v, (now, 0))` (last-writer-wins register only).
    SetStamped(u16),
}

impl RegOp {
    /// The written value.
    pub fn value(&self) -> u16 {
        match *self {
            RegOp::Set(v) | RegOp::SetStamped(v) => v,
        }
    }
}

impl Subject for LwwRegister<u16> {
    type Op = RegOp;
    type Read = Option<u16>;
    type Model = Option<u16>;
    const FULL_STATE_DELTAS: bool = true;

    fn ops() -> BoxedStrategy<RegOp> {
        prop_oneof![
            3 => (0u16..8).prop_map(RegOp::Set),
            1 => (0u16..8).prop_map(RegOp::SetStamped),
        ]
        .boxed()
    }
    fn perform(&mut self, id: ReplicaId, now: u64, op: &RegOp) -> Option<Self> {
        Some(match *op {
            RegOp::Set(v) => self.set(id, v, now),
            RegOp::SetStamped(v) => self.set_stamped(id, v, HlcTimestamp::new(now, 0)),
        })
    }
    fn read(&self) -> Option<u16> {
        self.get().copied()
    }
    fn model_step(m: &mut Option<u16>, _id: ReplicaId, op: &RegOp) -> bool {
        *m = Some(op.value());
        true
    }
    fn model_read(m: &Option<u16>) -> Option<u16> {
        *m
    }
}

impl Subject for MvRegister<u16> {
    type Op = RegOp;
    type Read = Vec<u16>;
    type Model = Option<u16>;
    const FULL_STATE_DELTAS: bool = true;

    fn ops() -> BoxedStrategy<RegOp> {
        (0u16..8).prop_map(RegOp::Set).boxed()
    }
    fn perform(&mut self, id: ReplicaId, _now: u64, op: &RegOp) -> Option<Self> {
        Some(self.set(id, op.value()))
    }
    fn read(&self) -> Vec<u16> {
        self.values().copied().collect()
    }
    fn model_step(m: &mut Option<u16>, _id: ReplicaId, op: &RegOp) -> bool {
        *m = Some(op.value());
        true
    }
    fn model_read(m: &Option<u16>) -> Vec<u16> {
        m.iter().copied().collect()
    }
}

/// Operations on an [`LwwMap<u8, u16>`].
#[derive(Clone, Debug)]
pub enum MapOp {
    /// `insert(k, v)`.
    Insert(u8, u16),
    /// `remove(k)`.
    Remove(u8),
}

impl MapOp {
    /// The key written.
    pub fn key(&self) -> u8 {
        match *self {
            MapOp::Insert(k, _) | MapOp::Remove(k) => k,
        }
    }
    /// The value written (`None` for a removal).
    pub fn value(&self) -> Option<u16> {
        match *self {
            MapOp::Insert(_, v) => Some(v),
            MapOp::Remove(_) => None,
        }
    }
}

impl Subject for LwwMap<u8, u16> {
    type Op = MapOp;
    type Read = Vec<(u8, u16)>;
    type Model = BTreeMap<u8, u16>;
    const FULL_STATE_DELTAS: bool = false;

    fn ops() -> BoxedStrategy<MapOp> {
        prop_oneof![
            3 => (0..4u8, 0u16..8).prop_map(|(k, v)| MapOp::Insert(k, v)),
            1 => (0..4u8).prop_map(MapOp::Remove),
        ]
        .boxed()
    }
    fn perform(&mut self, id: ReplicaId, now: u64, op: &MapOp) -> Option<Self> {
        Some(match *op {
            MapOp::Insert(k, v) => self.insert(id, k, v, now),
            MapOp::Remove(k) => self.remove(id, k, now),
        })
    }
    fn read(&self) -> Vec<(u8, u16)> {
        self.iter().map(|(&k, &v)| (k, v)).collect()
    }
    fn model_step(m: &mut BTreeMap<u8, u16>, _id: ReplicaId, op: &MapOp) -> bool {
        match *op {
            MapOp::Insert(k, v) => {
                m.insert(k, v);
            }
            MapOp::Remove(k) => {
                m.remove(&k);
            }
        }
        true
    }
    fn model_read(m: &BTreeMap<u8, u16>) -> Vec<(u8, u16)> {
        m.iter().map(|(&k, &v)| (k, v)).collect()
    }
}

/// The `(timestamp, replica)` of the single write carried by an
/// [`LwwMap`] mutation delta.
///
/// `LwwMap` does not expose its stamps, so this reads them from the serde
/// form of the delta (`entries: [[key, {stamp, dot, value}]]`), which is the
/// public serialization contract of the type.
pub fn map_delta_stamp(delta: &LwwMap<u8, u16>) -> (HlcTimestamp, ReplicaId) {
    let json = serde_json::to_value(delta).expect("a map serializes to JSON");
    let entries = json["entries"].as_array().expect("entries is a list");
    assert_eq!(entries.len(), 1, "a mutation delta carries one entry");
    let slot = &entries[0][1];
    let num = |v: &Json| v.as_u64().expect("a number");
    let stamp = HlcTimestamp::new(
        num(&slot["stamp"]["physical"]),
        num(&slot["stamp"]["logical"]) as u32,
    );
    (stamp, ReplicaId::new(num(&slot["dot"]["replica"])))
}
