//! See `weft_tests::fuzz_checks::list_converge`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_tests::fuzz_checks::list_converge(data));
