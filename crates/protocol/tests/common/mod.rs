//! Code shared by the integration tests and the `decode_frame` fuzz target.

pub(crate) mod decode_frame_check;
