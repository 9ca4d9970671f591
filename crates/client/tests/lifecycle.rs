//! The client's document lifecycle against a real relay in the process
//! (issue #14): closing documents frees their slots on the relay,
//! `wait_synced` waits for the relay's acknowledgement, a read-only token
//! is announced and reported instead of queueing edits forever, and
//! `reconnect_now` skips a long backoff. Every wait is bounded.

use std::time::Duration;
use tokio::net::TcpListener;
use weft_client::{
    Access, Backoff, Client, ClientEvent, ConnectionState, Error, SyncConfig, SyncStatus,
};
use weft_relay::auth::{mint_token, Claims};
use weft_relay::{AuthConfig, Relay, RelayConfig};

const WAIT: Duration = Duration::from_secs(15);
const SECRET: &[u8] = b"client lifecycle secret, 32 bytes or more";

fn url(relay: &Relay) -> String {
    format!("ws://{}/ws", relay.local_addr())
}

fn quick() -> Backoff {
    Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
    }
}

async fn relay_with(f: impl FnOnce(&mut RelayConfig)) -> Relay {
    let mut config = RelayConfig::insecure_local();
    f(&mut config);
    Relay::start(config).await.expect("relay starts")
}

fn token(docs: &[&str], write: bool) -> String {
    let docs = docs.iter().map(|d| d.to_string()).collect();
    mint_token(SECRET, &Claims::new("tester", docs, write, 3600)).expect("token")
}

/// The next event matching `pred` within [`WAIT`].
async fn next_event(
    events: &mut tokio::sync::broadcast::Receiver<ClientEvent>,
    mut pred: impl FnMut(&ClientEvent) -> bool,
) -> Option<ClientEvent> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(event)) if pred(&event) => return Some(event),
            Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
            _ => return None,
        }
    }
}

fn body(doc: &weft_client::Replica) -> String {
    doc.read(|d| d.text("t").map(|t| t.to_string()).unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_documents_frees_their_slots_on_the_relay() {
    // A relay allowing 4 documents per connection (256 by default: the
    // same rule at a size a test can fill quickly).
    let relay = relay_with(|c| c.limits.wire.max_docs = 4).await;
    let client = Client::in_memory();
    client
        .connect(SyncConfig::new(url(&relay)).with_backoff(quick()))
        .unwrap();
    let mut events = client.events();
    let mut docs = Vec::new();
    for i in 0..4 {
        let doc = client.replica(&format!("doc-{i}")).unwrap();
        assert!(doc.wait_synced(WAIT).await, "doc-{i} syncs");
        docs.push(doc);
    }
    // The fifth is refused while four are open ...
    let fifth = client.replica("doc-4").unwrap();
    let refused = next_event(&mut events, |e| {
        matches!(e, ClientEvent::DocumentRefused { .. })
    })
    .await;
    assert!(
        matches!(
            refused,
            Some(ClientEvent::DocumentRefused {
                code: weft_client::ErrorCode::TooManyDocs,
                ..
            })
        ),
        "{refused:?}"
    );
    assert!(client.close("doc-4"));
    assert!(fifth.is_closed());
    // ... and opens once another is closed.
    assert!(client.close("doc-0"));
    assert!(matches!(
        docs[0].transact(|tx| tx.counter("n")?.increment(1)),
        Err(Error::Closed(_))
    ));
    assert_eq!(*docs[0].status().borrow(), SyncStatus::Offline);
    let fifth = client.replica("doc-4").unwrap();
    assert!(fifth.wait_synced(WAIT).await, "the slot was freed");
    fifth
        .transact(|tx| tx.text("t")?.insert(0, "fifth"))
        .unwrap();
    assert!(fifth.wait_synced(WAIT).await);
    assert!(client.close("doc-4"));
    // Many more than the limit, one at a time: each close frees its slot.
    for i in 5..20 {
        let name = format!("doc-{i}");
        let doc = client.replica(&name).unwrap();
        doc.transact(|tx| tx.text("t")?.insert(0, &format!("edit {i}")))
            .unwrap();
        assert!(doc.wait_synced(WAIT).await, "{name} syncs");
        assert!(client.close(&name));
    }
    assert_eq!(client.open_docs().len(), 3);
    // Reopened, a closed document syncs again; its edits reached the relay.
    let other = Client::in_memory();
    other.connect(SyncConfig::new(url(&relay))).unwrap();
    let copy = other.replica("doc-12").unwrap();
    assert!(copy.wait_synced(WAIT).await);
    assert_eq!(body(&copy), "edit 12");
    let doc0 = client.replica("doc-0").unwrap();
    assert!(doc0.wait_synced(WAIT).await, "a reopened document syncs");
    client.disconnect().await;
    other.disconnect().await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_synced_returns_once_the_relay_acknowledged_and_times_out_offline() {
    let relay = relay_with(|_| {}).await;
    let client = Client::in_memory();
    let doc = client.replica("w").unwrap();
    doc.transact(|tx| tx.text("t")?.insert(0, "offline edit"))
        .unwrap();
    // Offline: the timeout is honoured.
    let start = std::time::Instant::now();
    assert!(!doc.wait_synced(Duration::from_millis(200)).await);
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert!(start.elapsed() < Duration::from_secs(5));
    client.connect(SyncConfig::new(url(&relay))).unwrap();
    assert!(doc.wait_synced(WAIT).await);
    // Synced means the relay has it: a fresh client gets it from there.
    let other = Client::in_memory();
    other.connect(SyncConfig::new(url(&relay))).unwrap();
    let copy = other.replica("w").unwrap();
    assert!(copy.wait_synced(WAIT).await);
    assert_eq!(body(&copy), "offline edit");
    client.disconnect().await;
    other.disconnect().await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_token_is_announced_and_edits_are_refused_not_queued() {
    let relay = relay_with(|c| {
        c.auth = AuthConfig::Hs256 {
            secret: SECRET.to_vec(),
        }
    })
    .await;
    let writer = Client::in_memory();
    let w = writer.replica("team-doc").unwrap();
    writer
        .connect(SyncConfig::new(url(&relay)).with_token(token(&["team-*"], true)))
        .unwrap();
    w.transact(|tx| tx.text("t")?.insert(0, "from the writer"))
        .unwrap();
    assert!(w.wait_synced(WAIT).await);
    assert_eq!(*w.access().borrow(), Some(Access::ReadWrite));

    // A reader that edited offline, before any relay said it may not.
    let reader = Client::in_memory();
    let r = reader.replica("team-doc").unwrap();
    r.transact(|tx| tx.counter("offline")?.increment(1))
        .unwrap();
    let mut events = reader.events();
    reader
        .connect(
            SyncConfig::new(url(&relay))
                .with_token(token(&["team-*"], false))
                .with_backoff(quick()),
        )
        .unwrap();
    let announced = next_event(&mut events, |e| {
        matches!(e, ClientEvent::AccessChanged { .. })
    })
    .await;
    assert!(
        matches!(
            announced,
            Some(ClientEvent::AccessChanged {
                access: Access::ReadOnly,
                ..
            })
        ),
        "{announced:?}"
    );
    let mut status = r.status();
    // (`wait_for`'s guard is dropped within the statement: held, it would
    // block the sync task's status updates.)
    let settled = matches!(
        tokio::time::timeout(
            WAIT,
            status.wait_for(|s| matches!(s, SyncStatus::ReadOnly { .. })),
        )
        .await,
        Ok(Ok(_))
    );
    assert!(settled, "status {:?}", *r.status().borrow());
    // The offline edit is reported as unsent, not as pending forever ...
    assert_eq!(*r.status().borrow(), SyncStatus::ReadOnly { unsent: 1 });
    assert!(
        !r.wait_synced(Duration::from_millis(300)).await,
        "an unsendable edit is not synced"
    );
    // ... the writer's text arrived ...
    let deadline = tokio::time::Instant::now() + WAIT;
    while body(&r) != "from the writer" {
        assert!(tokio::time::Instant::now() < deadline, "reader receives");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ... and new edits are refused with a typed error, changing nothing.
    let before = r.version();
    match r.transact(|tx| tx.text("t")?.insert(0, "nope")) {
        Err(Error::ReadOnly(doc)) => assert_eq!(doc.as_str(), "team-doc"),
        other => panic!("expected Error::ReadOnly, got {other:?}"),
    }
    assert_eq!(r.version(), before);
    assert_eq!(body(&r), "from the writer");
    // Later writes keep arriving; nothing of the reader reaches the writer.
    w.transact(|tx| tx.text("t")?.insert(0, ">> ")).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while body(&r) != ">> from the writer" {
        assert!(tokio::time::Instant::now() < deadline, "reader receives");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(w.read(|d| d.counter("offline").unwrap()), 0);

    // A reader with nothing unsent is synced, read-only.
    let clean = Client::in_memory();
    let c = clean.replica("team-doc").unwrap();
    clean
        .connect(SyncConfig::new(url(&relay)).with_token(token(&["team-*"], false)))
        .unwrap();
    assert!(c.wait_synced(WAIT).await);
    assert_eq!(*c.status().borrow(), SyncStatus::ReadOnly { unsent: 0 });

    // A write token on the next connection: edits are accepted again and
    // the offline edit finally syncs.
    reader.set_token(Some(token(&["team-*"], true)));
    reader.disconnect().await;
    reader
        .connect(SyncConfig::new(url(&relay)).with_token(token(&["team-*"], true)))
        .unwrap();
    assert!(r.wait_synced(WAIT).await);
    assert_eq!(*r.access().borrow(), Some(Access::ReadWrite));
    r.transact(|tx| tx.counter("offline")?.increment(1))
        .unwrap();
    assert!(r.wait_synced(WAIT).await);
    let deadline = tokio::time::Instant::now() + WAIT;
    while w.read(|d| d.counter("offline").unwrap()) != 2 {
        assert!(tokio::time::Instant::now() < deadline, "writer receives");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    writer.disconnect().await;
    reader.disconnect().await;
    clean.disconnect().await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_now_skips_a_long_backoff() {
    // Reserve a port, leave it closed: the client backs off.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let client = Client::in_memory();
    let doc = client.replica("r").unwrap();
    doc.transact(|tx| tx.text("t")?.insert(0, "made offline"))
        .unwrap();
    // Every delay is 60 s (jitter draws below that).
    let slow = Backoff {
        initial: Duration::from_secs(60),
        max: Duration::from_secs(60),
    };
    client
        .connect(SyncConfig::new(format!("ws://127.0.0.1:{port}/ws")).with_backoff(slow))
        .unwrap();
    // Wait until the client is backing off for long (a short jitter draw
    // is followed by another).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let long = matches!(*client.connection().borrow(), ConnectionState::BackingOff { retry_in, .. } if retry_in > Duration::from_secs(3));
        if long {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never backed off for long"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The relay comes up on that port (the network is back) ...
    let mut config = RelayConfig::insecure_local();
    config.listen = ([127, 0, 0, 1], port).into();
    let relay = Relay::start(config)
        .await
        .expect("relay on the reserved port");
    // ... and the app says so: connected well before the backoff ends.
    let start = std::time::Instant::now();
    client.reconnect_now();
    assert!(doc.wait_synced(WAIT).await);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "reconnected in {:?}",
        start.elapsed()
    );
    assert!(matches!(
        *client.connection().borrow(),
        ConnectionState::Connected { .. }
    ));
    // Connected: reconnect_now changes nothing.
    client.reconnect_now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(matches!(
        *client.connection().borrow(),
        ConnectionState::Connected { .. }
    ));
    assert_eq!(*doc.status().borrow(), SyncStatus::Synced);
    client.disconnect().await;
    relay.shutdown().await;
}

/// Edits racing a close: every edit that returned `Ok` is in the store
/// when `close` returns (the replica reopened from it has them all), and
/// every edit after it gets `Closed`. Without the close taking the
/// document's lock, an edit that checked "open" just before could commit
/// after the reopen read the store.
#[test]
fn an_edit_racing_close_is_either_refused_or_kept() {
    for round in 0..40 {
        let client = Client::in_memory();
        let doc = client.replica("race").unwrap();
        let writers: Vec<_> = (0..2)
            .map(|w| {
                let doc = doc.clone();
                std::thread::spawn(move || {
                    let mut ok = 0u64;
                    loop {
                        match doc.transact(|tx| tx.counter("n")?.increment(1)) {
                            Ok(_) => ok += 1,
                            Err(Error::Closed(_)) => return ok,
                            Err(e) => panic!("writer {w}: {e}"),
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(2));
        assert!(client.close("race"));
        let again = client.replica("race").unwrap();
        let stored = again.read(|d| d.counter("n").unwrap());
        let ok: u64 = writers.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(
            stored,
            i128::from(ok),
            "round {round}: acknowledged edits lost"
        );
        assert!(matches!(
            doc.transact(|tx| tx.counter("n")?.increment(1)),
            Err(Error::Closed(_))
        ));
    }
}
