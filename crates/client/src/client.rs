//! [`Client`]: the local store, the open replicas and the optional sync
//! task.

use crate::connection::SyncTask;
use crate::link::{Command, Link};
use crate::replica::ReplicaShared;
use crate::shared::{lock, ClientShared};
use crate::{ClientEvent, ClientLimits, ConnectionState, Error, Replica, Result, SyncConfig};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use weft_core::{Doc, ReplicaId};
use weft_persist::{MemoryStore, Options, SqliteStore, Store};
use weft_protocol::DocId;

#[derive(Debug)]
struct SyncHandle {
    stop: watch::Sender<bool>,
    join: JoinHandle<()>,
}

/// An offline-first client: documents live in a local [`Store`] and work
/// without any network; [`Client::connect`] adds a background task that
/// syncs every open document with a relay.
///
/// ```
/// use weft_client::Client;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("app.db");
/// {
///     let client = Client::open_sqlite(&path).unwrap();
///     let todo = client.replica("todo").unwrap();
///     todo.transact(|tx| tx.map("items")?.put("milk", &false)).unwrap();
/// } // the app quits
/// let client = Client::open_sqlite(&path).unwrap();
/// let todo = client.replica("todo").unwrap();
/// let milk = todo.read(|d| d.map("items").unwrap().register::<bool>("milk").unwrap());
/// assert_eq!(milk, Some(false));
/// ```
#[derive(Debug)]
pub struct Client {
    shared: Arc<ClientShared>,
    sync: Mutex<Option<SyncHandle>>,
}

impl Client {
    /// A client over `store`.
    ///
    /// ```
    /// use weft_client::Client;
    /// use weft_persist::MemoryStore;
    /// let client = Client::new(MemoryStore::new());
    /// assert!(client.replica("d").is_ok());
    /// ```
    pub fn new(store: impl Store + 'static) -> Client {
        Client::with_store(Arc::new(store))
    }

    /// A client over a shared store handle.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use weft_client::Client;
    /// use weft_persist::{MemoryStore, Store};
    /// let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    /// let client = Client::with_store(store.clone());
    /// client.replica("d").unwrap().transact(|tx| tx.counter("n")?.increment(1)).unwrap();
    /// assert_eq!(store.list().unwrap(), ["d"]);
    /// ```
    pub fn with_store(store: Arc<dyn Store>) -> Client {
        let (events, _) = broadcast::channel(1024);
        Client {
            shared: Arc::new(ClientShared {
                store,
                replicas: Mutex::new(BTreeMap::new()),
                link: Arc::new(Link::default()),
                connection: watch::Sender::new(ConnectionState::Idle),
                events,
                token: Mutex::new(None),
                limits: Mutex::new(ClientLimits::default()),
                replica_ids: ReplicaId::try_random,
            }),
            sync: Mutex::new(None),
        }
    }

    /// Sets the limits on what a relay can make this client hold
    /// ([`ClientLimits`]: per-update size and decoded size, waiting
    /// updates, presence peers). Documents opened afterwards use them;
    /// documents already open keep theirs.
    ///
    /// ```
    /// use weft_client::{Client, ClientLimits};
    /// let client = Client::in_memory().with_limits(ClientLimits::default().with_max_presence_peers(8));
    /// assert_eq!(client.limits().max_presence_peers, 8);
    /// ```
    pub fn with_limits(self, limits: ClientLimits) -> Client {
        self.set_limits(limits);
        self
    }

    /// [`Client::with_limits`] on a shared client: applies to documents
    /// opened from now on.
    ///
    /// ```
    /// use weft_client::{Client, ClientLimits};
    /// let client = Client::in_memory();
    /// let mut limits = client.limits();
    /// limits.doc.max_pending_updates = 256;
    /// client.set_limits(limits);
    /// let doc = client.replica("d").unwrap();
    /// assert_eq!(doc.read(|d| d.limits().max_pending_updates), 256);
    /// ```
    pub fn set_limits(&self, limits: ClientLimits) {
        *lock(&self.shared.limits) = ClientLimits {
            max_presence_peers: limits.max_presence_peers.max(1),
            ..limits
        };
    }

    /// The limits documents are opened with.
    ///
    /// ```
    /// use weft_client::{Client, ClientLimits};
    /// assert_eq!(Client::in_memory().limits(), ClientLimits::default());
    /// ```
    pub fn limits(&self) -> ClientLimits {
        *lock(&self.shared.limits)
    }

    /// A client over a SQLite store at `path` (created if missing).
    ///
    /// ```
    /// use weft_client::Client;
    /// let dir = tempfile::tempdir().unwrap();
    /// let client = Client::open_sqlite(dir.path().join("weft.db")).unwrap();
    /// assert!(client.replica("d").is_ok());
    /// ```
    pub fn open_sqlite(path: impl AsRef<Path>) -> Result<Client> {
        Client::open_sqlite_with(path, Options::default())
    }

    /// [`Client::open_sqlite`] with store options (compaction, encryption).
    ///
    /// ```
    /// use weft_client::Client;
    /// use weft_persist::{EncryptionKey, Options};
    /// let dir = tempfile::tempdir().unwrap();
    /// let options = Options::default().with_encryption(EncryptionKey::from_bytes([7; 32]));
    /// let client = Client::open_sqlite_with(dir.path().join("sealed.db"), options).unwrap();
    /// assert!(client.replica("d").is_ok());
    /// ```
    pub fn open_sqlite_with(path: impl AsRef<Path>, options: Options) -> Result<Client> {
        Ok(Client::new(SqliteStore::open(path, options)?))
    }

    /// A client whose store lives in memory (tests, demos).
    ///
    /// ```
    /// use weft_client::Client;
    /// let client = Client::in_memory();
    /// assert!(client.replica("d").is_ok());
    /// ```
    pub fn in_memory() -> Client {
        Client::new(MemoryStore::new())
    }

    /// The local store.
    ///
    /// ```
    /// use weft_client::Client;
    /// let client = Client::in_memory();
    /// client.replica("d").unwrap().transact(|tx| tx.counter("n")?.increment(1)).unwrap();
    /// assert_eq!(client.store().list().unwrap(), ["d"]);
    /// ```
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// Opens document `doc` (loading it from the store, or empty if new)
    /// and, if connected, subscribes it. Opening an open document returns
    /// the same replica. Each editing session (each open of a document by a
    /// client) edits under a fresh random [`ReplicaId`] from the operating
    /// system's random source, so two processes sharing a store can never
    /// reuse an id; if that source fails, this returns
    /// [`Error::RandomUnavailable`] rather than guess an id. Blocks while
    /// the document loads.
    ///
    /// Loading never fails because of one stored record: records that
    /// verified but do not replay are left out and reported
    /// ([`Replica::skipped_records`],
    /// [`ClientEvent::StoredRecordsSkipped`]); updates stored while
    /// waiting for a dependency come back waiting. The document gets the
    /// client's [`ClientLimits`] for what relays send it.
    ///
    /// ```
    /// use weft_client::Client;
    /// let client = Client::in_memory();
    /// let a = client.replica("notes").unwrap();
    /// let b = client.replica("notes").unwrap();
    /// a.transact(|tx| tx.text("t")?.insert(0, "x")).unwrap();
    /// assert_eq!(b.version(), a.version());
    /// ```
    pub fn replica(&self, doc: &str) -> Result<Replica> {
        let id = DocId::new(doc)?;
        let mut replicas = lock(&self.shared.replicas);
        if let Some(shared) = replicas.get(&id) {
            return Ok(Replica {
                shared: shared.clone(),
            });
        }
        let replica = (self.shared.replica_ids)()?;
        let limits = self.limits();
        let (doc, skipped) = match self.shared.store.load_report(id.as_str(), replica)? {
            Some(report) => (report.doc, report.skipped),
            None => (Doc::new(replica), Vec::new()),
        };
        for record in &skipped {
            tracing::warn!(doc = %id, %record, "stored record skipped: it does not replay");
        }
        let shared = Arc::new(ReplicaShared::new(
            id.clone(),
            doc.with_limits(limits.doc_limits()),
            self.shared.store.clone(),
            self.shared.link.clone(),
            limits.max_presence_peers,
            skipped.clone(),
        ));
        replicas.insert(id.clone(), shared.clone());
        self.shared.link.send(Command::Open(shared.id.clone()));
        if !skipped.is_empty() {
            self.shared
                .emit(ClientEvent::StoredRecordsSkipped { doc: id, skipped });
        }
        Ok(Replica { shared })
    }

    /// Closes document `doc`: unsubscribes it on the relay (which frees its
    /// slot there: a connection holds at most the relay's `max_docs`
    /// documents, 256 by default), stops syncing it and forgets it, so the
    /// next [`Client::replica`] opens it afresh from the store. Every edit
    /// made is already durable in the store; what the relay did not yet
    /// acknowledge is sent when the document is next opened while
    /// connected. Handles still held refuse edits from now on
    /// ([`Error::Closed`]); reads still work. Returns whether it was open.
    ///
    /// ```
    /// use weft_client::{Client, Error};
    /// let client = Client::in_memory();
    /// let doc = client.replica("notes").unwrap();
    /// doc.transact(|tx| tx.text("t")?.insert(0, "kept")).unwrap();
    /// assert!(client.close("notes"));
    /// assert!(!client.close("notes")); // not open any more
    /// assert!(matches!(doc.transact(|tx| tx.counter("n")?.increment(1)), Err(Error::Closed(_))));
    /// let again = client.replica("notes").unwrap(); // from the store
    /// assert_eq!(again.read(|d| d.text("t").unwrap().to_string()), "kept");
    /// ```
    pub fn close(&self, doc: &str) -> bool {
        let Ok(id) = DocId::new(doc) else {
            return false;
        };
        let Some(shared) = lock(&self.shared.replicas).remove(&id) else {
            return false;
        };
        // Marked before the command is queued: no edit of this handle can
        // follow the unsubscribe.
        shared.close();
        self.shared.link.send(Command::Close(id));
        true
    }

    /// The documents open now, by id.
    ///
    /// ```
    /// use weft_client::Client;
    /// let client = Client::in_memory();
    /// client.replica("b").unwrap();
    /// client.replica("a").unwrap();
    /// let open: Vec<String> = client.open_docs().iter().map(|d| d.to_string()).collect();
    /// assert_eq!(open, ["a", "b"]);
    /// ```
    pub fn open_docs(&self) -> Vec<DocId> {
        lock(&self.shared.replicas).keys().cloned().collect()
    }

    /// Ends a reconnect backoff now: if the client is waiting
    /// ([`ConnectionState::BackingOff`]) it tries to connect at once (say
    /// when the app learns the network is back); connected or already
    /// connecting, nothing changes. The backoff itself is kept, so a failed
    /// attempt waits as long as it would have.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use weft_client::{Client, ConnectionState, SyncConfig};
    /// let client = Client::in_memory();
    /// client.reconnect_now(); // not connected: nothing to do
    /// client.connect(SyncConfig::new("ws://127.0.0.1:9/ws")).unwrap();
    /// let mut state = client.connection();
    /// state.wait_for(|s| matches!(s, ConnectionState::BackingOff { .. })).await.unwrap();
    /// let before = match *state.borrow() {
    ///     ConnectionState::BackingOff { attempt, .. } => attempt,
    ///     _ => 0,
    /// };
    /// client.reconnect_now(); // tries again at once, not after the delay
    /// state
    ///     .wait_for(|s| matches!(s, ConnectionState::BackingOff { attempt, .. } if *attempt > before))
    ///     .await
    ///     .unwrap();
    /// client.disconnect().await;
    /// # });
    /// ```
    pub fn reconnect_now(&self) {
        self.shared.link.send(Command::ReconnectNow);
    }

    /// Starts syncing every open (and later opened) document with the relay
    /// in `config`, in a background task on the current tokio runtime.
    /// Replaces an earlier connection (to move to another relay, just
    /// connect again). Returns at once; watch [`Client::connection`] and
    /// each [`Replica::status`].
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use weft_client::{Client, ConnectionState, SyncConfig};
    /// let client = Client::in_memory();
    /// // Nothing listens on port 9: the client keeps retrying with backoff.
    /// client.connect(SyncConfig::new("ws://127.0.0.1:9/ws")).unwrap();
    /// let mut state = client.connection();
    /// state.wait_for(|s| matches!(s, ConnectionState::BackingOff { .. })).await.unwrap();
    /// client.disconnect().await;
    /// assert_eq!(*client.connection().borrow(), ConnectionState::Idle);
    /// # });
    /// ```
    pub fn connect(&self, config: SyncConfig) -> Result<()> {
        let tls = config.tls()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let mut sync = lock(&self.sync);
        if let Some(old) = sync.take() {
            let _ = old.stop.send(true);
            old.join.abort();
        }
        *lock(&self.shared.token) = config.token.clone();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.shared.link.set(Some(tx));
        let (stop, stopped) = watch::channel(false);
        let task = SyncTask::new(self.shared.clone(), config, tls, rx, stopped);
        let join = runtime.spawn(task.run());
        *sync = Some(SyncHandle { stop, join });
        Ok(())
    }

    /// Stops syncing and waits for the sync task to end. Documents stay
    /// open and editable (status [`SyncStatus::Offline`](crate::SyncStatus::Offline)).
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use weft_client::Client;
    /// let client = Client::in_memory();
    /// client.disconnect().await; // not connected: nothing to do
    /// # });
    /// ```
    pub async fn disconnect(&self) {
        let handle = lock(&self.sync).take();
        self.shared.link.set(None);
        if let Some(handle) = handle {
            let _ = handle.stop.send(true);
            let _ = handle.join.await;
        }
        for replica in self.shared.replicas() {
            replica.set_status(crate::SyncStatus::Offline);
            replica.presence.clear();
        }
        self.shared.connection.send_replace(ConnectionState::Idle);
    }

    /// Replaces the token used by the next connection attempt (e.g. after
    /// a [`ClientEvent::ConnectionError`] with `TokenExpired`).
    ///
    /// ```
    /// use weft_client::Client;
    /// Client::in_memory().set_token(Some("new-token".into()));
    /// ```
    pub fn set_token(&self, token: Option<String>) {
        *lock(&self.shared.token) = token;
    }

    /// The connection state, as a watch channel.
    ///
    /// ```
    /// use weft_client::{Client, ConnectionState};
    /// assert_eq!(*Client::in_memory().connection().borrow(), ConnectionState::Idle);
    /// ```
    pub fn connection(&self) -> watch::Receiver<ConnectionState> {
        self.shared.connection.subscribe()
    }

    /// A stream of [`ClientEvent`]s from now on (a lagging receiver loses
    /// the oldest events, never blocks the client).
    ///
    /// ```
    /// use weft_client::Client;
    /// let client = Client::in_memory();
    /// let events = client.events();
    /// assert!(events.is_empty());
    /// ```
    pub fn events(&self) -> broadcast::Receiver<ClientEvent> {
        self.shared.events.subscribe()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.shared.link.set(None);
        if let Some(handle) = lock(&self.sync).take() {
            let _ = handle.stop.send(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_core::RandomUnavailable;

    #[test]
    fn a_failing_random_source_is_an_error_not_a_guessed_id() {
        let mut client = Client::in_memory();
        let shared = Arc::get_mut(&mut client.shared).expect("not shared yet");
        shared.replica_ids = || Err(RandomUnavailable("no entropy".into()));
        match client.replica("d") {
            Err(Error::RandomUnavailable(e)) => assert!(e.to_string().contains("no entropy")),
            other => panic!("expected RandomUnavailable, got {other:?}"),
        }
        assert!(lock(&client.shared.replicas).is_empty(), "nothing opened");
        assert!(client.store().list().unwrap().is_empty());
    }

    #[test]
    fn every_open_takes_a_fresh_replica_id() {
        let client = Client::in_memory();
        let a = client.replica("a").unwrap();
        let b = client.replica("b").unwrap();
        assert_ne!(a.shared.replica_id(), b.shared.replica_id());
        let again = Client::with_store(client.store().clone());
        let a2 = again.replica("a").unwrap();
        assert_ne!(a.shared.replica_id(), a2.shared.replica_id());
    }
}
