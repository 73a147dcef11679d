//! Gives back the memory of idempotency keys whose jobs' records have expired.
//!
//! Idempotency keys live as entries of small bucket hashes (`onboard_shared::queue`'s
//! `idempotency` module), and a hash field has no TTL of its own on Redis 7.0: an entry is
//! held while its job exists, and lookups count it as absent once the job's record has
//! expired. This sweeper
//! deletes such entries: every second, for each kind, one script call looks at
//! [`BUCKETS_PER_TICK`] buckets from where the last call of any worker stopped (the cursor
//! is in Redis), so each call's work is bounded and the workers share one pass: with one
//! worker a pass over a queue's 32,768 buckets takes about nine minutes. Safe to run in
//! every worker at once (each call is one atomic script).

use onboard_shared::jobs::JobKind;
use onboard_shared::queue::{JobStore, QueueError};
use std::time::Duration;
use tokio::sync::watch;

/// Buckets each kind's call looks at per tick (a few thousand entries at most).
pub const BUCKETS_PER_TICK: u16 = 64;

/// Runs until `stop` turns true.
pub async fn run(store: JobStore, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while !*stop.borrow() {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        if let Err(e) = sweep(&store).await {
            metrics::counter!("onboard_sweeper_errors_total").increment(1);
            tracing::warn!(error = %e, "sweeping idempotency keys failed; will retry");
        }
    }
}

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
