//! [`ClientShared`]: the state a [`Client`](crate::Client) and its sync
//! task share (store, open replicas, link, connection state, events). Its
//! own module so that the client and the sync task both depend on it, not
//! on each other.

use crate::link::Link;
use crate::replica::ReplicaShared;
use crate::{ClientEvent, ClientLimits, ConnectionState};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{broadcast, watch};
use weft_core::{RandomUnavailable, ReplicaId};
use weft_persist::Store;
use weft_protocol::DocId;

/// Where editing sessions get their replica ids.
pub(crate) type ReplicaIds = fn() -> std::result::Result<ReplicaId, RandomUnavailable>;

/// State shared by the [`Client`] and its sync task.
#[derive(Debug)]
pub(crate) struct ClientShared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) replicas: Mutex<BTreeMap<DocId, Arc<ReplicaShared>>>,
    pub(crate) link: Arc<Link>,
    pub(crate) connection: watch::Sender<ConnectionState>,
    pub(crate) events: broadcast::Sender<ClientEvent>,
    pub(crate) token: Mutex<Option<String>>,
    /// Limits for documents opened from now on.
    pub(crate) limits: Mutex<ClientLimits>,
    /// [`ReplicaId::try_random`]; replaced in unit tests only.
    pub(crate) replica_ids: ReplicaIds,
}

impl ClientShared {
    pub(crate) fn replicas(&self) -> Vec<Arc<ReplicaShared>> {
        lock(&self.replicas).values().cloned().collect()
    }

    /// The open replica of `id`, if any.
    pub(crate) fn replica(&self, id: &DocId) -> Option<Arc<ReplicaShared>> {
        lock(&self.replicas).get(id).cloned()
    }

    pub(crate) fn emit(&self, event: ClientEvent) {
        let _ = self.events.send(event); // no subscriber is fine
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
