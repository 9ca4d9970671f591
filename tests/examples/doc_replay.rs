//! Times the automerge-paper trace through `Doc` transactions, one per trace
//! transaction (best of 5): `cargo run --release -p weft-tests --example doc_replay`.
use std::time::Instant;
use weft_core::{Doc, ReplicaId};
fn main() {
    let trace = weft_tests::traces::load("automerge-paper");
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t0 = Instant::now();
        let mut doc = Doc::new(ReplicaId::new(1));
        for txn in &trace.txns {
            let u = doc
                .transact(|tx| {
                    let mut t = tx.text("text")?;
                    for p in &txn.patches {
                        if p.1 > 0 {
                            t.delete(p.0, p.1)?;
                        }
                        if !p.2.is_empty() {
                            t.insert(p.0, &p.2)?;
                        }
                    }
                    Ok(())
                })
                .unwrap();
            std::hint::black_box(u);
        }
        best = best.min(t0.elapsed().as_secs_f64() * 1e3);
        assert_eq!(doc.text("text").unwrap().to_string(), trace.end_content);
    }
    println!("doc replay best {best:.1} ms");
}
