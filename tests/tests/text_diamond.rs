//! Differential test: `weft_core::Text` against diamond-types (issue 3).
//!
//! diamond-types integrates concurrent inserts with YjsMod, which the Fugue
//! paper (Weidner & Kleppmann 2023) shows orders exactly like FugueMax, and
//! breaks ties between sibling runs by agent name then sequence number, as
//! weft does by replica id then counter. Agent `k` is named `"k"` and is
//! replica `k`, so both tie-breaks agree. Every replica of both systems must
//! show the same text after every step of a random concurrent history.

use diamond_types::list::{Branch, OpLog};
use proptest::prelude::*;
use weft_core::{Crdt, ReplicaId, Text};

#[derive(Clone, Debug)]
enum Step {
    Insert(usize, usize, String),
    Delete(usize, usize, usize),
    /// `.0` merges everything `.1` has seen.
    Sync(usize, usize),
}

fn step(n: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..n, any::<usize>(), "[a-d😀]{1,3}").prop_map(|(r, p, s)| Step::Insert(r, p, s)),
        1 => (0..n, any::<usize>(), 1usize..4).prop_map(|(r, p, k)| Step::Delete(r, p, k)),
        2 => (0..n, 0..n).prop_map(|(a, b)| Step::Sync(a, b)),
    ]
}

proptest! {
    #[test]
    fn ordering_matches_diamond_types(
        n in 2usize..=4,
        steps in prop::collection::vec(step(4), 1..50),
    ) {
        let mut oplog = OpLog::new();
        let agents: Vec<_> = (0..n)
            .map(|k| oplog.get_or_create_agent_id(&(k + 1).to_string()))
            .collect();
        let mut dt: Vec<Branch> = (0..n).map(|_| Branch::new()).collect();
        let mut weft: Vec<Text> = vec![Text::new(); n];
        for s in &steps {
            match s {
                Step::Insert(r, p, text) => {
                    let r = r % n;
                    let pos = p % (weft[r].len() + 1);
                    weft[r].insert(ReplicaId::new(r as u64 + 1), pos, text);
                    dt[r].insert(&mut oplog, agents[r], pos, text);
                }
                Step::Delete(r, p, k) => {
                    let r = r % n;
                    let len = weft[r].len();
                    if len == 0 {
                        continue;
                    }
                    let pos = p % len;
                    let k = (*k).min(len - pos);
                    weft[r].delete(ReplicaId::new(r as u64 + 1), pos, k);
                    dt[r].delete(&mut oplog, agents[r], pos..pos + k);
                }
                Step::Sync(a, b) => {
                    let (a, b) = (a % n, b % n);
                    if a == b {
                        continue;
                    }
                    let other = weft[b].clone();
                    weft[a].join(&other);
                    let version = dt[b].local_version();
                    dt[a].merge(&oplog, &version);
                }
            }
            for r in 0..n {
                prop_assert_eq!(weft[r].to_string(), dt[r].content().to_string(), "replica {}", r);
            }
        }
    }
}
