//! Document ids: the key every record is stored under.

use crate::{Error, Result};

/// Longest document id accepted, in bytes of UTF-8.
pub const MAX_DOC_ID_BYTES: usize = 256;

/// Checks that `doc_id` can name a document: 1 to [`MAX_DOC_ID_BYTES`]
/// bytes, no NUL and no other control character.
///
/// ```
/// use weft_persist::validate_doc_id;
/// assert!(validate_doc_id("notes/2024-05-01").is_ok());
/// assert!(validate_doc_id("").is_err());
/// assert!(validate_doc_id(&"x".repeat(300)).is_err());
/// ```
pub fn validate_doc_id(doc_id: &str) -> Result<()> {
    let reason = if doc_id.is_empty() {
        "empty"
    } else if doc_id.len() > MAX_DOC_ID_BYTES {
        "longer than 256 bytes"
    } else if doc_id.chars().any(char::is_control) {
        "contains a control character"
    } else {
        return Ok(());
    };
    Err(Error::InvalidDocId { reason })
}
