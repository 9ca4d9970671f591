//! Snapshots: `save` then `load` gives the same document, pending updates
//! included.

use proptest::prelude::*;
use proptest::sample::Index;
use weft_core::doc::ApplyStatus;
use weft_core::{Doc, ReplicaId};
use weft_tests::doc_sim::{
    config, read_doc, reset_clock, run_tx, scenario, tx_strategy, DocSim, Profile, CLOCKS,
};

proptest! {
    #![proptest_config(config())]

    /// Every reachable state round-trips, and the reloaded replica goes on
    /// exactly like the original: same next update for the same edit.
    #[test]
    fn save_load_roundtrip(s in scenario(2..=4, 30, Profile::CONVERGE), i in any::<Index>(), tx in tx_strategy(Profile::STABLE)) {
        let sim = DocSim::run(&s)?;
        let pool = sim.reachable();
        let snap = i.get::<Vec<u8>>(&pool);
        let id = ReplicaId::new(77);
        let mut a = Doc::load(snap, id).map_err(|e| TestCaseError::fail(format!("load: {e}")))?.with_clock(CLOCKS[0]);
        let mut b = Doc::load(&a.save(), id).map_err(|e| TestCaseError::fail(format!("load: {e}")))?.with_clock(CLOCKS[0]);
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(a.save(), snap.clone());
        prop_assert_eq!(a.pending_updates(), b.pending_updates());
        prop_assert_eq!(read_doc(&a).ok(), read_doc(&b).ok());
        reset_clock();
        let ua = run_tx(&mut a, &tx).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        reset_clock();
        let ub = run_tx(&mut b, &tx).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(ua, ub, "a reloaded doc commits the same update");
        prop_assert_eq!(&a, &b);
        // Pending updates survive the snapshot and apply when the gap fills.
        for u in &sim.updates {
            a.apply(u).map_err(|e| TestCaseError::fail(format!("{e}")))?;
            b.apply(u).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        }
        prop_assert_eq!(a.pending_updates(), 0);
        prop_assert_eq!(&a, &b);
    }
}

#[test]
fn pending_update_survives_save_and_load() {
    let mut src = Doc::new(ReplicaId::new(1));
    let u1 = src.transact(|tx| tx.text("t")?.insert(0, "ab")).unwrap();
    let u2 = src
        .transact(|tx| {
            tx.text("t")?.insert(2, "cd")?;
            tx.counter("n")?.increment(2)
        })
        .unwrap();
    let mut dst = Doc::new(ReplicaId::new(2));
    dst.transact(|tx| tx.set::<u8>("s")?.add(&9)).unwrap();
    let r = dst.apply(&u2).unwrap();
    assert_eq!(r.status, ApplyStatus::Pending);
    assert_eq!(r.missing.get(ReplicaId::new(1)), 1);

    let snap = dst.save();
    let mut back = Doc::load(&snap, ReplicaId::new(2)).unwrap();
    assert_eq!(back, dst);
    assert_eq!(
        back.pending_updates(),
        1,
        "the pending update is in the snapshot"
    );
    assert_eq!(back.save(), snap);
    assert_eq!(back.text("t").unwrap().to_string(), "");

    let r = back.apply(&u1).unwrap();
    assert_eq!(
        (r.status, r.unblocked, r.pending),
        (ApplyStatus::Applied, 1, 0)
    );
    assert!(r.missing.is_empty());
    assert_eq!(back.text("t").unwrap().to_string(), "abcd");
    assert_eq!(back.counter("n").unwrap(), 2);
    assert_eq!(back.set::<u8>("s").unwrap().to_vec().unwrap(), vec![9]);
    assert!(back.version().dominates(src.version()));
    // And it keeps editing as replica 2 without clashing with its past.
    let u3 = back.transact(|tx| tx.set::<u8>("s")?.add(&10)).unwrap();
    src.apply(&dst.diff(src.version())).unwrap();
    src.apply(&u3).unwrap();
    let mut check = Doc::new(ReplicaId::new(3));
    check.merge(&back);
    assert_eq!(check, src);
}

#[test]
fn empty_doc_round_trips() {
    let d = Doc::new(ReplicaId::new(1));
    let back = Doc::load(&d.save(), ReplicaId::new(1)).unwrap();
    assert_eq!(back, d);
    assert!(back.version().is_empty());
    assert_eq!(back.save(), d.save());
}
