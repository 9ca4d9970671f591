//! # weft-relay
//!
//! The relay server: the always-on peer every device syncs through. It
//! speaks the protocol of `weft-protocol` (`docs/protocol.md` §7) over
//! WebSockets, stores every document durably through `weft-persist`
//! (SQLite by default), acknowledges an update only once it is durable,
//! fans updates out to every subscriber, and keeps presence.
//!
//! - one task per open document ([`document`](crate) module docs) applies,
//!   stores (batched, one commit) and fans out; idle documents unload;
//! - one task per connection reads frames and writes a bounded queue; a
//!   slow reader is skipped and later caught up with one diff, or
//!   disconnected with `SlowConsumer` — it never grows the server's memory
//!   without bound;
//! - authentication with HS256 JWTs ([`auth`]), or none
//!   ([`AuthConfig::Insecure`], `--insecure-no-auth`);
//! - limits on frame size, documents per connection, connections (total
//!   and per IP) and update rate ([`ServerLimits`]);
//! - `/healthz`, `/metrics` (Prometheus), `/v1/docs/{doc}/snapshot`.
//!
//! Start a relay on an ephemeral port with an in-memory store, and stop it:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), weft_relay::RelayError> {
//! use weft_relay::{Relay, RelayConfig};
//!
//! let relay = Relay::start(RelayConfig::insecure_local()).await?;
//! println!("ws://{}/ws", relay.local_addr());
//! relay.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod admission;
pub mod auth;
mod config;
mod connection;
mod document;
mod error;
mod http;
mod hub;
pub mod metrics;
mod outbound;
mod state;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};
use weft_persist::{MemoryStore, Options, SqliteStore, Store};

pub use config::{AuthConfig, RelayConfig, ServerLimits};
pub use error::RelayError;

use crate::admission::Admission;
use crate::auth::Authenticator;
use crate::hub::Hub;
use crate::state::RelayState;

/// File name of the SQLite store inside `--data`.
pub const STORE_FILE: &str = "weft.sqlite3";

/// A running relay. Dropping it without [`Relay::shutdown`] leaves the
/// server running in the background of the runtime.
#[derive(Debug)]
pub struct Relay {
    addr: SocketAddr,
    state: Arc<RelayState>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
    connections: TaskTracker,
    grace: std::time::Duration,
}

impl Relay {
    /// Opens the store, binds `config.listen` and starts serving.
    pub async fn start(config: RelayConfig) -> Result<Relay, RelayError> {
        let prometheus = metrics::install()?;
        let store: Arc<dyn Store> = match &config.data {
            Some(dir) => Arc::new(open_store(dir).await?),
            None => Arc::new(MemoryStore::new()),
        };
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| RelayError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| RelayError::Listen {
            addr: config.listen,
            source,
        })?;
        let state = Arc::new(RelayState {
            store,
            hub: Hub::new(),
            limits: config.limits.clone(),
            auth: Authenticator::new(&config.auth),
            meters: metrics::Meters::new(),
            server_name: config.server_name.clone(),
        });
        let (stop, stopped) = watch::channel(false);
        let connections = TaskTracker::new();
        let app = http::router(http::AppState {
            relay: state.clone(),
            admission: Arc::new(Admission::default()),
            prometheus,
            shutdown: stopped.clone(),
            connections: connections.clone(),
        });
        let mut until = stopped.clone();
        let server = tokio::spawn(async move {
            // Frames are small and latency-bound: no Nagle delay.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            let serve = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move {
                let _ = until.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                warn!(error = %e, "server stopped with an error");
            }
        });
        info!(%addr, auth = state.auth.enabled(), "weft-relay listening");
        Ok(Relay {
            addr,
            state,
            stop,
            server,
            connections,
            grace: config.shutdown_grace,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many documents are loaded in memory right now.
    pub fn documents_loaded(&self) -> usize {
        self.state.hub.len()
    }

    /// Stops gracefully: stops accepting, closes every connection with
    /// `ShuttingDown` (after what was queued for it), lets every document
    /// finish storing what it received, and closes the store.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        // axum's graceful shutdown waits for HTTP connections; upgraded
        // WebSockets watch the same signal and close themselves.
        if tokio::time::timeout(self.grace, self.server).await.is_err() {
            warn!("HTTP connections did not close within the grace period");
        }
        self.connections.close();
        if tokio::time::timeout(self.grace, self.connections.wait())
            .await
            .is_err()
        {
            warn!("WebSocket connections did not close within the grace period");
        }
        if tokio::time::timeout(self.grace, self.state.hub.close())
            .await
            .is_err()
        {
            warn!("documents did not finish within the grace period");
        }
        info!("weft-relay stopped");
    }
}

async fn open_store(dir: &Path) -> Result<SqliteStore, RelayError> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir).map_err(|source| RelayError::DataDir {
            path: dir.clone(),
            source,
        })?;
        SqliteStore::open(dir.join(STORE_FILE), Options::default()).map_err(RelayError::from)
    })
    .await
    .map_err(|e| RelayError::Config(format!("store open task failed: {e}")))?
}
