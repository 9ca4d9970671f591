//! Replays the sequential editing traces on one `Text` and prints timings,
//! next to diamond-types replaying the same patches on the same machine.
//! Run with `cargo run --release -p weft-tests --example replay [names]`.

use std::time::Instant;
use weft_core::{codec, ReplicaId, Text};
use weft_tests::traces;

fn main() {
    let names: Vec<String> = std::env::args().skip(1).collect();
    let names: Vec<&str> = if names.is_empty() {
        traces::SEQUENTIAL.to_vec()
    } else {
        names.iter().map(String::as_str).collect()
    };
    // REPLAY_ITERS=0 measures loading alone (for CPU-time subtraction).
    let iters: usize = std::env::var("REPLAY_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    for name in names {
        let trace = traces::load(name);
        let ops: usize = trace.txns.iter().map(|t| t.patches.len()).sum();
        let mut best = f64::MAX;
        let mut len = 0;
        let mut last = Text::new();
        for _ in 0..iters {
            let start = Instant::now();
            let mut text = Text::new();
            let r = ReplicaId::new(1);
            for txn in &trace.txns {
                for p in &txn.patches {
                    if p.1 > 0 {
                        text.delete(r, p.0, p.1);
                    }
                    if !p.2.is_empty() {
                        text.insert(r, p.0, &p.2);
                    }
                }
            }
            best = best.min(start.elapsed().as_secs_f64());
            len = text.len();
            assert_eq!(text.to_string(), trace.end_content);
            last = text;
        }
        println!(
            "{name}: {ops} patches, final length {len}, best of {iters}: {:.2} ms",
            best * 1e3
        );
        let mut dt_best = f64::MAX;
        let mut dt_doc = diamond_types::list::ListCRDT::new();
        for _ in 0..iters {
            let start = Instant::now();
            let mut doc = diamond_types::list::ListCRDT::new();
            let agent = doc.get_or_create_agent_id("a");
            for txn in &trace.txns {
                for p in &txn.patches {
                    if p.1 > 0 {
                        doc.delete_without_content(agent, p.0..p.0 + p.1);
                    }
                    if !p.2.is_empty() {
                        doc.insert(agent, p.0, &p.2);
                    }
                }
            }
            dt_best = dt_best.min(start.elapsed().as_secs_f64());
            assert_eq!(doc.branch.content().to_string(), trace.end_content);
            dt_doc = doc;
        }
        println!(
            "  diamond-types, same loop: best of {iters}: {:.2} ms (weft / dt = {:.2})",
            dt_best * 1e3,
            best / dt_best
        );
        // Snapshot size and load time, weft and diamond-types, median of
        // `runs` (at least 5).
        let runs = iters.max(5);
        let bytes = codec::encode(&last);
        let encode = median(runs, || {
            std::hint::black_box(codec::encode(&last));
        });
        let decode = median(runs, || {
            let back: Text = codec::decode(&bytes).expect("own encoding decodes");
            std::hint::black_box(back);
        });
        let back: Text = codec::decode(&bytes).expect("own encoding decodes");
        assert_eq!(back, last);
        assert_eq!(back.to_string(), trace.end_content);
        let dt_bytes = dt_doc
            .oplog
            .encode(diamond_types::list::encoding::ENCODE_FULL);
        let dt_encode = median(runs, || {
            std::hint::black_box(
                dt_doc
                    .oplog
                    .encode(diamond_types::list::encoding::ENCODE_FULL),
            );
        });
        let dt_load = median(runs, || {
            let doc = diamond_types::list::ListCRDT::load_from(&dt_bytes).expect("dt loads");
            std::hint::black_box(doc);
        });
        println!(
            "  encoded state: {} bytes (encode {:.2} ms, decode {:.2} ms); \
             diamond-types: {} bytes (encode {:.2} ms, load {:.2} ms); \
             size ratio {:.2}, load ratio {:.2}",
            bytes.len(),
            encode * 1e3,
            decode * 1e3,
            dt_bytes.len(),
            dt_encode * 1e3,
            dt_load * 1e3,
            bytes.len() as f64 / dt_bytes.len() as f64,
            decode / dt_load
        );
    }
}

/// Median wall time of `runs` calls of `f`, in seconds.
fn median(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}
