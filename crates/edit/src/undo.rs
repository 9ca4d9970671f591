//! The undo/redo hook: the editor maps Ctrl-Z / Ctrl-Y to an [`UndoHook`],
//! so an undo manager (one that undoes only this user's changes and
//! survives concurrent remote edits) plugs in without touching the
//! editor. Undo and redo must produce ordinary document updates through
//! the [`Replica`], which then sync like any edit.

use weft_client::Replica;

/// What Ctrl-Z / Ctrl-Y do.
///
/// ```
/// use weft_edit::undo::{UndoHook, Unavailable};
/// use weft_client::Client;
/// let doc = Client::in_memory().replica("d").unwrap();
/// let mut undo = Unavailable;
/// assert!(!undo.undo(&doc).unwrap()); // nothing undone
/// assert!(undo.describe().contains("not available"));
/// ```
pub trait UndoHook: Send {
    /// Undoes the local user's last change group; `Ok(false)` if there was
    /// nothing to undo.
    fn undo(&mut self, replica: &Replica) -> weft_client::Result<bool>;
    /// Redoes the last undone group; `Ok(false)` if there was none.
    fn redo(&mut self, replica: &Replica) -> weft_client::Result<bool>;
    /// Called after every local edit the editor made (to close or extend a
    /// capture group).
    fn after_local_edit(&mut self, _replica: &Replica) {}
    /// A short note for the status line when undo did nothing.
    fn describe(&self) -> String;
}

/// The hook used until an undo manager is plugged in: does nothing and
/// says so.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unavailable;

impl UndoHook for Unavailable {
    fn undo(&mut self, _replica: &Replica) -> weft_client::Result<bool> {
        Ok(false)
    }

    fn redo(&mut self, _replica: &Replica) -> weft_client::Result<bool> {
        Ok(false)
    }

    fn describe(&self) -> String {
        "undo is not available in this build".into()
    }
}
