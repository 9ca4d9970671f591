//! One y-websocket connection: a reader that parses and checks messages
//! and hands them to the room, and a writer that drains the connection's
//! [`Outbox`].
//!
//! Deadlines: a message whose first bytes arrived must complete within
//! `message_timeout` and no message may be larger than `max_frame_bytes`
//! (the read-side guard, [`crate::ws`]); the server pings every
//! [`PING_EVERY`] and a connection that sends nothing (not even a pong) for
//! [`IDLE`] is closed; a write that does not complete within
//! `slow_consumer_grace` closes the connection; the token's `exp` closes it
//! (4401). Updates past `updates_per_sec` (burst `update_burst`) are
//! delayed, not dropped: the reader stops reading until the bucket refills.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tracing::debug;
use weft_protocol::DocId;

use super::metrics as m;
use super::outbox::{Next, Outbox};
use super::room::{close, Incoming as RoomUpdate, RoomCmd, RoomError};
use super::rooms::Rooms;
use super::wire::{self, Incoming};
use crate::admission::{Admitted, TokenBucket};
use crate::auth::Grant;
use crate::ws::{Socket, Verdict};

/// The server pings this often.
pub(crate) const PING_EVERY: Duration = Duration::from_secs(15);
/// A connection silent for this long is closed.
pub(crate) const IDLE: Duration = Duration::from_secs(45);
/// Largest awareness state accepted (JSON bytes).
pub(crate) const MAX_AWARENESS_STATE: usize = 16 * 1024;
/// How long closing may take.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Close codes of the connection itself.
mod code {
    pub(super) const PROTOCOL: u16 = 1002;
    pub(super) const UNSUPPORTED: u16 = 1003;
    pub(super) const GOING_AWAY: u16 = 1001;
    pub(super) const TOO_BIG: u16 = 1009;
    pub(super) const TRY_AGAIN: u16 = 1013;
    pub(super) const EXPIRED: u16 = 4401;
    pub(super) const WEFT_DOC: u16 = 4409;
    pub(super) const IDLE: u16 = 4408;
}

/// Serves one upgraded connection to room `doc`.
pub(crate) async fn serve(
    rooms: Arc<Rooms>,
    socket: Socket,
    verdict: Verdict,
    admitted: Option<Admitted>,
    mut shutdown: watch::Receiver<bool>,
    doc: DocId,
    grant: Grant,
) {
    let limits = rooms.limits();
    let out = Arc::new(Outbox::new(
        limits.outbound_queue_bytes,
        limits.outbound_queue_frames,
    ));
    let (sink, mut stream) = socket.split();
    let conn = rooms.next_conn();
    let (room_tx, joined) = if admitted.is_none() {
        (
            None,
            Err(RoomError::Unavailable("too many connections".into())),
        )
    } else {
        // Joins the room, starting it if needed.
        let (write, subject) = (
            grant.may_write(doc.as_str()),
            Arc::<str>::from(grant.subject.as_str()),
        );
        let joined = rooms
            .ask(&doc, |reply| RoomCmd::Join {
                conn,
                out: out.clone(),
                write,
                subject: subject.clone(),
                reply,
            })
            .await;
        match joined {
            Ok((room, ())) => (Some(room), Ok(())),
            Err(e) => (None, Err(e)),
        }
    };
    let writer = tokio::spawn(write_loop(
        sink,
        out.clone(),
        room_tx.clone(),
        conn,
        limits.slow_consumer_grace,
    ));
    let room = match (room_tx, joined) {
        (Some(room), Ok(())) => room,
        (_, Err(e)) => {
            let (c, reason) = match e {
                RoomError::WeftDocument => (
                    code::WEFT_DOC,
                    format!("{doc} is a weft document; open it with a weft client at /ws"),
                ),
                RoomError::Closing => (code::TRY_AGAIN, "room busy, retry".into()),
                RoomError::Unavailable(r) => (code::TRY_AGAIN, r),
                RoomError::Refused(c, r) => (c, r),
            };
            out.close(c, reason);
            finish(writer, stream).await;
            return;
        }
        (None, Ok(())) => return,
    };
    m::connections().increment(1.0);
    let write = grant.may_write(doc.as_str());
    let expiry = grant
        .expires_in()
        .map(|d| d.min(Duration::from_secs(365 * 24 * 3600)))
        .unwrap_or(Duration::from_secs(365 * 24 * 3600));
    let expires = tokio::time::sleep(expiry);
    tokio::pin!(expires);
    let max_update = limits.wire.max_update_bytes as usize;
    let mut denied = false;
    let mut last_query: Option<tokio::time::Instant> = None;
    // Updates over the rate are not refused (a Yjs client has no way to
    // resend one): the reader waits for the bucket, so the client is slowed
    // down by TCP backpressure instead.
    let mut bucket = TokenBucket::new(limits.updates_per_sec, limits.update_burst);
    let refill = Duration::from_secs(1) / limits.updates_per_sec.max(1);
    loop {
        let msg = tokio::select! {
            msg = tokio::time::timeout(IDLE, stream.next()) => msg,
            _ = &mut expires => {
                out.close(code::EXPIRED, "token expired");
                break;
            }
            _ = shutdown.wait_for(|s| *s) => {
                out.close(code::GOING_AWAY, "relay shutting down");
                break;
            }
        };
        let msg = match msg {
            Err(_) => {
                out.close(code::IDLE, "idle");
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                if let Some(v) = verdict.get() {
                    let c = match v {
                        crate::ws::Violation::TooLarge { .. } => code::TOO_BIG,
                        crate::ws::Violation::Incomplete(_) => code::PROTOCOL,
                    };
                    out.close(c, v.reason());
                }
                debug!(conn, error = %e, "Yjs connection read failed");
                break;
            }
            Ok(Some(Ok(msg))) => msg,
        };
        let bytes = match msg {
            Message::Binary(b) => b,
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            Message::Text(_) => {
                out.close(code::UNSUPPORTED, "binary messages only");
                break;
            }
        };
        if out.is_closed() {
            break;
        }
        let cmd = match wire::parse(&bytes) {
            Err(e) => {
                m::refused("malformed").increment(1);
                out.close(code::PROTOCOL, format!("malformed message: {e}"));
                break;
            }
            Ok(Incoming::Step1(sv)) => RoomCmd::Step1 {
                conn,
                sv: bytes.slice_ref(sv),
            },
            Ok(Incoming::Step2(u) | Incoming::Update(u)) => {
                if is_empty_update(u) {
                    continue;
                }
                if !write {
                    // A read-only client's edits stay its own.
                    m::refused("read_only").increment(1);
                    if !denied {
                        denied = true;
                        out.push(Bytes::from(wire::permission_denied(
                            "read-only token: updates are refused",
                        )));
                    }
                    continue;
                }
                if u.len() > max_update {
                    m::refused("too_large").increment(1);
                    out.close(code::TOO_BIG, "update too large");
                    break;
                }
                let shape = match wire::check_update(u) {
                    Ok(s) => s,
                    Err(e) => {
                        m::refused("invalid").increment(1);
                        out.close(close::INVALID, format!("invalid update: {e}"));
                        break;
                    }
                };
                // Over the rate: this connection's reads wait for a token
                // (backpressure on its socket), however long that takes;
                // no update goes through without one.
                while !bucket.take() {
                    tokio::time::sleep(refill).await;
                }
                RoomCmd::Update(Box::new(RoomUpdate {
                    conn: Some(conn),
                    bytes: bytes.slice_ref(u),
                    shape,
                    reply: None,
                }))
            }
            Ok(Incoming::Awareness(a)) => match wire::awareness(a, MAX_AWARENESS_STATE) {
                Ok(entries) => RoomCmd::Awareness { conn, entries },
                Err(e) => {
                    m::refused("malformed").increment(1);
                    out.close(code::PROTOCOL, format!("malformed awareness: {e}"));
                    break;
                }
            },
            // Each answer carries every state in the room: at most one a
            // second per connection, or a loop of queries amplifies.
            Ok(Incoming::QueryAwareness) => {
                let now = tokio::time::Instant::now();
                if last_query.is_some_and(|t| now.duration_since(t) < QUERY_AWARENESS_EVERY) {
                    m::refused("awareness_query_rate").increment(1);
                    continue;
                }
                last_query = Some(now);
                RoomCmd::QueryAwareness { conn }
            }
            Ok(Incoming::Auth) => continue,
        };
        if room.send(cmd).await.is_err() {
            out.close(close::SERVER_ERROR, "room closed; reconnect");
            break;
        }
    }
    let _ = room.send(RoomCmd::Leave { conn }).await;
    if !out.is_closed() {
        out.close(1000, "");
    }
    m::connections().decrement(1.0);
    finish(writer, stream).await;
}

/// The shortest interval between two awareness queries a connection gets
/// answered.
const QUERY_AWARENESS_EVERY: Duration = Duration::from_secs(1);
/// `[0, 0]`: no structs, no deletions (what a client with nothing new
/// sends as its SyncStep2).
fn is_empty_update(u: &[u8]) -> bool {
    u == [0, 0]
}

async fn write_loop(
    mut sink: SplitSink<Socket, Message>,
    out: Arc<Outbox>,
    room: Option<mpsc::Sender<RoomCmd>>,
    conn: u64,
    grace: Duration,
) {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        match out.next() {
            Next::Message(msg) => {
                let n = msg.len();
                if !matches!(
                    tokio::time::timeout(grace, sink.send(Message::Binary(msg))).await,
                    Ok(Ok(()))
                ) {
                    out.close(close::SERVER_ERROR, "write failed");
                    return;
                }
                m::bytes_out().increment(n as u64);
            }
            Next::Resync => match &room {
                Some(room) => {
                    if room.send(RoomCmd::Resync { conn }).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            Next::Close((code, reason)) => {
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                };
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    let _ = sink.close().await;
                })
                .await;
                return;
            }
            Next::Empty => {
                tokio::select! {
                    _ = out.notified() => {}
                    _ = ping.tick() => {
                        if !matches!(
                            tokio::time::timeout(grace, sink.send(Message::Ping(Bytes::new()))).await,
                            Ok(Ok(()))
                        ) {
                            out.close(close::SERVER_ERROR, "write failed");
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// Waits for the writer to send its close, reading (and discarding) what
/// the client still sends for a moment so the close is not lost to a reset.
async fn finish(writer: tokio::task::JoinHandle<()>, mut stream: SplitStream<Socket>) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, writer).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(Ok(msg)) = stream.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}
