//! See `weft_tests::fuzz_checks::doc_load`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_tests::fuzz_checks::doc_load(data));
