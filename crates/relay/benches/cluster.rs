//! Cluster mode on one machine (issue 16): cross-node delivery latency next
//! to single-node, throughput, and memory per node, with 1, 2 and 3
//! `weft-relay` processes sharing a real PostgreSQL and Redis (started by
//! this bench on loopback, as the tests do).
//!
//! `cargo bench -p weft-relay --bench cluster` prints a markdown table.
//! First a single node on SQLite (no cluster mode, the baseline), then per
//! node count: a writer on node 1 and a reader on the last node (the
//! same node when there is one) subscribe one document; the writer sends
//! `WEFT_CLUSTER_LATENCY_UPDATES` (default 300) small edits 10 ms apart,
//! each waiting for its ack, and the reader stamps when each becomes
//! visible (latency = visible at the reader − sent by the writer); then
//! `WEFT_CLUSTER_FLOOD_UPDATES` (default 2,000) edits with up to 64 in
//! flight, timed until the reader has them all (throughput); then each
//! node's resident memory (`VmRSS`).
//!
//! What 2 shared cores can show: the processes (nodes, PostgreSQL, Redis,
//! the clients) all compete for the same two cores, so more nodes never
//! means more capacity here; the figures show the cost a hop through
//! PostgreSQL and Redis adds and that it does not grow with the node count.

#[path = "../../persist/tests/common/services.rs"]
mod services;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use services::{Postgres, Redis};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use weft_core::{Doc, ReplicaId};
use weft_protocol::{DocId, Frame, Limits};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const DOC: &str = "bench";

struct Node {
    child: Child,
    addr: SocketAddr,
}

impl Node {
    /// A node with these storage arguments (`--store … --bus …`, or
    /// `--data DIR` for a single node on SQLite).
    fn start(storage: &[&str]) -> Node {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weft-relay"))
            .args(["--listen", "127.0.0.1:0"])
            .args(storage)
            .args(["--insecure-no-auth", "--updates-per-sec", "1000000"])
            .args(["--update-burst", "1000000"])
            .env("RUST_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn weft-relay");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("relay address");
        let addr = line
            .trim()
            .strip_prefix("weft-relay listening on ")
            .unwrap_or_else(|| panic!("relay did not start: {line:?}"))
            .parse()
            .expect("address");
        Node { child, addr }
    }

    /// Resident memory, MiB.
    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Client {
    ws: Ws,
    seq: u64,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .expect("connect");
        let mut c = Client { ws, seq: 0 };
        c.send(&Frame::hello(Some("cluster-bench".into()), None))
            .await;
        match c.recv().await {
            Frame::Welcome { .. } => c,
            other => panic!("expected Welcome, got {other:?}"),
        }
    }

    async fn send(&mut self, f: &Frame) {
        self.ws
            .send(Message::Binary(f.encode().into()))
            .await
            .expect("send");
    }

    async fn recv(&mut self) -> Frame {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Binary(b))) => {
                    return Frame::decode(&b, &Limits::default()).expect("frame")
                }
                Some(Ok(_)) => continue,
                other => panic!("connection ended: {other:?}"),
            }
        }
    }

    async fn subscribe(&mut self, doc: &mut Doc) {
        self.send(&Frame::Subscribe {
            doc: DocId::new(DOC).expect("doc id"),
            version: doc.version().clone(),
        })
        .await;
        loop {
            if let Frame::Synced { update, .. } = self.recv().await {
                doc.apply(&update).expect("Synced applies");
                return;
            }
        }
    }

    async fn update(&mut self, bytes: Vec<u8>) -> u64 {
        self.seq += 1;
        let seq = self.seq;
        self.send(&Frame::Update {
            doc: DocId::new(DOC).expect("doc id"),
            seq,
            update: bytes,
        })
        .await;
        seq
    }
}

/// Appends `[k]` to the document's text.
fn mark(doc: &mut Doc, k: usize) -> Vec<u8> {
    doc.transact(|tx| {
        let mut t = tx.text("t")?;
        let end = t.len();
        t.insert(end, &format!("[{k}]"))
    })
    .expect("edit")
}

/// Reads updates into `doc` until `until` markers are visible; the time
/// each marker became visible.
async fn read_until(reader: &mut Client, doc: &mut Doc, until: usize) -> HashMap<usize, Instant> {
    let mut seen = HashMap::new();
    let mut next = 0usize;
    while next < until {
        let bytes = match reader.recv().await {
            Frame::Remote { update, .. } => update,
            _ => continue,
        };
        doc.apply(&bytes).expect("remote update applies");
        let now = Instant::now();
        let text = doc.text("t").expect("text").to_string();
        while next < until && text.contains(&format!("[{next}]")) {
            seen.insert(next, now);
            next += 1;
        }
    }
    seen
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Row {
    nodes: String,
    p50: Duration,
    p99: Duration,
    per_sec: f64,
    rss: Vec<f64>,
}

/// `nodes_n` cluster nodes on a fresh database of `pg` and `redis`, or
/// (`None`) one node on SQLite, not in cluster mode.
async fn run(nodes_n: usize, services: Option<(&Postgres, &Redis)>) -> Row {
    let latency_n = env_usize("WEFT_CLUSTER_LATENCY_UPDATES", 300);
    let flood_n = env_usize("WEFT_CLUSTER_FLOOD_UPDATES", 2000);
    let data = tempfile::tempdir().expect("data dir");
    let (nodes, label): (Vec<Node>, String) = match services {
        Some((pg, redis)) => {
            let store = pg.new_database();
            let bus = redis.url();
            let nodes = (0..nodes_n)
                .map(|_| Node::start(&["--store", &store, "--bus", &bus]))
                .collect();
            (nodes, format!("{nodes_n} (cluster)"))
        }
        None => {
            let dir = data.path().to_str().expect("utf-8 temp dir");
            (
                vec![Node::start(&["--data", dir])],
                "1 (SQLite, single node)".into(),
            )
        }
    };
    let nodes_n = nodes.len();
    let mut writer = Client::connect(nodes[0].addr).await;
    let mut reader = Client::connect(nodes[nodes_n - 1].addr).await;
    let mut wdoc = Doc::new(ReplicaId::new(1));
    let mut rdoc = Doc::new(ReplicaId::new(2));
    writer.subscribe(&mut wdoc).await;
    reader.subscribe(&mut rdoc).await;

    // Latency: one edit at a time, 10 ms apart.
    let reading = tokio::spawn(async move {
        let seen = read_until(&mut reader, &mut rdoc, latency_n).await;
        (reader, rdoc, seen)
    });
    let mut sent = Vec::with_capacity(latency_n);
    for k in 0..latency_n {
        let u = mark(&mut wdoc, k);
        sent.push(Instant::now());
        let seq = writer.update(u).await;
        loop {
            match writer.recv().await {
                Frame::Ack { seq: s, .. } if s == seq => break,
                Frame::Error { code, .. } => panic!("update refused: {code:?}"),
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (mut reader, mut rdoc, seen) = reading.await.expect("reader");
    let mut lat: Vec<Duration> = (0..latency_n)
        .map(|k| seen[&k].saturating_duration_since(sent[k]))
        .collect();
    lat.sort_unstable();

    // Throughput: up to 64 in flight, until the reader has them all.
    let first = latency_n;
    let started = Instant::now();
    let reading = tokio::spawn(async move {
        read_until_from(&mut reader, &mut rdoc, first, first + flood_n).await;
    });
    let mut in_flight = 0usize;
    let mut k = first;
    while k < first + flood_n || in_flight > 0 {
        while in_flight < 64 && k < first + flood_n {
            let u = mark(&mut wdoc, k);
            writer.update(u).await;
            in_flight += 1;
            k += 1;
        }
        match writer.recv().await {
            Frame::Ack { .. } => in_flight -= 1,
            Frame::Error { code, .. } => panic!("update refused: {code:?}"),
            _ => {}
        }
    }
    reading.await.expect("reader");
    let per_sec = flood_n as f64 / started.elapsed().as_secs_f64();
    let rss = nodes.iter().map(Node::rss_mib).collect();
    Row {
        nodes: label,
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        per_sec,
        rss,
    }
}

/// [`read_until`] for markers `from..until`.
async fn read_until_from(reader: &mut Client, doc: &mut Doc, from: usize, until: usize) {
    let mut next = from;
    while next < until {
        let bytes = match reader.recv().await {
            Frame::Remote { update, .. } => update,
            _ => continue,
        };
        doc.apply(&bytes).expect("remote update applies");
        let text = doc.text("t").expect("text").to_string();
        while next < until && text.contains(&format!("[{next}]")) {
            next += 1;
        }
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let pg = Postgres::start();
    let redis = Redis::start();
    let mut rows = vec![runtime.block_on(run(1, None))];
    for n in [1, 2, 3] {
        rows.push(runtime.block_on(run(n, Some((&pg, &redis)))));
    }
    let ms = |d: Duration| format!("{:.2}", d.as_secs_f64() * 1e3);
    println!("### Cluster on loopback: writer on node 1, reader on the last node\n");
    println!(
        "| nodes | delivery p50 ms | p99 ms | p50 vs single node | flood updates/s | vs single node | VmRSS per node MiB |"
    );
    println!("|---|---|---|---|---|---|---|");
    let base = (rows[0].p50, rows[0].per_sec);
    for r in &rows {
        let rss: Vec<String> = r.rss.iter().map(|m| format!("{m:.1}")).collect();
        println!(
            "| {} | {} | {} | {:.2}× | {:.0} | {:.2}× | {} |",
            r.nodes,
            ms(r.p50),
            ms(r.p99),
            r.p50.as_secs_f64() / base.0.as_secs_f64().max(1e-9),
            r.per_sec,
            r.per_sec / base.1,
            rss.join(" / ")
        );
    }
}
