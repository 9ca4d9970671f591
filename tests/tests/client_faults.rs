//! Client tests under network faults (issue 7): a TCP proxy between each
//! client and the relay delays traffic, cuts connections mid-frame and
//! partitions clients; the relay rate-limits. Everything converges and
//! every edit survives; a reconnect does not resend history.

#[path = "client/common.rs"]
mod common;

use common::*;
use std::time::Duration;
use weft_client::{Client, SyncStatus};
use weft_tests::proxy::Proxy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delays_mid_frame_cuts_and_partitions_converge_without_loss() {
    let relay = relay().await;
    let mut proxies = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..3 {
        let proxy = Proxy::start(relay.local_addr()).await.unwrap();
        proxy.set_delay(Duration::from_millis(2));
        clients.push(client(&proxy.url(), "faulty"));
        proxies.push(proxy);
    }
    // Client 0: every connection is cut after 700 relay→client bytes,
    // which lands inside a frame once the document has grown.
    proxies[0].cut_after(Some(700));
    let mut tasks = Vec::new();
    for (i, (_, replica)) in clients.iter().enumerate() {
        let replica = replica.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..40u64 {
                replica
                    .transact_async(move |tx| {
                        tx.text("t")?.insert(0, &format!("c{i}n{n} "))?;
                        tx.counter("n")?.increment(1)?;
                        tx.map("m")?.put(&format!("c{i}"), &n)
                    })
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    // Meanwhile: partition client 1 for a while, cut client 2 repeatedly.
    tokio::time::sleep(Duration::from_millis(40)).await;
    proxies[1].partition(true);
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        proxies[2].cut_all();
    }
    for t in tasks {
        t.await.unwrap();
    }
    let replicas: Vec<_> = clients.iter().map(|(_, r)| r).collect();
    let partitioned = *replicas[1].status().borrow();
    assert!(
        matches!(partitioned, SyncStatus::Offline | SyncStatus::Connecting),
        "partitioned client is not syncing: {partitioned:?}"
    );
    // Heal.
    proxies[1].partition(false);
    proxies[0].cut_after(None);
    proxies[0].cut_all();
    assert!(
        converged(&replicas, Duration::from_secs(15)).await,
        "not converged:\n{}",
        describe(&replicas)
    );
    assert!(
        proxies[0].connections() > 1,
        "client 0 was cut and came back"
    );
    assert!(
        proxies[2].connections() > 1,
        "client 2 was cut and came back"
    );
    let doc = copy(replicas[0]);
    for r in &replicas[1..] {
        assert!(copy(r) == doc);
    }
    assert_eq!(doc.counter("n").unwrap(), 120);
    let mut expected: Vec<String> = (0..3)
        .flat_map(|i| (0..40).map(move |n| format!("c{i}n{n}")))
        .collect();
    expected.sort();
    assert_eq!(words(&doc, "t"), expected, "every edit survives");
    assert!(relay_copy(&url(&relay), "faulty").await == doc);
    for (client, _) in &clients {
        client.disconnect().await;
    }
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_resends_no_history() {
    let relay = relay().await;
    let proxy = Proxy::start(relay.local_addr()).await.unwrap();
    let (client, doc) = client(&proxy.url(), "big");
    let mut seed = 7;
    for n in 0..100 {
        let line = format!("{n:03} {}\n", noise(&mut seed, 600));
        doc.transact(|tx| {
            let len = tx.text("t")?.len();
            tx.text("t")?.insert(len, &line)
        })
        .unwrap();
    }
    assert!(doc.wait_synced(Duration::from_secs(10)).await);
    let (up, down) = (proxy.bytes_up(), proxy.bytes_down());
    assert!(up > 30_000, "the history went up once: {up} bytes");
    proxy.cut_all();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while proxy.connections() < 2 || *doc.status().borrow() != SyncStatus::Synced {
        assert!(
            tokio::time::Instant::now() < deadline,
            "reconnected in time"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (up2, down2) = (proxy.bytes_up() - up, proxy.bytes_down() - down);
    eprintln!("first sync: {up} B up, {down} B down; reconnect: {up2} B up, {down2} B down");
    assert!(
        up2 < 1024,
        "reconnect sent {up2} bytes: handshake and version only"
    );
    assert!(down2 < 1024, "reconnect received {down2} bytes");
    client.disconnect().await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_updates_are_retried_until_acknowledged() {
    let mut config = weft_relay::RelayConfig::insecure_local();
    config.limits.updates_per_sec = 20;
    config.limits.update_burst = 5;
    let relay = weft_relay::Relay::start(config).await.unwrap();
    let url = url(&relay);
    let (client, doc) = client(&url, "limited");
    assert!(doc.wait_synced(Duration::from_secs(5)).await);
    for n in 0..30u64 {
        doc.transact(|tx| tx.counter("n")?.increment(n)).unwrap();
    }
    assert!(
        doc.wait_synced(Duration::from_secs(15)).await,
        "{:?}",
        *doc.status().borrow()
    );
    let at_relay = relay_copy(&url, "limited").await;
    assert_eq!(at_relay.counter("n").unwrap(), 435);
    client.disconnect().await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_relay_backs_off_and_local_edits_continue() {
    // A port with nothing listening: bind, then drop.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::in_memory();
    let doc = client.replica("alone").unwrap();
    client
        .connect(config(&format!("ws://127.0.0.1:{port}/ws")))
        .unwrap();
    let mut state = client.connection();
    let mut attempts = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while attempts < 3 {
        assert!(tokio::time::timeout_at(deadline, state.changed())
            .await
            .is_ok());
        if let weft_client::ConnectionState::BackingOff { attempt, retry_in } = *state.borrow() {
            assert!(retry_in <= Duration::from_millis(300), "capped");
            attempts = attempt;
        }
    }
    doc.transact(|tx| tx.counter("n")?.increment(1)).unwrap();
    assert_eq!(doc.read(|d| d.counter("n").unwrap()), 1);
    assert_eq!(*doc.status().borrow(), SyncStatus::Offline);
    client.disconnect().await;
}
