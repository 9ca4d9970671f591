//! The channel from replicas to the sync task: [`Command`]s sent while a
//! sync task runs, dropped while none does (edits are in the store either
//! way, and the next catch-up covers them).

use std::sync::Mutex;
use tokio::sync::mpsc;
use weft_protocol::DocId;

/// What replicas tell the sync task.
#[derive(Debug)]
pub(crate) enum Command {
    /// A replica was opened: subscribe it (the task finds it among the
    /// client's open replicas; one closed meanwhile is skipped).
    Open(DocId),
    /// A local update, already durable in the store.
    Local { doc: DocId, update: Vec<u8> },
    /// The replica's own presence changed.
    Presence { doc: DocId },
    /// The document was closed: unsubscribe it.
    Close(DocId),
    /// Skip the rest of a backoff delay and connect now.
    ReconnectNow,
}

/// The channel from replicas to the sync task, if one runs.
#[derive(Debug, Default)]
pub(crate) struct Link {
    tx: Mutex<Option<mpsc::UnboundedSender<Command>>>,
}

impl Link {
    pub(crate) fn set(&self, tx: Option<mpsc::UnboundedSender<Command>>) {
        *self.tx.lock().unwrap_or_else(|e| e.into_inner()) = tx;
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    pub(crate) fn send(&self, command: Command) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = tx.send(command); // a stopped task has nothing to sync
        }
    }
}
