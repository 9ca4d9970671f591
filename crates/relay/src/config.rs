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
    /// Open WebSocket connections in total; beyond it a new client gets
    /// `ServerBusy` (8).
    pub max_connections: usize,
    /// TCP connections from one IP address, counted when the socket is
    /// accepted (half-open sockets and plain HTTP requests included);
    /// beyond it a new socket is closed at once, before any byte is read.
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
    /// TCP connections accepted but not yet upgraded to a WebSocket (plain
    /// HTTP requests and half-sent upgrades included), all addresses
    /// together. Beyond it a new socket is closed at once, before any
    /// byte is read. `max_connections_per_ip` is counted at accept time
    /// too, over every TCP connection from the address.
    pub max_pending_connections: usize,
    /// From accept until the request is upgraded to a WebSocket. A socket
    /// that has not been upgraded by then (plain TCP, a half-sent request,
    /// a finished HTTP exchange kept alive) is closed; plain HTTP requests
    /// (`/healthz`, `/metrics`, snapshots) must be answered within it.
    pub upgrade_timeout: Duration,
    /// From the upgrade until `Hello` is received; then `HandshakeTimeout`
    /// (13).
    pub hello_timeout: Duration,
    /// A WebSocket message (or control frame) whose first bytes arrived
    /// must be complete within this long; then `HandshakeTimeout` (13).
    pub message_timeout: Duration,
    /// Largest message accepted before `Hello` (a `Hello` with the largest
    /// token fits in 9 KiB); beyond it `FrameTooLarge` (2), checked on the
    /// WebSocket frame header before the payload is read.
    pub max_hello_bytes: u32,
    /// Sustained `Presence` frames per second per connection (token
    /// bucket). Beyond it presence is coalesced: only the latest state per
    /// document is kept and sent when the bucket allows.
    pub presence_per_sec: u32,
    /// Burst size of the presence bucket.
    pub presence_burst: u32,
    /// Sustained `Subscribe` frames per second per connection (token
    /// bucket); beyond it `SubscribeRateLimited` (104) for that document.
    pub subscribes_per_sec: u32,
    /// Burst size of the subscribe bucket.
    pub subscribe_burst: u32,
    /// Clock skew allowed for a token's `nbf` (not before) claim. `exp` has
    /// no leeway.
    pub token_clock_skew: Duration,
    /// A token whose `exp` lies further in the future than this is refused
    /// with `Unauthorized` (6): a leaked token must not be valid forever.
    pub max_token_lifetime: Duration,
    /// Largest size one update may inflate to once decoded (its encoding
    /// plus what its compressed sections expand to); beyond it
    /// `UpdateTooLarge` (252). A 65 KB update can otherwise expand ~1000×.
    pub max_update_decoded_bytes: usize,
    /// Most replicas whose transactions one client update may carry (a
    /// client's own edit carries one); beyond it `UpdateRejected` (250).
    pub max_update_authors: usize,
    /// Largest decoded size of one document (an upper bound: its snapshot
    /// plus every update applied since it was loaded); an update that would
    /// pass it is refused with `DocTooLarge` (255).
    pub max_doc_bytes: u64,
    /// Documents loaded in memory at once, relay-wide. At the cap, the least
    /// recently used document without subscribers is unloaded; if every
    /// loaded document has subscribers, `Subscribe` gets `DocUnavailable`
    /// (103).
    pub max_loaded_docs: usize,
    /// Updates one sender may have waiting for missing dependencies in one
    /// document (not acknowledged while they wait); beyond it
    /// `MissingDependencies` (202), which the sender retries.
    pub max_waiting_updates: usize,
    /// Decoded bytes of those waiting updates.
    pub max_waiting_bytes: usize,
    /// Work on more than this many (decoded) bytes — decoding an update,
    /// a diff, applying, a snapshot — runs on the blocking pool instead of
    /// an async worker.
    pub heavy_work_bytes: usize,
    /// Heavy jobs running at once, relay-wide (the rest wait their turn).
    pub max_heavy_jobs: usize,
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
            max_pending_connections: 4096,
            upgrade_timeout: Duration::from_secs(10),
            hello_timeout: Duration::from_secs(10),
            message_timeout: Duration::from_secs(60),
            max_hello_bytes: 16 * 1024,
            presence_per_sec: 20,
            presence_burst: 40,
            subscribes_per_sec: 10,
            subscribe_burst: 100,
            token_clock_skew: Duration::from_secs(30),
            max_token_lifetime: Duration::from_secs(30 * 24 * 3600),
            max_update_decoded_bytes: 32 << 20,
            max_update_authors: 64,
            max_doc_bytes: 256 << 20,
            max_loaded_docs: 10_000,
            max_waiting_updates: 256,
            max_waiting_bytes: 8 << 20,
            heavy_work_bytes: 64 << 10,
            max_heavy_jobs: 4,
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
    /// Backlog of the listening socket (connections the kernel completes
    /// before the relay accepts them).
    pub listen_backlog: u32,
    /// Serve `/metrics` (and `/healthz`) on this separate address instead
    /// of the public one (`None`: `/metrics` is on `listen`).
    pub metrics_listen: Option<SocketAddr>,
    /// Bearer token `/metrics` requires (`None`: no token).
    pub metrics_token: Option<String>,
    /// Cluster mode: documents in a shared Postgres store, updates between
    /// nodes over a Redis bus (`docs/scale-out.md`). Overrides `data`.
    pub cluster: Option<ClusterConfig>,
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
            listen_backlog: 1024,
            metrics_listen: None,
            metrics_token: None,
            cluster: None,
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

/// Cluster settings ([`RelayConfig::cluster`](crate::RelayConfig::cluster)).
///
/// ```
/// use weft_relay::ClusterConfig;
/// let c = ClusterConfig::new("postgres://weft@db/weft", Some("redis://bus:6379".into()));
/// assert_eq!(c.poll, std::time::Duration::from_secs(2));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// The shared store: a PostgreSQL URL.
    pub store_url: String,
    /// The bus: a Redis URL (`None`: no bus; nodes see each other's
    /// updates only through the store poll).
    pub bus_url: Option<String>,
    /// How often a document with subscribers checks the store for updates
    /// it has not seen (a lost bus message is delivered within about this).
    pub poll: Duration,
}

impl ClusterConfig {
    /// Cluster mode on `store_url` with bus `bus_url`, polling every 2 s.
    pub fn new(store_url: impl Into<String>, bus_url: Option<String>) -> ClusterConfig {
        ClusterConfig {
            store_url: store_url.into(),
            bus_url,
            poll: Duration::from_secs(2),
        }
    }

    /// Replaces the store poll period.
    pub fn with_poll(mut self, poll: Duration) -> ClusterConfig {
        self.poll = poll;
        self
    }
}
