//! The relay's connection lifecycle against hostile clients, over real
//! sockets on 127.0.0.1: token expiry by a timer, `nbf` and absurd `exp`,
//! the upgrade, `Hello` and partial-message deadlines, limits at accept,
//! message size before and after `Hello`, presence and subscribe floods,
//! snapshots of unknown documents, metrics protection, the WAL checkpoint.
//! Each attack ends with a coded error and/or a close, and a bystander is
//! still served. Deadlines are short here so the tests run fast.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{append, closed_after, http_get, new_doc, TestClient, WAIT};
use futures_util::SinkExt;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::MaybeTlsStream;
use weft_protocol::{DocId, ErrorCode, Frame, PresenceState};
use weft_relay::auth::{mint_token, Claims};
use weft_relay::{AuthConfig, Relay, RelayConfig};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-lifecycle";

fn id(s: &str) -> DocId {
    DocId::new(s).unwrap()
}

async fn relay_with(f: impl FnOnce(&mut RelayConfig)) -> Relay {
    let mut config = RelayConfig::insecure_local();
    f(&mut config);
    Relay::start(config).await.expect("relay starts")
}

fn with_auth(c: &mut RelayConfig) {
    c.auth = AuthConfig::Hs256 {
        secret: SECRET.to_vec(),
    };
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn token(edit: impl FnOnce(&mut Claims)) -> String {
    let mut claims = Claims::new("t", vec!["*".into()], true, 3600);
    edit(&mut claims);
    mint_token(SECRET, &claims).unwrap()
}

/// A client whose socket is bound to `ip` (any 127.0.0.0/8 address
/// reaches the relay), after Hello/Welcome.
async fn connect_from(ip: [u8; 4], addr: SocketAddr, token: Option<String>) -> TestClient {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((ip, 0))).unwrap();
    let stream = tokio::time::timeout(WAIT, socket.connect(addr))
        .await
        .expect("connect timed out")
        .expect("connect");
    let (ws, _) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::client_async(format!("ws://{addr}/ws"), MaybeTlsStream::Plain(stream)),
    )
    .await
    .expect("upgrade timed out")
    .expect("upgrade");
    let mut c = TestClient::from_ws(ws);
    c.send(&Frame::hello(Some("test".into()), token)).await;
    match c.recv().await {
        Frame::Welcome { peer, .. } => c.peer = Some(peer),
        other => panic!("expected Welcome, got {other:?}"),
    }
    c
}

/// Like [`connect_from`], retrying while the relay still counts sockets
/// that were just closed.
async fn connect_retrying(ip: [u8; 4], addr: SocketAddr) -> TestClient {
    let deadline = Instant::now() + WAIT;
    loop {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((ip, 0))).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let upgrade = tokio_tungstenite::client_async(
            format!("ws://{addr}/ws"),
            MaybeTlsStream::Plain(stream),
        );
        if let Ok(Ok((ws, _))) = tokio::time::timeout(WAIT, upgrade).await {
            let mut c = TestClient::from_ws(ws);
            c.send(&Frame::hello(None, None)).await;
            match c.recv().await {
                Frame::Welcome { peer, .. } => c.peer = Some(peer),
                other => panic!("expected Welcome, got {other:?}"),
            }
            return c;
        }
        assert!(Instant::now() < deadline, "{ip:?} stayed refused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A client from `ip` subscribes, writes, and gets its ack.
async fn bystander_from(ip: [u8; 4], addr: SocketAddr, token: Option<String>) {
    let mut c = connect_from(ip, addr, token).await;
    still_served(&mut c).await;
}

async fn bystander(addr: SocketAddr) {
    bystander_from([127, 0, 0, 1], addr, None).await;
}

/// An already connected client writes and gets its ack.
async fn still_served(c: &mut TestClient) {
    let mut d = new_doc();
    let doc = format!("bystander-{}", c.peer.map_or(0, |p| p.0));
    c.subscribe(&doc, &mut d).await;
    let u = append(&mut d, "still here");
    let seq = c.update(&doc, u).await;
    loop {
        match c.recv().await {
            Frame::Ack { seq: s, .. } if s == seq => return,
            Frame::Error { code, .. } => panic!("bystander refused: {code:?}"),
            _ => continue,
        }
    }
}

/// Writes raw bytes on a client's socket (under its WebSocket codec).
async fn raw(c: &mut TestClient, bytes: &[u8]) {
    match c.ws.get_mut() {
        MaybeTlsStream::Plain(s) => s.write_all(bytes).await.expect("raw write"),
        _ => panic!("plain sockets only"),
    }
}

/// A masked client frame header (mask key 0: the payload goes as is).
fn frame_header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
    let mut h = vec![if fin { 0x80 } else { 0 } | opcode];
    match len {
        0..=125 => h.push(0x80 | len as u8),
        126..=0xFFFF => {
            h.push(0x80 | 126);
            h.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            h.push(0x80 | 127);
            h.extend_from_slice(&len.to_be_bytes());
        }
    }
    h.extend_from_slice(&[0; 4]);
    h
}

fn presence(n: u32) -> PresenceState {
    PresenceState {
        user: "flood".into(),
        color: "#00ff00".into(),
        cursor: None,
        extra: n.to_be_bytes().to_vec(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiring_token_closes_the_connection_at_exp_while_only_websocket_pings_arrive() {
    let relay = relay_with(with_auth).await;
    let addr = relay.local_addr();
    // Expires at the second boundary after next (1-2 s from now).
    let exp = now_secs() + 2;
    let short = token(|c| c.exp = exp);
    let mut reader = TestClient::connect(addr, Some(short)).await;
    let mut rd = new_doc();
    reader.subscribe("feed", &mut rd).await;
    // A writer keeps the reader's feed busy.
    let mut writer = TestClient::connect(addr, Some(token(|_| {}))).await;
    let mut wd = new_doc();
    writer.subscribe("feed", &mut wd).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let feeding = tokio::spawn(async move {
        for i in 0..60 {
            if stopped.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let u = append(&mut wd, &format!("{i} "));
            writer.update("feed", u).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        writer
    });
    // The reader only sends WebSocket pings.
    let mut remotes = 0;
    let (code, at) = loop {
        reader
            .ws
            .send(Message::Ping(b"are you there".to_vec().into()))
            .await
            .expect("ping");
        match reader.try_recv(Duration::from_millis(150)).await {
            Some(Frame::Remote { .. }) => remotes += 1,
            Some(Frame::Error { code, .. }) => break (code, SystemTime::now()),
            Some(_) => {}
            None => {}
        }
        assert!(
            SystemTime::now() < UNIX_EPOCH + Duration::from_secs(exp + 5),
            "still open long after exp"
        );
    };
    assert_eq!(code, ErrorCode::TokenExpired);
    let exp_at = UNIX_EPOCH + Duration::from_secs(exp);
    let late = at
        .duration_since(exp_at)
        .unwrap_or_else(|e| panic!("closed {:?} before exp", e.duration()));
    assert!(late < Duration::from_secs(1), "closed {late:?} after exp");
    assert!(remotes > 0, "the reader was served until then");
    assert!(reader.closed().await);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut writer = feeding.await.unwrap();
    still_served(&mut writer).await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_pings_are_not_activity() {
    let relay = relay_with(|c| c.limits.wire.idle_timeout_ms = 500).await;
    let addr = relay.local_addr();
    let mut c = TestClient::connect(addr, None).await;
    let started = Instant::now();
    let code = loop {
        c.ws.send(Message::Ping(Vec::new().into()))
            .await
            .expect("ping");
        if let Some(Frame::Error { code, .. }) = c.try_recv(Duration::from_millis(100)).await {
            break code;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "never idle");
    };
    assert_eq!(code, ErrorCode::IdleTimeout);
    assert!(started.elapsed() < Duration::from_millis(1500));
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_not_yet_valid_or_valid_too_long_are_unauthorized() {
    let relay = relay_with(|c| {
        with_auth(c);
        c.limits.max_token_lifetime = Duration::from_secs(7 * 24 * 3600);
        c.limits.token_clock_skew = Duration::from_secs(30);
    })
    .await;
    let addr = relay.local_addr();
    let now = now_secs();
    for (what, t) in [
        ("nbf in 2 minutes", token(|c| c.nbf = Some(now + 120))),
        ("exp = u64::MAX", token(|c| c.exp = u64::MAX)),
        ("exp in 8 days", token(|c| c.exp = now + 8 * 24 * 3600)),
    ] {
        let mut c = TestClient::connect_raw(addr).await;
        c.send(&Frame::hello(None, Some(t.clone()))).await;
        assert_eq!(c.expect_error().await.0, ErrorCode::Unauthorized, "{what}");
        assert!(c.closed().await, "{what}");
        // The snapshot endpoint applies the same rules.
        let (status, _) = http_get(addr, "/v1/docs/any/snapshot", Some(&t)).await;
        assert_eq!(status, 401, "{what}");
    }
    // Within the clock skew, and within the lifetime: fine.
    let skewed = token(|c| c.nbf = Some(now + 10));
    bystander_from([127, 0, 0, 1], addr, Some(skewed)).await;
    let long = token(|c| c.exp = now + 6 * 24 * 3600);
    bystander_from([127, 0, 0, 1], addr, Some(long)).await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_says_hello_gets_handshake_timeout() {
    let relay = relay_with(|c| c.limits.hello_timeout = Duration::from_millis(300)).await;
    let addr = relay.local_addr();
    let started = Instant::now();
    let mut c = TestClient::connect_raw(addr).await;
    // WebSocket pings do not count as a Hello.
    let code = loop {
        c.ws.send(Message::Ping(Vec::new().into()))
            .await
            .expect("ping");
        if let Some(Frame::Error { code, .. }) = c.try_recv(Duration::from_millis(100)).await {
            break code;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "never timed out"
        );
    };
    assert_eq!(code, ErrorCode::HandshakeTimeout);
    assert!(started.elapsed() < Duration::from_millis(1500));
    assert!(c.closed().await);
    bystander(addr).await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_not_upgraded_in_time_are_closed() {
    let relay = relay_with(|c| c.limits.upgrade_timeout = Duration::from_millis(400)).await;
    let addr = relay.local_addr();
    let started = Instant::now();
    // Plain TCP that sends nothing.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    // Half an upgrade request.
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(b"GET /ws HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\n")
        .await
        .unwrap();
    // A finished HTTP exchange kept alive.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n")
        .await
        .unwrap();
    // Meanwhile a real client connects and is served.
    bystander(addr).await;
    for (what, s) in [
        ("silent", &mut silent),
        ("half a request", &mut half),
        ("keep-alive", &mut kept),
    ] {
        let took = closed_after(s, started)
            .await
            .unwrap_or_else(|| panic!("{what}: never closed"));
        assert!(
            took >= Duration::from_millis(350) && took < Duration::from_secs(2),
            "{what}: closed after {took:?}"
        );
    }
    // The bystander's connection outlives the upgrade deadline.
    let mut c = TestClient::connect(addr, None).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    still_served(&mut c).await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_ip_limit_counts_half_open_sockets_at_accept() {
    let relay = relay_with(|c| c.limits.max_connections_per_ip = 2).await;
    let addr = relay.local_addr();
    let from = |ip: [u8; 4]| async move {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((ip, 0))).unwrap();
        socket.connect(addr).await.unwrap()
    };
    let a = from([127, 0, 0, 7]).await;
    let b = from([127, 0, 0, 7]).await;
    // The third from that address is closed at once, before any request.
    let started = Instant::now();
    let mut over = from([127, 0, 0, 7]).await;
    let took = closed_after(&mut over, started)
        .await
        .expect("never closed");
    assert!(took < Duration::from_millis(500), "closed after {took:?}");
    // ... and cannot upgrade either.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from(([127, 0, 0, 7], 0))).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let refused = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::client_async(format!("ws://{addr}/ws"), MaybeTlsStream::Plain(stream)),
    )
    .await
    .expect("refused at once");
    assert!(refused.is_err());
    // Another address is served meanwhile.
    bystander_from([127, 0, 0, 8], addr, None).await;
    // Once the half-open sockets go, the address may connect again.
    drop((a, b));
    let mut c = connect_retrying([127, 0, 0, 7], addr).await;
    still_served(&mut c).await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_waiting_for_their_upgrade_are_capped_and_upgraded_ones_are_not() {
    let relay = relay_with(|c| c.limits.max_pending_connections = 2).await;
    let addr = relay.local_addr();
    // Upgraded before the flood: it no longer counts as pending.
    let mut early = connect_from([127, 0, 0, 9], addr, None).await;
    let h1 = TcpStream::connect(addr).await.unwrap();
    let h2 = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    let mut over = TcpStream::connect(addr).await.unwrap();
    let took = closed_after(&mut over, started)
        .await
        .expect("never closed");
    assert!(took < Duration::from_millis(500), "closed after {took:?}");
    still_served(&mut early).await;
    drop((h1, h2));
    let mut c = connect_retrying([127, 0, 0, 1], addr).await;
    still_served(&mut c).await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_message_is_not_held_past_its_deadline() {
    let relay = relay_with(|c| c.limits.message_timeout = Duration::from_millis(400)).await;
    let addr = relay.local_addr();
    let mut c = TestClient::connect(addr, None).await;
    // A fragmented binary message: its first fragment, then only pings
    // (legal between fragments), never the rest.
    let started = Instant::now();
    let mut first = frame_header(false, 2, 10);
    first.extend_from_slice(&[0; 10]);
    raw(&mut c, &first).await;
    let code = loop {
        raw(&mut c, &frame_header(true, 9, 0)).await;
        if let Some(Frame::Error { code, .. }) = c.try_recv(Duration::from_millis(100)).await {
            break code;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "held for ever");
    };
    assert_eq!(code, ErrorCode::HandshakeTimeout);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert!(c.closed().await);
    // A frame whose header trickles in is timed out the same way, even
    // before Hello.
    let mut c = TestClient::connect_raw(addr).await;
    let started = Instant::now();
    raw(&mut c, &[0x82]).await;
    assert_eq!(c.expect_error().await.0, ErrorCode::HandshakeTimeout);
    assert!(started.elapsed() < Duration::from_millis(1500));
    bystander(addr).await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_get_frame_too_large_at_their_header() {
    let relay = relay_with(|c| {
        c.limits.wire.max_frame_bytes = 64 * 1024;
        c.limits.max_hello_bytes = 1024;
    })
    .await;
    let addr = relay.local_addr();
    // Before Hello: a first message over max_hello_bytes (but far under
    // max_frame_bytes). Only its header and a few bytes are sent: the
    // relay answers without waiting for (or buffering) the payload.
    let mut c = TestClient::connect_raw(addr).await;
    let mut start = frame_header(true, 2, 2000);
    start.extend_from_slice(&[0; 100]);
    raw(&mut c, &start).await;
    let (code, ..) = c.expect_error().await;
    assert_eq!(code, ErrorCode::FrameTooLarge);
    assert!(c.closed().await);
    // A Hello well within it is fine (and a 60 KiB frame after it).
    let mut c = TestClient::connect(addr, None).await;
    c.send_bytes(vec![0u8; 60 * 1024]).await;
    assert_eq!(c.expect_error().await.0, ErrorCode::BadFrame);
    // After Hello: a header declaring 1 GiB.
    let mut c = TestClient::connect(addr, None).await;
    raw(&mut c, &frame_header(true, 2, 1 << 30)).await;
    assert_eq!(c.expect_error().await.0, ErrorCode::FrameTooLarge);
    assert!(c.closed().await);
    // Fragments add up: 40 KiB + 40 KiB.
    let mut c = TestClient::connect(addr, None).await;
    let mut f = frame_header(false, 2, 40 * 1024);
    f.extend_from_slice(&vec![0; 40 * 1024]);
    f.extend(frame_header(true, 0, 40 * 1024));
    raw(&mut c, &f).await;
    assert_eq!(c.expect_error().await.0, ErrorCode::FrameTooLarge);
    // Just over the limit, sent whole by the WebSocket client.
    let mut c = TestClient::connect(addr, None).await;
    c.send_bytes(vec![0u8; 64 * 1024 + 1]).await;
    assert_eq!(c.expect_error().await.0, ErrorCode::FrameTooLarge);
    assert!(c.closed().await);
    bystander(addr).await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presence_flood_is_coalesced_and_the_latest_state_arrives() {
    let relay = relay_with(|c| {
        c.limits.presence_per_sec = 20;
        c.limits.presence_burst = 5;
    })
    .await;
    let addr = relay.local_addr();
    let mut a = TestClient::connect(addr, None).await;
    let mut b = TestClient::connect(addr, None).await;
    let (mut da, mut db) = (new_doc(), new_doc());
    a.subscribe("p", &mut da).await;
    b.subscribe("p", &mut db).await;
    const SENT: u32 = 3000;
    let started = Instant::now();
    for n in 1..=SENT {
        a.send(&Frame::Presence {
            doc: id("p"),
            state: Some(presence(n)),
        })
        .await;
    }
    let pa = a.peer.unwrap();
    let mut seen = 0u32;
    let mut last = None;
    while last != Some(SENT) {
        assert!(started.elapsed() < WAIT, "latest state never arrived");
        if let Some(Frame::PresenceUpdate { peers, .. }) =
            b.try_recv(Duration::from_millis(200)).await
        {
            for (p, st) in peers {
                if p == pa {
                    seen += 1;
                    last = Some(u32::from_be_bytes(st.extra[..4].try_into().unwrap()));
                }
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let budget = 5.0 + 20.0 * elapsed + 2.0;
    assert!(
        f64::from(seen) <= budget,
        "{seen} states delivered in {elapsed:.2} s"
    );
    assert!(seen < SENT / 10, "{seen} of {SENT} delivered");
    // The flooder's connection is fine, and so is everyone else.
    a.send(&Frame::Ping { nonce: 5 }).await;
    loop {
        if a.recv().await == (Frame::Pong { nonce: 5 }) {
            break;
        }
    }
    bystander(addr).await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribe_flood_gets_subscribe_rate_limited() {
    let relay = relay_with(|c| {
        c.limits.subscribes_per_sec = 2;
        c.limits.subscribe_burst = 5;
    })
    .await;
    let addr = relay.local_addr();
    let mut c = TestClient::connect(addr, None).await;
    const N: usize = 40;
    for i in 0..N {
        let doc = id(&format!("churn-{i}"));
        c.send(&Frame::Subscribe {
            doc: doc.clone(),
            version: Default::default(),
        })
        .await;
        c.send(&Frame::Unsubscribe { doc }).await;
    }
    let (mut synced, mut limited) = (0, 0);
    while synced + limited < N {
        match c.recv().await {
            Frame::Synced { .. } => synced += 1,
            Frame::Error {
                code: ErrorCode::SubscribeRateLimited,
                doc: Some(doc),
                ..
            } => {
                assert!(doc.as_str().starts_with("churn-"));
                limited += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!((5..=8).contains(&synced), "{synced} subscriptions served");
    assert!(relay.documents_loaded() <= 8 + 1);
    // The connection stays; the bucket refills.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let mut d = new_doc();
    c.subscribe("later", &mut d).await;
    bystander(addr).await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_of_unknown_documents_are_404() {
    let relay = relay_with(|_| {}).await;
    let addr = relay.local_addr();
    assert_eq!(
        http_get(addr, "/v1/docs/nothing/snapshot", None).await.0,
        404
    );
    // Subscribed but never written: still nothing stored.
    let mut c = TestClient::connect(addr, None).await;
    let mut d = new_doc();
    c.subscribe("empty", &mut d).await;
    assert_eq!(http_get(addr, "/v1/docs/empty/snapshot", None).await.0, 404);
    let u = append(&mut d, "now it exists");
    c.update("empty", u).await;
    assert!(matches!(c.recv().await, Frame::Ack { .. }));
    let (status, body) = http_get(addr, "/v1/docs/empty/snapshot", None).await;
    assert_eq!(status, 200);
    let server = weft_core::Doc::load(&body, weft_core::ReplicaId::random()).unwrap();
    assert_eq!(server.text("t").unwrap().to_string(), "now it exists");
    assert_eq!(relay.documents_loaded(), 1, "the 404s loaded nothing");
    bystander(addr).await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_require_a_token_or_live_on_their_own_address() {
    let secret = "metrics-secret-for-the-test";
    let relay = relay_with(|c| c.metrics_token = Some(secret.into())).await;
    let addr = relay.local_addr();
    assert_eq!(http_get(addr, "/metrics", None).await.0, 401);
    assert_eq!(http_get(addr, "/metrics", Some("wrong")).await.0, 401);
    let (status, body) = http_get(addr, "/metrics", Some(secret)).await;
    assert_eq!(status, 200);
    assert!(String::from_utf8(body).unwrap().contains("weft_relay_"));
    bystander(addr).await;
    relay.shutdown().await;

    let relay = relay_with(|c| {
        c.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await;
    let addr = relay.local_addr();
    let metrics = relay.metrics_addr().expect("metrics address");
    assert_ne!(metrics, addr);
    assert_eq!(http_get(addr, "/metrics", None).await.0, 404);
    assert_eq!(http_get(addr, "/healthz", None).await.0, 200);
    assert_eq!(http_get(metrics, "/metrics", None).await.0, 200);
    assert_eq!(http_get(metrics, "/healthz", None).await.0, 200);
    bystander(addr).await;
    relay.shutdown().await;
    assert!(
        TcpStream::connect(metrics).await.is_err(),
        "metrics still up"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_total_limit_a_client_gets_server_busy() {
    let relay = relay_with(|c| c.limits.max_connections = 1).await;
    let addr = relay.local_addr();
    let mut first = TestClient::connect(addr, None).await;
    let mut over = TestClient::connect_raw(addr).await;
    assert_eq!(over.expect_error().await.0, ErrorCode::ServerBusy);
    assert!(over.closed().await);
    still_served(&mut first).await;
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_checkpoints_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay_with(|c| c.data = Some(dir.path().to_path_buf())).await;
    let addr = relay.local_addr();
    let mut c = TestClient::connect(addr, None).await;
    let mut d = new_doc();
    c.subscribe("w", &mut d).await;
    for i in 0..20 {
        let u = append(&mut d, &format!("{i}"));
        c.update("w", u).await;
        assert!(matches!(c.recv().await, Frame::Ack { .. }));
    }
    let wal = dir.path().join(format!("{}-wal", weft_relay::STORE_FILE));
    assert!(std::fs::metadata(&wal).unwrap().len() > 0);
    let shutdown = tokio::spawn(relay.shutdown());
    assert_eq!(c.expect_error().await.0, ErrorCode::ShuttingDown);
    tokio::time::timeout(WAIT, shutdown).await.unwrap().unwrap();
    let left = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(left, 0, "WAL not checkpointed");
}
