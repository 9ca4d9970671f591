//! The task that owns one open document.
//!
//! It is the only code touching the document's in-memory [`Doc`] and its
//! subscribers, so everything it does is ordered: a `Subscribe`'s diff and
//! the subscriber's first `Remote` can have no gap between them, and
//! updates are acknowledged in the order they arrived.
//!
//! Updates are handled in batches (whatever is queued, up to
//! `doc_batch_updates`): each is applied to the document (which validates
//! it; a duplicate is recognised here), the new ones are queued on the
//! store together ([`weft_persist::Store::submit_updates`]: one commit)
//! and fanned out at once; the batch then stays *in flight* until its
//! commit settles, and only then are its senders answered (acks in
//! arrival order). Fan-out never waits for the fsync, the ack always does:
//! every weft client stores an edit before sending it and keeps it until
//! acknowledged, so an update a reader saw before a relay crash is sent
//! again by its author. While one commit is in flight the task goes on
//! with the next batch (at most [`MAX_IN_FLIGHT`] batches). If an append
//! fails, every batch in flight settles, then the document is reloaded
//! from the store, dropping whatever was applied but not stored, and
//! those updates get `StoreUnavailable` so their senders retry.
//!
//! Fan-out never waits for a reader: a subscriber whose queue is full is
//! marked *behind* with the version it had at that point and skipped; once
//! its queue drains it gets one `Remote` carrying `diff(that version)`
//! (everything it missed), or after `slow_consumer_grace` it is
//! disconnected with `SlowConsumer`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};
use weft_core::doc::Limits;
use weft_core::{Doc, ReplicaId, VersionVector};
use weft_persist::Store;
use weft_protocol::sync::{Catch, ReaderFlow};
use weft_protocol::{DocId, ErrorCode, Frame, PeerId, PresenceState};

use crate::cluster::Cluster;
use crate::config::ServerLimits;
use crate::doc_cmd::{DocCmd, UpdateCmd};
use crate::doc_kind;
use crate::heavy::Heavy;
use crate::metrics::{self, Meters};
use crate::outbound::Outbound;
use crate::owners::Owners;
use crate::registry::{Loaded, Slot};

mod cluster;
mod updates;

use cluster::{ClusterDoc, CLUSTER_TICK};

use updates::{InFlight, Waiting};

/// Batches whose commit may be outstanding at once per document; past it
/// the task waits for the oldest before taking more updates.
const MAX_IN_FLIGHT: usize = 32;

/// The limits of the relay's own copy of a document (its snapshot may be as
/// large as the document may grow).
fn doc_limits(limits: &ServerLimits) -> Limits {
    let max = usize::try_from(limits.max_doc_bytes).unwrap_or(usize::MAX);
    Limits {
        max_input_bytes: max,
        max_decoded_bytes: max,
        ..Limits::default()
    }
}

/// How often a document with slow readers checks whether they drained.
const CATCH_UP_TICK: Duration = Duration::from_millis(100);

struct Subscriber {
    out: Outbound,
    presence: Option<PresenceState>,
    /// Live, or behind since its queue overflowed (sans-IO: the version
    /// it is known to have and since when; see `weft_protocol::sync`).
    flow: ReaderFlow,
}

/// What a document task needs of the relay, and nothing more.
#[derive(Clone, Debug)]
pub(crate) struct DocEnv {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) limits: Arc<ServerLimits>,
    pub(crate) meters: Meters,
    /// The gate for work too heavy for an async worker.
    pub(crate) heavy: Heavy,
    /// Cluster mode (`None`: a single node).
    pub(crate) cluster: Option<Arc<Cluster>>,
    /// The loaded Yjs rooms: an id one of them holds is not a weft document.
    pub(crate) yjs: Arc<dyn Loaded>,
}

struct DocTask {
    env: DocEnv,
    id: DocId,
    doc: Doc,
    owners: Owners,
    subs: HashMap<PeerId, Subscriber>,
    lagging: usize,
    /// Per sender, updates not yet applicable (unacknowledged).
    waiting: HashMap<PeerId, Waiting>,
    /// Its place in the hub: subscribers and last use, for eviction.
    slot: Slot<DocCmd>,
    /// Cluster mode only: seqs integrated, remote presence.
    cluster: Option<ClusterDoc>,
    /// A store failure left the in-memory document ahead of the store and
    /// reloading failed too: nothing is served from it until a reload
    /// succeeds (updates get `StoreUnavailable`, subscribes
    /// `DocUnavailable`), so an unstored update is never acknowledged as a
    /// duplicate nor shown to anyone.
    stale: bool,
    /// Batches applied and fanned out, waiting for their commit, oldest
    /// first.
    inflight: VecDeque<InFlight>,
    /// An append of a batch in flight failed: reload once all settled.
    store_failed: bool,
}

/// Runs the task of the document of `slot` until its queue closes or it
/// unloads; returns the commands that raced in while it unloaded, for a
/// fresh task.
pub(crate) async fn run(
    env: DocEnv,
    slot: Slot<DocCmd>,
    mut rx: mpsc::Receiver<DocCmd>,
) -> Vec<DocCmd> {
    let id = slot.doc().clone();
    let mut leftover = Vec::new();
    match Box::pin(load(&env, &id)).await {
        Ok((doc, owners, loaded_seq)) => {
            let cluster = env.cluster.as_ref().map(|_| ClusterDoc::new(loaded_seq));
            let mut task = DocTask {
                env: env.clone(),
                id: id.clone(),
                doc,
                owners,
                subs: HashMap::new(),
                lagging: 0,
                waiting: HashMap::new(),
                slot,
                cluster,
                stale: false,
                inflight: VecDeque::new(),
                store_failed: false,
            };
            leftover = task.serve(&mut rx).await;
        }
        Err(message) => {
            warn!(doc = %id, %message, "cannot load document");
            slot.leave();
            rx.close();
            while let Some(cmd) = rx.recv().await {
                refuse(cmd, ErrorCode::DocUnavailable, &id, &message);
            }
        }
    }
    leftover
}

/// Loads a document and its replica bindings (on the blocking pool), and
/// the last store seq the document includes.
async fn load(env: &DocEnv, id: &DocId) -> Result<(Doc, Owners, u64), String> {
    let store = env.store.clone();
    let key = id.as_str().to_owned();
    let limits = doc_limits(&env.limits);
    let yjs = env.yjs.clone();
    let loaded = env
        .heavy
        .run(move || {
            doc_kind::check_weft_open(&*store, &*yjs, &key)?;
            // The relay never authors changes, so its replica id is never
            // used in a dot; a random one keeps it out of everyone's way.
            let replica = ReplicaId::try_random().map_err(|e| e.to_string())?;
            let (doc, last_seq) = match store.read(&key) {
                Ok(Some(stored)) => {
                    let last = stored.last_seq();
                    let doc = stored.into_doc(&key, replica).map_err(|e| e.to_string())?;
                    (doc.with_limits(limits), last)
                }
                Ok(None) => (Doc::new(replica).with_limits(limits), 0),
                Err(e) => return Err(e.to_string()),
            };
            let owners = Owners::load(&*store, &key)?;
            Ok((doc, owners, last_seq))
        })
        .await;
    loaded.unwrap_or_else(|| Err("load task failed".to_owned()))
}

/// The results of the oldest batch in flight, once its commit settled;
/// never resolves while nothing is in flight. Cancel-safe: results already
/// in are kept in the commit.
async fn next_settled(
    inflight: &mut VecDeque<InFlight>,
) -> Vec<Result<weft_persist::Appended, weft_persist::Error>> {
    match inflight.front_mut() {
        Some(batch) => (&mut batch.commit).await,
        None => std::future::pending().await,
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
        DocCmd::Presence { .. }
        | DocCmd::Leave { .. }
        | DocCmd::Unload
        | DocCmd::Remote { .. }
        | DocCmd::RemotePresence { .. }
        | DocCmd::NodeGone { .. }
        | DocCmd::CatchUp => {}
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
    /// Serves until the queue closes (nothing left over) or the document
    /// unloads (what raced in is returned).
    ///
    /// The work a command starts is boxed (`Box::pin`): a task spends most
    /// of its life waiting here, and its future would otherwise hold room
    /// for the largest of those futures all the time (6.8 KB per loaded
    /// document before, for what is a few hundred bytes while idle).
    async fn serve(&mut self, rx: &mut mpsc::Receiver<DocCmd>) -> Vec<DocCmd> {
        let unload_after = self.env.limits.doc_idle_unload;
        loop {
            let mut wait = if self.lagging > 0 {
                CATCH_UP_TICK
            } else if self.subs.is_empty() {
                unload_after
            } else {
                Duration::from_secs(3600)
            };
            if self.cluster.is_some() && !self.subs.is_empty() {
                wait = wait.min(CLUSTER_TICK);
            }
            let received = tokio::select! {
                biased;
                results = next_settled(&mut self.inflight) => {
                    if let Some(batch) = self.inflight.pop_front() {
                        self.settle(batch, results);
                    }
                    self.recover().await;
                    continue;
                }
                received = tokio::time::timeout(wait, rx.recv()) => received,
            };
            let cmd = match received {
                Ok(Some(cmd)) => cmd,
                Ok(None) => {
                    Box::pin(self.settle_all()).await;
                    return Vec::new();
                }
                Err(_) if self.lagging > 0 => {
                    Box::pin(self.catch_up()).await;
                    continue;
                }
                Err(_) if self.subs.is_empty() => return Box::pin(self.unload(rx)).await,
                Err(_) => {
                    self.cluster_tick().await;
                    continue;
                }
            };
            self.env.meters.doc_queue_depth.record(rx.len() as f64);
            self.slot.usage().touch();
            let mut next = Some(cmd);
            while let Some(cmd) = next.take() {
                match cmd {
                    DocCmd::Unload if self.subs.is_empty() => {
                        return Box::pin(self.unload(rx)).await
                    }
                    // Someone subscribed since: stay, and let the hub ask another.
                    DocCmd::Unload => self.slot.decline_eviction(),
                    DocCmd::Update(first) => {
                        let mut batch = vec![*first];
                        while batch.len() < self.env.limits.doc_batch_updates.max(1) {
                            match rx.try_recv() {
                                Ok(DocCmd::Update(u)) => batch.push(*u),
                                Ok(other) => {
                                    next = Some(other);
                                    break;
                                }
                                Err(_) => break,
                            }
                        }
                        while self.inflight.len() >= MAX_IN_FLIGHT {
                            Box::pin(self.settle_oldest()).await;
                        }
                        Box::pin(self.updates(batch)).await;
                        self.recover().await;
                    }
                    other => Box::pin(self.handle(other)).await,
                }
            }
            if self.lagging > 0 {
                Box::pin(self.catch_up()).await;
            }
            self.cluster_tick().await;
        }
    }

    /// Leaves the hub; returns whatever raced in, for a fresh task.
    async fn unload(&mut self, rx: &mut mpsc::Receiver<DocCmd>) -> Vec<DocCmd> {
        debug!(doc = %self.id, "unloading idle document");
        self.settle_all().await;
        self.slot.leave();
        rx.close();
        let mut leftover = Vec::new();
        while let Some(cmd) = rx.recv().await {
            leftover.push(cmd);
        }
        leftover
    }

    async fn handle(&mut self, cmd: DocCmd) {
        match cmd {
            DocCmd::Subscribe {
                peer,
                version,
                out,
                reply,
            } => self.subscribe(peer, version, out, reply).await,
            DocCmd::Update(u) => self.updates(vec![*u]).await,
            DocCmd::Presence { peer, state } => self.presence(peer, state.map(|s| *s)),
            DocCmd::Leave { peer } => self.leave(peer),
            DocCmd::Snapshot { reply } => {
                let cost = self.doc_cost();
                let saved = self.with_doc(cost, |doc| doc.save()).await;
                let _ = reply.send(saved.ok_or(ErrorCode::DocUnavailable));
            }
            DocCmd::Unload => {} // handled by `serve`
            DocCmd::Remote { seq, update } => self.remote_update(seq, update).await,
            DocCmd::RemotePresence { node, frame } => self.remote_presence(node, &frame),
            DocCmd::NodeGone { node } => self.node_gone(&node),
            DocCmd::CatchUp => self.catch_up_from_store().await,
        }
    }

    /// The cost of work over the whole document (diff, snapshot).
    fn doc_cost(&self) -> usize {
        usize::try_from(self.doc.decoded_bytes()).unwrap_or(usize::MAX)
    }

    /// Runs `job` on the document: inline when `cost` is light, else on the
    /// blocking pool with the document moved there and back (nothing else
    /// touches it meanwhile: this task is its only owner and waits). `None`
    /// if the job panicked: the document is then reloaded from the store.
    async fn with_doc<R, F>(&mut self, cost: usize, job: F) -> Option<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Doc) -> R + Send + 'static,
    {
        if !self.env.heavy.is_heavy(cost) {
            return Some(job(&mut self.doc));
        }
        let placeholder = Doc::new(self.doc.replica());
        let mut doc = std::mem::replace(&mut self.doc, placeholder);
        let done = self
            .env
            .heavy
            .run(move || {
                let r = job(&mut doc);
                (doc, r)
            })
            .await;
        match done {
            Some((doc, r)) => {
                self.doc = doc;
                Some(r)
            }
            None => {
                warn!(doc = %self.id, "heavy job failed; reloading the document");
                self.reload().await;
                None
            }
        }
    }

    /// Replaces the in-memory document and bindings with the store's,
    /// once every batch in flight has settled (so nothing acknowledged is
    /// missing from what is loaded).
    async fn reload(&mut self) {
        self.settle_all().await;
        self.store_failed = false;
        match load(&self.env, &self.id).await {
            Ok((doc, owners, loaded_seq)) => {
                self.doc = doc;
                self.owners = owners;
                if let Some(c) = &mut self.cluster {
                    *c = ClusterDoc::new(loaded_seq);
                }
                self.stale = false;
            }
            Err(message) => {
                warn!(doc = %self.id, %message, "reload failed");
                self.stale = true;
            }
        }
    }

    async fn subscribe(
        &mut self,
        peer: PeerId,
        version: VersionVector,
        out: Outbound,
        reply: oneshot::Sender<Result<(), ErrorCode>>,
    ) {
        if self.stale {
            self.reload().await;
            if self.stale {
                let _ = reply.send(Err(ErrorCode::DocUnavailable));
                return;
            }
        }
        if self.cluster.is_some() {
            // Another node may have stored updates this one has not seen
            // (a quiet document is not polled): ask the store first.
            self.poll_store().await;
        }
        let cost = self.doc_cost();
        let Some(diff) = self.with_doc(cost, move |doc| doc.diff(&version)).await else {
            let _ = reply.send(Err(ErrorCode::DocUnavailable));
            return;
        };
        let synced = Frame::Synced {
            doc: self.id.clone(),
            update: diff,
            version: self.doc.version().clone(),
        };
        send_control(&out, synced);
        let mut present: Vec<(PeerId, PresenceState)> = self
            .subs
            .iter()
            .filter(|(p, _)| **p != peer)
            .filter_map(|(p, s)| s.presence.clone().map(|st| (*p, st)))
            .collect();
        if let Some(c) = &self.cluster {
            present.extend(c.remote_presence());
        }
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
                flow: ReaderFlow::default(),
            },
        );
        self.slot
            .usage()
            .subscribers
            .store(self.subs.len(), std::sync::atomic::Ordering::Relaxed);
        if let Some(prev) = previous {
            // A re-sync: keep its presence, forget that it was behind.
            if prev.flow.is_behind() {
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
        let encoded = frame.encode();
        self.publish_presence(&encoded);
        // A subscriber that cannot take presence now gets the full list
        // when it catches up.
        self.fan_out(&Bytes::from(encoded), Some(peer), None);
    }

    fn leave(&mut self, peer: PeerId) {
        if let Some(waiting) = self.waiting.remove(&peer) {
            for u in waiting.cmds {
                send_control(
                    &u.out,
                    Frame::error(
                        ErrorCode::MissingDependencies,
                        Some(self.id.clone()),
                        Some(u.seq),
                        "unsubscribed while the update waited for its dependencies",
                    ),
                );
            }
        }
        let Some(sub) = self.subs.remove(&peer) else {
            return;
        };
        self.slot
            .usage()
            .subscribers
            .store(self.subs.len(), std::sync::atomic::Ordering::Relaxed);
        if sub.flow.is_behind() {
            self.lagging -= 1;
        }
        if sub.presence.is_some() {
            let frame = Frame::PresenceRemoved {
                doc: self.id.clone(),
                peers: vec![peer],
            };
            let encoded = frame.encode();
            self.publish_presence(&encoded);
            self.fan_out(&Bytes::from(encoded), None, None);
        }
    }

    /// Sends `frame` to every subscriber but `except`; a full queue marks
    /// its subscriber behind at `before` (`None`: the document's current
    /// version, for presence), cloned only when that happens.
    fn fan_out(&mut self, frame: &Bytes, except: Option<PeerId>, before: Option<&VersionVector>) {
        let mut gone = Vec::new();
        for (peer, sub) in self.subs.iter_mut() {
            if Some(*peer) == except || !sub.flow.takes_updates() {
                continue;
            }
            if sub.out.try_send(frame.clone()).is_err() {
                if sub.out.is_closed() {
                    gone.push(*peer);
                } else {
                    let at = before.unwrap_or(self.doc.version()).clone();
                    if sub.flow.fell_behind(at, Instant::now()) {
                        self.lagging += 1;
                    }
                }
            }
        }
        for peer in gone {
            self.leave(peer);
        }
    }

    /// Catches up subscribers whose queue drained; disconnects those behind
    /// for too long.
    async fn catch_up(&mut self) {
        let grace = self.env.limits.slow_consumer_grace;
        let now = Instant::now();
        let mut gone = Vec::new();
        let present: Vec<(PeerId, PresenceState)> = self
            .subs
            .iter()
            .filter_map(|(p, s)| s.presence.clone().map(|st| (*p, st)))
            .collect();
        let mut due: Vec<(PeerId, VersionVector)> = Vec::new();
        for (peer, sub) in &self.subs {
            if sub.out.is_closed() {
                if sub.flow.is_behind() {
                    gone.push(*peer);
                }
                continue;
            }
            match sub.flow.poll(now, sub.out.has_room(), grace) {
                Catch::Live | Catch::Wait => {}
                Catch::SendDiffSince(version) => due.push((*peer, version.clone())),
                Catch::Disconnect => {
                    sub.out.kill(ErrorCode::SlowConsumer, "fell too far behind");
                    gone.push(*peer);
                }
            }
        }
        for (peer, version) in due {
            let cost = self.doc_cost();
            let Some(diff) = self.with_doc(cost, move |doc| doc.diff(&version)).await else {
                continue;
            };
            let frame = Frame::Remote {
                doc: self.id.clone(),
                update: diff,
            };
            let Some(sub) = self.subs.get_mut(&peer) else {
                continue;
            };
            if sub.out.try_send(Bytes::from(frame.encode())).is_ok() {
                let others: Vec<_> = present
                    .iter()
                    .filter(|(p, _)| *p != peer)
                    .cloned()
                    .collect();
                if !others.is_empty() {
                    let frame = Frame::PresenceUpdate {
                        doc: self.id.clone(),
                        peers: others,
                    };
                    let _ = sub.out.try_send(Bytes::from(frame.encode()));
                }
                sub.flow.caught_up();
                self.lagging -= 1;
                self.env.meters.slow_reader_resyncs.increment(1);
            } else if sub.flow.poll(Instant::now(), false, grace) == Catch::Disconnect {
                sub.out.kill(ErrorCode::SlowConsumer, "fell too far behind");
                gone.push(peer);
            }
        }
        for peer in gone {
            self.leave(peer);
        }
    }
}
