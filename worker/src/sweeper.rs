//! Periodic housekeeping, safe to run in every worker at once (each step is one atomic
//! script per job): expire verify codes past their deadline, re-check children left
//! waiting on a parent, sample the queue gauges operators watch, and delete idempotency
//! entries whose jobs are gone (a step of its own, [`crate::idem_sweeper`]).
//!
//! Housekeeping that fails says so: every failed round counts in
//! `onboard_sweeper_errors_total`, and after [`UNREADY_AFTER_FAILURES`] failed rounds in a
//! row `/readyz` answers 503 (see [`SweeperHealth`]) until a round succeeds.

use onboard_shared::jobs::JobKind;
use onboard_shared::queue::JobStore;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Failed rounds in a row (one a second) after which the worker reports itself not ready.
pub const UNREADY_AFTER_FAILURES: u32 = 3;

/// How housekeeping has gone lately; shared with `/readyz`.
#[derive(Debug, Default)]
pub struct SweeperHealth {
    failures_in_a_row: AtomicU32,
}

impl SweeperHealth {
    /// True while housekeeping keeps failing.
    pub fn failing(&self) -> bool {
        self.failures_in_a_row.load(Ordering::Acquire) >= UNREADY_AFTER_FAILURES
    }

    fn record(&self, ok: bool) {
        if ok {
            self.failures_in_a_row.store(0, Ordering::Release);
        } else {
            self.failures_in_a_row.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Runs until `stop` turns true.
pub async fn run(store: JobStore, health: Arc<SweeperHealth>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while !*stop.borrow() {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => break,
        }
        let result = sweep(&store).await;
        health.record(result.is_ok());
        if let Err(e) = result {
            metrics::counter!("onboard_sweeper_errors_total").increment(1);
            tracing::warn!(error = %e, "housekeeping failed; will retry");
        }
    }
}

async fn sweep(store: &JobStore) -> Result<(), onboard_shared::queue::QueueError> {
    let expired = store.expire_codes(JobKind::CreateAccount).await?;
    if expired > 0 {
        tracing::info!(expired, "verify codes expired");
        metrics::counter!("onboard_jobs_finished_total", "kind" => "create-account", "outcome" => "expired")
            .increment(expired);
    }
    for kind in JobKind::ALL {
        store.recheck_waiting(kind, Duration::from_secs(30)).await?;
        let stats = store.queue_stats(kind).await?;
        let k = kind.as_str();
        for (state, n) in stats.by_state() {
            metrics::gauge!("onboard_queue_jobs", "kind" => k, "state" => state).set(n as f64);
        }
        for (lane, n) in [("live", stats.queued_live), ("bulk", stats.queued_bulk)] {
            metrics::gauge!("onboard_queued_jobs", "kind" => k, "lane" => lane).set(n as f64);
        }
        metrics::gauge!("onboard_queue_paused", "kind" => k).set(f64::from(u8::from(stats.paused)));
        // Producers are libraries inside other apps, so the enqueue count comes from the
        // queue's own counter rather than from the producing process.
        metrics::counter!("onboard_jobs_enqueued_total", "kind" => k)
            .absolute(stats.enqueued_total);
        metrics::gauge!("onboard_queue_oldest_ready_age_seconds", "kind" => k)
            .set(stats.oldest_ready_age_ms as f64 / 1000.0);
        metrics::counter!("onboard_worker_leases_expired_total", "kind" => k)
            .absolute(stats.leases_expired);
        if kind == JobKind::CreateAccount {
            metrics::gauge!("onboard_awaiting_code_jobs").set(stats.awaiting_code as f64);
        }
    }
    crate::idem_sweeper::sweep(store).await?;
    Ok(())
}
