//! The two encoded forms of a document: updates (what travels between
//! replicas) and snapshots (everything, for disk).
//!
//! Invariant: a decoded update or snapshot has passed [`UpdateBody::validate`]
//! / [`SnapshotBody::validate`]: every path is within the limits and every
//! delta or value has the kind its path names, so applying it cannot fail.

use super::path::{Kind, Path};
use super::touches::{validate_runs, Run, Touches};
use super::value::{Value, ValueDelta};
use crate::codec::{kind, Encode};
use crate::{DecodeError, ReplicaId, VersionVector};
use serde::{Deserialize, Serialize};

/// An update: the changes of one or more transactions.
///
/// Applicable once the receiver's version includes `from`; afterwards the
/// receiver's version includes `to`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct UpdateBody {
    pub(crate) from: VersionVector,
    pub(crate) to: VersionVector,
    pub(crate) changes: Vec<(Path, ValueDelta)>,
    pub(crate) touches: Vec<(Path, ReplicaId, Vec<Run>)>,
}

/// A whole document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct SnapshotBody {
    pub(crate) version: VersionVector,
    pub(crate) values: Vec<(Path, Value)>,
    pub(crate) touches: Vec<(Path, Touches)>,
    pub(crate) pending: Vec<UpdateBody>,
}

/// Whether a value or delta of `found` kind may live at `path`.
fn kind_fits(path: &Path, found: Kind) -> bool {
    match path.kind() {
        None => found == Kind::Map,
        Some(k) => k == found,
    }
}

impl UpdateBody {
    pub(crate) fn validate(&self) -> Result<(), DecodeError> {
        for (path, delta) in &self.changes {
            path.validate()?;
            if !kind_fits(path, delta.kind()) {
                return Err(DecodeError::Invalid(
                    "update change does not fit its path's kind",
                ));
            }
        }
        for (path, replica, runs) in &self.touches {
            path.validate()?;
            let limit = self.to.get(*replica);
            validate_runs(runs, limit)?;
            if runs.iter().any(|r| r.doc + (r.count - 1) > limit) {
                return Err(DecodeError::Invalid(
                    "update touches beyond its own version",
                ));
            }
        }
        Ok(())
    }

    /// Bytes this update takes when buffered (its encoded size).
    pub(crate) fn encoded_len(&self) -> usize {
        postcard::experimental::serialized_size(self).unwrap_or(usize::MAX)
    }
}

impl SnapshotBody {
    pub(crate) fn validate(&self) -> Result<(), DecodeError> {
        if self.values.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(DecodeError::Invalid(
                "snapshot values not strictly ascending",
            ));
        }
        for (path, value) in &self.values {
            path.validate()?;
            if !kind_fits(path, value.kind()) {
                return Err(DecodeError::Invalid(
                    "snapshot value does not fit its path's kind",
                ));
            }
        }
        if self.touches.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(DecodeError::Invalid(
                "snapshot touches not strictly ascending",
            ));
        }
        for (path, touches) in &self.touches {
            path.validate()?;
            touches.validate(&self.version)?;
        }
        for u in &self.pending {
            u.validate()?;
        }
        Ok(())
    }
}

impl Encode for UpdateBody {
    const KIND: u8 = kind::DOC_UPDATE;
    const NAME: &'static str = "Update";
}

impl Encode for SnapshotBody {
    const KIND: u8 = kind::DOC_SNAPSHOT;
    const NAME: &'static str = "Snapshot";
}
