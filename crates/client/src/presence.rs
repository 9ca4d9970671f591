//! Presence: this replica's own state (resent after every reconnect) and
//! the other peers' states as the relay reports them, at most
//! [`ClientLimits::max_presence_peers`](crate::ClientLimits) of them per
//! document: beyond the cap, *new* peers are ignored (peers already shown
//! keep updating) until a `PresenceRemoved` frees a slot. Ignoring rather
//! than evicting the oldest keeps the peers a user already sees stable
//! under a flood; each state is at most the protocol's
//! `max_presence_bytes`, so a document's presence is bounded by
//! cap × that.

use crate::{Error, Result};
use std::collections::BTreeMap;
use std::sync::Mutex;
use tokio::sync::watch;
use weft_core::{Bias, Doc, StablePosition};
use weft_protocol::{Cursor, Limits, PeerId, PresenceState};

/// Other peers present in a document, by their per-connection id.
pub type Peers = BTreeMap<PeerId, PresenceState>;

/// One document's presence book.
#[derive(Debug)]
pub(crate) struct PresenceBook {
    mine: Mutex<Option<PresenceState>>,
    peers: watch::Sender<Peers>,
    /// Most peers kept (at least 1).
    max_peers: usize,
}

impl PresenceBook {
    /// An empty book keeping at most `max_peers` other peers.
    pub(crate) fn new(max_peers: usize) -> Self {
        PresenceBook {
            mine: Mutex::new(None),
            peers: watch::Sender::new(Peers::new()),
            max_peers: max_peers.max(1),
        }
    }
}

/// Checks `state` against the protocol's presence rules and the default
/// size limit, so the app hears about a bad state at once rather than the
/// relay dropping it later.
pub(crate) fn validate(state: &PresenceState) -> Result<()> {
    state
        .validate(Limits::default().max_presence_bytes as usize)
        .map_err(Error::Presence)
}

/// A cursor in the top-level text `text` from char `anchor` to char `head`
/// (equal for a caret), anchored to characters so it follows concurrent
/// edits.
pub(crate) fn cursor_in(doc: &Doc, text: &str, anchor: usize, head: usize) -> Result<Cursor> {
    let text = doc.text(text)?;
    let at = |index: usize| match text.as_text() {
        Some(t) => t.anchor(index, Bias::Left),
        None => StablePosition {
            anchor: None,
            bias: Bias::Left,
        },
    };
    Ok(Cursor {
        text: text.path().clone(),
        anchor: at(anchor),
        head: at(head),
    })
}

/// Where `cursor` is now, as char indexes `(anchor, head)`; `None` if its
/// text no longer exists here (removed, or another generation) or its
/// anchor characters have not arrived yet.
pub(crate) fn resolve_in(doc: &Doc, cursor: &Cursor) -> Option<(usize, usize)> {
    let (last, parents) = cursor.text.steps().split_last()?;
    let mut map = doc.root();
    for step in parents {
        map = map.map(&step.key).ok()?;
    }
    let text = map.text(&last.key).ok()?;
    if *text.path() != cursor.text {
        return None;
    }
    match text.as_text() {
        Some(t) => Some((t.resolve(&cursor.anchor)?, t.resolve(&cursor.head)?)),
        None => Some((0, 0)),
    }
}

impl PresenceBook {
    pub(crate) fn set_mine(&self, state: Option<PresenceState>) {
        *self.mine.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }

    pub(crate) fn mine(&self) -> Option<PresenceState> {
        self.mine.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn watch(&self) -> watch::Receiver<Peers> {
        self.peers.subscribe()
    }

    /// `PresenceUpdate`: full states of some peers (`me` is skipped). Peers
    /// already known are updated; new ones are added while there is room.
    /// Returns how many new peers were ignored for want of room.
    pub(crate) fn update(&self, me: PeerId, peers: Vec<(PeerId, PresenceState)>) -> usize {
        let max = self.max_peers;
        let mut ignored = 0;
        self.peers.send_if_modified(|map| {
            let mut changed = false;
            for (peer, state) in peers {
                if peer == me {
                    continue;
                }
                let room = map.len() < max;
                match map.get_mut(&peer) {
                    Some(old) => {
                        if *old != state {
                            *old = state;
                            changed = true;
                        }
                    }
                    None if room => {
                        map.insert(peer, state);
                        changed = true;
                    }
                    None => ignored += 1,
                }
            }
            changed
        });
        ignored
    }

    /// `PresenceRemoved`.
    pub(crate) fn remove(&self, peers: &[PeerId]) {
        self.peers.send_if_modified(|map| {
            let before = map.len();
            map.retain(|peer, _| !peers.contains(peer));
            map.len() != before
        });
    }

    /// The connection ended: nobody is visible any more.
    pub(crate) fn clear(&self) {
        self.peers.send_if_modified(|map| {
            let had = !map.is_empty();
            map.clear();
            had
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(user: &str) -> PresenceState {
        PresenceState {
            user: user.into(),
            color: "#ff8800".into(),
            cursor: None,
            extra: Vec::new(),
        }
    }

    #[test]
    fn updates_replace_removals_drop_and_self_is_hidden() {
        let book = PresenceBook::new(16);
        let rx = book.watch();
        book.update(
            PeerId(1),
            vec![(PeerId(1), state("me")), (PeerId(2), state("ann"))],
        );
        book.update(
            PeerId(1),
            vec![(PeerId(2), state("ann2")), (PeerId(3), state("bo"))],
        );
        let seen = rx.borrow().clone();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[&PeerId(2)].user, "ann2");
        book.remove(&[PeerId(2)]);
        assert_eq!(rx.borrow().keys().copied().collect::<Vec<_>>(), [PeerId(3)]);
        book.clear();
        assert!(rx.borrow().is_empty());
    }

    #[test]
    fn new_peers_beyond_the_cap_are_ignored_until_a_removal_frees_a_slot() {
        let book = PresenceBook::new(3);
        let rx = book.watch();
        let flood: Vec<_> = (1..=100_000u64)
            .map(|p| (PeerId(p), state(&format!("p{p}"))))
            .collect();
        assert_eq!(book.update(PeerId(0), flood), 99_997);
        let seen: Vec<u64> = rx.borrow().keys().map(|p| p.0).collect();
        assert_eq!(seen, [1, 2, 3], "the first peers keep their slots");
        // Known peers still update at the cap; new ones still wait.
        assert_eq!(
            book.update(
                PeerId(0),
                vec![(PeerId(2), state("two")), (PeerId(9), state("nine"))]
            ),
            1
        );
        assert_eq!(rx.borrow()[&PeerId(2)].user, "two");
        book.remove(&[PeerId(1)]);
        assert_eq!(book.update(PeerId(0), vec![(PeerId(9), state("nine"))]), 0);
        let seen: Vec<u64> = rx.borrow().keys().map(|p| p.0).collect();
        assert_eq!(seen, [2, 3, 9], "a removal frees a slot");
        // A cap of 0 is taken as 1.
        let tiny = PresenceBook::new(0);
        assert_eq!(
            tiny.update(
                PeerId(0),
                vec![(PeerId(1), state("a")), (PeerId(2), state("b"))]
            ),
            1
        );
    }

    #[test]
    fn cursors_follow_concurrent_edits_and_vanish_with_their_text() {
        use weft_core::ReplicaId;
        let mut a = Doc::new(ReplicaId::new(1));
        let mut b = Doc::new(ReplicaId::new(2));
        b.apply(
            &a.transact(|tx| tx.text("body")?.insert(0, "hello world"))
                .unwrap(),
        )
        .unwrap();
        let cursor = cursor_in(&b, "body", 6, 11).unwrap(); // "world"
        let mut s = state("bo");
        s.cursor = Some(cursor.clone());
        assert!(validate(&s).is_ok());
        a.transact(|tx| tx.text("body")?.insert(0, ">> ")).unwrap();
        assert_eq!(resolve_in(&a, &cursor), Some((9, 14)));
        a.transact(|tx| {
            tx.root().remove("body");
            Ok(())
        })
        .unwrap();
        a.transact(|tx| tx.text("body")?.insert(0, "new")).unwrap();
        assert_eq!(resolve_in(&a, &cursor), None, "a new generation");
        let empty = cursor_in(&Doc::new(ReplicaId::new(3)), "t", 4, 4).unwrap();
        assert_eq!(
            resolve_in(&Doc::new(ReplicaId::new(4)), &empty),
            Some((0, 0))
        );
        assert!(cursor_in(&a, "body", 0, 0).is_ok());
    }

    #[test]
    fn invalid_states_are_refused_locally() {
        assert!(validate(&state("ann")).is_ok());
        let mut bad = state("ann");
        bad.color = "red".into();
        assert!(matches!(validate(&bad), Err(Error::Presence(_))));
        let mut long = state("ann");
        long.extra = vec![0; 5000];
        assert!(validate(&long).is_err());
    }
}
