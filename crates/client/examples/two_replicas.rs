//! Two replicas edit the same document offline, each in its own local
//! SQLite store, then connect to a relay (started in-process on
//! 127.0.0.1) and converge: concurrent text inserts at the same place
//! stay whole (never interleaved), counters add up, sets union, the map
//! keeps the title.
//!
//! `cargo run -p weft-client --example two_replicas`

use std::time::Duration;
use weft_client::{Client, Replica, SyncConfig, SyncStatus};
use weft_relay::{Relay, RelayConfig};

fn show(name: &str, doc: &Replica) {
    doc.read(|d| {
        let tags = d.set::<String>("tags").unwrap().to_vec().unwrap();
        let title = d.map("meta").unwrap().register::<String>("title").unwrap();
        println!(
            "  {name:<6} body={:?} likes={} tags={tags:?} title={title:?}",
            d.text("body").unwrap().to_string(),
            d.counter("likes").unwrap(),
        );
    });
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let alice = Client::open_sqlite(dir.path().join("alice.db"))?;
    let bob = Client::open_sqlite(dir.path().join("bob.db"))?;
    let a = alice.replica("greeting")?;
    let b = bob.replica("greeting")?;

    // Offline: no relay yet. Every edit is durable locally when it returns.
    a.transact_async(|tx| {
        tx.text("body")?.insert(0, "Hello from Alice. ")?;
        tx.set::<String>("tags")?.add(&"draft".to_string())?;
        tx.counter("likes")?.increment(1)
    })
    .await?;
    b.transact_async(|tx| {
        tx.text("body")?.insert(0, "Hi from Bob. ")?;
        tx.set::<String>("tags")?.add(&"greeting".to_string())?;
        tx.counter("likes")?.increment(2)?;
        tx.map("meta")?.put("title", "First post")
    })
    .await?;
    println!("offline ({:?}):", *a.status().borrow());
    show("alice", &a);
    show("bob", &b);

    // A relay on 127.0.0.1 (in-memory store); both connect.
    let relay = Relay::start(RelayConfig::insecure_local()).await?;
    let url = format!("ws://{}/ws", relay.local_addr());
    println!("relay listening on {url}");
    alice.connect(SyncConfig::new(&url))?;
    bob.connect(SyncConfig::new(&url))?;

    // Wait (bounded) until both are synced and hold the same version.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !(a.version() == b.version()
        && *a.status().borrow() == SyncStatus::Synced
        && *b.status().borrow() == SyncStatus::Synced)
    {
        if tokio::time::Instant::now() > deadline {
            return Err("replicas did not converge within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // One more edit, now online: it reaches the other at once.
    a.transact_async(|tx| {
        let len = tx.text("body")?.len();
        tx.text("body")?.insert(len, "(Both online now.)")
    })
    .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while a.version() != b.version() {
        if tokio::time::Instant::now() > deadline {
            return Err("online edit did not arrive within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("converged ({:?}):", *b.status().borrow());
    show("alice", &a);
    show("bob", &b);
    let same = a.read(|x| b.read(|y| x == y));
    println!("identical documents: {same}");

    alice.disconnect().await;
    bob.disconnect().await;
    relay.shutdown().await;
    if same {
        Ok(())
    } else {
        Err("documents differ".into())
    }
}
