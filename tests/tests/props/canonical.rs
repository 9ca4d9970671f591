//! Non-canonical encodings are rejected.
//!
//! Each reachable value is re-encoded by hand (postcard by hand, from the
//! value's serde view), first checking that the hand encoding is byte-for-
//! byte what `codec::encode` writes; then the same encoder writes variants
//! that describe no reachable value, or describe one in a second way
//! (unsorted or duplicate keys, zero entries, split ranges, dots outside the
//! version or context, ...). `codec::decode` must reject every one.

use crate::props_common::config;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::Value as Json;
use std::fmt::Debug;
use weft_core::codec::{self, Encode};
use weft_core::{GCounter, LwwMap, LwwRegister, MvRegister, OrSet, PnCounter};
use weft_tests::sim::{schedule, Sim};
use weft_tests::subjects::Subject;

/// A minimal postcard writer.
#[derive(Default)]
struct Enc(Vec<u8>);

impl Enc {
    fn u(&mut self, mut v: u64) -> &mut Self {
        loop {
            let b = (v & 0x7F) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return self;
            }
            self.0.push(b | 0x80);
        }
    }
}

fn num(v: &Json) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .expect("a number")
}

fn arr(v: &Json) -> &Vec<Json> {
    v.as_array().expect("an array")
}

/// Version vector / pairs `[[replica, n], ...]`.
fn enc_pairs(e: &mut Enc, pairs: &[(u64, u64)]) {
    e.u(pairs.len() as u64);
    for &(r, n) in pairs {
        e.u(r).u(n);
    }
}

fn pairs_of(v: &Json) -> Vec<(u64, u64)> {
    arr(v).iter().map(|p| (num(&p[0]), num(&p[1]))).collect()
}

/// Dot set `[[replica, [[start, end], ...]], ...]`.
type Ranges = Vec<(u64, Vec<(u64, u64)>)>;

fn ranges_of(v: &Json) -> Ranges {
    arr(v)
        .iter()
        .map(|r| (num(&r[0]), pairs_of(&r[1])))
        .collect()
}

fn enc_ranges(e: &mut Enc, rs: &Ranges) {
    e.u(rs.len() as u64);
    for (r, list) in rs {
        e.u(*r);
        enc_pairs(e, list);
    }
}

fn dot_of(v: &Json) -> (u64, u64) {
    (num(&v["replica"]), num(&v["counter"]))
}

fn with_header<T: Encode>(body: Vec<u8>) -> Vec<u8> {
    let mut out = codec::MAGIC.to_vec();
    out.push(codec::FORMAT_VERSION);
    out.push(T::KIND);
    out.extend(body);
    out
}

/// The hand encoding of the canonical form equals `codec::encode`, and
/// every variant is rejected.
fn check<T: Encode + PartialEq + Debug>(
    x: &T,
    canonical: Vec<u8>,
    variants: Vec<(&str, Vec<u8>)>,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(
        with_header::<T>(canonical),
        codec::encode(x),
        "hand encoder is wrong"
    );
    for (what, body) in variants {
        let r = codec::decode::<T>(&with_header::<T>(body));
        prop_assert!(r.is_err(), "accepted non-canonical {}: {:?}", what, r);
    }
    Ok(())
}

fn json<T: serde::Serialize>(x: &T) -> Json {
    serde_json::to_value(x).expect("serializes")
}

/// Variants of a dot set (the causal context of sets and maps): a range
/// split in two touching ranges, a replica with no ranges, replicas out of
/// order.
fn context_variants(ctx: &Ranges) -> Vec<(&'static str, Ranges)> {
    let mut out = Vec::new();
    if let Some(i) = ctx.iter().position(|(_, l)| l.iter().any(|&(s, e)| e > s)) {
        let mut v = ctx.clone();
        let j = v[i]
            .1
            .iter()
            .position(|&(s, e)| e > s)
            .expect("a long range");
        let (s, e) = v[i].1[j];
        v[i].1.splice(j..=j, [(s, s), (s + 1, e)]);
        out.push(("touching ranges", v));
    }
    let mut v = ctx.clone();
    v.push((1_000, vec![]));
    out.push(("empty range list", v));
    if ctx.len() >= 2 {
        let mut v = ctx.clone();
        v.swap(0, 1);
        out.push(("unsorted replicas", v));
    }
    let mut v = ctx.clone();
    v.push((1_001, vec![(0, 2)]));
    out.push(("range from zero", v));
    out
}

/// Counter entries `(replica, fields...)`.
fn counter_check<T: Subject>(x: &T, fields: &[&str]) -> Result<(), TestCaseError> {
    let j = json(x);
    let mut entries: Vec<(u64, Vec<u64>)> = j["entries"]
        .as_object()
        .expect("a map")
        .iter()
        .map(|(k, v)| {
            (
                k.parse().expect("id"),
                fields.iter().map(|f| num(&v[*f])).collect(),
            )
        })
        .collect();
    entries.sort();
    let enc = |es: &[(u64, Vec<u64>)]| {
        let mut e = Enc::default();
        e.u(es.len() as u64);
        for (r, fs) in es {
            e.u(*r);
            for &f in fs {
                e.u(f);
            }
        }
        e.0
    };
    let mut variants = Vec::new();
    if entries.len() >= 2 {
        let mut v = entries.clone();
        v.swap(0, 1);
        variants.push(("unsorted replicas", enc(&v)));
    }
    if let Some(first) = entries.first() {
        let mut v = entries.clone();
        v.insert(0, first.clone());
        variants.push(("duplicate replica", enc(&v)));
    }
    let mut zero = entries.clone();
    zero.push((1_000, vec![0; fields.len()]));
    variants.push(("all-zero entry", enc(&zero)));
    let mut no_ops = entries.clone();
    let mut fs = vec![0; fields.len()];
    fs[1] = 5;
    no_ops.push((1_000, fs));
    variants.push(("amount without operations", enc(&no_ops)));
    check(x, enc(&entries), variants)
}

fn or_set_check(x: &OrSet<u8>) -> Result<(), TestCaseError> {
    let j = json(x);
    let entries: Vec<(u64, Vec<(u64, u64)>)> = arr(&j["entries"])
        .iter()
        .map(|e| (num(&e[0]), arr(&e[1]).iter().map(dot_of).collect()))
        .collect();
    let ctx = ranges_of(&j["context"]);
    let enc = |es: &[(u64, Vec<(u64, u64)>)], ctx: &Ranges| {
        let mut e = Enc::default();
        e.u(es.len() as u64);
        for (x, dots) in es {
            e.0.push(*x as u8);
            enc_pairs(&mut e, dots);
        }
        enc_ranges(&mut e, ctx);
        e.0
    };
    let mut variants = Vec::new();
    if entries.len() >= 2 {
        let mut v = entries.clone();
        v.swap(0, 1);
        variants.push(("unsorted elements", enc(&v, &ctx)));
        let mut v = entries.clone();
        v[1].1 = v[0].1.clone();
        variants.push(("dot shared by two elements", enc(&v, &ctx)));
    }
    if let Some(first) = entries.first() {
        let mut v = entries.clone();
        v[0].1.push((1_000, 1));
        variants.push(("live dot outside the context", enc(&v, &ctx)));
        let mut v = entries.clone();
        v[0].1 = vec![];
        variants.push(("element without dots", enc(&v, &ctx)));
        let mut v = entries.clone();
        v[0].1 = first.1.iter().rev().copied().collect();
        v[0].1.push(first.1[0]);
        variants.push(("unsorted or duplicate dots", enc(&v, &ctx)));
    }
    for (what, c) in context_variants(&ctx) {
        variants.push((what, enc(&entries, &c)));
    }
    check(x, enc(&entries, &ctx), variants)
}

type Slot = ((u64, u64), (u64, u64), Option<u64>);

fn slot_of(v: &Json) -> Slot {
    let st = &v["stamp"];
    (
        (num(&st["physical"]), num(&st["logical"])),
        dot_of(&v["dot"]),
        v["value"].as_u64(),
    )
}

fn enc_slot(e: &mut Enc, s: &Slot) {
    e.u(s.0 .0).u(s.0 .1).u(s.1 .0).u(s.1 .1);
    match s.2 {
        None => e.0.push(0),
        Some(v) => {
            e.0.push(1);
            e.u(v);
        }
    }
}

fn lww_map_check(x: &LwwMap<u8, u16>) -> Result<(), TestCaseError> {
    let j = json(x);
    let entries: Vec<(u64, Slot)> = arr(&j["entries"])
        .iter()
        .map(|e| (num(&e[0]), slot_of(&e[1])))
        .collect();
    let ctx = ranges_of(&j["context"]);
    let enc = |es: &[(u64, Slot)], ctx: &Ranges| {
        let mut e = Enc::default();
        e.u(es.len() as u64);
        for (k, s) in es {
            e.0.push(*k as u8);
            enc_slot(&mut e, s);
        }
        enc_ranges(&mut e, ctx);
        e.0
    };
    let mut variants = Vec::new();
    if entries.len() >= 2 {
        let mut v = entries.clone();
        v.swap(0, 1);
        variants.push(("unsorted keys", enc(&v, &ctx)));
    }
    if !entries.is_empty() {
        let mut v = entries.clone();
        v.push(v[0]);
        variants.push(("duplicate key", enc(&v, &ctx)));
        let mut v = entries.clone();
        v[0].1 .1 = (1_000, 1);
        variants.push(("dot outside the context", enc(&v, &ctx)));
    }
    for (what, c) in context_variants(&ctx) {
        variants.push((what, enc(&entries, &c)));
    }
    check(x, enc(&entries, &ctx), variants)
}

fn lww_register_check(x: &LwwRegister<u16>) -> Result<(), TestCaseError> {
    let j = json(x);
    let current: Option<Slot> = (!j["current"].is_null()).then(|| slot_of(&j["current"]));
    let version = pairs_of(&j["version"]);
    let enc = |cur: &Option<Slot>, version: &[(u64, u64)]| {
        let mut e = Enc::default();
        match cur {
            None => e.0.push(0),
            Some(((p, l), (r, c), v)) => {
                e.0.push(1);
                e.u(*p).u(*l).u(*r).u(*c).u(v.expect("a value"));
            }
        }
        enc_pairs(&mut e, version);
        e.0
    };
    let mut variants = Vec::new();
    if let Some(cur) = current {
        let mut outside = cur;
        outside.1 = (1_000, 1);
        variants.push((
            "current write outside the version",
            enc(&Some(outside), &version),
        ));
        variants.push(("no current write but a version", enc(&None, &version)));
    } else {
        let w = ((5, 0), (1_000, 1), Some(3));
        variants.push((
            "current write outside an empty version",
            enc(&Some(w), &version),
        ));
    }
    if version.len() >= 2 {
        let mut v = version.clone();
        v.swap(0, 1);
        variants.push(("unsorted version", enc(&current, &v)));
    }
    let mut v = version.clone();
    v.push((1_000, 0));
    variants.push(("zero version entry", enc(&current, &v)));
    check(x, enc(&current, &version), variants)
}

fn mv_register_check(x: &MvRegister<u16>) -> Result<(), TestCaseError> {
    let j = json(x);
    let values: Vec<((u64, u64), u64)> = arr(&j["values"])
        .iter()
        .map(|e| (dot_of(&e[0]), num(&e[1])))
        .collect();
    let version = pairs_of(&j["version"]);
    let enc = |vals: &[((u64, u64), u64)], version: &[(u64, u64)]| {
        let mut e = Enc::default();
        e.u(vals.len() as u64);
        for ((r, c), v) in vals {
            e.u(*r).u(*c).u(*v);
        }
        enc_pairs(&mut e, version);
        e.0
    };
    let mut variants = Vec::new();
    if values.len() >= 2 {
        let mut v = values.clone();
        v.swap(0, 1);
        variants.push(("unsorted values", enc(&v, &version)));
    }
    if let Some(&first) = values.first() {
        let mut v = values.clone();
        v.insert(0, first);
        variants.push(("duplicate value", enc(&v, &version)));
    }
    let mut v = values.clone();
    v.push(((1_000, 1), 7));
    variants.push(("value outside the version", enc(&v, &version)));
    check(x, enc(&values, &version), variants)
}

proptest! {
    #![proptest_config(config())]

    /// Counters: unsorted or duplicate replicas and entries without
    /// operations are rejected.
    #[test]
    fn counters_reject_non_canonical(g in schedule::<GCounter>(2..=4, 30), p in schedule::<PnCounter>(2..=4, 30)) {
        for x in Sim::<GCounter>::run(&g).reachable_states() {
            counter_check(&x, &["ops", "total"])?;
        }
        for x in Sim::<PnCounter>::run(&p).reachable_states() {
            counter_check(&x, &["ops", "inc", "dec"])?;
        }
    }

    /// OR-sets: unsorted elements, bad dot lists, dots outside the context
    /// and non-canonical contexts are rejected.
    #[test]
    fn or_set_rejects_non_canonical(s in schedule::<OrSet<u8>>(2..=4, 30)) {
        for x in Sim::<OrSet<u8>>::run(&s).reachable_states() {
            or_set_check(&x)?;
        }
    }

    /// LWW maps: unsorted or duplicate keys, dots outside the context and
    /// non-canonical contexts are rejected.
    #[test]
    fn lww_map_rejects_non_canonical(s in schedule::<LwwMap<u8, u16>>(2..=4, 30)) {
        for x in Sim::<LwwMap<u8, u16>>::run(&s).reachable_states() {
            lww_map_check(&x)?;
        }
    }

    /// Registers: writes outside the version, unsorted or duplicate values
    /// and non-canonical versions are rejected.
    #[test]
    fn registers_reject_non_canonical(l in schedule::<LwwRegister<u16>>(2..=4, 30), m in schedule::<MvRegister<u16>>(2..=4, 30)) {
        for x in Sim::<LwwRegister<u16>>::run(&l).reachable_states() {
            lww_register_check(&x)?;
        }
        for x in Sim::<MvRegister<u16>>::run(&m).reachable_states() {
            mv_register_check(&x)?;
        }
    }
}
