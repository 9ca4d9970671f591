//! The byte layout of [`super::TextDelta`] and [`super::Text`]: runs of ops
//! in columns, with ids predicted from what the reader already decoded.
//!
//! A blob is: a flags byte, the replica table, the number of runs in each
//! group (one group for a delta; ops and buffered ops for a text), then two
//! sections, metadata and content, each optionally DEFLATE-compressed. The
//! metadata section holds eight columns (one head byte per run, then varints
//! only where the head says the value is not predicted); the content section
//! is the UTF-8 text of the insert runs that carry text, concatenated.
//! `docs/protocol.md` ("Text") specifies every field.
//!
//! Invariant (checked when decoding, which never panics and allocates at
//! most a small multiple of the input size): replica ids are unique, indices
//! are in range, counters are non-zero, runs are non-empty and at most
//! `u32::MAX` ops, no id range overflows `u64`, every column and the content
//! are consumed exactly, decompressed sizes match what the blob declares.

use crate::codec::put_varint as put;
use crate::{DecodeError, Dot, ReplicaId};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// A borrowed run of a text delta (`delta::Run`): what the codec reads and
/// writes.
#[derive(Clone, Copy, Debug)]
pub(super) struct RunRef<'a> {
    pub(super) id: Dot,
    /// Number of ops.
    pub(super) len: u64,
    pub(super) op: OpRef<'a>,
}

/// A borrowed run op (`delta::RunOp`); `text` is `None` for a run of
/// deleted content (`delta::Content::Deleted`).
#[derive(Clone, Copy, Debug)]
pub(super) enum OpRef<'a> {
    Insert {
        origin_left: Option<Dot>,
        origin_right: Option<Dot>,
        text: Option<&'a str>,
    },
    Delete {
        target: Dot,
        reversed: bool,
    },
}

/// Run kinds (head bits 0-1).
const KIND_TEXT: u8 = 0;
const KIND_DELETED_TEXT: u8 = 1;
const KIND_DELETE: u8 = 2;
const KIND_DELETE_REVERSED: u8 = 3;
/// The run's replica is the previous run's (else in the replica column).
const SAME_REPLICA: u8 = 1 << 2;
/// The run's first seq is the predicted one (else in the seq column).
const SEQ_PREDICTED: u8 = 1 << 3;
/// Inserts: left origin mode in bits 4-5, right origin mode in bits 6-7.
const LEFT_SHIFT: u8 = 4;
const RIGHT_SHIFT: u8 = 6;
/// Origin modes: none (document start or end).
const ORIGIN_NONE: u8 = 0;
/// Left: the run's own previous seq; right: the previous insert's right.
const ORIGIN_IMPLIED: u8 = 1;
/// Same replica as the run, counter relative to the run's first seq.
const ORIGIN_OWN: u8 = 2;
/// Replica in the refs column, counter relative to its predicted seq.
const ORIGIN_OTHER: u8 = 3;
/// Deletes: the target replica is the run's own (else in the refs column).
const TARGET_OWN: u8 = 1 << 4;
/// Deletes: one op (no length varint).
const LEN_ONE: u8 = 1 << 5;
/// Bits a delete head may not set.
const DELETE_RESERVED: u8 = 0b1100_0000;

/// Metadata columns, in order.
const HEAD: usize = 0;
const REPLICA: usize = 1;
const SEQ: usize = 2;
const LEN: usize = 3;
const LEFT: usize = 4;
const RIGHT: usize = 5;
const TARGET: usize = 6;
const REFS: usize = 7;
const COLUMNS: usize = 8;

/// Flags byte: which sections are DEFLATE-compressed.
const META_DEFLATED: u8 = 1;
const CONTENT_DEFLATED: u8 = 2;

/// Sections shorter than this are stored raw.
const COMPRESS_MIN: usize = 128;
/// Replicas an encoder finds by scanning before it keeps an index.
const SCAN_REPLICAS: usize = 8;
/// Largest buffer a thread keeps for reuse between encodings.
const REUSE_MAX: usize = 64 << 10;
/// DEFLATE expands at most about 1032:1; anything claiming more is corrupt.
const MAX_RATIO: usize = 1040;

fn invalid(what: &'static str) -> DecodeError {
    DecodeError::Invalid(what)
}

/// Zigzag encoding of a wrapping difference (bijective on `u64`).
pub(super) fn zigzag(d: u64) -> u64 {
    let d = d as i64;
    ((d << 1) ^ (d >> 63)) as u64
}

pub(super) fn unzigzag(z: u64) -> u64 {
    ((z >> 1) as i64 ^ -((z & 1) as i64)) as u64
}

/// Writes runs into columns.
#[derive(Debug, Default)]
pub(super) struct Encoder {
    replicas: Vec<ReplicaId>,
    index: HashMap<ReplicaId, u32>,
    /// Per replica: the seq after its last run so far (1 before any).
    expected: Vec<u64>,
    cols: [Vec<u8>; COLUMNS],
    content: Vec<u8>,
    prev_replica: u32,
    prev_right: Option<Dot>,
    runs: u64,
}

impl Encoder {
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// Runs written so far.
    pub(super) fn runs(&self) -> u64 {
        self.runs
    }

    fn slot(&mut self, replica: ReplicaId) -> u32 {
        // Few replicas (every local edit, most deltas): a scan. Many (a
        // snapshot): the index, built once the scan would get long.
        if self.replicas.len() <= SCAN_REPLICAS {
            if let Some(i) = self.replicas.iter().position(|r| *r == replica) {
                return i as u32;
            }
        } else if let Some(&i) = self.index.get(&replica) {
            return i;
        }
        let i = self.replicas.len() as u32;
        self.replicas.push(replica);
        self.expected.push(1);
        if self.replicas.len() > SCAN_REPLICAS {
            if self.index.is_empty() {
                for (k, r) in self.replicas.iter().enumerate() {
                    self.index.insert(*r, k as u32);
                }
            } else {
                self.index.insert(replica, i);
            }
        }
        i
    }

    /// Bytes the encoder's buffers hold on to (their capacity).
    pub(super) fn retained_bytes(&self) -> usize {
        use std::mem::size_of;
        self.content.capacity()
            + self.cols.iter().map(Vec::capacity).sum::<usize>()
            + self.replicas.capacity() * size_of::<ReplicaId>()
            + self.expected.capacity() * size_of::<u64>()
            + self.index.capacity() * (size_of::<ReplicaId>() + size_of::<u32>())
    }

    /// Empties the encoder, keeping its buffers for the next blob.
    pub(super) fn reset(&mut self) {
        self.replicas.clear();
        self.index.clear();
        self.expected.clear();
        for c in &mut self.cols {
            c.clear();
        }
        self.content.clear();
        self.prev_replica = 0;
        self.prev_right = None;
        self.runs = 0;
    }

    /// Runs `f` with an empty encoder whose buffers are reused from one call
    /// to the next on this thread (small deltas, one per local edit, then
    /// allocate nothing), and `out` to write the blob into.
    pub(super) fn with_reused<R>(f: impl FnOnce(&mut Encoder, &mut Vec<u8>) -> R) -> R {
        thread_local! {
            static REUSED: std::cell::RefCell<(Encoder, Vec<u8>)> = std::cell::RefCell::default();
        }
        REUSED.with(|cell| match cell.try_borrow_mut() {
            Ok(mut pair) => {
                let (enc, out) = &mut *pair;
                enc.reset();
                out.clear();
                let r = f(enc, out);
                // Keep the buffers, unless one blob made them large.
                if out.capacity() > REUSE_MAX || enc.retained_bytes() > REUSE_MAX {
                    *pair = Default::default();
                }
                r
            }
            // Re-entered (cannot happen today): a fresh encoder.
            Err(_) => f(&mut Encoder::default(), &mut Vec::new()),
        })
    }

    /// Encodes `dot` as an origin of a run of replica `r` starting at `seq`.
    fn origin(&mut self, dot: Option<Dot>, r: u32, seq: u64, col: usize, implied: bool) -> u8 {
        let Some(dot) = dot else {
            return ORIGIN_NONE;
        };
        if implied {
            return ORIGIN_IMPLIED;
        }
        let i = self.slot(dot.replica);
        if i == r {
            put(&mut self.cols[col], zigzag(seq.wrapping_sub(dot.counter)));
            ORIGIN_OWN
        } else {
            put(&mut self.cols[REFS], u64::from(i));
            let rel = self.expected[i as usize].wrapping_sub(dot.counter);
            put(&mut self.cols[col], zigzag(rel));
            ORIGIN_OTHER
        }
    }

    /// Appends one run.
    pub(super) fn push(&mut self, run: RunRef<'_>) {
        let seq = run.id.counter;
        let r = self.slot(run.id.replica);
        let mut head = 0u8;
        if r == self.prev_replica {
            head |= SAME_REPLICA;
        } else {
            put(&mut self.cols[REPLICA], u64::from(r));
        }
        let expected = self.expected[r as usize];
        if seq == expected {
            head |= SEQ_PREDICTED;
        } else {
            put(&mut self.cols[SEQ], zigzag(seq.wrapping_sub(expected)));
        }
        match run.op {
            OpRef::Insert {
                origin_left,
                origin_right,
                text,
            } => {
                head |= if text.is_some() {
                    KIND_TEXT
                } else {
                    KIND_DELETED_TEXT
                };
                put(&mut self.cols[LEN], run.len);
                let chain = origin_left == Some(Dot::new(run.id.replica, seq.wrapping_sub(1)));
                let left = self.origin(origin_left, r, seq, LEFT, chain);
                let same = origin_right.is_some() && origin_right == self.prev_right;
                let right = self.origin(origin_right, r, seq, RIGHT, same);
                head |= left << LEFT_SHIFT | right << RIGHT_SHIFT;
                self.prev_right = origin_right;
                if let Some(text) = text {
                    self.content.extend_from_slice(text.as_bytes());
                }
            }
            OpRef::Delete { target, reversed } => {
                head |= if reversed {
                    KIND_DELETE_REVERSED
                } else {
                    KIND_DELETE
                };
                if run.len == 1 {
                    head |= LEN_ONE;
                } else {
                    put(&mut self.cols[LEN], run.len);
                }
                let t = self.slot(target.replica);
                let rel = if t == r {
                    head |= TARGET_OWN;
                    seq.wrapping_sub(target.counter)
                } else {
                    put(&mut self.cols[REFS], u64::from(t));
                    self.expected[t as usize].wrapping_sub(target.counter)
                };
                put(&mut self.cols[TARGET], zigzag(rel));
            }
        }
        self.cols[HEAD].push(head);
        self.expected[r as usize] = seq.wrapping_add(run.len);
        self.prev_replica = r;
        self.runs += 1;
    }

    /// The blob; `groups` are the run counts of each group, in order (they
    /// must add up to [`Encoder::runs`]).
    pub(super) fn finish(mut self, groups: &[u64]) -> Vec<u8> {
        let mut out = Vec::new();
        self.finish_into(groups, &mut out);
        out
    }

    /// Appends the blob to `out` (as [`Encoder::finish`]); the encoder is
    /// left spent, to be [`Encoder::reset`] before reuse.
    pub(super) fn finish_into(&mut self, groups: &[u64], out: &mut Vec<u8>) {
        debug_assert_eq!(groups.iter().sum::<u64>(), self.runs);
        let meta_len = self.meta_len();
        if let Some(len) = self.raw_len(groups, meta_len) {
            if self.finish_raw(groups, len, meta_len, out) {
                return;
            }
        }
        self.finish_general(groups, meta_len, out);
    }

    /// [`Encoder::finish_into`] with each section compressed where it pays.
    fn finish_general(&self, groups: &[u64], meta_len: usize, out: &mut Vec<u8>) {
        let meta_packed = (meta_len >= COMPRESS_MIN).then(|| {
            let mut meta = Vec::with_capacity(meta_len);
            for col in &self.cols {
                put(&mut meta, col.len() as u64);
                meta.extend_from_slice(col);
            }
            deflate_if_smaller(&meta)
        });
        let content_packed = (self.content.len() >= COMPRESS_MIN)
            .then(|| deflate_if_smaller(&self.content))
            .flatten();
        let meta_packed = meta_packed.flatten();
        out.reserve(meta_len + self.content.len() + 16 + 10 * self.replicas.len());
        out.push(
            if meta_packed.is_some() {
                META_DEFLATED
            } else {
                0
            } | if content_packed.is_some() {
                CONTENT_DEFLATED
            } else {
                0
            },
        );
        put(out, self.replicas.len() as u64);
        for r in &self.replicas {
            put(out, r.get());
        }
        for &g in groups {
            put(out, g);
        }
        put(out, meta_len as u64);
        match &meta_packed {
            Some(packed) => {
                put(out, packed.len() as u64);
                out.extend_from_slice(packed);
            }
            None => {
                for col in &self.cols {
                    put(out, col.len() as u64);
                    out.extend_from_slice(col);
                }
            }
        }
        put(out, self.content.len() as u64);
        match &content_packed {
            Some(packed) => {
                put(out, packed.len() as u64);
                out.extend_from_slice(packed);
            }
            None => out.extend_from_slice(&self.content),
        }
    }
}

impl Encoder {
    /// Bytes of the metadata section, uncompressed: each column's length
    /// and bytes.
    fn meta_len(&self) -> usize {
        self.cols
            .iter()
            .map(|c| c.len() + varint_len(c.len() as u64))
            .sum()
    }

    /// Appends the blob as a length-prefixed byte string (what serde's
    /// `serialize_bytes` writes through postcard): straight into `out` when
    /// it is small, else built in `scratch` first to learn its length.
    pub(super) fn finish_prefixed(&self, groups: &[u64], out: &mut Vec<u8>, scratch: &mut Vec<u8>) {
        let meta_len = self.meta_len();
        if let Some(len) = self.raw_len(groups, meta_len) {
            let start = out.len();
            put(out, len as u64);
            if self.finish_raw(groups, len, meta_len, out) {
                return;
            }
            out.truncate(start);
        }
        scratch.clear();
        self.finish_general(groups, meta_len, scratch);
        put(out, scratch.len() as u64);
        out.extend_from_slice(scratch);
    }

    /// The exact length of the blob, if both sections are too short to be
    /// considered for compression (every local edit's delta): then it is
    /// written by [`Encoder::finish_raw`].
    fn raw_len(&self, groups: &[u64], meta_len: usize) -> Option<usize> {
        let content = self.content.len();
        if meta_len >= COMPRESS_MIN || content >= COMPRESS_MIN {
            return None;
        }
        let ids: usize = self.replicas.iter().map(|r| varint_len(r.get())).sum();
        let counts: usize = groups.iter().map(|&g| varint_len(g)).sum();
        Some(
            1 + varint_len(self.replicas.len() as u64)
                + ids
                + counts
                + varint_len(meta_len as u64)
                + meta_len
                + varint_len(content as u64)
                + content,
        )
    }

    /// Appends the uncompressed blob of `len` bytes (from
    /// [`Encoder::raw_len`]): the layout of [`Encoder::finish_into`] with no
    /// section deflated, written into a slice grown once. Returns false
    /// (`out` untouched) if the blob would not be exactly `len` bytes, which
    /// would be a bug of [`Encoder::raw_len`] (debug builds panic on it).
    fn finish_raw(&self, groups: &[u64], len: usize, meta_len: usize, out: &mut Vec<u8>) -> bool {
        let start = out.len();
        out.resize(start + len, 0);
        let mut w = SliceWriter {
            buf: &mut out[start..],
            at: 0,
        };
        w.byte(0);
        w.varint(self.replicas.len() as u64);
        for r in &self.replicas {
            w.varint(r.get());
        }
        for &g in groups {
            w.varint(g);
        }
        w.varint(meta_len as u64);
        for col in &self.cols {
            w.varint(col.len() as u64);
            w.bytes(col);
        }
        w.varint(self.content.len() as u64);
        w.bytes(&self.content);
        let exact = w.at == len;
        debug_assert!(exact, "raw_len and finish_raw disagree");
        if !exact {
            out.truncate(start);
        }
        exact
    }
}

/// Writes into a slice sized beforehand (no capacity check per byte).
/// Bytes past its end are dropped and counted, never a panic: the caller
/// compares `at` with the size it expected.
struct SliceWriter<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl SliceWriter<'_> {
    fn byte(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.at) {
            *slot = b;
        }
        self.at += 1;
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte(v as u8 | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }

    fn bytes(&mut self, bytes: &[u8]) {
        if bytes.len() <= 16 {
            for &b in bytes {
                self.byte(b);
            }
        } else {
            let end = self.at + bytes.len();
            if let Some(dst) = self.buf.get_mut(self.at..end) {
                dst.copy_from_slice(bytes);
            }
            self.at = end;
        }
    }
}

/// The DEFLATE form of `raw`, if it pays.
fn deflate_if_smaller(raw: &[u8]) -> Option<Vec<u8>> {
    let packed = miniz_oxide::deflate::compress_to_vec(raw, 6);
    (packed.len() + 4 < raw.len()).then_some(packed)
}

/// Bytes [`put`] writes for `v`.
fn varint_len(v: u64) -> usize {
    // Column lengths and ids are mostly small: answer those without the
    // division.
    match v {
        0..0x80 => 1,
        0x80..0x4000 => 2,
        _ => (64 - v.leading_zeros() as usize).div_ceil(7),
    }
}

/// A cursor over untrusted bytes.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        let (&b, rest) = self.bytes.split_first().ok_or(invalid("text: truncated"))?;
        self.bytes = rest;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(invalid("text: varint overflows u64"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(invalid("text: varint overflows u64"))
    }

    /// A varint that counts something at least one input byte each.
    fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.bytes.len())
            .ok_or(invalid("text: count exceeds the input"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.bytes.len() {
            return Err(invalid("text: truncated"));
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn section(&mut self, deflated: bool) -> Result<Cow<'a, [u8]>, DecodeError> {
        let raw = self.varint()?;
        if !deflated {
            let raw = usize::try_from(raw).map_err(|_| invalid("text: truncated"))?;
            return Ok(Cow::Borrowed(self.take(raw)?));
        }
        let stored = self.count()?;
        let raw = usize::try_from(raw)
            .ok()
            .filter(|&r| r <= stored.saturating_mul(MAX_RATIO).saturating_add(64))
            .ok_or(invalid("text: implausible decompressed size"))?;
        let packed = self.take(stored)?;
        // The size is known and charged to the decode's budget before
        // anything is allocated: inflate into one buffer of exactly it.
        crate::codec::charge(raw)?;
        let mut out = vec![0; raw];
        let n = miniz_oxide::inflate::decompress_slice_iter_to_slice(
            &mut out,
            std::iter::once(packed),
            false,
            true,
        )
        .map_err(|_| invalid("text: bad compressed section"))?;
        if n != raw {
            return Err(invalid("text: decompressed size mismatch"));
        }
        Ok(Cow::Owned(out))
    }
}

/// Decodes a blob with `groups` run groups, calling `f(group, run)` for each
/// run in order. Every run is checked for the invariants in the module docs
/// before `f` sees it.
pub(super) fn decode(
    blob: &[u8],
    groups: usize,
    f: impl FnMut(usize, RunRef<'_>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    decode_sized(blob, groups, |_, _| {}, f)
}

/// [`decode`], first telling `sizes` the number of runs of the first group
/// and the content bytes (so the caller can reserve capacity).
pub(super) fn decode_sized(
    blob: &[u8],
    groups: usize,
    sizes: impl FnOnce(u64, usize),
    mut f: impl FnMut(usize, RunRef<'_>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let mut r = Reader { bytes: blob };
    let flags = r.byte()?;
    if flags & !(META_DEFLATED | CONTENT_DEFLATED) != 0 {
        return Err(invalid("text: unknown flags"));
    }
    let n = r.count()?;
    let mut replicas = Vec::with_capacity(n);
    for _ in 0..n {
        replicas.push(ReplicaId::new(r.varint()?));
    }
    let mut sorted = replicas.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != replicas.len() {
        return Err(invalid("text: duplicate replica"));
    }
    let mut counts = Vec::with_capacity(groups);
    let mut total = 0u64;
    for _ in 0..groups {
        let c = r.varint()?;
        total = total.checked_add(c).ok_or(invalid("text: too many runs"))?;
        counts.push(c);
    }
    let meta = r.section(flags & META_DEFLATED != 0)?;
    let content = r.section(flags & CONTENT_DEFLATED != 0)?;
    if !r.is_empty() {
        return Err(invalid("text: trailing bytes"));
    }
    let mut m = Reader { bytes: &meta };
    let mut cols: [Reader<'_>; COLUMNS] = std::array::from_fn(|_| Reader { bytes: &[] });
    for col in &mut cols {
        let len = m.count()?;
        col.bytes = m.take(len)?;
    }
    if !m.is_empty() {
        return Err(invalid("text: trailing metadata"));
    }
    if total != cols[HEAD].bytes.len() as u64 {
        return Err(invalid("text: run count does not match the head column"));
    }
    let content = std::str::from_utf8(&content).map_err(|_| invalid("text: content not UTF-8"))?;
    sizes(counts.first().copied().unwrap_or(0), content.len());
    let ascii = content.is_ascii();
    let mut rest = content;
    let mut state = State {
        replicas: &replicas,
        expected: vec![1; replicas.len()],
        prev_replica: 0,
        prev_right: None,
    };
    for (g, &count) in counts.iter().enumerate() {
        for _ in 0..count {
            let run = state.run(&mut cols, &mut rest, ascii)?;
            f(g, run)?;
        }
    }
    if !rest.is_empty() || cols.iter().any(|c| !c.is_empty()) {
        return Err(invalid("text: unread column bytes"));
    }
    Ok(())
}

/// What the decoder predicts from.
struct State<'r> {
    replicas: &'r [ReplicaId],
    expected: Vec<u64>,
    prev_replica: u32,
    prev_right: Option<Dot>,
}

impl State<'_> {
    fn index(&self, i: u64) -> Result<u32, DecodeError> {
        if i < self.replicas.len() as u64 {
            Ok(i as u32)
        } else {
            Err(invalid("text: replica index out of range"))
        }
    }

    fn dot(&self, r: u32, counter: u64) -> Result<Dot, DecodeError> {
        if counter == 0 {
            return Err(invalid("text: counter 0"));
        }
        Ok(Dot::new(self.replicas[r as usize], counter))
    }

    fn origin(
        &self,
        mode: u8,
        cols: &mut [Reader<'_>; COLUMNS],
        col: usize,
        r: u32,
        seq: u64,
        implied: Option<Dot>,
    ) -> Result<Option<Dot>, DecodeError> {
        Ok(match mode {
            ORIGIN_NONE => None,
            ORIGIN_IMPLIED => implied,
            ORIGIN_OWN => Some(self.dot(r, seq.wrapping_sub(unzigzag(cols[col].varint()?)))?),
            _ => {
                let i = self.index(cols[REFS].varint()?)?;
                let rel = unzigzag(cols[col].varint()?);
                Some(self.dot(i, self.expected[i as usize].wrapping_sub(rel))?)
            }
        })
    }

    fn run<'c>(
        &mut self,
        cols: &mut [Reader<'_>; COLUMNS],
        content: &mut &'c str,
        ascii: bool,
    ) -> Result<RunRef<'c>, DecodeError> {
        let head = cols[HEAD].byte()?;
        let r = if head & SAME_REPLICA != 0 {
            self.index(u64::from(self.prev_replica))?
        } else {
            self.index(cols[REPLICA].varint()?)?
        };
        let expected = self.expected[r as usize];
        let seq = if head & SEQ_PREDICTED != 0 {
            expected
        } else {
            expected.wrapping_add(unzigzag(cols[SEQ].varint()?))
        };
        let id = self.dot(r, seq)?;
        let kind = head & 3;
        let (len, op) = if kind == KIND_TEXT || kind == KIND_DELETED_TEXT {
            let len = cols[LEN].varint()?;
            check_span(seq, len)?;
            let chain = self.dot(r, seq.wrapping_sub(1)).ok();
            let left_mode = (head >> LEFT_SHIFT) & 3;
            let origin_left = self.origin(left_mode, cols, LEFT, r, seq, chain)?;
            let right_mode = (head >> RIGHT_SHIFT) & 3;
            let origin_right = self.origin(right_mode, cols, RIGHT, r, seq, self.prev_right)?;
            if left_mode == ORIGIN_IMPLIED && origin_left.is_none() {
                return Err(invalid("text: implied left origin before seq 1"));
            }
            self.prev_right = origin_right;
            let text = if kind == KIND_TEXT {
                let bytes = if ascii {
                    len as usize
                } else {
                    content
                        .char_indices()
                        .nth(len as usize)
                        .map_or(content.len(), |(b, _)| b)
                };
                if bytes > content.len()
                    || (!ascii && content[..bytes].chars().count() as u64 != len)
                {
                    return Err(invalid("text: content shorter than its runs"));
                }
                let (text, rest) = content.split_at(bytes);
                *content = rest;
                Some(text)
            } else {
                None
            };
            (
                len,
                OpRef::Insert {
                    origin_left,
                    origin_right,
                    text,
                },
            )
        } else {
            if head & DELETE_RESERVED != 0 {
                return Err(invalid("text: reserved delete bits set"));
            }
            let len = if head & LEN_ONE != 0 {
                1
            } else {
                cols[LEN].varint()?
            };
            check_span(seq, len)?;
            let (t, base) = if head & TARGET_OWN != 0 {
                (r, seq)
            } else {
                let t = self.index(cols[REFS].varint()?)?;
                (t, self.expected[t as usize])
            };
            let target = self.dot(t, base.wrapping_sub(unzigzag(cols[TARGET].varint()?)))?;
            check_span(target.counter, len)?;
            (
                len,
                OpRef::Delete {
                    target,
                    reversed: kind == KIND_DELETE_REVERSED,
                },
            )
        };
        self.expected[r as usize] = seq + len;
        self.prev_replica = r;
        Ok(RunRef { id, len, op })
    }
}

/// A run of `len` ops from `start`: non-empty, at most `u32::MAX`, and
/// `start + len` fits in `u64` (so the next seq is representable).
fn check_span(start: u64, len: u64) -> Result<(), DecodeError> {
    if len == 0 {
        return Err(invalid("text: empty run"));
    }
    if len > u64::from(u32::MAX) || start.checked_add(len).is_none() {
        return Err(invalid("text: run length overflows"));
    }
    Ok(())
}

/// A serde visitor for a byte blob, handing it to `F`.
pub(super) struct BlobVisitor<F>(pub(super) F);

impl<'de, T, F: FnOnce(&[u8]) -> Result<T, DecodeError>> serde::de::Visitor<'de>
    for BlobVisitor<F>
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a weft text blob (bytes)")
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<T, E> {
        (self.0)(v).map_err(E::custom)
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<T, E> {
        self.visit_bytes(&v)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        // Self-describing formats (JSON) write bytes as a sequence.
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(b) = seq.next_element::<u8>()? {
            v.push(b);
        }
        self.visit_bytes(&v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_round_trips_and_keeps_small_numbers_small() {
        for d in [0u64, 1, 2, u64::MAX, u64::MAX - 1, 1 << 63, 12345] {
            assert_eq!(unzigzag(zigzag(d)), d);
        }
        assert_eq!(zigzag(1u64.wrapping_neg()), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn varints_reject_overflow() {
        let mut out = Vec::new();
        put(&mut out, u64::MAX);
        assert_eq!(Reader { bytes: &out }.varint(), Ok(u64::MAX));
        let too_big = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert!(Reader { bytes: &too_big }.varint().is_err());
        assert!(Reader { bytes: &[0x80] }.varint().is_err());
    }
}
