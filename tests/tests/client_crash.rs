//! Crash tests of the client (issue 7): the client process is SIGKILLed
//! mid-sync and restarted from its local store; the relay is shut down and
//! restarted on the same data directory, and the relay process is SIGKILLed
//! mid-burst and restarted. Nothing locally committed or acknowledged is
//! lost.

#[path = "client/common.rs"]
mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use weft_client::Client;

/// The client process (`src/bin/client_crash.rs`), built by cargo with
/// this test.
fn crash_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_client_crash"))
}

/// A `weft-relay` process on `listen` storing in `data`, and its address
/// (from its first stdout line).
fn relay_process(listen: &str, data: &std::path::Path) -> (std::process::Child, String) {
    // `weft-relay` itself (`weft_relay::cli::main`), as a binary of this
    // package so cargo builds it with the test.
    let mut child = Command::new(env!("CARGO_BIN_EXE_test_relay"))
        .args(["--listen", listen, "--data"])
        .arg(data)
        .arg("--insecure-no-auth")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("relay starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .expect("relay prints its address");
    let addr = first
        .trim()
        .strip_prefix("weft-relay listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    (child, addr)
}

/// Runs the client process and SIGKILLs it after it printed `kill_after`
/// commits; returns the last commit it reported.
fn run_and_kill(db: &std::path::Path, url: &str, first: u64, kill_after: u64) -> u64 {
    let mut child = Command::new(crash_binary())
        .args([db.to_str().unwrap(), url, &first.to_string(), "100000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("client process starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < Duration::from_secs(15) {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(n) = line.strip_prefix("committed ") {
            let n: u64 = n.parse().unwrap();
            last = Some(n);
            if n + 1 - first >= kill_after {
                break;
            }
        }
    }
    child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
    child.wait().unwrap();
    last.expect("the client committed something before the kill")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_client_restarts_from_its_store_and_relay_restarts_on_its_data() {
    let relay_dir = tempfile::tempdir().unwrap();
    let client_dir = tempfile::tempdir().unwrap();
    let db = client_dir.path().join("client.db");
    let relay = relay_on(relay_dir.path()).await;
    let addr = relay.local_addr();
    let url = url(&relay);

    // Three rounds: edit while syncing, SIGKILL, restart from the store.
    let mut first = 0;
    let mut committed = Vec::new();
    for round in 0..3u64 {
        let (child_db, child_url) = (db.clone(), url.clone());
        let last = tokio::task::spawn_blocking(move || {
            run_and_kill(&child_db, &child_url, first, 40 + round * 17)
        })
        .await
        .unwrap();
        committed.extend((first..=last).map(|n| format!("w{n}")));
        let client = Client::open_sqlite(&db).unwrap();
        let doc = client.replica("crash").unwrap();
        let local = copy(&doc);
        let have = words(&local, "t");
        for w in &committed {
            assert!(
                have.contains(w),
                "round {round}: committed {w} lost locally"
            );
        }
        first = last + 1_000; // leave room: an unreported commit may exist
    }

    // Sync what the last process left, through the same store.
    let client = Client::open_sqlite(&db).unwrap();
    let doc = client.replica("crash").unwrap();
    client.connect(config(&url)).unwrap();
    assert!(
        doc.wait_synced(Duration::from_secs(10)).await,
        "{:?}",
        *doc.status().borrow()
    );
    let local = copy(&doc);
    assert!(
        relay_copy(&url, "crash").await == local,
        "the relay has everything"
    );

    // Relay restart on the same data directory and address, while the
    // client keeps editing: acknowledged edits survive, later ones arrive.
    relay.shutdown().await;
    for n in 0..20 {
        doc.transact(|tx| tx.text("t")?.insert(0, &format!("x{n} ")))
            .unwrap();
    }
    let mut again = weft_relay::RelayConfig::insecure_local();
    again.listen = addr;
    again.data = Some(relay_dir.path().to_path_buf());
    let relay = weft_relay::Relay::start(again)
        .await
        .expect("restarts on the same port");
    assert!(
        doc.wait_synced(Duration::from_secs(10)).await,
        "{:?}",
        *doc.status().borrow()
    );
    let local = copy(&doc);
    let at_relay = relay_copy(&url, "crash").await;
    assert!(at_relay == local, "restarted relay has all, old and new");
    let have = words(&at_relay, "t");
    for w in committed
        .iter()
        .chain((0..20).map(|n| format!("x{n}")).collect::<Vec<_>>().iter())
    {
        assert!(have.contains(w), "{w} reached the restarted relay");
    }
    client.disconnect().await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_sigkilled_mid_burst_keeps_every_acknowledged_edit() {
    let relay_dir = tempfile::tempdir().unwrap();
    let client_dir = tempfile::tempdir().unwrap();
    let (mut relay, addr) = relay_process("127.0.0.1:0", relay_dir.path());
    let url = format!("ws://{addr}/ws");
    let client = Client::open_sqlite(client_dir.path().join("c.db")).unwrap();
    let doc = client.replica("burst").unwrap();
    client.connect(config(&url)).unwrap();
    for n in 0..50 {
        doc.transact_async(move |tx| tx.text("t")?.insert(0, &format!("a{n} ")))
            .await
            .unwrap();
    }
    assert!(doc.wait_synced(Duration::from_secs(10)).await);
    let acknowledged = doc.version();

    // A burst, and SIGKILL the relay in the middle of it.
    let burst = {
        let doc = doc.clone();
        tokio::spawn(async move {
            for n in 0..100 {
                doc.transact_async(move |tx| tx.text("t")?.insert(0, &format!("b{n} ")))
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(40)).await;
    relay.kill().expect("SIGKILL");
    relay.wait().unwrap();
    burst.await.unwrap();

    // What was acknowledged before the kill is on the relay's disk.
    {
        let store = weft_persist::SqliteStore::open(
            relay_dir.path().join(weft_relay::STORE_FILE),
            weft_persist::Options::default(),
        )
        .unwrap();
        let stored = weft_persist::Store::load(&store, "burst", weft_core::ReplicaId::random())
            .unwrap()
            .expect("the relay stored the document");
        assert!(
            stored.version().dominates(&acknowledged),
            "acknowledged edits survived the SIGKILL"
        );
    }

    // Restart on the same data and port: the client reconnects by itself
    // and sends what the relay lacks.
    let (mut relay, again) = relay_process(&addr, relay_dir.path());
    assert_eq!(again, addr);
    assert!(
        doc.wait_synced(Duration::from_secs(10)).await,
        "{:?}",
        *doc.status().borrow()
    );
    let at_relay = relay_copy(&url, "burst").await;
    assert!(at_relay == copy(&doc), "the restarted relay has every edit");
    assert_eq!(words(&at_relay, "t").len(), 150);
    client.disconnect().await;
    relay.kill().unwrap();
    relay.wait().unwrap();
}

/// The version of `doc` in the relay's store under `data` (relay stopped).
fn stored_version(data: &std::path::Path, doc: &str) -> weft_core::VersionVector {
    let store = weft_persist::SqliteStore::open(
        data.join(weft_relay::STORE_FILE),
        weft_persist::Options::default(),
    )
    .unwrap();
    weft_persist::Store::load(&store, doc, weft_core::ReplicaId::random())
        .unwrap()
        .map(|d| d.version().clone())
        .unwrap_or_default()
}

/// Fan-out does not wait for the relay's fsync (issue 13): a reader may
/// hold an update the relay never stored when the relay is SIGKILLed. The
/// author stored it before sending and keeps it until acknowledged, so
/// after the restart it is sent again, and author, reader and relay end
/// with every edit; nothing any client saw is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_sigkilled_after_fanning_out_unstored_updates_loses_nothing_readers_saw() {
    let relay_dir = tempfile::tempdir().unwrap();
    let author_dir = tempfile::tempdir().unwrap();
    let reader_dir = tempfile::tempdir().unwrap();
    let (mut relay, addr) = relay_process("127.0.0.1:0", relay_dir.path());
    let url = format!("ws://{addr}/ws");
    let author = Client::open_sqlite(author_dir.path().join("a.db")).unwrap();
    let reader = Client::open_sqlite(reader_dir.path().join("r.db")).unwrap();
    let written = author.replica("fan").unwrap();
    let read = reader.replica("fan").unwrap();
    author.connect(config(&url)).unwrap();
    reader.connect(config(&url)).unwrap();
    assert!(converged(&[&written, &read], Duration::from_secs(10)).await);

    // Several bursts, each cut by a SIGKILL of the relay while updates are
    // being fanned out and committed.
    let mut total = 0usize;
    let mut reader_ahead_of_disk = 0;
    const ROUNDS: u64 = 6;
    for round in 0..ROUNDS {
        let burst = {
            let written = written.clone();
            tokio::spawn(async move {
                for n in 0..120 {
                    written
                        .transact_async(move |tx| {
                            tx.text("t")?.insert(0, &format!("r{round}w{n} "))
                        })
                        .await
                        .unwrap();
                    tokio::time::sleep(Duration::from_micros(300)).await;
                }
            })
        };
        total += 120;
        tokio::time::sleep(Duration::from_millis(15 + 7 * round)).await;
        relay.kill().expect("SIGKILL");
        relay.wait().unwrap();
        burst.await.unwrap();
        let seen_by_reader = read.version();
        let stored = stored_version(relay_dir.path(), "fan");
        if !stored.dominates(&seen_by_reader) {
            reader_ahead_of_disk += 1;
        }

        // Restart on the same data and port; both clients reconnect alone.
        let (again, same) = relay_process(&addr, relay_dir.path());
        assert_eq!(same, addr);
        relay = again;
        assert!(
            converged(&[&written, &read], Duration::from_secs(20)).await,
            "round {round}: author {:?}, reader {:?}",
            *written.status().borrow(),
            *read.status().borrow()
        );
        let at_relay = relay_copy(&url, "fan").await;
        assert!(
            at_relay.version().dominates(&seen_by_reader),
            "round {round}: everything the reader saw reached the restarted relay"
        );
        assert!(at_relay == copy(&written), "round {round}: relay = author");
        assert!(
            copy(&read) == copy(&written),
            "round {round}: reader = author"
        );
        assert_eq!(words(&at_relay, "t").len(), total, "round {round}");
    }
    // Timing decides whether a kill lands between fan-out and commit; say
    // how often it did (not asserted: a fast disk may never leave a gap).
    eprintln!("rounds where the reader held updates the relay had not stored: {reader_ahead_of_disk} of {ROUNDS}");
    author.disconnect().await;
    reader.disconnect().await;
    relay.kill().unwrap();
    relay.wait().unwrap();
}
