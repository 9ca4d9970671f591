//! Read-only typed views of a document's values.
//!
//! Invariant: a view never changes the document. Asking for a key that
//! holds another kind is a [`DocError::TypeMismatch`]; asking for a key that
//! holds nothing gives an empty view (the value is created by the first
//! transaction that writes to it).

use super::path::{Kind, Path};
use super::value::{decode_scalar, encode_scalar, Slot, Value};
use super::Doc;
use crate::{DocError, Text};
use serde::de::DeserializeOwned;
use std::fmt;
use std::marker::PhantomData;

/// A read-only view of a map (the document's root is one).
///
/// ```
/// use weft_core::{Doc, ReplicaId};
/// let mut doc = Doc::new(ReplicaId::new(1));
/// doc.transact(|tx| {
///     tx.map("meta")?.put("title", &"Plan".to_string())?;
///     Ok(())
/// })
/// .unwrap();
/// let meta = doc.map("meta").unwrap();
/// assert_eq!(meta.register::<String>("title").unwrap().as_deref(), Some("Plan"));
/// assert_eq!(meta.keys().len(), 1);
/// ```
#[derive(Clone)]
pub struct MapRef<'d> {
    doc: &'d Doc,
    path: Path,
}

impl fmt::Debug for MapRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapRef").field("path", &self.path).finish()
    }
}

impl<'d> MapRef<'d> {
    pub(crate) fn new(doc: &'d Doc, path: Path) -> Self {
        MapRef { doc, path }
    }

    /// Where this map lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn resolve(&self, key: &str, kind: Kind) -> Result<(Path, Option<&'d Value>), DocError> {
        match self.doc.slot(&self.path, key) {
            Some(Slot {
                kind: Some(found),
                generation,
            }) => {
                let path = self.path.child_gen(key, kind, generation);
                if found != kind {
                    return Err(DocError::TypeMismatch {
                        path: path.to_string(),
                        expected: kind,
                        found,
                    });
                }
                let value = self.doc.values.get(&path);
                Ok((path, value))
            }
            // Absent or removed: an empty view (removed content is not shown).
            _ => Ok((self.path.child(key, kind), None)),
        }
    }

    /// The visible keys and the kind each holds, in key order.
    pub fn keys(&self) -> Vec<(String, Kind)> {
        match self.doc.values.get(&self.path) {
            Some(Value::Keys(keys)) => keys
                .iter()
                .filter_map(|(k, s)| s.kind.map(|kind| (k.clone(), kind)))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The kind visible under `key`, if any.
    pub fn kind_of(&self, key: &str) -> Option<Kind> {
        self.doc.visible_kind(&self.path, key)
    }

    /// The nested map under `key`.
    pub fn map(&self, key: &str) -> Result<MapRef<'d>, DocError> {
        let (path, _) = self.resolve(key, Kind::Map)?;
        Ok(MapRef::new(self.doc, path))
    }

    /// The text under `key`.
    pub fn text(&self, key: &str) -> Result<TextRef<'d>, DocError> {
        let (path, value) = self.resolve(key, Kind::Text)?;
        let text = match value {
            Some(Value::Text(t)) => Some(&**t),
            _ => None,
        };
        Ok(TextRef { path, text })
    }

    /// The list under `key`.
    pub fn list(&self, key: &str) -> Result<super::ListRef<'d>, DocError> {
        let (path, _) = self.resolve(key, Kind::List)?;
        Ok(super::ListRef::new(self.doc, path))
    }

    /// The counter under `key` (0 if absent).
    pub fn counter(&self, key: &str) -> Result<i128, DocError> {
        let (_, value) = self.resolve(key, Kind::Counter)?;
        Ok(match value {
            Some(Value::Counter(c)) => c.value(),
            _ => 0,
        })
    }

    /// The last-writer-wins register under `key`, decoded as `T`.
    pub fn register<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, DocError> {
        let (path, value) = self.resolve(key, Kind::Register)?;
        match value {
            Some(Value::Register(r)) => r.get().map(|b| decode_scalar(&path, b)).transpose(),
            _ => Ok(None),
        }
    }

    /// The concurrent values of the multi-value register under `key`
    /// (more than one means a conflict the user may resolve by writing).
    pub fn multi_value<T: DeserializeOwned>(&self, key: &str) -> Result<Vec<T>, DocError> {
        let (path, value) = self.resolve(key, Kind::MultiValue)?;
        match value {
            Some(Value::Multi(r)) => r.values().map(|b| decode_scalar(&path, b)).collect(),
            _ => Ok(Vec::new()),
        }
    }

    /// The set under `key`, with elements of type `T`.
    pub fn set<T: DeserializeOwned + serde::Serialize>(
        &self,
        key: &str,
    ) -> Result<SetRef<'d, T>, DocError> {
        let (path, value) = self.resolve(key, Kind::Set)?;
        let set = match value {
            Some(Value::Set(s)) => Some(s),
            _ => None,
        };
        Ok(SetRef {
            path,
            set,
            _t: PhantomData,
        })
    }
}

/// A read-only view of a text value.
#[derive(Clone, Debug)]
pub struct TextRef<'d> {
    pub(super) path: Path,
    pub(super) text: Option<&'d Text>,
}

impl<'d> TextRef<'d> {
    /// Where this text lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Visible characters (Unicode scalar values).
    pub fn len(&self) -> usize {
        self.text.map_or(0, Text::len)
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The underlying [`Text`], for position conversions and anchors
    /// (`None` until something is written).
    pub fn as_text(&self) -> Option<&'d Text> {
        self.text
    }
}

impl fmt::Display for TextRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.text {
            Some(t) => fmt::Display::fmt(t, f),
            None => Ok(()),
        }
    }
}

/// A read-only view of a set whose elements are `T`.
pub struct SetRef<'d, T> {
    path: Path,
    set: Option<&'d crate::OrSet<Vec<u8>>>,
    _t: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for SetRef<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetRef").field("path", &self.path).finish()
    }
}

impl<'d, T: DeserializeOwned + serde::Serialize> SetRef<'d, T> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.set.map_or(0, |s| s.len())
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `value` is present.
    pub fn contains(&self, value: &T) -> Result<bool, DocError> {
        let bytes = encode_scalar(&self.path, value)?;
        Ok(self.set.is_some_and(|s| s.contains(&bytes)))
    }

    /// The elements, decoded (ordered by their encoding).
    pub fn to_vec(&self) -> Result<Vec<T>, DocError> {
        match self.set {
            Some(s) => s.iter().map(|b| decode_scalar(&self.path, b)).collect(),
            None => Ok(Vec::new()),
        }
    }

    /// Decodes element bytes from a [`crate::doc::Change::Set`] event.
    pub fn decode(&self, bytes: &[u8]) -> Result<T, DocError> {
        decode_scalar(&self.path, bytes)
    }
}
