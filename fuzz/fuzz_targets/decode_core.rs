//! Decodes arbitrary bytes as every core type (see `weft_tests::fuzz_checks`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| weft_tests::fuzz_checks::decode_core(data));
