//! HTTP for server-side code on both kinds of room: `POST
//! /v1/docs/{doc}/updates` (weft) and `GET`/`POST /v1/yjs/{doc}/update`
//! (Yjs), authenticated like the WebSocket side, and an id that is one kind
//! refused as the other.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use weft_core::{Doc, ReplicaId};
use weft_relay::auth::{mint_token, Claims};
use weft_relay::{AuthConfig, Relay, RelayConfig};

const SECRET: &[u8] = b"http-updates-test-secret-of-32-bytes!";

async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("answered")
        .unwrap();
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers")
        + 4;
    let headers = String::from_utf8_lossy(&out[..split]).into_owned();
    let status = headers[9..12].parse().unwrap();
    (status, headers, out[split..].to_vec())
}

/// The body of a `Transfer-Encoding: chunked` or plain response.
fn body_of(headers: &str, body: &[u8]) -> Vec<u8> {
    if !headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body.to_vec();
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16)
            .unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&rest[line_end + 2..line_end + 2 + n]);
        rest = &rest[line_end + 2 + n + 2..];
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_code_reads_and_writes_both_kinds_of_document() {
    let mut config = RelayConfig::insecure_local();
    config.auth = AuthConfig::Hs256 {
        secret: SECRET.to_vec(),
    };
    let relay = Relay::start(config).await.unwrap();
    let addr = relay.local_addr();
    let writer = mint_token(SECRET, &Claims::new("svc", vec!["*".into()], true, 600)).unwrap();
    let reader = mint_token(SECRET, &Claims::new("ro", vec!["*".into()], false, 600)).unwrap();

    // weft: POST an update, read the snapshot back.
    let mut doc = Doc::new(ReplicaId::new(7));
    let update = doc
        .transact(|tx| tx.text("body")?.insert(0, "from the server 世界"))
        .unwrap();
    let (status, _, _) = request(addr, "POST", "/v1/docs/notes/updates", &writer, &update).await;
    assert_eq!(status, 204);
    let (status, headers, body) =
        request(addr, "GET", "/v1/docs/notes/snapshot", &reader, &[]).await;
    assert_eq!(status, 200);
    let back = Doc::load(&body_of(&headers, &body), ReplicaId::new(8)).unwrap();
    assert_eq!(
        back.text("body").unwrap().to_string(),
        "from the server 世界"
    );
    let (status, headers, _) =
        request(addr, "POST", "/v1/docs/notes/updates", &reader, &update).await;
    assert_eq!(status, 403, "{headers}");
    let (status, headers, _) =
        request(addr, "POST", "/v1/docs/notes/updates", &writer, b"junk").await;
    assert_eq!(status, 400, "{headers}");
    assert!(
        headers.to_ascii_lowercase().contains("x-weft-error"),
        "{headers}"
    );
    let (status, _, _) = request(
        addr,
        "POST",
        "/v1/docs/notes/updates",
        "not-a-token",
        &update,
    )
    .await;
    assert_eq!(status, 401);

    // Yjs: POST an update, GET the whole document back.
    let ydoc = yrs::Doc::new();
    {
        use yrs::{Text, Transact};
        let t = ydoc.get_or_insert_text("t");
        t.insert(&mut ydoc.transact_mut(), 0, "yjs from the server 🎉");
    }
    let yupdate = {
        use yrs::{ReadTxn, Transact};
        ydoc.transact()
            .encode_state_as_update_v1(&yrs::StateVector::default())
    };
    let (status, _, _) = request(addr, "POST", "/v1/yjs/pad/update", &writer, &yupdate).await;
    assert_eq!(status, 204);
    let (status, headers, body) = request(addr, "GET", "/v1/yjs/pad/update", &reader, &[]).await;
    assert_eq!(status, 200);
    let copy = yrs::Doc::new();
    {
        use yrs::updates::decoder::Decode;
        use yrs::{GetString, Transact};
        copy.transact_mut()
            .apply_update(yrs::Update::decode_v1(&body_of(&headers, &body)).unwrap())
            .unwrap();
        let t = copy.get_or_insert_text("t");
        assert_eq!(t.get_string(&copy.transact()), "yjs from the server 🎉");
    }
    let (status, _, _) = request(addr, "POST", "/v1/yjs/pad/update", &reader, &yupdate).await;
    assert_eq!(status, 403);
    let (status, _, _) = request(addr, "GET", "/v1/yjs/absent/update", &reader, &[]).await;
    assert_eq!(status, 404);

    // One id, one kind: "notes" is weft, "pad" is Yjs.
    let (status, headers, _) =
        request(addr, "POST", "/v1/yjs/notes/update", &writer, &yupdate).await;
    assert_eq!(status, 409, "{headers}");
    let (status, headers, body) =
        request(addr, "POST", "/v1/docs/pad/updates", &writer, &update).await;
    assert_eq!(status, 409, "{headers}");
    let reason = String::from_utf8_lossy(&body_of(&headers, &body)).into_owned();
    assert!(
        reason.contains("is a Yjs document"),
        "a clear reason: {reason}"
    );
    // A weft client subscribing to the Yjs id is refused with the reason.
    let mut weft = common::TestClient::connect(addr, Some(writer.clone())).await;
    weft.send(&weft_protocol::Frame::Subscribe {
        doc: weft_protocol::DocId::new("pad").unwrap(),
        version: Default::default(),
    })
    .await;
    match weft.recv().await {
        weft_protocol::Frame::Error { code, message, .. } => {
            assert_eq!(code, weft_protocol::ErrorCode::DocUnavailable);
            assert!(message.contains("is a Yjs document"), "{message}");
        }
        other => panic!("expected DocUnavailable, got {other:?}"),
    }
    relay.shutdown().await;
}

/// A Yjs room charges its size limit for what an update adds, not for
/// what it repeats: the same state sent again and again (a reconnecting
/// client's sync step 2 repeats the whole delete set) is accepted and
/// leaves the budget where it was, while new content past the limit is
/// still refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yjs_room_charges_its_size_limit_for_growth_not_for_repeats() {
    use yrs::{ReadTxn, Text, Transact};
    let mut config = RelayConfig::insecure_local();
    config.auth = AuthConfig::Hs256 {
        secret: SECRET.to_vec(),
    };
    config.limits.max_doc_bytes = 256 << 10;
    let relay = Relay::start(config).await.unwrap();
    let addr = relay.local_addr();
    let writer = mint_token(SECRET, &Claims::new("svc", vec!["*".into()], true, 600)).unwrap();
    let ydoc = yrs::Doc::new();
    let t = ydoc.get_or_insert_text("t");
    // ~4 KB of text with deletions: a delete set the state carries.
    for i in 0..150u32 {
        let mut txn = ydoc.transact_mut();
        t.insert(&mut txn, 0, &format!("line {i:04} of the pad\n"));
        if i % 3 == 0 {
            t.remove_range(&mut txn, 5, 2);
        }
    }
    let state = ydoc
        .transact()
        .encode_state_as_update_v1(&yrs::StateVector::default());
    for round in 0..20 {
        let (status, headers, _) =
            request(addr, "POST", "/v1/yjs/pad/update", &writer, &state).await;
        assert_eq!(status, 204, "round {round}: {headers}");
    }
    // Growth is still charged: new text past the limit is refused.
    let mut refused = false;
    for i in 0..40u32 {
        let before = ydoc.transact().state_vector();
        t.insert(&mut ydoc.transact_mut(), 0, &"x".repeat(8000 + i as usize));
        let grow = ydoc.transact().encode_state_as_update_v1(&before);
        let (status, _, _) = request(addr, "POST", "/v1/yjs/pad/update", &writer, &grow).await;
        if status != 204 {
            refused = true;
            break;
        }
    }
    assert!(refused, "256 KiB limit never reached by 320 KB of new text");
    relay.shutdown().await;
}
