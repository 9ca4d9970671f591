//! Idle: N subscribed connections; time to connect, relay memory per connection.

use super::*;

#[derive(Debug)]
pub(crate) struct IdleParams {
    pub(crate) connections: usize,
    pub(crate) docs: usize,
    pub(crate) concurrency: usize,
    pub(crate) hold: Duration,
}

pub(crate) async fn idle(relay: &Relay, p: &IdleParams, run_id: &str) -> Res<()> {
    let addr = relay.addr();
    let docs: Vec<DocId> = (0..p.docs)
        .map(|d| DocId::new(format!("idle-{d}-{run_id}")))
        .collect::<Result<_, _>>()?;
    // Warm-up: one connection subscribes to every document, so documents are
    // loaded before the baseline and the difference is the connections'.
    let (mut warm, limits) = connect(addr).await?;
    for d in &docs {
        subscribe(&mut warm, d, &VersionVector::new()).await?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss0 = relay.rss();
    let self_rss0 = proc_rss("self");
    let ping_every = Duration::from_millis(u64::from(limits.idle_timeout_ms.max(3000) / 3));

    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let (stop_tx, stop_rx) = watch::channel(false);
    let sem = Arc::new(Semaphore::new(p.concurrency));
    let cpu0 = relay.cpu();
    let self_cpu0 = proc_cpu("self");
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(p.connections);
    for i in 0..p.connections {
        let doc = docs[i % docs.len()].clone();
        let sem = sem.clone();
        let ready = ready_tx.clone();
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            let permit = sem.acquire_owned().await;
            let setup = async {
                let (mut ws, _) = connect(addr).await?;
                subscribe(&mut ws, &doc, &VersionVector::new()).await?;
                Res::Ok(ws)
            };
            let mut ws = match setup.await {
                Ok(ws) => ws,
                Err(e) => {
                    let _ = ready.send(Err(e.to_string()));
                    return Some(e.to_string());
                }
            };
            drop(permit);
            let _ = ready.send(Ok(()));
            drop(ready);
            let mut next_ping = tokio::time::Instant::now() + ping_every;
            loop {
                tokio::select! {
                    msg = recv(&mut ws) => match msg {
                        Ok(Some((Frame::Ping { nonce }, _))) => {
                            if let Err(e) = send(&mut ws, &Frame::Pong { nonce }).await {
                                return Some(e.to_string());
                            }
                        }
                        Ok(Some((Frame::Error { code, message, .. }, _))) => {
                            return Some(format!("{} ({}): {message}", code.name(), code.code()));
                        }
                        Ok(Some(_)) => {}
                        Ok(None) => return Some("closed by the relay".into()),
                        Err(e) => return Some(e.to_string()),
                    },
                    _ = sleep_until(next_ping) => {
                        next_ping += ping_every;
                        if let Err(e) = send(&mut ws, &Frame::Ping { nonce: 3 }).await {
                            return Some(e.to_string());
                        }
                    }
                    _ = stop.changed() => {
                        let _ = ws.close(None).await;
                        return None;
                    }
                }
            }
        }));
    }
    drop(ready_tx);
    let mut ready = 0usize;
    let mut failed: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while ready + failed.len() < p.connections {
        match tokio::time::timeout_at(deadline, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => ready += 1,
            Ok(Some(Err(e))) => failed.push(e),
            Ok(None) | Err(_) => break,
        }
    }
    let connect_time = t0.elapsed();
    let connect_cpu = cpu_delta(cpu0, relay.cpu());
    let connect_self_cpu = cpu_delta(self_cpu0, proc_cpu("self"));
    tokio::time::sleep(p.hold).await;
    let rss1 = relay.rss();
    let self_rss1 = proc_rss("self");
    let _ = stop_tx.send(true);
    let mut dropped = Vec::new();
    for t in tasks {
        if let Ok(Some(e)) = t.await {
            dropped.push(e);
        }
    }
    let _ = warm.close(None).await;
    let dropped_after_connect = dropped.len().saturating_sub(failed.len());
    if let Some(e) = failed.first() {
        eprintln!("# idle: {} failed to connect, first: {e}", failed.len());
    }
    if let Some(e) = dropped.iter().find(|e| !failed.contains(e)) {
        eprintln!("# idle: {dropped_after_connect} dropped while held, first: {e}");
    }
    let per_conn = match (rss0, rss1) {
        (Some(a), Some(b)) if ready > 0 => format!(
            "{:.1} KB per connection (relay RSS {:.1} → {:.1} MB)",
            (b as f64 - a as f64) / ready as f64 / 1024.0,
            a as f64 / 1048576.0,
            b as f64 / 1048576.0
        ),
        _ => "relay RSS n/a (give --server-pid)".into(),
    };
    let self_mem = match (self_rss0, self_rss1) {
        (Some(a), Some(b)) if ready > 0 => {
            format!("{:.1} KB", (b as f64 - a as f64) / ready as f64 / 1024.0)
        }
        _ => "n/a".into(),
    };
    println!(
        "| idle | {} connections over {} docs (Hello + Subscribe each), {} handshakes in flight | {ready} connected and subscribed in {:.3} s; {per_conn}; failed {}, dropped while held {}; CPU while connecting: relay {}, weft-load {}; weft-load RSS per connection {self_mem} |",
        p.connections,
        p.docs,
        p.concurrency,
        connect_time.as_secs_f64(),
        failed.len(),
        dropped_after_connect,
        fmt_dur(connect_cpu),
        fmt_dur(connect_self_cpu),
    );
    if ready < p.connections {
        return Err(format!("idle: only {ready}/{} connected", p.connections).into());
    }
    Ok(())
}
