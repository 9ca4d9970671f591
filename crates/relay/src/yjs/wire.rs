//! The y-websocket wire format, read with strict bounds.
//!
//! Every message is lib0-encoded: a varuint message type, then its body.
//!
//! | type | body |
//! |---|---|
//! | 0 sync | varuint sub-type (0 SyncStep1: varbytes state vector; 1 SyncStep2, 2 Update: varbytes v1 update) |
//! | 1 awareness | varbytes: varuint count, then per entry varuint client id, varuint clock, varstring JSON state (`"null"`: gone) |
//! | 2 auth | varuint 0 (permission denied), varstring reason (server → client only) |
//! | 3 query awareness | nothing |
//!
//! Nothing here trusts a length or a count: every count is checked against
//! the bytes that remain before anything is built for it, so what a
//! message produces is bounded by its size. Updates are *walked* here
//! ([`check_update`]) before `yrs` sees them: the walk bounds every count
//! yrs would reserve memory for, limits the nesting of `Any` values (yrs
//! decodes them recursively) and counts the blocks an update carries (what
//! it costs in memory once integrated).

use std::fmt;

/// Message type: sync (y-protocols/sync).
pub(crate) const MSG_SYNC: u64 = 0;
/// Message type: awareness (y-protocols/awareness).
pub(crate) const MSG_AWARENESS: u64 = 1;
/// Message type: auth (y-protocols/auth).
pub(crate) const MSG_AUTH: u64 = 2;
/// Message type: query awareness.
pub(crate) const MSG_QUERY_AWARENESS: u64 = 3;
/// Sync sub-type: a state vector, answered with SyncStep2.
pub(crate) const SYNC_STEP1: u64 = 0;
/// Sync sub-type: the updates the other side lacks.
pub(crate) const SYNC_STEP2: u64 = 1;
/// Sync sub-type: an incremental update.
pub(crate) const SYNC_UPDATE: u64 = 2;

/// Deepest nesting of `Any` values (arrays, objects) an update may carry.
pub(crate) const MAX_ANY_DEPTH: usize = 64;
/// Largest client id: Yjs client ids are JavaScript numbers (53 bits).
const MAX_CLIENT_ID: u64 = (1 << 53) - 1;

/// Why bytes were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WireError {
    /// The message ended before a field did.
    #[error("message truncated")]
    Truncated,
    /// A varuint longer than 64 bits.
    #[error("varuint overflows 64 bits")]
    Overflow,
    /// A count larger than the bytes that could hold it.
    #[error("{what} count {count} exceeds the {remaining} bytes that remain")]
    Count {
        /// What was counted.
        what: &'static str,
        /// The count declared.
        count: u64,
        /// Bytes left in the message.
        remaining: usize,
    },
    /// A string that is not UTF-8.
    #[error("string is not UTF-8")]
    Utf8,
    /// Bytes after the end of the message.
    #[error("{0} unexpected bytes after the message")]
    Trailing(usize),
    /// An unknown tag.
    #[error("unknown {what} {tag}")]
    Unknown {
        /// What kind of tag.
        what: &'static str,
        /// Its value.
        tag: u64,
    },
    /// `Any` values nested too deep.
    #[error("values nested deeper than {MAX_ANY_DEPTH}")]
    TooDeep,
    /// A zero-length block (yrs refuses them too).
    #[error("empty block")]
    EmptyBlock,
    /// A client id beyond 53 bits.
    #[error("client id {0} beyond 2^53")]
    ClientId(u64),
}

/// A bounds-checked reader over one message.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("len", &self.buf.len())
            .field("pos", &self.pos)
            .finish()
    }
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        let b = *self.buf.get(self.pos).ok_or(WireError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.remaining() {
            return Err(WireError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// A lib0 varuint (7 bits a byte, least significant first).
    pub(crate) fn var(&mut self) -> Result<u64, WireError> {
        let mut value: u64 = 0;
        let mut shift = 0u32;
        loop {
            let b = self.u8()?;
            let bits = u64::from(b & 0x7f);
            if shift >= 64 || (shift == 63 && bits > 1) {
                return Err(WireError::Overflow);
            }
            value |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
        }
    }

    /// A varuint count of things each taking at least `min_bytes`.
    pub(crate) fn count(&mut self, what: &'static str, min_bytes: usize) -> Result<u64, WireError> {
        let count = self.var()?;
        let remaining = self.remaining();
        if count.saturating_mul(min_bytes as u64) > remaining as u64 {
            return Err(WireError::Count {
                what,
                count,
                remaining,
            });
        }
        Ok(count)
    }

    /// A lib0 signed varint (first byte: continuation, sign, 6 bits).
    fn var_int(&mut self) -> Result<(), WireError> {
        let mut b = self.u8()?;
        let mut n = 0;
        while b & 0x80 != 0 {
            n += 1;
            if n > 9 {
                return Err(WireError::Overflow);
            }
            b = self.u8()?;
        }
        Ok(())
    }

    /// varuint length, then that many bytes.
    pub(crate) fn var_bytes(&mut self) -> Result<&'a [u8], WireError> {
        let n = self.var()?;
        let n = usize::try_from(n).map_err(|_| WireError::Truncated)?;
        self.take(n)
    }

    /// varuint length, then that many UTF-8 bytes.
    pub(crate) fn var_str(&mut self) -> Result<&'a str, WireError> {
        std::str::from_utf8(self.var_bytes()?).map_err(|_| WireError::Utf8)
    }

    pub(crate) fn finish(&self) -> Result<(), WireError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(WireError::Trailing(n)),
        }
    }

    fn client(&mut self) -> Result<u64, WireError> {
        let id = self.var()?;
        if id > MAX_CLIENT_ID {
            return Err(WireError::ClientId(id));
        }
        Ok(id)
    }
}

/// Appends a lib0 varuint.
pub(crate) fn put_var(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends varuint length + bytes.
pub(crate) fn put_var_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_var(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// One message from a client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming<'a> {
    /// SyncStep1 with the client's encoded state vector (checked).
    Step1(&'a [u8]),
    /// SyncStep2 with a v1 update.
    Step2(&'a [u8]),
    /// An incremental v1 update.
    Update(&'a [u8]),
    /// An awareness update (the inner bytes).
    Awareness(&'a [u8]),
    /// The client asks for every awareness state.
    QueryAwareness,
    /// An auth message (servers ignore them).
    Auth,
}

/// Parses one WebSocket message.
pub(crate) fn parse(msg: &[u8]) -> Result<Incoming<'_>, WireError> {
    let mut r = Reader::new(msg);
    let parsed = match r.var()? {
        MSG_SYNC => {
            let sub = r.var()?;
            let body = r.var_bytes()?;
            match sub {
                SYNC_STEP1 => {
                    state_vector(body)?;
                    Incoming::Step1(body)
                }
                SYNC_STEP2 => Incoming::Step2(body),
                SYNC_UPDATE => Incoming::Update(body),
                tag => {
                    return Err(WireError::Unknown {
                        what: "sync message",
                        tag,
                    })
                }
            }
        }
        MSG_AWARENESS => Incoming::Awareness(r.var_bytes()?),
        MSG_QUERY_AWARENESS => Incoming::QueryAwareness,
        MSG_AUTH => {
            // y-protocols/auth: a varuint type and a reason; clients do not
            // send them, but tolerate one.
            let _ = r.take(r.remaining())?;
            Incoming::Auth
        }
        tag => {
            return Err(WireError::Unknown {
                what: "message type",
                tag,
            })
        }
    };
    r.finish()?;
    Ok(parsed)
}

/// Checks an encoded state vector: returns its `(client, clock)` pairs.
pub(crate) fn state_vector(bytes: &[u8]) -> Result<Vec<(u64, u32)>, WireError> {
    let mut r = Reader::new(bytes);
    let n = r.count("state vector entry", 2)?;
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let client = r.client()?;
        let clock = u32::try_from(r.var()?).map_err(|_| WireError::Overflow)?;
        out.push((client, clock));
    }
    r.finish()?;
    Ok(out)
}

/// A sync message carrying `update` (SyncStep2 or Update).
pub(crate) fn sync_message(sub: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 12);
    put_var(&mut out, MSG_SYNC);
    put_var(&mut out, sub);
    put_var_bytes(&mut out, body);
    out
}

/// An awareness message wrapping an encoded awareness update.
pub(crate) fn awareness_message(update: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(update.len() + 8);
    put_var(&mut out, MSG_AWARENESS);
    put_var_bytes(&mut out, update);
    out
}

/// y-protocols/auth "permission denied" with a reason.
pub(crate) fn permission_denied(reason: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(reason.len() + 8);
    put_var(&mut out, MSG_AUTH);
    put_var(&mut out, 0);
    put_var_bytes(&mut out, reason.as_bytes());
    out
}

/// One awareness entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AwarenessEntry {
    pub(crate) client: u64,
    pub(crate) clock: u64,
    /// The JSON state; `"null"` means the client is gone.
    pub(crate) state: String,
}

impl AwarenessEntry {
    pub(crate) fn is_null(&self) -> bool {
        self.state == "null"
    }
}

/// Parses an awareness update (the bytes inside an awareness message).
/// `max_state` bounds each state's size.
pub(crate) fn awareness(bytes: &[u8], max_state: usize) -> Result<Vec<AwarenessEntry>, WireError> {
    let mut r = Reader::new(bytes);
    let n = r.count("awareness entry", 3)?;
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let client = r.client()?;
        let clock = r.var()?;
        let state = r.var_str()?;
        if state.len() > max_state {
            return Err(WireError::Count {
                what: "awareness state byte",
                count: state.len() as u64,
                remaining: max_state,
            });
        }
        out.push(AwarenessEntry {
            client,
            clock,
            state: state.to_owned(),
        });
    }
    r.finish()?;
    Ok(out)
}

/// Encodes awareness entries as an awareness update.
pub(crate) fn encode_awareness<'e>(
    entries: impl ExactSizeIterator<Item = &'e AwarenessEntry>,
) -> Vec<u8> {
    let mut out = Vec::new();
    put_var(&mut out, entries.len() as u64);
    for e in entries {
        put_var(&mut out, e.client);
        put_var(&mut out, e.clock);
        put_var_bytes(&mut out, e.state.as_bytes());
    }
    out
}

/// What [`check_update`] learnt about an update.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct UpdateShape {
    /// Clients whose blocks it carries.
    pub(crate) clients: u64,
    /// Blocks (items, GC and skip ranges) it carries.
    pub(crate) blocks: u64,
    /// Delete-set ranges.
    pub(crate) deletes: u64,
}

impl UpdateShape {
    /// An upper bound on what integrating the update may cost in memory:
    /// its bytes plus a block's size for each block and delete range.
    pub(crate) fn cost(&self, bytes: usize) -> u64 {
        /// yrs' in-memory size of one block, rounded up.
        const BLOCK_COST: u64 = 192;
        (bytes as u64)
            .saturating_add(self.blocks.saturating_mul(BLOCK_COST))
            .saturating_add(self.deletes.saturating_mul(16))
    }
}

// Block info bits and content references (Yjs `structs/Item.js`).
const HAS_ORIGIN: u8 = 0x80;
const HAS_RIGHT_ORIGIN: u8 = 0x40;
const HAS_PARENT_SUB: u8 = 0x20;
const GC: u8 = 0;
const SKIP: u8 = 10;

/// Walks a v1 update the way yrs decodes it, checking every count against
/// the bytes that remain and the nesting of `Any` values, without building
/// anything. An update that passes decodes in yrs into structures bounded
/// by [`UpdateShape::cost`].
pub(crate) fn check_update(bytes: &[u8]) -> Result<UpdateShape, WireError> {
    let mut r = Reader::new(bytes);
    let mut shape = UpdateShape::default();
    // Each client section: blocks count, client, clock (>= 3 bytes).
    let clients = r.count("update client", 3)?;
    shape.clients = clients;
    for _ in 0..clients {
        // Each block: at least its info byte and one more.
        let blocks = r.count("block", 2)?;
        let _client = r.client()?;
        let _clock = r.var()?;
        for _ in 0..blocks {
            block(&mut r)?;
            shape.blocks += 1;
        }
    }
    // Delete set.
    let clients = r.count("delete set client", 2)?;
    for _ in 0..clients {
        let _client = r.client()?;
        let ranges = r.count("delete range", 2)?;
        for _ in 0..ranges {
            let _clock = r.var()?;
            let _len = r.var()?;
            shape.deletes += 1;
        }
    }
    r.finish()?;
    Ok(shape)
}

fn block(r: &mut Reader<'_>) -> Result<(), WireError> {
    let info = r.u8()?;
    match info {
        GC | SKIP => {
            if r.var()? == 0 {
                return Err(WireError::EmptyBlock);
            }
            return Ok(());
        }
        _ => {}
    }
    if info & HAS_ORIGIN != 0 {
        r.client()?;
        r.var()?;
    }
    if info & HAS_RIGHT_ORIGIN != 0 {
        r.client()?;
        r.var()?;
    }
    if info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0 {
        if r.var()? == 1 {
            r.var_str()?; // a root type's name
        } else {
            r.client()?; // the parent item's id
            r.var()?;
        }
        if info & HAS_PARENT_SUB != 0 {
            r.var_str()?;
        }
    }
    match info & 0x0f {
        1 => {
            // Deleted: a length.
            r.var()?;
        }
        2 => {
            // JSON: strings.
            let n = r.count("JSON value", 1)?;
            for _ in 0..n {
                r.var_str()?;
            }
        }
        3 => {
            r.var_bytes()?;
        }
        4 | 5 => {
            r.var_str()?;
        }
        6 => {
            r.var_str()?;
            r.var_str()?;
        }
        7 => {
            // Type: a type ref byte (+ a name for XML elements).
            match r.u8()? {
                0 | 1 | 2 | 4 | 5 | 6 | 9 | 15 => {}
                3 => {
                    r.var_str()?;
                }
                tag => {
                    return Err(WireError::Unknown {
                        what: "type ref",
                        tag: u64::from(tag),
                    })
                }
            }
        }
        8 => {
            let n = r.count("Any value", 1)?;
            for _ in 0..n {
                any(r, 0)?;
            }
        }
        9 => {
            r.var_str()?;
            any(r, 0)?;
        }
        tag => {
            return Err(WireError::Unknown {
                what: "content ref",
                tag: u64::from(tag),
            })
        }
    }
    Ok(())
}

/// One lib0 `Any` value, at most [`MAX_ANY_DEPTH`] deep.
fn any(r: &mut Reader<'_>, depth: usize) -> Result<(), WireError> {
    if depth >= MAX_ANY_DEPTH {
        return Err(WireError::TooDeep);
    }
    match r.u8()? {
        127 | 126 | 121 | 120 => {}
        125 => r.var_int()?,
        124 => {
            r.take(4)?;
        }
        123 | 122 => {
            r.take(8)?;
        }
        119 => {
            r.var_str()?;
        }
        118 => {
            let n = r.count("object entry", 2)?;
            for _ in 0..n {
                r.var_str()?;
                any(r, depth + 1)?;
            }
        }
        117 => {
            let n = r.count("array element", 1)?;
            for _ in 0..n {
                any(r, depth + 1)?;
            }
        }
        116 => {
            r.var_bytes()?;
        }
        tag => {
            return Err(WireError::Unknown {
                what: "Any tag",
                tag: u64::from(tag),
            })
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::updates::decoder::Decode;
    use yrs::updates::encoder::Encode;
    use yrs::{
        Array, Doc, GetString, Map, ReadTxn, StateVector, Text, Transact, WriteTxn, XmlFragment,
    };

    fn sample() -> Vec<u8> {
        let doc = Doc::with_client_id(7);
        {
            let mut txn = doc.transact_mut();
            let text = txn.get_or_insert_text("t");
            text.insert(&mut txn, 0, "héllo 世界 🎉");
            text.remove_range(&mut txn, 1, 2);
            let map = txn.get_or_insert_map("m");
            map.insert(&mut txn, "k", yrs::any!({"a": [1, 2.5, "x", null, true]}));
            let arr = txn.get_or_insert_array("a");
            arr.insert(&mut txn, 0, yrs::any!([1, {"b": "c"}]));
            let frag = txn.get_or_insert_xml_fragment("x");
            frag.push_back(&mut txn, yrs::XmlElementPrelim::empty("p"));
        }
        let update = doc
            .transact()
            .encode_state_as_update_v1(&StateVector::default());
        update
    }

    #[test]
    fn real_updates_pass_and_decode() {
        let u = sample();
        let shape = check_update(&u).unwrap();
        assert!(shape.blocks >= 4, "{shape:?}");
        assert!(yrs::Update::decode_v1(&u).is_ok());
        let doc = Doc::new();
        doc.transact_mut()
            .apply_update(yrs::Update::decode_v1(&u).unwrap())
            .unwrap();
        assert_eq!(
            doc.get_or_insert_text("t").get_string(&doc.transact()),
            "hllo 世界 🎉"
        );
    }

    #[test]
    fn every_truncation_is_refused() {
        let u = sample();
        for n in 0..u.len() {
            assert!(check_update(&u[..n]).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn counts_beyond_the_input_are_refused() {
        // 2^32-1 clients in 6 bytes.
        let mut u = Vec::new();
        put_var(&mut u, u64::from(u32::MAX));
        assert!(matches!(check_update(&u), Err(WireError::Count { .. })));
        let mut sv = Vec::new();
        put_var(&mut sv, 1 << 40);
        assert!(matches!(state_vector(&sv), Err(WireError::Count { .. })));
        assert_eq!(Reader::new(&[0xff; 11]).var(), Err(WireError::Overflow));
    }

    #[test]
    fn deep_any_is_refused() {
        // One client, one block: info 8 (Any) with a root parent.
        let mut u = vec![1, 1, 1, 0, 8, 1];
        put_var_bytes(&mut u, b"m");
        u.push(1); // one value
        u.extend(std::iter::repeat_n(117u8, 1000).flat_map(|t| [t, 1]));
        assert_eq!(check_update(&u), Err(WireError::TooDeep));
    }

    /// Mutated real updates: whatever passes the walk decodes and applies
    /// in yrs without a panic (the room also catches one, but a panic
    /// there costs the room a reload).
    #[test]
    fn mutated_updates_never_panic_yrs_after_the_walk() {
        let base = sample();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (mut passed, mut panicked) = (0, 0);
        for _ in 0..20_000 {
            let mut u = base.clone();
            for _ in 0..1 + next() % 4 {
                let i = (next() as usize) % u.len();
                match next() % 4 {
                    0 => u[i] = next() as u8,
                    1 => u[i] ^= 1 << (next() % 8),
                    2 => u.truncate(i.max(1)),
                    _ => u.insert(i, next() as u8),
                }
            }
            if check_update(&u).is_err() {
                continue;
            }
            passed += 1;
            let outcome = std::panic::catch_unwind(|| {
                let doc = Doc::new();
                if let Ok(update) = yrs::Update::decode_v1(&u) {
                    let _ = doc.transact_mut().apply_update(update);
                }
                let _ = doc
                    .transact()
                    .encode_state_as_update_v1(&StateVector::default());
            });
            if outcome.is_err() {
                panicked += 1;
            }
        }
        assert!(passed > 100, "only {passed} mutations passed the walk");
        assert_eq!(
            panicked, 0,
            "{panicked} of {passed} walked updates panicked yrs"
        );
    }

    #[test]
    fn messages_round_trip() {
        let sv = Doc::new().transact().state_vector().encode_v1();
        let mut m = Vec::new();
        put_var(&mut m, MSG_SYNC);
        put_var(&mut m, SYNC_STEP1);
        put_var_bytes(&mut m, &sv);
        assert_eq!(parse(&m), Ok(Incoming::Step1(&sv[..])));
        let u = sample();
        assert_eq!(
            parse(&sync_message(SYNC_UPDATE, &u)),
            Ok(Incoming::Update(&u[..]))
        );
        let e = AwarenessEntry {
            client: 5,
            clock: 2,
            state: "{\"user\":\"ada\"}".into(),
        };
        let a = encode_awareness([e.clone()].iter());
        assert_eq!(
            parse(&awareness_message(&a)),
            Ok(Incoming::Awareness(&a[..]))
        );
        assert_eq!(awareness(&a, 100), Ok(vec![e]));
        assert!(awareness(&a, 3).is_err());
        assert!(parse(&[9]).is_err());
        assert!(parse(&[0, 2, 5, 1]).is_err());
        let _ = StateVector::decode_v1(&sv).unwrap();
    }
}
