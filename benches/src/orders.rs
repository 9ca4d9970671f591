//! A concurrent trace through `Doc`: one replica per agent makes one update
//! per transaction (receiving its parents' updates first), then a fresh
//! replica receives every update in a chosen order under the default limits
//! (issue 12: any delivery order converges, at about the causal order's cost).

use crate::traces::{ConcTrace, Step};
use weft_core::{Doc, ReplicaId};

/// Each transaction's update and its agent, in trace (causal) order.
pub fn updates(trace: &ConcTrace, plan: &[Step]) -> Vec<(usize, Vec<u8>)> {
    let mut docs: Vec<Doc> = (0..trace.num_agents)
        .map(|a| Doc::new(ReplicaId::new(a as u64 + 1)))
        .collect();
    let mut made: Vec<Option<Vec<u8>>> = vec![None; trace.txns.len()];
    for step in plan {
        match *step {
            Step::Local { txn } => {
                let t = &trace.txns[txn];
                let doc = &mut docs[t.agent];
                let before = doc.version().clone();
                let u = doc
                    .transact(|tx| crate::doc_replay::apply_patches(tx, &t.patches))
                    .expect("trace patches are in range");
                if doc.version() != &before {
                    made[txn] = Some(u);
                }
            }
            Step::Deliver { to, txn } => {
                if let Some(u) = &made[txn] {
                    docs[to].apply(u).expect("causal delivery");
                }
            }
        }
    }
    made.into_iter()
        .enumerate()
        .filter_map(|(i, u)| u.map(|u| (trace.txns[i].agent, u)))
        .collect()
}

/// The delivery orders measured.
pub const ORDERS: [&str; 4] = ["causal", "agent by agent", "reversed", "shuffled"];

/// Indices of `updates` in the named order (shuffles are seeded).
pub fn order(updates: &[(usize, Vec<u8>)], name: &str) -> Vec<usize> {
    let n = updates.len();
    match name {
        "causal" => (0..n).collect(),
        "reversed" => (0..n).rev().collect(),
        "agent by agent" => {
            let agents = updates.iter().map(|u| u.0).max().map_or(0, |m| m + 1);
            // The last agent's session first: its edits depend the most
            // on what has not arrived yet.
            (0..agents)
                .rev()
                .flat_map(|a| (0..n).filter(move |&i| updates[i].0 == a))
                .collect()
        }
        _ => {
            let mut v: Vec<usize> = (0..n).collect();
            let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
            for k in (1..n).rev() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                v.swap(k, (x % (k as u64 + 1)) as usize);
            }
            v
        }
    }
}

/// Applies every update in `order` to a fresh replica (default limits);
/// returns the text and the most updates that waited at once.
pub fn receive(updates: &[(usize, Vec<u8>)], order: &[usize]) -> (String, usize) {
    let mut doc = Doc::new(ReplicaId::new(1000));
    let mut most = 0;
    for &i in order {
        let r = doc
            .apply(&updates[i].1)
            .expect("default limits hold any order");
        most = most.max(r.pending);
    }
    assert_eq!(doc.pending_updates(), 0, "everything applied");
    (doc.text("text").expect("a text").to_string(), most)
}
