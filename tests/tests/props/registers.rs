//! Register semantics: last-writer-wins by `(timestamp, replica)` with the
//! hybrid-logical-clock rule, and multi-value registers keeping exactly the
//! concurrent maximal writes.

use crate::props_common::config;
use proptest::prelude::*;
use std::collections::BTreeSet;
use weft_core::{Crdt, Dot, HlcTimestamp, LwwRegister, MvRegister, ReplicaId};
use weft_tests::sim::{schedule, skew_strategy, Sim, HOUR_MS};
use weft_tests::subjects::RegOp;

type Lww = LwwRegister<u16>;
type Mv = MvRegister<u16>;

/// The `(timestamp, replica)` of each write, from its delta.
fn lww_stamps(sim: &Sim<Lww>) -> Vec<(HlcTimestamp, ReplicaId)> {
    sim.events
        .iter()
        .map(|e| {
            e.delta
                .as_ref()
                .and_then(|d| d.stamp())
                .expect("a write has a stamp")
        })
        .collect()
}

/// Model of an LWW read-out over a set of writes: the value of the write
/// with the greatest `(timestamp, replica)`.
fn lww_model(
    sim: &Sim<Lww>,
    stamps: &[(HlcTimestamp, ReplicaId)],
    writes: &BTreeSet<usize>,
) -> Option<(u16, (HlcTimestamp, ReplicaId))> {
    writes
        .iter()
        .max_by_key(|&&e| stamps[e])
        .map(|&e| (sim.events[e].op.value(), stamps[e]))
}

/// The writes of a multi-value register that no other write in `writes`
/// observed, as `(dot, value)` in dot order. A write's dot is its replica's
/// count of writes so far.
fn mv_model(sim: &Sim<Mv>, writes: &BTreeSet<usize>) -> Vec<u16> {
    let mut dots = Vec::with_capacity(sim.events.len());
    for (i, e) in sim.events.iter().enumerate() {
        let n = sim.events[..=i]
            .iter()
            .filter(|o| o.replica == e.replica)
            .count();
        dots.push(Dot::new(e.id, n as u64));
    }
    let mut maximal: Vec<(Dot, u16)> = writes
        .iter()
        .filter(|&&e| !writes.iter().any(|&f| sim.events[f].observed.contains(&e)))
        .map(|&e| (dots[e], sim.events[e].op.value()))
        .collect();
    maximal.sort();
    maximal.into_iter().map(|(_, v)| v).collect()
}

proptest! {
    #![proptest_config(config())]

    /// HLC rule: every write is stamped after every write it observed, and
    /// no earlier than its wall clock; every replica (before and after
    /// convergence) holds the write with the greatest (timestamp, replica)
    /// among those it has seen.
    #[test]
    fn lww_register_max_stamp_wins(s in schedule::<Lww>(2..=5, 160)) {
        let mut sim = Sim::<Lww>::run(&s);
        let stamps = lww_stamps(&sim);
        for (i, e) in sim.events.iter().enumerate() {
            prop_assert_eq!(stamps[i].1, e.id);
            prop_assert!(stamps[i].0 >= HlcTimestamp::new(e.now_ms, 0));
            for &o in &e.observed {
                prop_assert!(stamps[o].0 < stamps[i].0,
                    "write {} observed write {} but is not stamped after it", i, o);
            }
        }
        for r in 0..sim.len() {
            let want = lww_model(&sim, &stamps, &sim.seen[r]);
            prop_assert_eq!(sim.states[r].get().copied(), want.map(|w| w.0));
            prop_assert_eq!(sim.states[r].stamp(), want.map(|w| w.1));
        }
        sim.settle();
        let all: BTreeSet<usize> = (0..sim.events.len()).collect();
        let want = lww_model(&sim, &stamps, &all);
        for st in &sim.states {
            prop_assert_eq!(st.get().copied(), want.map(|w| w.0));
            prop_assert_eq!(st.stamp(), want.map(|w| w.1));
        }
    }

    /// A replica whose clock is hours ahead writes; a replica with a correct
    /// (or slow) clock that received that write then writes: the later write
    /// wins everywhere, whatever the clocks say.
    #[test]
    fn lww_register_observed_write_wins_over_fast_clock(
        s in schedule::<Lww>(2..=4, 30),
        slow_skew in skew_strategy(),
        fast_hours in 4i64..48,
        (v1, v2) in (0u16..8, 8u16..16),
    ) {
        let mut sim = Sim::<Lww>::run(&s);
        sim.skews_ms[0] = fast_hours * HOUR_MS;
        sim.skews_ms[1] = slow_skew.min(0);
        sim.local(0, &RegOp::Set(v1));
        sim.settle();
        prop_assert_eq!(sim.states[1].get(), Some(&v1));
        sim.local(1, &RegOp::Set(v2));
        sim.settle();
        for st in &sim.states {
            prop_assert_eq!(st.get(), Some(&v2));
        }
    }

    /// Every multi-value replica holds exactly the maximal writes among those
    /// it has seen (a write's causal past is what its replica had seen), in
    /// dot order; after convergence all hold the globally maximal writes.
    #[test]
    fn mv_register_keeps_concurrent_maximal_writes(s in schedule::<Mv>(2..=5, 160), v in 100u16..200, w in any::<prop::sample::Index>()) {
        let mut sim = Sim::<Mv>::run(&s);
        for r in 0..sim.len() {
            let want = mv_model(&sim, &sim.seen[r]);
            let got: Vec<u16> = sim.states[r].values().copied().collect();
            prop_assert_eq!(got, want);
        }
        sim.settle();
        let all: BTreeSet<usize> = (0..sim.events.len()).collect();
        let want = mv_model(&sim, &all);
        for st in &sim.states {
            prop_assert_eq!(st.values().copied().collect::<Vec<_>>(), want.clone());
            prop_assert_eq!(st.is_conflicted(), want.len() > 1);
            prop_assert_eq!(st.get().copied(), if want.len() == 1 { Some(want[0]) } else { None });
        }
        // A write that saw all of them collapses the register everywhere.
        let r = w.index(sim.len());
        sim.local(r, &RegOp::Set(v));
        sim.settle();
        for st in &sim.states {
            prop_assert_eq!(st.values().copied().collect::<Vec<_>>(), vec![v]);
            prop_assert_eq!(st.get(), Some(&v));
            prop_assert!(!st.is_conflicted());
        }
        prop_assert_eq!(&sim.states[0].version(), &sim.states[r].version());
    }
}
