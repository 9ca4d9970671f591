//! The skeleton of the adversarial suite (`tests/adversarial.rs`): the real
//! `weft-relay` binary on 127.0.0.1:0 with HS256 tokens and a temporary
//! data directory; the subjects the attacks use; a bystander that writes
//! throughout an attack and times its acks; the relay's memory read from
//! `/proc/<pid>/status`; and a restart (SIGTERM, start again on the same
//! data directory) after which every acknowledged update must be there.
//!
//! A test is: `Scene::start(flags)`, the attack (recording in
//! `scene.ledger` every update the relay acknowledged), then
//! `scene.finish(memory bound)`, which checks the bystander, the memory
//! bound, restarts the relay and checks the ledger against what it serves.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::SinkExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{Mutex, MutexGuard};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::MaybeTlsStream;
use weft_core::doc::{ApplyStatus, Limits};
use weft_core::{Doc, ReplicaId};
use weft_protocol::{DocId, ErrorCode, ErrorScope, Frame};
use weft_relay::auth::{mint_token, Claims};

use super::{append, http_get, TestClient, WAIT};

/// The relay's HS256 secret in these tests.
pub const SECRET: &str = "adversarial-suite-secret-0123456789abcdef";

/// The document victim and mallory share (mallory's token writes only it).
pub const SHARED: &str = "shared";

/// The bystander's document (its token covers `bystander*`).
pub const BYSTANDER_DOC: &str = "bystander";

/// The worst ack latency a bystander may see while an attack runs.
pub const MAX_ACK_LATENCY: Duration = Duration::from_secs(1);

/// Pause between two bystander updates: ≤ 50 updates/s, under every rate
/// limit the tests set.
const BYSTANDER_PACE: Duration = Duration::from_millis(20);

/// A bystander writes at least this many updates, however short the
/// attack.
const BYSTANDER_MIN_ACKS: usize = 10;

/// How long one bystander update may go unanswered before it counts as
/// lost (far over `MAX_ACK_LATENCY`; the latency check reports it).
const BYSTANDER_GIVE_UP: Duration = Duration::from_secs(5);

/// Limits of the documents the tests decode what the relay serves into
/// (a document near `--max-doc-bytes` inflates past the defaults).
pub const GENEROUS: Limits = Limits {
    max_input_bytes: 1 << 30,
    max_decoded_bytes: 1 << 30,
    max_update_authors: 1 << 20,
    max_pending_updates: 1 << 16,
    max_pending_bytes: 1 << 30,
    allow_own_replica: false,
};

// ----- tokens ----------------------------------------------------------------

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 token signed with [`SECRET`].
pub fn token(sub: &str, docs: &[&str], write: bool, exp: u64) -> String {
    let claims = Claims {
        sub: sub.to_owned(),
        exp,
        nbf: None,
        docs: docs.iter().map(|d| (*d).to_owned()).collect(),
        write,
    };
    mint_token(SECRET.as_bytes(), &claims).expect("mint token")
}

fn in_an_hour() -> u64 {
    now_secs() + 3600
}

/// The honest writer whose edits mallory goes after.
pub fn victim_token() -> String {
    token("victim", &[SHARED], true, in_an_hour())
}

/// The attacker: a valid token that writes one document.
pub fn mallory_token() -> String {
    token("mallory", &[SHARED], true, in_an_hour())
}

/// Reads every document, writes none.
pub fn reader_token() -> String {
    token("reader", &["*"], false, in_an_hour())
}

pub fn bystander_token() -> String {
    token("bystander", &["bystander*"], true, in_an_hour())
}

/// Base64url without padding (JWT segments).
pub fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

// ----- serial execution --------------------------------------------------------

static SERIAL: Mutex<()> = Mutex::const_new(());

/// Tests hold this for their whole run: one relay (and one attack) at a
/// time on the machine, so latencies measure the relay, not the suite.
pub async fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().await
}

// ----- the relay process -------------------------------------------------------

/// Resident and peak resident memory of a process, MiB.
#[derive(Clone, Copy, Debug)]
pub struct Memory {
    pub rss_mib: f64,
    pub hwm_mib: f64,
}

/// Reads `VmRSS` and `VmHWM` from `/proc/<pid>/status`.
pub fn memory_of(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    let field = |name: &str| -> f64 {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"));
        let kib: f64 = line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .expect("kB value");
        kib / 1024.0
    };
    Memory {
        rss_mib: field("VmRSS:"),
        hwm_mib: field("VmHWM:"),
    }
}

/// The `weft-relay` binary, restartable on its data directory.
pub struct RelayProcess {
    child: Option<Child>,
    _stdout: Option<BufReader<ChildStdout>>,
    pub addr: SocketAddr,
    flags: Vec<String>,
    dir: tempfile::TempDir,
    pub starts: u32,
}

impl RelayProcess {
    /// Starts the relay with HS256 auth and `flags`.
    pub fn start(flags: &[&str]) -> RelayProcess {
        let mut relay = RelayProcess {
            child: None,
            _stdout: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            flags: flags.iter().map(|f| (*f).to_owned()).collect(),
            dir: tempfile::tempdir().expect("tempdir"),
            starts: 0,
        };
        relay.spawn();
        relay
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("relay.log")
    }

    fn spawn(&mut self) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("relay log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_weft-relay"))
            .args(["--listen", "127.0.0.1:0", "--jwt-secret", SECRET, "--data"])
            .arg(self.dir.path().join("data"))
            .args(&self.flags)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn weft-relay");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read address");
        let Some(addr) = line.trim().strip_prefix("weft-relay listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "relay did not start ({line:?}); flags {:?}; log:\n{}",
                self.flags,
                self.log_tail()
            );
        };
        self.addr = addr.parse().expect("address");
        self.child = Some(child);
        self._stdout = Some(stdout);
        self.starts += 1;
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("relay running").id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn memory(&self) -> Memory {
        memory_of(self.pid())
    }

    /// SIGTERM, wait for a clean exit, start again on the same data (or
    /// just start again, after [`RelayProcess::kill9`]).
    pub async fn restart(&mut self) {
        let Some(mut child) = self.child.take() else {
            self.spawn();
            return;
        };
        self._stdout = None;
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        let exit = loop {
            if let Some(exit) = child.try_wait().expect("wait") {
                break exit;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("relay did not stop on SIGTERM; log:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(
            exit.success(),
            "relay exited with {exit} on SIGTERM; log:\n{}",
            self.log_tail()
        );
        self.spawn();
    }

    /// SIGKILL: no chance to flush or finish anything. [`RelayProcess::restart`]
    /// starts it again.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("relay running");
        self._stdout = None;
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }

    /// The last few KiB of the relay's log.
    pub fn log_tail(&self) -> String {
        let Ok(mut f) = File::open(self.log_path()) else {
            return String::new();
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(8 * 1024)));
        let mut s = String::new();
        let _ = f.read_to_string(&mut s);
        s
    }

    /// The relay's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let (status, body) = http_get(self.addr, "/metrics", None).await;
        assert_eq!(status, 200, "/metrics");
        String::from_utf8(body).expect("metrics text")
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("---- relay log (tail) ----\n{}", self.log_tail());
        }
    }
}

/// Whether process `pid` holds an open TCP socket from local port
/// `local_port` to peer port `peer_port` (on 127.0.0.1): its
/// `/proc/<pid>/fd` links to the socket inode `/proc/net/tcp` lists for
/// that connection.
pub fn relay_holds_socket(pid: u32, local_port: u16, peer_port: u16) -> bool {
    let inodes: std::collections::HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|l| {
                    l.to_str()?
                        .strip_prefix("socket:[")?
                        .strip_suffix(']')?
                        .parse()
                        .ok()
                })
                .collect()
        })
        .unwrap_or_default();
    let tcp = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let port = |field: &str| u16::from_str_radix(field.rsplit(':').next().unwrap_or(""), 16).ok();
    tcp.lines().skip(1).any(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        f.len() > 9
            && port(f[1]) == Some(local_port)
            && port(f[2]) == Some(peer_port)
            && f[9].parse().is_ok_and(|inode: u64| inodes.contains(&inode))
    })
}

/// The value of metric `name` (first series whose labels contain
/// `labels`), or 0.
pub fn metric(text: &str, name: &str, labels: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .find(|l| l.contains(labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

// ----- clients -----------------------------------------------------------------

/// What the relay did with one update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Acked,
    /// An error of update or document scope naming the update.
    Refused(ErrorCode),
    /// The connection closed, with the connection-scope code if one came.
    Closed(Option<ErrorCode>),
    /// Nothing within the wait.
    Silent,
}

/// Reads `c` until the answer to update `seq`; other frames go to
/// `other` (a `Remote` may be applied there).
pub async fn outcome_of(
    c: &mut TestClient,
    seq: u64,
    wait: Duration,
    mut other: impl FnMut(Frame),
) -> Outcome {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Outcome::Silent;
        }
        match c.try_recv(left).await {
            Some(Frame::Ack { seq: s, .. }) if s == seq => return Outcome::Acked,
            Some(Frame::Error { code, seq: s, .. }) if s == Some(seq) => {
                return Outcome::Refused(code)
            }
            Some(Frame::Error { code, .. }) if code.scope() == ErrorScope::Connection => {
                return Outcome::Closed(Some(code))
            }
            Some(f) => other(f),
            None if Instant::now() < deadline => return Outcome::Closed(None),
            None => return Outcome::Silent,
        }
    }
}

/// Reads `c` until every update in `seqs` has its answer (or `wait`
/// passes: those left are `Silent`; or the connection closes: `Closed`).
/// Returns the answers in the order of `seqs`.
pub async fn outcomes(c: &mut TestClient, seqs: &[u64], wait: Duration) -> Vec<Outcome> {
    let mut got: HashMap<u64, Outcome> = HashMap::new();
    let deadline = Instant::now() + wait;
    let mut closed = None;
    while got.len() < seqs.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match c.try_recv(left).await {
            Some(Frame::Ack { seq, .. }) => {
                got.insert(seq, Outcome::Acked);
            }
            Some(Frame::Error {
                code,
                seq: Some(seq),
                ..
            }) => {
                got.insert(seq, Outcome::Refused(code));
            }
            Some(Frame::Error { code, .. }) if code.scope() == ErrorScope::Connection => {
                closed = Some(Outcome::Closed(Some(code)));
                break;
            }
            Some(_) => {}
            None if Instant::now() < deadline => {
                closed = Some(Outcome::Closed(None));
                break;
            }
            None => break,
        }
    }
    seqs.iter()
        .map(|s| {
            got.get(s)
                .cloned()
                .or_else(|| closed.clone())
                .unwrap_or(Outcome::Silent)
        })
        .collect()
}

/// A client subscribed to one document, with its own replica.
pub struct Writer {
    pub c: TestClient,
    pub doc: Doc,
    pub id: String,
    /// Updates from others (`Remote`) received so far.
    pub remotes: usize,
}

impl Writer {
    /// Connects with `token` and subscribes `doc` (panics if refused).
    pub async fn join(addr: SocketAddr, token: String, doc: &str) -> Writer {
        let mut c = TestClient::connect(addr, Some(token)).await;
        let mut local = Doc::new(ReplicaId::random()).with_limits(GENEROUS);
        c.subscribe(doc, &mut local).await;
        Writer {
            c,
            doc: local,
            id: doc.to_owned(),
            remotes: 0,
        }
    }

    /// A new connection with `token`, re-subscribing with this writer's
    /// document (same replica, same version).
    pub async fn reconnect(&mut self, addr: SocketAddr, token: String) {
        self.c = TestClient::connect(addr, Some(token)).await;
        let id = self.id.clone();
        self.c.subscribe(&id, &mut self.doc).await;
    }

    pub fn replica(&self) -> ReplicaId {
        self.doc.replica()
    }

    /// Sends raw update bytes; returns the seq.
    pub async fn send(&mut self, update: Vec<u8>) -> u64 {
        let id = self.id.clone();
        self.c.update(&id, update).await
    }

    /// Appends `s` to the text, sends the update; returns seq and bytes.
    pub async fn edit(&mut self, s: &str) -> (u64, Vec<u8>) {
        let u = append(&mut self.doc, s);
        let seq = self.send(u.clone()).await;
        (seq, u)
    }

    /// The relay's answer to `seq` (`Remote`s meanwhile are applied).
    pub async fn outcome(&mut self, seq: u64) -> Outcome {
        let doc = &mut self.doc;
        let remotes = &mut self.remotes;
        outcome_of(&mut self.c, seq, WAIT, |f| {
            if let Frame::Remote { update, .. } = f {
                doc.apply(&update).expect("Remote applies");
                *remotes += 1;
            }
        })
        .await
    }

    /// Sends `update` and expects `want`.
    pub async fn expect(&mut self, update: Vec<u8>, want: Outcome, what: &str) {
        let seq = self.send(update).await;
        let got = self.outcome(seq).await;
        assert_eq!(got, want, "{what}");
    }

    /// An edit that must be acked; recorded in `ledger`.
    pub async fn acked_edit(&mut self, s: &str, ledger: &mut Ledger) -> Vec<u8> {
        let (seq, u) = self.edit(s).await;
        let got = self.outcome(seq).await;
        assert_eq!(got, Outcome::Acked, "honest edit {s:?} of {}", self.id);
        ledger.record(&self.id, u.clone());
        u
    }

    /// Reads (applying `Remote`s) until the text contains every marker.
    pub async fn await_text(&mut self, markers: &[String]) {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.text();
            if markers.iter().all(|m| text.contains(m.as_str())) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "markers {markers:?} never arrived");
            match self.c.try_recv(left).await {
                Some(Frame::Remote { update, .. }) => {
                    self.doc.apply(&update).expect("Remote applies");
                    self.remotes += 1;
                }
                Some(Frame::Error { code, .. }) => panic!("waiting for markers: {code:?}"),
                Some(_) => {}
                None => {}
            }
        }
    }

    pub fn text(&self) -> String {
        self.doc
            .text("t")
            .map(|t| t.to_string())
            .unwrap_or_default()
    }
}

/// A WebSocket to `addr` from local address `ip` (any of 127.0.0.0/8),
/// upgraded but without `Hello`; `None` if the relay refused it.
pub async fn ws_from(ip: [u8; 4], addr: SocketAddr) -> Option<TestClient> {
    let stream = tcp_from(ip, addr).await;
    let upgrade =
        tokio_tungstenite::client_async(format!("ws://{addr}/ws"), MaybeTlsStream::Plain(stream));
    match tokio::time::timeout(WAIT, upgrade).await {
        Ok(Ok((ws, _))) => Some(TestClient::from_ws(ws)),
        _ => None,
    }
}

/// A TCP connection to `addr` from local address `ip`.
pub async fn tcp_from(ip: [u8; 4], addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::from((ip, 0))).expect("bind");
    tokio::time::timeout(WAIT, socket.connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect")
}

/// Sends a WebSocket ping (not a protocol frame).
pub async fn ws_ping(c: &mut TestClient) {
    let _ = c.ws.send(Message::Ping(Vec::new().into())).await;
}

// ----- the ledger of acknowledged updates ---------------------------------------

/// Every update the relay acknowledged, per document.
#[derive(Debug, Default)]
pub struct Ledger {
    docs: BTreeMap<String, Vec<Vec<u8>>>,
}

impl Ledger {
    pub fn record(&mut self, doc: &str, update: Vec<u8>) {
        self.docs.entry(doc.to_owned()).or_default().push(update);
    }

    pub fn len(&self) -> usize {
        self.docs.values().map(Vec::len).sum()
    }

    /// Checks against the relay at `addr`: for each document, a fresh
    /// subscriber's copy holds every acknowledged update, with the same
    /// content (re-applying each is a duplicate, not a conflict and not
    /// pending).
    pub async fn verify(&self, addr: SocketAddr) {
        let mut c = TestClient::connect(addr, Some(reader_token())).await;
        for (doc, updates) in &self.docs {
            let mut served = fetch(&mut c, doc).await;
            for (i, u) in updates.iter().enumerate() {
                // A duplicate changes nothing, so one copy serves every check.
                let report = served.apply(u).unwrap_or_else(|e| {
                    panic!("acked update {i} of {doc:?} does not match what the relay serves: {e}")
                });
                assert_eq!(
                    report.status,
                    ApplyStatus::Duplicate,
                    "acked update {i} of {doc:?} is missing after the restart"
                );
            }
            c.send(&Frame::Unsubscribe {
                doc: DocId::new(doc).unwrap(),
            })
            .await;
        }
    }
}

/// Subscribes `doc` from an empty version (retrying while subscriptions
/// are rate limited) and returns what the relay served.
pub async fn fetch(c: &mut TestClient, doc: &str) -> Doc {
    let id = DocId::new(doc).unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        c.send(&Frame::Subscribe {
            doc: id.clone(),
            version: Default::default(),
        })
        .await;
        loop {
            match c.recv().await {
                Frame::Synced { doc: d, update, .. } if d == id => {
                    let mut local = Doc::new(ReplicaId::random()).with_limits(GENEROUS);
                    local.apply(&update).expect("Synced applies");
                    return local;
                }
                Frame::Error {
                    code: ErrorCode::SubscribeRateLimited,
                    ..
                } => break,
                Frame::Error { code, .. } => panic!("subscribing {doc:?}: {code:?}"),
                _ => {}
            }
        }
        assert!(
            Instant::now() < deadline,
            "subscribing {doc:?} stayed rate limited"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ----- the bystander -----------------------------------------------------------

/// A client that writes throughout an attack, one update at a time, and
/// times each ack.
pub struct Bystander {
    stop: Arc<AtomicBool>,
    task: JoinHandle<BystanderReport>,
}

#[derive(Debug)]
pub struct BystanderReport {
    pub doc: String,
    pub acked: Vec<Vec<u8>>,
    pub worst: Duration,
    pub failure: Option<String>,
}

impl Bystander {
    /// Connects, subscribes `doc` and starts writing.
    pub async fn start(addr: SocketAddr, doc: &str) -> Bystander {
        let mut w = Writer::join(addr, bystander_token(), doc).await;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            let mut report = BystanderReport {
                doc: w.id.clone(),
                acked: Vec::new(),
                worst: Duration::ZERO,
                failure: None,
            };
            let mut i = 0u64;
            while !stopping.load(Ordering::Relaxed) || report.acked.len() < BYSTANDER_MIN_ACKS {
                i += 1;
                let u = append(&mut w.doc, &format!("<{i}>"));
                let sent = Instant::now();
                let seq = w.send(u.clone()).await;
                let got = outcome_of(&mut w.c, seq, BYSTANDER_GIVE_UP, |_| {}).await;
                let took = sent.elapsed();
                report.worst = report.worst.max(took);
                if got != Outcome::Acked {
                    report.failure = Some(format!("update {i}: {got:?} after {took:?}"));
                    break;
                }
                report.acked.push(u);
                tokio::time::sleep(BYSTANDER_PACE).await;
            }
            report
        });
        Bystander { stop, task }
    }

    /// Stops it; what went wrong, if anything: an update not acked, fewer
    /// than [`BYSTANDER_MIN_ACKS`] acks, or one slower than
    /// [`MAX_ACK_LATENCY`].
    pub async fn finish(self) -> (BystanderReport, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let report = tokio::time::timeout(WAIT, self.task)
            .await
            .expect("bystander stops")
            .expect("bystander task");
        let mut problems = Vec::new();
        if let Some(f) = &report.failure {
            problems.push(format!("the bystander was not served: {f}"));
        }
        if report.acked.len() < BYSTANDER_MIN_ACKS {
            problems.push(format!(
                "the bystander got only {} acks",
                report.acked.len()
            ));
        }
        if report.worst >= MAX_ACK_LATENCY {
            problems.push(format!(
                "worst bystander ack latency {:?} (of {} acks)",
                report.worst,
                report.acked.len()
            ));
        }
        (report, problems)
    }
}

// ----- a scene: relay + bystander + ledger -----------------------------------------

/// One attack's setting: the relay, a bystander writing throughout, and
/// the ledger of acknowledged updates.
pub struct Scene {
    pub relay: RelayProcess,
    pub ledger: Ledger,
    bystander: Option<Bystander>,
    started: Instant,
    name: &'static str,
    /// Memory when [`Scene::kill9`] killed the relay.
    killed: Option<Memory>,
    /// The bystander's acks and worst latency, once stopped.
    bystander_seen: Option<(usize, Duration)>,
    /// Bystander and memory checks that failed (reported by `finish`,
    /// after the restart check ran too).
    problems: Vec<String>,
    _serial: MutexGuard<'static, ()>,
}

/// What [`Scene::finish`] measured.
#[derive(Debug)]
pub struct Finished {
    pub relay: RelayProcess,
    pub worst_ack: Duration,
    pub memory: Memory,
}

impl Scene {
    /// Starts the relay with `flags` and the bystander on [`BYSTANDER_DOC`]
    /// (once no other test runs).
    pub async fn start(name: &'static str, flags: &[&str]) -> Scene {
        Scene::with(serial().await, name, flags, BYSTANDER_DOC).await
    }

    /// As [`Scene::start`] with the [`serial`] guard already held (so a
    /// test can build its payloads first without competing with another
    /// test's relay), the bystander writing `bystander_doc`.
    pub async fn with(
        serial: MutexGuard<'static, ()>,
        name: &'static str,
        flags: &[&str],
        bystander_doc: &str,
    ) -> Scene {
        let relay = RelayProcess::start(flags);
        let bystander = Bystander::start(relay.addr, bystander_doc).await;
        Scene {
            relay,
            ledger: Ledger::default(),
            bystander: Some(bystander),
            started: Instant::now(),
            name,
            killed: None,
            bystander_seen: None,
            problems: Vec::new(),
            _serial: serial,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.relay.addr
    }

    /// Stops the bystander (it must have been served throughout, within
    /// [`MAX_ACK_LATENCY`]) and records its acked updates.
    pub async fn stop_bystander(&mut self) -> (usize, Duration) {
        let (report, problems) = self.bystander.take().expect("bystander").finish().await;
        for u in &report.acked {
            self.ledger.record(&report.doc, u.clone());
        }
        self.problems.extend(problems);
        self.bystander_seen = Some((report.acked.len(), report.worst));
        (report.acked.len(), report.worst)
    }

    /// Checks the relay's memory against `bound_mib`, then kills it with
    /// SIGKILL ([`Scene::finish`] starts it again).
    pub fn kill9(&mut self, bound_mib: f64) {
        let memory = self.check_memory(bound_mib);
        self.killed = Some(memory);
        self.relay.kill9();
    }

    /// The relay's memory; a problem if over `bound_mib`.
    fn check_memory(&mut self, bound_mib: f64) -> Memory {
        assert!(
            self.relay.alive(),
            "{}: the relay died; log:\n{}",
            self.name,
            self.relay.log_tail()
        );
        let m = self.relay.memory();
        if m.rss_mib > bound_mib || m.hwm_mib > bound_mib {
            self.problems.push(format!(
                "relay memory VmRSS {:.1} MiB / VmHWM {:.1} MiB over the bound {bound_mib:.1} MiB",
                m.rss_mib, m.hwm_mib
            ));
        }
        m
    }

    /// [`Scene::stop_bystander`] (unless stopped already), then checks the
    /// relay's memory against `bound_mib` (unless [`Scene::kill9`] did),
    /// restarts it on its data (SIGTERM; or starts the killed one) and
    /// checks that every acknowledged update is there; then fails with
    /// every bystander and memory problem found. Returns the restarted
    /// relay.
    pub async fn finish(mut self, bound_mib: f64) -> Finished {
        let (acks, worst_ack) = match self.bystander_seen {
            Some(seen) => seen,
            None => self.stop_bystander().await,
        };
        let memory = match self.killed {
            Some(m) => m,
            None => self.check_memory(bound_mib),
        };
        self.relay.restart().await;
        self.ledger.verify(self.relay.addr).await;
        eprintln!(
            "{}: {:.1?}; bystander {} acks, worst ack {:.1?}; relay VmRSS {:.1} MiB, VmHWM {:.1} MiB (bound {bound_mib:.1} MiB); {} acked updates present after {}",
            self.name,
            self.started.elapsed(),
            acks,
            worst_ack,
            memory.rss_mib,
            memory.hwm_mib,
            self.ledger.len(),
            if self.killed.is_some() { "kill -9" } else { "SIGTERM" },
        );
        assert!(
            self.problems.is_empty(),
            "{}: {}",
            self.name,
            self.problems.join("; ")
        );
        Finished {
            relay: self.relay,
            worst_ack,
            memory,
        }
    }
}

impl std::fmt::Debug for RelayProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayProcess")
            .field("addr", &self.addr)
            .field("starts", &self.starts)
            .finish()
    }
}
