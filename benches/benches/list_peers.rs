//! Lists and undo (issue 14): weft's document list against yrs (`Y.Array`,
//! `yrs::UndoManager`), Loro (`LoroList`, `loro::UndoManager`) and
//! automerge lists, in one run.
//!
//! `cargo bench -p weft-benches --bench list_peers` prints a markdown table.
//! Workload (seeded, the same for every peer): `WEFT_LIST_OPS` (default
//! 10,000) single-op transactions on one list of numbers — 60 % insert at a
//! random index, 25 % delete at a random index, 15 % push — then the
//! encoded size and load time of the result; and an undo workload: 2,000
//! single-op transactions, each its own undo step, then undo all and redo
//! all. Median of `WEFT_BENCH_RUNS` runs (default 5). Every peer's final
//! list is checked against a `Vec` model.

use std::time::{Duration, Instant};
use weft_benches::{median_time, ms};

/// One edit on a list of length `len`.
#[derive(Clone, Copy, Debug)]
enum Edit {
    Insert(usize, u32),
    Delete(usize),
    Push(u32),
}

fn script(n: usize) -> (Vec<Edit>, Vec<u32>) {
    let mut s = 0x5eed_u64;
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 33) as usize
    };
    let mut model: Vec<u32> = Vec::new();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let v = i as u32;
        let r = next() % 100;
        let e = if r < 60 || model.is_empty() {
            Edit::Insert(next() % (model.len() + 1), v)
        } else if r < 85 {
            Edit::Delete(next() % model.len())
        } else {
            Edit::Push(v)
        };
        match e {
            Edit::Insert(at, v) => model.insert(at, v),
            Edit::Delete(at) => {
                model.remove(at);
            }
            Edit::Push(v) => model.push(v),
        }
        out.push(e);
    }
    (out, model)
}

struct Row {
    peer: &'static str,
    edits: Duration,
    bytes: usize,
    load: Duration,
    undo_redo: Option<Duration>,
}

mod weft {
    use super::Edit;
    use weft_core::doc::UndoManager;
    use weft_core::{Doc, ReplicaId};

    pub(crate) fn edits(script: &[Edit], undo: bool) -> Doc {
        let mut doc = Doc::new(ReplicaId::new(1));
        if undo {
            doc.set_undo_manager(Some(
                UndoManager::new().capture_window(0).max_steps(usize::MAX),
            ));
        }
        for e in script {
            doc.transact(|tx| {
                let mut l = tx.list("l")?;
                match *e {
                    Edit::Insert(at, v) => l.insert(at, &v),
                    Edit::Delete(at) => l.delete(at, 1),
                    Edit::Push(v) => l.push(&v),
                }
            })
            .expect("weft edit");
            if undo {
                doc.undo_boundary();
            }
        }
        doc
    }

    pub(crate) fn read(doc: &Doc) -> Vec<u32> {
        doc.list("l").and_then(|l| l.to_vec()).expect("weft read")
    }

    pub(crate) fn undo_redo(doc: &mut Doc) {
        while doc.undo().expect("weft undo").is_some() {}
        assert!(read(doc).is_empty(), "weft: undo all empties the list");
        while doc.redo().expect("weft redo").is_some() {}
    }
}

mod y {
    use super::Edit;
    use yrs::updates::decoder::Decode;
    use yrs::{Array, ArrayRef, Doc, Out, ReadTxn, StateVector, Transact, Update};

    /// One scripted edit in one yrs transaction.
    fn apply(arr: &ArrayRef, tx: &mut yrs::TransactionMut<'_>, e: &Edit) {
        match *e {
            Edit::Insert(at, v) => {
                arr.insert(tx, at as u32, f64::from(v));
            }
            Edit::Delete(at) => arr.remove_range(tx, at as u32, 1),
            Edit::Push(v) => {
                arr.push_back(tx, f64::from(v));
            }
        }
    }

    pub(crate) fn edits(script: &[Edit]) -> (Doc, ArrayRef) {
        let doc = Doc::new();
        let arr = doc.get_or_insert_array("l");
        for e in script {
            apply(&arr, &mut doc.transact_mut(), e);
        }
        (doc, arr)
    }

    pub(crate) fn read(doc: &Doc, arr: &ArrayRef) -> Vec<u32> {
        let tx = doc.transact();
        arr.iter(&tx)
            .map(|o| match o {
                Out::Any(yrs::Any::Number(yrs::any::Number::Float(n))) => n as u32,
                Out::Any(yrs::Any::Number(yrs::any::Number::Int(n))) => n as u32,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    pub(crate) fn encode(doc: &Doc) -> Vec<u8> {
        doc.transact()
            .encode_state_as_update_v1(&StateVector::default())
    }

    pub(crate) fn load(bytes: &[u8]) -> Doc {
        let d = Doc::new();
        d.transact_mut()
            .apply_update(Update::decode_v1(bytes).expect("yrs decode"))
            .expect("yrs apply");
        d
    }

    pub(crate) fn undo_redo(script: &[Edit]) -> usize {
        let doc = Doc::new();
        let arr = doc.get_or_insert_array("l");
        let mut mgr: yrs::UndoManager = yrs::UndoManager::with_options(yrs::undo::Options {
            capture_timeout_millis: 0,
            ..Default::default()
        });
        mgr.expand_scope(&doc, &arr);
        for e in script {
            apply(&arr, &mut doc.transact_mut(), e);
            mgr.reset();
        }
        while mgr.undo_blocking() {}
        assert_eq!(
            arr.len(&doc.transact()),
            0,
            "yrs: undo all empties the list"
        );
        while mgr.redo_blocking() {}
        let len = arr.len(&doc.transact());
        len as usize
    }
}

mod lo {
    use super::Edit;
    use loro::{ExportMode, LoroDoc, LoroList, LoroValue, UndoManager};

    fn apply(list: &LoroList, e: &Edit) {
        match *e {
            Edit::Insert(at, v) => list.insert(at, i64::from(v)),
            Edit::Delete(at) => list.delete(at, 1),
            Edit::Push(v) => list.push(i64::from(v)),
        }
        .expect("loro edit");
    }

    /// Every scripted edit in its own commit.
    pub(crate) fn edits(script: &[Edit]) -> LoroDoc {
        let doc = LoroDoc::new();
        doc.set_peer_id(1).expect("loro peer id");
        let list = doc.get_list("l");
        for e in script {
            apply(&list, e);
            doc.commit();
        }
        doc
    }

    pub(crate) fn read(doc: &LoroDoc) -> Vec<u32> {
        doc.get_list("l")
            .to_vec()
            .into_iter()
            .map(|v| match v {
                LoroValue::I64(n) => n as u32,
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }

    pub(crate) fn encode(doc: &LoroDoc) -> Vec<u8> {
        doc.export(ExportMode::Snapshot).expect("loro export")
    }

    pub(crate) fn load(bytes: &[u8]) -> LoroDoc {
        LoroDoc::from_snapshot(bytes).expect("loro load")
    }

    /// The undo workload: each edit its own step (merge interval 0), undo
    /// all, redo all; the list's length after.
    pub(crate) fn undo_redo(script: &[Edit]) -> usize {
        let doc = LoroDoc::new();
        doc.set_peer_id(1).expect("loro peer id");
        let list = doc.get_list("l");
        let mut mgr = UndoManager::new(&doc);
        mgr.set_merge_interval(0);
        mgr.set_max_undo_steps(script.len() + 1);
        for e in script {
            apply(&list, e);
            doc.commit();
            mgr.record_new_checkpoint().expect("loro checkpoint");
        }
        while mgr.can_undo() {
            mgr.undo().expect("loro undo");
        }
        assert_eq!(list.len(), 0, "loro: undo all empties the list");
        while mgr.can_redo() {
            mgr.redo().expect("loro redo");
        }
        list.len()
    }
}

mod am {
    use super::Edit;
    use automerge::transaction::Transactable;
    use automerge::{ActorId, AutoCommit, ObjId, ObjType, ReadDoc, ScalarValue, Value, ROOT};

    pub(crate) fn edits(script: &[Edit]) -> (AutoCommit, ObjId) {
        let mut doc = AutoCommit::new().with_actor(ActorId::from(&[1u8][..]));
        let list = doc.put_object(ROOT, "l", ObjType::List).expect("am list");
        doc.commit();
        for e in script {
            match *e {
                Edit::Insert(at, v) => doc.insert(&list, at, i64::from(v)),
                Edit::Delete(at) => doc.delete(&list, at),
                Edit::Push(v) => {
                    let len = doc.length(&list);
                    doc.insert(&list, len, i64::from(v))
                }
            }
            .expect("am edit");
            doc.commit();
        }
        (doc, list)
    }

    pub(crate) fn read(doc: &AutoCommit, list: &ObjId) -> Vec<u32> {
        (0..doc.length(list))
            .map(|i| match doc.get(list, i).expect("am get") {
                Some((Value::Scalar(s), _)) => match s.as_ref() {
                    ScalarValue::Int(n) => *n as u32,
                    other => panic!("unexpected {other:?}"),
                },
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    }
}

fn main() {
    let runs: usize = std::env::var("WEFT_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let n: usize = std::env::var("WEFT_LIST_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let (edits, model) = script(n);
    let (undo_script, undo_model) = script(2_000);
    let mut rows = Vec::new();

    // weft
    let (t, doc) = median_time(runs, || weft::edits(&edits, false));
    assert_eq!(weft::read(&doc), model, "weft list");
    let bytes = doc.save();
    let (load, back) = median_time(runs, || {
        weft_core::Doc::load(&bytes, weft_core::ReplicaId::new(2)).expect("weft load")
    });
    assert_eq!(weft::read(&back), model);
    let undo_time = median_of(runs, || {
        let mut d = weft::edits(&undo_script, true);
        let start = Instant::now();
        weft::undo_redo(&mut d);
        let took = start.elapsed();
        assert_eq!(weft::read(&d), undo_model, "weft redo all");
        took
    });
    rows.push(Row {
        peer: "weft Doc list",
        edits: t,
        bytes: bytes.len(),
        load,
        undo_redo: Some(undo_time),
    });

    // yrs
    let (t, (doc, arr)) = median_time(runs, || y::edits(&edits));
    assert_eq!(y::read(&doc, &arr), model, "yrs list");
    let bytes = y::encode(&doc);
    let (load, back) = median_time(runs, || y::load(&bytes));
    let arr2 = back.get_or_insert_array("l");
    assert_eq!(y::read(&back, &arr2), model);
    let undo_time = median_of(runs, || {
        let start = Instant::now();
        let len = y::undo_redo(&undo_script);
        let took = start.elapsed();
        assert_eq!(len, undo_model.len(), "yrs redo all");
        took
    });
    rows.push(Row {
        peer: "yrs Y.Array",
        edits: t,
        bytes: bytes.len(),
        load,
        undo_redo: Some(undo_time),
    });

    // Loro
    let (t, doc) = median_time(runs, || lo::edits(&edits));
    assert_eq!(lo::read(&doc), model, "loro list");
    let bytes = lo::encode(&doc);
    let (load, back) = median_time(runs, || lo::load(&bytes));
    assert_eq!(lo::read(&back), model);
    // One run: Loro's undo of 2,000 single-op steps takes near a minute
    // here (each undo diffs the document against its checkpoint).
    let undo_time = median_of(1, || {
        let start = Instant::now();
        let len = lo::undo_redo(&undo_script);
        let took = start.elapsed();
        assert_eq!(len, undo_model.len(), "loro redo all");
        took
    });
    rows.push(Row {
        peer: "Loro LoroList",
        edits: t,
        bytes: bytes.len(),
        load,
        undo_redo: Some(undo_time),
    });

    // automerge
    let (t, (mut doc, list)) = median_time(runs, || am::edits(&edits));
    assert_eq!(am::read(&doc, &list), model, "automerge list");
    let bytes = doc.save();
    let (load, _) = median_time(runs, || {
        automerge::AutoCommit::load(&bytes).expect("am load")
    });
    rows.push(Row {
        peer: "automerge list",
        edits: t,
        bytes: bytes.len(),
        load,
        undo_redo: None,
    });

    println!("### Lists: {n} single-op transactions, then undo/redo (median of {runs})\n");
    println!("| peer | edits ms | vs weft | encoded bytes | vs weft | load ms | undo+redo 2,000 steps ms | vs weft |");
    println!("|---|---|---|---|---|---|---|---|");
    let base = &rows[0];
    let (be, bb, bu) = (base.edits, base.bytes, base.undo_redo);
    for r in &rows {
        let undo = match (r.undo_redo, bu) {
            (Some(u), Some(b)) => format!(
                "{} | {:.2}×",
                ms(u),
                u.as_secs_f64() / b.as_secs_f64().max(1e-9)
            ),
            _ => "— | —".to_string(),
        };
        println!(
            "| {} | {} | {:.2}× | {} | {:.2}× | {} | {} |",
            r.peer,
            ms(r.edits),
            r.edits.as_secs_f64() / be.as_secs_f64().max(1e-9),
            r.bytes,
            r.bytes as f64 / bb as f64,
            ms(r.load),
            undo
        );
    }
}

/// Median of `runs` measured durations.
fn median_of(runs: usize, mut f: impl FnMut() -> Duration) -> Duration {
    let mut v: Vec<Duration> = (0..runs.max(1)).map(|_| f()).collect();
    v.sort_unstable();
    v[v.len() / 2]
}
