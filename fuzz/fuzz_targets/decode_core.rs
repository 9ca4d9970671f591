//! Decodes arbitrary bytes as every core type; whatever decodes must re-encode
//! and decode to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_core::codec::{decode, encode, Encode};
use weft_core::*;

fn check<T: Encode + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(v) = decode::<T>(data) {
        let again: T = decode(&encode(&v)).expect("re-encoding of a decoded value decodes");
        assert_eq!(again, v);
    }
}

fuzz_target!(|data: &[u8]| {
    // Try each kind on the raw input, and with a valid header of that kind.
    let kinds: &[fn(&[u8])] = &[
        check::<VersionVector>,
        check::<DotSet>,
        check::<GCounter>,
        check::<PnCounter>,
        check::<OrSet<String>>,
        check::<OrSetDelta<String>>,
        check::<LwwRegister<String>>,
        check::<MvRegister<u64>>,
        check::<LwwMap<String, u64>>,
    ];
    for (i, f) in kinds.iter().enumerate() {
        f(data);
        let mut framed = b"WEFT\x01".to_vec();
        framed.push(match i {
            0 => codec::kind::VERSION_VECTOR,
            1 => codec::kind::DOT_SET,
            2 => codec::kind::G_COUNTER,
            3 => codec::kind::PN_COUNTER,
            4 => codec::kind::OR_SET,
            5 => codec::kind::OR_SET_DELTA,
            6 => codec::kind::LWW_REGISTER,
            7 => codec::kind::MV_REGISTER,
            _ => codec::kind::LWW_MAP,
        });
        framed.extend_from_slice(data);
        f(&framed);
    }
});
