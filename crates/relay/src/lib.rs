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
//! - limits on frame size, documents per connection, connections (total,
//!   per IP and not yet upgraded, the last two at accept), deadlines for
//!   the upgrade, `Hello` and every started message, token expiry by a
//!   timer, and the rates of updates, subscriptions and presence
//!   ([`ServerLimits`]);
//! - `/healthz`, `/metrics` (Prometheus; optionally behind a token or on a
//!   separate address), `/v1/docs/{doc}/snapshot`.
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
pub mod cli;
mod cluster;
mod config;
mod connection;
mod data_lock;
mod doc_cmd;
mod doc_kind;
mod document;
mod error;
mod heavy;
mod http;
mod hub;
mod listener;
pub mod metrics;
mod outbound;
mod owners;
mod registry;
mod state;
mod weft_http;
mod ws;
mod yjs;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};
use weft_persist::{MemoryStore, Options, PostgresStore, SqliteStore, Store};

use crate::listener::{GuardedListener, Peer};

pub use config::{AuthConfig, ClusterConfig, RelayConfig, ServerLimits};
pub use error::RelayError;

use crate::admission::Admission;
use crate::auth::Authenticator;
use crate::document::DocEnv;
use crate::hub::Hub;
use crate::state::RelayState;
use crate::yjs::room::RoomEnv;

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
    metrics_server: Option<(SocketAddr, JoinHandle<()>)>,
    connections: TaskTracker,
    grace: std::time::Duration,
    /// The SQLite store, to checkpoint its WAL at shutdown.
    sqlite: Option<SqliteStore>,
    /// The exclusive lock on `--data`, held until the relay is dropped.
    _data_lock: Option<data_lock::DataLock>,
}

impl Relay {
    /// Opens the store, binds `config.listen` and starts serving.
    pub async fn start(config: RelayConfig) -> Result<Relay, RelayError> {
        let prometheus = metrics::install()?;
        let (stop, stopped) = watch::channel(false);
        let mut bus_events = None;
        let mut cluster = None;
        let (store, sqlite, data_lock): (Arc<dyn Store>, _, _) = match (
            &config.cluster,
            &config.data,
        ) {
            (Some(c), _) => {
                let url = c.store_url.clone();
                let pg = tokio::task::spawn_blocking(move || {
                    PostgresStore::open(&url, Options::default())
                })
                .await
                .map_err(|e| RelayError::Config(format!("store open task failed: {e}")))??;
                let (started, events) =
                    cluster::Cluster::start(c, stopped.clone()).map_err(RelayError::Config)?;
                info!(node = %started.node, bus = c.bus_url.is_some(), "cluster mode: shared Postgres store");
                bus_events = Some(events);
                cluster = Some(started);
                (Arc::new(pg) as Arc<dyn Store>, None, None)
            }
            (None, Some(dir)) => {
                let (sqlite, lock) = open_store(dir).await?;
                (Arc::new(sqlite.clone()), Some(sqlite), Some(lock))
            }
            (None, None) => (Arc::new(MemoryStore::new()), None, None),
        };
        let listen_error = |addr| move |source| RelayError::Listen { addr, source };
        let listener = listener::bind(config.listen, config.listen_backlog)
            .map_err(listen_error(config.listen))?;
        let addr = listener.local_addr().map_err(listen_error(config.listen))?;
        let metrics_listener = match config.metrics_listen {
            Some(at) => Some(TcpListener::bind(at).await.map_err(listen_error(at))?),
            None => None,
        };
        let limits = Arc::new(config.limits.clone());
        let heavy = heavy::Heavy::new(limits.max_heavy_jobs, limits.heavy_work_bytes);
        let meters = metrics::Meters::new();
        let cluster = cluster.map(Arc::new);
        // Each kind of room is told which ids the other has loaded.
        let docs = Hub::registry(limits.max_loaded_docs, meters.docs_loaded.clone());
        let rooms = yjs::rooms::Rooms::registry(limits.max_loaded_docs);
        let hub = Hub::new(
            docs.clone(),
            DocEnv {
                store: store.clone(),
                limits: limits.clone(),
                meters: meters.clone(),
                heavy: heavy.clone(),
                cluster: cluster.clone(),
                yjs: Arc::new(rooms.clone()),
            },
        );
        let yjs = Arc::new(yjs::rooms::Rooms::new(
            rooms,
            RoomEnv {
                store: store.clone(),
                limits: limits.clone(),
                meters: meters.clone(),
                heavy: heavy.clone(),
            },
            Arc::new(docs.clone()),
        ));
        let state = Arc::new(RelayState {
            store,
            hub,
            limits: limits.clone(),
            auth: Authenticator::new(&config.auth)
                .with_policy(limits.token_clock_skew, limits.max_token_lifetime),
            meters,
            server_name: config.server_name.clone(),
            heavy,
            cluster,
            yjs,
        });
        if let Some(events) = bus_events {
            tokio::spawn(cluster::dispatch(docs, events, stopped.clone()));
        }
        let connections = TaskTracker::new();
        let admission = Arc::new(Admission::new(
            limits.max_connections_per_ip,
            limits.max_pending_connections,
        ));
        let app = state::AppState {
            relay: state.clone(),
            admission: admission.clone(),
            prometheus,
            shutdown: stopped.clone(),
            connections: connections.clone(),
            metrics_token: config.metrics_token.as_deref().map(Arc::from),
        };
        let metrics_server = match metrics_listener {
            Some(listener) => {
                let at = listener.local_addr().map_err(listen_error(config.listen))?;
                let router = http::metrics_router(app.clone());
                let mut until = stopped.clone();
                let server = tokio::spawn(async move {
                    let serve = axum::serve(listener, router).with_graceful_shutdown(async move {
                        let _ = until.wait_for(|s| *s).await;
                    });
                    if let Err(e) = serve.await {
                        warn!(error = %e, "metrics server stopped with an error");
                    }
                });
                info!(addr = %at, "metrics listening");
                Some((at, server))
            }
            None => None,
        };
        let router = http::router(app, metrics_server.is_none());
        let listener = GuardedListener::new(listener, admission, limits.upgrade_timeout);
        let mut until = stopped.clone();
        let server = tokio::spawn(async move {
            let serve = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<Peer>(),
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
            metrics_server,
            connections,
            grace: config.shutdown_grace,
            sqlite,
            _data_lock: data_lock,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound metrics address, when `/metrics` has its own
    /// ([`RelayConfig::metrics_listen`]).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_server.as_ref().map(|(addr, _)| *addr)
    }

    /// How many documents are loaded in memory right now.
    pub fn documents_loaded(&self) -> usize {
        self.state.hub.len()
    }

    /// Stops gracefully: stops accepting, closes every connection with
    /// `ShuttingDown` (after what was queued for it), lets every document
    /// finish storing what it received, and checkpoints the store's WAL
    /// into the database file.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        // axum's graceful shutdown waits for HTTP connections; upgraded
        // WebSockets watch the same signal and close themselves.
        if tokio::time::timeout(self.grace, self.server).await.is_err() {
            warn!("HTTP connections did not close within the grace period");
        }
        if let Some((_, server)) = self.metrics_server {
            if tokio::time::timeout(self.grace, server).await.is_err() {
                warn!("metrics connections did not close within the grace period");
            }
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
        if let Some(sqlite) = self.sqlite {
            // Everything stored is in the WAL; fold it into the database
            // file so the next start (or a backup of the file) need not
            // replay it. Other handles may still be open: this is a
            // checkpoint, not a close.
            match tokio::task::spawn_blocking(move || sqlite.checkpoint()).await {
                Ok(Ok(true)) => info!("store checkpointed"),
                Ok(Ok(false)) => warn!("WAL checkpoint incomplete: the store was busy"),
                Ok(Err(e)) => warn!(error = %e, "WAL checkpoint failed"),
                Err(e) => warn!(error = %e, "WAL checkpoint task failed"),
            }
        }
        info!("weft-relay stopped");
    }
}

/// Locks `dir` for this process (one relay per directory) and opens the
/// SQLite store in it.
async fn open_store(dir: &Path) -> Result<(SqliteStore, data_lock::DataLock), RelayError> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir).map_err(|source| RelayError::DataDir {
            path: dir.clone(),
            source,
        })?;
        let lock = data_lock::DataLock::acquire(&dir)?;
        let store = SqliteStore::open(dir.join(STORE_FILE), Options::default())?;
        Ok((store, lock))
    })
    .await
    .map_err(|e| RelayError::Config(format!("store open task failed: {e}")))?
}
