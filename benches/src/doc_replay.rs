//! Editing traces replayed by weft as an editor drives it: through `Doc`
//! (one transaction per trace transaction, each returning its update) and
//! through a raw `Text` (one call per patch, each delta made and dropped).

use crate::traces::{Patch, SeqTrace};
use std::hint::black_box;
use weft_core::doc::Transaction;
use weft_core::{Doc, DocError, ReplicaId, Text};

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

/// A sequential trace replayed as raw `Text` edits by one replica; the
/// delta a real editor would ship is made and dropped.
pub fn replay_text(trace: &SeqTrace) -> Text {
    let mut t = Text::new();
    let r = ReplicaId::new(1);
    for txn in &trace.txns {
        for p in txn {
            if p.del > 0 {
                black_box(t.delete(r, p.pos, p.del));
            }
            if !p.ins.is_empty() {
                black_box(t.insert(r, p.pos, &p.ins));
            }
        }
    }
    t
}
