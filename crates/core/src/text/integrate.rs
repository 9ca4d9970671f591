//! Fugue integration: where a remote run of characters goes.
//!
//! This is the FugueMax ordering of Weidner & Kleppmann, "The Art of the
//! Fugue: Minimizing Interleaving in Collaborative Text Editing" (2023),
//! computed the YjsMod way (as in diamond-types): each new item records
//! `origin_left` and `origin_right`, its neighbours when it was typed. The new
//! item is placed after `origin_left`, scanning right over concurrently
//! inserted items until `origin_right`, and skips an item `o` exactly when
//! FugueMax's tree order puts `o` first:
//!
//! * `o`'s left origin is left of ours: `o` belongs to an outer subtree, stop;
//! * `o`'s left origin is right of ours: `o` is nested inside a sibling, skip;
//! * same left origin and same right origin: true siblings, ordered by
//!   `(replica, seq)` (smaller first);
//! * same left origin, different right origins: `o` goes first iff its right
//!   origin is left of ours; the scan remembers where such a run of
//!   candidates began and inserts there if it ends without a decision.
//!
//! Invariant: the result depends only on the set of integrated items, never
//! on the order they arrived in; two runs typed concurrently at the same
//! place never interleave (each run's items chain their left origins, so a
//! whole run sorts as one subtree).

use super::ids::Ids;
use super::span::{Span, NONE};
use super::tree::{Cursor, Tree};
use std::cmp::Ordering;

/// The gap where `new` (already allocated in `ids`, not yet in `tree`) goes.
pub(super) fn place(tree: &Tree, ids: &Ids, new: &Span) -> Cursor {
    let mut cursor = if new.origin_left == NONE {
        tree.start()
    } else {
        let mut c = tree.locate(new.origin_left);
        c.offset += 1;
        c
    };
    let mut scanning = false;
    let mut scan_start = cursor;
    loop {
        let gap = cursor;
        let Some(c) = tree.normalize(cursor) else {
            break;
        };
        let other = *tree.span_at(c);
        let other_item = other.item + c.offset;
        if other_item == new.origin_right {
            break;
        }
        let other_left = other.origin_left_at(c.offset);
        match tree.cmp_items(other_left, new.origin_left, Ordering::Less) {
            Ordering::Less => break,
            Ordering::Greater => {}
            Ordering::Equal => {
                if other.origin_right == new.origin_right {
                    let mine = ids.dot(new.item);
                    let theirs = ids.dot(other_item);
                    if (mine.replica, mine.counter) < (theirs.replica, theirs.counter) {
                        break;
                    }
                    scanning = false;
                } else if tree.cmp_items(other.origin_right, new.origin_right, Ordering::Greater)
                    == Ordering::Less
                {
                    if !scanning {
                        scanning = true;
                        scan_start = gap;
                    }
                } else {
                    scanning = false;
                }
            }
        }
        cursor = Cursor {
            offset: other.len,
            ..c
        };
    }
    if scanning {
        scan_start
    } else {
        cursor
    }
}
