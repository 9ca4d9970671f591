//! # weft-edit
//!
//! A collaborative terminal text editor on weft: what a user can *try*.
//! Each document lives in a local SQLite store (`--data`), edits apply and
//! are durable as you type (no saving), work offline, and sync through a
//! relay whenever one is reachable; other users' cursors show in their
//! colour and the status line says offline / connecting / syncing *n* /
//! synced / read-only.
//!
//! ```text
//! weft-relay --insecure-no-auth                                  # terminal 1
//! weft-edit notes --relay ws://127.0.0.1:8787/ws --name ann      # terminal 2
//! weft-edit notes --relay ws://127.0.0.1:8787/ws --name bo \
//!     --data /tmp/bo                                             # terminal 3
//! ```
//!
//! Keys: arrows, Home/End, PgUp/PgDn, Enter, Tab, Backspace, Delete;
//! Ctrl-Q quit, Ctrl-Z undo, Ctrl-Y redo (through an [`undo::UndoHook`]),
//! Ctrl-S connect now (skips a reconnect backoff).
//!
//! The crate is split so that everything but drawing is tested without a
//! terminal:
//!
//! | module | what |
//! |---|---|
//! | [`model`] | the buffer and cursor: keys in, char edits out (sans-IO) |
//! | [`view`] | viewport, scrolling, screen positions, colours (sans-IO) |
//! | [`undo`] | the undo/redo hook the keys call |
//! | [`app`] | the terminal loop: weft-client, crossterm, ratatui |
//!
//! ```
//! use weft_edit::model::{Buffer, Key, Outcome};
//! use weft_edit::view::{visible_rows, Viewport};
//! let mut buffer = Buffer::default();
//! for c in "hello".chars() {
//!     buffer.handle(Key::Char(c), 20);
//! }
//! let view = Viewport { top: 0, left: 0, width: 80, height: 24 };
//! assert_eq!(visible_rows(buffer.chars(), &view), ["hello"]);
//! ```

pub mod app;
pub mod model;
pub mod undo;
pub mod view;

use std::path::PathBuf;

/// What to open and how.
///
/// ```
/// use weft_edit::Options;
/// let options = Options::new("notes", "/tmp/data".into());
/// assert_eq!(options.relay, None); // local only
/// assert!(options.color.starts_with('#'));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Options {
    /// The document id.
    pub doc: String,
    /// The directory of the local store (`weft-edit.db` in it).
    pub data: PathBuf,
    /// The relay's WebSocket URL (`ws://` or `wss://`); `None` edits
    /// locally only.
    pub relay: Option<String>,
    /// A token for an authenticating relay.
    pub token: Option<String>,
    /// An extra trusted root certificate (PEM) for `wss://`.
    pub root_certificate: Option<Vec<u8>>,
    /// The name other users see.
    pub user: String,
    /// The colour other users see (`#rrggbb`).
    pub color: String,
}

impl Options {
    /// Local-only options for `doc` stored under `data`, the user named
    /// after `$USER` with that name's colour.
    pub fn new(doc: &str, data: PathBuf) -> Options {
        let user = std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty() && u.len() <= 64)
            .unwrap_or_else(|| "anonymous".into());
        Options {
            doc: doc.into(),
            data,
            relay: None,
            token: None,
            root_certificate: None,
            color: view::color_for(&user),
            user,
        }
    }
}
