//! Record framing: format version, kind, length, optional seal, checksum.
//!
//! Every stored blob — log entry or snapshot — is one record:
//!
//! ```text
//! offset  size  field
//! 0       1     record format version (1)
//! 1       1     kind: 1 = update, 2 = snapshot
//! 2       1     flags: bit 0 = sealed (encrypted); other bits must be 0
//! 3       1     reserved, 0
//! 4       4     payload length n, u32 little-endian
//! 8       n     payload: plain bytes, or nonce(24) ‖ ciphertext ‖ tag(16)
//! 8+n     4     CRC-32 (IEEE), u32 little-endian
//! ```
//!
//! The CRC covers `len(doc_id) as u32 LE ‖ doc_id ‖ seq as u64 LE ‖ bytes
//! 0..8+n`: it detects any change to the stored bytes and also a record
//! moved to another document or sequence number. A sealed record's AEAD
//! associated data is `"weft-persist record v1" ‖ the same doc/seq prefix ‖
//! header bytes 0..8`, which authenticates the same binding against a
//! deliberate attacker (the CRC only catches accidents).

use crate::crypto::{Cipher, NONCE_LEN, TAG_LEN};
use crate::error::{RecordError, RecordKind};
use crate::Result;

/// The record format version this build writes and the highest it reads.
pub const RECORD_VERSION: u8 = 1;
/// Fixed header length.
const HEADER_LEN: usize = 8;
/// Checksum trailer length.
const CRC_LEN: usize = 4;
const FLAG_SEALED: u8 = 0b1;
const AAD_PREFIX: &[u8] = b"weft-persist record v1";

/// Frames and unframes records, sealing them when the store has a key.
#[derive(Clone, Debug)]
pub(crate) struct RecordCodec {
    cipher: Option<Cipher>,
}

/// `len(doc_id) ‖ doc_id ‖ seq`: what binds a record to its place.
fn binding(doc_id: &str, seq: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(12 + doc_id.len());
    // Document ids are at most 256 bytes (doc_id.rs), so this never truncates.
    b.extend_from_slice(&(doc_id.len() as u32).to_le_bytes());
    b.extend_from_slice(doc_id.as_bytes());
    b.extend_from_slice(&seq.to_le_bytes());
    b
}

fn checksum(binding: &[u8], framed: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(binding);
    h.update(framed);
    h.finalize()
}

fn aad(binding: &[u8], header: &[u8]) -> Vec<u8> {
    let mut a = Vec::with_capacity(AAD_PREFIX.len() + binding.len() + header.len());
    a.extend_from_slice(AAD_PREFIX);
    a.extend_from_slice(binding);
    a.extend_from_slice(header);
    a
}

impl RecordCodec {
    pub(crate) fn new(cipher: Option<Cipher>) -> Self {
        RecordCodec { cipher }
    }

    /// Frames `payload` as record `seq` of `doc_id`.
    pub(crate) fn seal(
        &self,
        doc_id: &str,
        kind: RecordKind,
        seq: u64,
        payload: &[u8],
    ) -> Result<Vec<u8>> {
        let bind = binding(doc_id, seq);
        let sealed = self.cipher.is_some();
        let body_len = payload.len() + if sealed { NONCE_LEN + TAG_LEN } else { 0 };
        let declared = u32::try_from(body_len)
            .map_err(|_| crate::Error::Io(std::io::Error::other("record payload over 4 GiB")))?;
        let mut out = Vec::with_capacity(HEADER_LEN + body_len + CRC_LEN);
        out.push(RECORD_VERSION);
        out.push(kind.tag());
        out.push(if sealed { FLAG_SEALED } else { 0 });
        out.push(0);
        out.extend_from_slice(&declared.to_le_bytes());
        match &self.cipher {
            Some(c) => {
                let aad = aad(&bind, &out[..HEADER_LEN]);
                c.seal_into(payload, &aad, &mut out)?;
            }
            None => out.extend_from_slice(payload),
        }
        let crc = checksum(&bind, &out);
        out.extend_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    /// Verifies and unframes record `seq` of `doc_id`, returning its payload.
    pub(crate) fn open(
        &self,
        doc_id: &str,
        kind: RecordKind,
        seq: u64,
        record: &[u8],
    ) -> Result<Vec<u8>, RecordError> {
        let min = HEADER_LEN + CRC_LEN;
        if record.len() < min {
            return Err(RecordError::TooShort {
                len: record.len(),
                min,
            });
        }
        if record[0] > RECORD_VERSION || record[0] == 0 {
            return Err(RecordError::UnsupportedVersion {
                found: record[0],
                supported: RECORD_VERSION,
            });
        }
        let declared = u32::from_le_bytes([record[4], record[5], record[6], record[7]]) as usize;
        let actual = record.len() - min;
        if declared != actual {
            return Err(RecordError::LengthMismatch { declared, actual });
        }
        let (framed, crc) = record.split_at(record.len() - CRC_LEN);
        let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
        let bind = binding(doc_id, seq);
        let computed = checksum(&bind, framed);
        if stored != computed {
            return Err(RecordError::Checksum { stored, computed });
        }
        if record[1] != kind.tag() {
            return Err(RecordError::WrongKind {
                expected: kind.tag(),
                found: record[1],
            });
        }
        let flags = record[2];
        if flags & !FLAG_SEALED != 0 || record[3] != 0 {
            return Err(RecordError::UnknownFlags(flags));
        }
        let sealed = flags & FLAG_SEALED != 0;
        let body = &framed[HEADER_LEN..];
        match (&self.cipher, sealed) {
            (None, false) => Ok(body.to_vec()),
            (Some(c), true) => c
                .open(body, &aad(&bind, &framed[..HEADER_LEN]))
                .ok_or(RecordError::Authentication),
            _ => Err(RecordError::SealMismatch { sealed }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EncryptionKey;

    #[test]
    fn round_trip_plain_and_sealed() {
        for codec in [
            RecordCodec::new(None),
            RecordCodec::new(Some(Cipher::new(&EncryptionKey::from_bytes([1; 32])))),
        ] {
            let r = codec.seal("d", RecordKind::Update, 7, b"hello").unwrap();
            assert_eq!(
                codec.open("d", RecordKind::Update, 7, &r).unwrap(),
                b"hello"
            );
            // Bound to doc, seq and kind.
            assert!(matches!(
                codec.open("e", RecordKind::Update, 7, &r),
                Err(RecordError::Checksum { .. })
            ));
            assert!(matches!(
                codec.open("d", RecordKind::Update, 8, &r),
                Err(RecordError::Checksum { .. })
            ));
            assert!(matches!(
                codec.open("d", RecordKind::Snapshot, 7, &r),
                Err(RecordError::WrongKind { .. })
            ));
            // Every single-byte change is caught.
            for i in 0..r.len() {
                let mut bad = r.clone();
                bad[i] ^= 0x40;
                assert!(
                    codec.open("d", RecordKind::Update, 7, &bad).is_err(),
                    "byte {i}"
                );
            }
            for cut in 0..r.len() {
                assert!(codec.open("d", RecordKind::Update, 7, &r[..cut]).is_err());
            }
        }
    }

    #[test]
    fn plain_layout_is_as_documented() {
        let r = RecordCodec::new(None)
            .seal("doc", RecordKind::Snapshot, 3, b"abc")
            .unwrap();
        assert_eq!(&r[..8], &[1, 2, 0, 0, 3, 0, 0, 0]);
        assert_eq!(&r[8..11], b"abc");
        assert_eq!(r.len(), 15);
    }

    #[test]
    fn sealed_with_a_forged_checksum_fails_authentication() {
        let codec = RecordCodec::new(Some(Cipher::new(&EncryptionKey::from_bytes([2; 32]))));
        let mut r = codec.seal("d", RecordKind::Update, 1, b"secret").unwrap();
        assert!(!r.windows(6).any(|w| w == b"secret"), "ciphertext only");
        let n = r.len();
        r[n - 6] ^= 1; // a ciphertext byte
        let crc = checksum(&binding("d", 1), &r[..n - 4]);
        r[n - 4..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            codec.open("d", RecordKind::Update, 1, &r),
            Err(RecordError::Authentication)
        );
    }
}
