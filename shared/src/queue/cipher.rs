//! Encryption at rest: every job payload, verify code and result is sealed with
//! AES-256-GCM before it is written to Redis, so passwords, codes and returned app secrets
//! never rest there in clear.
//!
//! A sealed value is `nonce (12 bytes) || ciphertext+tag`. The key is 32 bytes, given as
//! base64 in `ONBOARD_ENCRYPTION_KEY`; only the sandbox profile may run without one (it then
//! uses a fixed, public development key).

use crate::config::{Config, Profile};
use aes_gcm::aead::{Aead, AeadCore, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;

/// The development key used by the sandbox profile when no key is configured. Public: it
/// protects nothing of value, by design.
const SANDBOX_KEY: &[u8; 32] = b"onboard-sandbox-development-key!";

/// Why a value could not be sealed or opened, or the key is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CipherError {
    /// No key outside the sandbox profile.
    #[error("ONBOARD_ENCRYPTION_KEY is required outside the sandbox profile (32 bytes, base64; e.g. `openssl rand -base64 32`)")]
    MissingKey,
    /// The key is not base64 of 32 bytes.
    #[error("ONBOARD_ENCRYPTION_KEY must be base64 of exactly 32 bytes")]
    BadKey,
    /// The stored value is not something this key sealed.
    #[error("stored value does not decrypt with this key (wrong key or corrupted data)")]
    Open,
}

/// The 32-byte key the configuration asks for (also what payload digests derive theirs
/// from: `queue::digest`).
pub(crate) fn key_from_config(cfg: &Config) -> Result<[u8; 32], CipherError> {
    match (&cfg.encryption_key, cfg.profile) {
        (Some(key), _) if !key.is_empty() => key_from_base64(key.expose()),
        (_, Profile::Sandbox) => Ok(*SANDBOX_KEY),
        _ => Err(CipherError::MissingKey),
    }
}

fn key_from_base64(key: &str) -> Result<[u8; 32], CipherError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key.trim())
        .map_err(|_| CipherError::BadKey)?;
    bytes.try_into().map_err(|_| CipherError::BadKey)
}

/// Seals and opens values with one AES-256-GCM key.
#[derive(Clone)]
pub struct Cipher {
    aead: Aes256Gcm,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher([redacted])")
    }
}

impl Cipher {
    /// The cipher the configuration asks for.
    pub fn from_config(cfg: &Config) -> Result<Cipher, CipherError> {
        Ok(Cipher::from_bytes(&key_from_config(cfg)?))
    }

    /// A cipher from base64 of 32 bytes.
    pub fn from_base64(key: &str) -> Result<Cipher, CipherError> {
        Ok(Cipher::from_bytes(&key_from_base64(key)?))
    }

    fn from_bytes(key: &[u8; 32]) -> Cipher {
        Cipher {
            aead: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key)),
        }
    }

    /// Encrypts `plain` under a fresh random nonce.
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        // The thread's CSPRNG (ChaCha, seeded and reseeded from the OS) rather than OsRng:
        // one getrandom system call per sealed value was a tenth of a backfill's CPU time.
        let nonce = Aes256Gcm::generate_nonce(&mut rand::thread_rng());
        // Encryption with a valid key and nonce cannot fail for in-memory buffers.
        let sealed = self
            .aead
            .encrypt(&nonce, plain)
            .expect("AES-GCM encryption of an in-memory buffer");
        let mut out = Vec::with_capacity(12 + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts a value sealed by [`Cipher::seal`] with the same key.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, CipherError> {
        if sealed.len() < 12 + 16 {
            return Err(CipherError::Open);
        }
        let (nonce, body) = sealed.split_at(12);
        self.aead
            .decrypt(Nonce::from_slice(nonce), body)
            .map_err(|_| CipherError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let c = Cipher::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
        let sealed = c.seal(b"secret payload");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(c.open(&sealed).unwrap(), b"secret payload");
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(c.open(&bad), Err(CipherError::Open));
        assert_eq!(c.open(b"garbage"), Err(CipherError::Open));
    }

    #[test]
    fn key_rules() {
        assert_eq!(
            Cipher::from_base64("short").unwrap_err(),
            CipherError::BadKey
        );
        let mut cfg = Config::default();
        assert_eq!(
            Cipher::from_config(&cfg).unwrap_err(),
            CipherError::MissingKey
        );
        cfg.profile = Profile::Sandbox;
        assert!(Cipher::from_config(&cfg).is_ok());
    }
}
