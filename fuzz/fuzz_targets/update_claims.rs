//! See `weft_tests::fuzz_checks::update_claims`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_tests::fuzz_checks::update_claims(data));
