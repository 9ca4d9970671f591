//! Client tests against a real relay on 127.0.0.1 (issue 7): concurrent
//! clients converge and equal the relay's copy; offline edits survive;
//! presence; two relays in turn; long backlogs in bounded batches; a
//! reconnect does not resend history.

#[path = "client/common.rs"]
mod common;

use common::*;
use std::time::Duration;
use weft_client::{Client, SyncStatus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_clients_converge_and_equal_the_relay() {
    let relay = relay().await;
    let url = url(&relay);
    let clients: Vec<_> = (0..5).map(|_| client(&url, "shared")).collect();
    let mut tasks = Vec::new();
    for (i, (_, replica)) in clients.iter().enumerate() {
        let replica = replica.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..30u64 {
                let word = format!("c{i}w{n} ");
                replica
                    .transact_async(move |tx| {
                        let mut text = tx.text("body")?;
                        let at = (n as usize * 7) % (text.len() + 1);
                        // Insert at a word boundary-free spot: words are
                        // delimited by spaces, so insert at the end or start.
                        let at = if at.is_multiple_of(2) { 0 } else { text.len() };
                        text.insert(at, &word)?;
                        tx.counter("edits")?.increment(1)?;
                        tx.map("by")?.put(&format!("c{i}"), &n)?;
                        tx.map("last")?.put("writer", &format!("c{i}"))
                    })
                    .await
                    .unwrap();
                if n % 5 == 0 {
                    tokio::time::sleep(Duration::from_millis(3)).await;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let replicas: Vec<_> = clients.iter().map(|(_, r)| r).collect();
    assert!(
        converged(&replicas, Duration::from_secs(15)).await,
        "not converged:\n{}",
        describe(&replicas)
    );
    let first = copy(replicas[0]);
    for r in &replicas[1..] {
        assert!(copy(r) == first, "replicas differ");
    }
    assert_eq!(first.counter("edits").unwrap(), 150);
    let mut expected: Vec<String> = (0..5)
        .flat_map(|i| (0..30).map(move |n| format!("c{i}w{n}")))
        .collect();
    expected.sort();
    assert_eq!(words(&first, "body"), expected, "every word survives");
    let by = first.map("by").unwrap();
    for i in 0..5 {
        assert_eq!(by.register::<u64>(&format!("c{i}")).unwrap(), Some(29));
    }
    let at_relay = relay_copy(&url, "shared").await;
    assert!(at_relay == first, "the relay's copy equals the clients'");
    for (client, _) in &clients {
        client.disconnect().await;
    }
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_edits_converge_on_reconnect_without_loss() {
    let relay = relay().await;
    let url = url(&relay);
    let (a_client, a) = client(&url, "doc");
    let (b_client, b) = client(&url, "doc");
    a.transact(|tx| tx.text("t")?.insert(0, "base ")).unwrap();
    assert!(converged(&[&a, &b], Duration::from_secs(10)).await);

    a_client.disconnect().await;
    assert_eq!(*a.status().borrow(), SyncStatus::Offline);
    for n in 0..20 {
        a.transact(|tx| {
            tx.text("t")?.insert(0, &format!("a{n} "))?;
            tx.counter("n")?.increment(1)?;
            tx.map("m")?.put("k", &format!("a{n}"))
        })
        .unwrap();
        b.transact(|tx| {
            let len = tx.text("t")?.len();
            tx.text("t")?.insert(len, &format!("b{n} "))?;
            tx.counter("n")?.increment(2)?;
            tx.map("m")?.put("k", &format!("b{n}"))
        })
        .unwrap();
    }
    assert_ne!(a.version(), b.version());
    a_client.connect(config(&url)).unwrap();
    assert!(
        converged(&[&a, &b], Duration::from_secs(10)).await,
        "not converged:\n{}",
        describe(&[&a, &b])
    );
    let doc = copy(&a);
    assert!(copy(&b) == doc);
    assert_eq!(doc.counter("n").unwrap(), 60);
    let mut expected: Vec<String> = (0..20)
        .flat_map(|n| [format!("a{n}"), format!("b{n}")])
        .chain(["base".to_string()])
        .collect();
    expected.sort();
    assert_eq!(words(&doc, "t"), expected);
    let k = doc
        .map("m")
        .unwrap()
        .register::<String>("k")
        .unwrap()
        .unwrap();
    assert!(k == "a19" || k == "b19", "one last write wins: {k}");
    a_client.disconnect().await;
    b_client.disconnect().await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pure_local_client_never_needs_a_relay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    {
        let client = Client::open_sqlite(&path).unwrap();
        let doc = client.replica("local").unwrap();
        for n in 0..10 {
            doc.transact_async(move |tx| tx.counter("n")?.increment(n))
                .await
                .unwrap();
        }
        assert_eq!(*doc.status().borrow(), SyncStatus::Offline);
    }
    let client = Client::open_sqlite(&path).unwrap();
    let doc = client.replica("local").unwrap();
    assert_eq!(doc.read(|d| d.counter("n").unwrap()), 45);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_seen_cleared_and_resent_after_reconnect() {
    use weft_client::PresenceState;
    let relay = relay().await;
    let url = url(&relay);
    let (a_client, a) = client(&url, "room");
    let (_b_client, b) = client(&url, "room");
    a.transact(|tx| tx.text("t")?.insert(0, "hello world"))
        .unwrap();
    assert!(converged(&[&a, &b], Duration::from_secs(10)).await);
    let ann = PresenceState {
        user: "Ann".into(),
        color: "#3366ff".into(),
        cursor: Some(a.cursor("t", 6, 11).unwrap()),
        extra: b"typing".to_vec(),
    };
    a.set_presence(ann.clone()).unwrap();
    let mut peers = b.peers();
    assert!(
        peers_reach(&mut peers, |p| p.values().any(|s| *s == ann)).await,
        "b sees ann"
    );
    assert!(a.peers().borrow().is_empty(), "a does not list itself");
    let seen = b.peers().borrow().values().next().cloned().unwrap();
    let cursor = seen.cursor.expect("the cursor travelled");
    b.transact(|tx| tx.text("t")?.insert(0, ">> ")).unwrap();
    assert_eq!(
        b.resolve_cursor(&cursor),
        Some((9, 14)),
        "b sees ann's selection"
    );

    a.clear_presence();
    assert!(
        peers_reach(&mut peers, |p| p.is_empty()).await,
        "cleared presence disappears"
    );

    // Set while offline: sent after the reconnect.
    a_client.disconnect().await;
    a.set_presence(ann.clone()).unwrap();
    a_client.connect(config(&url)).unwrap();
    assert!(
        peers_reach(&mut peers, |p| p.values().any(|s| *s == ann)).await,
        "presence resent after reconnect"
    );
    a_client.disconnect().await;
    assert!(
        peers_reach(&mut peers, |p| p.is_empty()).await,
        "disconnect removes presence"
    );
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_moved_between_two_relays_converges() {
    let relay1 = relay().await;
    let relay2 = relay().await;
    let (url1, url2) = (url(&relay1), url(&relay2));
    let (a_client, a) = client(&url1, "moving");
    let (_b_client, b) = client(&url1, "moving");
    a.transact(|tx| tx.text("t")?.insert(0, "a1 ")).unwrap();
    b.transact(|tx| tx.counter("n")?.increment(1)).unwrap();
    assert!(converged(&[&a, &b], Duration::from_secs(10)).await);

    // Move a to relay 2: it brings b's history along.
    a_client.connect(config(&url2)).unwrap();
    let (_c_client, c) = client(&url2, "moving");
    c.transact(|tx| tx.text("t")?.insert(0, "c1 ")).unwrap();
    assert!(
        converged(&[&a, &c], Duration::from_secs(10)).await,
        "{}",
        describe(&[&a, &c])
    );
    assert_eq!(
        copy(&c).counter("n").unwrap(),
        1,
        "b's edit reached relay 2 via a"
    );

    // And back to relay 1: c's edit reaches b.
    a_client.connect(config(&url1)).unwrap();
    assert!(
        converged(&[&a, &b], Duration::from_secs(10)).await,
        "{}",
        describe(&[&a, &b])
    );
    let doc = copy(&b);
    assert!(doc == copy(&c));
    assert_eq!(words(&doc, "t"), ["a1", "c1"]);
    relay1.shutdown().await;
    relay2.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_offline_backlog_syncs_in_bounded_batches_with_progress() {
    let mut config_small = weft_relay::RelayConfig::insecure_local();
    config_small.limits.wire.max_update_bytes = 8 << 10;
    let relay = weft_relay::Relay::start(config_small).await.unwrap();
    let url = url(&relay);
    let client = Client::in_memory();
    let doc = client.replica("backlog").unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1d;
    for n in 0..400 {
        let letters = noise(&mut seed, 100);
        let line = format!("{n:04}{letters}\n");
        doc.transact(|tx| {
            let len = tx.text("t")?.len();
            tx.text("t")?.insert(len, &line)
        })
        .unwrap();
    }
    // One diff would be ~40 KB: over the relay's 8 KiB update limit.
    assert!(doc.read(|d| d.diff(&Default::default()).len()) > 8 << 10);
    let mut status = doc.status();
    let mut events = client.events();
    client.connect(config(&url)).unwrap();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let current = *status.borrow_and_update();
        if let SyncStatus::Syncing { pending } = current {
            if seen.last() != Some(&pending) {
                seen.push(pending);
            }
        }
        if current == SyncStatus::Synced {
            break;
        }
        assert!(
            tokio::time::timeout_at(deadline, status.changed())
                .await
                .is_ok(),
            "synced in time; progress so far {seen:?}"
        );
    }
    assert!(seen.len() >= 3, "progress shown in steps: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "pending only falls: {seen:?}"
    );
    assert!(seen[0] <= 400);
    while let Ok(event) = events.try_recv() {
        assert!(
            !matches!(event, weft_client::ClientEvent::UpdateRefused { .. }),
            "no batch over the limit: {event:?}"
        );
    }
    let at_relay = relay_copy(&url, "backlog").await;
    assert!(at_relay == copy(&doc));
    client.disconnect().await;
    relay.shutdown().await;
}
