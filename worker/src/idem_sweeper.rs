//! Gives back the memory of idempotency keys whose jobs' records have expired.
//!
//! Idempotency keys live as entries of small bucket hashes (`onboard_shared::queue`'s
//! `idempotency` module), and a hash field has no TTL of its own on Redis 7.0: an entry is
//! held while its job exists, and lookups count it as absent once the job's record has
//! expired. This step of the sweeper's round (`sweeper.rs`, every second) deletes such
//! entries: for each kind, one script call looks at [`BUCKETS_PER_TICK`] buckets from where
//! the last call of any worker stopped (the cursor is in Redis), so each call's work is
//! bounded and the workers share one pass: with one worker a pass over a queue's 32,768
//! buckets takes about nine minutes. Safe to run in
//! every worker at once (each call is one atomic script).

use onboard_shared::jobs::JobKind;
use onboard_shared::queue::{JobStore, QueueError};

/// Buckets each kind's call looks at per tick (a few thousand entries at most).
pub const BUCKETS_PER_TICK: u16 = 64;

/// One round over every kind.
pub async fn sweep(store: &JobStore) -> Result<u64, QueueError> {
    let mut all = 0;
    for kind in JobKind::ALL {
        let removed = store.sweep_idempotency_keys(kind, BUCKETS_PER_TICK).await?;
        if removed > 0 {
            metrics::counter!("onboard_idempotency_keys_swept_total", "kind" => kind.as_str())
                .increment(removed);
        }
        all += removed;
    }
    Ok(all)
}
