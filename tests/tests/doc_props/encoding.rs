//! The bytes a transaction returns are written by hand for speed
//! (`weft_core`'s `doc/local_update.rs`); they must be exactly serde's
//! encoding of the update they decode to, or peers decoding with serde
//! would one day disagree with the writer.

use proptest::prelude::*;
use weft_core::doc::forge::Forgery;
use weft_core::doc::UndoManager;
use weft_core::{Doc, ReplicaId};
use weft_tests::doc_sim::{config, read_doc, run_tx, scenario, tx_strategy, DocSim, Profile};

/// `bytes` re-encoded by serde after a decode equals `bytes`.
fn canonical(bytes: &[u8]) -> Result<(), TestCaseError> {
    let body =
        Forgery::from_update(bytes).map_err(|e| TestCaseError::fail(format!("decode: {e}")))?;
    prop_assert_eq!(
        body.encode(),
        bytes.to_vec(),
        "hand-written bytes differ from serde's"
    );
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Every update the replicas of a random run committed (texts, lists,
    /// counters, registers, sets, nested maps, several values per
    /// transaction) is serde's encoding of its body.
    #[test]
    fn committed_updates_are_serdes_encoding(s in scenario(1..=3, 40, Profile::CONVERGE)) {
        let sim = DocSim::run(&s)?;
        for u in &sim.updates {
            canonical(u)?;
        }
    }

    /// The same with and without an undo manager recording every
    /// transaction (two commit paths: with it, deltas are built for the
    /// undo step), and for the undo and redo steps; a peer applying the
    /// updates ends equal to the author.
    #[test]
    fn local_updates_are_serdes_encoding_and_apply_to_the_same_document(
        txs in proptest::collection::vec(tx_strategy(Profile::CONVERGE), 1..20),
        undo in any::<bool>(),
    ) {
        let mut doc = Doc::new(ReplicaId::new(3));
        if undo {
            doc.set_undo_manager(Some(UndoManager::new().capture_window(0)));
        }
        let mut peer = Doc::new(ReplicaId::new(4));
        let mut check = |bytes: Vec<u8>| -> Result<(), TestCaseError> {
            canonical(&bytes)?;
            peer.apply(&bytes).map_err(|e| TestCaseError::fail(format!("apply: {e}")))?;
            Ok(())
        };
        for tx in &txs {
            if let Ok(bytes) = run_tx(&mut doc, tx) {
                check(bytes)?;
            }
        }
        while let Ok(Some(bytes)) = doc.undo() {
            check(bytes)?;
        }
        while let Ok(Some(bytes)) = doc.redo() {
            check(bytes)?;
        }
        prop_assert_eq!(read_doc(&peer).ok(), read_doc(&doc).ok());
        prop_assert_eq!(&peer, &doc);
    }
}
