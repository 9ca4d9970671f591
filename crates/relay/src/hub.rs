//! The registry of loaded documents: one task per open document, started
//! on first use and removed when it unloads itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;
use weft_protocol::DocId;

use crate::document::{self, DocCmd};
use crate::state::Shared;

/// How many commands may wait for one document before senders wait.
const DOC_QUEUE: usize = 1024;

/// A sender to one document's task.
pub(crate) type DocHandle = mpsc::Sender<DocCmd>;

/// Open documents by id.
#[derive(Debug)]
pub(crate) struct Hub {
    docs: Mutex<HashMap<DocId, (u64, DocHandle)>>,
    next_generation: AtomicU64,
    tasks: TaskTracker,
}

impl Hub {
    pub(crate) fn new() -> Hub {
        Hub {
            docs: Mutex::new(HashMap::new()),
            next_generation: AtomicU64::new(1),
            tasks: TaskTracker::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<DocId, (u64, DocHandle)>> {
        // A panic while holding this lock cannot leave the map half-updated
        // (single inserts and removes), so a poisoned lock is still usable.
        self.docs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The task of `doc`, started if it is not running.
    pub(crate) fn get(&self, state: &Shared, doc: &DocId) -> DocHandle {
        let mut docs = self.lock();
        if let Some((_, h)) = docs.get(doc) {
            if !h.is_closed() {
                return h.clone();
            }
        }
        let (tx, rx) = mpsc::channel(DOC_QUEUE);
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        docs.insert(doc.clone(), (generation, tx.clone()));
        self.tasks
            .spawn(document::run(state.clone(), doc.clone(), generation, rx));
        tx
    }

    /// Sends `cmd` to `doc`'s task, restarting the task if it had just
    /// unloaded. `None` only while the relay is shutting down.
    pub(crate) async fn send(&self, state: &Shared, doc: &DocId, mut cmd: DocCmd) -> Option<()> {
        for _ in 0..3 {
            let handle = self.get(state, doc);
            match handle.send(cmd).await {
                Ok(()) => return Some(()),
                Err(mpsc::error::SendError(back)) => cmd = back,
            }
        }
        None
    }

    /// Sends `cmd` to `doc`'s task only if it is loaded (a `Leave` need not
    /// load a document).
    pub(crate) async fn send_if_loaded(&self, doc: &DocId, cmd: DocCmd) {
        let handle = self.lock().get(doc).map(|(_, h)| h.clone());
        if let Some(h) = handle {
            let _ = h.send(cmd).await;
        }
    }

    /// Removes `doc` if task `generation` is still its task (called by a
    /// task that unloads itself).
    pub(crate) fn remove_if(&self, doc: &DocId, generation: u64) {
        let mut docs = self.lock();
        if docs.get(doc).is_some_and(|(g, _)| *g == generation) {
            docs.remove(doc);
        }
    }

    /// How many documents are loaded.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Drops every handle (documents finish their queued work and stop
    /// once connections have dropped theirs) and waits for the tasks.
    pub(crate) async fn close(&self) {
        self.lock().clear();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
