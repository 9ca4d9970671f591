//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod services;

use weft_core::{Doc, ReplicaId};

/// `n` edits on `doc` (text, counter, set), returning each update.
pub fn edits(doc: &mut Doc, n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            doc.transact(|tx| {
                let len = tx.text("body")?.len();
                tx.text("body")?.insert(len.min(i % 7), &format!("w{i} "))?;
                tx.counter("edits")?.increment(1)?;
                if i % 5 == 0 {
                    tx.set::<u64>("tags")?.add(&(i as u64))?;
                }
                Ok(())
            })
            .expect("edit")
        })
        .collect()
}

/// The document obtained by applying `updates` in order to an empty one.
pub fn replay(updates: &[Vec<u8>]) -> Doc {
    let mut doc = Doc::new(ReplicaId::new(99));
    for u in updates {
        doc.apply(u).expect("replay");
    }
    doc
}
