//! Decodes arbitrary bytes as a relay wire frame (`weft_protocol::Frame`);
//! the check is shared with the stable corpus replay in
//! `crates/protocol/tests/fuzz_corpus.rs`.
#![no_main]

#[path = "../../crates/protocol/tests/common/decode_frame_check.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::decode_frame(data));
