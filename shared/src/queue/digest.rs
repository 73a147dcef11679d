//! The keyed digest of a job's payload, kept beside its idempotency key so that a repeated
//! key can be told apart: the same payload is the same request (the first job is returned),
//! another payload is a conflict (refused).
//!
//! HMAC-SHA256 under a key derived from the encryption key, never a plain hash: a payload
//! holds passwords, and a plain hash of a guessable payload could be checked offline by
//! anyone who reads Redis. Truncated to 128 bits, which is plenty to tell two payloads of
//! one key apart.

use super::cipher::{key_from_config, CipherError};
use crate::config::Config;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// What the digest key is derived for: a key used for nothing else.
const PURPOSE: &[u8] = b"onboard/idempotency-payload-digest/v1";

/// Digests payloads under one derived key.
#[derive(Clone)]
pub(crate) struct PayloadDigest {
    key: [u8; 32],
}

impl std::fmt::Debug for PayloadDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PayloadDigest([redacted])")
    }
}

impl PayloadDigest {
    /// The digest key for the configuration's encryption key.
    pub(crate) fn from_config(cfg: &Config) -> Result<PayloadDigest, CipherError> {
        Ok(PayloadDigest::from_key(&key_from_config(cfg)?))
    }

    fn from_key(encryption_key: &[u8; 32]) -> PayloadDigest {
        // HMAC as the key derivation function (HKDF's expand step with one block).
        let mut mac = mac(encryption_key);
        mac.update(PURPOSE);
        PayloadDigest {
            key: mac.finalize().into_bytes().into(),
        }
    }

    /// The digest of `payload` (the job's JSON), as 32 hex characters.
    pub(crate) fn of(&self, payload: &[u8]) -> String {
        let mut mac = mac(&self.key);
        mac.update(payload);
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
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
        let a = PayloadDigest::from_key(&[1; 32]);
        let b = PayloadDigest::from_key(&[2; 32]);
        assert_eq!(a.of(b"{\"x\":1}"), a.of(b"{\"x\":1}"));
        assert_ne!(a.of(b"{\"x\":1}"), a.of(b"{\"x\":2}"));
        assert_ne!(
            a.of(b"{\"x\":1}"),
            b.of(b"{\"x\":1}"),
            "another key, another digest"
        );
        assert_eq!(a.of(b"").len(), 32);
        // Not a plain hash of the payload.
        use sha2::Digest;
        let plain = hex::encode(&Sha256::digest(b"{\"x\":1}")[..16]);
        assert_ne!(a.of(b"{\"x\":1}"), plain);
    }
}
