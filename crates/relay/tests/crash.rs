//! kill -9 the relay binary mid-stream, restart it on the same data
//! directory: every update it acknowledged is there.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{append, new_doc, TestClient};
use weft_protocol::Frame;

fn start(data: &std::path::Path) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft-relay"))
        .args(["--listen", "127.0.0.1:0", "--insecure-no-auth", "--data"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn weft-relay");
    let addr = common::listening(&mut child);
    (child, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_update_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked_markers: Vec<String> = Vec::new();
    for round in 0..3 {
        let (mut child, addr) = start(dir.path());
        // Everything acknowledged in earlier rounds is there after restart.
        let mut check = TestClient::connect(addr, None).await;
        let mut seen = new_doc();
        check.subscribe("crash", &mut seen).await;
        let text = seen.text("t").map(|t| t.to_string()).unwrap_or_default();
        for m in &acked_markers {
            assert!(
                text.contains(m.as_str()),
                "round {round}: acknowledged {m} lost"
            );
        }
        drop(check);

        // A writer streams updates; the relay is killed while they flow.
        let mut w = TestClient::connect(addr, None).await;
        let mut doc = new_doc();
        w.subscribe("crash", &mut doc).await;
        let mut in_flight: HashMap<u64, String> = HashMap::new();
        let started = Instant::now();
        let mut acks_this_round = 0;
        let mut i = 0;
        let mut killed = false;
        while started.elapsed() < Duration::from_secs(20) {
            if !killed && (acks_this_round >= 150 || started.elapsed() > Duration::from_secs(5)) {
                child.kill().expect("SIGKILL");
                killed = true;
            }
            if !killed {
                // bursts, so updates are in flight when the kill lands
                for _ in 0..16 {
                    i += 1;
                    let marker = format!("[{round}.{i}]");
                    let u = append(&mut doc, &marker);
                    let seq = w.update("crash", u).await;
                    in_flight.insert(seq, marker);
                }
            }
            match w
                .try_recv(Duration::from_millis(if killed { 500 } else { 2 }))
                .await
            {
                Some(Frame::Ack { seq, .. }) => {
                    if let Some(m) = in_flight.remove(&seq) {
                        acked_markers.push(m);
                        acks_this_round += 1;
                    }
                }
                Some(other) => panic!("unexpected {other:?}"),
                None if killed => break,
                None => {}
            }
        }
        eprintln!(
            "round {round}: {acks_this_round} acked, {} unacked at the kill",
            in_flight.len()
        );
        assert!(killed, "the relay was never killed");
        assert!(
            acks_this_round > 0,
            "nothing was acknowledged before the kill"
        );
        let _ = child.wait();
    }
    // A last restart holds every acknowledged update.
    let (mut child, addr) = start(dir.path());
    let mut check = TestClient::connect(addr, None).await;
    let mut seen = new_doc();
    check.subscribe("crash", &mut seen).await;
    let text = seen.text("t").unwrap().to_string();
    for m in &acked_markers {
        assert!(text.contains(m.as_str()), "acknowledged {m} lost");
    }
    let _ = child.kill();
    let _ = child.wait();
}
