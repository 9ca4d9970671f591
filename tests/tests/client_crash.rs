//! Crash tests of the client (issue 7): the client process is SIGKILLed
//! mid-sync and restarted from its local store; the relay is shut down and
//! restarted on the same data directory. Nothing locally committed or
//! acknowledged is lost.

#[path = "client/common.rs"]
mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use weft_client::Client;

/// The `client_crash` example binary, built if `cargo test` has not.
fn crash_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = dir.join("examples").join("client_crash");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "weft-tests", "--example", "client_crash"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "example builds");
    }
    assert!(path.exists(), "{} exists", path.display());
    path
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
