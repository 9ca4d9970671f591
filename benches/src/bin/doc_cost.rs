//! The cost of the document layer on the editing traces: each sequential
//! trace replayed as raw `Text` edits and as one `Doc` transaction per trace
//! transaction (each returning its encoded update), alternating in one
//! process so both see the same machine. Prints the median of
//! `WEFT_BENCH_RUNS` runs (default 9) and the ratio, the issue 12 target
//! being `Doc` ≤ 2× raw `Text`. Then each concurrent trace's `Doc` updates
//! received by a fresh replica in four delivery orders (the target: each
//! within 2× of the causal order).
//!
//! `cargo run --profile bench -p weft-benches --bin doc_cost [filter]`
//! (also the binary to profile: `perf record -g target/release/doc_cost`).

use std::time::{Duration, Instant};
use weft_benches::traces::{self, SeqTrace};
use weft_benches::{doc_replay, orders};

fn text(trace: &SeqTrace) -> Duration {
    let t0 = Instant::now();
    let t = doc_replay::replay_text(trace);
    let took = t0.elapsed();
    assert_eq!(t.len(), trace.end_content.chars().count());
    took
}

fn doc(trace: &SeqTrace) -> Duration {
    let t0 = Instant::now();
    let doc = doc_replay::replay(trace);
    let took = t0.elapsed();
    let content = doc.text("text").expect("a text").to_string();
    assert_eq!(content, trace.end_content);
    took
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort_unstable();
    v[v.len() / 2].as_secs_f64() * 1e3
}

fn main() {
    let runs: usize = std::env::var("WEFT_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(9);
    let filter = std::env::args().nth(1).unwrap_or_default();
    println!("| trace | raw Text ms | Doc ms | Doc ÷ Text | Doc µs per txn |");
    println!("|---|---:|---:|---:|---:|");
    for name in ["automerge-paper", "seph-blog1"] {
        if !name.contains(&filter) {
            continue;
        }
        let trace = traces::sequential(name);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            a.push(text(&trace));
            b.push(doc(&trace));
        }
        let (t, d) = (median(a), median(b));
        println!(
            "| {name} | {t:.2} | {d:.2} | {:.2}× | {:.3} |",
            d / t,
            d * 1e3 / trace.txns.len() as f64
        );
    }
    println!();
    println!("| trace | delivery order | apply all ms | vs causal | most waiting at once |");
    println!("|---|---|---:|---:|---:|");
    for name in ["friendsforever", "clownschool"] {
        if !name.contains(&filter) {
            continue;
        }
        let trace = traces::concurrent(name);
        let updates = orders::updates(&trace, &trace.replay_plan());
        let plans: Vec<Vec<usize>> = orders::ORDERS
            .iter()
            .map(|o| orders::order(&updates, o))
            .collect();
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); plans.len()];
        let mut most = vec![0; plans.len()];
        for _ in 0..runs {
            for (k, plan) in plans.iter().enumerate() {
                let t0 = Instant::now();
                let (content, m) = orders::receive(&updates, plan);
                times[k].push(t0.elapsed());
                assert_eq!(content, trace.end_content, "{name} {}", orders::ORDERS[k]);
                most[k] = m;
            }
        }
        let medians: Vec<f64> = times.into_iter().map(median).collect();
        for (k, o) in orders::ORDERS.iter().enumerate() {
            println!(
                "| {name} | {o} | {:.2} | {:.2}× | {} |",
                medians[k],
                medians[k] / medians[0],
                most[k]
            );
        }
    }
}
