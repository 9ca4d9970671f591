//! One replica against a sequential model, errors included.

use proptest::prelude::*;
use weft_core::{Doc, ReplicaId};
use weft_tests::doc_sim::{
    config, read_doc, reset_clock, run_tx, tx_strategy, Model, Profile, CLOCKS,
};

proptest! {
    #![proptest_config(config())]

    /// Every transaction succeeds or fails exactly as the model says (same
    /// error, same path, index and length), a failed one changes nothing,
    /// and after each one the document reads like the model.
    #[test]
    fn one_replica_matches_the_model(
        txs in proptest::collection::vec(tx_strategy(Profile::ALL), 0..30),
        clock in 0..CLOCKS.len(),
    ) {
        reset_clock();
        let mut doc = Doc::new(ReplicaId::new(7)).with_clock(CLOCKS[clock]);
        let mut model = Model::default();
        // A follower applying each update in order stays identical.
        let mut follower = Doc::new(ReplicaId::new(8));
        for spec in &txs {
            let before = doc.save();
            let expected = model.transact(spec);
            let got = run_tx(&mut doc, spec);
            match (expected, got) {
                (Ok(next), Ok(update)) => {
                    model = next;
                    let r = follower.apply(&update).map_err(|e| TestCaseError::fail(format!("{e}")))?;
                    prop_assert_eq!(r.pending, 0);
                }
                (Err(want), Err(e)) => {
                    prop_assert_eq!(e, want);
                    prop_assert_eq!(doc.save(), before, "a failed transaction changed the doc");
                }
                (want, got) => {
                    return Err(TestCaseError::fail(format!(
                        "model says {:?}, doc says {:?} for {:?}",
                        want.map(|_| ()), got.map(|_| ()), spec
                    )));
                }
            }
            let read = read_doc(&doc).map_err(|e| TestCaseError::fail(format!("read: {e}")))?;
            prop_assert_eq!(read, model.read());
            prop_assert_eq!(&follower, &doc);
            let steps = doc.version().get(ReplicaId::new(7));
            prop_assert!(steps <= txs.len() as u64, "at most one version step per transaction");
        }
    }
}
