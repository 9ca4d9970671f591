//! SIGKILL crash test (`harness = false`: this file has its own `main`).
//!
//! Parent (run by `cargo test`): for each round, starts this same binary as
//! a child with `WEFT_PERSIST_CRASH_CHILD=<store path>`. The child opens the
//! store, loads two documents, and from two threads edits them in a loop:
//! it prints `SENT <doc> <update hex>`, appends the update, prints
//! `ACK <doc> <seq>`. The parent kills it with SIGKILL after a random number
//! of acknowledgements (sometimes at once, during open and recovery), then
//! reopens the store and checks, per document, that
//!
//! * every acknowledged update is in the loaded document (its version
//!   dominates the replay of the acknowledged updates), and
//! * the loaded document equals that replay, plus at most the one update
//!   per thread that was sent but not yet acknowledged when the kill came.
//!
//! Compaction runs with a threshold of 24 updates, so kills also land in
//! background compactions. `WEFT_CRASH_ROUNDS` (default 20) and
//! `WEFT_CRASH_SEED` make a run repeatable.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use weft_core::{Doc, ReplicaId};
use weft_persist::{CompactionPolicy, Options, SqliteStore, Store};

const CHILD_VAR: &str = "WEFT_PERSIST_CRASH_CHILD";
const DOCS: usize = 2;

fn options() -> Options {
    Options::default().with_compaction(CompactionPolicy {
        max_log_records: 24,
        max_log_bytes: 1 << 20,
        automatic: true,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn main() {
    match std::env::var(CHILD_VAR) {
        Ok(path) => child(&path),
        Err(_) => parent(),
    }
}

fn child(path: &str) {
    let store = SqliteStore::open(path, options()).expect("child: open");
    let out = std::sync::Arc::new(std::sync::Mutex::new(std::io::stdout()));
    std::thread::scope(|s| {
        for d in 0..DOCS {
            let (store, out) = (store.clone(), out.clone());
            s.spawn(move || {
                let id = format!("doc-{d}");
                let mut doc = store
                    .load(&id, ReplicaId::random())
                    .expect("child: load")
                    .unwrap_or_else(|| Doc::new(ReplicaId::random()));
                for i in 0..1_000_000u64 {
                    let update = doc
                        .transact(|tx| {
                            let len = tx.text("t")?.len();
                            tx.text("t")?.insert(len / 2, &format!("{i},"))?;
                            tx.counter("n")?.increment(1)?;
                            Ok(())
                        })
                        .expect("child: edit");
                    {
                        let mut o = out.lock().expect("stdout");
                        writeln!(o, "SENT {d} {}", hex(&update)).expect("stdout");
                        o.flush().expect("stdout");
                    }
                    let seq = store.append(&id, &update).expect("child: append").seq;
                    let mut o = out.lock().expect("stdout");
                    writeln!(o, "ACK {d} {seq}").expect("stdout");
                    o.flush().expect("stdout");
                }
            });
        }
    });
}

/// xorshift64*: enough randomness for kill points, reproducible from a seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[derive(Default)]
struct DocLog {
    acked: Vec<Vec<u8>>,
    in_flight: Option<Vec<u8>>,
}

fn parent() {
    let started = Instant::now();
    let rounds: usize = std::env::var("WEFT_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("WEFT_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    println!("crash test: {rounds} rounds, WEFT_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("crash.db");
    let exe = std::env::current_exe().expect("current_exe");
    let mut logs: Vec<DocLog> = (0..DOCS).map(|_| DocLog::default()).collect();
    let mut total_kills_mid_append = 0;

    for round in 0..rounds {
        let mut child = Command::new(&exe)
            .env(CHILD_VAR, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    // A line cut by the kill has no newline: not a report.
                    Ok(0) | Err(_) => break,
                    Ok(_) if line.last() == Some(&b'\n') => {
                        let s = String::from_utf8_lossy(&line).trim_end().to_owned();
                        if tx.send(s).is_err() {
                            break;
                        }
                    }
                    Ok(_) => break,
                }
            }
        });
        // 1 in 5 rounds: kill at once (during open, WAL recovery or load).
        let kill_after = if rng.next().is_multiple_of(5) {
            0
        } else {
            1 + rng.next() % 80
        };
        let mut acks = 0u64;
        let mut killed = false;
        let handle = |line: String, logs: &mut Vec<DocLog>| -> bool {
            let mut parts = line.splitn(3, ' ');
            let (tag, d) = (
                parts.next(),
                parts.next().and_then(|d| d.parse::<usize>().ok()),
            );
            let (Some(tag), Some(d)) = (tag, d) else {
                panic!("round {round}: unexpected child output {line:?}");
            };
            match tag {
                "SENT" => logs[d].in_flight = Some(unhex(parts.next().expect("update"))),
                "ACK" => {
                    let u = logs[d].in_flight.take().expect("ACK without SENT");
                    logs[d].acked.push(u);
                    return true;
                }
                _ => panic!("round {round}: unexpected child output {line:?}"),
            }
            false
        };
        if kill_after == 0 {
            child.kill().expect("kill");
            killed = true;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let timeout = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(timeout) {
                Ok(line) => {
                    if handle(line, &mut logs) {
                        acks += 1;
                        if !killed && acks >= kill_after {
                            child.kill().expect("kill");
                            killed = true;
                        }
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    panic!("round {round}: child made no progress for 30 s");
                }
            }
        }
        reader.join().expect("reader");
        let status = child.wait().expect("wait");
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                status.signal(),
                Some(9),
                "round {round}: the child must die by SIGKILL, not {status:?}"
            );
        }

        // Reopen (WAL recovery) and check every document.
        let store = SqliteStore::open(&path, options()).expect("reopen after kill");
        for (d, log) in logs.iter_mut().enumerate() {
            let id = format!("doc-{d}");
            let Some(loaded) = store.load(&id, ReplicaId::new(0)).expect("load after kill") else {
                assert!(
                    log.acked.is_empty(),
                    "round {round}: {id} lost all its acked updates"
                );
                // An in-flight first update was never stored: the next
                // child starts without it.
                log.in_flight = None;
                continue;
            };
            let mut replayed = Doc::new(ReplicaId::new(1));
            for u in &log.acked {
                replayed.apply(u).expect("replay acked");
            }
            assert!(
                loaded.version().dominates(replayed.version()),
                "round {round}: {id} is missing acknowledged updates (seed {seed})"
            );
            if loaded != replayed {
                let u = log.in_flight.take().unwrap_or_else(|| {
                    panic!("round {round}: {id} differs from the replay of acked updates (seed {seed})")
                });
                replayed.apply(&u).expect("replay in-flight");
                assert!(
                    loaded == replayed,
                    "round {round}: {id} differs from acked + in-flight (seed {seed})"
                );
                // Committed before the kill, just not acknowledged: it is
                // part of the history from now on.
                log.acked.push(u);
                total_kills_mid_append += 1;
            } else {
                log.in_flight = None;
            }
        }
        let report = store.check().expect("check");
        assert!(
            report.problems.is_empty(),
            "round {round}: {:?}",
            report.problems
        );
        let background = store.take_background_errors();
        assert!(background.is_empty(), "round {round}: {background:?}");
    }
    let acked: usize = logs.iter().map(|l| l.acked.len()).sum();
    assert!(acked > 0, "no update was ever acknowledged");
    println!(
        "crash test: {rounds} SIGKILL rounds, {acked} durable updates verified \
         ({total_kills_mid_append} committed-but-unacked found), {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
}
