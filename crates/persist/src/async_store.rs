//! [`AsyncStore`]: the [`Store`] API for tokio code.
//!
//! Every call runs on tokio's blocking pool (`spawn_blocking`), so SQLite
//! I/O and fsyncs never stall the async worker threads. Concurrent async
//! appends still share commits: each blocking task queues on the
//! [`SqliteStore`](crate::SqliteStore)'s writer thread like any other caller.

use crate::load::StoredDoc;
use crate::store::{Appended, CompactionReport, DocStats, Store};
use crate::{Error, Result};
use std::sync::Arc;
use weft_core::{Doc, ReplicaId};

/// An async handle on a [`Store`]; cheap to clone.
///
/// ```
/// use weft_core::{Doc, ReplicaId};
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

    /// [`Store::append`]: resolves once the update is durable.
    pub async fn append(&self, doc_id: impl Into<String>, update: Vec<u8>) -> Result<Appended> {
        let (s, id) = (self.store.clone(), doc_id.into());
        blocking(move || s.append(&id, &update)).await
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
