//! Fan-out: one writer, N readers on one document.

use super::*;

#[derive(Debug)]
pub(crate) struct FanoutParams {
    pub(crate) readers: usize,
    pub(crate) rate: f64,
    pub(crate) updates: u64,
    pub(crate) verify_readers: usize,
    pub(crate) grace: Duration,
}

#[derive(Debug, Default)]
pub(crate) struct ReaderResult {
    pub(crate) latencies_us: Vec<u64>,
    pub(crate) received: u64,
    pub(crate) duplicates: u64,
    pub(crate) text: Option<String>,
    pub(crate) errors: Errors,
    pub(crate) failure: Option<String>,
}

pub(crate) async fn fanout(relay: &Relay, p: &FanoutParams, run_id: &str) -> Res<()> {
    let addr = relay.addr();
    let doc_id = DocId::new(format!("fanout-{}-{run_id}", p.readers))?;
    let writer_replica = ReplicaId::random();
    let base = Instant::now();
    let times = Arc::new(SendTimes::new(base, p.updates));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let sem = Arc::new(Semaphore::new(256));

    let t_connect = Instant::now();
    let mut tasks = Vec::with_capacity(p.readers);
    for i in 0..p.readers {
        let verify = i < p.verify_readers;
        tasks.push(tokio::spawn(fanout_reader(
            addr,
            doc_id.clone(),
            writer_replica,
            p.updates,
            verify,
            times.clone(),
            sem.clone(),
            ready_tx.clone(),
            stop_rx.clone(),
        )));
    }
    drop(ready_tx);
    let mut ready = 0;
    let mut failed = Vec::new();
    let connect_deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while ready + failed.len() < p.readers {
        match tokio::time::timeout_at(connect_deadline, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => ready += 1,
            Ok(Some(Err(e))) => failed.push(e),
            Ok(None) | Err(_) => break,
        }
    }
    let connect_time = t_connect.elapsed();
    eprintln!(
        "# fanout: {ready}/{} readers subscribed in {:.2} s",
        p.readers,
        connect_time.as_secs_f64()
    );
    if !failed.is_empty() {
        eprintln!(
            "# fanout: {} readers failed to connect, first: {}",
            failed.len(),
            failed[0]
        );
    }

    // The writer.
    let (mut ws, _) = connect(addr).await?;
    subscribe(&mut ws, &doc_id, &VersionVector::new()).await?;
    let mut doc = Doc::new(writer_replica);
    let cpu0 = relay.cpu();
    let self0 = proc_cpu("self");
    let t0 = tokio::time::Instant::now();
    let interval = Duration::from_secs_f64(1.0 / p.rate);
    let send_deadline = t0 + interval * (p.updates as u32) + Duration::from_secs(60);
    let mut pending: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut retry: Vec<u64> = Vec::new();
    let mut ack_us = Vec::with_capacity(p.updates as usize);
    let mut w_errors = Errors::new();
    let mut sent = 0u64;
    let mut acked = 0u64;
    let mut last_send = Instant::now();
    let mut next_retry = t0;
    while acked < p.updates {
        let next = t0 + interval * (sent as u32);
        tokio::select! {
            _ = sleep_until(next), if sent < p.updates => {
                sent += 1;
                let update = insert_at(&mut doc, None, &marker(sent, 10))?;
                let now = Instant::now();
                times.record(sent, now);
                last_send = now;
                send(&mut ws, &Frame::Update { doc: doc_id.clone(), seq: sent, update: update.clone() }).await?;
                pending.insert(sent, update);
            }
            _ = sleep_until(next_retry), if !retry.is_empty() => {
                for seq in std::mem::take(&mut retry) {
                    if let Some(u) = pending.get(&seq) {
                        send(&mut ws, &Frame::Update { doc: doc_id.clone(), seq, update: u.clone() }).await?;
                    }
                }
            }
            msg = recv(&mut ws) => match msg? {
                Some((Frame::Ack { seq, .. }, _)) => {
                    if pending.remove(&seq).is_some() {
                        acked += 1;
                        if let Some(us) = times.latency_us(seq, Instant::now()) {
                            ack_us.push(us);
                        }
                    }
                }
                Some((Frame::Error { code, seq, message, .. }, _)) => {
                    note_error(&mut w_errors, code);
                    match (code.scope(), seq) {
                        (ErrorScope::UpdateRetry, Some(seq)) => {
                            retry.push(seq);
                            next_retry = tokio::time::Instant::now() + Duration::from_millis(50);
                        }
                        _ => return Err(format!("writer got {} ({}): {message}", code.name(), code.code()).into()),
                    }
                }
                Some((Frame::Ping { nonce }, _)) => { send(&mut ws, &Frame::Pong { nonce }).await?; }
                Some(_) => {}
                None => return Err("writer: relay closed the connection".into()),
            },
            _ = sleep_until(send_deadline) => {
                eprintln!("# fanout: writer gave up waiting for acks ({acked}/{} acked)", p.updates);
                break;
            }
        }
    }
    let send_span = last_send.saturating_duration_since(t0.into_std());
    // Readers finish when they have everything; stragglers get `grace`,
    // then are stopped and report what they have.
    let grace_end = tokio::time::Instant::now() + p.grace;
    let stopper = tokio::spawn(async move {
        sleep_until(grace_end).await;
        let _ = stop_tx.send(true);
    });
    let mut results = Vec::with_capacity(tasks.len());
    for t in tasks {
        results.push(t.await);
    }
    stopper.abort();
    let cpu1 = relay.cpu();
    let self1 = proc_cpu("self");
    let _ = ws.close(None).await;

    let writer_text = doc.text("body")?.to_string();
    let mut lat = Vec::new();
    let mut received = 0u64;
    let mut dups = 0u64;
    let mut errors = Errors::new();
    let mut failures = Vec::new();
    let mut verified = 0usize;
    let mut verify_failed = 0usize;
    for r in results {
        let r = r.map_err(|e| format!("reader task panicked: {e}"))?;
        lat.extend(r.latencies_us);
        received += r.received;
        dups += r.duplicates;
        merge_errors(&mut errors, r.errors);
        if let Some(f) = r.failure {
            failures.push(f);
        }
        if let Some(t) = r.text {
            if t == writer_text {
                verified += 1;
            } else {
                verify_failed += 1;
            }
        }
    }
    let expected = p.readers as u64 * p.updates;
    let lost = expected.saturating_sub(received);
    let s = stats(lat);
    let a = stats(ack_us);
    merge_errors(&mut errors, w_errors);
    if !failures.is_empty() {
        eprintln!(
            "# fanout: {} readers incomplete, first: {}",
            failures.len(),
            failures[0]
        );
    }
    println!(
        "| fanout | 1 writer → {} readers, {} updates at {}/s (sent in {:.2} s) | delivery p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms ({} deliveries); lost {lost} of {expected}, duplicates {dups}; ack p50 {:.2} ms, p99 {:.2} ms; text verified on {verified}/{} readers{}; errors: {}; relay CPU {}, weft-load CPU {}; readers connected in {:.2} s |",
        p.readers,
        p.updates,
        p.rate,
        send_span.as_secs_f64(),
        s.p50_ms,
        s.p99_ms,
        s.max_ms,
        s.n,
        a.p50_ms,
        a.p99_ms,
        p.verify_readers.min(p.readers),
        if verify_failed > 0 { format!(" (MISMATCH on {verify_failed})") } else { String::new() },
        fmt_errors(&errors),
        fmt_dur(cpu_delta(cpu0, cpu1)),
        fmt_dur(cpu_delta(self0, self1)),
        connect_time.as_secs_f64(),
    );
    if lost > 0 || verify_failed > 0 || !failed.is_empty() {
        return Err(format!(
            "fanout: {lost} lost, {verify_failed} text mismatches, {} readers failed",
            failed.len()
        )
        .into());
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn fanout_reader(
    addr: SocketAddr,
    doc_id: DocId,
    writer: ReplicaId,
    updates: u64,
    verify: bool,
    times: Arc<SendTimes>,
    sem: Arc<Semaphore>,
    ready: Ready,
    mut stop: watch::Receiver<bool>,
) -> ReaderResult {
    let mut r = ReaderResult::default();
    let permit = sem.acquire_owned().await;
    let setup = async {
        let (mut ws, _) = connect(addr).await?;
        let (synced, _) = subscribe(&mut ws, &doc_id, &VersionVector::new()).await?;
        Res::Ok((ws, synced))
    };
    let (mut ws, synced) = match setup.await {
        Ok(x) => x,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            r.failure = Some(e.to_string());
            return r;
        }
    };
    drop(permit);
    let mut doc = verify.then(|| Doc::new(ReplicaId::random()));
    if let Some(d) = doc.as_mut() {
        if let Err(e) = d.apply(&synced) {
            r.failure = Some(format!("Synced did not apply: {e}"));
        }
    }
    let _ = ready.send(Ok(()));
    let mut seen = vec![false; updates as usize + 1];
    r.latencies_us.reserve(updates as usize);
    let ping_every = Duration::from_secs(10);
    let mut next_ping = tokio::time::Instant::now() + ping_every;
    while r.received < updates && r.failure.is_none() {
        tokio::select! {
            msg = recv(&mut ws) => {
                let now = Instant::now();
                match msg {
                    Ok(Some((Frame::Remote { update, .. }, _))) => {
                        if let Some((from, to)) = update_range(&update) {
                            for c in from.get(writer) + 1..=to.get(writer).min(updates) {
                                if seen[c as usize] {
                                    r.duplicates += 1;
                                    continue;
                                }
                                seen[c as usize] = true;
                                r.received += 1;
                                if let Some(us) = times.latency_us(c, now) {
                                    r.latencies_us.push(us);
                                }
                            }
                        }
                        if let Some(d) = doc.as_mut() {
                            if let Err(e) = d.apply(&update) {
                                r.failure = Some(format!("Remote did not apply: {e}"));
                            }
                        }
                    }
                    Ok(Some((Frame::Ping { nonce }, _))) => {
                        if let Err(e) = send(&mut ws, &Frame::Pong { nonce }).await {
                            r.failure = Some(e.to_string());
                        }
                    }
                    Ok(Some((Frame::Error { code, message, .. }, _))) => {
                        note_error(&mut r.errors, code);
                        if code.scope() != ErrorScope::UpdateRetry {
                            r.failure = Some(format!("{} ({}): {message}", code.name(), code.code()));
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => r.failure = Some("closed by the relay".into()),
                    Err(e) => r.failure = Some(e.to_string()),
                }
            }
            _ = sleep_until(next_ping) => {
                next_ping += ping_every;
                if let Err(e) = send(&mut ws, &Frame::Ping { nonce: 1 }).await {
                    r.failure = Some(e.to_string());
                }
            }
            _ = stop.changed() => {
                r.failure = Some(format!("stopped with {}/{updates} updates", r.received));
            }
        }
    }
    if let Some(d) = doc {
        r.text = d.text("body").ok().map(|t| t.to_string());
    }
    let _ = ws.close(None).await;
    r
}
