//! The WebSocket layer: the `/ws` upgrade, and a guard on the read side.
//!
//! The relay performs the HTTP upgrade itself (RFC 6455 §4.2, using
//! hyper's `OnUpgrade`) rather than through axum's `WebSocketUpgrade`, so
//! that [`FrameWatch`] can sit between the upgraded socket and the
//! WebSocket codec (tokio-tungstenite). The codec only hands over whole
//! messages, and by default reserves a frame's declared length as soon as
//! it has read the header; an unauthenticated peer could make it buffer
//! the largest allowed message and keep it half-sent forever.
//! `FrameWatch` reads the same bytes the codec reads, parses WebSocket
//! frame *headers* as they pass (payloads are skipped, not copied), and:
//!
//! - refuses a message whose declared size is over its limit **when the
//!   header arrives**: the read that carries the header fails and the codec
//!   never sees it, so nothing is reserved or buffered for it. The first
//!   data message (the `Hello`) is limited to `max_hello_bytes`; later
//!   ones to `max_frame_bytes`. The codec does not read past a complete
//!   message before the relay has handled it, so until `Hello` is
//!   accepted an unauthenticated peer can make the relay hold at most
//!   `max_hello_bytes` plus one read (4 KiB).
//! - gives a message (or control frame) whose first bytes arrived
//!   `message_timeout` to complete, whatever the peer sends meanwhile:
//!   past it, reads fail.
//!
//! Either way it records a [`Violation`] the connection turns into an
//! error frame (`FrameTooLarge` 2, `HandshakeTimeout` 13) before closing.
//! The cost is a few comparisons per frame and one timer per connection,
//! armed only while a read waits in the middle of a message.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;
use weft_protocol::ErrorCode;

use crate::config::ServerLimits;

/// Read buffer per connection: small, so idle connections stay cheap
/// (bigger messages are read in several passes).
const READ_BUFFER: usize = 512;
/// Frames are written when this much is buffered, or at each flush.
const WRITE_BUFFER: usize = 16 * 1024;

/// An upgraded client connection.
pub(crate) type Socket = WebSocketStream<FrameWatch<TokioIo<Upgraded>>>;

/// Why an upgrade request was refused (the response to send).
#[derive(Debug)]
pub(crate) struct Refused(StatusCode, &'static str);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let mut response = (self.0, format!("{}\n", self.1)).into_response();
        if self.0 == StatusCode::UPGRADE_REQUIRED {
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
        }
        response
    }
}

/// Checks an upgrade request (HTTP/1.1 `GET` with `Connection: upgrade`,
/// `Upgrade: websocket`, `Sec-WebSocket-Version: 13` and a key) and takes
/// its upgrade handle; returns the `101` response to send.
pub(crate) fn handshake(req: &mut Request) -> Result<(Response, OnUpgrade), Refused> {
    if req.method() != Method::GET {
        return Err(Refused(StatusCode::METHOD_NOT_ALLOWED, "use GET"));
    }
    if req.version() != Version::HTTP_11 {
        return Err(Refused(
            StatusCode::HTTP_VERSION_NOT_SUPPORTED,
            "use HTTP/1.1",
        ));
    }
    let headers = req.headers();
    if !has_token(headers, header::CONNECTION, "upgrade")
        || !has_token(headers, header::UPGRADE, "websocket")
    {
        return Err(Refused(
            StatusCode::UPGRADE_REQUIRED,
            "a WebSocket upgrade is required",
        ));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(Refused(
            StatusCode::UPGRADE_REQUIRED,
            "WebSocket version 13 only",
        ));
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return Err(Refused(
            StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Key missing",
        ));
    };
    let accept = HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
        .map_err(|_| Refused(StatusCode::INTERNAL_SERVER_ERROR, "accept key"))?;
    let Some(on_upgrade) = req.extensions_mut().remove::<OnUpgrade>() else {
        return Err(Refused(
            StatusCode::UPGRADE_REQUIRED,
            "connection not upgradable",
        ));
    };
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = response.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    Ok((response, on_upgrade))
}

/// Whether header `name` lists `token` (comma-separated, any case).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// The codec's configuration: small buffers, and message and frame limits
/// at `max_frame_bytes` (a backstop: [`FrameWatch`] refuses larger
/// messages before the codec sees them).
pub(crate) fn codec_config(limits: &ServerLimits) -> WebSocketConfig {
    let max = limits.wire.max_frame_bytes as usize;
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(usize::MAX)
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// What [`FrameWatch`] enforces.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WatchLimits {
    /// Largest first data message (the `Hello`), declared payload bytes.
    pub(crate) first_message: u64,
    /// Largest later message.
    pub(crate) message: u64,
    /// How long a started message may take to complete.
    pub(crate) message_timeout: Duration,
}

impl WatchLimits {
    /// The limits of a weft connection: the first message is the `Hello`.
    pub(crate) fn new(limits: &ServerLimits) -> WatchLimits {
        WatchLimits {
            first_message: u64::from(limits.max_hello_bytes.min(limits.wire.max_frame_bytes)),
            message: u64::from(limits.wire.max_frame_bytes),
            message_timeout: limits.message_timeout,
        }
    }
}

/// Completes an accepted upgrade in a task on `connections`: waits for the
/// upgraded stream, releases the peer's pending-socket slot, puts the
/// stream behind a [`FrameWatch`] with `watch` and hands the WebSocket to
/// `serve`. Every WebSocket endpoint goes through here.
pub(crate) fn serve_upgraded<F, Fut>(
    connections: &tokio_util::task::TaskTracker,
    peer: crate::listener::Peer,
    on_upgrade: OnUpgrade,
    watch: WatchLimits,
    config: WebSocketConfig,
    serve: F,
) where
    F: FnOnce(Socket, Verdict) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    connections.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                tracing::debug!(addr = %peer.addr, error = %e, "upgrade failed");
                return;
            }
        };
        peer.upgraded();
        drop(peer);
        let (io, verdict) = FrameWatch::new(TokioIo::new(upgraded), watch);
        let socket = WebSocketStream::from_raw_socket(
            io,
            tokio_tungstenite::tungstenite::protocol::Role::Server,
            Some(config),
        )
        .await;
        serve(socket, verdict).await;
    });
}

/// Why [`FrameWatch`] stopped reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Violation {
    /// A message declared more payload than allowed.
    TooLarge {
        /// Payload bytes its frame headers declared so far.
        declared: u64,
        /// The limit.
        limit: u64,
        /// Whether it was the first message (`Hello`'s limit).
        first: bool,
    },
    /// A started message did not complete in time.
    Incomplete(Duration),
}

impl Violation {
    /// The error code the connection closes with.
    pub(crate) fn code(self) -> ErrorCode {
        match self {
            Violation::TooLarge { .. } => ErrorCode::FrameTooLarge,
            Violation::Incomplete(_) => ErrorCode::HandshakeTimeout,
        }
    }

    /// The reason sent with it.
    pub(crate) fn reason(self) -> String {
        match self {
            Violation::TooLarge {
                declared,
                limit,
                first: true,
            } => {
                format!("a first message (Hello) of {declared} bytes; at most {limit} before Hello")
            }
            Violation::TooLarge {
                declared, limit, ..
            } => format!("a message of {declared} bytes; at most {limit}"),
            Violation::Incomplete(after) => {
                format!(
                    "a message was not completed within {} ms",
                    after.as_millis()
                )
            }
        }
    }
}

/// Where [`FrameWatch`] records its [`Violation`] for the connection.
pub(crate) type Verdict = Arc<OnceLock<Violation>>;

/// Follows WebSocket frame headers in a byte stream (client to server).
#[derive(Debug, Default)]
struct Parser {
    /// Header bytes of the frame being read (`have > 0`: in a header).
    header: [u8; 14],
    have: usize,
    /// In a frame's payload, with this much left.
    in_payload: bool,
    payload_left: u64,
    /// The current frame's opcode and FIN bit.
    opcode: u8,
    fin: bool,
    /// A data message has started and its final frame is not complete.
    message_open: bool,
    /// Payload its frames declared so far.
    message_bytes: u64,
    /// Data messages started.
    messages: u64,
    /// Close frames received completely.
    closes: u64,
}

/// Length of a frame header, from its second byte.
fn header_len(second: u8) -> usize {
    let ext = match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    2 + ext + mask
}

impl Parser {
    /// Follows `bytes`; the first limit broken, if any (parsing goes on, so
    /// the state stays in step with the stream).
    fn feed(&mut self, mut bytes: &[u8], limits: &WatchLimits) -> Option<Violation> {
        let mut broken = None;
        while !bytes.is_empty() {
            if self.in_payload {
                let n = usize::try_from(self.payload_left)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                bytes = &bytes[n..];
                self.payload_left -= n as u64;
                if self.payload_left == 0 {
                    self.frame_done();
                }
                continue;
            }
            self.header[self.have] = bytes[0];
            self.have += 1;
            bytes = &bytes[1..];
            if self.have < 2 || self.have < header_len(self.header[1]) {
                continue;
            }
            self.have = 0;
            let h = &self.header;
            let len = match h[1] & 0x7F {
                126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
                127 => u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
                n => u64::from(n),
            };
            self.opcode = h[0] & 0x0F;
            self.fin = h[0] & 0x80 != 0;
            if self.opcode & 0x08 == 0 {
                if self.opcode != 0 {
                    self.messages += 1;
                    self.message_bytes = 0;
                }
                self.message_open = true;
                self.message_bytes = self.message_bytes.saturating_add(len);
                let first = self.messages <= 1;
                let limit = if first {
                    limits.first_message
                } else {
                    limits.message
                };
                if self.message_bytes > limit && broken.is_none() {
                    broken = Some(Violation::TooLarge {
                        declared: self.message_bytes,
                        limit,
                        first,
                    });
                }
            }
            self.in_payload = true;
            self.payload_left = len;
            if len == 0 {
                self.frame_done();
            }
        }
        broken
    }

    fn frame_done(&mut self) {
        self.in_payload = false;
        if self.opcode & 0x08 != 0 {
            if self.opcode == 0x8 {
                self.closes += 1;
            }
        } else if self.fin {
            self.message_open = false;
            self.message_bytes = 0;
        }
    }

    /// Whether a frame or a message has started and not completed.
    fn in_progress(&self) -> bool {
        self.have > 0 || self.in_payload || self.message_open
    }
}

/// The read-side guard (module docs). Writes pass straight through.
#[derive(Debug)]
pub(crate) struct FrameWatch<S> {
    inner: S,
    parser: Parser,
    limits: WatchLimits,
    verdict: Verdict,
    /// When the message in progress started (its first bytes were read).
    started: Option<Instant>,
    /// Fires at `started + message_timeout`; created on first use.
    timer: Option<Pin<Box<Sleep>>>,
    armed_for: Option<Instant>,
    /// Closing: only follow the stream (to see the peer's Close frame).
    draining: bool,
}

impl<S> FrameWatch<S> {
    /// Watches `inner`; the verdict is where a violation is recorded.
    pub(crate) fn new(inner: S, limits: WatchLimits) -> (FrameWatch<S>, Verdict) {
        let verdict = Verdict::default();
        (
            FrameWatch {
                inner,
                parser: Parser::default(),
                limits,
                verdict: verdict.clone(),
                started: None,
                timer: None,
                armed_for: None,
                draining: false,
            },
            verdict,
        )
    }

    /// Stops enforcing limits: the connection is closing and only reads
    /// (and discards) what the peer still sends.
    pub(crate) fn drain(&mut self) {
        self.draining = true;
    }

    /// Whether a complete Close frame has been received.
    pub(crate) fn close_received(&self) -> bool {
        self.parser.closes > 0
    }

    fn fail(&mut self, v: Violation) -> io::Error {
        let _ = self.verdict.set(v);
        let kind = match v {
            Violation::TooLarge { .. } => io::ErrorKind::InvalidData,
            Violation::Incomplete(_) => io::ErrorKind::TimedOut,
        };
        io::Error::new(kind, v.reason())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FrameWatch<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.draining {
            if let Some(v) = this.verdict.get() {
                let v = *v;
                return Poll::Ready(Err(this.fail(v)));
            }
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let limits = if this.draining {
                    WatchLimits {
                        first_message: u64::MAX,
                        message: u64::MAX,
                        message_timeout: Duration::MAX,
                    }
                } else {
                    this.limits
                };
                let broken = this.parser.feed(&buf.filled()[before..], &limits);
                if let Some(v) = broken {
                    // The codec never sees these bytes.
                    buf.set_filled(before);
                    return Poll::Ready(Err(this.fail(v)));
                }
                if !this.parser.in_progress() {
                    this.started = None;
                } else if this.started.is_none() {
                    this.started = Some(Instant::now());
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                let Some(started) = this.started.filter(|_| !this.draining) else {
                    return Poll::Pending;
                };
                let timeout = this.limits.message_timeout;
                let due = started.checked_add(timeout).unwrap_or(started);
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
                if this.armed_for != Some(due) {
                    timer.as_mut().reset(due);
                    this.armed_for = Some(due);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(this.fail(Violation::Incomplete(timeout))));
                }
                Poll::Pending
            }
            ready_err => ready_err,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FrameWatch<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A masked client frame header (mask key 0) declaring `len` bytes.
    fn header(fin: bool, opcode: u8, len: u64) -> Vec<u8> {
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

    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = header(fin, opcode, payload.len() as u64);
        f.extend_from_slice(payload);
        f
    }

    const LIMITS: WatchLimits = WatchLimits {
        first_message: 100,
        message: 1000,
        message_timeout: Duration::from_millis(200),
    };

    #[test]
    fn parser_follows_fragments_controls_and_lengths_byte_by_byte() {
        let mut stream = Vec::new();
        stream.extend(frame(false, 2, &[1; 60]));
        stream.extend(frame(true, 9, b"ping"));
        stream.extend(frame(true, 0, &[2; 30]));
        stream.extend(frame(true, 2, &[3; 300]));
        stream.extend(frame(true, 2, &vec![4; 70_000]));
        stream.extend(frame(true, 8, &[3, 232]));
        let mut p = Parser::default();
        let limits = WatchLimits {
            message: 100_000,
            ..LIMITS
        };
        for (i, b) in stream.iter().enumerate() {
            assert_eq!(p.feed(std::slice::from_ref(b), &limits), None, "byte {i}");
            if i == 10 {
                assert!(p.in_progress() && p.message_open);
            }
        }
        assert!(!p.in_progress());
        assert_eq!((p.messages, p.closes), (3, 1));
    }

    #[test]
    fn parser_refuses_at_the_header_first_message_and_fragments_summed() {
        let mut p = Parser::default();
        let v = p.feed(&header(true, 2, 101), &LIMITS);
        assert_eq!(
            v,
            Some(Violation::TooLarge {
                declared: 101,
                limit: 100,
                first: true
            })
        );
        let mut p = Parser::default();
        assert_eq!(p.feed(&frame(true, 2, &[0; 100]), &LIMITS), None);
        assert_eq!(p.feed(&frame(false, 2, &[0; 600]), &LIMITS), None);
        let v = p.feed(&header(true, 0, 401), &LIMITS);
        assert!(matches!(
            v,
            Some(Violation::TooLarge { declared: 1001, .. })
        ));
        let mut p = Parser::default();
        let v = p.feed(&header(true, 2, u64::MAX), &LIMITS);
        assert!(matches!(v, Some(Violation::TooLarge { .. })));
    }

    #[tokio::test]
    async fn an_oversized_header_fails_the_read_that_carries_it() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let (mut watch, verdict) = FrameWatch::new(server, LIMITS);
        client.write_all(&header(true, 2, 5000)).await.unwrap();
        let mut buf = [0u8; 64];
        let e = watch.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            verdict.get().map(|v| v.code()),
            Some(ErrorCode::FrameTooLarge)
        );
        // and stays failed
        assert!(watch.read(&mut buf).await.is_err());
    }

    #[tokio::test]
    async fn a_started_message_must_complete_in_time() {
        let (mut client, server) = tokio::io::duplex(1 << 16);
        let (mut watch, verdict) = FrameWatch::new(server, LIMITS);
        let mut buf = [0u8; 256];
        // A complete frame, then silence: no deadline.
        client.write_all(&frame(true, 2, b"hello")).await.unwrap();
        assert_eq!(watch.read(&mut buf).await.unwrap(), 11);
        let idle = tokio::time::timeout(Duration::from_millis(400), watch.read(&mut buf)).await;
        assert!(idle.is_err(), "an idle stream is not timed out here");
        // Half a frame, then a byte now and then: timed out anyway.
        let started = std::time::Instant::now();
        let f = frame(true, 2, &[7; 50]);
        client.write_all(&f[..10]).await.unwrap();
        let trickle = tokio::spawn(async move {
            for b in &f[10..] {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if client.write_all(std::slice::from_ref(b)).await.is_err() {
                    return;
                }
            }
        });
        let e = loop {
            match watch.read(&mut buf).await {
                Ok(_) => continue,
                Err(e) => break e,
            }
        };
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() < Duration::from_millis(400));
        assert_eq!(
            verdict.get().map(|v| v.code()),
            Some(ErrorCode::HandshakeTimeout)
        );
        trickle.abort();
    }
}
