//! A minimal protocol client for the relay's tests: raw frames over a real
//! WebSocket on 127.0.0.1, with timeouts on every wait.

#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use weft_core::{Doc, ReplicaId};
use weft_protocol::{Access, DocId, ErrorCode, Frame, Limits, PeerId};

pub mod hostile;

/// Every wait in these tests gives up after this long.
pub const WAIT: Duration = Duration::from_secs(15);

/// The address a relay started with piped stdout prints first
/// ("weft-relay listening on ADDR"); panics with the line if it is not that.
pub fn listening(child: &mut std::process::Child) -> SocketAddr {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read address");
    line.trim()
        .strip_prefix("weft-relay listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("address")
}

pub struct TestClient {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub peer: Option<PeerId>,
    pub seq: u64,
    /// `Access` frames received (protocol 2), in order: `recv` records
    /// them here rather than returning them, so tests written for the
    /// frames that follow a `Subscribe` see `Synced` first.
    pub access: Vec<(DocId, Access)>,
    limits: Limits,
}

impl TestClient {
    /// Connects without the handshake.
    pub async fn connect_raw(addr: SocketAddr) -> TestClient {
        let (ws, _) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::connect_async(format!("ws://{addr}/ws")),
        )
        .await
        .expect("connect timed out")
        .expect("connect");
        TestClient {
            ws,
            peer: None,
            seq: 0,
            access: Vec::new(),
            limits: Limits::default(),
        }
    }

    /// Connects and completes Hello/Welcome with `token`.
    pub async fn connect(addr: SocketAddr, token: Option<String>) -> TestClient {
        let mut c = TestClient::connect_raw(addr).await;
        c.send(&Frame::hello(Some("test".into()), token)).await;
        match c.recv().await {
            Frame::Welcome { peer, .. } => c.peer = Some(peer),
            other => panic!("expected Welcome, got {other:?}"),
        }
        c
    }

    pub async fn send(&mut self, frame: &Frame) {
        self.send_bytes(frame.encode()).await;
    }

    pub async fn send_bytes(&mut self, bytes: Vec<u8>) {
        self.ws
            .send(Message::Binary(bytes.into()))
            .await
            .expect("send");
    }

    /// The next frame (panics on timeout or close).
    pub async fn recv(&mut self) -> Frame {
        self.try_recv(WAIT)
            .await
            .expect("connection closed or timed out")
    }

    /// The next frame, or `None` if the connection closed or `wait` passed.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Frame> {
        loop {
            let msg = tokio::time::timeout(wait, self.ws.next())
                .await
                .ok()??
                .ok()?;
            match msg {
                Message::Binary(b) => {
                    match Frame::decode(&b, &self.limits).expect("server frame decodes") {
                        Frame::Access { doc, access } => self.access.push((doc, access)),
                        frame => return Some(frame),
                    }
                }
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Reads until an `Error` frame and returns its code; other frames are
    /// skipped.
    pub async fn expect_error(&mut self) -> (ErrorCode, Option<DocId>, Option<u64>) {
        loop {
            match self.recv().await {
                Frame::Error { code, doc, seq, .. } => return (code, doc, seq),
                _ => continue,
            }
        }
    }

    /// Whether the server closes the connection within `WAIT` (frames before
    /// the close are skipped).
    pub async fn closed(&mut self) -> bool {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return false,
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return true,
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Subscribes `doc` into `local` (applies the `Synced` diff).
    pub async fn subscribe(&mut self, doc: &str, local: &mut Doc) {
        let id = DocId::new(doc).unwrap();
        self.send(&Frame::Subscribe {
            doc: id,
            version: local.version().clone(),
        })
        .await;
        loop {
            match self.recv().await {
                Frame::Synced { update, .. } => {
                    local.apply(&update).expect("Synced applies");
                    return;
                }
                Frame::Error { code, .. } => panic!("subscribe refused: {code:?}"),
                _ => continue,
            }
        }
    }

    /// Wraps an already connected socket.
    pub fn from_ws(ws: WebSocketStream<MaybeTlsStream<TcpStream>>) -> TestClient {
        TestClient {
            ws,
            peer: None,
            seq: 0,
            access: Vec::new(),
            limits: Limits::default(),
        }
    }

    /// Sends an update and returns its seq.
    pub async fn update(&mut self, doc: &str, update: Vec<u8>) -> u64 {
        self.seq += 1;
        let seq = self.seq;
        self.send(&Frame::Update {
            doc: DocId::new(doc).unwrap(),
            seq,
            update,
        })
        .await;
        seq
    }
}

/// A text edit: appends `s` to text `t` of `doc`, returns the update.
pub fn append(doc: &mut Doc, s: &str) -> Vec<u8> {
    doc.transact(|tx| {
        let mut t = tx.text("t")?;
        let end = t.len();
        t.insert(end, s)
    })
    .expect("edit")
}

pub fn new_doc() -> Doc {
    Doc::new(ReplicaId::random())
}

/// `GET path` over plain HTTP/1.1; returns (status, body).
pub async fn http_get(addr: SocketAddr, path: &str, bearer: Option<&str>) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = TcpStream::connect(addr).await.expect("http connect");
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("http timeout")
        .unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("http head");
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut body = buf[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
}

/// `n` pseudo-random letters: text that DEFLATE cannot shrink.
pub fn noise(n: usize, seed: u64) -> String {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect()
}

/// Reads until the server closes a raw socket; how long since `since` that
/// took (or `None` if it stayed open for `WAIT`).
pub async fn closed_after(s: &mut TcpStream, since: std::time::Instant) -> Option<Duration> {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(since.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}
