//! Shared helpers of the client tests: relays on 127.0.0.1, fast-backoff
//! configs, bounded waits for convergence.

#![allow(dead_code)] // each test file uses a subset

use std::time::{Duration, Instant};
use weft_client::{Backoff, Client, Replica, SyncConfig, SyncStatus};
use weft_core::{Doc, ReplicaId};
use weft_relay::{Relay, RelayConfig};

/// An in-memory relay on `127.0.0.1:0`.
pub(crate) async fn relay() -> Relay {
    Relay::start(RelayConfig::insecure_local())
        .await
        .expect("relay starts")
}

/// A relay on `127.0.0.1:0` storing under `dir`.
pub(crate) async fn relay_on(dir: &std::path::Path) -> Relay {
    let mut config = RelayConfig::insecure_local();
    config.data = Some(dir.to_path_buf());
    Relay::start(config).await.expect("relay starts")
}

pub(crate) fn url(relay: &Relay) -> String {
    format!("ws://{}/ws", relay.local_addr())
}

/// A config with reconnect delays short enough for tests.
pub(crate) fn config(url: &str) -> SyncConfig {
    SyncConfig::new(url).with_backoff(Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(300),
    })
}

/// A connected in-memory client with `doc` open.
pub(crate) fn client(url: &str, doc: &str) -> (Client, Replica) {
    let client = Client::in_memory();
    let replica = client.replica(doc).expect("open");
    client.connect(config(url)).expect("connect");
    (client, replica)
}

/// An independent copy of the replica's document.
pub(crate) fn copy(replica: &Replica) -> Doc {
    let saved = replica.read(|d| d.save());
    Doc::load(&saved, ReplicaId::random()).expect("snapshot loads")
}

/// Waits (polling, bounded) until every replica is `Synced` and all have
/// the same version; `false` on timeout.
pub(crate) async fn converged(replicas: &[&Replica], timeout: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        let synced = replicas
            .iter()
            .all(|r| *r.status().borrow() == SyncStatus::Synced);
        let first = replicas[0].version();
        if synced && replicas.iter().all(|r| r.version() == first) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Describes where replicas stand, for assertion messages.
pub(crate) fn describe(replicas: &[&Replica]) -> String {
    replicas
        .iter()
        .map(|r| format!("{:?} {:?}", *r.status().borrow(), r.version()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The relay's copy of `doc`, fetched by a fresh client.
pub(crate) async fn relay_copy(url: &str, doc: &str) -> Doc {
    let (client, replica) = client(url, doc);
    assert!(
        replica.wait_synced(Duration::from_secs(10)).await,
        "fresh client syncs"
    );
    let copy = copy(&replica);
    client.disconnect().await;
    copy
}

/// The words of a text, sorted (order is the CRDT's business; presence of
/// every inserted word is the no-loss check).
pub(crate) fn words(doc: &Doc, text: &str) -> Vec<String> {
    let mut words: Vec<String> = doc
        .text(text)
        .expect("a text")
        .to_string()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    words.sort();
    words
}

/// Waits (bounded) until `peers` satisfies `pred`.
pub(crate) async fn peers_reach(
    peers: &mut tokio::sync::watch::Receiver<weft_client::Peers>,
    pred: impl FnMut(&weft_client::Peers) -> bool,
) -> bool {
    let reached = tokio::time::timeout(Duration::from_secs(5), peers.wait_for(pred)).await;
    matches!(reached, Ok(Ok(_)))
}

/// `len` pseudo-random lowercase letters (incompressible test content).
pub(crate) fn noise(seed: &mut u64, len: usize) -> String {
    (0..len)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            char::from(b'a' + (*seed >> 59) as u8 % 26)
        })
        .collect()
}
