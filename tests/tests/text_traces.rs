//! Real editing traces replayed through `weft_core::Text` (issue 3).
//!
//! Sequential traces replay on one replica; concurrent traces replay with one
//! replica per agent, shipping each transaction's delta to the other agents
//! only once the transaction's causal ancestors have been applied there, as
//! a real network would. Every replay must end in the trace's `endContent`.

use weft_core::{codec, Crdt, ReplicaId, Text, TextDelta, TextOp, VersionVector};
use weft_tests::traces::{self, Trace, Txn};

/// Applies one txn's patches locally; returns the combined delta.
fn edit(text: &mut Text, replica: ReplicaId, txn: &Txn) -> TextDelta {
    let mut delta = TextDelta::new();
    for p in &txn.patches {
        if p.1 > 0 {
            delta.merge(&text.delete(replica, p.0, p.1));
        }
        if !p.2.is_empty() {
            delta.merge(&text.insert(replica, p.0, &p.2));
        }
    }
    delta
}

#[test]
fn sequential_traces_replay_to_their_end_content() {
    for name in traces::SEQUENTIAL {
        let trace = traces::load(name);
        let mut text = Text::new();
        let r = ReplicaId::new(1);
        let mut ops = 0u64;
        for txn in &trace.txns {
            ops += edit(&mut text, r, txn).len();
        }
        assert_eq!(text.to_string(), trace.end_content, "{name}");
        assert_eq!(text.len(), trace.end_content.chars().count());
        assert_eq!(
            text.version().get(r),
            ops,
            "{name}: one counter per char op"
        );
        // The whole history ships and decodes to an equal replica.
        let full = text.delta_since(&VersionVector::new());
        let mut copy = Text::new();
        copy.apply(&codec::decode(&codec::encode(&full)).expect("own delta decodes"));
        assert_eq!(copy, text, "{name}");
        let state: Text = codec::decode(&codec::encode(&text)).expect("own state decodes");
        assert_eq!(state, text, "{name}");
    }
}

/// Replays a concurrent trace; returns the per-agent replicas, unsynced.
/// Agent 0's replica applies remote deltas with events, mirrored in a String.
fn replay_concurrent(trace: &Trace) -> Vec<Text> {
    let agents = trace.num_agents.max(1);
    let mut replicas = vec![Text::new(); agents];
    let mut applied = vec![vec![false; trace.txns.len()]; agents];
    let mut deltas: Vec<TextDelta> = Vec::with_capacity(trace.txns.len());
    let mut mirror = String::new();
    for (i, txn) in trace.txns.iter().enumerate() {
        let a = txn.agent;
        // Collect the unapplied ancestors of txn i on agent a.
        let mut stack: Vec<usize> = txn.parents.clone();
        let mut missing = Vec::new();
        while let Some(p) = stack.pop() {
            if !applied[a][p] {
                applied[a][p] = true;
                missing.push(p);
                stack.extend(&trace.txns[p].parents);
            }
        }
        missing.sort_unstable();
        for p in missing {
            if a == 0 {
                let ops = replicas[0].apply_with_events(&deltas[p]);
                TextOp::apply_all(&ops, &mut mirror);
            } else {
                replicas[a].apply(&deltas[p]);
            }
        }
        let delta = edit(&mut replicas[a], ReplicaId::new(a as u64 + 1), txn);
        if a == 0 {
            mirror = replicas[0].to_string();
        }
        applied[a][i] = true;
        deltas.push(delta);
        assert_eq!(replicas[a].pending_ops(), 0, "txn {i}: causal delivery");
    }
    assert_eq!(
        mirror,
        replicas[0].to_string(),
        "events reconstruct agent 0"
    );
    replicas
}

#[test]
fn concurrent_traces_converge_to_their_end_content() {
    for name in traces::CONCURRENT {
        let trace = traces::load(name);
        let mut replicas = replay_concurrent(&trace);
        // Full sync: everyone joins everyone.
        let snapshot = replicas.clone();
        for r in &mut replicas {
            for other in &snapshot {
                r.join(other);
            }
        }
        for r in &replicas {
            assert_eq!(r.to_string(), trace.end_content, "{name}");
            assert_eq!(r, &replicas[0]);
        }
        // Shipping one replica's whole history over the wire gives the same.
        let bytes = codec::encode(&replicas[0].delta_since(&VersionVector::new()));
        let mut fresh = Text::new();
        fresh.apply(&codec::decode(&bytes).expect("own delta decodes"));
        assert_eq!(fresh.to_string(), trace.end_content, "{name}");
    }
}
