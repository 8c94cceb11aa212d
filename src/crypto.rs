//! Sealing and opening provider keys with AES-256-GCM, plus the small secret-handling helpers (tokens,
//! constant-time comparison, masking). Plaintext keys exist only in memory, only for the call that needs them.

use crate::provider_key::KeyId;
use std::fmt;

use aes_gcm::aead::rand_core::RngCore;
use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};

use crate::hex;

/// A sealed secret: the random nonce and the ciphertext (with its tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// 96-bit nonce, fresh per sealing.
    pub nonce: [u8; 12],
    /// Ciphertext followed by the 16-byte tag.
    pub ciphertext: Vec<u8>,
}

/// Opening failed: wrong key, wrong associated data, or tampered data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoError;

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the data could not be decrypted with this ENCRYPTION_KEY")
    }
}

impl std::error::Error for CryptoError {}

/// Seals and opens secrets under the instance's ENCRYPTION_KEY.
pub struct Cipher {
    aead: Aes256Gcm,
}

impl Cipher {
    /// A cipher for a 256-bit key.
    pub fn new(key: &[u8; 32]) -> Cipher {
        Cipher {
            aead: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
        }
    }

    /// Encrypts `plaintext` bound to `aad` under a fresh random nonce.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Sealed {
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let ciphertext = self
            .aead
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .unwrap_or_default();
        Sealed { nonce, ciphertext }
    }

    /// Decrypts a sealed UTF-8 secret; fails on a wrong key, wrong `aad` or tampering.
    pub fn open(&self, nonce: &[u8], ciphertext: &[u8], aad: &[u8]) -> Result<String, CryptoError> {
        if nonce.len() != 12 {
            return Err(CryptoError);
        }
        let plain = self
            .aead
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| CryptoError)?;
        String::from_utf8(plain).map_err(|_| CryptoError)
    }
}

/// Associated data binding a sealed provider key to its row id and platform, so rows cannot be swapped.
pub fn key_aad(id: KeyId, platform: &str) -> Vec<u8> {
    format!("freellmapi:key:{id}:{platform}").into_bytes()
}

/// A fresh random AES-256 key.
pub fn generate_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    key
}

/// A fresh unified API key: `freellmapi-` and 48 hex characters.
pub fn generate_unified_key() -> String {
    format!("freellmapi-{}", random_hex(24))
}

/// `bytes` random bytes from the operating system, as hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsRng.fill_bytes(&mut buf);
    hex::encode(&buf)
}

/// Compares secrets without an early exit on the first differing byte.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Shows at most the last 4 characters of a secret, fewer for short ones, never most of it.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    let shown = match chars.len() {
        0..=5 => 0,
        6..=11 => 2,
        _ => 4,
    };
    let tail: String = chars[chars.len() - shown..].iter().collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_with_fresh_nonces() {
        let c = Cipher::new(&generate_key());
        let a = c.seal(b"gsk_secret", b"ad");
        let b = c.seal(b"gsk_secret", b"ad");
        assert_ne!(a.nonce, b.nonce);
        assert_eq!(
            c.open(&a.nonce, &a.ciphertext, b"ad").unwrap(),
            "gsk_secret"
        );
    }

    #[test]
    fn wrong_key_or_aad_fails() {
        let c = Cipher::new(&generate_key());
        let s = c.seal(b"gsk_secret", &key_aad(KeyId(1), "groq"));
        assert!(Cipher::new(&generate_key())
            .open(&s.nonce, &s.ciphertext, &key_aad(KeyId(1), "groq"))
            .is_err());
        assert!(c
            .open(&s.nonce, &s.ciphertext, &key_aad(KeyId(2), "groq"))
            .is_err());
        assert!(c
            .open(&s.nonce[..8], &s.ciphertext, &key_aad(KeyId(1), "groq"))
            .is_err());
    }

    #[test]
    fn unified_keys_have_the_contract_shape() {
        let k = generate_unified_key();
        assert!(k.starts_with("freellmapi-"));
        assert_eq!(k.len(), "freellmapi-".len() + 48);
        assert_ne!(k, generate_unified_key());
    }

    #[test]
    fn masking_never_reveals_most_of_a_key() {
        assert_eq!(mask("gsk_abcdefghijklmnop"), "…mnop");
        assert_eq!(mask("abcdefgh"), "…gh");
        assert_eq!(mask("abc"), "…");
        assert_eq!(mask(""), "…");
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
