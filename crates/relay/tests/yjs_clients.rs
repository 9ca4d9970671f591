//! Yjs rooms against real clients: the npm `yjs` + `y-websocket` suite
//! (`tests/yjs/run.mjs`, run with node against the `weft-relay` binary),
//! and hostile raw messages from a Rust WebSocket client.
//!
//! The node suite needs `tests/yjs/node_modules`: run
//! `.ci/install-node-deps.sh` once (CI does). Without it this test fails.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use weft_relay::{Relay, RelayConfig};

fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/yjs")
}

#[test]
fn real_yjs_clients_converge_survive_a_crash_and_are_bounded() {
    let dir = suite_dir();
    assert!(
        dir.join("node_modules/yjs").is_dir() && dir.join("node_modules/y-websocket").is_dir(),
        "tests/yjs/node_modules is missing: run `.ci/install-node-deps.sh` (npm ci from the checked-in lockfile)"
    );
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg("run.mjs")
        .current_dir(&dir)
        .env("WEFT_RELAY_BIN", env!("CARGO_BIN_EXE_weft-relay"))
        .spawn()
        .expect("node (v20) must be installed to run the Yjs client suite");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(150) {
            let _ = child.kill();
            panic!("the Yjs client suite ran over 150 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "the Yjs client suite failed: {status}");
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: std::net::SocketAddr, doc: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/yjs/{doc}"))
        .await
        .expect("connect");
    ws
}

/// The close code the relay ends with (reading past its other messages).
async fn close_code(ws: &mut Ws) -> Option<u16> {
    let deadline = tokio::time::sleep(Duration::from_secs(5));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Close(Some(frame)))) => return Some(frame.code.into()),
                Some(Ok(_)) => continue,
                _ => return None,
            },
            _ = &mut deadline => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_messages_close_only_their_connection() {
    let relay = Relay::start(RelayConfig::insecure_local()).await.unwrap();
    let addr = relay.local_addr();
    // A message type nobody defined; a sync update declaring 2^32-1
    // clients in a few bytes; an update nesting Any values 10,000 deep; an
    // awareness update declaring 2^40 entries; a text message.
    let mut deep = vec![1u8, 1, 1, 0, 8, 1, 1, b'm', 1];
    deep.extend(std::iter::repeat_n([117u8, 1], 10_000).flatten());
    let mut deep_msg = vec![0u8, 2];
    let mut n = deep.len();
    while n >= 0x80 {
        deep_msg.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    deep_msg.push(n as u8);
    deep_msg.extend_from_slice(&deep);
    let cases: Vec<(Message, &[u16])> = vec![
        (Message::Binary(vec![9u8].into()), &[1002]),
        (
            Message::Binary(vec![0u8, 2, 6, 0xff, 0xff, 0xff, 0xff, 0x0f, 0].into()),
            &[1007],
        ),
        (Message::Binary(deep_msg.into()), &[1007]),
        (
            Message::Binary(vec![1u8, 6, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20].into()),
            &[1002],
        ),
        (Message::Text("hello".into()), &[1003]),
    ];
    for (i, (msg, codes)) in cases.into_iter().enumerate() {
        let mut ws = connect(addr, "hostile").await;
        ws.send(msg).await.unwrap();
        let code = close_code(&mut ws).await;
        assert!(
            code.is_some_and(|c| codes.contains(&c)),
            "case {i}: closed with {code:?}, expected one of {codes:?}"
        );
    }
    // The room still serves: a client gets SyncStep1 (message 0, sub 0).
    let mut ws = connect(addr, "hostile").await;
    let first = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("a first message")
        .expect("open")
        .expect("ok");
    assert!(matches!(&first, Message::Binary(b) if b.starts_with(&[0, 0])));
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yjs_document_is_read_over_http_and_is_no_weft_document() {
    let relay = Relay::start(RelayConfig::insecure_local()).await.unwrap();
    let addr = relay.local_addr();
    // A Yjs room claims the id once an update is stored: post one.
    let doc = yrs::Doc::new();
    {
        use yrs::{Text, Transact};
        let text = doc.get_or_insert_text("t");
        text.insert(&mut doc.transact_mut(), 0, "yjs");
    }
    let update = {
        use yrs::{ReadTxn, Transact};
        doc.transact()
            .encode_state_as_update_v1(&yrs::StateVector::default())
    };
    let mut ws = connect(addr, "shared-id").await;
    let mut msg = vec![0u8, 2, update.len() as u8];
    msg.extend_from_slice(&update);
    ws.send(Message::Binary(msg.into())).await.unwrap();
    // Readable as Yjs over HTTP; not a weft document (the refusal of the
    // other kind is unit-tested in `yjs::tests`).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let body = http_get(addr, "/v1/yjs/shared-id/update").await;
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    let weft = http_get(addr, "/v1/docs/shared-id/snapshot").await;
    assert!(weft.starts_with("HTTP/1.1 404"), "{weft}");
    drop(ws);
    relay.shutdown().await;
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}
