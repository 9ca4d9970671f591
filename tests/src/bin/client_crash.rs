//! The client process of `tests/client_crash.rs`: opens a SQLite-backed
//! replica, syncs it with a relay and edits in a loop, printing
//! `committed N` after each edit is durable — until it is SIGKILLed.
//!
//! `client_crash <db> <relay-url> <first> <count>`

use std::io::Write;
use std::time::Duration;
use weft_client::{Backoff, Client, SyncConfig};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, db, url, first, count] = &args[..] else {
        eprintln!("usage: client_crash <db> <relay-url> <first> <count>");
        std::process::exit(2);
    };
    let first: u64 = first.parse().expect("first");
    let count: u64 = count.parse().expect("count");
    let client = Client::open_sqlite(db).expect("store opens");
    let doc = client.replica("crash").expect("replica");
    let config = SyncConfig::new(url.clone()).with_backoff(Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
    });
    client.connect(config).expect("connect");
    let mut out = std::io::stdout().lock();
    for n in first..first + count {
        doc.transact_async(move |tx| {
            tx.text("t")?.insert(0, &format!("w{n} "))?;
            tx.counter("n")?.increment(1)
        })
        .await
        .expect("edit");
        writeln!(out, "committed {n}").expect("stdout");
        out.flush().expect("stdout");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    doc.wait_synced(Duration::from_secs(30)).await;
    writeln!(out, "synced").expect("stdout");
    out.flush().expect("stdout");
    tokio::time::sleep(Duration::from_secs(60)).await;
}
