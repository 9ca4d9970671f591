//! The checks behind the cargo-fuzz targets in `fuzz/`, shared so that
//! `cargo test` replays the committed corpora and crash inputs on stable.
//!
//! Each check takes arbitrary bytes and panics only if weft misbehaves:
//! decoding must never panic, whatever decodes must round-trip, and applying
//! any decodable delta must be idempotent. Convergence across delivery orders
//! assumes honest peers (a dot names one event); a peer that reuses a dot for
//! two different writes can make replicas disagree, so a relay must bind each
//! connection to the replica ids it may write as.

use std::fmt::Debug;
use weft_core::codec::{self, decode, encode, Encode};
use weft_core::{
    Crdt, Doc, DotSet, GCounter, LwwMap, LwwRegister, MvRegister, OrSet, OrSetDelta, PnCounter,
    ReplicaId, VersionVector,
};
use weft_protocol::{ErrorCode, Frame, Handshake, Limits, Role};

fn framed(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut v = codec::MAGIC.to_vec();
    v.push(codec::FORMAT_VERSION);
    v.push(kind);
    v.extend_from_slice(body);
    v
}

/// A check of one decoder on raw bytes.
type Check = fn(&[u8]);

fn roundtrip<T: Encode + PartialEq + Debug>(data: &[u8]) {
    if let Ok(v) = decode::<T>(data) {
        let again: T = decode(&encode(&v)).expect("re-encoding of a decoded value decodes");
        assert_eq!(again, v, "decode(encode(x)) must equal x");
    }
}

/// Target `decode_core`: `data`, raw and behind a valid header of each kind,
/// decoded as every core type.
pub fn decode_core(data: &[u8]) {
    let checks: [(u8, Check); 9] = [
        (codec::kind::VERSION_VECTOR, roundtrip::<VersionVector>),
        (codec::kind::DOT_SET, roundtrip::<DotSet>),
        (codec::kind::G_COUNTER, roundtrip::<GCounter>),
        (codec::kind::PN_COUNTER, roundtrip::<PnCounter>),
        (codec::kind::OR_SET, roundtrip::<OrSet<String>>),
        (codec::kind::OR_SET_DELTA, roundtrip::<OrSetDelta<String>>),
        (codec::kind::LWW_REGISTER, roundtrip::<LwwRegister<String>>),
        (codec::kind::MV_REGISTER, roundtrip::<MvRegister<u64>>),
        (codec::kind::LWW_MAP, roundtrip::<LwwMap<String, u64>>),
    ];
    for (kind, check) in checks {
        check(data);
        check(&framed(kind, data));
    }
}

fn idempotent<T: Crdt>(kind: u8, base: &T, a: &[u8], b: &[u8])
where
    T::Delta: Encode,
{
    let (Ok(da), Ok(db)) = (
        decode::<T::Delta>(&framed(kind, a)),
        decode::<T::Delta>(&framed(kind, b)),
    ) else {
        return;
    };
    let mut x = base.clone();
    x.apply(&da);
    x.apply(&db);
    let mut y = x.clone();
    y.apply(&db);
    y.apply(&da);
    assert_eq!(x, y, "apply must be idempotent");
    let mut z = x.clone();
    z.join(&x);
    assert_eq!(z, x, "join must be idempotent");
    // Computing a delta from any reachable state must not panic. (That it
    // carries exactly what `join` does holds only for honest deltas, whose
    // dots are unique; the property suite checks it there.)
    let _ = x.delta_since(&base.version());
}

/// Target `apply_core`: two deltas cut from `data` applied to small replicas
/// of the OR-Set, LWW map, MV register and PN-counter.
pub fn apply_core(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let split = (data[0] as usize) % data.len();
    let (a, b) = data[1..].split_at(split.min(data.len() - 1));
    let r = ReplicaId::new(1);
    let mut set: OrSet<u8> = OrSet::new();
    set.add(r, 1);
    set.add(r, 2);
    set.remove(&1);
    idempotent(codec::kind::OR_SET_DELTA, &set, a, b);
    let mut map: LwwMap<u8, u8> = LwwMap::new();
    map.insert(r, 1, 1, 10);
    idempotent(codec::kind::LWW_MAP, &map, a, b);
    let mut mv: MvRegister<u8> = MvRegister::new();
    mv.set(r, 3);
    idempotent(codec::kind::MV_REGISTER, &mv, a, b);
    let mut c = PnCounter::new();
    let _ = c.increment(r, 4);
    idempotent(codec::kind::PN_COUNTER, &c, a, b);
}

/// A fixed wall clock, so document fuzzing is deterministic.
fn fixed_clock() -> u64 {
    1_700_000_000_000
}

/// A small document with one value of every kind.
fn sample_doc(replica: u64) -> Doc {
    let mut doc = Doc::new(ReplicaId::new(replica)).with_clock(fixed_clock);
    let made = doc.transact(|tx| {
        tx.text("body")?.insert(0, "hello")?;
        tx.counter("likes")?.increment(2)?;
        tx.set::<u8>("tags")?.add(&7)?;
        let mut meta = tx.map("meta")?;
        meta.put("title", "t")?;
        meta.put_multi("status", &1u8)?;
        meta.map("inner")?.text("note")?.insert(0, "n")?;
        Ok(())
    });
    debug_assert!(made.is_ok());
    doc
}

/// Target `doc_apply`: arbitrary bytes (raw, and behind a valid update
/// header) applied to a document; an error must leave it unchanged.
pub fn doc_apply(data: &[u8]) {
    let mut doc = sample_doc(1);
    for input in [data.to_vec(), framed(codec::kind::DOC_UPDATE, data)] {
        let before = doc.save();
        match doc.apply(&input) {
            Ok(_) => {
                // Whatever was accepted must survive a save/load round trip.
                let again = Doc::load(&doc.save(), ReplicaId::new(9)).expect("saved doc loads");
                assert_eq!(again, doc);
            }
            Err(_) => assert_eq!(doc.save(), before, "a failed apply changed the document"),
        }
    }
}

/// Target `doc_load`: arbitrary bytes (raw, and behind a valid snapshot
/// header) loaded as a snapshot; what loads must save and load identically.
pub fn doc_load(data: &[u8]) {
    for input in [data.to_vec(), framed(codec::kind::DOC_SNAPSHOT, data)] {
        if let Ok(doc) = Doc::load(&input, ReplicaId::new(5)) {
            let bytes = doc.save();
            let again = Doc::load(&bytes, ReplicaId::new(6)).expect("saved doc loads");
            assert_eq!(again, doc);
            assert_eq!(again.save(), bytes);
        }
    }
}

/// The three-document schedule of the convergence targets: each 4-byte
/// chunk `[a, b, c, d]` of `data` (at most 64) either delivers a queued
/// update to another document (high bit of `a`: maybe twice, maybe out of
/// order) or lets document `a % 3` make `edit(doc, b, c, d)`, whose update,
/// if it returns one, is queued; then every document gets every update.
fn drive_three(
    docs: &mut [Doc],
    data: &[u8],
    mut edit: impl FnMut(&mut Doc, u8, u8, u8) -> Option<Vec<u8>>,
) {
    let mut outbox: Vec<(usize, Vec<u8>)> = Vec::new();
    for chunk in data.chunks(4).take(64) {
        let [a, b, c, d] = [0, 1, 2, 3].map(|i| chunk.get(i).copied().unwrap_or(0));
        let who = (a % 3) as usize;
        if a & 0x80 != 0 && !outbox.is_empty() {
            let (from, update) = outbox[(b as usize) % outbox.len()].clone();
            let to = (from + 1 + (c as usize % 2)) % 3;
            let _ = docs[to].apply(&update);
            continue;
        }
        if let Some(update) = edit(&mut docs[who], b, c, d) {
            outbox.push((who, update));
        }
    }
    exchange_all(docs);
}

/// Target `doc_converge`: bytes drive random transactions on three documents
/// and a random exchange of their updates; after a full exchange all three
/// must be equal.
pub fn doc_converge(data: &[u8]) {
    let mut docs: Vec<Doc> = (1..=3)
        .map(|r| Doc::new(ReplicaId::new(r)).with_clock(fixed_clock))
        .collect();
    drive_three(&mut docs, data, |doc, b, c, d| {
        doc.transact(|tx| {
            match b % 8 {
                0 => {
                    let mut t = tx.text("t")?;
                    let at = (c as usize) % (t.len() + 1);
                    t.insert(at, if d % 2 == 0 { "ab" } else { "Z" })?;
                }
                1 => {
                    let mut t = tx.text("t")?;
                    let len = t.len();
                    if len > 0 {
                        let at = (c as usize) % len;
                        t.delete(at, 1 + (d as usize) % (len - at))?;
                    }
                }
                2 => tx.counter("n")?.increment(u64::from(c))?,
                3 => tx.counter("n")?.decrement(u64::from(c))?,
                4 => tx.set::<u8>("s")?.add(&(c % 8))?,
                5 => tx.set::<u8>("s")?.remove(&(c % 8))?,
                6 => tx.map("m")?.put(&format!("k{}", c % 4), &d)?,
                _ => {
                    let mut m = tx.map("m")?;
                    if d % 2 == 0 {
                        m.remove(&format!("k{}", c % 4));
                    } else {
                        m.map("sub")?.put_multi("v", &c)?;
                    }
                }
            }
            Ok(())
        })
        .ok()
    });
    for d in &docs {
        assert_eq!(
            d.text("t").map(|t| t.to_string()).ok(),
            docs[0].text("t").map(|t| t.to_string()).ok()
        );
    }
}

/// Target `decode_frame`: decodes `data` as a relay wire frame under generous and tight limits. Never panics
/// (other than on a broken property): whatever decodes re-encodes, no
/// longer than the input, to a frame that decodes equal and passes
/// `validate`; whatever fails yields an `Error` reply that is itself a valid
/// frame; the handshake checker takes any decoded frame on both sides and
/// accepts a greeting at most once.
pub fn decode_frame(data: &[u8]) {
    let tight = Limits {
        max_frame_bytes: 2048,
        max_update_bytes: 64,
        max_presence_bytes: 200,
        ..Limits::default()
    };
    for limits in [Limits::default(), tight] {
        match Frame::decode(data, &limits) {
            Ok(frame) => {
                let bytes = frame.encode();
                assert_eq!(bytes.len(), frame.encoded_len());
                assert!(bytes.len() <= data.len(), "re-encoding grew");
                assert_eq!(Frame::decode(&bytes, &limits).as_ref(), Ok(&frame));
                assert_eq!(frame.validate(&limits), Ok(()));
                let greeting = matches!(frame, Frame::Hello { .. } | Frame::Welcome { .. });
                for role in [Role::Client, Role::Server] {
                    let mut handshake = Handshake::new(role);
                    let first = handshake.receive(&frame);
                    let second = handshake.receive(&frame);
                    if greeting && first.is_ok() && handshake.version().is_some() {
                        assert_eq!(second, Err(ErrorCode::UnexpectedFrame));
                    }
                }
            }
            Err(err) => {
                let reply = err.error_frame();
                assert_eq!(reply.validate(&Limits::default()), Ok(()));
                assert_eq!(
                    Frame::decode(&reply.encode(), &Limits::default()),
                    Ok(reply)
                );
            }
        }
    }
}

/// A three-writer history (text, counter, set, map) used by `update_claims`.
fn claims_history() -> Vec<Vec<u8>> {
    let mut docs: Vec<Doc> = (1..=3)
        .map(|r| Doc::new(ReplicaId::new(r)).with_clock(fixed_clock))
        .collect();
    let mut out: Vec<Vec<u8>> = Vec::new();
    for round in 0..3u64 {
        for (i, doc) in docs.iter_mut().enumerate() {
            for u in &out {
                let _ = doc.apply(u.as_slice());
            }
            let made = doc.transact(|tx| {
                tx.text("t")?.insert(0, if i == 0 { "ab" } else { "ü" })?;
                tx.counter("n")?.increment(round + 1)?;
                if i == 1 {
                    tx.set::<u8>("s")?.add(&(round as u8))?;
                }
                if i == 2 {
                    tx.map("m")?.put("k", &round)?;
                }
                Ok(())
            });
            if let Ok(u) = made {
                out.push(u);
            }
        }
    }
    out
}

/// Reads a small number from the script.
fn take(script: &mut std::slice::Iter<'_, u8>) -> u64 {
    let b = u64::from(script.next().copied().unwrap_or(0));
    match b >> 6 {
        0 => b & 0x3f,
        1 => (b & 0x3f) << 8 | u64::from(script.next().copied().unwrap_or(0)),
        2 => weft_core::doc::MAX_COUNTER - (b & 0x3f),
        _ => u64::MAX - (b & 0x3f),
    }
}

/// Target `update_claims`: `data` rewrites the claims of one update of a
/// real three-writer history — versions, translation runs, replica names,
/// changes dropped — and the forgery is applied to a fresh document and to
/// one that holds the history. Never a panic; a refusal leaves the document
/// unchanged; a document holding the history never takes a forgery of what
/// it holds as new; `Update::decode` and `Doc::apply` agree on what is
/// refused at decode; whatever is accepted survives save/load.
pub fn update_claims(data: &[u8]) {
    use weft_core::doc::forge::Forgery;
    use weft_core::doc::{Kind, Limits, Path};
    use weft_core::Update;
    let history = claims_history();
    let mut script = data.iter();
    let pick = take(&mut script) as usize % history.len();
    let Ok(mut f) = Forgery::from_update(&history[pick]) else {
        return;
    };
    let replica = |n: u64| ReplicaId::new(1 + n % 4);
    let paths = [
        Path::root(),
        Path::root().child("t", Kind::Text),
        Path::root().child("n", Kind::Counter),
        Path::root().child("s", Kind::Set),
        Path::root().child("m", Kind::Map),
    ];
    for _ in 0..8 {
        let Some(op) = script.next() else { break };
        match op % 7 {
            0 => {
                let (r, n) = (replica(take(&mut script)), take(&mut script));
                f.to_mut().set(r, n);
            }
            1 => {
                let (r, n) = (replica(take(&mut script)), take(&mut script));
                f.from_mut().set(r, n);
            }
            2 => f.drop_runs(),
            3 => f.drop_changes(),
            4 => {
                let path = paths[take(&mut script) as usize % paths.len()].clone();
                let r = replica(take(&mut script));
                let (doc, val, count, step) = (
                    take(&mut script),
                    take(&mut script),
                    take(&mut script),
                    take(&mut script),
                );
                f.add_run(path, r, doc, val, count, step);
            }
            5 => f.shift_run_values(take(&mut script)),
            _ => {
                let (a, b) = (replica(take(&mut script)), replica(take(&mut script)));
                f.rename_replica(a, b);
            }
        }
    }
    let forged = f.encode();
    let mut fresh = Doc::new(ReplicaId::new(7)).with_clock(fixed_clock);
    let mut holder = Doc::new(ReplicaId::new(8)).with_clock(fixed_clock);
    for u in &history {
        holder.apply(u).expect("the honest history applies");
    }
    let decoded = Update::decode(forged.clone(), &Limits::default());
    for (doc, holds) in [(&mut fresh, false), (&mut holder, true)] {
        let before = doc.save();
        let version = doc.version().clone();
        match doc.apply(&forged) {
            Err(e) => {
                assert_eq!(doc.save(), before, "a refused forgery changed the document");
                if let weft_core::DocError::Decode(_) = e {
                    assert!(decoded.is_err(), "Update::decode took what apply refused");
                }
            }
            Ok(report) => {
                assert!(decoded.is_ok(), "apply took what Update::decode refused");
                if holds && version.dominates(decoded.as_ref().map(Update::to).unwrap_or(&version))
                {
                    assert_eq!(doc.save(), before, "a held transaction was overwritten");
                }
                let _ = report;
                let again = Doc::load(&doc.save(), ReplicaId::new(9)).expect("saved doc loads");
                assert_eq!(&again, &*doc);
            }
        }
    }
}

/// Target `list_converge`: `data` decoded (raw and behind the list kinds'
/// headers) as a `ListDelta` and a `List` — whatever decodes applies
/// idempotently and round-trips — then read as a script of list edits
/// (scalars, nested maps, deletes, undo and redo) on three replicas with
/// updates delivered in any order, some twice. After a full exchange all
/// replicas are equal and read the same list.
pub fn list_converge(data: &[u8]) {
    use weft_core::doc::UndoManager;
    use weft_core::{List, ListDelta};
    for bytes in [
        data.to_vec(),
        framed(codec::kind::LIST_DELTA, data),
        framed(codec::kind::LIST, data),
    ] {
        if let Ok(d) = decode::<ListDelta<u32>>(&bytes) {
            let mut once: List<u32> = List::new();
            once.apply(&d);
            let mut twice = once.clone();
            twice.apply(&d);
            assert_eq!(once, twice, "applying a list delta twice changes nothing");
            let again: ListDelta<u32> = decode(&encode(&d)).expect("re-encoded delta decodes");
            assert_eq!(again, d);
        }
        if let Ok(l) = decode::<List<u32>>(&bytes) {
            let again: List<u32> = decode(&encode(&l)).expect("re-encoded list decodes");
            assert_eq!(again, l);
            let mut joined = List::new();
            joined.join(&l);
            assert_eq!(joined.to_vec(), l.to_vec());
        }
    }
    let mut docs: Vec<Doc> = (1..=3)
        .map(|r| {
            Doc::new(ReplicaId::new(r))
                .with_clock(fixed_clock)
                .with_undo(UndoManager::new().capture_window(0))
        })
        .collect();
    drive_three(&mut docs, data, |doc, b, c, d| {
        let result = match b % 8 {
            6 => doc.undo().map(|u| u.unwrap_or_default()),
            7 => doc.redo().map(|u| u.unwrap_or_default()),
            op => doc.transact(|tx| {
                let mut l = tx.list("l")?;
                let len = l.len();
                match op {
                    0 | 1 => l.insert(usize::from(c) % (len + 1), &u32::from(d))?,
                    2 if len > 0 => {
                        let at = usize::from(c) % len;
                        l.delete(at, 1 + usize::from(d) % (len - at))?
                    }
                    3 => {
                        let mut m = l.insert_map(usize::from(c) % (len + 1))?;
                        m.put("v", &d)?;
                        m.text("t")?.insert(0, "x")?;
                    }
                    4 if len > 0 => {
                        // Edit a nested value if the element is one.
                        if let Ok(mut m) = l.map(usize::from(c) % len) {
                            m.put("v", &d)?;
                        }
                    }
                    5 => {
                        l.insert_list(usize::from(c) % (len + 1))?.push(&d)?;
                    }
                    _ => {}
                }
                Ok(())
            }),
        };
        result.ok().filter(|update| !update.is_empty())
    });
    let items = |d: &Doc| d.list("l").map(|l| l.items()).ok();
    for d in &docs {
        assert_eq!(items(d), items(&docs[0]));
        let back = Doc::load(&d.save(), ReplicaId::new(9)).expect("a saved document loads");
        assert_eq!(items(&back), items(d));
    }
}

/// Every document sends every other the diff it lacks, twice (so every
/// waiting update finds its dependencies); then all are equal.
fn exchange_all(docs: &mut [Doc]) {
    for _ in 0..2 {
        for i in 0..docs.len() {
            for j in 0..docs.len() {
                if i != j {
                    let diff = docs[j].diff(docs[i].version());
                    docs[i].apply(&diff).expect("a diff from a peer applies");
                }
            }
        }
    }
    for pair in docs.windows(2) {
        assert_eq!(pair[0], pair[1]);
    }
}
