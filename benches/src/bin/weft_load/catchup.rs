//! Catch-up: a document from many acked inserts, then fresh clients catching up on it.

use super::*;

#[derive(Debug)]
pub(crate) struct CatchupParams {
    pub(crate) inserts: u64,
    pub(crate) chars: usize,
    pub(crate) window: usize,
    pub(crate) random: bool,
    pub(crate) fresh_clients: usize,
}

pub(crate) async fn catchup(relay: &Relay, p: &CatchupParams, run_id: &str) -> Res<()> {
    let addr = relay.addr();
    let doc_id = DocId::new(format!("catchup-{run_id}"))?;
    let (mut ws, _) = connect(addr).await?;
    subscribe(&mut ws, &doc_id, &VersionVector::new()).await?;
    let mut doc = Doc::new(ReplicaId::random());
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next_pos = || {
        // xorshift64: a fixed, seeded sequence of positions.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // Make the updates first so the writer's own editing is not in the
    // ingest window.
    let mut updates = Vec::with_capacity(p.inserts as usize);
    for _ in 1..=p.inserts {
        // Pseudo-random lowercase letters: about as compressible as prose,
        // unlike digits (the encoding compresses text content).
        let text: String = (0..p.chars)
            .map(|_| char::from(b'a' + (next_pos() % 26) as u8))
            .collect();
        let pos = p.random.then(&mut next_pos);
        updates.push(insert_at(&mut doc, pos, &text)?);
    }
    let update_bytes: usize = updates.iter().map(Vec::len).sum();
    let cpu0 = relay.cpu();
    let t0 = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(MAX_SECS);
    let mut next = 0usize; // index of the next update to send
    let mut in_flight = 0usize;
    let mut acked = 0u64;
    let mut retry: Vec<u64> = Vec::new();
    let mut next_retry = tokio::time::Instant::now();
    let mut errors = Errors::new();
    while acked < p.inserts {
        tokio::select! {
            biased;
            _ = std::future::ready(()), if in_flight < p.window && next < updates.len() => {
                let seq = next as u64 + 1;
                send(&mut ws, &Frame::Update { doc: doc_id.clone(), seq, update: updates[next].clone() }).await?;
                next += 1;
                in_flight += 1;
            }
            _ = sleep_until(next_retry), if !retry.is_empty() => {
                for seq in std::mem::take(&mut retry) {
                    let update = updates[seq as usize - 1].clone();
                    send(&mut ws, &Frame::Update { doc: doc_id.clone(), seq, update }).await?;
                }
            }
            msg = recv(&mut ws) => match msg? {
                Some((Frame::Ack { .. }, _)) => {
                    acked += 1;
                    in_flight = in_flight.saturating_sub(1);
                }
                Some((Frame::Error { code, seq, message, .. }, _)) => {
                    note_error(&mut errors, code);
                    match (code.scope(), seq) {
                        (ErrorScope::UpdateRetry, Some(seq)) => {
                            retry.push(seq);
                            next_retry = tokio::time::Instant::now() + Duration::from_millis(20);
                        }
                        _ => return Err(format!("catchup writer got {} ({}): {message}", code.name(), code.code()).into()),
                    }
                }
                Some((Frame::Ping { nonce }, _)) => { send(&mut ws, &Frame::Pong { nonce }).await?; }
                Some(_) => {}
                None => return Err("catchup writer: relay closed the connection".into()),
            },
            _ = sleep_until(deadline) => return Err(format!("catchup: only {acked}/{} acked in {MAX_SECS} s", p.inserts).into()),
        }
    }
    let ingest_wall = t0.elapsed();
    let ingest_cpu = cpu_delta(cpu0, relay.cpu());
    let text = doc.text("body")?.to_string();
    let chars = text.chars().count();

    // Fresh clients, one after the other: Hello first (not timed), then
    // Subscribe with an empty version → Synced applied.
    let mut times = Vec::new();
    let mut recv_times = Vec::new();
    let mut synced_bytes = 0usize;
    let mut update_len = 0usize;
    for _ in 0..p.fresh_clients {
        let (mut fresh, _) = connect(addr).await?;
        let t = Instant::now();
        let (update, n) = subscribe(&mut fresh, &doc_id, &VersionVector::new()).await?;
        let received = t.elapsed();
        let mut d = Doc::new(ReplicaId::random());
        d.apply(&update)?;
        let elapsed = t.elapsed();
        recv_times.push(received);
        if d.text("body")?.to_string() != text {
            return Err("catchup: the fresh client's text differs from the writer's".into());
        }
        times.push(elapsed);
        synced_bytes = n;
        update_len = update.len();
        let _ = fresh.close(None).await;
    }
    let _ = ws.close(None).await;
    // For reference: the same state through the snapshot path (save/load)
    // instead of diff/apply, median of 5.
    let snapshot = doc.save();
    let mut load_times: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let loaded = Doc::load(&snapshot, ReplicaId::random());
            let e = t.elapsed();
            drop(loaded);
            e
        })
        .collect();
    load_times.sort();
    let first = times[0];
    let mut sorted = times.clone();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    let min = sorted[0];
    recv_times.sort();
    let recv_median = recv_times[recv_times.len() / 2];
    println!(
        "| catchup | {} inserts × {} random letters at {} positions ({chars}-char doc; updates {:.0} KB in total), window {} | fresh client Subscribe → Synced applied: first {:.2} ms, median {:.2} ms, min {:.2} ms of {} (median Subscribe → Synced received {:.2} ms, the rest is the client's apply); Synced frame {:.1} KB (update {:.1} KB); for reference the writer's Doc::save is {:.1} KB and Doc::load takes {:.2} ms here |",
        p.inserts,
        p.chars,
        if p.random { "random" } else { "appended" },
        update_bytes as f64 / 1024.0,
        p.window,
        first.as_secs_f64() * 1e3,
        median.as_secs_f64() * 1e3,
        min.as_secs_f64() * 1e3,
        times.len(),
        recv_median.as_secs_f64() * 1e3,
        synced_bytes as f64 / 1024.0,
        update_len as f64 / 1024.0,
        snapshot.len() as f64 / 1024.0,
        load_times[2].as_secs_f64() * 1e3,
    );
    println!(
        "| ingest | the same {} inserts, sent with {} in flight, each acked | relay CPU (utime+stime) {} from first send to last ack; wall {:.3} s ({:.0} updates/s); errors: {} |",
        p.inserts,
        p.window,
        fmt_dur(ingest_cpu),
        ingest_wall.as_secs_f64(),
        p.inserts as f64 / ingest_wall.as_secs_f64(),
        fmt_errors(&errors),
    );
    Ok(())
}
