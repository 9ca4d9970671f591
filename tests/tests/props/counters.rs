//! Counter semantics: the converged value is the exact sum of the accepted
//! operations; overflow is refused and leaves the counter unchanged.

use crate::props_common::config;
use proptest::prelude::*;
use proptest::sample::Index;
use weft_core::{GCounter, PnCounter};
use weft_tests::sim::{schedule, Sim};
use weft_tests::subjects::Subject;

/// Replays every event, in order, into the sequential model (each replica
/// only touches its own entry, so per-replica order is all that matters):
/// the counter accepted exactly the operations the model accepts, and after
/// convergence every replica reads the model's exact sum.
fn assert_sum_matches_model<T: Subject>(sim: &mut Sim<T>) -> Result<(), TestCaseError>
where
    T::Delta: weft_core::codec::Encode,
{
    let mut model = T::Model::default();
    for e in &sim.events {
        let accepted = T::model_step(&mut model, e.id, &e.op);
        prop_assert_eq!(e.delta.is_some(), accepted, "acceptance of {:?}", e.op);
    }
    sim.settle();
    for s in &sim.states {
        prop_assert_eq!(s.read(), T::model_read(&model));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    /// Concurrent increments (with overflow refusals) converge to the exact sum.
    #[test]
    fn g_counter_concurrent_sum(s in schedule::<GCounter>(2..=5, 160)) {
        assert_sum_matches_model(&mut Sim::<GCounter>::run(&s))?;
    }

    /// Concurrent increments and decrements converge to the exact difference.
    #[test]
    fn pn_counter_concurrent_sum(s in schedule::<PnCounter>(2..=5, 160)) {
        assert_sum_matches_model(&mut Sim::<PnCounter>::run(&s))?;
    }

    /// On a reachable state, adding exactly up to `u64::MAX` succeeds and one
    /// more is `OverflowError` with the state unchanged.
    #[test]
    fn g_counter_overflow(s in schedule::<GCounter>(2..=4, 30), r in any::<Index>()) {
        let sim = Sim::<GCounter>::run(&s);
        let r = r.index(sim.len());
        let (id, mut c) = (sim.ids[r], sim.states[r].clone());
        let room = u64::MAX - c.contribution(id);
        let before_value = c.value();
        prop_assert!(c.increment(id, room).is_ok());
        prop_assert_eq!(c.value(), before_value + room as u128);
        prop_assert_eq!(c.contribution(id), u64::MAX);
        let full = c.clone();
        prop_assert_eq!(c.increment(id, 1), Err(weft_core::OverflowError));
        prop_assert_eq!(&c, &full);
        prop_assert_eq!(c.increment(id, u64::MAX), Err(weft_core::OverflowError));
        prop_assert_eq!(&c, &full);
    }

    /// Same for both directions of a PN-counter: fill increments (or
    /// decrements) to exactly `u64::MAX`, then one more is refused unchanged.
    #[test]
    fn pn_counter_overflow(s in schedule::<PnCounter>(2..=4, 30), r in any::<Index>(), up in any::<bool>()) {
        let sim = Sim::<PnCounter>::run(&s);
        let r = r.index(sim.len());
        let (id, mut c) = (sim.ids[r], sim.states[r].clone());
        // This replica's own (increments, decrements), from its events.
        let mut model = <PnCounter as Subject>::Model::default();
        for e in sim.events.iter().filter(|e| e.replica == r) {
            <PnCounter as Subject>::model_step(&mut model, e.id, &e.op);
        }
        let (inc, dec) = model.get(&id).copied().unwrap_or_default();
        let before_value = c.value();
        if up {
            let room = u64::MAX - inc;
            prop_assert!(c.increment(id, room).is_ok());
            prop_assert_eq!(c.value(), before_value + room as i128);
            let full = c.clone();
            prop_assert_eq!(c.increment(id, 1), Err(weft_core::OverflowError));
            prop_assert_eq!(c.add(id, 1), Err(weft_core::OverflowError));
            prop_assert_eq!(&c, &full);
        } else {
            let room = u64::MAX - dec;
            prop_assert!(c.decrement(id, room).is_ok());
            prop_assert_eq!(c.value(), before_value - room as i128);
            let full = c.clone();
            prop_assert_eq!(c.decrement(id, 1), Err(weft_core::OverflowError));
            prop_assert_eq!(c.add(id, -1), Err(weft_core::OverflowError));
            prop_assert_eq!(&c, &full);
        }
    }
}
