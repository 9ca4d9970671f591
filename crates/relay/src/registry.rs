//! A registry of loaded documents: one task per open document, each
//! reached through a bounded queue of commands `C`, at most `cap` loaded.
//!
//! The registry knows nothing of what a task does: it hands out queues,
//! and the one who asked for a document that was not loaded starts its
//! task with the [`Slot`] and receiver [`Registry::get`] returned. The
//! task holds its slot for eviction bookkeeping and leaves through it.
//! Both kinds of room use one: weft documents (`hub.rs`, evicting the
//! least recently used idle document at the cap) and Yjs rooms
//! (`yjs/rooms.rs`, refusing at the cap).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use metrics::Gauge;
use tokio::sync::futures::Notified;
use tokio::sync::{mpsc, Notify};
use weft_protocol::DocId;

/// Whether a document is loaded in some registry: what one kind of room
/// asks of the other (an id is a weft document or a Yjs room, never both).
pub(crate) trait Loaded: Send + Sync + fmt::Debug {
    /// Whether `doc` is loaded here.
    fn is_loaded(&self, doc: &str) -> bool;
}

/// What a task tells the registry about itself, for eviction.
#[derive(Debug)]
pub(crate) struct Usage {
    /// Current subscribers (a document with any is never evicted).
    pub(crate) subscribers: AtomicUsize,
    /// When it last handled a command (ms since the registry started).
    last_used: AtomicU64,
    /// Asked to unload to make room (it has not left yet).
    evicting: AtomicBool,
    epoch: Instant,
}

impl Usage {
    fn new(epoch: Instant) -> Usage {
        let used = Usage {
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

struct Entry<C> {
    generation: u64,
    handle: mpsc::Sender<C>,
    used: Arc<Usage>,
}

struct Inner<C> {
    docs: Mutex<HashMap<DocId, Entry<C>>>,
    next_generation: AtomicU64,
    epoch: Instant,
    /// Signalled when a document leaves (room at the cap) or declines to
    /// unload.
    room: Notify,
    cap: usize,
    queue: usize,
    /// The command asking a task to unload (`None`: never evict; refuse at
    /// the cap).
    unload: Option<fn() -> C>,
    /// Set to the number loaded at every change (what the cap bounds).
    gauge: Gauge,
}

/// Loaded documents by id (cheap to clone: one shared map).
pub(crate) struct Registry<C> {
    inner: Arc<Inner<C>>,
}

impl<C> Clone for Registry<C> {
    fn clone(&self) -> Self {
        Registry {
            inner: self.inner.clone(),
        }
    }
}

impl<C> fmt::Debug for Registry<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("loaded", &self.lock().len())
            .field("cap", &self.inner.cap)
            .finish()
    }
}

/// What [`Registry::get`] found.
pub(crate) enum Got<C> {
    /// The document's task is running.
    Running(mpsc::Sender<C>),
    /// Registered now: the caller starts its task with `slot` and `rx`.
    Start {
        handle: mpsc::Sender<C>,
        slot: Slot<C>,
        rx: mpsc::Receiver<C>,
    },
    /// At the cap; an idle document is unloading to make room
    /// ([`Registry::room`] signals when it has left).
    Wait,
    /// At the cap, and nothing can be evicted.
    Full,
}

/// A task's place in the registry: its usage, and the way out.
pub(crate) struct Slot<C> {
    doc: DocId,
    generation: u64,
    used: Arc<Usage>,
    registry: Registry<C>,
}

impl<C> fmt::Debug for Slot<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("doc", &self.doc)
            .field("generation", &self.generation)
            .finish()
    }
}

impl<C> Slot<C> {
    /// The document this slot is for.
    pub(crate) fn doc(&self) -> &DocId {
        &self.doc
    }

    /// What the task reports for eviction.
    pub(crate) fn usage(&self) -> &Usage {
        &self.used
    }

    /// Leaves the registry, if this task is still the document's task.
    pub(crate) fn leave(&self) {
        let inner = &self.registry.inner;
        let mut docs = self.registry.lock();
        if docs
            .get(&self.doc)
            .is_some_and(|e| e.generation == self.generation)
        {
            docs.remove(&self.doc);
            inner.gauge.set(docs.len() as f64);
            inner.room.notify_waiters();
        }
    }

    /// Asked to unload, the task stays (it has subscribers again): callers
    /// waiting for room ask another.
    pub(crate) fn decline_eviction(&self) {
        self.used.evicting.store(false, Ordering::Relaxed);
        self.registry.inner.room.notify_waiters();
    }
}

impl<C> Registry<C> {
    /// At most `cap` documents, `queue` commands queued for each; at the
    /// cap, `unload` (if any) asks the least recently used idle one to go.
    /// `gauge` follows how many are loaded.
    pub(crate) fn new(
        cap: usize,
        queue: usize,
        unload: Option<fn() -> C>,
        gauge: Gauge,
    ) -> Registry<C> {
        Registry {
            inner: Arc::new(Inner {
                docs: Mutex::new(HashMap::new()),
                next_generation: AtomicU64::new(1),
                epoch: Instant::now(),
                room: Notify::new(),
                cap,
                queue: queue.max(1),
                unload,
                gauge,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<DocId, Entry<C>>> {
        // A panic while holding this lock cannot leave the map half-updated
        // (single inserts and removes), so a poisoned lock is still usable.
        self.inner.docs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A future that completes when room may have been made (a document
    /// left or declined to unload). Enable it before [`Registry::get`] so
    /// no signal between the two is missed.
    pub(crate) fn room(&self) -> Notified<'_> {
        self.inner.room.notified()
    }

    /// The queue of `doc`, registering it (for the caller to start) if it
    /// is not loaded and there is room. At the cap, the least recently used
    /// idle document is asked to unload (once) and the caller waits for it
    /// to leave ([`Got::Wait`]), so documents unloading still count.
    pub(crate) fn get(&self, doc: &DocId) -> Got<C> {
        let mut docs = self.lock();
        // A task that ended without leaving (it panicked) keeps its place:
        // the new one takes it, whatever the cap.
        let replacing = match docs.get(doc) {
            Some(e) if !e.handle.is_closed() => return Got::Running(e.handle.clone()),
            Some(_) => true,
            None => false,
        };
        if !replacing && docs.len() >= self.inner.cap {
            let Some(unload) = self.inner.unload else {
                return Got::Full;
            };
            let evicting = docs
                .values()
                .any(|e| e.used.evicting.load(Ordering::Relaxed));
            return if evicting || Self::evict_one(&docs, unload) {
                Got::Wait
            } else {
                Got::Full
            };
        }
        let (handle, rx) = mpsc::channel(self.inner.queue);
        let generation = self.inner.next_generation.fetch_add(1, Ordering::Relaxed);
        let used = Arc::new(Usage::new(self.inner.epoch));
        docs.insert(
            doc.clone(),
            Entry {
                generation,
                handle: handle.clone(),
                used: used.clone(),
            },
        );
        self.inner.gauge.set(docs.len() as f64);
        Got::Start {
            handle,
            slot: Slot {
                doc: doc.clone(),
                generation,
                used,
                registry: self.clone(),
            },
            rx,
        }
    }

    /// Asks the least recently used document without subscribers, not
    /// asked already, to unload (it re-checks when the request arrives);
    /// whether one was asked.
    fn evict_one(docs: &HashMap<DocId, Entry<C>>, unload: fn() -> C) -> bool {
        let idle = docs
            .values()
            .filter(|e| {
                e.used.subscribers.load(Ordering::Relaxed) == 0
                    && !e.used.evicting.load(Ordering::Relaxed)
            })
            .min_by_key(|e| e.used.last_used.load(Ordering::Relaxed));
        match idle {
            Some(e) if e.handle.try_send(unload()).is_ok() => {
                ::metrics::counter!("weft_relay_docs_evicted_total").increment(1);
                e.used.evicting.store(true, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    /// The queue of `doc` if it is loaded.
    pub(crate) fn handle(&self, doc: &DocId) -> Option<mpsc::Sender<C>> {
        self.lock().get(doc).map(|e| e.handle.clone())
    }

    /// The queue of every loaded document.
    pub(crate) fn handles(&self) -> Vec<mpsc::Sender<C>> {
        self.lock().values().map(|e| e.handle.clone()).collect()
    }

    /// Whether `doc` is loaded (its task running).
    pub(crate) fn contains(&self, doc: &DocId) -> bool {
        self.lock().get(doc).is_some_and(|e| !e.handle.is_closed())
    }

    /// How many documents are loaded.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Drops every queue (tasks finish what is queued and stop once the
    /// other senders are gone too).
    pub(crate) fn clear(&self) {
        self.lock().clear();
        self.inner.gauge.set(0.0);
    }
}

impl<C: Send + 'static> Loaded for Registry<C> {
    fn is_loaded(&self, doc: &str) -> bool {
        DocId::new(doc).is_ok_and(|d| self.contains(&d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(s: &str) -> DocId {
        DocId::new(s).unwrap()
    }

    #[tokio::test]
    async fn at_the_cap_the_least_recently_used_idle_document_is_asked_to_leave() {
        let reg: Registry<u8> = Registry::new(2, 4, Some(|| 0), Gauge::noop());
        let Got::Start {
            slot: a,
            rx: mut ra,
            ..
        } = reg.get(&doc("a"))
        else {
            panic!("a starts")
        };
        let Got::Start {
            slot: b, rx: _rb, ..
        } = reg.get(&doc("b"))
        else {
            panic!("b starts")
        };
        b.usage().subscribers.store(1, Ordering::Relaxed);
        std::thread::sleep(std::time::Duration::from_millis(2));
        b.usage().touch();
        assert!(matches!(reg.get(&doc("c")), Got::Wait));
        assert_eq!(ra.try_recv().ok(), Some(0), "a (idle) was asked to unload");
        assert!(matches!(reg.get(&doc("c")), Got::Wait), "asked only once");
        let room = reg.room();
        tokio::pin!(room);
        room.as_mut().enable();
        a.leave();
        room.await;
        let Got::Start { rx: _rc, .. } = reg.get(&doc("c")) else {
            panic!("c starts")
        };
        assert!(reg.is_loaded("b") && reg.is_loaded("c") && !reg.is_loaded("a"));
        assert_eq!(reg.len(), 2);
    }

    #[test]
    fn without_unload_the_cap_refuses_and_a_task_gone_without_leaving_is_replaced() {
        let reg: Registry<u8> = Registry::new(2, 4, None, Gauge::noop());
        let Got::Start { slot: old, rx, .. } = reg.get(&doc("a")) else {
            panic!("starts")
        };
        let Got::Start { rx: _rb, .. } = reg.get(&doc("b")) else {
            panic!("starts")
        };
        assert!(matches!(reg.get(&doc("c")), Got::Full));
        drop(rx);
        // The task ended without leaving (a panic): at the cap, a new one
        // still takes its place, and the old slot cannot remove it.
        let Got::Start {
            slot: new, rx: _rx, ..
        } = reg.get(&doc("a"))
        else {
            panic!("restarts")
        };
        old.leave();
        assert!(reg.contains(&doc("a")), "the old task's leave is ignored");
        new.leave();
        assert!(!reg.contains(&doc("a")));
    }
}
