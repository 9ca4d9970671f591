//! Applies arbitrary decoded deltas to core replicas (see `weft_tests::fuzz_checks`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_tests::fuzz_checks::apply_core(data));
