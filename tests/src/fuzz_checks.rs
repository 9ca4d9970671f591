//! The checks behind the cargo-fuzz targets in `fuzz/`, shared so that
//! `cargo test` replays the committed corpora and crash inputs on stable.
//!
//! Each check takes arbitrary bytes and panics only if weft misbehaves:
//! decoding must never panic, whatever decodes must round-trip, and applying
//! any decodable delta must be idempotent. Convergence across delivery orders
//! assumes honest peers (a dot names one event); a peer that reuses a dot for
//! two different writes can make replicas disagree, so a relay must bind each
//! connection to the replica ids it may write as.

use std::fmt::Debug;
use weft_core::codec::{self, decode, encode, Encode};
use weft_core::{
    Crdt, DotSet, GCounter, LwwMap, LwwRegister, MvRegister, OrSet, OrSetDelta, PnCounter,
    ReplicaId, VersionVector,
};

fn framed(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut v = codec::MAGIC.to_vec();
    v.push(codec::FORMAT_VERSION);
    v.push(kind);
    v.extend_from_slice(body);
    v
}

/// A check of one decoder on raw bytes.
type Check = fn(&[u8]);

fn roundtrip<T: Encode + PartialEq + Debug>(data: &[u8]) {
    if let Ok(v) = decode::<T>(data) {
        let again: T = decode(&encode(&v)).expect("re-encoding of a decoded value decodes");
        assert_eq!(again, v, "decode(encode(x)) must equal x");
    }
}

/// Target `decode_core`: `data`, raw and behind a valid header of each kind,
/// decoded as every core type.
pub fn decode_core(data: &[u8]) {
    let checks: [(u8, Check); 9] = [
        (codec::kind::VERSION_VECTOR, roundtrip::<VersionVector>),
        (codec::kind::DOT_SET, roundtrip::<DotSet>),
        (codec::kind::G_COUNTER, roundtrip::<GCounter>),
        (codec::kind::PN_COUNTER, roundtrip::<PnCounter>),
        (codec::kind::OR_SET, roundtrip::<OrSet<String>>),
        (codec::kind::OR_SET_DELTA, roundtrip::<OrSetDelta<String>>),
        (codec::kind::LWW_REGISTER, roundtrip::<LwwRegister<String>>),
        (codec::kind::MV_REGISTER, roundtrip::<MvRegister<u64>>),
        (codec::kind::LWW_MAP, roundtrip::<LwwMap<String, u64>>),
    ];
    for (kind, check) in checks {
        check(data);
        check(&framed(kind, data));
    }
}

fn idempotent<T: Crdt>(kind: u8, base: &T, a: &[u8], b: &[u8])
where
    T::Delta: Encode,
{
    let (Ok(da), Ok(db)) = (
        decode::<T::Delta>(&framed(kind, a)),
        decode::<T::Delta>(&framed(kind, b)),
    ) else {
        return;
    };
    let mut x = base.clone();
    x.apply(&da);
    x.apply(&db);
    let mut y = x.clone();
    y.apply(&db);
    y.apply(&da);
    assert_eq!(x, y, "apply must be idempotent");
    let mut z = x.clone();
    z.join(&x);
    assert_eq!(z, x, "join must be idempotent");
    // Computing a delta from any reachable state must not panic. (That it
    // carries exactly what `join` does holds only for honest deltas, whose
    // dots are unique; the property suite checks it there.)
    let _ = x.delta_since(&base.version());
}

/// Target `apply_core`: two deltas cut from `data` applied to small replicas
/// of the OR-Set, LWW map, MV register and PN-counter.
pub fn apply_core(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let split = (data[0] as usize) % data.len();
    let (a, b) = data[1..].split_at(split.min(data.len() - 1));
    let r = ReplicaId::new(1);
    let mut set: OrSet<u8> = OrSet::new();
    set.add(r, 1);
    set.add(r, 2);
    set.remove(&1);
    idempotent(codec::kind::OR_SET_DELTA, &set, a, b);
    let mut map: LwwMap<u8, u8> = LwwMap::new();
    map.insert(r, 1, 1, 10);
    idempotent(codec::kind::LWW_MAP, &map, a, b);
    let mut mv: MvRegister<u8> = MvRegister::new();
    mv.set(r, 3);
    idempotent(codec::kind::MV_REGISTER, &mv, a, b);
    let mut c = PnCounter::new();
    let _ = c.increment(r, 4);
    idempotent(codec::kind::PN_COUNTER, &c, a, b);
}
