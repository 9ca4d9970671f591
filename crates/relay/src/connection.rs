//! One client connection: the handshake, the frames it sends, and the
//! frames queued for it.
//!
//! A reader task reads frames and dispatches them to document tasks; a
//! writer task writes what those tasks queued ([`crate::outbound`]). Replies
//! that the connection itself makes (pongs, refusals) go through the same
//! queue, so each document's acks and errors keep their order. Errors of
//! connection scope are written last, after whatever was already queued,
//! and close the connection.
//!
//! Deadlines, each closing the connection with its code:
//! - `Hello` within `hello_timeout` of the upgrade (`HandshakeTimeout` 13);
//! - a message whose first bytes arrived completes within
//!   `message_timeout` (13), and no message is larger than its limit
//!   (`FrameTooLarge` 2): enforced on the read side, [`crate::ws`];
//! - the token's `exp` (`TokenExpired` 7), by a timer, whatever the client
//!   sends;
//! - `idle_timeout_ms` without a protocol frame (`IdleTimeout` 10):
//!   WebSocket pings and pongs are not activity (the protocol has its own
//!   `Ping`/`Pong` frames).
//!
//! Rates per connection: `Update` (`RateLimited` 200 per update),
//! `Subscribe` (`SubscribeRateLimited` 104 per document) and `Presence`:
//! over its rate, presence is coalesced — only the latest state of each
//! document waits, and it is sent when the bucket allows, so the latest
//! state is never lost.
//!
//! Closing writes the error frame and a close frame, shuts the write side,
//! then reads and discards what the client still sends (until its Close
//! frame, EOF or `LINGER`), so the error frame is not lost to a TCP reset
//! while the client is still sending (a large message, say).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tracing::{debug, info};
use weft_core::doc::Limits;
use weft_core::{DecodeError, DocError, Update};
use weft_protocol::{DocId, ErrorCode, ErrorScope, Frame, Handshake, PeerId, PresenceState, Role};

use crate::admission::{Admitted, TokenBucket};
use crate::auth::Grant;
use crate::doc_cmd::{update_limits, DocCmd, UpdateCmd};
use crate::doc_kind;
use crate::metrics;
use crate::outbound::{self, Outbound, OutboundRx};
use crate::state::Shared;
use crate::ws::{Socket, Verdict};

static NEXT_PEER: AtomicU64 = AtomicU64::new(1);

/// Frames written per flush when several are queued.
const WRITE_BATCH: usize = 64;
/// How long closing may take before the socket is just dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a closed connection keeps reading (and discarding) what the
/// client still sends, waiting for its Close frame.
const LINGER: Duration = Duration::from_secs(1);
/// A timer that is not armed.
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

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
    subscribes: TokenBucket,
    presence: TokenBucket,
    /// Presence over the rate: the latest state per document, sent in the
    /// order the documents first waited.
    presence_waiting: HashMap<DocId, Option<PresenceState>>,
    presence_order: VecDeque<DocId>,
}

/// Serves one upgraded WebSocket until it closes. `admitted` is `None` when
/// admission limits refused it: it then only gets `ServerBusy`. `verdict`
/// is where the socket's read-side guard records why it stopped reading.
///
/// Reading and writing are two tasks, so a client that sends faster than
/// its document stores never stops receiving its acks.
pub(crate) async fn serve(
    state: Shared,
    socket: Socket,
    verdict: Verdict,
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
        Box::pin(finish(writer, stream)).await;
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
        subscribes: TokenBucket::new(limits.subscribes_per_sec, limits.subscribe_burst),
        presence: TokenBucket::new(limits.presence_per_sec, limits.presence_burst),
        presence_waiting: HashMap::new(),
        presence_order: VecDeque::new(),
    };
    let now = tokio::time::Instant::now();
    let idle_timer = tokio::time::sleep_until(now + idle);
    let hello_timer = tokio::time::sleep_until(now + limits.hello_timeout.min(FAR));
    let expiry_timer = tokio::time::sleep_until(now + FAR);
    let presence_timer = tokio::time::sleep_until(now + FAR);
    tokio::pin!(idle_timer, hello_timer, expiry_timer, presence_timer);
    let mut expiry_armed = false;
    loop {
        let presence_due = conn.presence_due();
        if let Some(due) = presence_due {
            if presence_timer.is_elapsed() || presence_timer.deadline() > due {
                presence_timer.as_mut().reset(due);
            }
        }
        tokio::select! {
            biased;
            _ = killed.wait() => break,
            _ = shutdown.changed() => {
                conn.out.kill(ErrorCode::ShuttingDown, "the relay is shutting down");
                break;
            }
            () = &mut hello_timer, if conn.grant.is_none() => {
                conn.out.kill(ErrorCode::HandshakeTimeout, "no Hello in time");
                break;
            }
            () = &mut expiry_timer, if expiry_armed => {
                conn.out.kill(ErrorCode::TokenExpired, "token expired");
                break;
            }
            () = &mut presence_timer, if presence_due.is_some() => {
                Box::pin(conn.flush_presence()).await;
            }
            msg = stream.next() => {
                let close = match msg {
                    Some(Ok(Message::Binary(bytes))) => {
                        // Only protocol frames are activity.
                        idle_timer.as_mut().reset(tokio::time::Instant::now() + idle);
                        match Box::pin(conn.frame(&bytes)).await {
                            Next::Continue => {
                                if !expiry_armed {
                                    if let Some(left) = conn.grant.as_ref().and_then(Grant::expires_in) {
                                        expiry_timer
                                            .as_mut()
                                            .reset(tokio::time::Instant::now() + left.min(FAR));
                                        expiry_armed = true;
                                    }
                                }
                                continue;
                            }
                            Next::Close(code, reason) => Some((code, reason)),
                        }
                    }
                    Some(Ok(Message::Text(_))) => {
                        Some((ErrorCode::BadFrame, "text messages are not frames".to_owned()))
                    }
                    // WebSocket control frames: answered by the codec, and
                    // not activity.
                    Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                    Some(Err(e)) => match verdict.get() {
                        Some(v) => Some((v.code(), v.reason())),
                        None if too_large(&e) => Some((
                            ErrorCode::FrameTooLarge,
                            format!("message larger than {} bytes", limits.wire.max_frame_bytes),
                        )),
                        None => None,
                    },
                    Some(Ok(Message::Close(_))) | None => None,
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
    Box::pin(conn.leave_all()).await;
    drop(conn);
    Box::pin(finish(writer, stream)).await;
    drop(admitted);
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.state.meters.connections.decrement(1.0);
    }
}

/// Whether a read failed because the codec found the message over its
/// size limit (a backstop: the read-side guard refuses it first).
fn too_large(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Capacity(_))
}

type Sink = SplitSink<Socket, Message>;

/// Waits for the writer to write what it must and close, then shuts the
/// socket's write side and reads what the client still sends, until its
/// Close frame, EOF, or `LINGER`.
async fn finish(mut writer: JoinHandle<Sink>, stream: SplitStream<Socket>) {
    let sink = match tokio::time::timeout(CLOSE_TIMEOUT * 2, &mut writer).await {
        Ok(Ok(sink)) => sink,
        _ => {
            // A writer stuck on a peer that does not read: drop the socket
            // (the writer task owns its sink half).
            writer.abort();
            return;
        }
    };
    let Ok(mut socket) = stream.reunite(sink) else {
        return;
    };
    let io = socket.get_mut();
    io.drain();
    let linger = async {
        let _ = io.shutdown().await;
        let mut buf = vec![0u8; 4096];
        while !io.close_received() {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, linger).await;
}

/// Writes queued frames until the connection is killed (then the error
/// frame and a close) or every sender is gone; returns the sink.
async fn write_loop(mut sink: Sink, mut rx: OutboundRx, state: Shared) -> Sink {
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
                return sink;
            }
            frame = rx.recv() => {
                let Some(frame) = frame else {
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.close()).await;
                    return sink;
                };
                if write(&mut sink, &mut rx, frame, &state).await.is_err() {
                    return sink;
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
) -> Result<(), tungstenite::Error> {
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
            code: CloseCode::from(close_code(code)),
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
        ErrorCode::ShuttingDown | ErrorCode::IdleTimeout | ErrorCode::HandshakeTimeout => 1001,
        ErrorCode::FrameTooLarge => 1009,
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
                self.leave(&doc).await;
                Next::Continue
            }
            Frame::Update { doc, seq, update } => {
                self.update(doc, seq, update).await;
                Next::Continue
            }
            Frame::Presence { doc, state } => {
                self.presence(doc, state).await;
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
        if !self.subscribes.take() {
            // Document scope: a subscribed document no longer is.
            self.leave(&doc).await;
            self.refuse(
                ErrorCode::SubscribeRateLimited,
                &doc,
                None,
                "too many subscriptions too fast; subscribe again later",
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
        // Protocol 2 on: the client learns its permission before `Synced`
        // (the document task queues `Synced` on the same queue after this).
        if self
            .handshake
            .version()
            .is_some_and(|v| v >= weft_protocol::ACCESS_VERSION)
        {
            let write = self
                .grant
                .as_ref()
                .is_some_and(|g| g.may_write(doc.as_str()));
            self.reply(Frame::Access {
                doc: doc.clone(),
                access: if write {
                    weft_protocol::Access::ReadWrite
                } else {
                    weft_protocol::Access::ReadOnly
                },
            });
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
            Ok(Err(code)) => {
                let why = doc_kind::unavailable_reason(
                    self.state.store.clone(),
                    self.state.yjs.clone(),
                    &doc,
                )
                .await;
                self.refuse(code, &doc, None, &why)
            }
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
        let update = match refused {
            Some((code, message)) => Err((code, message.to_owned())),
            None => self.decode_update(update).await,
        };
        let subject = self
            .grant
            .as_ref()
            .map_or_else(|| Arc::from(""), |g| Arc::from(g.subject.as_str()));
        let cmd = DocCmd::Update(Box::new(UpdateCmd {
            peer: self.peer,
            subject,
            seq,
            update,
            out: self.out.clone(),
            received: Instant::now(),
        }));
        self.send(&doc, cmd).await;
    }

    /// Decodes and checks an update once, for everything after it (the
    /// document, the store, fan-out). A small one is tried inline with what
    /// decoding may produce capped at `heavy_work_bytes`; anything larger,
    /// or that turns out to inflate past that, is decoded on the blocking
    /// pool under the full `max_update_decoded_bytes`.
    async fn decode_update(&self, bytes: Vec<u8>) -> Result<Update, (ErrorCode, String)> {
        let limits = update_limits(&self.state.limits);
        let light = self.state.limits.heavy_work_bytes;
        let decoded = if bytes.len() <= light {
            let inline = Limits {
                max_decoded_bytes: light.min(limits.max_decoded_bytes),
                ..limits
            };
            match Update::decode(bytes.clone(), &inline) {
                Err(DocError::Decode(DecodeError::DecodedTooLarge { .. }))
                    if limits.max_decoded_bytes > inline.max_decoded_bytes =>
                {
                    self.state
                        .heavy
                        .run(move || Update::decode(bytes, &limits))
                        .await
                }
                done => Some(done),
            }
        } else {
            self.state
                .heavy
                .run(move || Update::decode(bytes, &limits))
                .await
        };
        match decoded {
            Some(Ok(update)) => Ok(update),
            Some(Err(DocError::Decode(DecodeError::DecodedTooLarge { max }))) => Err((
                ErrorCode::UpdateTooLarge,
                format!("the update decodes to more than {max} bytes"),
            )),
            Some(Err(e)) => Err((ErrorCode::UpdateRejected, e.to_string())),
            None => Err((ErrorCode::Internal, "decoding the update failed".to_owned())),
        }
    }

    /// Sends a command to `doc`'s task; `None` (after telling the client)
    /// when the relay is shutting down.
    async fn send(&self, doc: &DocId, cmd: DocCmd) -> Option<()> {
        let sent = self.state.hub.send(doc, cmd).await;
        if sent.is_none() {
            self.refuse(
                ErrorCode::DocUnavailable,
                doc,
                None,
                "document unavailable: the relay is shutting down or has its cap of open documents in use",
            );
        }
        sent
    }

    /// Unsubscribes `doc` if it was subscribed (its presence expires
    /// there, and any presence still waiting for it is dropped).
    async fn leave(&mut self, doc: &DocId) {
        if self.presence_waiting.remove(doc).is_some() {
            self.presence_order.retain(|d| d != doc);
        }
        if self.docs.remove(doc) {
            let leave = DocCmd::Leave { peer: self.peer };
            self.state.hub.send_if_loaded(doc, leave).await;
        }
    }

    /// A `Presence` frame: sent on if the presence bucket allows and
    /// nothing waits; otherwise it replaces (or becomes) the state waiting
    /// for its document.
    async fn presence(&mut self, doc: DocId, state: Option<PresenceState>) {
        if !self.docs.contains(&doc) {
            return self.refuse(ErrorCode::NotSubscribed, &doc, None, "not subscribed");
        }
        if let Some(waiting) = self.presence_waiting.get_mut(&doc) {
            *waiting = state;
            self.state.meters.presence_coalesced.increment(1);
            return;
        }
        if self.presence_order.is_empty() && self.presence.take() {
            let cmd = DocCmd::Presence {
                peer: self.peer,
                state: state.map(Box::new),
            };
            self.send(&doc, cmd).await;
            return;
        }
        self.presence_waiting.insert(doc.clone(), state);
        self.presence_order.push_back(doc);
    }

    /// When waiting presence may be sent (`None`: nothing waits).
    fn presence_due(&mut self) -> Option<tokio::time::Instant> {
        if self.presence_order.is_empty() {
            return None;
        }
        Some(tokio::time::Instant::now() + self.presence.wait())
    }

    /// Sends waiting presence while the bucket allows.
    async fn flush_presence(&mut self) {
        while let Some(doc) = self.presence_order.pop_front() {
            if !self.presence.take() {
                self.presence_order.push_front(doc);
                return;
            }
            if let Some(state) = self.presence_waiting.remove(&doc) {
                let cmd = DocCmd::Presence {
                    peer: self.peer,
                    state: state.map(Box::new),
                };
                self.send(&doc, cmd).await;
            }
        }
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
