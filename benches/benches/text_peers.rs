//! Text CRDTs on real editing traces: weft's `Text` against yrs, automerge
//! and diamond-types, all in one run.
//!
//! `cargo bench -p weft-benches --bench text_peers` prints markdown tables:
//! replay time of the sequential traces as local edits (one transaction per
//! trace transaction, median of `WEFT_BENCH_RUNS` runs, default 5), live heap
//! of the finished document (counting allocator), encoded size and load time,
//! and the time to merge the concurrent traces.
//!
//! Positions in the traces are Unicode code points. weft, automerge and
//! diamond-types index text in code points; yrs is opened with
//! `OffsetKind::Utf16`, which equals code points because the loader checks the
//! traces hold only Basic Multilingual Plane characters.

use std::hint::black_box;
use std::time::{Duration, Instant};
use weft_benches::alloc::{measure_live, CountingAlloc};
use weft_benches::traces::{self, ConcTrace, Patch, SeqTrace, Step};
use weft_benches::{median_time, ms, orders};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const SEQUENTIAL: [&str; 2] = ["automerge-paper", "seph-blog1"];
const CONCURRENT: [&str; 2] = ["friendsforever", "clownschool"];

/// One encoding of a finished document.
struct Encoded {
    label: &'static str,
    bytes: usize,
    load: Duration,
    /// Live heap of a document freshly loaded from these bytes.
    loaded_heap: i64,
}

/// Everything measured for one peer on one sequential trace.
struct SeqRow {
    peer: &'static str,
    replay: Duration,
    heap: i64,
    encodings: Vec<Encoded>,
}

/// What a peer must do for the sequential part.
trait SeqPeer {
    type Doc;
    const NAME: &'static str;
    fn replay(trace: &SeqTrace) -> Self::Doc;
    fn content(doc: &Self::Doc) -> String;
    /// `(label, encode, decode-and-return-content)` for each encoding.
    fn encodings(doc: &Self::Doc) -> Vec<(&'static str, Vec<u8>)>;
    fn load(label: &str, bytes: &[u8]) -> Self::Doc;
}

fn measure_seq<P: SeqPeer>(trace: &SeqTrace, runs: usize) -> SeqRow {
    let (replay, doc) = median_time(runs, || P::replay(trace));
    assert_eq!(P::content(&doc), trace.end_content, "{} replay", P::NAME);
    drop(doc);
    let (doc, heap) = measure_live(|| P::replay(trace));
    let mut encodings = Vec::new();
    for (label, bytes) in P::encodings(&doc) {
        let (load, loaded) = median_time(runs, || P::load(label, &bytes));
        assert_eq!(
            P::content(&loaded),
            trace.end_content,
            "{} load {label}",
            P::NAME
        );
        drop(loaded);
        let (loaded, loaded_heap) = measure_live(|| P::load(label, &bytes));
        drop(loaded);
        encodings.push(Encoded {
            label,
            bytes: bytes.len(),
            load,
            loaded_heap,
        });
    }
    SeqRow {
        peer: P::NAME,
        replay,
        heap,
        encodings,
    }
}

// ---------------------------------------------------------------- yrs

mod y {
    use super::*;
    use yrs::updates::decoder::Decode;
    use yrs::{
        ClientID, Doc, GetString, OffsetKind, Options, ReadTxn, StateVector, Text, Transact, Update,
    };

    pub(crate) struct Yrs;

    pub(crate) fn doc(client: u64) -> Doc {
        Doc::with_options(Options {
            client_id: ClientID::new(client),
            offset_kind: OffsetKind::Utf16,
            ..Options::default()
        })
    }

    pub(crate) fn edit(text: &yrs::TextRef, tx: &mut yrs::TransactionMut<'_>, p: &Patch) {
        if p.del > 0 {
            text.remove_range(tx, p.pos as u32, p.del as u32);
        }
        if !p.ins.is_empty() {
            text.insert(tx, p.pos as u32, &p.ins);
        }
    }

    pub(crate) fn content(doc: &Doc) -> String {
        let text = doc.get_or_insert_text("text");
        let tx = doc.transact();
        text.get_string(&tx)
    }

    impl SeqPeer for Yrs {
        type Doc = Doc;
        const NAME: &'static str = "yrs";

        fn replay(trace: &SeqTrace) -> Doc {
            let doc = doc(1);
            let text = doc.get_or_insert_text("text");
            for txn in &trace.txns {
                let mut tx = doc.transact_mut();
                for p in txn {
                    edit(&text, &mut tx, p);
                }
            }
            doc
        }

        fn content(doc: &Doc) -> String {
            content(doc)
        }

        fn encodings(doc: &Doc) -> Vec<(&'static str, Vec<u8>)> {
            let tx = doc.transact();
            let sv = StateVector::default();
            vec![
                ("v1 update", tx.encode_state_as_update_v1(&sv)),
                ("v2 update", tx.encode_state_as_update_v2(&sv)),
            ]
        }

        fn load(label: &str, bytes: &[u8]) -> Doc {
            let d = doc(2);
            let update = if label.starts_with("v1") {
                Update::decode_v1(bytes)
            } else {
                Update::decode_v2(bytes)
            }
            .expect("yrs decode");
            d.get_or_insert_text("text");
            d.transact_mut().apply_update(update).expect("yrs apply");
            d
        }
    }

    /// Replica-per-agent replay of a concurrent trace; returns the merged content.
    pub(crate) fn merge(trace: &ConcTrace, plan: &[Step]) -> String {
        let docs: Vec<Doc> = (0..trace.num_agents).map(|a| doc(a as u64 + 1)).collect();
        let texts: Vec<_> = docs.iter().map(|d| d.get_or_insert_text("text")).collect();
        let mut updates: Vec<Vec<u8>> = vec![Vec::new(); trace.txns.len()];
        for step in plan {
            match *step {
                Step::Local { txn } => {
                    let t = &trace.txns[txn];
                    let mut tx = docs[t.agent].transact_mut();
                    for p in &t.patches {
                        edit(&texts[t.agent], &mut tx, p);
                    }
                    updates[txn] = tx.encode_update_v1();
                }
                Step::Deliver { to, txn } => {
                    let u = Update::decode_v1(&updates[txn]).expect("yrs decode");
                    docs[to].transact_mut().apply_update(u).expect("yrs apply");
                }
            }
        }
        content(&docs[trace.final_agent()])
    }
}

// ---------------------------------------------------------------- automerge

mod am {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{ActorId, Automerge, Change, ObjId, ObjType, ReadDoc, ROOT};

    pub(crate) struct Am;

    pub(crate) struct AmDoc {
        doc: Automerge,
        text: ObjId,
    }

    fn new_doc(actor: u8) -> AmDoc {
        let mut doc = Automerge::new().with_actor(ActorId::from(vec![actor; 16]));
        let mut tx = doc.transaction();
        let text = tx.put_object(ROOT, "text", ObjType::Text).expect("put");
        tx.commit();
        AmDoc { doc, text }
    }

    fn text_of(doc: &Automerge) -> ObjId {
        match doc.get(ROOT, "text").expect("get") {
            Some((_, id)) => id,
            None => panic!("automerge doc without text"),
        }
    }

    impl SeqPeer for Am {
        type Doc = AmDoc;
        const NAME: &'static str = "automerge";

        fn replay(trace: &SeqTrace) -> AmDoc {
            let mut d = new_doc(1);
            for txn in &trace.txns {
                let mut tx = d.doc.transaction();
                for p in txn {
                    tx.splice_text(&d.text, p.pos, p.del as isize, &p.ins)
                        .expect("splice");
                }
                tx.commit();
            }
            d
        }

        fn content(d: &AmDoc) -> String {
            d.doc.text(&d.text).expect("text")
        }

        fn encodings(d: &AmDoc) -> Vec<(&'static str, Vec<u8>)> {
            vec![("save()", d.doc.save())]
        }

        fn load(_: &str, bytes: &[u8]) -> AmDoc {
            let doc = Automerge::load(bytes).expect("automerge load");
            let text = text_of(&doc);
            AmDoc { doc, text }
        }
    }

    /// Replica-per-agent replay of a concurrent trace; returns the merged content.
    pub(crate) fn merge(trace: &ConcTrace, plan: &[Step]) -> String {
        // Every replica starts from the same change creating the text object.
        let first = new_doc(0);
        let init = first.doc.get_changes(&[]);
        let mut docs: Vec<AmDoc> = (0..trace.num_agents)
            .map(|a| {
                let mut doc = Automerge::new().with_actor(ActorId::from(vec![a as u8 + 1; 16]));
                doc.apply_changes(init.iter().cloned()).expect("init");
                let text = text_of(&doc);
                AmDoc { doc, text }
            })
            .collect();
        let mut changes: Vec<Option<Change>> = vec![None; trace.txns.len()];
        // Consecutive deliveries to one replica arrive as one batch: one
        // `apply_changes` call (per-change calls cost ~2 ms each here).
        let mut batch: Vec<Change> = Vec::new();
        let mut batch_to = usize::MAX;
        let flush = |docs: &mut Vec<AmDoc>, batch: &mut Vec<Change>, to: usize| {
            if !batch.is_empty() {
                docs[to]
                    .doc
                    .apply_changes(std::mem::take(batch))
                    .expect("apply");
            }
        };
        for step in plan {
            match *step {
                Step::Local { txn } => {
                    flush(&mut docs, &mut batch, batch_to);
                    let t = &trace.txns[txn];
                    let d = &mut docs[t.agent];
                    let mut tx = d.doc.transaction();
                    for p in &t.patches {
                        tx.splice_text(&d.text, p.pos, p.del as isize, &p.ins)
                            .expect("splice");
                    }
                    let (hash, _) = tx.commit();
                    changes[txn] = hash.map(|h| d.doc.get_change_by_hash(&h).expect("change"));
                }
                Step::Deliver { to, txn } => {
                    if to != batch_to {
                        flush(&mut docs, &mut batch, batch_to);
                        batch_to = to;
                    }
                    batch.extend(changes[txn].iter().cloned());
                }
            }
        }
        flush(&mut docs, &mut batch, batch_to);
        Am::content(&docs[trace.final_agent()])
    }
}

// ---------------------------------------------------------------- Loro

/// Loro with one commit per trace transaction, the way an editor drives it;
/// each commit's update is taken as it is made (`subscribe_local_update`),
/// as weft's `Doc::transact` returns its update.
mod lo {
    use super::*;
    use loro::{ExportMode, LoroDoc};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    pub(crate) struct Loro;

    /// Loro committing per trace transaction without taking the updates
    /// (what an editor that syncs in batches, or not at all, pays).
    pub(crate) struct LoroNoUpdates;

    impl SeqPeer for LoroNoUpdates {
        type Doc = LoroDoc;
        const NAME: &'static str = "Loro (commit per txn, updates not taken)";

        fn replay(trace: &SeqTrace) -> LoroDoc {
            replay(trace, false)
        }

        fn content(doc: &LoroDoc) -> String {
            Loro::content(doc)
        }

        fn encodings(doc: &LoroDoc) -> Vec<(&'static str, Vec<u8>)> {
            Loro::encodings(doc)
        }

        fn load(label: &str, bytes: &[u8]) -> LoroDoc {
            Loro::load(label, bytes)
        }
    }

    /// One commit per trace transaction; with `take_updates`, each
    /// commit's update is taken as it is made (`subscribe_local_update`).
    fn replay(trace: &SeqTrace, take_updates: bool) -> LoroDoc {
        let doc = new_doc(1);
        let text = doc.get_text("text");
        // The bytes of every update taken, so none is optimised away.
        let made = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&made);
        let sub = take_updates.then(|| {
            doc.subscribe_local_update(Box::new(move |u| {
                seen.fetch_add(u.len(), Ordering::Relaxed);
                true
            }))
        });
        for txn in &trace.txns {
            for p in txn {
                if p.del > 0 {
                    text.delete(p.pos, p.del).expect("loro delete");
                }
                if !p.ins.is_empty() {
                    text.insert(p.pos, &p.ins).expect("loro insert");
                }
            }
            doc.commit();
        }
        drop(sub);
        black_box(made.load(Ordering::Relaxed));
        doc
    }

    fn new_doc(peer: u64) -> LoroDoc {
        let doc = LoroDoc::new();
        doc.set_peer_id(peer).expect("loro peer id");
        doc
    }

    impl SeqPeer for Loro {
        type Doc = LoroDoc;
        const NAME: &'static str = "Loro (commit per txn)";

        fn replay(trace: &SeqTrace) -> LoroDoc {
            replay(trace, true)
        }

        fn content(doc: &LoroDoc) -> String {
            doc.get_text("text").to_string()
        }

        fn encodings(doc: &LoroDoc) -> Vec<(&'static str, Vec<u8>)> {
            vec![(
                "snapshot",
                doc.export(ExportMode::Snapshot).expect("loro export"),
            )]
        }

        fn load(_: &str, bytes: &[u8]) -> LoroDoc {
            let doc = new_doc(2);
            doc.import(bytes).expect("loro import");
            // Loro decodes a snapshot's state lazily: read the text so the
            // load is "decode + read", as the others' loads are.
            black_box(doc.get_text("text").len_unicode());
            doc
        }
    }

    /// Replica-per-agent replay of a concurrent trace (one commit per
    /// transaction, its update imported by each receiver); returns the merged
    /// content.
    pub(crate) fn merge(trace: &ConcTrace, plan: &[Step]) -> String {
        let docs: Vec<LoroDoc> = (0..trace.num_agents)
            .map(|a| new_doc(a as u64 + 1))
            .collect();
        let mut updates: Vec<Vec<u8>> = vec![Vec::new(); trace.txns.len()];
        for step in plan {
            match *step {
                Step::Local { txn } => {
                    let t = &trace.txns[txn];
                    let doc = &docs[t.agent];
                    let before = doc.oplog_vv();
                    let text = doc.get_text("text");
                    for p in &t.patches {
                        if p.del > 0 {
                            text.delete(p.pos, p.del).expect("loro delete");
                        }
                        if !p.ins.is_empty() {
                            text.insert(p.pos, &p.ins).expect("loro insert");
                        }
                    }
                    doc.commit();
                    updates[txn] = doc
                        .export(ExportMode::updates(&before))
                        .expect("loro export");
                }
                Step::Deliver { to, txn } => {
                    docs[to].import(&updates[txn]).expect("loro import");
                }
            }
        }
        docs[trace.final_agent()].get_text("text").to_string()
    }
}

// ---------------------------------------------------------------- diamond-types

mod dt {
    use super::*;
    use diamond_types::list::encoding::ENCODE_FULL;
    use diamond_types::list::{ListCRDT, OpLog};

    pub(crate) struct Dt;

    impl SeqPeer for Dt {
        type Doc = ListCRDT;
        const NAME: &'static str = "diamond-types";

        fn replay(trace: &SeqTrace) -> ListCRDT {
            let mut doc = ListCRDT::new();
            let agent = doc.get_or_create_agent_id("a");
            for txn in &trace.txns {
                for p in txn {
                    if p.del > 0 {
                        doc.delete_without_content(agent, p.pos..p.pos + p.del);
                    }
                    if !p.ins.is_empty() {
                        doc.insert(agent, p.pos, &p.ins);
                    }
                }
            }
            doc
        }

        fn content(doc: &ListCRDT) -> String {
            doc.branch.content().to_string()
        }

        fn encodings(doc: &ListCRDT) -> Vec<(&'static str, Vec<u8>)> {
            vec![("encode(FULL)", doc.oplog.encode(ENCODE_FULL))]
        }

        fn load(_: &str, bytes: &[u8]) -> ListCRDT {
            ListCRDT::load_from(bytes).expect("dt load")
        }
    }

    /// Builds the whole concurrent history into one oplog (each transaction
    /// at its recorded parents), then checks out the merged tip. Returns the
    /// content and the two phase times.
    pub(crate) fn merge(trace: &ConcTrace) -> (String, Duration, Duration) {
        let t0 = Instant::now();
        let mut oplog = OpLog::new();
        let agents: Vec<_> = (0..trace.num_agents)
            .map(|a| oplog.get_or_create_agent_id(&format!("agent{a}")))
            .collect();
        // Version after each transaction (one time, or the parents' merge).
        let mut after: Vec<Vec<usize>> = Vec::with_capacity(trace.txns.len());
        for t in &trace.txns {
            let mut v: Vec<usize> = t
                .parents
                .iter()
                .flat_map(|&p| after[p].iter().copied())
                .collect();
            v.sort_unstable();
            v.dedup();
            let agent = agents[t.agent];
            for p in &t.patches {
                if p.del > 0 {
                    let time = oplog.add_delete_at(agent, &v, p.pos..p.pos + p.del);
                    v = vec![time];
                }
                if !p.ins.is_empty() {
                    let time = oplog.add_insert_at(agent, &v, p.pos, &p.ins);
                    v = vec![time];
                }
            }
            // A transaction without patches stands for its parents' merge;
            // keep the frontier minimal.
            if t.patches.is_empty() && v.len() > 1 {
                v = oplog.version_union(&v, &[]).to_vec();
            }
            after.push(v);
        }
        let build = t0.elapsed();
        let t1 = Instant::now();
        let branch = oplog.checkout_tip();
        let checkout = t1.elapsed();
        (branch.content().to_string(), build, checkout)
    }
}

// ---------------------------------------------------------------- weft

mod wf {
    use super::*;
    use weft_core::{codec, Crdt, ReplicaId, Text, TextDelta};

    pub(crate) struct Weft;

    fn edit(t: &mut Text, r: ReplicaId, p: &Patch, out: &mut Vec<TextDelta>) {
        if p.del > 0 {
            out.push(t.delete(r, p.pos, p.del));
        }
        if !p.ins.is_empty() {
            out.push(t.insert(r, p.pos, &p.ins));
        }
    }

    impl SeqPeer for Weft {
        type Doc = Text;
        const NAME: &'static str = "weft";

        fn replay(trace: &SeqTrace) -> Text {
            weft_benches::doc_replay::replay_text(trace)
        }

        fn content(doc: &Text) -> String {
            doc.to_string()
        }

        fn encodings(doc: &Text) -> Vec<(&'static str, Vec<u8>)> {
            vec![("codec::encode", codec::encode(doc))]
        }

        fn load(_: &str, bytes: &[u8]) -> Text {
            codec::decode(bytes).expect("weft decode")
        }
    }

    /// Replica-per-agent replay of a concurrent trace; returns the merged content.
    pub(crate) fn merge(trace: &ConcTrace, plan: &[Step]) -> String {
        let mut docs: Vec<Text> = (0..trace.num_agents).map(|_| Text::new()).collect();
        let mut deltas: Vec<Vec<TextDelta>> = vec![Vec::new(); trace.txns.len()];
        for step in plan {
            match *step {
                Step::Local { txn } => {
                    let t = &trace.txns[txn];
                    let r = ReplicaId::new(t.agent as u64 + 1);
                    let mut out = Vec::with_capacity(t.patches.len());
                    for p in &t.patches {
                        edit(&mut docs[t.agent], r, p, &mut out);
                    }
                    deltas[txn] = out;
                }
                Step::Deliver { to, txn } => {
                    for d in &deltas[txn] {
                        docs[to].apply(d);
                    }
                }
            }
        }
        docs[trace.final_agent()].to_string()
    }
}

// ---------------------------------------------------------------- weft Doc

/// The same trace through the document layer: one `Doc` transaction per trace
/// transaction (each commit builds and encodes its update), `Doc::save` /
/// `Doc::load` for the snapshot. This is what an editor embedding weft does.
mod wd {
    use super::*;
    use weft_core::{Doc, ReplicaId};

    pub(crate) struct WeftDoc;

    impl SeqPeer for WeftDoc {
        type Doc = Doc;
        const NAME: &'static str = "weft Doc";

        fn replay(trace: &SeqTrace) -> Doc {
            weft_benches::doc_replay::replay(trace)
        }

        fn content(doc: &Doc) -> String {
            doc.text("text").expect("a text").to_string()
        }

        fn encodings(doc: &Doc) -> Vec<(&'static str, Vec<u8>)> {
            vec![("Doc::save", doc.save())]
        }

        fn load(_: &str, bytes: &[u8]) -> Doc {
            Doc::load(bytes, ReplicaId::new(2)).expect("weft Doc load")
        }
    }
}

// ---------------------------------------------------------------- report

fn kib(bytes: i64) -> String {
    format!("{:.1}", bytes as f64 / 1024.0)
}

fn ratio(x: f64, base: f64) -> String {
    if base > 0.0 {
        format!("{:.2}×", x / base)
    } else {
        "-".into()
    }
}

fn main() {
    let runs: usize = std::env::var("WEFT_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    // `cargo bench` passes `--bench`; an optional trace-name filter may follow.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    // automerge's merge replay takes tens of seconds: fewer runs by default.
    let am_merge_runs: usize = std::env::var("WEFT_BENCH_AM_MERGE_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    println!("# text_peers (median of {runs} runs; ratios vs diamond-types)\n");

    for name in SEQUENTIAL.iter().copied().filter(|n| wanted(n)) {
        let trace = traces::sequential(name);
        assert!(trace.is_bmp_only(), "{name}: non-BMP characters");
        let chars = trace.end_content.chars().count();
        println!(
            "## {name}: {} txns, {} patches, final {chars} chars ({} bytes UTF-8)\n",
            trace.txns.len(),
            trace.patch_count(),
            trace.end_content.len()
        );
        let rows = vec![
            measure_seq::<dt::Dt>(&trace, runs),
            measure_seq::<wf::Weft>(&trace, runs),
            measure_seq::<wd::WeftDoc>(&trace, runs),
            measure_seq::<y::Yrs>(&trace, runs),
            measure_seq::<am::Am>(&trace, runs),
            measure_seq::<lo::Loro>(&trace, runs),
            measure_seq::<lo::LoroNoUpdates>(&trace, runs),
        ];
        let base = &rows[0];
        println!("| peer | replay ms | vs DT | live heap KiB | vs DT | encoding | bytes | vs DT | load ms | heap after load KiB |");
        println!("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|");
        for r in &rows {
            for (i, e) in r.encodings.iter().enumerate() {
                let (replay, rr, heap, hr) = if i == 0 {
                    (
                        ms(r.replay),
                        ratio(r.replay.as_secs_f64(), base.replay.as_secs_f64()),
                        kib(r.heap),
                        ratio(r.heap as f64, base.heap as f64),
                    )
                } else {
                    Default::default()
                };
                println!(
                    "| {} | {replay} | {rr} | {heap} | {hr} | {} | {} | {} | {} | {} |",
                    if i == 0 { r.peer } else { "" },
                    e.label,
                    e.bytes,
                    ratio(e.bytes as f64, base.encodings[0].bytes as f64),
                    ms(e.load),
                    kib(e.loaded_heap)
                );
            }
        }
        println!();
    }

    for name in CONCURRENT.iter().copied().filter(|n| wanted(n)) {
        let trace = traces::concurrent(name);
        let plan = trace.replay_plan();
        let deliveries = plan
            .iter()
            .filter(|s| matches!(s, Step::Deliver { .. }))
            .count();
        println!(
            "## merge {name}: {} txns by {} agents, {deliveries} deliveries in the replica-per-agent replay\n",
            trace.txns.len(),
            trace.num_agents
        );
        let (dt_total, (content, build, checkout)) = median_time(runs, || dt::merge(&trace));
        assert_eq!(content, trace.end_content, "diamond-types merge {name}");
        let (weft_t, content) = median_time(runs, || wf::merge(&trace, &plan));
        assert_eq!(content, trace.end_content, "weft merge {name}");
        let (yrs_t, content) = median_time(runs, || y::merge(&trace, &plan));
        assert_eq!(content, trace.end_content, "yrs merge {name}");
        let (loro_t, content) = median_time(runs, || lo::merge(&trace, &plan));
        assert_eq!(content, trace.end_content, "Loro merge {name}");
        let (am_t, content) = median_time(am_merge_runs, || am::merge(&trace, &plan));
        assert_eq!(content, trace.end_content, "automerge merge {name}");
        black_box(content);
        let base = dt_total.as_secs_f64();
        println!("| peer | method | merge ms | vs DT |");
        println!("|---|---|---:|---:|");
        println!(
            "| diamond-types | one oplog, ops at recorded parents ({} ms) + checkout_tip ({} ms) (phases: last run) | {} | 1.00× |",
            ms(build),
            ms(checkout),
            ms(dt_total)
        );
        println!(
            "| weft | replica-per-agent replay, deltas per txn | {} | {} |",
            ms(weft_t),
            ratio(weft_t.as_secs_f64(), base)
        );
        println!(
            "| yrs | replica-per-agent replay, v1 update per txn | {} | {} |",
            ms(yrs_t),
            ratio(yrs_t.as_secs_f64(), base)
        );
        println!(
            "| Loro | replica-per-agent replay, update per commit | {} | {} |",
            ms(loro_t),
            ratio(loro_t.as_secs_f64(), base)
        );
        println!(
            "| automerge | replica-per-agent replay, one change per txn, deliveries batched (median of {am_merge_runs}) | {} | {} |",
            ms(am_t),
            ratio(am_t.as_secs_f64(), base)
        );
        println!();

        let updates = orders::updates(&trace, &plan);
        println!(
            "### {name}: its {} `Doc` updates received by a fresh replica, default limits\n",
            updates.len()
        );
        println!("| delivery order | apply all ms | vs causal | most waiting at once |");
        println!("|---|---:|---:|---:|");
        let mut causal = 0.0;
        for order_name in orders::ORDERS {
            let order = orders::order(&updates, order_name);
            let (t, (content, most)) = median_time(runs, || orders::receive(&updates, &order));
            assert_eq!(content, trace.end_content, "{name} delivered {order_name}");
            if order_name == "causal" {
                causal = t.as_secs_f64();
            }
            println!(
                "| {order_name} | {} | {} | {most} |",
                ms(t),
                ratio(t.as_secs_f64(), causal)
            );
        }
        println!();
    }
}
