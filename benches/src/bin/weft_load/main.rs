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
//!
//! | module | what |
//! |---|---|
//! | `main.rs` | flags, bounds, dispatch to a scenario |
//! | `relay.rs` | the relay under test: spawn or attach, CPU and RSS from `/proc` |
//! | `wire.rs` | WebSocket connect, `Hello`, frames in and out, `Subscribe` → `Synced` |
//! | `common.rs` | send instants, latency statistics, error tallies, edits |
//! | `fanout.rs`, `rooms.rs`, `idle.rs`, `catchup.rs` | one scenario each |

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

mod catchup;
mod common;
mod fanout;
mod idle;
mod relay;
mod rooms;
mod wire;

use catchup::*;
use common::*;
use fanout::*;
use idle::*;
use relay::*;
use rooms::*;
use wire::*;

pub(crate) type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

// Hard bounds on what the flags may ask for, whatever is typed.
pub(crate) const MAX_CONNECTIONS: usize = 20_000;
pub(crate) const MAX_RATE: f64 = 200_000.0;
pub(crate) const MAX_UPDATES: u64 = 1_000_000;
pub(crate) const MAX_SECS: u64 = 600;

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

pub(crate) fn check(what: &str, v: usize, min: usize, max: usize) -> Res<()> {
    if v < min || v > max {
        return Err(format!("{what} = {v}: must be within {min}..={max}").into());
    }
    Ok(())
}

pub(crate) fn check_rate(rate: f64) -> Res<()> {
    if !(rate > 0.0 && rate <= MAX_RATE) {
        return Err(format!("rate {rate}: must be within (0, {MAX_RATE}]").into());
    }
    Ok(())
}

pub(crate) fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:x}", (nanos as u64) ^ u64::from(std::process::id()) << 40)
}
