//! A document task's part in cluster mode (`cluster/mod.rs`): applying
//! what other nodes stored, publishing what this node stored, catching up
//! from the store when the bus missed something, and remote presence.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use tracing::{debug, warn};
use weft_core::doc::ApplyStatus;
use weft_core::{Doc, ReplicaId, Update};
use weft_protocol::{Frame, PeerId, PresenceState};

use super::DocTask;
use crate::cluster::remote_peer;
use crate::cluster::seqs::SeqTracker;
use crate::doc_cmd::update_limits;

/// How long a known gap in the seqs may last before the store is asked
/// (the missing entry is usually just behind on the bus).
const GAP_GRACE: Duration = Duration::from_millis(300);
/// How often a document with subscribers checks its cluster timers.
pub(super) const CLUSTER_TICK: Duration = Duration::from_millis(250);

/// Shortest time between two catch-ups of one document (they read it whole).
const CATCH_UP_SPACING: Duration = Duration::from_millis(250);
/// Longest wait before retrying a catch-up that failed (the store down).
const CATCH_UP_MAX_BACKOFF: Duration = Duration::from_secs(10);

/// When a document may read the store again to catch up: every bus entry
/// that does not apply, and every tick while a gap lasts, asks for one; a
/// catch-up reads the whole document, so they are spaced, and while the
/// store fails they back off (doubling up to [`CATCH_UP_MAX_BACKOFF`])
/// instead of a storm of whole-document reads against a store that is
/// down. A skipped catch-up loses nothing: the gap stays known and the
/// next tick asks again.
#[derive(Debug)]
struct CatchUpPacing {
    after: Instant,
    backoff: Duration,
    /// A catch-up was asked for and deferred: the next tick that may run
    /// one does (a bus entry that did not apply may have no gap in the
    /// seqs to show for it).
    wanted: bool,
}

impl CatchUpPacing {
    fn new(now: Instant) -> CatchUpPacing {
        CatchUpPacing {
            after: now,
            backoff: CATCH_UP_SPACING,
            wanted: false,
        }
    }

    fn may_run(&self, now: Instant) -> bool {
        now >= self.after
    }

    fn succeeded(&mut self, now: Instant) {
        self.wanted = false;
        self.backoff = CATCH_UP_SPACING;
        self.after = now + CATCH_UP_SPACING;
    }

    fn failed(&mut self, now: Instant) {
        self.after = now + self.backoff;
        self.backoff = (self.backoff * 2).min(CATCH_UP_MAX_BACKOFF);
    }
}

/// A document's cluster state.
#[derive(Debug)]
pub(super) struct ClusterDoc {
    seqs: SeqTracker,
    /// Presence of other nodes' clients, by the id clients see.
    remote: HashMap<PeerId, (Arc<str>, PresenceState)>,
    last_poll: Instant,
    catch_up: CatchUpPacing,
}

impl ClusterDoc {
    /// Everything up to `loaded_seq` is in the loaded document.
    pub(super) fn new(loaded_seq: u64) -> ClusterDoc {
        ClusterDoc {
            seqs: SeqTracker::new(loaded_seq),
            remote: HashMap::new(),
            last_poll: Instant::now(),
            catch_up: CatchUpPacing::new(Instant::now()),
        }
    }

    /// Presence of other nodes' clients, for a new subscriber.
    pub(super) fn remote_presence(&self) -> impl Iterator<Item = (PeerId, PresenceState)> + '_ {
        self.remote.iter().map(|(p, (_, s))| (*p, s.clone()))
    }
}

impl DocTask {
    /// This node stored `update` as `seq`: count it, and tell the others.
    pub(super) fn stored_here(&mut self, seq: u64, update: &Update) {
        if let Some(c) = &mut self.cluster {
            c.seqs.insert(seq);
            if let Some(bus) = self.env.cluster.as_ref().and_then(|c| c.bus.as_ref()) {
                bus.publish_update(&self.id, seq, update.as_bytes());
            }
        }
    }

    /// Publishes a presence frame of one of this node's clients.
    pub(super) fn publish_presence(&self, encoded: &[u8]) {
        if let Some(bus) = self.env.cluster.as_ref().and_then(|c| c.bus.as_ref()) {
            bus.publish_presence(&self.id, encoded.to_vec());
        }
    }

    /// An update another node stored as `seq`.
    pub(super) async fn remote_update(&mut self, seq: u64, bytes: Vec<u8>) {
        if self.cluster.is_none() {
            return;
        }
        // This node's own appends in flight get their seqs first, so the
        // seqs integrated never show a gap that is only a pending commit.
        self.settle_all().await;
        let Some(c) = &self.cluster else { return };
        if seq <= c.seqs.floor() {
            return; // already integrated (from the store, or a duplicate entry)
        }
        let limits = update_limits(&self.env.limits);
        let update = match Update::decode(bytes, &limits) {
            Ok(u) => u,
            Err(e) => {
                // Not trusted either: the store has the real one.
                warn!(doc = %self.id, seq, error = %e, "undecodable bus entry; reading the store");
                self.catch_up_from_store().await;
                return;
            }
        };
        match self.doc.readiness(&update) {
            ApplyStatus::Pending => {
                // Something before it was missed: the store has it all.
                self.catch_up_from_store().await;
            }
            ApplyStatus::Duplicate => self.seen(seq),
            ApplyStatus::Applied => {
                let before = self.doc.version().clone();
                let cost = update.decoded_len();
                let applying = update.clone();
                let applied = self
                    .with_doc(cost, move |doc| doc.apply_update(&applying))
                    .await;
                match applied {
                    Some(Ok(report)) => {
                        self.seen(seq);
                        if report.status == ApplyStatus::Applied {
                            let frame = Frame::encode_remote(&self.id, update.as_bytes());
                            self.fan_out(&Bytes::from(frame), None, Some(&before));
                            ::metrics::counter!("weft_relay_bus_updates_applied_total")
                                .increment(1);
                        }
                    }
                    Some(Err(e)) => {
                        warn!(doc = %self.id, seq, error = %e, "bus update refused; reading the store");
                        self.catch_up_from_store().await;
                    }
                    None => {}
                }
            }
        }
    }

    fn seen(&mut self, seq: u64) {
        if let Some(c) = &mut self.cluster {
            c.seqs.insert(seq);
        }
    }

    /// Brings the document up to the store: everything another node stored
    /// that this one has not integrated is applied and fanned out as one
    /// `Remote` diff. The store is read whole (snapshot and log) on the
    /// blocking pool.
    pub(super) async fn catch_up_from_store(&mut self) {
        if self.cluster.is_none() {
            return;
        }
        self.settle_all().await;
        let Some(c) = &mut self.cluster else { return };
        let now = Instant::now();
        if !c.catch_up.may_run(now) {
            c.catch_up.wanted = true;
            ::metrics::counter!("weft_relay_cluster_catch_ups_deferred_total").increment(1);
            return;
        }
        // Counted as failed until it succeeds: a task that stops halfway
        // (the heavy gate refused) does not retry at once either.
        c.catch_up.failed(now);
        ::metrics::counter!("weft_relay_cluster_catch_ups_total").increment(1);
        let store = self.env.store.clone();
        let key = self.id.as_str().to_owned();
        let have = self.doc.version().clone();
        let read = self
            .env
            .heavy
            .run(move || {
                let stored = store.read(&key).map_err(|e| e.to_string())?;
                let Some(stored) = stored else {
                    return Ok((0, Vec::new()));
                };
                let last = stored.last_seq();
                let replica = ReplicaId::try_random().map_err(|e| e.to_string())?;
                let theirs: Doc = stored.replay(replica).doc;
                Ok::<_, String>((last, theirs.diff(&have)))
            })
            .await;
        let (last, missing) = match read {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                warn!(doc = %self.id, error = %e, "catch-up from the store failed");
                if let Some(c) = &mut self.cluster {
                    // Try again at the next poll, not at every tick.
                    c.last_poll = Instant::now();
                }
                return;
            }
            None => return,
        };
        let before = self.doc.version().clone();
        let cost = missing.len();
        let diff = missing.clone();
        let applied = self.with_doc(cost, move |doc| doc.apply(&diff)).await;
        match applied {
            Some(Ok(_)) => {
                if self.doc.version() != &before {
                    debug!(doc = %self.id, last, "caught up from the store");
                    let frame = Frame::Remote {
                        doc: self.id.clone(),
                        update: missing,
                    };
                    self.fan_out(&Bytes::from(frame.encode()), None, Some(&before));
                }
                if let Some(c) = &mut self.cluster {
                    c.seqs.reset(last);
                    c.last_poll = Instant::now();
                    c.catch_up.succeeded(Instant::now());
                }
            }
            Some(Err(e)) => {
                warn!(doc = %self.id, error = %e, "store diff did not apply; reloading");
                self.reload().await;
            }
            None => {}
        }
    }

    /// Asks the store whether it holds seqs this node has not integrated;
    /// catches up if so.
    pub(super) async fn poll_store(&mut self) {
        if self.cluster.is_none() {
            return;
        }
        self.settle_all().await;
        let Some(c) = &mut self.cluster else { return };
        c.last_poll = Instant::now();
        let floor = c.seqs.floor();
        let store = self.env.store.clone();
        let key = self.id.as_str().to_owned();
        let stats = tokio::task::spawn_blocking(move || store.stats(&key)).await;
        match stats {
            Ok(Ok(Some(s))) if s.last_seq > floor => self.catch_up_from_store().await,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => debug!(doc = %self.id, error = %e, "store poll failed"),
            Err(e) => debug!(doc = %self.id, error = %e, "store poll task failed"),
        }
    }

    /// The cluster timers: a gap older than `GAP_GRACE`, or the poll.
    pub(super) async fn cluster_tick(&mut self) {
        let Some(c) = &self.cluster else { return };
        let poll = self.env.cluster.as_ref().map_or(Duration::MAX, |c| c.poll);
        let gap = c.seqs.gap_since().is_some_and(|t| t.elapsed() >= GAP_GRACE);
        if gap || c.catch_up.wanted {
            // While spaced or backing off, a later tick runs it.
            if c.catch_up.may_run(Instant::now()) {
                Box::pin(self.catch_up_from_store()).await;
            }
        } else if !self.subs.is_empty() && c.last_poll.elapsed() >= poll {
            Box::pin(self.poll_store()).await;
        }
    }

    /// A presence frame from a client of `node`.
    pub(super) fn remote_presence(&mut self, node: Arc<str>, frame: &[u8]) {
        if self.cluster.is_none() {
            return;
        }
        let frame = match Frame::decode(frame, &self.env.limits.wire) {
            Ok(f) => f,
            Err(e) => {
                debug!(doc = %self.id, %node, error = %e, "undecodable presence entry");
                return;
            }
        };
        let out = match frame {
            Frame::PresenceUpdate { doc, peers } if doc == self.id => {
                let mut mapped = Vec::with_capacity(peers.len());
                if let Some(c) = &mut self.cluster {
                    for (peer, st) in peers {
                        let id = remote_peer(&node, peer);
                        c.remote.insert(id, (node.clone(), st.clone()));
                        mapped.push((id, st));
                    }
                }
                Frame::PresenceUpdate {
                    doc: self.id.clone(),
                    peers: mapped,
                }
            }
            Frame::PresenceRemoved { doc, peers } if doc == self.id => {
                let mut mapped = Vec::with_capacity(peers.len());
                if let Some(c) = &mut self.cluster {
                    for peer in peers {
                        let id = remote_peer(&node, peer);
                        if c.remote.remove(&id).is_some() {
                            mapped.push(id);
                        }
                    }
                }
                if mapped.is_empty() {
                    return;
                }
                Frame::PresenceRemoved {
                    doc: self.id.clone(),
                    peers: mapped,
                }
            }
            _ => return,
        };
        self.fan_out(&Bytes::from(out.encode()), None, None);
    }

    /// Node `node` is gone: its clients' presence goes with it.
    pub(super) fn node_gone(&mut self, node: &str) {
        let Some(c) = &mut self.cluster else { return };
        let gone: Vec<PeerId> = c
            .remote
            .iter()
            .filter(|(_, (n, _))| &**n == node)
            .map(|(p, _)| *p)
            .collect();
        if gone.is_empty() {
            return;
        }
        for p in &gone {
            c.remote.remove(p);
        }
        let frame = Frame::PresenceRemoved {
            doc: self.id.clone(),
            peers: gone,
        };
        self.fan_out(&Bytes::from(frame.encode()), None, None);
    }

    /// Cluster mode: bindings may have been made by another node since
    /// they were loaded; read them again before binding a new replica.
    pub(super) async fn refresh_owners(&mut self) {
        if self.cluster.is_none() {
            return;
        }
        let store = self.env.store.clone();
        let key = self.id.as_str().to_owned();
        let loaded =
            tokio::task::spawn_blocking(move || crate::owners::Owners::load(&*store, &key)).await;
        match loaded {
            Ok(Ok(owners)) => self.owners = owners,
            Ok(Err(e)) => warn!(doc = %self.id, error = %e, "cannot refresh replica bindings"),
            Err(e) => warn!(doc = %self.id, error = %e, "refresh task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store that keeps failing is read with doubling gaps up to the
    /// maximum, not at every request; one success brings the spacing back.
    #[test]
    fn catch_ups_back_off_while_the_store_fails() {
        let t0 = Instant::now();
        let mut p = CatchUpPacing::new(t0);
        assert!(p.may_run(t0));
        // Requests every 10 ms for a minute while every attempt fails.
        let mut attempts = 0;
        let mut now = t0;
        while now < t0 + Duration::from_secs(60) {
            if p.may_run(now) {
                attempts += 1;
                p.failed(now);
            }
            now += Duration::from_millis(10);
        }
        // 0.25 + 0.5 + … + 8 s, then every 10 s: about 11, never 6 000.
        assert!((8..=14).contains(&attempts), "{attempts} attempts in 60 s");
        p.wanted = true;
        p.succeeded(now);
        assert!(!p.wanted, "a run that succeeded is no longer wanted");
        assert!(!p.may_run(now));
        assert!(p.may_run(now + CATCH_UP_SPACING));
    }
}
