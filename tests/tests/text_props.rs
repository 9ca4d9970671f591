//! Property tests for `weft_core::Text` (issue 3).
//!
//! Case count: `PROPTEST_CASES` (proptest's default mechanism). Histories are
//! kept short so that 1000 cases per property run in seconds.

use proptest::prelude::*;
use weft_core::{codec, Bias, Crdt, ReplicaId, Text, TextDelta, TextOp};

/// A local edit: insert `text` at `pos` or delete `len` chars at `pos`
/// (positions are reduced modulo the current length).
#[derive(Clone, Debug)]
enum Edit {
    Insert(usize, String),
    Delete(usize, usize),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => (any::<usize>(), "[a-c€😀]{1,4}").prop_map(|(p, s)| Edit::Insert(p, s)),
        1 => (any::<usize>(), 1usize..4).prop_map(|(p, n)| Edit::Delete(p, n)),
    ]
}

fn perform(text: &mut Text, replica: ReplicaId, edit: &Edit) -> TextDelta {
    match edit {
        Edit::Insert(p, s) => text.insert(replica, p % (text.len() + 1), s),
        Edit::Delete(p, n) => text.delete(replica, p % (text.len() + 1), *n),
    }
}

fn char_splice(model: &mut String, pos: usize, del: usize, ins: &str) {
    let start = model
        .char_indices()
        .nth(pos)
        .map_or(model.len(), |(b, _)| b);
    let end = model[start..]
        .char_indices()
        .nth(del)
        .map_or(model.len(), |(b, _)| start + b);
    model.replace_range(start..end, ins);
}

/// One step of a simulated network of replicas.
#[derive(Clone, Debug)]
enum Step {
    /// Replica `usize` makes a local edit.
    Edit(usize, Edit),
    /// Deliver message `index` (of all sent so far) to replica `usize`.
    Deliver(usize, prop::sample::Index),
}

fn steps(replicas: usize) -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            (0..replicas, edit_strategy()).prop_map(|(r, e)| Step::Edit(r, e)),
            (0..replicas, any::<prop::sample::Index>()).prop_map(|(r, i)| Step::Deliver(r, i)),
        ],
        0..40,
    )
}

/// Runs the schedule; returns the replicas and every message sent.
fn simulate(n: usize, steps: &[Step], events: bool) -> (Vec<Text>, Vec<TextDelta>) {
    let mut reps = vec![Text::new(); n];
    let mut mirrors = vec![String::new(); n];
    let mut sent: Vec<TextDelta> = Vec::new();
    for step in steps {
        match step {
            Step::Edit(r, e) => {
                let d = perform(&mut reps[*r], ReplicaId::new(*r as u64 + 1), e);
                mirrors[*r] = reps[*r].to_string();
                sent.push(d);
            }
            Step::Deliver(r, i) if !sent.is_empty() => {
                let d = &sent[i.index(sent.len())];
                if events {
                    let ops = reps[*r].apply_with_events(d);
                    TextOp::apply_all(&ops, &mut mirrors[*r]);
                    assert_eq!(mirrors[*r], reps[*r].to_string(), "events reconstruct");
                } else {
                    reps[*r].apply(d);
                }
            }
            Step::Deliver(..) => {}
        }
    }
    (reps, sent)
}

proptest! {
    #[test]
    fn single_replica_matches_a_string_model(edits in prop::collection::vec(edit_strategy(), 0..60)) {
        let mut text = Text::new();
        let mut model = String::new();
        let r = ReplicaId::new(1);
        for e in &edits {
            let len = model.chars().count();
            match e {
                Edit::Insert(p, s) => char_splice(&mut model, p % (len + 1), 0, s),
                Edit::Delete(p, n) => char_splice(&mut model, p % (len + 1), *n, ""),
            }
            perform(&mut text, r, e);
            prop_assert_eq!(text.to_string(), model.clone());
            prop_assert_eq!(text.len(), model.chars().count());
        }
    }

    #[test]
    fn replicas_converge_under_any_delivery(n in 2usize..=5, steps in steps(5), seed in any::<u64>()) {
        let steps: Vec<Step> = steps
            .into_iter()
            .map(|s| match s {
                Step::Edit(r, e) => Step::Edit(r % n, e),
                Step::Deliver(r, i) => Step::Deliver(r % n, i),
            })
            .collect();
        let (mut reps, sent) = simulate(n, &steps, false);
        // Resend everything (dropped messages), in a seed-dependent order.
        let len = sent.len().max(1);
        for (k, r) in reps.iter_mut().enumerate() {
            let rotate = (seed as usize).wrapping_add(k) % len;
            let backwards = (seed >> (k + 1)) & 1 == 1;
            for j in 0..sent.len() {
                let j = if backwards { sent.len() - 1 - j } else { j };
                r.apply(&sent[(j + rotate) % sent.len()]);
            }
        }
        for r in &reps {
            prop_assert_eq!(r.pending_ops(), 0);
            prop_assert_eq!(r, &reps[0]);
            prop_assert_eq!(r.to_string(), reps[0].to_string());
        }
    }

    #[test]
    fn apply_events_reconstruct_the_text(n in 2usize..=4, steps in steps(4)) {
        let steps: Vec<Step> = steps
            .into_iter()
            .map(|s| match s {
                Step::Edit(r, e) => Step::Edit(r % n, e),
                Step::Deliver(r, i) => Step::Deliver(r % n, i),
            })
            .collect();
        let (mut reps, _) = simulate(n, &steps, true);
        // A join expressed as one delta also yields correct events.
        let (first, rest) = reps.split_at_mut(1);
        for other in rest.iter() {
            let mut mirror = first[0].to_string();
            let ops = first[0].apply_with_events(&other.delta_since(&first[0].version()));
            TextOp::apply_all(&ops, &mut mirror);
            prop_assert_eq!(mirror, first[0].to_string());
        }
    }

    #[test]
    fn concurrent_runs_at_one_position_stay_contiguous(
        base in "[x-z]{0,6}",
        pos in any::<usize>(),
        a in "[a-e]{1,6}",
        b in "[A-E]{1,6}",
        backwards_a in any::<bool>(),
        backwards_b in any::<bool>(),
    ) {
        let mut origin = Text::new();
        origin.insert(ReplicaId::new(9), 0, &base);
        let pos = pos % (base.chars().count() + 1);
        let type_run = |text: &mut Text, r: u64, run: &str, backwards: bool| {
            let mut d = TextDelta::new();
            if backwards {
                for c in run.chars().rev() {
                    d.merge(&text.insert(ReplicaId::new(r), pos, &c.to_string()));
                }
            } else {
                for (i, c) in run.chars().enumerate() {
                    d.merge(&text.insert(ReplicaId::new(r), pos + i, &c.to_string()));
                }
            }
            d
        };
        let mut x = origin.clone();
        let mut y = origin.clone();
        let dx = type_run(&mut x, 1, &a, backwards_a);
        let dy = type_run(&mut y, 2, &b, backwards_b);
        x.apply(&dy);
        y.apply(&dx);
        prop_assert_eq!(&x, &y);
        let (pre, post): (String, String) = (base.chars().take(pos).collect(), base.chars().skip(pos).collect());
        let ab = format!("{pre}{a}{b}{post}");
        let ba = format!("{pre}{b}{a}{post}");
        let got = x.to_string();
        prop_assert!(got == ab || got == ba, "interleaved: {}", got);
    }

    #[test]
    fn unicode_index_conversions_round_trip(s in any::<String>(), extra in any::<usize>()) {
        let mut t = Text::new();
        t.insert(ReplicaId::new(1), 0, &s);
        let (mut utf16, mut byte) = (0usize, 0usize);
        for (i, c) in s.chars().enumerate() {
            prop_assert_eq!(t.char_to_utf16(i), utf16);
            prop_assert_eq!(t.char_to_byte(i), byte);
            prop_assert_eq!(t.utf16_to_char(utf16), i);
            prop_assert_eq!(t.byte_to_char(byte), i);
            utf16 += c.len_utf16();
            byte += c.len_utf8();
        }
        let n = s.chars().count();
        prop_assert_eq!((t.len_utf16(), t.len_bytes()), (utf16, byte));
        prop_assert_eq!(t.utf16_to_char(utf16 + extra % 8), n);
        prop_assert_eq!(t.byte_to_char(byte + extra % 8), n);
        prop_assert_eq!(t.char_to_utf16(n + extra % 8), utf16);
    }

    #[test]
    fn delta_since_is_exactly_what_join_adds(
        shared in prop::collection::vec(edit_strategy(), 0..10),
        ea in prop::collection::vec(edit_strategy(), 0..10),
        eb in prop::collection::vec(edit_strategy(), 0..10),
    ) {
        let mut a = Text::new();
        for e in &shared {
            perform(&mut a, ReplicaId::new(1), e);
        }
        let mut b = a.clone();
        for e in &ea {
            perform(&mut a, ReplicaId::new(1), e);
        }
        for e in &eb {
            perform(&mut b, ReplicaId::new(2), e);
        }
        let delta = a.delta_since(&b.version());
        let wire: TextDelta = codec::decode(&codec::encode(&delta)).expect("own delta decodes");
        prop_assert_eq!(&wire, &delta);
        let mut via_delta = b.clone();
        via_delta.apply(&wire);
        let mut via_join = b.clone();
        via_join.join(&a);
        prop_assert_eq!(&via_delta, &via_join);
        let mut version = a.version();
        version.join(&b.version());
        prop_assert_eq!(via_delta.version(), version);
        // Nothing more to send once caught up; states survive the codec.
        prop_assert!(a.delta_since(&via_join.version()).is_empty());
        let back: Text = codec::decode(&codec::encode(&via_join)).expect("own state decodes");
        prop_assert_eq!(back, via_join);
    }

    #[test]
    fn stable_positions_follow_their_character(
        base in 1usize..=10,
        idx in any::<usize>(),
        local in prop::collection::vec(edit_strategy(), 0..8),
        remote in prop::collection::vec(edit_strategy(), 0..8),
    ) {
        // Digits are unique and edits insert only letters and symbols, so a
        // digit still in the text identifies the anchored character.
        let digits: String = "0123456789".chars().take(base).collect();
        let mut a = Text::new();
        a.insert(ReplicaId::new(1), 0, &digits);
        let mut b = a.clone();
        let idx = idx % (a.len() + 1);
        let left = a.anchor(idx, Bias::Left);
        let right = a.anchor(idx, Bias::Right);
        prop_assert_eq!(a.resolve(&left), Some(idx));
        prop_assert_eq!(a.resolve(&right), Some(idx));
        let before = idx.checked_sub(1).and_then(|i| digits.chars().nth(i));
        let after = digits.chars().nth(idx);
        for e in &local {
            perform(&mut a, ReplicaId::new(1), e);
        }
        for e in &remote {
            perform(&mut b, ReplicaId::new(2), e);
        }
        a.join(&b);
        let text: Vec<char> = a.to_string().chars().collect();
        let (l, r) = (a.resolve(&left), a.resolve(&right));
        prop_assert!(l.is_some() && r.is_some());
        let (l, r) = (l.unwrap_or(0), r.unwrap_or(0));
        prop_assert!(l <= r, "left-biased never after right-biased");
        prop_assert!(r <= text.len());
        if let Some(c) = before.filter(|c| text.contains(c)) {
            prop_assert_eq!(text.get(l.wrapping_sub(1)), Some(&c));
        }
        if let Some(c) = after.filter(|c| text.contains(c)) {
            prop_assert_eq!(text.get(r), Some(&c));
        }
        // Anchors also resolve on a replica that only synced later.
        let mut c = Text::new();
        c.join(&a);
        prop_assert_eq!(c.resolve(&left), Some(l));
        prop_assert_eq!(c.resolve(&right), Some(r));
    }

    #[test]
    fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        prop_assert!(codec::decode::<TextDelta>(&bytes).is_err() || bytes.starts_with(&codec::MAGIC));
        prop_assert!(codec::decode::<Text>(&bytes).is_err() || bytes.starts_with(&codec::MAGIC));
        // With a valid header the body is arbitrary: decoding must not panic,
        // and whatever decodes must apply without panicking.
        let mut framed = codec::MAGIC.to_vec();
        framed.push(codec::FORMAT_VERSION);
        framed.push(codec::kind::TEXT_DELTA);
        framed.extend_from_slice(&bytes);
        if let Ok(d) = codec::decode::<TextDelta>(&framed) {
            let mut t = Text::new();
            t.insert(ReplicaId::new(1), 0, "seed");
            t.apply(&d);
            prop_assert_eq!(codec::decode::<TextDelta>(&codec::encode(&d)).ok(), Some(d));
        }
        framed[5] = codec::kind::TEXT;
        let _ = codec::decode::<Text>(&framed);
    }
}

/// Flips, truncates or splices bytes of a valid encoding.
fn mutate(bytes: &[u8], muts: &[(prop::sample::Index, u8, u8)]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for (i, b, how) in muts {
        if out.is_empty() {
            break;
        }
        let at = i.index(out.len());
        match how % 4 {
            0 => out[at] ^= b | 1,
            1 => out.truncate(at),
            2 => out.insert(at, *b),
            _ => out[at] = *b,
        }
    }
    out
}

proptest! {
    #[test]
    fn snapshots_load_to_the_same_structure(n in 2usize..=4, steps in steps(4), late in prop::collection::vec(edit_strategy(), 0..6)) {
        let steps: Vec<Step> = steps
            .into_iter()
            .map(|s| match s {
                Step::Edit(r, e) => Step::Edit(r % n, e),
                Step::Deliver(r, i) => Step::Deliver(r % n, i),
            })
            .collect();
        let (reps, _) = simulate(n, &steps, false);
        for (k, a) in reps.iter().enumerate() {
            let loaded: Text = codec::decode(&codec::encode(a)).expect("own state decodes");
            prop_assert_eq!(&loaded, a);
            prop_assert_eq!(loaded.pending_ops(), a.pending_ops());
            prop_assert_eq!(codec::encode(&loaded), codec::encode(a), "re-encoding is stable");
            // A loaded replica serves peers like the original: its deltas
            // (which may carry deleted inserts without their text) bring any
            // other replica to the same state, and edits made after loading
            // land in the same places.
            for b in &reps {
                let mut via_loaded = b.clone();
                let d = loaded.delta_since(&b.version());
                let wire: TextDelta = codec::decode(&codec::encode(&d)).expect("delta decodes");
                via_loaded.apply(&wire);
                let mut via_original = b.clone();
                via_original.apply(&a.delta_since(&b.version()));
                prop_assert_eq!(&via_loaded, &via_original);
                prop_assert_eq!(via_loaded.to_string(), via_original.to_string());
            }
            let mut fresh = Text::new();
            fresh.apply(&loaded.delta_since(&weft_core::VersionVector::new()));
            prop_assert_eq!(&fresh, a);
            let (mut x, mut y) = (a.clone(), loaded.clone());
            let other = &reps[(k + 1) % n];
            let r = ReplicaId::new(9);
            for e in &late {
                perform(&mut x, r, e);
                perform(&mut y, r, e);
            }
            x.join(other);
            y.join(other);
            prop_assert_eq!(&x, &y);
            prop_assert_eq!(x.to_string(), y.to_string());
        }
    }

    #[test]
    fn mutated_encodings_never_panic(
        n in 2usize..=3,
        steps in steps(3),
        muts in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<u8>()), 1..4),
    ) {
        let steps: Vec<Step> = steps
            .into_iter()
            .map(|s| match s {
                Step::Edit(r, e) => Step::Edit(r % n, e),
                Step::Deliver(r, i) => Step::Deliver(r % n, i),
            })
            .collect();
        let (reps, sent) = simulate(n, &steps, false);
        let state = mutate(&codec::encode(&reps[0]), &muts);
        if let Ok(t) = codec::decode::<Text>(&state) {
            let mut u = reps[1].clone();
            u.join(&t);
            let _ = codec::encode(&t);
        }
        let mut all = TextDelta::new();
        for d in &sent {
            all.merge(d);
        }
        let delta = mutate(&codec::encode(&all), &muts);
        if let Ok(d) = codec::decode::<TextDelta>(&delta) {
            let mut u = reps[1].clone();
            u.apply(&d);
            prop_assert_eq!(codec::decode::<TextDelta>(&codec::encode(&d)).ok(), Some(d));
        }
    }
}
