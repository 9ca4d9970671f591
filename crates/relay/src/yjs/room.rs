//! One Yjs room: a `yrs` document owned by one task.
//!
//! The task applies updates (batched: several queued updates are applied,
//! stored in one commit and only then sent to the other clients — durable
//! before fan-out), answers SyncStep1 with the diff the client lacks,
//! keeps awareness (expiry, removal when a connection goes), resyncs
//! lagging readers, folds its log into one snapshot now and then, and
//! unloads when idle.

use std::collections::{HashMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::{debug, warn};
use weft_protocol::DocId;
use yrs::updates::decoder::Decode;
use yrs::{ReadTxn, StateVector, Transact};

use super::metrics as m;
use super::outbox::Outbox;
use super::persist::{self, RoomStore};
use super::wire::{self, AwarenessEntry, UpdateShape, SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE};
use crate::admission::TokenBucket;
use crate::config::ServerLimits;
use crate::heavy::Heavy;
use crate::metrics::Meters;
use crate::registry::Slot;

/// An awareness state not renewed for this long is removed (y-protocols'
/// `outdatedTimeout`; clients renew every 15 s).
pub(crate) const AWARENESS_TIMEOUT: Duration = Duration::from_secs(30);
/// Awareness states one room keeps.
pub(crate) const MAX_AWARENESS_CLIENTS: usize = 4096;
/// Awareness client ids one connection may speak for.
pub(crate) const MAX_CLIENTS_PER_CONN: usize = 16;
/// Awareness over a connection's rate is sent at most this late.
const AWARENESS_FLUSH: Duration = Duration::from_millis(100);
/// How often expiry and idleness are checked.
const HOUSEKEEPING: Duration = Duration::from_secs(2);

/// WebSocket close codes the room uses.
pub(crate) mod close {
    /// The update could not be decoded or applied.
    pub(crate) const INVALID: u16 = 1007;
    /// Server error (storage failed): reconnect.
    pub(crate) const SERVER_ERROR: u16 = 1011;
    /// The document would grow past its limit.
    pub(crate) const TOO_LARGE: u16 = 1009;
}

/// Why a join or an HTTP request failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RoomError {
    /// The room is unloading: try again.
    Closing,
    /// The room could not load (the message says why).
    Unavailable(String),
    /// The id names a weft document.
    WeftDocument,
    /// The update was refused.
    Refused(u16, String),
}

/// A command to a room.
#[derive(Debug)]
pub(crate) enum RoomCmd {
    /// A connection joins; the room sends it SyncStep1 and awareness.
    Join {
        conn: u64,
        out: Arc<Outbox>,
        write: bool,
        /// The token's subject: awareness client ids stay with it.
        subject: Arc<str>,
        reply: oneshot::Sender<Result<(), RoomError>>,
    },
    /// A connection is gone: its awareness states become `null`.
    Leave { conn: u64 },
    /// SyncStep1: answer with what the client lacks.
    Step1 { conn: u64, sv: Bytes },
    /// An update from a connection (`reply: None`) or over HTTP (boxed:
    /// the largest command, and queues hold many small ones).
    Update(Box<Incoming>),
    /// Awareness entries from a connection.
    Awareness {
        conn: u64,
        entries: Vec<AwarenessEntry>,
    },
    /// A connection asks for every awareness state.
    QueryAwareness { conn: u64 },
    /// A lagging connection's queue is drained: send it the whole state.
    Resync { conn: u64 },
    /// The whole document as one v1 update (HTTP).
    State {
        reply: oneshot::Sender<Result<Bytes, RoomError>>,
    },
}

struct Member {
    out: Arc<Outbox>,
    write: bool,
    subject: Arc<str>,
    bucket: TokenBucket,
    clients: HashSet<u64>,
}

struct Aware {
    clock: u64,
    state: String,
    updated: Instant,
    conn: u64,
}

/// What a room task needs of the relay, and nothing more.
#[derive(Clone, Debug)]
pub(crate) struct RoomEnv {
    pub(crate) store: Arc<dyn weft_persist::Store>,
    pub(crate) limits: Arc<ServerLimits>,
    pub(crate) meters: Meters,
    /// The gate for work too heavy for an async worker.
    pub(crate) heavy: Heavy,
}

struct Room {
    env: RoomEnv,
    id: DocId,
    doc: yrs::Doc,
    store: Option<RoomStore>,
    /// Upper bound on the document's memory (see [`UpdateShape::cost`]).
    cost: u64,
    members: HashMap<u64, Member>,
    aware: HashMap<u64, Aware>,
    dirty: HashSet<u64>,
    flush_at: Option<Instant>,
    idle_since: Instant,
}

/// Runs the room of `slot` until it unloads or fails.
pub(crate) async fn run(env: RoomEnv, slot: Slot<RoomCmd>, mut rx: mpsc::Receiver<RoomCmd>) {
    let id = slot.doc().clone();
    match Box::pin(load(&env, &id)).await {
        Ok((doc, store, cost)) => {
            let mut room = Room {
                env: env.clone(),
                id: id.clone(),
                doc,
                store: Some(store),
                cost,
                members: HashMap::new(),
                aware: HashMap::new(),
                dirty: HashSet::new(),
                flush_at: None,
                idle_since: Instant::now(),
            };
            let failed = room.serve(&mut rx).await;
            for member in room.members.values() {
                match &failed {
                    Some(reason) => member.out.close(close::SERVER_ERROR, reason.clone()),
                    None => member.out.close(1001, "room closed"),
                }
            }
            slot.leave();
            drain(&mut rx, RoomError::Closing);
        }
        Err(e) => {
            debug!(doc = %id, error = ?e, "Yjs room not loaded");
            slot.leave();
            drain(&mut rx, e);
        }
    }
}

/// Refuses every queued command.
fn drain(rx: &mut mpsc::Receiver<RoomCmd>, e: RoomError) {
    rx.close();
    while let Ok(cmd) = rx.try_recv() {
        match cmd {
            RoomCmd::Join { reply, out, .. } => {
                out.close(close::SERVER_ERROR, "room closed");
                let _ = reply.send(Err(e.clone()));
            }
            RoomCmd::Update(inc) => {
                if let Some(reply) = inc.reply {
                    let _ = reply.send(Err(e.clone()));
                }
            }
            RoomCmd::State { reply } => {
                let _ = reply.send(Err(e.clone()));
            }
            _ => {}
        }
    }
}

/// Loads the room's document from the store (blocking pool).
async fn load(env: &RoomEnv, id: &DocId) -> Result<(yrs::Doc, RoomStore, u64), RoomError> {
    let store = env.store.clone();
    let key = id.as_str().to_owned();
    let max = env.limits.max_doc_bytes;
    let loaded = tokio::task::spawn_blocking(move || {
        if persist::weft_exists(&*store, &key).map_err(RoomError::Unavailable)? {
            return Err(RoomError::WeftDocument);
        }
        let loaded = persist::RoomStore::load(&*store, &key).map_err(RoomError::Unavailable)?;
        let doc = new_doc();
        let mut cost = 0u64;
        for u in &loaded.updates {
            // Stored updates were checked when they arrived; check again
            // (the store is not trusted more than the network).
            let shape = match wire::check_update(u) {
                Ok(s) => s,
                Err(e) => {
                    warn!(doc = %key, error = %e, "stored Yjs update skipped");
                    continue;
                }
            };
            cost = cost.saturating_add(shape.cost(u.len()));
            if cost > max {
                return Err(RoomError::Unavailable(
                    "stored document over its size limit".into(),
                ));
            }
            let applied = catch_unwind(AssertUnwindSafe(|| apply(&doc, u)));
            match applied {
                Ok((_, Err(e))) => warn!(doc = %key, error = %e, "stored Yjs update skipped"),
                Ok(_) => {}
                Err(_) => {
                    return Err(RoomError::Unavailable(
                        "stored update failed to apply".into(),
                    ))
                }
            }
        }
        Ok((doc, loaded.store, cost))
    })
    .await;
    loaded.unwrap_or_else(|_| Err(RoomError::Unavailable("load task failed".into())))
}

fn new_doc() -> yrs::Doc {
    // Yjs clients count text in UTF-16 code units; so must the server's
    // copy (it never edits, but offsets in stored updates are UTF-16).
    yrs::Doc::with_options(yrs::Options {
        offset_kind: yrs::OffsetKind::Utf16,
        skip_gc: false,
        ..yrs::Options::default()
    })
}

/// Applies one v1 update; returns what it changed (a v1 update, `None` if
/// nothing) and whether it applied cleanly. Whatever a failing update
/// integrated before it failed is still returned, so it is stored and sent
/// like any other change.
fn apply(doc: &yrs::Doc, bytes: &[u8]) -> (Option<Vec<u8>>, Result<(), String>) {
    let update = match yrs::Update::decode_v1(bytes) {
        Ok(u) => u,
        Err(e) => return (None, Err(format!("undecodable update: {e}"))),
    };
    let mut txn = doc.transact_mut();
    let result = txn
        .apply_update(update)
        .map_err(|e| format!("update refused: {e}"));
    let changed = txn.before_state() != txn.after_state() || !txn.delete_set().is_empty();
    let out = changed.then(|| txn.encode_update_v1());
    drop(txn);
    (out, result)
}

/// The whole document as a v1 update.
fn full_state(doc: &yrs::Doc) -> Vec<u8> {
    doc.transact()
        .encode_state_as_update_v1(&StateVector::default())
}

/// An update for a room: from connection `conn` (`None`: over HTTP, with
/// a `reply` once durable and sent).
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) conn: Option<u64>,
    pub(crate) bytes: Bytes,
    pub(crate) shape: UpdateShape,
    pub(crate) reply: Option<oneshot::Sender<Result<(), RoomError>>>,
}

impl Room {
    /// Serves until the room unloads (`None`) or fails (why). The work a
    /// command starts is boxed, so an idle room's future does not hold
    /// room for the largest of those futures.
    async fn serve(&mut self, rx: &mut mpsc::Receiver<RoomCmd>) -> Option<String> {
        let batch_max = self.env.limits.doc_batch_updates.max(1);
        let mut next_housekeeping = Instant::now() + HOUSEKEEPING;
        let mut held: Option<RoomCmd> = None;
        loop {
            let wake = match self.flush_at {
                Some(f) => f.min(next_housekeeping),
                None => next_housekeeping,
            };
            let cmd = match held.take() {
                Some(cmd) => cmd,
                None => tokio::select! {
                    cmd = rx.recv() => match cmd {
                        Some(cmd) => cmd,
                        None => return None,
                    },
                    _ = tokio::time::sleep_until(wake) => {
                        let now = Instant::now();
                        if self.flush_at.is_some_and(|f| f <= now) {
                            self.flush_awareness();
                        }
                        if now >= next_housekeeping {
                            next_housekeeping = now + HOUSEKEEPING;
                            self.expire_awareness(now);
                            if self.members.is_empty()
                                && now.duration_since(self.idle_since)
                                    >= self.env.limits.doc_idle_unload
                            {
                                return None;
                            }
                        }
                        continue;
                    }
                },
            };
            match cmd {
                RoomCmd::Update(first) => {
                    let mut batch = vec![*first];
                    while batch.len() < batch_max {
                        match rx.try_recv() {
                            Ok(RoomCmd::Update(inc)) => batch.push(*inc),
                            Ok(other) => {
                                held = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    if let Err(reason) = Box::pin(self.updates(batch)).await {
                        return Some(reason);
                    }
                }
                other => Box::pin(self.command(other)).await,
            }
        }
    }

    async fn command(&mut self, cmd: RoomCmd) {
        match cmd {
            RoomCmd::Join {
                conn,
                out,
                write,
                subject,
                reply,
            } => {
                let limits = &self.env.limits;
                // The server's state vector (SyncStep1), then every
                // awareness state.
                let sv = self.doc.transact().state_vector();
                out.push(Bytes::from(wire::sync_message(
                    SYNC_STEP1,
                    &yrs::updates::encoder::Encode::encode_v1(&sv),
                )));
                if let Some(a) = self.awareness_all() {
                    out.push(a);
                }
                self.members.insert(
                    conn,
                    Member {
                        out,
                        write,
                        subject,
                        bucket: TokenBucket::new(limits.presence_per_sec, limits.presence_burst),
                        clients: HashSet::new(),
                    },
                );
                let _ = reply.send(Ok(()));
            }
            RoomCmd::Leave { conn } => {
                if let Some(member) = self.members.remove(&conn) {
                    let gone: Vec<u64> = member.clients.into_iter().collect();
                    let mut entries = Vec::new();
                    for client in gone {
                        if let Some(a) = self.aware.get_mut(&client) {
                            if a.conn == conn && a.state != "null" {
                                // Same clock, `null` state: what y-protocols'
                                // removeAwarenessStates sends for a peer.
                                a.state = "null".into();
                                a.updated = Instant::now();
                                entries.push(AwarenessEntry {
                                    client,
                                    clock: a.clock,
                                    state: a.state.clone(),
                                });
                            }
                        }
                    }
                    self.broadcast_awareness(&entries);
                }
                if self.members.is_empty() {
                    self.idle_since = Instant::now();
                }
            }
            RoomCmd::Step1 { conn, sv } => {
                let Some(member) = self.members.get(&conn) else {
                    return;
                };
                let out = member.out.clone();
                let doc = self.doc.clone();
                let job = move || -> Option<Vec<u8>> {
                    let sv = StateVector::decode_v1(&sv).ok()?;
                    let diff = doc.transact().encode_state_as_update_v1(&sv);
                    Some(wire::sync_message(SYNC_STEP2, &diff))
                };
                let msg = if self.heavy() {
                    self.env.heavy.run(job).await.flatten()
                } else {
                    job()
                };
                if let Some(msg) = msg {
                    self.push(&out, Bytes::from(msg));
                }
            }
            RoomCmd::Update(_) => {} // batched in `serve`
            RoomCmd::Awareness { conn, entries } => self.awareness(conn, entries),
            RoomCmd::QueryAwareness { conn } => {
                if let (Some(member), Some(all)) = (self.members.get(&conn), self.awareness_all()) {
                    let out = member.out.clone();
                    self.push(&out, all);
                }
            }
            RoomCmd::Resync { conn } => {
                let Some(member) = self.members.get(&conn) else {
                    return;
                };
                let out = member.out.clone();
                let doc = self.doc.clone();
                let job = move || wire::sync_message(SYNC_STEP2, &full_state(&doc));
                let state = if self.heavy() {
                    self.env.heavy.run(job).await
                } else {
                    Some(job())
                };
                let Some(state) = state else {
                    out.close(close::SERVER_ERROR, "resync failed");
                    return;
                };
                let mut msgs = vec![Bytes::from(state)];
                msgs.extend(self.awareness_all());
                out.resync(msgs);
                m::resyncs().increment(1);
                debug!(doc = %self.id, conn, "lagging Yjs reader resynced");
            }
            RoomCmd::State { reply } => {
                let doc = self.doc.clone();
                let job = move || full_state(&doc);
                let state = if self.heavy() {
                    self.env.heavy.run(job).await
                } else {
                    Some(job())
                };
                let _ = reply.send(
                    state
                        .map(Bytes::from)
                        .ok_or_else(|| RoomError::Unavailable("encoding failed".into())),
                );
            }
        }
    }

    /// Whether whole-document work should leave the async workers.
    fn heavy(&self) -> bool {
        self.env
            .heavy
            .is_heavy(usize::try_from(self.cost).unwrap_or(usize::MAX))
    }

    /// Pushes to one connection, counting a new laggard.
    fn push(&self, out: &Outbox, msg: Bytes) {
        if out.push(msg) {
            m::lagging().increment(1);
        }
    }

    /// Applies, stores, then fans out a batch of updates. `Err`: the store
    /// failed, the room must go (what was applied is not durable).
    async fn updates(&mut self, batch: Vec<Incoming>) -> Result<(), String> {
        let max = self.env.limits.max_doc_bytes;
        let mut accepted = Vec::with_capacity(batch.len());
        for inc in batch {
            m::updates_in().increment(1);
            m::update_bytes_in().increment(inc.bytes.len() as u64);
            let writer = match inc.conn {
                Some(c) => self.members.get(&c).map(|m| m.write),
                None => Some(true),
            };
            if writer != Some(true) {
                refuse(&self.members, inc, 4403, "read-only");
                continue;
            }
            let cost = inc.shape.cost(inc.bytes.len());
            if self.cost.saturating_add(cost) > max {
                refuse(
                    &self.members,
                    inc,
                    close::TOO_LARGE,
                    "the document would grow past its size limit",
                );
                continue;
            }
            self.cost = self.cost.saturating_add(cost);
            accepted.push(inc);
        }
        if accepted.is_empty() {
            return Ok(());
        }
        let total: usize = accepted.iter().map(|i| i.bytes.len()).sum();
        let doc = self.doc.clone();
        let inputs: Vec<Bytes> = accepted.iter().map(|i| i.bytes.clone()).collect();
        let job = move || {
            inputs
                .iter()
                .map(|b| catch_unwind(AssertUnwindSafe(|| apply(&doc, b))).ok())
                .collect::<Vec<_>>()
        };
        let results = if self.env.heavy.is_heavy(total) {
            self.env
                .heavy
                .run(job)
                .await
                .ok_or_else(|| "apply task failed".to_owned())?
        } else {
            job()
        };
        let mut changes: Vec<(Option<u64>, Vec<u8>)> = Vec::new();
        let mut replies = Vec::new();
        for (inc, result) in accepted.into_iter().zip(results) {
            let Some((changed, outcome)) = result else {
                // yrs panicked inside a transaction: the document may be
                // inconsistent; drop it (the store has every durable update).
                return Err("an update could not be applied; reconnect".into());
            };
            // The admission charged the update's upper bound; what the
            // document keeps is the change it made (nothing for a resent
            // or already-known update: a client's sync step 2 repeats the
            // whole delete set on every reconnect, which must not use up
            // the budget and close honest writers with 1009).
            let charged = inc.shape.cost(inc.bytes.len());
            let kept = changed.as_ref().map_or(0, |c| {
                wire::check_update(c).map_or(charged, |shape| shape.cost(c.len()))
            });
            self.cost = self.cost.saturating_sub(charged).saturating_add(kept);
            if let Some(c) = changed {
                changes.push((inc.conn, c));
            }
            match outcome {
                Ok(()) => {
                    if let Some(r) = inc.reply {
                        replies.push(r);
                    }
                }
                Err(e) => {
                    refuse(&self.members, inc, close::INVALID, &e);
                }
            }
        }
        if !changes.is_empty() {
            let Some(mut rs) = self.store.take() else {
                return Err("store unavailable".into());
            };
            let started = std::time::Instant::now();
            // Records are staged and checked here, or for a large batch on
            // the heavy-work pool (like every decode over
            // `heavy_work_bytes`); either way the commit is awaited from
            // this task, with no thread parked on the fsync.
            let total: usize = changes.iter().map(|(_, c)| c.len()).sum();
            let (rs, queued) = if self.env.heavy.is_heavy(total) {
                let store = self.env.store.clone();
                let bodies: Vec<Vec<u8>> = changes.iter().map(|(_, c)| c.clone()).collect();
                self.env
                    .heavy
                    .run(move || {
                        let refs: Vec<&[u8]> = bodies.iter().map(Vec::as_slice).collect();
                        let queued = rs.submit(&*store, &refs);
                        (rs, queued)
                    })
                    .await
                    .ok_or_else(|| "store task failed".to_owned())?
            } else {
                let bodies: Vec<&[u8]> = changes.iter().map(|(_, c)| c.as_slice()).collect();
                let queued = rs.submit(&*self.env.store, &bodies);
                (rs, queued)
            };
            let stored = match queued {
                Ok(commit) => commit.all_durable().await.map_err(|e| e.to_string()),
                Err(e) => Err(e),
            };
            self.store = Some(rs);
            if let Err(e) = stored {
                warn!(doc = %self.id, error = %e, "Yjs updates not stored");
                for r in replies {
                    let _ = r.send(Err(RoomError::Unavailable("storage failed".into())));
                }
                return Err("storage failed; reconnect".into());
            }
            self.env
                .meters
                .store_latency
                .record(started.elapsed().as_secs_f64());
            m::updates_stored().increment(changes.len() as u64);
            // Durable: now the others may see it.
            for (origin, change) in &changes {
                let msg = Bytes::from(wire::sync_message(SYNC_UPDATE, change));
                for (id, member) in &self.members {
                    if Some(*id) != *origin {
                        self.push(&member.out, msg.clone());
                    }
                }
            }
        }
        for r in replies {
            let _ = r.send(Ok(()));
        }
        if self.store.as_ref().is_some_and(RoomStore::wants_compaction) {
            self.compact().await;
        }
        Ok(())
    }

    /// Folds the log into one snapshot update.
    async fn compact(&mut self) {
        let Some(mut rs) = self.store.take() else {
            return;
        };
        let doc = self.doc.clone();
        let store = self.env.store.clone();
        let done = tokio::task::spawn_blocking(move || {
            let snapshot = full_state(&doc);
            let shape = wire::check_update(&snapshot).ok();
            let r = rs.compact(&*store, &snapshot);
            (rs, r, shape.map(|s| s.cost(snapshot.len())))
        })
        .await;
        match done {
            Ok((rs, r, cost)) => {
                self.store = Some(rs);
                match r {
                    Ok(()) => {
                        if let Some(c) = cost {
                            self.cost = c;
                        }
                        m::compactions().increment(1);
                    }
                    Err(e) => warn!(doc = %self.id, error = %e, "Yjs compaction skipped"),
                }
            }
            Err(_) => warn!(doc = %self.id, "Yjs compaction task failed"),
        }
    }

    /// Applies awareness entries from `conn` and sends the accepted ones.
    fn awareness(&mut self, conn: u64, entries: Vec<AwarenessEntry>) {
        let now = Instant::now();
        let Some(member) = self.members.get(&conn) else {
            return;
        };
        let mut owned = member.clients.clone();
        let subject = member.subject.clone();
        m::awareness_in().increment(1);
        let mut accepted = Vec::new();
        let mut moved = Vec::new();
        let mut rejoined = false;
        for mut e in entries {
            let known = self.aware.get(&e.client);
            // A client id held by another live connection moves here only
            // from the same token subject (the same user reconnecting);
            // another user cannot take over or blank someone's presence.
            if let Some(holder) = known
                .filter(|a| a.conn != conn)
                .and_then(|a| self.members.get(&a.conn))
            {
                if holder.subject != subject {
                    m::refused("awareness_takeover").increment(1);
                    continue;
                }
            }
            let newer = match known {
                None => true,
                Some(a)
                    if a.clock == e.clock
                        && !e.is_null()
                        && a.state != e.state
                        && (owned.is_empty() || owned.contains(&e.client)) =>
                {
                    // The same clock with another state: a client back after
                    // the relay nulled its state (it left or timed out), or
                    // a state that crossed a relay bump — from the client's
                    // own connection, not a peer echoing what it was sent
                    // (y-websocket providers do). Take it under the
                    // next clock, so every peer takes it (the client adopts
                    // that clock when it sees its own state).
                    e.clock += 1;
                    true
                }
                Some(a) => {
                    a.clock < e.clock || (a.clock == e.clock && e.is_null() && a.state != "null")
                }
            };
            if newer && known.is_some_and(|a| a.conn != conn) {
                rejoined = true;
            }
            if !newer || (known.is_none() && self.aware.len() >= MAX_AWARENESS_CLIENTS) {
                continue;
            }
            if !owned.contains(&e.client) {
                if owned.len() >= MAX_CLIENTS_PER_CONN {
                    continue;
                }
                owned.insert(e.client);
            }
            if let Some(prev) = known.map(|a| a.conn).filter(|c| *c != conn) {
                // The client id moved to this connection (a reconnect).
                moved.push((prev, e.client));
            }
            self.aware.insert(
                e.client,
                Aware {
                    clock: e.clock,
                    state: e.state.clone(),
                    updated: now,
                    conn,
                },
            );
            accepted.push(e);
        }
        for (prev, client) in moved {
            if let Some(p) = self.members.get_mut(&prev) {
                p.clients.remove(&client);
            }
        }
        if let Some(member) = self.members.get_mut(&conn) {
            member.clients = owned;
        }
        if accepted.is_empty() {
            return;
        }
        if rejoined {
            // A client came back on a new connection. It dropped every
            // peer's state when it lost the old one, and y-protocols only
            // takes a state with a newer clock: re-announce every live
            // state under the next clock (coalesced with the next flush),
            // or the returning client would not see the others until each
            // renews its state (up to 15 s).
            for (client, a) in self.aware.iter_mut() {
                if a.state != "null" {
                    a.clock += 1;
                    self.dirty.insert(*client);
                }
            }
            self.flush_at.get_or_insert(now + AWARENESS_FLUSH);
        }
        let Some(member) = self.members.get_mut(&conn) else {
            return;
        };
        if member.bucket.take() {
            self.broadcast_awareness(&accepted);
        } else {
            // Over the rate: the latest state of each client goes out with
            // the next flush.
            m::awareness_coalesced().increment(accepted.len() as u64);
            self.dirty.extend(accepted.iter().map(|e| e.client));
            if self.flush_at.is_none() {
                self.flush_at = Some(now + AWARENESS_FLUSH);
            }
        }
    }

    fn flush_awareness(&mut self) {
        self.flush_at = None;
        let dirty: Vec<u64> = self.dirty.drain().collect();
        let entries: Vec<AwarenessEntry> = dirty
            .into_iter()
            .filter_map(|c| {
                self.aware.get(&c).map(|a| AwarenessEntry {
                    client: c,
                    clock: a.clock,
                    state: a.state.clone(),
                })
            })
            .collect();
        self.broadcast_awareness(&entries);
    }

    /// Removes states not renewed in time (and forgets long-gone ones).
    fn expire_awareness(&mut self, now: Instant) {
        let mut expired = Vec::new();
        self.aware.retain(|client, a| {
            let age = now.duration_since(a.updated);
            if a.state == "null" {
                // Kept a while so an older state cannot come back.
                return age < AWARENESS_TIMEOUT * 2;
            }
            if age >= AWARENESS_TIMEOUT {
                a.state = "null".into();
                a.updated = now;
                expired.push(AwarenessEntry {
                    client: *client,
                    clock: a.clock,
                    state: a.state.clone(),
                });
            }
            true
        });
        self.broadcast_awareness(&expired);
    }

    fn broadcast_awareness(&self, entries: &[AwarenessEntry]) {
        if entries.is_empty() {
            return;
        }
        let msg = Bytes::from(wire::awareness_message(&wire::encode_awareness(
            entries.iter(),
        )));
        for member in self.members.values() {
            self.push(&member.out, msg.clone());
        }
    }

    /// Every live awareness state as one message.
    fn awareness_all(&self) -> Option<Bytes> {
        let live: Vec<AwarenessEntry> = self
            .aware
            .iter()
            .filter(|(_, a)| a.state != "null")
            .map(|(c, a)| AwarenessEntry {
                client: *c,
                clock: a.clock,
                state: a.state.clone(),
            })
            .collect();
        (!live.is_empty()).then(|| {
            Bytes::from(wire::awareness_message(&wire::encode_awareness(
                live.iter(),
            )))
        })
    }
}

/// Refuses an update: its HTTP caller gets the reason; a read-only
/// connection gets y-protocols' permission-denied message; any other
/// connection is closed with `code`.
fn refuse(members: &HashMap<u64, Member>, inc: Incoming, code: u16, reason: &str) {
    m::refused(match code {
        4403 => "read_only",
        close::TOO_LARGE => "too_large",
        _ => "invalid",
    })
    .increment(1);
    if let Some(reply) = inc.reply {
        let _ = reply.send(Err(RoomError::Refused(code, reason.to_owned())));
        return;
    }
    let Some(member) = inc.conn.and_then(|c| members.get(&c)) else {
        return;
    };
    if code == 4403 {
        member.out.push(Bytes::from(wire::permission_denied(
            "read-only token: update refused",
        )));
    } else {
        member
            .out
            .close(code, reason.chars().take(100).collect::<String>());
    }
}

#[cfg(test)]
mod tests {
    use super::RoomCmd;

    #[test]
    fn commands_stay_small() {
        // A room's queue allocates 32 slots at creation: every loaded room
        // pays 32 × this (an update's fields are boxed; 88 bytes before).
        assert!(std::mem::size_of::<RoomCmd>() <= 64);
    }
}
