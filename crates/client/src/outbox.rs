//! The outbox: what the relay lacks, what is in flight, what it acknowledged.
//!
//! There is no separate outbox table. The local store holds every local
//! edit before [`Replica::transact`](crate::Replica::transact) returns, so
//! after any restart "what the relay lacks" is recomputed exactly from the
//! relay's version in `Synced`: `doc.diff(server_version)`. That is bounded
//! by the document (not by the number of offline edits: a text typed and
//! deleted offline ships as its final state plus tombstones), is never
//! lost (it is the store), and never re-sends what the relay already has.
//! When that one diff is larger than the batch cap, the backlog is sent as
//! the store's own records instead (its snapshot's diff, then each logged
//! update the relay lacks), a bounded window of them in flight at a time.
//!
//! Per connection and document an [`Outbox`] tracks pieces queued, in
//! flight (by `seq`) and waiting to be retried, and `known`: a lower bound
//! of what the relay durably holds (its `Synced` version, joined with every
//! acknowledged or received update), from which `pending` is computed.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};
use weft_core::{Doc, DocError, ReplicaId, VersionVector};
use weft_persist::StoredDoc;

/// The `from` and `to` version vectors of an encoded update (the first two
/// fields of its body, `docs/protocol.md` §4), or `None` if `update` is not
/// an update.
pub(crate) fn versions(update: &[u8]) -> Option<(VersionVector, VersionVector)> {
    weft_core::Update::peek_versions(update)
}

/// Transactions in `local` that `known` lacks.
pub(crate) fn pending(local: &VersionVector, known: &VersionVector) -> u64 {
    local
        .iter()
        .map(|(replica, n)| n.saturating_sub(known.get(replica)))
        .fold(0u64, u64::saturating_add)
}

/// Joins into `version` every span of `spans` that continues it, repeatedly
/// (spans that arrived out of causal order), and drops the joined ones.
fn join_ready(version: &mut VersionVector, spans: &mut Vec<(VersionVector, VersionVector)>) {
    loop {
        let before = spans.len();
        spans.retain(|(from, to)| {
            if version.dominates(from) {
                version.join(to);
                false
            } else {
                true
            }
        });
        if spans.len() == before {
            return;
        }
    }
}

/// One update to send: its bytes and the versions it spans.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Piece {
    pub(crate) bytes: Vec<u8>,
    pub(crate) from: VersionVector,
    pub(crate) to: VersionVector,
    /// Times the relay asked to retry this piece.
    pub(crate) retries: u32,
}

impl Piece {
    /// `None` for bytes that are not an update, or an empty one (`from == to`).
    pub(crate) fn new(bytes: Vec<u8>) -> Option<Piece> {
        let (from, to) = versions(&bytes)?;
        if from.dominates(&to) {
            return None;
        }
        Some(Piece {
            bytes,
            from,
            to,
            retries: 0,
        })
    }
}

/// What to send a relay at `server` so it has everything `doc` has: one
/// diff when it fits in `cap` bytes, otherwise `None` (send the store's
/// records: [`backlog_from_records`]).
pub(crate) fn backlog_diff(doc: &Doc, server: &VersionVector, cap: usize) -> Option<Vec<Piece>> {
    if server.dominates(doc.version()) {
        return Some(Vec::new());
    }
    let bytes = doc.diff(server);
    if bytes.len() > cap {
        return None;
    }
    Some(
        Piece::new(bytes)
            .map(|p| Piece {
                from: server.clone(),
                ..p
            })
            .into_iter()
            .collect(),
    )
}

/// The backlog as bounded pieces: the diff of the stored snapshot (if the
/// relay lacks part of it), then every logged update whose `to` the relay
/// does not have, in log order.
pub(crate) fn backlog_from_records(
    stored: StoredDoc,
    server: &VersionVector,
) -> Result<Vec<Piece>, DocError> {
    let mut pieces = Vec::new();
    if let Some((_, snapshot)) = stored.snapshot {
        // Only read and diffed, never edited: any replica id will do.
        let doc = Doc::load(&snapshot, ReplicaId::new(0))?;
        if !server.dominates(doc.version()) {
            pieces.extend(Piece::new(doc.diff(server)));
        }
    }
    for (_, update) in stored.updates {
        if let Some(piece) = Piece::new(update) {
            if !server.dominates(&piece.to) {
                pieces.push(piece);
            }
        }
    }
    Ok(pieces)
}

/// One document's outgoing state on one connection.
#[derive(Debug)]
pub(crate) struct Outbox {
    /// Lower bound of what the relay durably holds.
    known: VersionVector,
    /// `known` joined with everything queued or sent on this connection:
    /// a piece whose `to` this covers is not sent again.
    sent: VersionVector,
    queue: VecDeque<Piece>,
    in_flight: BTreeMap<u64, Piece>,
    retry: Vec<(Instant, Piece)>,
    /// Queued spans whose `from` is ahead of `sent`.
    sent_ahead: Vec<(VersionVector, VersionVector)>,
    /// Acknowledged spans whose `from` is not yet known to the relay.
    waiting: Vec<(VersionVector, VersionVector)>,
    max_in_flight: usize,
}

impl Outbox {
    /// After `Synced`: the relay has `server`.
    pub(crate) fn new(server: VersionVector, max_in_flight: usize) -> Outbox {
        Outbox {
            sent: server.clone(),
            known: server,
            queue: VecDeque::new(),
            in_flight: BTreeMap::new(),
            retry: Vec::new(),
            sent_ahead: Vec::new(),
            waiting: Vec::new(),
            max_in_flight: max_in_flight.max(1),
        }
    }

    /// What the relay is known to hold.
    pub(crate) fn known(&self) -> &VersionVector {
        &self.known
    }

    /// Queues `piece` unless this connection already sent what it spans.
    /// `sent` only grows by spans that continue it (`from` within it):
    /// joining the `to` of an update whose `from` is ahead would claim the
    /// transactions in between, which may still be unsent.
    pub(crate) fn push(&mut self, piece: Piece) -> bool {
        if self.sent.dominates(&piece.to) {
            return false;
        }
        if self.sent.dominates(&piece.from) {
            self.sent.join(&piece.to);
            join_ready(&mut self.sent, &mut self.sent_ahead);
        } else {
            self.sent_ahead.push((piece.from.clone(), piece.to.clone()));
        }
        self.queue.push_back(piece);
        true
    }

    /// Marks `version` as sent (the backlog covered it).
    pub(crate) fn mark_sent(&mut self, version: &VersionVector) {
        self.sent.join(version);
    }

    /// The next piece to send, if the window has room; the caller sends it
    /// and calls [`Outbox::sent`] with its seq.
    pub(crate) fn next(&mut self, now: Instant) -> Option<Piece> {
        if self.in_flight.len() >= self.max_in_flight {
            return None;
        }
        if let Some(i) = self.retry.iter().position(|(at, _)| *at <= now) {
            let (_, piece) = self.retry.swap_remove(i);
            return Some(piece);
        }
        self.queue.pop_front()
    }

    /// `piece` went out as `seq`.
    pub(crate) fn sent(&mut self, seq: u64, piece: Piece) {
        self.in_flight.insert(seq, piece);
    }

    /// `Ack {seq}`: the relay stored it durably. Returns whether it was ours.
    pub(crate) fn ack(&mut self, seq: u64) -> bool {
        match self.in_flight.remove(&seq) {
            Some(piece) => {
                self.learn(piece.from, piece.to);
                true
            }
            None => false,
        }
    }

    /// The relay holds the update spanning `from..to` (acked or received).
    pub(crate) fn learn(&mut self, from: VersionVector, to: VersionVector) {
        if self.sent.dominates(&from) {
            self.sent.join(&to);
            join_ready(&mut self.sent, &mut self.sent_ahead);
        }
        if !self.known.dominates(&from) {
            self.waiting.push((from, to));
            return;
        }
        self.known.join(&to);
        join_ready(&mut self.known, &mut self.waiting);
    }

    /// A retry-scope error (200–249) for `seq`: resend after a delay that
    /// grows with the piece's retries (`base * 2^n`, n ≤ 5), jittered down
    /// to half so retried pieces spread out.
    pub(crate) fn retry_later(&mut self, seq: u64, now: Instant, base: Duration) -> bool {
        let Some(mut piece) = self.in_flight.remove(&seq) else {
            return false;
        };
        let ceiling = base
            .saturating_mul(1 << piece.retries.min(5))
            .min(Duration::from_secs(3600));
        let jitter = crate::backoff::random_u64() % 1024;
        let delay = ceiling / 2 + ceiling.mul_f64(jitter as f64 / 2048.0);
        piece.retries = piece.retries.saturating_add(1);
        self.retry.push((now + delay, piece));
        true
    }

    /// A refusal (250–299) for `seq`: dropped, not resent on this connection.
    pub(crate) fn refuse(&mut self, seq: u64) -> Option<Piece> {
        self.in_flight.remove(&seq)
    }

    /// Nothing queued, in flight or waiting for a retry.
    pub(crate) fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.in_flight.is_empty() && self.retry.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_persist::{MemoryStore, Store};

    fn doc(id: u64) -> Doc {
        Doc::new(ReplicaId::new(id))
    }

    fn edit(d: &mut Doc, s: &str) -> Vec<u8> {
        d.transact(|tx| tx.text("t")?.insert(0, s)).unwrap()
    }

    #[test]
    fn versions_reads_from_and_to_and_rejects_other_bytes() {
        let mut a = doc(1);
        let u1 = edit(&mut a, "x");
        let u2 = edit(&mut a, "y");
        let (from, to) = versions(&u2).unwrap();
        assert_eq!(from.get(ReplicaId::new(1)), 1);
        assert_eq!(to.get(ReplicaId::new(1)), 2);
        assert_eq!(versions(&u1).unwrap().0, VersionVector::new());
        assert_eq!(versions(b"garbage"), None);
        assert_eq!(versions(&a.save()), None, "a snapshot is not an update");
        assert_eq!(versions(&u2[..8]), None, "truncated");
    }

    #[test]
    fn empty_transactions_are_not_pieces() {
        let mut a = doc(1);
        let empty = a.transact(|_| Ok(())).unwrap();
        assert_eq!(Piece::new(empty), None);
    }

    #[test]
    fn pending_counts_missing_transactions() {
        let mut a = doc(1);
        let mut b = doc(2);
        edit(&mut a, "a");
        edit(&mut a, "b");
        b.apply(&a.diff(b.version())).unwrap();
        edit(&mut b, "c");
        assert_eq!(pending(b.version(), &VersionVector::new()), 3);
        assert_eq!(pending(b.version(), a.version()), 1);
        assert_eq!(pending(a.version(), b.version()), 0);
    }

    #[test]
    fn backlog_is_one_diff_when_it_fits_and_nothing_when_relay_has_all() {
        let mut a = doc(1);
        for i in 0..20 {
            edit(&mut a, &i.to_string());
        }
        let pieces = backlog_diff(&a, &VersionVector::new(), 1 << 20).unwrap();
        assert_eq!(pieces.len(), 1);
        let mut relay = doc(9);
        relay.apply(&pieces[0].bytes).unwrap();
        assert_eq!(relay, a);
        assert!(backlog_diff(&a, a.version(), 1 << 20).unwrap().is_empty());
        assert!(
            backlog_diff(&a, &VersionVector::new(), 8).is_none(),
            "over the cap"
        );
    }

    #[test]
    fn records_backlog_skips_what_the_relay_has_and_converges() {
        let store = MemoryStore::new();
        let mut a = doc(1);
        let mut relay = doc(9);
        for i in 0..10 {
            let u = edit(&mut a, &format!("{i},"));
            store.append("d", &u).unwrap();
            if i < 4 {
                relay.apply(&u).unwrap();
            }
        }
        store.compact("d").unwrap();
        for i in 10..15 {
            store.append("d", &edit(&mut a, &format!("{i},"))).unwrap();
        }
        let stored = store.read("d").unwrap().unwrap();
        let pieces = backlog_from_records(stored, relay.version()).unwrap();
        assert_eq!(pieces.len(), 6, "snapshot diff + 5 logged updates");
        for p in &pieces {
            relay.apply(&p.bytes).unwrap();
        }
        assert_eq!(relay, a);
        let stored = store.read("d").unwrap().unwrap();
        assert!(backlog_from_records(stored, a.version())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn an_update_ahead_of_what_was_sent_does_not_claim_the_gap() {
        let mut a = doc(1);
        let u1 = Piece::new(edit(&mut a, "1")).unwrap();
        let u2 = Piece::new(edit(&mut a, "2")).unwrap();
        let u3 = Piece::new(edit(&mut a, "3")).unwrap();
        let mut out = Outbox::new(VersionVector::new(), 8);
        assert!(out.push(u3.clone()), "out of order: queued");
        assert!(out.push(u1), "the gap is still sent");
        assert!(out.push(u2));
        assert!(!out.push(u3), "now everything up to 3 was sent");
    }

    #[test]
    fn window_acks_retries_and_refusals() {
        let mut a = doc(1);
        let pieces: Vec<Piece> = (0..4)
            .map(|i| Piece::new(edit(&mut a, &i.to_string())).unwrap())
            .collect();
        let mut out = Outbox::new(VersionVector::new(), 2);
        for p in pieces.clone() {
            assert!(out.push(p));
        }
        assert!(!out.push(pieces[1].clone()), "already sent");
        let now = Instant::now();
        let p1 = out.next(now).unwrap();
        out.sent(1, p1);
        let p2 = out.next(now).unwrap();
        out.sent(2, p2);
        assert!(out.next(now).is_none(), "window of two");
        // Acks out of order: known advances only once the gap is filled.
        assert!(out.ack(2));
        assert_eq!(out.known().get(ReplicaId::new(1)), 0);
        assert!(out.ack(1));
        assert_eq!(out.known().get(ReplicaId::new(1)), 2);
        assert!(!out.ack(1), "acked once");
        let p3 = out.next(now).unwrap();
        out.sent(3, p3);
        assert!(out.retry_later(3, now, Duration::from_millis(50)));
        let p4 = out.next(now).unwrap();
        out.sent(4, p4);
        assert!(out.next(now).is_none(), "retry not due yet");
        assert!(
            out.next(now + Duration::from_millis(24)).is_none(),
            "at least half the delay"
        );
        let later = now + Duration::from_millis(60);
        let again = out.next(later).unwrap();
        assert_eq!(again.bytes, pieces[2].bytes);
        assert_eq!(again.retries, 1);
        out.sent(5, again);
        assert!(out.refuse(4).is_some());
        assert!(out.ack(5));
        assert!(out.is_idle());
        assert_eq!(
            out.known().get(ReplicaId::new(1)),
            3,
            "refused one never known"
        );
        assert_eq!(pending(a.version(), out.known()), 1);
    }
}
