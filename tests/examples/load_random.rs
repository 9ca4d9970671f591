//! Loading a text built from 100k single-char inserts at pseudo-random
//! positions by one replica (the worst case for run-length encoding).
//! Run with `cargo run --release -p weft-tests --example load_random`;
//! `TRACE=automerge-paper` loads that trace's final state instead, and
//! `LOADS=n` sets how many decodes are timed (for profiling).

use std::time::Instant;
use weft_core::{codec, ReplicaId, Text};

fn main() {
    let n: usize = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let r = ReplicaId::new(1);
    let mut text = Text::new();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let trace = std::env::var("TRACE").ok();
    let loads: usize = std::env::var("LOADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(11);
    let start = Instant::now();
    if let Some(name) = &trace {
        let trace = weft_tests::traces::load(name);
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
    }
    for i in 0..if trace.is_some() { 0 } else { n } {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let pos = (x % (text.len() as u64 + 1)) as usize;
        let ch = char::from(b'a' + (i % 26) as u8);
        text.insert(r, pos, ch.encode_utf8(&mut [0; 4]));
    }
    let build = start.elapsed().as_secs_f64();
    let bytes = codec::encode(&text);
    let mut times: Vec<f64> = (0..loads)
        .map(|_| {
            let start = Instant::now();
            let back: Text = codec::decode(&bytes).expect("own encoding decodes");
            std::hint::black_box(back);
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let back: Text = codec::decode(&bytes).expect("own encoding decodes");
    assert_eq!(back, text);
    let what = trace.unwrap_or_else(|| format!("{n} random single-char inserts"));
    println!(
        "{what}: build {:.2} ms, encoded {} bytes, decode median {:.2} ms",
        build * 1e3,
        bytes.len(),
        times[loads / 2] * 1e3
    );
}
