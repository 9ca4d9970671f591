//! Generic laws every [`Crdt`] must satisfy, as proptest assertions.
//!
//! Each function returns a [`TestCaseError`] on violation, so a failing case
//! is shrunk by proptest rather than aborting the run.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::fmt::Debug;
use weft_core::codec::{self, Encode};
use weft_core::{Crdt, VersionVector};

/// `a ⊔ b`.
pub fn joined<T: Crdt>(a: &T, b: &T) -> T {
    let mut out = a.clone();
    out.join(b);
    out
}

/// Join is commutative, associative and idempotent on `a`, `b`, `c`
/// (and absorbs: `a ⊔ (a ⊔ b) = a ⊔ b`).
pub fn assert_join_laws<T: Crdt>(a: &T, b: &T, c: &T) -> Result<(), TestCaseError> {
    prop_assert_eq!(joined(a, b), joined(b, a), "join is not commutative");
    prop_assert_eq!(
        joined(&joined(a, b), c),
        joined(a, &joined(b, c)),
        "join is not associative"
    );
    prop_assert_eq!(&joined(a, a), a, "join is not idempotent");
    let ab = joined(a, b);
    prop_assert_eq!(joined(a, &ab), ab.clone(), "join does not absorb");
    prop_assert_eq!(joined(&ab, b), ab, "join does not absorb");
    Ok(())
}

/// Delta correctness: `b.apply(&a.delta_since(&b.version()))` leaves `b`
/// equal to `b ⊔ a`; applying the delta twice changes nothing more; the full
/// delta `a.delta_since(∅)` rebuilds `a` from nothing; and a delta to a peer
/// that already has everything changes nothing.
pub fn assert_delta_correct<T: Crdt>(a: &T, b: &T) -> Result<(), TestCaseError> {
    let delta = a.delta_since(&b.version());
    let mut got = b.clone();
    got.apply(&delta);
    prop_assert_eq!(&got, &joined(b, a), "delta_since then apply != join");
    got.apply(&delta);
    prop_assert_eq!(
        &got,
        &joined(b, a),
        "applying a delta twice is not idempotent"
    );

    let mut fresh = T::default();
    fresh.apply(&a.delta_since(&VersionVector::new()));
    prop_assert_eq!(&fresh, a, "the full delta does not rebuild the state");

    let both = joined(a, b);
    let mut same = both.clone();
    same.apply(&a.delta_since(&both.version()));
    prop_assert_eq!(same, both, "a delta to an up-to-date peer changed it");
    Ok(())
}

/// `decode(encode(x)) == x`.
pub fn assert_roundtrip<T: Encode + PartialEq + Debug>(x: &T) -> Result<(), TestCaseError> {
    let bytes = codec::encode(x);
    let back: T = codec::decode(&bytes).map_err(|e| TestCaseError::fail(format!("{e}")))?;
    prop_assert_eq!(&back, x);
    prop_assert_eq!(codec::encode(&back), bytes, "re-encoding differs");
    Ok(())
}

/// A way to damage a valid encoding.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// XOR the byte at this position with a non-zero mask.
    Flip(prop::sample::Index, u8),
    /// Cut the input at this position.
    Truncate(prop::sample::Index),
    /// Insert a byte at this position.
    Insert(prop::sample::Index, u8),
    /// Remove the byte at this position.
    Delete(prop::sample::Index),
    /// Overwrite a byte with 0xFF (a varint continuation / large value).
    Max(prop::sample::Index),
}

/// Random mutations.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        1 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Delete),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Max),
    ]
}

/// Applies mutations to `bytes`.
pub fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        let n = bytes.len();
        match m {
            Mutation::Flip(i, mask) => bytes[i.index(n)] ^= mask,
            Mutation::Truncate(i) => bytes.truncate(i.index(n)),
            Mutation::Insert(i, b) => bytes.insert(i.index(n + 1), *b),
            Mutation::Delete(i) => {
                bytes.remove(i.index(n));
            }
            Mutation::Max(i) => bytes[i.index(n)] = 0xFF,
        }
    }
    bytes
}

/// Decoding `bytes` as a `T` never panics; if it succeeds, the value is a
/// well-formed `T`: it re-encodes to something that decodes to itself, and it
/// joins with `witness` (a reachable state) and with itself without panicking,
/// idempotently.
pub fn assert_decode_total<T: Crdt + Encode>(
    bytes: &[u8],
    witness: &T,
) -> Result<(), TestCaseError> {
    if let Ok(x) = codec::decode::<T>(bytes) {
        let again: T = codec::decode(&codec::encode(&x))
            .map_err(|e| TestCaseError::fail(format!("decoded value does not re-decode: {e}")))?;
        prop_assert_eq!(&again, &x);
        prop_assert_eq!(&joined(&x, &x), &x, "decoded value: join not idempotent");
        let _ = joined(&x, witness);
        let _ = joined(witness, &x);
        let _ = x.delta_since(&witness.version());
    }
    Ok(())
}
