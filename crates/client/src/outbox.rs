//! What the relay lacks, planned from the local store: the backlog a
//! connection sends after `Synced`.
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
//! The per-connection, per-document state — pieces queued, in flight by
//! `seq`, waiting for a retry, and what the relay is known to hold — is the
//! sans-IO [`weft_protocol::sync::Outbox`].

use weft_core::{Doc, DocError, ReplicaId, VersionVector};
use weft_persist::StoredDoc;
pub(crate) use weft_protocol::sync::{pending, Outbox, Piece};

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
            .map(|p| p.starting_at(server.clone()))
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
            if !server.dominates(piece.to()) {
                pieces.push(piece);
            }
        }
    }
    Ok(pieces)
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
    fn backlog_is_one_diff_when_it_fits_and_nothing_when_relay_has_all() {
        let mut a = doc(1);
        for i in 0..20 {
            edit(&mut a, &i.to_string());
        }
        let pieces = backlog_diff(&a, &VersionVector::new(), 1 << 20).unwrap();
        assert_eq!(pieces.len(), 1);
        let mut relay = doc(9);
        relay.apply(pieces[0].bytes()).unwrap();
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
            relay.apply(p.bytes()).unwrap();
        }
        assert_eq!(relay, a);
        let stored = store.read("d").unwrap().unwrap();
        assert!(backlog_from_records(stored, a.version())
            .unwrap()
            .is_empty());
    }
}
