//! A hostile relay (issue #11): a small WebSocket server on 127.0.0.1
//! speaking weft-protocol frames that, after the handshake and the
//! catch-up, attacks the client with
//!
//! * (a) 4,200 updates that all wait on a dependency it never sends,
//! * (b) an update of 65 KB that inflates to 64 MiB (as a `Remote`, and as
//!   another document's catch-up),
//! * (c) presence for 100,000 peers,
//! * (d) updates claiming the client's own replica id (a continuation of
//!   its transactions and a different version of one it made), plus a
//!   `Synced` version claiming its future transactions.
//!
//! After each attack: the client process's memory grew by at most
//! [`MEMORY_BOUND`] (`VmRSS` now and the peak `VmHWM`, reset before the
//! attack, from `/proc/self/status`; the client, the hostile relay and the
//! test share the process); every refused update was reported; the
//! client's unsynced local edits — made before and after the attack — are
//! in its SQLite store; the store reopens with nothing skipped; and the
//! reopened client syncs normally with a real relay (`weft_relay`
//! in-process), which ends up with exactly those edits. Every wait is
//! bounded. The scenarios run one at a time (they measure one process).

use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio_tungstenite::tungstenite::Message;
use weft_client::{
    Access, Backoff, Client, ClientEvent, ClientLimits, ErrorCode, Replica, SyncConfig, SyncStatus,
};
use weft_core::doc::Limits;
use weft_core::{DecodeError, Doc, DocError, ReplicaId, Update, VersionVector};
use weft_protocol::{DocId, Frame, Limits as WireLimits, PeerId, PresenceState, PROTOCOL_VERSION};
use weft_relay::{Relay, RelayConfig};

/// Most the process may grow by during one attack. Without the client's
/// limits the same attacks cost: (a) the 4,200 updates stored and the
/// store unloadable, (b) about 200 MiB per applied 64 MiB update, (c) about
/// 1.1 KiB per peer, 110 MiB for the 100,000.
const MEMORY_BOUND: u64 = 64 << 20;
/// Bound on every wait for the client.
const WAIT: Duration = Duration::from_secs(120);
/// The nonce of the `Ping` the hostile relay sends after an attack: its
/// `Pong` means the client has processed every frame before it.
const MARKER: u64 = 0x5EED_F00D;
/// The client's `PeerId` on the hostile relay.
const CLIENT_PEER: PeerId = PeerId(1);

/// The scenarios share one process's memory: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn run(scenario: impl std::future::Future<Output = ()>) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(scenario);
}

// ----- memory -------------------------------------------------------------

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// Resident memory now and at its peak since [`Memory::start`] (the peak is
/// reset through `/proc/self/clear_refs`; if that is not allowed, the peak
/// since the process started is an upper bound).
struct Memory {
    rss: u64,
}

impl Memory {
    fn start() -> Memory {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        Memory {
            rss: status_kib("VmRSS:") * 1024,
        }
    }

    /// Asserts growth (now and peak) within [`MEMORY_BOUND`]; returns it.
    fn check(&self, what: &str) -> (u64, u64) {
        let rss = status_kib("VmRSS:") * 1024;
        let peak = status_kib("VmHWM:") * 1024;
        let grew = rss.saturating_sub(self.rss);
        let peak_grew = peak.saturating_sub(self.rss);
        eprintln!(
            "{what}: VmRSS {} -> {} MiB (+{} MiB), peak +{} MiB",
            self.rss >> 20,
            rss >> 20,
            grew >> 20,
            peak_grew >> 20
        );
        assert!(
            grew <= MEMORY_BOUND,
            "{what}: resident memory grew by {grew} bytes"
        );
        assert!(
            peak_grew <= MEMORY_BOUND,
            "{what}: peak memory grew by {peak_grew} bytes"
        );
        (grew, peak_grew)
    }
}

// ----- the hostile relay ----------------------------------------------------

/// What the hostile relay answers a `Subscribe` with: the catch-up and the
/// frames that follow it.
struct Attack {
    synced: Vec<u8>,
    version: VersionVector,
    /// Made as they are sent, so the hostile relay holds one at a time.
    frames: Box<dyn Iterator<Item = Frame> + Send>,
}

type Script = dyn Fn(&DocId, &VersionVector) -> Attack + Send + Sync;

/// A relay that completes the handshake, answers each `Subscribe` with its
/// script, never acknowledges anything, answers pings, and records the
/// client's uploads.
struct Hostile {
    addr: SocketAddr,
    /// Attacks the client has processed to the end (its `Pong` to
    /// [`MARKER`] arrived).
    done: watch::Receiver<u32>,
    /// Every update the client uploaded.
    uploads: Arc<Mutex<Vec<Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Hostile {
    async fn start(script: Arc<Script>) -> Hostile {
        Hostile::speaking(script, PROTOCOL_VERSION).await
    }

    /// A hostile relay whose `Welcome` names protocol `version`.
    async fn speaking(script: Arc<Script>, version: u16) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (done_tx, done) = watch::channel(0u32);
        let done_tx = Arc::new(done_tx);
        let uploads = Arc::new(Mutex::new(Vec::new()));
        let recorded = uploads.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (script, done, uploads) = (script.clone(), done_tx.clone(), recorded.clone());
                tokio::spawn(async move {
                    let _ = serve(tcp, script, done, uploads, version).await;
                });
            }
        });
        Hostile {
            addr,
            done,
            uploads,
            task,
        }
    }

    fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Waits (bounded) until the client has processed `n` attacks.
    async fn processed(&mut self, n: u32) {
        tokio::time::timeout(WAIT, self.done.wait_for(|d| *d >= n))
            .await
            .expect("the client processes the attack in time")
            .expect("hostile relay running");
    }

    fn uploads(&self) -> Vec<Vec<u8>> {
        self.uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    tcp: tokio::net::TcpStream,
    script: Arc<Script>,
    done: Arc<watch::Sender<u32>>,
    uploads: Arc<Mutex<Vec<Vec<u8>>>>,
    version: u16,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let ws = tokio_tungstenite::accept_async(tcp).await?;
    let (mut tx, mut rx) = ws.split();
    let limits = WireLimits::default();
    let send = |frame: &Frame| Message::Binary(frame.encode().into());
    while let Some(message) = rx.next().await {
        let Message::Binary(bytes) = message? else {
            continue;
        };
        match Frame::decode(&bytes, &limits)? {
            Frame::Hello { .. } => {
                tx.send(send(&Frame::Welcome {
                    protocol_version: version,
                    server_name: "hostile".into(),
                    peer: CLIENT_PEER,
                    limits,
                }))
                .await?;
            }
            Frame::Subscribe { doc, version } => {
                let attack = script(&doc, &version);
                tx.send(send(&Frame::Synced {
                    doc,
                    update: attack.synced,
                    version: attack.version,
                }))
                .await?;
                for frame in attack.frames {
                    tx.send(send(&frame)).await?;
                }
                tx.send(send(&Frame::Ping { nonce: MARKER })).await?;
            }
            Frame::Pong { nonce: MARKER } => {
                done.send_modify(|d| *d += 1);
            }
            Frame::Ping { nonce } => tx.send(send(&Frame::Pong { nonce })).await?,
            Frame::Update { update, .. } => {
                uploads
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(update);
            }
            _ => {}
        }
    }
    Ok(())
}

/// A catch-up that gives nothing.
fn empty_diff(version: &VersionVector) -> Vec<u8> {
    Doc::new(ReplicaId::new(0xE0E0)).diff(version)
}

// ----- the client under test ------------------------------------------------

fn config(url: &str) -> SyncConfig {
    SyncConfig::new(url).with_backoff(Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(300),
    })
}

/// Local edit `n`: a word in the text and one increment.
fn edit(doc: &Replica, n: u64) {
    doc.transact(move |tx| {
        let len = tx.text("body")?.len();
        tx.text("body")?.insert(len, &format!("mine{n} "))?;
        tx.counter("local")?.increment(1)
    })
    .expect("local edit");
}

/// Asserts `doc` holds exactly local edits `0..n` (and `extra` counted in
/// "remote").
fn assert_local_edits(doc: &Doc, n: u64, what: &str) {
    assert_eq!(doc.counter("local").unwrap(), n as i128, "{what}: counter");
    let text = doc.text("body").unwrap().to_string();
    let mut words: Vec<&str> = text.split_whitespace().collect();
    words.sort_unstable();
    let mut want: Vec<String> = (0..n).map(|i| format!("mine{i}")).collect();
    want.sort_unstable();
    assert_eq!(words, want, "{what}: text");
}

fn refusals(events: &mut broadcast::Receiver<ClientEvent>) -> Vec<(ErrorCode, DocError, bool)> {
    let mut out = Vec::new();
    loop {
        match events.try_recv() {
            Ok(ClientEvent::RemoteUpdateRefused {
                code,
                error,
                catch_up,
                ..
            }) => out.push((code, error, catch_up)),
            Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => return out,
        }
    }
}

/// The second half of every scenario: the client at `path` (closed)
/// reopens with nothing skipped and its `edits` local edits in the store,
/// syncs them to a real relay, and a fresh client sees exactly them there
/// (plus `remote` increments of "remote" that the attack legitimately
/// delivered). Returns the reopened document's copy.
async fn reopen_and_sync(path: &Path, edits: u64, remote: i128) {
    let client = Client::open_sqlite(path).expect("the store reopens");
    let doc = client.replica("doc").expect("the document opens");
    assert!(
        doc.skipped_records().is_empty(),
        "{:?}",
        doc.skipped_records()
    );
    doc.read(|d| assert_local_edits(d, edits, "reopened"));
    let relay = Relay::start(RelayConfig::insecure_local())
        .await
        .expect("relay starts");
    let url = format!("ws://{}/ws", relay.local_addr());
    client.connect(config(&url)).expect("connect");
    assert!(
        doc.wait_synced(WAIT).await,
        "syncs with an honest relay: {:?}",
        *doc.status().borrow()
    );
    let fresh = Client::in_memory();
    let copy = fresh.replica("doc").expect("open");
    fresh.connect(config(&url)).expect("connect");
    assert!(copy.wait_synced(WAIT).await, "a fresh client syncs");
    copy.read(|d| {
        assert_local_edits(d, edits, "at the honest relay");
        assert_eq!(d.counter("remote").unwrap(), remote, "at the honest relay");
    });
    client.disconnect().await;
    fresh.disconnect().await;
    relay.shutdown().await;
}

/// Opens the client at `path` offline with `before` local edits, connects
/// it to `hostile`, waits for `attacks` attacks to be processed, makes two
/// more local edits, checks memory, and returns the refusals reported and
/// the client (still connected) with its document.
async fn attack(
    name: &str,
    path: &Path,
    limits: ClientLimits,
    hostile: &mut Hostile,
    docs: &[&str],
    before: u64,
) -> (Client, Replica, Vec<(ErrorCode, DocError, bool)>) {
    let client = Client::open_sqlite(path)
        .expect("store")
        .with_limits(limits);
    let doc = client.replica("doc").expect("open");
    for n in 0..before {
        edit(&doc, n);
    }
    for other in docs {
        client.replica(other).expect("open");
    }
    let mut events = client.events();
    let memory = Memory::start();
    client.connect(config(&hostile.url())).expect("connect");
    hostile.processed(docs.len() as u32 + 1).await;
    edit(&doc, before);
    edit(&doc, before + 1);
    memory.check(name);
    assert!(
        !matches!(*doc.status().borrow(), SyncStatus::Refused { .. }),
        "the document is not refused"
    );
    let refused = refusals(&mut events);
    (client, doc, refused)
}

// ----- (a) updates waiting on a missing dependency --------------------------

#[test]
fn a_flood_of_updates_waiting_on_a_missing_dependency() {
    const NAME: &str = "(a) 4,200 waiting updates";
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.db");
        let mut writer = Doc::new(ReplicaId::new(0xA11CE));
        let _withheld = writer
            .transact(|tx| tx.counter("remote")?.increment(1))
            .unwrap();
        let waiting: Vec<Vec<u8>> = (0..4_200)
            .map(|_| writer.transact(|tx| tx.counter("remote")?.increment(1)))
            .collect::<Result<_, _>>()
            .unwrap();
        let waiting = Arc::new(waiting);
        let mut hostile = Hostile::start(Arc::new(move |doc: &DocId, v: &VersionVector| {
            let (doc, waiting) = (doc.clone(), waiting.clone());
            Attack {
                synced: empty_diff(v),
                version: VersionVector::new(),
                frames: Box::new((0..waiting.len()).map(move |i| Frame::Remote {
                    doc: doc.clone(),
                    update: waiting[i].clone(),
                })),
            }
        }))
        .await;
        let started = std::time::Instant::now();
        // The count limit this test exercises (the default is far larger:
        // room for a whole offline session delivered out of order).
        let mut limits = ClientLimits::default();
        limits.doc.max_pending_updates = 4_096;
        let (client, doc, refused) = attack(NAME, &path, limits, &mut hostile, &[], 3).await;
        eprintln!("4,200 waiting updates processed in {:?}", started.elapsed());

        // 4,096 wait (the limit set above), stored; the other 104 are refused
        // and reported, not stored; nothing of the writer is applied.
        assert_eq!(doc.read(|d| d.pending_updates()), 4_096);
        assert_eq!(doc.read(|d| d.counter("remote").unwrap()), 0);
        assert_eq!(refused.len(), 104, "{:?}", refused.first());
        assert!(refused.iter().all(|(code, error, catch_up)| {
            *code == ErrorCode::MissingDependencies
                && matches!(error, DocError::PendingFull { updates: 4_096, .. })
                && !catch_up
        }));
        // (Compaction may have folded them into a snapshot: count appends.)
        let stats = client.store().stats("doc").unwrap().unwrap();
        assert_eq!(stats.last_seq, 4_096 + 5, "waiting updates + 5 local edits");
        // Reloading brings back all 4,096 waiting (not limited by the
        // network pending limit) and every local edit.
        let report = client
            .store()
            .load_report("doc", ReplicaId::new(0))
            .unwrap()
            .unwrap();
        assert!(report.is_complete());
        assert_eq!(report.doc.pending_updates(), 4_096);
        assert_local_edits(&report.doc, 5, "reloaded");
        client.disconnect().await;
        drop((doc, client));
        reopen_and_sync(&path, 5, 0).await;
    });
}

// ----- (b) an update that inflates to 64 MiB --------------------------------

const INFLATE_ENV: &str = "WEFT_HOSTILE_INFLATE_TO";

/// Not a test of its own: run as a child process by
/// [`an_update_that_inflates_to_64_mib`] to build the inflating update
/// honestly (a document inserting 64 MiB of one character, ~460 MiB peak)
/// where that peak does not count against the client under test.
#[test]
fn inflating_update_builder() {
    let Ok(out) = std::env::var(INFLATE_ENV) else {
        return;
    };
    let mut author = Doc::new(ReplicaId::new(0x1F1A7E));
    let update = author
        .transact(|tx| tx.text("body")?.insert(0, &"a".repeat(64 << 20)))
        .unwrap();
    std::fs::write(out, update).unwrap();
}

fn inflating_update(dir: &Path) -> Vec<u8> {
    let out: PathBuf = dir.join("inflating.update");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "inflating_update_builder",
            "--exact",
            "--test-threads=1",
            "-q",
        ])
        .env(INFLATE_ENV, &out)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run the builder");
    assert!(status.success());
    let bytes = std::fs::read(&out).expect("the builder wrote the update");
    // What the attack is: tens of KB on the wire, 64 MiB decoded.
    assert!(bytes.len() < 128 << 10, "{} bytes", bytes.len());
    let unlimited = Limits {
        max_decoded_bytes: 65 << 20,
        ..Limits::default()
    };
    let decoded = Update::decode(bytes.clone(), &unlimited).expect("a valid update");
    assert!(decoded.decoded_len() > 64 << 20);
    bytes
}

#[test]
fn an_update_that_inflates_to_64_mib() {
    const NAME: &str = "(b) 64 MiB inflating update";
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.db");
        let inflating = inflating_update(dir.path());
        let sent = inflating.clone();
        let mut honest = Doc::new(ReplicaId::new(0xB0B));
        let legit = honest
            .transact(|tx| tx.counter("remote")?.increment(7))
            .unwrap();
        let mut hostile = Hostile::start(Arc::new(move |doc: &DocId, v: &VersionVector| {
            if doc.as_str() == "doc" {
                Attack {
                    synced: empty_diff(v),
                    version: VersionVector::new(),
                    // The inflating update, then an ordinary one: the
                    // connection goes on and the ordinary one applies.
                    frames: Box::new(
                        vec![
                            Frame::Remote {
                                doc: doc.clone(),
                                update: sent.clone(),
                            },
                            Frame::Remote {
                                doc: doc.clone(),
                                update: legit.clone(),
                            },
                        ]
                        .into_iter(),
                    ),
                }
            } else {
                // Another document's catch-up is the inflating update.
                Attack {
                    synced: sent.clone(),
                    version: VersionVector::new(),
                    frames: Box::new(std::iter::empty()),
                }
            }
        }))
        .await;
        let (client, doc, refused) = attack(
            NAME,
            &path,
            ClientLimits::default(),
            &mut hostile,
            &["catch-up"],
            3,
        )
        .await;
        assert_eq!(refused.len(), 2, "{refused:?}");
        for (code, error, _) in &refused {
            assert_eq!(*code, ErrorCode::UpdateTooLarge);
            assert!(matches!(
                error,
                DocError::Decode(DecodeError::DecodedTooLarge { .. })
            ));
        }
        assert_eq!(
            refused.iter().filter(|(_, _, catch_up)| *catch_up).count(),
            1
        );
        let other = client.replica("catch-up").unwrap();
        assert_eq!(
            *other.status().borrow(),
            SyncStatus::Refused {
                code: ErrorCode::UpdateTooLarge
            },
            "a refused catch-up refuses the document on this connection"
        );
        assert_eq!(doc.read(|d| d.counter("remote").unwrap()), 7);
        assert!(doc.read(|d| d.decoded_bytes()) < 1 << 20);
        // Nothing inflating reached the store (so nothing can be uploaded
        // from it either).
        for id in ["doc", "catch-up"] {
            if let Some(stored) = client.store().read(id).unwrap() {
                assert!(stored.updates.iter().all(|(_, u)| *u != inflating));
            }
        }
        // The uploads to this relay were only the local edits.
        for u in hostile.uploads() {
            assert!(u.len() < 4096, "uploaded {} bytes", u.len());
        }
        client.disconnect().await;
        drop((doc, other, client));
        reopen_and_sync(&path, 5, 7).await;
    });
}

// ----- (c) presence for 100,000 peers ----------------------------------------

#[test]
fn a_presence_flood_of_100k_peers() {
    const NAME: &str = "(c) 100k presence peers";
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.db");
        fn state(p: u64) -> PresenceState {
            PresenceState {
                user: format!("peer-{p}"),
                color: "#ff8800".into(),
                cursor: None,
                extra: vec![b'x'; 1000],
            }
        }
        let mut hostile = Hostile::start(Arc::new(move |doc: &DocId, v: &VersionVector| {
            let id = doc.clone();
            let flood = (0..20u64).map(move |chunk| Frame::PresenceUpdate {
                doc: id.clone(),
                peers: (chunk * 5_000 + 2..(chunk + 1) * 5_000 + 2)
                    .map(|p| (PeerId(p), state(p)))
                    .collect(),
            });
            // Then 24 leave and 30 new peers arrive: 24 of them get a slot.
            let after = vec![
                Frame::PresenceRemoved {
                    doc: doc.clone(),
                    peers: (2..26).map(PeerId).collect(),
                },
                Frame::PresenceUpdate {
                    doc: doc.clone(),
                    peers: (500_000..500_030).map(|p| (PeerId(p), state(p))).collect(),
                },
            ];
            Attack {
                synced: empty_diff(v),
                version: VersionVector::new(),
                frames: Box::new(flood.chain(after)),
            }
        }))
        .await;
        let (client, doc, refused) =
            attack(NAME, &path, ClientLimits::default(), &mut hostile, &[], 3).await;
        assert!(refused.is_empty());
        let peers: Vec<u64> = doc.peers().borrow().keys().map(|p| p.0).collect();
        assert_eq!(peers.len(), 1_024, "the default cap");
        let want: Vec<u64> = (26..1_026).chain(500_000..500_024).collect();
        assert_eq!(
            peers, want,
            "first come keep their slots; removals free them"
        );
        client.disconnect().await;
        drop((doc, client));
        reopen_and_sync(&path, 5, 0).await;
    });
}

// ----- (d) updates claiming the client's own replica --------------------------

#[test]
fn updates_claiming_the_clients_own_replica() {
    const NAME: &str = "(d) own-replica updates";
    run(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("client.db");
        let mut honest = Doc::new(ReplicaId::new(0xB0B));
        let legit = honest
            .transact(|tx| tx.counter("remote")?.increment(3))
            .unwrap();
        let mut hostile = Hostile::start(Arc::new(move |doc: &DocId, v: &VersionVector| {
            // The client subscribes with its own edits only: its version
            // names its replica id.
            let (me, have) = v.iter().next().expect("the client has local edits");
            let mut forger = Doc::new(me);
            let mut made = Vec::new();
            for _ in 0..=have {
                made.push(
                    forger
                        .transact(|tx| tx.counter("remote")?.increment(1_000))
                        .unwrap(),
                );
            }
            let mut claimed = VersionVector::new();
            claimed.set(me, 1_000);
            Attack {
                synced: empty_diff(v),
                // "I already have your next 990 transactions."
                version: claimed,
                frames: Box::new(
                    vec![
                        // Its next transaction, made by someone else.
                        Frame::Remote {
                            doc: doc.clone(),
                            update: made[have as usize].clone(),
                        },
                        // Its first transaction, with other content.
                        Frame::Remote {
                            doc: doc.clone(),
                            update: made[0].clone(),
                        },
                        Frame::Remote {
                            doc: doc.clone(),
                            update: legit.clone(),
                        },
                    ]
                    .into_iter(),
                ),
            }
        }))
        .await;
        let (client, doc, refused) =
            attack(NAME, &path, ClientLimits::default(), &mut hostile, &[], 3).await;
        let codes: Vec<ErrorCode> = refused.iter().map(|(c, _, _)| *c).collect();
        assert_eq!(
            codes,
            [
                ErrorCode::ReplicaNotOwned,
                ErrorCode::ConflictingTransaction
            ]
        );
        assert!(matches!(refused[0].1, DocError::OwnReplica { .. }));
        assert!(matches!(refused[1].1, DocError::Conflict { .. }));
        // Only the honest update applied; the session's own transactions are
        // its own.
        assert_eq!(doc.read(|d| d.counter("remote").unwrap()), 3);
        doc.read(|d| assert_local_edits(d, 5, "after the attack"));
        // The forged version did not make the edits after the attack look
        // sent: they were uploaded (to this relay, which never acks).
        let mine = doc.read(|d| d.replica());
        let uploaded_to = || {
            hostile
                .uploads()
                .iter()
                .filter_map(|u| Update::decode(u.clone(), &Limits::default()).ok())
                .map(|u| u.to().get(mine))
                .max()
                .unwrap_or(0)
        };
        let deadline = tokio::time::Instant::now() + WAIT;
        while uploaded_to() < 5 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(uploaded_to(), 5, "every local edit uploaded");
        // Nothing forged is in the store.
        let stored = client.store().read("doc").unwrap().unwrap();
        for (_, u) in &stored.updates {
            let u = Update::decode(u.clone(), &Limits::default()).unwrap();
            for (replica, counters) in u.authors() {
                assert!(replica != mine || *counters.end() <= 5);
            }
        }
        client.disconnect().await;
        drop((doc, client));
        reopen_and_sync(&path, 5, 3).await;
    });
}

/// A relay announced the document read-only; the client then fails over to
/// a relay of protocol version 1, which never announces access: the stale
/// read-only is forgotten and local edits are taken (and uploaded) again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_from_one_relay_does_not_stick_on_a_relay_that_does_not_announce() {
    let mut v2 = Hostile::start(Arc::new(|doc: &DocId, v: &VersionVector| Attack {
        synced: empty_diff(v),
        version: v.clone(),
        frames: Box::new(std::iter::once(Frame::Access {
            doc: doc.clone(),
            access: Access::ReadOnly,
        })),
    }))
    .await;
    let mut v1 = Hostile::speaking(
        Arc::new(|_: &DocId, v: &VersionVector| Attack {
            synced: empty_diff(v),
            version: v.clone(),
            frames: Box::new(std::iter::empty()),
        }),
        1,
    )
    .await;
    let client = Client::in_memory();
    let doc = client.replica("notes").unwrap();
    client.connect(config(&v2.url())).unwrap();
    v2.processed(1).await;
    assert!(matches!(
        doc.transact(|tx| tx.counter("local")?.increment(1)),
        Err(weft_client::Error::ReadOnly(_))
    ));
    client.disconnect().await;
    client.connect(config(&v1.url())).unwrap();
    v1.processed(1).await;
    assert_eq!(*doc.access().borrow(), None, "nothing announced here");
    edit(&doc, 0);
    tokio::time::timeout(WAIT, async {
        while v1.uploads().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the edit is uploaded to the version 1 relay");
}
