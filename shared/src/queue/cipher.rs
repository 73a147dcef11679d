//! Encryption at rest: every job payload, verify code and result is sealed with
//! AES-256-GCM before it is written to Redis, so passwords, codes and returned app secrets
//! never rest there in clear.
//!
//! A sealed value is `nonce (12 bytes) || ciphertext+tag`. Keys are 32 bytes, given as
//! base64 in `ONBOARD_ENCRYPTION_KEY`; a comma-separated list rotates keys: the first seals,
//! every one opens (`onboard-producer rekey` then re-seals what rests in Redis with the
//! first). Only the sandbox profile may run without a key (it then uses a fixed, public
//! development key). Each key has a check value, a short HMAC of a fixed text, which the
//! store keeps in Redis so a process with the wrong key refuses to start.

use crate::config::{Config, Profile};
use aes_gcm::aead::{Aead, AeadCore, KeyInit};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The development key used by the sandbox profile when no key is configured. Public: it
/// protects nothing of value, by design.
const SANDBOX_KEY: &[u8; 32] = b"onboard-sandbox-development-key!";

/// Nonce and tag: no sealed value is shorter.
const OVERHEAD: usize = 12 + 16;

/// Why a value could not be sealed or opened, or a key is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CipherError {
    /// No key outside the sandbox profile.
    #[error("ONBOARD_ENCRYPTION_KEY is required outside the sandbox profile (32 bytes, base64; e.g. `openssl rand -base64 32`)")]
    MissingKey,
    /// A key is not base64 of 32 bytes.
    #[error(
        "ONBOARD_ENCRYPTION_KEY: key {position} of the list is not base64 of exactly 32 bytes"
    )]
    BadKey {
        /// 1-based position in the comma-separated list.
        position: usize,
    },
    /// Nothing is stored where a sealed value should be.
    #[error("missing (empty)")]
    Empty,
    /// What is stored is too short to be a sealed value.
    #[error("not an encrypted value (only {0} bytes)")]
    NotSealed(usize),
    /// No configured key opens it: it was altered, or sealed with a key not configured.
    #[error("does not decrypt with any configured key: corrupted, or sealed with another key")]
    Open,
}

/// One key and its check value.
#[derive(Clone)]
struct SealingKey {
    aead: Aes256Gcm,
    check: String,
}

/// Seals with the first key, opens with any.
#[derive(Clone)]
pub struct Cipher {
    keys: Vec<SealingKey>,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher([redacted])")
    }
}

/// The 32-byte keys the configuration asks for, the sealing one first (also what payload
/// digests derive theirs from: `queue::digest`).
pub(crate) fn keys_from_config(cfg: &Config) -> Result<Vec<[u8; 32]>, CipherError> {
    match (&cfg.encryption_key, cfg.profile) {
        (Some(keys), _) if !keys.is_empty() => keys_from_base64_list(keys.expose()),
        (_, Profile::Sandbox) => Ok(vec![*SANDBOX_KEY]),
        _ => Err(CipherError::MissingKey),
    }
}

/// Base64 keys separated by commas.
fn keys_from_base64_list(list: &str) -> Result<Vec<[u8; 32]>, CipherError> {
    list.split(',')
        .enumerate()
        .map(|(i, text)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| CipherError::BadKey { position: i + 1 })?;
            bytes
                .try_into()
                .map_err(|_| CipherError::BadKey { position: i + 1 })
        })
        .collect()
}

impl Cipher {
    /// The cipher the configuration asks for.
    pub fn from_config(cfg: &Config) -> Result<Cipher, CipherError> {
        Ok(Cipher::from_keys(&keys_from_config(cfg)?))
    }

    /// A cipher from base64 keys separated by commas; the first seals.
    pub fn from_base64_list(list: &str) -> Result<Cipher, CipherError> {
        Ok(Cipher::from_keys(&keys_from_base64_list(list)?))
    }

    fn from_keys(keys: &[[u8; 32]]) -> Cipher {
        Cipher {
            keys: keys
                .iter()
                .map(|k| SealingKey {
                    aead: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(k)),
                    check: check_value(k),
                })
                .collect(),
        }
    }

    /// The check value of the key that seals.
    pub fn sealing_check(&self) -> &str {
        &self.keys[0].check
    }

    /// The check values of every key this cipher opens with.
    pub fn checks(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.check.as_str())
    }

    /// Encrypts `plain` with the first key under a fresh random nonce.
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        // The thread's CSPRNG (ChaCha, seeded and reseeded from the OS) rather than OsRng:
        // one getrandom system call per sealed value was a tenth of a backfill's CPU time.
        let nonce = Aes256Gcm::generate_nonce(&mut rand::thread_rng());
        // Encryption with a valid key and nonce cannot fail for in-memory buffers.
        let sealed = self.keys[0]
            .aead
            .encrypt(&nonce, plain)
            .expect("AES-GCM encryption of an in-memory buffer");
        let mut out = Vec::with_capacity(12 + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Decrypts a value sealed by [`Cipher::seal`] with any of the keys.
    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, CipherError> {
        self.open_with_index(sealed).map(|(plain, _)| plain)
    }

    /// Decrypts, and says whether the sealing key (the first) opened it.
    pub fn open_checked(&self, sealed: &[u8]) -> Result<(Vec<u8>, bool), CipherError> {
        self.open_with_index(sealed)
            .map(|(plain, i)| (plain, i == 0))
    }

    fn open_with_index(&self, sealed: &[u8]) -> Result<(Vec<u8>, usize), CipherError> {
        if sealed.is_empty() {
            return Err(CipherError::Empty);
        }
        if sealed.len() < OVERHEAD {
            return Err(CipherError::NotSealed(sealed.len()));
        }
        let (nonce, body) = sealed.split_at(12);
        self.keys
            .iter()
            .enumerate()
            .find_map(|(i, k)| {
                k.aead
                    .decrypt(Nonce::from_slice(nonce), body)
                    .ok()
                    .map(|p| (p, i))
            })
            .ok_or(CipherError::Open)
    }
}

/// A key's check value: the first 8 bytes, in hex, of an HMAC-SHA256 of a fixed text. It
/// tells keys apart without revealing anything of them.
fn check_value(key: &[u8; 32]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(b"onboard encryption key check v1");
    hex::encode(&mac.finalize().into_bytes()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    const B: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

    #[test]
    fn round_trip_and_tamper_detection() {
        let c = Cipher::from_base64_list(A).unwrap();
        let sealed = c.seal(b"secret payload");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(c.open(&sealed).unwrap(), b"secret payload");
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(c.open(&bad), Err(CipherError::Open));
        assert_eq!(c.open(b"garbage"), Err(CipherError::NotSealed(7)));
        assert_eq!(c.open(b""), Err(CipherError::Empty));
    }

    #[test]
    fn the_first_key_seals_and_every_key_opens() {
        let old = Cipher::from_base64_list(A).unwrap();
        let rotated = Cipher::from_base64_list(&format!("{B}, {A}")).unwrap();
        let sealed_old = old.seal(b"x");
        assert_eq!(
            rotated.open_checked(&sealed_old).unwrap(),
            (b"x".to_vec(), false)
        );
        let sealed_new = rotated.seal(b"y");
        assert_eq!(
            rotated.open_checked(&sealed_new).unwrap(),
            (b"y".to_vec(), true)
        );
        assert_eq!(old.open(&sealed_new), Err(CipherError::Open));
        assert_eq!(rotated.checks().count(), 2);
        assert_eq!(rotated.checks().nth(1), Some(old.sealing_check()));
        assert_ne!(rotated.sealing_check(), old.sealing_check());
    }

    #[test]
    fn key_rules() {
        assert_eq!(
            Cipher::from_base64_list("short").unwrap_err(),
            CipherError::BadKey { position: 1 }
        );
        assert_eq!(
            Cipher::from_base64_list(&format!("{A},nope")).unwrap_err(),
            CipherError::BadKey { position: 2 }
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
