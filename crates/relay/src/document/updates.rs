//! A document's updates: the checks an update passes (ownership, size,
//! held transactions), waiting per sender for missing dependencies, the
//! batch commit (bindings, then updates), acks and fan-out.

use std::collections::VecDeque;
use std::time::Instant;

use axum::body::Bytes;
use weft_core::doc::ApplyStatus;
use weft_core::VersionVector;
use weft_core::{DocError, Update};
use weft_persist::{Appended, Commit};
use weft_protocol::{ErrorCode, Frame};

use super::{send_control, DocTask, UpdateCmd};
use crate::owners::{Owners, Verdict};

/// One sender's updates waiting for dependencies the document lacks.
#[derive(Debug, Default)]
pub(super) struct Waiting {
    pub(super) cmds: VecDeque<UpdateCmd>,
    bytes: usize,
}

impl DocTask {
    /// Answers update `u` with error `code` (its seq and this document).
    fn answer_error(&self, u: &UpdateCmd, code: ErrorCode, message: impl Into<String>) {
        send_control(
            &u.out,
            Frame::error(code, Some(self.id.clone()), Some(u.seq), message),
        );
    }
}

/// A batch applied and fanned out whose appends are not yet durable:
/// answered, in order, when its commit settles.
pub(super) struct InFlight {
    queued: Instant,
    /// Every update of the batch with what happened to it, in arrival
    /// order; the commit answers the `Store` ones, in the same order.
    answers: Vec<(UpdateCmd, Outcome)>,
    pub(super) commit: Commit,
}

/// What happened to one update of a batch.
enum Outcome {
    /// Applied; to be stored (acked once its commit settles).
    Store(Update),
    /// Already known: ack.
    Duplicate,
    /// Refused or not stored.
    Refused(ErrorCode, String),
}

/// The updates of a batch's `Store` outcomes, in order: what its commit
/// appends and answers for.
fn stored(answers: &[(UpdateCmd, Outcome)]) -> impl Iterator<Item = &Update> {
    answers.iter().filter_map(|(_, o)| match o {
        Outcome::Store(update) => Some(update),
        _ => None,
    })
}

/// The error code a refused update gets for `e`.
fn refusal(e: &DocError) -> (ErrorCode, String) {
    match e {
        DocError::Conflict { .. } => {
            ::metrics::counter!("weft_relay_conflicting_transactions_total").increment(1);
            (ErrorCode::ConflictingTransaction, e.to_string())
        }
        _ => (ErrorCode::UpdateRejected, e.to_string()),
    }
}

impl DocTask {
    /// Handles a batch of updates, then any waiting updates the batch made
    /// applicable, until none is left.
    pub(super) async fn updates(&mut self, batch: Vec<UpdateCmd>) {
        let mut batch = batch;
        while !batch.is_empty() {
            if !self.run_batch(batch).await {
                break;
            }
            batch = self.ready_waiting();
        }
    }

    /// Takes the waiting updates that are applicable now.
    fn ready_waiting(&mut self) -> Vec<UpdateCmd> {
        let mut ready = Vec::new();
        for waiting in self.waiting.values_mut() {
            let mut keep = VecDeque::with_capacity(waiting.cmds.len());
            for cmd in waiting.cmds.drain(..) {
                let pending = match &cmd.update {
                    Ok(u) => self.doc.readiness(u) == ApplyStatus::Pending,
                    Err(_) => false,
                };
                if pending {
                    keep.push_back(cmd);
                } else {
                    let len = cmd.update.as_ref().map_or(0, Update::decoded_len);
                    waiting.bytes = waiting.bytes.saturating_sub(len);
                    ready.push(cmd);
                }
            }
            waiting.cmds = keep;
        }
        self.waiting.retain(|_, w| !w.cmds.is_empty());
        ready
    }

    /// Keeps `u` until its dependencies arrive, within its sender's
    /// allowance; gives it back if the allowance is used up.
    fn wait(&mut self, u: UpdateCmd, len: usize) -> Result<(), UpdateCmd> {
        let limits = &self.env.limits;
        let waiting = self.waiting.entry(u.peer).or_default();
        if waiting.cmds.len() >= limits.max_waiting_updates
            || waiting.bytes.saturating_add(len) > limits.max_waiting_bytes
        {
            return Err(u);
        }
        waiting.bytes += len;
        waiting.cmds.push_back(u);
        Ok(())
    }

    /// Decides and applies one batch, queues its new updates on the store,
    /// fans them out, and leaves the batch in flight until its commit
    /// settles ([`DocTask::settle`]); returns whether the document changed.
    async fn run_batch(&mut self, batch: Vec<UpdateCmd>) -> bool {
        if self.stale {
            self.reload().await;
            if self.stale {
                for u in batch {
                    self.answer_error(
                        &u,
                        ErrorCode::StoreUnavailable,
                        "the store is unavailable; retry",
                    );
                }
                return false;
            }
        }
        let before = self.doc.version().clone();
        let mut answers: Vec<(UpdateCmd, Outcome)> = Vec::with_capacity(batch.len());
        let mut bindings: Vec<Vec<u8>> = Vec::new();
        let mut unblocked = false;
        for u in batch {
            self.env.meters.updates_in.increment(1);
            let update = match &u.update {
                Err((code, message)) => {
                    let refused = Outcome::Refused(*code, message.clone());
                    answers.push((u, refused));
                    continue;
                }
                Ok(update) => update.clone(),
            };
            self.env
                .meters
                .update_bytes_in
                .increment(update.len() as u64);
            if !self.subs.contains_key(&u.peer) {
                let refused = Outcome::Refused(
                    ErrorCode::NotSubscribed,
                    "subscribe before sending updates".into(),
                );
                answers.push((u, refused));
                continue;
            }
            let outcome = match self.doc.readiness(&update) {
                ApplyStatus::Pending => match self.wait(u, update.decoded_len()) {
                    Ok(()) => continue,
                    Err(back) => {
                        let refused = Outcome::Refused(
                            ErrorCode::MissingDependencies,
                            "the update waits on transactions this relay lacks, and this \
                             sender's waiting allowance is used up"
                                .into(),
                        );
                        answers.push((back, refused));
                        continue;
                    }
                },
                ApplyStatus::Duplicate => match self.doc.apply_update(&update) {
                    Ok(_) => Outcome::Duplicate,
                    Err(e) => {
                        let (code, message) = refusal(&e);
                        Outcome::Refused(code, message)
                    }
                },
                ApplyStatus::Applied => {
                    self.decide_and_apply(&u, update, &mut bindings, &mut unblocked)
                        .await
                }
            };
            answers.push((u, outcome));
        }
        // Bindings are durable before any update relying on them is
        // queued (they are rare: a replica's first update here).
        let bound = if bindings.is_empty() {
            Ok(())
        } else {
            let key = Owners::store_key(self.id.as_str());
            let refs: Vec<&[u8]> = bindings.iter().map(Vec::as_slice).collect();
            let commit = self.env.store.submit_many(&key, &refs);
            commit.all_durable().await.map_err(|e| e.to_string())
        };
        let to_store: Vec<&Update> = stored(&answers).collect();
        let changed = bound.is_ok() && !to_store.is_empty();
        let queued = Instant::now();
        let commit = match bound {
            Ok(()) if to_store.is_empty() => Commit::ready(Vec::new()),
            Ok(()) => self.env.store.submit_updates(self.id.as_str(), &to_store),
            // Nothing that relies on an unstored binding is stored or shown.
            Err(message) => Commit::ready(
                to_store
                    .iter()
                    .map(|_| {
                        Err(weft_persist::Error::Io(std::io::Error::other(
                            message.clone(),
                        )))
                    })
                    .collect(),
            ),
        };
        if changed {
            // Fan-out does not wait for the fsync; the ack does (`settle`).
            // A reader may see an update the relay has not yet stored: its
            // author keeps it until acknowledged and resends it after any
            // failure or crash.
            self.fan_out_applied(&before, &answers, unblocked).await;
        }
        self.inflight.push_back(InFlight {
            queued,
            answers,
            commit,
        });
        changed
    }

    /// Sends a batch's applied updates to every subscriber but their
    /// senders, or, when they released waiting updates, the whole batch
    /// as one diff to everyone.
    async fn fan_out_applied(
        &mut self,
        before: &VersionVector,
        answers: &[(UpdateCmd, Outcome)],
        unblocked: bool,
    ) {
        if unblocked {
            // Updates that waited for these are now integrated; a
            // subscriber that joined after they arrived never got them, so
            // everyone gets the batch as one diff (duplicates are no-ops).
            let since = before.clone();
            let cost = self.doc_cost();
            if let Some(diff) = self.with_doc(cost, move |doc| doc.diff(&since)).await {
                let frame = Frame::Remote {
                    doc: self.id.clone(),
                    update: diff,
                };
                self.fan_out(&Bytes::from(frame.encode()), None, Some(before));
            }
        } else {
            for (u, outcome) in answers {
                if let Outcome::Store(update) = outcome {
                    let frame = Frame::encode_remote(&self.id, update.as_bytes());
                    self.fan_out(&Bytes::from(frame), Some(u.peer), Some(before));
                }
            }
        }
        for (u, outcome) in answers {
            if matches!(outcome, Outcome::Store(_)) {
                self.env
                    .meters
                    .fanout_lag
                    .record(u.received.elapsed().as_secs_f64());
            }
        }
    }

    /// Answers the oldest batch in flight once its commit settled: acks
    /// for what is durable, `StoreUnavailable` for what is not. A failed
    /// append sets `store_failed`: the document is reloaded once every
    /// batch in flight has settled ([`DocTask::recover`]).
    pub(super) fn settle(
        &mut self,
        batch: InFlight,
        results: Vec<Result<Appended, weft_persist::Error>>,
    ) {
        if stored(&batch.answers).next().is_some() {
            self.env
                .meters
                .store_latency
                .record(batch.queued.elapsed().as_secs_f64());
        }
        let mut results = results.into_iter();
        for (u, outcome) in &batch.answers {
            match outcome {
                // After a failed append, a duplicate may be a copy of what
                // failed (still in memory until the reload): not acked.
                Outcome::Duplicate if self.store_failed => {
                    self.answer_error(u, ErrorCode::StoreUnavailable, "the store failed; retry")
                }
                Outcome::Duplicate => send_control(
                    &u.out,
                    Frame::Ack {
                        doc: self.id.clone(),
                        seq: u.seq,
                    },
                ),
                Outcome::Refused(code, message) => self.answer_error(u, *code, message),
                Outcome::Store(update) => match results.next() {
                    Some(Ok(appended)) => {
                        self.env.meters.updates_stored.increment(1);
                        self.env
                            .meters
                            .ack_lag
                            .record(u.received.elapsed().as_secs_f64());
                        self.stored_here(appended.seq, update);
                        send_control(
                            &u.out,
                            Frame::Ack {
                                doc: self.id.clone(),
                                seq: u.seq,
                            },
                        );
                    }
                    Some(Err(e)) => {
                        self.store_failed = true;
                        self.answer_error(u, ErrorCode::StoreUnavailable, e.to_string());
                    }
                    None => {
                        self.store_failed = true;
                        self.answer_error(u, ErrorCode::Internal, "lost track of a stored update");
                    }
                },
            }
        }
    }

    /// Waits for the oldest batch in flight and answers it.
    pub(super) async fn settle_oldest(&mut self) {
        if let Some(mut batch) = self.inflight.pop_front() {
            let results = (&mut batch.commit).await;
            self.settle(batch, results);
        }
    }

    /// Answers every batch in flight, oldest first, waiting for each.
    pub(super) async fn settle_all(&mut self) {
        while !self.inflight.is_empty() {
            self.settle_oldest().await;
        }
    }

    /// After a failed append: settles what is still in flight, then drops
    /// whatever was applied but not stored by reloading from the store
    /// (the store is the truth).
    pub(super) async fn recover(&mut self) {
        if self.store_failed {
            Box::pin(self.reload()).await;
        }
    }

    /// The checks an applicable update passes before it is applied — its
    /// new transactions are the sender's to make, and the document stays
    /// within its size — then the apply.
    async fn decide_and_apply(
        &mut self,
        u: &UpdateCmd,
        update: Update,
        bindings: &mut Vec<Vec<u8>>,
        unblocked: &mut bool,
    ) -> Outcome {
        let mut verdict = self.owners.check(&update, self.doc.version(), &u.subject);
        if matches!(&verdict, Verdict::Allowed(unbound) if !unbound.is_empty())
            && self.cluster.is_some()
            && bindings.is_empty()
        {
            // Another node may have bound these replicas since.
            self.refresh_owners().await;
            verdict = self.owners.check(&update, self.doc.version(), &u.subject);
        }
        let unbound = match verdict {
            Verdict::NotOwned(replica) => {
                ::metrics::counter!("weft_relay_replica_not_owned_total").increment(1);
                return Outcome::Refused(
                    ErrorCode::ReplicaNotOwned,
                    format!("replica {replica} belongs to another subject"),
                );
            }
            Verdict::Allowed(unbound) => unbound,
        };
        let grown = self
            .doc
            .decoded_bytes()
            .saturating_add(update.decoded_len() as u64);
        if grown > self.env.limits.max_doc_bytes {
            return Outcome::Refused(
                ErrorCode::DocTooLarge,
                format!(
                    "the document would exceed {} bytes",
                    self.env.limits.max_doc_bytes
                ),
            );
        }
        if let Some(record) = self.owners.bind(&unbound, &u.subject) {
            bindings.push(record);
        }
        let cost = update.decoded_len();
        let applying = update.clone();
        let Some(result) = self
            .with_doc(cost, move |doc| doc.apply_update(&applying))
            .await
        else {
            return Outcome::Refused(ErrorCode::Internal, "applying the update failed".into());
        };
        match result {
            Ok(report) if report.status == ApplyStatus::Duplicate => Outcome::Duplicate,
            Ok(report) => {
                *unblocked |= report.unblocked > 0;
                Outcome::Store(update)
            }
            Err(e) => {
                let (code, message) = refusal(&e);
                Outcome::Refused(code, message)
            }
        }
    }
}
