//! Set and map semantics: add-wins observed-remove set; per-key
//! last-writer-wins map with removals.

use crate::props_common::config;
use proptest::prelude::*;
use proptest::sample::Index;
use std::collections::{BTreeMap, BTreeSet};
use weft_core::{HlcTimestamp, LwwMap, OrSet, ReplicaId};
use weft_tests::sim::{schedule, skew_strategy, Sim, HOUR_MS};
use weft_tests::subjects::{map_delta_stamp, MapOp, SetOp, ELEMENTS};

type Set = OrSet<u8>;
type Map = LwwMap<u8, u16>;

/// Add-wins model after full delivery: `x` is present iff some `add(x)` was
/// observed by no later operation on `x` (add, remove or clear).
fn or_set_model(sim: &Sim<Set>) -> Vec<u8> {
    (0..ELEMENTS)
        .filter(|&x| {
            sim.events.iter().enumerate().any(|(e, ev)| {
                matches!(ev.op, SetOp::Add(y) if y == x)
                    && !sim
                        .events
                        .iter()
                        .any(|f| f.op.touches(x) && f.observed.contains(&e))
            })
        })
        .collect()
}

/// Per-key LWW model over a set of writes: for each key the write with the
/// greatest `(timestamp, replica)`; present keys with their values.
fn map_model(
    sim: &Sim<Map>,
    stamps: &[(HlcTimestamp, ReplicaId)],
    writes: &BTreeSet<usize>,
) -> Vec<(u8, u16)> {
    let mut winners: BTreeMap<u8, usize> = BTreeMap::new();
    for &e in writes {
        let k = sim.events[e].op.key();
        let w = winners.entry(k).or_insert(e);
        if stamps[e] > stamps[*w] {
            *w = e;
        }
    }
    winners
        .into_iter()
        .filter_map(|(k, e)| sim.events[e].op.value().map(|v| (k, v)))
        .collect()
}

fn map_stamps(sim: &Sim<Map>) -> Vec<(HlcTimestamp, ReplicaId)> {
    sim.events
        .iter()
        .map(|e| map_delta_stamp(e.delta.as_ref().expect("map writes have deltas")))
        .collect()
}

proptest! {
    #![proptest_config(config())]

    /// After convergence the set is exactly the add-wins model: an add
    /// survives unless a remove, clear or re-add observed it.
    #[test]
    fn or_set_add_wins(s in schedule::<Set>(2..=5, 160)) {
        let mut sim = Sim::<Set>::run(&s);
        sim.settle();
        let want = or_set_model(&sim);
        for st in &sim.states {
            prop_assert_eq!(st.iter().copied().collect::<Vec<_>>(), want.clone());
        }
    }

    /// Directly: an element added on one replica while another (that had
    /// seen it) removes it survives; a remove that then observes every add
    /// removes it everywhere, and stale duplicates of the adds do not bring
    /// it back.
    #[test]
    fn or_set_concurrent_add_beats_remove(s in schedule::<Set>(2..=4, 30), x in 0..ELEMENTS, i in any::<Index>()) {
        let mut sim = Sim::<Set>::run(&s);
        sim.settle();
        let n = sim.len();
        let (a, b) = (i.index(n), (i.index(n) + 1) % n);
        let first = sim.local(a, &SetOp::Add(x)).expect("delta");
        sim.settle();
        let add = sim.local(a, &SetOp::Add(x)).expect("delta");
        sim.local(b, &SetOp::Remove(x));
        sim.settle();
        for st in &sim.states {
            prop_assert!(st.contains(&x), "add lost to a concurrent remove");
        }
        sim.local(b, &SetOp::Remove(x));
        sim.settle();
        for st in sim.states.iter_mut() {
            prop_assert!(!st.contains(&x), "remove that saw every add did not remove");
            weft_core::Crdt::apply(st, &add);
            weft_core::Crdt::apply(st, &first);
            prop_assert!(!st.contains(&x), "stale add resurrected a removed element");
        }
    }

    /// HLC rule per key (a write is stamped after every write to the same key
    /// it observed, and no earlier than its wall clock); each replica, before
    /// and after convergence, holds per key the greatest (timestamp, replica)
    /// write it has seen, a removal hiding the key.
    #[test]
    fn lww_map_per_key_max_stamp_wins(s in schedule::<Map>(2..=5, 160)) {
        let mut sim = Sim::<Map>::run(&s);
        let stamps = map_stamps(&sim);
        for (i, e) in sim.events.iter().enumerate() {
            prop_assert_eq!(stamps[i].1, e.id);
            prop_assert!(stamps[i].0 >= HlcTimestamp::new(e.now_ms, 0));
            for &o in e.observed.iter().filter(|&&o| sim.events[o].op.key() == e.op.key()) {
                prop_assert!(stamps[o].0 < stamps[i].0,
                    "write {} observed write {} to its key but is not stamped after it", i, o);
            }
        }
        for r in 0..sim.len() {
            let got: Vec<(u8, u16)> = sim.states[r].iter().map(|(&k, &v)| (k, v)).collect();
            prop_assert_eq!(got, map_model(&sim, &stamps, &sim.seen[r]));
        }
        sim.settle();
        let all: BTreeSet<usize> = (0..sim.events.len()).collect();
        let want = map_model(&sim, &stamps, &all);
        for st in &sim.states {
            prop_assert_eq!(st.iter().map(|(&k, &v)| (k, v)).collect::<Vec<_>>(), want.clone());
            prop_assert_eq!(st.len(), want.len());
        }
    }

    /// Two replicas edit different keys offline (one with a clock hours
    /// ahead); after merging both edits are present everywhere. Then a
    /// replica with a correct clock that saw the fast edit overwrites it and
    /// removes the other key: both win everywhere, and a stale duplicate of
    /// the old insert does not resurrect the removed key.
    #[test]
    fn lww_map_concurrent_keys_survive_and_removal(
        s in schedule::<Map>(2..=4, 30),
        (ka, kb) in (0u8..4, 0u8..4).prop_filter("distinct keys", |(a, b)| a != b),
        (va, vb, vc) in (100u16..200, 200u16..300, 300u16..400),
        slow in skew_strategy(),
    ) {
        let mut sim = Sim::<Map>::run(&s);
        sim.settle();
        sim.skews_ms[0] = 5 * HOUR_MS;
        sim.skews_ms[1] = slow.min(0);
        let old = sim.local(0, &MapOp::Insert(ka, va)).expect("delta");
        let old_b = sim.local(1, &MapOp::Insert(kb, vb)).expect("delta");
        sim.settle();
        for st in &sim.states {
            prop_assert_eq!(st.get(&ka), Some(&va));
            prop_assert_eq!(st.get(&kb), Some(&vb));
        }
        sim.local(1, &MapOp::Insert(ka, vc));
        sim.local(1, &MapOp::Remove(kb));
        sim.settle();
        for st in sim.states.iter_mut() {
            weft_core::Crdt::apply(st, &old);
            weft_core::Crdt::apply(st, &old_b);
            prop_assert_eq!(st.get(&ka), Some(&vc), "a write that saw the fast write lost to it");
            prop_assert_eq!(st.get(&kb), None, "removed key came back");
            prop_assert!(!st.contains_key(&kb));
            prop_assert!(st.removed_keys() >= 1);
        }
    }
}
