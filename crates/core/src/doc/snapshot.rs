//! Snapshots: a whole document in one encoded value, for disk.
//!
//! Invariant: a decoded snapshot has passed [`SnapshotBody::validate`]:
//! every path is within the limits and every value has the kind its path
//! names (and every waiting update is a valid update), so loading it cannot
//! fail.

use super::path::Path;
use super::pending::Pending;
use super::touches::Touches;
use super::update::{check_counters, check_list_values, kind_fits, UpdateBody};
use super::value::Value;
use crate::codec::{kind, Encode};
use crate::{DecodeError, VersionVector};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A whole document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct SnapshotBody {
    pub(crate) version: VersionVector,
    pub(crate) values: Vec<(Path, Value)>,
    pub(crate) touches: Vec<(Path, Touches)>,
    pub(crate) pending: Vec<UpdateBody>,
}

impl SnapshotBody {
    pub(crate) fn validate(&self) -> Result<(), DecodeError> {
        check_counters(&self.version)?;
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
            if let Value::List(list) = value {
                check_list_values(path, list.values_by_id())?;
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

impl Encode for SnapshotBody {
    const KIND: u8 = kind::DOC_SNAPSHOT;
    const NAME: &'static str = "Snapshot";
}

/// A whole document, borrowed: serializes exactly as the [`SnapshotBody`]
/// of the same content (a map serializes as the sequence of its pairs), so
/// [`Doc::save`](super::Doc::save) writes a snapshot without first cloning
/// every value into one (a second copy of the document at its peak).
#[derive(Serialize)]
pub(crate) struct SnapshotView<'a> {
    pub(crate) version: &'a VersionVector,
    pub(crate) values: &'a BTreeMap<Path, Value>,
    pub(crate) touches: &'a BTreeMap<Path, Touches>,
    pub(crate) pending: PendingBodies<'a>,
}

/// The waiting updates' bodies, serialized as the sequence a
/// [`SnapshotBody`] holds.
pub(crate) struct PendingBodies<'a>(pub(crate) &'a Pending);

impl Serialize for PendingBodies<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.bodies())
    }
}
