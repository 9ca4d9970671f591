//! A client given several relay URLs fails over: when its relay shuts
//! down (it says `ShuttingDown`) or is unreachable, the client connects to
//! the next URL and syncs there, its offline edits included.

use std::time::Duration;
use weft_client::{Backoff, Client, SyncConfig, SyncStatus};
use weft_relay::{Relay, RelayConfig};

async fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_moves_to_the_next_relay_when_its_relay_shuts_down() {
    let a = Relay::start(RelayConfig::insecure_local()).await.unwrap();
    let b = Relay::start(RelayConfig::insecure_local()).await.unwrap();
    let (a_url, b_url) = (
        format!("ws://{}/ws", a.local_addr()),
        format!("ws://{}/ws", b.local_addr()),
    );
    let client = Client::in_memory();
    let doc = client.replica("d").unwrap();
    client
        .connect(
            SyncConfig::new(&a_url)
                .with_fallback_url(&b_url)
                .with_backoff(Backoff {
                    initial: Duration::from_millis(10),
                    max: Duration::from_millis(100),
                }),
        )
        .unwrap();
    doc.transact_async(|tx| tx.counter("n")?.increment(1))
        .await
        .unwrap();
    wait_until("synced with a", || {
        *doc.status().borrow() == SyncStatus::Synced && a.documents_loaded() == 1
    })
    .await;
    assert_eq!(b.documents_loaded(), 0, "b has not been used yet");

    a.shutdown().await;
    doc.transact_async(|tx| tx.counter("n")?.increment(1))
        .await
        .unwrap();
    // The client is now on b, which holds everything it wrote.
    let watcher = Client::in_memory();
    let seen = watcher.replica("d").unwrap();
    watcher.connect(SyncConfig::new(&b_url)).unwrap();
    wait_until("both edits reach b", || {
        seen.read(|d| d.counter("n").unwrap_or(0)) == 2
    })
    .await;
    b.shutdown().await;
}

#[test]
fn every_url_is_validated() {
    assert!(SyncConfig::new("ws://a/ws")
        .with_fallback_url("http://b")
        .validate()
        .is_err());
}
