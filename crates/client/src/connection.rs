//! The sync task: one WebSocket to the relay shared by every open
//! document; handshake, subscribe, catch up, send, acknowledge, keep alive,
//! and reconnect with backoff. Every frame from the relay is untrusted:
//! it is decoded with our own limits and checked by the handshake rules;
//! a frame that fails either ends the connection (the client reconnects).

use crate::client::ClientShared;
use crate::outbox::{self, backlog_diff, backlog_from_records, versions, Outbox, Piece};
use crate::replica::ReplicaShared;
use crate::{ClientEvent, ConnectionState, SyncConfig, SyncStatus};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use weft_core::VersionVector;
use weft_protocol::{DocId, ErrorCode, ErrorScope, Frame, Handshake, Limits, PeerId, Role};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What replicas tell the sync task.
#[derive(Debug)]
pub(crate) enum Command {
    /// A replica was opened: subscribe it.
    Open(Arc<ReplicaShared>),
    /// A local update, already durable in the store.
    Local { doc: DocId, update: Vec<u8> },
    /// The replica's own presence changed.
    Presence { doc: DocId },
}

/// The channel from replicas to the sync task, if one runs.
#[derive(Debug, Default)]
pub(crate) struct Link {
    tx: Mutex<Option<mpsc::UnboundedSender<Command>>>,
}

impl Link {
    pub(crate) fn set(&self, tx: Option<mpsc::UnboundedSender<Command>>) {
        *self.tx.lock().unwrap_or_else(|e| e.into_inner()) = tx;
    }

    pub(crate) fn is_connected(&self) -> bool {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    pub(crate) fn send(&self, command: Command) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = tx.send(command); // a stopped task has nothing to sync
        }
    }
}

/// Why a session ended.
#[derive(Debug)]
enum End {
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

/// What woke the sync loop.
enum Event {
    Stop,
    Frame(Result<Option<Frame>, End>),
    Command(Option<Command>),
    Tick,
}

/// Where one document is on the current connection.
#[derive(Debug)]
enum Phase {
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
struct DocSession {
    replica: Arc<ReplicaShared>,
    phase: Phase,
}

/// The background task of a connected [`Client`](crate::Client).
#[derive(Debug)]
pub(crate) struct SyncTask {
    shared: Arc<ClientShared>,
    config: SyncConfig,
    cmds: mpsc::UnboundedReceiver<Command>,
    stop: watch::Receiver<bool>,
    /// What we accept from the relay.
    ours: Limits,
}

/// One live connection.
struct Session {
    sink: SplitSink<Ws, Message>,
    limits: Limits,
    peer: PeerId,
    docs: BTreeMap<DocId, DocSession>,
    next_seq: u64,
    last_sent: Instant,
    last_recv: Instant,
}

impl SyncTask {
    pub(crate) fn new(
        shared: Arc<ClientShared>,
        config: SyncConfig,
        cmds: mpsc::UnboundedReceiver<Command>,
        stop: watch::Receiver<bool>,
    ) -> SyncTask {
        SyncTask {
            shared,
            config,
            cmds,
            stop,
            ours: Limits::default(),
        }
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    fn set_all(&self, status: SyncStatus) {
        for replica in self.shared.replicas() {
            replica.set_status(status);
            if status == SyncStatus::Offline {
                replica.presence.clear();
            }
        }
    }

    /// Connect, sync until the connection ends, back off, repeat.
    pub(crate) async fn run(mut self) {
        let mut attempt: u32 = 0;
        while !self.stopped() {
            self.shared
                .connection
                .send_replace(ConnectionState::Connecting { attempt });
            self.set_all(SyncStatus::Connecting);
            let end = self.connect_and_sync(&mut attempt).await;
            self.set_all(SyncStatus::Offline);
            match end {
                End::Stop => break,
                End::Lost(reason) => {
                    tracing::debug!(%reason, attempt, "relay connection ended");
                    self.shared.emit(ClientEvent::Disconnected { reason });
                }
            }
            let retry_in = self.config.backoff.delay(attempt);
            attempt = attempt.saturating_add(1);
            self.shared
                .connection
                .send_replace(ConnectionState::BackingOff { attempt, retry_in });
            if !self.sleep_offline(retry_in).await {
                break;
            }
        }
        self.set_all(SyncStatus::Offline);
        self.shared.connection.send_replace(ConnectionState::Idle);
    }

    /// Sleeps, draining commands (offline edits are in the store and will
    /// be in the next catch-up). `false` if stopped.
    async fn sleep_offline(&mut self, delay: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return true,
                changed = self.stop.changed() => {
                    if changed.is_err() || self.stopped() {
                        return false;
                    }
                }
                cmd = self.cmds.recv() => {
                    if cmd.is_none() {
                        return false;
                    }
                }
            }
        }
    }

    async fn connect_and_sync(&mut self, attempt: &mut u32) -> End {
        let mut ws_config = WebSocketConfig::default();
        ws_config.max_message_size = Some(self.ours.max_frame_bytes as usize);
        ws_config.max_frame_size = Some(self.ours.max_frame_bytes as usize);
        let connect = tokio_tungstenite::connect_async_with_config(
            self.config.url.as_str(),
            Some(ws_config),
            true,
        );
        let timeout = self.config.connect_timeout;
        let ws = tokio::select! {
            r = tokio::time::timeout(timeout, connect) => match r {
                Ok(Ok((ws, _))) => ws,
                Ok(Err(e)) => return End::Lost(format!("connect: {e}")),
                Err(_) => return End::Lost("connect: timed out".into()),
            },
            _ = self.stop.changed() => return End::Stop,
        };
        let (sink, mut stream) = ws.split();
        let mut session = Session {
            sink,
            limits: self.ours,
            peer: PeerId(0),
            docs: BTreeMap::new(),
            next_seq: 1,
            last_sent: Instant::now(),
            last_recv: Instant::now(),
        };
        let token = self
            .shared
            .token
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let hello = Frame::hello(self.config.client_name.clone(), token);
        if let Err(end) = session.send(&hello).await {
            return end;
        }
        let mut handshake = Handshake::new(Role::Client);
        let mut stop = self.stop.clone();
        let welcome = tokio::select! {
            r = tokio::time::timeout(timeout, self.await_welcome(&mut stream, &mut handshake)) => match r {
                Ok(r) => r,
                Err(_) => Err(End::Lost("handshake: timed out".into())),
            },
            _ = stop.changed() => Err(End::Stop),
        };
        let (peer, server, limits) = match welcome {
            Ok(w) => w,
            Err(end) => return end,
        };
        *attempt = 0;
        session.peer = peer;
        session.limits = limits;
        self.shared
            .connection
            .send_replace(ConnectionState::Connected {
                peer,
                server: server.clone(),
            });
        self.shared.emit(ClientEvent::Connected { peer, server });
        for replica in self.shared.replicas() {
            if let Err(end) = session.subscribe(replica).await {
                return end;
            }
        }
        match self
            .sync_loop(&mut session, &mut stream, &mut handshake)
            .await
        {
            End::Stop => {
                let _ = tokio::time::timeout(Duration::from_secs(1), session.sink.close()).await;
                End::Stop
            }
            lost => lost,
        }
    }

    async fn await_welcome(
        &self,
        stream: &mut SplitStream<Ws>,
        handshake: &mut Handshake,
    ) -> Result<(PeerId, String, Limits), End> {
        loop {
            let Some(frame) = next_frame(stream, &self.ours).await? else {
                continue;
            };
            handshake
                .receive(&frame)
                .map_err(|code| End::Lost(format!("handshake: {code}")))?;
            match frame {
                Frame::Welcome {
                    server_name,
                    peer,
                    limits,
                    ..
                } => return Ok((peer, server_name, limits)),
                Frame::Error { code, message, .. } => {
                    self.shared.emit(ClientEvent::ConnectionError {
                        code,
                        message: message.clone(),
                    });
                    return Err(End::Lost(format!("refused: {code}: {message}")));
                }
                other => {
                    return Err(End::Lost(format!(
                        "handshake: unexpected {} before Welcome",
                        other.name()
                    )))
                }
            }
        }
    }

    async fn sync_loop(
        &mut self,
        s: &mut Session,
        stream: &mut SplitStream<Ws>,
        handshake: &mut Handshake,
    ) -> End {
        let idle = Duration::from_millis(u64::from(s.limits.idle_timeout_ms.max(300)));
        let ping_every = idle / 4;
        let period = (ping_every / 2).clamp(Duration::from_millis(10), Duration::from_millis(250));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stop = self.stop.clone();
        let ours = self.ours;
        loop {
            if let Err(end) = self.pump(s).await {
                return end;
            }
            let event = tokio::select! {
                changed = stop.changed() => match changed {
                    Ok(()) if !*stop.borrow() => continue,
                    _ => Event::Stop,
                },
                frame = next_frame(stream, &ours) => Event::Frame(frame),
                cmd = self.cmds.recv() => Event::Command(cmd),
                _ = tick.tick() => Event::Tick,
            };
            let step = match event {
                Event::Stop => Err(End::Stop),
                Event::Frame(Ok(Some(frame))) => {
                    s.last_recv = Instant::now();
                    match handshake.receive(&frame) {
                        Ok(()) => self.on_frame(s, frame).await,
                        Err(code) => Err(End::Lost(format!("relay broke the protocol: {code}"))),
                    }
                }
                Event::Frame(Ok(None)) => {
                    s.last_recv = Instant::now();
                    Ok(())
                }
                Event::Frame(Err(end)) => Err(end),
                Event::Command(Some(cmd)) => self.on_command(s, cmd).await,
                Event::Command(None) => Err(End::Stop),
                Event::Tick => self.on_tick(s, idle, ping_every).await,
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    async fn on_tick(
        &self,
        s: &mut Session,
        idle: Duration,
        ping_every: Duration,
    ) -> Result<(), End> {
        let now = Instant::now();
        if now.duration_since(s.last_recv) > idle {
            return Err(End::Lost(format!("relay silent for {idle:?}")));
        }
        if now.duration_since(s.last_sent) >= ping_every {
            s.send(&Frame::Ping {
                nonce: crate::backoff::random_u64(),
            })
            .await?;
        }
        let due: Vec<Arc<ReplicaShared>> = s
            .docs
            .values()
            .filter(|d| matches!(d.phase, Phase::Resubscribe(at) if at <= now))
            .map(|d| d.replica.clone())
            .collect();
        for replica in due {
            s.subscribe(replica).await?;
        }
        Ok(())
    }

    async fn on_command(&self, s: &mut Session, cmd: Command) -> Result<(), End> {
        match cmd {
            Command::Open(replica) => {
                if !s.docs.contains_key(&replica.id) {
                    s.subscribe(replica).await?;
                }
            }
            Command::Local { doc, update } => {
                if let Some(d) = s.docs.get_mut(&doc) {
                    if let Phase::Live(out) = &mut d.phase {
                        if let Some(piece) = Piece::new(update) {
                            out.push(piece);
                        }
                    }
                    refresh(d);
                }
            }
            Command::Presence { doc } => s.send_presence(&doc).await?,
        }
        Ok(())
    }

    async fn on_frame(&self, s: &mut Session, frame: Frame) -> Result<(), End> {
        match frame {
            Frame::Ping { nonce } => s.send(&Frame::Pong { nonce }).await?,
            Frame::Synced {
                doc,
                update,
                version,
            } => self.on_synced(s, doc, update, version).await?,
            Frame::Remote { doc, update } => {
                let Some(d) = s.docs.get_mut(&doc) else {
                    return Ok(());
                };
                let Phase::Live(out) = &mut d.phase else {
                    return Ok(()); // in flight across an Unsubscribe or error
                };
                let (from, to) = versions(&update)
                    .ok_or_else(|| End::Lost("relay sent a Remote that is not an update".into()))?;
                blocking_apply(&d.replica, update).await?;
                out.learn(from, to);
                refresh(d);
            }
            Frame::Ack { doc, seq } => {
                if let Some(d) = s.docs.get_mut(&doc) {
                    if let Phase::Live(out) = &mut d.phase {
                        out.ack(seq);
                    }
                    refresh(d);
                }
            }
            Frame::Error {
                code,
                doc,
                seq,
                message,
            } => self.on_error(s, code, doc, seq, message)?,
            Frame::PresenceUpdate { doc, peers } => {
                if let Some(d) = s.docs.get(&doc) {
                    d.replica.presence.update(s.peer, peers);
                }
            }
            Frame::PresenceRemoved { doc, peers } => {
                if let Some(d) = s.docs.get(&doc) {
                    d.replica.presence.remove(&peers);
                }
            }
            // Pong is activity only; Hello/Welcome and client frames were
            // refused by the handshake check.
            _ => {}
        }
        Ok(())
    }

    async fn on_synced(
        &self,
        s: &mut Session,
        doc: DocId,
        update: Vec<u8>,
        server: VersionVector,
    ) -> Result<(), End> {
        let Some(d) = s.docs.get_mut(&doc) else {
            return Ok(());
        };
        if matches!(d.phase, Phase::Refused(_)) {
            return Ok(());
        }
        if versions(&update).is_none() {
            return Err(End::Lost(
                "relay sent a Synced that is not an update".into(),
            ));
        }
        blocking_apply(&d.replica, update).await?;
        let cap = self
            .config
            .max_batch_bytes
            .min(s.limits.max_update_bytes as usize);
        let replica = d.replica.clone();
        let plan_for = server.clone();
        let planned = tokio::task::spawn_blocking(move || {
            let cell = replica.lock();
            let local = cell.doc.version().clone();
            if let Some(pieces) = backlog_diff(&cell.doc, &plan_for, cap) {
                return Ok((pieces, local));
            }
            drop(cell);
            // Too big for one update: send the stored records instead.
            let stored = replica
                .store
                .read(replica.id.as_str())
                .map_err(|e| format!("reading the backlog: {e}"))?;
            let pieces = match stored {
                Some(stored) => backlog_from_records(stored, &plan_for)
                    .map_err(|e| format!("reading the backlog: {e}"))?,
                None => Vec::new(),
            };
            Ok::<_, String>((pieces, local))
        })
        .await
        .map_err(|e| End::Lost(format!("backlog task: {e}")))?
        .map_err(End::Lost)?;
        let (pieces, local) = planned;
        tracing::debug!(doc = %doc, pieces = pieces.len(), "synced; sending backlog");
        let mut out = Outbox::new(server, self.config.max_in_flight);
        for piece in pieces {
            out.push(piece);
        }
        out.mark_sent(&local);
        d.phase = Phase::Live(out);
        refresh(d);
        if d.replica.presence.mine().is_some() {
            s.send_presence(&doc).await?;
        }
        Ok(())
    }

    fn on_error(
        &self,
        s: &mut Session,
        code: ErrorCode,
        doc: Option<DocId>,
        seq: Option<u64>,
        message: String,
    ) -> Result<(), End> {
        tracing::debug!(%code, ?doc, ?seq, %message, "relay error");
        let doc_session = doc.as_ref().and_then(|id| s.docs.get_mut(id));
        match (code.scope(), doc_session) {
            (ErrorScope::Connection, _) => {
                self.shared.emit(ClientEvent::ConnectionError {
                    code,
                    message: message.clone(),
                });
                return Err(End::Lost(format!("relay error {code}: {message}")));
            }
            (ErrorScope::Document, Some(d)) => {
                d.replica.presence.clear();
                // Status first, then the event: an app reacting to the
                // event sees the new status.
                if matches!(code, ErrorCode::Forbidden | ErrorCode::TooManyDocs) {
                    d.phase = Phase::Refused(code);
                    refresh(d);
                    self.shared.emit(ClientEvent::DocumentRefused {
                        doc: d.replica.id.clone(),
                        code,
                        message,
                    });
                } else {
                    let delay = self.config.backoff.delay(2).max(Duration::from_millis(50));
                    d.phase = Phase::Resubscribe(Instant::now() + delay);
                    refresh(d);
                }
            }
            (ErrorScope::UpdateRetry, Some(d)) => {
                if let (Phase::Live(out), Some(seq)) = (&mut d.phase, seq) {
                    out.retry_later(seq, Instant::now(), self.config.retry_delay);
                }
            }
            (ErrorScope::UpdateRefused, Some(d)) => {
                let refused = match (&mut d.phase, seq) {
                    (Phase::Live(out), Some(seq)) => out.refuse(seq).is_some(),
                    _ => false,
                };
                refresh(d);
                if refused {
                    self.shared.emit(ClientEvent::UpdateRefused {
                        doc: d.replica.id.clone(),
                        code,
                        message,
                    });
                }
            }
            // A document error naming no document we have: nothing to do.
            (_, None) => {}
        }
        Ok(())
    }

    /// Sends what each live document's window allows.
    async fn pump(&self, s: &mut Session) -> Result<(), End> {
        let now = Instant::now();
        let max_update = s.limits.max_update_bytes as usize;
        let mut frames = Vec::new();
        for d in s.docs.values_mut() {
            let Phase::Live(out) = &mut d.phase else {
                continue;
            };
            let mut changed = false;
            while let Some(piece) = out.next(now) {
                changed = true;
                if piece.bytes.len() > max_update {
                    self.shared.emit(ClientEvent::UpdateRefused {
                        doc: d.replica.id.clone(),
                        code: ErrorCode::UpdateTooLarge,
                        message: format!(
                            "update of {} bytes exceeds the relay's max_update_bytes {max_update}",
                            piece.bytes.len()
                        ),
                    });
                    continue;
                }
                let seq = s.next_seq;
                s.next_seq += 1;
                frames.push(Frame::Update {
                    doc: d.replica.id.clone(),
                    seq,
                    update: piece.bytes.clone(),
                });
                out.sent(seq, piece);
            }
            if changed {
                refresh(d);
            }
        }
        for frame in &frames {
            s.send(frame).await?;
        }
        Ok(())
    }
}

impl Session {
    async fn send(&mut self, frame: &Frame) -> Result<(), End> {
        self.sink
            .send(Message::Binary(frame.encode().into()))
            .await?;
        self.last_sent = Instant::now();
        Ok(())
    }

    async fn subscribe(&mut self, replica: Arc<ReplicaShared>) -> Result<(), End> {
        let doc = replica.id.clone();
        let version = replica.version();
        replica.set_status(SyncStatus::Connecting);
        self.docs.insert(
            doc.clone(),
            DocSession {
                replica,
                phase: Phase::Subscribing,
            },
        );
        self.send(&Frame::Subscribe { doc, version }).await
    }

    async fn send_presence(&mut self, doc: &DocId) -> Result<(), End> {
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
async fn next_frame(stream: &mut SplitStream<Ws>, ours: &Limits) -> Result<Option<Frame>, End> {
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

/// Stores and applies a relay update on the blocking pool.
async fn blocking_apply(replica: &Arc<ReplicaShared>, update: Vec<u8>) -> Result<(), End> {
    let replica = replica.clone();
    tokio::task::spawn_blocking(move || replica.store_and_apply(&update))
        .await
        .map_err(|e| End::Lost(format!("apply task: {e}")))?
        .map_err(End::Lost)
}

/// Recomputes a document's [`SyncStatus`].
fn refresh(d: &DocSession) {
    let status = match &d.phase {
        Phase::Subscribing | Phase::Resubscribe(_) => SyncStatus::Connecting,
        Phase::Refused(code) => SyncStatus::Refused { code: *code },
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
