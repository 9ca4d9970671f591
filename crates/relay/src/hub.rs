//! The weft documents: one task per open document ([`crate::document`]),
//! started on first use through the [`Registry`] and removed when it
//! unloads itself.
//!
//! At most `max_loaded_docs` documents are loaded: loading one more first
//! asks the least recently used document without subscribers to unload; if
//! every loaded document has subscribers, the new one is refused (the
//! subscriber gets `DocUnavailable` and retries later).

use std::time::Duration;

use metrics::Gauge;
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;
use weft_protocol::DocId;

use crate::doc_cmd::DocCmd;
use crate::document::{self, DocEnv};
use crate::registry::{Got, Registry, Slot};

/// How many commands may wait for one document before senders wait.
const DOC_QUEUE: usize = 1024;

/// How long a command for a document that is not loaded waits, at the
/// cap, for an idle document to unload and make room.
const ROOM_WAIT: Duration = Duration::from_secs(2);

/// Open weft documents by id, and what their tasks are started with.
#[derive(Clone, Debug)]
pub(crate) struct Hub {
    docs: Registry<DocCmd>,
    env: DocEnv,
    tasks: TaskTracker,
}

impl Hub {
    /// A hub over `docs` (made with [`Hub::registry`]), starting tasks
    /// with `env`.
    pub(crate) fn new(docs: Registry<DocCmd>, env: DocEnv) -> Hub {
        Hub {
            docs,
            env,
            tasks: TaskTracker::new(),
        }
    }

    /// The registry a hub needs: `cap` documents, evicting idle ones;
    /// `loaded` follows how many are loaded.
    pub(crate) fn registry(cap: usize, loaded: Gauge) -> Registry<DocCmd> {
        Registry::new(cap, DOC_QUEUE, Some(|| DocCmd::Unload), loaded)
    }

    /// Starts the task of a document just registered; what raced in while
    /// it unloaded goes to a fresh task.
    fn start(&self, slot: Slot<DocCmd>, rx: mpsc::Receiver<DocCmd>) {
        let hub = self.clone();
        let doc = slot.doc().clone();
        self.tasks.spawn(async move {
            for cmd in document::run(hub.env.clone(), slot, rx).await {
                if hub.send(&doc, cmd).await.is_none() {
                    return;
                }
            }
        });
    }

    /// Sends `cmd` to `doc`'s task, restarting the task if it had just
    /// unloaded, waiting (up to `ROOM_WAIT`) for room at the cap. `None`
    /// while the relay is shutting down or when the open-document cap
    /// leaves no room for `doc`.
    pub(crate) async fn send(&self, doc: &DocId, mut cmd: DocCmd) -> Option<()> {
        let deadline = tokio::time::Instant::now() + ROOM_WAIT;
        let mut attempts = 0;
        loop {
            let room = self.docs.room();
            tokio::pin!(room);
            room.as_mut().enable();
            let handle = match self.docs.get(doc) {
                Got::Running(h) => h,
                Got::Start { handle, slot, rx } => {
                    self.start(slot, rx);
                    handle
                }
                Got::Full => return None,
                Got::Wait => {
                    tokio::time::timeout_at(deadline, room).await.ok()?;
                    continue;
                }
            };
            match handle.send(cmd).await {
                Ok(()) => return Some(()),
                Err(mpsc::error::SendError(back)) => cmd = back,
            }
            attempts += 1;
            if attempts == 3 {
                return None;
            }
        }
    }

    /// Sends `cmd` to `doc`'s task only if it is loaded (a `Leave` need not
    /// load a document).
    pub(crate) async fn send_if_loaded(&self, doc: &DocId, cmd: DocCmd) {
        if let Some(h) = self.docs.handle(doc) {
            let _ = h.send(cmd).await;
        }
    }

    /// How many documents are loaded.
    pub(crate) fn len(&self) -> usize {
        self.docs.len()
    }

    /// Drops every handle (documents finish their queued work and stop
    /// once connections have dropped theirs) and waits for the tasks.
    pub(crate) async fn close(&self) {
        self.docs.clear();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
