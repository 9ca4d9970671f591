//! Rooms: R rooms × C clients writing alternately at an aggregate rate.

use super::*;

#[derive(Debug, Clone, Copy)]
pub(crate) struct RoomsParams {
    pub(crate) rooms: usize,
    pub(crate) clients: usize,
    pub(crate) rate: f64,
    pub(crate) duration: Duration,
    pub(crate) grace: Duration,
}

#[derive(Debug, Default)]
pub(crate) struct RoomsResult {
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) ack_p99_ms: f64,
    pub(crate) sent: u64,
    pub(crate) delivered: u64,
    pub(crate) lost: u64,
    pub(crate) achieved: f64,
    pub(crate) send_rate: f64,
    pub(crate) errors: Errors,
    pub(crate) failures: usize,
    pub(crate) relay_cpu: Option<Duration>,
    pub(crate) self_cpu: Option<Duration>,
    pub(crate) connect_s: f64,
}

#[derive(Debug, Default)]
pub(crate) struct ClientResult {
    pub(crate) latencies_us: Vec<u64>,
    pub(crate) ack_us: Vec<u64>,
    pub(crate) sent: u64,
    pub(crate) received: u64,
    pub(crate) last_receive: Option<Instant>,
    pub(crate) errors: Errors,
    pub(crate) failure: Option<String>,
}

pub(crate) async fn rooms_run(relay: &Relay, p: &RoomsParams, tag: &str) -> Res<RoomsResult> {
    let addr = relay.addr();
    let n = p.rooms * p.clients;
    // Per room: one update every `room_period`, the clients taking turns.
    let room_period = p.rooms as f64 / p.rate;
    let client_period = Duration::from_secs_f64(room_period * p.clients as f64);
    let per_client = ((p.duration.as_secs_f64() / client_period.as_secs_f64()).floor() as u64)
        .clamp(1, MAX_UPDATES);
    let base = Instant::now();
    let replicas: Vec<ReplicaId> = (0..n).map(|_| ReplicaId::random()).collect();
    let index: Arc<HashMap<ReplicaId, usize>> =
        Arc::new(replicas.iter().enumerate().map(|(i, r)| (*r, i)).collect());
    let tables: Arc<Vec<SendTimes>> =
        Arc::new((0..n).map(|_| SendTimes::new(base, per_client)).collect());
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let (start_tx, start_rx) = watch::channel(None::<tokio::time::Instant>);
    let sem = Arc::new(Semaphore::new(256));
    let t_connect = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for room in 0..p.rooms {
        let doc_id = DocId::new(format!("room-{room}-{tag}"))?;
        for j in 0..p.clients {
            let i = room * p.clients + j;
            // Rooms spread evenly over one room period; clients in a room
            // take turns.
            let offset =
                Duration::from_secs_f64(room_period * (room as f64 / p.rooms as f64 + j as f64));
            tasks.push(tokio::spawn(room_client(RoomClient {
                addr,
                doc_id: doc_id.clone(),
                replica: replicas[i],
                me: i,
                offset,
                period: client_period,
                count: per_client,
                expect: per_client * (p.clients as u64 - 1),
                grace: p.duration + p.grace,
                index: index.clone(),
                tables: tables.clone(),
                sem: sem.clone(),
                ready: ready_tx.clone(),
                start: start_rx.clone(),
            })));
        }
    }
    drop(ready_tx);
    let mut ready = 0;
    let mut failed = Vec::new();
    let connect_deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while ready + failed.len() < n {
        match tokio::time::timeout_at(connect_deadline, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => ready += 1,
            Ok(Some(Err(e))) => failed.push(e),
            Ok(None) | Err(_) => break,
        }
    }
    let connect_s = t_connect.elapsed().as_secs_f64();
    eprintln!("# rooms: {ready}/{n} clients subscribed in {connect_s:.2} s");
    if !failed.is_empty() {
        eprintln!(
            "# rooms: {} clients failed to connect, first: {}",
            failed.len(),
            failed[0]
        );
    }
    let cpu0 = relay.cpu();
    let self0 = proc_cpu("self");
    let t0 = tokio::time::Instant::now() + Duration::from_millis(200);
    let _ = start_tx.send(Some(t0));
    let mut res = RoomsResult {
        connect_s,
        failures: failed.len(),
        ..RoomsResult::default()
    };
    let mut lat = Vec::new();
    let mut ack = Vec::new();
    let mut last_receive = t0.into_std();
    for t in tasks {
        let r = t.await.map_err(|e| format!("client task panicked: {e}"))?;
        lat.extend(r.latencies_us);
        ack.extend(r.ack_us);
        res.sent += r.sent;
        res.delivered += r.received;
        if let Some(l) = r.last_receive {
            last_receive = last_receive.max(l);
        }
        merge_errors(&mut res.errors, r.errors);
        if let Some(f) = r.failure {
            if res.failures == failed.len() {
                eprintln!("# rooms: first client failure: {f}");
            }
            res.failures += 1;
        }
    }
    res.relay_cpu = cpu_delta(cpu0, relay.cpu());
    res.self_cpu = cpu_delta(self0, proc_cpu("self"));
    let expected = n as u64 * per_client * (p.clients as u64 - 1);
    res.lost = expected.saturating_sub(res.delivered);
    let s = stats(lat);
    res.p50_ms = s.p50_ms;
    res.p99_ms = s.p99_ms;
    res.max_ms = s.max_ms;
    res.ack_p99_ms = stats(ack).p99_ms;
    // Deliveries per second from the first scheduled send to the last
    // delivery; each update is delivered to clients - 1 peers.
    let span = last_receive
        .saturating_duration_since(t0.into_std())
        .as_secs_f64()
        .max(1e-3);
    res.achieved = res.delivered as f64 / (p.clients as f64 - 1.0) / span;
    // Over the scheduled span (`per_client` sends a `client_period` apart),
    // not `duration`, which the schedule may not fill exactly.
    res.send_rate = res.sent as f64 / (per_client as f64 * client_period.as_secs_f64());
    Ok(res)
}

pub(crate) fn print_rooms(p: &RoomsParams, r: &RoomsResult) {
    println!(
        "| rooms | {} rooms × {} clients, target {} updates/s for {} s | delivery p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; achieved {:.0} updates/s delivered (sent {}, {:.0}/s); lost {}; ack p99 {:.2} ms; errors: {}; clients failed {}; relay CPU {}, weft-load CPU {}; connected in {:.2} s |",
        p.rooms,
        p.clients,
        p.rate,
        p.duration.as_secs(),
        r.p50_ms,
        r.p99_ms,
        r.max_ms,
        r.achieved,
        r.sent,
        r.send_rate,
        r.lost,
        r.ack_p99_ms,
        fmt_errors(&r.errors),
        r.failures,
        fmt_dur(r.relay_cpu),
        fmt_dur(r.self_cpu),
        r.connect_s,
    );
}

#[derive(Debug)]
pub(crate) struct RoomClient {
    pub(crate) addr: SocketAddr,
    pub(crate) doc_id: DocId,
    pub(crate) replica: ReplicaId,
    pub(crate) me: usize,
    pub(crate) offset: Duration,
    pub(crate) period: Duration,
    pub(crate) count: u64,
    pub(crate) expect: u64,
    pub(crate) grace: Duration,
    pub(crate) index: Arc<HashMap<ReplicaId, usize>>,
    pub(crate) tables: Arc<Vec<SendTimes>>,
    pub(crate) sem: Arc<Semaphore>,
    pub(crate) ready: Ready,
    pub(crate) start: watch::Receiver<Option<tokio::time::Instant>>,
}

pub(crate) async fn room_client(mut c: RoomClient) -> ClientResult {
    let mut r = ClientResult::default();
    let permit = c.sem.clone().acquire_owned().await;
    let setup = async {
        let (mut ws, _) = connect(c.addr).await?;
        subscribe(&mut ws, &c.doc_id, &VersionVector::new()).await?;
        Res::Ok(ws)
    };
    let mut ws = match setup.await {
        Ok(ws) => ws,
        Err(e) => {
            let _ = c.ready.send(Err(e.to_string()));
            r.failure = Some(e.to_string());
            return r;
        }
    };
    drop(permit);
    let _ = c.ready.send(Ok(()));
    let t0 = loop {
        if let Some(t0) = *c.start.borrow_and_update() {
            break t0;
        }
        if c.start.changed().await.is_err() {
            r.failure = Some("never started".into());
            return r;
        }
    };
    let mine = &c.tables[c.me];
    let mut doc = Doc::new(c.replica);
    let mut pending: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut retry: Vec<u64> = Vec::new();
    let mut next_retry = t0;
    let mut acked = 0u64;
    let deadline = t0 + c.grace;
    let mut seen: HashMap<usize, Vec<bool>> = HashMap::new();
    let mut next_ping = t0 + Duration::from_secs(10);
    while r.failure.is_none() && (r.sent < c.count || acked < c.count || r.received < c.expect) {
        let next = t0 + c.offset + c.period * (r.sent as u32);
        tokio::select! {
            _ = sleep_until(next), if r.sent < c.count => {
                r.sent += 1;
                let seq = r.sent;
                let update = match insert_at(&mut doc, None, &marker(seq, 8)) {
                    Ok(u) => u,
                    Err(e) => { r.failure = Some(e.to_string()); break; }
                };
                mine.record(seq, Instant::now());
                if let Err(e) = send(&mut ws, &Frame::Update { doc: c.doc_id.clone(), seq, update: update.clone() }).await {
                    r.failure = Some(e.to_string());
                }
                pending.insert(seq, update);
            }
            _ = sleep_until(next_retry), if !retry.is_empty() => {
                for seq in std::mem::take(&mut retry) {
                    if let Some(u) = pending.get(&seq) {
                        if let Err(e) = send(&mut ws, &Frame::Update { doc: c.doc_id.clone(), seq, update: u.clone() }).await {
                            r.failure = Some(e.to_string());
                        }
                    }
                }
            }
            _ = sleep_until(next_ping) => {
                next_ping += Duration::from_secs(10);
                if let Err(e) = send(&mut ws, &Frame::Ping { nonce: 2 }).await {
                    r.failure = Some(e.to_string());
                }
            }
            msg = recv(&mut ws) => {
                let now = Instant::now();
                match msg {
                    Ok(Some((Frame::Remote { update, .. }, _))) => {
                        if let Some((from, to)) = update_range(&update) {
                            for (replica, hi) in to.iter() {
                                let Some(&w) = c.index.get(&replica) else { continue };
                                if w == c.me { continue; }
                                let seen = seen.entry(w).or_insert_with(|| vec![false; c.count as usize + 1]);
                                for k in from.get(replica) + 1..=hi.min(c.count) {
                                    if !seen[k as usize] {
                                        seen[k as usize] = true;
                                        r.received += 1;
                                        r.last_receive = Some(now);
                                        if let Some(us) = c.tables[w].latency_us(k, now) {
                                            r.latencies_us.push(us);
                                        }
                                    }
                                }
                            }
                        }
                    }
                    Ok(Some((Frame::Ack { seq, .. }, _))) => {
                        if pending.remove(&seq).is_some() {
                            acked += 1;
                            if let Some(us) = mine.latency_us(seq, now) {
                                r.ack_us.push(us);
                            }
                        }
                    }
                    Ok(Some((Frame::Error { code, seq, message, .. }, _))) => {
                        note_error(&mut r.errors, code);
                        match (code.scope(), seq) {
                            (ErrorScope::UpdateRetry, Some(seq)) => {
                                retry.push(seq);
                                next_retry = tokio::time::Instant::now() + Duration::from_millis(50);
                            }
                            _ => r.failure = Some(format!("{} ({}): {message}", code.name(), code.code())),
                        }
                    }
                    Ok(Some((Frame::Ping { nonce }, _))) => {
                        if let Err(e) = send(&mut ws, &Frame::Pong { nonce }).await {
                            r.failure = Some(e.to_string());
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => r.failure = Some("closed by the relay".into()),
                    Err(e) => r.failure = Some(e.to_string()),
                }
            }
            _ = sleep_until(deadline) => {
                r.failure = Some(format!(
                    "deadline: sent {}/{}, acked {acked}, received {}/{}",
                    r.sent, c.count, r.received, c.expect
                ));
            }
        }
    }
    let _ = ws.close(None).await;
    r
}
