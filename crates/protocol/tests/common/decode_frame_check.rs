//! The check the `decode_frame` fuzz target runs on every input, shared with
//! the stable replay of its committed corpus (`tests/fuzz_corpus.rs`).

use weft_protocol::{ErrorCode, Frame, Handshake, Limits, Role};

/// Decodes `data` as a frame under generous and tight limits. Never panics
/// (other than on a broken property): whatever decodes re-encodes, no
/// longer than the input, to a frame that decodes equal and passes
/// `validate`; whatever fails yields an `Error` reply that is itself a valid
/// frame; the handshake checker takes any decoded frame on both sides and
/// accepts a greeting at most once.
pub(crate) fn decode_frame(data: &[u8]) {
    let tight = Limits {
        max_frame_bytes: 2048,
        max_update_bytes: 64,
        max_presence_bytes: 200,
        ..Limits::default()
    };
    for limits in [Limits::default(), tight] {
        match Frame::decode(data, &limits) {
            Ok(frame) => {
                let bytes = frame.encode();
                assert_eq!(bytes.len(), frame.encoded_len());
                assert!(bytes.len() <= data.len(), "re-encoding grew");
                assert_eq!(Frame::decode(&bytes, &limits).as_ref(), Ok(&frame));
                assert_eq!(frame.validate(&limits), Ok(()));
                let greeting = matches!(frame, Frame::Hello { .. } | Frame::Welcome { .. });
                for role in [Role::Client, Role::Server] {
                    let mut handshake = Handshake::new(role);
                    let first = handshake.receive(&frame);
                    let second = handshake.receive(&frame);
                    if greeting && first.is_ok() && handshake.version().is_some() {
                        assert_eq!(second, Err(ErrorCode::UnexpectedFrame));
                    }
                }
            }
            Err(err) => {
                let reply = err.error_frame();
                assert_eq!(reply.validate(&Limits::default()), Ok(()));
                assert_eq!(
                    Frame::decode(&reply.encode(), &Limits::default()),
                    Ok(reply)
                );
            }
        }
    }
}
