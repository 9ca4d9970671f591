//! Who may author each replica's transactions in a document.
//!
//! A replica id is bound to the token subject (`sub`) that first sent one
//! of its transactions to this relay, durably, before that update is
//! acknowledged. From then on only connections of that subject may bring
//! the relay *new* transactions of the replica (`ReplicaNotOwned`, 253,
//! otherwise), so no holder of another token can pre-empt a writer's
//! `(replica, counter)` and have the real transaction dropped as a
//! duplicate. Transactions the relay already holds may be sent by anyone:
//! `Doc::apply` checks that they match what is held (`Conflict`).
//!
//! Bindings live in the store as a weft document of their own under
//! `owners/{doc}` (a key no client can name: document ids on the wire
//! cannot contain `/`), in a map `owners` from replica id (hex) to subject:
//! checksummed, compacted and encrypted like every other record.

use std::collections::HashMap;
use std::sync::Arc;

use weft_core::{Doc, ReplicaId, Update};
use weft_persist::Store;

/// The store key of `doc`'s bindings.
fn key(doc: &str) -> String {
    format!("owners/{doc}")
}

/// The map inside the bindings document.
const MAP: &str = "owners";

/// One document's replica bindings.
#[derive(Debug)]
pub(crate) struct Owners {
    doc: Doc,
    bound: HashMap<ReplicaId, Arc<str>>,
}

/// What [`Owners::check`] decided about an update.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every new transaction belongs to the sender (some replicas may still
    /// need binding: see [`Owners::bind`]).
    Allowed(Vec<ReplicaId>),
    /// New transactions of a replica bound to another subject.
    NotOwned(ReplicaId),
}

impl Owners {
    /// Loads `doc`'s bindings (blocking: call off the async workers).
    pub(crate) fn load(store: &dyn Store, doc: &str) -> Result<Owners, String> {
        let replica = ReplicaId::try_random().map_err(|e| e.to_string())?;
        let loaded = store
            .load(&key(doc), replica)
            .map_err(|e| format!("replica bindings: {e}"))?;
        let doc = loaded.unwrap_or_else(|| Doc::new(replica));
        let mut bound = HashMap::new();
        if let Ok(map) = doc.map(MAP) {
            for (k, _) in map.keys() {
                let Ok(id) = u64::from_str_radix(&k, 16) else {
                    continue;
                };
                if let Ok(Some(subject)) = map.register::<String>(&k) {
                    bound.insert(ReplicaId::new(id), Arc::from(subject));
                }
            }
        }
        Ok(Owners { doc, bound })
    }

    /// Whether `subject` may bring the new transactions of `update` to a
    /// document at `have`; lists the replicas to bind first.
    pub(crate) fn check(
        &self,
        update: &Update,
        have: &weft_core::VersionVector,
        subject: &str,
    ) -> Verdict {
        let mut unbound = Vec::new();
        for (replica, range) in update.authors() {
            if *range.end() <= have.get(replica) {
                continue; // nothing new of this replica
            }
            match self.bound.get(&replica) {
                Some(owner) if &**owner != subject => return Verdict::NotOwned(replica),
                Some(_) => {}
                None => unbound.push(replica),
            }
        }
        Verdict::Allowed(unbound)
    }

    /// The update that binds `replicas` to `subject` (to be stored before
    /// anything that relies on it is acknowledged); `None` if all are
    /// already bound.
    pub(crate) fn bind(&mut self, replicas: &[ReplicaId], subject: &Arc<str>) -> Option<Vec<u8>> {
        let fresh: Vec<ReplicaId> = replicas
            .iter()
            .copied()
            .filter(|r| !self.bound.contains_key(r))
            .collect();
        if fresh.is_empty() {
            return None;
        }
        let update = self
            .doc
            .transact(|tx| {
                let mut map = tx.map(MAP)?;
                for r in &fresh {
                    map.put(&format!("{:016x}", r.get()), &**subject)?;
                }
                Ok(())
            })
            .ok()?;
        for r in fresh {
            self.bound.insert(r, subject.clone());
        }
        Some(update)
    }

    /// The store key bindings of `doc` are appended under.
    pub(crate) fn store_key(doc: &str) -> String {
        key(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_core::doc::Limits;
    use weft_persist::MemoryStore;

    fn edit(doc: &mut Doc) -> Update {
        let bytes = doc.transact(|tx| tx.counter("n")?.increment(1)).unwrap();
        Update::decode(bytes, &Limits::default()).unwrap()
    }

    #[test]
    fn first_sender_owns_a_replica_durably() {
        let store = MemoryStore::new();
        let mut owners = Owners::load(&store, "d").unwrap();
        let mut alice = Doc::new(ReplicaId::new(7));
        let u1 = edit(&mut alice);
        let have = weft_core::VersionVector::new();
        let Verdict::Allowed(unbound) = owners.check(&u1, &have, "alice") else {
            panic!("alice may write her replica");
        };
        assert_eq!(unbound, vec![ReplicaId::new(7)]);
        let subject: Arc<str> = Arc::from("alice");
        let record = owners.bind(&unbound, &subject).unwrap();
        store.append(&Owners::store_key("d"), &record).unwrap();
        assert_eq!(owners.bind(&unbound, &subject), None, "already bound");

        let reloaded = Owners::load(&store, "d").unwrap();
        let u2 = edit(&mut alice);
        assert_eq!(
            reloaded.check(&u2, &have, "mallory"),
            Verdict::NotOwned(ReplicaId::new(7))
        );
        assert_eq!(
            reloaded.check(&u2, &have, "alice"),
            Verdict::Allowed(vec![])
        );
        // Transactions the relay already has may be resent by anyone.
        let mut have = weft_core::VersionVector::new();
        have.set(ReplicaId::new(7), 2);
        assert_eq!(
            reloaded.check(&u2, &have, "mallory"),
            Verdict::Allowed(vec![])
        );
    }
}
