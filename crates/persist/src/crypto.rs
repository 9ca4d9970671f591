//! Encryption at rest: XChaCha20-Poly1305 (RustCrypto `chacha20poly1305`).
//!
//! Each record is sealed under the application's 256-bit key with a fresh
//! random 192-bit nonce (random nonces are safe at this size: no counter to
//! persist, no reuse across processes). The associated data binds the
//! record to its document id, sequence number and header, so a sealed record
//! copied to another document or position fails to open. The store keeps one
//! sealed constant (the key check) so a wrong key is reported when the store
//! opens, before any record is read.

use crate::{Error, Result};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use std::fmt;

/// Nonce length of XChaCha20-Poly1305.
pub(crate) const NONCE_LEN: usize = 24;
/// Authentication tag length.
pub(crate) const TAG_LEN: usize = 16;

const KEY_CHECK_PLAINTEXT: &[u8] = b"weft-persist key check";
const KEY_CHECK_AAD: &[u8] = b"weft-persist key check v1";

/// A 256-bit key supplied by the application to encrypt a store.
///
/// Where the key lives (OS keychain, derived from a passphrase with a slow
/// KDF, ...) is the application's choice; the store never writes it.
///
/// ```
/// use weft_persist::EncryptionKey;
/// let key = EncryptionKey::from_bytes([7; 32]);
/// assert_eq!(format!("{key:?}"), "EncryptionKey(..)", "never printed");
/// let random = EncryptionKey::generate().unwrap();
/// assert_ne!(random.as_bytes(), key.as_bytes());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct EncryptionKey([u8; 32]);

impl EncryptionKey {
    /// A key from 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        EncryptionKey(bytes)
    }

    /// A new key from the operating system's random source.
    pub fn generate() -> Result<Self> {
        let mut bytes = [0u8; 32];
        random_bytes(&mut bytes)?;
        Ok(EncryptionKey(bytes))
    }

    /// The key's bytes, for the application to keep.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey(..)")
    }
}

/// Fills `buf` from the OS random source.
pub(crate) fn random_bytes(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|e| Error::Io(std::io::Error::other(e.to_string())))
}

/// A keyed cipher.
#[derive(Clone)]
pub(crate) struct Cipher(XChaCha20Poly1305);

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cipher(XChaCha20-Poly1305)")
    }
}

impl Cipher {
    pub(crate) fn new(key: &EncryptionKey) -> Self {
        Cipher(XChaCha20Poly1305::new(Key::from_slice(key.as_bytes())))
    }

    /// Appends `nonce ‖ ciphertext ‖ tag` of `msg` to `out`.
    pub(crate) fn seal_into(&self, msg: &[u8], aad: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce)?;
        let sealed = self
            .0
            .encrypt(XNonce::from_slice(&nonce), Payload { msg, aad })
            // Encryption fails only for messages beyond 256 GiB.
            .map_err(|_| Error::Io(std::io::Error::other("record too large to encrypt")))?;
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(())
    }

    /// Opens `nonce ‖ ciphertext ‖ tag`; `None` if it does not authenticate.
    pub(crate) fn open(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        self.0
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
            .ok()
    }

    /// The sealed constant stored when an encrypted store is created.
    pub(crate) fn key_check(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.seal_into(KEY_CHECK_PLAINTEXT, KEY_CHECK_AAD, &mut out)?;
        Ok(out)
    }

    /// Whether this cipher's key made `check`.
    pub(crate) fn verify_key_check(&self, check: &[u8]) -> bool {
        self.open(check, KEY_CHECK_AAD).as_deref() == Some(KEY_CHECK_PLAINTEXT)
    }
}
