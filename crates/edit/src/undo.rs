//! The undo/redo hook: the editor maps Ctrl-Z / Ctrl-Y to an [`UndoHook`],
//! so an undo manager (one that undoes only this user's changes and
//! survives concurrent remote edits) plugs in without touching the
//! editor. Undo and redo must produce ordinary document updates through
//! the [`Replica`], which then sync like any edit.

use weft_client::{Replica, UndoManager};

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
    /// Called once with the document the editor opened, before any edit.
    fn attach(&mut self, _replica: &Replica) {}
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

/// The editor's undo: a [`weft_client::UndoManager`] on the replica, which
/// undoes only this user's edits (grouped within its 500 ms capture
/// window), restores deleted text where its neighbours are now, and syncs
/// each undo and redo like any edit.
///
/// ```
/// use weft_edit::undo::{ReplicaUndo, UndoHook};
/// use weft_client::Client;
/// let doc = Client::in_memory().replica("d").unwrap();
/// let mut undo = ReplicaUndo::default();
/// undo.attach(&doc);
/// doc.transact(|tx| tx.text("t")?.insert(0, "typed")).unwrap();
/// assert!(undo.undo(&doc).unwrap());
/// assert_eq!(doc.read(|d| d.text("t").unwrap().to_string()), "");
/// assert!(undo.redo(&doc).unwrap());
/// assert!(!undo.redo(&doc).unwrap());
/// assert!(undo.describe().contains("nothing"));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ReplicaUndo;

impl UndoHook for ReplicaUndo {
    fn attach(&mut self, replica: &Replica) {
        replica.set_undo_manager(Some(UndoManager::new()));
    }

    fn undo(&mut self, replica: &Replica) -> weft_client::Result<bool> {
        replica.undo()
    }

    fn redo(&mut self, replica: &Replica) -> weft_client::Result<bool> {
        replica.redo()
    }

    fn describe(&self) -> String {
        "nothing to undo or redo".into()
    }
}
