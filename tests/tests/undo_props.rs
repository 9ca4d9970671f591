//! Undo/redo (`weft_core::doc::UndoManager`, issue 14) after random
//! concurrent histories: replica A edits every kind of value (text, list
//! with nested maps, counter, registers, map keys, set) in undo steps while
//! replica B edits concurrently; B's updates reach A at random points
//! between A's steps (so A's later edits build on B's, and A deletes B's
//! text and elements too), A's reach B at the end. Undoing all of A's steps
//! leaves exactly B's edits on the shared base (what a replica that never
//! saw A's edits reads); redoing them all gives A's view back; the undo and
//! redo updates sync to B like any edit. The case count comes from
//! `PROPTEST_CASES`.

use proptest::prelude::*;
use std::cell::Cell;
use std::collections::BTreeMap;
use weft_core::doc::{ListItem, UndoManager};
use weft_core::{Doc, ReplicaId};
use weft_tests::doc_sim::config;

thread_local! {
    static NOW: Cell<u64> = const { Cell::new(1_000_000) };
}

fn clock() -> u64 {
    NOW.with(Cell::get)
}

fn advance(ms: u64) {
    NOW.with(|n| n.set(n.get() + ms));
}

/// A's edits: anything, on every kind of value.
#[derive(Clone, Debug)]
enum AOp {
    TextInsert(usize, String),
    TextDelete(usize, usize),
    ListInsert(usize, u32),
    ListDelete(usize, usize),
    ListCard(usize, u32),
    CardTitle(usize, u32),
    Count(i8),
    Put(u8, u32),
    Remove(u8),
    SetAdd(u8),
    SetRemove(u8),
}

/// B's edits: inserts into the shared text and list, counter changes, and
/// writes to its own keys and set elements.
#[derive(Clone, Debug)]
enum BOp {
    TextInsert(usize, String),
    ListInsert(usize, u32),
    Count(i8),
    Put(u8, u32),
    SetAdd(u8),
}

fn a_op() -> impl Strategy<Value = AOp> {
    prop_oneof![
        3 => (any::<usize>(), "[a-e]{1,4}").prop_map(|(i, s)| AOp::TextInsert(i, s)),
        2 => (any::<usize>(), 1usize..4).prop_map(|(i, n)| AOp::TextDelete(i, n)),
        2 => (any::<usize>(), 0u32..100).prop_map(|(i, v)| AOp::ListInsert(i, v)),
        2 => (any::<usize>(), 1usize..3).prop_map(|(i, n)| AOp::ListDelete(i, n)),
        1 => (any::<usize>(), 0u32..100).prop_map(|(i, v)| AOp::ListCard(i, v)),
        1 => (any::<usize>(), 0u32..100).prop_map(|(i, v)| AOp::CardTitle(i, v)),
        1 => any::<i8>().prop_map(AOp::Count),
        2 => (0u8..3, 0u32..100).prop_map(|(k, v)| AOp::Put(k, v)),
        1 => (0u8..3).prop_map(AOp::Remove),
        1 => (0u8..3).prop_map(AOp::SetAdd),
        1 => (0u8..3).prop_map(AOp::SetRemove),
    ]
}

fn b_op() -> impl Strategy<Value = BOp> {
    prop_oneof![
        3 => (any::<usize>(), "[X-Z]{1,3}").prop_map(|(i, s)| BOp::TextInsert(i, s)),
        2 => (any::<usize>(), 100u32..200).prop_map(|(i, v)| BOp::ListInsert(i, v)),
        1 => any::<i8>().prop_map(BOp::Count),
        1 => (0u8..3, 0u32..100).prop_map(|(k, v)| BOp::Put(k, v)),
        1 => (0u8..3).prop_map(BOp::SetAdd),
    ]
}

fn run_a(doc: &mut Doc, op: &AOp) -> Vec<u8> {
    let tlen = doc.text("t").unwrap().len();
    let l = doc.list("l").unwrap();
    let llen = l.len();
    let card = |i: usize| matches!(l.item(i), Some(ListItem::Nested(_)));
    let op = op.clone();
    let is_card = match &op {
        AOp::CardTitle(i, _) if llen > 0 => card(i % llen),
        _ => false,
    };
    doc.transact(|tx| {
        match op {
            AOp::TextInsert(i, s) => tx.text("t")?.insert(i % (tlen + 1), &s)?,
            AOp::TextDelete(i, n) if tlen > 0 => {
                let at = i % tlen;
                tx.text("t")?.delete(at, n.min(tlen - at))?
            }
            AOp::ListInsert(i, v) => tx.list("l")?.insert(i % (llen + 1), &v)?,
            AOp::ListDelete(i, n) if llen > 0 => {
                let at = i % llen;
                tx.list("l")?.delete(at, n.min(llen - at))?
            }
            AOp::ListCard(i, v) => {
                let mut list = tx.list("l")?;
                list.insert_map(i % (llen + 1))?.put("title", &v)?;
            }
            AOp::CardTitle(i, v) if is_card => {
                tx.list("l")?.map(i % llen)?.put("title", &v)?;
            }
            AOp::Count(n) if n >= 0 => tx.counter("c")?.increment(n as u64)?,
            AOp::Count(n) => tx.counter("c")?.decrement(n.unsigned_abs() as u64)?,
            AOp::Put(k, v) => tx.map("m")?.put(&format!("a{k}"), &v)?,
            AOp::Remove(k) => tx.map("m")?.remove(&format!("a{k}")),
            AOp::SetAdd(k) => tx.set::<String>("s")?.add(&format!("a{k}"))?,
            AOp::SetRemove(k) => tx.set::<String>("s")?.remove(&format!("a{k}"))?,
            _ => {}
        }
        Ok(())
    })
    .unwrap()
}

fn run_b(doc: &mut Doc, op: &BOp) -> Vec<u8> {
    let tlen = doc.text("t").unwrap().len();
    let llen = doc.list("l").unwrap().len();
    doc.transact(|tx| {
        match op {
            BOp::TextInsert(i, s) => tx.text("t")?.insert(i % (tlen + 1), s)?,
            BOp::ListInsert(i, v) => tx.list("l")?.insert(i % (llen + 1), v)?,
            BOp::Count(n) if *n >= 0 => tx.counter("c")?.increment(*n as u64)?,
            BOp::Count(n) => tx.counter("c")?.decrement(n.unsigned_abs() as u64)?,
            BOp::Put(k, v) => tx.map("m")?.put(&format!("b{k}"), v)?,
            BOp::SetAdd(k) => tx.set::<String>("s")?.add(&format!("b{k}"))?,
        }
        Ok(())
    })
    .unwrap()
}

/// Everything a user sees.
#[derive(Debug, PartialEq)]
struct View {
    text: String,
    list: Vec<String>,
    counter: i128,
    map: BTreeMap<String, Option<u32>>,
    set: Vec<String>,
}

fn view(doc: &Doc) -> View {
    let l = doc.list("l").unwrap();
    let list = (0..l.len())
        .map(|i| match l.item(i).unwrap() {
            ListItem::Value(b) => format!("{}", l.decode::<u32>(&b).unwrap()),
            ListItem::Nested(_) => format!(
                "card:{:?}",
                l.map(i).unwrap().register::<u32>("title").unwrap()
            ),
        })
        .collect();
    let m = doc.map("m").unwrap();
    View {
        text: doc.text("t").unwrap().to_string(),
        list,
        counter: doc.counter("c").unwrap(),
        map: m
            .keys()
            .into_iter()
            .map(|(k, _)| {
                let v = m.register::<u32>(&k).unwrap();
                (k, v)
            })
            .collect(),
        set: doc.set::<String>("s").unwrap().to_vec().unwrap(),
    }
}

/// The shared starting point, made by a third replica.
fn base() -> Vec<u8> {
    let mut z = Doc::new(ReplicaId::new(7));
    z.transact(|tx| {
        tx.text("t")?.insert(0, "hello world")?;
        tx.list("l")?.insert_all(0, &[1u32, 2, 3])?;
        tx.list("l")?.push_map()?.put("title", &0u32)?;
        tx.counter("c")?.increment(10)?;
        tx.map("m")?.put("a0", &5u32)?;
        tx.set::<String>("s")?.add(&"a1".to_string())?;
        Ok(())
    })
    .unwrap()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn undo_all_restores_the_others_view_and_redo_reapplies(
        steps in prop::collection::vec(
            (prop::collection::vec(a_op(), 1..3), prop::collection::vec(b_op(), 0..3), any::<u8>()),
            1..8,
        ),
        window in prop::sample::select(vec![0u64, 50]),
    ) {
        NOW.with(|n| n.set(1_000_000));
        let base = base();
        let mut a = Doc::new(ReplicaId::new(1))
            .with_clock(clock)
            .with_undo(UndoManager::new().capture_window(window));
        let mut b = Doc::new(ReplicaId::new(2)).with_clock(clock);
        let mut c = Doc::new(ReplicaId::new(3)); // base + B only
        for d in [&mut a, &mut b, &mut c] {
            d.apply(&base).unwrap();
        }
        let mut to_a: Vec<Vec<u8>> = Vec::new();
        let mut to_b: Vec<Vec<u8>> = Vec::new();
        // B edits without seeing A's edits (so `c`, base + B, is a state
        // some replica could be in); A receives B's at random points.
        for (a_ops, b_ops, deliver) in &steps {
            for op in a_ops {
                to_b.push(run_a(&mut a, op));
                advance(1);
            }
            advance(100); // past the window: the next edits are a new step
            for op in b_ops {
                let u = run_b(&mut b, op);
                c.apply(&u).unwrap();
                to_a.push(u);
            }
            // Cross some updates now, in a random order.
            if deliver % 2 == 0 {
                for u in to_a.drain(..).rev() {
                    a.apply(&u).unwrap();
                }
            }
        }
        for u in to_a.drain(..) {
            a.apply(&u).unwrap();
        }
        for u in to_b.drain(..) {
            b.apply(&u).unwrap();
        }
        prop_assert_eq!(&a, &b);
        let done = view(&a);
        let steps_n = a.undo_manager().unwrap().undo_len();
        // Edits 1 ms apart form one step within a 50 ms window; with a 0 ms
        // window each edit is its own step.
        let bound = if window == 0 { steps.iter().map(|s| s.0.len()).sum() } else { steps.len() };
        prop_assert!(steps_n <= bound);
        // Undo everything A did: what is left is B's work on the base.
        let mut undo_updates = Vec::new();
        while let Some(u) = a.undo().unwrap() {
            undo_updates.push(u);
        }
        prop_assert_eq!(view(&a), view(&c), "undo-all != base + B's edits");
        for u in &undo_updates {
            b.apply(u).unwrap();
        }
        prop_assert_eq!(&a, &b, "undo updates sync");
        // Redo everything: A's view is back.
        let mut n = 0;
        while let Some(u) = a.redo().unwrap() {
            b.apply(&u).unwrap();
            n += 1;
        }
        // (A step whose edits cancel out has nothing to redo.)
        prop_assert!(n <= steps_n);
        prop_assert_eq!(view(&a), done, "redo-all != the view before undo");
        prop_assert_eq!(&a, &b, "redo updates sync");
    }

    /// Undo with remote edits still arriving between the steps: each undo
    /// reverts exactly its step (checked against a replay without it).
    #[test]
    fn undo_reverts_only_the_latest_step(
        first in prop::collection::vec(a_op(), 1..4),
        second in prop::collection::vec(a_op(), 1..4),
        remote in prop::collection::vec(b_op(), 0..4),
    ) {
        NOW.with(|n| n.set(1_000_000));
        let base = base();
        let mut a = Doc::new(ReplicaId::new(1)).with_clock(clock).with_undo(UndoManager::new());
        let mut b = Doc::new(ReplicaId::new(2)).with_clock(clock);
        a.apply(&base).unwrap();
        b.apply(&base).unwrap();
        for op in &first {
            run_a(&mut a, op);
        }
        a.undo_boundary();
        let after_first = view(&a);
        let mut remote_updates = Vec::new();
        for op in &remote {
            remote_updates.push(run_b(&mut b, op));
        }
        let steps_before = a.undo_manager().unwrap().undo_len();
        for op in &second {
            run_a(&mut a, op);
        }
        for u in &remote_updates {
            a.apply(u).unwrap();
        }
        // A second step that changed nothing left nothing to undo.
        prop_assume!(a.undo_manager().unwrap().undo_len() > steps_before);
        a.undo().unwrap();
        // Expected: the first step plus B's edits, replayed without the second.
        let mut expect = Doc::new(ReplicaId::new(5)).with_clock(clock);
        expect.apply(&base).unwrap();
        for op in &first {
            run_a(&mut expect, op);
        }
        prop_assert_eq!(&view(&expect), &after_first);
        if remote.is_empty() {
            prop_assert_eq!(view(&a), after_first);
        } else {
            // With remote edits the text/list positions depend on where B
            // typed; every other value must match the replay.
            for u in &remote_updates {
                expect.apply(u).unwrap();
            }
            let (got, want) = (view(&a), view(&expect));
            prop_assert_eq!(got.counter, want.counter);
            prop_assert_eq!(got.map, want.map);
            prop_assert_eq!(got.set, want.set);
            prop_assert_eq!(got.text.len(), want.text.len());
            prop_assert_eq!(got.list.len(), want.list.len());
        }
    }
}
