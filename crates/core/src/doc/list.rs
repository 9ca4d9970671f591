//! Lists inside a document: edits in transactions, read views, events.
//!
//! A document list is a [`List`] of elements; an element is a scalar (its
//! postcard bytes, like a register's) or a nested value — map, text, list,
//! counter, set — that lives at the list's path plus the element's key.
//! Keys are made unique by their creator (`replica.transaction.op`), so
//! nested values of different elements never share a path. Deleting an
//! element hides its nested value; the content stays (undo restores the
//! element with the same key, and so the same content).
//!
//! Invariant: inside a transaction, `Transaction::text_len` holds the
//! simulated length of every list edited so far, and the element at a
//! simulated index is found by walking the recorded list ops backwards.

use super::events::{item_of, ListItem};
use super::op::Op;
use super::path::{Kind, Path};
use super::refs::TextRef;
use super::txn::{CounterMut, MapMut, SetMut, TextMut, Transaction};
use super::value::{decode_scalar, encode_scalar, Elem, Value};
use super::{Doc, MapRef};
use crate::{Bias, DocError, Dot, List, StablePosition};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;
use std::marker::PhantomData;

/// A list being edited inside a transaction.
///
/// ```
/// use weft_core::doc::ListItem;
/// use weft_core::{Doc, ReplicaId};
/// let mut doc = Doc::new(ReplicaId::new(1));
/// doc.transact(|tx| {
///     let mut todo = tx.list("todo")?;
///     todo.push(&"write docs")?;
///     let mut card = todo.push_map()?;
///     card.put("title", "ship it")?;
///     card.text("notes")?.insert(0, "by friday")?;
///     todo.insert(0, &"plan")?;
///     Ok(())
/// })
/// .unwrap();
/// let todo = doc.list("todo").unwrap();
/// assert_eq!(todo.len(), 3);
/// assert_eq!(todo.get::<String>(1).unwrap().as_deref(), Some("write docs"));
/// let card = todo.map(2).unwrap();
/// assert_eq!(card.register::<String>("title").unwrap().as_deref(), Some("ship it"));
/// assert!(matches!(todo.item(2), Some(ListItem::Nested(_))));
/// ```
pub struct ListMut<'t, 'd> {
    tx: &'t mut Transaction<'d>,
    path: Path,
}

impl fmt::Debug for ListMut<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListMut").field("path", &self.path).finish()
    }
}

impl<'t, 'd> ListMut<'t, 'd> {
    pub(super) fn new(tx: &'t mut Transaction<'d>, path: Path) -> Self {
        ListMut { tx, path }
    }

    /// Where this list lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Length as of the edits recorded so far in this transaction.
    pub fn len(&self) -> usize {
        self.tx.text_len(&self.path)
    }

    /// Whether the list is empty at this point of the transaction.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn out_of_range(&self, index: usize, len: usize) -> DocError {
        DocError::IndexOutOfRange {
            path: self.path.to_string(),
            index,
            len,
        }
    }

    fn record_insert(&mut self, index: usize, items: Vec<Elem>) -> Result<(), DocError> {
        let len = self.len();
        if index > len {
            return Err(self.out_of_range(index, len));
        }
        if items.is_empty() {
            return Ok(());
        }
        self.tx.set_text_len(&self.path, len + items.len());
        self.tx.doc.scratch.ops.push(Op::ListInsert {
            path: self.path.clone(),
            index,
            items,
        });
        Ok(())
    }

    /// Inserts `value` before element `index` (`index <= len()`).
    pub fn insert<T: Serialize + ?Sized>(
        &mut self,
        index: usize,
        value: &T,
    ) -> Result<(), DocError> {
        let bytes = encode_scalar(&self.path, value)?;
        self.record_insert(index, vec![Elem::Scalar(bytes)])
    }

    /// Inserts `values`, in order, before element `index`.
    ///
    /// ```
    /// use weft_core::{Doc, ReplicaId};
    /// let mut doc = Doc::new(ReplicaId::new(1));
    /// doc.transact(|tx| tx.list("n")?.insert_all(0, &[1u32, 2, 3])).unwrap();
    /// assert_eq!(doc.list("n").unwrap().to_vec::<u32>().unwrap(), [1, 2, 3]);
    /// ```
    pub fn insert_all<T: Serialize>(&mut self, index: usize, values: &[T]) -> Result<(), DocError> {
        let items = values
            .iter()
            .map(|v| encode_scalar(&self.path, v).map(Elem::Scalar))
            .collect::<Result<Vec<_>, _>>()?;
        self.record_insert(index, items)
    }

    /// Appends `value`.
    pub fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), DocError> {
        let at = self.len();
        self.insert(at, value)
    }

    /// Deletes `n` elements from `index` (`index + n <= len()`).
    pub fn delete(&mut self, index: usize, n: usize) -> Result<(), DocError> {
        let len = self.len();
        let end = index
            .checked_add(n)
            .filter(|&e| e <= len)
            .ok_or_else(|| self.out_of_range(index.saturating_add(n), len))?;
        if n == 0 {
            return Ok(());
        }
        self.tx.set_text_len(&self.path, len - (end - index));
        self.tx.doc.scratch.ops.push(Op::ListDelete {
            path: self.path.clone(),
            index,
            len: n,
        });
        Ok(())
    }

    /// Inserts a nested value of `kind` before `index`; returns its path.
    fn insert_nested(&mut self, index: usize, kind: Kind) -> Result<Path, DocError> {
        if self.path.steps().len() >= super::path::MAX_DEPTH {
            return Err(DocError::Limit {
                path: self.path.to_string(),
                reason: "nesting deeper than the limit",
            });
        }
        let replica = self.tx.doc.replica;
        let key = format!(
            "{}.{}.{}",
            replica,
            self.tx.doc.version.get(replica) + 1,
            self.tx.doc.scratch.ops.len()
        );
        let path = self.path.child(key.clone(), kind);
        self.record_insert(index, vec![Elem::Nested { kind, key }])?;
        Ok(path)
    }

    /// Inserts a new map before `index` and returns it for editing.
    pub fn insert_map(&mut self, index: usize) -> Result<MapMut<'_, 'd>, DocError> {
        let path = self.insert_nested(index, Kind::Map)?;
        Ok(MapMut { tx: self.tx, path })
    }

    /// Inserts a new text before `index` and returns it for editing.
    pub fn insert_text(&mut self, index: usize) -> Result<TextMut<'_, 'd>, DocError> {
        let path = self.insert_nested(index, Kind::Text)?;
        Ok(TextMut { tx: self.tx, path })
    }

    /// Inserts a new list before `index` and returns it for editing.
    pub fn insert_list(&mut self, index: usize) -> Result<ListMut<'_, 'd>, DocError> {
        let path = self.insert_nested(index, Kind::List)?;
        Ok(ListMut { tx: self.tx, path })
    }

    /// Inserts a new counter before `index` and returns it for editing.
    pub fn insert_counter(&mut self, index: usize) -> Result<CounterMut<'_, 'd>, DocError> {
        let path = self.insert_nested(index, Kind::Counter)?;
        Ok(CounterMut { tx: self.tx, path })
    }

    /// Inserts a new set of `T` before `index` and returns it for editing.
    pub fn insert_set<T: Serialize>(
        &mut self,
        index: usize,
    ) -> Result<SetMut<'_, 'd, T>, DocError> {
        let path = self.insert_nested(index, Kind::Set)?;
        Ok(SetMut {
            tx: self.tx,
            path,
            _t: PhantomData,
        })
    }

    /// Appends a new map and returns it for editing.
    pub fn push_map(&mut self) -> Result<MapMut<'_, 'd>, DocError> {
        let at = self.len();
        self.insert_map(at)
    }

    /// Appends a new text and returns it for editing.
    pub fn push_text(&mut self) -> Result<TextMut<'_, 'd>, DocError> {
        let at = self.len();
        self.insert_text(at)
    }

    /// The element at `index` as of this point of the transaction.
    fn elem_at(&self, index: usize) -> Result<Elem, DocError> {
        let len = self.len();
        if index >= len {
            return Err(self.out_of_range(index, len));
        }
        let mut i = index;
        for op in self.tx.doc.scratch.ops.iter().rev() {
            match op {
                Op::ListInsert {
                    path,
                    index: at,
                    items,
                } if *path == self.path => {
                    if i >= *at && i < at + items.len() {
                        return Ok(items[i - at].clone());
                    }
                    if i >= at + items.len() {
                        i -= items.len();
                    }
                }
                Op::ListDelete {
                    path,
                    index: at,
                    len,
                } if *path == self.path && i >= *at => i += len,
                _ => {}
            }
        }
        match self.tx.doc.values.get(&self.path) {
            Some(Value::List(l)) => l.get(i).cloned(),
            _ => None,
        }
        .ok_or_else(|| self.out_of_range(index, len))
    }

    /// The path of the nested value of `kind` at `index`.
    fn nested_at(&self, index: usize, kind: Kind) -> Result<Path, DocError> {
        match self.elem_at(index)? {
            Elem::Nested { kind: found, key } if found == kind => Ok(self.path.child(key, kind)),
            Elem::Nested { kind: found, key } => Err(DocError::TypeMismatch {
                path: self.path.child(key, found).to_string(),
                expected: kind,
                found,
            }),
            Elem::Scalar(_) => Err(DocError::TypeMismatch {
                path: format!("{}[{index}]", self.path),
                expected: kind,
                found: Kind::Register,
            }),
        }
    }

    /// The map at `index`, for editing (an error if it holds something else).
    pub fn map(&mut self, index: usize) -> Result<MapMut<'_, 'd>, DocError> {
        let path = self.nested_at(index, Kind::Map)?;
        Ok(MapMut { tx: self.tx, path })
    }

    /// The text at `index`, for editing.
    pub fn text(&mut self, index: usize) -> Result<TextMut<'_, 'd>, DocError> {
        let path = self.nested_at(index, Kind::Text)?;
        Ok(TextMut { tx: self.tx, path })
    }

    /// The list at `index`, for editing.
    pub fn list(&mut self, index: usize) -> Result<ListMut<'_, 'd>, DocError> {
        let path = self.nested_at(index, Kind::List)?;
        Ok(ListMut { tx: self.tx, path })
    }

    /// The counter at `index`, for editing.
    pub fn counter(&mut self, index: usize) -> Result<CounterMut<'_, 'd>, DocError> {
        let path = self.nested_at(index, Kind::Counter)?;
        Ok(CounterMut { tx: self.tx, path })
    }
}

/// A read-only view of a document list.
///
/// ```
/// use weft_core::{Bias, Doc, ReplicaId};
/// let mut doc = Doc::new(ReplicaId::new(1));
/// doc.transact(|tx| tx.list("l")?.insert_all(0, &["a", "c"])).unwrap();
/// let cursor = doc.list("l").unwrap().anchor(1, Bias::Right); // before "c"
/// doc.transact(|tx| tx.list("l")?.insert(1, "b")).unwrap();
/// let l = doc.list("l").unwrap();
/// assert_eq!(l.to_vec::<String>().unwrap(), ["a", "b", "c"]);
/// assert_eq!(l.resolve(&cursor), Some(2));
/// ```
#[derive(Clone)]
pub struct ListRef<'d> {
    doc: &'d Doc,
    path: Path,
    list: Option<&'d List<Elem>>,
}

impl fmt::Debug for ListRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListRef").field("path", &self.path).finish()
    }
}

impl<'d> ListRef<'d> {
    pub(super) fn new(doc: &'d Doc, path: Path) -> Self {
        let list = match doc.values.get(&path) {
            Some(Value::List(l)) => Some(&**l),
            _ => None,
        };
        ListRef { doc, path, list }
    }

    /// Where this list lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.list.map_or(0, |l| l.len())
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element at `index`, if in range.
    pub fn item(&self, index: usize) -> Option<ListItem> {
        self.list?.get(index).map(|e| item_of(&self.path, e))
    }

    /// Every element, in order.
    pub fn items(&self) -> Vec<ListItem> {
        match self.list {
            Some(l) => l.iter().map(|e| item_of(&self.path, e)).collect(),
            None => Vec::new(),
        }
    }

    /// The scalar at `index`, decoded as `T` (`None` past the end; an error
    /// if it is a nested value or another type).
    pub fn get<T: DeserializeOwned>(&self, index: usize) -> Result<Option<T>, DocError> {
        match self.list.and_then(|l| l.get(index)) {
            None => Ok(None),
            Some(Elem::Scalar(b)) => decode_scalar(&self.path, b).map(Some),
            Some(Elem::Nested { kind, .. }) => Err(DocError::ValueType {
                path: format!("{}[{index}]", self.path),
                reason: format!("element is a nested {kind}"),
            }),
        }
    }

    /// Every element decoded as `T` (an error if any is nested or of another
    /// type).
    pub fn to_vec<T: DeserializeOwned>(&self) -> Result<Vec<T>, DocError> {
        let Some(l) = self.list else {
            return Ok(Vec::new());
        };
        l.iter()
            .map(|e| match e {
                Elem::Scalar(b) => decode_scalar(&self.path, b),
                Elem::Nested { kind, .. } => Err(DocError::ValueType {
                    path: self.path.to_string(),
                    reason: format!("element is a nested {kind}"),
                }),
            })
            .collect()
    }

    /// Decodes the bytes of a [`ListItem::Value`] (from [`ListRef::item`] or
    /// an event) as `T`.
    pub fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, DocError> {
        decode_scalar(&self.path, bytes)
    }

    fn nested(&self, index: usize, kind: Kind) -> Result<Path, DocError> {
        match self.list.and_then(|l| l.get(index)) {
            None => Err(DocError::IndexOutOfRange {
                path: self.path.to_string(),
                index,
                len: self.len(),
            }),
            Some(Elem::Nested { kind: found, key }) if *found == kind => {
                Ok(self.path.child(key.clone(), kind))
            }
            Some(Elem::Nested { kind: found, key }) => Err(DocError::TypeMismatch {
                path: self.path.child(key.clone(), *found).to_string(),
                expected: kind,
                found: *found,
            }),
            Some(Elem::Scalar(_)) => Err(DocError::TypeMismatch {
                path: format!("{}[{index}]", self.path),
                expected: kind,
                found: Kind::Register,
            }),
        }
    }

    /// The map at `index`.
    pub fn map(&self, index: usize) -> Result<MapRef<'d>, DocError> {
        Ok(MapRef::new(self.doc, self.nested(index, Kind::Map)?))
    }

    /// The text at `index`.
    pub fn text(&self, index: usize) -> Result<TextRef<'d>, DocError> {
        let path = self.nested(index, Kind::Text)?;
        let text = match self.doc.values.get(&path) {
            Some(Value::Text(t)) => Some(&**t),
            _ => None,
        };
        Ok(TextRef { path, text })
    }

    /// The list at `index`.
    pub fn list(&self, index: usize) -> Result<ListRef<'d>, DocError> {
        Ok(ListRef::new(self.doc, self.nested(index, Kind::List)?))
    }

    /// The counter at `index`.
    pub fn counter(&self, index: usize) -> Result<i128, DocError> {
        let path = self.nested(index, Kind::Counter)?;
        Ok(match self.doc.values.get(&path) {
            Some(Value::Counter(c)) => c.value(),
            _ => 0,
        })
    }

    /// The stable id of the element at `index` (survives concurrent edits).
    pub fn id_at(&self, index: usize) -> Option<Dot> {
        self.list?.id_at(index)
    }

    /// The current index of element `id` (`None` if deleted or unknown).
    pub fn index_of(&self, id: Dot) -> Option<usize> {
        self.list?.index_of(id)
    }

    /// The index of the element holding the nested value at `path` (a path
    /// from [`ListItem::Nested`] or an event inside it), if visible.
    pub fn index_of_path(&self, path: &Path) -> Option<usize> {
        let l = self.list?;
        let step = path.steps().get(self.path.steps().len())?;
        if !path.starts_with(&self.path) {
            return None;
        }
        l.iter().position(
            |e| matches!(e, Elem::Nested { kind, key } if *kind == step.kind && *key == step.key),
        )
    }

    /// A position before element `index` that follows its neighbour
    /// through concurrent edits.
    pub fn anchor(&self, index: usize, bias: Bias) -> StablePosition {
        match self.list {
            Some(l) => l.anchor(index, bias),
            None => StablePosition { anchor: None, bias },
        }
    }

    /// The current index of `pos`; `None` if its element was not received.
    pub fn resolve(&self, pos: &StablePosition) -> Option<usize> {
        match self.list {
            Some(l) => l.resolve(pos),
            None => pos.anchor.is_none().then_some(0),
        }
    }
}
