//! `weft-load`: a load generator for `weft-relay` (issue #6 benchmarks).
//!
//! Speaks the relay wire protocol (`docs/protocol.md` §7) directly over
//! WebSocket with real `weft_core::Doc` updates. Four scenarios, one per
//! invocation:
//!
//! - `fanout`: one writer, N readers on one document; delivery latency
//!   (writer send → reader receive), lost updates, ack latency.
//! - `rooms`: R rooms × C clients writing alternately at an aggregate rate;
//!   delivery latency and the achieved rate (`--find-max` sweeps rates).
//! - `idle`: N connections, each subscribed to a document; time to connect
//!   them all and the relay's resident memory per connection.
//! - `catchup`: build a 100k-char document from 10k acked inserts (server CPU
//!   to ingest them), then time a fresh client's `Subscribe` → `Synced`
//!   applied, and the `Synced` frame's size.
//!
//! Latency: all clients live in this process, so each writer records the send
//! instant of each of its transactions in a table indexed by transaction
//! counter. A receiver reads the `from`/`to` version vectors at the head of
//! the update (`docs/protocol.md` §4: they are the first two fields of a
//! kind-12 update) and credits every transaction of a known writer in
//! `(from, to]` with one delivery at the receive instant; a transaction
//! credited twice would be a duplicate, one never credited is lost.
//!
//! The tool spawns the relay itself (`--relay-bin`, default `weft-relay`
//! next to this executable, on a fresh temporary `--data` directory with
//! `--insecure-no-auth --listen 127.0.0.1:0`), or targets a running one with
//! `--addr` (and `--server-pid` for CPU and memory figures). Only loopback
//! addresses are accepted. Every loop is bounded in count and in time.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::sleep_until;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use weft_core::{Doc, ReplicaId, VersionVector};
use weft_protocol::{DocId, ErrorCode, ErrorScope, Frame, Limits};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;
type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

// Hard bounds on what the flags may ask for, whatever is typed.
const MAX_CONNECTIONS: usize = 20_000;
const MAX_RATE: f64 = 200_000.0;
const MAX_UPDATES: u64 = 1_000_000;
const MAX_SECS: u64 = 600;

#[derive(Parser, Debug)]
#[command(name = "weft-load", about = "Load generator for weft-relay (issue #6)")]
struct Cli {
    /// A running relay (loopback only, e.g. 127.0.0.1:8787); without it the
    /// tool spawns its own relay.
    #[arg(long, global = true)]
    addr: Option<SocketAddr>,
    /// The running relay's pid, for server CPU and memory (with `--addr`).
    #[arg(long, global = true)]
    server_pid: Option<u32>,
    /// The relay binary to spawn (default: `weft-relay` next to this
    /// executable).
    #[arg(long, global = true)]
    relay_bin: Option<PathBuf>,
    /// Extra argument for the spawned relay (repeatable), e.g.
    /// `--relay-arg=--max-connections-per-ip=20000`.
    #[arg(long = "relay-arg", global = true, allow_hyphen_values = true)]
    relay_args: Vec<String>,
    /// Worker threads of this tool's tokio runtime.
    #[arg(long, global = true, default_value_t = 2)]
    threads: usize,
    /// Keep the spawned relay's data directory (and its stderr log).
    #[arg(long, global = true)]
    keep_data: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// One writer, N readers on one document.
    Fanout {
        /// Readers (one connection each).
        #[arg(long, default_value_t = 100)]
        readers: usize,
        /// Updates per second sent by the writer.
        #[arg(long, default_value_t = 100.0)]
        rate: f64,
        /// Updates sent in total.
        #[arg(long, default_value_t = 1000)]
        updates: u64,
        /// Readers that also apply every update to their own `Doc` and
        /// check its text against the writer's at the end.
        #[arg(long, default_value_t = 10)]
        verify_readers: usize,
        /// Seconds to wait for stragglers after the last send.
        #[arg(long, default_value_t = 10)]
        grace: u64,
    },
    /// R rooms × C clients writing alternately at an aggregate rate.
    Rooms {
        /// Rooms (one document each).
        #[arg(long, default_value_t = 1000)]
        rooms: usize,
        /// Clients per room (one connection each).
        #[arg(long, default_value_t = 2)]
        clients: usize,
        /// Aggregate updates per second over all rooms.
        #[arg(long, default_value_t = 10_000.0)]
        rate: f64,
        /// Seconds of sending.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Seconds to wait for stragglers after the last send.
        #[arg(long, default_value_t = 10)]
        grace: u64,
        /// Run the `--sweep` rates in order (fresh documents each) until two
        /// in a row miss, and report the highest one sustained (p99 within
        /// `--target-p99-ms`, ≥ 95% of the rate achieved, nothing lost, no
        /// errors).
        #[arg(long)]
        find_max: bool,
        /// Rates for `--find-max`, ascending.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "1000,2000,3000,4000,5000,7500,10000,15000,20000"
        )]
        sweep: Vec<f64>,
        /// The p99 delivery bound for `--find-max`.
        #[arg(long, default_value_t = 10.0)]
        target_p99_ms: f64,
    },
    /// N idle connections: time to connect, relay memory per connection.
    Idle {
        /// Connections (each subscribed to one document).
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// Documents the connections are spread over (round robin).
        #[arg(long, default_value_t = 100)]
        docs: usize,
        /// Handshakes in flight at once.
        #[arg(long, default_value_t = 500)]
        concurrency: usize,
        /// Seconds to hold the connections open after they are all
        /// subscribed, before measuring memory.
        #[arg(long, default_value_t = 2)]
        hold: u64,
    },
    /// Build a document from many acked inserts, then time fresh clients
    /// catching up on it.
    Catchup {
        /// Inserts (one update each).
        #[arg(long, default_value_t = 10_000)]
        inserts: u64,
        /// Characters per insert.
        #[arg(long, default_value_t = 10)]
        chars: usize,
        /// Updates in flight (sent, not yet acked) at once.
        #[arg(long, default_value_t = 64)]
        window: usize,
        /// Where each insert goes: `random` (seeded, anywhere in the text) or
        /// `append`.
        #[arg(long, default_value = "random")]
        positions: String,
        /// Fresh clients that catch up, one after the other.
        #[arg(long, default_value_t = 5)]
        fresh_clients: usize,
    },
}

fn main() -> Res<()> {
    let cli = Cli::parse();
    if let Some(addr) = cli.addr {
        if !addr.ip().is_loopback() {
            return Err(format!("--addr {addr}: only loopback addresses are allowed").into());
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.threads.clamp(1, 16))
        .enable_all()
        .build()?;
    let mut relay = match cli.addr {
        Some(addr) => Relay::External {
            addr,
            pid: cli.server_pid,
        },
        None => Relay::spawn(cli.relay_bin.as_deref(), &cli.relay_args, cli.keep_data)?,
    };
    let result = rt.block_on(run(&cli, &relay));
    let failed = result.is_err();
    relay.stop(failed);
    result
}

async fn run(cli: &Cli, relay: &Relay) -> Res<()> {
    let run_id = run_id();
    match &cli.scenario {
        Scenario::Fanout {
            readers,
            rate,
            updates,
            verify_readers,
            grace,
        } => {
            check("readers", *readers, 1, MAX_CONNECTIONS)?;
            check_rate(*rate)?;
            check("updates", *updates as usize, 1, MAX_UPDATES as usize)?;
            let p = FanoutParams {
                readers: *readers,
                rate: *rate,
                updates: *updates,
                verify_readers: *verify_readers,
                grace: Duration::from_secs((*grace).min(MAX_SECS)),
            };
            fanout(relay, &p, &run_id).await
        }
        Scenario::Rooms {
            rooms,
            clients,
            rate,
            duration,
            grace,
            find_max,
            sweep,
            target_p99_ms,
        } => {
            check("rooms × clients", rooms * clients, 2, MAX_CONNECTIONS)?;
            check("clients", *clients, 2, 64)?;
            let base = RoomsParams {
                rooms: *rooms,
                clients: *clients,
                rate: *rate,
                duration: Duration::from_secs((*duration).clamp(1, MAX_SECS)),
                grace: Duration::from_secs((*grace).min(MAX_SECS)),
            };
            if !find_max {
                check_rate(*rate)?;
                let r = rooms_run(relay, &base, &run_id).await?;
                print_rooms(&base, &r);
                if r.lost > 0 {
                    return Err(format!("{} updates lost", r.lost).into());
                }
                return Ok(());
            }
            // Steps run in ascending order until two in a row miss (one miss
            // on this shared machine may be noise); every step is printed.
            let mut best: Option<f64> = None;
            let mut missed: Vec<f64> = Vec::new();
            let mut misses_in_a_row = 0;
            for (i, &rate) in sweep.iter().enumerate() {
                check_rate(rate)?;
                let p = RoomsParams { rate, ..base };
                let r = rooms_run(relay, &p, &format!("{run_id}s{i}")).await?;
                print_rooms(&p, &r);
                let ok = r.lost == 0
                    && r.p99_ms <= *target_p99_ms
                    && r.achieved >= 0.95 * rate
                    && r.errors.is_empty()
                    && r.failures == 0;
                if ok {
                    best = Some(rate);
                    misses_in_a_row = 0;
                } else {
                    missed.push(rate);
                    misses_in_a_row += 1;
                    if misses_in_a_row == 2 {
                        break;
                    }
                }
                // Let the relay settle (flushes, unloads) between steps.
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            let missed = if missed.is_empty() {
                "none".to_string()
            } else {
                missed
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            match best {
                Some(rate) => println!(
                    "| rooms find-max | {} rooms × {} clients, {} s per step | highest rate sustained with p99 ≤ {} ms: {} updates/s (steps missed: {missed}) |",
                    base.rooms, base.clients, base.duration.as_secs(), target_p99_ms, rate
                ),
                None => println!(
                    "| rooms find-max | {} rooms × {} clients, {} s per step | no rate in the sweep met p99 ≤ {} ms (steps missed: {missed}) |",
                    base.rooms, base.clients, base.duration.as_secs(), target_p99_ms
                ),
            }
            Ok(())
        }
        Scenario::Idle {
            connections,
            docs,
            concurrency,
            hold,
        } => {
            check("connections", *connections, 1, MAX_CONNECTIONS)?;
            check("docs", *docs, 1, 256)?;
            let p = IdleParams {
                connections: *connections,
                docs: *docs,
                concurrency: (*concurrency).clamp(1, 4096),
                hold: Duration::from_secs((*hold).min(MAX_SECS)),
            };
            idle(relay, &p, &run_id).await
        }
        Scenario::Catchup {
            inserts,
            chars,
            window,
            positions,
            fresh_clients,
        } => {
            check("inserts", *inserts as usize, 1, MAX_UPDATES as usize)?;
            check("chars", *chars, 1, 1000)?;
            check("fresh-clients", *fresh_clients, 1, 100)?;
            let random = match positions.as_str() {
                "random" => true,
                "append" => false,
                other => return Err(format!("--positions {other}: random or append").into()),
            };
            let p = CatchupParams {
                inserts: *inserts,
                chars: *chars,
                window: (*window).clamp(1, 4096),
                random,
                fresh_clients: *fresh_clients,
            };
            catchup(relay, &p, &run_id).await
        }
    }
}

fn check(what: &str, v: usize, min: usize, max: usize) -> Res<()> {
    if v < min || v > max {
        return Err(format!("{what} = {v}: must be within {min}..={max}").into());
    }
    Ok(())
}

fn check_rate(rate: f64) -> Res<()> {
    if !(rate > 0.0 && rate <= MAX_RATE) {
        return Err(format!("rate {rate}: must be within (0, {MAX_RATE}]").into());
    }
    Ok(())
}

fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}", (nanos as u64) ^ u64::from(std::process::id()) << 40)
}

// ----- the relay under test ------------------------------------------------

#[derive(Debug)]
enum Relay {
    External {
        addr: SocketAddr,
        pid: Option<u32>,
    },
    Spawned {
        addr: SocketAddr,
        child: Child,
        data: PathBuf,
        keep: bool,
    },
}

impl Relay {
    fn spawn(bin: Option<&Path>, extra: &[String], keep: bool) -> Res<Relay> {
        let bin = match bin {
            Some(b) => b.to_path_buf(),
            None => std::env::current_exe()?
                .parent()
                .ok_or("current_exe has no parent")?
                .join("weft-relay"),
        };
        let data = std::env::temp_dir().join(format!("weft-load-{}", run_id()));
        std::fs::create_dir_all(&data)?;
        let log = std::fs::File::create(data.join("relay-stderr.log"))?;
        let mut cmd = Command::new(&bin);
        cmd.arg("--data")
            .arg(data.join("db"))
            .arg("--insecure-no-auth")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        if std::env::var_os("RUST_LOG").is_none() {
            cmd.env("RUST_LOG", "warn");
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawning {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next();
            let _ = tx.send(first);
            // Drain the rest so the relay never blocks on a full pipe.
            for _ in lines {}
        });
        let first = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(Ok(line))) => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                let log =
                    std::fs::read_to_string(data.join("relay-stderr.log")).unwrap_or_default();
                return Err(format!(
                    "relay did not print its address ({other:?}); stderr:\n{}",
                    tail(&log, 40)
                )
                .into());
            }
        };
        let addr: SocketAddr = first
            .strip_prefix("weft-relay listening on ")
            .and_then(|a| a.trim().parse().ok())
            .ok_or_else(|| format!("unexpected first line from the relay: {first:?}"))?;
        if !addr.ip().is_loopback() {
            let _ = child.kill();
            return Err(format!("relay listens on non-loopback {addr}").into());
        }
        eprintln!(
            "# spawned {} (pid {}) on {addr}, data {}",
            bin.display(),
            child.id(),
            data.display()
        );
        Ok(Relay::Spawned {
            addr,
            child,
            data,
            keep,
        })
    }

    fn addr(&self) -> SocketAddr {
        match self {
            Relay::External { addr, .. } | Relay::Spawned { addr, .. } => *addr,
        }
    }

    fn pid(&self) -> Option<u32> {
        match self {
            Relay::External { pid, .. } => *pid,
            Relay::Spawned { child, .. } => Some(child.id()),
        }
    }

    fn cpu(&self) -> Option<Duration> {
        self.pid().and_then(|p| proc_cpu(&p.to_string()))
    }

    fn rss(&self) -> Option<u64> {
        self.pid().and_then(|p| proc_rss(&p.to_string()))
    }

    /// SIGTERM, up to 10 s for a graceful exit, then SIGKILL.
    fn stop(&mut self, failed: bool) {
        let Relay::Spawned {
            child, data, keep, ..
        } = self
        else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    if !status.success() {
                        eprintln!("# relay exited with {status}");
                    }
                    break;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => {
                    eprintln!("# relay did not stop within 10 s of SIGTERM: killed");
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
        let log = std::fs::read_to_string(data.join("relay-stderr.log")).unwrap_or_default();
        if failed && !log.is_empty() {
            eprintln!("# relay stderr (tail):\n{}", tail(&log, 30));
        }
        if *keep || failed {
            eprintln!("# relay data kept in {}", data.display());
        } else {
            let _ = std::fs::remove_dir_all(&*data);
        }
    }
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// utime + stime of a process (`/proc/PID/stat`), or of this one (`self`).
fn proc_cpu(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / clk_tck() as f64))
}

fn clk_tck() -> u64 {
    static TCK: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// Resident set size in bytes (`VmRSS` of `/proc/PID/status`).
fn proc_rss(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

// ----- protocol plumbing ---------------------------------------------------

/// Small buffers: 10,000 connections must stay cheap on this side too.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20))
}

fn client_limits() -> Limits {
    Limits {
        max_frame_bytes: 64 << 20,
        max_update_bytes: 64 << 20,
        ..Limits::default()
    }
}

async fn send(ws: &mut Ws, frame: &Frame) -> Res<usize> {
    let bytes = frame.encode();
    let n = bytes.len();
    ws.send(Message::Binary(bytes.into())).await?;
    Ok(n)
}

/// The next protocol frame and its encoded size; `None` when the socket
/// closed.
async fn recv(ws: &mut Ws) -> Res<Option<(Frame, usize)>> {
    loop {
        match ws.next().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Message::Binary(b))) => {
                let frame = Frame::decode(&b, &client_limits())
                    .map_err(|e| format!("undecodable frame from the relay: {e}"))?;
                return Ok(Some((frame, b.len())));
            }
            Some(Ok(Message::Close(c))) => {
                return Err(format!("relay closed the connection: {c:?}").into())
            }
            Some(Ok(Message::Text(_))) => return Err("text message from the relay".into()),
            Some(Ok(_)) => continue, // WebSocket ping/pong: handled by tungstenite
        }
    }
}

/// Connects, says Hello (no token), waits for Welcome.
async fn connect(addr: SocketAddr) -> Res<(Ws, Limits)> {
    let url = format!("ws://{addr}/ws");
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true).await?;
    send(
        &mut ws,
        &Frame::hello(
            Some(format!("weft-load/{}", env!("CARGO_PKG_VERSION"))),
            None,
        ),
    )
    .await?;
    match recv(&mut ws).await? {
        Some((Frame::Welcome { limits, .. }, _)) => Ok((ws, limits)),
        Some((Frame::Error { code, message, .. }, _)) => {
            Err(format!("refused: {} ({}) {message}", code.name(), code.code()).into())
        }
        Some((other, _)) => Err(format!("expected Welcome, got {}", other.name()).into()),
        None => Err("closed before Welcome".into()),
    }
}

/// Subscribes with `version` and waits for the document's `Synced`,
/// answering pings and skipping anything else. Returns the `Synced` update
/// and the frame's encoded size.
async fn subscribe(ws: &mut Ws, doc: &DocId, version: &VersionVector) -> Res<(Vec<u8>, usize)> {
    send(
        ws,
        &Frame::Subscribe {
            doc: doc.clone(),
            version: version.clone(),
        },
    )
    .await?;
    loop {
        match recv(ws).await? {
            Some((Frame::Synced { doc: d, update, .. }, n)) if &d == doc => return Ok((update, n)),
            Some((Frame::Ping { nonce }, _)) => {
                send(ws, &Frame::Pong { nonce }).await?;
            }
            Some((Frame::Error { code, message, .. }, _)) => {
                return Err(format!(
                    "subscribe refused: {} ({}) {message}",
                    code.name(),
                    code.code()
                )
                .into())
            }
            Some(_) => continue,
            None => return Err("closed before Synced".into()),
        }
    }
}

/// The `from` and `to` version vectors at the head of an encoded document
/// update (`docs/protocol.md` §4), without decoding the rest.
fn update_range(update: &[u8]) -> Option<(VersionVector, VersionVector)> {
    weft_core::Update::peek_versions(update)
}

/// Send instants of one writer's transactions, indexed by transaction
/// counter (1-based), in nanoseconds since a shared base instant (+1, so 0
/// means "not sent").
#[derive(Debug)]
struct SendTimes {
    base: Instant,
    ns: Vec<AtomicU64>,
}

impl SendTimes {
    fn new(base: Instant, n: u64) -> SendTimes {
        SendTimes {
            base,
            ns: (0..=n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn record(&self, counter: u64, at: Instant) {
        if let Some(slot) = self.ns.get(counter as usize) {
            let ns = at.duration_since(self.base).as_nanos() as u64 + 1;
            slot.store(ns, Ordering::Release);
        }
    }

    /// Microseconds from the send of `counter` to `at`.
    fn latency_us(&self, counter: u64, at: Instant) -> Option<u64> {
        let ns = self.ns.get(counter as usize)?.load(Ordering::Acquire);
        if ns == 0 {
            return None;
        }
        let sent = self.base + Duration::from_nanos(ns - 1);
        Some(at.saturating_duration_since(sent).as_micros() as u64)
    }
}

#[derive(Debug, Default, Clone)]
struct Stats {
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    n: usize,
}

fn stats(mut us: Vec<u64>) -> Stats {
    if us.is_empty() {
        return Stats::default();
    }
    us.sort_unstable();
    let q = |p: f64| {
        let i = ((p * us.len() as f64).ceil() as usize).clamp(1, us.len()) - 1;
        us[i] as f64 / 1e3
    };
    Stats {
        p50_ms: q(0.50),
        p99_ms: q(0.99),
        max_ms: *us.last().unwrap_or(&0) as f64 / 1e3,
        n: us.len(),
    }
}

fn fmt_dur(d: Option<Duration>) -> String {
    match d {
        Some(d) => format!("{:.3} s", d.as_secs_f64()),
        None => "n/a".into(),
    }
}

fn cpu_delta(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    Some(b?.saturating_sub(a?))
}

/// Error frames seen, by code name.
type Errors = HashMap<String, u64>;

fn note_error(errors: &mut Errors, code: ErrorCode) {
    *errors
        .entry(format!("{}({})", code.name(), code.code()))
        .or_default() += 1;
}

fn merge_errors(into: &mut Errors, from: Errors) {
    for (k, v) in from {
        *into.entry(k).or_default() += v;
    }
}

fn fmt_errors(e: &Errors) -> String {
    if e.is_empty() {
        return "none".into();
    }
    let mut v: Vec<_> = e.iter().map(|(k, n)| format!("{k}×{n}")).collect();
    v.sort();
    v.join(" ")
}

/// A document edit whose text encodes `n` (exactly `chars` characters).
fn marker(n: u64, chars: usize) -> String {
    let s = format!("{n:0width$}|", width = chars.saturating_sub(1));
    s[s.len() - chars..].to_string()
}

fn insert_at(doc: &mut Doc, pos: Option<u64>, text: &str) -> Res<Vec<u8>> {
    Ok(doc.transact(|tx| {
        let mut t = tx.text("body")?;
        let len = t.len();
        let at = match pos {
            Some(p) => (p % (len as u64 + 1)) as usize,
            None => len,
        };
        t.insert(at, text)
    })?)
}

/// Where a client task reports once it is subscribed (or failed to).
type Ready = mpsc::UnboundedSender<Result<(), String>>;

// ----- fan-out ---------------------------------------------------------------

#[derive(Debug)]
struct FanoutParams {
    readers: usize,
    rate: f64,
    updates: u64,
    verify_readers: usize,
    grace: Duration,
}

#[derive(Debug, Default)]
struct ReaderResult {
    latencies_us: Vec<u64>,
    received: u64,
    duplicates: u64,
    text: Option<String>,
    errors: Errors,
    failure: Option<String>,
}

async fn fanout(relay: &Relay, p: &FanoutParams, run_id: &str) -> Res<()> {
    let addr = relay.addr();
    let doc_id = DocId::new(format!("fanout-{}-{run_id}", p.readers))?;
    let writer_replica = ReplicaId::random();
    let base = Instant::now();
    let times = Arc::new(SendTimes::new(base, p.updates));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let sem = Arc::new(Semaphore::new(256));

    let t_connect = Instant::now();
    let mut tasks = Vec::with_capacity(p.readers);
    for i in 0..p.readers {
        let verify = i < p.verify_readers;
        tasks.push(tokio::spawn(fanout_reader(
            addr,
            doc_id.clone(),
            writer_replica,
            p.updates,
            verify,
            times.clone(),
            sem.clone(),
            ready_tx.clone(),
            stop_rx.clone(),
        )));
    }
    drop(ready_tx);
    let mut ready = 0;
    let mut failed = Vec::new();
    let connect_deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while ready + failed.len() < p.readers {
        match tokio::time::timeout_at(connect_deadline, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => ready += 1,
            Ok(Some(Err(e))) => failed.push(e),
            Ok(None) | Err(_) => break,
        }
    }
    let connect_time = t_connect.elapsed();
    eprintln!(
        "# fanout: {ready}/{} readers subscribed in {:.2} s",
        p.readers,
        connect_time.as_secs_f64()
    );
    if !failed.is_empty() {
        eprintln!(
            "# fanout: {} readers failed to connect, first: {}",
            failed.len(),
            failed[0]
        );
    }

    // The writer.
    let (mut ws, _) = connect(addr).await?;
    subscribe(&mut ws, &doc_id, &VersionVector::new()).await?;
    let mut doc = Doc::new(writer_replica);
    let cpu0 = relay.cpu();
    let self0 = proc_cpu("self");
    let t0 = tokio::time::Instant::now();
    let interval = Duration::from_secs_f64(1.0 / p.rate);
    let send_deadline = t0 + interval * (p.updates as u32) + Duration::from_secs(60);
    let mut pending: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut retry: Vec<u64> = Vec::new();
    let mut ack_us = Vec::with_capacity(p.updates as usize);
    let mut w_errors = Errors::new();
    let mut sent = 0u64;
    let mut acked = 0u64;
    let mut last_send = Instant::now();
    let mut next_retry = t0;
    while acked < p.updates {
        let next = t0 + interval * (sent as u32);
        tokio::select! {
            _ = sleep_until(next), if sent < p.updates => {
                sent += 1;
                let update = insert_at(&mut doc, None, &marker(sent, 10))?;
                let now = Instant::now();
                times.record(sent, now);
                last_send = now;
                send(&mut ws, &Frame::Update { doc: doc_id.clone(), seq: sent, update: update.clone() }).await?;
                pending.insert(sent, update);
            }
            _ = sleep_until(next_retry), if !retry.is_empty() => {
                for seq in std::mem::take(&mut retry) {
                    if let Some(u) = pending.get(&seq) {
                        send(&mut ws, &Frame::Update { doc: doc_id.clone(), seq, update: u.clone() }).await?;
                    }
                }
            }
            msg = recv(&mut ws) => match msg? {
                Some((Frame::Ack { seq, .. }, _)) => {
                    if pending.remove(&seq).is_some() {
                        acked += 1;
                        if let Some(us) = times.latency_us(seq, Instant::now()) {
                            ack_us.push(us);
                        }
                    }
                }
                Some((Frame::Error { code, seq, message, .. }, _)) => {
                    note_error(&mut w_errors, code);
                    match (code.scope(), seq) {
                        (ErrorScope::UpdateRetry, Some(seq)) => {
                            retry.push(seq);
                            next_retry = tokio::time::Instant::now() + Duration::from_millis(50);
                        }
                        _ => return Err(format!("writer got {} ({}): {message}", code.name(), code.code()).into()),
                    }
                }
                Some((Frame::Ping { nonce }, _)) => { send(&mut ws, &Frame::Pong { nonce }).await?; }
                Some(_) => {}
                None => return Err("writer: relay closed the connection".into()),
            },
            _ = sleep_until(send_deadline) => {
                eprintln!("# fanout: writer gave up waiting for acks ({acked}/{} acked)", p.updates);
                break;
            }
        }
    }
    let send_span = last_send.saturating_duration_since(t0.into_std());
    // Readers finish when they have everything; stragglers get `grace`,
    // then are stopped and report what they have.
    let grace_end = tokio::time::Instant::now() + p.grace;
    let stopper = tokio::spawn(async move {
        sleep_until(grace_end).await;
        let _ = stop_tx.send(true);
    });
    let mut results = Vec::with_capacity(tasks.len());
    for t in tasks {
        results.push(t.await);
    }
    stopper.abort();
    let cpu1 = relay.cpu();
    let self1 = proc_cpu("self");
    let _ = ws.close(None).await;

    let writer_text = doc.text("body")?.to_string();
    let mut lat = Vec::new();
    let mut received = 0u64;
    let mut dups = 0u64;
    let mut errors = Errors::new();
    let mut failures = Vec::new();
    let mut verified = 0usize;
    let mut verify_failed = 0usize;
    for r in results {
        let r = r.map_err(|e| format!("reader task panicked: {e}"))?;
        lat.extend(r.latencies_us);
        received += r.received;
        dups += r.duplicates;
        merge_errors(&mut errors, r.errors);
        if let Some(f) = r.failure {
            failures.push(f);
        }
        if let Some(t) = r.text {
            if t == writer_text {
                verified += 1;
            } else {
                verify_failed += 1;
            }
        }
    }
    let expected = p.readers as u64 * p.updates;
    let lost = expected.saturating_sub(received);
    let s = stats(lat);
    let a = stats(ack_us);
    merge_errors(&mut errors, w_errors);
    if !failures.is_empty() {
        eprintln!(
            "# fanout: {} readers incomplete, first: {}",
            failures.len(),
            failures[0]
        );
    }
    println!(
        "| fanout | 1 writer → {} readers, {} updates at {}/s (sent in {:.2} s) | delivery p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} deliveries); lost {lost} of {expected}, duplicates {dups}; ack p50 {:.2} ms, p99 {:.2} ms; text verified on {verified}/{} readers{}; errors: {}; relay CPU {}, weft-load CPU {}; readers connected in {:.2} s |",
        p.readers,
        p.updates,
        p.rate,
        send_span.as_secs_f64(),
        s.p50_ms,
        s.p99_ms,
        s.max_ms,
        s.n,
        a.p50_ms,
        a.p99_ms,
        p.verify_readers.min(p.readers),
        if verify_failed > 0 { format!(" (MISMATCH on {verify_failed})") } else { String::new() },
        fmt_errors(&errors),
        fmt_dur(cpu_delta(cpu0, cpu1)),
        fmt_dur(cpu_delta(self0, self1)),
        connect_time.as_secs_f64(),
    );
    if lost > 0 || verify_failed > 0 || !failed.is_empty() {
        return Err(format!(
            "fanout: {lost} lost, {verify_failed} text mismatches, {} readers failed",
            failed.len()
        )
        .into());
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn fanout_reader(
    addr: SocketAddr,
    doc_id: DocId,
    writer: ReplicaId,
    updates: u64,
    verify: bool,
    times: Arc<SendTimes>,
    sem: Arc<Semaphore>,
    ready: Ready,
    mut stop: watch::Receiver<bool>,
) -> ReaderResult {
    let mut r = ReaderResult::default();
    let permit = sem.acquire_owned().await;
    let setup = async {
        let (mut ws, _) = connect(addr).await?;
        let (synced, _) = subscribe(&mut ws, &doc_id, &VersionVector::new()).await?;
        Res::Ok((ws, synced))
    };
    let (mut ws, synced) = match setup.await {
        Ok(x) => x,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            r.failure = Some(e.to_string());
            return r;
        }
    };
    drop(permit);
    let mut doc = verify.then(|| Doc::new(ReplicaId::random()));
    if let Some(d) = doc.as_mut() {
        if let Err(e) = d.apply(&synced) {
            r.failure = Some(format!("Synced did not apply: {e}"));
        }
    }
    let _ = ready.send(Ok(()));
    let mut seen = vec![false; updates as usize + 1];
    r.latencies_us.reserve(updates as usize);
    let ping_every = Duration::from_secs(10);
    let mut next_ping = tokio::time::Instant::now() + ping_every;
    while r.received < updates && r.failure.is_none() {
        tokio::select! {
            msg = recv(&mut ws) => {
                let now = Instant::now();
                match msg {
                    Ok(Some((Frame::Remote { update, .. }, _))) => {
                        if let Some((from, to)) = update_range(&update) {
                            for c in from.get(writer) + 1..=to.get(writer).min(updates) {
                                if seen[c as usize] {
                                    r.duplicates += 1;
                                    continue;
                                }
                                seen[c as usize] = true;
                                r.received += 1;
                                if let Some(us) = times.latency_us(c, now) {
                                    r.latencies_us.push(us);
                                }
                            }
                        }
                        if let Some(d) = doc.as_mut() {
                            if let Err(e) = d.apply(&update) {
                                r.failure = Some(format!("Remote did not apply: {e}"));
                            }
                        }
                    }
                    Ok(Some((Frame::Ping { nonce }, _))) => {
                        if let Err(e) = send(&mut ws, &Frame::Pong { nonce }).await {
                            r.failure = Some(e.to_string());
                        }
                    }
                    Ok(Some((Frame::Error { code, message, .. }, _))) => {
                        note_error(&mut r.errors, code);
                        if code.scope() != ErrorScope::UpdateRetry {
                            r.failure = Some(format!("{} ({}): {message}", code.name(), code.code()));
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => r.failure = Some("closed by the relay".into()),
                    Err(e) => r.failure = Some(e.to_string()),
                }
            }
            _ = sleep_until(next_ping) => {
                next_ping += ping_every;
                if let Err(e) = send(&mut ws, &Frame::Ping { nonce: 1 }).await {
                    r.failure = Some(e.to_string());
                }
            }
            _ = stop.changed() => {
                r.failure = Some(format!("stopped with {}/{updates} updates", r.received));
            }
        }
    }
    if let Some(d) = doc {
        r.text = d.text("body").ok().map(|t| t.to_string());
    }
    let _ = ws.close(None).await;
    r
}

// ----- rooms -----------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct RoomsParams {
    rooms: usize,
    clients: usize,
    rate: f64,
    duration: Duration,
    grace: Duration,
}

#[derive(Debug, Default)]
struct RoomsResult {
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    ack_p99_ms: f64,
    sent: u64,
    delivered: u64,
    lost: u64,
    achieved: f64,
    send_rate: f64,
    errors: Errors,
    failures: usize,
    relay_cpu: Option<Duration>,
    self_cpu: Option<Duration>,
    connect_s: f64,
}

#[derive(Debug, Default)]
struct ClientResult {
    latencies_us: Vec<u64>,
    ack_us: Vec<u64>,
    sent: u64,
    received: u64,
    last_receive: Option<Instant>,
    errors: Errors,
    failure: Option<String>,
}

async fn rooms_run(relay: &Relay, p: &RoomsParams, tag: &str) -> Res<RoomsResult> {
    let addr = relay.addr();
    let n = p.rooms * p.clients;
    // Per room: one update every `room_period`, the clients taking turns.
    let room_period = p.rooms as f64 / p.rate;
    let client_period = Duration::from_secs_f64(room_period * p.clients as f64);
    let per_client = ((p.duration.as_secs_f64() / client_period.as_secs_f64()).floor() as u64)
        .clamp(1, MAX_UPDATES);
    let base = Instant::now();
    let replicas: Vec<ReplicaId> = (0..n).map(|_| ReplicaId::random()).collect();
    let index: Arc<HashMap<ReplicaId, usize>> =
        Arc::new(replicas.iter().enumerate().map(|(i, r)| (*r, i)).collect());
    let tables: Arc<Vec<SendTimes>> =
        Arc::new((0..n).map(|_| SendTimes::new(base, per_client)).collect());
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let (start_tx, start_rx) = watch::channel(None::<tokio::time::Instant>);
    let sem = Arc::new(Semaphore::new(256));
    let t_connect = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for room in 0..p.rooms {
        let doc_id = DocId::new(format!("room-{room}-{tag}"))?;
        for j in 0..p.clients {
            let i = room * p.clients + j;
            // Rooms spread evenly over one room period; clients in a room
            // take turns.
            let offset =
                Duration::from_secs_f64(room_period * (room as f64 / p.rooms as f64 + j as f64));
            tasks.push(tokio::spawn(room_client(RoomClient {
                addr,
                doc_id: doc_id.clone(),
                replica: replicas[i],
                me: i,
                offset,
                period: client_period,
                count: per_client,
                expect: per_client * (p.clients as u64 - 1),
                grace: p.duration + p.grace,
                index: index.clone(),
                tables: tables.clone(),
                sem: sem.clone(),
                ready: ready_tx.clone(),
                start: start_rx.clone(),
            })));
        }
    }
    drop(ready_tx);
    let mut ready = 0;
    let mut failed = Vec::new();
    let connect_deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while ready + failed.len() < n {
        match tokio::time::timeout_at(connect_deadline, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => ready += 1,
            Ok(Some(Err(e))) => failed.push(e),
            Ok(None) | Err(_) => break,
        }
    }
    let connect_s = t_connect.elapsed().as_secs_f64();
    eprintln!("# rooms: {ready}/{n} clients subscribed in {connect_s:.2} s");
    if !failed.is_empty() {
        eprintln!(
            "# rooms: {} clients failed to connect, first: {}",
            failed.len(),
            failed[0]
        );
    }
    let cpu0 = relay.cpu();
    let self0 = proc_cpu("self");
    let t0 = tokio::time::Instant::now() + Duration::from_millis(200);
    let _ = start_tx.send(Some(t0));
    let mut res = RoomsResult {
        connect_s,
        failures: failed.len(),
        ..RoomsResult::default()
    };
    let mut lat = Vec::new();
    let mut ack = Vec::new();
    let mut last_receive = t0.into_std();
    for t in tasks {
        let r = t.await.map_err(|e| format!("client task panicked: {e}"))?;
        lat.extend(r.latencies_us);
        ack.extend(r.ack_us);
        res.sent += r.sent;
        res.delivered += r.received;
        if let Some(l) = r.last_receive {
            last_receive = last_receive.max(l);
        }
        merge_errors(&mut res.errors, r.errors);
        if let Some(f) = r.failure {
            if res.failures == failed.len() {
                eprintln!("# rooms: first client failure: {f}");
            }
            res.failures += 1;
        }
    }
    res.relay_cpu = cpu_delta(cpu0, relay.cpu());
    res.self_cpu = cpu_delta(self0, proc_cpu("self"));
    let expected = n as u64 * per_client * (p.clients as u64 - 1);
    res.lost = expected.saturating_sub(res.delivered);
    let s = stats(lat);
    res.p50_ms = s.p50_ms;
    res.p99_ms = s.p99_ms;
    res.max_ms = s.max_ms;
    res.ack_p99_ms = stats(ack).p99_ms;
    // Deliveries per second from the first scheduled send to the last
    // delivery; each update is delivered to clients - 1 peers.
    let span = last_receive
        .saturating_duration_since(t0.into_std())
        .as_secs_f64()
        .max(1e-3);
    res.achieved = res.delivered as f64 / (p.clients as f64 - 1.0) / span;
    // Over the scheduled span (`per_client` sends a `client_period` apart),
    // not `duration`, which the schedule may not fill exactly.
    res.send_rate = res.sent as f64 / (per_client as f64 * client_period.as_secs_f64());
    Ok(res)
}

fn print_rooms(p: &RoomsParams, r: &RoomsResult) {
    println!(
        "| rooms | {} rooms × {} clients, target {} updates/s for {} s | delivery p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; achieved {:.0} updates/s delivered (sent {}, {:.0}/s); lost {}; ack p99 {:.2} ms; errors: {}; clients failed {}; relay CPU {}, weft-load CPU {}; connected in {:.2} s |",
        p.rooms,
        p.clients,
        p.rate,
        p.duration.as_secs(),
        r.p50_ms,
        r.p99_ms,
        r.max_ms,
        r.achieved,
        r.sent,
        r.send_rate,
        r.lost,
        r.ack_p99_ms,
        fmt_errors(&r.errors),
        r.failures,
        fmt_dur(r.relay_cpu),
        fmt_dur(r.self_cpu),
        r.connect_s,
    );
}

#[derive(Debug)]
struct RoomClient {
    addr: SocketAddr,
    doc_id: DocId,
    replica: ReplicaId,
    me: usize,
    offset: Duration,
    period: Duration,
    count: u64,
    expect: u64,
    grace: Duration,
    index: Arc<HashMap<ReplicaId, usize>>,
    tables: Arc<Vec<SendTimes>>,
    sem: Arc<Semaphore>,
    ready: Ready,
    start: watch::Receiver<Option<tokio::time::Instant>>,
}

async fn room_client(mut c: RoomClient) -> ClientResult {
    let mut r = ClientResult::default();
    let permit = c.sem.clone().acquire_owned().await;
    let setup = async {
        let (mut ws, _) = connect(c.addr).await?;
        subscribe(&mut ws, &c.doc_id, &VersionVector::new()).await?;
        Res::Ok(ws)
    };
    let mut ws = match setup.await {
        Ok(ws) => ws,
        Err(e) => {
            let _ = c.ready.send(Err(e.to_string()));
            r.failure = Some(e.to_string());
            return r;
        }
    };
    drop(permit);
    let _ = c.ready.send(Ok(()));
    let t0 = loop {
        if let Some(t0) = *c.start.borrow_and_update() {
            break t0;
        }
        if c.start.changed().await.is_err() {
            r.failure = Some("never started".into());
            return r;
        }
    };
    let mine = &c.tables[c.me];
    let mut doc = Doc::new(c.replica);
    let mut pending: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut retry: Vec<u64> = Vec::new();
    let mut next_retry = t0;
    let mut acked = 0u64;
    let deadline = t0 + c.grace;
    let mut seen: HashMap<usize, Vec<bool>> = HashMap::new();
    let mut next_ping = t0 + Duration::from_secs(10);
    while r.failure.is_none() && (r.sent < c.count || acked < c.count || r.received < c.expect) {
        let next = t0 + c.offset + c.period * (r.sent as u32);
        tokio::select! {
            _ = sleep_until(next), if r.sent < c.count => {
                r.sent += 1;
                let seq = r.sent;
                let update = match insert_at(&mut doc, None, &marker(seq, 8)) {
                    Ok(u) => u,
                    Err(e) => { r.failure = Some(e.to_string()); break; }
                };
                mine.record(seq, Instant::now());
                if let Err(e) = send(&mut ws, &Frame::Update { doc: c.doc_id.clone(), seq, update: update.clone() }).await {
                    r.failure = Some(e.to_string());
                }
                pending.insert(seq, update);
            }
            _ = sleep_until(next_retry), if !retry.is_empty() => {
                for seq in std::mem::take(&mut retry) {
                    if let Some(u) = pending.get(&seq) {
                        if let Err(e) = send(&mut ws, &Frame::Update { doc: c.doc_id.clone(), seq, update: u.clone() }).await {
                            r.failure = Some(e.to_string());
                        }
                    }
                }
            }
            _ = sleep_until(next_ping) => {
                next_ping += Duration::from_secs(10);
                if let Err(e) = send(&mut ws, &Frame::Ping { nonce: 2 }).await {
                    r.failure = Some(e.to_string());
                }
            }
            msg = recv(&mut ws) => {
                let now = Instant::now();
                match msg {
                    Ok(Some((Frame::Remote { update, .. }, _))) => {
                        if let Some((from, to)) = update_range(&update) {
                            for (replica, hi) in to.iter() {
                                let Some(&w) = c.index.get(&replica) else { continue };
                                if w == c.me { continue; }
                                let seen = seen.entry(w).or_insert_with(|| vec![false; c.count as usize + 1]);
                                for k in from.get(replica) + 1..=hi.min(c.count) {
                                    if !seen[k as usize] {
                                        seen[k as usize] = true;
                                        r.received += 1;
                                        r.last_receive = Some(now);
                                        if let Some(us) = c.tables[w].latency_us(k, now) {
                                            r.latencies_us.push(us);
                                        }
                                    }
                                }
                            }
                        }
                    }
                    Ok(Some((Frame::Ack { seq, .. }, _))) => {
                        if pending.remove(&seq).is_some() {
                            acked += 1;
                            if let Some(us) = mine.latency_us(seq, now) {
                                r.ack_us.push(us);
                            }
                        }
                    }
                    Ok(Some((Frame::Error { code, seq, message, .. }, _))) => {
                        note_error(&mut r.errors, code);
                        match (code.scope(), seq) {
                            (ErrorScope::UpdateRetry, Some(seq)) => {
                                retry.push(seq);
                                next_retry = tokio::time::Instant::now() + Duration::from_millis(50);
                            }
                            _ => r.failure = Some(format!("{} ({}): {message}", code.name(), code.code())),
                        }
                    }
                    Ok(Some((Frame::Ping { nonce }, _))) => {
                        if let Err(e) = send(&mut ws, &Frame::Pong { nonce }).await {
                            r.failure = Some(e.to_string());
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => r.failure = Some("closed by the relay".into()),
                    Err(e) => r.failure = Some(e.to_string()),
                }
            }
            _ = sleep_until(deadline) => {
                r.failure = Some(format!(
                    "deadline: sent {}/{}, acked {acked}, received {}/{}",
                    r.sent, c.count, r.received, c.expect
                ));
            }
        }
    }
    let _ = ws.close(None).await;
    r
}

// ----- idle connections ------------------------------------------------------

#[derive(Debug)]
struct IdleParams {
    connections: usize,
    docs: usize,
    concurrency: usize,
    hold: Duration,
}

async fn idle(relay: &Relay, p: &IdleParams, run_id: &str) -> Res<()> {
    let addr = relay.addr();
    let docs: Vec<DocId> = (0..p.docs)
        .map(|d| DocId::new(format!("idle-{d}-{run_id}")))
        .collect::<Result<_, _>>()?;
    // Warm-up: one connection subscribes to every document, so documents are
    // loaded before the baseline and the difference is the connections'.
    let (mut warm, limits) = connect(addr).await?;
    for d in &docs {
        subscribe(&mut warm, d, &VersionVector::new()).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss0 = relay.rss();
    let self_rss0 = proc_rss("self");
    let ping_every = Duration::from_millis(u64::from(limits.idle_timeout_ms.max(3000) / 3));

    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let (stop_tx, stop_rx) = watch::channel(false);
    let sem = Arc::new(Semaphore::new(p.concurrency));
    let cpu0 = relay.cpu();
    let self_cpu0 = proc_cpu("self");
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(p.connections);
    for i in 0..p.connections {
        let doc = docs[i % docs.len()].clone();
        let sem = sem.clone();
        let ready = ready_tx.clone();
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            let permit = sem.acquire_owned().await;
            let setup = async {
                let (mut ws, _) = connect(addr).await?;
                subscribe(&mut ws, &doc, &VersionVector::new()).await?;
                Res::Ok(ws)
            };
            let mut ws = match setup.await {
                Ok(ws) => ws,
                Err(e) => {
                    let _ = ready.send(Err(e.to_string()));
                    return Some(e.to_string());
                }
            };
            drop(permit);
            let _ = ready.send(Ok(()));
            drop(ready);
            let mut next_ping = tokio::time::Instant::now() + ping_every;
            loop {
                tokio::select! {
                    msg = recv(&mut ws) => match msg {
                        Ok(Some((Frame::Ping { nonce }, _))) => {
                            if let Err(e) = send(&mut ws, &Frame::Pong { nonce }).await {
                                return Some(e.to_string());
                            }
                        }
                        Ok(Some((Frame::Error { code, message, .. }, _))) => {
                            return Some(format!("{} ({}): {message}", code.name(), code.code()));
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => return Some("closed by the relay".into()),
                        Err(e) => return Some(e.to_string()),
                    },
                    _ = sleep_until(next_ping) => {
                        next_ping += ping_every;
                        if let Err(e) = send(&mut ws, &Frame::Ping { nonce: 3 }).await {
                            return Some(e.to_string());
                        }
                    }
                    _ = stop.changed() => {
                        let _ = ws.close(None).await;
                        return None;
                    }
                }
            }
        }));
    }
    drop(ready_tx);
    let mut ready = 0usize;
    let mut failed: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while ready + failed.len() < p.connections {
        match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => ready += 1,
            Ok(Some(Err(e))) => failed.push(e),
            Ok(None) | Err(_) => break,
        }
    }
    let connect_time = t0.elapsed();
    let connect_cpu = cpu_delta(cpu0, relay.cpu());
    let connect_self_cpu = cpu_delta(self_cpu0, proc_cpu("self"));
    tokio::time::sleep(p.hold).await;
    let rss1 = relay.rss();
    let self_rss1 = proc_rss("self");
    let _ = stop_tx.send(true);
    let mut dropped = Vec::new();
    for t in tasks {
        if let Ok(Some(e)) = t.await {
            dropped.push(e);
        }
    }
    let _ = warm.close(None).await;
    let dropped_after_connect = dropped.len().saturating_sub(failed.len());
    if let Some(e) = failed.first() {
        eprintln!("# idle: {} failed to connect, first: {e}", failed.len());
    }
    if let Some(e) = dropped.iter().find(|e| !failed.contains(e)) {
        eprintln!("# idle: {dropped_after_connect} dropped while held, first: {e}");
    }
    let per_conn = match (rss0, rss1) {
        (Some(a), Some(b)) if ready > 0 => format!(
            "{:.1} KB per connection (relay RSS {:.1} → {:.1} MB)",
            (b as f64 - a as f64) / ready as f64 / 1024.0,
            a as f64 / 1048576.0,
            b as f64 / 1048576.0
        ),
        _ => "relay RSS n/a (give --server-pid)".into(),
    };
    let self_mem = match (self_rss0, self_rss1) {
        (Some(a), Some(b)) if ready > 0 => {
            format!("{:.1} KB", (b as f64 - a as f64) / ready as f64 / 1024.0)
        }
        _ => "n/a".into(),
    };
    println!(
        "| idle | {} connections over {} docs (Hello + Subscribe each), {} handshakes in flight | {ready} connected and subscribed in {:.3} s; {per_conn}; failed {}, dropped while held {}; CPU while connecting: relay {}, weft-load {}; weft-load RSS per connection {self_mem} |",
        p.connections,
        p.docs,
        p.concurrency,
        connect_time.as_secs_f64(),
        failed.len(),
        dropped_after_connect,
        fmt_dur(connect_cpu),
        fmt_dur(connect_self_cpu),
    );
    if ready < p.connections {
        return Err(format!("idle: only {ready}/{} connected", p.connections).into());
    }
    Ok(())
}

// ----- catch-up --------------------------------------------------------------

#[derive(Debug)]
struct CatchupParams {
    inserts: u64,
    chars: usize,
    window: usize,
    random: bool,
    fresh_clients: usize,
}

async fn catchup(relay: &Relay, p: &CatchupParams, run_id: &str) -> Res<()> {
    let addr = relay.addr();
    let doc_id = DocId::new(format!("catchup-{run_id}"))?;
    let (mut ws, _) = connect(addr).await?;
    subscribe(&mut ws, &doc_id, &VersionVector::new()).await?;
    let mut doc = Doc::new(ReplicaId::random());
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next_pos = || {
        // xorshift64: a fixed, seeded sequence of positions.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // Make the updates first so the writer's own editing is not in the
    // ingest window.
    let mut updates = Vec::with_capacity(p.inserts as usize);
    for _ in 1..=p.inserts {
        // Pseudo-random lowercase letters: about as compressible as prose,
        // unlike digits (the encoding compresses text content).
        let text: String = (0..p.chars)
            .map(|_| char::from(b'a' + (next_pos() % 26) as u8))
            .collect();
        let pos = p.random.then(&mut next_pos);
        updates.push(insert_at(&mut doc, pos, &text)?);
    }
    let update_bytes: usize = updates.iter().map(Vec::len).sum();
    let cpu0 = relay.cpu();
    let t0 = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(MAX_SECS);
    let mut next = 0usize; // index of the next update to send
    let mut in_flight = 0usize;
    let mut acked = 0u64;
    let mut retry: Vec<u64> = Vec::new();
    let mut next_retry = tokio::time::Instant::now();
    let mut errors = Errors::new();
    while acked < p.inserts {
        tokio::select! {
            biased;
            _ = std::future::ready(()), if in_flight < p.window && next < updates.len() => {
                let seq = next as u64 + 1;
                send(&mut ws, &Frame::Update { doc: doc_id.clone(), seq, update: updates[next].clone() }).await?;
                next += 1;
                in_flight += 1;
            }
            _ = sleep_until(next_retry), if !retry.is_empty() => {
                for seq in std::mem::take(&mut retry) {
                    let update = updates[seq as usize - 1].clone();
                    send(&mut ws, &Frame::Update { doc: doc_id.clone(), seq, update }).await?;
                }
            }
            msg = recv(&mut ws) => match msg? {
                Some((Frame::Ack { .. }, _)) => {
                    acked += 1;
                    in_flight = in_flight.saturating_sub(1);
                }
                Some((Frame::Error { code, seq, message, .. }, _)) => {
                    note_error(&mut errors, code);
                    match (code.scope(), seq) {
                        (ErrorScope::UpdateRetry, Some(seq)) => {
                            retry.push(seq);
                            next_retry = tokio::time::Instant::now() + Duration::from_millis(20);
                        }
                        _ => return Err(format!("catchup writer got {} ({}): {message}", code.name(), code.code()).into()),
                    }
                }
                Some((Frame::Ping { nonce }, _)) => { send(&mut ws, &Frame::Pong { nonce }).await?; }
                Some(_) => {}
                None => return Err("catchup writer: relay closed the connection".into()),
            },
            _ = sleep_until(deadline) => return Err(format!("catchup: only {acked}/{} acked in {MAX_SECS} s", p.inserts).into()),
        }
    }
    let ingest_wall = t0.elapsed();
    let ingest_cpu = cpu_delta(cpu0, relay.cpu());
    let text = doc.text("body")?.to_string();
    let chars = text.chars().count();

    // Fresh clients, one after the other: Hello first (not timed), then
    // Subscribe with an empty version → Synced applied.
    let mut times = Vec::new();
    let mut recv_times = Vec::new();
    let mut synced_bytes = 0usize;
    let mut update_len = 0usize;
    for _ in 0..p.fresh_clients {
        let (mut fresh, _) = connect(addr).await?;
        let t = Instant::now();
        let (update, n) = subscribe(&mut fresh, &doc_id, &VersionVector::new()).await?;
        let received = t.elapsed();
        let mut d = Doc::new(ReplicaId::random());
        d.apply(&update)?;
        let elapsed = t.elapsed();
        recv_times.push(received);
        if d.text("body")?.to_string() != text {
            return Err("catchup: the fresh client's text differs from the writer's".into());
        }
        times.push(elapsed);
        synced_bytes = n;
        update_len = update.len();
        let _ = fresh.close(None).await;
    }
    let _ = ws.close(None).await;
    // For reference: the same state through the snapshot path (save/load)
    // instead of diff/apply, median of 5.
    let snapshot = doc.save();
    let mut load_times: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let loaded = Doc::load(&snapshot, ReplicaId::random());
            let e = t.elapsed();
            drop(loaded);
            e
        })
        .collect();
    load_times.sort();
    let first = times[0];
    let mut sorted = times.clone();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    let min = sorted[0];
    recv_times.sort();
    let recv_median = recv_times[recv_times.len() / 2];
    println!(
        "| catchup | {} inserts × {} random letters at {} positions ({chars}-char doc; updates {:.0} KB in total), window {} | fresh client Subscribe → Synced applied: first {:.2} ms, median {:.2} ms, min {:.2} ms of {} (median Subscribe → Synced received {:.2} ms, the rest is the client's apply); Synced frame {:.1} KB (update {:.1} KB); for reference the writer's Doc::save is {:.1} KB and Doc::load takes {:.2} ms here |",
        p.inserts,
        p.chars,
        if p.random { "random" } else { "appended" },
        update_bytes as f64 / 1024.0,
        p.window,
        first.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
        min.as_secs_f64() * 1e3,
        times.len(),
        recv_median.as_secs_f64() * 1e3,
        synced_bytes as f64 / 1024.0,
        update_len as f64 / 1024.0,
        snapshot.len() as f64 / 1024.0,
        load_times[2].as_secs_f64() * 1e3,
    );
    println!(
        "| ingest | the same {} inserts, sent with {} in flight, each acked | relay CPU (utime+stime) {} from first send to last ack; wall {:.3} s ({:.0} updates/s); errors: {} |",
        p.inserts,
        p.window,
        fmt_dur(ingest_cpu),
        ingest_wall.as_secs_f64(),
        p.inserts as f64 / ingest_wall.as_secs_f64(),
        fmt_errors(&errors),
    );
    Ok(())
}
