//! What the sync task does with each frame from the relay: catch-up
//! (`Synced`), remote updates, acknowledgements, errors by scope and
//! presence; and sending what each document's outbox window allows.

use super::session::{blocking_receive, refresh, End, Phase, Session};
use super::SyncTask;
use crate::outbox::{backlog_diff, backlog_from_records, Outbox};
use crate::replica::Received;
use crate::{refusal_code, ClientEvent};
use std::time::{Duration, Instant};
use weft_core::{DocError, VersionVector};
use weft_protocol::sync::{Handled, Transmit};
use weft_protocol::{DocId, ErrorCode, ErrorScope, Frame};

impl SyncTask {
    pub(super) async fn on_frame(&self, s: &mut Session, frame: Frame) -> Result<(), End> {
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
                if !matches!(d.phase, Phase::Live(_)) {
                    return Ok(()); // in flight across an Unsubscribe or error
                }
                let received = blocking_receive(&d.replica, update).await?;
                match (received, &mut d.phase) {
                    // Only an update the document took tells what the relay
                    // holds: a refused one (say, claiming this replica's
                    // future transactions) must not make later local edits
                    // look sent.
                    (Received::Accepted { from, to }, Phase::Live(out)) => out.learn(from, to),
                    (Received::Refused(error), _) => self.refused(&doc, error, false),
                    _ => {}
                }
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
                    let ignored = d.replica.presence.update(s.peer, peers);
                    if ignored > 0 {
                        tracing::debug!(doc = %doc, ignored, "presence cap reached; new peers ignored");
                    }
                }
            }
            Frame::PresenceRemoved { doc, peers } => {
                if let Some(d) = s.docs.get(&doc) {
                    d.replica.presence.remove(&peers);
                }
            }
            Frame::Access { doc, access } => {
                if let Some(d) = s.docs.get_mut(&doc) {
                    d.access = Some(access);
                    if d.replica.set_access(access) {
                        tracing::debug!(doc = %doc, ?access, "access announced");
                        self.shared.emit(ClientEvent::AccessChanged { doc, access });
                    }
                    refresh(d);
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
        if let Received::Refused(error) = blocking_receive(&d.replica, update).await? {
            // Without the relay's state the document cannot sync on this
            // connection: refused until the next one, like a relay refusal.
            d.phase = Phase::Refused(refusal_code(&error));
            refresh(d);
            self.refused(&doc, error, true);
            return Ok(());
        }
        // The relay cannot hold transactions of this session's replica that
        // the session did not make: a version claiming some would make
        // later local edits look already sent.
        let mut server = server;
        let me = d.replica.replica_id();
        let mine = d.replica.version().get(me);
        if server.get(me) > mine {
            server.set(me, mine);
        }
        if d.read_only() {
            // Nothing would be taken: no backlog is planned or sent; the
            // status counts what stays unsent.
            d.phase = Phase::Live(Outbox::new(
                server,
                self.config.max_in_flight,
                crate::backoff::random_u64(),
            ));
            refresh(d);
            return Ok(());
        }
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
        let mut out = Outbox::new(
            server,
            self.config.max_in_flight,
            crate::backoff::random_u64(),
        );
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

    /// Reports an update from the relay that the client refused.
    fn refused(&self, doc: &DocId, error: DocError, catch_up: bool) {
        tracing::debug!(doc = %doc, %error, catch_up, "refused an update from the relay");
        self.shared.emit(ClientEvent::RemoteUpdateRefused {
            doc: doc.clone(),
            code: refusal_code(&error),
            error,
            catch_up,
        });
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
                    let delay = delay.min(Duration::from_secs(3600));
                    d.phase = Phase::Resubscribe(Instant::now() + delay);
                    refresh(d);
                }
            }
            (ErrorScope::UpdateRetry | ErrorScope::UpdateRefused, Some(d)) => {
                let handled = match (&mut d.phase, seq) {
                    (Phase::Live(out), Some(seq)) => {
                        out.on_error(code, seq, Instant::now(), self.config.retry_delay)
                    }
                    _ => Handled::NotOurs,
                };
                if code.scope() == ErrorScope::UpdateRefused {
                    refresh(d);
                }
                if let Handled::Refused(_) = handled {
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
    pub(super) async fn pump(&self, s: &mut Session) -> Result<(), End> {
        let now = Instant::now();
        let max_update = s.limits.max_update_bytes as usize;
        let mut frames = Vec::new();
        for d in s.docs.values_mut() {
            if d.read_only() {
                continue;
            }
            let Phase::Live(out) = &mut d.phase else {
                continue;
            };
            let mut changed = false;
            while let Some(t) = out.poll_transmit(now, &d.replica.id, max_update, &mut s.next_seq) {
                changed = true;
                match t {
                    Transmit::Send(frame) => frames.push(frame),
                    Transmit::TooLarge(piece) => {
                        self.shared.emit(ClientEvent::UpdateRefused {
                            doc: d.replica.id.clone(),
                            code: ErrorCode::UpdateTooLarge,
                            message: format!(
                                "update of {} bytes exceeds the relay's max_update_bytes {max_update}",
                                piece.bytes().len()
                            ),
                        });
                    }
                }
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
