//! Change events for observers: what changed, in a form an editor or view
//! can apply directly, without diffing.
//!
//! Invariant: events are delivered after the change is fully applied, in
//! the order the changes were applied; each text event's ops are relative
//! to the text as it was just before that event.

use super::path::Path;
use super::value::{Effect, Elem};
use crate::{ListOp, TextOp, VersionVector};
use std::fmt;
use std::sync::Arc;

/// What happened to one value.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Change {
    /// A text changed: apply these retain/insert/delete ops to the old text.
    Text(Vec<TextOp>),
    /// A counter moved from `old` to `new`.
    Counter {
        /// Value before.
        old: i128,
        /// Value after.
        new: i128,
    },
    /// A register (last-writer-wins or multi-value) changed; read it again.
    Register,
    /// Set elements appeared or disappeared (postcard bytes of the elements;
    /// [`crate::doc::SetRef::decode`] turns them back into values).
    Set {
        /// Elements now present that were not.
        added: Vec<Vec<u8>>,
        /// Elements no longer present.
        removed: Vec<Vec<u8>>,
    },
    /// These keys of a map changed what they hold (created, removed, or now
    /// show another kind).
    Keys(Vec<String>),
    /// A list changed: apply these retain/insert/delete ops to the old list.
    List(Vec<ListOp<ListItem>>),
}

/// Whether a change was made here or received from a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A transaction committed on this replica.
    Local,
    /// An update received from another replica.
    Remote,
}

/// A caller-chosen label for where a change came from: given to
/// [`crate::Doc::transact_with`] (local) or [`crate::Doc::apply_with`]
/// (remote) and carried by every [`Event`] that change causes. An editor
/// binding labels its own edits and skips only events with its own label,
/// so changes made anywhere else still reach the editor. Cheap to clone.
///
/// ```
/// use weft_core::doc::OriginTag;
/// let tag = OriginTag::from("editor");
/// assert_eq!(tag.as_str(), "editor");
/// assert_eq!(tag, OriginTag::new("editor"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OriginTag(Arc<str>);

impl OriginTag {
    /// A tag with this label.
    pub fn new(label: &str) -> Self {
        OriginTag(Arc::from(label))
    }

    /// The label.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for OriginTag {
    fn from(label: &str) -> Self {
        OriginTag::new(label)
    }
}

impl fmt::Display for OriginTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One change to one value of a document.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Which value (for [`Change::Keys`], the map).
    pub path: Path,
    /// What changed.
    pub change: Change,
    /// Local or remote.
    pub origin: Origin,
    /// The label of the transaction or apply that caused it, if it was
    /// given one ([`crate::Doc::transact_with`], [`crate::Doc::apply_with`];
    /// undo and redo label theirs [`OriginTag::undo`] / [`OriginTag::redo`]).
    pub tag: Option<OriginTag>,
    /// The document version this change leads to (the version after the
    /// commit or apply that caused it; shared by all its events).
    pub version: Arc<VersionVector>,
}

impl OriginTag {
    /// The tag of transactions made by [`crate::Doc::undo`].
    pub fn undo() -> Self {
        OriginTag::new("weft:undo")
    }

    /// The tag of transactions made by [`crate::Doc::redo`].
    pub fn redo() -> Self {
        OriginTag::new("weft:redo")
    }
}

impl Event {
    pub(crate) fn from_effect(path: &Path, effect: Effect, origin: Origin) -> Option<Event> {
        let change = match effect {
            Effect::None => return None,
            Effect::Counter { old, new } => Change::Counter { old, new },
            Effect::Register => Change::Register,
            Effect::Set { added, removed } => Change::Set { added, removed },
            Effect::Text(ops) => Change::Text(ops),
            Effect::Keys(keys) => Change::Keys(keys),
            Effect::List(ops) => Change::List(list_ops(path, ops)),
        };
        Some(Event {
            path: path.clone(),
            change,
            origin,
            tag: None,
            version: Arc::default(),
        })
    }
}

/// Identifies a subscription, to cancel it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubscriptionId(pub(crate) u64);

type Callback = Box<dyn FnMut(&Event) + Send>;

/// The observers of one document.
#[derive(Default)]
pub(crate) struct Observers {
    next: u64,
    subs: Vec<(SubscriptionId, Path, Callback)>,
}

impl Observers {
    pub(crate) fn add(&mut self, prefix: Path, cb: Callback) -> SubscriptionId {
        self.next += 1;
        let id = SubscriptionId(self.next);
        self.subs.push((id, prefix, cb));
        id
    }

    pub(crate) fn remove(&mut self, id: SubscriptionId) -> bool {
        let before = self.subs.len();
        self.subs.retain(|(i, _, _)| *i != id);
        self.subs.len() != before
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// Delivers `events`, stamped with their tag and the version they lead
    /// to.
    pub(crate) fn emit(
        &mut self,
        events: &mut [Event],
        tag: &Option<OriginTag>,
        version: &VersionVector,
    ) {
        if events.is_empty() {
            return;
        }
        let version = Arc::new(version.clone());
        for ev in events.iter_mut() {
            ev.tag.clone_from(tag);
            ev.version = version.clone();
        }
        for ev in events.iter() {
            for (_, prefix, cb) in &mut self.subs {
                if ev.path.starts_with(prefix) {
                    cb(ev);
                }
            }
        }
    }
}

impl fmt::Debug for Observers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observers")
            .field("subscriptions", &self.subs.len())
            .finish()
    }
}

/// One element of a document list, as events and views show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListItem {
    /// A scalar: its postcard bytes ([`ListRef::decode`](super::ListRef::decode) reads them).
    Value(Vec<u8>),
    /// A nested value at this path (its last step names the kind); read it
    /// with [`ListRef::map`](super::ListRef::map), [`ListRef::text`](super::ListRef::text) and friends, or follow
    /// events at this path.
    Nested(Path),
}

pub(super) fn item_of(path: &Path, elem: &Elem) -> ListItem {
    match elem {
        Elem::Scalar(b) => ListItem::Value(b.clone()),
        Elem::Nested { kind, key } => ListItem::Nested(path.child(key.clone(), *kind)),
    }
}

/// Events of a list at `path`, in document terms.
pub(super) fn list_ops(path: &Path, ops: Vec<ListOp<Elem>>) -> Vec<ListOp<ListItem>> {
    ops.into_iter()
        .map(|op| match op {
            ListOp::Retain(n) => ListOp::Retain(n),
            ListOp::Delete(n) => ListOp::Delete(n),
            ListOp::Insert(items) => {
                ListOp::Insert(items.iter().map(|e| item_of(path, e)).collect())
            }
        })
        .collect()
}
