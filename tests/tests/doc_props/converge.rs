//! Convergence of replicas, and diff/apply against merge.

use proptest::prelude::*;
use proptest::sample::Index;
use weft_core::doc::ApplyStatus;
use weft_core::{Doc, ReplicaId, VersionVector};
use weft_tests::doc_sim::{config, load, read_doc, scenario, DocSim, Profile};

/// After everything is delivered, every replica holds the same document.
fn assert_converged(sim: &DocSim) -> Result<(), TestCaseError> {
    let first = &sim.docs[0];
    let reads = read_doc(first).map_err(|e| TestCaseError::fail(format!("read: {e}")))?;
    for (r, d) in sim.docs.iter().enumerate() {
        prop_assert_eq!(
            d.pending_updates(),
            0,
            "replica {} still has pending updates",
            r
        );
        prop_assert_eq!(d.version(), first.version(), "replica {} version", r);
        prop_assert_eq!(d, first, "replica {} diverged", r);
        let mine = read_doc(d).map_err(|e| TestCaseError::fail(format!("read: {e}")))?;
        prop_assert_eq!(&mine, &reads, "replica {} reads differently", r);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Random transactions on 2–5 replicas, updates reordered, duplicated,
    /// dropped and resent, anti-entropy diffs, merges and restarts: once
    /// everything is delivered all replicas are equal, nothing is pending,
    /// every read agrees, and the result is what merging every replica's
    /// pre-settle state gives.
    #[test]
    fn replicas_converge(s in scenario(2..=5, 60, Profile::CONVERGE)) {
        let mut sim = DocSim::run(&s)?;
        let mut joined = Doc::new(ReplicaId::new(1000));
        for d in &sim.docs {
            joined.merge(d);
        }
        sim.settle()?;
        assert_converged(&sim)?;
        prop_assert_eq!(&joined, &sim.docs[0], "settled state != merge of all states");
        prop_assert_eq!(joined.pending_updates(), 0);
        // Every committed update is now known everywhere.
        for d in &mut sim.docs {
            for u in &sim.updates {
                prop_assert_eq!(d.apply(u).map(|r| r.status).ok(), Some(ApplyStatus::Duplicate));
            }
        }
    }

    /// `b.apply(a.diff(b.version()))` equals `b.merge(a)`; a diff against
    /// one's own version is a duplicate; a diff against the empty version
    /// rebuilds the document.
    #[test]
    fn diff_apply_equals_merge(
        s in scenario(2..=4, 30, Profile::CONVERGE),
        i in any::<Index>(),
        j in any::<Index>(),
    ) {
        let sim = DocSim::run(&s)?;
        let pool = sim.reachable();
        let a = load(i.get::<Vec<u8>>(&pool), ReplicaId::new(900));
        let b = j.get::<Vec<u8>>(&pool).clone();
        let mut b1 = load(&b, ReplicaId::new(901));
        let mut b2 = load(&b, ReplicaId::new(901));
        let diff = a.diff(b1.version());
        let r1 = b1.apply(&diff).map_err(|e| TestCaseError::fail(format!("apply: {e}")))?;
        let r2 = b2.merge(&a);
        prop_assert!(b1.version().dominates(a.version()));
        if a.pending_updates() == 0 {
            prop_assert_eq!(&b1, &b2, "diff+apply != merge");
            prop_assert_eq!(b1.pending_updates(), b2.pending_updates());
            prop_assert_eq!(&r1, &r2);
        } else {
            // merge also hands over a's pending updates; with every update
            // delivered to both, they agree again.
            prop_assert!(b2.version().dominates(b1.version()));
            for u in &sim.updates {
                b1.apply(u).map_err(|e| TestCaseError::fail(format!("{e}")))?;
                b2.apply(u).map_err(|e| TestCaseError::fail(format!("{e}")))?;
            }
            prop_assert_eq!(&b1, &b2);
        }
        prop_assert_eq!(read_doc(&b1).ok(), read_doc(&b2).ok());
        // The same diff again, and a diff against one's own version, are no-ops.
        let before = b1.save();
        prop_assert_eq!(b1.apply(&diff).map(|r| r.status).ok(), Some(ApplyStatus::Duplicate));
        let own = b1.diff(b1.version());
        prop_assert_eq!(b1.apply(&own).map(|r| r.status).ok(), Some(ApplyStatus::Duplicate));
        prop_assert_eq!(b1.save(), before);
        // The full diff rebuilds `a` (values and version; pending stays behind).
        let mut fresh = Doc::new(ReplicaId::new(902));
        let full = fresh.apply(&a.diff(&VersionVector::new()))
            .map_err(|e| TestCaseError::fail(format!("apply: {e}")))?;
        let expected = if a.version().is_empty() { ApplyStatus::Duplicate } else { ApplyStatus::Applied };
        prop_assert_eq!(full.status, expected);
        prop_assert_eq!(&fresh, &a);
        prop_assert_eq!(read_doc(&fresh).ok(), read_doc(&a).ok());
    }
}
