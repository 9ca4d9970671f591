//! See `weft_tests::fuzz_checks::decode_frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_tests::fuzz_checks::decode_frame(data));
