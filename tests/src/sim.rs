//! A simulated network for delta-CRDT replicas.
//!
//! A [`Sim`] holds 2–5 replicas of one [`Subject`] type and runs a
//! [`Schedule`]: local operations, whose deltas are broadcast to every other
//! replica, and an adversarial delivery schedule that reorders, duplicates and
//! drops packets (dropped packets are resent later), plus occasional
//! anti-entropy (`delta_since(version)`) syncs that travel through the same
//! network. Packets may also cross the wire, i.e. be encoded and decoded with
//! [`weft_core::codec`].
//!
//! Besides the states, the simulation records every operation as an [`Event`]
//! together with the set of events its replica had *incorporated* when it was
//! issued (what it "observed"), which is what the concurrent-semantics models
//! need. [`Sim::settle`] resends and delivers everything; afterwards every
//! replica must have converged.

use crate::subjects::Subject;
use proptest::prelude::*;
use proptest::sample::Index;
use std::collections::BTreeSet;
use std::fmt::Debug;
use weft_core::codec::{self, Encode};
use weft_core::ReplicaId;

/// Base of the simulated wall clock (ms since the epoch), far from zero so
/// that replicas whose clocks are behind still have positive clocks.
pub const EPOCH_MS: u64 = 1_700_000_000_000;

/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;

/// One step of a schedule.
#[derive(Clone, Debug)]
pub enum Step<Op> {
    /// Replica `replica` performs `op` after the global clock moved `advance_ms`.
    Op {
        /// Index of the acting replica (taken modulo the replica count).
        replica: usize,
        /// The operation.
        op: Op,
        /// How far the simulated global clock advances first.
        advance_ms: u64,
    },
    /// Delivers one in-flight packet.
    Deliver {
        /// Which packet.
        pick: Index,
        /// Whether a copy stays in flight (a duplicate delivered later).
        duplicate: bool,
        /// Whether the packet goes through `codec::encode`/`decode`.
        wire: bool,
    },
    /// Loses one in-flight packet; it is resent by a later [`Step::Resend`]
    /// or by [`Sim::settle`].
    Drop {
        /// Which packet.
        pick: Index,
    },
    /// Resends every dropped packet.
    Resend,
    /// `to` asks `from` for what it is missing: `from.delta_since(to.version())`
    /// is put in flight to `to`.
    AntiEntropy {
        /// The replica that answers.
        from: usize,
        /// The replica that asked.
        to: usize,
    },
}

/// A generated scenario: replica identities, clock skews and the steps.
#[derive(Clone, Debug)]
pub struct Schedule<Op> {
    /// Distinct replica ids, in replica order.
    pub ids: Vec<ReplicaId>,
    /// Per-replica wall-clock skew in ms (some replicas are hours off).
    pub skews_ms: Vec<i64>,
    /// The steps.
    pub steps: Vec<Step<Op>>,
}

/// A strategy for wall-clock skews: mostly accurate, sometimes a few seconds
/// off, sometimes hours ahead or an hour behind.
pub fn skew_strategy() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => Just(0i64),
        2 => -5_000i64..5_000,
        1 => Just(3 * HOUR_MS),
        1 => Just(-HOUR_MS),
    ]
}

/// A strategy for `n` distinct replica ids in random order (small values, so
/// ties between equal timestamps are broken both ways).
pub fn ids_strategy(n: usize) -> impl Strategy<Value = Vec<ReplicaId>> {
    proptest::collection::btree_set(1u64..64, n).prop_map(|s| {
        // Random order is supplied by the caller's shuffle; ascending here.
        s.into_iter().map(ReplicaId::new).collect::<Vec<_>>()
    })
}

/// A strategy for one step with operations drawn from `ops`.
///
/// `local_weight` tunes how many steps are operations versus network steps.
pub fn step_strategy<Op: Clone + Debug + 'static>(
    ops: BoxedStrategy<Op>,
    local_weight: u32,
) -> impl Strategy<Value = Step<Op>> {
    prop_oneof![
        local_weight => (0usize..5, ops, 0u64..3).prop_map(|(replica, op, advance_ms)| Step::Op {
            replica,
            op,
            advance_ms
        }),
        4 => (any::<Index>(), prop::bool::weighted(0.2), prop::bool::weighted(0.3)).prop_map(
            |(pick, duplicate, wire)| Step::Deliver {
                pick,
                duplicate,
                wire
            }
        ),
        1 => any::<Index>().prop_map(|pick| Step::Drop { pick }),
        1 => Just(Step::Resend),
        1 => (0usize..5, 0usize..5).prop_map(|(from, to)| Step::AntiEntropy { from, to }),
    ]
}

/// A strategy for a whole schedule of `replicas` replicas (a range) and up to
/// `max_steps` steps of operations from `T::ops()`.
pub fn schedule<T: Subject>(
    replicas: std::ops::RangeInclusive<usize>,
    max_steps: usize,
) -> impl Strategy<Value = Schedule<T::Op>>
where
    T::Delta: Encode,
{
    replicas.prop_flat_map(move |n| {
        (
            ids_strategy(n).prop_shuffle(),
            proptest::collection::vec(skew_strategy(), n),
            proptest::collection::vec(step_strategy(T::ops(), 4), 0..=max_steps),
        )
            .prop_map(|(ids, skews_ms, steps)| Schedule {
                ids,
                skews_ms,
                steps,
            })
    })
}

/// One operation as it happened.
#[derive(Clone, Debug)]
pub struct Event<Op, D> {
    /// Index of the replica that performed it.
    pub replica: usize,
    /// Its id.
    pub id: ReplicaId,
    /// The operation.
    pub op: Op,
    /// The wall clock the replica used.
    pub now_ms: u64,
    /// The delta it produced (`None` if the operation was refused).
    pub delta: Option<D>,
    /// Events (indices into [`Sim::events`]) incorporated by the replica
    /// before this one: what this operation observed.
    pub observed: BTreeSet<usize>,
}

/// A packet in flight.
#[derive(Clone, Debug)]
pub struct Packet<D> {
    /// Destination replica.
    pub to: usize,
    /// Payload.
    pub delta: D,
    /// Events the receiver incorporates by applying it.
    pub knowledge: BTreeSet<usize>,
}

/// Replicas, network and history of one simulated run.
#[derive(Debug)]
pub struct Sim<T: Subject> {
    /// Replica ids.
    pub ids: Vec<ReplicaId>,
    /// Wall-clock skews.
    pub skews_ms: Vec<i64>,
    /// Current replica states.
    pub states: Vec<T>,
    /// Per replica, events incorporated so far.
    pub seen: Vec<BTreeSet<usize>>,
    /// Every operation so far.
    pub events: Vec<Event<T::Op, T::Delta>>,
    /// Packets in flight.
    pub in_flight: Vec<Packet<T::Delta>>,
    /// Dropped packets awaiting a resend.
    pub dropped: Vec<Packet<T::Delta>>,
    /// Every state any replica had after one of its own steps.
    pub snapshots: Vec<T>,
    /// Simulated global time.
    pub global_ms: u64,
}

impl<T: Subject> Sim<T>
where
    T::Delta: Encode,
{
    /// Fresh replicas for the schedule's ids and skews.
    pub fn new(ids: Vec<ReplicaId>, skews_ms: Vec<i64>) -> Self {
        let n = ids.len();
        Sim {
            ids,
            skews_ms,
            states: vec![T::default(); n],
            seen: vec![BTreeSet::new(); n],
            events: Vec::new(),
            in_flight: Vec::new(),
            dropped: Vec::new(),
            snapshots: Vec::new(),
            global_ms: EPOCH_MS,
        }
    }

    /// Runs a whole schedule (without settling).
    pub fn run(schedule: &Schedule<T::Op>) -> Self {
        let mut sim = Sim::new(schedule.ids.clone(), schedule.skews_ms.clone());
        for step in &schedule.steps {
            sim.step(step);
        }
        sim
    }

    /// Number of replicas.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether there are no replicas.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// The wall clock of replica `r` now.
    pub fn now_ms(&self, r: usize) -> u64 {
        self.global_ms.saturating_add_signed(self.skews_ms[r])
    }

    /// Replica `r` performs `op`; its delta (if any) is broadcast.
    pub fn local(&mut self, r: usize, op: &T::Op) -> Option<T::Delta> {
        let now_ms = self.now_ms(r);
        let id = self.ids[r];
        let delta = self.states[r].perform(id, now_ms, op);
        let e = self.events.len();
        self.events.push(Event {
            replica: r,
            id,
            op: op.clone(),
            now_ms,
            delta: delta.clone(),
            observed: self.seen[r].clone(),
        });
        self.seen[r].insert(e);
        self.snapshots.push(self.states[r].clone());
        if let Some(d) = &delta {
            let knowledge = if T::FULL_STATE_DELTAS {
                self.seen[r].clone()
            } else {
                BTreeSet::from([e])
            };
            for to in (0..self.len()).filter(|&to| to != r) {
                self.in_flight.push(Packet {
                    to,
                    delta: d.clone(),
                    knowledge: knowledge.clone(),
                });
            }
        }
        delta
    }

    /// Applies a packet to its destination, optionally over the wire.
    pub fn deliver(&mut self, p: &Packet<T::Delta>, wire: bool) {
        if wire {
            let bytes = codec::encode(&p.delta);
            let back: T::Delta = codec::decode(&bytes).expect("a delta decodes");
            assert_eq!(back, p.delta, "delta round-trips through the codec");
            self.states[p.to].apply(&back);
        } else {
            self.states[p.to].apply(&p.delta);
        }
        self.seen[p.to].extend(p.knowledge.iter().copied());
    }

    /// `from.delta_since(to.version())`, put in flight to `to`.
    pub fn anti_entropy(&mut self, from: usize, to: usize) {
        let delta = self.states[from].delta_since(&self.states[to].version());
        self.in_flight.push(Packet {
            to,
            delta,
            knowledge: self.seen[from].clone(),
        });
    }

    /// Runs one step.
    pub fn step(&mut self, step: &Step<T::Op>) {
        let n = self.len();
        match step {
            Step::Op {
                replica,
                op,
                advance_ms,
            } => {
                self.global_ms += advance_ms;
                self.local(replica % n, op);
            }
            Step::Deliver {
                pick,
                duplicate,
                wire,
            } => {
                if self.in_flight.is_empty() {
                    return;
                }
                let i = pick.index(self.in_flight.len());
                let p = if *duplicate {
                    self.in_flight[i].clone()
                } else {
                    self.in_flight.swap_remove(i)
                };
                self.deliver(&p, *wire);
            }
            Step::Drop { pick } => {
                if self.in_flight.is_empty() {
                    return;
                }
                let i = pick.index(self.in_flight.len());
                let p = self.in_flight.swap_remove(i);
                self.dropped.push(p);
            }
            Step::Resend => self.in_flight.append(&mut self.dropped),
            Step::AntiEntropy { from, to } => {
                let (from, to) = (from % n, to % n);
                if from != to {
                    self.anti_entropy(from, to);
                }
            }
        }
    }

    /// Resends every dropped packet and delivers everything in flight, newest
    /// first (so the order differs from the sending order).
    pub fn settle(&mut self) {
        self.in_flight.append(&mut self.dropped);
        while let Some(p) = self.in_flight.pop() {
            self.deliver(&p, false);
        }
    }

    /// Every state the run produced: snapshots and current states.
    pub fn reachable_states(&self) -> Vec<T> {
        let mut out = self.snapshots.clone();
        out.extend(self.states.iter().cloned());
        out
    }

    /// Every delta the run produced.
    pub fn deltas(&self) -> Vec<T::Delta> {
        self.events.iter().filter_map(|e| e.delta.clone()).collect()
    }
}
