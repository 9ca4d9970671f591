//! The causal pending buffer: out-of-order updates wait, are applied when
//! the gap fills, and are bounded by `Limits`.

use proptest::prelude::*;
use weft_core::doc::{ApplyStatus, Limits};
use weft_core::{Doc, DocError, Dot, ReplicaId, VersionVector};
use weft_tests::doc_sim::{
    check_report, config, reset_clock, run_tx, tx_strategy, Profile, CLOCKS,
};

/// One committed update with the versions its author had before and after.
#[derive(Clone, Debug)]
struct Made {
    bytes: Vec<u8>,
    from: VersionVector,
    to: VersionVector,
}

/// 1–3 authors take turns (each first catching up on everything so far, or
/// not, as `sync` says), producing a causal history of updates.
fn history(
    txs: &[(usize, weft_tests::doc_sim::TxSpec, bool)],
    authors: usize,
) -> Result<(Vec<Made>, Doc), TestCaseError> {
    reset_clock();
    let mut docs: Vec<Doc> = (0..authors)
        .map(|i| Doc::new(ReplicaId::new(i as u64 + 1)).with_clock(CLOCKS[0]))
        .collect();
    let mut made: Vec<Made> = Vec::new();
    for (who, tx, sync) in txs {
        let d = &mut docs[who % authors];
        if *sync {
            for m in &made {
                d.apply(&m.bytes)
                    .map_err(|e| TestCaseError::fail(format!("{e}")))?;
            }
        }
        let from = d.version().clone();
        if let Ok(bytes) = run_tx(d, tx) {
            let to = d.version().clone();
            if to != from {
                made.push(Made { bytes, from, to });
            }
        }
    }
    let mut all = Doc::new(ReplicaId::new(99));
    for m in &made {
        all.apply(&m.bytes)
            .map_err(|e| TestCaseError::fail(format!("{e}")))?;
    }
    prop_assert_eq!(all.pending_updates(), 0, "in causal order nothing waits");
    Ok((made, all))
}

/// A reference model of the receiver's buffer.
#[derive(Default)]
struct Receiver {
    version: VersionVector,
    pending: Vec<usize>,
}

impl Receiver {
    /// Returns (status, unblocked, missing) as the document should report.
    fn apply(&mut self, made: &[Made], i: usize) -> (ApplyStatus, usize, VersionVector) {
        let u = &made[i];
        let status = if self.version.dominates(&u.to) {
            ApplyStatus::Duplicate
        } else if self.version.dominates(&u.from) {
            self.version.join(&u.to);
            ApplyStatus::Applied
        } else {
            // A resent copy of a waiting update is not kept twice.
            if !self.pending.contains(&i) {
                self.pending.push(i);
            }
            ApplyStatus::Pending
        };
        let mut unblocked = 0;
        if status == ApplyStatus::Applied {
            while let Some(k) = self
                .pending
                .iter()
                .position(|&p| self.version.dominates(&made[p].from))
            {
                let p = self.pending.remove(k);
                if !self.version.dominates(&made[p].to) {
                    self.version.join(&made[p].to);
                    unblocked += 1;
                }
            }
        }
        let mut missing = VersionVector::new();
        for &p in &self.pending {
            for (r, n) in made[p].from.iter() {
                if n > self.version.get(r) {
                    missing.observe(Dot::new(r, n));
                }
            }
        }
        (status, unblocked, missing)
    }
}

proptest! {
    #![proptest_config(config())]

    /// Updates delivered in any order, with duplicates: each report says
    /// exactly what a reference buffer says (status, unblocked, pending,
    /// missing), every update is applied exactly once, and the receiver ends
    /// equal to a replica that got them in order.
    #[test]
    fn any_delivery_order_applies_everything_once(
        txs in proptest::collection::vec((0usize..3, tx_strategy(Profile::CONVERGE), any::<bool>()), 1..20),
        authors in 1usize..=3,
        order in proptest::collection::vec(any::<proptest::sample::Index>(), 0..40),
    ) {
        let (made, all) = history(&txs, authors)?;
        prop_assume!(!made.is_empty());
        // A delivery order: random picks (duplicates likely), then everything
        // in reverse so every update arrives at least once.
        let mut seq: Vec<usize> = order.iter().map(|i| i.index(made.len())).collect();
        seq.extend((0..made.len()).rev());
        let mut doc = Doc::new(ReplicaId::new(50));
        let mut model = Receiver::default();
        let mut applied = 0;
        for &i in &seq {
            let r = doc.apply(&made[i].bytes).map_err(|e| TestCaseError::fail(format!("{e}")))?;
            check_report(&doc, &r)?;
            let (status, unblocked, missing) = model.apply(&made, i);
            prop_assert_eq!(r.status, status);
            prop_assert_eq!(r.unblocked, unblocked);
            prop_assert_eq!(&r.missing, &missing);
            prop_assert_eq!(r.pending, model.pending.len());
            prop_assert_eq!(doc.version(), &model.version);
            applied += usize::from(r.status == ApplyStatus::Applied) + r.unblocked;
        }
        prop_assert_eq!(applied, made.len(), "every update applied exactly once");
        prop_assert_eq!(doc.pending_updates(), 0);
        prop_assert_eq!(&doc, &all);
    }

    /// With room for `cap` waiting updates, the next out-of-order one is
    /// refused with `PendingFull` and changes nothing; once the gap is filled
    /// and the refused updates are sent again, the receiver converges.
    #[test]
    fn pending_limit_refuses_then_converges(
        txs in proptest::collection::vec((Just(0usize), tx_strategy(Profile::STABLE), Just(false)), 3..12),
        cap in 0usize..4,
    ) {
        let (made, all) = history(&txs, 1)?;
        prop_assume!(made.len() >= 2);
        let limits = Limits { max_pending_updates: cap, ..Limits::default() };
        let mut doc = Doc::new(ReplicaId::new(50)).with_limits(limits);
        let mut refused = Vec::new();
        // Newest first: all but the first update must wait.
        for (k, m) in made.iter().enumerate().skip(1).rev() {
            let before = doc.save();
            match doc.apply(&m.bytes) {
                Ok(r) => {
                    prop_assert_eq!(r.status, ApplyStatus::Pending);
                    prop_assert!(r.pending <= cap);
                }
                Err(DocError::PendingFull { updates, .. }) => {
                    prop_assert_eq!(updates, cap);
                    prop_assert_eq!(doc.save(), before, "a refused update changed the doc");
                    refused.push(k);
                }
                Err(e) => return Err(TestCaseError::fail(format!("unexpected {e}"))),
            }
        }
        prop_assert_eq!(refused.len(), (made.len() - 1).saturating_sub(cap));
        let r = doc.apply(&made[0].bytes).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(r.status, ApplyStatus::Applied);
        // The first `cap` arrivals (the newest updates) waited; whatever the
        // gap held back is now applied or still waits for a refused update.
        check_report(&doc, &r)?;
        for k in refused.into_iter().rev() {
            doc.apply(&made[k].bytes).map_err(|e| TestCaseError::fail(format!("resend: {e}")))?;
        }
        prop_assert_eq!(doc.pending_updates(), 0);
        prop_assert_eq!(&doc, &all);
    }
}

#[test]
fn reverse_causal_order_waits_then_applies() {
    let a_id = ReplicaId::new(1);
    let mut a = Doc::new(a_id);
    let u: Vec<Vec<u8>> = (0..4)
        .map(|i| {
            a.transact(|tx| {
                let mut t = tx.text("t")?;
                let n = t.len();
                t.insert(n, &i.to_string())
            })
            .unwrap()
        })
        .collect();
    let mut b = Doc::new(ReplicaId::new(2));
    for (k, upd) in u.iter().enumerate().skip(1).rev() {
        let r = b.apply(upd).unwrap();
        assert_eq!(r.status, ApplyStatus::Pending, "update {k}");
        assert_eq!(r.unblocked, 0);
        assert_eq!(r.pending, 4 - k);
        // Each waiting update needs transaction k of replica 1 at most.
        assert_eq!(r.missing.get(a_id), 3, "highest needed counter");
        assert_eq!(b.text("t").unwrap().to_string(), "");
        assert!(b.version().is_empty());
    }
    // A duplicate of a waiting update is not applied either.
    assert_eq!(b.apply(&u[2]).unwrap().status, ApplyStatus::Pending);
    let r = b.apply(&u[0]).unwrap();
    assert_eq!(r.status, ApplyStatus::Applied);
    assert_eq!(r.unblocked, 3, "the three waiting updates, each once");
    assert_eq!(r.pending, 0);
    assert!(r.missing.is_empty());
    assert_eq!(b.pending_updates(), 0);
    assert_eq!(b.text("t").unwrap().to_string(), "0123");
    assert_eq!(b, a);
    for upd in &u {
        assert_eq!(b.apply(upd).unwrap().status, ApplyStatus::Duplicate);
    }
}

fn decoded_len(u: &[u8]) -> usize {
    weft_core::Update::decode(u.to_vec(), &Limits::default())
        .unwrap()
        .decoded_len()
}

#[test]
fn pending_limits_by_count_and_bytes() {
    let mut a = Doc::new(ReplicaId::new(1));
    let u: Vec<Vec<u8>> = (0..4)
        .map(|i| a.transact(|tx| tx.counter("n")?.increment(i + 1)).unwrap())
        .collect();
    let limits = Limits {
        max_pending_updates: 2,
        ..Limits::default()
    };
    let mut b = Doc::new(ReplicaId::new(2)).with_limits(limits);
    assert_eq!(b.apply(&u[3]).unwrap().status, ApplyStatus::Pending);
    assert_eq!(b.apply(&u[2]).unwrap().status, ApplyStatus::Pending);
    let before = b.save();
    match b.apply(&u[1]) {
        Err(DocError::PendingFull { updates: 2, bytes }) => {
            // Accounted at their decoded size (encoding plus what decoding
            // builds), the same after `load`.
            assert_eq!(bytes, decoded_len(&u[3]) + decoded_len(&u[2]))
        }
        other => panic!("expected PendingFull, got {other:?}"),
    }
    assert_eq!(b.save(), before);
    // Regression: the byte budget must be the same after `load` (it once
    // drifted by the headers).
    let mut reloaded = Doc::load_with_limits(&before, ReplicaId::new(2), limits).unwrap();
    match reloaded.apply(&u[1]) {
        Err(DocError::PendingFull { updates: 2, bytes }) => {
            // Accounted at their decoded size (encoding plus what decoding
            // builds), the same after `load`.
            assert_eq!(bytes, decoded_len(&u[3]) + decoded_len(&u[2]))
        }
        other => panic!("expected PendingFull after load, got {other:?}"),
    }
    // Filling the gap drains what can go; the refused update is resent.
    let r = b.apply(&u[0]).unwrap();
    assert_eq!(
        (r.status, r.unblocked, r.pending),
        (ApplyStatus::Applied, 0, 2)
    );
    let r = b.apply(&u[1]).unwrap();
    assert_eq!(
        (r.status, r.unblocked, r.pending),
        (ApplyStatus::Applied, 2, 0)
    );
    assert_eq!(b.counter("n").unwrap(), 10);
    assert_eq!(b, a);

    // A byte budget too small for even one update.
    let tiny = Limits {
        max_pending_bytes: 4,
        ..Limits::default()
    };
    let mut c = Doc::new(ReplicaId::new(3)).with_limits(tiny);
    assert!(matches!(
        c.apply(&u[1]),
        Err(DocError::PendingFull {
            updates: 0,
            bytes: 0
        })
    ));
    assert_eq!(c.pending_updates(), 0);
    for upd in &u {
        assert_eq!(c.apply(upd).unwrap().status, ApplyStatus::Applied);
    }
    assert_eq!(c, a);
}

/// The orders a receiver can see a causal history in.
#[derive(Clone, Copy, Debug)]
enum Order {
    /// Newest first: everything but the first update waits.
    Reversed,
    /// A random permutation.
    Shuffled,
    /// Each author's updates in order, authors one after another (another
    /// device's whole offline session arriving after this one's).
    AuthorByAuthor,
}

/// `made` (indices) in the given order; `seed` drives the shuffles.
fn deliver(made: &[Made], order: Order, seed: &[proptest::sample::Index]) -> Vec<usize> {
    let n = made.len();
    match order {
        Order::Reversed => (0..n).rev().collect(),
        Order::Shuffled => {
            let mut v: Vec<usize> = (0..n).collect();
            for (k, s) in seed.iter().enumerate().take(n) {
                let j = k + s.index(n - k);
                v.swap(k, j);
            }
            v
        }
        Order::AuthorByAuthor => {
            // The author of an update: the replica whose counter it raises.
            let author = |m: &Made| {
                m.to.iter()
                    .find(|&(r, c)| c > m.from.get(r))
                    .map(|(r, _)| r)
            };
            let mut authors: Vec<ReplicaId> = made.iter().filter_map(author).collect();
            authors.sort();
            authors.dedup();
            if let Some(s) = seed.first() {
                let k = s.index(authors.len().max(1));
                authors.rotate_left(k);
            }
            authors
                .into_iter()
                .flat_map(|a| (0..n).filter(move |&i| author(&made[i]) == Some(a)))
                .collect()
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// Random causal histories of 1–4 authors delivered reversed, shuffled or
    /// author by author, under the default limits: nothing is refused, and
    /// the receiver ends with everything applied, nothing waiting, and equal
    /// to a replica that received the history in causal order.
    #[test]
    fn adversarial_orders_converge_under_default_limits(
        txs in proptest::collection::vec((0usize..4, tx_strategy(Profile::CONVERGE), proptest::bool::weighted(0.3)), 1..60),
        authors in 1usize..=4,
        order in prop_oneof![Just(Order::Reversed), Just(Order::Shuffled), Just(Order::AuthorByAuthor)],
        seed in proptest::collection::vec(any::<proptest::sample::Index>(), 60),
    ) {
        let (made, all) = history(&txs, authors)?;
        prop_assume!(!made.is_empty());
        let mut doc = Doc::new(ReplicaId::new(50));
        for i in deliver(&made, order, &seed) {
            let r = doc
                .apply(&made[i].bytes)
                .map_err(|e| TestCaseError::fail(format!("{order:?}: update {i}: {e}")))?;
            check_report(&doc, &r)?;
        }
        prop_assert_eq!(doc.pending_updates(), 0);
        prop_assert_eq!(&doc, &all);
    }
}

/// Three devices each make 2,000 edits, seeing each other's edits often (so
/// every update depends on the others'); a fourth receives them device by
/// device, the worst order for waiting: it must hold almost everything, and
/// the default limits leave room for it.
#[test]
fn a_long_offline_history_author_by_author_fits_the_default_limits() {
    let mut docs: Vec<Doc> = (1..=3).map(|i| Doc::new(ReplicaId::new(i))).collect();
    let mut made: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 3];
    for step in 0..6000usize {
        let who = step % 3;
        // Catch up on the other two devices' latest edits first.
        let latest: Vec<Vec<u8>> = (0..3)
            .filter(|&other| other != who)
            .filter_map(|other| made[other].last().cloned())
            .collect();
        for u in &latest {
            docs[who].apply(u).unwrap();
        }
        let u = docs[who]
            .transact(|tx| {
                let mut t = tx.text("t")?;
                let at = (step * 7) % (t.len() + 1);
                t.insert(at, if step % 5 == 0 { "é " } else { "x" })
            })
            .unwrap();
        made[who].push(u);
    }
    let mut late = Doc::new(ReplicaId::new(9));
    let mut max_pending = 0;
    for device in [2, 0, 1] {
        for u in &made[device] {
            let r = late.apply(u).unwrap();
            max_pending = max_pending.max(r.pending);
        }
    }
    assert!(
        max_pending > 3000,
        "the order made most updates wait ({max_pending})"
    );
    assert_eq!(late.pending_updates(), 0);
    let mut reference = Doc::new(ReplicaId::new(10));
    for round in 0..2000 {
        for updates in &made {
            reference.apply(&updates[round]).unwrap();
        }
    }
    assert_eq!(
        late.text("t").unwrap().to_string(),
        reference.text("t").unwrap().to_string()
    );
    assert_eq!(late.version(), reference.version());
}
