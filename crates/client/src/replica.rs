//! [`Replica`]: one open document — local-first edits, reads, status and
//! presence.

use crate::link::{Command, Link};
use crate::presence::{self, Peers, PresenceBook};
use crate::send_order::SendOrder;
use crate::{Error, Result, SyncStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;
use weft_core::doc::{ApplyStatus, Event, Limits, SubscriptionId, Transaction, UndoManager};
use weft_core::{Doc, DocError, ReplicaId, Update, VersionVector};
use weft_persist::{SkippedRecord, Store};
use weft_protocol::{Access, Cursor, DocId, PresenceState};

/// The in-memory document and what of it is not yet in the store.
#[derive(Debug)]
pub(crate) struct DocCell {
    pub(crate) doc: Doc,
    /// Set when an append failed: the store has everything up to this
    /// version; the next edit stores `doc.diff(it)` to catch up.
    unstored_from: Option<VersionVector>,
    /// Remote updates this session accepted to wait for a dependency.
    waiting: Waiting,
}

impl DocCell {
    /// An append of everything since `since` failed: the next local edit
    /// stores `doc.diff` of the oldest such point (appends of later edits
    /// may have succeeded meanwhile; storing them again is harmless).
    fn mark_unstored(&mut self, since: &VersionVector) {
        self.unstored_from = Some(match self.unstored_from.take() {
            Some(older) => older.meet(since),
            None => since.clone(),
        });
    }
}

/// The remote updates accepted this session while they wait for a missing
/// dependency, by the version they lead to and their *decoded* size. The
/// document bounds its waiting updates by count and by their encoded size;
/// an encoded size says little about what compressed sections inflated to,
/// so the client bounds the decoded size too (`Limits::max_pending_bytes`,
/// counted decoded). Waiting updates loaded from the store are not counted:
/// they were bounded when they arrived.
#[derive(Debug, Default)]
struct Waiting {
    entries: Vec<(VersionVector, usize)>,
    bytes: usize,
}

impl Waiting {
    /// Forgets the updates `version` now includes (applied once their gap
    /// was filled).
    fn prune(&mut self, version: &VersionVector) {
        if self.entries.is_empty() {
            return;
        }
        self.entries.retain(|(to, _)| !version.dominates(to));
        self.bytes = self.entries.iter().map(|(_, n)| *n).sum();
    }

    fn add(&mut self, to: VersionVector, decoded: usize) {
        self.bytes = self.bytes.saturating_add(decoded);
        self.entries.push((to, decoded));
    }
}

/// What [`ReplicaShared::receive`] did with a relay's update.
#[derive(Debug)]
pub(crate) enum Received {
    /// Applied, or kept waiting for a dependency (within limits); stored.
    Accepted {
        from: VersionVector,
        to: VersionVector,
    },
    /// Already applied, or already waiting: nothing changed or was stored.
    Duplicate,
    /// Refused by the client's limits or the document's checks: nothing
    /// changed or was stored.
    Refused(DocError),
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
    /// The document's limits (fixed when it was opened), readable without
    /// waiting for the document's lock.
    limits: Limits,
    /// Records of the store that did not replay when it was opened.
    skipped: Vec<SkippedRecord>,
    /// This session's replica id (the document's).
    replica: ReplicaId,
    /// What the relay last said this client may do with the document
    /// (protocol 2 `Access`); `None` until a relay has said.
    pub(crate) access: watch::Sender<Option<Access>>,
    /// Local updates go to the sync task in the order they were committed.
    send_order: SendOrder,
    /// Set by [`Client::close`](crate::Client::close): the handle no longer
    /// edits or syncs.
    closed: AtomicBool,
}

impl ReplicaShared {
    /// `doc` already carries the limits it was opened with.
    pub(crate) fn new(
        id: DocId,
        doc: Doc,
        store: Arc<dyn Store>,
        link: Arc<Link>,
        max_presence_peers: usize,
        skipped: Vec<SkippedRecord>,
    ) -> Self {
        let status = if link.is_connected() {
            SyncStatus::Connecting
        } else {
            SyncStatus::Offline
        };
        ReplicaShared {
            id,
            version: Mutex::new(doc.version().clone()),
            limits: *doc.limits(),
            replica: doc.replica(),
            cell: Mutex::new(DocCell {
                doc,
                unstored_from: None,
                waiting: Waiting::default(),
            }),
            store,
            link,
            status: watch::Sender::new(status),
            presence: PresenceBook::new(max_presence_peers),
            skipped,
            access: watch::Sender::new(None),
            send_order: SendOrder::default(),
            closed: AtomicBool::new(false),
        }
    }

    /// Marks the replica closed (its handles stop editing) and offline.
    pub(crate) fn close(&self) {
        // Under the document's lock: a transaction that checked `closed`
        // under it either committed (and queued its update) before this,
        // or sees the replica closed; none commits after the close.
        {
            let _cell = self.lock();
            self.closed.store(true, Ordering::SeqCst);
        }
        self.set_status(SyncStatus::Offline);
        self.presence.clear();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Forgets the access a relay announced (connected to one that does
    /// not announce it).
    pub(crate) fn clear_access(&self) {
        self.access.send_if_modified(|a| a.take().is_some());
    }

    /// Records the relay's announcement; `true` if it changed.
    pub(crate) fn set_access(&self, access: Access) -> bool {
        self.access.send_if_modified(|a| {
            let changed = *a != Some(access);
            *a = Some(access);
            changed
        })
    }

    /// This editing session's replica id.
    pub(crate) fn replica_id(&self) -> ReplicaId {
        self.replica
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

    /// Checks, applies, then stores an update received from the relay
    /// (blocking). The update is decoded once under the document's limits
    /// (input and decoded size, authors), then applied: the document
    /// refuses it if it claims transactions of this session's replica it
    /// does not have, conflicts with transactions it holds, or must wait
    /// for a dependency while the waiting buffer is full (counted here at
    /// decoded size). Only what was applied, or newly kept waiting, is
    /// appended to the store — a refused update never reaches the store, so
    /// it can neither make it unloadable nor be uploaded from it later.
    ///
    /// Applied before stored, under the document's lock (so the store's
    /// order is the document's): if the append fails, the document keeps the
    /// update, the next local edit stores `diff` of the last stored version
    /// (covering it), and the error ends the connection. If the process
    /// dies in between, the relay still has the update and sends it again.
    /// `Err` only for a failed append.
    pub(crate) fn receive(&self, bytes: Vec<u8>) -> std::result::Result<Received, String> {
        // Decoding (inflating) happens before the lock: a local edit never
        // waits for it.
        let update = match Update::decode(bytes, &self.limits) {
            Ok(update) => update,
            Err(error) => return Ok(Received::Refused(error)),
        };
        let mut guard = self.lock();
        let cell = &mut *guard;
        if cell.doc.readiness(&update) == ApplyStatus::Pending {
            cell.waiting.prune(cell.doc.version());
            let decoded = update.decoded_len();
            if cell.waiting.bytes.saturating_add(decoded) > self.limits.max_pending_bytes {
                return Ok(Received::Refused(DocError::PendingFull {
                    updates: cell.doc.pending_updates(),
                    bytes: cell.waiting.bytes,
                }));
            }
        }
        let before = cell.doc.version().clone();
        let waiting_before = cell.doc.pending_updates();
        let report = match cell.doc.apply_update(&update) {
            Ok(report) => report,
            Err(error) => return Ok(Received::Refused(error)),
        };
        self.publish_version(&cell.doc);
        match report.status {
            ApplyStatus::Duplicate => return Ok(Received::Duplicate),
            // Already waiting: the buffer keeps one copy, the store too.
            ApplyStatus::Pending if report.pending <= waiting_before => {
                return Ok(Received::Duplicate)
            }
            ApplyStatus::Pending => cell.waiting.add(update.to().clone(), update.decoded_len()),
            ApplyStatus::Applied => cell.waiting.prune(cell.doc.version()),
        }
        // Decoded and checked above: stored without decoding it again,
        // queued under the lock (the store's order is the document's) and
        // waited for without it (local edits do not wait for this fsync).
        let commit = self.store.submit_updates(self.id.as_str(), &[&update]);
        drop(guard);
        let appended = commit
            .wait()
            .pop()
            .unwrap_or(Err(weft_persist::Error::Closed));
        if let Err(e) = appended {
            if report.status == ApplyStatus::Applied {
                self.lock().mark_unstored(&before);
            }
            return Err(format!("storing a received update: {e}"));
        }
        Ok(Received::Accepted {
            from: update.from().clone(),
            to: update.to().clone(),
        })
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
    /// update. Blocks for the store's commit, without holding the
    /// document's lock (reads, observers and remote updates go on while
    /// the fsync runs); from async code prefer [`Replica::transact_async`].
    ///
    /// If `edit` fails nothing changes ([`Error::Doc`]); nor on a closed
    /// document ([`Error::Closed`]) or one the relay announced read-only
    /// ([`Error::ReadOnly`]). If the store fails
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
        self.commit_local(|doc| Ok(Some(doc.transact(edit)?)))
            .map(Option::unwrap_or_default)
    }

    /// Runs `change` on the document under its lock (after the closed and
    /// read-only checks), then stores what it committed and queues it for
    /// the relay: the one path of every local change (edits, undo, redo).
    /// `change` returns the update it committed, or `None` for nothing.
    fn commit_local(
        &self,
        change: impl FnOnce(&mut Doc) -> std::result::Result<Option<Vec<u8>>, DocError>,
    ) -> Result<Option<Vec<u8>>> {
        let shared = &self.shared;
        // Checked under the lock `close` takes (see `ReplicaShared::close`).
        let mut cell = shared.lock();
        if shared.is_closed() {
            return Err(Error::Closed(shared.id.clone()));
        }
        if *shared.access.borrow() == Some(Access::ReadOnly) {
            return Err(Error::ReadOnly(shared.id.clone()));
        }
        let before = cell.doc.version().clone();
        let Some(update) = change(&mut cell.doc)? else {
            return Ok(None);
        };
        if *cell.doc.version() == before && cell.unstored_from.is_none() {
            return Ok(Some(update)); // an empty transaction
        }
        shared.publish_version(&cell.doc);
        let (bytes, since) = match cell.unstored_from.take() {
            Some(since) => (cell.doc.diff(&since), since),
            None => (update.clone(), before),
        };
        // Queued on the store under the lock (so the store's order is the
        // document's), then waited for without it: reads, observers and
        // remote updates do not wait for this edit's fsync.
        let commit = shared.store.submit_many(shared.id.as_str(), &[&bytes]);
        let ticket = shared.send_order.ticket();
        drop(cell);
        let stored = commit
            .wait()
            .pop()
            .unwrap_or(Err(weft_persist::Error::Closed));
        // Handed to the sync task in commit order, and only once durable:
        // a relay never holds an edit this client could lose in a crash.
        let _turn = shared.send_order.wait_turn(ticket);
        if let Err(e) = stored {
            shared.lock().mark_unstored(&since);
            return Err(Error::Store(e));
        }
        // Before the sync task can see the update: a status read after
        // this call never claims `Synced` for it (the task recomputes the
        // count when it takes the update).
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
        // Sent in turn order, so the sync task sees local updates in
        // commit order.
        shared.link.send(Command::Local {
            doc: shared.id.clone(),
            update: bytes,
        });
        Ok(Some(update))
    }

    /// Installs (or, with `None`, removes) an undo manager on this
    /// replica's document: from then on its local edits can be undone with
    /// [`Replica::undo`] (only this replica's edits, surviving remote edits
    /// in between; see [`UndoManager`]).
    ///
    /// ```
    /// use weft_client::{Client, UndoManager};
    /// let doc = Client::in_memory().replica("notes").unwrap();
    /// doc.set_undo_manager(Some(UndoManager::new()));
    /// doc.transact(|tx| tx.text("t")?.insert(0, "hello")).unwrap();
    /// assert!(doc.undo().unwrap());
    /// assert_eq!(doc.read(|d| d.text("t").unwrap().to_string()), "");
    /// assert!(doc.redo().unwrap());
    /// assert_eq!(doc.read(|d| d.text("t").unwrap().to_string()), "hello");
    /// assert!(!doc.redo().unwrap()); // nothing left to redo
    /// ```
    pub fn set_undo_manager(&self, manager: Option<UndoManager>) {
        self.shared.lock().doc.set_undo_manager(manager);
    }

    /// Ends the current undo step: the next edit starts a new one even
    /// within the capture window (an editor calls it on a cursor jump).
    ///
    /// ```
    /// use weft_client::{Client, UndoManager};
    /// let doc = Client::in_memory().replica("notes").unwrap();
    /// doc.set_undo_manager(Some(UndoManager::new()));
    /// doc.transact(|tx| tx.text("t")?.insert(0, "one ")).unwrap();
    /// doc.undo_boundary();
    /// doc.transact(|tx| tx.text("t")?.insert(4, "two")).unwrap();
    /// assert!(doc.undo().unwrap()); // only the second step
    /// assert_eq!(doc.read(|d| d.text("t").unwrap().to_string()), "one ");
    /// ```
    pub fn undo_boundary(&self) {
        self.shared.lock().doc.undo_boundary();
    }

    /// Undoes this replica's latest undo step in one transaction that is
    /// stored and synced like any edit; `Ok(false)` if there was nothing to
    /// undo (or no manager, see [`Replica::set_undo_manager`]). Errors as
    /// [`Replica::transact`].
    ///
    /// ```
    /// use weft_client::Client;
    /// let doc = Client::in_memory().replica("notes").unwrap();
    /// assert!(!doc.undo().unwrap()); // no manager: nothing to undo
    /// ```
    pub fn undo(&self) -> Result<bool> {
        Ok(self.commit_local(Doc::undo)?.is_some())
    }

    /// Redoes the latest undone step (the inverse of [`Replica::undo`]);
    /// `Ok(false)` if there was none.
    ///
    /// ```
    /// use weft_client::{Client, UndoManager};
    /// let doc = Client::in_memory().replica("n").unwrap();
    /// doc.set_undo_manager(Some(UndoManager::new()));
    /// doc.transact(|tx| tx.counter("c")?.increment(2)).unwrap();
    /// doc.undo().unwrap();
    /// assert!(doc.redo().unwrap());
    /// assert_eq!(doc.read(|d| d.counter("c").unwrap()), 2);
    /// ```
    pub fn redo(&self) -> Result<bool> {
        Ok(self.commit_local(Doc::redo)?.is_some())
    }

    /// Whether [`Replica::undo`] / [`Replica::redo`] have a step to apply.
    ///
    /// ```
    /// use weft_client::{Client, UndoManager};
    /// let doc = Client::in_memory().replica("n").unwrap();
    /// doc.set_undo_manager(Some(UndoManager::new()));
    /// assert_eq!(doc.can_undo_redo(), (false, false));
    /// doc.transact(|tx| tx.counter("c")?.increment(1)).unwrap();
    /// assert_eq!(doc.can_undo_redo(), (true, false));
    /// ```
    pub fn can_undo_redo(&self) -> (bool, bool) {
        let cell = self.shared.lock();
        cell.doc
            .undo_manager()
            .map_or((false, false), |m| (m.can_undo(), m.can_redo()))
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

    /// Waits until the relay has everything of this replica it will take
    /// and this replica everything the relay has: the status is
    /// [`SyncStatus::Synced`] (or [`SyncStatus::ReadOnly`] with nothing
    /// unsent). `false` on timeout.
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
        let synced = tokio::time::timeout(
            timeout,
            rx.wait_for(|s| matches!(s, SyncStatus::Synced | SyncStatus::ReadOnly { unsent: 0 })),
        )
        .await;
        matches!(synced, Ok(Ok(_)))
    }

    /// What the relay last announced this client may do with the document
    /// (protocol 2), as a watch channel: `None` until a relay has said (or
    /// from a version 1 relay). With [`Access::ReadOnly`] local edits are
    /// refused ([`Error::ReadOnly`]).
    ///
    /// ```
    /// use weft_client::Client;
    /// let doc = Client::in_memory().replica("d").unwrap();
    /// assert_eq!(*doc.access().borrow(), None); // no relay has said
    /// ```
    pub fn access(&self) -> watch::Receiver<Option<Access>> {
        self.shared.access.subscribe()
    }

    /// Whether [`Client::close`](crate::Client::close) closed this
    /// document (this handle then refuses edits with [`Error::Closed`]).
    ///
    /// ```
    /// use weft_client::Client;
    /// let client = Client::in_memory();
    /// let doc = client.replica("d").unwrap();
    /// assert!(!doc.is_closed());
    /// assert!(client.close("d"));
    /// assert!(doc.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.is_closed()
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

    /// Records of the local store that verified but did not replay when
    /// this document was opened (empty when everything replayed). The
    /// document opened without them; they were also reported as
    /// [`ClientEvent::StoredRecordsSkipped`](crate::ClientEvent::StoredRecordsSkipped).
    ///
    /// ```
    /// use weft_client::Client;
    /// let doc = Client::in_memory().replica("d").unwrap();
    /// assert!(doc.skipped_records().is_empty());
    /// ```
    pub fn skipped_records(&self) -> Vec<SkippedRecord> {
        self.shared.skipped.clone()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClientLimits;
    use weft_core::ReplicaId;
    use weft_persist::MemoryStore;

    fn open(store: &MemoryStore, limits: Limits) -> ReplicaShared {
        let doc = Doc::new(ReplicaId::new(100)).with_limits(limits);
        ReplicaShared::new(
            DocId::new("d").unwrap(),
            doc,
            Arc::new(store.clone()),
            Arc::new(Link::default()),
            16,
            Vec::new(),
        )
    }

    fn stored(store: &MemoryStore) -> usize {
        store.read("d").unwrap().map_or(0, |s| s.updates.len())
    }

    fn edits(author: &mut Doc, n: usize) -> Vec<Vec<u8>> {
        (0..n)
            .map(|i| {
                author
                    .transact(|tx| tx.counter("n")?.increment(i as u64 + 1))
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn waiting_updates_are_stored_once_and_refused_beyond_the_limit() {
        let store = MemoryStore::new();
        let limits = Limits {
            max_pending_updates: 3,
            ..ClientLimits::default().doc_limits()
        };
        let replica = open(&store, limits);
        let mut author = Doc::new(ReplicaId::new(1));
        let first = edits(&mut author, 1).remove(0);
        let later = edits(&mut author, 5);
        for u in &later[..3] {
            assert!(matches!(
                replica.receive(u.clone()),
                Ok(Received::Accepted { .. })
            ));
        }
        assert!(
            matches!(replica.receive(later[0].clone()), Ok(Received::Duplicate)),
            "already waiting: not stored again"
        );
        match replica.receive(later[3].clone()) {
            Ok(Received::Refused(DocError::PendingFull { updates: 3, .. })) => {}
            other => panic!("expected PendingFull, got {other:?}"),
        }
        assert_eq!(stored(&store), 3, "the refused one is not stored");
        assert!(matches!(
            replica.receive(first),
            Ok(Received::Accepted { .. })
        ));
        assert_eq!(replica.version().get(ReplicaId::new(1)), 4);
        assert_eq!(stored(&store), 4);
        // Reloading the store brings back exactly what was accepted.
        let back = store.load("d", ReplicaId::new(7)).unwrap().unwrap();
        assert_eq!(back.version().get(ReplicaId::new(1)), 4);
    }

    #[test]
    fn waiting_updates_are_bounded_by_their_decoded_size() {
        let store = MemoryStore::new();
        let limits = Limits {
            max_pending_bytes: 64 << 10,
            ..ClientLimits::default().doc_limits()
        };
        let replica = open(&store, limits);
        let mut author = Doc::new(ReplicaId::new(1));
        let gap = author.transact(|tx| tx.text("t")?.insert(0, "x")).unwrap();
        // Each compresses to well under 1 KiB but decodes to 40 KiB.
        let big: Vec<Vec<u8>> = (0..2)
            .map(|_| {
                author
                    .transact(|tx| tx.text("t")?.insert(0, &"z".repeat(40 << 10)))
                    .unwrap()
            })
            .collect();
        assert!(big[0].len() < 1024, "{} bytes", big[0].len());
        assert!(matches!(
            replica.receive(big[0].clone()),
            Ok(Received::Accepted { .. })
        ));
        match replica.receive(big[1].clone()) {
            Ok(Received::Refused(DocError::PendingFull { updates: 1, .. })) => {}
            other => panic!("expected PendingFull at decoded size, got {other:?}"),
        }
        // Once the gap is filled the first drains and frees its share.
        assert!(matches!(
            replica.receive(gap),
            Ok(Received::Accepted { .. })
        ));
        assert!(matches!(
            replica.receive(big[1].clone()),
            Ok(Received::Accepted { .. })
        ));
        assert_eq!(replica.version().get(ReplicaId::new(1)), 3);
    }

    #[test]
    fn forged_inflating_and_malformed_updates_are_refused_and_never_stored() {
        let store = MemoryStore::new();
        let replica = open(&store, ClientLimits::default().doc_limits());
        let me = replica.replica_id();
        // Someone else writing under this session's replica id.
        let mut forger = Doc::new(me);
        let forged = forger.transact(|tx| tx.counter("n")?.increment(5)).unwrap();
        match replica.receive(forged) {
            Ok(Received::Refused(DocError::OwnReplica { .. })) => {}
            other => panic!("expected OwnReplica, got {other:?}"),
        }
        // 17 MiB of one character: a few KB on the wire.
        let mut inflater = Doc::new(ReplicaId::new(2));
        let inflating = inflater
            .transact(|tx| tx.text("t")?.insert(0, &"a".repeat(17 << 20)))
            .unwrap();
        assert!(inflating.len() < 64 << 10);
        match replica.receive(inflating) {
            Ok(Received::Refused(DocError::Decode(_))) => {}
            other => panic!("expected a decoded-size refusal, got {other:?}"),
        }
        assert!(matches!(
            replica.receive(b"not an update".to_vec()),
            Ok(Received::Refused(_))
        ));
        assert_eq!(stored(&store), 0);
        assert!(replica.version().is_empty());
        // The session's own edits are unaffected.
        let own = Replica {
            shared: Arc::new(replica),
        };
        own.transact(|tx| tx.counter("n")?.increment(1)).unwrap();
        assert_eq!(own.version().get(me), 1);
        assert_eq!(stored(&store), 1);
    }
}
