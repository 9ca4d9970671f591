//! One live connection: its socket, the documents subscribed on it and
//! where each stands; frame I/O (every received frame decoded with the
//! client's own limits) and status recomputation.

use crate::outbox::{self, Outbox};
use crate::replica::{Received, ReplicaShared};
use crate::SyncStatus;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use weft_protocol::{Access, DocId, ErrorCode, Frame, Limits, PeerId};

pub(super) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a session ended.
#[derive(Debug)]
pub(super) enum End {
    /// Disconnect requested or the client was dropped.
    Stop,
    /// The connection failed or was closed; reconnect after backoff.
    Lost(String),
}

impl From<tokio_tungstenite::tungstenite::Error> for End {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> End {
        End::Lost(format!("websocket: {e}"))
    }
}

/// Where one document is on the current connection.
#[derive(Debug)]
pub(super) enum Phase {
    /// `Subscribe` sent, waiting for `Synced`.
    Subscribing,
    /// Caught up; local updates flow through the outbox.
    Live(Outbox),
    /// Refused by the relay until the next connection.
    Refused(ErrorCode),
    /// Subscribe again at this time (`DocUnavailable`, `NotSubscribed`).
    Resubscribe(Instant),
}

#[derive(Debug)]
pub(super) struct DocSession {
    pub(super) replica: Arc<ReplicaShared>,
    pub(super) phase: Phase,
    /// The relay's `Access` for this subscription (protocol 2); `None`
    /// from a version 1 relay, which is treated as read-write.
    pub(super) access: Option<Access>,
}

impl DocSession {
    /// The relay said it will refuse this connection's updates.
    pub(super) fn read_only(&self) -> bool {
        self.access == Some(Access::ReadOnly)
    }
}

/// One live connection.
pub(super) struct Session {
    pub(super) sink: SplitSink<Ws, Message>,
    pub(super) limits: Limits,
    /// Whether this relay announces each document's access (protocol
    /// version 2 on); a version 1 relay never does.
    pub(super) announces_access: bool,
    pub(super) peer: PeerId,
    pub(super) docs: BTreeMap<DocId, DocSession>,
    pub(super) next_seq: u64,
    pub(super) last_sent: Instant,
    pub(super) last_recv: Instant,
}

impl Session {
    pub(super) async fn send(&mut self, frame: &Frame) -> Result<(), End> {
        self.sink
            .send(Message::Binary(frame.encode().into()))
            .await?;
        self.last_sent = Instant::now();
        Ok(())
    }

    pub(super) async fn subscribe(&mut self, replica: Arc<ReplicaShared>) -> Result<(), End> {
        let doc = replica.id.clone();
        let version = replica.version();
        if !self.announces_access {
            // What an earlier relay announced does not hold here, and this
            // one will not say: a stale read-only must not refuse edits
            // this relay would take (it still refuses any it must).
            replica.clear_access();
        }
        replica.set_status(SyncStatus::Connecting);
        self.docs.insert(
            doc.clone(),
            DocSession {
                replica,
                phase: Phase::Subscribing,
                access: None,
            },
        );
        self.send(&Frame::Subscribe { doc, version }).await
    }

    /// Stops syncing `doc` on this connection (the relay frees its slot
    /// and drops this peer's presence there). Frames still in flight for it
    /// are ignored.
    pub(super) async fn unsubscribe(&mut self, doc: &DocId) -> Result<(), End> {
        if self.docs.remove(doc).is_none() {
            return Ok(());
        }
        self.send(&Frame::Unsubscribe { doc: doc.clone() }).await
    }

    pub(super) async fn send_presence(&mut self, doc: &DocId) -> Result<(), End> {
        let Some(d) = self.docs.get(doc) else {
            return Ok(());
        };
        if !matches!(d.phase, Phase::Live(_)) {
            return Ok(()); // sent after Synced
        }
        let state = d.replica.presence.mine();
        let frame = Frame::Presence {
            doc: doc.clone(),
            state,
        };
        if let Err(e) = frame.validate(&self.limits) {
            tracing::warn!(doc = %doc, error = %e, "presence over the relay's limits; not sent");
            return Ok(());
        }
        self.send(&frame).await
    }
}

/// The next frame, `None` for a WebSocket control message; any decode
/// failure ends the connection.
pub(super) async fn next_frame(
    stream: &mut SplitStream<Ws>,
    ours: &Limits,
) -> Result<Option<Frame>, End> {
    let message = match stream.next().await {
        None => return Err(End::Lost("relay closed the connection".into())),
        Some(Err(e)) => return Err(e.into()),
        Some(Ok(m)) => m,
    };
    match message {
        Message::Binary(bytes) => Frame::decode(&bytes, ours)
            .map(Some)
            .map_err(|e| End::Lost(format!("undecodable frame from relay: {e}"))),
        Message::Close(_) => Err(End::Lost("relay closed the connection".into())),
        Message::Text(_) => Err(End::Lost("relay sent a text message".into())),
        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(None),
    }
}

/// Checks, applies and stores a relay update on the blocking pool
/// ([`ReplicaShared::receive`]); a failed append ends the connection.
pub(super) async fn blocking_receive(
    replica: &Arc<ReplicaShared>,
    update: Vec<u8>,
) -> Result<Received, End> {
    let replica = replica.clone();
    tokio::task::spawn_blocking(move || replica.receive(update))
        .await
        .map_err(|e| End::Lost(format!("apply task: {e}")))?
        .map_err(End::Lost)
}

/// Recomputes a document's [`SyncStatus`].
pub(super) fn refresh(d: &DocSession) {
    let status = match &d.phase {
        Phase::Subscribing | Phase::Resubscribe(_) => SyncStatus::Connecting,
        Phase::Refused(code) => SyncStatus::Refused { code: *code },
        Phase::Live(out) if d.read_only() => SyncStatus::ReadOnly {
            unsent: outbox::pending(&d.replica.version(), out.known()),
        },
        Phase::Live(out) => {
            let pending = outbox::pending(&d.replica.version(), out.known());
            if pending == 0 && out.is_idle() {
                SyncStatus::Synced
            } else {
                SyncStatus::Syncing { pending }
            }
        }
    };
    d.replica.set_status(status);
}
