//! [`Replica`]: one open document — local-first edits, reads, status and
//! presence.

use crate::link::{Command, Link};
use crate::outbox::versions;
use crate::presence::{self, Peers, PresenceBook};
use crate::{Error, Result, SyncStatus};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use weft_core::doc::{Event, SubscriptionId, Transaction};
use weft_core::{Doc, DocError, VersionVector};
use weft_persist::Store;
use weft_protocol::{Cursor, DocId, PresenceState};

/// The in-memory document and what of it is not yet in the store.
#[derive(Debug)]
pub(crate) struct DocCell {
    pub(crate) doc: Doc,
    /// Set when an append failed: the store has everything up to this
    /// version; the next edit stores `doc.diff(it)` to catch up.
    unstored_from: Option<VersionVector>,
}

/// State shared by a [`Replica`]'s handles and the sync task.
#[derive(Debug)]
pub(crate) struct ReplicaShared {
    pub(crate) id: DocId,
    cell: Mutex<DocCell>,
    /// The document's version, kept beside it so status updates and
    /// `Replica::version` never wait for an edit's fsync (lock order:
    /// `cell` before `version`).
    version: Mutex<VersionVector>,
    pub(crate) store: Arc<dyn Store>,
    link: Arc<Link>,
    pub(crate) status: watch::Sender<SyncStatus>,
    pub(crate) presence: PresenceBook,
}

impl ReplicaShared {
    pub(crate) fn new(id: DocId, doc: Doc, store: Arc<dyn Store>, link: Arc<Link>) -> Self {
        let status = if link.is_connected() {
            SyncStatus::Connecting
        } else {
            SyncStatus::Offline
        };
        ReplicaShared {
            id,
            version: Mutex::new(doc.version().clone()),
            cell: Mutex::new(DocCell {
                doc,
                unstored_from: None,
            }),
            store,
            link,
            status: watch::Sender::new(status),
            presence: PresenceBook::default(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, DocCell> {
        self.cell.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn version(&self) -> VersionVector {
        self.version
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn publish_version(&self, doc: &Doc) {
        let mut version = self.version.lock().unwrap_or_else(|e| e.into_inner());
        if *version != *doc.version() {
            *version = doc.version().clone();
        }
    }

    /// Stores then applies an update received from the relay (blocking).
    /// Duplicates are skipped without touching the store. The store is
    /// written first: if the process dies in between, the relay still has
    /// the update and sends it again.
    pub(crate) fn store_and_apply(&self, update: &[u8]) -> std::result::Result<(), String> {
        let (_, to) = versions(update).ok_or("the relay sent bytes that are not an update")?;
        if self.version().dominates(&to) {
            return Ok(());
        }
        self.store
            .append(self.id.as_str(), update)
            .map_err(|e| format!("storing a received update: {e}"))?;
        let mut cell = self.lock();
        let applied = cell.doc.apply(update);
        self.publish_version(&cell.doc);
        applied.map_err(|e| format!("applying a received update: {e}"))?;
        Ok(())
    }

    pub(crate) fn set_status(&self, status: SyncStatus) {
        self.status.send_if_modified(|s| {
            let changed = *s != status;
            *s = status;
            changed
        });
    }
}

/// One open document: edits apply to the in-memory [`Doc`] and are durable
/// in the local store before [`Replica::transact`] returns; the client's
/// sync task (if connected) sends them to the relay and applies what other
/// replicas wrote. Cheap to clone; all clones are the same replica.
///
/// ```
/// use weft_client::Client;
/// let client = Client::in_memory();
/// let notes = client.replica("notes").unwrap();
/// notes.transact(|tx| tx.text("body")?.insert(0, "Hello")).unwrap();
/// assert_eq!(notes.read(|doc| doc.text("body").unwrap().to_string()), "Hello");
/// ```
#[derive(Clone, Debug)]
pub struct Replica {
    pub(crate) shared: Arc<ReplicaShared>,
}

impl Replica {
    /// The document id.
    ///
    /// ```
    /// use weft_client::Client;
    /// let doc = Client::in_memory().replica("notes-1").unwrap();
    /// assert_eq!(doc.id().as_str(), "notes-1");
    /// ```
    pub fn id(&self) -> &DocId {
        &self.shared.id
    }

    /// Runs `edit` as one transaction: applies it in memory, appends the
    /// update to the local store (durable when this returns: fsynced for a
    /// SQLite store) and hands it to the sync task. Returns the encoded
    /// update. Blocks for the store's commit; from async code prefer
    /// [`Replica::transact_async`].
    ///
    /// If `edit` fails nothing changes ([`Error::Doc`]). If the store fails
    /// ([`Error::Store`]) the edit stays applied in memory and the next
    /// successful edit stores both.
    ///
    /// ```
    /// use weft_client::Client;
    /// let client = Client::in_memory();
    /// let doc = client.replica("counters").unwrap();
    /// doc.transact(|tx| tx.counter("likes")?.increment(2)).unwrap();
    /// assert!(doc.transact(|tx| tx.text("likes").map(|_| ())).is_err()); // a counter, not a text
    /// assert_eq!(doc.read(|d| d.counter("likes").unwrap()), 2);
    /// ```
    pub fn transact<F>(&self, edit: F) -> Result<Vec<u8>>
    where
        F: FnOnce(&mut Transaction<'_>) -> std::result::Result<(), DocError>,
    {
        let shared = &self.shared;
        let mut cell = shared.lock();
        let before = cell.doc.version().clone();
        let update = cell.doc.transact(edit)?;
        if *cell.doc.version() == before && cell.unstored_from.is_none() {
            return Ok(update); // an empty transaction
        }
        shared.publish_version(&cell.doc);
        let (bytes, since) = match cell.unstored_from.take() {
            Some(since) => (cell.doc.diff(&since), since),
            None => (update.clone(), before),
        };
        if let Err(e) = shared.store.append(shared.id.as_str(), &bytes) {
            cell.unstored_from = Some(since);
            return Err(Error::Store(e));
        }
        // Under the lock, before the sync task can see the update: a
        // status read after this call never claims `Synced` for it (the
        // task recomputes the count when it takes the update).
        shared.status.send_if_modified(|s| match s {
            SyncStatus::Synced => {
                *s = SyncStatus::Syncing { pending: 1 };
                true
            }
            SyncStatus::Syncing { pending } => {
                *pending = pending.saturating_add(1);
                true
            }
            _ => false,
        });
        // Queued while the lock is held, so the sync task sees local
        // updates in commit order.
        shared.link.send(Command::Local {
            doc: shared.id.clone(),
            update: bytes,
        });
        Ok(update)
    }

    /// [`Replica::transact`] on tokio's blocking pool, so the store's fsync
    /// never stalls an async worker.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use weft_client::Client;
    /// let client = Client::in_memory();
    /// let doc = client.replica("tags").unwrap();
    /// doc.transact_async(|tx| tx.set::<String>("tags")?.add(&"draft".to_string())).await.unwrap();
    /// assert_eq!(doc.read(|d| d.set::<String>("tags").unwrap().len()), 1);
    /// # });
    /// ```
    pub async fn transact_async<F>(&self, edit: F) -> Result<Vec<u8>>
    where
        F: FnOnce(&mut Transaction<'_>) -> std::result::Result<(), DocError> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.transact(edit))
            .await
            .map_err(|e| Error::Task(e.to_string()))?
    }

    /// Reads the document. Do not call back into this replica from `read`.
    ///
    /// ```
    /// use weft_client::Client;
    /// let doc = Client::in_memory().replica("d").unwrap();
    /// assert_eq!(doc.read(|d| d.counter("n").unwrap()), 0);
    /// ```
    pub fn read<R>(&self, read: impl FnOnce(&Doc) -> R) -> R {
        read(&self.shared.lock().doc)
    }

    /// The transactions this replica has, per writer. Never waits for an
    /// edit being stored.
    ///
    /// ```
    /// use weft_client::Client;
    /// let doc = Client::in_memory().replica("d").unwrap();
    /// doc.transact(|tx| tx.counter("n")?.increment(1)).unwrap();
    /// assert_eq!(doc.version().total(), 1);
    /// ```
    pub fn version(&self) -> VersionVector {
        self.shared.version()
    }

    /// Calls `callback` after every change (local edits and updates from
    /// the relay), on the thread that made it. The callback must not call
    /// back into this replica.
    ///
    /// ```
    /// use std::sync::{Arc, atomic::{AtomicUsize, Ordering}};
    /// use weft_client::Client;
    /// let doc = Client::in_memory().replica("d").unwrap();
    /// let seen = Arc::new(AtomicUsize::new(0));
    /// let counter = seen.clone();
    /// let id = doc.subscribe(move |_| { counter.fetch_add(1, Ordering::Relaxed); });
    /// doc.transact(|tx| tx.counter("n")?.increment(1)).unwrap();
    /// assert!(seen.load(Ordering::Relaxed) > 0);
    /// assert!(doc.unsubscribe(id));
    /// ```
    pub fn subscribe<F>(&self, callback: F) -> SubscriptionId
    where
        F: FnMut(&Event) + Send + 'static,
    {
        self.shared.lock().doc.subscribe(callback)
    }

    /// Cancels a [`Replica::subscribe`]; returns whether it existed.
    pub fn unsubscribe(&self, id: SubscriptionId) -> bool {
        self.shared.lock().doc.unsubscribe(id)
    }

    /// The sync status, as a watch channel the UI can await.
    ///
    /// ```
    /// use weft_client::{Client, SyncStatus};
    /// let doc = Client::in_memory().replica("d").unwrap();
    /// assert_eq!(*doc.status().borrow(), SyncStatus::Offline);
    /// ```
    pub fn status(&self) -> watch::Receiver<SyncStatus> {
        self.shared.status.subscribe()
    }

    /// Waits until the status is [`SyncStatus::Synced`]; `false` on timeout.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use std::time::Duration;
    /// use weft_client::Client;
    /// let doc = Client::in_memory().replica("d").unwrap();
    /// assert!(!doc.wait_synced(Duration::from_millis(10)).await); // no relay
    /// # });
    /// ```
    pub async fn wait_synced(&self, timeout: Duration) -> bool {
        let mut rx = self.status();
        let synced = tokio::time::timeout(timeout, rx.wait_for(|s| *s == SyncStatus::Synced)).await;
        matches!(synced, Ok(Ok(_)))
    }

    /// Sets this replica's presence in the document (name, colour, cursor,
    /// app data); sent now if connected and again after every reconnect.
    ///
    /// ```
    /// use weft_client::{Client, PresenceState};
    /// let doc = Client::in_memory().replica("d").unwrap();
    /// let me = PresenceState { user: "Ann".into(), color: "#3366ff".into(), cursor: None, extra: vec![] };
    /// doc.set_presence(me).unwrap();
    /// let bad = PresenceState { user: "Bo".into(), color: "blue".into(), cursor: None, extra: vec![] };
    /// assert!(doc.set_presence(bad).is_err());
    /// ```
    pub fn set_presence(&self, state: PresenceState) -> Result<()> {
        presence::validate(&state)?;
        self.shared.presence.set_mine(Some(state));
        self.shared.link.send(Command::Presence {
            doc: self.shared.id.clone(),
        });
        Ok(())
    }

    /// Withdraws this replica's presence.
    ///
    /// ```
    /// use weft_client::Client;
    /// Client::in_memory().replica("d").unwrap().clear_presence();
    /// ```
    pub fn clear_presence(&self) {
        self.shared.presence.set_mine(None);
        self.shared.link.send(Command::Presence {
            doc: self.shared.id.clone(),
        });
    }

    /// A cursor (or selection) in the top-level text `text`, from char
    /// `anchor` to char `head`, anchored to characters so that peers see it
    /// follow their own concurrent edits. Put it in
    /// [`PresenceState::cursor`].
    ///
    /// ```
    /// use weft_client::{Client, PresenceState};
    /// let doc = Client::in_memory().replica("d").unwrap();
    /// doc.transact(|tx| tx.text("body")?.insert(0, "hello world")).unwrap();
    /// let cursor = doc.cursor("body", 6, 11).unwrap(); // "world" selected
    /// doc.transact(|tx| tx.text("body")?.insert(0, ">> ")).unwrap();
    /// assert_eq!(doc.resolve_cursor(&cursor), Some((9, 14)));
    /// let me = PresenceState { user: "Ann".into(), color: "#3366ff".into(), cursor: Some(cursor), extra: vec![] };
    /// doc.set_presence(me).unwrap();
    /// ```
    pub fn cursor(&self, text: &str, anchor: usize, head: usize) -> Result<Cursor> {
        self.read(|doc| presence::cursor_in(doc, text, anchor, head))
    }

    /// Where a (peer's) cursor is in this replica's document now, as char
    /// indexes `(anchor, head)`: `None` if its text does not exist here or
    /// its characters have not arrived yet.
    ///
    /// ```
    /// use weft_client::Client;
    /// let doc = Client::in_memory().replica("d").unwrap();
    /// let caret = doc.cursor("body", 0, 0).unwrap();
    /// assert_eq!(doc.resolve_cursor(&caret), Some((0, 0)));
    /// ```
    pub fn resolve_cursor(&self, cursor: &Cursor) -> Option<(usize, usize)> {
        self.read(|doc| presence::resolve_in(doc, cursor))
    }

    /// The other peers present in the document (empty while offline).
    ///
    /// ```
    /// use weft_client::Client;
    /// let doc = Client::in_memory().replica("d").unwrap();
    /// assert!(doc.peers().borrow().is_empty());
    /// ```
    pub fn peers(&self) -> watch::Receiver<Peers> {
        self.shared.presence.watch()
    }
}
