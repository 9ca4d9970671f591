//! [`Client`]: the local store, the open replicas and the optional sync
//! task.

use crate::connection::SyncTask;
use crate::link::{Command, Link};
use crate::replica::ReplicaShared;
use crate::{ClientEvent, ConnectionState, Error, Replica, Result, SyncConfig};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use weft_core::{Doc, ReplicaId};
use weft_persist::{MemoryStore, Options, SqliteStore, Store};
use weft_protocol::DocId;

/// State shared by the [`Client`] and its sync task.
#[derive(Debug)]
pub(crate) struct ClientShared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) replicas: Mutex<BTreeMap<DocId, Arc<ReplicaShared>>>,
    pub(crate) link: Arc<Link>,
    pub(crate) connection: watch::Sender<ConnectionState>,
    pub(crate) events: broadcast::Sender<ClientEvent>,
    pub(crate) token: Mutex<Option<String>>,
}

impl ClientShared {
    pub(crate) fn replicas(&self) -> Vec<Arc<ReplicaShared>> {
        lock(&self.replicas).values().cloned().collect()
    }

    pub(crate) fn emit(&self, event: ClientEvent) {
        let _ = self.events.send(event); // no subscriber is fine
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

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
            }),
            sync: Mutex::new(None),
        }
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
    /// the same replica. Each process edits under a fresh random
    /// [`ReplicaId`], so two processes sharing a store can never reuse an
    /// id. Blocks while the document loads.
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
        let replica = ReplicaId::random();
        let loaded = self
            .shared
            .store
            .load(id.as_str(), replica)?
            .unwrap_or_else(|| Doc::new(replica));
        let shared = Arc::new(ReplicaShared::new(
            id.clone(),
            loaded,
            self.shared.store.clone(),
            self.shared.link.clone(),
        ));
        replicas.insert(id, shared.clone());
        self.shared.link.send(Command::Open(shared.clone()));
        Ok(Replica { shared })
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
        config.validate()?;
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
        let task = SyncTask::new(self.shared.clone(), config, rx, stopped);
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
