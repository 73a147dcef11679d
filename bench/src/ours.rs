//! Our in-process worker, built exactly like `worker/src/launcher.rs` builds one per kind:
//! a `RedisBackend` (per-job leases, events stream, blocking wake-up when idle) under
//! `.concurrency(Slots::worker_tasks(n)).catch_panic()` (its jobs run inside the worker's
//! task, see the launcher), with a no-op handler.

use crate::probe::{until, Probe, Running};
use apalis::prelude::*;
use onboard_shared::jobs::JobKind;
use onboard_shared::queue::{ClaimedJob, JobStore, Lane};
use onboard_worker::runtime::{BackendSettings, JobFailure, JobOutcome, RedisBackend};
use tokio::sync::watch;

/// The no-op handler: reports its start and succeeds with `{}`.
async fn noop(job: ClaimedJob, probe: Data<Probe>) -> Result<JobOutcome, JobFailure> {
    probe.started_job(job.lane == Lane::Live);
    probe.finished();
    Ok(JobOutcome::Succeeded(serde_json::json!({})))
}

/// Starts a no-op worker on the `kind` queue with `concurrency` slots, set up as the
/// launcher sets up its workers.
pub fn start_worker(store: &JobStore, kind: JobKind, concurrency: usize, probe: Probe) -> Running {
    // Never set: the bench stops its workers gracefully.
    let (hard_stop_tx, hard_stop) = watch::channel(false);
    let (shutdown_tx, shutdown) = watch::channel(false);
    let backend = RedisBackend::new(
        vec![kind],
        store.clone(),
        BackendSettings::new(concurrency, 0, shutdown, hard_stop),
    );
    let worker = WorkerBuilder::new(format!("bench-{kind}"))
        .backend(backend)
        .concurrency(onboard_worker::runtime::slots::Slots::worker_tasks(
            concurrency,
        ))
        .catch_panic()
        .data(probe)
        .build(noop);
    Running::spawn(move |stop| async move {
        let result = worker.run_with_ctx(until(stop)).await;
        drop((hard_stop_tx, shutdown_tx));
        result
    })
}
