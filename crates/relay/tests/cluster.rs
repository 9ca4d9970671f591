//! Cluster mode end to end: real `weft-relay` binaries on a real Postgres
//! and a real Redis, both started by this test process on free loopback
//! ports in temporary directories (`persist/tests/common/services.rs`).
//!
//! * three nodes, writers spread across them on one document: all
//!   converge with each other and with Postgres; presence crosses nodes;
//!   one node is SIGKILLed mid-burst: its writers fail over to the others,
//!   every acknowledged update is in Postgres and reaches everyone, and the
//!   dead node's presence expires;
//! * Redis SIGKILLed and restarted (empty) mid-burst: nothing is lost, a
//!   reader on another node gets every update (from the store);
//! * Postgres stopped: writes get `StoreUnavailable` (retryable), and are
//!   acknowledged again once it is back;
//! * a read-only token is read-only on every node; a node shutting down
//!   tells its clients (`ShuttingDown`, close 1001).

mod common;
#[path = "../../persist/tests/common/services.rs"]
mod services;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{append, new_doc, TestClient};
use futures_util::SinkExt;
use services::{Postgres, Redis};
use tokio_tungstenite::tungstenite::Message;
use weft_core::{Doc, ReplicaId};
use weft_persist::{Options, PostgresStore, Store};
use weft_protocol::{DocId, ErrorCode, Frame, PresenceState};

const SECRET: &str = "cluster-test-secret-of-at-least-32-bytes";

struct Node {
    child: Child,
    addr: SocketAddr,
}

impl Node {
    fn start(store: &str, bus: &str, auth: bool) -> Node {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_weft-relay"));
        cmd.args(["--listen", "127.0.0.1:0", "--store", store, "--bus", bus])
            .args(["--cluster-poll-ms", "500"])
            .env(
                "RUST_LOG",
                std::env::var("WEFT_TEST_RELAY_LOG").unwrap_or_else(|_| "error".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if auth {
            cmd.args(["--jwt-secret", SECRET]);
        } else {
            cmd.arg("--insecure-no-auth");
        }
        let mut child = cmd.spawn().expect("spawn weft-relay");
        let addr = common::listening(&mut child);
        Node { child, addr }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Connects and says Hello; `None` if the node is unreachable.
async fn try_connect(addr: SocketAddr, token: Option<String>) -> Option<TestClient> {
    let (ws, _) = tokio::time::timeout(
        Duration::from_secs(3),
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws")),
    )
    .await
    .ok()?
    .ok()?;
    let mut c = TestClient::from_ws(ws);
    c.ws.send(Message::Binary(
        Frame::hello(Some("cluster-test".into()), token)
            .encode()
            .into(),
    ))
    .await
    .ok()?;
    match c.try_recv(Duration::from_secs(5)).await? {
        Frame::Welcome { peer, .. } => c.peer = Some(peer),
        _ => return None,
    }
    Some(c)
}

/// A writer that fails over between nodes, resending what was not acked.
struct Writer {
    name: String,
    nodes: Vec<SocketAddr>,
    at: usize,
    doc: Doc,
    client: Option<TestClient>,
    next_seq: u64,
    /// Sent, not acknowledged: by seq on the current connection, with the
    /// order they were first written in (resent in that order).
    pending: HashMap<u64, (u64, String, Vec<u8>)>,
    /// Refused with a retryable code: to send again.
    retry: Vec<(u64, String, Vec<u8>)>,
    written: u64,
    acked: Vec<String>,
    failovers: usize,
    /// Updates written so far, seen by the test while the writer runs.
    progress: Arc<AtomicUsize>,
}

impl Writer {
    async fn new(name: &str, nodes: Vec<SocketAddr>, at: usize) -> Writer {
        let mut w = Writer {
            name: name.to_owned(),
            nodes,
            at,
            doc: new_doc(),
            client: None,
            next_seq: 0,
            pending: HashMap::new(),
            retry: Vec::new(),
            written: 0,
            acked: Vec::new(),
            failovers: 0,
            progress: Arc::new(AtomicUsize::new(0)),
        };
        w.connect().await;
        w
    }

    /// (Re)connects to the current node or the next live one, subscribes
    /// from the local version and resends everything unacknowledged.
    async fn connect(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(
                Instant::now() < deadline,
                "{}: no node reachable",
                self.name
            );
            let addr = self.nodes[self.at % self.nodes.len()];
            if let Some(mut c) = try_connect(addr, None).await {
                let sub = Frame::Subscribe {
                    doc: DocId::new("shared").unwrap(),
                    version: self.doc.version().clone(),
                };
                if c.ws
                    .send(Message::Binary(sub.encode().into()))
                    .await
                    .is_ok()
                {
                    let mut synced = false;
                    while let Some(f) = c.try_recv(Duration::from_secs(5)).await {
                        if let Frame::Synced { update, .. } = f {
                            self.doc.apply(&update).expect("Synced applies");
                            synced = true;
                            break;
                        }
                        self.handle(f);
                    }
                    if synced {
                        self.client = Some(c);
                        let mut resend: Vec<(u64, String, Vec<u8>)> =
                            self.pending.drain().map(|(_, v)| v).collect();
                        resend.append(&mut self.retry);
                        resend.sort_by_key(|(order, _, _)| *order);
                        for (order, marker, u) in resend {
                            if !self.send(order, marker, u).await {
                                break;
                            }
                        }
                        if self.client.is_some() {
                            return;
                        }
                        continue;
                    }
                }
            }
            self.at += 1;
            self.failovers += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends one update; `false` (and disconnected) if the socket failed.
    async fn send(&mut self, order: u64, marker: String, update: Vec<u8>) -> bool {
        self.next_seq += 1;
        let seq = self.next_seq;
        let frame = Frame::Update {
            doc: DocId::new("shared").unwrap(),
            seq,
            update: update.clone(),
        };
        self.pending.insert(seq, (order, marker, update));
        let Some(c) = &mut self.client else {
            return false;
        };
        if c.ws
            .send(Message::Binary(frame.encode().into()))
            .await
            .is_err()
        {
            self.client = None;
            return false;
        }
        true
    }

    fn handle(&mut self, frame: Frame) {
        match frame {
            Frame::Ack { seq, .. } => {
                if let Some((_, marker, _)) = self.pending.remove(&seq) {
                    self.acked.push(marker);
                }
            }
            Frame::Remote { update, .. } => {
                self.doc.apply(&update).expect("Remote applies");
            }
            Frame::Error {
                code: ErrorCode::StoreUnavailable,
                seq: Some(seq),
                ..
            } => {
                // Retryable: send it again later.
                if let Some(entry) = self.pending.remove(&seq) {
                    self.retry.push(entry);
                }
            }
            Frame::Error { code, .. } => panic!("{}: unexpected error {code:?}", self.name),
            _ => {}
        }
    }

    /// Reads what arrived within `wait`; reconnects if the node is gone.
    async fn pump(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let Some(c) = &mut self.client else {
                self.at += 1;
                self.failovers += 1;
                self.connect().await;
                continue;
            };
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return;
            }
            match tokio::time::timeout(left, c.try_recv(left)).await {
                Ok(Some(f)) => self.handle(f),
                Ok(None) => {
                    if tokio::time::Instant::now() >= deadline {
                        return;
                    }
                    // Closed: fail over.
                    self.client = None;
                }
                Err(_) => return,
            }
        }
    }

    /// Writes `rounds` bursts of `burst` edits.
    async fn write(&mut self, rounds: usize, burst: usize) {
        for r in 0..rounds {
            for k in 0..burst {
                let marker = format!("[{}.{}.{r}.{k}]", self.name, self.written);
                let u = append(&mut self.doc, &marker);
                self.written += 1;
                self.progress.fetch_add(1, Ordering::Relaxed);
                if !self.send(self.written, marker, u).await {
                    self.pump(Duration::from_millis(1)).await;
                }
            }
            self.pump(Duration::from_millis(15)).await;
        }
    }

    /// Until everything is acknowledged (resending retryable refusals).
    async fn settle(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.pending.is_empty() || !self.retry.is_empty() {
            assert!(
                Instant::now() < deadline,
                "{}: {} updates never acknowledged",
                self.name,
                self.pending.len() + self.retry.len()
            );
            let mut retry = std::mem::take(&mut self.retry);
            retry.sort_by_key(|(order, _, _)| *order);
            for (order, m, u) in retry {
                self.send(order, m, u).await;
            }
            self.pump(Duration::from_millis(100)).await;
        }
    }

    fn text(&self) -> String {
        self.doc
            .text("t")
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    /// Until the local document holds every marker in `all`.
    async fn converge(&mut self, all: &[String]) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.text();
            let missing = all.iter().filter(|m| !text.contains(m.as_str())).count();
            if missing == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} misses {missing} acknowledged updates",
                self.name
            );
            self.pump(Duration::from_millis(100)).await;
        }
    }
}

/// The document's text as Postgres holds it (the store blocks: off the
/// test's async workers).
async fn store_text(url: &str) -> String {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let store = PostgresStore::open(&url, Options::default()).unwrap();
        store
            .load("shared", ReplicaId::new(1))
            .unwrap()
            .and_then(|d| d.text("t").ok().map(|t| t.to_string()))
            .unwrap_or_default()
    })
    .await
    .unwrap()
}

fn presence(user: &str) -> PresenceState {
    PresenceState {
        user: user.into(),
        color: "#336699".into(),
        cursor: None,
        extra: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_converge_and_a_killed_node_loses_nothing() {
    let started = Instant::now();
    let store = Postgres::shared().new_database();
    let redis = Redis::start();
    let mut nodes: Vec<Node> = (0..3)
        .map(|_| Node::start(&store, &redis.url(), false))
        .collect();
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();

    // Presence crosses nodes: a client of node 0, seen from node 2.
    let mut shown = try_connect(addrs[0], None).await.unwrap();
    let mut d = new_doc();
    shown.subscribe("shared", &mut d).await;
    let mut watcher = try_connect(addrs[2], None).await.unwrap();
    let mut wd = new_doc();
    watcher.subscribe("shared", &mut wd).await;
    shown
        .send(&Frame::Presence {
            doc: DocId::new("shared").unwrap(),
            state: Some(presence("ada")),
        })
        .await;
    let remote_id = loop {
        match watcher.recv().await {
            Frame::PresenceUpdate { peers, .. } if peers.iter().any(|(_, s)| s.user == "ada") => {
                break peers[0].0;
            }
            _ => continue,
        }
    };

    // Six writers, two per node.
    let mut writers = Vec::new();
    for i in 0..6 {
        writers.push(Writer::new(&format!("w{i}"), addrs.clone(), i % 3).await);
    }
    let progress: Vec<Arc<AtomicUsize>> = writers.iter().map(|w| w.progress.clone()).collect();
    let mut tasks = Vec::new();
    for mut w in writers {
        tasks.push(tokio::spawn(async move {
            w.write(12, 8).await;
            w
        }));
    }
    // Mid-burst, node 0 dies: once a quarter of the updates are written
    // (the rest take at least 9 rounds × 15 ms more), however fast the
    // machine is.
    let deadline = Instant::now() + Duration::from_secs(30);
    while progress
        .iter()
        .map(|p| p.load(Ordering::Relaxed))
        .sum::<usize>()
        < 6 * 12 * 8 / 4
    {
        assert!(Instant::now() < deadline, "the writers made no progress");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    nodes[0].kill();
    let mut writers = Vec::new();
    for t in tasks {
        let mut w = t.await.unwrap();
        w.settle().await;
        writers.push(w);
    }
    let all: Vec<String> = writers.iter().flat_map(|w| w.acked.clone()).collect();
    assert_eq!(all.len(), 6 * 12 * 8, "every update acknowledged once");
    assert!(
        writers[0].failovers + writers[3].failovers >= 2,
        "node 0's writers failed over"
    );
    for w in &mut writers {
        w.converge(&all).await;
    }
    let text = writers[0].text();
    for w in &writers {
        assert_eq!(w.text(), text, "{} converged to the same text", w.name);
    }
    // Postgres holds all of it, and a fresh client of each live node too.
    let stored = store_text(&store).await;
    assert_eq!(stored, text);
    for addr in &addrs[1..] {
        let mut c = try_connect(*addr, None).await.unwrap();
        let mut fresh = new_doc();
        c.subscribe("shared", &mut fresh).await;
        assert_eq!(fresh.text("t").unwrap().to_string(), text);
    }
    // The dead node's presence expires on the others.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        assert!(Instant::now() < deadline, "dead node's presence stayed");
        match watcher.try_recv(Duration::from_millis(500)).await {
            Some(Frame::PresenceRemoved { peers, .. }) if peers.contains(&remote_id) => break,
            _ => continue,
        }
    }
    eprintln!(
        "three_nodes: {} updates, failovers {:?}, {:?}",
        all.len(),
        writers.iter().map(|w| w.failovers).collect::<Vec<_>>(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_mid_burst_loses_nothing() {
    let store = Postgres::shared().new_database();
    let mut redis = Redis::start();
    let a = Node::start(&store, &redis.url(), false);
    let b = Node::start(&store, &redis.url(), false);
    let mut writer = Writer::new("r", vec![a.addr], 0).await;
    // The reader only reads, on the other node.
    let mut reader = Writer::new("reader", vec![b.addr], 0).await;
    writer.write(5, 8).await;
    redis.kill();
    writer.write(5, 8).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart();
    writer.write(5, 8).await;
    writer.settle().await;
    assert_eq!(writer.acked.len(), 120);
    reader.converge(&writer.acked).await;
    assert_eq!(reader.text(), writer.text());
    assert_eq!(store_text(&store).await, writer.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_means_retryable_refusals_then_writes_resume() {
    let mut pg = Postgres::start();
    let store = pg.new_database();
    let redis = Redis::start();
    let node = Node::start(&store, &redis.url(), false);
    let mut c = try_connect(node.addr, None).await.unwrap();
    let mut doc = new_doc();
    c.subscribe("shared", &mut doc).await;
    let first = append(&mut doc, "[before]");
    let s = c.update("shared", first).await;
    assert!(matches!(c.recv().await, Frame::Ack { seq, .. } if seq == s));

    pg.stop();
    let during = append(&mut doc, "[during]");
    let s = c.update("shared", during.clone()).await;
    let (code, _, seq) = c.expect_error().await;
    assert_eq!((code, seq), (ErrorCode::StoreUnavailable, Some(s)));
    assert_eq!(
        code.scope(),
        weft_protocol::ErrorScope::UpdateRetry,
        "clients retry it"
    );

    pg.restart();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "writes never resumed");
        let s = c.update("shared", during.clone()).await;
        match c.recv().await {
            Frame::Ack { seq, .. } if seq == s => break,
            Frame::Error {
                code: ErrorCode::StoreUnavailable,
                ..
            } => tokio::time::sleep(Duration::from_millis(200)).await,
            other => panic!("unexpected {other:?}"),
        }
    }
    let text = store_text(&store).await;
    assert!(
        text.contains("[before]") && text.contains("[during]"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_is_read_only_on_every_node_and_shutdown_tells_clients() {
    use weft_relay::auth::{mint_token, Claims};
    let store = Postgres::shared().new_database();
    let redis = Redis::start();
    let mut nodes: Vec<Node> = (0..3)
        .map(|_| Node::start(&store, &redis.url(), true))
        .collect();
    let writer_token = mint_token(
        SECRET.as_bytes(),
        &Claims::new("w", vec!["*".into()], true, 600),
    )
    .unwrap();
    let reader_token = mint_token(
        SECRET.as_bytes(),
        &Claims::new("r", vec!["*".into()], false, 600),
    )
    .unwrap();
    let mut w = try_connect(nodes[0].addr, Some(writer_token))
        .await
        .unwrap();
    let mut wd = new_doc();
    w.subscribe("shared", &mut wd).await;
    let u = append(&mut wd, "[w]");
    let s = w.update("shared", u).await;
    assert!(matches!(w.recv().await, Frame::Ack { seq, .. } if seq == s));
    let mut seen = HashSet::new();
    for (i, n) in nodes.iter().enumerate() {
        let mut r = try_connect(n.addr, Some(reader_token.clone()))
            .await
            .unwrap();
        let mut doc = new_doc();
        r.subscribe("shared", &mut doc).await;
        assert_eq!(
            doc.text("t").unwrap().to_string(),
            "[w]",
            "node {i} serves it"
        );
        let u = append(&mut doc, "[r]");
        let s = r.update("shared", u).await;
        let (code, _, seq) = r.expect_error().await;
        assert_eq!((code, seq), (ErrorCode::ReadOnly, Some(s)), "node {i}");
        seen.insert(i);
    }
    assert_eq!(seen.len(), 3);
    assert!(!store_text(&store).await.contains("[r]"));

    // Yjs rooms are not served in cluster mode (their state would fork
    // across nodes): refused on every route, weft documents unaffected.
    let writer = mint_token(
        SECRET.as_bytes(),
        &Claims::new("w", vec!["*".into()], true, 600),
    )
    .unwrap();
    let (status, body) =
        common::http_get(nodes[2].addr, "/v1/yjs/shared/update", Some(&writer)).await;
    assert_eq!(status, 501, "{}", String::from_utf8_lossy(&body));
    let (status, _) = common::http_get(nodes[2].addr, "/yjs/shared", Some(&writer)).await;
    assert_eq!(status, 501);
    let (status, _) = common::http_get(nodes[2].addr, "/yjs/shared", None).await;
    assert_eq!(status, 401, "no token: still unauthorized first");

    // A node shutting down tells its clients to go elsewhere.
    let pid = nodes[1].child.id();
    let mut c = try_connect(nodes[1].addr, None).await;
    assert!(c.is_none(), "auth is on: no anonymous client");
    let mut r = try_connect(nodes[1].addr, Some(reader_token))
        .await
        .unwrap();
    let mut doc = new_doc();
    r.subscribe("shared", &mut doc).await;
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let (code, _, _) = r.expect_error().await;
    assert_eq!(code, ErrorCode::ShuttingDown);
    let _ = nodes[1].child.wait();
    c.take();
}
