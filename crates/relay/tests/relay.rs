//! The relay over real sockets on 127.0.0.1: convergence, every error code,
//! presence, slow readers, unloading, operations endpoints, shutdown.

mod common;

use std::time::Duration;

use common::{append, http_get, new_doc, noise, TestClient, WAIT};
use weft_core::Doc;
use weft_protocol::{Access, DocId, ErrorCode, Frame, PresenceState};
use weft_relay::auth::{mint_token, Claims};
use weft_relay::{AuthConfig, Relay, RelayConfig};

fn id(s: &str) -> DocId {
    DocId::new(s).unwrap()
}

async fn relay_with(f: impl FnOnce(&mut RelayConfig)) -> Relay {
    let mut config = RelayConfig::insecure_local();
    f(&mut config);
    Relay::start(config).await.expect("relay starts")
}

/// Drains frames into `doc` until `done(doc)` holds.
async fn read_until(c: &mut TestClient, doc: &mut Doc, done: impl Fn(&Doc) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done(doc) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting to converge"
        );
        match c.try_recv(Duration::from_millis(200)).await {
            Some(Frame::Remote { update, .. }) | Some(Frame::Synced { update, .. }) => {
                doc.apply(&update).expect("remote applies");
            }
            Some(_) | None => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_clients_converge_with_the_server_copy() {
    let relay = relay_with(|_| {}).await;
    let addr = relay.local_addr();
    const CLIENTS: usize = 8;
    const EDITS: usize = 25;
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        tasks.push(tokio::spawn(async move {
            let mut c = TestClient::connect(addr, None).await;
            let mut doc = new_doc();
            c.subscribe("shared", &mut doc).await;
            let mut acked = 0;
            for e in 0..EDITS {
                let u = doc
                    .transact(|tx| {
                        let mut t = tx.text("t")?;
                        // at either end, so no marker is ever split
                        let at = if (e + i) % 2 == 0 { 0 } else { t.len() };
                        t.insert(at, &format!("<{i}.{e}>"))?;
                        tx.counter("n")?.increment(1)
                    })
                    .unwrap();
                c.update("shared", u).await;
                // interleave reading so the socket never backs up
                while let Some(f) = c.try_recv(Duration::from_millis(1)).await {
                    match f {
                        Frame::Remote { update, .. } => {
                            doc.apply(&update).unwrap();
                        }
                        Frame::Ack { .. } => acked += 1,
                        other => panic!("unexpected {other:?}"),
                    }
                }
            }
            let total = (CLIENTS * EDITS) as i128;
            let deadline = tokio::time::Instant::now() + WAIT;
            while acked < EDITS || doc.counter("n").unwrap() < total {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "client {i} stuck: {acked} acks"
                );
                match c.try_recv(Duration::from_millis(200)).await {
                    Some(Frame::Remote { update, .. }) => {
                        doc.apply(&update).unwrap();
                    }
                    Some(Frame::Ack { .. }) => acked += 1,
                    Some(other) => panic!("unexpected {other:?}"),
                    None => {}
                }
            }
            doc
        }));
    }
    let mut docs = Vec::new();
    for t in tasks {
        docs.push(t.await.unwrap());
    }
    let text = docs[0].text("t").unwrap().to_string();
    for d in &docs {
        assert_eq!(d.text("t").unwrap().to_string(), text);
        assert_eq!(d.counter("n").unwrap(), (CLIENTS * EDITS) as i128);
    }
    for i in 0..CLIENTS {
        for e in 0..EDITS {
            assert!(text.contains(&format!("<{i}.{e}>")), "lost <{i}.{e}>");
        }
    }
    // The server's copy, fetched as a backup snapshot, is the same document.
    let (status, body) = http_get(addr, "/v1/docs/shared/snapshot", None).await;
    assert_eq!(status, 200);
    let server = Doc::load(&body, weft_core::ReplicaId::random()).unwrap();
    assert_eq!(server.text("t").unwrap().to_string(), text);
    assert_eq!(server.version(), docs[0].version());
    // A late client catches up with exactly the server's state.
    let mut late = TestClient::connect(addr, None).await;
    let mut doc = new_doc();
    late.subscribe("shared", &mut doc).await;
    assert_eq!(doc.text("t").unwrap().to_string(), text);
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_is_announced_before_synced_on_protocol_2_only() {
    let relay = relay_with(|_| {}).await;
    let addr = relay.local_addr();
    // Protocol 2: Access, then Synced (read directly, not through `recv`).
    let mut c = TestClient::connect(addr, None).await;
    c.send(&Frame::Subscribe {
        doc: id("d"),
        version: Default::default(),
    })
    .await;
    // `recv` records Access frames and returns the next other frame: the
    // first is Synced, and Access was recorded before it.
    assert!(matches!(c.recv().await, Frame::Synced { .. }));
    assert_eq!(c.access, [(id("d"), Access::ReadWrite)]);
    // A version 1 client is never sent a frame its version lacks.
    let mut old = TestClient::connect_raw(addr).await;
    old.send(&Frame::Hello {
        min_version: 1,
        max_version: 1,
        client_name: None,
        token: None,
    })
    .await;
    match old.recv().await {
        Frame::Welcome {
            protocol_version, ..
        } => assert_eq!(protocol_version, 1),
        other => panic!("expected Welcome, got {other:?}"),
    }
    let mut doc = new_doc();
    old.subscribe("d", &mut doc).await;
    assert!(old.access.is_empty());
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_answers_only_what_the_client_lacks_and_acks_after_storing() {
    let relay = relay_with(|_| {}).await;
    let addr = relay.local_addr();
    let mut a = TestClient::connect(addr, None).await;
    let mut da = new_doc();
    a.subscribe("d", &mut da).await;
    let u1 = append(&mut da, "hello ");
    let s1 = a.update("d", u1.clone()).await;
    assert!(matches!(a.recv().await, Frame::Ack { seq, .. } if seq == s1));
    // Duplicate: acked again, nothing fanned out.
    let s2 = a.update("d", u1).await;
    assert!(matches!(a.recv().await, Frame::Ack { seq, .. } if seq == s2));

    let mut b = TestClient::connect(addr, None).await;
    let mut db = new_doc();
    db.merge(&da);
    b.send(&Frame::Subscribe {
        doc: id("d"),
        version: db.version().clone(),
    })
    .await;
    match b.recv().await {
        Frame::Synced {
            update, version, ..
        } => {
            assert_eq!(&version, da.version());
            let before = db.version().clone();
            db.apply(&update).unwrap();
            assert_eq!(
                db.version(),
                &before,
                "an up-to-date client gets nothing new"
            );
        }
        other => panic!("{other:?}"),
    }
    let u = append(&mut da, "world");
    a.update("d", u).await;
    assert!(matches!(a.recv().await, Frame::Ack { .. }));
    match b.recv().await {
        Frame::Remote { update, .. } => {
            db.apply(&update).unwrap();
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(db.text("t").unwrap().to_string(), "hello world");
    // the sender does not get its own update back
    assert!(a.try_recv(Duration::from_millis(200)).await.is_none());
    relay.shutdown().await;
}

/// A bystander that must keep working while others misbehave.
async fn bystander_still_served(addr: std::net::SocketAddr) {
    let mut c = TestClient::connect(addr, None).await;
    let mut d = new_doc();
    c.subscribe("bystander", &mut d).await;
    let u = append(&mut d, "still here");
    let seq = c.update("bystander", u).await;
    assert!(matches!(c.recv().await, Frame::Ack { seq: s, .. } if s == seq));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_get_their_codes_and_others_keep_being_served() {
    let relay = relay_with(|c| {
        c.limits.wire.max_frame_bytes = 64 * 1024;
        c.limits.wire.max_update_bytes = 1024;
        c.limits.wire.max_docs = 2;
    })
    .await;
    let addr = relay.local_addr();

    // 1 BadFrame: garbage bytes, and a text message.
    let mut c = TestClient::connect(addr, None).await;
    c.send_bytes(b"garbage that is not a frame".to_vec()).await;
    assert_eq!(c.expect_error().await.0, ErrorCode::BadFrame);
    assert!(c.closed().await);
    let mut c = TestClient::connect(addr, None).await;
    use futures_util::SinkExt;
    c.ws.send(tokio_tungstenite::tungstenite::Message::Text("hi".into()))
        .await
        .unwrap();
    assert_eq!(c.expect_error().await.0, ErrorCode::BadFrame);
    bystander_still_served(addr).await;

    // 2 FrameTooLarge: over max_frame_bytes, just over or far over (refused
    // at the WebSocket frame header, before the payload is read).
    let mut c = TestClient::connect(addr, None).await;
    c.send_bytes(vec![0u8; 64 * 1024 + 1]).await;
    assert_eq!(c.expect_error().await.0, ErrorCode::FrameTooLarge);
    assert!(c.closed().await);
    let mut c = TestClient::connect(addr, None).await;
    let _ = futures_util::SinkExt::send(
        &mut c.ws,
        tokio_tungstenite::tungstenite::Message::Binary(vec![0u8; 2 << 20].into()),
    )
    .await;
    assert_eq!(c.expect_error().await.0, ErrorCode::FrameTooLarge);
    assert!(c.closed().await);

    // 3 UnsupportedVersion.
    let mut c = TestClient::connect_raw(addr).await;
    c.send(&Frame::Hello {
        min_version: 7,
        max_version: 9,
        client_name: None,
        token: None,
    })
    .await;
    assert_eq!(c.expect_error().await.0, ErrorCode::UnsupportedVersion);
    assert!(c.closed().await);

    // 4 UnexpectedFrame: Subscribe before Hello; a second Hello; a server frame.
    let mut c = TestClient::connect_raw(addr).await;
    c.send(&Frame::Subscribe {
        doc: id("x"),
        version: Default::default(),
    })
    .await;
    assert_eq!(c.expect_error().await.0, ErrorCode::UnexpectedFrame);
    let mut c = TestClient::connect(addr, None).await;
    c.send(&Frame::hello(None, None)).await;
    assert_eq!(c.expect_error().await.0, ErrorCode::UnexpectedFrame);
    let mut c = TestClient::connect(addr, None).await;
    c.send(&Frame::Ack {
        doc: id("x"),
        seq: 1,
    })
    .await;
    assert_eq!(c.expect_error().await.0, ErrorCode::UnexpectedFrame);

    // 5 InvalidDocId: a Subscribe naming "..", encoded by hand.
    let mut c = TestClient::connect(addr, None).await;
    let mut bytes = Frame::Subscribe {
        doc: id("ab"),
        version: Default::default(),
    }
    .encode();
    let at = bytes.windows(2).position(|w| w == b"ab").unwrap();
    bytes[at] = b'.';
    bytes[at + 1] = b'.';
    c.send_bytes(bytes).await;
    assert_eq!(c.expect_error().await.0, ErrorCode::InvalidDocId);
    assert!(c.closed().await);

    // 101 TooManyDocs, 102 NotSubscribed, 252 UpdateTooLarge: the
    // connection stays open.
    let mut c = TestClient::connect(addr, None).await;
    let (mut d1, mut d2) = (new_doc(), new_doc());
    c.subscribe("one", &mut d1).await;
    c.subscribe("two", &mut d2).await;
    c.send(&Frame::Subscribe {
        doc: id("three"),
        version: Default::default(),
    })
    .await;
    assert_eq!(
        c.expect_error().await,
        (ErrorCode::TooManyDocs, Some(id("three")), None)
    );
    let u = append(&mut d1, "x");
    c.send(&Frame::Update {
        doc: id("three"),
        seq: 9,
        update: u,
    })
    .await;
    assert_eq!(
        c.expect_error().await,
        (ErrorCode::NotSubscribed, Some(id("three")), Some(9))
    );
    let big = append(&mut d1, &noise(4000, 7));
    c.send(&Frame::Update {
        doc: id("one"),
        seq: 10,
        update: big,
    })
    .await;
    assert_eq!(
        c.expect_error().await,
        (ErrorCode::UpdateTooLarge, Some(id("one")), Some(10))
    );
    // 250 UpdateRejected: bytes that are no document update.
    c.send(&Frame::Update {
        doc: id("one"),
        seq: 11,
        update: b"WEFTnonsense".to_vec(),
    })
    .await;
    assert_eq!(
        c.expect_error().await,
        (ErrorCode::UpdateRejected, Some(id("one")), Some(11))
    );
    // ... and the same connection still works.
    let ok = append(&mut d2, "fine");
    let seq = c.update("two", ok).await;
    assert!(matches!(c.recv().await, Frame::Ack { seq: s, .. } if s == seq));
    bystander_still_served(addr).await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked_for_signature_expiry_documents_and_write() {
    let secret = b"0123456789abcdef0123456789abcdef-test".to_vec();
    let relay = relay_with(|c| {
        c.auth = AuthConfig::Hs256 {
            secret: secret.clone(),
        }
    })
    .await;
    let addr = relay.local_addr();
    let token = |docs: &[&str], write: bool, ttl: i64| {
        let mut claims = Claims::new("t", docs.iter().map(|s| s.to_string()).collect(), write, 0);
        claims.exp = (claims.exp as i64 + ttl) as u64;
        mint_token(&secret, &claims).unwrap()
    };

    // 6 Unauthorized: missing, garbage, wrong key.
    for t in [
        None,
        Some("not.a.jwt".to_string()),
        Some(
            mint_token(
                b"another secret entirely, 32 bytes+",
                &Claims::new("t", vec!["*".into()], true, 60),
            )
            .unwrap(),
        ),
    ] {
        let mut c = TestClient::connect_raw(addr).await;
        c.send(&Frame::hello(None, t)).await;
        assert_eq!(c.expect_error().await.0, ErrorCode::Unauthorized);
        assert!(c.closed().await);
    }
    // 7 TokenExpired.
    let mut c = TestClient::connect_raw(addr).await;
    c.send(&Frame::hello(None, Some(token(&["*"], true, -10))))
        .await;
    assert_eq!(c.expect_error().await.0, ErrorCode::TokenExpired);

    // 100 Forbidden for a document outside the token; 251 ReadOnly.
    let mut reader = TestClient::connect(addr, Some(token(&["team-*"], false, 60))).await;
    reader
        .send(&Frame::Subscribe {
            doc: id("private"),
            version: Default::default(),
        })
        .await;
    assert_eq!(
        reader.expect_error().await,
        (ErrorCode::Forbidden, Some(id("private")), None)
    );
    let mut doc = new_doc();
    reader.subscribe("team-notes", &mut doc).await;
    // Protocol 2: the reader was told before `Synced` (and nothing for the
    // forbidden document).
    assert_eq!(reader.access, [(id("team-notes"), Access::ReadOnly)]);
    let u = append(&mut doc, "nope");
    let seq = reader.update("team-notes", u).await;
    assert_eq!(
        reader.expect_error().await,
        (ErrorCode::ReadOnly, Some(id("team-notes")), Some(seq))
    );

    // A writer's update reaches the read-only subscriber.
    let mut writer = TestClient::connect(addr, Some(token(&["team-notes"], true, 60))).await;
    let mut wd = new_doc();
    writer.subscribe("team-notes", &mut wd).await;
    assert_eq!(writer.access, [(id("team-notes"), Access::ReadWrite)]);
    let u = append(&mut wd, "from the writer");
    writer.update("team-notes", u).await;
    assert!(matches!(writer.recv().await, Frame::Ack { .. }));
    let mut rd = new_doc();
    read_until(&mut reader, &mut rd, |d| {
        d.text("t").map(|t| t.to_string()).unwrap_or_default() == "from the writer"
    })
    .await;

    // A token that expires during the connection closes it with 7, without
    // the client sending anything (lifecycle.rs times it).
    // (2 s, not 1: expiry has whole-second resolution, and a token minted
    // just before a second boundary would expire before its Hello.)
    let mut short = TestClient::connect(addr, Some(token(&["*"], true, 2))).await;
    assert_eq!(short.expect_error().await.0, ErrorCode::TokenExpired);
    // Snapshot endpoint needs a token with read access.
    assert_eq!(
        http_get(addr, "/v1/docs/team-notes/snapshot", None).await.0,
        401
    );
    assert_eq!(
        http_get(
            addr,
            "/v1/docs/team-notes/snapshot",
            Some(&token(&["other"], false, 60))
        )
        .await
        .0,
        403
    );
    let (status, body) = http_get(
        addr,
        "/v1/docs/team-notes/snapshot",
        Some(&token(&["team-*"], false, 60)),
    )
    .await;
    assert_eq!(status, 200);
    let d = Doc::load(&body, weft_core::ReplicaId::random()).unwrap();
    assert_eq!(d.text("t").unwrap().to_string(), "from the writer");
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_rate_connections_and_idle_time() {
    let relay = relay_with(|c| {
        c.limits.updates_per_sec = 1;
        c.limits.update_burst = 2;
        c.limits.max_connections_per_ip = 3;
        c.limits.wire.idle_timeout_ms = 600;
    })
    .await;
    let addr = relay.local_addr();
    // 200 RateLimited beyond the burst.
    let mut c = TestClient::connect(addr, None).await;
    let mut d = new_doc();
    c.subscribe("r", &mut d).await;
    let mut codes = Vec::new();
    for i in 0..3 {
        let u = append(&mut d, &i.to_string());
        c.update("r", u).await;
    }
    for _ in 0..3 {
        match c.recv().await {
            Frame::Ack { .. } => codes.push(None),
            Frame::Error { code, .. } => codes.push(Some(code)),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(codes, vec![None, None, Some(ErrorCode::RateLimited)]);
    // Past the per-IP limit (c is one of three) the socket is closed at
    // accept: the upgrade fails (lifecycle.rs has the details).
    let _b = TestClient::connect(addr, None).await;
    let _c = TestClient::connect(addr, None).await;
    let over = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::connect_async(format!("ws://{addr}/ws")),
    )
    .await
    .expect("refused at once");
    assert!(
        over.is_err(),
        "a fourth connection from one IP was upgraded"
    );
    // 10 IdleTimeout after silence; a pinging client stays.
    let started = std::time::Instant::now();
    assert_eq!(c.expect_error().await.0, ErrorCode::IdleTimeout);
    assert!(started.elapsed() < Duration::from_secs(5));
    drop((c, _b, _c));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut p = TestClient::connect(addr, None).await;
    for n in 0..4 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        p.send(&Frame::Ping { nonce: n }).await;
        assert_eq!(p.recv().await, Frame::Pong { nonce: n });
    }
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_shared_and_expires_when_a_peer_leaves() {
    let relay = relay_with(|_| {}).await;
    let addr = relay.local_addr();
    let mut a = TestClient::connect(addr, None).await;
    let mut b = TestClient::connect(addr, None).await;
    let (mut da, mut db) = (new_doc(), new_doc());
    a.subscribe("p", &mut da).await;
    b.subscribe("p", &mut db).await;
    let state = PresenceState {
        user: "ada".into(),
        color: "#ff0000".into(),
        cursor: None,
        extra: vec![],
    };
    a.send(&Frame::Presence {
        doc: id("p"),
        state: Some(state.clone()),
    })
    .await;
    let pa = a.peer.unwrap();
    assert_eq!(
        b.recv().await,
        Frame::PresenceUpdate {
            doc: id("p"),
            peers: vec![(pa, state.clone())]
        }
    );
    // A newcomer sees who is there right after Synced.
    let mut c = TestClient::connect(addr, None).await;
    let mut dc = new_doc();
    c.subscribe("p", &mut dc).await;
    assert_eq!(
        c.recv().await,
        Frame::PresenceUpdate {
            doc: id("p"),
            peers: vec![(pa, state)]
        }
    );
    // a's connection closes: the others learn it is gone.
    drop(a);
    assert_eq!(
        b.recv().await,
        Frame::PresenceRemoved {
            doc: id("p"),
            peers: vec![pa]
        }
    );
    assert_eq!(
        c.recv().await,
        Frame::PresenceRemoved {
            doc: id("p"),
            peers: vec![pa]
        }
    );
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_reading_is_bounded_then_caught_up_or_disconnected() {
    let relay = relay_with(|c| {
        c.limits.outbound_queue_bytes = 64 * 1024;
        c.limits.outbound_queue_frames = 1024;
        c.limits.updates_per_sec = 1_000_000;
        c.limits.update_burst = 1_000_000;
        c.limits.slow_consumer_grace = Duration::from_secs(60);
    })
    .await;
    let addr = relay.local_addr();
    // The slow reader: small kernel buffers so its queue on the server fills.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(
        format!("ws://{addr}/ws"),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .unwrap();
    let mut slow = TestClient::from_ws(ws);
    slow.send(&Frame::hello(None, None)).await;
    assert!(matches!(slow.recv().await, Frame::Welcome { .. }));
    let mut sd = new_doc();
    slow.subscribe("flood", &mut sd).await;

    let mut w = TestClient::connect(addr, None).await;
    let mut wd = new_doc();
    w.subscribe("flood", &mut wd).await;
    // Incompressible text (updates are DEFLATEd): ~1 KB per update, 8 MB in
    // all, more than the kernel buffers between server and reader hold.
    const N: usize = 8000;
    let mut acks = 0;
    for i in 0..N {
        let u = append(&mut wd, &noise(1000, i as u64));
        w.update("flood", u).await;
        while let Some(f) = w.try_recv(Duration::from_millis(0)).await {
            assert!(matches!(f, Frame::Ack { .. }), "{f:?}");
            acks += 1;
        }
    }
    while acks < N {
        assert!(matches!(w.recv().await, Frame::Ack { .. }));
        acks += 1;
    }
    // The server's queue for the slow reader never exceeded its bounds.
    let (_, metrics) = http_get(addr, "/metrics", None).await;
    let metrics = String::from_utf8(metrics).unwrap();
    let resyncs_before = metric(&metrics, "weft_relay_slow_reader_resyncs_total");
    let queued = metric(&metrics, "weft_relay_outbound_queued_frames");
    assert!(queued <= 1024.0, "queued frames {queued}");
    // Now it reads again: it catches up with the writer, with one diff.
    let want = wd.text("t").unwrap().len();
    read_until(&mut slow, &mut sd, |d| {
        d.text("t").map(|t| t.len()).unwrap_or(0) == want
    })
    .await;
    assert_eq!(sd.version(), wd.version());
    let (_, metrics) = http_get(addr, "/metrics", None).await;
    let resyncs = metric(
        &String::from_utf8(metrics).unwrap(),
        "weft_relay_slow_reader_resyncs_total",
    );
    assert!(
        resyncs > resyncs_before || resyncs >= 1.0,
        "the slow reader was never marked behind"
    );
    relay.shutdown().await;
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_documents_unload_and_reload_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay_with(|c| {
        c.data = Some(dir.path().to_path_buf());
        c.limits.doc_idle_unload = Duration::from_millis(200);
    })
    .await;
    let addr = relay.local_addr();
    let mut c = TestClient::connect(addr, None).await;
    let mut d = new_doc();
    c.subscribe("u", &mut d).await;
    let u = append(&mut d, "kept");
    c.update("u", u).await;
    assert!(matches!(c.recv().await, Frame::Ack { .. }));
    c.send(&Frame::Unsubscribe { doc: id("u") }).await;
    let deadline = std::time::Instant::now() + WAIT;
    while relay.documents_loaded() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "document never unloaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut fresh = new_doc();
    c.subscribe("u", &mut fresh).await;
    assert_eq!(fresh.text("t").unwrap().to_string(), "kept");
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_and_graceful_shutdown() {
    let relay = relay_with(|_| {}).await;
    let addr = relay.local_addr();
    assert_eq!(
        http_get(addr, "/healthz", None).await,
        (200, b"ok\n".to_vec())
    );
    let mut c = TestClient::connect(addr, None).await;
    let mut d = new_doc();
    c.subscribe("m", &mut d).await;
    let u = append(&mut d, "x");
    c.update("m", u).await;
    assert!(matches!(c.recv().await, Frame::Ack { .. }));
    let (status, body) = http_get(addr, "/metrics", None).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    for name in [
        "weft_relay_connections",
        "weft_relay_documents_loaded",
        "weft_relay_updates_in_total",
        "weft_relay_updates_stored_total",
        "weft_relay_bytes_out_total",
        "weft_relay_fanout_lag_seconds",
        "weft_relay_store_seconds",
        "weft_relay_ack_lag_seconds",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
    // Latencies are histograms with fixed buckets, not decaying summaries:
    // a rare slow commit stays visible in the bucket counts.
    for name in ["weft_relay_store_seconds", "weft_relay_ack_lag_seconds"] {
        assert!(
            text.contains(&format!("{name}_bucket{{le=\"0.001\"}}"))
                && text.contains(&format!("{name}_bucket{{le=\"+Inf\"}}")),
            "{name} is exported with buckets"
        );
        assert!(
            !text.contains(&format!("{name}{{quantile=")),
            "{name} is not a summary"
        );
    }
    assert!(metric(&text, "weft_relay_updates_stored_total") >= 1.0);
    let shutdown = tokio::spawn(relay.shutdown());
    assert_eq!(c.expect_error().await.0, ErrorCode::ShuttingDown);
    assert!(c.closed().await);
    tokio::time::timeout(WAIT, shutdown).await.unwrap().unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_several_large_documents_at_once_is_not_a_slow_reader() {
    let relay = relay_with(|c| c.limits.outbound_queue_bytes = 64 * 1024).await;
    let addr = relay.local_addr();
    let mut w = TestClient::connect(addr, None).await;
    let mut contents = Vec::new();
    for n in 0..3 {
        let name = format!("big{n}");
        let mut d = new_doc();
        w.subscribe(&name, &mut d).await;
        let u = append(&mut d, &noise(100_000, n + 1));
        w.update(&name, u).await;
        assert!(matches!(w.recv().await, Frame::Ack { .. }));
        contents.push(d.text("t").unwrap().to_string());
    }
    // Three Synced of ~100 KB each, queued before the client reads any.
    let mut r = TestClient::connect(addr, None).await;
    for n in 0..3 {
        r.send(&Frame::Subscribe {
            doc: id(&format!("big{n}")),
            version: Default::default(),
        })
        .await;
    }
    for n in 0..3 {
        match r.recv().await {
            Frame::Synced { doc, update, .. } => {
                assert_eq!(doc, id(&format!("big{n}")));
                let mut d = new_doc();
                d.apply(&update).unwrap();
                assert_eq!(d.text("t").unwrap().to_string(), contents[n as usize]);
            }
            other => panic!("{other:?}"),
        }
    }
    relay.shutdown().await;
}
