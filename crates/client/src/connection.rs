//! The sync task's lifecycle: one WebSocket to the relay shared by every
//! open document; connect, handshake, subscribe, the event loop (frames,
//! commands, keepalive ticks) and reconnect with backoff. What each frame
//! does is in `dispatch.rs`; the connection's state in `session.rs`.
//! Every frame from the relay is untrusted: it is decoded with our own
//! limits and checked by the handshake rules; a frame that fails either
//! ends the connection (the client reconnects).

mod dispatch;
mod session;

use crate::link::Command;
use crate::outbox::Piece;
use crate::replica::ReplicaShared;
use crate::shared::ClientShared;
use crate::{ClientEvent, ConnectionState, SyncConfig, SyncStatus};
use futures_util::stream::SplitStream;
use futures_util::{SinkExt, StreamExt};
use session::{next_frame, refresh, End, Phase, Session, Ws};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use weft_protocol::{Frame, Handshake, Limits, PeerId, Role};

/// What woke the sync loop.
enum Event {
    Stop,
    Frame(Result<Option<Frame>, End>),
    Command(Option<Command>),
    Tick,
}

/// The background task of a connected [`Client`](crate::Client).
#[derive(Debug)]
pub(crate) struct SyncTask {
    shared: Arc<ClientShared>,
    config: SyncConfig,
    /// For `wss://` URLs.
    tls: Option<Arc<rustls::ClientConfig>>,
    cmds: mpsc::UnboundedReceiver<Command>,
    stop: watch::Receiver<bool>,
    /// What we accept from the relay.
    ours: Limits,
    /// Which of the config's URLs the next attempt uses.
    url_index: usize,
}

impl SyncTask {
    pub(crate) fn new(
        shared: Arc<ClientShared>,
        config: SyncConfig,
        tls: Option<Arc<rustls::ClientConfig>>,
        cmds: mpsc::UnboundedReceiver<Command>,
        stop: watch::Receiver<bool>,
    ) -> SyncTask {
        SyncTask {
            shared,
            config,
            tls,
            cmds,
            stop,
            ours: Limits::default(),
            url_index: 0,
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
                    // Fail over: the next attempt goes to the next relay.
                    self.url_index = self.url_index.wrapping_add(1);
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
        // A day at most, so an enormous configured cap cannot overflow.
        let deadline = tokio::time::Instant::now() + delay.min(Duration::from_secs(86_400));
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return true,
                changed = self.stop.changed() => {
                    if changed.is_err() || self.stopped() {
                        return false;
                    }
                }
                cmd = self.cmds.recv() => match cmd {
                    None => return false,
                    Some(Command::ReconnectNow) => return true,
                    Some(_) => {}
                },
            }
        }
    }

    async fn connect_and_sync(&mut self, attempt: &mut u32) -> End {
        let mut ws_config = WebSocketConfig::default();
        ws_config.max_message_size = Some(self.ours.max_frame_bytes as usize);
        ws_config.max_frame_size = Some(self.ours.max_frame_bytes as usize);
        let urls = self.config.fallback_urls.len() + 1;
        let url = self
            .config
            .urls()
            .nth(self.url_index % urls)
            .unwrap_or(self.config.url.as_str())
            .to_owned();
        // The connector is used for `wss://` URLs only; `ws://` stays plain.
        let connector = self.tls.clone().map(tokio_tungstenite::Connector::Rustls);
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            url.as_str(),
            Some(ws_config),
            true,
            connector,
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
            announces_access: false,
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
        session.announces_access = handshake.version().is_some_and(|v| v >= 2);
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
            Command::Open(id) => {
                let open = self.shared.replica(&id);
                if let (false, Some(replica)) = (s.docs.contains_key(&id), open) {
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
            Command::Close(doc) => s.unsubscribe(&doc).await?,
            // Connected already.
            Command::ReconnectNow => {}
        }
        Ok(())
    }
}
