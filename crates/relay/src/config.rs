//! Relay configuration: where to listen, where to store, who may connect,
//! and the limits that keep one client from hurting the others.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use weft_protocol::Limits;

/// How clients prove who they are (see [`crate::auth`]).
#[derive(Clone, Debug)]
pub enum AuthConfig {
    /// Every client may read and write every document. For local
    /// development only (`--insecure-no-auth`).
    Insecure,
    /// HS256-signed JWTs ([`crate::auth::Claims`]) verified with this secret.
    Hs256 {
        /// The shared HMAC secret (at least 32 bytes recommended).
        secret: Vec<u8>,
    },
}

/// Server-side policy limits (beyond the wire [`Limits`] sent in `Welcome`).
#[derive(Clone, Debug)]
pub struct ServerLimits {
    /// Wire limits announced to clients and enforced on their frames.
    pub wire: Limits,
    /// Open connections in total; beyond it a new client gets `ServerBusy`.
    pub max_connections: usize,
    /// Open connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Sustained `Update` frames per second per connection (token bucket).
    pub updates_per_sec: u32,
    /// Burst size of that bucket.
    pub update_burst: u32,
    /// Bytes queued to one connection before it counts as a slow reader.
    pub outbound_queue_bytes: usize,
    /// Frames queued to one connection before it counts as a slow reader.
    pub outbound_queue_frames: usize,
    /// How long a slow reader may stay behind before it is disconnected
    /// with `SlowConsumer`.
    pub slow_consumer_grace: Duration,
    /// A document with no subscriber and no traffic for this long is
    /// unloaded from memory (it stays in the store).
    pub doc_idle_unload: Duration,
    /// Updates one document applies and stores in one batch.
    pub doc_batch_updates: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            wire: Limits::default(),
            max_connections: 100_000,
            max_connections_per_ip: 1024,
            updates_per_sec: 1000,
            update_burst: 2000,
            outbound_queue_bytes: 8 << 20,
            outbound_queue_frames: 4096,
            slow_consumer_grace: Duration::from_secs(30),
            doc_idle_unload: Duration::from_secs(60),
            doc_batch_updates: 256,
        }
    }
}

/// Everything [`crate::Relay::start`] needs.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Address to bind (default `127.0.0.1:8787`).
    pub listen: SocketAddr,
    /// Directory holding the SQLite store (`weft.sqlite3`); `None` keeps
    /// documents in memory only (tests).
    pub data: Option<PathBuf>,
    /// Authentication.
    pub auth: AuthConfig,
    /// Limits.
    pub limits: ServerLimits,
    /// Name sent in `Welcome`.
    pub server_name: String,
    /// How long shutdown waits for connections and documents to finish.
    pub shutdown_grace: Duration,
}

impl RelayConfig {
    /// `127.0.0.1` on an ephemeral port, in-memory store, no
    /// authentication: for tests and examples.
    pub fn insecure_local() -> RelayConfig {
        RelayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data: None,
            auth: AuthConfig::Insecure,
            limits: ServerLimits::default(),
            server_name: format!("weft-relay/{}", env!("CARGO_PKG_VERSION")),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            ..RelayConfig::insecure_local()
        }
    }
}
