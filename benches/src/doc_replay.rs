//! Editing traces through `Doc`, the way an editor embedding weft drives it:
//! one transaction per trace transaction, each returning its update.

use crate::traces::{Patch, SeqTrace};
use std::hint::black_box;
use weft_core::doc::Transaction;
use weft_core::{Doc, DocError, ReplicaId};

/// One trace transaction's patches as edits of the text named `"text"`.
pub fn apply_patches(tx: &mut Transaction<'_>, patches: &[Patch]) -> Result<(), DocError> {
    let mut text = tx.text("text")?;
    for p in patches {
        if p.del > 0 {
            text.delete(p.pos, p.del)?;
        }
        if !p.ins.is_empty() {
            text.insert(p.pos, &p.ins)?;
        }
    }
    Ok(())
}

/// A sequential trace replayed by one replica, one `Doc` transaction per
/// trace transaction; each update is made and dropped.
pub fn replay(trace: &SeqTrace) -> Doc {
    let mut doc = Doc::new(ReplicaId::new(1));
    for txn in &trace.txns {
        let update = doc.transact(|tx| apply_patches(tx, txn));
        black_box(update.expect("trace patches are in range"));
    }
    doc
}
