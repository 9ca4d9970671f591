//! Applies decoded (untrusted) deltas to replicas: nothing may panic, apply
//! must be idempotent, and joining a state with itself must change nothing.
//! (Convergence across orders assumes honest, unique dots; it is covered by
//! the property suite in `tests/`.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_core::codec::{decode, Encode};
use weft_core::*;

fn framed(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut v = b"WEFT\x01".to_vec();
    v.push(kind);
    v.extend_from_slice(body);
    v
}

fn converge<T: Crdt + Encode>(kind: u8, base: &T, a: &[u8], b: &[u8])
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
    let _ = x.delta_since(&base.version());
}

fuzz_target!(|data: &[u8]| {
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
    converge(codec::kind::OR_SET_DELTA, &set, a, b);
    let mut map: LwwMap<u8, u8> = LwwMap::new();
    map.insert(r, 1, 1, 10);
    converge(codec::kind::LWW_MAP, &map, a, b);
    let mut mv: MvRegister<u8> = MvRegister::new();
    mv.set(r, 3);
    converge(codec::kind::MV_REGISTER, &mv, a, b);
    let mut c = PnCounter::new();
    let _ = c.increment(r, 4);
    converge(codec::kind::PN_COUNTER, &c, a, b);
});
