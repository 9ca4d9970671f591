//! The registry of loaded documents: one task per open document, started
//! on first use and removed when it unloads itself.
//!
//! At most `max_loaded_docs` documents are loaded: loading one more first
//! asks the least recently used document without subscribers to unload; if
//! every loaded document has subscribers, the new one is refused (the
//! subscriber gets `DocUnavailable` and retries later).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;
use weft_protocol::DocId;

use crate::document::{self, DocCmd};
use crate::state::Shared;

/// How many commands may wait for one document before senders wait.
const DOC_QUEUE: usize = 1024;

/// A sender to one document's task.
pub(crate) type DocHandle = mpsc::Sender<DocCmd>;

/// What a document task tells the hub about itself, for eviction.
#[derive(Debug)]
pub(crate) struct DocUse {
    /// Current subscribers.
    pub(crate) subscribers: AtomicUsize,
    /// When it last handled a command (ms since the hub started).
    last_used: AtomicU64,
    epoch: Instant,
}

impl DocUse {
    fn new(epoch: Instant) -> DocUse {
        let used = DocUse {
            subscribers: AtomicUsize::new(0),
            last_used: AtomicU64::new(0),
            epoch,
        };
        used.touch();
        used
    }

    /// Records that the document was just used.
    pub(crate) fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_used.store(ms, Ordering::Relaxed);
    }
}

struct Entry {
    generation: u64,
    handle: DocHandle,
    used: Arc<DocUse>,
}

/// Open documents by id.
pub(crate) struct Hub {
    docs: Mutex<HashMap<DocId, Entry>>,
    next_generation: AtomicU64,
    tasks: TaskTracker,
    epoch: Instant,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("loaded", &self.len()).finish()
    }
}

impl Hub {
    pub(crate) fn new() -> Hub {
        Hub {
            docs: Mutex::new(HashMap::new()),
            next_generation: AtomicU64::new(1),
            tasks: TaskTracker::new(),
            epoch: Instant::now(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<DocId, Entry>> {
        // A panic while holding this lock cannot leave the map half-updated
        // (single inserts and removes), so a poisoned lock is still usable.
        self.docs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The task of `doc`, started if it is not running; `None` if it is not
    /// loaded and the open-document cap is reached by documents that all
    /// have subscribers.
    pub(crate) fn get(&self, state: &Shared, doc: &DocId) -> Option<DocHandle> {
        let mut docs = self.lock();
        if let Some(e) = docs.get(doc) {
            if !e.handle.is_closed() {
                return Some(e.handle.clone());
            }
        }
        if docs.len() >= state.limits.max_loaded_docs && !Self::evict_one(&docs) {
            return None;
        }
        let (tx, rx) = mpsc::channel(DOC_QUEUE);
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let used = Arc::new(DocUse::new(self.epoch));
        docs.insert(
            doc.clone(),
            Entry {
                generation,
                handle: tx.clone(),
                used: used.clone(),
            },
        );
        self.tasks.spawn(document::run(
            state.clone(),
            doc.clone(),
            generation,
            used,
            rx,
        ));
        Some(tx)
    }

    /// Asks the least recently used document without subscribers to unload
    /// (it re-checks when the request arrives); whether one was asked.
    fn evict_one(docs: &HashMap<DocId, Entry>) -> bool {
        let idle = docs
            .values()
            .filter(|e| e.used.subscribers.load(Ordering::Relaxed) == 0)
            .min_by_key(|e| e.used.last_used.load(Ordering::Relaxed));
        match idle {
            Some(e) => {
                ::metrics::counter!("weft_relay_docs_evicted_total").increment(1);
                e.handle.try_send(DocCmd::Unload).is_ok()
            }
            None => false,
        }
    }

    /// Sends `cmd` to `doc`'s task, restarting the task if it had just
    /// unloaded. `None` while the relay is shutting down or when the
    /// open-document cap leaves no room for `doc`.
    pub(crate) async fn send(&self, state: &Shared, doc: &DocId, mut cmd: DocCmd) -> Option<()> {
        for _ in 0..3 {
            let handle = self.get(state, doc)?;
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
        let handle = self.lock().get(doc).map(|e| e.handle.clone());
        if let Some(h) = handle {
            let _ = h.send(cmd).await;
        }
    }

    /// Removes `doc` if task `generation` is still its task (called by a
    /// task that unloads itself).
    pub(crate) fn remove_if(&self, doc: &DocId, generation: u64) {
        let mut docs = self.lock();
        if docs.get(doc).is_some_and(|e| e.generation == generation) {
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
