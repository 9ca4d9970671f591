//! The sans-IO sync machines ([`Outbox`] on clients, [`ReaderFlow`] on the
//! relay) in a simulated network, without tokio: random edits, frame
//! deliveries in random interleavings, dropped connections (every frame in
//! flight lost, then a reconnect and `Synced`), relay store failures
//! (`StoreUnavailable`, retried after a delay) and readers whose queue is
//! full (behind, then one diff). After a healing phase with no faults
//! every client has exactly the relay's document, every outbox is idle,
//! and what it knows the relay holds is everything.

use proptest::prelude::*;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use weft_core::doc::{ApplyStatus, Limits};
use weft_core::{Doc, ReplicaId, Update, VersionVector};
use weft_protocol::sync::{Catch, Handled, Outbox, Piece, ReaderFlow, Transmit};
use weft_protocol::{DocId, ErrorCode, Frame};

const WINDOW: usize = 4;
const RETRY: Duration = Duration::from_millis(200);
const GRACE: Duration = Duration::from_secs(30);

#[derive(Clone, Debug)]
enum Event {
    Edit { client: usize, at: u8, text: String },
    Pump { client: usize },
    ToRelay { client: usize },
    ToClient { client: usize },
    Drop { client: usize },
    StoreFails { times: u8 },
    Tick { millis: u16 },
}

fn event(clients: usize) -> impl Strategy<Value = Event> {
    let c = 0..clients;
    prop_oneof![
        4 => (c.clone(), any::<u8>(), "[a-zé😀]{1,3}").prop_map(|(client, at, text)| Event::Edit { client, at, text }),
        3 => c.clone().prop_map(|client| Event::Pump { client }),
        5 => c.clone().prop_map(|client| Event::ToRelay { client }),
        5 => c.clone().prop_map(|client| Event::ToClient { client }),
        1 => c.prop_map(|client| Event::Drop { client }),
        1 => (1..3u8).prop_map(|times| Event::StoreFails { times }),
        1 => (1..3000u16).prop_map(|millis| Event::Tick { millis }),
    ]
}

struct Client {
    doc: Doc,
    outbox: Option<Outbox>,
    next_seq: u64,
    to_relay: VecDeque<Frame>,
    to_client: VecDeque<Frame>,
    flow: ReaderFlow,
    subscribed: bool,
}

struct World {
    id: DocId,
    relay: Doc,
    clients: Vec<Client>,
    /// Relay → client queue capacity: a full queue makes its reader behind.
    cap: usize,
    store_failures: u8,
    now: Instant,
    /// Updates whose dependencies the relay lacks (a retried update came
    /// after its successor): held unacked, per sender, as the relay does.
    waiting: Vec<(usize, u64, Update)>,
}

impl World {
    fn new(clients: usize, cap: usize) -> World {
        let id = DocId::new("sim").unwrap();
        let mut w = World {
            id,
            relay: Doc::new(ReplicaId::new(1000)),
            clients: (0..clients)
                .map(|i| Client {
                    doc: Doc::new(ReplicaId::new(i as u64 + 1)),
                    outbox: None,
                    next_seq: 1,
                    to_relay: VecDeque::new(),
                    to_client: VecDeque::new(),
                    flow: ReaderFlow::default(),
                    subscribed: false,
                })
                .collect(),
            cap,
            store_failures: 0,
            now: Instant::now(),
            waiting: Vec::new(),
        };
        for i in 0..clients {
            w.connect(i);
        }
        w
    }

    /// A fresh connection: `Subscribe` with the client's version.
    fn connect(&mut self, i: usize) {
        let c = &mut self.clients[i];
        c.to_relay.clear();
        c.to_client.clear();
        c.outbox = None;
        c.subscribed = false;
        c.flow = ReaderFlow::default();
        c.next_seq = 1;
        self.waiting.retain(|(sender, _, _)| *sender != i);
        let version = c.doc.version().clone();
        c.to_relay.push_back(Frame::Subscribe {
            doc: self.id.clone(),
            version,
        });
    }

    fn run(&mut self, e: &Event) {
        match e {
            Event::Edit { client, at, text } => {
                let c = &mut self.clients[*client];
                let len = c.doc.text("t").map(|t| t.len()).unwrap_or(0);
                let at = usize::from(*at) % (len + 1);
                let bytes = c.doc.transact(|tx| tx.text("t")?.insert(at, text)).unwrap();
                if let Some(out) = &mut c.outbox {
                    out.push(Piece::new(bytes).unwrap());
                }
            }
            Event::Pump { client } => self.pump(*client),
            Event::ToRelay { client } => self.relay_takes(*client),
            Event::ToClient { client } => self.client_takes(*client),
            Event::Drop { client } => self.connect(*client),
            Event::StoreFails { times } => self.store_failures = *times,
            Event::Tick { millis } => {
                self.now += Duration::from_millis(u64::from(*millis));
                self.catch_up();
            }
        }
    }

    fn pump(&mut self, i: usize) {
        let now = self.now;
        let c = &mut self.clients[i];
        let Some(out) = &mut c.outbox else { return };
        while let Some(t) = out.poll_transmit(now, &self.id, 1 << 20, &mut c.next_seq) {
            match t {
                Transmit::Send(frame) => c.to_relay.push_back(frame),
                Transmit::TooLarge(_) => panic!("no piece here is that large"),
            }
        }
    }

    /// The relay takes one frame from client `i`.
    fn relay_takes(&mut self, i: usize) {
        let Some(frame) = self.clients[i].to_relay.pop_front() else {
            return;
        };
        // Every frame crosses the wire encoded.
        let frame = Frame::decode(&frame.encode(), &Default::default()).unwrap();
        match frame {
            Frame::Subscribe { version, .. } => {
                let update = self.relay.diff(&version);
                let c = &mut self.clients[i];
                c.subscribed = true;
                c.to_client.push_back(Frame::Synced {
                    doc: self.id.clone(),
                    update,
                    version: self.relay.version().clone(),
                });
            }
            Frame::Update { seq, update, .. } => {
                if self.store_failures > 0 {
                    // The relay's append failed: refused for now, not applied.
                    self.store_failures -= 1;
                    self.clients[i].to_client.push_back(Frame::error(
                        ErrorCode::StoreUnavailable,
                        Some(self.id.clone()),
                        Some(seq),
                        "store down",
                    ));
                    return;
                }
                let update = Update::decode(update, &Limits::default()).unwrap();
                if self.relay.readiness(&update) == ApplyStatus::Pending {
                    self.waiting.push((i, seq, update));
                    return;
                }
                self.apply(i, seq, &update, None);
                // Waiting updates this one made applicable: applied, acked,
                // and everyone gets them as one diff.
                loop {
                    let ready = self
                        .waiting
                        .iter()
                        .position(|(_, _, u)| self.relay.readiness(u) != ApplyStatus::Pending);
                    let Some(k) = ready else { break };
                    let (sender, seq, u) = self.waiting.remove(k);
                    let before = self.relay.version().clone();
                    self.apply(sender, seq, &u, Some(before));
                }
            }
            other => panic!("unexpected frame at the relay: {other:?}"),
        }
    }

    /// Applies `update` from client `i` (`seq`), acks it and fans it out:
    /// to the others as it is, or to everyone as `diff(since)`.
    fn apply(&mut self, i: usize, seq: u64, update: &Update, since: Option<VersionVector>) {
        let before = self.relay.version().clone();
        let report = self.relay.apply_update(update).unwrap();
        self.clients[i].to_client.push_back(Frame::Ack {
            doc: self.id.clone(),
            seq,
        });
        if report.status != ApplyStatus::Applied {
            return;
        }
        match since {
            None => self.fan_out(Some(i), update.as_bytes(), &before),
            Some(since) => {
                let diff = self.relay.diff(&since);
                self.fan_out(None, &diff, &before);
            }
        }
    }

    fn fan_out(&mut self, from: Option<usize>, update: &[u8], before: &VersionVector) {
        let now = self.now;
        for (j, c) in self.clients.iter_mut().enumerate() {
            if Some(j) == from || !c.subscribed || !c.flow.takes_updates() {
                continue;
            }
            if c.to_client.len() >= self.cap {
                c.flow.fell_behind(before.clone(), now);
            } else {
                c.to_client.push_back(Frame::Remote {
                    doc: self.id.clone(),
                    update: update.to_vec(),
                });
            }
        }
    }

    /// The relay's tick: readers behind get one diff once they have room.
    fn catch_up(&mut self) {
        let now = self.now;
        let mut gone = Vec::new();
        for (j, c) in self.clients.iter_mut().enumerate() {
            let has_room = c.to_client.len() < self.cap / 2 + 1;
            match c.flow.poll(now, has_room, GRACE) {
                Catch::Live | Catch::Wait => {}
                Catch::SendDiffSince(v) => {
                    let update = self.relay.diff(v);
                    c.to_client.push_back(Frame::Remote {
                        doc: self.id.clone(),
                        update,
                    });
                    c.flow.caught_up();
                }
                Catch::Disconnect => gone.push(j),
            }
        }
        for j in gone {
            self.connect(j);
        }
    }

    /// Client `i` takes one frame from the relay.
    fn client_takes(&mut self, i: usize) {
        let now = self.now;
        let c = &mut self.clients[i];
        let Some(frame) = c.to_client.pop_front() else {
            return;
        };
        let frame = Frame::decode(&frame.encode(), &Default::default()).unwrap();
        match &frame {
            Frame::Synced {
                update, version, ..
            } => {
                c.doc.apply(update).unwrap();
                let mut out = Outbox::new(version.clone(), WINDOW, i as u64 + 7);
                if !version.dominates(c.doc.version()) {
                    let backlog = c.doc.diff(version);
                    out.push(Piece::new(backlog).unwrap().starting_at(version.clone()));
                }
                out.mark_sent(c.doc.version());
                c.outbox = Some(out);
            }
            Frame::Remote { update, .. } => {
                let report = c.doc.apply(update).unwrap();
                if report.status == ApplyStatus::Applied {
                    let (from, to) = Update::peek_versions(update).unwrap();
                    if let Some(out) = &mut c.outbox {
                        out.learn(from, to);
                    }
                }
            }
            Frame::Ack { .. } | Frame::Error { .. } => {
                let out = c.outbox.as_mut().expect("acks come after Synced");
                let handled = out.on_frame(&frame, now, RETRY);
                assert!(
                    matches!(handled, Handled::Acked | Handled::RetryLater),
                    "{handled:?} for {frame:?}"
                );
            }
            other => panic!("unexpected frame at a client: {other:?}"),
        }
    }

    /// No more faults: deliver and pump until nothing moves.
    fn heal(&mut self) {
        self.store_failures = 0;
        for _ in 0..10_000 {
            let mut moved = false;
            for i in 0..self.clients.len() {
                self.pump(i);
                while !self.clients[i].to_relay.is_empty() {
                    self.relay_takes(i);
                    moved = true;
                }
            }
            for i in 0..self.clients.len() {
                while !self.clients[i].to_client.is_empty() {
                    self.client_takes(i);
                    moved = true;
                }
            }
            self.now += RETRY * 64; // past any retry delay
            self.catch_up();
            let idle = self
                .clients
                .iter()
                .all(|c| c.outbox.as_ref().is_some_and(Outbox::is_idle));
            if !moved && idle {
                return;
            }
        }
        let outboxes: Vec<String> = self
            .clients
            .iter()
            .map(|c| format!("{:?} doc {:?}", c.outbox, c.doc.version()))
            .collect();
        panic!(
            "the network did not settle: relay {:?}, waiting {:?}, outboxes {outboxes:#?}",
            self.relay.version(),
            self.waiting
                .iter()
                .map(|(c, s, u)| (c, s, u.from(), u.to()))
                .collect::<Vec<_>>()
        );
    }
}

proptest! {
    #[test]
    fn clients_and_relay_converge_through_drops_retries_and_slow_readers(
        clients in 2..4usize,
        cap in 1..6usize,
        events in prop::collection::vec(event(3), 0..120),
    ) {
        let mut w = World::new(clients, cap);
        for e in &events {
            let e = match e {
                Event::Edit { client, at, text } => Event::Edit { client: client % clients, at: *at, text: text.clone() },
                Event::Pump { client } => Event::Pump { client: client % clients },
                Event::ToRelay { client } => Event::ToRelay { client: client % clients },
                Event::ToClient { client } => Event::ToClient { client: client % clients },
                Event::Drop { client } => Event::Drop { client: client % clients },
                other => other.clone(),
            };
            w.run(&e);
        }
        w.heal();
        let want = w.relay.text("t").map(|t| t.to_string()).unwrap_or_default();
        for (i, c) in w.clients.iter().enumerate() {
            prop_assert_eq!(c.doc.version(), w.relay.version(), "client {} version", i);
            prop_assert_eq!(c.doc.text("t").map(|t| t.to_string()).unwrap_or_default(), want.clone());
            let out = c.outbox.as_ref().unwrap();
            prop_assert!(out.is_idle());
            prop_assert_eq!(out.known(), w.relay.version(), "client {} knows what the relay holds", i);
        }
    }
}
