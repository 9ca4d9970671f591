//! Observers: events are enough to mirror the document exactly.

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use weft_core::doc::{Change, Event, Kind, Origin, Path};
use weft_core::{Doc, ReplicaId, TextOp};
use weft_tests::doc_sim::{
    config, parent_map, reset_clock, run_tx, tx_strategy, Profile, Scalar, TxSpec, CLOCKS,
};

type Log = Arc<Mutex<Vec<Event>>>;

fn sink(doc: &mut Doc, path: Option<Path>) -> (Log, weft_core::doc::SubscriptionId) {
    let log: Log = Arc::default();
    let l = log.clone();
    let cb = move |ev: &Event| l.lock().unwrap().push(ev.clone());
    let id = match path {
        None => doc.subscribe(cb),
        Some(p) => doc.subscribe_path(p, cb),
    };
    (log, id)
}

fn take(log: &Log) -> Vec<Event> {
    std::mem::take(&mut *log.lock().unwrap())
}

/// What a view built only from events holds.
#[derive(Default)]
struct Mirror {
    texts: BTreeMap<Path, String>,
    counters: BTreeMap<Path, i128>,
    sets: BTreeMap<Path, BTreeSet<Vec<u8>>>,
}

impl Mirror {
    fn absorb(&mut self, ev: &Event) -> Result<(), TestCaseError> {
        match &ev.change {
            Change::Text(ops) => {
                let t = self.texts.entry(ev.path.clone()).or_default();
                TextOp::apply_all(ops, t);
            }
            Change::Counter { old, new } => {
                let c = self.counters.entry(ev.path.clone()).or_default();
                prop_assert_eq!(*c, *old, "counter event's old value at {}", ev.path);
                *c = *new;
            }
            Change::Set { added, removed } => {
                let s = self.sets.entry(ev.path.clone()).or_default();
                for a in added {
                    prop_assert!(s.insert(a.clone()), "added twice at {}", ev.path);
                }
                for r in removed {
                    prop_assert!(s.remove(r), "removed an absent element at {}", ev.path);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Every mirrored value equals what the document reads.
    fn check(&self, doc: &Doc) -> Result<(), TestCaseError> {
        let fail = |e: weft_core::DocError| TestCaseError::fail(format!("read: {e}"));
        for (p, t) in &self.texts {
            let (m, k) = parent_map(doc, p).map_err(fail)?;
            prop_assert_eq!(&m.text(&k).map_err(fail)?.to_string(), t, "text at {}", p);
        }
        for (p, c) in &self.counters {
            let (m, k) = parent_map(doc, p).map_err(fail)?;
            prop_assert_eq!(m.counter(&k).map_err(fail)?, *c, "counter at {}", p);
        }
        for (p, s) in &self.sets {
            let (m, k) = parent_map(doc, p).map_err(fail)?;
            let set = m.set::<Scalar>(&k).map_err(fail)?;
            let decoded: BTreeSet<Scalar> = s
                .iter()
                .map(|b| set.decode(b))
                .collect::<Result<_, _>>()
                .map_err(fail)?;
            let read: BTreeSet<Scalar> = set.to_vec().map_err(fail)?.into_iter().collect();
            prop_assert_eq!(decoded, read, "set at {}", p);
        }
        // And every text and counter of the document is mirrored.
        for (p, kind) in [
            (Path::root().child("text", Kind::Text), Kind::Text),
            (
                Path::root().child("m", Kind::Map).child("t", Kind::Text),
                Kind::Text,
            ),
            (Path::root().child("n", Kind::Counter), Kind::Counter),
        ] {
            let (m, k) = parent_map(doc, &p).map_err(fail)?;
            if m.kind_of(&k) == Some(kind) {
                match kind {
                    Kind::Text => prop_assert_eq!(
                        self.texts.get(&p).cloned().unwrap_or_default(),
                        m.text(&k).map_err(fail)?.to_string()
                    ),
                    _ => prop_assert_eq!(
                        self.counters.get(&p).copied().unwrap_or_default(),
                        m.counter(&k).map_err(fail)?
                    ),
                }
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
enum ObsStep {
    /// Replica 0..3 edits (replica 1 is the observed one).
    Edit(usize, TxSpec),
    /// Replica 1 receives one of the updates made so far.
    Deliver(proptest::sample::Index),
    /// Replica 1 merges replica 0 or 2 directly.
    Merge(usize),
    /// Cancel the third subscription.
    Unsubscribe,
}

fn obs_steps() -> impl Strategy<Value = Vec<ObsStep>> {
    proptest::collection::vec(
        prop_oneof![
            4 => (0usize..3, tx_strategy(Profile::STABLE)).prop_map(|(r, t)| ObsStep::Edit(r, t)),
            4 => any::<proptest::sample::Index>().prop_map(ObsStep::Deliver),
            1 => prop_oneof![Just(0usize), Just(2)].prop_map(ObsStep::Merge),
            1 => Just(ObsStep::Unsubscribe),
        ],
        0..40,
    )
}

proptest! {
    #![proptest_config(config())]

    /// Replica B mirrors texts (by applying every text event's ops to a
    /// string), counters (by `old -> new`) and sets (by added/removed) and
    /// the mirror always equals what B reads, through local edits, remote
    /// updates in any order and merges. A path subscription sees exactly the
    /// events under its path; a cancelled subscription sees nothing more.
    #[test]
    fn events_mirror_the_document(steps in obs_steps()) {
        reset_clock();
        let mut docs: Vec<Doc> = (1..=3)
            .map(|i| Doc::new(ReplicaId::new(i)).with_clock(CLOCKS[0]))
            .collect();
        let m_path = Path::root().child("m", Kind::Map);
        let (all, _) = sink(&mut docs[1], None);
        let (under_m, _) = sink(&mut docs[1], Some(m_path.clone()));
        let (cancelled, cancel_id) = sink(&mut docs[1], None);
        let mut live = true;
        let mut mirror = Mirror::default();
        let mut sent: Vec<Vec<u8>> = Vec::new();
        for step in &steps {
            let origin = match step {
                ObsStep::Edit(r, tx) => {
                    if let Ok(u) = run_tx(&mut docs[*r], tx) {
                        sent.push(u);
                    }
                    if *r == 1 { Origin::Local } else { Origin::Remote }
                }
                ObsStep::Deliver(i) => {
                    if !sent.is_empty() {
                        let u = i.get(&sent).clone();
                        docs[1].apply(&u).map_err(|e| TestCaseError::fail(format!("{e}")))?;
                    }
                    Origin::Remote
                }
                ObsStep::Merge(from) => {
                    let src = Doc::load(&docs[*from].save(), ReplicaId::new(9))
                        .map_err(|e| TestCaseError::fail(format!("{e}")))?;
                    docs[1].merge(&src);
                    Origin::Remote
                }
                ObsStep::Unsubscribe => {
                    prop_assert_eq!(docs[1].unsubscribe(cancel_id), live);
                    live = false;
                    Origin::Remote
                }
            };
            let events = take(&all);
            for ev in &events {
                prop_assert_eq!(ev.origin, origin);
                mirror.absorb(ev)?;
            }
            let want: Vec<Event> = events.iter().filter(|e| e.path.starts_with(&m_path)).cloned().collect();
            prop_assert_eq!(take(&under_m), want, "path subscription");
            let got = take(&cancelled);
            if live {
                prop_assert_eq!(got, events);
            } else {
                prop_assert!(got.is_empty(), "a cancelled subscription still receives events");
            }
            mirror.check(&docs[1])?;
        }
    }
}

#[test]
fn key_events_for_creation_removal_and_kind_changes() {
    let mut a = Doc::new(ReplicaId::new(1));
    let mut b = Doc::new(ReplicaId::new(2));
    let (log, _) = sink(&mut b, None);
    let (inner, _) = sink(&mut b, Some(Path::root().child("m", Kind::Map)));
    let u1 = a
        .transact(|tx| tx.map("m")?.text("t")?.insert(0, "hi"))
        .unwrap();
    b.apply(&u1).unwrap();
    let ev = take(&log);
    let keys: Vec<(String, Change)> = ev
        .iter()
        .filter(|e| matches!(e.change, Change::Keys(_)))
        .map(|e| (e.path.to_string(), e.change.clone()))
        .collect();
    assert!(
        keys.contains(&(String::new(), Change::Keys(vec!["m".into()]))),
        "{keys:?}"
    );
    assert!(
        keys.contains(&("m".into(), Change::Keys(vec!["t".into()]))),
        "{keys:?}"
    );
    assert!(ev
        .iter()
        .any(|e| e.change == Change::Text(vec![TextOp::Insert("hi".into())])));
    // The root's key event is not under m.
    let under_m = take(&inner);
    assert!(under_m
        .iter()
        .all(|e| e.path.starts_with(&Path::root().child("m", Kind::Map))));
    assert_eq!(under_m.len(), ev.len() - 1);

    // Removing a key is a key event; so is the key showing another kind.
    let u2 = a.transact(|tx| {
        tx.root().remove("m");
        Ok(())
    });
    b.apply(&u2.unwrap()).unwrap();
    assert_eq!(
        take(&log)
            .iter()
            .map(|e| e.change.clone())
            .collect::<Vec<_>>(),
        vec![Change::Keys(vec!["m".into()])]
    );
    assert!(
        take(&inner).is_empty(),
        "the root's key registry is not under m"
    );
    let u3 = a.transact(|tx| tx.counter("m")?.increment(4)).unwrap();
    b.apply(&u3).unwrap();
    let ev = take(&log);
    assert!(ev.contains(&Event {
        path: Path::root(),
        change: Change::Keys(vec!["m".into()]),
        origin: Origin::Remote,
        tag: None,
        version: std::sync::Arc::new(b.version().clone()),
    }));
    assert!(ev
        .iter()
        .any(|e| e.change == Change::Counter { old: 0, new: 4 }));
    assert_eq!(b.counter("m").unwrap(), 4);
    // A no-op (duplicate) delivers nothing.
    b.apply(&u3).unwrap();
    assert!(take(&log).is_empty());
    // Local commits are reported as local, and a failed transaction reports nothing.
    let _ = b.transact(|tx| {
        tx.counter("m")?.increment(1)?;
        tx.text("m").map(drop)
    });
    assert!(take(&log).is_empty(), "a failed transaction emitted events");
    b.transact(|tx| tx.counter("m")?.decrement(1)).unwrap();
    assert_eq!(
        take(&log),
        vec![Event {
            // "m" was removed once, so the counter is its second generation.
            path: Path::root().child_gen("m", Kind::Counter, 1),
            change: Change::Counter { old: 4, new: 3 },
            origin: Origin::Local,
            tag: None,
            version: std::sync::Arc::new(b.version().clone()),
        }]
    );
}
