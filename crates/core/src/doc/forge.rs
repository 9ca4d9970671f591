//! Deliberately wrong updates, for the tests and fuzz targets of the checks
//! that must refuse them (cargo feature `forge`; never enabled by default).
//!
//! A [`Forgery`] is an update body decoded *without* validation, whose
//! claims (versions, translation runs, replica ids) can be rewritten and
//! then encoded again, header and all — what a hostile peer can send.
//!
//! ```
//! use weft_core::doc::forge::Forgery;
//! use weft_core::{Doc, ReplicaId};
//! let mut victim_doc = Doc::new(ReplicaId::new(2));
//! let mut forged = Forgery::empty();
//! forged.to_mut().set(ReplicaId::new(7), u64::MAX); // claims without content
//! assert!(victim_doc.apply(&forged.encode()).is_err());
//! ```

use super::path::Path;
use super::touches::Run;
use super::update::UpdateBody;
use crate::codec;
use crate::{DecodeError, ReplicaId, VersionVector};

/// An update body open to rewriting.
#[derive(Clone, Debug)]
pub struct Forgery {
    body: UpdateBody,
}

impl Forgery {
    /// An update with no changes, no runs and empty versions.
    pub fn empty() -> Forgery {
        Forgery {
            body: UpdateBody {
                from: VersionVector::new(),
                to: VersionVector::new(),
                changes: Vec::new(),
                touches: Vec::new(),
            },
        }
    }

    /// Decodes a real update (header and postcard only; nothing checked).
    pub fn from_update(bytes: &[u8]) -> Result<Forgery, DecodeError> {
        Ok(Forgery {
            body: codec::decode_with_limit(bytes, usize::MAX)?,
        })
    }

    /// The claimed `from` version.
    pub fn from_mut(&mut self) -> &mut VersionVector {
        &mut self.body.from
    }

    /// The claimed `to` version.
    pub fn to_mut(&mut self) -> &mut VersionVector {
        &mut self.body.to
    }

    /// Drops every change (content), keeping the claims.
    pub fn drop_changes(&mut self) {
        self.body.changes.clear();
    }

    /// Drops every translation run (the claim of which values each
    /// transaction touched).
    pub fn drop_runs(&mut self) {
        self.body.touches.clear();
    }

    /// Adds a translation run: `count` transactions of `replica` from `doc`
    /// touched the value at `path`, leaving its counter at `val`, `val +
    /// step`, ...
    pub fn add_run(
        &mut self,
        path: Path,
        replica: ReplicaId,
        doc: u64,
        val: u64,
        count: u64,
        step: u64,
    ) {
        self.body.touches.push((
            path,
            replica,
            vec![Run {
                doc,
                val,
                count,
                step,
            }],
        ));
    }

    /// Shifts the value counter of every run by `by` (another shape for the
    /// same transactions).
    pub fn shift_run_values(&mut self, by: u64) {
        for (_, _, runs) in &mut self.body.touches {
            for run in runs {
                run.val = run.val.wrapping_add(by);
            }
        }
    }

    /// Renames replica `from` to `to` in the versions and runs (not inside
    /// the changes' content).
    pub fn rename_replica(&mut self, from: ReplicaId, to: ReplicaId) {
        for v in [&mut self.body.from, &mut self.body.to] {
            let n = v.get(from);
            if n > 0 {
                let mut renamed: VersionVector = v.iter().filter(|(r, _)| *r != from).collect();
                renamed.set(to, n.max(renamed.get(to)));
                *v = renamed;
            }
        }
        for (_, replica, _) in &mut self.body.touches {
            if *replica == from {
                *replica = to;
            }
        }
    }

    /// The paths the update changes.
    pub fn changed_paths(&self) -> Vec<Path> {
        self.body.changes.iter().map(|(p, _)| p.clone()).collect()
    }

    /// Encodes it as an update, with the weft header.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(&self.body)
    }
}
