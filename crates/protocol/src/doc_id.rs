//! Document ids: the name a document is synced under.
//!
//! Invariant: a [`DocId`] holds 1 to [`MAX_DOC_ID_BYTES`] bytes, each one of
//! `A–Z a–z 0–9 . _ ~ -` (the URL "unreserved" set), and is neither `.` nor
//! `..`. Such an id can be used unescaped in URLs, file names and log lines,
//! and is always a valid `weft-persist` document id.

use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// Longest document id, in bytes.
pub const MAX_DOC_ID_BYTES: usize = 128;

/// Why a string is not a valid [`DocId`].
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidDocId {
    /// The id is empty.
    #[error("document id is empty")]
    Empty,
    /// The id is longer than [`MAX_DOC_ID_BYTES`].
    #[error("document id of {len} bytes is longer than {MAX_DOC_ID_BYTES} bytes")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The id contains a character outside `A–Z a–z 0–9 . _ ~ -`.
    #[error("document id contains {found:?} at byte {index} (allowed: A-Z a-z 0-9 . _ ~ -)")]
    BadChar {
        /// Byte offset of the first offending character.
        index: usize,
        /// The character.
        found: char,
    },
    /// The id is `.` or `..`.
    #[error("document id may not be `.` or `..`")]
    DotSegment,
}

/// The name of a synced document, validated.
///
/// ```
/// use weft_protocol::{DocId, InvalidDocId};
/// let id = DocId::new("notes.2024-05_01~draft").unwrap();
/// assert_eq!(id.as_str(), "notes.2024-05_01~draft");
/// assert_eq!(DocId::new(""), Err(InvalidDocId::Empty));
/// assert!(matches!(DocId::new("a/b"), Err(InvalidDocId::BadChar { index: 1, found: '/' })));
/// assert!("x".repeat(129).parse::<DocId>().is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DocId(String);

impl DocId {
    /// Validates `id` and wraps it.
    pub fn new(id: impl Into<String>) -> Result<DocId, InvalidDocId> {
        let id = id.into();
        DocId::validate(&id)?;
        Ok(DocId(id))
    }

    /// Checks `id` against the rules without allocating.
    pub fn validate(id: &str) -> Result<(), InvalidDocId> {
        if id.is_empty() {
            return Err(InvalidDocId::Empty);
        }
        if id.len() > MAX_DOC_ID_BYTES {
            return Err(InvalidDocId::TooLong { len: id.len() });
        }
        if let Some(index) = id.bytes().position(|b| !allowed(b)) {
            // Every byte before `index` is ASCII, so `index` is a char boundary.
            let found = id[index..].chars().next().unwrap_or('\u{fffd}');
            return Err(InvalidDocId::BadChar { index, found });
        }
        if id == "." || id == ".." {
            return Err(InvalidDocId::DotSegment);
        }
        Ok(())
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-')
}

impl fmt::Debug for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocId({:?})", self.0)
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DocId {
    type Err = InvalidDocId;
    fn from_str(s: &str) -> Result<DocId, InvalidDocId> {
        DocId::validate(s)?;
        Ok(DocId(s.to_owned()))
    }
}

impl TryFrom<String> for DocId {
    type Error = InvalidDocId;
    fn try_from(s: String) -> Result<DocId, InvalidDocId> {
        DocId::new(s)
    }
}

impl TryFrom<&str> for DocId {
    type Error = InvalidDocId;
    fn try_from(s: &str) -> Result<DocId, InvalidDocId> {
        s.parse()
    }
}

impl From<DocId> for String {
    fn from(id: DocId) -> String {
        id.0
    }
}

impl AsRef<str> for DocId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for DocId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_unreserved_set() {
        let all = "AZaz09._~-";
        assert_eq!(DocId::new(all).unwrap().as_str(), all);
        assert!(DocId::new("x".repeat(MAX_DOC_ID_BYTES)).is_ok());
        assert!(DocId::new("...").is_ok());
        assert!(DocId::new(".hidden").is_ok());
    }

    #[test]
    fn every_rule_has_its_error() {
        assert_eq!(DocId::new(""), Err(InvalidDocId::Empty));
        assert_eq!(
            DocId::new("x".repeat(MAX_DOC_ID_BYTES + 1)),
            Err(InvalidDocId::TooLong { len: 129 })
        );
        assert_eq!(
            DocId::new("ab cd"),
            Err(InvalidDocId::BadChar {
                index: 2,
                found: ' '
            })
        );
        assert_eq!(
            DocId::new("doc\u{e9}"),
            Err(InvalidDocId::BadChar {
                index: 3,
                found: '\u{e9}'
            })
        );
        assert_eq!(
            DocId::new("a\0"),
            Err(InvalidDocId::BadChar {
                index: 1,
                found: '\0'
            })
        );
        assert_eq!(DocId::new("."), Err(InvalidDocId::DotSegment));
        assert_eq!(DocId::new(".."), Err(InvalidDocId::DotSegment));
        // Length is checked before characters: a huge id is rejected as long.
        assert!(matches!(
            DocId::new("/".repeat(1000)),
            Err(InvalidDocId::TooLong { len: 1000 })
        ));
    }

    #[test]
    fn conversions_agree() {
        let id: DocId = "a-b".parse().unwrap();
        assert_eq!(DocId::try_from("a-b").unwrap(), id);
        assert_eq!(DocId::try_from("a-b".to_string()).unwrap(), id);
        assert_eq!(id.to_string(), "a-b");
        assert_eq!(format!("{id:?}"), "DocId(\"a-b\")");
        let s: &str = id.borrow();
        assert_eq!(s, id.as_ref());
        assert_eq!(String::from(id.clone()), id.into_string());
        assert!(DocId::try_from("a b").is_err());
    }
}
