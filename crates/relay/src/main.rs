//! `weft-relay`: the relay server binary (and a token minting helper).
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

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing::error;
use weft_relay::auth::{mint_token, Claims};
use weft_relay::{AuthConfig, Relay, RelayConfig, ServerLimits};

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
            (None, Some(path)) => {
                let mut bytes = std::fs::read(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    bytes.pop();
                }
                Ok(Some(bytes))
            }
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
    /// Directory for the SQLite store.
    #[arg(long, env = "WEFT_DATA", default_value = "weft-data")]
    data: PathBuf,
    /// Accept every client without a token (local development only).
    #[arg(long, env = "WEFT_INSECURE_NO_AUTH")]
    insecure_no_auth: bool,
    #[command(flatten)]
    secret: Secret,
    /// Largest frame accepted, bytes.
    #[arg(long, env = "WEFT_MAX_FRAME_BYTES")]
    max_frame_bytes: Option<u32>,
    /// Largest update accepted, bytes.
    #[arg(long, env = "WEFT_MAX_UPDATE_BYTES")]
    max_update_bytes: Option<u32>,
    /// Documents one connection may subscribe at once.
    #[arg(long, env = "WEFT_MAX_DOCS_PER_CONNECTION")]
    max_docs_per_connection: Option<u32>,
    /// Open connections in total.
    #[arg(long, env = "WEFT_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Open connections per client IP address.
    #[arg(long, env = "WEFT_MAX_CONNECTIONS_PER_IP")]
    max_connections_per_ip: Option<usize>,
    /// Sustained updates per second per connection.
    #[arg(long, env = "WEFT_UPDATES_PER_SEC")]
    updates_per_sec: Option<u32>,
    /// Burst of updates per connection above the sustained rate.
    #[arg(long, env = "WEFT_UPDATE_BURST")]
    update_burst: Option<u32>,
    /// Close connections silent for this long, milliseconds.
    #[arg(long, env = "WEFT_IDLE_TIMEOUT_MS")]
    idle_timeout_ms: Option<u32>,
    /// Bytes queued to one reader before it counts as slow.
    #[arg(long, env = "WEFT_OUTBOUND_QUEUE_BYTES")]
    outbound_queue_bytes: Option<usize>,
    /// Seconds a slow reader may stay behind before it is disconnected.
    #[arg(long, env = "WEFT_SLOW_CONSUMER_GRACE_SECS")]
    slow_consumer_grace_secs: Option<u64>,
    /// Seconds a document without subscribers stays loaded.
    #[arg(long, env = "WEFT_DOC_IDLE_UNLOAD_SECS")]
    doc_idle_unload_secs: Option<u64>,
    /// Log format on stderr.
    #[arg(long, env = "WEFT_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
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
        let wire = &mut limits.wire;
        if let Some(v) = self.max_frame_bytes {
            wire.max_frame_bytes = v;
        }
        if let Some(v) = self.max_update_bytes {
            wire.max_update_bytes = v;
        }
        if let Some(v) = self.max_docs_per_connection {
            wire.max_docs = v;
        }
        if let Some(v) = self.idle_timeout_ms {
            wire.idle_timeout_ms = v;
        }
        if let Some(v) = self.max_connections {
            limits.max_connections = v;
        }
        if let Some(v) = self.max_connections_per_ip {
            limits.max_connections_per_ip = v;
        }
        if let Some(v) = self.updates_per_sec {
            limits.updates_per_sec = v;
        }
        if let Some(v) = self.update_burst {
            limits.update_burst = v;
        }
        if let Some(v) = self.outbound_queue_bytes {
            limits.outbound_queue_bytes = v;
        }
        if let Some(v) = self.slow_consumer_grace_secs {
            limits.slow_consumer_grace = Duration::from_secs(v);
        }
        if let Some(v) = self.doc_idle_unload_secs {
            limits.doc_idle_unload = Duration::from_secs(v);
        }
        Ok(RelayConfig {
            listen: self.listen,
            data: Some(self.data.clone()),
            auth,
            limits,
            ..RelayConfig::default()
        })
    }
}

fn main() -> ExitCode {
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
        .with_writer(std::io::stderr);
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
