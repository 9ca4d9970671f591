//! Shared configuration and generic checks of the property suite.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError};
use weft_core::codec::{self, Encode};
use weft_core::ReplicaId;
use weft_tests::laws::{self, joined, Mutation};
use weft_tests::sim::{ids_strategy, skew_strategy, Sim, EPOCH_MS};
use weft_tests::subjects::Subject;

/// Proptest's default config (so `PROPTEST_CASES` sets the case count), with
/// failures persisted next to the source file as `*.proptest-regressions`.
///
/// The default `SourceParallel` persistence looks for a `lib.rs`/`main.rs`
/// above the test file, which `tests/tests` does not have; it would fall
/// back to the same location with a warning, so name it explicitly.
pub(crate) fn config() -> Config {
    Config {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    }
}

/// Settles the network and checks convergence: every replica equal, same
/// read-out, equal to the join of all pre-settle states (delta delivery ends
/// where joining the states would).
pub(crate) fn assert_converges<T: Subject>(sim: &mut Sim<T>) -> Result<(), TestCaseError>
where
    T::Delta: Encode,
{
    let all = sim
        .states
        .iter()
        .fold(T::default(), |acc, s| joined(&acc, s));
    sim.settle();
    for (r, s) in sim.states.iter().enumerate() {
        prop_assert_eq!(s, &sim.states[0], "replica {} diverged", r);
        prop_assert_eq!(s.read(), sim.states[0].read());
    }
    prop_assert_eq!(
        &sim.states[0],
        &all,
        "converged state != join of all states"
    );
    Ok(())
}

/// One operation of a sequential run: `(replica, op, clock advance, via join)`.
pub(crate) type SeqStep<Op> = (usize, Op, u64, bool);

/// A sequential scenario: ids, skews, steps.
pub(crate) type SeqScenario<Op> = (Vec<ReplicaId>, Vec<i64>, Vec<SeqStep<Op>>);

/// 1–4 replicas (clocks possibly hours apart) taking turns.
pub(crate) fn sequential_strategy<T: Subject>() -> impl Strategy<Value = SeqScenario<T::Op>> {
    (1usize..=4).prop_flat_map(|n| {
        (
            ids_strategy(n).prop_shuffle(),
            proptest::collection::vec(skew_strategy(), n),
            proptest::collection::vec((0usize..4, T::ops(), 0u64..3, any::<bool>()), 0..=40),
        )
    })
}

/// Strictly sequential hand-offs: before a replica acts it first receives
/// everything the previous actor had (by `delta_since` over the wire, or by a
/// full join). Every operation is then accepted or refused exactly as the
/// sequential model says, and the read-out equals the model's.
pub(crate) fn assert_sequential<T: Subject>(s: &SeqScenario<T::Op>) -> Result<(), TestCaseError>
where
    T::Delta: Encode,
{
    let (ids, skews, steps) = s;
    let n = ids.len();
    let mut states = vec![T::default(); n];
    let mut model = T::Model::default();
    let mut last: Option<usize> = None;
    let mut global = EPOCH_MS;
    for (r, op, advance, via_join) in steps {
        let r = r % n;
        global += advance;
        if let Some(l) = last.filter(|&l| l != r) {
            let from = states[l].clone();
            if *via_join {
                states[r].join(&from);
            } else {
                let bytes = codec::encode(&from.delta_since(&states[r].version()));
                let delta: T::Delta = codec::decode(&bytes).expect("delta decodes");
                states[r].apply(&delta);
            }
            prop_assert_eq!(&states[r], &from, "hand-off did not transfer the state");
        }
        let now = global.saturating_add_signed(skews[r]);
        let accepted = states[r].perform(ids[r], now, op).is_some();
        let model_accepted = T::model_step(&mut model, ids[r], op);
        prop_assert_eq!(accepted, model_accepted, "acceptance of {:?}", op);
        prop_assert_eq!(states[r].read(), T::model_read(&model), "after {:?}", op);
        last = Some(r);
    }
    Ok(())
}

/// Every reachable state and every delta round-trips.
pub(crate) fn assert_codec_roundtrip<T: Subject>(sim: &Sim<T>) -> Result<(), TestCaseError>
where
    T::Delta: Encode,
{
    for s in sim.reachable_states() {
        laws::assert_roundtrip(&s)?;
        laws::assert_roundtrip(&s.delta_since(&weft_core::VersionVector::new()))?;
    }
    for d in sim.deltas() {
        laws::assert_roundtrip(&d)?;
    }
    Ok(())
}

/// A damaged encoding of a reachable state or delta decodes (as state and as
/// delta) to an error or a well-formed value, without panicking.
pub(crate) fn assert_mutations_total<T: Subject>(
    sim: &Sim<T>,
    pick: &Index,
    muts: &[Mutation],
) -> Result<(), TestCaseError>
where
    T::Delta: Encode,
{
    let witness = sim.states[0].clone();
    let mut encodings: Vec<Vec<u8>> = sim.reachable_states().iter().map(codec::encode).collect();
    encodings.extend(sim.deltas().iter().map(codec::encode));
    encodings.push(codec::encode(&T::default()));
    let bytes = laws::mutate(pick.get(&encodings).clone(), muts);
    laws::assert_decode_total::<T>(&bytes, &witness)?;
    // Deltas of most types are the type itself; the or-set delta is checked
    // separately, as a delta cannot be joined.
    let _ = codec::decode::<T::Delta>(&bytes);
    Ok(())
}

/// Arbitrary bytes never make decoding panic; with a valid header prefix the
/// body parser is reached.
pub(crate) fn assert_arbitrary_bytes<T: Subject>(
    body: &[u8],
    header: bool,
) -> Result<(), TestCaseError>
where
    T::Delta: Encode,
{
    let mut bytes = Vec::new();
    if header {
        bytes.extend_from_slice(&codec::MAGIC);
        bytes.push(codec::FORMAT_VERSION);
        bytes.push(T::KIND);
    }
    bytes.extend_from_slice(body);
    laws::assert_decode_total::<T>(&bytes, &T::default())?;
    if header {
        bytes[codec::HEADER_LEN - 1] = <T::Delta as Encode>::KIND;
    }
    let _ = codec::decode::<T::Delta>(&bytes);
    Ok(())
}
