//! Translation from document versions to value versions.
//!
//! Each value keeps its own version vector (its own op counters). To answer
//! "what does a peer at document version `v` lack in this value?", the
//! document records, per value and per replica, the value's counter for that
//! replica after each of the replica's transactions that touched it. The
//! records are run-length encoded: a replica typing one character per
//! transaction is one run, however long.
//!
//! Invariant: within one replica's runs, document counters and value
//! counters both strictly increase; runs are sorted and do not overlap.

use crate::{DecodeError, ReplicaId, VersionVector};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `count` transactions `doc, doc+1, ...` after which the value's counter was
/// `val, val+step, ...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Run {
    pub(crate) doc: u64,
    pub(crate) val: u64,
    pub(crate) count: u64,
    pub(crate) step: u64,
}

impl Run {
    pub(crate) fn last_doc(&self) -> u64 {
        self.doc + (self.count - 1)
    }

    fn val_at(&self, i: u64) -> u64 {
        self.val + i * self.step
    }

    fn last_val(&self) -> u64 {
        self.val_at(self.count - 1)
    }
}

/// The translation table of one value: runs per replica.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Touches {
    replicas: BTreeMap<ReplicaId, Vec<Run>>,
}

impl Touches {
    /// Records that after transaction `doc` of `replica`, the value's counter
    /// for `replica` was `val`. Records at or below what is known are ignored.
    pub(crate) fn record(&mut self, replica: ReplicaId, doc: u64, val: u64) {
        let runs = self.replicas.entry(replica).or_default();
        if let Some(last) = runs.last_mut() {
            if doc <= last.last_doc() || val < last.last_val() {
                return;
            }
            let next_doc = last.last_doc() + 1;
            if doc == next_doc {
                if last.count == 1 {
                    last.step = val - last.val;
                    last.count = 2;
                    return;
                }
                if last.last_val().checked_add(last.step) == Some(val) {
                    last.count += 1;
                    return;
                }
            }
        }
        runs.push(Run {
            doc,
            val,
            count: 1,
            step: 0,
        });
    }

    /// The value's counter for `replica` once transactions `1..=doc` of that
    /// replica have been applied.
    fn lookup(&self, replica: ReplicaId, doc: u64) -> u64 {
        let Some(runs) = self.replicas.get(&replica) else {
            return 0;
        };
        let i = runs.partition_point(|r| r.doc <= doc);
        if i == 0 {
            return 0;
        }
        let r = &runs[i - 1];
        r.val_at((doc - r.doc).min(r.count - 1))
    }

    /// The value's version for a peer at document version `doc_version`.
    pub(crate) fn translate(&self, doc_version: &VersionVector) -> VersionVector {
        self.replicas
            .keys()
            .map(|&r| (r, self.lookup(r, doc_version.get(r))))
            .filter(|&(_, n)| n > 0)
            .collect()
    }

    /// The records for transactions a peer at `since` lacks.
    pub(crate) fn since(&self, since: &VersionVector) -> Vec<(ReplicaId, Vec<Run>)> {
        let mut out = Vec::new();
        for (&r, runs) in &self.replicas {
            let have = since.get(r);
            let mut picked = Vec::new();
            for run in runs.iter().filter(|run| run.last_doc() > have) {
                if run.doc > have {
                    picked.push(*run);
                } else {
                    let skip = have + 1 - run.doc;
                    picked.push(Run {
                        doc: run.doc + skip,
                        val: run.val_at(skip),
                        count: run.count - skip,
                        step: run.step,
                    });
                }
            }
            if !picked.is_empty() {
                out.push((r, picked));
            }
        }
        out
    }

    /// Adds received records (idempotent; linear in the number of runs, not
    /// in the number of transactions they cover).
    pub(crate) fn merge(&mut self, replica: ReplicaId, runs: &[Run]) {
        for run in runs {
            let runs_here = self.replicas.entry(replica).or_default();
            let (known_doc, known_val) = runs_here
                .last()
                .map_or((0, 0), |l| (l.last_doc(), l.last_val()));
            if run.last_doc() <= known_doc {
                continue;
            }
            let skip = (known_doc + 1).saturating_sub(run.doc);
            let rest = Run {
                doc: run.doc + skip,
                val: run.val_at(skip),
                count: run.count - skip,
                step: run.step,
            };
            if rest.val < known_val {
                continue; // inconsistent with what we hold: keep ours
            }
            if rest.count == 1 {
                self.record(replica, rest.doc, rest.val);
            } else {
                runs_here.push(rest);
            }
        }
    }

    /// Checks a table decoded from untrusted bytes (a snapshot) against the
    /// snapshot's version, as [`validate_runs`] does for an update's records.
    pub(crate) fn validate(&self, version: &VersionVector) -> Result<(), DecodeError> {
        for (&r, runs) in &self.replicas {
            let limit = version.get(r);
            validate_runs(runs, limit)?;
            if runs.iter().any(|run| run.last_doc() > limit) {
                return Err(DecodeError::Invalid(
                    "snapshot touches beyond its own version",
                ));
            }
        }
        Ok(())
    }

    /// Whether `run`'s records of `replica`'s transactions up to `known`
    /// agree with ours: we recorded each of those transactions as touching
    /// this value, with the same value counter. Transactions past `known`
    /// are not compared.
    pub(crate) fn agrees(&self, replica: ReplicaId, run: &Run, known: u64) -> bool {
        let last = run.last_doc().min(known);
        if run.doc > last {
            return true;
        }
        let Some(ours) = self.replicas.get(&replica) else {
            return false;
        };
        let mut next = run.doc;
        let start = ours.partition_point(|r| r.last_doc() < run.doc);
        for s in &ours[start..] {
            if next > last {
                break;
            }
            if s.doc > next {
                return false;
            }
            let hi = s.last_doc().min(last);
            // Both runs are linear in the counter: agreeing at both ends of
            // the shared range means agreeing throughout it.
            if s.val_at(next - s.doc) != run.val_at(next - run.doc)
                || s.val_at(hi - s.doc) != run.val_at(hi - run.doc)
            {
                return false;
            }
            next = hi + 1;
        }
        next > last
    }

    /// The transactions of `replica` within `lo..=hi` we recorded as
    /// touching this value, as inclusive intervals.
    pub(crate) fn recorded(&self, replica: ReplicaId, lo: u64, hi: u64) -> Vec<(u64, u64)> {
        let Some(ours) = self.replicas.get(&replica) else {
            return Vec::new();
        };
        let start = ours.partition_point(|r| r.last_doc() < lo);
        ours[start..]
            .iter()
            .take_while(|r| r.doc <= hi)
            .map(|r| (r.doc.max(lo), r.last_doc().min(hi)))
            .collect()
    }

    /// Number of stored runs.
    #[cfg(test)]
    pub(crate) fn run_count(&self) -> usize {
        self.replicas.values().map(Vec::len).sum()
    }
}

/// Checks runs decoded from untrusted bytes.
pub(crate) fn validate_runs(runs: &[Run], max_total: u64) -> Result<(), DecodeError> {
    let mut total = 0u64;
    let mut prev_doc = 0u64;
    for run in runs {
        if run.doc == 0 || run.count == 0 {
            return Err(DecodeError::Invalid(
                "translation run empty or at counter zero",
            ));
        }
        let last_doc = run
            .doc
            .checked_add(run.count - 1)
            .ok_or(DecodeError::Invalid("translation run overflows"))?;
        run.step
            .checked_mul(run.count - 1)
            .and_then(|d| d.checked_add(run.val))
            .ok_or(DecodeError::Invalid("translation run overflows"))?;
        if run.doc <= prev_doc && prev_doc != 0 {
            return Err(DecodeError::Invalid("translation runs not ascending"));
        }
        prev_doc = last_doc;
        total = total.saturating_add(run.count);
        if total > max_total {
            return Err(DecodeError::Invalid(
                "translation runs cover too many transactions",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: ReplicaId = ReplicaId::new(1);

    #[test]
    fn typing_one_char_per_transaction_is_one_run() {
        let mut t = Touches::default();
        for i in 1..=1000u64 {
            t.record(R, i, i);
        }
        assert_eq!(t.run_count(), 1);
        let mut v = VersionVector::new();
        v.set(R, 500);
        assert_eq!(t.translate(&v).get(R), 500);
        let rest = t.since(&v);
        assert_eq!(rest[0].1[0].doc, 501);
        assert_eq!(rest[0].1[0].count, 500);
    }

    /// Regression: snapshot touches were not validated, so a damaged
    /// snapshot with an empty run loaded and `diff` then underflowed in
    /// `Run::last_doc`.
    #[test]
    fn validate_refuses_empty_runs_and_runs_past_the_version() {
        let mut v = VersionVector::new();
        v.set(R, 3);
        let table = |run: Run| Touches {
            replicas: BTreeMap::from([(R, vec![run])]),
        };
        let run = |doc, count| Run {
            doc,
            val: 1,
            count,
            step: 1,
        };
        assert!(table(run(1, 0)).validate(&v).is_err(), "empty run");
        assert!(
            table(run(0, 1)).validate(&v).is_err(),
            "run at counter zero"
        );
        assert!(
            table(run(3, 2)).validate(&v).is_err(),
            "run past the version"
        );
        assert!(table(run(1, 3)).validate(&v).is_ok());
    }

    #[test]
    fn lookup_between_touches_keeps_the_last_value() {
        let mut t = Touches::default();
        t.record(R, 2, 5);
        t.record(R, 7, 9);
        let at = |d: u64| {
            let mut v = VersionVector::new();
            v.set(R, d);
            t.translate(&v).get(R)
        };
        assert_eq!((at(1), at(2), at(6), at(7), at(100)), (0, 5, 5, 9, 9));
        let mut copy = Touches::default();
        for (r, runs) in t.since(&VersionVector::new()) {
            copy.merge(r, &runs);
            copy.merge(r, &runs);
        }
        assert_eq!(copy, t);
    }
}
