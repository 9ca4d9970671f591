//! One client connection: the handshake, the frames it sends, and the
//! frames queued for it.
//!
//! A single task per connection reads frames, dispatches them to document
//! tasks, and writes what those tasks queued ([`crate::outbound`]). Replies
//! that the connection itself makes (pongs, refusals) go through the same
//! queue, so each document's acks and errors keep their order. Errors of
//! connection scope are written last, after whatever was already queued,
//! and close the connection.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{oneshot, watch};
use tracing::{debug, info};
use weft_protocol::{DocId, ErrorCode, ErrorScope, Frame, Handshake, PeerId, Role};

use crate::admission::{Admitted, TokenBucket};
use crate::auth::Grant;
use crate::document::{DocCmd, UpdateCmd};
use crate::metrics;
use crate::outbound::{self, Outbound, OutboundRx};
use crate::state::Shared;

static NEXT_PEER: AtomicU64 = AtomicU64::new(1);

/// Frames written per flush when several are queued.
const WRITE_BATCH: usize = 64;
/// How long closing may take before the socket is just dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the reader decided about the connection.
enum Next {
    Continue,
    Close(ErrorCode, String),
}

struct Conn {
    state: Shared,
    peer: PeerId,
    out: Outbound,
    handshake: Handshake,
    grant: Option<Grant>,
    docs: HashSet<DocId>,
    bucket: TokenBucket,
}

/// Serves one upgraded WebSocket until it closes. `admitted` is `None` when
/// admission limits refused it: it then only gets `ServerBusy`.
///
/// Reading and writing are two tasks, so a client that sends faster than
/// its document stores never stops receiving its acks.
pub(crate) async fn serve(
    state: Shared,
    socket: WebSocket,
    admitted: Option<Admitted>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limits = &state.limits;
    let (out, rx) = outbound::channel(
        limits.outbound_queue_frames,
        limits.outbound_queue_bytes,
        state.meters.clone(),
    );
    let (sink, mut stream) = socket.split();
    let killed = rx.kill_switch();
    let writer = tokio::spawn(write_loop(sink, rx, state.clone()));
    if admitted.is_none() {
        out.kill(ErrorCode::ServerBusy, "too many connections");
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, writer).await;
        return;
    }
    state.meters.connections.increment(1.0);
    state.meters.connections_total.increment(1);
    let peer = PeerId(NEXT_PEER.fetch_add(1, Ordering::Relaxed));
    let idle = Duration::from_millis(u64::from(limits.wire.idle_timeout_ms.max(1)));
    let mut conn = Conn {
        state: state.clone(),
        peer,
        out,
        handshake: Handshake::new(Role::Server),
        grant: None,
        docs: HashSet::new(),
        bucket: TokenBucket::new(limits.updates_per_sec, limits.update_burst),
    };
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(idle_timer);
    loop {
        tokio::select! {
            biased;
            _ = killed.wait() => break,
            _ = shutdown.changed() => {
                conn.out.kill(ErrorCode::ShuttingDown, "the relay is shutting down");
                break;
            }
            msg = stream.next() => {
                idle_timer.as_mut().reset(tokio::time::Instant::now() + idle);
                let close = match msg {
                    Some(Ok(Message::Binary(bytes))) => match conn.frame(&bytes).await {
                        Next::Continue => continue,
                        Next::Close(code, reason) => Some((code, reason)),
                    },
                    Some(Ok(Message::Text(_))) => {
                        Some((ErrorCode::BadFrame, "text messages are not frames".to_owned()))
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Err(e)) if too_large(&e) => Some((
                        ErrorCode::FrameTooLarge,
                        format!("message larger than {} bytes", limits.wire.max_frame_bytes),
                    )),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => None,
                };
                match close {
                    Some((code, reason)) => conn.out.kill(code, &reason),
                    None => conn.out.close_quietly(),
                }
                break;
            }
            _ = &mut idle_timer => {
                conn.out.kill(ErrorCode::IdleTimeout, "no frame received in time");
                break;
            }
        }
    }
    debug!(peer = peer.0, "connection ending");
    conn.leave_all().await;
    drop(conn);
    let _ = tokio::time::timeout(CLOSE_TIMEOUT * 2, writer).await;
    drop(admitted);
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.state.meters.connections.decrement(1.0);
    }
}

/// Whether a read failed because the message exceeded the size limit.
fn too_large(e: &axum::Error) -> bool {
    use std::error::Error as _;
    matches!(
        e.source()
            .and_then(|s| s.downcast_ref::<tungstenite::Error>()),
        Some(tungstenite::Error::Capacity(_))
    )
}

type Sink = SplitSink<WebSocket, Message>;

/// Writes queued frames until the connection is killed (then the error
/// frame and a close) or every sender is gone.
async fn write_loop(mut sink: Sink, mut rx: OutboundRx, state: Shared) {
    let killed = rx.kill_switch();
    loop {
        tokio::select! {
            biased;
            kill = killed.wait() => {
                if let Some((code, reason)) = kill {
                    debug!(code = code.code(), %reason, "closing connection");
                    metrics::error_sent(code);
                    close(&mut sink, &mut rx, code, &reason).await;
                } else {
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.close()).await;
                }
                return;
            }
            frame = rx.recv() => {
                let Some(frame) = frame else {
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.close()).await;
                    return;
                };
                if write(&mut sink, &mut rx, frame, &state).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Writes `first` and whatever else is queued, then flushes.
async fn write(
    sink: &mut Sink,
    rx: &mut OutboundRx,
    first: Bytes,
    state: &Shared,
) -> Result<(), axum::Error> {
    let mut frames = 1u64;
    let mut bytes = first.len() as u64;
    sink.feed(Message::Binary(first)).await?;
    while (frames as usize) < WRITE_BATCH {
        let Some(next) = rx.try_recv() else { break };
        frames += 1;
        bytes += next.len() as u64;
        sink.feed(Message::Binary(next)).await?;
    }
    state.meters.frames_out.increment(frames);
    state.meters.bytes_out.increment(bytes);
    sink.flush().await
}

/// Writes what is already queued (unless the reader is too slow for it),
/// then `Error {code}` and a close frame.
async fn close(sink: &mut Sink, rx: &mut OutboundRx, code: ErrorCode, reason: &str) {
    let finish = async {
        if code != ErrorCode::SlowConsumer {
            while let Some(frame) = rx.try_recv() {
                sink.feed(Message::Binary(frame)).await?;
            }
        }
        let error = Frame::error(code, None, None, reason);
        sink.feed(Message::Binary(Bytes::from(error.encode())))
            .await?;
        sink.send(Message::Close(Some(CloseFrame {
            code: close_code(code),
            reason: code.name().into(),
        })))
        .await
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, finish).await;
}

/// The WebSocket close code for a protocol error: 1008 (policy) for
/// refusals, 1013 (try again later) for load, 1001 (going away) for
/// shutdown, 1002 (protocol error) otherwise.
fn close_code(code: ErrorCode) -> u16 {
    match code {
        ErrorCode::Unauthorized | ErrorCode::TokenExpired => 1008,
        ErrorCode::ServerBusy | ErrorCode::SlowConsumer => 1013,
        ErrorCode::ShuttingDown | ErrorCode::IdleTimeout => 1001,
        ErrorCode::Internal => 1011,
        _ => 1002,
    }
}

impl Conn {
    /// Queues a reply; a connection too slow to take it is closed.
    fn reply(&self, frame: Frame) {
        if let Frame::Error { code, .. } = &frame {
            metrics::error_sent(*code);
        }
        if self
            .out
            .try_send_reply(Bytes::from(frame.encode()))
            .is_err()
        {
            self.out
                .kill(ErrorCode::SlowConsumer, "too slow reading replies");
        }
    }

    fn refuse(&self, code: ErrorCode, doc: &DocId, seq: Option<u64>, message: &str) {
        self.reply(Frame::error(code, Some(doc.clone()), seq, message));
    }

    async fn frame(&mut self, bytes: &[u8]) -> Next {
        let frame = match Frame::decode(bytes, &self.state.limits.wire) {
            Ok(frame) => frame,
            Err(e) => {
                let reply = e.error_frame();
                return match reply {
                    Frame::Error { code, .. } if code.scope() != ErrorScope::Connection => {
                        self.reply(reply);
                        Next::Continue
                    }
                    _ => Next::Close(e.code(), e.to_string()),
                };
            }
        };
        if let Err(code) = self.handshake.receive(&frame) {
            return Next::Close(code, format!("unexpected {}", frame.name()));
        }
        if let Some(grant) = &self.grant {
            if grant.expired() {
                return Next::Close(ErrorCode::TokenExpired, "token expired".into());
            }
        }
        match frame {
            Frame::Hello {
                client_name, token, ..
            } => self.hello(client_name, token),
            Frame::Ping { nonce } => {
                self.reply(Frame::Pong { nonce });
                Next::Continue
            }
            Frame::Pong { .. } => Next::Continue,
            Frame::Subscribe { doc, version } => {
                self.subscribe(doc, version).await;
                Next::Continue
            }
            Frame::Unsubscribe { doc } => {
                if self.docs.remove(&doc) {
                    let leave = DocCmd::Leave { peer: self.peer };
                    self.state.hub.send_if_loaded(&doc, leave).await;
                }
                Next::Continue
            }
            Frame::Update { doc, seq, update } => {
                self.update(doc, seq, update).await;
                Next::Continue
            }
            Frame::Presence { doc, state } => {
                if self.docs.contains(&doc) {
                    self.send(
                        &doc,
                        DocCmd::Presence {
                            peer: self.peer,
                            state,
                        },
                    )
                    .await;
                } else {
                    self.refuse(ErrorCode::NotSubscribed, &doc, None, "not subscribed");
                }
                Next::Continue
            }
            other => Next::Close(
                ErrorCode::UnexpectedFrame,
                format!("{} is not a client frame", other.name()),
            ),
        }
    }

    fn hello(&mut self, client_name: Option<String>, token: Option<String>) -> Next {
        match self.state.auth.verify(token.as_deref()) {
            Ok(grant) => {
                info!(
                    peer = self.peer.0,
                    subject = %grant.subject,
                    client = client_name.as_deref().unwrap_or(""),
                    "client connected"
                );
                self.grant = Some(grant);
                self.reply(Frame::Welcome {
                    protocol_version: self.handshake.version().unwrap_or(1),
                    server_name: self.state.server_name.clone(),
                    peer: self.peer,
                    limits: self.state.limits.wire,
                });
                Next::Continue
            }
            Err(e) => Next::Close(e.code, e.message),
        }
    }

    async fn subscribe(&mut self, doc: DocId, version: weft_core::VersionVector) {
        let may = self
            .grant
            .as_ref()
            .is_some_and(|g| g.may_read(doc.as_str()));
        if !may {
            self.refuse(
                ErrorCode::Forbidden,
                &doc,
                None,
                "no access to this document",
            );
            return;
        }
        if !self.docs.contains(&doc) && self.docs.len() >= self.state.limits.wire.max_docs as usize
        {
            self.refuse(
                ErrorCode::TooManyDocs,
                &doc,
                None,
                "too many documents on one connection",
            );
            return;
        }
        let (reply, answer) = oneshot::channel();
        let cmd = DocCmd::Subscribe {
            peer: self.peer,
            version,
            out: self.out.clone(),
            reply,
        };
        if self.send(&doc, cmd).await.is_none() {
            return;
        }
        match answer.await {
            Ok(Ok(())) => {
                self.docs.insert(doc);
            }
            Ok(Err(code)) => self.refuse(code, &doc, None, "document unavailable"),
            Err(_) => self.refuse(
                ErrorCode::DocUnavailable,
                &doc,
                None,
                "document task stopped",
            ),
        }
    }

    async fn update(&mut self, doc: DocId, seq: u64, update: Vec<u8>) {
        if !self.docs.contains(&doc) {
            return self.refuse(ErrorCode::NotSubscribed, &doc, Some(seq), "not subscribed");
        }
        // Refusals also go through the document, so that its acks and
        // errors reach the client in the order the updates were sent.
        let refused = if !self
            .grant
            .as_ref()
            .is_some_and(|g| g.may_write(doc.as_str()))
        {
            Some((ErrorCode::ReadOnly, "read-only access"))
        } else if !self.bucket.take() {
            Some((ErrorCode::RateLimited, "too many updates; retry later"))
        } else {
            None
        };
        let cmd = DocCmd::Update(UpdateCmd {
            peer: self.peer,
            seq,
            update: if refused.is_some() {
                Vec::new()
            } else {
                update
            },
            out: self.out.clone(),
            received: Instant::now(),
            refused,
        });
        self.send(&doc, cmd).await;
    }

    /// Sends a command to `doc`'s task; `None` (after telling the client)
    /// when the relay is shutting down.
    async fn send(&self, doc: &DocId, cmd: DocCmd) -> Option<()> {
        let sent = self.state.hub.send(&self.state, doc, cmd).await;
        if sent.is_none() {
            self.refuse(
                ErrorCode::DocUnavailable,
                doc,
                None,
                "the relay is shutting down",
            );
        }
        sent
    }

    /// Leaves every subscribed document (presence expires there).
    async fn leave_all(&mut self) {
        for doc in std::mem::take(&mut self.docs) {
            self.state
                .hub
                .send_if_loaded(&doc, DocCmd::Leave { peer: self.peer })
                .await;
        }
    }
}
