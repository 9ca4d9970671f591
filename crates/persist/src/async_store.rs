//! [`AsyncStore`]: the [`Store`] API for tokio code.
//!
//! Appends go through the store's commit seam ([`Store::submit_updates`]):
//! they are queued on the writer and the returned [`Commit`] future is
//! awaited, so no thread is parked while an fsync runs and concurrent
//! appends share commits. Reads, loads and compactions (CPU and read I/O)
//! run on tokio's blocking pool (`spawn_blocking`).

use crate::commit::Commit;
use crate::load::StoredDoc;
use crate::store::{Appended, CompactionReport, DocStats, Store};
use crate::{Error, Result};
use std::sync::Arc;
use weft_core::{Doc, ReplicaId, Update};

/// An async handle on a [`Store`]; cheap to clone.
///
/// ```
/// use weft_core::{Doc, ReplicaId, Update};
/// use weft_persist::{AsyncStore, MemoryStore};
/// let rt = tokio::runtime::Builder::new_multi_thread().build().unwrap();
/// rt.block_on(async {
///     let store = AsyncStore::new(MemoryStore::new());
///     let mut doc = Doc::new(ReplicaId::random());
///     let u = doc.transact(|tx| tx.counter("n")?.increment(2)).unwrap();
///     store.append("d", u).await.unwrap();
///     let back = store.load("d", ReplicaId::random()).await.unwrap().unwrap();
///     assert_eq!(back.counter("n").unwrap(), 2);
/// });
/// ```
#[derive(Debug)]
pub struct AsyncStore<S> {
    store: Arc<S>,
}

impl<S> Clone for AsyncStore<S> {
    fn clone(&self) -> Self {
        AsyncStore {
            store: self.store.clone(),
        }
    }
}

async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

impl<S: Store + 'static> AsyncStore<S> {
    /// Wraps `store`.
    pub fn new(store: S) -> Self {
        AsyncStore {
            store: Arc::new(store),
        }
    }

    /// The wrapped store, for blocking calls (from blocking contexts only).
    pub fn blocking_store(&self) -> &S {
        &self.store
    }

    /// [`Store::append`]: resolves once the update is durable. The bytes
    /// are checked on the blocking pool; the wait for the commit parks no
    /// thread. Prefer [`AsyncStore::append_update`] for an update already
    /// decoded.
    pub async fn append(&self, doc_id: impl Into<String>, update: Vec<u8>) -> Result<Appended> {
        let (s, id) = (self.store.clone(), doc_id.into());
        let commit: Commit = blocking(move || Ok(s.submit_many(&id, &[&update]))).await?;
        commit.await.pop().unwrap_or(Err(Error::Closed))
    }

    /// Appends an update core already decoded and checked: queued on the
    /// store's writer from this task, resolved once durable.
    ///
    /// ```
    /// use weft_core::doc::Limits;
    /// use weft_core::{Doc, ReplicaId, Update};
    /// use weft_persist::{AsyncStore, Options, SqliteStore};
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = SqliteStore::open(dir.path().join("w.db"), Options::default()).unwrap();
    /// let store = AsyncStore::new(store);
    /// let mut doc = Doc::new(ReplicaId::random());
    /// let bytes = doc.transact(|tx| tx.counter("n")?.increment(1)).unwrap();
    /// let update = Update::decode(bytes, &Limits::default()).unwrap();
    /// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let appended = rt.block_on(store.append_update("d", &update)).unwrap();
    /// assert_eq!(appended.seq, 1);
    /// ```
    pub async fn append_update(&self, doc_id: &str, update: &Update) -> Result<Appended> {
        let commit = self.store.submit_updates(doc_id, &[update]);
        commit.await.pop().unwrap_or(Err(Error::Closed))
    }

    /// [`Store::read`].
    pub async fn read(&self, doc_id: impl Into<String>) -> Result<Option<StoredDoc>> {
        let (s, id) = (self.store.clone(), doc_id.into());
        blocking(move || s.read(&id)).await
    }

    /// [`Store::load`].
    pub async fn load(&self, doc_id: impl Into<String>, replica: ReplicaId) -> Result<Option<Doc>> {
        let (s, id) = (self.store.clone(), doc_id.into());
        blocking(move || s.load(&id, replica)).await
    }

    /// [`Store::compact`].
    pub async fn compact(&self, doc_id: impl Into<String>) -> Result<Option<CompactionReport>> {
        let (s, id) = (self.store.clone(), doc_id.into());
        blocking(move || s.compact(&id)).await
    }

    /// [`Store::list`].
    pub async fn list(&self) -> Result<Vec<String>> {
        let s = self.store.clone();
        blocking(move || s.list()).await
    }

    /// [`Store::delete`].
    pub async fn delete(&self, doc_id: impl Into<String>) -> Result<bool> {
        let (s, id) = (self.store.clone(), doc_id.into());
        blocking(move || s.delete(&id)).await
    }

    /// [`Store::stats`].
    pub async fn stats(&self, doc_id: impl Into<String>) -> Result<Option<DocStats>> {
        let (s, id) = (self.store.clone(), doc_id.into());
        blocking(move || s.stats(&id)).await
    }
}
