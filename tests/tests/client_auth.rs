//! Client tests of the relay's refusals (issue 7): error codes are acted on
//! by scope — a connection refusal is reported and retried with a new
//! token, a forbidden document is refused alone, a read-only update is
//! reported and not resent — and keepalive holds an idle connection open.

#[path = "client/common.rs"]
mod common;

use common::*;
use std::time::Duration;
use weft_client::{Client, ClientEvent, ConnectionState, ErrorCode, SyncStatus};
use weft_relay::auth::{mint_token, Claims};
use weft_relay::{AuthConfig, Relay, RelayConfig};
use weft_tests::proxy::Proxy;

const SECRET: &[u8] = b"client tests secret, thirty-two bytes or more";

async fn auth_relay() -> Relay {
    let mut config = RelayConfig::insecure_local();
    config.auth = AuthConfig::Hs256 {
        secret: SECRET.to_vec(),
    };
    Relay::start(config).await.unwrap()
}

fn token(docs: &[&str], write: bool) -> String {
    let docs = docs.iter().map(|d| d.to_string()).collect();
    mint_token(SECRET, &Claims::new("tester", docs, write, 3600)).unwrap()
}

/// The next event matching `pred` within 5 s.
async fn next_event(
    events: &mut tokio::sync::broadcast::Receiver<ClientEvent>,
    mut pred: impl FnMut(&ClientEvent) -> bool,
) -> Option<ClientEvent> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(event)) if pred(&event) => return Some(event),
            Ok(Ok(_)) => continue,
            _ => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthorized_is_reported_and_a_new_token_connects() {
    let relay = auth_relay().await;
    let client = Client::in_memory();
    let doc = client.replica("team-a").unwrap();
    let mut events = client.events();
    client.connect(config(&url(&relay))).unwrap();
    let refused = next_event(&mut events, |e| {
        matches!(e, ClientEvent::ConnectionError { .. })
    })
    .await;
    assert!(
        matches!(
            refused,
            Some(ClientEvent::ConnectionError {
                code: ErrorCode::Unauthorized,
                ..
            })
        ),
        "{refused:?}"
    );
    let status = *doc.status().borrow();
    assert!(
        matches!(status, SyncStatus::Offline | SyncStatus::Connecting),
        "never syncs without a token: {status:?}"
    );
    client.set_token(Some(token(&["team-*"], true)));
    assert!(doc.wait_synced(Duration::from_secs(5)).await);
    assert!(matches!(
        *client.connection().borrow(),
        ConnectionState::Connected { .. }
    ));
    client.disconnect().await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_document_is_refused_alone() {
    let relay = auth_relay().await;
    let client = Client::in_memory();
    let ok = client.replica("team-a").unwrap();
    let secret = client.replica("private").unwrap();
    secret.transact(|tx| tx.counter("n")?.increment(1)).unwrap();
    let mut events = client.events();
    client
        .connect(config(&url(&relay)).with_token(token(&["team-*"], true)))
        .unwrap();
    let refused = next_event(&mut events, |e| {
        matches!(e, ClientEvent::DocumentRefused { .. })
    })
    .await;
    match refused {
        Some(ClientEvent::DocumentRefused { doc, code, .. }) => {
            assert_eq!(doc.as_str(), "private");
            assert_eq!(code, ErrorCode::Forbidden);
        }
        other => panic!("expected DocumentRefused, got {other:?}"),
    }
    assert!(
        ok.wait_synced(Duration::from_secs(5)).await,
        "the other document syncs"
    );
    assert_eq!(
        *secret.status().borrow(),
        SyncStatus::Refused {
            code: ErrorCode::Forbidden
        }
    );
    assert_eq!(secret.read(|d| d.counter("n").unwrap()), 1, "still local");
    client.disconnect().await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_client_is_told_refuses_edits_and_still_receives() {
    let relay = auth_relay().await;
    let url = url(&relay);
    let writer = Client::in_memory();
    let w = writer.replica("team-doc").unwrap();
    writer
        .connect(config(&url).with_token(token(&["team-*"], true)))
        .unwrap();
    let reader = Client::in_memory();
    let r = reader.replica("team-doc").unwrap();
    let mut events = reader.events();
    reader
        .connect(config(&url).with_token(token(&["team-*"], false)))
        .unwrap();
    assert!(w.wait_synced(Duration::from_secs(5)).await);
    assert!(r.wait_synced(Duration::from_secs(5)).await);

    // The relay announced read-only (protocol 2): the edit is refused at
    // once with a typed error instead of queueing forever.
    let announced = next_event(&mut events, |e| {
        matches!(e, ClientEvent::AccessChanged { .. })
    })
    .await;
    assert!(
        matches!(
            announced,
            Some(ClientEvent::AccessChanged {
                access: weft_client::Access::ReadOnly,
                ..
            })
        ),
        "{announced:?}"
    );
    assert!(matches!(
        r.transact(|tx| tx.counter("n")?.increment(5)),
        Err(weft_client::Error::ReadOnly(_))
    ));
    assert_eq!(*r.status().borrow(), SyncStatus::ReadOnly { unsent: 0 });

    w.transact(|tx| tx.text("t")?.insert(0, "from the writer"))
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while r.read(|d| d.text("t").unwrap().to_string()) != "from the writer" {
        assert!(tokio::time::Instant::now() < deadline, "reader receives");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        w.read(|d| d.counter("n").unwrap()),
        0,
        "refused edit never arrives"
    );
    writer.disconnect().await;
    reader.disconnect().await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_holds_an_idle_connection_open() {
    let mut config_short = RelayConfig::insecure_local();
    config_short.limits.wire.idle_timeout_ms = 600;
    let relay = Relay::start(config_short).await.unwrap();
    let proxy = Proxy::start(relay.local_addr()).await.unwrap();
    let (client, doc) = client(&proxy.url(), "quiet");
    assert!(doc.wait_synced(Duration::from_secs(5)).await);
    tokio::time::sleep(Duration::from_millis(2000)).await; // > 3 idle timeouts
    assert_eq!(proxy.connections(), 1, "never dropped for idleness");
    assert_eq!(*doc.status().borrow(), SyncStatus::Synced);
    assert!(proxy.bytes_up() > 0);
    client.disconnect().await;
    relay.shutdown().await;
}
