//! The keyed digest of a job's payload, kept beside its idempotency key so that a repeated
//! key can be told apart: the same payload is the same request (the first job is returned),
//! another payload is a conflict (refused).
//!
//! HMAC-SHA256 under a key derived from the encryption key, never a plain hash: a payload
//! holds passwords, and a plain hash of a guessable payload could be checked offline by
//! anyone who reads Redis. Truncated to 128 bits, which is plenty to tell two payloads of
//! one key apart. While keys rotate (`ONBOARD_ENCRYPTION_KEY=new,old`) a digest made with
//! any configured key matches; `rekey` re-digests the stored ones with the first.

use super::cipher::{keys_from_config, CipherError};
use crate::config::Config;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What the digest key is derived for: a key used for nothing else.
const PURPOSE: &[u8] = b"onboard/idempotency-payload-digest/v1";

/// Digests payloads under keys derived from the encryption keys, the sealing one first.
#[derive(Clone)]
pub(crate) struct PayloadDigest {
    keys: Vec<[u8; 32]>,
}

impl std::fmt::Debug for PayloadDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PayloadDigest([redacted])")
    }
}

impl PayloadDigest {
    /// The digest key for the configuration's encryption key.
    pub(crate) fn from_config(cfg: &Config) -> Result<PayloadDigest, CipherError> {
        Ok(PayloadDigest::from_keys(&keys_from_config(cfg)?))
    }

    fn from_keys(encryption_keys: &[[u8; 32]]) -> PayloadDigest {
        let keys = encryption_keys
            .iter()
            .map(|k| {
                // HMAC as the key derivation function (HKDF's expand step with one block).
                let mut mac = mac(k);
                mac.update(PURPOSE);
                mac.finalize().into_bytes().into()
            })
            .collect();
        PayloadDigest { keys }
    }

    /// The digest of `payload` (the job's JSON) under the first key, 16 bytes.
    pub(crate) fn of(&self, payload: &[u8]) -> [u8; 16] {
        digest(&self.keys[0], payload)
    }

    /// The digests of `payload` under every key, 16 bytes each, the first key's first:
    /// what `enqueue.lua` compares a stored digest with.
    pub(crate) fn all_of(&self, payload: &[u8]) -> Vec<u8> {
        self.keys.iter().flat_map(|k| digest(k, payload)).collect()
    }

    /// Whether `stored` is the digest of `payload` under any key.
    pub(crate) fn matches(&self, stored: &[u8], payload: &[u8]) -> bool {
        self.keys.iter().any(|k| digest(k, payload) == stored)
    }
}

fn digest(key: &[u8; 32], payload: &[u8]) -> [u8; 16] {
    let mut mac = mac(key);
    mac.update(payload);
    let mut out = [0; 16];
    out.copy_from_slice(&mac.finalize().into_bytes()[..16]);
    out
}

fn mac(key: &[u8; 32]) -> HmacSha256 {
    // HMAC takes a key of any length; 32 bytes cannot be refused.
    <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts any key length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_keyed_and_tell_payloads_apart() {
        let a = PayloadDigest::from_keys(&[[1; 32]]);
        let b = PayloadDigest::from_keys(&[[2; 32]]);
        assert_eq!(a.of(b"{\"x\":1}"), a.of(b"{\"x\":1}"));
        assert_ne!(a.of(b"{\"x\":1}"), a.of(b"{\"x\":2}"));
        assert_ne!(
            a.of(b"{\"x\":1}"),
            b.of(b"{\"x\":1}"),
            "another key, another digest"
        );
        assert_eq!(a.of(b"").len(), 16);
        let rotating = PayloadDigest::from_keys(&[[2; 32], [1; 32]]);
        assert!(
            rotating.matches(&a.of(b"p"), b"p"),
            "an old key's digest matches"
        );
        assert_eq!(rotating.all_of(b"p"), [b.of(b"p"), a.of(b"p")].concat());
        // Not a plain hash of the payload.
        use sha2::Digest;
        let plain = Sha256::digest(b"{\"x\":1}");
        assert_ne!(a.of(b"{\"x\":1}"), plain[..16]);
    }
}
