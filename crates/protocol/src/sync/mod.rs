//! Sans-IO sync state machines: they take frames and time and return
//! frames (or decisions), and never touch a socket, a clock or a runtime.
//! The client's sync task and the relay's document task are I/O shells
//! around them; `tests/sync_props.rs` drives them through random frame
//! interleavings, drops, reconnects and slow readers without tokio.
//!
//! | machine | side | what |
//! |---|---|---|
//! | [`Outbox`] | client, per document and connection | queued / in flight by seq / retrying pieces, what the relay is known to hold |
//! | [`ReaderFlow`] | relay, per subscriber | live or behind (one diff when its queue drains), or disconnected past the grace |

mod outbox;
mod reader;

pub use outbox::{pending, Handled, Outbox, Piece, Transmit};
pub use reader::{Catch, ReaderFlow};
