//! The task that owns one open document.
//!
//! It is the only code touching the document's in-memory [`Doc`] and its
//! subscribers, so everything it does is ordered: a `Subscribe`'s diff and
//! the subscriber's first `Remote` can have no gap between them, and
//! updates are acknowledged in the order they arrived.
//!
//! Updates are handled in batches (whatever is queued, up to
//! `doc_batch_updates`): each is applied to the document (which validates
//! it; a duplicate is recognised here), the new ones are appended to the
//! store together (one commit), and only then are they acknowledged and
//! fanned out. If the store fails, the document is reloaded from the store,
//! dropping whatever was applied but not stored, and those updates get
//! `StoreUnavailable` so their senders retry.
//!
//! Fan-out never waits for a reader: a subscriber whose queue is full is
//! marked *behind* with the version it had at that point and skipped; once
//! its queue drains it gets one `Remote` carrying `diff(that version)`
//! (everything it missed), or after `slow_consumer_grace` it is
//! disconnected with `SlowConsumer`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};
use weft_core::doc::ApplyStatus;
use weft_core::{Doc, ReplicaId, VersionVector};
use weft_persist::Appended;
use weft_protocol::{DocId, ErrorCode, Frame, PeerId, PresenceState};

use crate::metrics;
use crate::outbound::Outbound;
use crate::state::Shared;

/// How often a document with slow readers checks whether they drained.
const CATCH_UP_TICK: Duration = Duration::from_millis(100);

/// Work for a document task.
#[derive(Debug)]
pub(crate) enum DocCmd {
    /// Subscribe `peer` (or re-sync it): answer `Synced` and presence.
    Subscribe {
        peer: PeerId,
        version: VersionVector,
        out: Outbound,
        reply: oneshot::Sender<Result<(), ErrorCode>>,
    },
    /// Store, acknowledge and fan out an update.
    Update(UpdateCmd),
    /// Set or clear `peer`'s presence.
    Presence {
        peer: PeerId,
        state: Option<PresenceState>,
    },
    /// `peer` unsubscribed or disconnected.
    Leave { peer: PeerId },
    /// The current snapshot (`Doc::save`), for backups.
    Snapshot {
        reply: oneshot::Sender<Result<Vec<u8>, ErrorCode>>,
    },
}

/// One client update.
#[derive(Debug)]
pub(crate) struct UpdateCmd {
    pub(crate) peer: PeerId,
    pub(crate) seq: u64,
    pub(crate) update: Vec<u8>,
    pub(crate) out: Outbound,
    pub(crate) received: Instant,
    /// Refused by the connection (read-only, rate limit); answered here so
    /// replies keep their order.
    pub(crate) refused: Option<(ErrorCode, &'static str)>,
}

struct Subscriber {
    out: Outbound,
    presence: Option<PresenceState>,
    /// Set while the subscriber's queue overflowed: the document version it
    /// is known to have, and since when.
    behind: Option<(VersionVector, Instant)>,
}

struct DocTask {
    state: Shared,
    id: DocId,
    doc: Doc,
    subs: HashMap<PeerId, Subscriber>,
    lagging: usize,
}

/// What happened to one update of a batch.
enum Outcome {
    /// To be stored (index into the batch's stored list).
    Store,
    /// Already known: ack.
    Duplicate,
    /// Refused or not stored.
    Refused(ErrorCode, String),
}

/// Runs the task of document `id` until its queue closes or it unloads.
pub(crate) async fn run(state: Shared, id: DocId, generation: u64, mut rx: mpsc::Receiver<DocCmd>) {
    state.meters.docs_loaded.increment(1.0);
    match load(&state, &id).await {
        Ok(doc) => {
            let mut task = DocTask {
                state: state.clone(),
                id: id.clone(),
                doc,
                subs: HashMap::new(),
                lagging: 0,
            };
            task.serve(&mut rx, generation).await;
        }
        Err(message) => {
            warn!(doc = %id, %message, "cannot load document");
            state.hub.remove_if(&id, generation);
            rx.close();
            while let Some(cmd) = rx.recv().await {
                refuse(cmd, ErrorCode::DocUnavailable, &id, &message);
            }
        }
    }
    state.meters.docs_loaded.decrement(1.0);
}

async fn load(state: &Shared, id: &DocId) -> Result<Doc, String> {
    let store = state.store.clone();
    let key = id.as_str().to_owned();
    // The relay never authors changes, so its replica id is never used in
    // a dot; a random one keeps it out of everyone's way.
    let replica = ReplicaId::random();
    match tokio::task::spawn_blocking(move || store.load(&key, replica)).await {
        Ok(Ok(Some(doc))) => Ok(doc),
        Ok(Ok(None)) => Ok(Doc::new(replica)),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("load task failed: {e}")),
    }
}

/// Answers a command that cannot be served.
fn refuse(cmd: DocCmd, code: ErrorCode, id: &DocId, message: &str) {
    match cmd {
        DocCmd::Subscribe { reply, .. } => {
            let _ = reply.send(Err(code));
        }
        DocCmd::Update(u) => send_control(
            &u.out,
            Frame::error(code, Some(id.clone()), Some(u.seq), message),
        ),
        DocCmd::Snapshot { reply } => {
            let _ = reply.send(Err(code));
        }
        DocCmd::Presence { .. } | DocCmd::Leave { .. } => {}
    }
}

/// Queues a frame that must not be dropped (acks, errors, `Synced`); a
/// reader too slow to take it is disconnected.
fn send_control(out: &Outbound, frame: Frame) {
    if let Frame::Error { code, .. } = &frame {
        metrics::error_sent(*code);
    }
    if out.try_send_reply(Bytes::from(frame.encode())).is_err() && !out.is_closed() {
        out.kill(ErrorCode::SlowConsumer, "too slow reading replies");
    }
}

impl DocTask {
    async fn serve(&mut self, rx: &mut mpsc::Receiver<DocCmd>, generation: u64) {
        let unload_after = self.state.limits.doc_idle_unload;
        loop {
            let wait = if self.lagging > 0 {
                CATCH_UP_TICK
            } else if self.subs.is_empty() {
                unload_after
            } else {
                Duration::from_secs(3600)
            };
            let cmd = match tokio::time::timeout(wait, rx.recv()).await {
                Ok(Some(cmd)) => cmd,
                Ok(None) => return,
                Err(_) if self.lagging > 0 => {
                    self.catch_up();
                    continue;
                }
                Err(_) if self.subs.is_empty() => {
                    self.unload(rx, generation).await;
                    return;
                }
                Err(_) => continue,
            };
            self.state.meters.doc_queue_depth.record(rx.len() as f64);
            let mut next = Some(cmd);
            while let Some(cmd) = next.take() {
                match cmd {
                    DocCmd::Update(first) => {
                        let mut batch = vec![first];
                        while batch.len() < self.state.limits.doc_batch_updates.max(1) {
                            match rx.try_recv() {
                                Ok(DocCmd::Update(u)) => batch.push(u),
                                Ok(other) => {
                                    next = Some(other);
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                        self.updates(batch).await;
                    }
                    other => self.handle(other).await,
                }
            }
            if self.lagging > 0 {
                self.catch_up();
            }
        }
    }

    /// Leaves the hub and hands whatever raced in to a fresh task.
    async fn unload(&mut self, rx: &mut mpsc::Receiver<DocCmd>, generation: u64) {
        debug!(doc = %self.id, "unloading idle document");
        self.state.hub.remove_if(&self.id, generation);
        rx.close();
        while let Some(cmd) = rx.recv().await {
            if self
                .state
                .hub
                .send(&self.state, &self.id, cmd)
                .await
                .is_none()
            {
                return;
            }
        }
    }

    async fn handle(&mut self, cmd: DocCmd) {
        match cmd {
            DocCmd::Subscribe {
                peer,
                version,
                out,
                reply,
            } => self.subscribe(peer, &version, out, reply),
            DocCmd::Update(u) => self.updates(vec![u]).await,
            DocCmd::Presence { peer, state } => self.presence(peer, state),
            DocCmd::Leave { peer } => self.leave(peer),
            DocCmd::Snapshot { reply } => {
                let _ = reply.send(Ok(self.doc.save()));
            }
        }
    }

    fn subscribe(
        &mut self,
        peer: PeerId,
        version: &VersionVector,
        out: Outbound,
        reply: oneshot::Sender<Result<(), ErrorCode>>,
    ) {
        let synced = Frame::Synced {
            doc: self.id.clone(),
            update: self.doc.diff(version),
            version: self.doc.version().clone(),
        };
        send_control(&out, synced);
        let present: Vec<(PeerId, PresenceState)> = self
            .subs
            .iter()
            .filter(|(p, _)| **p != peer)
            .filter_map(|(p, s)| s.presence.clone().map(|st| (*p, st)))
            .collect();
        if !present.is_empty() {
            send_control(
                &out,
                Frame::PresenceUpdate {
                    doc: self.id.clone(),
                    peers: present,
                },
            );
        }
        let previous = self.subs.insert(
            peer,
            Subscriber {
                out,
                presence: None,
                behind: None,
            },
        );
        if let Some(prev) = previous {
            // A re-sync: keep its presence, forget that it was behind.
            if prev.behind.is_some() {
                self.lagging -= 1;
            }
            if let Some(sub) = self.subs.get_mut(&peer) {
                sub.presence = prev.presence;
            }
        }
        let _ = reply.send(Ok(()));
    }

    fn presence(&mut self, peer: PeerId, state: Option<PresenceState>) {
        let Some(sub) = self.subs.get_mut(&peer) else {
            return;
        };
        let frame = match &state {
            Some(st) => Frame::PresenceUpdate {
                doc: self.id.clone(),
                peers: vec![(peer, st.clone())],
            },
            None if sub.presence.is_none() => return,
            None => Frame::PresenceRemoved {
                doc: self.id.clone(),
                peers: vec![peer],
            },
        };
        sub.presence = state;
        // A subscriber that cannot take presence now gets the full list
        // when it catches up.
        self.fan_out(&Bytes::from(frame.encode()), Some(peer), None);
    }

    fn leave(&mut self, peer: PeerId) {
        let Some(sub) = self.subs.remove(&peer) else {
            return;
        };
        if sub.behind.is_some() {
            self.lagging -= 1;
        }
        if sub.presence.is_some() {
            let frame = Frame::PresenceRemoved {
                doc: self.id.clone(),
                peers: vec![peer],
            };
            self.fan_out(&Bytes::from(frame.encode()), None, None);
        }
    }

    async fn updates(&mut self, batch: Vec<UpdateCmd>) {
        let before = self.doc.version().clone();
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut to_store: Vec<Vec<u8>> = Vec::new();
        let mut unblocked = false;
        let mut batch = batch;
        for u in &mut batch {
            self.state.meters.updates_in.increment(1);
            self.state
                .meters
                .update_bytes_in
                .increment(u.update.len() as u64);
            if let Some((code, message)) = u.refused {
                outcomes.push(Outcome::Refused(code, message.into()));
                continue;
            }
            if !self.subs.contains_key(&u.peer) {
                outcomes.push(Outcome::Refused(
                    ErrorCode::NotSubscribed,
                    "subscribe before sending updates".into(),
                ));
                continue;
            }
            match self.doc.apply(&u.update) {
                Ok(report) if report.status == ApplyStatus::Duplicate => {
                    outcomes.push(Outcome::Duplicate)
                }
                Ok(report) => {
                    unblocked |= report.unblocked > 0;
                    to_store.push(std::mem::take(&mut u.update));
                    outcomes.push(Outcome::Store);
                }
                Err(e) => outcomes.push(Outcome::Refused(ErrorCode::UpdateRejected, e.to_string())),
            }
        }
        let (stored, results) = store(&self.state, &self.id, to_store).await;
        let failed = results.iter().any(Result::is_err);
        let mut stored = stored.into_iter().zip(results);
        let mut fanned = Vec::new();
        for (u, outcome) in batch.iter().zip(outcomes) {
            match outcome {
                Outcome::Duplicate => send_control(
                    &u.out,
                    Frame::Ack {
                        doc: self.id.clone(),
                        seq: u.seq,
                    },
                ),
                Outcome::Refused(code, message) => send_control(
                    &u.out,
                    Frame::error(code, Some(self.id.clone()), Some(u.seq), message),
                ),
                Outcome::Store => match stored.next() {
                    Some((update, Ok(_))) => {
                        self.state.meters.updates_stored.increment(1);
                        send_control(
                            &u.out,
                            Frame::Ack {
                                doc: self.id.clone(),
                                seq: u.seq,
                            },
                        );
                        fanned.push((u.peer, update, u.received));
                    }
                    Some((_, Err(e))) => send_control(
                        &u.out,
                        Frame::error(
                            ErrorCode::StoreUnavailable,
                            Some(self.id.clone()),
                            Some(u.seq),
                            e.to_string(),
                        ),
                    ),
                    None => send_control(
                        &u.out,
                        Frame::error(
                            ErrorCode::Internal,
                            Some(self.id.clone()),
                            Some(u.seq),
                            "lost track of a stored update",
                        ),
                    ),
                },
            }
        }
        if failed {
            // Drop what was applied but not stored: the store is the truth.
            match load(&self.state, &self.id).await {
                Ok(doc) => self.doc = doc,
                Err(message) => {
                    warn!(doc = %self.id, %message, "reload after a store failure failed")
                }
            }
        }
        if unblocked && !failed {
            // Updates that waited for these are now integrated; a
            // subscriber that joined after they arrived never got them, so
            // everyone gets the batch as one diff (duplicates are no-ops).
            let frame = Frame::Remote {
                doc: self.id.clone(),
                update: self.doc.diff(&before),
            };
            self.fan_out(&Bytes::from(frame.encode()), None, Some(&before));
        } else {
            for (peer, update, _) in &mut fanned {
                let frame = Frame::Remote {
                    doc: self.id.clone(),
                    update: std::mem::take(update),
                };
                self.fan_out(&Bytes::from(frame.encode()), Some(*peer), Some(&before));
            }
        }
        for (_, _, received) in &fanned {
            self.state
                .meters
                .fanout_lag
                .record(received.elapsed().as_secs_f64());
        }
    }

    /// Sends `frame` to every subscriber but `except`; a full queue marks
    /// its subscriber behind at `before` (`None`: the document's current
    /// version, for presence), cloned only when that happens.
    fn fan_out(&mut self, frame: &Bytes, except: Option<PeerId>, before: Option<&VersionVector>) {
        let mut gone = Vec::new();
        for (peer, sub) in self.subs.iter_mut() {
            if Some(*peer) == except || sub.behind.is_some() {
                continue;
            }
            if sub.out.try_send(frame.clone()).is_err() {
                if sub.out.is_closed() {
                    gone.push(*peer);
                } else {
                    let at = before.unwrap_or(self.doc.version()).clone();
                    sub.behind = Some((at, Instant::now()));
                    self.lagging += 1;
                }
            }
        }
        for peer in gone {
            self.leave(peer);
        }
    }

    /// Catches up subscribers whose queue drained; disconnects those behind
    /// for too long.
    fn catch_up(&mut self) {
        let grace = self.state.limits.slow_consumer_grace;
        let mut gone = Vec::new();
        let present: Vec<(PeerId, PresenceState)> = self
            .subs
            .iter()
            .filter_map(|(p, s)| s.presence.clone().map(|st| (*p, st)))
            .collect();
        for (peer, sub) in self.subs.iter_mut() {
            let Some((version, since)) = &sub.behind else {
                continue;
            };
            if sub.out.is_closed() {
                gone.push(*peer);
                continue;
            }
            if sub.out.has_room() {
                let frame = Frame::Remote {
                    doc: self.id.clone(),
                    update: self.doc.diff(version),
                };
                if sub.out.try_send(Bytes::from(frame.encode())).is_ok() {
                    let others: Vec<_> =
                        present.iter().filter(|(p, _)| p != peer).cloned().collect();
                    if !others.is_empty() {
                        let frame = Frame::PresenceUpdate {
                            doc: self.id.clone(),
                            peers: others,
                        };
                        let _ = sub.out.try_send(Bytes::from(frame.encode()));
                    }
                    sub.behind = None;
                    self.lagging -= 1;
                    self.state.meters.slow_reader_resyncs.increment(1);
                    continue;
                }
            }
            if since.elapsed() > grace {
                sub.out.kill(ErrorCode::SlowConsumer, "fell too far behind");
                gone.push(*peer);
            }
        }
        for peer in gone {
            self.leave(peer);
        }
    }
}

/// Appends `updates` durably, together; one result each.
async fn store(
    state: &Shared,
    id: &DocId,
    updates: Vec<Vec<u8>>,
) -> (Vec<Vec<u8>>, Vec<Result<Appended, weft_persist::Error>>) {
    if updates.is_empty() {
        return (updates, Vec::new());
    }
    let store = state.store.clone();
    let key = id.as_str().to_owned();
    let n = updates.len();
    let started = Instant::now();
    let joined = tokio::task::spawn_blocking(move || {
        let refs: Vec<&[u8]> = updates.iter().map(Vec::as_slice).collect();
        let results = store.append_many(&key, &refs);
        (updates, results)
    })
    .await;
    state
        .meters
        .store_latency
        .record(started.elapsed().as_secs_f64());
    match joined {
        Ok(done) => done,
        Err(e) => {
            warn!(doc = %id, error = %e, "store task failed");
            (
                vec![Vec::new(); n],
                (0..n).map(|_| Err(weft_persist::Error::Closed)).collect(),
            )
        }
    }
}
