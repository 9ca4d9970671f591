//! [`Outbox`]: a client's outgoing updates for one document on one
//! connection — queued, in flight by `seq`, waiting for a retry — and what
//! the relay is known to hold. Sans-IO: it takes frames and time and
//! returns frames; the caller owns the socket and the clock.

use crate::{DocId, ErrorCode, ErrorScope, Frame};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};
use weft_core::{Update, VersionVector};

/// One update to send: its bytes and the versions it spans.
#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    bytes: Vec<u8>,
    from: VersionVector,
    to: VersionVector,
    /// Times the relay asked to retry this piece.
    retries: u32,
}

impl Piece {
    /// A piece of an encoded update ([`weft_core::Doc::transact`] or
    /// [`weft_core::Doc::diff`] output); `None` for bytes that are not an
    /// update, or an empty one (`from == to`).
    ///
    /// ```
    /// use weft_core::{Doc, ReplicaId};
    /// use weft_protocol::sync::Piece;
    /// let mut doc = Doc::new(ReplicaId::new(1));
    /// let bytes = doc.transact(|tx| tx.text("t")?.insert(0, "hi")).unwrap();
    /// let piece = Piece::new(bytes).unwrap();
    /// assert_eq!(piece.to(), doc.version());
    /// assert!(Piece::new(doc.transact(|_| Ok(())).unwrap()).is_none(), "empty");
    /// ```
    pub fn new(bytes: Vec<u8>) -> Option<Piece> {
        let (from, to) = Update::peek_versions(&bytes)?;
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

    /// This piece, claiming to start at `from` (a diff against `from`).
    pub fn starting_at(self, from: VersionVector) -> Piece {
        Piece { from, ..self }
    }

    /// The encoded update.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The version it needs.
    pub fn from(&self) -> &VersionVector {
        &self.from
    }

    /// The version it leads to.
    pub fn to(&self) -> &VersionVector {
        &self.to
    }
}

/// Transactions in `local` that `known` lacks.
///
/// ```
/// use weft_core::{ReplicaId, VersionVector};
/// let mut local = VersionVector::new();
/// local.set(ReplicaId::new(1), 5);
/// let mut known = VersionVector::new();
/// known.set(ReplicaId::new(1), 2);
/// assert_eq!(weft_protocol::sync::pending(&local, &known), 3);
/// ```
pub fn pending(local: &VersionVector, known: &VersionVector) -> u64 {
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

/// What [`Outbox::poll_transmit`] has for the socket.
#[derive(Debug)]
pub enum Transmit {
    /// Send this `Update` frame.
    Send(Frame),
    /// A piece over the relay's `max_update_bytes`: dropped, not sent (tell
    /// the user; the next backlog after a reconnect plans it again).
    TooLarge(Piece),
}

/// What a frame did to an [`Outbox`] ([`Outbox::on_frame`]).
#[derive(Debug, PartialEq)]
pub enum Handled {
    /// `Ack {seq}` of a piece in flight: the relay holds it durably.
    Acked,
    /// A retry-scope error (200–249): resent after a growing delay.
    RetryLater,
    /// A refusal (250–299): dropped, not resent on this connection.
    Refused(Piece),
    /// Not about a piece of this outbox.
    NotOurs,
}

/// One document's outgoing state on one connection.
///
/// A client↔relay exchange without any I/O: the relay side is a plain
/// [`weft_core::Doc`] here, frames are passed by hand.
///
/// ```
/// use std::time::{Duration, Instant};
/// use weft_core::{Doc, ReplicaId, VersionVector};
/// use weft_protocol::sync::{Handled, Outbox, Piece, Transmit};
/// use weft_protocol::{DocId, Frame};
///
/// let doc_id = DocId::new("notes").unwrap();
/// let mut client = Doc::new(ReplicaId::new(1));
/// let mut relay = Doc::new(ReplicaId::new(9));
/// // After `Synced`: the relay has nothing yet.
/// let mut out = Outbox::new(VersionVector::new(), 8, 42);
/// for word in ["a", "b", "c"] {
///     let bytes = client.transact(|tx| tx.text("t")?.insert(0, word)).unwrap();
///     out.push(Piece::new(bytes).unwrap());
/// }
/// let now = Instant::now();
/// let mut next_seq = 1;
/// let mut acks = Vec::new();
/// while let Some(Transmit::Send(frame)) = out.poll_transmit(now, &doc_id, 1 << 20, &mut next_seq) {
///     // ... the frame crosses the network; the relay applies and acks it.
///     let Frame::Update { seq, update, .. } = Frame::decode(&frame.encode(), &Default::default()).unwrap() else { unreachable!() };
///     relay.apply(&update).unwrap();
///     acks.push(Frame::Ack { doc: doc_id.clone(), seq });
/// }
/// for ack in &acks {
///     assert_eq!(out.on_frame(ack, now, Duration::from_millis(100)), Handled::Acked);
/// }
/// assert!(out.is_idle());
/// assert_eq!(out.known(), client.version());
/// assert_eq!(relay.text("t").unwrap().to_string(), "cba");
/// ```
#[derive(Debug)]
pub struct Outbox {
    /// What the relay is known to hold: its `Synced` version joined with
    /// this client's acked pieces (durable there) and the updates received
    /// from it (maybe not yet durable: their authors keep them until acked).
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
    /// xorshift state for retry jitter (seeded by the caller: no hidden
    /// randomness, so a test replays exactly).
    jitter: u64,
}

impl Outbox {
    /// After `Synced`: the relay has `server`. At most `max_in_flight`
    /// pieces are unacknowledged at once; `seed` drives the retry jitter.
    pub fn new(server: VersionVector, max_in_flight: usize, seed: u64) -> Outbox {
        Outbox {
            sent: server.clone(),
            known: server,
            queue: VecDeque::new(),
            in_flight: BTreeMap::new(),
            retry: Vec::new(),
            sent_ahead: Vec::new(),
            waiting: Vec::new(),
            max_in_flight: max_in_flight.max(1),
            jitter: seed | 1,
        }
    }

    /// What the relay is known to hold (see the field): this client's own
    /// transactions in it are durable there.
    pub fn known(&self) -> &VersionVector {
        &self.known
    }

    /// Queues `piece` unless this connection already sent what it spans.
    /// `sent` only grows by spans that continue it (`from` within it):
    /// joining the `to` of an update whose `from` is ahead would claim the
    /// transactions in between, which may still be unsent.
    pub fn push(&mut self, piece: Piece) -> bool {
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

    /// Marks `version` as sent (a backlog covered it).
    pub fn mark_sent(&mut self, version: &VersionVector) {
        self.sent.join(version);
    }

    /// The next piece to send, if the window has room; the caller sends it
    /// and calls [`Outbox::sent`] with its seq. [`Outbox::poll_transmit`]
    /// does both.
    ///
    /// Retries go first, in the order they failed (once any is due), and
    /// are not held back by the window: the error freed their slot, and
    /// the pieces filling the window may be waiting at the relay for
    /// exactly these (a full window of dependents would otherwise wait
    /// forever). So at most `2 × max_in_flight` pieces are outstanding.
    pub fn next(&mut self, now: Instant) -> Option<Piece> {
        if self.retry.iter().any(|(at, _)| *at <= now) {
            let (_, piece) = self.retry.remove(0);
            return Some(piece);
        }
        if self.in_flight.len() >= self.max_in_flight {
            return None;
        }
        self.queue.pop_front()
    }

    /// `piece` went out as `seq`.
    pub fn sent(&mut self, seq: u64, piece: Piece) {
        self.in_flight.insert(seq, piece);
    }

    /// The next `Update` frame for `doc` if the window has room, numbered
    /// from `next_seq` (the connection's counter, shared by its documents).
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        doc: &DocId,
        max_update_bytes: usize,
        next_seq: &mut u64,
    ) -> Option<Transmit> {
        let piece = self.next(now)?;
        if piece.bytes.len() > max_update_bytes {
            return Some(Transmit::TooLarge(piece));
        }
        let seq = *next_seq;
        *next_seq += 1;
        let frame = Frame::Update {
            doc: doc.clone(),
            seq,
            update: piece.bytes.clone(),
        };
        self.sent(seq, piece);
        Some(Transmit::Send(frame))
    }

    /// The earliest instant a retry becomes due, if any waits (for the
    /// caller's timer).
    pub fn next_retry(&self) -> Option<Instant> {
        self.retry.iter().map(|(at, _)| *at).min()
    }

    /// Handles a frame the relay sent about this outbox's document: an
    /// `Ack`, or an update-scoped `Error` (retry after a delay growing
    /// from `retry_base`, or refusal). Other frames are [`Handled::NotOurs`].
    pub fn on_frame(&mut self, frame: &Frame, now: Instant, retry_base: Duration) -> Handled {
        match frame {
            Frame::Ack { seq, .. } => {
                if self.ack(*seq) {
                    Handled::Acked
                } else {
                    Handled::NotOurs
                }
            }
            Frame::Error {
                code,
                seq: Some(seq),
                ..
            } => self.on_error(*code, *seq, now, retry_base),
            _ => Handled::NotOurs,
        }
    }

    /// An update-scoped error `code` for `seq` (what [`Outbox::on_frame`]
    /// does with an `Error` frame, for a caller that already took the frame
    /// apart): retry-scope codes (200–249) resend after a delay growing
    /// from `retry_base`, refusals (250–299) drop the piece.
    pub fn on_error(
        &mut self,
        code: ErrorCode,
        seq: u64,
        now: Instant,
        retry_base: Duration,
    ) -> Handled {
        match code.scope() {
            ErrorScope::UpdateRetry if self.retry_later(seq, now, retry_base) => {
                Handled::RetryLater
            }
            ErrorScope::UpdateRefused => match self.refuse(seq) {
                Some(piece) => Handled::Refused(piece),
                None => Handled::NotOurs,
            },
            _ => Handled::NotOurs,
        }
    }

    /// `Ack {seq}`: the relay stored it durably. Returns whether it was ours.
    pub fn ack(&mut self, seq: u64) -> bool {
        match self.in_flight.remove(&seq) {
            Some(piece) => {
                self.learn(piece.from, piece.to);
                true
            }
            None => false,
        }
    }

    /// The relay holds the update spanning `from..to` (acked, or received
    /// from it and applied).
    pub fn learn(&mut self, from: VersionVector, to: VersionVector) {
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
    fn retry_later(&mut self, seq: u64, now: Instant, base: Duration) -> bool {
        let Some(mut piece) = self.in_flight.remove(&seq) else {
            return false;
        };
        let ceiling = base
            .saturating_mul(1 << piece.retries.min(5))
            .min(Duration::from_secs(3600));
        let jitter = self.next_jitter() % 1024;
        let delay = ceiling / 2 + ceiling.mul_f64(jitter as f64 / 2048.0);
        piece.retries = piece.retries.saturating_add(1);
        self.retry.push((now + delay, piece));
        true
    }

    /// A refusal (250–299) for `seq`: dropped, not resent on this connection.
    fn refuse(&mut self, seq: u64) -> Option<Piece> {
        self.in_flight.remove(&seq)
    }

    /// Nothing queued, in flight or waiting for a retry.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.in_flight.is_empty() && self.retry.is_empty()
    }

    /// Pieces sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    fn next_jitter(&mut self) -> u64 {
        // xorshift64
        let mut x = self.jitter;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.jitter = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_core::{Doc, ReplicaId};

    fn doc(id: u64) -> Doc {
        Doc::new(ReplicaId::new(id))
    }

    fn edit(d: &mut Doc, s: &str) -> Vec<u8> {
        d.transact(|tx| tx.text("t")?.insert(0, s)).unwrap()
    }

    #[test]
    fn pieces_read_from_and_to_and_refuse_other_bytes() {
        let mut a = doc(1);
        let u1 = edit(&mut a, "x");
        let u2 = edit(&mut a, "y");
        let p2 = Piece::new(u2.clone()).unwrap();
        assert_eq!(p2.from().get(ReplicaId::new(1)), 1);
        assert_eq!(p2.to().get(ReplicaId::new(1)), 2);
        assert_eq!(Piece::new(u1).unwrap().from(), &VersionVector::new());
        assert_eq!(Piece::new(b"garbage".to_vec()), None);
        assert_eq!(Piece::new(a.save()), None, "a snapshot is not an update");
        assert_eq!(Piece::new(u2[..8].to_vec()), None, "truncated");
        assert_eq!(Piece::new(a.transact(|_| Ok(())).unwrap()), None, "empty");
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
    fn an_update_ahead_of_what_was_sent_does_not_claim_the_gap() {
        let mut a = doc(1);
        let u1 = Piece::new(edit(&mut a, "1")).unwrap();
        let u2 = Piece::new(edit(&mut a, "2")).unwrap();
        let u3 = Piece::new(edit(&mut a, "3")).unwrap();
        let mut out = Outbox::new(VersionVector::new(), 8, 1);
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
        let mut out = Outbox::new(VersionVector::new(), 2, 1);
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
        assert!(out.next_retry().is_some());
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

    /// Found by `tests/sync_props.rs`: the first pieces got a retryable
    /// error while the pieces after them filled the window, waiting at the
    /// relay for exactly those. The retries must go out anyway.
    #[test]
    fn retries_are_not_held_back_by_a_window_full_of_their_dependents() {
        let mut a = doc(1);
        let id = DocId::new("d").unwrap();
        let mut out = Outbox::new(VersionVector::new(), 2, 1);
        for i in 0..4 {
            out.push(Piece::new(edit(&mut a, &i.to_string())).unwrap());
        }
        let now = Instant::now();
        let mut seq = 1;
        let sent =
            |out: &mut Outbox, seq: &mut u64, at| match out.poll_transmit(at, &id, 1 << 20, seq) {
                Some(Transmit::Send(Frame::Update { seq, .. })) => Some(seq),
                _ => None,
            };
        let (s1, s2) = (
            sent(&mut out, &mut seq, now).unwrap(),
            sent(&mut out, &mut seq, now).unwrap(),
        );
        let busy = Frame::error(
            crate::ErrorCode::StoreUnavailable,
            Some(id.clone()),
            Some(s1),
            "busy",
        );
        assert_eq!(
            out.on_frame(&busy, now, Duration::from_millis(10)),
            Handled::RetryLater
        );
        let busy = Frame::error(
            crate::ErrorCode::StoreUnavailable,
            Some(id.clone()),
            Some(s2),
            "busy",
        );
        assert_eq!(
            out.on_frame(&busy, now, Duration::from_millis(10)),
            Handled::RetryLater
        );
        // Pieces 3 and 4 fill the window; the relay holds them unacked.
        assert!(sent(&mut out, &mut seq, now).is_some());
        assert!(sent(&mut out, &mut seq, now).is_some());
        assert_eq!(out.in_flight(), 2);
        let later = now + Duration::from_secs(1);
        let r1 = sent(&mut out, &mut seq, later).expect("the first retry goes out");
        let r2 = sent(&mut out, &mut seq, later).expect("and the second");
        assert!(r1 < r2);
        assert!(sent(&mut out, &mut seq, later).is_none(), "nothing else");
    }
}
