//! What the connection tasks and HTTP handlers of one relay share: the
//! store, both kinds of room, limits, authentication and meters. Document
//! and room tasks get narrower environments (`DocEnv`, `RoomEnv`).

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use weft_persist::Store;

use crate::admission::Admission;
use crate::auth::Authenticator;
use crate::cluster::Cluster;
use crate::config::ServerLimits;
use crate::heavy::Heavy;
use crate::hub::Hub;
use crate::metrics::Meters;
use crate::yjs::rooms::Rooms;

/// Shared relay state (behind an `Arc`).
#[derive(Debug)]
pub(crate) struct RelayState {
    pub(crate) store: Arc<dyn Store>,
    /// The weft documents.
    pub(crate) hub: Hub,
    pub(crate) limits: Arc<ServerLimits>,
    pub(crate) auth: Authenticator,
    pub(crate) meters: Meters,
    pub(crate) server_name: String,
    /// The gate for work too heavy for an async worker.
    pub(crate) heavy: Heavy,
    /// Cluster mode (`None`: a single node on SQLite or memory).
    pub(crate) cluster: Option<Arc<Cluster>>,
    /// The Yjs rooms.
    pub(crate) yjs: Arc<Rooms>,
}

/// The handle every connection task holds.
pub(crate) type Shared = Arc<RelayState>;

/// Everything the HTTP handlers need.
#[derive(Clone, Debug)]
pub(crate) struct AppState {
    pub(crate) relay: Shared,
    pub(crate) admission: Arc<Admission>,
    pub(crate) prometheus: PrometheusHandle,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Every connection task, so shutdown can wait for them.
    pub(crate) connections: TaskTracker,
    /// Bearer token `/metrics` requires.
    pub(crate) metrics_token: Option<Arc<str>>,
}
