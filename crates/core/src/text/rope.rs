//! The visible text: a chunked string indexed by chars, UTF-16 code units
//! and bytes.
//!
//! Leaves are small `String`s (at most [`LEAF_MAX`] bytes, except a leaf
//! holding a single long char sequence is re-chunked at once) kept in order
//! in a `Vec`; three Fenwick trees over leaf positions hold each leaf's
//! length in the three metrics, so locating an index in any metric, and
//! converting between metrics, costs `O(log leaves + LEAF_MAX)`. Edits touch
//! one leaf (a memmove of at most `LEAF_MAX` bytes) and three Fenwick paths.
//!
//! Invariant: the Fenwick trees sum exactly the leaves' `chars`, `utf16` and
//! byte lengths; only the single leaf of an empty text is empty.

/// Bytes per leaf before it is split.
const LEAF_MAX: usize = 1024;

#[derive(Clone, Debug, Default)]
struct Leaf {
    text: String,
    chars: usize,
    utf16: usize,
}

/// Which length a query counts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Metric {
    Chars,
    Utf16,
    Bytes,
}

/// A string with logarithmic char, UTF-16 and byte indexing.
#[derive(Clone, Debug)]
pub(super) struct Rope {
    leaves: Vec<Leaf>,
    /// Fenwick trees (1-based) over leaves: chars, UTF-16 units, bytes.
    fenwick: [Vec<i64>; 3],
    totals: [usize; 3],
    /// The leaf of the last edit and the lengths before it (kept exact by
    /// every update; `None` after leaves are added or removed).
    hint: Option<(usize, [usize; 3])>,
}

impl Default for Rope {
    fn default() -> Self {
        Rope {
            leaves: vec![Leaf::default()],
            fenwick: [vec![0, 0], vec![0, 0], vec![0, 0]],
            totals: [0; 3],
            hint: None,
        }
    }
}

fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().map(char::len_utf16).sum()
    }
}

fn char_count(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

/// Byte offset of char `n` in a leaf (clamped to its end).
fn char_to_byte_in(leaf: &Leaf, n: usize) -> usize {
    if leaf.chars == leaf.text.len() {
        return n.min(leaf.text.len());
    }
    leaf.text
        .char_indices()
        .nth(n)
        .map_or(leaf.text.len(), |(b, _)| b)
}

impl Rope {
    /// Length in `metric`.
    pub(super) fn len(&self, metric: Metric) -> usize {
        self.totals[metric as usize]
    }

    fn fenwick_add(&mut self, leaf: usize, deltas: [i64; 3]) {
        for (m, &delta) in deltas.iter().enumerate() {
            if delta == 0 {
                continue;
            }
            let tree = &mut self.fenwick[m];
            let mut i = leaf + 1;
            while i < tree.len() {
                tree[i] += delta;
                i += i & i.wrapping_neg();
            }
            self.totals[m] = (self.totals[m] as i64 + delta) as usize;
            if let Some((hint, before)) = &mut self.hint {
                if leaf < *hint {
                    before[m] = (before[m] as i64 + delta) as usize;
                }
            }
        }
    }

    fn rebuild(&mut self) {
        self.hint = None;
        let n = self.leaves.len();
        for m in 0..3 {
            let tree = &mut self.fenwick[m];
            tree.clear();
            tree.resize(n + 1, 0);
            for (k, leaf) in self.leaves.iter().enumerate() {
                let i = k + 1;
                tree[i] += [leaf.chars, leaf.utf16, leaf.text.len()][m] as i64;
                let parent = i + (i & i.wrapping_neg());
                if parent <= n {
                    let v = tree[i];
                    tree[parent] += v;
                }
            }
        }
    }

    /// The leaf holding position `index` of `metric` and the prefix sums of
    /// all three metrics before it. With `at_end`, an index on a leaf
    /// boundary resolves to the end of the earlier leaf.
    /// [`Rope::find`] in chars, trying the last edited leaf first (edits
    /// cluster) and remembering the answer.
    fn find_hinted(&mut self, index: usize, at_end: bool) -> (usize, [usize; 3]) {
        if let Some((leaf, before)) = self.hint {
            let chars = self.leaves[leaf].chars;
            let inside = if at_end {
                index > before[0] && index <= before[0] + chars
            } else {
                index >= before[0] && index < before[0] + chars
            };
            if inside {
                return (leaf, before);
            }
        }
        let found = self.find(Metric::Chars, index, at_end);
        self.hint = Some(found);
        found
    }

    fn find(&self, metric: Metric, index: usize, at_end: bool) -> (usize, [usize; 3]) {
        let tree = &self.fenwick[metric as usize];
        let n = self.leaves.len();
        let mut pos = 0usize;
        let mut before = [0i64; 3];
        let mut step = n.next_power_of_two();
        let target = index as i64;
        while step > 0 {
            let next = pos + step;
            if next <= n {
                let v = before[metric as usize] + tree[next];
                if v < target || (!at_end && v == target) {
                    pos = next;
                    for (m, b) in before.iter_mut().enumerate() {
                        *b += self.fenwick[m][next];
                    }
                }
            }
            step >>= 1;
        }
        if pos >= n {
            // Past the end: the end of the last leaf.
            let last = n - 1;
            let l = &self.leaves[last];
            let b = [
                self.totals[0] - l.chars,
                self.totals[1] - l.utf16,
                self.totals[2] - l.text.len(),
            ];
            return (last, b);
        }
        (pos, before.map(|b| b as usize))
    }

    /// Inserts `s` before char `index` (which must be `<= len`).
    pub(super) fn insert(&mut self, index: usize, s: &str) {
        if s.is_empty() {
            return;
        }
        let (leaf, before) = self.find_hinted(index, true);
        let l = &mut self.leaves[leaf];
        let byte = char_to_byte_in(l, index - before[0]);
        l.text.insert_str(byte, s);
        let (chars, utf16) = (char_count(s), utf16_len(s));
        l.chars += chars;
        l.utf16 += utf16;
        let too_big = l.text.len() > LEAF_MAX;
        self.fenwick_add(leaf, [chars as i64, utf16 as i64, s.len() as i64]);
        if too_big {
            self.split(leaf);
        }
    }

    /// Re-chunks an oversized leaf into leaves of about half the maximum.
    fn split(&mut self, leaf: usize) {
        let text = std::mem::take(&mut self.leaves[leaf].text);
        let mut pieces = Vec::new();
        let mut rest = text.as_str();
        while !rest.is_empty() {
            let mut cut = rest.len().min(LEAF_MAX / 2);
            while !rest.is_char_boundary(cut) {
                cut += 1;
            }
            let (piece, tail) = rest.split_at(cut);
            pieces.push(Leaf {
                text: piece.to_string(),
                chars: char_count(piece),
                utf16: utf16_len(piece),
            });
            rest = tail;
        }
        self.leaves.splice(leaf..=leaf, pieces);
        self.rebuild();
    }

    /// Removes chars `start..end` (clamped to the length).
    pub(super) fn remove(&mut self, start: usize, end: usize) {
        let end = end.min(self.len(Metric::Chars));
        let mut remaining = end.saturating_sub(start);
        let mut emptied = false;
        while remaining > 0 {
            let (leaf, before) = self.find_hinted(start, false);
            let l = &mut self.leaves[leaf];
            let from = start - before[0];
            let n = remaining.min(l.chars - from);
            let b0 = char_to_byte_in(l, from);
            let b1 = if l.chars == l.text.len() {
                b0 + n
            } else {
                b0 + l.text[b0..]
                    .char_indices()
                    .nth(n)
                    .map_or(l.text.len() - b0, |(b, _)| b)
            };
            let utf16 = utf16_len(&l.text[b0..b1]);
            l.text.replace_range(b0..b1, "");
            l.chars -= n;
            l.utf16 -= utf16;
            emptied |= l.text.is_empty();
            self.fenwick_add(leaf, [-(n as i64), -(utf16 as i64), -((b1 - b0) as i64)]);
            remaining -= n;
        }
        if emptied && self.leaves.len() > 1 {
            self.leaves.retain(|l| !l.text.is_empty());
            if self.leaves.is_empty() {
                self.leaves.push(Leaf::default());
            }
            self.rebuild();
        }
    }

    /// Converts position `index` of metric `from` (clamped) to metric `to`;
    /// an index inside a char counts as that char's start.
    pub(super) fn convert(&self, from: Metric, index: usize, to: Metric) -> usize {
        let index = index.min(self.len(from));
        if from == to {
            // The common case (events in chars): nothing to look up.
            return index;
        }
        let (leaf, before) = self.find(from, index, true);
        let mut at = [before[0], before[1], before[2]];
        for c in self.leaves[leaf].text.chars() {
            let w = [1, c.len_utf16(), c.len_utf8()];
            if at[from as usize] + w[from as usize] > index {
                break;
            }
            for m in 0..3 {
                at[m] += w[m];
            }
        }
        at[to as usize]
    }

    /// The `n` chars from char `start` (clamped).
    pub(super) fn slice(&self, start: usize, n: usize) -> String {
        let mut out = String::new();
        let mut skip = start;
        let mut want = n;
        let (first, before) = self.find(Metric::Chars, start, false);
        skip -= before[0].min(skip);
        for l in &self.leaves[first..] {
            if want == 0 {
                break;
            }
            let b0 = char_to_byte_in(l, skip);
            let take = want.min(l.chars - skip.min(l.chars));
            let piece = &l.text[b0..];
            let end = piece
                .char_indices()
                .nth(take)
                .map_or(piece.len(), |(b, _)| b);
            out.push_str(&piece[..end]);
            want -= take;
            skip = 0;
        }
        out
    }

    /// The leaves' text in order.
    pub(super) fn chunks(&self) -> impl Iterator<Item = &str> + '_ {
        self.leaves.iter().map(|l| l.text.as_str())
    }
}

impl PartialEq for Rope {
    fn eq(&self, other: &Self) -> bool {
        self.totals == other.totals
            && self
                .chunks()
                .flat_map(str::chars)
                .eq(other.chunks().flat_map(str::chars))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_string_under_edits() {
        let mut r = Rope::default();
        let mut s = String::new();
        let words = ["héllo ", "wörld😀 ", "abc", "€"];
        for i in 0..2000usize {
            let len = s.chars().count();
            let at = (i * 7919) % (len + 1);
            if i % 3 == 2 && len > 0 {
                let n = (i % 5).min(len - at.min(len));
                r.remove(at, at + n);
                let b0 = s.char_indices().nth(at).map_or(s.len(), |(b, _)| b);
                let b1 = s[b0..]
                    .char_indices()
                    .nth(n)
                    .map_or(s.len(), |(b, _)| b0 + b);
                s.replace_range(b0..b1, "");
            } else {
                let w = words[i % words.len()];
                r.insert(at, w);
                let b = s.char_indices().nth(at).map_or(s.len(), |(b, _)| b);
                s.insert_str(b, w);
            }
        }
        assert!(r.leaves.len() > 1);
        assert_eq!(r.chunks().collect::<String>(), s);
        assert_eq!(r.len(Metric::Chars), s.chars().count());
        assert_eq!(r.len(Metric::Utf16), s.encode_utf16().count());
        assert_eq!(r.len(Metric::Bytes), s.len());
        let (mut u, mut b) = (0, 0);
        for (i, c) in s.chars().enumerate() {
            assert_eq!(r.convert(Metric::Chars, i, Metric::Utf16), u);
            assert_eq!(r.convert(Metric::Bytes, b, Metric::Chars), i);
            assert_eq!(r.convert(Metric::Utf16, u, Metric::Chars), i);
            if i % 50 == 0 {
                assert_eq!(r.slice(i, 7), s.chars().skip(i).take(7).collect::<String>());
            }
            u += c.len_utf16();
            b += c.len_utf8();
        }
        r.remove(0, usize::MAX);
        assert_eq!(r.len(Metric::Bytes), 0);
        assert_eq!(r.leaves.len(), 1);
    }
}
