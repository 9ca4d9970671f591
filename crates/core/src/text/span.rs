//! Spans: run-length encoded runs of inserted characters in document order.
//!
//! Invariant: a span covers the items `item..item + len` (contiguous local
//! item ids). Its first item has origin `origin_left`; every later item `k`
//! has origin-left `item + k - 1`, the item just before it. All items of a
//! span share `origin_right` and the `deleted` flag. Two spans may therefore
//! merge exactly when the second continues the first in all three respects.

/// The "no item" sentinel: document start as a left origin, document end as
/// a right origin.
pub(super) const NONE: u32 = u32::MAX;

/// A run of items that were typed left to right, with their Fugue origins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Span {
    /// Local id of the first item.
    pub(super) item: u32,
    /// Number of items (characters), at least 1.
    pub(super) len: u32,
    /// Left origin of the first item, or [`NONE`].
    pub(super) origin_left: u32,
    /// Right origin shared by all items, or [`NONE`].
    pub(super) origin_right: u32,
    /// Whether the items are deleted (tombstones).
    pub(super) deleted: bool,
}

impl Span {
    /// Characters this span contributes to the visible text.
    pub(super) fn visible(&self) -> u32 {
        if self.deleted {
            0
        } else {
            self.len
        }
    }

    /// One past the last item.
    pub(super) fn end(&self) -> u32 {
        self.item + self.len
    }

    /// The left origin of the item at `offset`.
    pub(super) fn origin_left_at(&self, offset: u32) -> u32 {
        if offset == 0 {
            self.origin_left
        } else {
            self.item + offset - 1
        }
    }

    /// Whether `next` can be appended to this span as one run.
    pub(super) fn can_append(&self, next: &Span) -> bool {
        next.item == self.end()
            && next.origin_left == self.end() - 1
            && next.origin_right == self.origin_right
            && next.deleted == self.deleted
    }

    /// Splits off and returns the items from `offset` on (`0 < offset < len`).
    pub(super) fn split_off(&mut self, offset: u32) -> Span {
        debug_assert!(offset > 0 && offset < self.len);
        let right = Span {
            item: self.item + offset,
            len: self.len - offset,
            origin_left: self.item + offset - 1,
            origin_right: self.origin_right,
            deleted: self.deleted,
        };
        self.len = offset;
        right
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_then_append_round_trips() {
        let mut a = Span {
            item: 10,
            len: 5,
            origin_left: 3,
            origin_right: NONE,
            deleted: false,
        };
        let whole = a;
        let b = a.split_off(2);
        assert_eq!((a.len, b.item, b.len, b.origin_left), (2, 12, 3, 11));
        assert_eq!(b.origin_left_at(1), 12);
        assert!(a.can_append(&b));
        a.len += b.len;
        assert_eq!(a, whole);
        let tomb = Span { deleted: true, ..b };
        assert!(!Span { len: 2, ..whole }.can_append(&tomb));
    }
}
