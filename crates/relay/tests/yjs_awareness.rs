//! Awareness in Yjs rooms against a hostile user, spoken as raw
//! y-protocols messages (lib0 encoding) over a WebSocket: another user
//! cannot take over or blank someone's presence by reusing their client
//! id, and a loop of awareness queries is not answered in full each time.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use weft_relay::auth::{mint_token, Claims};
use weft_relay::{AuthConfig, Relay, RelayConfig};

const SECRET: &[u8] = b"yjs-awareness-test-secret-of-32-bytes";
const MSG_AWARENESS: u64 = 1;
const MSG_QUERY_AWARENESS: u64 = 3;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn var_uint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn read_var_uint(b: &[u8], at: &mut usize) -> u64 {
    let (mut n, mut shift) = (0u64, 0);
    loop {
        let byte = b[*at];
        *at += 1;
        n |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return n;
        }
        shift += 7;
    }
}

/// An awareness message setting `client`'s state at `clock`.
fn awareness(client: u64, clock: u64, state: &str) -> Vec<u8> {
    let mut payload = Vec::new();
    var_uint(&mut payload, 1);
    var_uint(&mut payload, client);
    var_uint(&mut payload, clock);
    var_uint(&mut payload, state.len() as u64);
    payload.extend_from_slice(state.as_bytes());
    let mut msg = Vec::new();
    var_uint(&mut msg, MSG_AWARENESS);
    var_uint(&mut msg, payload.len() as u64);
    msg.extend_from_slice(&payload);
    msg
}

/// The `(client, clock, state)` entries of an awareness message, or `None`
/// for another message.
fn entries(msg: &[u8]) -> Option<Vec<(u64, u64, String)>> {
    let mut at = 0;
    if read_var_uint(msg, &mut at) != MSG_AWARENESS {
        return None;
    }
    let _len = read_var_uint(msg, &mut at);
    let n = read_var_uint(msg, &mut at);
    let mut out = Vec::new();
    for _ in 0..n {
        let client = read_var_uint(msg, &mut at);
        let clock = read_var_uint(msg, &mut at);
        let len = read_var_uint(msg, &mut at) as usize;
        let state = String::from_utf8(msg[at..at + len].to_vec()).unwrap();
        at += len;
        out.push((client, clock, state));
    }
    Some(out)
}

async fn connect(addr: SocketAddr, user: &str, write: bool) -> Ws {
    let token = mint_token(SECRET, &Claims::new(user, vec!["*".into()], write, 600)).unwrap();
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/yjs/room?token={token}"))
        .await
        .expect("yjs upgrade");
    ws
}

async fn send(ws: &mut Ws, msg: Vec<u8>) {
    ws.send(Message::Binary(msg.into())).await.unwrap();
}

/// Awareness entries received within `wait` (every awareness message).
async fn awareness_seen(ws: &mut Ws, wait: Duration) -> Vec<Vec<(u64, u64, String)>> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let Message::Binary(b) = m {
            if let Some(e) = entries(&b) {
                seen.push(e);
            }
        }
    }
    seen
}

/// The latest state of `client` in what was seen.
fn state_of(seen: &[Vec<(u64, u64, String)>], client: u64) -> Option<String> {
    seen.iter()
        .flatten()
        .filter(|(c, _, _)| *c == client)
        .max_by_key(|(_, clock, _)| *clock)
        .map(|(_, _, s)| s.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_cannot_take_over_a_presence_and_queries_are_rate_limited() {
    let mut config = RelayConfig::insecure_local();
    config.auth = AuthConfig::Hs256 {
        secret: SECRET.to_vec(),
    };
    let relay = Relay::start(config).await.unwrap();
    let addr = relay.local_addr();

    let mut alice = connect(addr, "alice", true).await;
    send(&mut alice, awareness(42, 1, r#"{"user":"alice"}"#)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Mallory (another subject) claims alice's client id with higher
    // clocks: a new state, then a removal.
    let mut mallory = connect(addr, "mallory", true).await;
    send(&mut mallory, awareness(42, 9, r#"{"user":"mallory"}"#)).await;
    send(&mut mallory, awareness(42, 10, "null")).await;
    // Mallory's own client id is fine.
    send(&mut mallory, awareness(77, 1, r#"{"user":"mallory"}"#)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A newcomer sees alice's presence as alice set it, and mallory's own.
    let mut bob = connect(addr, "bob", false).await;
    let seen = awareness_seen(&mut bob, Duration::from_millis(1000)).await;
    assert_eq!(
        state_of(&seen, 42).as_deref(),
        Some(r#"{"user":"alice"}"#),
        "{seen:?}"
    );
    assert_eq!(
        state_of(&seen, 77).as_deref(),
        Some(r#"{"user":"mallory"}"#)
    );

    // Alice herself, reconnecting, takes her id on her new connection.
    let mut alice2 = connect(addr, "alice", true).await;
    send(
        &mut alice2,
        awareness(42, 2, r#"{"user":"alice","again":true}"#),
    )
    .await;
    let seen = awareness_seen(&mut bob, Duration::from_millis(1000)).await;
    assert_eq!(
        state_of(&seen, 42).as_deref(),
        Some(r#"{"user":"alice","again":true}"#)
    );

    // 50 queries in a burst get one full answer, not 50.
    let _ = awareness_seen(&mut mallory, Duration::from_millis(200)).await;
    for _ in 0..50 {
        let mut q = Vec::new();
        var_uint(&mut q, MSG_QUERY_AWARENESS);
        send(&mut mallory, q).await;
    }
    let answers = awareness_seen(&mut mallory, Duration::from_millis(700)).await;
    let full = answers.iter().filter(|e| e.len() >= 2).count();
    assert!((1..=2).contains(&full), "{full} full answers to 50 queries");
    drop((alice, alice2, bob, mallory));
    relay.shutdown().await;
}
