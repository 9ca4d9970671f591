//! An update's claims checked against its content, and the checks that need
//! the receiving document's state (issue 11): forged versions and
//! translation runs, transactions of the receiver's own replica, a
//! transaction already held with another shape, decoded-size and author
//! caps.

use proptest::prelude::*;
use proptest::sample::Index;
use weft_core::doc::forge::Forgery;
use weft_core::doc::{ApplyStatus, Limits};
use weft_core::{DecodeError, Doc, DocError, ReplicaId, Update, VersionVector};
use weft_tests::doc_sim::{config, scenario, DocSim, Profile};

/// A document that has applied every update of `sim`.
fn full(sim: &DocSim) -> Result<Doc, TestCaseError> {
    let mut doc = Doc::new(ReplicaId::new(950));
    for u in &sim.updates {
        doc.apply(u)
            .map_err(|e| TestCaseError::fail(format!("honest update refused: {e}")))?;
    }
    prop_assert_eq!(doc.pending_updates(), 0);
    Ok(doc)
}

/// The updates that carry at least one transaction.
fn carrying(sim: &DocSim) -> Vec<Update> {
    sim.updates
        .iter()
        .filter_map(|u| Update::decode(u.clone(), &Limits::default()).ok())
        .filter(|u| !u.carries_nothing())
        .collect()
}

/// `doc` after trying `bytes`: refused or a duplicate, and unchanged.
fn refused_or_noop(doc: &mut Doc, bytes: &[u8], what: &str) -> Result<(), TestCaseError> {
    let before = doc.save();
    match doc.apply(bytes) {
        Err(_) => {}
        Ok(r) => prop_assert_eq!(
            r.status,
            ApplyStatus::Duplicate,
            "{} was applied as new",
            what
        ),
    }
    prop_assert_eq!(doc.save(), before, "{} changed the document", what);
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Claims a real update's content does not back — `to` advanced past
    /// what it carries, a replica claimed without any run, its runs
    /// dropped — are refused by any receiver, which stays unchanged; and a
    /// receiver that saw them still converges once the real updates arrive
    /// (nothing honest is mistaken for a duplicate).
    #[test]
    fn claims_beyond_content_are_refused(
        s in scenario(2..=4, 30, Profile::CONVERGE),
        pick in any::<Index>(),
        bump in 1u64..1_000_000,
    ) {
        let sim = DocSim::run(&s)?;
        let updates = carrying(&sim);
        prop_assume!(!updates.is_empty());
        let u = pick.get(&updates);
        let (author, range) = u.authors().next().expect("carries a transaction");
        let mut forgeries = Vec::new();
        let mut f = Forgery::from_update(u.as_bytes()).unwrap();
        f.to_mut().set(author, range.end() + bump);
        forgeries.push(("to past the content", f.encode()));
        let mut f = Forgery::from_update(u.as_bytes()).unwrap();
        f.to_mut().set(ReplicaId::new(4242), u64::MAX);
        forgeries.push(("u64::MAX for an unseen replica", f.encode()));
        let mut f = Forgery::empty();
        f.to_mut().set(author, bump);
        forgeries.push(("claims and no content", f.encode()));
        let mut f = Forgery::from_update(u.as_bytes()).unwrap();
        f.drop_runs();
        forgeries.push(("runs dropped", f.encode()));

        let mut fresh = Doc::new(ReplicaId::new(951));
        let mut known = full(&sim)?;
        for (what, bytes) in &forgeries {
            prop_assert!(fresh.apply(bytes).is_err(), "fresh receiver took {}", what);
            prop_assert!(fresh.version().is_empty());
            refused_or_noop(&mut known, bytes, what)?;
        }
        for u in &sim.updates {
            fresh.apply(u).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        }
        prop_assert_eq!(&fresh, &known, "a refused forgery cost an honest update");
    }

    /// A copy of a held transaction with another shape (its runs' value
    /// counters shifted, or another writer's transaction renamed onto it)
    /// is a conflict or a no-op, never a change; a receiver never takes
    /// transactions of its own replica that it did not make.
    #[test]
    fn held_transactions_and_own_replica_are_not_overwritten(
        s in scenario(2..=4, 30, Profile::CONVERGE),
        pick in any::<Index>(),
        victim in any::<Index>(),
        bump in 1u64..1_000,
    ) {
        let sim = DocSim::run(&s)?;
        let updates = carrying(&sim);
        prop_assume!(!updates.is_empty());
        let u = pick.get(&updates);
        let (author, range) = u.authors().next().expect("carries a transaction");
        let mut known = full(&sim)?;

        let mut f = Forgery::from_update(u.as_bytes()).unwrap();
        f.shift_run_values(bump);
        let shifted = f.encode();
        let before = known.save();
        match known.apply(&shifted) {
            Err(DocError::Conflict { replica, .. }) => prop_assert_eq!(replica, author),
            Err(_) => {}
            Ok(r) => prop_assert!(false, "shifted copy of a held transaction accepted: {:?}", r),
        }
        prop_assert_eq!(known.save(), before);

        // Renamed onto counters of another writer that the receiver holds:
        // refused or a no-op. (Onto counters it does not hold yet, the
        // document cannot tell a forgery from the real thing: that is what
        // the relay's replica ownership is for.)
        let target = *victim.get(&sim.ids);
        if *range.end() <= known.version().get(target) {
            let mut f = Forgery::from_update(u.as_bytes()).unwrap();
            f.rename_replica(author, target);
            refused_or_noop(&mut known, &f.encode(), "a transaction renamed onto another writer")?;
        }

        // The target's own document: a renamed transaction past what it made
        // is refused as its own replica's.
        let i = sim.ids.iter().position(|r| *r == target).expect("target is a replica");
        let mut own = Doc::load(&sim.docs[i].save(), target).unwrap();
        let own = &mut own;
        let mine = own.version().get(target);
        let mut f = Forgery::from_update(u.as_bytes()).unwrap();
        f.rename_replica(author, target);
        f.to_mut().set(target, mine + bump);
        let before = own.save();
        prop_assert!(own.apply(&f.encode()).is_err());
        prop_assert_eq!(own.save(), before);
    }
}

/// A small update inflating past the decoded-size cap is refused with
/// `DecodedTooLarge` before the excess is allocated.
#[test]
fn inflation_is_bounded_by_the_decoded_cap() {
    let mut a = Doc::new(ReplicaId::new(1));
    let bytes = a
        .transact(|tx| tx.text("t")?.insert(0, &"a".repeat(4 << 20)))
        .unwrap();
    assert!(
        bytes.len() < 16 << 10,
        "4 MiB of one letter compresses well"
    );
    let tight = Limits {
        max_decoded_bytes: 1 << 20,
        ..Limits::default()
    };
    let refused = Update::decode(bytes.clone(), &tight);
    assert!(
        matches!(
            refused,
            Err(DocError::Decode(DecodeError::DecodedTooLarge { max })) if max == 1 << 20
        ),
        "{refused:?}"
    );
    let mut b = Doc::new(ReplicaId::new(2)).with_limits(tight);
    assert!(matches!(
        b.apply(&bytes),
        Err(DocError::Decode(DecodeError::DecodedTooLarge { .. }))
    ));
    assert!(b.version().is_empty());
    let ok = Update::decode(bytes, &Limits::default()).unwrap();
    assert!(ok.decoded_len() >= 4 << 20, "decoded size counts inflation");
    let mut c = Doc::new(ReplicaId::new(3));
    c.apply_update(&ok).unwrap();
    assert!(c.decoded_bytes() >= 4 << 20);
}

/// One update may carry the transactions of at most `max_update_authors`
/// replicas; counters above `MAX_COUNTER` are refused.
#[test]
fn authors_and_counters_are_capped() {
    let mut all = Doc::new(ReplicaId::new(100));
    for r in 1..=5 {
        let mut w = Doc::new(ReplicaId::new(r));
        let u = w.transact(|tx| tx.counter("n")?.increment(1)).unwrap();
        all.apply(&u).unwrap();
    }
    let diff = all.diff(&VersionVector::new());
    let cap = Limits {
        max_update_authors: 4,
        ..Limits::default()
    };
    assert!(matches!(
        Update::decode(diff.clone(), &cap),
        Err(DocError::Limit { .. })
    ));
    assert!(Doc::new(ReplicaId::new(7))
        .with_limits(cap)
        .apply(&diff)
        .is_err());
    assert_eq!(
        Update::decode(diff, &Limits::default())
            .unwrap()
            .authors()
            .count(),
        5
    );

    let mut f = Forgery::empty();
    f.from_mut()
        .set(ReplicaId::new(9), weft_core::doc::MAX_COUNTER + 1);
    f.to_mut()
        .set(ReplicaId::new(9), weft_core::doc::MAX_COUNTER + 1);
    assert!(Doc::new(ReplicaId::new(8)).apply(&f.encode()).is_err());
}
