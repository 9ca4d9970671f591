//! Property suite for every weft-core CRDT (issue 2, item 4).
//!
//! States are always *reachable*: produced by random operations on 2–5
//! replicas with a random, adversarial delivery schedule (see
//! `weft_tests::sim`), never by constructing structs directly.
//!
//! The case count comes from `PROPTEST_CASES` (proptest's default config);
//! failures are shrunk and persisted next to this file in
//! `props.proptest-regressions` (commit that file).

#[path = "props/canonical.rs"]
mod props_canonical;
#[path = "props/common.rs"]
mod props_common;
#[path = "props/counters.rs"]
mod props_counters;
#[path = "props/registers.rs"]
mod props_registers;
#[path = "props/set_map.rs"]
mod props_set_map;

/// The generic properties, instantiated once per type.
macro_rules! generic_props {
    ($name:ident, $ty:ty) => {
        mod $name {
            use crate::props_common::*;
            use proptest::prelude::*;
            use proptest::sample::Index;
            use weft_tests::sim::{schedule, Sim};

            type T = $ty;

            proptest! {
                #![proptest_config(config())]

                /// Join is commutative, associative and idempotent on reachable states.
                #[test]
                fn join_laws(s in schedule::<T>(2..=5, 40), i in any::<Index>(), j in any::<Index>(), k in any::<Index>()) {
                    let pool = Sim::<T>::run(&s).reachable_states();
                    let (a, b, c) = (i.get(&pool), j.get(&pool), k.get(&pool));
                    weft_tests::laws::assert_join_laws(a, b, c)?;
                }

                /// `b.apply(a.delta_since(b.version()))` equals `b ⊔ a`.
                #[test]
                fn delta_correctness(s in schedule::<T>(2..=5, 40), i in any::<Index>(), j in any::<Index>()) {
                    let pool = Sim::<T>::run(&s).reachable_states();
                    weft_tests::laws::assert_delta_correct(i.get(&pool), j.get(&pool))?;
                }

                /// After every delta is delivered (reordered, duplicated,
                /// dropped then resent, plus anti-entropy), all replicas are equal,
                /// read the same, and equal the join of all their states.
                #[test]
                fn converges(s in schedule::<T>(2..=5, 160)) {
                    let mut sim = Sim::<T>::run(&s);
                    assert_converges(&mut sim)?;
                }

                /// Without concurrency the CRDT behaves like its sequential model.
                #[test]
                fn sequential_model(s in sequential_strategy::<T>()) {
                    assert_sequential::<T>(&s)?;
                }

                /// Reachable states and deltas round-trip through the codec.
                #[test]
                fn codec_roundtrip(s in schedule::<T>(2..=4, 30)) {
                    let sim = Sim::<T>::run(&s);
                    assert_codec_roundtrip(&sim)?;
                }

                /// Damaged encodings of reachable states and deltas decode to
                /// an error or a well-formed value, never a panic.
                #[test]
                fn codec_mutations_never_panic(
                    s in schedule::<T>(2..=3, 20),
                    i in any::<Index>(),
                    muts in proptest::collection::vec(weft_tests::laws::mutation(), 1..4),
                ) {
                    let sim = Sim::<T>::run(&s);
                    assert_mutations_total(&sim, &i, &muts)?;
                }

                /// Arbitrary bytes (bare, or after a valid header) never panic.
                #[test]
                fn codec_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..64), header in any::<bool>()) {
                    assert_arbitrary_bytes::<T>(&bytes, header)?;
                }
            }
        }
    };
}

generic_props!(g_counter, weft_core::GCounter);
generic_props!(pn_counter, weft_core::PnCounter);
generic_props!(or_set, weft_core::OrSet<u8>);
generic_props!(lww_register, weft_core::LwwRegister<u16>);
generic_props!(mv_register, weft_core::MvRegister<u16>);
generic_props!(lww_map, weft_core::LwwMap<u8, u16>);
