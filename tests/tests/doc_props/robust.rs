//! Damaged or arbitrary bytes never panic `apply` or `load`; a refused
//! input changes nothing; an accepted one leaves a working document.

use proptest::prelude::*;
use proptest::sample::Index;
use weft_core::codec::{FORMAT_VERSION, MAGIC};
use weft_core::{Doc, ReplicaId, VersionVector};
use weft_tests::doc_sim::{
    config, load, read_doc, run_tx, scenario, tx_strategy, DocSim, Profile, CLOCKS,
};
use weft_tests::laws::{mutate, mutation};

/// A document that accepted untrusted bytes still reads, diffs, saves,
/// loads and commits without panicking.
fn still_works(d: &mut Doc, tx: &weft_tests::doc_sim::TxSpec) -> Result<(), TestCaseError> {
    let _ = read_doc(d);
    let full = d.diff(&VersionVector::new());
    let mut fresh = Doc::new(ReplicaId::new(600));
    let _ = fresh.apply(&full);
    let snap = d.save();
    let back = Doc::load(&snap, ReplicaId::new(601));
    prop_assert!(
        back.is_ok(),
        "a saved document does not load: {:?}",
        back.err()
    );
    let _ = run_tx(d, tx);
    let _ = d.diff(&VersionVector::new());
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Bit flips, truncations, insertions and deletions of valid updates,
    /// diffs and snapshots.
    #[test]
    fn damaged_bytes_never_panic(
        s in scenario(2..=3, 16, Profile::CONVERGE),
        pick in any::<Index>(),
        target in any::<Index>(),
        muts in proptest::collection::vec(mutation(), 1..4),
        tx in tx_strategy(Profile::STABLE),
    ) {
        let sim = DocSim::run(&s)?;
        let pool = sim.reachable();
        let mut inputs: Vec<Vec<u8>> = sim.updates.clone();
        inputs.extend(pool.iter().cloned());
        for d in &sim.docs {
            inputs.push(d.diff(&VersionVector::new()));
            inputs.push(d.diff(sim.docs[0].version()));
        }
        let bytes = mutate(pick.get(&inputs).clone(), &muts);
        let mut d = load(target.get::<Vec<u8>>(&pool), ReplicaId::new(500)).with_clock(CLOCKS[0]);
        let before = d.save();
        match d.apply(&bytes) {
            Ok(_) => still_works(&mut d, &tx)?,
            Err(_) => prop_assert_eq!(d.save(), before, "a refused update changed the doc"),
        }
        if let Ok(mut loaded) = Doc::load(&bytes, ReplicaId::new(502)) {
            loaded = loaded.with_clock(CLOCKS[0]);
            still_works(&mut loaded, &tx)?;
        }
    }

    /// Arbitrary bodies after a valid update or snapshot header.
    #[test]
    fn arbitrary_bytes_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..96),
        kind in prop_oneof![Just(12u8), Just(13u8), any::<u8>()],
        header in any::<bool>(),
        tx in tx_strategy(Profile::STABLE),
    ) {
        let mut bytes = Vec::new();
        if header {
            bytes.extend_from_slice(&MAGIC);
            bytes.push(FORMAT_VERSION);
            bytes.push(kind);
        }
        bytes.extend_from_slice(&body);
        let mut d = Doc::new(ReplicaId::new(1)).with_clock(CLOCKS[0]);
        d.transact(|t| t.text("t")?.insert(0, "seed")).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        let before = d.save();
        match d.apply(&bytes) {
            Ok(_) => still_works(&mut d, &tx)?,
            Err(_) => prop_assert_eq!(d.save(), before),
        }
        if let Ok(mut loaded) = Doc::load(&bytes, ReplicaId::new(2)) {
            loaded = loaded.with_clock(CLOCKS[0]);
            still_works(&mut loaded, &tx)?;
        }
    }
}
