//! Document lists (`tx.list(..)`, issue 14): a sequential `Vec` model,
//! convergence of random replicas under random delivery (reordered,
//! duplicated, resent), events that rebuild the list, non-interleaving of
//! concurrent runs, snapshots, and decoding of damaged bytes. The case
//! count comes from `PROPTEST_CASES`.

use proptest::prelude::*;
use std::sync::{Arc, Mutex};
use weft_core::doc::{Change, ListItem, Path};
use weft_core::{Doc, ListOp, ReplicaId};
use weft_tests::doc_sim::config;

#[derive(Clone, Debug)]
enum Op {
    Insert(usize, Vec<u32>),
    Delete(usize, usize),
    Push(u32),
    /// A map element with a title, inserted at the index.
    PushCard(usize, u32),
    /// Edit the nested map at the index (if it is one): set its title.
    Retitle(usize, u32),
    /// Append to the nested text of the card at the index (if a card).
    Note(usize, String),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<usize>(), prop::collection::vec(0u32..1000, 1..4)).prop_map(|(i, v)| Op::Insert(i, v)),
        3 => (any::<usize>(), 1usize..4).prop_map(|(i, n)| Op::Delete(i, n)),
        2 => (0u32..1000).prop_map(Op::Push),
        1 => (any::<usize>(), 0u32..1000).prop_map(|(i, t)| Op::PushCard(i, t)),
        1 => (any::<usize>(), 0u32..1000).prop_map(|(i, t)| Op::Retitle(i, t)),
        1 => (any::<usize>(), "[a-c]{1,3}").prop_map(|(i, s)| Op::Note(i, s)),
    ]
}

/// What a reader sees in the list: scalars, and cards as (title, notes).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Num(u32),
    Card(Option<u32>, String),
}

fn read(doc: &Doc) -> Vec<Seen> {
    let l = doc.list("l").unwrap();
    (0..l.len())
        .map(|i| match l.item(i).unwrap() {
            ListItem::Value(b) => Seen::Num(l.decode(&b).unwrap()),
            ListItem::Nested(_) => {
                let m = l.map(i).unwrap();
                Seen::Card(
                    m.register::<u32>("title").unwrap(),
                    m.text("notes").unwrap().to_string(),
                )
            }
        })
        .collect()
}

/// Runs `op` as one transaction; returns the update (or `None` if the op
/// does not apply to the current list, e.g. deleting from an empty one).
fn run(doc: &mut Doc, op: &Op) -> Option<Vec<u8>> {
    let len = doc.list("l").unwrap().len();
    let is_card = |i: usize| matches!(doc.list("l").unwrap().item(i), Some(ListItem::Nested(_)));
    match op {
        Op::Insert(i, v) => {
            let at = i % (len + 1);
            Some(doc.transact(|tx| tx.list("l")?.insert_all(at, v)).unwrap())
        }
        Op::Delete(i, n) if len > 0 => {
            let at = i % len;
            let n = (*n).min(len - at);
            Some(doc.transact(|tx| tx.list("l")?.delete(at, n)).unwrap())
        }
        Op::Push(v) => Some(doc.transact(|tx| tx.list("l")?.push(v)).unwrap()),
        Op::PushCard(i, t) => {
            let at = i % (len + 1);
            Some(
                doc.transact(|tx| {
                    let mut l = tx.list("l")?;
                    let mut card = l.insert_map(at)?;
                    card.put("title", t)?;
                    card.text("notes")?;
                    Ok(())
                })
                .unwrap(),
            )
        }
        Op::Retitle(i, t) if len > 0 && is_card(i % len) => Some(
            doc.transact(|tx| tx.list("l")?.map(i % len)?.put("title", t))
                .unwrap(),
        ),
        Op::Note(i, s) if len > 0 && is_card(i % len) => Some(
            doc.transact(|tx| {
                let mut l = tx.list("l")?;
                let mut card = l.map(i % len)?;
                let mut notes = card.text("notes")?;
                let end = notes.len();
                notes.insert(end, s)
            })
            .unwrap(),
        ),
        _ => None,
    }
}

/// A mirror of the list kept only from events (scalars and nested paths).
fn mirror(doc: &mut Doc) -> Arc<Mutex<Vec<ListItem>>> {
    let view = Arc::new(Mutex::new(Vec::new()));
    let sink = view.clone();
    let path = Path::root().child("l", weft_core::doc::Kind::List);
    let (items, _) = doc.read_and_subscribe(
        path.clone(),
        |d| d.list("l").unwrap().items(),
        move |ev| {
            if ev.path == path {
                if let Change::List(ops) = &ev.change {
                    ListOp::apply_all(ops, &mut sink.lock().unwrap());
                }
            }
        },
    );
    *view.lock().unwrap() = items;
    view
}

proptest! {
    #![proptest_config(config())]

    /// One replica against a `Vec` model; events rebuild the same list.
    #[test]
    fn list_matches_vec_model(ops in prop::collection::vec(op(), 1..40)) {
        let mut doc = Doc::new(ReplicaId::new(1));
        let view = mirror(&mut doc);
        let mut model: Vec<Seen> = Vec::new();
        for op in &ops {
            let len = model.len();
            let applied = run(&mut doc, op).is_some();
            if !applied {
                continue;
            }
            match op {
                Op::Insert(i, v) => {
                    let at = i % (len + 1);
                    model.splice(at..at, v.iter().map(|&x| Seen::Num(x)));
                }
                Op::Delete(i, n) => {
                    let at = i % len;
                    model.drain(at..at + (*n).min(len - at));
                }
                Op::Push(v) => model.push(Seen::Num(*v)),
                Op::PushCard(i, t) => model.insert(i % (len + 1), Seen::Card(Some(*t), String::new())),
                Op::Retitle(i, t) => {
                    if let Seen::Card(title, _) = &mut model[i % len] {
                        *title = Some(*t);
                    }
                }
                Op::Note(i, s) => {
                    if let Seen::Card(_, notes) = &mut model[i % len] {
                        notes.push_str(s);
                    }
                }
            }
            prop_assert_eq!(&read(&doc), &model);
            prop_assert_eq!(&*view.lock().unwrap(), &doc.list("l").unwrap().items());
        }
        // A snapshot reloads to the same list.
        let back = Doc::load(&doc.save(), ReplicaId::new(9)).unwrap();
        prop_assert_eq!(read(&back), model);
    }

    /// 2–4 replicas edit concurrently; updates are delivered in random
    /// order, some twice; once everything is delivered all replicas read
    /// the same list, equal each other, and their event mirrors agree.
    #[test]
    fn lists_converge(
        n in 2usize..=4,
        steps in prop::collection::vec((any::<usize>(), op(), any::<usize>(), any::<bool>()), 1..40),
    ) {
        let mut docs: Vec<Doc> = (0..n).map(|i| Doc::new(ReplicaId::new(i as u64 + 1))).collect();
        let views: Vec<_> = docs.iter_mut().map(mirror).collect();
        // Per replica, updates not yet delivered to it.
        let mut inbox: Vec<Vec<Vec<u8>>> = vec![Vec::new(); n];
        for (who, op, pick, dup) in &steps {
            let r = who % n;
            if let Some(u) = run(&mut docs[r], op) {
                for (j, q) in inbox.iter_mut().enumerate() {
                    if j != r {
                        q.push(u.clone());
                    }
                }
            }
            // Deliver one random waiting update to a random replica.
            let t = pick % n;
            if !inbox[t].is_empty() {
                let k = pick % inbox[t].len();
                let u = if *dup { inbox[t][k].clone() } else { inbox[t].remove(k) };
                docs[t].apply(&u).unwrap();
            }
        }
        for (t, q) in inbox.iter_mut().enumerate() {
            for u in q.drain(..).rev() {
                docs[t].apply(&u).unwrap();
            }
        }
        let first = read(&docs[0]);
        for (i, d) in docs.iter().enumerate() {
            prop_assert_eq!(d.pending_updates(), 0);
            prop_assert_eq!(d, &docs[0], "replica {} diverged", i);
            prop_assert_eq!(&read(d), &first);
            prop_assert_eq!(&*views[i].lock().unwrap(), &d.list("l").unwrap().items());
        }
        // Catch-up from nothing and a snapshot reload give the same list.
        let mut late = Doc::new(ReplicaId::new(99));
        late.apply(&docs[0].diff(late.version())).unwrap();
        prop_assert_eq!(read(&late), first.clone());
        let back = Doc::load(&docs[1].save(), ReplicaId::new(98)).unwrap();
        prop_assert_eq!(read(&back), first);
    }

    /// Runs inserted concurrently at one place never interleave, whatever
    /// the order they are typed in (appending or prepending one by one).
    #[test]
    fn concurrent_runs_do_not_interleave(
        base in 0usize..4,
        at in any::<usize>(),
        a_len in 1usize..6,
        b_len in 1usize..6,
        a_rev in any::<bool>(),
        b_rev in any::<bool>(),
    ) {
        let mut a = Doc::new(ReplicaId::new(1));
        let seed: Vec<u32> = (0..base as u32).collect();
        let u = a.transact(|tx| tx.list("l")?.insert_all(0, &seed)).unwrap();
        let mut b = Doc::new(ReplicaId::new(2));
        b.apply(&u).unwrap();
        let at = at % (base + 1);
        let mut ua = Vec::new();
        let mut ub = Vec::new();
        for k in 0..a_len {
            let i = if a_rev { at } else { at + k };
            ua.push(a.transact(|tx| tx.list("l")?.insert(i, &(100 + k as u32))).unwrap());
        }
        for k in 0..b_len {
            let i = if b_rev { at } else { at + k };
            ub.push(b.transact(|tx| tx.list("l")?.insert(i, &(200 + k as u32))).unwrap());
        }
        for u in &ub { a.apply(u).unwrap(); }
        for u in &ua { b.apply(u).unwrap(); }
        prop_assert_eq!(&a, &b);
        let v: Vec<u32> = a.list("l").unwrap().to_vec().unwrap();
        let runs = |lo: u32| {
            let idx: Vec<usize> = v.iter().enumerate().filter(|(_, x)| (lo..lo + 100).contains(*x)).map(|(i, _)| i).collect();
            idx.windows(2).all(|w| w[1] == w[0] + 1)
        };
        prop_assert!(runs(100) && runs(200), "interleaved: {:?}", v);
    }

    /// Damaged list updates and snapshots are refused with an error or
    /// applied whole; never a panic, and the document stays readable.
    #[test]
    fn damaged_bytes_never_panic(
        ops in prop::collection::vec(op(), 1..12),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(),
    ) {
        let mut doc = Doc::new(ReplicaId::new(1));
        let mut updates = Vec::new();
        for op in &ops {
            if let Some(u) = run(&mut doc, op) {
                updates.push(u);
            }
        }
        let mut inputs = vec![doc.save(), doc.diff(&Default::default())];
        inputs.extend(updates);
        for bytes in inputs {
            let mut bad = bytes.clone();
            for (at, x) in &flips {
                let i = at % bad.len();
                bad[i] ^= x | 1;
            }
            let mut fresh = Doc::new(ReplicaId::new(2));
            if fresh.apply(&bad).is_ok() {
                let _ = read_lenient(&fresh);
            }
            if let Ok(d) = Doc::load(&bad, ReplicaId::new(3)) {
                let _ = read_lenient(&d);
            }
            let short = &bytes[..cut % bytes.len()];
            // Strictly shorter than a whole encoding: never accepted.
            prop_assert!(Doc::new(ReplicaId::new(4)).apply(short).is_err());
            prop_assert!(Doc::load(short, ReplicaId::new(5)).is_err());
        }
    }
}

/// Reads every list and nested value without unwrapping (damaged input may
/// hold values of unexpected types).
fn read_lenient(doc: &Doc) -> usize {
    let Ok(l) = doc.list("l") else { return 0 };
    let mut n = 0;
    for i in 0..l.len() {
        match l.item(i) {
            Some(ListItem::Value(b)) => n += usize::from(l.decode::<u32>(&b).is_ok()),
            Some(ListItem::Nested(_)) => n += usize::from(l.map(i).is_ok()),
            None => {}
        }
    }
    n
}
