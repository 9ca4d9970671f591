//! What every task of one relay shares: the store, the document registry,
//! limits, authentication and meters.

use std::sync::Arc;

use weft_persist::Store;

use crate::auth::Authenticator;
use crate::config::ServerLimits;
use crate::heavy::Heavy;
use crate::hub::Hub;
use crate::metrics::Meters;

/// Shared relay state (behind an `Arc`).
#[derive(Debug)]
pub(crate) struct RelayState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) hub: Hub,
    pub(crate) limits: ServerLimits,
    pub(crate) auth: Authenticator,
    pub(crate) meters: Meters,
    pub(crate) server_name: String,
    /// The gate for work too heavy for an async worker.
    pub(crate) heavy: Heavy,
    /// Cluster mode (`None`: a single node on SQLite or memory).
    pub(crate) cluster: Option<crate::cluster::Cluster>,
    /// The loaded Yjs rooms (`yjs` module).
    pub(crate) yjs: Arc<crate::yjs::Rooms>,
}

/// The handle every task holds.
pub(crate) type Shared = Arc<RelayState>;
