//! The `weft-relay` command line: the relay server (and a token minting
//! helper). `src/main.rs` is [`main`]; so is the test relay process of
//! `tests/tests/client_crash.rs`, which cannot name this crate's binary.
//!
//! ```text
//! weft-relay --insecure-no-auth                    # 127.0.0.1:8787, ./weft-data
//! weft-relay --listen 0.0.0.0:8787 --data /var/lib/weft --jwt-secret-file /etc/weft/secret
//! weft-relay token --jwt-secret-file secret --doc 'team-*' --write --ttl 3600
//! ```
//!
//! Every flag also reads an environment variable (`WEFT_LISTEN`,
//! `WEFT_DATA`, …; see `--help`). Logs go to stderr (`RUST_LOG` filters,
//! `--log-format json` for structured logs); the first line on stdout is
//! `weft-relay listening on ADDR`.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::auth::{mint_token, Claims};
use crate::{AuthConfig, ClusterConfig, Relay, RelayConfig, ServerLimits};
use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing::error;

#[derive(Parser, Debug)]
#[command(
    name = "weft-relay",
    version,
    about = "weft relay server: durable WebSocket delta exchange"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print a signed access token (HS256 JWT) for the given documents.
    Token(TokenArgs),
}

#[derive(Args, Debug)]
struct Secret {
    /// HMAC secret for HS256 tokens.
    #[arg(long, env = "WEFT_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// File holding the HMAC secret (trailing newline ignored).
    #[arg(long, env = "WEFT_JWT_SECRET_FILE")]
    jwt_secret_file: Option<PathBuf>,
}

impl Secret {
    fn load(&self) -> Result<Option<Vec<u8>>, String> {
        match (&self.jwt_secret, &self.jwt_secret_file) {
            (Some(_), Some(_)) => Err("give --jwt-secret or --jwt-secret-file, not both".into()),
            (Some(s), None) => Ok(Some(s.as_bytes().to_vec())),
            (None, Some(path)) => read_secret(path).map(Some),
            (None, None) => Ok(None),
        }
        .and_then(|s| match s {
            Some(s) if s.len() < 32 => Err("the JWT secret must be at least 32 bytes".into()),
            other => Ok(other),
        })
    }
}

#[derive(Args, Debug)]
struct TokenArgs {
    #[command(flatten)]
    secret: Secret,
    /// Document id or `prefix*` pattern (repeat for several).
    #[arg(long = "doc", required = true)]
    docs: Vec<String>,
    /// Allow writing (default: read-only).
    #[arg(long)]
    write: bool,
    /// Seconds until the token expires.
    #[arg(long, default_value_t = 3600)]
    ttl: u64,
    /// Subject (who the token is for).
    #[arg(long, default_value = "user")]
    sub: String,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "WEFT_LISTEN", default_value = "127.0.0.1:8787")]
    listen: SocketAddr,
    /// Directory for the SQLite store (relative to the working directory;
    /// `weft-data/` is in the repository's .gitignore).
    #[arg(long, env = "WEFT_DATA", default_value = "weft-data")]
    data: PathBuf,
    /// Cluster mode: the shared store, a PostgreSQL URL
    /// (`postgres://user:pass@host:5432/db`). Replaces `--data`: several
    /// relays on one store serve the same documents (docs/scale-out.md).
    #[arg(long, env = "WEFT_STORE")]
    store: Option<String>,
    /// Cluster mode: the bus between nodes, a Redis URL
    /// (`redis://host:6379`). Without it, nodes see each other's updates
    /// only through the store poll.
    #[arg(long, env = "WEFT_BUS", requires = "store")]
    bus: Option<String>,
    /// Cluster mode: milliseconds between checks of the store for updates
    /// the bus did not deliver (per document with subscribers).
    #[arg(long, env = "WEFT_CLUSTER_POLL_MS", default_value_t = 2000)]
    cluster_poll_ms: u64,
    /// Accept every client without a token (local development only).
    #[arg(long, env = "WEFT_INSECURE_NO_AUTH")]
    insecure_no_auth: bool,
    #[command(flatten)]
    secret: Secret,
    /// Largest frame accepted, bytes.
    #[arg(long, env = "WEFT_MAX_FRAME_BYTES", default_value_t = defaults().wire.max_frame_bytes)]
    max_frame_bytes: u32,
    /// Largest update accepted, bytes.
    #[arg(long, env = "WEFT_MAX_UPDATE_BYTES", default_value_t = defaults().wire.max_update_bytes)]
    max_update_bytes: u32,
    /// Documents one connection may subscribe at once.
    #[arg(long, env = "WEFT_MAX_DOCS_PER_CONNECTION", default_value_t = defaults().wire.max_docs)]
    max_docs_per_connection: u32,
    /// Open connections in total.
    #[arg(long, env = "WEFT_MAX_CONNECTIONS", default_value_t = defaults().max_connections)]
    max_connections: usize,
    /// Open connections per client IP address.
    #[arg(long, env = "WEFT_MAX_CONNECTIONS_PER_IP", default_value_t = defaults().max_connections_per_ip)]
    max_connections_per_ip: usize,
    /// Sustained updates per second per connection.
    #[arg(long, env = "WEFT_UPDATES_PER_SEC", default_value_t = defaults().updates_per_sec)]
    updates_per_sec: u32,
    /// Burst of updates per connection above the sustained rate.
    #[arg(long, env = "WEFT_UPDATE_BURST", default_value_t = defaults().update_burst)]
    update_burst: u32,
    /// Close connections silent for this long, milliseconds.
    #[arg(long, env = "WEFT_IDLE_TIMEOUT_MS", default_value_t = defaults().wire.idle_timeout_ms)]
    idle_timeout_ms: u32,
    /// Bytes queued to one reader before it counts as slow.
    #[arg(long, env = "WEFT_OUTBOUND_QUEUE_BYTES", default_value_t = defaults().outbound_queue_bytes)]
    outbound_queue_bytes: usize,
    /// Seconds a slow reader may stay behind before it is disconnected.
    #[arg(long, env = "WEFT_SLOW_CONSUMER_GRACE_SECS", default_value_t = defaults().slow_consumer_grace.as_secs())]
    slow_consumer_grace_secs: u64,
    /// Seconds a document without subscribers stays loaded.
    #[arg(long, env = "WEFT_DOC_IDLE_UNLOAD_SECS", default_value_t = defaults().doc_idle_unload.as_secs())]
    doc_idle_unload_secs: u64,
    /// Sockets accepted but not yet upgraded to a WebSocket, all addresses
    /// together; more are closed at accept.
    #[arg(long, env = "WEFT_MAX_PENDING_CONNECTIONS", default_value_t = defaults().max_pending_connections)]
    max_pending_connections: usize,
    /// Milliseconds from accept until the WebSocket upgrade; then the
    /// socket is closed (plain HTTP requests must be answered within it).
    #[arg(long, env = "WEFT_UPGRADE_TIMEOUT_MS", default_value_t = millis(defaults().upgrade_timeout))]
    upgrade_timeout_ms: u64,
    /// Milliseconds from the upgrade until `Hello`; then `HandshakeTimeout`.
    #[arg(long, env = "WEFT_HELLO_TIMEOUT_MS", default_value_t = millis(defaults().hello_timeout))]
    hello_timeout_ms: u64,
    /// Milliseconds a started WebSocket message may take to complete; then
    /// `HandshakeTimeout`.
    #[arg(long, env = "WEFT_MESSAGE_TIMEOUT_MS", default_value_t = millis(defaults().message_timeout))]
    message_timeout_ms: u64,
    /// Largest message accepted before `Hello`, bytes.
    #[arg(long, env = "WEFT_MAX_HELLO_BYTES", default_value_t = defaults().max_hello_bytes)]
    max_hello_bytes: u32,
    /// Sustained `Presence` frames per second per connection; more are
    /// coalesced (the latest state per document is sent later).
    #[arg(long, env = "WEFT_PRESENCE_PER_SEC", default_value_t = defaults().presence_per_sec)]
    presence_per_sec: u32,
    /// Burst of `Presence` frames per connection above the sustained rate.
    #[arg(long, env = "WEFT_PRESENCE_BURST", default_value_t = defaults().presence_burst)]
    presence_burst: u32,
    /// Sustained `Subscribe` frames per second per connection; more get
    /// `SubscribeRateLimited`.
    #[arg(long, env = "WEFT_SUBSCRIBES_PER_SEC", default_value_t = defaults().subscribes_per_sec)]
    subscribes_per_sec: u32,
    /// Burst of `Subscribe` frames per connection above the sustained rate.
    #[arg(long, env = "WEFT_SUBSCRIBE_BURST", default_value_t = defaults().subscribe_burst)]
    subscribe_burst: u32,
    /// Seconds of clock skew allowed on a token's `nbf` (not before).
    #[arg(long, env = "WEFT_TOKEN_CLOCK_SKEW_SECS", default_value_t = defaults().token_clock_skew.as_secs())]
    token_clock_skew_secs: u64,
    /// Tokens whose `exp` lies further ahead than this many seconds are
    /// refused (default 30 days).
    #[arg(long, env = "WEFT_MAX_TOKEN_LIFETIME_SECS", default_value_t = defaults().max_token_lifetime.as_secs())]
    max_token_lifetime_secs: u64,
    /// Largest size one update may inflate to once decoded, in bytes; more
    /// gets `UpdateTooLarge`.
    #[arg(long, env = "WEFT_MAX_UPDATE_DECODED_BYTES", default_value_t = defaults().max_update_decoded_bytes)]
    max_update_decoded_bytes: usize,
    /// Most replicas whose transactions one client update may carry.
    #[arg(long, env = "WEFT_MAX_UPDATE_AUTHORS", default_value_t = defaults().max_update_authors)]
    max_update_authors: usize,
    /// Largest decoded size of one document, in bytes; updates past it get
    /// `DocTooLarge`.
    #[arg(long, env = "WEFT_MAX_DOC_BYTES", default_value_t = defaults().max_doc_bytes)]
    max_doc_bytes: u64,
    /// Documents loaded in memory at once; the least recently used idle one
    /// is unloaded to make room.
    #[arg(long, env = "WEFT_MAX_LOADED_DOCS", default_value_t = defaults().max_loaded_docs)]
    max_loaded_docs: usize,
    /// Updates one sender may have waiting for missing dependencies per
    /// document; more get `MissingDependencies` (retried by the client).
    #[arg(long, env = "WEFT_MAX_WAITING_UPDATES", default_value_t = defaults().max_waiting_updates)]
    max_waiting_updates: usize,
    /// Decoded bytes of one sender's waiting updates per document.
    #[arg(long, env = "WEFT_MAX_WAITING_BYTES", default_value_t = defaults().max_waiting_bytes)]
    max_waiting_bytes: usize,
    /// Work on more decoded bytes than this (decode, diff, apply, snapshot)
    /// runs on the blocking pool.
    #[arg(long, env = "WEFT_HEAVY_WORK_BYTES", default_value_t = defaults().heavy_work_bytes)]
    heavy_work_bytes: usize,
    /// Heavy jobs running at once, relay-wide.
    #[arg(long, env = "WEFT_MAX_HEAVY_JOBS", default_value_t = defaults().max_heavy_jobs)]
    max_heavy_jobs: usize,
    /// Listen backlog of the public socket (the kernel also caps it at
    /// net.core.somaxconn).
    #[arg(long, env = "WEFT_LISTEN_BACKLOG", default_value_t = 1024)]
    listen_backlog: u32,
    /// Serve /metrics (and /healthz) on this address instead of the public
    /// one, e.g. 127.0.0.1:9187. Recommended in production.
    #[arg(long, env = "WEFT_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// File holding a token /metrics requires (`Authorization: Bearer
    /// TOKEN`; trailing newline ignored). Without it /metrics is open.
    #[arg(long, env = "WEFT_METRICS_TOKEN_FILE")]
    metrics_token_file: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, env = "WEFT_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
}

/// The library's defaults, shown in `--help`.
fn defaults() -> ServerLimits {
    ServerLimits::default()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Reads a secret file, without its trailing newline.
fn read_secret(path: &PathBuf) -> Result<Vec<u8>, String> {
    let mut bytes =
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        bytes.pop();
    }
    Ok(bytes)
}

impl ServeArgs {
    fn config(&self) -> Result<RelayConfig, String> {
        let auth = match (self.insecure_no_auth, self.secret.load()?) {
            (true, None) => AuthConfig::Insecure,
            (false, Some(secret)) => AuthConfig::Hs256 { secret },
            (true, Some(_)) => return Err("--insecure-no-auth contradicts a JWT secret".into()),
            (false, None) => {
                return Err(
                    "no authentication configured: give --jwt-secret(-file), or --insecure-no-auth for local development"
                        .into(),
                )
            }
        };
        let mut limits = ServerLimits::default();
        limits.wire.max_frame_bytes = self.max_frame_bytes;
        limits.wire.max_update_bytes = self.max_update_bytes;
        limits.wire.max_docs = self.max_docs_per_connection;
        limits.wire.idle_timeout_ms = self.idle_timeout_ms;
        limits.max_connections = self.max_connections;
        limits.max_connections_per_ip = self.max_connections_per_ip;
        limits.updates_per_sec = self.updates_per_sec;
        limits.update_burst = self.update_burst;
        limits.outbound_queue_bytes = self.outbound_queue_bytes;
        limits.slow_consumer_grace = Duration::from_secs(self.slow_consumer_grace_secs);
        limits.doc_idle_unload = Duration::from_secs(self.doc_idle_unload_secs);
        limits.max_pending_connections = self.max_pending_connections;
        limits.upgrade_timeout = Duration::from_millis(self.upgrade_timeout_ms);
        limits.hello_timeout = Duration::from_millis(self.hello_timeout_ms);
        limits.message_timeout = Duration::from_millis(self.message_timeout_ms);
        limits.max_hello_bytes = self.max_hello_bytes;
        limits.presence_per_sec = self.presence_per_sec;
        limits.presence_burst = self.presence_burst;
        limits.subscribes_per_sec = self.subscribes_per_sec;
        limits.subscribe_burst = self.subscribe_burst;
        limits.token_clock_skew = Duration::from_secs(self.token_clock_skew_secs);
        limits.max_token_lifetime = Duration::from_secs(self.max_token_lifetime_secs);
        limits.max_update_decoded_bytes = self.max_update_decoded_bytes;
        limits.max_update_authors = self.max_update_authors;
        limits.max_doc_bytes = self.max_doc_bytes;
        limits.max_loaded_docs = self.max_loaded_docs.max(1);
        limits.max_waiting_updates = self.max_waiting_updates;
        limits.max_waiting_bytes = self.max_waiting_bytes;
        limits.heavy_work_bytes = self.heavy_work_bytes;
        limits.max_heavy_jobs = self.max_heavy_jobs.max(1);
        let metrics_token = match &self.metrics_token_file {
            Some(path) => {
                let token = String::from_utf8(read_secret(path)?)
                    .map_err(|_| "the metrics token must be UTF-8".to_owned())?;
                if token.is_empty() {
                    return Err(format!("{} is empty", path.display()));
                }
                Some(token)
            }
            None => None,
        };
        let cluster = match &self.store {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Some(
                    ClusterConfig::new(url.clone(), self.bus.clone())
                        .with_poll(Duration::from_millis(self.cluster_poll_ms.max(50))),
                )
            }
            Some(_) => {
                return Err("--store must be a postgres:// URL (SQLite is --data)".into());
            }
            None => None,
        };
        Ok(RelayConfig {
            listen: self.listen,
            data: if cluster.is_some() {
                None
            } else {
                Some(self.data.clone())
            },
            cluster,
            auth,
            limits,
            listen_backlog: self.listen_backlog,
            metrics_listen: self.metrics_listen,
            metrics_token,
            ..RelayConfig::default()
        })
    }
}

/// Parses the process's arguments and runs the relay (or the `token`
/// subcommand) until it is shut down; the exit code to return.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     weft_relay::cli::main()
/// }
/// ```
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.serve.log_format);
    match cli.command {
        Some(Command::Token(args)) => token(&args),
        None => serve(&cli.serve),
    }
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal: never escape codes in a
        // file, a pipe or a service journal.
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn token(args: &TokenArgs) -> ExitCode {
    let secret = match args.secret.load() {
        Ok(Some(s)) => s,
        Ok(None) => {
            eprintln!("weft-relay token: give --jwt-secret or --jwt-secret-file");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("weft-relay token: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.ttl > defaults().max_token_lifetime.as_secs() {
        eprintln!(
            "weft-relay token: note: relays refuse tokens valid for more than --max-token-lifetime-secs (default {})",
            defaults().max_token_lifetime.as_secs()
        );
    }
    let claims = Claims::new(&args.sub, args.docs.clone(), args.write, args.ttl);
    match mint_token(&secret, &claims) {
        Ok(t) => {
            println!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("weft-relay token: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: &ServeArgs) -> ExitCode {
    let config = match args.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("weft-relay: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("weft-relay: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let relay = match Relay::start(config).await {
            Ok(r) => r,
            Err(e) => {
                error!(error = %e, "cannot start");
                eprintln!("weft-relay: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "weft-relay listening on {}", relay.local_addr());
        let _ = stdout.flush();
        wait_for_signal().await;
        relay.shutdown().await;
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
