//! Versioned binary encoding (postcard with a weft header).
//!
//! Every encoded value is `b"WEFT"`, one format-version byte, one kind byte,
//! then the postcard body (format in `docs/protocol.md`). Decoding checks the
//! header, the size limit, the whole body (no trailing bytes) and each type's
//! invariants; untrusted input yields a [`DecodeError`], never a panic.

use crate::DecodeError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::cell::Cell;

/// The four bytes every weft encoding starts with.
pub const MAGIC: [u8; 4] = *b"WEFT";
/// The format version this build writes (and the highest it reads).
pub const FORMAT_VERSION: u8 = 1;
/// Header length: magic, version, kind.
pub const HEADER_LEN: usize = 6;
/// Default limit on the size of a decoded input: 64 MiB.
pub const DEFAULT_MAX_BYTES: usize = 64 << 20;

/// Types with a registered kind tag in the header.
pub trait Encode: Serialize + DeserializeOwned {
    /// The kind byte written after the version.
    const KIND: u8;
    /// Human-readable name for errors.
    const NAME: &'static str;
}

/// Encodes `value` with the weft header.
///
/// ```
/// use weft_core::{codec, GCounter, ReplicaId};
/// let mut c = GCounter::new();
/// c.increment(ReplicaId::new(1), 5).unwrap();
/// let bytes = codec::encode(&c);
/// assert_eq!(&bytes[..4], b"WEFT");
/// let back: GCounter = codec::decode(&bytes).unwrap();
/// assert_eq!(back, c);
/// assert!(codec::decode::<GCounter>(b"garbage").is_err());
/// ```
pub fn encode<T: Encode>(value: &T) -> Vec<u8> {
    encode_view::<T>(value)
}

/// Encodes `view`, a value that serializes exactly as a `T` (`T` itself,
/// or a borrowed view of one: saving a large value without cloning it
/// first), with `T`'s header.
pub(crate) fn encode_view<T: Encode>(view: &impl Serialize) -> Vec<u8> {
    let header = || {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&MAGIC);
        out.push(FORMAT_VERSION);
        out.push(T::KIND);
        out
    };
    // Serializing into a Vec only fails for a serde impl that reports an
    // error, which no weft type has; a header-only output would then fail to
    // decode with a typed error rather than panic here.
    postcard::to_extend(view, header()).unwrap_or_else(|_| header())
}

/// A buffer holding the weft header of `T`, with room for `capacity` more
/// bytes (for encoders that write their body piece by piece).
pub(crate) fn header<T: Encode>(capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + capacity);
    out.extend_from_slice(&MAGIC);
    out.push(FORMAT_VERSION);
    out.push(T::KIND);
    out
}

/// Appends `v` as an unsigned LEB128 varint (postcard's integer encoding;
/// also the text columns' own).
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Decodes a value written by [`encode`], with the default size limit.
pub fn decode<T: Encode>(bytes: &[u8]) -> Result<T, DecodeError> {
    decode_with_limit(bytes, DEFAULT_MAX_BYTES)
}

/// Decodes a value written by [`encode`], refusing inputs over `max_bytes`.
///
/// What decoding *produces* is bounded too: sections stored compressed may
/// inflate to at most `max_bytes` in all, so a small input cannot expand
/// into a large allocation.
///
/// ```
/// use weft_core::{codec, DecodeError, Text, TextDelta, ReplicaId};
/// let mut t = Text::new();
/// let delta = t.insert(ReplicaId::new(1), 0, &"a".repeat(100_000));
/// let bytes = codec::encode(&delta);
/// assert!(bytes.len() < 1_000, "compressed");
/// assert!(matches!(
///     codec::decode_with_limit::<TextDelta>(&bytes, 10_000),
///     Err(DecodeError::DecodedTooLarge { .. })
/// ));
/// ```
pub fn decode_with_limit<T: Encode>(bytes: &[u8], max_bytes: usize) -> Result<T, DecodeError> {
    decode_bounded(bytes, max_bytes, max_bytes).map(|(value, _)| value)
}

/// Decodes with separate bounds on the input (`max_input`) and on what
/// decoding may inflate beyond it (`max_inflated`); returns the value and
/// the bytes it inflated.
pub(crate) fn decode_bounded<T: Encode>(
    bytes: &[u8],
    max_input: usize,
    max_inflated: usize,
) -> Result<(T, usize), DecodeError> {
    let body = check_header(bytes, T::KIND, T::NAME, max_input)?;
    let budget = Budget::enter(max_inflated);
    let (value, rest) = match postcard::take_from_bytes::<T>(body) {
        Ok(parsed) => parsed,
        // Nested decoders report through serde's string errors; the budget
        // remembers that it was the one exceeded.
        Err(_) if budget.exceeded() => {
            return Err(DecodeError::DecodedTooLarge { max: max_inflated })
        }
        Err(e) => return Err(e.into()),
    };
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }
    Ok((value, budget.used()))
}

thread_local! {
    /// The innermost decode's budget: (bytes it may still inflate, its cap,
    /// whether a charge was refused).
    static BUDGET: Cell<Option<(usize, usize, bool)>> = const { Cell::new(None) };
}

/// The inflation budget of one decode, for the current thread. Nested
/// decodes get their own budget and restore the outer one when done.
pub(crate) struct Budget {
    outer: Option<(usize, usize, bool)>,
}

impl Budget {
    pub(crate) fn enter(max: usize) -> Budget {
        let outer = BUDGET.with(|b| b.replace(Some((max, max, false))));
        Budget { outer }
    }

    /// Bytes charged so far.
    pub(crate) fn used(&self) -> usize {
        BUDGET.with(|b| b.get().map_or(0, |(left, max, _)| max - left))
    }

    /// Whether a charge was refused.
    pub(crate) fn exceeded(&self) -> bool {
        BUDGET.with(|b| b.get().is_some_and(|(_, _, over)| over))
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        BUDGET.with(|b| b.set(self.outer));
    }
}

/// Runs `decode` with a budget of `max` bytes for what decoding produces
/// beyond its input (inflated sections, decoded collections), for decoders
/// outside this crate (the relay's wire frames); returns its result, or
/// [`DecodeError::DecodedTooLarge`] if the budget ran out.
///
/// ```
/// use weft_core::{codec, DecodeError, VersionVector, ReplicaId};
/// let v: VersionVector = (1..=1000).map(|r| (ReplicaId::new(r), 1)).collect();
/// let bytes = postcard::to_allocvec(&v).unwrap();
/// let small = codec::with_budget(1024, || postcard::from_bytes::<VersionVector>(&bytes));
/// assert_eq!(small.unwrap_err(), DecodeError::DecodedTooLarge { max: 1024 });
/// let fine = codec::with_budget(1 << 20, || postcard::from_bytes::<VersionVector>(&bytes));
/// assert_eq!(fine.unwrap().unwrap().len(), 1000);
/// ```
pub fn with_budget<T, E>(
    max: usize,
    decode: impl FnOnce() -> Result<T, E>,
) -> Result<Result<T, E>, DecodeError> {
    let budget = Budget::enter(max);
    let result = decode();
    if budget.exceeded() {
        return Err(DecodeError::DecodedTooLarge { max });
    }
    Ok(result)
}

/// What one decoded collection element is charged: its size plus the
/// bookkeeping of the collection holding it.
pub(crate) fn element_cost<T>() -> usize {
    std::mem::size_of::<T>() + 16
}

/// A vector whose elements are charged to the decode's budget as they are
/// decoded, so a long sequence of tiny encodings cannot become a huge
/// allocation (use with `#[serde(deserialize_with = "codec::charged")]`).
pub(crate) fn charged<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    struct Visit<T>(std::marker::PhantomData<T>);
    impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Visit<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a sequence")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            loop {
                charge(element_cost::<T>()).map_err(serde::de::Error::custom)?;
                match seq.next_element()? {
                    Some(v) => out.push(v),
                    None => return Ok(out),
                }
            }
        }
    }
    d.deserialize_seq(Visit(std::marker::PhantomData))
}

/// Charges `n` bytes about to be produced by decompression against the
/// current decode's budget (the default limit when no decode set one).
/// Call before allocating them.
pub(crate) fn charge(n: usize) -> Result<(), DecodeError> {
    BUDGET.with(|b| {
        let Some((left, max, _)) = b.get() else {
            // No decode set a budget (a blob decoded on its own): each
            // charge is bounded by the default limit.
            return if n > DEFAULT_MAX_BYTES {
                Err(DecodeError::DecodedTooLarge {
                    max: DEFAULT_MAX_BYTES,
                })
            } else {
                Ok(())
            };
        };
        if n > left {
            b.set(Some((left, max, true)));
            return Err(DecodeError::DecodedTooLarge { max });
        }
        b.set(Some((left - n, max, false)));
        Ok(())
    })
}

/// Validates the header and returns the body.
fn check_header<'a>(
    bytes: &'a [u8],
    kind: u8,
    name: &'static str,
    max_bytes: usize,
) -> Result<&'a [u8], DecodeError> {
    if bytes.len() > max_bytes {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: max_bytes,
        });
    }
    if bytes.len() < HEADER_LEN {
        return Err(DecodeError::Truncated(bytes.len()));
    }
    if bytes[..4] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if bytes[4] == 0 || bytes[4] > FORMAT_VERSION {
        return Err(DecodeError::UnsupportedVersion {
            found: bytes[4],
            supported: FORMAT_VERSION,
        });
    }
    if bytes[5] != kind {
        return Err(DecodeError::WrongKind {
            expected: name,
            found: bytes[5],
        });
    }
    Ok(&bytes[HEADER_LEN..])
}

/// Kind tags. Stable: a tag is never reused for another type.
pub mod kind {
    /// [`crate::VersionVector`]
    pub const VERSION_VECTOR: u8 = 1;
    /// [`crate::DotSet`]
    pub const DOT_SET: u8 = 2;
    /// [`crate::GCounter`]
    pub const G_COUNTER: u8 = 3;
    /// [`crate::PnCounter`]
    pub const PN_COUNTER: u8 = 4;
    /// [`crate::OrSet`]
    pub const OR_SET: u8 = 5;
    /// [`crate::LwwRegister`]
    pub const LWW_REGISTER: u8 = 6;
    /// [`crate::MvRegister`]
    pub const MV_REGISTER: u8 = 7;
    /// [`crate::LwwMap`]
    pub const LWW_MAP: u8 = 8;
    /// [`crate::OrSetDelta`]
    pub const OR_SET_DELTA: u8 = 9;
    /// [`crate::Text`]
    pub const TEXT: u8 = 10;
    /// [`crate::TextDelta`]
    pub const TEXT_DELTA: u8 = 11;
    /// A document update ([`crate::Doc::diff`], [`crate::doc::Transaction::commit`])
    pub const DOC_UPDATE: u8 = 12;
    /// A document snapshot ([`crate::Doc::save`])
    pub const DOC_SNAPSHOT: u8 = 13;
    /// A relay wire frame (`weft_protocol::Frame`, defined outside this crate)
    pub const PROTOCOL_FRAME: u8 = 14;
    /// [`crate::List`]
    pub const LIST: u8 = 15;
    /// [`crate::ListDelta`]
    pub const LIST_DELTA: u8 = 16;
}

impl Encode for crate::VersionVector {
    const KIND: u8 = kind::VERSION_VECTOR;
    const NAME: &'static str = "VersionVector";
}

impl Encode for crate::DotSet {
    const KIND: u8 = kind::DOT_SET;
    const NAME: &'static str = "DotSet";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ReplicaId, VersionVector};

    fn sample() -> Vec<u8> {
        let mut v = VersionVector::new();
        v.increment(ReplicaId::new(3));
        encode(&v)
    }

    #[test]
    fn header_errors_are_typed() {
        let good = sample();
        assert!(decode::<VersionVector>(&good).is_ok());
        assert_eq!(
            decode::<VersionVector>(&good[..3]),
            Err(DecodeError::Truncated(3))
        );
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(decode::<VersionVector>(&bad), Err(DecodeError::BadMagic));
        let mut newer = good.clone();
        newer[4] = FORMAT_VERSION + 1;
        assert!(matches!(
            decode::<VersionVector>(&newer),
            Err(DecodeError::UnsupportedVersion { .. })
        ));
        assert!(matches!(
            decode::<crate::DotSet>(&good),
            Err(DecodeError::WrongKind { .. })
        ));
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            decode::<VersionVector>(&long),
            Err(DecodeError::TrailingBytes(1))
        );
        assert!(matches!(
            decode_with_limit::<VersionVector>(&good, 4),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}
