//! The registry of loaded documents: one task per open document, started
//! on first use and removed when it unloads itself.
//!
//! At most `max_loaded_docs` documents are loaded: loading one more first
//! asks the least recently used document without subscribers to unload; if
//! every loaded document has subscribers, the new one is refused (the
//! subscriber gets `DocUnavailable` and retries later).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Notify};
use tokio_util::task::TaskTracker;
use weft_protocol::DocId;

use crate::document::{self, DocCmd};
use crate::state::Shared;

/// How many commands may wait for one document before senders wait.
const DOC_QUEUE: usize = 1024;

/// How long a command for a document that is not loaded waits, at the
/// cap, for an idle document to unload and make room.
const ROOM_WAIT: Duration = Duration::from_secs(2);

/// A sender to one document's task.
pub(crate) type DocHandle = mpsc::Sender<DocCmd>;

/// What a document task tells the hub about itself, for eviction.
#[derive(Debug)]
pub(crate) struct DocUse {
    /// Current subscribers.
    pub(crate) subscribers: AtomicUsize,
    /// When it last handled a command (ms since the hub started).
    last_used: AtomicU64,
    /// Asked to unload to make room (it has not left the hub yet).
    evicting: AtomicBool,
    epoch: Instant,
}

impl DocUse {
    fn new(epoch: Instant) -> DocUse {
        let used = DocUse {
            subscribers: AtomicUsize::new(0),
            last_used: AtomicU64::new(0),
            evicting: AtomicBool::new(false),
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
    /// Signalled when a document leaves the hub (room at the cap) or
    /// declines to unload.
    room: Notify,
}

/// What [`Hub::get`] found.
enum Got {
    Handle(DocHandle),
    /// At the cap; an idle document is unloading to make room.
    Wait,
    /// At the cap, and every loaded document has subscribers.
    Full,
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
            room: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<DocId, Entry>> {
        // A panic while holding this lock cannot leave the map half-updated
        // (single inserts and removes), so a poisoned lock is still usable.
        self.docs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The task of `doc`, started if it is not running and there is room.
    /// At the cap, the least recently used idle document is asked to unload
    /// (once): the caller waits until it has left ([`Got::Wait`]), so that
    /// documents being unloaded still count against the cap.
    fn get(&self, state: &Shared, doc: &DocId) -> Got {
        let mut docs = self.lock();
        if let Some(e) = docs.get(doc) {
            if !e.handle.is_closed() {
                return Got::Handle(e.handle.clone());
            }
        }
        if docs.len() >= state.limits.max_loaded_docs {
            let evicting = docs
                .values()
                .any(|e| e.used.evicting.load(Ordering::Relaxed));
            return if evicting || Self::evict_one(&docs) {
                Got::Wait
            } else {
                Got::Full
            };
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
        Got::Handle(tx)
    }

    /// Asks the least recently used document without subscribers, not
    /// asked already, to unload (it re-checks when the request arrives);
    /// whether one was asked.
    fn evict_one(docs: &HashMap<DocId, Entry>) -> bool {
        let idle = docs
            .values()
            .filter(|e| {
                e.used.subscribers.load(Ordering::Relaxed) == 0
                    && !e.used.evicting.load(Ordering::Relaxed)
            })
            .min_by_key(|e| e.used.last_used.load(Ordering::Relaxed));
        match idle {
            Some(e) if e.handle.try_send(DocCmd::Unload).is_ok() => {
                ::metrics::counter!("weft_relay_docs_evicted_total").increment(1);
                e.used.evicting.store(true, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    /// Sends `cmd` to `doc`'s task, restarting the task if it had just
    /// unloaded, waiting (up to `ROOM_WAIT`) for room at the cap. `None`
    /// while the relay is shutting down or when the open-document cap
    /// leaves no room for `doc`.
    pub(crate) async fn send(&self, state: &Shared, doc: &DocId, mut cmd: DocCmd) -> Option<()> {
        let deadline = tokio::time::Instant::now() + ROOM_WAIT;
        let mut attempts = 0;
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            let handle = match self.get(state, doc) {
                Got::Handle(h) => h,
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

    /// A document asked to unload stays (it has subscribers again):
    /// callers waiting for room ask another.
    pub(crate) fn eviction_declined(&self, used: &DocUse) {
        used.evicting.store(false, Ordering::Relaxed);
        self.room.notify_waiters();
    }

    /// Sends `cmd` to `doc`'s task only if it is loaded (a `Leave` need not
    /// load a document).
    pub(crate) async fn send_if_loaded(&self, doc: &DocId, cmd: DocCmd) {
        let handle = self.lock().get(doc).map(|e| e.handle.clone());
        if let Some(h) = handle {
            let _ = h.send(cmd).await;
        }
    }

    /// Queues `cmd` for `doc` only if it is loaded, without waiting: a
    /// full queue drops it (cluster mode: the document notices the missed
    /// seq and catches up from the store).
    pub(crate) fn try_send_if_loaded(&self, doc: &DocId, cmd: DocCmd) {
        let handle = self.lock().get(doc).map(|e| e.handle.clone());
        if let Some(h) = handle {
            if h.try_send(cmd).is_err() {
                ::metrics::counter!("weft_relay_bus_deliveries_dropped_total").increment(1);
            }
        }
    }

    /// Queues `make()` for every loaded document, without waiting.
    pub(crate) fn broadcast(&self, make: impl Fn() -> DocCmd) {
        let handles: Vec<DocHandle> = self.lock().values().map(|e| e.handle.clone()).collect();
        for h in handles {
            let _ = h.try_send(make());
        }
    }

    /// Removes `doc` if task `generation` is still its task (called by a
    /// task that unloads itself).
    pub(crate) fn remove_if(&self, doc: &DocId, generation: u64) {
        let mut docs = self.lock();
        if docs.get(doc).is_some_and(|e| e.generation == generation) {
            docs.remove(doc);
            self.room.notify_waiters();
        }
    }

    /// Whether `doc` is loaded (a weft document claims its id once loaded).
    pub(crate) fn contains(&self, doc: &DocId) -> bool {
        self.lock().get(doc).is_some_and(|e| !e.handle.is_closed())
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
