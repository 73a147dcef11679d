//! Builds the apalis `Monitor`: one worker per provider, each on its own Redis backend
//! claiming that provider's kinds, with their configured concurrencies and panics caught
//! (they become transient failures, never a dead process).
//!
//! A provider's jobs run inside its apalis worker's task, not one spawned task each
//! (apalis's `parallelize`): a handler waits on its provider and Redis, and uses little of
//! a core, while a spawned task per job cost a task, a wake-up across threads and a join.
//! Without them `onboard-worker` spent a quarter less CPU per drained job (1.45-1.54 s
//! against 1.88-2.04 s for 200,000 stubbed jobs), and `drain-stub` ran about 60,000 jobs/s
//! where it ran about 52,000, on a 2-core machine it shares with Redis (README,
//! Benchmarks). The fetchers, the success writers, the sweepers and the other providers'
//! workers are tasks of their own, so the runtime still spreads them over its threads.

use crate::handlers::Runner;
use crate::runtime::slots::Slots;
use crate::runtime::{BackendSettings, JobFailure, JobOutcome, RedisBackend};
use apalis::prelude::*;
use onboard_shared::config::Config;
use onboard_shared::jobs::JobKind;
use onboard_shared::providers::Provider;
use onboard_shared::queue::{ClaimedJob, JobStore};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;

/// One attempt of one job, inside a span carrying its id, kind and attempt (no payload:
/// payloads hold phones, e-mails and passwords).
async fn handle(job: ClaimedJob, runner: Data<Arc<Runner>>) -> Result<JobOutcome, JobFailure> {
    let span =
        tracing::info_span!("job", job_id = %job.id, kind = %job.kind(), attempt = job.attempt);
    async {
        let result = runner.run(&job).await;
        match &result {
            Ok(_) => tracing::info!("attempt succeeded"),
            Err(e) => tracing::info!(error = %e, "attempt failed"),
        }
        result
    }
    .instrument(span)
    .await
}

/// The monitor: one apalis worker per provider, running its kinds that have a non-zero
/// concurrency, with their concurrencies summed into one pool of slots (one claim per
/// provider is what lets live work go before bulk across its kinds).
pub fn monitor(
    cfg: &Config,
    store: JobStore,
    runner: Runner,
    shutdown: watch::Receiver<bool>,
    hard_stop: watch::Receiver<bool>,
) -> Monitor {
    let grace = Duration::from_millis(cfg.queue.shutdown_grace_ms);
    // The monitor's own limit only backs up our hard stop, which hands jobs back first.
    let mut monitor = Monitor::new().shutdown_timeout(grace + Duration::from_secs(5));
    let instance = format!("{}-{}", hostname(), std::process::id());
    // apalis clones a task's data for every task: behind an Arc that is a count, where a
    // Runner's clone copied each provider's credentials (and zeroed them on drop) per job.
    let runner = Arc::new(runner);
    for provider in Provider::ALL {
        let kinds: Vec<JobKind> = JobKind::ALL
            .into_iter()
            .filter(|k| k.provider() == provider && cfg.queue.concurrency.get(*k) > 0)
            .collect();
        let concurrency: usize = kinds
            .iter()
            .map(|k| cfg.queue.concurrency.get(*k) as usize)
            .sum();
        if concurrency == 0 {
            continue;
        }
        let prefetch = cfg.queue.prefetch as usize;
        let store = store.clone();
        let runner = runner.clone();
        let hard_stop = hard_stop.clone();
        let shutdown = shutdown.clone();
        let name = format!("{provider}@{instance}");
        monitor = monitor.register(move |_| {
            let settings =
                BackendSettings::new(concurrency, prefetch, shutdown.clone(), hard_stop.clone());
            let backend = RedisBackend::new(kinds.clone(), store.clone(), settings);
            WorkerBuilder::new(name.clone())
                .backend(backend)
                .concurrency(Slots::worker_tasks(concurrency))
                .catch_panic()
                .data(runner.clone())
                .build(handle)
        });
    }
    monitor
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into())
}
