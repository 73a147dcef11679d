//! Idempotency keys as Redis holds them: a waiting backlog of a million keyed jobs must fit
//! in 300 bytes a job, and a top-level string key per idempotency key took about 200.
//!
//! A key is hashed with its kind (SHA-256, the first 16 bytes: natural keys such as e-mails
//! never appear in Redis), and the hash is a field of one of the queue's [`BUCKETS`] small
//! hashes, `idem:<bucket>` (the hash's first 15 bits, 4 hex digits). Up to 128 entries a
//! bucket (about 4 million keys a queue) keep Redis's compact listpack encoding, about 70
//! bytes an entry. The value is `<first job id>|<payload digest>` (the id without its
//! kind's prefix, `cust_`, which the queue implies; the digest from `queue::digest`, 16
//! bytes).
//!
//! A key lives exactly as long as its job (DESIGN.md). Hash fields have no TTL of their own
//! on Redis 7.0, so instead of an expiry an entry is held while its job exists: waiting in
//! the `pending` hash, or with a record (which expires with the retention once the job
//! finished). A lookup that finds an entry whose job is gone counts it as absent
//! (`idem_holder_lives` in `scripts/idempotency.lua`), so finishing a job writes nothing here,
//! and `sweep_idem.lua`, run by the worker's idempotency sweeper, deletes such entries a
//! few buckets at a time.
//!
//! Keys written before the buckets, top-level `idem:<32 hex digits>` strings with a TTL,
//! are read too on a queue that existed before them (`older_idem_value` in
//! `scripts/idempotency.lua`); they expire with their jobs.

use crate::jobs::JobKind;
use crate::queue::ids::id_prefix;

/// Buckets per queue (`scripts/idempotency.lua` holds the same number).
pub const BUCKETS: u16 = 32_768;

/// The stored hash of idempotency key `key` of `kind`.
pub(crate) fn hash(kind: JobKind, key: &str) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{}\0{}", kind.as_str(), key).as_bytes());
    let mut out = [0; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// One entry's value, split: `<first id without its kind's prefix>|<digest>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The job that holds the key (its full id).
    pub first_id: String,
    /// Its payload's digest; `None` when stored without one (matches any payload).
    pub digest: Option<Vec<u8>>,
    /// The id as stored.
    stored_id: Vec<u8>,
    /// The rest of the value after the digest (nothing, as written today).
    tail: Vec<u8>,
}

impl Entry {
    /// Splits a value stored in `kind`'s queue; `None` when it names no job.
    pub(crate) fn parse(kind: JobKind, raw: &[u8]) -> Option<Entry> {
        let bar = raw.iter().position(|b| *b == b'|').unwrap_or(raw.len());
        let stored_id = raw[..bar].to_vec();
        let id = std::str::from_utf8(&stored_id).ok()?;
        if id.is_empty() {
            return None;
        }
        let first_id = if id.contains('_') {
            id.to_string()
        } else {
            format!("{}_{id}", id_prefix(kind))
        };
        let rest = raw.get(bar + 1..).unwrap_or_default();
        let (digest, tail) = rest.split_at(rest.len().min(16));
        Some(Entry {
            first_id,
            digest: (!digest.is_empty()).then(|| digest.to_vec()),
            stored_id,
            tail: tail.to_vec(),
        })
    }

    /// The value with another digest, the rest kept.
    pub(crate) fn with_digest(&self, digest: &[u8]) -> Vec<u8> {
        [&self.stored_id[..], b"|", digest, &self.tail].concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hash_per_kind() {
        let a = hash(JobKind::CreateCustomer, "c1");
        assert_ne!(a, hash(JobKind::RegisterUser, "c1"));
        assert_ne!(a, hash(JobKind::CreateCustomer, "c2"));
    }

    #[test]
    fn entries_split_with_a_binary_digest() {
        let digest = [b'|'; 16];
        let raw = [&b"01ABC|"[..], &digest, b"|1796240392002"].concat();
        let e = Entry::parse(JobKind::CreateCustomer, &raw).unwrap();
        assert_eq!(e.first_id, "cust_01ABC");
        assert_eq!(e.digest.as_deref(), Some(&digest[..]));
        assert_eq!(
            e.with_digest(&[1; 16]),
            [&b"01ABC|"[..], &[1; 16], b"|1796240392002"].concat()
        );
        let full = Entry::parse(JobKind::RegisterUser, b"user_01X").unwrap();
        assert_eq!((full.first_id.as_str(), full.digest), ("user_01X", None));
        assert_eq!(
            Entry::parse(JobKind::RegisterUser, b"01X|").unwrap().digest,
            None
        );
        assert_eq!(Entry::parse(JobKind::RegisterUser, b""), None);
    }
}
