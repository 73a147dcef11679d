//! Periodic housekeeping, safe to run in every worker at once (each step is one atomic
//! script per job): expire verify codes past their deadline, re-check children left
//! waiting on a parent, and sample the queue gauges operators watch.

use onboard_shared::jobs::JobKind;
use onboard_shared::queue::JobStore;
use std::time::Duration;
use tokio::sync::watch;

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
    Ok(())
}
